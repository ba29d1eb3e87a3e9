// Faults with real processes: peers, the index and downloaders killed with SIGKILL, a disk that
// refuses to grow. Nothing is lost and no file ever appears with wrong content. Suite
// fault_index_redis does it with two index servers on one Redis (a real redis-server, or the
// 3-master cluster, started by the test).
#include <p2pshare/config.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include "fault_support.hpp"
#include "loopback_server.hpp"
#include "piece_record.hpp"
#include "redis_fixture.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace p2pshare;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t MiB = 1024 * 1024;

using p2pshare::test::since;

std::uintmax_t size_or_zero(const fs::path& p) {
    std::error_code ec;
    const auto n = fs::file_size(p, ec);
    return ec ? 0 : n;
}

/// The one result of a `peer get NAME --json` run (its last line of output).
json::object get_result(const test::child& c) {
    const auto& out = c.output();
    const auto end = out.find_last_not_of('\n');
    BOOST_TEST_REQUIRE(end != std::string::npos, "no output; stderr: " << c.error_output());
    const auto begin = out.rfind('\n', end);
    const auto line = out.substr(begin == std::string::npos ? 0 : begin + 1);
    const auto v = json::parse(line);
    const auto& results = v.at("results").as_array();
    BOOST_TEST_REQUIRE(results.size() == 1u, line);
    return results.at(0).as_object();
}

std::string text(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string{};
}

std::uint64_t number(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v ? v->to_number<std::uint64_t>() : ~std::uint64_t{0};
}

std::set<std::uint32_t> ids_of(const std::vector<FileSource>& sources) {
    std::set<std::uint32_t> ids;
    for (const auto& s : sources)
        ids.insert(s.peer);
    return ids;
}

/// A source that sends the header and the first `send` bytes of a file, then keeps the
/// connection open without sending more: a download through it is in progress for as long as
/// the test wants.
/// A source of `content` that answers its piece hashes and the pieces wholly within the first
/// `send` bytes (byte ranges, keep-alive), then holds every later request unanswered until the
/// downloader goes away.
class gated_source {
private:
    // First member: built first, as the others use its io_context; stopped in the destructor
    // before they go.
    test::loopback_server server_;

public:
    gated_source(std::string content, std::size_t send)
        : content_(std::move(content)), send_(send) {
        server_.start([this](tcp::socket socket) { return serve(std::move(socket)); });
    }
    ~gated_source() { server_.stop(); }
    std::uint16_t port() const noexcept { return server_.port(); }

private:
    asio::awaitable<void> serve(tcp::socket socket) {
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        std::string in;
        for (;;) {
            auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(in),
                                                           "\r\n\r\n", tuple);
            if (ec) co_return;
            const auto request = in.substr(0, n);
            in.erase(0, n);
            const std::string etag = "\"" + test::sha256_hex(content_) + "\"";
            std::string head;
            std::string_view body;
            const auto hashes = test::piece_hashes(content_);
            std::uint64_t first = 0;
            std::uint64_t last = 0;
            const auto range = request.find("Range: bytes=");
            if (request.starts_with("GET /v1/pieces/")) {
                head = "HTTP/1.1 200 OK\r\nETag: " + etag +
                       "\r\nContent-Length: " + std::to_string(hashes.size()) + "\r\n\r\n";
                body = hashes;
            } else if (range != std::string::npos &&
                       std::sscanf(request.c_str() + range, "Range: bytes=%lu-%lu", &first,
                                   &last) == 2 &&
                       last < send_) {
                head = "HTTP/1.1 206 Partial Content\r\nETag: " + etag +
                       "\r\nContent-Range: bytes " + std::to_string(first) + "-" +
                       std::to_string(last) + "/" + std::to_string(content_.size()) +
                       "\r\nContent-Length: " + std::to_string(last + 1 - first) + "\r\n\r\n";
                body = std::string_view(content_).substr(first, last + 1 - first);
            } else {
                // Past the gate: hold the connection until the downloader goes away.
                char byte = 0;
                std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(&byte, 1), tuple);
                co_return;
            }
            std::tie(ec, n) = co_await asio::async_write(socket, asio::buffer(head), tuple);
            if (ec) co_return;
            std::tie(ec, n) = co_await asio::async_write(socket, asio::buffer(body), tuple);
            if (ec) co_return;
        }
    }

    std::string content_;
    std::size_t send_;
};

