// A cap on bytes per second shared by all the transfers of one direction of a peer: a token
// bucket that lets bytes go and then asks for the pause that pays them back. Plain code with the
// time passed in (tests/unit/piece_picker_test.cpp), and an awaitable that takes the pause.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>

namespace p2pshare::detail {

class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    /// `bytes_per_second` 0: no cap. Up to 20 ms worth of bytes (at least 64 KiB) may go at
    /// once after a pause.
    explicit rate_limiter(std::uint64_t bytes_per_second) noexcept;

    /// `n` bytes went (or are about to): how long to pause before the next ones.
    clock::duration take(std::uint64_t n, clock::time_point now) noexcept;

    bool limited() const noexcept { return rate_ > 0; }
    /// A step size that keeps the bursts short: about 20 ms worth, within [16 KiB, most].
    std::uint64_t step(std::uint64_t most) const noexcept;

private:
    double rate_;
    double burst_;
    double tokens_;
    clock::time_point last_{};
};

/// Takes `n` bytes from `limiter` (none: nothing) and pauses as long as it says, on the
/// caller's executor. Cancelled, the pause ends at once.
boost::asio::awaitable<void> async_throttle(rate_limiter* limiter, std::uint64_t n);

} // namespace p2pshare::detail
