// One connection to one Redis node, shared by every request of an index server: requests are
// queued and pipelined (written as they come, behind those in flight), and the replies, which a
// node sends in order, are handed back in order. Runs on the index's serial executor.
#pragma once

#include "protocol.hpp"
#include "resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace p2pshare::detail {

struct redis_settings {
    /// Every wait on a node: the connection, and the replies to each request.
    std::chrono::milliseconds timeout{2000};
    resp_limits limits{};
};

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    /// `executor` must be serial. Nothing happens until the first request. Made by make_shared.
    redis_connection(boost::asio::any_io_executor executor, std::string host, std::uint16_t port,
                     redis_settings settings);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    /// Sends `commands`, the RESP bytes of `count` commands, behind those sent before, and
    /// completes with their `count` replies in order (an error reply is a reply like any other).
    /// Connects first when it has no connection. errc::store_unavailable, with a message naming
    /// the node, when it cannot connect, the connection breaks or bytes that are not RESP come,
    /// or the replies do not all come within the timeout; the connection is then closed (every
    /// request on it fails the same way) and the next request connects again. Cancelled, it
    /// completes at once with store_unavailable; its replies, when they come, are dropped.
    boost::asio::awaitable<api_result<std::vector<resp_value>>> async_exec(
        std::string_view commands, std::size_t count);

    /// One request queued by enqueue(), whose replies async_wait() gives.
    struct pending;
    using ticket = std::shared_ptr<pending>;

    /// The first half of async_exec: queues `commands` (`count` of them) and returns at once,
    /// so that requests to several nodes are all on their way before any is waited for. Each
    /// ticket is then given to async_wait() once, or to abandon().
    ticket enqueue(std::string_view commands, std::size_t count);
    /// The second half of async_exec: the replies of `t`, with the errors and cancellation of
    /// async_exec.
    boost::asio::awaitable<api_result<std::vector<resp_value>>> async_wait(ticket t);
    /// A ticket that will not be waited for: its replies are read and thrown away.
    static void abandon(const ticket& t) noexcept;

    /// Closes the connection: every request waiting fails with store_unavailable.
    void close();

    const std::string& host() const noexcept { return host_; }
    std::uint16_t port() const noexcept { return port_; }
    /// "host:port", for messages.
    const std::string& name() const noexcept { return name_; }

private:
    boost::asio::awaitable<void> run(std::shared_ptr<redis_connection> self);
    boost::asio::awaitable<void> write_loop(std::shared_ptr<redis_connection> self);
    void start_writing();
    void flush(std::uint64_t generation);
    void arm_watchdog(std::chrono::steady_clock::time_point deadline);
    boost::asio::awaitable<void> watch(std::shared_ptr<redis_connection> keep);
    /// Ends the connection: every request waiting fails with `message`.
    void close_with(const std::string& message);
    void deliver(resp_value reply);

    boost::asio::any_io_executor executor_;
    boost::asio::steady_timer watchdog_; ///< at the deadline of the oldest request waiting
    bool watching_ = false;
    std::string host_;
    std::uint16_t port_;
    std::string name_;
    redis_settings settings_;
    enum class state { closed, connecting, open } state_ = state::closed;
    std::shared_ptr<boost::asio::ip::tcp::socket> socket_; ///< the loops hold it too
    std::uint64_t generation_ = 0; ///< counts connections, so a stale loop knows it is stale
    std::string outbox_;           ///< commands not written yet
    bool writing_ = false;
    std::deque<std::shared_ptr<pending>> waiting_; ///< in the order their replies come
    std::vector<ticket> spare_;                    ///< answered requests, for the next ones
};

} // namespace p2pshare::detail
