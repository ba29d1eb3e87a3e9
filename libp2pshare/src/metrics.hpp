// What GET /metrics shows, in the Prometheus text format (version 0.0.4): counters, gauges and
// histograms that the hot paths bump with relaxed atomic operations (no lock, no allocation, any
// thread), and the text made from them only when scraped. The index server's and the peer's
// metrics are listed in docs/protocol.md §6.9 and §7.5.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

namespace p2pshare {

namespace detail {

/// A count that only grows.
class counter {
public:
    void add(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

/// A level that goes up and down.
class gauge {
public:
    void add(std::int64_t n) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> v_{0};
};

/// Durations in fixed buckets, from 50 µs to 10 s.
class histogram {
public:
    static constexpr std::array<double, 14> bounds{
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 10};
    void observe(std::chrono::nanoseconds d) noexcept;
    std::uint64_t bucket(std::size_t i) const noexcept {
        return counts_[i].load(std::memory_order_relaxed);
    }
    std::uint64_t count() const noexcept;
    double sum_seconds() const noexcept {
        return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
    }

private:
    std::array<std::atomic<std::uint64_t>, bounds.size() + 1> counts_{}; ///< the last: +Inf
    std::atomic<std::uint64_t> sum_ns_{0};
};

/// Appends families and samples in the text format. A family's samples must follow its
/// header; label values are escaped.
class metrics_text {
public:
    explicit metrics_text(std::string& out) : out_(out) {}
    /// # HELP and # TYPE of a family (`type`: counter, gauge or histogram).
    void family(std::string_view name, std::string_view type, std::string_view help);
    /// One sample: `labels` is "" or a list of name="value" pairs made by label().
    void sample(std::string_view name, std::string_view labels, double value);
    void sample(std::string_view name, std::string_view labels, std::uint64_t value);
    void sample(std::string_view name, std::string_view labels, std::int64_t value);
    /// The _bucket, _sum and _count samples of `h`.
    void histogram_samples(std::string_view name, std::string_view labels, const histogram& h);

private:
    std::string& out_;
};

/// `name="value"`, the value escaped (backslash, double quote, newline).
std::string label(std::string_view name, std::string_view value);

/// The media type of the text format.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The HTTP status codes counted apart; the others are counted as "other".
inline constexpr std::array<unsigned, 16> counted_statuses{200, 201, 204, 206, 304, 400, 401, 403,
                                                           404, 405, 409, 412, 413, 416, 429, 503};
/// Index of `status` in counted_statuses, or counted_statuses.size() for any other.
std::size_t status_slot(unsigned status) noexcept;

/// The index server's endpoints, as its metrics name them.
enum class index_endpoint : std::uint8_t {
    lookup,
    list,
    register_peer,
    renew,
    files,
    unregister,
    health,
    metrics,
    status,
    other,
};
inline constexpr std::size_t index_endpoint_count = 10;
std::string_view to_string(index_endpoint e) noexcept;

/// Connections of one server (or of several serving one port in one process).
struct connection_metrics {
    gauge open;
    counter accepted;
    counter refused; ///< at the connection limit
};

/// A peer's counters: its uploads (file server), downloads and index session.
/// The transfers of a peer in flight, for its status page: each upload and download while it
/// runs. Used on the peer's executor only (it is serial): no lock.
struct transfer_board {
    struct entry {
        bool upload = false;
        std::string name;
        boost::asio::ip::address peer; ///< an upload's client
        std::uint64_t done = 0;        ///< a download's bytes present so far
        std::uint64_t total = 0;       ///< bytes to send (an upload's range) or the file's size
        std::size_t sources = 0;       ///< a download's sources sending now
        const std::uint64_t* sent = nullptr; ///< an upload's bytes sent (its connection's count)
    };
    std::list<entry> entries;

    /// Keeps `e` on the board for as long as it lives.
    class listed {
    public:
        listed(transfer_board& b, entry e)
            : board_(b), at_(b.entries.insert(b.entries.end(), std::move(e))) {}
        ~listed() { board_.entries.erase(at_); }
        listed(const listed&) = delete;
        listed& operator=(const listed&) = delete;

    private:
        transfer_board& board_;
        std::list<entry>::iterator at_;
    };
};

struct peer_metrics {
    counter sent_bytes;      ///< bytes of file answers (headers too), added as each ends
    counter received_bytes;  ///< piece bytes received, added as each download ends
    gauge uploads_in_flight; ///< file answers being sent
    gauge downloads_in_flight;
    counter uploads;          ///< file answers (GET or HEAD of /v1/files/NAME)
    counter downloads_ok;     ///< downloads that ended with the file in place
    counter downloads_failed; ///< downloads that ended without it
    counter pieces_verified;  ///< pieces received that hashed right
    counter pieces_failed;    ///< pieces received that hashed wrong
    counter sources_banned;   ///< sources banned for a file (bad piece or piece hashes)
    counter renewals;         ///< lease renewals the index accepted
    counter index_failures;   ///< calls to the index that failed
    /// Body bytes of large file answers by how they were sent: sendfile(2) on plain TCP,
    /// SSL_sendfile through kernel TLS, or read and encrypted by OpenSSL.
    counter body_sendfile, body_kernel_tls, body_tls_copy;
    connection_metrics connections; ///< of the file server
    transfer_board transfers;       ///< on the peer's executor only
};

} // namespace detail

/// The index server's counters. Several IndexServers of one process (indexserver --threads) may
/// share one, so that each of them shows the whole process's figures.
struct IndexMetrics {
    /// Requests answered, by endpoint and status.
    std::array<std::array<detail::counter, detail::counted_statuses.size() + 1>,
               detail::index_endpoint_count>
        requests;
    /// From the request's last byte to its answer handed to the kernel, by endpoint.
    std::array<detail::histogram, detail::index_endpoint_count> durations;
    detail::counter lease_expiries; ///< peers removed because their lease ended
    detail::counter store_errors;   ///< requests that got 503 store_unavailable
    detail::connection_metrics connections;

    /// Counts one answered request.
    void count(detail::index_endpoint e, unsigned status, std::chrono::nanoseconds took) noexcept {
        requests[static_cast<std::size_t>(e)][detail::status_slot(status)].add();
        durations[static_cast<std::size_t>(e)].observe(took);
    }
};

} // namespace p2pshare
