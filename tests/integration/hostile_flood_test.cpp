// Floods against the index: thousands of idle connections, registrations up to the peer limit,
// a lookup of 100,000 names. Each is bounded by a documented limit and the server stays up.
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include "fault_support.hpp"
#include "index_fixture.hpp"

#include <poll.h>

#include <memory>

using namespace p2pshare;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using p2pshare::test::since;

/// {"names":["<prefix>0","<prefix>1",...]} with `n` names.
std::string lookup_body(std::size_t n, const std::string& prefix) {
    std::string body = R"({"names":[)";
    for (std::size_t i = 0; i < n; ++i) {
        if (i > 0) body += ',';
        body += '"' + prefix + std::to_string(i) + '"';
    }
    return body + "]}";
}

} // namespace

BOOST_AUTO_TEST_SUITE(hostile_flood)

BOOST_AUTO_TEST_CASE(idle_connections_beyond_the_limit_get_a_quick_503) {
    // 2,000 idle clients against a limit of 1,000: this process holds the 2,000 client ends and
    // the index's 1,000 server ends, so it needs more than 3,000 descriptors.
    std::size_t clients = 2000;
    std::size_t limit = 1000;
    const auto fds = test::raise_fd_limit();
    if (fds < 3 * clients / 2 + limit + 256) {
        limit = (fds - 256) / 5;
        clients = 2 * limit;
        BOOST_TEST_MESSAGE("RLIMIT_NOFILE is " << fds << ": scaled down to " << clients
                                               << " connections against a limit of " << limit);
    }
    BOOST_TEST_REQUIRE(limit >= 10u);
    auto options = test::running_index::defaults();
    options.limits.max_connections = limit;
    options.limits.idle_timeout = 60s; // the accepted ones stay for as long as the test wants
    test::running_index index(options);

    std::vector<std::unique_ptr<test::raw_socket>> sockets;
    sockets.reserve(clients);
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < clients; ++i)
        sockets.push_back(std::make_unique<test::raw_socket>(index.port()));
    const auto connected = since(t0);

    // The overflow is refused with 503 and closed; the others hear nothing.
    std::size_t refused = 0;
    std::size_t well_formed = 0;
    const auto deadline = clock_type::now() + 30s;
    std::vector<pollfd> polls;
    while (refused < clients - limit && clock_type::now() < deadline) {
        polls.clear();
        for (const auto& s : sockets) {
            if (!s->closed()) polls.push_back({s->fd(), POLLIN, 0});
        }
        if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
        for (auto& s : sockets) {
            if (s->closed()) continue;
            pollfd p{s->fd(), POLLIN, 0};
            if (::poll(&p, 1, 0) != 1) continue;
            if (!s->wait_closed(5s)) continue;
            ++refused;
            const auto reply = test::parse_reply(s->received());
            if (reply.status == 503u &&
                reply.body.find(R"("too_many_connections")") != std::string::npos) {
                ++well_formed;
            }
        }
    }
    const auto all_refused = since(t0);
    BOOST_TEST(refused == clients - limit);
    BOOST_TEST(well_formed == refused);
    BOOST_TEST(all_refused <= connected + 5s, "the refusals took " << all_refused.count() << " ms");
    BOOST_TEST_MESSAGE(clients << " connections in " << connected.count() << " ms; " << refused
                               << " refused with 503 within " << all_refused.count() << " ms");
    // The accepted connections are held open, quietly: nothing arrived on any of them.
    std::size_t quiet = 0;
    for (const auto& s : sockets) {
        if (s->closed()) continue;
        pollfd p{s->fd(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 0) ++quiet;
    }
    BOOST_TEST(quiet == limit);
    // At the limit a newcomer is refused too...
    const auto newcomer = test::parse_reply(
        test::raw_call(index.port(), "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"));
    test::check_error(newcomer, 503, "too_many_connections");

    // ...and once the flood goes away, normal requests work again.
    sockets.clear();
    unsigned status = 0;
    BOOST_TEST(test::eventually([&] {
        status = test::http_call(index.port(), "GET", "/v1/health").status;
        return status == 200u;
    }));
    BOOST_TEST(status == 200u);
    test::check_alive(index.port());
}

