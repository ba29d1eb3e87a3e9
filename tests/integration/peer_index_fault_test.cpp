// A peer against an index that answers wrongly on purpose (a small real HTTP server) or refuses
// it for good: the peer reports an error instead of throwing or looping, stops retrying what
// cannot succeed, and quits promptly.
#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include "loopback_server.hpp"
#include "peer_fixture.hpp"

#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace p2pshare;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

namespace {

using p2pshare::test::use_tuple;

const std::string good_token(32, 'a');
const std::string not_found_body = R"({"error":"not_found","message":"no such path"})";

struct answer {
    unsigned status = 200; ///< 0: no answer at all; the connection is held until the client goes
    std::string body;
};

/// An HTTP/1.1 server with keep-alive that answers every request with what its handler returns
/// for (method, target, how many requests with this method and path it received so far).
class fake_index {
private:
    // First member: built first, as the others use its io_context; stopped in the destructor
    // before they go.
    test::loopback_server server_;

public:
    using handler = std::function<answer(const std::string&, const std::string&, std::size_t)>;

    explicit fake_index(handler h) : handler_(std::move(h)) {
        server_.start([this](tcp::socket socket) { return serve(std::move(socket)); });
    }

    ~fake_index() { server_.stop(); }

    fake_index(const fake_index&) = delete;
    fake_index& operator=(const fake_index&) = delete;

    std::uint16_t port() const { return server_.port(); }

    /// Requests received so far with `method` on `path` (the target without its query).
    std::size_t count(const std::string& method, const std::string& path) const {
        std::lock_guard lock(mutex_);
        return static_cast<std::size_t>(
            std::count(requests_.begin(), requests_.end(), method + " " + path));
    }

    /// The Authorization headers of those requests, in order ("" for a request without one).
    std::vector<std::string> authorizations(const std::string& method,
                                            const std::string& path) const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (std::size_t i = 0; i < requests_.size(); ++i) {
            if (requests_[i] == method + " " + path) out.push_back(authorizations_[i]);
        }
        return out;
    }

private:
    std::size_t record(const std::string& method, const std::string& path,
                       const std::string& authorization) {
        std::lock_guard lock(mutex_);
        requests_.push_back(method + " " + path);
        authorizations_.push_back(authorization);
        return static_cast<std::size_t>(
            std::count(requests_.begin(), requests_.end(), requests_.back()));
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
            if (ec) break;
            const std::string method(req.method_string());
            const std::string target(req.target());
            const auto nth = record(method, target.substr(0, target.find('?')),
                                    std::string(req[http::field::authorization]));
            const auto a = handler_(method, target, nth);
            if (a.status == 0) { // a hung index: the read ends when the client gives up
                http::request<http::string_body> more;
                co_await http::async_read(stream, buffer, more, use_tuple);
                break;
            }
            http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
            res.set(http::field::content_type, "application/json");
            res.body() = a.body;
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !res.keep_alive()) break;
        }
        boost::system::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    }

    handler handler_;
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;       ///< "METHOD /path", in order
    std::vector<std::string> authorizations_; ///< the Authorization header of each
};

PeerOptions peer_on(const test::temp_dir& dir, std::uint32_t id, std::uint16_t index_port) {
    PeerOptions o;
    o.id = id;
    o.folder = dir / ("p" + std::to_string(id));
    o.config_file = dir / ("p" + std::to_string(id) + ".config");
    o.host = "127.0.0.1";
    o.port = 0;
    o.index = {ServerAddress{"127.0.0.1", index_port}};
    o.retry_max = 100ms;
    return o;
}

std::string lease_body(std::uint32_t id, unsigned ttl_ms = 60'000) {
    return R"({"id":)" + std::to_string(id) + R"(,"token":")" + good_token + R"(","ttl_ms":)" +
           std::to_string(ttl_ms) + R"(,"host":"127.0.0.1","port":1})";
}

std::string error_body(const std::string& code) {
    return R"({"error":")" + code + R"(","message":"refused by the test"})";
}

/// Something accepts connections on `port` of 127.0.0.1.
bool accepts_connections(std::uint16_t port) {
    asio::io_context io;
    tcp::socket socket(io);
    boost::system::error_code ec;
    socket.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    return !ec;
}

/// Quits `node`; a quit that does not end within a few seconds fails the test.
void quit_promptly(test::io_thread& io, PeerNode& node) {
    BOOST_CHECK_NO_THROW(io.run(node.async_quit(), 5s));
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_index_faults)