/// The pieces that the record beside `part` names as verified, for `content`.
std::size_t recorded_pieces(const fs::path& record, const std::string& content) {
    using namespace p2pshare::detail;
    std::ifstream in(record, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), {}};
    piece_record r(content.size(), piece_size_for(content.size()), piece_count_for(content.size()),
                   *digest_from_hex(test::sha256_hex(content)),
                   *digest_from_hex(test::piece_root_hex(content)));
    const auto verified = r.read(bytes);
    return verified ? static_cast<std::size_t>(std::count(verified->begin(), verified->end(), true))
                    : 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(fault_sources)

BOOST_AUTO_TEST_CASE(a_source_killed_mid_download_costs_at_most_its_piece_in_flight) {
    test::process_network net;
    const std::string name = "big.bin";
    const auto content = test::big_content(64 * MiB, 1);
    const auto sha = test::sha256_hex(content);
    test::write_file(net / "p1" / name, content);
    test::write_file(net / "p2" / name, content);
    net.serve(1);
    net.serve(2);
    const auto sources = test::lookup_sources(net.index_port(), name);
    BOOST_TEST_REQUIRE(ids_of(sources) == (std::set<std::uint32_t>{1, 2}));
    for (const auto& s : sources) {
        BOOST_TEST(s.size == content.size());
        BOOST_TEST(s.sha256 == sha);
    }

    // Both sources send pieces at once; the one that sent the latest bytes once 8 MiB of the
    // file have arrived is killed.
    const std::map<std::string, std::uint32_t> by_address{
        {"127.0.0.1:" + std::to_string(net.port_of(1)), 1},
        {"127.0.0.1:" + std::to_string(net.port_of(2)), 2}};
    const std::map<std::uint32_t, int> pids{{1, net.peer(1).pid()}, {2, net.peer(2).pid()}};
    std::atomic<std::uint32_t> killed{0};
    std::atomic<std::uint64_t> killed_at{0};
    TransferOptions options;
    options.stall_timeout = 5s;
    options.on_progress = [&](const TransferProgress& p) {
        if (killed != 0 || p.done <= 8 * MiB) return;
        const auto it = by_address.find(p.source);
        if (it == by_address.end() || it->second != p.source_peer) return;
        ::kill(pids.at(it->second), SIGKILL);
        killed_at = p.done;
        killed = it->second;
    };
    test::temp_dir folder;
    test::io_thread io;
    FileTransfer transfer(io.executor(), folder.path(), options);
    const auto r = io.run(transfer.async_download(name, sources), 60s);

    BOOST_TEST_REQUIRE(killed != 0u);
    const std::uint32_t survivor = killed == 1 ? 2 : 1;
    BOOST_TEST(net.peer(killed).wait() == 128 + SIGKILL);
    BOOST_TEST_REQUIRE(!r.error, r.message);
    BOOST_TEST(r.source_peer == survivor);
    BOOST_TEST(r.size == content.size());
    BOOST_TEST(r.pieces == content.size() / MiB);
    // What it cost: at most the piece the killed source had in flight.
    BOOST_TEST(r.received >= content.size());
    BOOST_TEST(r.received <= content.size() + MiB);
    std::uint64_t total = 0;
    for (const auto& s : r.sources) {
        total += s.bytes;
        BOOST_TEST(!s.banned);
        BOOST_TEST(s.failure.empty() == (s.peer == survivor), s.peer << ": " << s.failure);
    }
    BOOST_TEST(total == content.size());
    BOOST_TEST(test::folder_entries(folder.path()) == std::vector<std::string>{name});
    BOOST_TEST((test::read_file(folder / name) == content), "the file differs from the source's");
    BOOST_TEST_MESSAGE("source " << killed << " killed at " << killed_at << " bytes; received "
                                 << r.received << " for " << content.size());
}

