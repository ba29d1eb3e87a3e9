#include "http_server.hpp"

#include "protocol.hpp"
#include "support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <exception>
#include <vector>

namespace p2pshare::detail {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

asio::awaitable<bool> connection::write(string_response& response) {
    response.prepare_payload();
    status = response.result_int();
    stream_.expires_after(limits_.write_timeout);
    if (head) {
        // The headers a GET would get, without the body.
        http::serializer<false, http::string_body> sr{response};
        auto [ec, n] = co_await http::async_write_header(stream_, sr, use_tuple);
        progressed(n);
        co_return !ec;
    }
    auto [ec, n] = co_await http::async_write(stream_, response, use_tuple);
    progressed(n);
    co_return !ec;
}

string_response json_response(const request& req, http::status status, std::string body) {
    string_response res{status, req.version()};
    res.set(http::field::server, "p2pshare");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    return res;
}

string_response error_response(const request& req, errc code, std::string message) {
    return json_response(req, static_cast<http::status>(http_status(code)),
                         encode_error({code, std::move(message)}));
}

string_response error_response(errc code, std::string message) {
    string_response res{static_cast<http::status>(http_status(code)), 11};
    res.set(http::field::server, "p2pshare");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(false);
    res.body() = encode_error({code, std::move(message)});
    return res;
}

http_server::http_server(strand_type strand, server_limits limits, request_handler handler,
                         std::string name)
    : strand_(std::move(strand)),
      limits_(limits),
      handler_(std::move(handler)),
      name_(std::move(name)),
      acceptor_(strand_),
      all_done_(strand_, asio::steady_timer::time_point::max()),
      grace_(strand_) {}

boost::system::error_code http_server::listen(const std::string& host, std::uint16_t port) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return ec;
    const tcp::endpoint endpoint{address, port};
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return ec;
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return ec;
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
            spdlog::warn("{}: accept failed: {}", name_, ec.message());
            backoff.expires_after(std::chrono::milliseconds(100));
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        if (sessions_.size() >= limits_.max_connections) {
            asio::co_spawn(strand_, refuse(std::move(socket)), asio::detached);
            continue;
        }
        boost::system::error_code remote_ec;
        const auto remote = socket.remote_endpoint(remote_ec);
        auto s = std::make_shared<session>(std::move(socket));
        sessions_.push_back(s);
        asio::co_spawn(
            strand_,
            [self = shared_from_this(), s = std::move(s), remote] {
                return self->run_session(s, remote);
            },
            log_failure{name_ + ": session"});
    }
    accepting_ = false;
}

asio::awaitable<void> http_server::refuse(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    auto res = error_response(errc::too_many_connections,
                              "the server is at its limit of " +
                                  std::to_string(limits_.max_connections) + " connections");
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(1));
    co_await http::async_write(stream, res, use_tuple);
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> http_server::run_session(std::shared_ptr<session> s, tcp::endpoint remote) {
    beast::flat_buffer buffer;
    connection conn(s->stream, remote, limits_, stopping_, last_progress_);
    bool linger = false; // an error answer was sent before the request was read to its end
    for (;;) {
        if (stopping_) break;
        if (buffer.size() == 0) {
            // Wait for the first byte of the next request under the idle deadline; the whole
            // request then has to arrive within the read deadline.
            s->idle = true;
            s->stream.expires_after(limits_.idle_timeout);
            auto [ec, n] = co_await s->stream.async_read_some(buffer.prepare(4096), use_tuple);
            s->idle = false;
            if (ec) break;
            buffer.commit(n);
        }
        if (stopping_) break;
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits_.header_limit));
        parser.body_limit(limits_.body_limit);
        s->stream.expires_after(limits_.read_timeout);
        auto [ec, n] = co_await http::async_read_header(s->stream, buffer, parser, use_tuple);
        if (!ec && !parser.is_done()) {
            if (parser.get()[http::field::expect] == "100-continue") {
                http::response<http::empty_body> go_on{http::status::continue_, 11};
                co_await http::async_write(s->stream, go_on, use_tuple);
            }
            std::tie(ec, n) = co_await http::async_read(s->stream, buffer, parser, use_tuple);
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
                auto res = error_response(code, std::move(message));
                spdlog::debug("{}: {} refused: {}", name_, remote.address().to_string(),
                              res.body());
                co_await conn.write(res);
                linger = true;
            }
            break;
        }
        auto& req = parser.get();
        if (req.method() == http::verb::unknown) {
            auto res = error_response(req, errc::bad_request,
                                      "unknown method " + std::string(req.method_string()));
            res.keep_alive(false);
            co_await conn.write(res);
            break;
        }
        const auto started = std::chrono::steady_clock::now();
        conn.bytes_sent = 0;
        conn.head = req.method() == http::verb::head;
        ++busy_;
        bool keep = false;
        try {
            keep = co_await handler_(req, conn);
        } catch (const std::exception& x) {
            spdlog::error("{}: {} {}: {}", name_, std::string(req.method_string()),
                          std::string(req.target()), x.what());
            keep = false;
        }
        --busy_;
        if (spdlog::should_log(spdlog::level::debug)) {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - started);
            spdlog::debug("{}: {} {} {} -> {} ({} bytes, {} us)", name_,
                          remote.address().to_string(), std::string(req.method_string()),
                          std::string(req.target()), conn.status, conn.bytes_sent, us.count());
        }
        if (!keep || !req.keep_alive()) break;
    }
    boost::system::error_code ec;
    s->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (linger && !stopping_) co_await discard_input(*s);
    s->stream.close();
    sessions_.remove(s);
    if (stopping_ && sessions_.empty()) all_done_.cancel();
}

asio::awaitable<void> http_server::discard_input(session& s) {
    // Closing a socket with unread input makes the kernel send a reset, which can destroy the
    // error answer before the client reads it (a client still sending a body too large never
    // sees its 413). So read and drop what still comes, until the client closes, for at most
    // read_timeout and a bounded number of bytes. A stop closes it at once, as an idle one.
    constexpr std::size_t most = 64 * 1024 * 1024;
    std::vector<char> scratch(64 * 1024);
    std::size_t dropped = 0;
    s.idle = true;
    s.stream.expires_after(limits_.read_timeout);
    while (dropped < most) {
        auto [ec, n] = co_await s.stream.async_read_some(asio::buffer(scratch), use_tuple);
        if (ec) break;
        dropped += n;
    }
}

void http_server::close_idle() {
    for (const auto& s : sessions_) {
        if (s->idle) s->stream.cancel();
    }
}

void http_server::cancel() {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    close_all();
}

void http_server::close_all() {
    for (const auto& s : sessions_)
        s->stream.cancel();
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
    // all_done_ never expires; the last session to end cancels the waits on it.
    while (!sessions_.empty())
        co_await all_done_.async_wait(use_tuple);
    grace_.cancel();
}

asio::awaitable<void> http_server::watch_grace() {
    auto self = shared_from_this();
    while (!sessions_.empty()) {
        grace_.expires_at(last_progress_ + limits_.stop_grace);
        auto [ec] = co_await grace_.async_wait(use_tuple);
        if (ec) co_return; // every session ended
        if (std::chrono::steady_clock::now() - last_progress_ >= limits_.stop_grace) {
            spdlog::info("{}: cutting {} connections that made no progress for {} ms", name_,
                         sessions_.size(), limits_.stop_grace.count());
            close_all();
            co_return;
        }
    }
}

} // namespace p2pshare::detail
