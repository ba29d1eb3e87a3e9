#include "rate_limiter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace p2pshare::detail {

namespace asio = boost::asio;

rate_limiter::rate_limiter(std::uint64_t bytes_per_second) noexcept
    : rate_(static_cast<double>(bytes_per_second)),
      burst_(std::max(rate_ / 50, 64.0 * 1024)),
      tokens_(burst_) {}

rate_limiter::clock::duration rate_limiter::take(std::uint64_t n, clock::time_point now) noexcept {
    if (rate_ <= 0) return clock::duration::zero();
    if (last_ != clock::time_point{}) {
        const auto elapsed = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * rate_);
    }
    last_ = now;
    tokens_ -= static_cast<double>(n);
    if (tokens_ >= 0) return clock::duration::zero();
    return std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double>(-tokens_ / rate_));
}

std::uint64_t rate_limiter::step(std::uint64_t most) const noexcept {
    if (rate_ <= 0) return most;
    const auto s = static_cast<std::uint64_t>(rate_ / 50);
    return std::clamp<std::uint64_t>(s, std::min<std::uint64_t>(16 * 1024, most), most);
}

asio::awaitable<void> async_throttle(rate_limiter* limiter, std::uint64_t n) {
    if (!limiter || !limiter->limited()) co_return;
    const auto pause = limiter->take(n, rate_limiter::clock::now());
    if (pause <= rate_limiter::clock::duration::zero()) co_return;
    asio::steady_timer timer(co_await asio::this_coro::executor, pause);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

} // namespace p2pshare::detail
