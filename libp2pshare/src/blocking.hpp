// Work that may block on the disk (hashing, folder scans, writes of received bytes, reads of
// files not in the page cache) runs on a blocking executor, never on the executor that runs the
// network. By default that is one small pool for the whole process; an embedding program can
// give its own.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <type_traits>
#include <utility>

namespace p2pshare::detail {

/// The process's pool for blocking work (two threads), made on first use.
boost::asio::any_io_executor default_blocking_executor();

/// Whether the operation that `state` belongs to was cancelled (per-operation cancellation).
inline bool cancelled(const boost::asio::cancellation_state& state) {
    return state.cancelled() != boost::asio::cancellation_type::none;
}

/// The completion token for work handed to the blocking executor: the awaiting coroutine resumes
/// when the work is done, and a cancellation of the awaiting operation is not passed on (the work
/// cannot be interrupted, and Boost 1.81's co_spawn can throw out of the pool's thread when a
/// cancellation reaches a coroutine that has no wait left).
inline auto blocking_token() {
    return boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(),
                                               boost::asio::use_awaitable);
}

/// `given` when set, else the default pool.
inline boost::asio::any_io_executor blocking_or_default(
    const std::optional<boost::asio::any_io_executor>& given) {
    return given ? *given : default_blocking_executor();
}

/// Runs `f(args...)` on `blocking` and resumes the awaiting coroutine on its own executor with
/// the result. `f` and `args` are copied (take shared_ptrs to what must outlive the call): the work
/// goes on even when the awaiting operation is cancelled, and the await completes only after it
/// ends. Pass a function or a lambda without captures, and the values as `args`: GCC 12
/// miscompiles lambdas with captures that are not trivially destructible when they are made
/// inside a coroutine, so that no such lambda is made at the call site.
template <class F, class... Args>
auto run_blocking(boost::asio::any_io_executor blocking, F f, Args... args)
    -> boost::asio::awaitable<std::invoke_result_t<F&, Args&...>> {
    using R = std::invoke_result_t<F&, Args&...>;
    return boost::asio::co_spawn(
        std::move(blocking),
        [f, ... args = std::move(args)]() mutable -> boost::asio::awaitable<R> {
            co_return f(args...);
        },
        blocking_token());
}

} // namespace p2pshare::detail
