#include "http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

namespace p2pshare::detail {

using namespace boost::asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_index_response = 64 * 1024 * 1024;
} // namespace

asio::awaitable<boost::system::result<tcp::socket>> async_connect(
    asio::any_io_executor executor, const std::string& host, std::uint16_t port,
    std::chrono::milliseconds timeout) {
    beast::tcp_stream stream(executor);
    boost::system::error_code ec;
    boost::system::error_code not_numeric;
    const auto address = asio::ip::make_address(host, not_numeric);
    if (!not_numeric) {
        // An address, as peers and the index advertise them: no resolver (its thread) needed.
        stream.expires_after(timeout);
        std::tie(ec) = co_await stream.async_connect(tcp::endpoint(address, port), use_tuple);
    } else {
        // Name resolution counts against the same deadline as the connection.
        tcp::resolver resolver(executor);
        asio::steady_timer deadline(executor, timeout);
        auto resolved = co_await (resolver.async_resolve(host, std::to_string(port), use_tuple) ||
                                  deadline.async_wait(use_tuple));
        if (resolved.index() != 0) co_return make_error_code(errc::timeout);
        auto [rec, results] = std::get<0>(std::move(resolved));
        if (rec) co_return make_error_code(errc::unreachable);
        stream.expires_after(timeout);
        auto [connect_ec, endpoint] = co_await stream.async_connect(results, use_tuple);
        ec = connect_ec;
    }
    if (ec) {
        co_return make_error_code(ec == beast::error::timeout ? errc::timeout : errc::unreachable);
    }
    boost::system::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    co_return stream.release_socket();
}

index_client::index_client(asio::any_io_executor executor, ServerAddress index)
    : index_client(std::move(executor), std::move(index), timeouts{}) {}

index_client::index_client(asio::any_io_executor executor, ServerAddress index, timeouts t)
    : executor_(std::move(executor)), address_(std::move(index)), timeouts_(t) {}

void index_client::close() { idle_.reset(); }

asio::awaitable<api_result<boost::json::value>> index_client::call(http::verb method,
                                                                   std::string target,
                                                                   std::string body,
                                                                   std::string token) {
    client_request req{method, target, 11};
    req.set(http::field::host, address_.host);
    req.set(http::field::user_agent, "p2pshare");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (method == http::verb::post || method == http::verb::put) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
    }
    req.keep_alive(true);

    // A kept connection may have been closed by the index meanwhile: then try once afresh.
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = idle_.has_value();
        std::optional<beast::tcp_stream> stream;
        if (reused) {
            stream.emplace(std::move(*idle_));
            idle_.reset();
        } else {
            auto connected =
                co_await async_connect(executor_, address_.host, address_.port, timeouts_.connect);
            if (!connected) {
                co_return fail(connected.error() == make_error_code(errc::timeout)
                                   ? errc::timeout
                                   : errc::unreachable,
                               "the index server at " + address_.host + ":" +
                                   std::to_string(address_.port) + " cannot be reached");
            }
            stream.emplace(std::move(*connected));
        }
        stream->expires_after(timeouts_.request);
        auto [wec, wn] = co_await http::async_write(*stream, req, use_tuple);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(max_index_response);
        boost::system::error_code ec = wec;
        if (!ec)
            std::tie(ec, std::ignore) =
                co_await http::async_read(*stream, buffer, parser, use_tuple);
        if (ec) {
            if (reused && ec != beast::error::timeout) continue;
            co_return fail(ec == beast::error::timeout ? errc::timeout : errc::unreachable,
                           "the index server at " + address_.host + ":" +
                               std::to_string(address_.port) + " did not answer: " + ec.message());
        }
        auto& res = parser.get();
        if (res.keep_alive() && !idle_) idle_.emplace(std::move(*stream));
        boost::system::error_code jec;
        auto value = boost::json::parse(res.body(), jec);
        if (jec) {
            co_return fail(errc::bad_response, "the index answered " +
                                                   std::to_string(res.result_int()) +
                                                   " with a body that is not JSON");
        }
        if (res.result_int() / 100 == 2) co_return value;
        // An error: {"error": CODE, "message": TEXT}
        api_error e{errc::bad_response, "the index answered " + std::to_string(res.result_int())};
        if (value.is_object()) {
            const auto& o = value.get_object();
            if (const auto* m = o.if_contains("message"); m && m->is_string()) {
                e.message = std::string(m->get_string());
            }
            if (const auto* c = o.if_contains("error"); c && c->is_string()) {
                e.code = errc_from_string(c->get_string());
            }
        }
        co_return e;
    }
    co_return fail(errc::unreachable, "the index server closed the connection");
}

} // namespace p2pshare::detail
