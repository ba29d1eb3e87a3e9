// The index's state with no I/O: live peers, their leases, an inverted index from file name to
// the peers that share it, and one from word to the names that have it (word search). Time is
// passed in, so expiry is tested without waiting. The memory backend (index/memory_backend.hpp)
// puts it behind the index's store interface.
#pragma once

#include "metrics.hpp"

#include "pieces.hpp"
#include "protocol.hpp"
#include "sorted_names.hpp"
#include "support.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace p2pshare::detail {

/// What the store may hold and give; each refusal leaves the store as it was.
struct index_bounds {
    std::size_t max_peers = SIZE_MAX;             ///< live peers
    std::size_t max_files = SIZE_MAX;             ///< (peer, file) pairs
    std::size_t max_name_bytes = SIZE_MAX;        ///< bytes of names over those pairs
    std::size_t max_peers_per_address = SIZE_MAX; ///< live peers of one client address
    std::size_t max_sources_per_name = SIZE_MAX;  ///< sources in one lookup answer
    std::size_t max_list_scan = SIZE_MAX;         ///< names one filtered list request examines

    static index_bounds of(const IndexLimits& l) noexcept {
        return {l.max_peers,
                l.max_files,
                l.max_name_bytes,
                l.max_peers_per_address,
                l.max_sources_per_name,
                l.max_list_scan};
    }
};

class index_store {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;

    struct lease {
        std::string token;
        std::chrono::milliseconds ttl;
        bool taken_back = false; ///< a live registration was renewed with its own token
    };

    /// One peer that shares a name; the views stay valid until the next change to the store.
    struct source {
        std::uint32_t peer;
        std::string_view host;
        std::uint16_t port;
        std::uint64_t size;
        const digest* sha256;
        const digest* root; ///< nullptr when the peer gave none
        const digest* cert; ///< its TLS certificate's SHA-256; nullptr: it serves plain HTTP
    };

    struct page {
        std::vector<std::string_view> names;
        std::optional<std::string> next_after; ///< cursor of the next page, if there is one
    };

    using bounds = index_bounds;

    explicit index_store(std::chrono::milliseconds ttl,
                         std::function<std::string()> make_token = nullptr, bounds b = {});

    std::chrono::milliseconds ttl() const noexcept { return ttl_; }

    /// Registers a peer, or takes back its own live registration when `r.token` is its token.
    /// `client` is the address the request came from, counted against max_peers_per_address.
    api_result<lease> register_peer(register_request r, time_point now,
                                    std::string_view client = {});
    api_result<lease> renew(std::uint32_t id, std::string_view token, time_point now);
    api_result<void> replace_files(std::uint32_t id, std::string_view token,
                                   std::vector<file_entry> files, time_point now);
    api_result<void> unregister(std::uint32_t id, std::string_view token, time_point now);

    /// Distinct names in byte order, after the cursor `after`, containing `contains`. With
    /// `contains`, at most max_list_scan names are examined: the page may then be short, with
    /// `next_after` the last name examined.
    page list(std::string_view contains, std::string_view after, std::size_t limit, time_point now);

    /// Names that have every one of `words` (lowercase, as name_words() makes them) and of
    /// `narrowing` (shorter words, not indexed), in byte order after `after`: the names of the
    /// rarest word are walked in order and the others checked, at most max_list_scan of them,
    /// so a page may be short, with `next_after` the last name examined.
    page search(const std::vector<std::string>& words, const std::vector<std::string>& narrowing,
                std::string_view after, std::size_t limit, time_point now);

    /// The sources of `name` (empty when no live peer shares it): all of them, or a random
    /// sample of max_sources_per_name when more peers share it. Valid until the next call.
    std::span<const source> lookup(std::string_view name, time_point now);

    /// Drops every peer whose lease ended at or before `now`; returns how many.
    std::size_t expire(time_point now);
    /// Where expire() counts the peers it drops (none: not counted).
    void count_expiries_in(counter* c) noexcept { expiries_counter_ = c; }

    std::size_t peer_count() const noexcept { return peers_.size(); }
    std::size_t name_count() const noexcept { return names_.size(); }
    std::size_t file_count() const noexcept { return file_count_; }
    std::size_t name_bytes() const noexcept { return name_bytes_; }
    /// Live peers registered from `client`.
    std::size_t peers_of(std::string_view client) const;

private:
    /// A file as the index keeps it: its digests in binary, not in hex (a million files: 72 MB
    /// less).
    struct stored_file {
        std::string name;
        std::uint64_t size = 0;
        digest sha256{};
        digest root{};
        bool has_root = false;
    };

    struct peer {
        std::string token;
        std::string client; ///< the address it registered from
        std::string host;
        std::uint16_t port = 0;
        digest cert{};
        bool has_cert = false;
        std::vector<stored_file> files;
        std::multimap<time_point, std::uint32_t>::iterator expiry;
    };

    api_result<peer*> authorize(std::uint32_t id, std::string_view token, time_point now);
    /// Whether `files` may replace `replaced` (the files the peer has now, if any).
    api_result<void> check_room(const std::vector<file_entry>& files,
                                const std::vector<stored_file>* replaced) const;
    /// The files as kept; bad_field for a digest that is not 64 hex digits.
    static api_result<std::vector<stored_file>> to_stored(std::vector<file_entry> files);
    void count_client(const std::string& client, int delta);
    void add_files(std::uint32_t id, const peer& p);
    void index_words(std::string_view name, bool add);
    void remove_files(std::uint32_t id, const peer& p);
    void remove_peer(std::unordered_map<std::uint32_t, peer>::iterator it);
    void set_expiry(std::uint32_t id, peer& p, time_point now);

    std::chrono::milliseconds ttl_;
    std::function<std::string()> make_token_;
    bounds bounds_;
    std::unordered_map<std::uint32_t, peer> peers_;
    std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> clients_;
    std::unordered_map<std::string, std::vector<source>, string_hash, std::equal_to<>> names_;
    sorted_names sorted_; ///< views of names_'s keys, for ordered listing
    /// word -> the names that have it (views of names_'s keys), for word search
    std::unordered_map<std::string, sorted_names, string_hash, std::equal_to<>> words_;
    std::multimap<time_point, std::uint32_t> expiries_;
    std::size_t file_count_ = 0;
    std::size_t name_bytes_ = 0;
    std::minstd_rand sampler_; ///< picks the sources of a name shared by too many peers
    counter* expiries_counter_ = nullptr;
};

/// 128 random bits from the system's CSPRNG, as 32 lowercase hex digits.
std::string random_token();

} // namespace p2pshare::detail
