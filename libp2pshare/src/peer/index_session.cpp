#include "index_session.hpp"

#include "../blocking.hpp"
#include "../support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
} // namespace

// --- lease_schedule ---------------------------------------------------------------------------

lease_schedule::lease_schedule(std::chrono::milliseconds first_retry,
                               std::chrono::milliseconds retry_max, std::size_t servers)
    : first_retry_(first_retry),
      retry_max_(std::max(retry_max, first_retry)),
      backoff_(first_retry),
      servers_(std::max<std::size_t>(servers, 1)) {}

bool lease_schedule::unavailable(errc code) noexcept {
    return code == errc::unreachable || code == errc::timeout || code == errc::store_unavailable ||
           code == errc::tls_failed || code == errc::shutting_down ||
           code == errc::too_many_connections;
}

std::chrono::milliseconds lease_schedule::call_limit(
    std::chrono::milliseconds most) const noexcept {
    // With one index server there is nowhere to go: a slow answer is better than none.
    if (servers_ == 1) return most;
    const auto share = ttl_ / static_cast<long>(3 * servers_);
    return std::min(most, std::max(share, min_call_limit));
}

lease_schedule::action lease_schedule::next(time_point now) const {
    // A step that failed waits for its retry; the others keep their own schedule, so that a file
    // list the index refuses (too many files, a full index) never holds up the renewals.
    const auto ready = [&](step s) { return failed_ != s || now >= retry_at_; };
    if (!registered_) {
        return ready(step::register_peer) ? action{step::register_peer, now}
                                          : action{step::wait, retry_at_};
    }
    if (now >= renew_due_ && ready(step::renew)) return {step::renew, now};
    if (stale_ && ready(step::send_files)) return {step::send_files, now};
    auto until = renew_due_;
    if (failed_ == step::renew) until = std::max(until, retry_at_);
    if (stale_ && failed_ == step::send_files) until = std::min(until, retry_at_);
    return {step::wait, until};
}

void lease_schedule::registered(std::chrono::milliseconds ttl, time_point now) {
    // Renewed three times per lease: one lost renewal does not lose the lease.
    ttl_ = std::max(ttl, std::chrono::milliseconds(30));
    registered_ = true;
    stale_ = false;
    misses_ = 0;
    succeeded();
    renew_due_ = now + ttl_ / 3;
}

void lease_schedule::succeeded() noexcept {
    backoff_ = first_retry_;
    retry_at_ = {};
    failed_ = step::wait;
}

void lease_schedule::renewed(std::chrono::milliseconds ttl, time_point now) {
    ttl_ = std::max(ttl, std::chrono::milliseconds(30));
    misses_ = 0;
    if (failed_ == step::renew) succeeded();
    renew_due_ = now + ttl_ / 3;
}

void lease_schedule::files_sent(time_point now) {
    stale_ = false;
    misses_ = 0;
    if (failed_ == step::send_files) succeeded();
    renew_due_ = now + ttl_ / 3; // replacing the list renews the lease
}

lease_schedule::verdict lease_schedule::failed(step what, errc code, time_point now,
                                               double jitter) {
    verdict v;
    if (code == errc::not_found || code == errc::forbidden) {
        registered_ = false; // the index forgot us or our token: register again
        stale_ = true;
        v.drop_token = code == errc::forbidden;
    }
    if (what == step::register_peer && code == errc::bad_field) v.drop_token = true;
    // Backing off one step does not reset another's: the wait grows with failures in a row.
    failed_ = registered_ ? what : step::register_peer;
    if (unavailable(code) && servers_ > 1) {
        // Another index server may serve: the step is carried out there at once, a renewal with
        // the same token. A wait would only eat into the lease. When the whole round failed,
        // the peer is back at the first server it tried, and backs off as with one server.
        v.move = true;
        if (++misses_ % servers_ != 0) {
            retry_at_ = now;
            return v;
        }
    } else {
        misses_ = 0; // this index answered: a round starts afresh
    }
    const auto extra = std::chrono::milliseconds(static_cast<long>(
        static_cast<double>(backoff_.count()) / 2 * std::clamp(jitter, 0.0, 1.0)));
    retry_at_ = now + backoff_ + extra;
    backoff_ = std::min(backoff_ * 2, retry_max_);
    return v;
}

// --- index_session ----------------------------------------------------------------------------

index_session::index_session(asio::any_io_executor executor, std::vector<ServerAddress> indexes,
                             settings s, std::function<std::vector<file_entry>()> files,
                             std::string token)
    : executor_(executor),
      client_(executor, std::move(indexes)),
      settings_(std::move(s)),
      files_(std::move(files)),
      token_(std::move(token)),
      schedule_(std::chrono::milliseconds(100), settings_.retry_max, client_.size()),
      lock_(executor),
      wake_(executor),
      loop_done_(executor, asio::steady_timer::time_point::max()),
      registered_(settings_.registered) {}

index_session::~index_session() = default;