// Four sources capped at 8 MiB/s each; a quarter of the way through, the one that sent the
// latest bytes is frozen (SIGSTOP). The others finish the file long before the stall deadline
// (the frozen source's piece is fetched again elsewhere at the end), and its connection is
// dropped.
BOOST_AUTO_TEST_CASE(a_source_frozen_mid_download_is_overtaken_and_its_connection_dropped) {
    test::process_network net;
    const std::string name = "big.bin";
    const auto content = test::big_content(32 * MiB, 6);
    for (std::uint32_t id = 1; id <= 4; ++id) {
        test::write_file(net / ("p" + std::to_string(id)) / name, content);
        net.serve(id, {"--max-upload-rate", "8MiB"});
    }
    const auto sources = test::lookup_sources(net.index_port(), name);
    BOOST_TEST_REQUIRE(sources.size() == 4u);
    std::map<std::string, std::uint32_t> by_address;
    for (std::uint32_t id = 1; id <= 4; ++id)
        by_address["127.0.0.1:" + std::to_string(net.port_of(id))] = id;
    std::atomic<std::uint32_t> frozen{0};
    TransferOptions options;
    options.sources = 4;
    options.stall_timeout = 20s;
    options.on_progress = [&](const TransferProgress& p) {
        if (frozen != 0 || p.done < content.size() / 4) return;
        const auto it = by_address.find(p.source);
        if (it == by_address.end()) return;
        ::kill(net.peer(it->second).pid(), SIGSTOP);
        frozen = it->second;
    };
    test::temp_dir folder;
    test::io_thread io;
    FileTransfer transfer(io.executor(), folder.path(), options);
    const auto r = io.run(transfer.async_download(name, sources), 60s);
    BOOST_TEST_REQUIRE(frozen != 0u);
    const auto frozen_port = net.port_of(frozen);
    BOOST_TEST_REQUIRE(!r.error, r.message);
    BOOST_TEST((test::read_file(folder / name) == content), "the file differs from the source's");
    // Well before the stall deadline: the end-game took the frozen source's piece.
    BOOST_TEST(r.elapsed < std::chrono::microseconds(options.stall_timeout) / 2,
               "took " << r.elapsed.count() << " us");
    // At most its piece in flight was fetched twice.
    BOOST_TEST(r.received <= content.size() + 2 * MiB);
    // No connection to the frozen source is left established (the downloader dropped its own).
    const auto established = [&] {
        std::ifstream tcp("/proc/net/tcp");
        std::string line;
        std::getline(tcp, line);
        std::size_t n = 0;
        char port_hex[8];
        std::snprintf(port_hex, sizeof port_hex, "%04X", frozen_port);
        while (std::getline(tcp, line)) {
            std::istringstream in(line);
            std::string slot, local, remote, state;
            in >> slot >> local >> remote >> state;
            const bool ours = remote.ends_with(std::string(":") + port_hex);
            if (ours && state == "01") ++n;
        }
        return n;
    };
    BOOST_TEST(established() == 0u);
    BOOST_TEST_MESSAGE("source " << frozen << " frozen; the file took " << r.elapsed.count() / 1000
                                 << " ms, " << r.received << " bytes received for "
                                 << content.size());
    ::kill(net.peer(frozen).pid(), SIGCONT);
}

// Three of four sources frozen (SIGSTOP) before the download starts: the piece hashes come from
// the one that answers (a source that has not answered within a moment has the next one asked
// too, whatever the order the downloader picked), and the end-game takes the frozen sources'
// pieces from it: the file completes well before the stall deadline.
BOOST_AUTO_TEST_CASE(frozen_sources_do_not_hold_up_the_piece_hashes) {
    test::process_network net;
    const std::string name = "several.bin";
    const auto content = test::big_content(6 * MiB, 7);
    for (std::uint32_t id = 1; id <= 4; ++id) {
        test::write_file(net / ("p" + std::to_string(id)) / name, content);
        net.serve(id);
    }
    const auto sources = test::lookup_sources(net.index_port(), name);
    BOOST_TEST_REQUIRE(sources.size() == 4u);
    for (std::uint32_t id = 2; id <= 4; ++id)
        BOOST_TEST_REQUIRE(::kill(net.peer(id).pid(), SIGSTOP) == 0);
    TransferOptions options;
    options.sources = 4;
    options.stall_timeout = 20s;
    test::temp_dir folder;
    test::io_thread io;
    FileTransfer transfer(io.executor(), folder.path(), options);
    const auto r = io.run(transfer.async_download(name, sources), 90s);
    for (std::uint32_t id = 2; id <= 4; ++id)
        ::kill(net.peer(id).pid(), SIGCONT);
    BOOST_TEST_REQUIRE(!r.error, r.message);
    BOOST_TEST((test::read_file(folder / name) == content), "the file differs from the source's");
    BOOST_TEST(r.elapsed < std::chrono::microseconds(options.stall_timeout) / 2,
               "took " << r.elapsed.count() << " us");
    BOOST_TEST_MESSAGE("the file took " << r.elapsed.count() / 1000 << " ms, with "
                                        << r.end_game_copies << " end-game copies");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fault_index)

