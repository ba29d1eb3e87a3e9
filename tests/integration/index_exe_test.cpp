// The `indexserver` executable, run as a child process.
#include "index_fixture.hpp"
#include "redis_fixture.hpp"

#include <p2pshare/config.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

namespace test = p2pshare::test;
using namespace std::chrono_literals;

namespace {

/// The port at the end of "indexserver listening on HOST:PORT".
std::uint16_t port_of(const std::string& line) {
    const auto colon = line.rfind(':');
    BOOST_TEST_REQUIRE(colon != std::string::npos, line);
    const auto port = std::stoul(line.substr(colon + 1));
    BOOST_TEST_REQUIRE(port > 0u);
    BOOST_TEST_REQUIRE(port < 65536u);
    return static_cast<std::uint16_t>(port);
}

int run_to_end(const std::vector<std::string>& args, std::string& out, std::string& err) {
    test::temp_dir dir;
    test::child c(test::app_path("indexserver"), args, dir.path());
    const int status = c.wait();
    out = c.output();
    err = c.error_output();
    return status;
}

} // namespace

BOOST_AUTO_TEST_SUITE(indexserver_exe)

BOOST_AUTO_TEST_CASE(serves_until_sigterm) {
    test::temp_dir dir;
    test::child server(
        test::app_path("indexserver"),
        {"--port", "0", "--config-dir", (dir / "config").string(), "--lease-ttl", "1s"},
        dir.path());
    const auto line = server.wait_for_line("listening on");
    BOOST_TEST(line.find("127.0.0.1:") != std::string::npos, line);
    const auto port = port_of(line);

    const auto config = p2pshare::read_server_config(dir / "config" / "server.config");
    BOOST_TEST_REQUIRE(config.has_value());
    BOOST_TEST_REQUIRE(config->size() == 1u);
    BOOST_TEST(config->front().host == "127.0.0.1");
    BOOST_TEST(config->front().port == port);

    const auto health = test::http_call(port, "GET", "/v1/health");
    BOOST_TEST(health.status == 200u);
    BOOST_TEST(test::json_of(health).at("lease_ttl_ms").to_number<int>() == 1000);
    const auto token = test::register_peer(port, 1, {"from-the-exe-test"});
    BOOST_TEST(test::lookup_ids(port, "from-the-exe-test") == std::vector<std::uint64_t>{1});
    // An idle keep-alive connection must not hold the stop up.
    test::http_client idle(port);
    BOOST_TEST(idle.call("GET", "/v1/health").status == 200u);

    server.signal(SIGTERM);
    BOOST_TEST(server.wait(20s) == 0);
    BOOST_TEST(idle.wait_closed(10s));
    BOOST_CHECK_THROW(test::http_call(port, "GET", "/v1/health"), std::exception);
}

BOOST_AUTO_TEST_CASE(sigint_stops_too) {
    test::temp_dir dir;
    test::child server(test::app_path("indexserver"),
                       {"--port", "0", "--config-dir", (dir / "config").string()}, dir.path());
    const auto port = port_of(server.wait_for_line("listening on"));
    test::check_alive(port);
    server.signal(SIGINT);
    BOOST_TEST(server.wait(20s) == 0);
}

BOOST_AUTO_TEST_CASE(bounds_are_options) {
    test::temp_dir dir;
    test::child server(
        test::app_path("indexserver"),
        {"--port", "0", "--config-dir", (dir / "config").string(), "--max-peers-per-address", "2",
         "--max-files", "3", "--max-name-bytes", "1KiB", "--max-sources-per-name", "1"},
        dir.path());
    const auto port = port_of(server.wait_for_line("listening on"));
    const auto limits = test::json_of(test::http_call(port, "GET", "/v1/health")).at("limits");
    BOOST_TEST(limits.at("max_peers_per_address").to_number<int>() == 2);
    BOOST_TEST(limits.at("max_sources_per_name").to_number<int>() == 1);
    test::register_peer(port, 1, {"a", "b"});
    test::register_peer(port, 2, {"a"});
    // A third peer from 127.0.0.1 is one too many for the address (and its file for the index).
    const auto third =
        test::http_call(port, "POST", "/v1/peers", R"({"id":3,"port":5003,"files":[]})");
    test::check_error(third, 503, "full");
    BOOST_TEST(third.body.find("per-address") != std::string::npos, third.body);
    BOOST_TEST(test::lookup_ids(port, "a").size() == 1u);
    server.signal(SIGTERM);
    BOOST_TEST(server.wait(20s) == 0);
}

