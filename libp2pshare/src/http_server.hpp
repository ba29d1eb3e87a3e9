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

#include <p2pshare/error.hpp>
#include <p2pshare/limits.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

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

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
/// The executor a server's work runs on, one handler at a time: a strand, or the executor of an
/// io_context that one thread runs (an implicit strand, in Asio's words).
using strand_type = asio::any_io_executor;

/// `executor` itself when one thread runs its io_context, else a strand made from it.
inline strand_type serial_executor(asio::any_io_executor executor, bool single_thread) {
    if (single_thread) return executor;
    return asio::make_strand(std::move(executor));
}

/// A request as the server parsed it. A connection reuses one for all its requests, so that
/// its strings keep their capacity.
class request {
public:
    http::verb method() const noexcept { return method_; }
    std::string_view method_string() const noexcept { return method_text_; }
    std::string_view target() const noexcept { return target_; }
    unsigned version() const noexcept { return version_; }
    bool keep_alive() const noexcept { return keep_alive_; }
    const std::string& body() const noexcept { return body_; }

    /// The value of a header field (the first one, when it came several times), or "".
    std::string_view operator[](http::field f) const noexcept;

    /// Gives back the capacity of a large body (an upload of a long file list), so that a
    /// connection waiting for its next request does not hold megabytes.
    void trim() noexcept;

private:
    friend class request_parser;
    void clear() noexcept;
    void add(http::field f, std::string_view value);

    http::verb method_ = http::verb::unknown;
    std::string method_text_;
    std::string target_;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    std::string body_;
    /// Known fields only; slots past `used_` keep their capacity for the next request.
    std::vector<std::pair<http::field, std::string>> fields_;
    std::size_t used_ = 0;
};

/// A response: status, a few header fields and a body. `Server`, `Content-Length` and
/// `Connection` are written by the server.
class response {
public:
    response() = default;
    response(http::status status, unsigned version, bool keep_alive)
        : status_(status), version_(version), keep_alive_(keep_alive) {}

    http::status result() const noexcept { return status_; }
    unsigned result_int() const noexcept { return static_cast<unsigned>(status_); }
    void result(http::status s) noexcept { status_ = s; }
    bool keep_alive() const noexcept { return keep_alive_; }
    void keep_alive(bool k) noexcept { keep_alive_ = k; }
    unsigned version() const noexcept { return version_; }

    /// Content-Type; a literal, so it is not copied.
    void content_type(std::string_view type) noexcept { content_type_ = type; }
    /// Sets a header field (replacing an earlier value of the same field).
    void set(http::field f, std::string_view value);
    std::string_view operator[](http::field f) const noexcept;

    std::string& body() noexcept { return body_; }
    const std::string& body() const noexcept { return body_; }

    /// Appends the status line and header of this response, with `content_length`, to `out`;
    /// with `closing`, says `Connection: close` whatever keep_alive() says.
    void write_head(std::string& out, std::uint64_t content_length, bool closing = false) const;

private:
    http::status status_ = http::status::ok;
    unsigned version_ = 11;
    bool keep_alive_ = true;
    std::string_view content_type_;
    std::vector<std::pair<http::field, std::string>> fields_;
    std::string body_;
};

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

    /// Sends a complete response under the write deadline (only its header, with the
    /// Content-Length of its body, when the request was HEAD). Returns false when it failed.
    asio::awaitable<bool> write(const response& res);

    /// Sends only the header of `res`, announcing `content_length` body bytes that the caller
    /// then writes to socket(). With `more`, the kernel holds the header back briefly so that
    /// it leaves in one packet with the start of the body.
    asio::awaitable<bool> write_head(const response& res, std::uint64_t content_length, bool more);

    /// Waits until the socket can take more bytes, for at most write_timeout.
    asio::awaitable<bool> wait_writable();

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

/// A JSON response with the version and keep-alive of the request.
response json_response(const request& req, http::status status, std::string body);
/// {"error": CODE, "message": TEXT} with the status of `code`.
response error_response(const request& req, errc code, std::string message);
/// Same, for a request that could not be parsed (so the connection is closed after it).
response error_response(errc code, std::string message);
/// Answers with error_response(req, code, message) and ends the connection (returns false).
asio::awaitable<bool> refuse_request(const request& req, connection& conn, errc code,
                                     std::string message);

class http_server : public std::enable_shared_from_this<http_server> {
public:
    http_server(strand_type strand, ServerLimits limits, request_handler handler, std::string name);

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
    using session = connection::state;

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> run_session(std::shared_ptr<session> s);
    asio::awaitable<void> watch_deadline(std::shared_ptr<session> s);
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
};

} // namespace p2pshare::detail
