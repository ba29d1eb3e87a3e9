// The index's bounds on what it holds and gives, over real loopback HTTP: (peer, file) entries
// and bytes of names in total, live peers per client address, sources per name, the work of a
// filtered list, and the limits it advertises in /v1/health.
#include "index_fixture.hpp"
#include "test_http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace test = p2pshare::test;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::string register_body(std::uint32_t id, const std::vector<std::string>& names,
                          const std::string& token = {}) {
    std::string body = R"({"id":)" + std::to_string(id) + R"(,"port":)" +
                       std::to_string(5000 + id % 60000) + R"(,"files":)" + test::files_json(names);
    if (!token.empty()) body += R"(,"token":")" + token + '"';
    return body + "}";
}

/// One request from the local address `from` (any 127.x.y.z works on Linux loopback).
test::http_reply call_from(const std::string& from, std::uint16_t port, const std::string& method,
                           const std::string& target, const std::string& body = {},
                           const std::map<std::string, std::string>& headers = {}) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    auto& socket = stream.socket();
    socket.open(asio::ip::tcp::v4());
    socket.bind({asio::ip::make_address(from), 0});
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::write(stream, test::make_request(method, target, body, headers));
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return test::to_reply(res);
}

std::string token_of(const test::http_reply& reply) {
    return std::string(test::json_of(reply).at("token").as_string());
}

} // namespace

BOOST_AUTO_TEST_SUITE(index_bounds)

