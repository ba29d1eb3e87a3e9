// The index server's life: starting, server.config, lease expiry, keep-alive connections,
// deadlines, the connection limit and a graceful stop.
#include "index_fixture.hpp"

#include <p2pshare/config.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace test = p2pshare::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using names = std::vector<std::string>;

namespace {

std::chrono::milliseconds since(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t);
}

bool listed(test::http_client& client, const std::string& name) {
    const auto reply = client.call("GET", "/v1/files");
    BOOST_TEST_REQUIRE(reply.status == 200u);
    const auto v = test::json_of(reply);
    for (const auto& n : v.at("names").as_array()) {
        if (n.as_string() == name) return true;
    }
    return false;
}

bool found(test::http_client& client, const std::string& name) {
    const auto reply =
        client.call("POST", "/v1/lookup", R"({"names":[)" + test::json_quote(name) + "]}");
    BOOST_TEST_REQUIRE(reply.status == 200u);
    return test::json_of(reply).at("results").at(0).at("found").as_bool();
}

} // namespace

BOOST_AUTO_TEST_SUITE(index_lifecycle)

BOOST_AUTO_TEST_CASE(server_config_has_the_real_port) {
    test::running_index index;
    BOOST_TEST(index.server().host() == "127.0.0.1");
    const auto file = index.dir() / "config" / "server.config";
    BOOST_TEST_REQUIRE(std::filesystem::exists(file));
    const auto addresses = p2pshare::read_server_config(file);
    BOOST_TEST_REQUIRE(addresses.has_value());
    BOOST_TEST_REQUIRE(addresses->size() == 1u);
    const auto& address = addresses->front();
    BOOST_TEST(address.host == "127.0.0.1");
    BOOST_TEST(address.port != 0);
    BOOST_TEST(address.port == index.port());
    // In the form of the first versions too, which older peers read.
    const auto text = test::read_file(file);
    BOOST_TEST(text.find("host=127.0.0.1\n") != std::string::npos, text);
    BOOST_TEST(text.find("port=" + std::to_string(index.port()) + "\n") != std::string::npos, text);
    // And that port answers.
    test::check_alive(address.port);
}

BOOST_AUTO_TEST_CASE(no_config_dir_writes_nothing) {
    auto options = test::running_index::defaults();
    options.config_dir.clear();
    test::running_index index(options);
    test::check_alive(index.port());
    BOOST_TEST(std::filesystem::is_empty(index.dir().path()));
}

BOOST_AUTO_TEST_CASE(start_errors) {
    test::running_index index;
    // Twice.
    BOOST_TEST(static_cast<bool>(index.server().start()));
    test::check_alive(index.port());

    test::io_thread io;
    test::temp_dir dir;
    {
        // The port is taken.
        auto o = test::running_index::defaults();
        o.port = index.port();
        o.config_dir = dir / "taken";
        p2pshare::IndexServer other(io.executor(), o);
        BOOST_TEST(static_cast<bool>(other.start()));
        BOOST_TEST(other.port() == 0);
        BOOST_TEST(!std::filesystem::exists(dir / "taken" / "server.config"));
    }
    {
        auto o = test::running_index::defaults();
        o.host = "not an address";
        o.config_dir.clear();
        p2pshare::IndexServer other(io.executor(), o);
        BOOST_TEST(static_cast<bool>(other.start()));
    }
    {
        // The config folder cannot be made: a file is in the way.
        test::write_file(dir / "file", "x");
        auto o = test::running_index::defaults();
        o.config_dir = dir / "file";
        p2pshare::IndexServer other(io.executor(), o);
        BOOST_TEST((other.start() == p2pshare::errc::io_error));
        BOOST_TEST(other.port() == 0);
    }
    // The first server did not notice.
    test::check_alive(index.port());
}

