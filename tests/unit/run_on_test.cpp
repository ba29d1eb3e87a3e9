// run_on: a coroutine awaited on another strand gives back its result or exception on the
// awaiting strand, passes a cancellation on, and a cancellation that comes as it completes touches
// no freed state (the asan and tsan presets run this too).
#include "run_on.hpp"
#include "test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
namespace asio = boost::asio;
using p2pshare::detail::run_on;

namespace {

using strand_type = asio::strand<asio::io_context::executor_type>;

/// An io_context run by four threads.
class four_threads {
public:
    four_threads() {
        for (int i = 0; i < 4; ++i)
            threads_.emplace_back([this] { io_.run(); });
    }
    ~four_threads() {
        work_.reset();
        for (auto& t : threads_)
            t.join();
    }
    four_threads(const four_threads&) = delete;
    four_threads& operator=(const four_threads&) = delete;

    strand_type strand() { return asio::make_strand(io_); }

    /// Runs `op` on `on` and waits for it.
    template <class T>
    T run(strand_type on, asio::awaitable<T> op) {
        auto f = asio::co_spawn(on, std::move(op), asio::use_future);
        if (f.wait_for(30s) != std::future_status::ready) {
            throw std::runtime_error("the operation did not finish within its deadline");
        }
        return f.get();
    }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    std::vector<std::thread> threads_;
};

asio::awaitable<int> answer(strand_type inner) {
    if (!inner.running_in_this_thread()) throw std::logic_error("not on the inner strand");
    co_return 42;
}

asio::awaitable<void> fail() {
    throw std::runtime_error("failed");
    co_return;
}

/// Waits on a timer of an hour; says whether the wait was cut short.
asio::awaitable<bool> wait_long() {
    co_await asio::this_coro::throw_if_cancelled(false);
    asio::steady_timer t(co_await asio::this_coro::executor, 1h);
    auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return ec == asio::error::operation_aborted;
}

asio::awaitable<int> nothing() { co_return 0; }

/// Completes at once, or after one trip through the strand's queue.
asio::awaitable<int> quick(int i) {
    co_await asio::this_coro::throw_if_cancelled(false);
    if (i % 2 == 1) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return i;
}

/// The steps of a cancellation that reaches an await just as the awaited coroutine completes.
struct handshake {
    asio::cancellation_signal signal; ///< the awaiting coroutine's; emitted on its strand
    std::promise<void> emitted;
    std::promise<void> resumed; ///< the awaiting coroutine resumed (and cleared its slot)
    std::shared_future<void> resumed_future = resumed.get_future().share();
};

/// Queues on `inner` a handler that holds the strand until the awaiting coroutine resumed.
void hold_until_resumed(strand_type inner, std::shared_ptr<handshake> h) {
    asio::post(inner, [h] { h->resumed_future.wait(); });
}

/// Emits the awaiting coroutine's signal on its strand.
void emit_on(strand_type outer, std::shared_ptr<handshake> h) {
    asio::post(outer, [h] {
        h->signal.emit(asio::cancellation_type::terminal);
        h->emitted.set_value();
    });
}

/// Runs on `inner`: holds the strand behind it, has the cancellation emitted (what it passes on
/// to `inner` queues behind the hold), then completes. The awaiting coroutine resumes before the
/// passed-on cancellation runs, whatever the threads' timing.
asio::awaitable<int> completes_as_cancelled(strand_type outer, strand_type inner,
                                            std::shared_ptr<handshake> h) {
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::post(inner, asio::use_awaitable); // completes from a handler of its own
    hold_until_resumed(inner, h);
    auto emitted = h->emitted.get_future();
    emit_on(outer, h);
    emitted.wait();
    co_return 7;
}

asio::awaitable<int> awaits_as_cancelled(strand_type outer, strand_type inner,
                                         std::shared_ptr<handshake> h) {
    const int v = co_await run_on(inner, completes_as_cancelled(outer, inner, h));
    h->resumed.set_value();
    co_return v;
}

asio::awaitable<bool> awaited_from(strand_type outer, strand_type inner) {
    const int v = co_await run_on(inner, answer(inner));
    co_return v == 42 && outer.running_in_this_thread();
}

asio::awaitable<std::string> exception_of(strand_type inner) {
    try {
        co_await run_on(inner, fail());
    } catch (const std::runtime_error& e) {
        co_return e.what();
    }
    co_return "";
}

asio::awaitable<bool> cut_by_a_timer(strand_type inner) {
    asio::steady_timer timer(co_await asio::this_coro::executor, 10ms);
    auto r = co_await (run_on(inner, wait_long()) || timer.async_wait(asio::use_awaitable));
    co_return r.index() == 1;
}

/// `quick` on `inner`, raced against a timer that expires at once, `rounds` times.
asio::awaitable<int> races(strand_type inner, int rounds) {
    int completed = 0;
    for (int i = 0; i < rounds; ++i) {
        asio::steady_timer timer(co_await asio::this_coro::executor, 0ms);
        auto r = co_await (run_on(inner, quick(i)) || timer.async_wait(asio::use_awaitable));
        if (r.index() == 0) ++completed;
    }
    co_return completed;
}

} // namespace

BOOST_AUTO_TEST_SUITE(run_on_executor)

BOOST_AUTO_TEST_CASE(the_result_comes_back_on_the_awaiting_strand) {
    four_threads net;
    const auto outer = net.strand();
    BOOST_TEST(net.run(outer, awaited_from(outer, net.strand())));
}

BOOST_AUTO_TEST_CASE(an_exception_comes_back_to_the_awaiting_coroutine) {
    four_threads net;
    BOOST_TEST(net.run(net.strand(), exception_of(net.strand())) == "failed");
}

BOOST_AUTO_TEST_CASE(a_cancellation_reaches_the_coroutine) {
    four_threads net;
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(net.run(net.strand(), cut_by_a_timer(net.strand())));
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
}

BOOST_AUTO_TEST_CASE(a_cancellation_passed_on_after_the_completion_touches_no_freed_state) {
    four_threads net;
    const auto outer = net.strand();
    const auto inner = net.strand();
    for (int round = 0; round < 200; ++round) {
        auto h = std::make_shared<handshake>();
        auto f = asio::co_spawn(outer, awaits_as_cancelled(outer, inner, h),
                                asio::bind_cancellation_slot(h->signal.slot(), asio::use_future));
        BOOST_TEST_REQUIRE((f.wait_for(30s) == std::future_status::ready));
        BOOST_TEST_REQUIRE(f.get() == 7);
        // The cancellation passed on to `inner` has run too.
        BOOST_TEST_REQUIRE(net.run(inner, nothing()) == 0);
    }
}

BOOST_AUTO_TEST_CASE(a_race_with_a_timer_that_expires_at_once_touches_no_freed_state) {
    four_threads net;
    const int rounds = 200;
    const int completed = net.run(net.strand(), races(net.strand(), rounds));
    BOOST_TEST_MESSAGE(completed << " of " << rounds << " completed before the timer");
    BOOST_TEST(completed <= rounds);
}

BOOST_AUTO_TEST_SUITE_END()
