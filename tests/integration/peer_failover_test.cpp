// Peers that know several index servers: when the one they use stops, they move to the next of
// their list by themselves, within the lease; lookups and listings caught in the move are asked
// again there. In suite peer_failover the index servers keep their state in memory each (they do
// not share leases), so the peer registers again at the next one; in peer_failover_redis they
// share one Redis, and the peer keeps its lease and its token (peer_index_faults checks, with
// scripted index servers, that it renews there and does not register).
#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"
#include "redis_fixture.hpp"

#include <chrono>
#include <memory>
#include <set>

using namespace p2pshare;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

IndexServerOptions with_ttl(std::chrono::milliseconds lease_ttl) {
    IndexServerOptions options;
    options.lease_ttl = lease_ttl;
    return options;
}

/// A second index server on the network's io_context (no server.config written).
struct other_index {
    test::network& net;
    std::unique_ptr<IndexServer> server;

    other_index(test::network& n, std::chrono::milliseconds lease_ttl)
        : other_index(n, with_ttl(lease_ttl)) {}
    other_index(test::network& n, IndexServerOptions options) : net(n) {
        options.config_dir.clear();
        server = std::make_unique<IndexServer>(net.io().executor(), options);
        const auto ec = server->start();
        if (ec) throw std::runtime_error("the second index server did not start: " + ec.message);
    }
    ~other_index() {
        try {
            net.io().run(server->async_stop());
        } catch (const std::exception& x) {
            BOOST_TEST_MESSAGE("teardown: " << x.what());
        }
    }
    other_index(const other_index&) = delete;
    other_index& operator=(const other_index&) = delete;

    ServerAddress address() const { return {"127.0.0.1", server->port()}; }
    std::size_t peers() { return net.io().run(server->async_stats()).peers; }
};

/// A port of 127.0.0.1 on which nothing listens (it was free a moment ago).
std::uint16_t closed_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(
        io, {boost::asio::ip::make_address("127.0.0.1"), std::uint16_t{0}});
    return acceptor.local_endpoint().port();
}

ServerAddress address_of(test::network& net) { return {"127.0.0.1", net.index_port()}; }

std::size_t peers_of(test::network& net) { return net.io().run(net.index().async_stats()).peers; }

} // namespace

BOOST_AUTO_TEST_SUITE(peer_failover)

