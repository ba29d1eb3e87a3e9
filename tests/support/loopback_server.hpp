// A server for tests on 127.0.0.1 with its own io_context and thread: every accepted connection
// is handed to a session coroutine. Used by the tests' deliberately misbehaving servers.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <functional>
#include <thread>

namespace p2pshare::test {

/// Completion token: a coroutine gets (error_code, ...) instead of an exception.
inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

class loopback_server {
public:
    using session = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

    /// Binds 127.0.0.1 on a free port; nothing is accepted before start().
    loopback_server() : acceptor_(io_) {
        const boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::make_address("127.0.0.1"),
                                                      0};
        acceptor_.open(endpoint.protocol());
        acceptor_.bind(endpoint);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
    }
    ~loopback_server() { stop(); }
    loopback_server(const loopback_server&) = delete;
    loopback_server& operator=(const loopback_server&) = delete;

    void start(session s) {
        session_ = std::move(s);
        boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }

    /// Closes the acceptor, stops the io_context and joins the thread. The owner calls it in its
    /// destructor, before the state its sessions use is destroyed.
    void stop() {
        if (!thread_.joinable()) return;
        boost::asio::post(io_, [this] {
            boost::system::error_code ec;
            acceptor_.close(ec);
            io_.stop();
        });
        thread_.join();
    }

    boost::asio::io_context& io() noexcept { return io_; }
    std::uint16_t port() const noexcept { return port_; }

private:
    boost::asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] =
                co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return;
            boost::asio::co_spawn(io_, session_(std::move(socket)), boost::asio::detached);
        }
    }

    boost::asio::io_context io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    session session_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

} // namespace p2pshare::test
