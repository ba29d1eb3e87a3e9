// Downloads from several real peers at once (PeerNode and FileTransfer in one process, over
// loopback): bad pieces banned, slow sources replaced, versions never mixed, connections reused.
#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include "loopback_server.hpp"
#include "peer_fixture.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <set>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace p2pshare;
using tcp = asio::ip::tcp;

namespace {

using p2pshare::test::mib;

/// Overwrites `bytes` at `offset` of `file` and puts its modification time back, so that a peer
/// that hashed it before sees the same stamp (as after a silent disk error) and serves the
/// new bytes under the old hash.
void corrupt_in_place(const fs::path& file, std::size_t offset, const std::string& bytes) {
    struct stat st {};
    BOOST_TEST_REQUIRE(::stat(file.c_str(), &st) == 0);
    const int fd = ::open(file.c_str(), O_WRONLY);
    BOOST_TEST_REQUIRE(fd >= 0);
    BOOST_TEST_REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
                       static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    BOOST_TEST_REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
}

/// A port mapping, as a router in front of a peer would make: connections to port() are
/// forwarded to 127.0.0.1:target.
class port_mapping {
    test::loopback_server server_;

public:
    port_mapping() {
        server_.start([this](tcp::socket s) { return forward(std::move(s)); });
    }
    ~port_mapping() { server_.stop(); }
    port_mapping(const port_mapping&) = delete;
    port_mapping& operator=(const port_mapping&) = delete;
    std::uint16_t port() const { return server_.port(); }
    void to(std::uint16_t target) { target_ = target; }
    std::size_t connections() const { return connections_; }

private:
    static asio::awaitable<void> pipe(tcp::socket& from, tcp::socket& to) {
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        std::vector<char> buffer(64 * 1024);
        for (;;) {
            auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), tuple);
            if (ec) break;
            auto [wec, m] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), tuple);
            if (wec) break;
        }
        boost::system::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
    }
    asio::awaitable<void> forward(tcp::socket in) {
        using namespace asio::experimental::awaitable_operators;
        ++connections_;
        tcp::socket out(in.get_executor());
        auto [ec] =
            co_await out.async_connect({asio::ip::make_address("127.0.0.1"), target_.load()},
                                       asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        co_await (pipe(in, out) && pipe(out, in));
    }

    std::atomic<std::uint16_t> target_{0};
    std::atomic<std::size_t> connections_{0};
};

using p2pshare::test::report_of;

} // namespace

BOOST_AUTO_TEST_SUITE(peer_swarm)

// A file on four peers, one of which serves wrong bytes in one piece: every run completes with
// the right bytes; when the bad piece was asked of that peer, it is banned and the piece comes
// again from another, and only a few pieces are fetched twice.
BOOST_AUTO_TEST_CASE(a_source_with_one_bad_piece_is_banned_and_the_file_completes) {
    test::network net;
    const std::string name = "shared.bin";
    const auto content = test::random_text(8 * mib + 5, 91);
    for (std::uint32_t id = 1; id <= 4; ++id) {
        test::write_file(net / ("p" + std::to_string(id)) / name, content);
        net.start_peer(id);
    }
    // Peer 3's copy goes bad in piece 2 once it was hashed and announced.
    corrupt_in_place(net / "p3" / name, 2 * mib + 100, std::string(64, '!'));
    auto options = net.options(5);
    options.transfer.sources = 4;
    auto& p5 = net.start_peer(options);
    bool banned_seen = false;
    for (int run = 0; run < 40 && !banned_seen; ++run) {
        BOOST_TEST_CONTEXT("run " << run) {
            fs::remove(net / "p5" / name);
            const auto outcomes = net.io().run(p5.async_download({name}));
            BOOST_TEST_REQUIRE(outcomes.size() == 1u);
            const auto& r = outcomes[0].transfer;
            BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
            BOOST_TEST(test::read_file(net / "p5" / name) == content);
            BOOST_TEST(r.pieces == 9u);
            BOOST_TEST(r.refetched <= 4u);
            BOOST_TEST(r.received <= content.size() + 4 * mib,
                       "end-game copies " << r.end_game_copies << ", refetched " << r.refetched);
            std::uint64_t total = 0;
            for (const auto& s : r.sources) {
                total += s.bytes;
                if (s.peer != 3) BOOST_TEST(!s.banned);
            }
            BOOST_TEST(total == content.size());
            const auto* bad = report_of(r, 3);
            if (bad && bad->banned) {
                banned_seen = true;
                BOOST_TEST(bad->bad_pieces == 1u);
                BOOST_TEST(bad->failure.find("piece 2") != std::string::npos, bad->failure);
                BOOST_TEST(r.refetched >= 1u);
            }
            // Two sources or more sent bytes at once.
            std::size_t senders = 0;
            for (const auto& s : r.sources)
                senders += s.bytes > 0 ? 1 : 0;
            BOOST_TEST(senders >= 2u);
        }
    }
    BOOST_TEST(banned_seen);
}