BOOST_AUTO_TEST_CASE(a_killed_index_restarted_on_its_port_gets_every_live_peer_back) {
    constexpr auto ttl = 1500ms;
    constexpr auto renewal = ttl / 3; // peers renew at ttl / 3 (docs/protocol.md, leases)
    test::process_network net({"--lease-ttl", "1500ms"});
    test::write_file(net / "p1" / "a.txt", test::random_text(1000, 1));
    test::write_file(net / "p2" / "b.txt", test::random_text(2000, 2));
    test::write_file(net / "p3" / "a.txt", test::random_text(1000, 1));
    test::write_file(net / "p3" / "c.txt", test::random_text(3000, 3));
    for (std::uint32_t id : {1u, 2u, 3u})
        net.serve(id);
    const std::vector<std::string> names{"a.txt", "b.txt", "c.txt", "missing.txt"};
    BOOST_TEST_REQUIRE(test::health_peers(net.index_port()) == 3);
    const auto before = test::lookup_text(net.index_port(), names);
    const auto listed = test::index_names(net.index_port());
    BOOST_TEST_REQUIRE(listed == (std::vector<std::string>{"a.txt", "b.txt", "c.txt"}));

    net.kill_index();
    BOOST_CHECK_THROW(test::http_call(net.index_port(), "GET", "/v1/health"), std::exception);
    net.restart_index();
    const auto t0 = clock_type::now();
    const bool back = test::eventually([&] { return test::health_peers(net.index_port()) == 3; });
    const auto took = since(t0);
    BOOST_TEST(back);
    BOOST_TEST(took <= 2 * renewal, "the peers took " << took.count() << " ms");
    BOOST_TEST_MESSAGE("every peer registered again " << took.count() << " ms after the restart");

    // Lookups and the list answer as before, and a download through the new index works.
    BOOST_TEST(test::eventually([&] {
        return test::lookup_text(net.index_port(), names) == before &&
               test::index_names(net.index_port()) == listed;
    }));
    BOOST_TEST(test::lookup_text(net.index_port(), names) == before);
    const auto get = net.run_peer(4, {"get", "c.txt", "--json"});
    BOOST_TEST(get->wait() == 0, get->output() << get->error_output());
    BOOST_TEST(test::read_file(net / "p4" / "c.txt") == test::random_text(3000, 3));
}

