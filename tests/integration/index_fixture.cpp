#include "index_fixture.hpp"

#include "redis_fixture.hpp"
#include "test_http.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace p2pshare::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

namespace {

/// Index servers of this process alive now: the first of a test empties the test store.
int live_indexes = 0;

/// The standalone server of P2PSHARE_TEST_STORE=redis, started by its first use.
redis_server& test_redis() {
    static redis_server server;
    return server;
}

/// The store the index tests run on: P2PSHARE_TEST_STORE=memory (the default), redis (a
/// standalone redis-server this process starts) or cluster (three masters it starts), so that
/// the same suites check every store (ctest index_api, index_api.redis, index_api.cluster).
std::string test_store() {
    const char* const kind = std::getenv("P2PSHARE_TEST_STORE");
    const std::string k = kind == nullptr ? "" : kind;
    if (k.empty() || k == "memory") return "memory";
    if (k == "redis") return test_redis().seeds();
    if (k == "cluster") return redis_cluster::shared().seeds();
    throw std::runtime_error("P2PSHARE_TEST_STORE must be memory, redis or cluster, not " + k);
}

/// Empties the test store when `store` is it: every test starts from an empty network.
void empty_test_store(const std::string& store) {
    if (store == "memory" || store != test_store()) return;
    const std::string k = std::getenv("P2PSHARE_TEST_STORE");
    if (k == "redis") {
        test_redis().flushall();
    } else {
        redis_cluster::shared().reset();
    }
}

} // namespace

IndexServerOptions running_index::defaults() {
    IndexServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.config_dir = "config"; // as the app does; the constructor puts it in the temporary folder
    o.lease_ttl = std::chrono::minutes(10);
    o.limits.read_timeout = 10s;
    o.limits.idle_timeout = 30s;
    o.limits.write_timeout = 10s;
    o.limits.stop_grace = 2s;
    o.store = test_store();
    return o;
}

running_index::running_index(IndexServerOptions options, bool on_strand)
    : options_(std::move(options)) {
    if (options_.config_dir == "config") {
        options_.config_dir = dir_ / "config";
    }
    if (live_indexes == 0) empty_test_store(options_.store);
    server_ = std::make_unique<IndexServer>(
        on_strand ? boost::asio::make_strand(io_.executor()) : io_.executor(), options_);
    const auto ec = server_->start();
    if (ec) throw std::runtime_error("the index server did not start: " + ec.message);
    port_ = server_->port();
    BOOST_TEST_REQUIRE(port_ != 0);
    ++live_indexes;
}

running_index::~running_index() {
    try {
        stop();
    } catch (const std::exception& e) {
        BOOST_ERROR("stopping the index server failed: " << e.what());
    }
    server_.reset();
    --live_indexes;
}

void running_index::stop() {
    if (stopped_) return;
    stopped_ = true;
    io_.run(server_->async_stop());
}

http_client::http_client(std::uint16_t port) : stream_(io_) {
    stream_.expires_after(10s);
    stream_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
}

http_reply http_client::call(const std::string& method, const std::string& target,
                             const std::string& body,
                             const std::map<std::string, std::string>& headers, unsigned version) {
    stream_.expires_after(10s);
    http::write(stream_, make_request(method, target, body, headers, version));
    return read_reply(method == "HEAD");
}

http_reply http_client::read_reply(bool head) {
    stream_.expires_after(10s);
    http::response_parser<http::string_body> parser;
    if (head) parser.skip(true);
    http::read(stream_, buffer_, parser);
    return to_reply(parser.get());
}

void http_client::send_raw(std::string_view bytes) {
    stream_.expires_after(10s);
    asio::write(stream_, asio::buffer(bytes.data(), bytes.size()));
}

std::string http_client::read_until(std::string_view needle) {
    stream_.expires_after(10s);
    for (;;) {
        const std::string_view have(static_cast<const char*>(buffer_.data().data()),
                                    buffer_.size());
        if (const auto at = have.find(needle); at != std::string_view::npos) {
            std::string out(have.substr(0, at + needle.size()));
            buffer_.consume(out.size());
            return out;
        }
        const auto n = stream_.read_some(buffer_.prepare(4096));
        buffer_.commit(n);
    }
}

bool http_client::wait_closed(std::chrono::milliseconds timeout) {
    if (buffer_.size() != 0) return false;
    stream_.expires_after(timeout);
    char byte = 0;
    boost::system::error_code ec;
    const auto n = stream_.read_some(asio::buffer(&byte, 1), ec);
    if (n != 0) return false;
    return ec == asio::error::eof || ec == asio::error::connection_reset;
}

void http_client::close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    stream_.close();
}

http_reply parse_reply(std::string_view raw) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    boost::system::error_code ec;
    parser.put(asio::buffer(raw.data(), raw.size()), ec);
    if (!ec && !parser.is_done()) parser.put_eof(ec);
    if (ec || !parser.is_done()) {
        throw std::runtime_error("not a complete HTTP response (" + ec.message() +
                                 "): " + std::string(raw));
    }
    return to_reply(parser.get());
}