// --threads N: N index servers in one process, on one port (SO_REUSEPORT), on one Redis. Each new
// connection goes to one of them, and each answers for the one network.
BOOST_AUTO_TEST_CASE(threads_share_one_port_and_one_redis) {
    test::redis_server redis;
    test::temp_dir dir;
    test::child server(test::app_path("indexserver"),
                       {"--port", "0", "--config-dir", (dir / "config").string(), "--store",
                        redis.seeds(), "--threads", "3"},
                       dir.path());
    const auto port = port_of(server.wait_for_line("listening on"));
    const auto config = p2pshare::read_server_config(dir / "config" / "server.config");
    BOOST_TEST_REQUIRE(config.has_value());
    BOOST_TEST(config->front().port == port);
    test::register_peer(port, 1, {"one-network"});
    test::register_peer(port, 2, {"one-network", "two"});
    for (int i = 0; i < 24; ++i) { // a new connection each
        BOOST_TEST_CONTEXT("connection " << i) {
            auto ids = test::lookup_ids(port, "one-network");
            std::sort(ids.begin(), ids.end());
            BOOST_TEST(ids == (std::vector<std::uint64_t>{1, 2}));
            BOOST_TEST(test::json_of(test::http_call(port, "GET", "/v1/health"))
                           .at("peers")
                           .to_number<int>() == 2);
        }
    }
    server.signal(SIGTERM);
    BOOST_TEST(server.wait(20s) == 0);
    BOOST_CHECK_THROW(test::http_call(port, "GET", "/v1/health"), std::exception);
}

BOOST_AUTO_TEST_CASE(help_exits_0) {
    std::string out;
    std::string err;
    BOOST_TEST(run_to_end({"--help"}, out, err) == 0);
    BOOST_TEST(out.find("Usage: indexserver") != std::string::npos, out);
    BOOST_TEST(out.find("--lease-ttl") != std::string::npos);
    BOOST_TEST(out.find("--config-dir") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_options_fail_with_a_message) {
    struct bad_case {
        std::vector<std::string> args;
        std::string in_message;
    };
    const std::vector<bad_case> cases = {
        {{"--lease-ttl", "abc"}, "lease-ttl"},
        {{"--lease-ttl", "0"}, "lease-ttl"},
        {{"--bogus"}, "bogus"},
        {{"--port", "70000"}, "port"},
        {{"--port", "abc"}, "port"},
        {{"--log-level", "loud"}, "log-level"},
        {{"--max-name-bytes", "1tb"}, "max-name-bytes: '1tb' is not a size"},
        {{"--max-peers-per-address", "many"}, "max-peers-per-address"},
        {{"--threads", "0"}, "--threads must be within"},
        {{"--threads", "2"}, "needs a shared store"},
        {{"--host", "999.1.1.1", "--port", "0", "--config-dir", "config"}, "cannot start"},
    };
    for (const auto& c : cases) {
        std::string joined;
        for (const auto& a : c.args)
            joined += a + " ";
        BOOST_TEST_CONTEXT("indexserver " << joined) {
            std::string out;
            std::string err;
            const int status = run_to_end(c.args, out, err);
            BOOST_TEST(status != 0);
            BOOST_TEST(status < 128); // an exit, not a crash
            BOOST_TEST(err.find(c.in_message) != std::string::npos, "stderr: " << err);
            BOOST_TEST(out.find("listening") == std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