BOOST_AUTO_TEST_CASE(registrations_from_one_client_stop_at_max_peers) {
    auto options = test::running_index::defaults();
    options.index.max_peers = 50;
    test::running_index index(options);
    test::http_client client(index.port());
    std::vector<std::string> tokens;
    for (std::uint32_t id = 1; id <= 50; ++id) {
        const auto reply = client.call("POST", "/v1/peers",
                                       R"({"id":)" + std::to_string(id) + R"(,"port":)" +
                                           std::to_string(5000 + id) + R"(,"files":)" +
                                           test::files_json({"f" + std::to_string(id)}) + "}");
        BOOST_TEST_REQUIRE(reply.status == 201u, reply.body);
        tokens.emplace_back(test::json_of(reply).at("token").as_string());
    }
    const auto before = test::snapshot(index.port(), {"f1", "f50", "f51"});
    const auto full = client.call(
        "POST", "/v1/peers", R"({"id":51,"port":6000,"files":)" + test::files_json({"f51"}) + "}");
    test::check_error(full, 503, "full");
    BOOST_TEST(test::snapshot(index.port(), {"f1", "f50", "f51"}) == before);
    BOOST_TEST(test::json_of(client.call("GET", "/v1/health")).at("peers").as_int64() == 50);
    // The registered peers keep their leases; the one connection keeps being served.
    BOOST_TEST(client.call("PUT", "/v1/peers/7/lease", "", test::bearer(tokens[6])).status == 200u);
    // The limit is on live peers: one leaves, a newcomer gets in.
    BOOST_TEST(client.call("DELETE", "/v1/peers/1", "", test::bearer(tokens[0])).status == 200u);
    const auto in = client.call(
        "POST", "/v1/peers", R"({"id":51,"port":6000,"files":)" + test::files_json({"f51"}) + "}");
    BOOST_TEST(in.status == 201u, in.body);
    BOOST_TEST(test::lookup_ids(index.port(), "f51") == std::vector<std::uint64_t>{51});
    test::check_alive(index.port());
}

BOOST_AUTO_TEST_CASE(a_lookup_of_100000_names_is_refused_by_the_documented_limits) {
    test::running_index index; // default limits: 1,000 names per lookup, 2 MiB per body
    test::register_peer(index.port(), 1, {"n0", "n999"}, 5001);
    const auto limits = index.options();

    // 100,000 short names fit in the body limit: refused for their number.
    const auto many = lookup_body(100'000, "n");
    BOOST_TEST_REQUIRE(many.size() < limits.limits.body_limit);
    auto t0 = clock_type::now();
    const auto too_many = test::http_call(index.port(), "POST", "/v1/lookup", many);
    BOOST_TEST(since(t0) < 5s);
    test::check_error(too_many, 400, "too_many");
    BOOST_TEST(too_many.body.find("at most " + std::to_string(limits.index.max_lookup_names)) !=
               std::string::npos);

    // 100,000 long names do not: refused for their size, without parsing them.
    const auto large = lookup_body(100'000, std::string(30, 'x'));
    BOOST_TEST_REQUIRE(large.size() > limits.limits.body_limit);
    t0 = clock_type::now();
    const auto too_large = test::http_call(index.port(), "POST", "/v1/lookup", large);
    BOOST_TEST(since(t0) < 5s);
    test::check_error(too_large, 413, "body_too_large");

    // At the limit a lookup is answered in full.
    const auto at_limit = test::http_call(index.port(), "POST", "/v1/lookup",
                                          lookup_body(limits.index.max_lookup_names, "n"));
    BOOST_TEST_REQUIRE(at_limit.status == 200u, at_limit.body.substr(0, 200));
    const auto answer = test::json_of(at_limit);
    const auto& results = answer.at("results").as_array();
    BOOST_TEST(results.size() == limits.index.max_lookup_names);
    BOOST_TEST(results.at(0).at("found").as_bool());
    BOOST_TEST(results.at(999).at("found").as_bool());
    BOOST_TEST(!results.at(1).at("found").as_bool());
    test::check_alive(index.port());
}

BOOST_AUTO_TEST_SUITE_END()
