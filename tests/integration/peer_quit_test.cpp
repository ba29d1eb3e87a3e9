// Quitting while another peer downloads from us: unregister first, let the upload finish.
#include <p2pshare/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <atomic>
#include <fstream>
#include <future>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace p2pshare;

namespace {

/// Shared between the test thread and the io thread; each field is written on the io thread
/// before `quit_done` (or the download's future) is set and read on the test thread after.
struct quit_watch {
    PeerNode* uploader = nullptr;
    IndexServer* index = nullptr;
    std::atomic<std::uint64_t> progress{0};
    std::atomic<bool> quit_started{false};
    std::atomic<bool> quit_done{false};
    std::size_t uploads_at_quit = 0;
    bool unlisted = false;                    ///< the index stopped listing the uploader
    std::uint64_t progress_when_unlisted = 0; ///< what the downloader had by then
    std::size_t uploads_when_unlisted = 0;
};

/// Quits the uploader and watches the index until the uploader is no longer listed.
asio::awaitable<void> quit_and_watch(quit_watch* w) {
    const auto executor = co_await asio::this_coro::executor;
    asio::co_spawn(executor, w->uploader->async_quit(),
                   [w](std::exception_ptr) { w->quit_done = true; });
    asio::steady_timer timer(executor);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        const auto stats = co_await w->index->async_stats();
        if (stats.peers == 1) {
            w->progress_when_unlisted = w->progress;
            w->unlisted = true;
            // The download goes on piece by piece: an upload is in flight at once or at its
            // next piece (a request ends between two pieces).
            for (int i = 0; i < 1000 && w->uploads_when_unlisted == 0; ++i) {
                w->uploads_when_unlisted = w->uploader->active_uploads();
                if (w->uploads_when_unlisted > 0) break;
                timer.expires_after(std::chrono::milliseconds(1));
                co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            co_return;
        }
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

/// 64 MiB of printable bytes, every MiB different.
std::string big_content() {
    constexpr std::size_t mib = 1024 * 1024;
    const auto block = test::random_text(mib, 91);
    std::string out;
    out.reserve(64 * mib);
    for (int i = 0; i < 64; ++i) {
        auto chunk = block;
        const auto tag = "[block " + std::to_string(i) + "]";
        chunk.replace(static_cast<std::size_t>(i) * 997, tag.size(), tag);
        out += chunk;
    }
    return out;
}

/// A file that takes about a minute to hash here, created sparse (no disk space used).
constexpr std::uint64_t huge_size = std::uint64_t{64} << 30;

} // namespace

BOOST_AUTO_TEST_SUITE(peer_quit)

BOOST_AUTO_TEST_CASE(quit_unregisters_first_and_lets_the_upload_finish) {
    test::network net;
    const auto content = big_content();
    test::write_file(net / "p1" / "big.bin", content);
    // Capped so that the upload lasts (about 2 s): the quit comes in the middle of it.
    auto uploader = net.options(1);
    uploader.max_upload_rate = 32 << 20;
    auto& a = net.start_peer(uploader);

    quit_watch watch;
    watch.uploader = &a;
    watch.index = &net.index();
    auto options = net.options(2);
    options.transfer.buffer_size = 16 * 1024;
    auto* w = &watch;
    auto& io = net.io().context();
    options.transfer.on_progress = [w, &io](const TransferProgress& p) {
        w->progress = p.done;
        // As soon as bytes flow, the uploader quits (this runs on the io thread).
        if (p.done > 0 && p.done < p.total && !w->quit_started.exchange(true)) {
            w->uploads_at_quit = w->uploader->active_uploads();
            asio::co_spawn(io, quit_and_watch(w), asio::detached);
        }
    };
    auto& b = net.start_peer(options);
    BOOST_TEST(net.io().run(net.index().async_stats()).peers == 2u);

    auto download = asio::co_spawn(io, b.async_download({"big.bin"}), asio::use_future);
    BOOST_REQUIRE(download.wait_for(std::chrono::seconds(120)) == std::future_status::ready);
    const auto outcomes = download.get();
    BOOST_REQUIRE(
        test::eventually([&] { return watch.quit_done.load(); }, std::chrono::seconds(30)));

    BOOST_TEST(watch.quit_started);
    BOOST_TEST(watch.uploads_at_quit == 1u); // the quit began during the upload
    BOOST_TEST(watch.unlisted);
    // Unregistered while the upload was still going on.
    BOOST_TEST(watch.progress_when_unlisted < content.size());
    BOOST_TEST(watch.uploads_when_unlisted == 1u);

    // The download completed from the quitting peer, byte for byte.
    BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
    BOOST_TEST(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(outcomes[0].transfer.source_peer == 1u);
    BOOST_TEST(outcomes[0].transfer.received == content.size());
    const auto got = test::read_file(net / "p2" / "big.bin");
    BOOST_TEST(got.size() == content.size());
    BOOST_TEST((got == content));
    BOOST_TEST(test::files_in(net / "p2") == std::vector<std::string>{"big.bin"});

    // The quitting peer is gone from the index and its port is closed; the downloader shares.
    BOOST_TEST(!a.registered());
    BOOST_TEST(a.active_uploads() == 0u);
    BOOST_TEST(test::index_sources(net.index_port(), "big.bin") == std::set<std::uint32_t>{2});
    BOOST_TEST(net.io().run(net.index().async_stats()).peers == 1u);
    BOOST_CHECK_THROW(test::http_call(a.port(), "GET", "/v1/health"), std::exception);
    // Its file was left alone.
    BOOST_TEST(fs::file_size(net / "p1" / "big.bin") == content.size());
}

// A very large file dropped into the folder is hashed by the next folder scan, which holds the
// peer's index lock meanwhile. Quit must not wait for that hash (about a minute here for the
// sparse 64 GiB below) to unregister: it cuts the scan short.
BOOST_AUTO_TEST_CASE(quit_does_not_wait_for_a_large_file_being_hashed) {
    test::network net;
    test::write_file(net / "p1" / "small.txt", "shared");
    auto& a = net.start_peer(1);
    const auto huge = net / "p1" / "huge.bin";
    test::write_file(huge, "");
    fs::resize_file(huge, huge_size);

    // The delete rescans the folder first (on the peer's executor, ahead of the quit), so
    // the scan is hashing huge.bin when the quit comes.
    auto& io = net.io().context();
    auto scan = asio::co_spawn(io, a.async_delete_local({"absent.txt"}), asio::use_future);
    net.io().run(a.async_quit(), std::chrono::seconds(10)); // throws if the quit hangs

    BOOST_REQUIRE(scan.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    const auto outcomes = scan.get();
    BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
    BOOST_TEST(outcomes[0].error == make_error_code(errc::not_found));
    BOOST_TEST(!a.registered());
    BOOST_TEST(net.io().run(net.index().async_stats()).peers == 0u);
    // Nothing in the folder was touched.
    BOOST_TEST(test::read_file(net / "p1" / "small.txt") == "shared");
    BOOST_TEST(fs::file_size(huge) == huge_size);
}

// A shared file replaced by hand with a very large one is hashed again before it is served.
// An upload waiting for that hash when the peer quits is answered 503 at once.
BOOST_AUTO_TEST_CASE(quit_cuts_an_upload_waiting_for_its_re_hash) {
    test::network net;
    const auto file = net / "p1" / "grown.bin";
    test::write_file(file, "small at first");
    auto& a = net.start_peer(1);
    fs::resize_file(file, huge_size);

    auto reply = std::async(std::launch::async, [port = a.port()] {
        return test::raw_call(port, "GET /v1/files/grown.bin HTTP/1.1\r\nHost: p1\r\n\r\n");
    });
    BOOST_REQUIRE(test::eventually([&] { return a.active_uploads() == 1u; }));
    net.io().run(a.async_quit(), std::chrono::seconds(10)); // throws if the quit hangs

    const auto answer = reply.get();
    BOOST_TEST(answer.rfind("HTTP/1.1 503 ", 0) == 0u, answer);
    BOOST_TEST(answer.find("shutting_down") != std::string::npos, answer);
    BOOST_TEST(!a.registered());
    BOOST_TEST(fs::file_size(file) == huge_size);
}

BOOST_AUTO_TEST_SUITE_END()