json::value json_of(const http_reply& reply) {
    boost::system::error_code ec;
    auto v = json::parse(reply.body, ec);
    BOOST_TEST_REQUIRE(!ec, "the body is not JSON: " << reply.body);
    return v;
}

void check_error(const http_reply& reply, unsigned status, std::string_view code) {
    BOOST_TEST_CONTEXT("reply " << reply.status << " " << reply.body) {
        BOOST_TEST(reply.status == status);
        BOOST_TEST(reply.header("content-type") == "application/json");
        const auto v = json_of(reply);
        BOOST_TEST_REQUIRE(v.is_object());
        BOOST_TEST(v.as_object().size() == 2u);
        const auto* error = v.as_object().if_contains("error");
        const auto* message = v.as_object().if_contains("message");
        BOOST_TEST_REQUIRE(error != nullptr);
        BOOST_TEST_REQUIRE(message != nullptr);
        BOOST_TEST_REQUIRE(error->is_string());
        BOOST_TEST(std::string_view(error->get_string()) == code);
        BOOST_TEST_REQUIRE(message->is_string());
        BOOST_TEST(!message->get_string().empty());
    }
}

std::string sha_of(std::string_view seed) { return sha256_hex(seed); }

std::string file_json(std::string_view name, std::uint64_t size) {
    return R"({"name":)" + json_quote(name) + R"(,"size":)" + std::to_string(size) +
           R"(,"sha256":")" + sha_of(name) + R"("})";
}

std::string files_json(const std::vector<std::string>& names) {
    std::string out = "[";
    for (const auto& n : names) {
        if (out.size() > 1) out += ",";
        out += file_json(n);
    }
    return out + "]";
}

std::string register_peer(std::uint16_t port, std::uint32_t id,
                          const std::vector<std::string>& names, std::uint16_t peer_port) {
    const auto reply =
        http_call(port, "POST", "/v1/peers",
                  R"({"id":)" + std::to_string(id) + R"(,"port":)" + std::to_string(peer_port) +
                      R"(,"files":)" + files_json(names) + "}");
    BOOST_TEST_REQUIRE(reply.status == 201u, "register " << id << ": " << reply.body);
    const auto v = json_of(reply);
    return std::string(v.at("token").as_string());
}

std::map<std::string, std::string> bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
}

std::vector<std::string> list_names(std::uint16_t port, const std::string& query) {
    std::vector<std::string> out;
    std::string after;
    for (int page = 0; page < 1000; ++page) {
        std::string target = "/v1/files?" + query;
        if (!after.empty()) target += "&after=" + after;
        const auto reply = http_call(port, "GET", target);
        BOOST_TEST_REQUIRE(reply.status == 200u, target << ": " << reply.body);
        const auto v = json_of(reply);
        for (const auto& n : v.at("names").as_array())
            out.emplace_back(n.as_string());
        const auto& next = v.at("next_after");
        if (next.is_null()) return out;
        after.clear();
        for (const char c : std::string_view(next.as_string())) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
            after += buf;
        }
    }
    BOOST_FAIL("the list does not end");
    return out;
}

std::vector<std::uint64_t> lookup_ids(std::uint16_t port, const std::string& name) {
    const auto reply =
        http_call(port, "POST", "/v1/lookup", R"({"names":[)" + json_quote(name) + "]}");
    BOOST_TEST_REQUIRE(reply.status == 200u, reply.body);
    const auto v = json_of(reply);
    std::vector<std::uint64_t> ids;
    for (const auto& s : v.at("results").at(0).at("sources").as_array()) {
        ids.push_back(s.at("id").to_number<std::uint64_t>());
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::string snapshot(std::uint16_t port, const std::vector<std::string>& extra_names) {
    auto names = list_names(port);
    std::string out;
    for (const auto& n : names)
        out += n + "\n";
    names.insert(names.end(), extra_names.begin(), extra_names.end());
    // One name per lookup: the tests may set max_lookup_names very low.
    for (const auto& n : names) {
        const auto lookup =
            http_call(port, "POST", "/v1/lookup", R"({"names":[)" + json_quote(n) + "]}");
        BOOST_TEST_REQUIRE(lookup.status == 200u, lookup.body);
        out += lookup.body + "\n";
    }
    const auto health = http_call(port, "GET", "/v1/health");
    BOOST_TEST_REQUIRE(health.status == 200u);
    const auto v = json_of(health);
    for (const auto* key : {"peers", "names", "files"}) {
        out += std::string(key) + "=" + json::serialize(v.at(key)) + "\n";
    }
    return out;
}

std::vector<std::string> allowed_methods(const http_reply& reply) {
    std::vector<std::string> out;
    const auto header = reply.header("allow");
    std::string_view rest = header;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        auto item = rest.substr(0, comma);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        if (!item.empty()) out.emplace_back(item);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    return out;
}

void check_alive(std::uint16_t port) {
    const auto reply = http_call(port, "GET", "/v1/health");
    BOOST_TEST(reply.status == 200u);
    BOOST_TEST(json_of(reply).at("status").as_string() == "ok");
}

} // namespace p2pshare::test
