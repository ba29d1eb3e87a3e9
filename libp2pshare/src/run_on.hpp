// Awaiting a coroutine that runs on another executor, with the awaiting operation's cancellation
// passed on safely.
//
// `co_await asio::co_spawn(other, op, asio::use_awaitable)` is not safe to cancel in Boost 1.81
// when `other` is not the awaiting coroutine's executor: co_spawn puts a handler in the awaiting
// operation's cancellation slot that, when the slot is emitted, dispatches to `other` a function
// holding a plain pointer to a cancellation_signal that the handler owns. When the spawned
// coroutine completes before that function runs, the awaiting coroutine resumes, clears its slot
// and so destroys the handler and its signal; the function then emits on freed memory (for
// example `op || timer` where the timer fires as `op` completes). run_on keeps the signal in a
// shared_ptr that the function shares, so that a cancellation arriving after the completion
// emits on a live signal, to no effect.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace p2pshare::detail {

namespace run_on_impl {

template <class T>
struct signature {
    using type = void(std::exception_ptr, T);
};
template <>
struct signature<void> {
    using type = void(std::exception_ptr);
};

/// What the awaiting operation's cancellation slot holds: it emits on `signal` (the spawned
/// coroutine's), on `executor` (the spawned coroutine's), and keeps the signal alive until then.
/// Emitting there also makes co_spawn's own forwarding, which dispatches to that executor, run
/// at once rather than later.
class forward_cancellation {
public:
    forward_cancellation(std::shared_ptr<boost::asio::cancellation_signal> signal,
                         boost::asio::any_io_executor executor)
        : signal_(std::move(signal)), executor_(std::move(executor)) {}

    void operator()(boost::asio::cancellation_type_t type) const {
        boost::asio::dispatch(executor_, [signal = signal_, type] { signal->emit(type); });
    }

private:
    std::shared_ptr<boost::asio::cancellation_signal> signal_;
    boost::asio::any_io_executor executor_;
};

/// Spawns `op` (an awaitable, or a function returning one) on `executor` and completes `handler`
/// on the handler's own executor with the result.
struct initiate {
    template <class Handler, class Op>
    void operator()(Handler handler, boost::asio::any_io_executor executor, Op op) const {
        namespace asio = boost::asio;
        auto signal = std::make_shared<asio::cancellation_signal>();
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) slot.template emplace<forward_cancellation>(signal, executor);
        // Work on the awaiting executor is outstanding until the handler runs there.
        auto work = asio::prefer(asio::get_associated_executor(handler, executor),
                                 asio::execution::outstanding_work.tracked);
        // The completion holds the signal too: the spawned coroutine's cancellation state lives
        // in it until the coroutine ends.
        auto done = [handler = std::move(handler), work = std::move(work), signal](
                        std::exception_ptr e, auto... result) mutable {
            auto to = work;
            asio::dispatch(to, [handler = std::move(handler), work = std::move(work), e,
                                ... result = std::move(result)]() mutable {
                std::move(handler)(e, std::move(result)...);
            });
        };
        asio::co_spawn(executor, std::move(op),
                       asio::bind_cancellation_slot(signal->slot(), std::move(done)));
    }
};

template <class Op>
struct value_of {
    using type = typename std::invoke_result_t<Op&>::value_type;
};
template <class T>
struct value_of<boost::asio::awaitable<T>> {
    using type = T;
};

} // namespace run_on_impl

/// Runs `op` (an awaitable, or a function object returning one, which is kept alive until the
/// coroutine ends) on `executor`, and resumes the awaiting coroutine on its own executor with the
/// result or the exception. A per-operation cancellation of the await is passed on to `op`, on
/// `executor`; one that arrives as `op` completes does nothing. Not a coroutine itself: call it
/// from a coroutine's body without making a lambda there.
template <class Op>
auto run_on(boost::asio::any_io_executor executor, Op op)
    -> boost::asio::awaitable<typename run_on_impl::value_of<Op>::type> {
    using T = typename run_on_impl::value_of<Op>::type;
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                       typename run_on_impl::signature<T>::type>(
        run_on_impl::initiate{}, boost::asio::use_awaitable, std::move(executor), std::move(op));
}

} // namespace p2pshare::detail
