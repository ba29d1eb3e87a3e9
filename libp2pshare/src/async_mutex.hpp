// A FIFO mutex for coroutines that all run on one serial executor: waiting suspends the
// coroutine, not the thread. Keeps a peer's conversation with the index in order.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <utility>

namespace p2pshare::detail {

class async_mutex {
public:
    /// Owns the lock while it lives, unless it is empty (a wait that was cancelled).
    class guard {
    public:
        guard() noexcept = default;
        explicit guard(async_mutex* m) noexcept : m_(m) {}
        guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
        guard& operator=(guard&&) = delete;
        ~guard() {
            if (m_) m_->unlock();
        }
        explicit operator bool() const noexcept { return m_ != nullptr; }

    private:
        async_mutex* m_ = nullptr;
    };

    explicit async_mutex(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

    /// Waits for the lock. When the wait is cancelled (per-operation cancellation of the
    /// awaiting coroutine) before the lock was handed over, returns an empty guard and leaves
    /// the queue: the lock goes to the next waiter, never to one that stopped waiting.
    boost::asio::awaitable<guard> lock() {
        if (!locked_) {
            locked_ = true;
            co_return guard(this);
        }
        auto w = std::make_shared<waiter>(executor_);
        waiters_.push_back(w);
        co_await w->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (w->granted) co_return guard(this); // handed over by unlock()
        std::erase(waiters_, w);
        co_return guard();
    }

    bool locked() const noexcept { return locked_; }

private:
    struct waiter {
        explicit waiter(const boost::asio::any_io_executor& ex)
            : timer(ex, boost::asio::steady_timer::time_point::max()) {}
        boost::asio::steady_timer timer;
        bool granted = false;
    };

    void unlock() {
        if (waiters_.empty()) {
            locked_ = false;
            return;
        }
        auto next = std::move(waiters_.front());
        waiters_.pop_front();
        next->granted = true;
        next->timer.cancel();
    }

    boost::asio::any_io_executor executor_;
    bool locked_ = false;
    std::deque<std::shared_ptr<waiter>> waiters_;
};

} // namespace p2pshare::detail
