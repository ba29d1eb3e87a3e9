// Where the index keeps its state: one asynchronous interface with two implementations, the
// memory of this process (the default, memory_backend) and Redis, standalone or Cluster, shared by
// any number of index servers (redis_backend). docs/architecture.md, "Index stores".
//
// Every operation runs on the index's (serial) executor and completes there, with results the
// caller owns. Each is atomic per peer: a registration, a renewal, a replacement of a file list
// or an unregistration is seen whole or not at all. Failures are api_errors with the names of
// docs/protocol.md §2; a store that cannot be reached within its deadline gives
// errc::store_unavailable. Cancelled, an operation ends with store_unavailable too ("not done,
// or not known to be done"): a change may still have been applied, as after a lost answer.
#pragma once

#include "metrics.hpp"
#include "protocol.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

/// A lease handed out by register or renew.
struct store_lease {
    std::string token;
    std::chrono::milliseconds ttl{0};
    bool taken_back = false; ///< a live registration was renewed with its own token
};

/// One peer that shares a name, as a lookup gives it.
struct source_record {
    std::uint32_t peer = 0;
    std::string host;
    std::uint16_t port = 0;
    std::uint64_t size = 0;
    std::string sha256;
    std::string root;        ///< empty when the peer gave none
    std::string cert_sha256; ///< its TLS certificate's SHA-256; empty: it serves plain HTTP
};

/// Which names a list request wants: all of them, those containing `contains`, or those that
/// have every word of `words` (word search, docs/protocol.md §6.5); in byte order after `after`.
struct list_query {
    std::string contains;
    std::vector<std::string> words;     ///< lowercase, as name_words() makes them
    std::vector<std::string> narrowing; ///< shorter words the names must have too (query_words)
    std::string after;
    std::size_t limit = 1;
};

struct store_page {
    std::vector<std::string> names;
    std::optional<std::string> next_after; ///< the cursor of the next page, if there is one
};

/// The answer of a lookup, in the caller's object: the sources of name i are
/// `sources[first[i] .. first[i + 1])`. Reused across lookups, it keeps its capacity (and that of
/// its strings), so that a lookup in steady state allocates nothing.
struct lookup_results {
    std::vector<std::size_t> first; ///< one more than the names asked
    std::vector<source_record> sources;
    std::size_t used = 0; ///< sources[0 .. used) are this answer's; the rest is spare capacity

    void clear() noexcept {
        first.clear();
        used = 0;
    }
    /// Starts the next name's sources.
    void next_name() { first.push_back(used); }
    /// Room for one more source of the current name (its fields hold an old answer's values).
    source_record& add() {
        if (used == sources.size()) sources.emplace_back();
        return sources[used++];
    }
    /// Ends the answer: `first` gets its last entry.
    void finish() { first.push_back(used); }
    std::span<const source_record> of(std::size_t name) const {
        return {sources.data() + first[name], first[name + 1] - first[name]};
    }
};

struct store_counts {
    std::size_t peers = 0; ///< live peers
    std::size_t names = 0; ///< distinct names shared
    std::size_t files = 0; ///< (peer, file) pairs
};

class index_backend {
public:
    virtual ~index_backend() = default;

    /// How long a lease lasts without renewal.
    virtual std::chrono::milliseconds ttl() const noexcept = 0;

    /// Registers a peer, or takes back its own live registration when `r.token` is its token.
    /// `client` is the address the request came from (max_peers_per_address).
    virtual boost::asio::awaitable<api_result<store_lease>> async_register(register_request r,
                                                                           std::string client) = 0;
    virtual boost::asio::awaitable<api_result<store_lease>> async_renew(std::uint32_t id,
                                                                        std::string token) = 0;
    virtual boost::asio::awaitable<api_result<void>> async_replace_files(
        std::uint32_t id, std::string token, std::vector<file_entry> files) = 0;
    virtual boost::asio::awaitable<api_result<void>> async_unregister(std::uint32_t id,
                                                                      std::string token) = 0;

    /// A page of names. A filtered request (contains, words) examines a bounded number of
    /// names (IndexLimits::max_list_scan): its page may be short, with a cursor to go on.
    virtual boost::asio::awaitable<api_result<store_page>> async_list(list_query q) = 0;

    /// The sources of each name into `out` (cleared first), in the order asked (none: nobody
    /// live shares it); a random sample of max_sources_per_name where more share it. The views
    /// and `out` must stay valid until the operation completes.
    virtual boost::asio::awaitable<api_result<void>> async_lookup(
        std::span<const std::string_view> names, lookup_results& out) = 0;

    virtual boost::asio::awaitable<api_result<store_counts>> async_counts() = 0;

    /// Ends the store's own work (connections, timers). Safe to call more than once.
    virtual boost::asio::awaitable<void> async_stop() = 0;

    /// Where to count the peers this store removes because their lease ended (none: not
    /// counted). `c` must outlive the store.
    virtual void count_expiries_in(counter* c) noexcept = 0;
};

} // namespace p2pshare::detail