BOOST_AUTO_TEST_CASE(leases_expire) {
    auto options = test::running_index::defaults();
    options.lease_ttl = 300ms;
    test::running_index index(options);
    test::http_client client(index.port());

    const auto t0 = clock_type::now();
    const auto reply = client.call(
        "POST", "/v1/peers",
        R"({"id":5,"port":7000,"files":)" + test::files_json({"short-lived.bin"}) + "}");
    BOOST_TEST_REQUIRE(reply.status == 201u);
    BOOST_TEST(test::json_of(reply).at("ttl_ms").to_number<int>() == 300);
    const std::string token(test::json_of(reply).at("token").as_string());

    // Listed right after registering. The lease began after t0, so an answer that arrived
    // before t0 + ttl must show the peer; a slower machine only skips the check.
    const bool was_listed = listed(client, "short-lived.bin");
    const bool was_found = found(client, "short-lived.bin");
    if (since(t0).count() < options.lease_ttl.count()) {
        BOOST_TEST(was_listed);
        BOOST_TEST(was_found);
    } else {
        BOOST_TEST_MESSAGE("too slow to check that the peer was listed before its lease ended");
    }

    // Gone after the ttl, from the list and from lookups; never before the ttl.
    const auto deadline = t0 + options.lease_ttl + 20s;
    bool gone = false;
    while (!gone && clock_type::now() < deadline) {
        gone = !listed(client, "short-lived.bin");
        if (gone) BOOST_TEST(since(t0).count() >= options.lease_ttl.count());
    }
    BOOST_TEST_REQUIRE(gone);
    BOOST_TEST(!found(client, "short-lived.bin"));
    const auto health = test::json_of(client.call("GET", "/v1/health"));
    BOOST_TEST(health.at("peers").to_number<int>() == 0);
    BOOST_TEST(health.at("names").to_number<int>() == 0);
    BOOST_TEST(health.at("files").to_number<int>() == 0);
    const auto stats = index.io().run(index.server().async_stats());
    BOOST_TEST(stats.peers == 0u);
    BOOST_TEST(stats.files == 0u);

    // The lease is over: the token is worthless and the id is free.
    test::check_error(client.call("PUT", "/v1/peers/5/lease", "", test::bearer(token)), 404,
                      "not_found");
    const auto again = client.call("POST", "/v1/peers", R"({"id":5,"port":7000,"files":[]})");
    BOOST_TEST(again.status == 201u);
    BOOST_TEST(test::json_of(again).at("token").as_string() != token);
}

BOOST_AUTO_TEST_CASE(a_stale_token_gets_a_new_lease_and_a_live_one_its_own) {
    auto options = test::running_index::defaults();
    options.lease_ttl = 200ms;
    test::running_index index(options);
    const auto body = [](const std::string& token) {
        return R"({"id":9,"port":7000,"token":")" + token + R"(","files":)" +
               test::files_json({"stale.bin"}) + "}";
    };
    const auto stale = test::register_peer(index.port(), 9, {"stale.bin"}, 7000);
    // Wait for the lease to end (seen as the name no longer being found).
    BOOST_TEST_REQUIRE(
        test::eventually([&] { return test::lookup_ids(index.port(), "stale.bin").empty(); }));

    // The old token takes nothing back: a new lease, created, with a new token.
    const auto fresh = test::http_call(index.port(), "POST", "/v1/peers", body(stale));
    BOOST_TEST(fresh.status == 201u, fresh.body);
    const std::string token(test::json_of(fresh).at("token").as_string());
    BOOST_TEST(token != stale);

    // The live lease, with its own token, is taken back: 200 and the same token. (Its lease
    // may end while the machine is slow; then it is created anew, which is also fine.)
    const auto back = test::http_call(index.port(), "POST", "/v1/peers", body(token));
    BOOST_TEST_REQUIRE((back.status == 200u || back.status == 201u), back.body);
    if (back.status == 200u) {
        BOOST_TEST(test::json_of(back).at("token").as_string() == token);
    } else {
        BOOST_TEST_MESSAGE("too slow to take a 200 ms lease back before it ended");
    }
}