BOOST_AUTO_TEST_CASE(a_wrong_registration_answer_is_an_error) {
    const std::vector<std::string> bodies = {
        "[]",
        "null",
        R"("token")",
        "{}",
        R"({"token":"x","ttl_ms":1.5})",
        R"({"token":")" + good_token + R"(","ttl_ms":1.5})",
        R"({"token":")" + good_token + R"(","ttl_ms":0})",
        R"({"token":")" + good_token + R"(","ttl_ms":-30000})",
        R"({"token":")" + good_token + R"(","ttl_ms":18446744073709551615})",
        R"({"token":")" + good_token + R"(","ttl_ms":"30000"})",
        R"({"token":")" + good_token + R"("})",
        R"({"token":42,"ttl_ms":30000})",
        R"({"token":"not a token at all, not at all","ttl_ms":30000})",
        R"({"ttl_ms":30000})",
    };
    test::temp_dir dir;
    test::io_thread io;
    std::uint32_t id = 0;
    for (const auto& body : bodies) {
        BOOST_TEST_CONTEXT("registration answered 201 " << body) {
            fake_index index([&body](const std::string& method, const std::string&, std::size_t) {
                return method == "POST" ? answer{201, body} : answer{404, not_found_body};
            });
            PeerNode node(io.executor(), peer_on(dir, ++id, index.port()));
            Error ec;
            BOOST_CHECK_NO_THROW(ec = io.run(node.async_start()));
            BOOST_TEST(ec == make_error_code(errc::bad_response), ec.message);
            BOOST_TEST(!node.registered());
            BOOST_TEST(index.count("POST", "/v1/peers") >= 1u);
            quit_promptly(io, node);
        }
    }
}

BOOST_AUTO_TEST_CASE(quit_ends_a_maintenance_loop_fed_wrong_answers) {
    test::temp_dir dir;
    test::io_thread io;
    // The first registration is refused for now (so the peer keeps trying in the background);
    // every later one gets an answer that is not a lease.
    fake_index index([](const std::string& method, const std::string&, std::size_t nth) {
        if (method != "POST") return answer{404, not_found_body};
        return nth == 1 ? answer{503, error_body("full")} : answer{201, "[]"};
    });
    PeerNode node(io.executor(), peer_on(dir, 1, index.port()));
    const auto ec = io.run(node.async_start());
    BOOST_TEST(ec == make_error_code(errc::full), ec.message);
    BOOST_TEST(test::eventually([&] { return index.count("POST", "/v1/peers") >= 3; }));
    BOOST_TEST(!node.registered());
    quit_promptly(io, node);
}

