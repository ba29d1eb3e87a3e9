#include "http_server.hpp"

#include "http_parser.hpp"
#include "protocol.hpp"
#include "support.hpp"
#include "tls.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>

#include <sys/socket.h>

#include <array>
#include <exception>

namespace p2pshare::detail {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
/// Bytes asked of the socket per read.
constexpr std::size_t read_chunk = 16 * 1024;
/// Bodies up to this size are copied after their head and sent as one buffer.
constexpr std::size_t join_limit = 4 * 1024;

bool would_block(const boost::system::error_code& ec) {
    return ec == asio::error::would_block || ec == asio::error::try_again;
}

} // namespace

asio::awaitable<bool> refuse_request(const request& req, connection& conn, errc code,
                                     std::string message) {
    auto res = error_response(req, code, std::move(message));
    res.keep_alive(false);
    co_await conn.write(res);
    co_return false;
}

// ---------------------------------------------------------------------------------------------
// connection

struct connection::state {
    state(tcp::socket sock, const strand_type& strand, tcp::endpoint remote_endpoint,
          const ServerLimits& ServerLimits, const bool& server_stopping,
          time_point& server_progress)
        : socket(std::move(sock)),
          timer(strand, time_point::max()),
          remote(remote_endpoint),
          limits(ServerLimits),
          stopping(server_stopping),
          last_progress(server_progress) {}

    /// Sets the deadline of the waits to come. The timer is touched only when the deadline
    /// moves earlier than the one it waits for; otherwise it finds the new one when it fires.
    void expires_after(std::chrono::milliseconds d) {
        expired = false;
        deadline = clock::now() + d;
        if (deadline < armed) {
            armed = deadline;
            timer.cancel();
        }
    }

    void close() {
        closed = true;
        timer.cancel();
        boost::system::error_code ec;
        socket.close(ec);
    }

    tcp::socket socket;
    std::unique_ptr<tls_stream> tls; ///< when the server speaks TLS
    bool tls_wants_read = false;     ///< a TLS write waits for the socket to be readable
    asio::steady_timer timer;
    time_point deadline = time_point::max(); ///< of the current wait
    time_point armed = time_point::max();    ///< what the timer waits for
    bool expired = false;                    ///< the deadline passed: waits fail at once
    bool cut = false; ///< the server's stop cut this connection: every wait fails from now on
    bool idle = true; ///< waiting for the next request
    bool closed = false;
    tcp::endpoint remote;
    const ServerLimits& limits;
    const bool& stopping;
    time_point& last_progress;
    beast::flat_buffer in;
    request req;
    std::string head;  ///< the response head being sent, reused
    std::string spare; ///< connection::spare()
};

namespace {

/// Reads what the connection has into s.in. Asio's reactor reads at once when bytes may be
/// waiting and otherwise queues the read without a system call until epoll reports the socket
/// readable (an async_wait would re-arm the descriptor with epoll_ctl on each wait). Over TLS,
/// OpenSSL reads, and the socket is waited for as it asks.
asio::awaitable<boost::system::error_code> receive(connection::state& s) {
    if (!s.tls) {
        auto [ec, n] = co_await s.socket.async_read_some(s.in.prepare(read_chunk), use_tuple);
        if (!ec) s.in.commit(n);
        co_return ec;
    }
    for (;;) {
        const auto space = s.in.prepare(read_chunk);
        const auto r = s.tls->read(space.data(), space.size());
        if (r.st == tls_stream::status::done) {
            s.in.commit(r.n);
            co_return boost::system::error_code{};
        }
        if (r.st == tls_stream::status::closed) co_return asio::error::eof;
        if (r.st == tls_stream::status::failed) co_return asio::error::connection_reset;
        auto [ec] = co_await s.socket.async_wait(r.st == tls_stream::status::want_read
                                                     ? tcp::socket::wait_read
                                                     : tcp::socket::wait_write,
                                                 use_tuple);
        if (ec) co_return ec;
        if (s.expired) co_return asio::error::timed_out;
        if (s.cut) co_return asio::error::operation_aborted;
    }
}

asio::awaitable<boost::system::error_code> read_more(connection::state& s) {
    if (s.expired) co_return asio::error::timed_out;
    if (s.cut) co_return asio::error::operation_aborted;
    co_return co_await receive(s);
}

} // namespace