BOOST_AUTO_TEST_CASE(keep_alive) {
    test::running_index index;
    test::http_client client(index.port());
    const auto reg =
        client.call("POST", "/v1/peers",
                    R"({"id":1,"port":7000,"files":)" + test::files_json({"a", "b"}) + "}");
    BOOST_TEST_REQUIRE(reg.status == 201u);
    const std::string token(test::json_of(reg).at("token").as_string());
    const auto auth = test::bearer(token);
    // Successes and errors alike keep the connection.
    BOOST_TEST(client.call("GET", "/v1/health").status == 200u);
    BOOST_TEST(client.call("HEAD", "/v1/health").status == 200u);
    BOOST_TEST(client.call("GET", "/v1/files").status == 200u);
    BOOST_TEST(client.call("POST", "/v1/lookup", R"({"names":["a"]})").status == 200u);
    BOOST_TEST(client.call("GET", "/nothing").status == 404u);
    BOOST_TEST(client.call("GET", "/v1/lookup").status == 405u);
    BOOST_TEST(client.call("POST", "/v1/lookup", "{").status == 400u);
    BOOST_TEST(client.call("PUT", "/v1/peers/1/lease").status == 401u);
    BOOST_TEST(client.call("PUT", "/v1/peers/1/lease", "", auth).status == 200u);
    BOOST_TEST(
        client
            .call("PUT", "/v1/peers/1/files", R"({"files":)" + test::files_json({"c"}) + "}", auth)
            .status == 200u);
    BOOST_TEST(test::json_of(client.call("GET", "/v1/files")).at("names").at(0).as_string() == "c");
    BOOST_TEST(client.call("DELETE", "/v1/peers/1", "", auth).status == 200u);
    BOOST_TEST(test::json_of(client.call("GET", "/v1/health")).at("peers").to_number<int>() == 0);
    // Two requests sent at once (pipelined) get two answers in order.
    client.send_raw(
        "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(client.read_reply().status == 404u);
    BOOST_TEST(client.read_reply().status == 200u);
    // "Connection: close" is honoured: the answer comes, then the server closes.
    const auto last = client.call("GET", "/v1/health", "", {{"Connection", "close"}});
    BOOST_TEST(last.status == 200u);
    BOOST_TEST(client.wait_closed(10s));
}

BOOST_AUTO_TEST_CASE(http_1_0_closes) {
    test::running_index index;
    test::http_client client(index.port());
    const auto reply = client.call("GET", "/v1/health", "", {}, 10);
    BOOST_TEST(reply.status == 200u);
    BOOST_TEST(client.wait_closed(10s));
    // With keep-alive asked, HTTP/1.0 keeps the connection.
    test::http_client kept(index.port());
    BOOST_TEST(kept.call("GET", "/v1/health", "", {{"Connection", "keep-alive"}}, 10).status ==
               200u);
    BOOST_TEST(kept.call("GET", "/v1/health", "", {{"Connection", "keep-alive"}}, 10).status ==
               200u);
}

BOOST_AUTO_TEST_CASE(idle_connections_are_closed) {
    auto options = test::running_index::defaults();
    options.limits.idle_timeout = 200ms;
    test::running_index index(options);
    test::http_client client(index.port());
    const auto t0 = clock_type::now();
    BOOST_TEST(client.call("GET", "/v1/health").status == 200u);
    BOOST_TEST(client.wait_closed(20s));
    BOOST_TEST(since(t0).count() >= options.limits.idle_timeout.count());
    test::check_alive(index.port());
}

BOOST_AUTO_TEST_CASE(slow_requests_are_cut) {
    auto options = test::running_index::defaults();
    options.limits.read_timeout = 200ms;
    test::running_index index(options);
    test::http_client client(index.port());
    const auto t0 = clock_type::now();
    client.send_raw("GET /v1/health HTTP/1.1\r\nHost: x\r\n"); // never finished
    BOOST_TEST(client.wait_closed(20s));
    BOOST_TEST(since(t0).count() >= options.limits.read_timeout.count());
    test::check_alive(index.port());
}

BOOST_AUTO_TEST_CASE(stop_closes_idle_connections_at_once) {
    auto options = test::running_index::defaults();
    options.limits.stop_grace = 60s;
    test::running_index index(options);
    test::http_client client(index.port());
    BOOST_TEST(client.call("GET", "/v1/health").status == 200u);
    // The connection is idle (waiting for a next request): stopping does not wait for it.
    const auto t0 = clock_type::now();
    index.io().run(index.server().async_stop(), 30s);
    BOOST_TEST(since(t0).count() < 10'000);
    BOOST_TEST(client.wait_closed(10s));
    // Nobody listens any more.
    BOOST_CHECK_THROW(test::http_call(index.port(), "GET", "/v1/health"), std::exception);
    // Stopping again is harmless and immediate.
    index.io().run(index.server().async_stop(), 10s);
    index.stop();
}

BOOST_AUTO_TEST_CASE(stop_cuts_busy_connections_after_the_grace) {
    auto options = test::running_index::defaults();
    options.limits.stop_grace = 300ms;
    options.limits.read_timeout = 60s;
    test::running_index index(options);
    test::http_client client(index.port());
    // A request whose body never comes: once "100 Continue" is back, the server is busy with it.
    client.send_raw(
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "
        "10\r\n\r\n");
    BOOST_TEST(client.read_until("\r\n\r\n").find("100 Continue") != std::string::npos);
    const auto t0 = clock_type::now();
    index.io().run(index.server().async_stop(), 30s);
    const auto took = since(t0);
    BOOST_TEST(took.count() >= options.limits.stop_grace.count());
    BOOST_TEST(took.count() < 20'000);
    BOOST_TEST(client.wait_closed(10s));
}

BOOST_AUTO_TEST_CASE(connection_limit) {
    auto options = test::running_index::defaults();
    options.limits.max_connections = 2;
    test::running_index index(options);
    auto a = std::make_unique<test::http_client>(index.port());
    test::http_client b(index.port());
    // An answer means that the server has taken the connection.
    BOOST_TEST_REQUIRE(a->call("GET", "/v1/health").status == 200u);
    BOOST_TEST_REQUIRE(b.call("GET", "/v1/health").status == 200u);

    const auto refused = test::parse_reply(
        test::raw_call(index.port(), "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"));
    test::check_error(refused, 503, "too_many_connections");
    // The connections it has keep working.
    BOOST_TEST(a->call("GET", "/v1/health").status == 200u);
    BOOST_TEST(b.call("GET", "/v1/files").status == 200u);

    // Once one closes, a new connection is served again (as soon as the server has seen the close).
    a->close();
    a.reset();
    const auto deadline = clock_type::now() + 20s;
    unsigned status = 0;
    while (status != 200u && clock_type::now() < deadline) {
        status = test::http_call(index.port(), "GET", "/v1/health").status;
        BOOST_TEST_REQUIRE((status == 200u || status == 503u));
    }
    BOOST_TEST(status == 200u);
    BOOST_TEST(b.call("GET", "/v1/health").status == 200u);
}

BOOST_AUTO_TEST_SUITE_END()