BOOST_AUTO_TEST_CASE(a_peer_killed_without_unregistering_disappears_within_its_lease) {
    constexpr auto ttl = 1000ms;
    test::process_network net({"--lease-ttl", "1s"});
    test::write_file(net / "p1" / "kept.txt", test::random_text(1000, 1));
    test::write_file(net / "p2" / "kept.txt", test::random_text(1000, 1));
    test::write_file(net / "p2" / "gone.txt", test::random_text(1000, 2));
    net.serve(1);
    net.serve(2);
    const auto port = net.index_port();
    BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(port, "kept.txt")) ==
                       (std::set<std::uint32_t>{1, 2}));
    BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(port, "gone.txt")) ==
                       (std::set<std::uint32_t>{2}));

    BOOST_TEST(net.kill_peer(2) == 128 + SIGKILL);
    const auto t0 = clock_type::now();
    const bool gone = test::eventually(
        [&] {
            return test::lookup_sources(port, "gone.txt").empty() &&
                   ids_of(test::lookup_sources(port, "kept.txt")) == std::set<std::uint32_t>{1} &&
                   test::index_names(port) == std::vector<std::string>{"kept.txt"} &&
                   test::health_peers(port) == 1;
        },
        3s);
    const auto took = since(t0);
    BOOST_TEST(gone);
    // Its last renewal was at most ttl/3 before the kill: gone within one lease time (plus the
    // time of a round of polling).
    BOOST_TEST(took <= ttl + 250ms, "gone after " << took.count() << " ms");
    BOOST_TEST_MESSAGE("the killed peer disappeared " << took.count() << " ms after SIGKILL");
    // The live peer stays listed, lease after lease.
    BOOST_TEST(test::holds_for(
        [&] {
            return ids_of(test::lookup_sources(port, "kept.txt")) == std::set<std::uint32_t>{1};
        },
        1200ms));
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// Index servers A and B on one store, three peers that know both (`--index A,B`), so that
/// they register through A. A is killed: each peer moves to B at its next renewal, keeping its
/// lease and its token, and through B every peer is listed at every moment, lease after lease.
void the_peers_of_a_killed_index_move_to_the_other(const std::string& seeds) {
    constexpr auto ttl = 1500ms;
    test::process_network net({"--lease-ttl", "1500ms", "--store", seeds});
    const auto b = net.add_index();
    const auto a_port = net.index_port(0);
    const auto b_port = net.index_port(b);
    test::write_file(net / "p1" / "a.txt", test::random_text(1000, 1));
    test::write_file(net / "p2" / "b.txt", test::random_text(2000, 2));
    test::write_file(net / "p3" / "a.txt", test::random_text(1000, 1));
    test::write_file(net / "p3" / "c.txt", test::random_text(3000, 3));
    const std::vector<std::uint32_t> peers{1, 2, 3};
    for (const auto id : peers)
        net.serve(id, {"--index", net.index_addresses()});
    const auto config_of = [&](std::uint32_t id) {
        return read_peer_config(net / ("p" + std::to_string(id) + ".config"));
    };
    std::map<std::uint32_t, std::string> tokens;
    for (const auto id : peers) {
        const auto config = config_of(id);
        BOOST_TEST_REQUIRE(config.has_value(), config.error().message);
        BOOST_TEST_REQUIRE(config->index.port == a_port, "peer " << id);
        tokens[id] = config->token;
    }
    // One network: B lists every peer that registered through A, as A does.
    BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(b_port, "a.txt")) ==
                       (std::set<std::uint32_t>{1, 3}));
    BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(b_port, "b.txt")) == std::set<std::uint32_t>{2});
    BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(b_port, "c.txt")) == std::set<std::uint32_t>{3});
    BOOST_TEST_REQUIRE(test::health_peers(b_port) == 3);
    const std::vector<std::string> names{"a.txt", "b.txt", "c.txt", "missing.txt"};
    const auto before = test::lookup_text(b_port, names);
    BOOST_TEST_REQUIRE(test::lookup_text(a_port, names) == before);
    const auto listed = test::index_names(b_port);
    BOOST_TEST_REQUIRE(listed == (std::vector<std::string>{"a.txt", "b.txt", "c.txt"}));

    net.kill_index(0);
    const auto t0 = clock_type::now();
    BOOST_CHECK_THROW(test::http_call(a_port, "GET", "/v1/health"), std::exception);
    // Over several leases, every check through B sees every peer's files, in lookups and in the
    // listing, and three live peers; meanwhile each peer's pN.config comes to name B.
    std::set<std::uint32_t> moved;
    std::optional<std::chrono::milliseconds> all_moved;
    std::string seen; // what B answered at the last check
    const bool none_lost = test::holds_for(
        [&] {
            for (const auto id : peers) {
                const auto config = config_of(id);
                if (config && config->index.port == b_port) moved.insert(id);
            }
            if (moved.size() == peers.size() && !all_moved) all_moved = since(t0);
            const auto lookups = test::lookup_text(b_port, names);
            const auto live = test::health_peers(b_port);
            const auto listing = test::index_names(b_port);
            seen = lookups + "health: " + std::to_string(live) + " peers; listed:";
            for (const auto& name : listing)
                seen += " " + name;
            return lookups == before && live == 3 && listing == listed;
        },
        4 * ttl);
    BOOST_TEST(none_lost, "through B " << since(t0).count() << " ms after A was killed:\n" << seen);
    // A peer renews a third of a lease after the last time; A refuses the connection at once,
    // so the peer is at B then, well within its lease.
    BOOST_TEST_REQUIRE(all_moved.has_value(), moved.size() << " of 3 peers name B");
    BOOST_TEST((*all_moved <= ttl),
               "every pN.config named B after " << all_moved->count() << " ms");
    BOOST_TEST_MESSAGE("every peer's pN.config named B "
                       << all_moved->count() << " ms after A was killed (lease " << ttl.count()
                       << " ms)");
    // The peers kept their leases and tokens, and serve on.
    for (const auto id : peers) {
        const auto config = config_of(id);
        BOOST_TEST_REQUIRE(config.has_value(), config.error().message);
        BOOST_TEST(config->token == tokens[id], "peer " << id);
        BOOST_TEST(!net.peer(id).try_wait().has_value(), "peer " << id << " exited");
    }

    // A download through B alone works.
    const auto get = net.run_peer(4, {"get", "c.txt", "--json", "--index", net.index_address(b)});
    BOOST_TEST(get->wait() == 0, get->output() << get->error_output());
    BOOST_TEST(test::read_file(net / "p4" / "c.txt") == test::random_text(3000, 3));
}

