// Every public operation of IndexServer, PeerNode and FileTransfer cancelled midway, on an
// io_context run by four threads (each object on a strand of its own): it completes promptly with
// operation_aborted, leaves no file under a final name, holds no lock (the object keeps working),
// and no coroutine touches freed state (the asan and tsan presets run this too).
#include <p2pshare/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

/// An io_context run by four threads, an index on a strand of its own, and peers on strands.
class four_threads {
public:
    four_threads() {
        IndexServerOptions o;
        o.config_dir.clear();
        index_ = std::make_unique<IndexServer>(asio::make_strand(io_), o);
        if (auto ec = index_->start()) throw std::runtime_error(ec.message);
        for (int i = 0; i < 4; ++i)
            threads_.emplace_back([this] { io_.run(); });
    }
    ~four_threads() {
        try {
            for (auto& p : peers_)
                run(p->async_quit());
            run(index_->async_stop());
        } catch (const std::exception& e) {
            BOOST_TEST_MESSAGE("teardown: " << e.what());
        }
        peers_.clear();
        index_.reset();
        work_.reset();
        for (auto& t : threads_)
            t.join();
    }

    template <class T>
    T run(asio::awaitable<T> op, std::chrono::milliseconds timeout = 30s) {
        auto f = asio::co_spawn(asio::make_strand(io_), std::move(op), asio::use_future);
        if (f.wait_for(timeout) != std::future_status::ready) {
            throw std::runtime_error("the operation did not finish within its deadline");
        }
        return f.get();
    }

    PeerOptions options(std::uint32_t id) const {
        PeerOptions o;
        o.id = id;
        o.folder = dir_ / ("p" + std::to_string(id));
        o.index = {ServerAddress{"127.0.0.1", index_->port()}};
        o.retry_max = 100ms;
        return o;
    }

    PeerNode& start_peer(PeerOptions o) {
        peers_.push_back(std::make_unique<PeerNode>(asio::make_strand(io_), std::move(o)));
        const auto e = run(peers_.back()->async_start());
        if (e) throw std::runtime_error("peer did not start: " + e.message);
        return *peers_.back();
    }

    asio::io_context& io() { return io_; }
    IndexServer& index() { return *index_; }
    std::filesystem::path operator/(const std::filesystem::path& p) const { return dir_ / p; }

private:
    test::temp_dir dir_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    std::unique_ptr<IndexServer> index_;
    std::vector<std::unique_ptr<PeerNode>> peers_;
    std::vector<std::thread> threads_;
};

/// `op`, cancelled by `||` with a timer of `after`: the awaitable the race completes with.
template <class T>
asio::awaitable<std::optional<T>> cancelled_after(asio::awaitable<T> op,
                                                  std::chrono::milliseconds after) {
    asio::steady_timer timer(co_await asio::this_coro::executor, after);
    auto r = co_await (std::move(op) || timer.async_wait(asio::use_awaitable));
    if (r.index() == 0) co_return std::get<0>(std::move(r));
    co_return std::nullopt;
}

/// An operation started on a strand of its own, with a cancellation slot; cancel() emits the
/// signal on that strand, as Asio requires.
template <class T>
struct cancellable {
    std::shared_ptr<asio::cancellation_signal> signal;
    asio::strand<asio::io_context::executor_type> strand;
    std::future<T> future;
    void cancel() {
        asio::post(strand, [s = signal] { s->emit(asio::cancellation_type::terminal); });
    }
};

template <class T>
cancellable<T> start(asio::io_context& io, asio::awaitable<T> op) {
    auto signal = std::make_shared<asio::cancellation_signal>();
    auto strand = asio::make_strand(io);
    auto future = asio::co_spawn(strand, std::move(op),
                                 asio::bind_cancellation_slot(signal->slot(), asio::use_future));
    return {std::move(signal), strand, std::move(future)};
}

/// A sparse file whose hash takes seconds.
void make_huge(const fs::path& file) {
    fs::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary);
    out.seekp(16LL << 30);
    out.put('x');
}

/// 32 MiB of printable bytes.
std::string big() { return test::random_text(32 << 20, 9); }

} // namespace

BOOST_AUTO_TEST_SUITE(peer_cancel)

