// The client side: connecting with a deadline, one request/response exchange, and the index
// client that peers use (one kept-alive connection, reopened when the index closed it).
#pragma once

#include "protocol.hpp"

#include <p2pshare/config.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace p2pshare::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

/// A request as a client sends it.
using client_request = http::request<http::string_body>;

/// Resolves and connects under `timeout`. Fails with errc::unreachable or errc::timeout.
asio::awaitable<boost::system::result<tcp::socket>> async_connect(
    asio::any_io_executor executor, const std::string& host, std::uint16_t port,
    std::chrono::milliseconds timeout);

class index_client {
public:
    struct timeouts {
        std::chrono::milliseconds connect{3'000};
        std::chrono::milliseconds request{10'000};
    };

    index_client(asio::any_io_executor executor, ServerAddress index);
    index_client(asio::any_io_executor executor, ServerAddress index, timeouts t);

    const ServerAddress& address() const noexcept { return address_; }

    /// Sends one request and returns the parsed JSON of a 2xx answer; otherwise the server's
    /// {"error","message"} as an api_error, or unreachable / timeout / bad_response.
    asio::awaitable<api_result<boost::json::value>> call(http::verb method, std::string target,
                                                         std::string body = {},
                                                         std::string token = {});

    /// Drops the kept-alive connection.
    void close();

private:
    asio::any_io_executor executor_;
    ServerAddress address_;
    timeouts timeouts_;
    std::optional<beast::tcp_stream> idle_;
};

} // namespace p2pshare::detail