/// Index servers A and B on one store; peer 1 registers through A, peer 2 through B. Peer 2 is
/// killed without unregistering: Redis ends its lease (PEXPIRE), after which lookups through
/// either server do not return it nor health count it; the sweeper of either server (every
/// tenth of a lease) then takes its files out of the listing. Peer 1 stays listed on both.
void a_killed_peer_leaves_both_index_servers(const std::string& seeds) {
    constexpr auto ttl = 1000ms;
    test::process_network net({"--lease-ttl", "1s", "--store", seeds});
    net.add_index();
    const std::vector<std::uint16_t> ports{net.index_port(0), net.index_port(1)};
    const auto on_both = [&](const std::function<bool(std::uint16_t)>& check) {
        return std::all_of(ports.begin(), ports.end(), check);
    };
    test::write_file(net / "p1" / "kept.txt", test::random_text(1000, 1));
    test::write_file(net / "p2" / "kept.txt", test::random_text(1000, 1));
    test::write_file(net / "p2" / "gone.txt", test::random_text(1000, 2));
    net.serve(1, {"--index", net.index_address(0)});
    net.serve(2, {"--index", net.index_address(1)});
    for (const auto port : ports) {
        BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(port, "kept.txt")) ==
                           (std::set<std::uint32_t>{1, 2}));
        BOOST_TEST_REQUIRE(ids_of(test::lookup_sources(port, "gone.txt")) ==
                           std::set<std::uint32_t>{2});
        BOOST_TEST_REQUIRE(test::index_names(port) ==
                           (std::vector<std::string>{"gone.txt", "kept.txt"}));
        BOOST_TEST_REQUIRE(test::health_peers(port) == 2);
    }

    BOOST_TEST(net.kill_peer(2) == 128 + SIGKILL);
    const auto t0 = clock_type::now();
    const auto not_in_lookups = [](std::uint16_t port) {
        return test::lookup_sources(port, "gone.txt").empty() &&
               ids_of(test::lookup_sources(port, "kept.txt")) == std::set<std::uint32_t>{1};
    };
    const auto one_live_peer = [](std::uint16_t port) { return test::health_peers(port) == 1; };
    const auto not_listed = [](std::uint16_t port) {
        return test::index_names(port) == std::vector<std::string>{"kept.txt"};
    };
    // When each condition first held on both servers.
    std::optional<std::chrono::milliseconds> lookups_at, health_at, listing_at;
    const auto note = [&](std::optional<std::chrono::milliseconds>& at, bool holds) {
        if (holds && !at) at = since(t0);
    };
    const bool gone = test::eventually(
        [&] {
            note(lookups_at, on_both(not_in_lookups));
            note(health_at, on_both(one_live_peer));
            note(listing_at, on_both(not_listed));
            return lookups_at && health_at && listing_at;
        },
        5 * ttl);
    BOOST_TEST_REQUIRE(gone, "after " << since(t0).count() << " ms: lookups "
                                      << lookups_at.has_value() << ", health "
                                      << health_at.has_value() << ", listing "
                                      << listing_at.has_value());
    // Its last renewal was at most a third of a lease before the kill: its lease ended between
    // two thirds of a lease and a lease after it (plus the time of a round of polling). The
    // live peers that health counts are the leases not ended by Redis's clock, as in lookups.
    BOOST_TEST((*lookups_at >= ttl / 2),
               "gone from lookups after " << lookups_at->count() << " ms");
    BOOST_TEST((*lookups_at <= ttl + 250ms),
               "gone from lookups after " << lookups_at->count() << " ms");
    BOOST_TEST((*health_at >= ttl / 2), "health after " << health_at->count() << " ms");
    BOOST_TEST((*health_at <= ttl + 250ms), "health after " << health_at->count() << " ms");
    // The listing follows by the sweeper, which runs every tenth of a lease on each server.
    BOOST_TEST((*listing_at <= ttl + ttl / 10 + 250ms),
               "listing after " << listing_at->count() << " ms");
    BOOST_TEST_MESSAGE("the killed peer left the lookups of both index servers "
                       << lookups_at->count() << " ms after SIGKILL, their health "
                       << health_at->count() << " ms, their listings " << listing_at->count()
                       << " ms (lease " << ttl.count() << " ms)");
    // The live peer stays listed on both, lease after lease.
    BOOST_TEST(test::holds_for(
        [&] { return on_both(not_in_lookups) && on_both(one_live_peer) && on_both(not_listed); },
        ttl + ttl / 2));
}

} // namespace

