#include "index_store.hpp"

#include "pieces.hpp"
#include "words.hpp"

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
    std::string out;
    hex_into(out, bytes);
    return out;
}

index_store::index_store(std::chrono::milliseconds ttl, std::function<std::string()> make_token,
                         bounds b)
    : ttl_(ttl),
      make_token_(make_token ? std::move(make_token) : random_token),
      bounds_(b),
      sampler_(std::random_device{}()) {
    bounds_.max_list_scan = std::max<std::size_t>(bounds_.max_list_scan, 1);
    bounds_.max_sources_per_name = std::max<std::size_t>(bounds_.max_sources_per_name, 1);
}

std::size_t index_store::peers_of(std::string_view client) const {
    const auto it = clients_.find(client);
    return it == clients_.end() ? 0 : it->second;
}

void index_store::count_client(const std::string& client, int delta) {
    if (delta > 0) {
        ++clients_[client];
        return;
    }
    const auto it = clients_.find(client);
    if (it != clients_.end() && --it->second == 0) clients_.erase(it);
}

api_result<std::vector<index_store::stored_file>> index_store::to_stored(
    std::vector<file_entry> files) {
    std::vector<stored_file> out;
    out.reserve(files.size());
    for (auto& f : files) {
        stored_file s;
        const auto sha = digest_from_hex(f.sha256);
        if (!sha) return fail(errc::bad_field, "'sha256' of " + f.name + " is not 64 hex digits");
        s.sha256 = *sha;
        if (!f.root.empty()) {
            const auto root = digest_from_hex(f.root);
            if (!root)
                return fail(errc::bad_field, "'root' of " + f.name + " is not 64 hex digits");
            s.root = *root;
            s.has_root = true;
        }
        s.name = std::move(f.name);
        s.size = f.size;
        out.push_back(std::move(s));
    }
    return out;
}

api_result<void> index_store::check_room(const std::vector<file_entry>& files,
                                         const std::vector<stored_file>* replaced) const {
    std::size_t files_after = file_count_;
    std::size_t bytes_after = name_bytes_;
    if (replaced != nullptr) {
        files_after -= replaced->size();
        for (const auto& f : *replaced)
            bytes_after -= f.name.size();
    }
    if (files.size() > bounds_.max_files - std::min(files_after, bounds_.max_files)) {
        return fail(errc::full, "the index holds its limit of " +
                                    std::to_string(bounds_.max_files) +
                                    " (peer, file) entries; try again later");
    }
    std::size_t bytes = 0;
    for (const auto& f : files)
        bytes += f.name.size();
    if (bytes > bounds_.max_name_bytes - std::min(bytes_after, bounds_.max_name_bytes)) {
        return fail(errc::full, "the index holds its limit of " +
                                    std::to_string(bounds_.max_name_bytes) +
                                    " bytes of file names; try again later");
    }
    return {};
}

void index_store::set_expiry(std::uint32_t id, peer& p, time_point now) {
    if (p.expiry != expiries_.end()) expiries_.erase(p.expiry);
    p.expiry = expiries_.emplace(now + ttl_, id);
}

void index_store::add_files(std::uint32_t id, const peer& p) {
    for (const auto& f : p.files) {
        auto [it, inserted] = names_.try_emplace(f.name);
        if (inserted) {
            sorted_.insert(it->first);
            index_words(it->first, true);
        }
        it->second.push_back({id, p.host, p.port, f.size, &f.sha256, f.has_root ? &f.root : nullptr,
                              p.has_cert ? &p.cert : nullptr});
        ++file_count_;
        name_bytes_ += f.name.size();
    }
}

void index_store::index_words(std::string_view name, bool add) {
    for (auto& w : name_words(name)) {
        if (add) {
            words_[std::move(w)].insert(name);
            continue;
        }
        const auto it = words_.find(w);
        if (it == words_.end()) continue;
        it->second.erase(name);
        if (it->second.empty()) words_.erase(it);
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
            name_bytes_ -= f.name.size();
        }
        if (sources.empty()) {
            index_words(it->first, false);
            sorted_.erase(it->first);
            names_.erase(it);
        }
    }
}

void index_store::remove_peer(std::unordered_map<std::uint32_t, peer>::iterator it) {
    remove_files(it->first, it->second);
    count_client(it->second.client, -1);
    expiries_.erase(it->second.expiry);
    peers_.erase(it);
}

std::size_t index_store::expire(time_point now) {
    std::size_t n = 0;
    while (!expiries_.empty() && expiries_.begin()->first <= now) {
        remove_peer(peers_.find(expiries_.begin()->second));
        ++n;
    }
    if (n > 0 && expiries_counter_ != nullptr) expiries_counter_->add(n);
    return n;
}

