// The client side of HTTP: connecting with a deadline.
#pragma once

#include "client_stream.hpp"
#include "protocol.hpp"

#include <p2pshare/config.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

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

/// Connects as async_connect does, then, with `tls`, starts TLS as it says, all under `timeout`.
/// Fails with errc::unreachable, errc::timeout or errc::tls_failed, with a message naming
/// host:port; cancelled, with operation_aborted.
asio::awaitable<Result<client_stream>> async_open(asio::any_io_executor executor,
                                                  const std::string& host, std::uint16_t port,
                                                  std::chrono::milliseconds timeout,
                                                  const tls_expectation* tls);

} // namespace p2pshare::detail
