// The peer's conversation with the index: registration, the lease renewed on its own schedule,
// file-list updates, re-registration when the index forgot the peer, the move to the next index
// server of its list when one cannot be reached, and the unregistration at quit. Its decisions
// are a plain class (lease_schedule) with time passed in; a small coroutine loop carries them
// out. The loop waits on nothing but the index: the file list it sends is taken from the shared
// folder's state as it is at that moment, without touching the disk.
#pragma once

#include "metrics.hpp"

#include "../async_mutex.hpp"
#include "index_client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace p2pshare::detail {

/// What the lease loop does next, decided from the results so far and the time now.
class lease_schedule {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    enum class step { register_peer, send_files, renew, wait };
    struct action {
        step what = step::wait;
        time_point at{}; ///< for wait: until when
        friend bool operator==(const action&, const action&) = default;
    };

    /// What failed() decided besides the retry.
    struct verdict {
        /// The token is void (forbidden, or a registration refused with bad_field).
        bool drop_token = false;
        /// The index server cannot serve (unavailable()): go to the next one of the list, where
        /// the step is carried out again (a renewal with the same token: index servers that
        /// share their store know the lease).
        bool move = false;
    };

    /// `first_retry` is the first wait after a failure; each failure in a row doubles it, up to
    /// `retry_max`. `jitter` (0..1) adds up to half of the wait, so that peers spread out.
    /// `servers`: how many index servers the peer knows (1 or more).
    lease_schedule(std::chrono::milliseconds first_retry, std::chrono::milliseconds retry_max,
                   std::size_t servers = 1);

    /// Whether a failure with `code` means that the index server cannot serve at all (not
    /// reached, no answer in time, or a 503 that says so: its store is down, it is stopping, it
    /// is at its connection limit), so that another index server may: errc::unreachable,
    /// timeout, store_unavailable, shutting_down, too_many_connections.
    static bool unavailable(errc code) noexcept;

    action next(time_point now) const;

    void registered(std::chrono::milliseconds ttl, time_point now);
    void renewed(std::chrono::milliseconds ttl, time_point now);
    void files_sent(time_point now);
    void files_changed() noexcept { stale_ = true; }
    /// The list turned out to be the one the index has: nothing to send.
    void files_unchanged() noexcept { stale_ = false; }
    /// A call failed with `code`: not_found (the index forgot the peer) and forbidden (the token
    /// is void) mean register again. With several index servers, an unavailable() one is left
    /// for the next, where the step is due at once: only when every server of a round failed
    /// that way in a row does the peer back off. Every other failure backs off.
    verdict failed(step what, errc code, time_point now, double jitter);
    /// The peer unregistered (or gave up): nothing is due any more.
    void forget() noexcept { registered_ = false; }

    bool is_registered() const noexcept { return registered_; }
    std::chrono::milliseconds ttl() const noexcept { return ttl_; }
    std::chrono::milliseconds backoff() const noexcept { return backoff_; }

    /// The longest one call may take, so that a failover fits in the lease: a renewal is due a
    /// third of the lease after the last success, and a round over every index server may take
    /// the next third, which leaves the last third to spare. Never more than `most` (the
    /// client's own deadline) nor less than min_call_limit.
    std::chrono::milliseconds call_limit(std::chrono::milliseconds most) const noexcept;
    static constexpr std::chrono::milliseconds min_call_limit{250};

private:
    std::chrono::milliseconds first_retry_;
    std::chrono::milliseconds retry_max_;
    std::chrono::milliseconds backoff_;
    std::chrono::milliseconds ttl_{30'000};
    std::size_t servers_;
    std::size_t misses_ = 0; ///< unavailable() failures in a row, on any of the servers
    void succeeded() noexcept;

    bool registered_ = false;
    bool stale_ = true;
    step failed_ = step::wait; ///< the step waiting for its retry (wait: none)
    time_point renew_due_{};
    time_point retry_at_{};
};

class index_session : public std::enable_shared_from_this<index_session> {
public:
    struct settings {
        std::uint32_t id = 0;
        std::string host; ///< advertised; empty: the index takes the request's address
        std::uint16_t port = 0;
        std::chrono::milliseconds retry_max{5'000};
        std::string log_name;
        /// Whether the peer is registered now; read from any thread (PeerNode::registered).
        std::shared_ptr<std::atomic<bool>> registered = std::make_shared<std::atomic<bool>>(false);
        /// Counts renewals and failed calls (none: not counted).
        std::shared_ptr<peer_metrics> metrics;
        /// The SHA-256 of the certificate the file server speaks TLS with; empty: plain HTTP.
        std::string cert_sha256{};
    };