// Two versions of one name in the network: the download takes the one more peers share, and
// no byte of the other.
BOOST_AUTO_TEST_CASE(two_versions_of_a_name_are_never_mixed) {
    test::network net;
    const std::string name = "versions.bin";
    const auto a = test::random_text(4 * mib + 1, 92);
    const auto b = test::random_text(4 * mib + 1, 93); // same size, other bytes
    test::write_file(net / "p1" / name, a);
    test::write_file(net / "p2" / name, a);
    test::write_file(net / "p3" / name, b);
    for (std::uint32_t id = 1; id <= 3; ++id)
        net.start_peer(id);
    auto& p4 = net.start_peer(4);
    for (int run = 0; run < 5; ++run) {
        BOOST_TEST_CONTEXT("run " << run) {
            fs::remove(net / "p4" / name);
            const auto outcomes = net.io().run(p4.async_download({name}));
            BOOST_TEST_REQUIRE(outcomes.size() == 1u);
            BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
            BOOST_TEST(test::read_file(net / "p4" / name) == a);
            for (const auto& s : outcomes[0].transfer.sources)
                BOOST_TEST(s.peer != 3u);
        }
    }
}

// A series of small downloads from one peer goes over one kept-alive connection: the first
// opens it, the next ones reuse it.
BOOST_AUTO_TEST_CASE(small_downloads_reuse_their_connection) {
    test::network net;
    const std::vector<std::size_t> sizes{128, 512, 2048, 8192, 32768};
    std::vector<std::string> contents;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        contents.push_back(test::random_text(sizes[i], 95 + static_cast<unsigned>(i)));
        test::write_file(net / "p1" / ("f" + std::to_string(i)), contents.back());
    }
    net.start_peer(1);
    auto& p2 = net.start_peer(2);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        BOOST_TEST_CONTEXT("download " << i) {
            const auto name = "f" + std::to_string(i);
            const auto outcomes = net.io().run(p2.async_download({name}));
            BOOST_TEST_REQUIRE(outcomes.size() == 1u);
            BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
            BOOST_TEST(outcomes[0].transfer.connections == (i == 0 ? 1u : 0u));
            BOOST_TEST(test::read_file(net / "p2" / name) == contents[i]);
        }
    }
}

// A source's 404 (a file it no longer has, which the index still lists) is read to its end: the
// connection serves the next download from that source.
BOOST_AUTO_TEST_CASE(a_download_refused_with_404_keeps_its_connection) {
    test::network net;
    test::write_file(net / "p1" / "gone.txt", test::random_text(700, 91));
    const auto kept = test::random_text(900, 92);
    test::write_file(net / "p1" / "kept.txt", kept);
    auto o1 = net.options(1);
    o1.rescan_interval = std::chrono::hours(1); // the index lists gone.txt until the test ends
    net.start_peer(o1);
    auto& p2 = net.start_peer(2);
    std::filesystem::remove(net / "p1" / "gone.txt");
    const auto refused = net.io().run(p2.async_download({"gone.txt"}));
    BOOST_TEST_REQUIRE(refused.size() == 1u);
    BOOST_TEST(refused[0].error == make_error_code(errc::not_found), refused[0].message);
    BOOST_TEST(refused[0].transfer.connections == 1u);
    BOOST_TEST(!std::filesystem::exists(net / "p2" / "gone.txt"));
    const auto fetched = net.io().run(p2.async_download({"kept.txt"}));
    BOOST_TEST_REQUIRE(!fetched.at(0).error, fetched.at(0).message);
    BOOST_TEST(fetched[0].transfer.connections == 0u);
    BOOST_TEST(test::read_file(net / "p2" / "kept.txt") == kept);
}

