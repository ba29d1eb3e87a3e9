#include "index/redis_connection.hpp"

#include "http_client.hpp"
#include "support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk = 64 * 1024;
/// Requests kept for reuse, at most: those that were in flight at once, usually.
constexpr std::size_t max_spare = 64;
} // namespace

/// One request: its replies come in the order of the queue.
struct redis_connection::pending {
    explicit pending(asio::any_io_executor ex)
        : wake(std::move(ex), asio::steady_timer::time_point::max()) {}
    std::size_t count = 0;
    std::size_t received = 0;
    std::vector<resp_value> replies;
    bool done = false;
    bool dropped = false; ///< its waiter left: its replies are read and thrown away
    std::string error;    ///< why it failed, if it did
    std::chrono::steady_clock::time_point deadline;
    /// Cancelled when done. It never expires: the deadlines of all requests are kept by one
    /// watchdog per connection, so that a request sets no timer of its own.
    asio::steady_timer wake;
};

redis_connection::redis_connection(asio::any_io_executor executor, std::string host,
                                   std::uint16_t port, redis_settings settings)
    : executor_(executor),
      watchdog_(std::move(executor)),
      host_(std::move(host)),
      port_(port),
      name_(to_string(ServerAddress{host_, port_})),
      settings_(settings) {}

redis_connection::~redis_connection() {
    if (socket_) {
        boost::system::error_code ignored;
        socket_->close(ignored);
    }
}

void redis_connection::close() { close_with("the connection to Redis " + name_ + " was closed"); }

void redis_connection::close_with(const std::string& message) {
    ++generation_; // the loops of this connection see it and leave
    state_ = state::closed;
    writing_ = false;
    if (socket_) {
        boost::system::error_code ignored;
        socket_->close(ignored);
        socket_.reset();
    }
    outbox_.clear();
    watchdog_.cancel();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& p : waiting) {
        p->error = message;
        p->done = true;
        p->wake.cancel();
    }
}

void redis_connection::arm_watchdog(std::chrono::steady_clock::time_point deadline) {
    // Requests wait in order and all have the same timeout: a watchdog already running wakes
    // no later than this deadline, at the deadline of an older request.
    if (watching_) return;
    watching_ = true;
    watchdog_.expires_at(deadline);
    asio::co_spawn(executor_, watch(shared_from_this()), asio::detached);
}

asio::awaitable<void> redis_connection::watch(std::shared_ptr<redis_connection> /*keep*/) {
    co_await asio::this_coro::throw_if_cancelled(false);
    for (;;) {
        co_await watchdog_.async_wait(use_tuple); // a deadline, or the connection closed
        if (waiting_.empty()) break;              // every request answered, or failed
        // The oldest request waiting has the earliest deadline.
        if (waiting_.front()->deadline <= std::chrono::steady_clock::now()) {
            // A node that does not answer in time is taken as gone, with every request on this
            // connection, rather than left to hold them all.
            close_with("Redis " + name_ + " did not answer within " +
                       std::to_string(settings_.timeout.count()) + " ms");
            break;
        }
        watchdog_.expires_at(waiting_.front()->deadline);
    }
    watching_ = false;
}

void redis_connection::deliver(resp_value reply) {
    if (waiting_.empty()) {
        close_with("Redis " + name_ + " sent a reply to no request");
        return;
    }
    auto& p = *waiting_.front();
    if (!p.dropped) p.replies.push_back(std::move(reply));
    if (++p.received < p.count) return;
    p.done = true;
    p.wake.cancel();
    waiting_.pop_front();
}

void redis_connection::start_writing() {
    if (writing_ || state_ != state::open || outbox_.empty()) return;
    writing_ = true;
    // Once the handlers ready now have run: the requests they queue go in the same write.
    asio::post(executor_,
               [self = shared_from_this(), generation = generation_] { self->flush(generation); });
}