BOOST_AUTO_TEST_SUITE(fault_index_redis)

BOOST_AUTO_TEST_CASE(the_peers_of_a_killed_index_move_to_the_other_and_none_is_lost) {
    test::redis_server redis;
    the_peers_of_a_killed_index_move_to_the_other(redis.seeds());
}

BOOST_FIXTURE_TEST_CASE(the_peers_of_a_killed_index_on_a_cluster_move_and_none_is_lost,
                        test::shared_redis_cluster) {
    the_peers_of_a_killed_index_move_to_the_other(cluster.seeds());
}

BOOST_AUTO_TEST_CASE(a_killed_peer_leaves_both_index_servers_within_its_lease) {
    test::redis_server redis;
    a_killed_peer_leaves_both_index_servers(redis.seeds());
}

BOOST_FIXTURE_TEST_CASE(a_killed_peer_leaves_both_index_servers_on_a_cluster_within_its_lease,
                        test::shared_redis_cluster) {
    a_killed_peer_leaves_both_index_servers(cluster.seeds());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fault_downloader)

BOOST_AUTO_TEST_CASE(a_downloader_killed_mid_download_resumes_and_never_shows_a_wrong_file) {
    test::process_network net;
    const std::string name = "big.bin";
    const auto content = test::big_content(32 * MiB, 4);
    const std::size_t sent = 8 * MiB;
    const auto part = net / "p1" / (name + ".part");
    const auto final_file = net / "p1" / name;

    // First the only source sends 8 pieces and then nothing: the download is in progress.
    const auto record = net / "p1" / (name + ".part.pieces");
    gated_source gate(content, sent);
    const auto reg = test::http_call(
        net.index_port(), "POST", "/v1/peers",
        R"({"id":2,"host":"127.0.0.1","port":)" + std::to_string(gate.port()) +
            R"(,"files":[{"name":")" + name + R"(","size":)" + std::to_string(content.size()) +
            R"(,"sha256":")" + test::sha256_hex(content) + R"(","root":")" +
            test::piece_root_hex(content) + R"("}]})");
    BOOST_TEST_REQUIRE(reg.status == 201u, reg.body);
    const auto token = std::string(json::parse(reg.body).at("token").as_string());

    test::child get(test::app_path("peer"),
                    {"--id", "1", "get", name, "--json", "--index", net.index_address()},
                    net.root());
    get.close_stdin();
    // Killed once the record names the 8 pieces (written after their bytes are on disk).
    BOOST_TEST_REQUIRE(
        test::eventually([&] { return recorded_pieces(record, content) == sent / MiB; }, 20s),
        "the record names " << recorded_pieces(record, content) << " pieces");
    BOOST_TEST(!fs::exists(final_file));
    get.signal(SIGKILL);
    BOOST_TEST(get.wait() == 128 + SIGKILL);
    BOOST_TEST(!fs::exists(final_file));
    BOOST_TEST(size_or_zero(part) == content.size()); // preallocated
    BOOST_TEST((test::read_file(part).substr(0, sent) == content.substr(0, sent)));

    // The gated source leaves; a real peer shares the file.
    const auto bye = test::http_call(net.index_port(), "DELETE", "/v1/peers/2", "",
                                     {{"Authorization", "Bearer " + token}});
    BOOST_TEST_REQUIRE(bye.status == 200u, bye.body);
    test::write_file(net / "p2" / name, content);
    net.serve(2);

    // Started again, the downloader keeps the verified pieces and fetches only the rest.
    const auto again = net.run_peer(1, {"get", name, "--json"});
    BOOST_TEST_REQUIRE(again->wait() == 0, again->output() << again->error_output());
    const auto r = get_result(*again);
    BOOST_TEST(text(r, "status") == "downloaded");
    BOOST_TEST(number(r, "resumed_from") == sent);
    BOOST_TEST(number(r, "received") == content.size() - sent);
    BOOST_TEST(number(r, "source_peer") == 2u);
    BOOST_TEST(!fs::exists(part));
    BOOST_TEST(!fs::exists(record));
    BOOST_TEST((test::read_file(final_file) == content), "the file differs from the source's");
}