std::vector<file_entry> index_session::capped(std::vector<file_entry> files) {
    const auto most = client_.bounds().max_files_per_peer;
    if (files.size() > most) {
        if (!warned_cap_) {
            log().warn("{}: the index takes at most {} files per peer; {} of {} are announced",
                       settings_.log_name, most, most, files.size());
            warned_cap_ = true;
        }
        files.resize(most);
    }
    return files;
}

void index_session::set_token(std::string token) {
    if (token == token_) return;
    token_ = std::move(token);
    if (on_token) on_token(token_);
}

void index_session::note_registered() {
    const bool was = registered_->exchange(true);
    if (!was) {
        log().info("{}: registered with {} (lease {} ms)", settings_.log_name,
                   to_string(client_.address()), schedule_.ttl().count());
    }
}

void index_session::move_on(std::size_t from, const api_error& error) {
    if (!client_.move_on(from)) return; // another call moved already
    const bool unreachable = error.code == errc::unreachable || error.code == errc::timeout;
    log().info("{}: index {} {} ({}{}{}); moving to {}", settings_.log_name,
               to_string(client_.address(from)), unreachable ? "unreachable" : "unavailable",
               unreachable ? "" : to_string(error.code), unreachable ? "" : ": ", error.message,
               to_string(client_.address()));
    if (on_move) on_move();
}

bool index_session::moved_after(std::size_t from, const api_error& error,
                                const asio::cancellation_state& state) {
    // A cancelled call ends as unreachable too: that says nothing of the index.
    if (client_.size() < 2 || !lease_schedule::unavailable(error.code) || cancelled(state)) {
        return false;
    }
    move_on(from, error);
    return true;
}

asio::awaitable<api_result<void>> index_session::async_register() {
    auto self = shared_from_this();
    auto guard = co_await lock_.lock();
    if (!guard) co_return fail(errc::shutting_down, "cancelled");
    if (stopping_) co_return fail(errc::shutting_down, "the peer is stopping");
    if (co_await carry_out_moving_on(lease_schedule::step::register_peer)) {
        co_return api_result<void>{};
    }
    co_return last_error_; // the loop retries later, unless the caller gives up
}

asio::awaitable<bool> index_session::carry_out_moving_on(lease_schedule::step what) {
    for (std::size_t tried = 1;; ++tried) {
        const auto at = client_.current();
        if (co_await carry_out(what)) co_return true;
        const auto state = co_await asio::this_coro::cancellation_state;
        const bool moved = client_.current() != at;
        if (!moved || tried >= client_.size() || stopping_ || cancelled(state)) co_return false;
    }
}

void index_session::start() {
    if (running_ || stopping_) return;
    running_ = true;
    asio::co_spawn(executor_, run(),
                   asio::bind_cancellation_slot(
                       stop_loop_.slot(), [self = shared_from_this()](std::exception_ptr e) {
                           log_exception(self->settings_.log_name + ": lease loop", e);
                           self->running_ = false;
                           self->loop_done_.cancel();
                       }));
}

void index_session::files_changed() {
    schedule_.files_changed();
    wake_.cancel();
}

asio::awaitable<bool> index_session::carry_out(lease_schedule::step what) {
    using step = lease_schedule::step;
    const auto at = client_.current(); // the index server this call goes to
    client_.limit_lease_calls(schedule_.call_limit(client_.request_timeout()));
    api_error error;
    bool ok = false;
    switch (what) {
        case step::register_peer: {
            // The index's limits (defaults when it gives none). An index that cannot answer them
            // would not take the registration either: the next one is tried at once.
            if (auto bounds = co_await client_.async_bounds(); !bounds) {
                error = bounds.error();
                break;
            }
            register_request r{settings_.id,     settings_.host, settings_.port,
                               capped(files_()), token_,         settings_.cert_sha256};
            auto lease = co_await client_.async_register(r);
            if (lease) {
                announced_ = std::move(r.files);
                schedule_.registered(lease->ttl, lease_schedule::clock::now());
                set_token(std::move(lease->token));
                note_registered();
                ok = true;
            } else {
                error = lease.error();
            }
            break;
        }
        case step::send_files: {
            auto files = capped(files_());
            if (files == announced_) { // nothing new for the index
                schedule_.files_unchanged();
                co_return true;
            }
            auto r = co_await client_.async_replace_files(settings_.id, token_, files);
            if (r) {
                schedule_.files_sent(lease_schedule::clock::now());
                announced_ = std::move(files);
            }
            ok = static_cast<bool>(r);
            if (!r) error = r.error();
            break;
        }
        case step::renew: {
            auto ttl = co_await client_.async_renew(settings_.id, token_);
            if (ttl) schedule_.renewed(*ttl, lease_schedule::clock::now());
            if (ttl && settings_.metrics) settings_.metrics->renewals.add();
            ok = static_cast<bool>(ttl);
            if (!ttl) error = ttl.error();
            break;
        }
        case step::wait:
            co_return true;
    }
    // The folder may have changed while the call was in flight: then the list is due again.
    if (ok && capped(files_()) != announced_) {
        schedule_.files_changed();
        wake_.cancel();
    }
    if (ok || stopping_) co_return ok;
    if (settings_.metrics) settings_.metrics->index_failures.add();
    last_error_ = error;
    // A call cancelled by its caller (a sync given up) is no failure of the index: the step
    // stays due, and the loop carries it out.
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return false;
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    const bool lost = error.code == errc::not_found || error.code == errc::forbidden;
    const auto now = lease_schedule::clock::now();
    const auto verdict = schedule_.failed(what, error.code, now, jitter(rng_));
    if (verdict.drop_token) set_token({});
    if (verdict.move) move_on(at, error);
    // A step carried out again at the next index at once: the move's log line says it all.
    const bool again_at_once = verdict.move && schedule_.next(now).what != step::wait;
    if (lost) {
        registered_->store(false);
        client_.forget_bounds(); // the index may have restarted, with other limits
        log().info("{}: the index lost our lease ({}); registering again", settings_.log_name,
                   error.message);
    } else if (!again_at_once) {
        log().log(
            schedule_.backoff() >= settings_.retry_max ? spdlog::level::warn : spdlog::level::debug,
            "{}: {} failed: {}", settings_.log_name,
            what == step::register_peer ? "registration"
            : what == step::renew       ? "lease renewal"
                                        : "file list update",
            error.message);
    }
    co_return false;
}

