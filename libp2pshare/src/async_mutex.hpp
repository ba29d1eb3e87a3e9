// A mutex for coroutines that all run on one strand: waiting suspends the coroutine, not the
// thread. Used to keep a peer's index conversation (register, renew, update) in order.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <memory>

namespace p2pshare::detail {

class async_mutex {
public:
    class guard {
    public:
        explicit guard(async_mutex* m) noexcept : m_(m) {}
        guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
        guard& operator=(guard&&) = delete;
        ~guard() {
            if (m_) m_->unlock();
        }

    private:
        async_mutex* m_;
    };

    explicit async_mutex(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

    boost::asio::awaitable<guard> lock() {
        if (!locked_) {
            locked_ = true;
            co_return guard(this);
        }
        auto t = std::make_shared<boost::asio::steady_timer>(
            executor_, boost::asio::steady_timer::time_point::max());
        waiters_.push_back(t);
        co_await t->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return guard(this); // ownership was handed over by unlock()
    }

private:
    void unlock() {
        if (waiters_.empty()) {
            locked_ = false;
            return;
        }
        auto next = std::move(waiters_.front());
        waiters_.pop_front();
        next->cancel();
    }

    boost::asio::any_io_executor executor_;
    bool locked_ = false;
    std::deque<std::shared_ptr<boost::asio::steady_timer>> waiters_;
};

} // namespace p2pshare::detail