tcp::socket& connection::socket() noexcept { return s_.socket; }
tls_stream* connection::tls() const noexcept { return s_.tls.get(); }
const tcp::endpoint& connection::remote() const noexcept { return s_.remote; }
const ServerLimits& connection::limits() const noexcept { return s_.limits; }
bool connection::stopping() const noexcept { return s_.stopping; }
bool connection::closing() const noexcept {
    return s_.stopping && s_.limits.stop_idle == std::chrono::milliseconds::zero();
}
std::string& connection::spare() noexcept { return s_.spare; }

void connection::progressed(std::size_t n) {
    bytes_sent += n;
    // Only a stopping server looks at the time of the last progress.
    if (s_.stopping) s_.last_progress = clock::now();
}

int connection::send_now(std::array<asio::const_buffer, 2>& buffers, bool more) {
    if (s_.tls) {
        s_.tls_wants_read = false;
        for (auto& b : buffers) {
            while (b.size() > 0) {
                const auto r = s_.tls->write(b.data(), b.size());
                if (r.st == tls_stream::status::done) {
                    progressed(r.n);
                    b += r.n;
                    continue;
                }
                if (r.st == tls_stream::status::want_write) return 0;
                if (r.st == tls_stream::status::want_read) {
                    s_.tls_wants_read = true;
                    return 0;
                }
                return -1;
            }
        }
        return 1;
    }
    for (;;) {
        boost::system::error_code ec;
        const int flags = more ? MSG_MORE : 0;
        // One buffer goes out with send(2), two with sendmsg(2) (which copies in an iovec array).
        const auto n = buffers[1].size() == 0 ? s_.socket.send(buffers[0], flags, ec)
                                              : s_.socket.send(buffers, flags, ec);
        if (ec) return would_block(ec) ? 0 : -1;
        progressed(n);
        std::size_t skip = n;
        for (auto& b : buffers) {
            const auto k = std::min(skip, b.size());
            b += k;
            skip -= k;
        }
        if (buffers[0].size() + buffers[1].size() == 0) return 1;
    }
}

asio::awaitable<bool> connection::send(std::array<asio::const_buffer, 2> buffers, bool more) {
    // Only when the socket is full: wait for room, under the write deadline for the rest.
    s_.expires_after(s_.limits.write_timeout);
    for (;;) {
        if (s_.expired || s_.cut) co_return false;
        auto [wait_ec] = co_await s_.socket.async_wait(
            s_.tls_wants_read ? tcp::socket::wait_read : tcp::socket::wait_write, use_tuple);
        if (wait_ec) co_return false;
        if (const int done = send_now(buffers, more); done != 0) co_return done > 0;
    }
}

asio::awaitable<bool> connection::write(const response& res) {
    status = res.result_int();
    s_.head.clear();
    // A stopping server closes the connection after this answer: it says so.
    res.write_head(s_.head, res.body().size(), closing());
    // A small body is copied after its head: one buffer, one send(2).
    const bool joined = !head && res.body().size() <= join_limit;
    if (joined) s_.head.append(res.body());
    // Sent at once when the socket has room, which is nearly always: no wait, no timer.
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(s_.head), head || joined ? asio::const_buffer{} : asio::buffer(res.body())};
    if (const int done = send_now(buffers, false); done != 0) co_return done > 0;
    co_return co_await send(buffers, false);
}

