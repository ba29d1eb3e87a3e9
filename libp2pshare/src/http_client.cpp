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

asio::awaitable<Result<client_stream>> async_open(asio::any_io_executor executor,
                                                  const std::string& host, std::uint16_t port,
                                                  std::chrono::milliseconds timeout,
                                                  const tls_expectation* tls) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto where = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    where += ":" + std::to_string(port);
    auto socket = co_await async_connect(executor, host, port, timeout);
    if (!socket) {
        co_return Error{socket.error(), socket.error() == make_error_code(errc::timeout)
                                            ? where + " did not answer in time"
                                            : where + " cannot be reached"};
    }
    client_stream stream(std::move(*socket));
    if (tls != nullptr) {
        stream.expires_at(deadline);
        if (auto e = co_await stream.async_handshake(*tls, host)) co_return e;
    }
    co_return stream;
}

} // namespace p2pshare::detail