BOOST_AUTO_TEST_CASE(a_download_cancelled_midway_leaves_no_file_and_can_be_done_again) {
    four_threads net;
    const auto content = big();
    test::write_file(net / "p1" / "big.bin", content);
    net.start_peer(net.options(1));
    auto options = net.options(2);
    // Throttled by a slow progress callback, so that the cancellation comes midway.
    std::atomic<std::uint64_t> progress{0};
    options.transfer.on_progress = [&](const TransferProgress& p) {
        progress = p.done;
        std::this_thread::sleep_for(1ms); // a slow disk, in effect: not a synchronisation
    };
    auto& p2 = net.start_peer(options);
    auto download = start(net.io(), p2.async_download({"big.bin"}));
    BOOST_TEST_REQUIRE(test::eventually([&] { return progress > 0; }));
    BOOST_TEST_REQUIRE((download.future.wait_for(0s) == std::future_status::timeout));
    // Cancelled through a cancellation slot: the outcome says operation_aborted.
    download.cancel();
    BOOST_TEST_REQUIRE((download.future.wait_for(10s) == std::future_status::ready));
    const auto outcomes = download.future.get();
    BOOST_TEST_REQUIRE(outcomes.size() == 1u);
    BOOST_TEST(outcomes[0].error == asio::error::operation_aborted, outcomes[0].message);
    BOOST_TEST(!fs::exists(net / "p2" / "big.bin"));

    // Nothing is left locked: the same download now completes (resuming the .part).
    options.transfer.on_progress = nullptr;
    const auto again = net.run(p2.async_download({"big.bin"}), 60s);
    BOOST_TEST_REQUIRE(again.size() == 1u);
    BOOST_TEST(!again[0].error, again[0].message);
    BOOST_TEST(test::read_file(net / "p2" / "big.bin") == content);
}

BOOST_AUTO_TEST_CASE(a_file_transfer_cancelled_midway_reports_operation_aborted) {
    four_threads net;
    const auto content = big();
    test::write_file(net / "p1" / "big.bin", content);
    auto& p1 = net.start_peer(net.options(1));
    fs::create_directories(net / "dl");
    std::atomic<bool> midway{false};
    TransferOptions o;
    o.on_progress = [&](const TransferProgress&) { midway = true; };
    auto strand = asio::make_strand(net.io());
    FileTransfer transfer(strand, net / "dl", o);
    const FileSource src{1,
                         "127.0.0.1",
                         p1.port(),
                         content.size(),
                         test::sha256_hex(content),
                         test::piece_root_hex(content)};
    // Cancelled through a slot as soon as bytes arrived: the result says operation_aborted.
    auto download = start(net.io(), transfer.async_download(std::string("big.bin"), {src}));
    BOOST_TEST_REQUIRE(test::eventually([&] { return midway.load(); }));
    download.cancel();
    BOOST_TEST_REQUIRE((download.future.wait_for(10s) == std::future_status::ready));
    const auto r = download.future.get();
    BOOST_TEST(r.error == asio::error::operation_aborted, r.message);
    BOOST_TEST(!fs::exists(net / "dl" / "big.bin"));
    // A second transfer of the same name is not refused as "being downloaded already".
    const auto again = net.run(transfer.async_download(std::string("big.bin"), {src}), 60s);
    BOOST_TEST(!again.error, again.message);
    BOOST_TEST(test::sha256_hex(test::read_file(net / "dl" / "big.bin")) == src.sha256);
}

BOOST_AUTO_TEST_CASE(folder_operations_cancelled_while_hashing_end_at_once) {
    four_threads net;
    auto& p1 = net.start_peer(net.options(1));
    make_huge(net / "p1" / "huge.bin");
    test::write_file(net / "p1" / "small.txt", "small");
    // async_sync and async_local_files wait for the hashing: cancelled, they end at once.
    const auto t0 = std::chrono::steady_clock::now();
    const auto synced = net.run(cancelled_after(p1.async_sync(), 200ms), 10s);
    BOOST_TEST(!synced.has_value()); // the timer won
    const auto local = net.run(cancelled_after(p1.async_local_files(), 200ms), 10s);
    BOOST_TEST(!local.has_value());
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
    // Through a slot, the result itself says operation_aborted.
    auto sync = start(net.io(), p1.async_sync());
    BOOST_TEST((sync.future.wait_for(100ms) == std::future_status::timeout));
    sync.cancel();
    BOOST_TEST_REQUIRE((sync.future.wait_for(5s) == std::future_status::ready));
    BOOST_TEST(sync.future.get() == asio::error::operation_aborted);
    // The list, a deletion, cancelled at once: no harm done, the peer answers on.
    (void)net.run(cancelled_after(p1.async_list_network_files(), 0ms), 10s);
    (void)net.run(cancelled_after(p1.async_delete_local({"small.txt"}), 0ms), 10s);
    const auto names = net.run(p1.async_list_network_files(), 10s);
    BOOST_TEST(names.has_value());
    BOOST_TEST(p1.registered());
    // Quit cuts the hashing short.
    const auto q0 = std::chrono::steady_clock::now();
    net.run(p1.async_quit(), 10s);
    BOOST_TEST((std::chrono::steady_clock::now() - q0 < 5s));
}