// An idle keep-alive connection is closed once unused for TransferOptions::idle_timeout, with no
// further download to notice it (the pool's timer). The peer's health counts it meanwhile.
BOOST_AUTO_TEST_CASE(an_idle_kept_connection_is_closed_after_the_idle_timeout) {
    test::network net;
    test::write_file(net / "p1" / "kept.txt", test::random_text(1000, 97));
    net.start_peer(1);
    auto o2 = net.options(2);
    o2.transfer.idle_timeout = std::chrono::milliseconds(300);
    auto& p2 = net.start_peer(o2);
    const auto idle = [&] {
        const auto reply = test::http_call(p2.port(), "GET", "/v1/health");
        return boost::json::parse(reply.body).at("idle_connections").to_number<int>();
    };
    BOOST_TEST(idle() == 0);
    const auto started = std::chrono::steady_clock::now();
    const auto outcomes = net.io().run(p2.async_download({"kept.txt"}));
    BOOST_TEST_REQUIRE(!outcomes.at(0).error, outcomes.at(0).message);
    BOOST_TEST_REQUIRE(outcomes.at(0).transfer.connections == 1u);
    // Kept: unless 300 ms already passed (a very slow machine), it is counted.
    const auto kept = idle();
    if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(250))
        BOOST_TEST(kept == 1);
    BOOST_TEST(test::eventually([&] { return idle() == 0; }));
    BOOST_TEST((std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(300)));
}

// A peer behind a port mapping gives the index the mapped port (--advertise-port): the others
// reach it there.
BOOST_AUTO_TEST_CASE(a_peer_behind_a_port_mapping_is_reached_at_its_advertised_port) {
    test::network net;
    const auto content = test::random_text(3 * mib + 1, 96);
    test::write_file(net / "p1" / "mapped.bin", content);
    port_mapping mapping;
    auto o1 = net.options(1);
    o1.advertise_port = mapping.port();
    auto& p1 = net.start_peer(o1);
    mapping.to(p1.port());
    BOOST_TEST_REQUIRE(p1.port() != mapping.port());
    auto& p2 = net.start_peer(2);
    const auto outcomes = net.io().run(p2.async_download({"mapped.bin"}));
    BOOST_TEST_REQUIRE(outcomes.size() == 1u);
    BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(outcomes[0].transfer.source == "127.0.0.1:" + std::to_string(mapping.port()));
    BOOST_TEST(mapping.connections() >= 1u);
    BOOST_TEST(test::read_file(net / "p2" / "mapped.bin") == content);
}