BOOST_AUTO_TEST_CASE(a_list_cursor_that_does_not_advance_is_an_error) {
    // next_after for the nth page: never advancing, stuck, going back.
    const std::vector<std::pair<std::string, std::function<std::string(std::size_t)>>> cursors = {
        {"empty", [](std::size_t) { return std::string{}; }},
        {"stuck", [](std::size_t) { return std::string{"a"}; }},
        {"back", [](std::size_t nth) { return std::string{nth == 1 ? "m" : "c"}; }},
    };
    const std::vector<std::size_t> pages = {1, 2, 2};
    test::temp_dir dir;
    test::io_thread io;
    std::uint32_t id = 0;
    for (std::size_t i = 0; i < cursors.size(); ++i) {
        BOOST_TEST_CONTEXT("cursor " << cursors[i].first) {
            const auto& next_after = cursors[i].second;
            ++id;
            fake_index index(
                [&](const std::string& method, const std::string& target, std::size_t nth) {
                    if (method == "POST" && target == "/v1/peers")
                        return answer{201, lease_body(id)};
                    if (method == "DELETE") return answer{200, R"({"unregistered":true})"};
                    if (method == "GET" && target.starts_with("/v1/files")) {
                        return answer{
                            200, R"({"names":["a"],"next_after":")" + next_after(nth) + R"("})"};
                    }
                    return answer{404, not_found_body};
                });
            PeerNode node(io.executor(), peer_on(dir, id, index.port()));
            const auto ec = io.run(node.async_start());
            BOOST_TEST_REQUIRE(!ec, ec.message);
            BOOST_TEST(node.registered());
            const auto listed = io.run(node.async_list_network_files(), 10s);
            BOOST_TEST(!listed.has_value());
            if (!listed) BOOST_TEST(listed.error() == make_error_code(errc::bad_response));
            BOOST_TEST(index.count("GET", "/v1/files") == pages[i]);
            quit_promptly(io, node);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_port_the_index_refuses_stops_the_peer) {
    IndexServerOptions options;
    options.index.min_peer_port = 65535;
    test::network net(options);
    PeerNode node(net.io().executor(), net.options(1));
    const auto ec = net.io().run(node.async_start());
    BOOST_TEST(ec == make_error_code(errc::bad_field), ec.message);
    BOOST_TEST(!node.registered());
    // It is not left serving.
    if (node.port() != 0) BOOST_TEST(!accepts_connections(node.port()));
    BOOST_TEST(net.io().run(net.index().async_stats()).peers == 0u);
    quit_promptly(net.io(), node);
}

BOOST_AUTO_TEST_CASE(a_permanent_refusal_is_not_retried) {
    const std::vector<std::pair<std::string, unsigned>> refusals = {
        {"bad_field", 400}, {"bad_name", 400}, {"too_many", 400},
        {"forbidden", 403}, {"conflict", 409}, {"body_too_large", 413},
    };
    test::temp_dir dir;
    test::io_thread io;
    std::uint32_t id = 0;
    for (const auto& [code, status] : refusals) {
        BOOST_TEST_CONTEXT("refused with " << status << " " << code) {
            fake_index index([&](const std::string& method, const std::string&, std::size_t) {
                return method == "POST" ? answer{status, error_body(code)}
                                        : answer{404, not_found_body};
            });
            PeerNode node(io.executor(), peer_on(dir, ++id, index.port()));
            const auto ec = io.run(node.async_start());
            BOOST_TEST(ec == make_error_code(errc_from_string(code)), ec.message);
            BOOST_TEST(!node.registered());
            if (node.port() != 0) BOOST_TEST(!accepts_connections(node.port()));
            // No background retry (the first would come after about 100 ms).
            BOOST_TEST(
                test::holds_for([&] { return index.count("POST", "/v1/peers") == 1; }, 400ms));
            quit_promptly(io, node);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_lookup_answer_that_cannot_be_trusted_downloads_nothing) {
    // A real peer shares both names, so a trusting client would fetch them; the index's answer
    // is wrong in one way each time.
    test::network net;
    const auto content = test::random_text(5'000, 7);
    test::write_file(net / "p1" / "a.txt", content);
    test::write_file(net / "p1" / "b.txt", content);
    auto& p1 = net.start_peer(1);
    const auto src = R"({"id":1,"host":"127.0.0.1","port":)" + std::to_string(p1.port()) +
                     R"(,"size":5000,"sha256":")" + test::sha256_hex(content) + R"("})";
    const auto result = [](const std::string& name, const std::string& sources) {
        return R"({"name":")" + name + R"(","sources":[)" + sources + R"(],"found":true})";
    };
    const std::vector<std::pair<std::string, std::string>> answers = {
        {"a name not asked for",
         R"({"results":[)" + result("a.txt", src) + "," + result("evil.txt", src) + "]}"},
        {"a name twice",
         R"({"results":[)" + result("a.txt", src) + "," + result("a.txt", src) + "]}"},
        {"a result missing", R"({"results":[)" + result("a.txt", src) + "]}"},
        {"a source twice",
         R"({"results":[)" + result("a.txt", src + "," + src) + "," + result("b.txt", src) + "]}"},
        {"a malformed source", R"({"results":[)" + result("a.txt", src) + "," +
                                   result("b.txt", R"({"id":1,"host":"127.0.0.1"})") + "]}"},
    };
    test::temp_dir dir;
    test::io_thread io;
    std::uint32_t id = 10;
    for (const auto& [what, body] : answers) {
        BOOST_TEST_CONTEXT(what) {
            ++id;
            fake_index index([&, body = body](const std::string& method, const std::string& target,
                                              std::size_t) {
                if (method == "POST" && target == "/v1/peers") return answer{201, lease_body(id)};
                if (method == "POST" && target == "/v1/lookup") return answer{200, body};
                if (method == "DELETE") return answer{200, R"({"unregistered":true})"};
                return answer{404, not_found_body};
            });
            PeerNode node(io.executor(), peer_on(dir, id, index.port()));
            const auto started = io.run(node.async_start());
            BOOST_TEST_REQUIRE(!started, started.message);
            const auto outcomes = io.run(node.async_download({"a.txt", "b.txt"}), 10s);
            BOOST_TEST_REQUIRE(outcomes.size() == 2u);
            for (const auto& o : outcomes) {
                BOOST_TEST(o.error == make_error_code(errc::bad_response),
                           o.name << ": " << o.message);
            }
            BOOST_TEST(index.count("POST", "/v1/lookup") == 1u);
            // Nothing was fetched: no file, no partial file.
            BOOST_TEST(test::files_in(dir / ("p" + std::to_string(id))).empty());
            quit_promptly(io, node);
        }
    }
    BOOST_TEST(p1.active_uploads() == 0u);
}

BOOST_AUTO_TEST_CASE(an_index_that_answers_503_is_left_and_the_lease_renewed_at_the_next) {
    // Two index servers that share their store (as on Redis, docs/scaling.md): the lease made
    // through A is valid at B. A's store stops answering; the peer renews at B, with its token,
    // and does not register again.
    test::temp_dir dir;
    test::io_thread io;
    for (const auto& [code, status] : std::vector<std::pair<std::string, unsigned>>{
             {"store_unavailable", 503}, {"shutting_down", 503}, {"too_many_connections", 503}}) {
        BOOST_TEST_CONTEXT("A answers " << status << " " << code) {
            fake_index a([&, code = code, status = status](const std::string& method,
                                                           const std::string& target, std::size_t) {
                if (method == "POST" && target == "/v1/peers")
                    return answer{201, lease_body(1, 900)};
                if (method == "PUT" || method == "DELETE") return answer{status, error_body(code)};
                return answer{404, not_found_body};
            });
            const auto bearer = "Bearer " + good_token;
            fake_index b([&](const std::string& method, const std::string& target, std::size_t) {
                if (method == "PUT" && target == "/v1/peers/1/lease") {
                    return answer{200, R"({"id":1,"ttl_ms":900})"};
                }
                if (method == "DELETE") return answer{200, R"({"id":1,"unregistered":true})"};
                return answer{404, not_found_body};
            });
            auto options = peer_on(dir, 1, a.port());
            options.index.push_back({"127.0.0.1", b.port()});
            PeerNode node(io.executor(), options);
            const auto started = io.run(node.async_start());
            BOOST_TEST_REQUIRE(!started, started.message);
            BOOST_TEST(a.count("POST", "/v1/peers") == 1u);
            // A refuses the first renewal (after 300 ms); B gets it at once, then the next ones.
            BOOST_TEST(test::eventually([&] { return b.count("PUT", "/v1/peers/1/lease") >= 3; }));
            BOOST_TEST(a.count("PUT", "/v1/peers/1/lease") == 1u);
            BOOST_TEST(b.count("POST", "/v1/peers") == 0u);
            for (const auto& auth : b.authorizations("PUT", "/v1/peers/1/lease"))
                BOOST_TEST(auth == bearer);
            BOOST_TEST(node.registered());
            // The token was kept: pN.config still has it, and names B now.
            const auto config = read_peer_config(options.config_file);
            BOOST_TEST_REQUIRE(config.has_value(), config.error().message);
            BOOST_TEST(config->token == good_token);
            BOOST_TEST(config->index.port == b.port());
            quit_promptly(io, node);
            BOOST_TEST(b.count("DELETE", "/v1/peers/1") == 1u);
            BOOST_TEST(
                b.authorizations("DELETE", "/v1/peers/1") == std::vector<std::string>{bearer},
                boost::test_tools::per_element());
            std::filesystem::remove(options.config_file);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_index_that_hangs_is_left_in_time_to_renew_at_the_next) {
    // A accepts the renewal and never answers. The call is cut after a third of the lease
    // divided by the two servers (250 ms at least), so that B renews well before the lease ends.
    constexpr unsigned ttl_ms = 1'500;
    test::temp_dir dir;
    test::io_thread io;
    fake_index a([&](const std::string& method, const std::string& target, std::size_t) {
        if (method == "POST" && target == "/v1/peers") return answer{201, lease_body(1, ttl_ms)};
        if (method == "PUT") return answer{0, {}};
        return answer{404, not_found_body};
    });
    fake_index b([&](const std::string& method, const std::string& target, std::size_t) {
        if (method == "PUT" && target == "/v1/peers/1/lease") {
            return answer{200, R"({"id":1,"ttl_ms":)" + std::to_string(ttl_ms) + "}"};
        }
        if (method == "DELETE") return answer{200, R"({"id":1,"unregistered":true})"};
        return answer{404, not_found_body};
    });
    auto options = peer_on(dir, 1, a.port());
    options.index.push_back({"127.0.0.1", b.port()});
    PeerNode node(io.executor(), options);
    const auto started = io.run(node.async_start());
    const auto registered = std::chrono::steady_clock::now();
    BOOST_TEST_REQUIRE(!started, started.message);
    BOOST_TEST_REQUIRE(test::eventually([&] { return b.count("PUT", "/v1/peers/1/lease") >= 1; }));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - registered);
    BOOST_TEST_MESSAGE("renewed at the next index " << took.count() << " ms after registering");
    BOOST_TEST(took.count() < ttl_ms);
    BOOST_TEST(a.count("PUT", "/v1/peers/1/lease") == 1u);
    BOOST_TEST(b.count("POST", "/v1/peers") == 0u);
    BOOST_TEST(node.registered());
    quit_promptly(io, node);
}

BOOST_AUTO_TEST_SUITE_END()