BOOST_AUTO_TEST_CASE(a_full_disk_fails_the_download_with_a_clear_message_and_no_file) {
    test::process_network net;
    const std::string name = "big.bin";
    const auto content = test::big_content(8 * MiB, 5);
    const std::size_t limit = 2 * MiB;
    test::write_file(net / "p2" / name, content);
    net.serve(2);
    const auto part = net / "p1" / (name + ".part");
    const auto final_file = net / "p1" / name;

    // A file size limit: writing past it fails with EFBIG (the peer ignores SIGXFSZ).
    test::child get("/usr/bin/prlimit",
                    {"--fsize=" + std::to_string(limit), "--", test::app_path("peer").string(),
                     "--id", "1", "get", name, "--json", "--index", net.index_address()},
                    net.root());
    get.close_stdin();
    const int status = get.wait(60s);
    BOOST_TEST(status == 1, "exit status " << status << "; " << get.error_output());
    const auto r = get_result(get);
    BOOST_TEST(text(r, "status") == "failed");
    // The room for the whole file is asked for first: it fails before any byte is fetched.
    BOOST_TEST(text(r, "message").find("cannot make room for big.bin") != std::string::npos,
               text(r, "message"));
    BOOST_TEST(text(r, "message").find("File too large") != std::string::npos, text(r, "message"));
    BOOST_TEST(!fs::exists(final_file));
    BOOST_TEST(size_or_zero(part) <= limit);
    BOOST_TEST_MESSAGE("full disk: " << text(r, "message"));

    // The serving peer is not disturbed, and once there is room the download resumes.
    BOOST_TEST(ids_of(test::lookup_sources(net.index_port(), name)) == std::set<std::uint32_t>{2});
    const auto again = net.run_peer(1, {"get", name, "--json"});
    BOOST_TEST_REQUIRE(again->wait() == 0, again->output() << again->error_output());
    const auto done = get_result(*again);
    BOOST_TEST(text(done, "status") == "downloaded");
    BOOST_TEST(number(done, "resumed_from") == 0u);
    BOOST_TEST((test::read_file(final_file) == content), "the file differs from the source's");
}

BOOST_AUTO_TEST_SUITE_END()