asio::awaitable<bool> connection::write_head(const response& res, std::uint64_t content_length,
                                             bool more) {
    status = res.result_int();
    s_.head.clear();
    res.write_head(s_.head, content_length, closing());
    std::array<asio::const_buffer, 2> buffers{asio::buffer(s_.head), asio::const_buffer{}};
    if (const int done = send_now(buffers, more); done != 0) co_return done > 0;
    co_return co_await send(buffers, more);
}

asio::awaitable<bool> connection::send_body(const char* data, std::size_t size) {
    std::array<asio::const_buffer, 2> buffers{asio::buffer(data, size), asio::const_buffer{}};
    if (const int done = send_now(buffers, false); done != 0) co_return done > 0;
    co_return co_await send(buffers, false);
}

asio::awaitable<bool> connection::wait_writable() {
    if (s_.cut) co_return false;
    s_.expires_after(s_.limits.write_timeout);
    auto [ec] = co_await s_.socket.async_wait(tcp::socket::wait_write, use_tuple);
    co_return !ec && !s_.expired;
}

// ---------------------------------------------------------------------------------------------
// http_server

http_server::http_server(strand_type strand, ServerLimits limits, request_handler handler,
                         std::string name)
    : strand_(std::move(strand)),
      limits_(limits),
      handler_(std::move(handler)),
      name_(std::move(name)),
      acceptor_(strand_),
      all_done_(strand_, asio::steady_timer::time_point::max()),
      grace_(strand_) {}

boost::system::error_code http_server::listen(const std::string& host, std::uint16_t port,
                                              bool reuse_port) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return ec;
    const tcp::endpoint endpoint{address, port};
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return ec;
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return ec;
    if (reuse_port) {
        acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true),
                             ec);
        if (ec) return ec;
    }
    acceptor_.bind(endpoint, ec);
    if (ec) return ec;
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ec;
    port_ = acceptor_.local_endpoint().port();
    return {};
}

void http_server::start() {
    accepting_ = true;
    asio::co_spawn(
        strand_, [self = shared_from_this()] { return self->accept_loop(); },
        log_failure{name_ + ": accept loop"});
}

asio::awaitable<void> http_server::accept_loop() {
    asio::steady_timer backoff(strand_);
    while (!stopping_) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (stopping_ || ec == asio::error::operation_aborted) break;
        if (ec) {
            // Out of descriptors or a similar passing condition: log it and breathe.
            log().warn("{}: accept failed: {}", name_, ec.message());
            backoff.expires_after(std::chrono::milliseconds(100));
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        socket.non_blocking(true, ec);
        if (ec) {
            // Without it, a send could block the whole strand.
            log().warn("{}: cannot make a connection non-blocking: {}", name_, ec.message());
            socket.close(ec);
            continue;
        }
        if (sessions_.size() >= limits_.max_connections) {
            if (counters_ != nullptr) counters_->refused.add();
            refuse(socket);
            continue;
        }
        if (counters_ != nullptr) {
            counters_->accepted.add();
            counters_->open.add(1);
        }
        boost::system::error_code remote_ec;
        const auto remote = socket.remote_endpoint(remote_ec);
        auto s = std::make_shared<session>(std::move(socket), strand_, remote, limits_, stopping_,
                                           last_progress_);
        sessions_.push_back(s);
        asio::co_spawn(
            strand_, [self = shared_from_this(), s] { return self->watch_deadline(s); },
            log_failure{name_ + ": deadline"});
        asio::co_spawn(
            strand_, [self = shared_from_this(), s = std::move(s)] { return self->run_session(s); },
            log_failure{name_ + ": session"});
    }
    accepting_ = false;
}

void http_server::refuse(tcp::socket& socket) {
    boost::system::error_code ec;
    if (tls_) {
        // A plain answer would be noise to a TLS client: close.
        socket.close(ec);
        return;
    }
    // The answer is small and the new socket's buffer empty: it is sent at once or not at all.
    const auto res = error_response(errc::too_many_connections,
                                    "the server is at its limit of " +
                                        std::to_string(limits_.max_connections) + " connections");
    std::string head;
    res.write_head(head, res.body().size());
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(res.body())};
    socket.send(buffers, 0, ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
}