void redis_connection::flush(std::uint64_t generation) {
    if (generation != generation_) return;
    // Most often the socket takes it all at once, without waiting (it is non-blocking).
    boost::system::error_code ec;
    const auto n = socket_->write_some(asio::buffer(outbox_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
    } else if (ec) {
        close_with("cannot write to Redis " + name_ + ": " + ec.message());
        return;
    } else {
        outbox_.erase(0, n);
    }
    if (outbox_.empty()) {
        writing_ = false;
        return;
    }
    asio::co_spawn(executor_, write_loop(shared_from_this()), asio::detached);
}

asio::awaitable<void> redis_connection::write_loop(std::shared_ptr<redis_connection> /*keep*/) {
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto generation = generation_;
    const auto socket = socket_;
    std::string sending;
    // Whatever was queued meanwhile goes in the next write: the requests of all callers are
    // pipelined, as many per write as came during the one before.
    while (generation == generation_ && !outbox_.empty()) {
        sending.clear();
        std::swap(sending, outbox_);
        auto [ec, n] = co_await asio::async_write(*socket, asio::buffer(sending), use_tuple);
        if (generation != generation_) co_return;
        if (ec) {
            close_with("cannot write to Redis " + name_ + ": " + ec.message());
            co_return;
        }
    }
    if (generation == generation_) writing_ = false;
}

asio::awaitable<void> redis_connection::run(std::shared_ptr<redis_connection> /*keep*/) {
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto generation = generation_;
    auto connected = co_await async_connect(executor_, host_, port_, settings_.timeout);
    if (generation != generation_) co_return; // closed meanwhile
    if (!connected) {
        close_with("cannot connect to Redis " + name_ + ": " + connected.error().message());
        co_return;
    }
    auto socket = std::make_shared<asio::ip::tcp::socket>(std::move(*connected));
    boost::system::error_code setup;
    socket->set_option(asio::ip::tcp::no_delay(true), setup);
    socket->non_blocking(true, setup); // for flush(): a write that would wait is for write_loop
    if (setup) {
        close_with("cannot set up the connection to Redis " + name_ + ": " + setup.message());
        co_return;
    }
    socket_ = socket;
    state_ = state::open;
    start_writing();
    resp_reader reader(settings_.limits);
    std::vector<char> buffer(read_chunk);
    for (;;) {
        auto [ec, n] = co_await socket->async_read_some(asio::buffer(buffer), use_tuple);
        if (generation != generation_) co_return;
        if (ec) {
            close_with("the connection to Redis " + name_ + " broke: " + ec.message());
            co_return;
        }
        reader.feed(buffer.data(), n);
        for (;;) {
            auto reply = reader.next();
            if (!reply) {
                close_with("Redis " + name_ +
                           " sent bytes that are not RESP: " + reply.error().message);
                co_return;
            }
            if (!*reply) break;
            deliver(std::move(**reply));
            if (generation != generation_) co_return;
        }
    }
}

redis_connection::ticket redis_connection::enqueue(std::string_view commands, std::size_t count) {
    if (count == 0) return nullptr;
    ticket p;
    if (spare_.empty()) {
        p = std::make_shared<pending>(executor_);
    } else {
        p = std::move(spare_.back());
        spare_.pop_back();
        p->received = 0;
        p->done = false;
        p->dropped = false;
        p->error.clear();
    }
    p->count = count;
    p->replies.reserve(count);
    outbox_.append(commands);
    waiting_.push_back(p);
    if (state_ == state::closed) {
        state_ = state::connecting;
        asio::co_spawn(executor_, run(shared_from_this()), asio::detached);
    } else {
        start_writing();
    }
    p->deadline = std::chrono::steady_clock::now() + settings_.timeout;
    arm_watchdog(p->deadline);
    return p;
}

void redis_connection::abandon(const ticket& t) noexcept {
    if (!t || t->done) return;
    t->dropped = true;
    t->replies.clear();
}

asio::awaitable<api_result<std::vector<resp_value>>> redis_connection::async_wait(ticket p) {
    co_await asio::this_coro::throw_if_cancelled(false);
    if (!p) co_return std::vector<resp_value>{};
    while (!p->done) {
        co_await p->wake.async_wait(use_tuple);
        if (p->done) break;
        // Cancelled by the caller: the replies, when they come, are thrown away.
        abandon(p);
        co_return fail(errc::store_unavailable, "the request to Redis " + name_ + " was cancelled");
    }
    if (!p->error.empty()) co_return fail(errc::store_unavailable, p->error);
    auto replies = std::move(p->replies);
    // Kept for a next request when nothing else holds it (its timer was cancelled: it is idle).
    if (p.use_count() == 1 && spare_.size() < max_spare) {
        p->replies = {};
        spare_.push_back(std::move(p));
    }
    co_return replies;
}

asio::awaitable<api_result<std::vector<resp_value>>> redis_connection::async_exec(
    std::string_view commands, std::size_t count) {
    // (The bytes are queued before the first suspension: a caller's view may end after it.)
    return async_wait(enqueue(commands, count));
}

} // namespace p2pshare::detail