    /// `executor` must be serial. `indexes`: the index servers, in order of preference (at
    /// least one, each once). `files` gives the list to announce (called on the executor).
    index_session(boost::asio::any_io_executor executor, std::vector<ServerAddress> indexes,
                  settings s, std::function<std::vector<file_entry>()> files, std::string token);
    ~index_session();

    /// The first registration, awaited by the peer's start. Fails with the index's error.
    boost::asio::awaitable<api_result<void>> async_register();
    /// Starts the lease loop (after the first registration, successful or not).
    void start();
    /// The file list changed: the loop sends it.
    void files_changed();
    /// Sends the file list now (or has the loop register). errc::unreachable when the peer is not
    /// registered at the moment.
    boost::asio::awaitable<api_result<void>> async_send_files();
    /// Every name in the network (index_client::async_list), from the current index server; one
    /// that cannot serve is left for the next, where the listing is asked once more.
    boost::asio::awaitable<api_result<std::vector<std::string>>> async_list(std::string contains);
    /// The sources of each name (index_client::async_lookup), moving on as async_list does.
    boost::asio::awaitable<api_result<std::vector<std::vector<source_entry>>>> async_lookup(
        std::vector<std::string> names);
    /// Stops the loop (its call in flight is cancelled), then unregisters if registered (at the
    /// next index servers in turn while the current one cannot serve).
    boost::asio::awaitable<void> async_stop();
    /// Stops the loop at once, without unregistering (the peer is being destroyed).
    void abort();

    bool registered() const noexcept { return registered_->load(); }
    const std::string& token() const noexcept { return token_; }
    std::chrono::milliseconds ttl() const noexcept { return schedule_.ttl(); }
    index_client& client() noexcept { return client_; }

    /// Called on the executor when the token changed (a registration gave one, or it was void).
    std::function<void(const std::string&)> on_token;
    /// Called on the executor when calls go to another index server (client().address()).
    std::function<void()> on_move;

private:
    boost::asio::awaitable<void> run();
    /// Carries one step out; true when the index accepted it (or nothing had to be sent).
    boost::asio::awaitable<bool> carry_out(lease_schedule::step what);
    /// The same, and again at the next index server at once while the one in use cannot serve
    /// (each at most once): what a caller awaits (the first registration, a sync's file list)
    /// does not fail because of a failover the loop would carry out a moment later.
    boost::asio::awaitable<bool> carry_out_moving_on(lease_schedule::step what);
    void set_token(std::string token);
    /// The list as the index takes it: at most its max_files_per_peer (the first by name).
    std::vector<file_entry> capped(std::vector<file_entry> files);
    void note_registered();
    /// The index server at `from` failed with `error`: the client moves to the next one (unless
    /// another call did already); logged, and on_move told.
    void move_on(std::size_t from, const api_error& error);
    /// After a call to the index server at `from` failed with `error`: whether to ask again at
    /// the next one (it cannot serve, and the call, whose cancellation `state` is given, was not
    /// cancelled), which is then current.
    bool moved_after(std::size_t from, const api_error& error,
                     const boost::asio::cancellation_state& state);

    boost::asio::any_io_executor executor_;
    index_client client_;
    settings settings_;
    std::function<std::vector<file_entry>()> files_;
    std::string token_;
    std::vector<file_entry> announced_; ///< the list the index has
    lease_schedule schedule_;
    async_mutex lock_; ///< one call to the index at a time for the lease and the list
    boost::asio::steady_timer wake_;
    boost::asio::steady_timer loop_done_;
    boost::asio::cancellation_signal stop_loop_;
    bool running_ = false;
    bool stopping_ = false;
    std::shared_ptr<std::atomic<bool>> registered_;
    api_error last_error_{errc::unreachable, "not registered yet"};
    bool warned_cap_ = false;
    std::mt19937 rng_{std::random_device{}()};
};

} // namespace p2pshare::detail