asio::awaitable<void> http_server::watch_deadline(std::shared_ptr<session> s) {
    while (!s->closed) {
        s->armed = s->deadline;
        s->timer.expires_at(s->armed);
        co_await s->timer.async_wait(use_tuple);
        if (s->closed) break;
        if (connection::clock::now() >= s->deadline) {
            // The wait in progress has run out of time: fail it, and any that follows until a
            // new deadline is set.
            s->expired = true;
            s->deadline = connection::time_point::max();
            boost::system::error_code ec;
            s->socket.cancel(ec);
        }
    }
}

asio::awaitable<void> http_server::run_session(std::shared_ptr<session> s) {
    // However the session ends (even by an exception), the connection is closed, leaves the
    // list, and a stop waiting for the last one hears of it.
    struct ending {
        http_server& server;
        const std::shared_ptr<session>& s;
        ~ending() {
            s->close();
            server.sessions_.remove(s);
            if (server.counters_ != nullptr) server.counters_->open.add(-1);
            if (server.stopping_ && server.sessions_.empty()) server.all_done_.cancel();
        }
    } end_of_session{*this, s};
    connection conn(*s);
    bool linger = false;   // an error answer was sent before the request was read to its end
    bool answered = false; // a request was answered on this connection
    // A stopping server ends its connections, or serves the ones that go on asking until they
    // stop (ServerLimits::stop_idle).
    const auto ending = [this] {
        return stopping_ && limits_.stop_idle == std::chrono::milliseconds::zero();
    };
    if (tls_ && !co_await accept_tls(*s)) co_return;
    for (;;) {
        if (ending()) break;
        if (s->in.size() == 0) {
            // Wait for the first byte of the next request under the idle deadline; the whole
            // request then has to arrive within the read deadline.
            s->idle = true;
            s->expires_after(stopping_ ? std::min(limits_.stop_idle, limits_.idle_timeout)
                                       : limits_.idle_timeout);
            if (answered) {
                // Let the other connections' ready work run first: a client that has just
                // been answered has, by then, often sent its next request, which the read
                // below then finds at once. Read straight away, it would mostly find nothing:
                // a recv(2) that fails with EAGAIN, then a wait for epoll (measured under wrk
                // with 64 connections: 2.0 recv calls per request without this, 1.25 with).
                co_await asio::post(asio::use_awaitable);
                // A stop, or the idle deadline, may have come meanwhile: its cancel found no
                // read to cancel.
                if (ending() || s->expired || s->cut) break;
            }
            // Plain TCP reads inline (no coroutine frame per request); TLS through OpenSSL.
            if (!s->tls) {
                auto [ec, n] =
                    co_await s->socket.async_read_some(s->in.prepare(read_chunk), use_tuple);
                s->idle = false;
                if (ec) break;
                s->in.commit(n);
            } else {
                const auto ec = co_await receive(*s);
                s->idle = false;
                if (ec) break;
            }
        }
        if (ending()) break;
        boost::system::error_code ec;
        {
            request_parser parser(s->req, limits_);
            bool timed = false;
            bool continued = false;
            while (!parser.is_done()) {
                if (s->in.size() > 0) {
                    const auto used = parser.put(s->in.data(), ec);
                    s->in.consume(used);
                    if (ec == http::error::need_more) {
                        ec = {};
                    } else if (ec) {
                        break;
                    }
                    if (parser.is_done()) break;
                    if (used > 0 && s->in.size() > 0) continue;
                }
                if (parser.is_header_done() && parser.expects_continue() && !continued &&
                    s->req.version() >= 11) { // (HTTP/1.0 clients know no 100 Continue)
                    continued = true;
                    timed = false;
                    static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
                    std::array<asio::const_buffer, 2> buffers{asio::buffer(go_on),
                                                              asio::const_buffer{}};
                    const int done = conn.send_now(buffers, false);
                    if (done < 0 || (done == 0 && !co_await conn.send(buffers, false))) {
                        ec = asio::error::operation_aborted;
                        break;
                    }
                }
                if (!timed) {
                    s->expires_after(limits_.read_timeout);
                    timed = true;
                }
                ec = co_await read_more(*s);
                if (ec == asio::error::eof) {
                    parser.put_eof(ec);
                    if (!ec && !parser.is_done()) ec = http::error::partial_message;
                }
                if (ec) break;
            }
            if (!ec) parser.finish();
        }
        if (ec) {
            errc code = errc::ok;
            std::string message;
            if (ec == http::error::header_limit) {
                code = errc::header_too_large;
                message =
                    "the request header is over " + std::to_string(limits_.header_limit) + " bytes";
            } else if (ec == http::error::body_limit) {
                code = errc::body_too_large;
                message =
                    "the request body is over " + std::to_string(limits_.body_limit) + " bytes";
            } else if (ec.category() == make_error_code(http::error::bad_target).category() &&
                       ec != http::error::end_of_stream && ec != http::error::partial_message) {
                code = errc::bad_request;
                message = "malformed HTTP request: " + ec.message();
            }
            if (code != errc::ok) {
                const auto res = error_response(code, std::move(message));
                log().debug("{}: {} refused: {}", name_, s->remote.address().to_string(),
                            res.body());
                conn.head = false;
                co_await conn.write(res);
                linger = true;
            }
            break;
        }
        auto& req = s->req;
        if (req.method() == http::verb::unknown) {
            auto res = error_response(req, errc::bad_request,
                                      "unknown method " + std::string(req.method_string()));
            res.keep_alive(false);
            conn.head = false;
            co_await conn.write(res);
            break;
        }
        const bool log_request = log().should_log(spdlog::level::debug);
        const auto started = log_request ? connection::clock::now() : connection::time_point{};
        conn.bytes_sent = 0;
        conn.head = req.method() == http::verb::head;
        ++busy_;
        bool keep = false;
        try {
            keep = co_await handler_(req, conn);
        } catch (const std::exception& x) {
            log().error("{}: {} {}: {}", name_, req.method_string(), req.target(), x.what());
            keep = false;
        } catch (...) {
            log().error("{}: {} {}: an unknown exception", name_, req.method_string(),
                        req.target());
            keep = false;
        }
        --busy_;
        req.trim();
        if (s->spare.capacity() > 64 * 1024) std::string().swap(s->spare);
        if (log_request) {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                connection::clock::now() - started);
            log().debug("{}: {} {} {} -> {} ({} bytes, {} us)", name_,
                        s->remote.address().to_string(), req.method_string(), req.target(),
                        conn.status, conn.bytes_sent, us.count());
        }
        if (!keep || !req.keep_alive()) break;
        answered = true;
    }
    boost::system::error_code ec;
    if (s->tls) s->tls->shutdown();
    s->socket.shutdown(tcp::socket::shutdown_send, ec);
    if (linger && !stopping_) co_await discard_input(*s);
}

