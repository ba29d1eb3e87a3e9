// An HTTP/1.1 keep-alive server on one strand (or implicit strand): accept loop, one coroutine per
// connection, bounded headers and bodies, deadlines on every wait, a connection limit and a
// graceful stop. The index server and the peer's file server are both built on it.
//
// The request path is built for a small cost per request: Beast's basic_parser fills a request
// object that each connection reuses, a response head is formatted into a reused buffer and
// sent with its body in one system call without waiting (a wait is only started when the
// socket is full), reads go through Asio's reactor without an epoll_ctl per wait (and, after an
// answer, only once the other ready work has run), and each connection has one deadline timer
// that is re-armed only when it fires or when a deadline moves earlier.
#pragma once

#include "http_message.hpp"
#include "metrics.hpp"

#include <p2pshare/error.hpp>
#include <p2pshare/limits.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2pshare::detail {

class tls_server_context;
class tls_stream;

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
/// The executor a server's work runs on, one handler at a time: a strand, or the executor of an
/// io_context that one thread runs (an implicit strand, in Asio's words).
using strand_type = asio::any_io_executor;

/// What a request handler sees of its connection.
class connection {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    struct state;

    explicit connection(state& s) : s_(s) {}

    tcp::socket& socket() noexcept;
    const tcp::endpoint& remote() const noexcept;
    const ServerLimits& limits() const noexcept;
    bool stopping() const noexcept;
    /// Whether this answer is the connection's last (the server stops and keeps no connection).
    bool closing() const noexcept;

    /// Sends a complete response under the write deadline (only its header, with the
    /// Content-Length of its body, when the request was HEAD). Returns false when it failed.
    asio::awaitable<bool> write(const response& res);

    /// Sends only the header of `res`, announcing `content_length` body bytes that the caller
    /// then writes to socket(). With `more`, the kernel holds the header back briefly so that
    /// it leaves in one packet with the start of the body.
    asio::awaitable<bool> write_head(const response& res, std::uint64_t content_length, bool more);

    /// Waits until the socket can take more bytes, for at most write_timeout.
    asio::awaitable<bool> wait_writable();

    /// The connection's TLS, or nullptr when it is plain TCP. Over TLS, a body goes through
    /// send_body() (or tls()->sendfile() where the kernel encrypts), never straight to socket().
    tls_stream* tls() const noexcept;
    /// Sends `size` bytes of a body whose header went out with write_head(), under the write
    /// deadline. Returns false when it failed.
    asio::awaitable<bool> send_body(const char* data, std::size_t size);

    /// Whether the request being answered is a HEAD request.
    bool head = false;

    /// A string a handler may build its answer's body in and give back after sending it, so
    /// that one buffer serves all the connection's requests (a large one is released).
    std::string& spare() noexcept;

    /// Records `n` bytes sent: the server's graceful stop waits while responses make progress.
    void progressed(std::size_t n);

    /// What was sent, for the request log.
    unsigned status = 0;
    std::uint64_t bytes_sent = 0;

private:
    friend class http_server;
    /// Sends what it can without waiting: 1 when all is sent, 0 when the socket is full (the
    /// buffers then hold the rest), -1 on an error.
    int send_now(std::array<asio::const_buffer, 2>& buffers, bool more);
    /// Sends the rest, waiting for room in the socket under the write deadline.
    asio::awaitable<bool> send(std::array<asio::const_buffer, 2> buffers, bool more);
    state& s_;
};

/// Handles one request; writes the response through the connection. Returns whether the
/// connection may be kept for another request. It must not throw for expected failures.
using request_handler = std::function<asio::awaitable<bool>(request&, connection&)>;

/// Answers with error_response(req, code, message) and ends the connection (returns false).
asio::awaitable<bool> refuse_request(const request& req, connection& conn, errc code,
                                     std::string message);

class http_server : public std::enable_shared_from_this<http_server> {
public:
    http_server(strand_type strand, ServerLimits limits, request_handler handler, std::string name);

    /// Binds and listens; port 0 picks a free port. With `reuse_port`, SO_REUSEPORT: other
    /// sockets that set it too may listen on the same port.
    boost::system::error_code listen(const std::string& host, std::uint16_t port,
                                     bool reuse_port = false);
    std::uint16_t port() const noexcept { return port_; }

    /// Speaks TLS on every connection, with this certificate (before start()). A client that
    /// sends plain HTTP gets `400 tls_required` in plain HTTP, and the connection is closed.
    void use_tls(std::shared_ptr<const tls_server_context> context) noexcept {
        tls_ = std::move(context);
    }
    bool tls() const noexcept { return tls_ != nullptr; }

    /// Starts the accept loop (after listen()).
    void start();

    /// Stops accepting, closes idle connections and waits for the responses in flight. They
    /// are cut only once none of them has sent a byte for limits.stop_grace. Completes when no
    /// connection is left. Must run on the server's strand. Cancelled (per-operation
    /// cancellation of the awaiting coroutine), it closes every connection at once and completes
    /// when they are gone.
    asio::awaitable<void> async_stop();

    /// Stops at once: closes the acceptor and every connection. Must run on the strand.
    void cancel();

    /// Counts connections opened, open and refused into `m` (none by default), which `owner`
    /// keeps alive for as long as the server. Before start().
    void count_connections_in(connection_metrics* m, std::shared_ptr<const void> owner) noexcept {
        counters_ = m;
        counters_owner_ = std::move(owner);
    }

    /// Connections busy with a request right now.
    std::size_t busy_count() const noexcept { return busy_; }
    std::size_t connection_count() const noexcept { return sessions_.size(); }
    bool stopping() const noexcept { return stopping_; }
    const strand_type& strand() const noexcept { return strand_; }

private:
    using session = connection::state;

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> run_session(std::shared_ptr<session> s);
    asio::awaitable<void> watch_deadline(std::shared_ptr<session> s);
    /// The TLS handshake under the read deadline; false when the connection is to be closed
    /// (after a plain HTTP request, once it has been told).
    asio::awaitable<bool> accept_tls(session& s);
    void refuse(tcp::socket& socket);
    /// After an error answer that ends the connection: drops the rest of the client's input.
    asio::awaitable<void> discard_input(session& s);
    asio::awaitable<void> watch_grace();
    void close_idle();
    void close_all();

    strand_type strand_;
    ServerLimits limits_;
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
    std::shared_ptr<const tls_server_context> tls_;
    connection_metrics* counters_ = nullptr;
    std::shared_ptr<const void> counters_owner_;
};

} // namespace p2pshare::detail