BOOST_AUTO_TEST_CASE(a_peer_whose_index_stops_is_listed_at_the_next_within_its_lease) {
    constexpr auto ttl = 1s;
    test::network net(with_ttl(ttl));
    other_index b(net, ttl);
    const auto a = address_of(net);
    const auto content = test::random_text(20'000, 41);
    test::write_file(net / "p1" / "moved.txt", content);
    auto options = net.options(1);
    options.index = {a, b.address()};
    auto& p1 = net.start_peer(options);
    auto o2 = net.options(2);
    o2.index = {a, b.address()};
    auto& p2 = net.start_peer(o2);
    // Both use the first of their list.
    BOOST_TEST(peers_of(net) == 2u);
    BOOST_TEST(b.peers() == 0u);
    BOOST_TEST(test::index_sources(a.port, "moved.txt") == std::set<std::uint32_t>{1});
    BOOST_TEST(test::read_file(net / "p1.config").find("index_port=" + std::to_string(a.port)) !=
               std::string::npos);

    // The first index server goes away (its port refuses connections from now on).
    const auto stopped = clock_type::now();
    net.stop_index();
    BOOST_TEST_REQUIRE(test::eventually(
        [&] { return test::index_sources(b.address().port, "moved.txt").size() == 1; }));
    const auto took = clock_type::now() - stopped;
    BOOST_TEST_MESSAGE("listed at the next index after "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms (lease " << ttl.count() << " s)");
    // Its lease at A had not ended yet: the peer was never unlisted for longer than a lease.
    BOOST_TEST(took < ttl);
    BOOST_TEST(test::eventually([&] { return b.peers() == 2u; }));
    BOOST_TEST(p1.registered());
    BOOST_TEST(p2.registered());
    // pN.config names the index server in use.
    BOOST_TEST(
        test::read_file(net / "p1.config").find("index_port=" + std::to_string(b.address().port)) !=
        std::string::npos);

    // Everything goes through the new index: listings, lookups and downloads.
    const auto names = net.io().run(p2.async_list_network_files());
    BOOST_TEST_REQUIRE(names.has_value(), names.error().message);
    BOOST_TEST(*names == std::vector<std::string>{"moved.txt"}, boost::test_tools::per_element());
    const auto outcomes = net.io().run(p2.async_download({"moved.txt"}));
    BOOST_TEST_REQUIRE(outcomes.size() == 1u);
    BOOST_TEST(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(test::read_file(net / "p2" / "moved.txt") == content);
    BOOST_TEST(test::eventually([&] {
        return test::index_sources(b.address().port, "moved.txt") == std::set<std::uint32_t>{1, 2};
    }));
    // And the leases there are renewed.
    BOOST_TEST(test::holds_for([&] { return b.peers() == 2u; }, 3 * ttl));

    // Quitting unregisters at the index in use.
    net.quit(p1);
    net.quit(p2);
    BOOST_TEST(b.peers() == 0u);
}

BOOST_AUTO_TEST_CASE(a_lookup_and_a_listing_caught_in_a_failover_are_asked_at_the_next_index) {
    // A long lease: the lease loops stay idle, so that the user's own calls meet the index
    // that stopped.
    test::network net;
    other_index b(net, 30s);
    const auto a = address_of(net);
    const auto content = test::random_text(5'000, 42);
    test::write_file(net / "p1" / "only-at-b.txt", content);
    auto o1 = net.options(1);
    o1.index = {b.address()};
    net.start_peer(o1);
    auto o2 = net.options(2);
    o2.index = {a, b.address()};
    auto& p2 = net.start_peer(o2);
    auto o3 = net.options(3);
    o3.index = {a, b.address()};
    auto& p3 = net.start_peer(o3);
    BOOST_TEST(peers_of(net) == 2u);
    net.stop_index();

    // The download does not fail: its lookup is asked again at B, which knows peer 1.
    const auto outcomes = net.io().run(p2.async_download({"only-at-b.txt"}));
    BOOST_TEST_REQUIRE(outcomes.size() == 1u);
    BOOST_TEST(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(test::read_file(net / "p2" / "only-at-b.txt") == content);
    // The listing likewise.
    const auto names = net.io().run(p3.async_list_network_files());
    BOOST_TEST_REQUIRE(names.has_value(), names.error().message);
    BOOST_TEST(*names == std::vector<std::string>{"only-at-b.txt"},
               boost::test_tools::per_element());
    // The leases follow: the file list that the download sent went to B, which did not know
    // peer 2, so that it registered there.
    BOOST_TEST(test::eventually([&] { return b.peers() == 2u; }));
    BOOST_TEST(test::eventually([&] {
        return test::index_sources(b.address().port, "only-at-b.txt") ==
               std::set<std::uint32_t>{1, 2};
    }));
    BOOST_TEST(
        test::read_file(net / "p3.config").find("index_port=" + std::to_string(b.address().port)) !=
        std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_first_registration_moves_past_an_index_that_is_down) {
    test::network net;
    auto options = net.options(1);
    const ServerAddress down{"127.0.0.1", closed_port()};
    options.index = {down, address_of(net)};
    // Registered when the start completes: the next index was tried at once, not after a
    // backoff in the background.
    auto& p1 = net.start_peer(options);
    BOOST_TEST(p1.registered());
    BOOST_TEST(peers_of(net) == 1u);
    BOOST_TEST(
        test::read_file(net / "p1.config").find("index_port=" + std::to_string(net.index_port())) !=
        std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_address_listed_twice_and_a_server_config_with_several) {
    test::network net;
    // The index servers come from a server.config listing two, the first one down.
    const ServerAddress down{"127.0.0.1", closed_port()};
    const std::vector<ServerAddress> listed{down, down, address_of(net)};
    test::write_file(net / "several.config", format_server_config(listed));
    auto options = net.options(1);
    options.index.clear();
    options.server_config = net / "several.config";
    auto& p1 = net.start_peer(options);
    BOOST_TEST(p1.registered());
    BOOST_TEST(peers_of(net) == 1u);
}

BOOST_AUTO_TEST_CASE(when_every_index_is_down_the_peer_keeps_trying_them_in_turn) {
    test::network net;
    const auto port = net.index_port();
    net.stop_index();
    auto options = net.options(1);
    options.index = {{"127.0.0.1", closed_port()}, {"127.0.0.1", port}};
    PeerNode node(net.io().executor(), options);
    const auto started = net.io().run(node.async_start());
    BOOST_TEST((started == errc::unreachable), started.message);
    BOOST_TEST(!node.registered());
    // The second one comes back (on its port): the peer finds it by itself.
    IndexServerOptions again;
    again.port = port;
    net.restart_index(again);
    BOOST_TEST(test::eventually([&] { return node.registered(); }));
    BOOST_TEST(peers_of(net) == 1u);
    net.io().run(node.async_quit());
    BOOST_TEST(peers_of(net) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(peer_failover_redis)

BOOST_AUTO_TEST_CASE(a_peer_keeps_its_lease_and_token_when_its_index_on_redis_stops) {
    test::redis_server redis;
    constexpr auto ttl = 1500ms;
    auto on_redis = with_ttl(ttl);
    on_redis.store = redis.seeds();
    test::network net(on_redis);
    other_index b(net, on_redis);
    const auto a = address_of(net);
    test::write_file(net / "p1" / "kept.txt", test::random_text(3'000, 43));
    auto options = net.options(1);
    options.index = {a, b.address()};
    auto& p1 = net.start_peer(options);
    const auto before = read_peer_config(net / "p1.config");
    BOOST_TEST_REQUIRE(before.has_value(), before.error().message);
    BOOST_TEST(before->index.port == a.port);
    // One network: B knows the peer that registered through A.
    const auto listed_at_b = [&] {
        return test::index_sources(b.address().port, "kept.txt") == std::set<std::uint32_t>{1};
    };
    BOOST_TEST_REQUIRE(listed_at_b());

    net.stop_index();
    // The lease lives in Redis, renewed through B from now on: the peer is never unlisted, over
    // several leases, and keeps its token.
    BOOST_TEST(test::holds_for(listed_at_b, 3 * ttl));
    BOOST_TEST(p1.registered());
    const auto after = read_peer_config(net / "p1.config");
    BOOST_TEST_REQUIRE(after.has_value(), after.error().message);
    BOOST_TEST(after->index.port == b.address().port);
    BOOST_TEST(after->token == before->token);
    BOOST_TEST(b.peers() == 1u);
    net.quit(p1);
    BOOST_TEST(b.peers() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