asio::awaitable<bool> http_server::accept_tls(session& s) {
    s.expires_after(limits_.read_timeout);
    // The first bytes tell a TLS client (a handshake record, 0x16) from one speaking plain
    // HTTP (a method's letters), which is told so in plain HTTP.
    for (;;) {
        auto [ec] = co_await s.socket.async_wait(tcp::socket::wait_read, use_tuple);
        if (ec || s.expired || s.cut) co_return false;
        char first = 0;
        const auto n = ::recv(s.socket.native_handle(), &first, 1, MSG_PEEK);
        if (n == 0) co_return false;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            co_return false;
        }
        if (first == 0x16) break;
        if (first >= 'A' && first <= 'Z') {
            connection conn(s);
            const auto here = s.socket.local_endpoint(ec).address();
            const auto host = here.is_v6() ? "[" + here.to_string() + "]" : here.to_string();
            const auto res =
                error_response(errc::tls_required, "this server speaks TLS: ask for https://" +
                                                       host + ":" + std::to_string(port_) + "/");
            co_await conn.write(res);
            s.socket.shutdown(tcp::socket::shutdown_send, ec);
            co_await discard_input(s);
        }
        co_return false;
    }
    s.tls = std::make_unique<tls_stream>(*tls_, s.socket.native_handle());
    for (;;) {
        const auto st = s.tls->handshake();
        if (st == tls_stream::status::done) co_return true;
        if (st != tls_stream::status::want_read && st != tls_stream::status::want_write) {
            log().debug("{}: TLS handshake with {} failed: {}", name_,
                        s.remote.address().to_string(), s.tls->message());
            s.tls.reset(); // nothing more is said in TLS
            co_return false;
        }
        auto [ec] = co_await s.socket.async_wait(
            st == tls_stream::status::want_read ? tcp::socket::wait_read : tcp::socket::wait_write,
            use_tuple);
        if (ec || s.expired || s.cut) co_return false;
    }
}

