// The index's state with no I/O: live peers, their leases and an inverted index from file name to
// the peers that share it. Time is passed in, so expiry is tested without waiting.
#pragma once

#include "protocol.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace p2pshare::detail {

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
        std::string_view sha256;
    };

    struct page {
        std::vector<std::string_view> names;
        std::optional<std::string> next_after; ///< cursor of the next page, if there is one
    };

    explicit index_store(std::chrono::milliseconds ttl,
                         std::function<std::string()> make_token = nullptr,
                         std::size_t max_peers = SIZE_MAX);

    std::chrono::milliseconds ttl() const noexcept { return ttl_; }

    /// Registers a peer, or takes back its own live registration when `r.token` is its token.
    api_result<lease> register_peer(register_request r, time_point now);
    api_result<lease> renew(std::uint32_t id, std::string_view token, time_point now);
    api_result<void> replace_files(std::uint32_t id, std::string_view token,
                                   std::vector<file_entry> files, time_point now);
    api_result<void> unregister(std::uint32_t id, std::string_view token, time_point now);

    /// Distinct names in byte order, after the cursor `after`, containing `contains`.
    page list(std::string_view contains, std::string_view after, std::size_t limit, time_point now);

    /// The sources of `name`, empty when no live peer shares it.
    const std::vector<source>* lookup(std::string_view name, time_point now);

    /// Drops every peer whose lease ended at or before `now`; returns how many.
    std::size_t expire(time_point now);

    std::size_t peer_count() const noexcept { return peers_.size(); }
    std::size_t name_count() const noexcept { return names_.size(); }
    std::size_t file_count() const noexcept { return file_count_; }

private:
    struct peer {
        std::string token;
        std::string host;
        std::uint16_t port = 0;
        std::vector<file_entry> files;
        std::multimap<time_point, std::uint32_t>::iterator expiry;
    };

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    api_result<peer*> authorize(std::uint32_t id, std::string_view token, time_point now);
    void add_files(std::uint32_t id, const peer& p);
    void remove_files(std::uint32_t id, const peer& p);
    void remove_peer(std::unordered_map<std::uint32_t, peer>::iterator it);
    void set_expiry(std::uint32_t id, peer& p, time_point now);

    std::chrono::milliseconds ttl_;
    std::function<std::string()> make_token_;
    std::size_t max_peers_;
    std::unordered_map<std::uint32_t, peer> peers_;
    std::unordered_map<std::string, std::vector<source>, string_hash, std::equal_to<>> names_;
    std::set<std::string_view> sorted_; ///< views of names_'s keys, for ordered listing
    std::multimap<time_point, std::uint32_t> expiries_;
    std::size_t file_count_ = 0;
};

/// 128 random bits from the system's CSPRNG, as 32 lowercase hex digits.
std::string random_token();

} // namespace p2pshare::detail