// The caps hold within a generous tolerance (docs/protocol.md, section 8): the rate measured
// over a whole download is at most 1.25 x the cap (the first burst of 20 ms is free) and at
// least 0.4 x (the cap is not far too strict).
BOOST_AUTO_TEST_CASE(upload_and_download_caps_hold) {
    test::network net;
    const std::string name = "capped.bin";
    const auto content = test::random_text(6 * mib, 94);
    constexpr std::uint64_t cap = 6 << 20; // 6 MiB/s: about a second
    const auto rate_of = [&](const std::vector<DownloadOutcome>& outcomes) {
        BOOST_TEST_REQUIRE(outcomes.size() == 1u);
        BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
        const double seconds = std::chrono::duration<double>(outcomes[0].transfer.elapsed).count();
        return static_cast<double>(content.size()) / seconds;
    };
    // One source, its uploads capped.
    test::write_file(net / "p1" / name, content);
    auto o1 = net.options(1);
    o1.max_upload_rate = cap;
    auto& p1 = net.start_peer(o1);
    auto& p3 = net.start_peer(3);
    const double up = rate_of(net.io().run(p3.async_download({name})));
    BOOST_TEST_MESSAGE("upload cap " << cap << " B/s: measured " << up << " B/s");
    BOOST_TEST(up <= 1.25 * cap);
    BOOST_TEST(up >= 0.4 * cap);
    BOOST_TEST(test::read_file(net / "p3" / name) == content);
    // Two uncapped sources, the downloader capped: the cap is on the sum.
    test::write_file(net / "p2" / name, content);
    net.start_peer(2);
    auto o4 = net.options(4);
    o4.transfer.max_download_rate = cap;
    auto& p4 = net.start_peer(o4);
    // (p1's upload cap stays: give p4 only uncapped sources' speed to check its own cap)
    const auto outcomes = net.io().run(p4.async_download({name}));
    const double down = rate_of(outcomes);
    BOOST_TEST_MESSAGE("download cap " << cap << " B/s: measured " << down << " B/s");
    BOOST_TEST(down <= 1.25 * cap);
    BOOST_TEST(down >= 0.4 * cap);
    BOOST_TEST(test::read_file(net / "p4" / name) == content);
    // Two downloads from p1 at once: its cap is on all its uploads together.
    {
        using namespace asio::experimental::awaitable_operators;
        const auto source = net.source_of(p1, content);
        fs::create_directories(net / "a");
        fs::create_directories(net / "b");
        FileTransfer a(net.io().executor(), net / "a", {});
        FileTransfer b(net.io().executor(), net / "b", {});
        const auto t0 = std::chrono::steady_clock::now();
        const auto [ra, rb] =
            net.io().run(a.async_download(name, {source}) && b.async_download(name, {source}));
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        BOOST_TEST_REQUIRE(!ra.error, ra.message);
        BOOST_TEST_REQUIRE(!rb.error, rb.message);
        const double both = 2.0 * static_cast<double>(content.size()) / seconds;
        BOOST_TEST_MESSAGE("upload cap " << cap << " B/s, two downloads at once: measured " << both
                                         << " B/s together");
        BOOST_TEST(both <= 1.25 * cap);
        BOOST_TEST(both >= 0.4 * cap);
        BOOST_TEST(test::read_file(net / "a" / name) == content);
        BOOST_TEST(test::read_file(net / "b" / name) == content);
    }
}

// Three sources, two at a time: two fast ones and one 32 times slower. Whenever the slow one is
// among the first two, it gives way to the fast one not used yet soon after both were measured
// (not at the end of its run), says so in its report, and sends next to nothing.
BOOST_AUTO_TEST_CASE(a_far_slower_source_gives_way_to_one_not_used_yet) {
    test::network net;
    const std::string name = "spread.bin";
    const auto content = test::random_text(12 * mib, 95);
    for (std::uint32_t id = 1; id <= 3; ++id) {
        test::write_file(net / ("p" + std::to_string(id)) / name, content);
        auto o = net.options(id);
        o.max_upload_rate = id == 3 ? 256 * 1024 : 8 * mib;
        net.start_peer(o);
    }
    auto options = net.options(4);
    options.transfer.sources = 2;
    auto& p4 = net.start_peer(options);
    bool slow_used = false;
    for (int run = 0; run < 30 && !slow_used; ++run) {
        BOOST_TEST_CONTEXT("run " << run) {
            fs::remove(net / "p4" / name);
            const auto outcomes = net.io().run(p4.async_download({name}));
            BOOST_TEST_REQUIRE(outcomes.size() == 1u);
            BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
            const auto& r = outcomes[0].transfer;
            BOOST_TEST(test::read_file(net / "p4" / name) == content);
            const auto* fast1 = report_of(r, 1);
            const auto* fast2 = report_of(r, 2);
            BOOST_TEST_REQUIRE(fast1);
            BOOST_TEST_REQUIRE(fast2);
            BOOST_TEST(fast1->bytes > 0u);
            BOOST_TEST(fast2->bytes > 0u);
            // (A source asked only for the piece hashes has a report too: served means it
            // sent verified bytes or left.)
            const auto* slow = report_of(r, 3);
            if (slow && (slow->bytes > 0 || !slow->failure.empty())) {
                slow_used = true;
                BOOST_TEST(
                    slow->failure.find("far slower than the fastest source") != std::string::npos,
                    slow->failure);
                BOOST_TEST(!slow->banned);
                BOOST_TEST(slow->bytes <= mib);
                BOOST_TEST(fast1->bytes + fast2->bytes + slow->bytes == content.size());
            }
        }
    }
    BOOST_TEST(slow_used);
}

BOOST_AUTO_TEST_SUITE_END()