api_result<index_store::lease> index_store::register_peer(register_request r, time_point now,
                                                          std::string_view client) {
    expire(now);
    auto it = peers_.find(r.id);
    const bool taken_back = it != peers_.end();
    // Every check comes before the first change: a refusal leaves the store as it was.
    if (taken_back && (r.token.empty() || r.token != it->second.token)) {
        return fail(errc::conflict, "peer " + std::to_string(r.id) +
                                        " is registered under another lease; pick another "
                                        "id or wait for that lease to end");
    }
    if (!taken_back && peers_.size() >= bounds_.max_peers) {
        return fail(errc::full, "the index holds its limit of " +
                                    std::to_string(bounds_.max_peers) + " peers; try again later");
    }
    if ((!taken_back || it->second.client != client) &&
        peers_of(client) >= bounds_.max_peers_per_address) {
        return fail(errc::full, "the address " + std::string(client) + " holds its limit of " +
                                    std::to_string(bounds_.max_peers_per_address) +
                                    " live peers (a per-address limit); unregister one first");
    }
    if (auto room = check_room(r.files, taken_back ? &it->second.files : nullptr); !room) {
        return room.error();
    }
    auto stored = to_stored(std::move(r.files));
    if (!stored) return stored.error();
    if (taken_back) {
        remove_files(r.id, it->second);
        count_client(it->second.client, -1);
    } else {
        peer fresh;
        fresh.token = make_token_();
        fresh.expiry = expiries_.end();
        it = peers_.emplace(r.id, std::move(fresh)).first;
    }
    peer& p = it->second;
    p.client = client;
    count_client(p.client, +1);
    p.host = std::move(r.host);
    p.port = r.port;
    const auto cert = digest_from_hex(r.cert_sha256);
    p.has_cert = cert.has_value();
    if (cert) p.cert = *cert;
    p.files = std::move(*stored);
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
    if (auto room = check_room(files, &(*p)->files); !room) return room.error();
    auto stored = to_stored(std::move(files));
    if (!stored) return stored.error();
    remove_files(id, **p);
    (*p)->files = std::move(*stored);
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

namespace {

/// A page of the names of `names` after `after` that `keep` accepts. Every name examined costs
/// one of `budget`: once it is spent, the page ends with the cursor at the last name examined
/// (possibly short or empty). A full page ends at the next match, so that the last page says it
/// is the last; names examined in vain move the cursor too.
template <class Keep>
index_store::page walk_page(const sorted_names& names, std::string_view after, std::size_t limit,
                            std::size_t budget, Keep keep) {
    limit = std::max<std::size_t>(limit, 1);
    index_store::page out;
    std::string_view cursor; // the last name examined
    for (auto it = after.empty() ? names.begin() : names.upper_bound(after); it != names.end();
         ++it) {
        if (budget-- == 0) {
            out.next_after = std::string(cursor);
            break;
        }
        if (!keep(*it)) {
            cursor = *it;
            continue;
        }
        if (out.names.size() == limit) {
            out.next_after = std::string(cursor);
            break;
        }
        out.names.push_back(*it);
        cursor = *it;
    }
    return out;
}

} // namespace

index_store::page index_store::list(std::string_view contains, std::string_view after,
                                    std::size_t limit, time_point now) {
    expire(now);
    // Without a filter every name examined is listed, so the page bounds the work; with one,
    // max_list_scan does.
    if (contains.empty()) {
        return walk_page(sorted_, after, limit, SIZE_MAX, [](std::string_view) { return true; });
    }
    return walk_page(sorted_, after, limit, bounds_.max_list_scan, [&](std::string_view name) {
        return name.find(contains) != std::string_view::npos;
    });
}

index_store::page index_store::search(const std::vector<std::string>& words,
                                      const std::vector<std::string>& narrowing,
                                      std::string_view after, std::size_t limit, time_point now) {
    expire(now);
    std::vector<const sorted_names*> sets;
    for (const auto& w : words) {
        const auto it = words_.find(w);
        if (it == words_.end()) return {}; // a word no name has: nothing matches
        sets.push_back(&it->second);
    }
    if (sets.empty()) return {};
    // The rarest word's names are walked; each is checked against the others.
    std::sort(sets.begin(), sets.end(), [](auto* a, auto* b) { return a->size() < b->size(); });
    return walk_page(
        *sets.front(), after, limit, bounds_.max_list_scan, [&](std::string_view name) {
            return std::all_of(sets.begin() + 1, sets.end(),
                               [&](const sorted_names* s) { return s->contains(name); }) &&
                   std::all_of(narrowing.begin(), narrowing.end(),
                               [&](const std::string& w) { return has_word(name, w); });
        });
}

std::span<const index_store::source> index_store::lookup(std::string_view name, time_point now) {
    expire(now);
    const auto it = names_.find(name);
    if (it == names_.end()) return {};
    auto& sources = it->second;
    const auto n = sources.size();
    const auto k = bounds_.max_sources_per_name;
    if (n <= k) return sources;
    // A uniform sample of k: the first k steps of a Fisher-Yates shuffle. The order of a name's
    // sources means nothing, so the shuffle is done in place.
    for (std::size_t i = 0; i < k; ++i) {
        const auto j = i + static_cast<std::size_t>(sampler_()) % (n - i);
        std::swap(sources[i], sources[j]);
    }
    return {sources.data(), k};
}

} // namespace p2pshare::detail
