#include "index_store.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace p2pshare::detail {

std::string random_token() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error("the system random generator failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(32);
    for (const auto b : bytes) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 15]);
    }
    return out;
}

index_store::index_store(std::chrono::milliseconds ttl, std::function<std::string()> make_token,
                         std::size_t max_peers)
    : ttl_(ttl),
      make_token_(make_token ? std::move(make_token) : random_token),
      max_peers_(max_peers) {}

void index_store::set_expiry(std::uint32_t id, peer& p, time_point now) {
    if (p.expiry != expiries_.end()) expiries_.erase(p.expiry);
    p.expiry = expiries_.emplace(now + ttl_, id);
}

void index_store::add_files(std::uint32_t id, const peer& p) {
    for (const auto& f : p.files) {
        auto [it, inserted] = names_.try_emplace(f.name);
        if (inserted) sorted_.insert(it->first);
        it->second.push_back({id, p.host, p.port, f.size, f.sha256});
        ++file_count_;
    }
}

void index_store::remove_files(std::uint32_t id, const peer& p) {
    for (const auto& f : p.files) {
        const auto it = names_.find(f.name);
        if (it == names_.end()) continue;
        auto& sources = it->second;
        const auto s = std::find_if(sources.begin(), sources.end(),
                                    [id](const source& x) { return x.peer == id; });
        if (s != sources.end()) {
            *s = sources.back();
            sources.pop_back();
            --file_count_;
        }
        if (sources.empty()) {
            sorted_.erase(it->first);
            names_.erase(it);
        }
    }
}

void index_store::remove_peer(std::unordered_map<std::uint32_t, peer>::iterator it) {
    remove_files(it->first, it->second);
    expiries_.erase(it->second.expiry);
    peers_.erase(it);
}

std::size_t index_store::expire(time_point now) {
    std::size_t n = 0;
    while (!expiries_.empty() && expiries_.begin()->first <= now) {
        remove_peer(peers_.find(expiries_.begin()->second));
        ++n;
    }
    return n;
}

api_result<index_store::lease> index_store::register_peer(register_request r, time_point now) {
    expire(now);
    auto it = peers_.find(r.id);
    const bool taken_back = it != peers_.end();
    if (it != peers_.end()) {
        if (r.token.empty() || r.token != it->second.token) {
            return fail(errc::conflict, "peer " + std::to_string(r.id) +
                                            " is registered under another lease; pick another "
                                            "id or wait for that lease to end");
        }
        remove_files(r.id, it->second);
    } else {
        if (peers_.size() >= max_peers_) {
            return fail(errc::full, "the index holds its limit of " + std::to_string(max_peers_) +
                                        " peers; try again later");
        }
        peer fresh;
        fresh.token = make_token_();
        fresh.expiry = expiries_.end();
        it = peers_.emplace(r.id, std::move(fresh)).first;
    }
    peer& p = it->second;
    p.host = std::move(r.host);
    p.port = r.port;
    p.files = std::move(r.files);
    add_files(r.id, p);
    set_expiry(r.id, p, now);
    return lease{p.token, ttl_, taken_back};
}

api_result<index_store::peer*> index_store::authorize(std::uint32_t id, std::string_view token,
                                                      time_point now) {
    expire(now);
    const auto it = peers_.find(id);
    if (it == peers_.end()) {
        return fail(errc::not_found, "peer " + std::to_string(id) +
                                         " is not registered (or its lease ended): register again");
    }
    if (it->second.token != token) {
        return fail(errc::forbidden, "the lease token does not match peer " + std::to_string(id));
    }
    return &it->second;
}

api_result<index_store::lease> index_store::renew(std::uint32_t id, std::string_view token,
                                                  time_point now) {
    auto p = authorize(id, token, now);
    if (!p) return p.error();
    set_expiry(id, **p, now);
    return lease{(*p)->token, ttl_};
}

api_result<void> index_store::replace_files(std::uint32_t id, std::string_view token,
                                            std::vector<file_entry> files, time_point now) {
    auto p = authorize(id, token, now);
    if (!p) return p.error();
    remove_files(id, **p);
    (*p)->files = std::move(files);
    add_files(id, **p);
    set_expiry(id, **p, now);
    return {};
}

api_result<void> index_store::unregister(std::uint32_t id, std::string_view token, time_point now) {
    auto p = authorize(id, token, now);
    if (!p) return p.error();
    remove_peer(peers_.find(id));
    return {};
}

index_store::page index_store::list(std::string_view contains, std::string_view after,
                                    std::size_t limit, time_point now) {
    expire(now);
    limit = std::max<std::size_t>(limit, 1);
    page out;
    auto it = after.empty() ? sorted_.begin() : sorted_.upper_bound(after);
    for (; it != sorted_.end(); ++it) {
        if (!contains.empty() && it->find(contains) == std::string_view::npos) continue;
        if (out.names.size() == limit) {
            out.next_after = std::string(out.names.back());
            break;
        }
        out.names.push_back(*it);
    }
    return out;
}

const std::vector<index_store::source>* index_store::lookup(std::string_view name, time_point now) {
    expire(now);
    const auto it = names_.find(name);
    return it == names_.end() ? nullptr : &it->second;
}

} // namespace p2pshare::detail