asio::awaitable<void> index_session::run() {
    auto self = shared_from_this();
    // Stopping cancels the call in flight; the loop then sees stopping_ and ends.
    co_await asio::this_coro::throw_if_cancelled(false);
    while (!stopping_) {
        const auto action = schedule_.next(lease_schedule::clock::now());
        if (action.what == lease_schedule::step::wait) {
            wake_.expires_at(action.at);
            co_await wake_.async_wait(use_tuple);
            continue;
        }
        auto guard = co_await lock_.lock();
        if (!guard || stopping_) break;
        // Another call (a file list sent by sync) may have done what was due meanwhile.
        co_await carry_out(schedule_.next(lease_schedule::clock::now()).what);
    }
}

asio::awaitable<api_result<std::vector<std::string>>> index_session::async_list(
    std::string contains) {
    auto self = shared_from_this();
    const auto at = client_.current();
    auto r = co_await client_.async_list(contains);
    const auto state = co_await asio::this_coro::cancellation_state;
    if (r || !moved_after(at, r.error(), state)) co_return r;
    co_return co_await client_.async_list(std::move(contains)); // once, at the next index
}

asio::awaitable<api_result<std::vector<std::vector<source_entry>>>> index_session::async_lookup(
    std::vector<std::string> names) {
    auto self = shared_from_this();
    const auto at = client_.current();
    auto r = co_await client_.async_lookup(names);
    const auto state = co_await asio::this_coro::cancellation_state;
    if (r || !moved_after(at, r.error(), state)) co_return r;
    co_return co_await client_.async_lookup(std::move(names)); // once, at the next index
}

asio::awaitable<api_result<void>> index_session::async_send_files() {
    auto self = shared_from_this();
    auto guard = co_await lock_.lock();
    if (!guard) co_return fail(errc::shutting_down, "cancelled");
    if (stopping_) co_return fail(errc::shutting_down, "the peer is stopping");
    if (!schedule_.is_registered()) {
        wake_.cancel(); // the loop registers, with the whole list
        co_return fail(errc::unreachable, "not registered with the index at the moment");
    }
    schedule_.files_changed();
    if (co_await carry_out_moving_on(lease_schedule::step::send_files)) {
        co_return api_result<void>{};
    }
    wake_.cancel(); // the loop tries again, after its backoff
    co_return last_error_;
}

void index_session::abort() {
    stopping_ = true;
    stop_loop_.emit(asio::cancellation_type::terminal);
    wake_.cancel();
}

asio::awaitable<void> index_session::async_stop() {
    auto self = shared_from_this();
    if (stopping_) {
        while (running_)
            co_await loop_done_.async_wait(use_tuple);
        co_return;
    }
    stopping_ = true;
    stop_loop_.emit(asio::cancellation_type::terminal);
    wake_.cancel();
    while (running_)
        co_await loop_done_.async_wait(use_tuple);
    // No new downloader is sent here.
    auto guard = co_await lock_.lock();
    if (schedule_.is_registered() && !token_.empty()) {
        client_.limit_lease_calls(schedule_.call_limit(client_.request_timeout()));
        // Each index server at most once: the quit does not wait for rounds of retries.
        for (std::size_t tried = 1;; ++tried) {
            const auto at = client_.current();
            auto r = co_await client_.async_unregister(settings_.id, token_);
            if (r) {
                log().info("{}: unregistered", settings_.log_name);
                break;
            }
            const auto state = co_await asio::this_coro::cancellation_state;
            if (tried < client_.size() && moved_after(at, r.error(), state)) continue;
            log().warn("{}: could not unregister ({}); the index drops us when the lease ends",
                       settings_.log_name, r.error().message);
            break;
        }
    }
    schedule_.forget();
    registered_->store(false);
    set_token({});
    client_.close();
}

} // namespace p2pshare::detail
