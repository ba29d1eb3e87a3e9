// An HTTP/1.1 keep-alive server on one strand: accept loop, one coroutine per connection, bounded
// headers and bodies, deadlines on every wait, a connection limit and a graceful stop.
// The index server and the peer's file server are both built on it.
#pragma once

#include <p2pshare/error.hpp>
#include <p2pshare/limits.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>

namespace p2pshare::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using strand_type = asio::strand<asio::any_io_executor>;

using request = http::request<http::string_body>;
using string_response = http::response<http::string_body>;

/// What a request handler sees of its connection.
class connection {
public:
    using time_point = std::chrono::steady_clock::time_point;

    connection(beast::tcp_stream& stream, tcp::endpoint remote, const server_limits& limits,
               const bool& stopping, time_point& last_progress)
        : stream_(stream),
          remote_(remote),
          limits_(limits),
          stopping_(stopping),
          last_progress_(last_progress) {}

    beast::tcp_stream& stream() noexcept { return stream_; }
    const tcp::endpoint& remote() const noexcept { return remote_; }
    const server_limits& limits() const noexcept { return limits_; }
    bool stopping() const noexcept { return stopping_; }

    /// Sends a complete response under the write deadline (only its header, with the
    /// Content-Length of its body, when the request was HEAD). Returns false when it failed.
    asio::awaitable<bool> write(string_response& response);

    /// Whether the request being answered is a HEAD request.
    bool head = false;

    /// Records `n` bytes sent: the server's graceful stop waits while responses make progress.
    void progressed(std::size_t n) {
        bytes_sent += n;
        last_progress_ = std::chrono::steady_clock::now();
    }

    /// What was sent, for the request log.
    unsigned status = 0;
    std::uint64_t bytes_sent = 0;

private:
    beast::tcp_stream& stream_;
    tcp::endpoint remote_;
    const server_limits& limits_;
    const bool& stopping_;
    time_point& last_progress_;
};

/// Handles one request; writes the response through the connection. Returns whether the
/// connection may be kept for another request. It must not throw for expected failures.
using request_handler = std::function<asio::awaitable<bool>(request&, connection&)>;

/// A JSON response with the keep-alive of the request.
string_response json_response(const request& req, http::status status, std::string body);
/// {"error": CODE, "message": TEXT} with the status of `code`.
string_response error_response(const request& req, errc code, std::string message);
/// Same, for a request that could not be parsed (so the connection is closed after it).
string_response error_response(errc code, std::string message);

class http_server : public std::enable_shared_from_this<http_server> {
public:
    http_server(strand_type strand, server_limits limits, request_handler handler,
                std::string name);

    /// Binds and listens; port 0 picks a free port.
    boost::system::error_code listen(const std::string& host, std::uint16_t port);
    std::uint16_t port() const noexcept { return port_; }

    /// Starts the accept loop (after listen()).
    void start();

    /// Stops accepting, closes idle connections and waits for the responses in flight. They
    /// are cut only once none of them has sent a byte for limits.stop_grace. Completes when no
    /// connection is left. Must run on the server's strand.
    asio::awaitable<void> async_stop();

    /// Stops at once: closes the acceptor and every connection. Must run on the strand.
    void cancel();

    /// Connections busy with a request right now.
    std::size_t busy_count() const noexcept { return busy_; }
    std::size_t connection_count() const noexcept { return sessions_.size(); }
    bool stopping() const noexcept { return stopping_; }
    const strand_type& strand() const noexcept { return strand_; }

private:
    struct session {
        explicit session(tcp::socket socket) : stream(std::move(socket)) {}
        beast::tcp_stream stream;
        bool idle = true;
    };

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> run_session(std::shared_ptr<session> s, tcp::endpoint remote);
    asio::awaitable<void> refuse(tcp::socket socket);
    /// After an error answer that ends the connection: drops the rest of the client's input.
    asio::awaitable<void> discard_input(session& s);
    asio::awaitable<void> watch_grace();
    void close_idle();
    void close_all();

    strand_type strand_;
    server_limits limits_;
    request_handler handler_;
    std::string name_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::list<std::shared_ptr<session>> sessions_;
    std::atomic<std::size_t> busy_{0};
    bool stopping_ = false;
    bool accepting_ = false;
    asio::steady_timer all_done_;
    asio::steady_timer grace_;
    connection::time_point last_progress_{};
};

} // namespace p2pshare::detail