asio::awaitable<void> http_server::discard_input(session& s) {
    // Closing a socket with unread input makes the kernel send a reset, which can destroy the
    // error answer before the client reads it (a client still sending a body too large never
    // sees its 413). So read and drop what still comes, until the client closes, for at most
    // read_timeout and a bounded number of bytes. A stop closes it at once, as an idle one.
    constexpr std::size_t most = 64 * 1024 * 1024;
    std::size_t dropped = s.in.size();
    s.idle = true;
    s.expires_after(limits_.read_timeout);
    while (dropped < most) {
        s.in.consume(s.in.size());
        if (co_await read_more(s)) break;
        dropped += s.in.size();
    }
}

void http_server::close_idle() {
    for (const auto& s : sessions_) {
        if (!s->idle) continue;
        if (limits_.stop_idle > std::chrono::milliseconds::zero()) {
            s->expires_after(std::min(limits_.stop_idle, limits_.idle_timeout));
        } else {
            boost::system::error_code ec;
            s->socket.cancel(ec);
        }
    }
}

void http_server::cancel() {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    close_all();
}

void http_server::close_all() {
    for (const auto& s : sessions_) {
        // Sticky: a session busy with something else right now fails its next wait.
        s->cut = true;
        boost::system::error_code ec;
        s->socket.cancel(ec);
    }
}

asio::awaitable<void> http_server::async_stop() {
    if (!stopping_) {
        stopping_ = true;
        boost::system::error_code ec;
        acceptor_.close(ec);
        close_idle();
        if (!sessions_.empty()) {
            last_progress_ = std::chrono::steady_clock::now();
            asio::co_spawn(strand_, watch_grace(), asio::detached);
        }
    }
    // all_done_ never expires; the last session to end cancels the waits on it. A cancelled
    // stop does not wait for the grace period: it cuts what is left.
    co_await asio::this_coro::throw_if_cancelled(false);
    while (!sessions_.empty()) {
        co_await all_done_.async_wait(use_tuple);
        const auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) close_all();
    }
    grace_.cancel();
}

asio::awaitable<void> http_server::watch_grace() {
    auto self = shared_from_this();
    while (!sessions_.empty()) {
        grace_.expires_at(last_progress_ + limits_.stop_grace);
        auto [ec] = co_await grace_.async_wait(use_tuple);
        if (ec) co_return; // every session ended
        if (std::chrono::steady_clock::now() - last_progress_ >= limits_.stop_grace) {
            log().info("{}: cutting {} connections that made no progress for {} ms", name_,
                       sessions_.size(), limits_.stop_grace.count());
            close_all();
            co_return;
        }
    }
}

} // namespace p2pshare::detail