BOOST_AUTO_TEST_CASE(health_advertises_the_limits) {
    auto options = test::running_index::defaults();
    options.index.max_files_per_peer = 123;
    options.index.max_lookup_names = 45;
    options.index.max_list_page = 67;
    options.index.max_sources_per_name = 8;
    options.index.max_peers_per_address = 9;
    options.index.min_peer_port = 1024;
    options.limits.header_limit = 4000;
    options.limits.body_limit = 100'000;
    test::running_index index(options);
    const auto v = test::json_of(test::http_call(index.port(), "GET", "/v1/health"));
    // The counters are still there...
    BOOST_TEST(v.at("status").as_string() == "ok");
    BOOST_TEST(v.at("peers").to_number<int>() == 0);
    BOOST_TEST(v.at("lease_ttl_ms").to_number<std::int64_t>() == options.lease_ttl.count());
    // ...and the limits a client sizes its requests by.
    const auto& limits = v.at("limits").as_object();
    BOOST_TEST(limits.size() == 8u);
    BOOST_TEST(limits.at("max_files_per_peer").to_number<int>() == 123);
    BOOST_TEST(limits.at("max_lookup_names").to_number<int>() == 45);
    BOOST_TEST(limits.at("max_list_page").to_number<int>() == 67);
    BOOST_TEST(limits.at("max_sources_per_name").to_number<int>() == 8);
    BOOST_TEST(limits.at("max_peers_per_address").to_number<int>() == 9);
    BOOST_TEST(limits.at("min_peer_port").to_number<int>() == 1024);
    BOOST_TEST(limits.at("header_limit").to_number<int>() == 4000);
    BOOST_TEST(limits.at("body_limit").to_number<int>() == 100'000);

    // The defaults, as docs/protocol.md gives them.
    test::running_index plain;
    const auto d = test::json_of(test::http_call(plain.port(), "GET", "/v1/health"));
    const auto& dl = d.at("limits").as_object();
    BOOST_TEST(dl.at("max_files_per_peer").to_number<int>() == 10'000);
    BOOST_TEST(dl.at("max_lookup_names").to_number<int>() == 1'000);
    BOOST_TEST(dl.at("max_list_page").to_number<int>() == 10'000);
    BOOST_TEST(dl.at("max_sources_per_name").to_number<int>() == 50);
    BOOST_TEST(dl.at("max_peers_per_address").to_number<int>() == 64);
    BOOST_TEST(dl.at("min_peer_port").to_number<int>() == 1);
    BOOST_TEST(dl.at("header_limit").to_number<int>() == 8192);
    BOOST_TEST(dl.at("body_limit").to_number<int>() == 2 * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(entries_and_name_bytes_beyond_the_limits_get_503_full) {
    auto options = test::running_index::defaults();
    options.index.max_files = 4;
    options.index.max_name_bytes = 40;
    test::running_index index(options);
    const auto port = index.port();
    const auto token1 = test::register_peer(port, 1, {"aaaaaaaaaa", "bbbbbbbbbb"});
    const auto token2 = test::register_peer(port, 2, {"cccccccccc"});
    const std::vector<std::string> probes{"aaaaaaaaaa", "dddddddddd", "e", "f"};
    const auto before = test::snapshot(port, probes);

    // Two more entries than the index may hold; one more name than its bytes allow.
    auto reply = test::http_call(port, "POST", "/v1/peers", register_body(3, {"d", "e"}));
    test::check_error(reply, 503, "full");
    BOOST_TEST(reply.body.find("4 (peer, file) entries") != std::string::npos, reply.body);
    reply = test::http_call(port, "POST", "/v1/peers", register_body(3, {"dddddddddd1"}));
    test::check_error(reply, 503, "full");
    BOOST_TEST(reply.body.find("40 bytes of file names") != std::string::npos, reply.body);
    // A live peer growing its list, by an update or by taking its lease back.
    reply = test::http_call(port, "PUT", "/v1/peers/2/files",
                            R"({"files":)" + test::files_json({"cccccccccc", "e", "f"}) + "}",
                            test::bearer(token2));
    test::check_error(reply, 503, "full");
    reply = test::http_call(port, "POST", "/v1/peers",
                            register_body(2, {"cccccccccc", "e", "f"}, token2));
    test::check_error(reply, 503, "full");
    // Nothing changed, and the refused lease is still good.
    BOOST_TEST(test::snapshot(port, probes) == before);
    BOOST_TEST(test::http_call(port, "PUT", "/v1/peers/2/lease", "", test::bearer(token2)).status ==
               200u);

    // Up to the limits it is fine: 4 entries, 40 bytes.
    reply = test::http_call(port, "POST", "/v1/peers", register_body(3, {"dddddddddd"}));
    BOOST_TEST(reply.status == 201u, reply.body);
    const auto health = test::json_of(test::http_call(port, "GET", "/v1/health"));
    BOOST_TEST(health.at("files").to_number<int>() == 4);
    // A peer that leaves makes room.
    BOOST_TEST(test::http_call(port, "DELETE", "/v1/peers/1", "", test::bearer(token1)).status ==
               200u);
    reply = test::http_call(port, "PUT", "/v1/peers/2/files",
                            R"({"files":)" + test::files_json({"cccccccccc", "e", "f"}) + "}",
                            test::bearer(token2));
    BOOST_TEST(reply.status == 200u, reply.body);
    BOOST_TEST(test::lookup_ids(port, "f") == std::vector<std::uint64_t>{2});
    test::check_alive(port);
}

BOOST_AUTO_TEST_CASE(one_client_address_holds_at_most_max_peers_per_address) {
    auto options = test::running_index::defaults();
    options.index.max_peers_per_address = 3;
    test::running_index index(options);
    const auto port = index.port();
    std::vector<std::string> tokens;
    for (std::uint32_t id = 1; id <= 3; ++id) {
        const auto reply =
            call_from("127.0.0.1", port, "POST", "/v1/peers", register_body(id, {"shared"}));
        BOOST_TEST_REQUIRE(reply.status == 201u, reply.body);
        tokens.push_back(token_of(reply));
    }
    const std::vector<std::string> probes{"shared", "mine"};
    const auto before = test::snapshot(port, probes);
    auto reply = call_from("127.0.0.1", port, "POST", "/v1/peers", register_body(4, {"mine"}));
    test::check_error(reply, 503, "full");
    BOOST_TEST(reply.body.find("127.0.0.1") != std::string::npos, reply.body);
    BOOST_TEST(reply.body.find("per-address") != std::string::npos, reply.body);
    BOOST_TEST(test::snapshot(port, probes) == before);

    // The limit is the registering connection's address, whatever host the peer advertises:
    // another local address has its own count.
    reply = call_from(
        "127.0.0.2", port, "POST", "/v1/peers",
        R"({"id":4,"host":"127.0.0.1","port":5004,"files":)" + test::files_json({"mine"}) + "}");
    BOOST_TEST_REQUIRE(reply.status == 201u, reply.body);
    BOOST_TEST(test::lookup_ids(port, "mine") == std::vector<std::uint64_t>{4});
    // A peer taking its lease back from its own address is not a newcomer.
    reply = call_from("127.0.0.1", port, "POST", "/v1/peers",
                      register_body(1, {"shared", "more"}, tokens[0]));
    BOOST_TEST(reply.status == 200u, reply.body);
    // One leaves, another gets in.
    BOOST_TEST(
        call_from("127.0.0.1", port, "DELETE", "/v1/peers/2", "", test::bearer(tokens[1])).status ==
        200u);
    reply = call_from("127.0.0.1", port, "POST", "/v1/peers", register_body(5, {"shared"}));
    BOOST_TEST(reply.status == 201u, reply.body);
    BOOST_TEST(test::lookup_ids(port, "shared") == (std::vector<std::uint64_t>{1, 3, 5}));
    test::check_alive(port);
}

BOOST_AUTO_TEST_CASE(a_lookup_gives_at_most_max_sources_per_name) {
    auto options = test::running_index::defaults();
    options.index.max_sources_per_name = 3;
    test::running_index index(options);
    const auto port = index.port();
    for (std::uint32_t id = 1; id <= 12; ++id)
        test::register_peer(port, id,
                            id <= 2 ? std::vector<std::string>{"popular", "rare"}
                                    : std::vector<std::string>{"popular"});
    std::set<std::uint64_t> seen;
    for (int round = 0; round < 40; ++round) {
        const auto reply = test::http_call(port, "POST", "/v1/lookup",
                                           R"({"names":["popular","rare","popular"]})");
        BOOST_TEST_REQUIRE(reply.status == 200u, reply.body);
        const auto v = test::json_of(reply);
        const auto& results = v.at("results").as_array();
        BOOST_TEST_REQUIRE(results.size() == 3u);
        for (const std::size_t i : {0u, 2u}) {
            const auto& sources = results.at(i).at("sources").as_array();
            BOOST_TEST(results.at(i).at("found").as_bool());
            BOOST_TEST_REQUIRE(sources.size() == 3u);
            std::set<std::uint64_t> ids;
            for (const auto& s : sources) {
                const auto id = s.at("id").to_number<std::uint64_t>();
                BOOST_TEST(id >= 1u);
                BOOST_TEST(id <= 12u);
                BOOST_TEST(s.at("port").to_number<std::uint64_t>() == 5000u);
                ids.insert(id);
                seen.insert(id);
            }
            BOOST_TEST(ids.size() == 3u);
        }
        // Under the limit: every source.
        std::set<std::uint64_t> rare;
        for (const auto& s : results.at(1).at("sources").as_array())
            rare.insert(s.at("id").to_number<std::uint64_t>());
        BOOST_TEST((rare == std::set<std::uint64_t>{1, 2}));
    }
    // 240 draws of 3 out of 12: a peer never drawn has a probability of (9/12)^80 < 1e-9.
    BOOST_TEST(seen.size() == 12u);
}

BOOST_AUTO_TEST_CASE(a_filtered_list_examines_a_bounded_number_of_names_per_request) {
    auto options = test::running_index::defaults();
    options.index.max_list_scan = 5;
    test::running_index index(options);
    const auto port = index.port();
    // 40 names k00..k39; "3" is in k03, k13, k23, k30..k39.
    std::vector<std::string> names;
    for (int i = 0; i < 40; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "k%02d", i);
        names.emplace_back(name);
    }
    test::register_peer(port, 1, names);

    // k00..k04 examined: one match, and a cursor.
    auto v = test::json_of(test::http_call(port, "GET", "/v1/files?contains=3"));
    BOOST_TEST(v.at("names").as_array().size() == 1u);
    BOOST_TEST(v.at("names").at(0).as_string() == "k03");
    BOOST_TEST(v.at("next_after").as_string() == "k04");
    // k05..k09 holds no match: an empty page that still has a cursor.
    v = test::json_of(test::http_call(port, "GET", "/v1/files?contains=3&after=k04"));
    BOOST_TEST(v.at("names").as_array().empty());
    BOOST_TEST(v.at("next_after").as_string() == "k09");
    // Following the cursors finds every match once.
    std::vector<std::string> expected;
    for (const auto& n : names) {
        if (n.find('3') != std::string::npos) expected.push_back(n);
    }
    BOOST_TEST(test::list_names(port, "contains=3") == expected);
    // HEAD agrees with GET on a short page too.
    const auto head = test::http_call(port, "HEAD", "/v1/files?contains=3&after=k04");
    const auto get = test::http_call(port, "GET", "/v1/files?contains=3&after=k04");
    BOOST_TEST(head.header("content-length") == std::to_string(get.body.size()));
    // Without a filter a page is full: the page size bounds the work.
    v = test::json_of(test::http_call(port, "GET", "/v1/files?limit=20"));
    BOOST_TEST(v.at("names").as_array().size() == 20u);
    BOOST_TEST(v.at("next_after").as_string() == "k19");
}

BOOST_AUTO_TEST_SUITE_END()
