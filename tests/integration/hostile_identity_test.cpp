// Identity: nobody acts on a live peer's registration without its token, and a registration
// cannot advertise a port or a host that the index's limits forbid.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include "fault_support.hpp"
#include "index_fixture.hpp"
#include "peer_fixture.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace p2pshare;
using namespace std::chrono_literals;

namespace {

/// POST /v1/peers from the local address `from` (any 127.x.y.z is this machine).
test::http_reply register_from(const std::string& from, std::uint16_t port,
                               const std::string& body) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(5s);
    auto& socket = stream.socket();
    socket.open(asio::ip::tcp::v4());
    socket.bind({asio::ip::make_address(from), 0});
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::verb::post, "/v1/peers", 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    test::http_reply reply;
    reply.status = res.result_int();
    reply.headers["content-type"] = std::string(res[http::field::content_type]);
    reply.body = res.body();
    return reply;
}

std::string registration(std::uint32_t id, const std::string& host, std::uint16_t port,
                         const std::string& token = {}) {
    std::string body = R"({"id":)" + std::to_string(id);
    if (!host.empty()) body += R"(,"host":)" + test::json_quote(host);
    body += R"(,"port":)" + std::to_string(port) + R"(,"files":)" +
            test::files_json({"p" + std::to_string(id) + ".txt"});
    if (!token.empty()) body += R"(,"token":")" + token + '"';
    return body + "}";
}

} // namespace

BOOST_AUTO_TEST_SUITE(hostile_identity)

BOOST_AUTO_TEST_CASE(nobody_renews_updates_or_unregisters_a_live_peer_without_its_token) {
    test::network net;
    const auto mine = test::random_text(3000, 91);
    test::write_file(net / "p1" / "mine.txt", mine);
    auto& victim = net.start_peer(1);
    const auto port = net.index_port();
    const auto before = test::lookup_text(port, {"mine.txt", "evil.txt"});

    // The attacker holds a valid lease of its own.
    const auto own = test::register_peer(port, 2, {"other.txt"}, 5002);
    const auto files = R"({"files":)" + test::files_json({"evil.txt"}) + "}";
    const std::vector<std::pair<std::map<std::string, std::string>, unsigned>> credentials{
        {test::bearer(own), 403},                    // another peer's token
        {test::bearer(std::string(32, 'a')), 403},   // a guessed token
        {test::bearer("../../1"), 403},              // not a token at all
        {{}, 401},                                   // none
        {{{"Authorization", "Basic " + own}}, 401}}; // not a bearer token
    for (const auto& [headers, status] : credentials) {
        BOOST_TEST_CONTEXT("credentials " << (headers.empty() ? "none" : headers.begin()->second)) {
            const auto code = status == 403 ? "forbidden" : "unauthorized";
            test::check_error(test::http_call(port, "PUT", "/v1/peers/1/lease", "", headers),
                              status, code);
            test::check_error(test::http_call(port, "PUT", "/v1/peers/1/files", files, headers),
                              status, code);
            test::check_error(test::http_call(port, "DELETE", "/v1/peers/1", "", headers), status,
                              code);
        }
    }
    // Registering over the live id, with or without the attacker's token, is a conflict.
    test::check_error(
        test::http_call(port, "POST", "/v1/peers", registration(1, "127.0.0.1", 6666)), 409,
        "conflict");
    test::check_error(
        test::http_call(port, "POST", "/v1/peers", registration(1, "127.0.0.1", 6666, own)), 409,
        "conflict");

    // The victim is untouched: same sources, still registered, and its own token still works.
    BOOST_TEST(test::lookup_text(port, {"mine.txt", "evil.txt"}) == before);
    BOOST_TEST(victim.registered());
    test::write_file(net / "p1" / "more.txt", "more");
    BOOST_TEST(!net.io().run(victim.async_sync()));
    BOOST_TEST(test::index_sources(port, "more.txt") == std::set<std::uint32_t>{1});
    BOOST_TEST(test::index_sources(port, "mine.txt") == std::set<std::uint32_t>{1});
}