BOOST_AUTO_TEST_CASE(operations_cancelled_as_they_complete_touch_no_freed_state) {
    // A timer of 0 ms fires about when these complete: the cancellation, passed on to the
    // object's strand, often comes after the operation ended and its caller resumed.
    four_threads net;
    auto& p1 = net.start_peer(net.options(1));
    test::write_file(net / "p1" / "small.txt", "small");
    for (int i = 0; i < 100; ++i) {
        (void)net.run(cancelled_after(net.index().async_stats(), 0ms), 10s);
        (void)net.run(cancelled_after(p1.async_local_files(), 0ms), 10s);
        (void)net.run(cancelled_after(p1.async_delete_local({"absent.txt"}), 0ms), 10s);
    }
    const auto local = net.run(p1.async_local_files(), 10s);
    BOOST_TEST_REQUIRE(local.has_value());
    BOOST_TEST(local->size() == 1u);
    BOOST_TEST(p1.registered());
}

BOOST_AUTO_TEST_CASE(a_start_cancelled_while_hashing_stops_the_peer) {
    four_threads net;
    make_huge(net / "p1" / "huge.bin");
    auto node = std::make_unique<PeerNode>(asio::make_strand(net.io()), net.options(1));
    auto starting = start(net.io(), node->async_start());
    // It is registered at once (the lease does not wait for the hash), then waits for the hash.
    BOOST_TEST_REQUIRE(test::eventually([&] { return node->registered(); }));
    BOOST_TEST((starting.future.wait_for(100ms) == std::future_status::timeout));
    starting.cancel();
    BOOST_TEST_REQUIRE((starting.future.wait_for(5s) == std::future_status::ready));
    BOOST_TEST(starting.future.get() == asio::error::operation_aborted);
    net.run(node->async_quit(), 10s);
    node.reset(); // destroyed while the hashing thread may still be finishing its read
}

BOOST_AUTO_TEST_CASE(quit_and_stop_cancelled_cut_what_they_wait_for) {
    four_threads net;
    const auto content = big();
    test::write_file(net / "p1" / "big.bin", content);
    auto options = net.options(1);
    options.drain_timeout = 60s;
    auto& p1 = net.start_peer(options);
    // A downloader that asks for the file and then reads nothing: the upload waits on it.
    asio::io_context client;
    asio::ip::tcp::socket socket(client);
    socket.connect({asio::ip::make_address("127.0.0.1"), p1.port()});
    const std::string request = "GET /v1/files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    BOOST_TEST_REQUIRE(test::eventually([&] { return p1.active_uploads() == 1u; }));
    // Quit waits for the upload (drain_timeout 60 s); cancelled, it cuts the upload at once.
    const auto t0 = std::chrono::steady_clock::now();
    (void)net.run(cancelled_after(
                      [](PeerNode& p) -> asio::awaitable<bool> {
                          co_await p.async_quit();
                          co_return true;
                      }(p1),
                      300ms),
                  10s);
    BOOST_TEST(test::eventually([&] { return p1.active_uploads() == 0u; }, 5s));
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
    BOOST_TEST(!p1.registered());
    // The index's stop waits for a request in flight; cancelled, it cuts it.
    asio::ip::tcp::socket idle(client);
    idle.connect({asio::ip::make_address("127.0.0.1"), net.index().port()});
    asio::write(idle, asio::buffer(std::string("GET /v1/health HTTP/1.1\r\nHost: x\r\n")));
    (void)net.run(cancelled_after(
                      [](IndexServer& i) -> asio::awaitable<bool> {
                          co_await i.async_stop();
                          co_return true;
                      }(net.index()),
                      300ms),
                  10s);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));
}

BOOST_AUTO_TEST_SUITE_END()