BOOST_AUTO_TEST_CASE(a_port_below_min_peer_port_is_refused) {
    auto options = test::running_index::defaults();
    options.index.min_peer_port = 1024;
    test::running_index index(options);
    const auto port = index.port();
    for (const std::uint16_t low : {1, 22, 80, 1023}) {
        BOOST_TEST_CONTEXT("port " << low) {
            test::check_error(
                test::http_call(port, "POST", "/v1/peers", registration(1, "127.0.0.1", low)), 400,
                "bad_field");
        }
    }
    BOOST_TEST(test::json_of(test::http_call(port, "GET", "/v1/health")).at("peers").as_int64() ==
               0);
    const auto ok = test::http_call(port, "POST", "/v1/peers", registration(1, "127.0.0.1", 1024));
    BOOST_TEST_REQUIRE(ok.status == 201u, ok.body);
    const auto token = std::string(test::json_of(ok).at("token").as_string());
    // Taking the lease back cannot move it to a forbidden port either.
    const auto before = test::snapshot(port, {"p1.txt"});
    test::check_error(
        test::http_call(port, "POST", "/v1/peers", registration(1, "127.0.0.1", 25, token)), 400,
        "bad_field");
    BOOST_TEST(test::snapshot(port, {"p1.txt"}) == before);
}

BOOST_AUTO_TEST_CASE(with_host_must_match_source_a_peer_advertises_only_its_own_address) {
    IndexServerOptions options;
    options.index.host_must_match_source = true;
    test::network net(options);
    const auto port = net.index_port();
    // A real peer advertising the address it connects from is welcome.
    test::write_file(net / "p1" / "mine.txt", "mine");
    auto& honest = net.start_peer(1);
    BOOST_TEST(test::lookup_text(port, {"mine.txt"}) ==
               "mine.txt 1 127.0.0.1:" + std::to_string(honest.port()) + " 4 " +
                   test::sha256_hex("mine") + "\n");

    // Someone else's host, by name or by address, is refused.
    for (const std::string host : {"10.1.2.3", "example.org", "localhost", "::1"}) {
        BOOST_TEST_CONTEXT("host " << host) {
            test::check_error(
                test::http_call(port, "POST", "/v1/peers", registration(2, host, 5002)), 403,
                "forbidden");
        }
    }
    // From 127.0.0.2, pointing downloaders at 127.0.0.1 (where the honest peer lives) is refused;
    // advertising 127.0.0.2 itself, or no host at all, is fine.
    test::check_error(register_from("127.0.0.2", port, registration(2, "127.0.0.1", 5002)), 403,
                      "forbidden");
    const auto own = register_from("127.0.0.2", port, registration(2, "127.0.0.2", 5002));
    BOOST_TEST_REQUIRE(own.status == 201u, own.body);
    const auto implicit = register_from("127.0.0.3", port, registration(3, "", 5003));
    BOOST_TEST_REQUIRE(implicit.status == 201u, implicit.body);
    BOOST_TEST(test::json_of(implicit).at("host").as_string() == "127.0.0.3");
    // Taking its lease back cannot move it to another host.
    const auto token = std::string(test::json_of(own).at("token").as_string());
    const auto before = test::lookup_text(port, {"p2.txt"});
    BOOST_TEST(before == "p2.txt 2 127.0.0.2:5002 1 " + test::sha_of("p2.txt") + "\n");
    test::check_error(register_from("127.0.0.2", port, registration(2, "127.0.0.1", 5002, token)),
                      403, "forbidden");
    BOOST_TEST(test::lookup_text(port, {"p2.txt"}) == before);
    BOOST_TEST(test::lookup_text(port, {"mine.txt"}) ==
               "mine.txt 1 127.0.0.1:" + std::to_string(honest.port()) + " 4 " +
                   test::sha256_hex("mine") + "\n");
    BOOST_TEST(honest.registered());
}

BOOST_AUTO_TEST_SUITE_END()
