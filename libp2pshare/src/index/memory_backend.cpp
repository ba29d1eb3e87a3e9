#include "index/memory_backend.hpp"

#include "pieces.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {

index_store::time_point now() { return index_store::clock::now(); }

store_lease grant(const index_store::lease& l) { return {l.token, l.ttl, l.taken_back}; }

store_page owned(const index_store::page& p) {
    store_page out;
    out.names.reserve(p.names.size());
    for (const auto n : p.names)
        out.names.emplace_back(n);
    out.next_after = p.next_after;
    return out;
}

} // namespace

memory_backend::memory_backend(std::chrono::milliseconds ttl, const IndexLimits& limits)
    : store_(ttl, nullptr, index_store::bounds::of(limits)) {}

// Each operation is done before its first suspension: they need no wait, and a cancellation
// cannot come between the check and the change.

asio::awaitable<api_result<store_lease>> memory_backend::async_register(register_request r,
                                                                        std::string client) {
    auto l = store_.register_peer(std::move(r), now(), client);
    if (!l) co_return l.error();
    co_return grant(*l);
}

asio::awaitable<api_result<store_lease>> memory_backend::async_renew(std::uint32_t id,
                                                                     std::string token) {
    auto l = store_.renew(id, token, now());
    if (!l) co_return l.error();
    co_return grant(*l);
}

asio::awaitable<api_result<void>> memory_backend::async_replace_files(
    std::uint32_t id, std::string token, std::vector<file_entry> files) {
    co_return store_.replace_files(id, token, std::move(files), now());
}

asio::awaitable<api_result<void>> memory_backend::async_unregister(std::uint32_t id,
                                                                   std::string token) {
    co_return store_.unregister(id, token, now());
}

asio::awaitable<api_result<store_page>> memory_backend::async_list(list_query q) {
    if (!q.words.empty())
        co_return owned(store_.search(q.words, q.narrowing, q.after, q.limit, now()));
    co_return owned(store_.list(q.contains, q.after, q.limit, now()));
}

asio::awaitable<api_result<void>> memory_backend::async_lookup(
    std::span<const std::string_view> names, lookup_results& out) {
    const auto t = now();
    out.clear();
    for (const auto name : names) {
        out.next_name();
        for (const auto& s : store_.lookup(name, t)) {
            auto& r = out.add();
            r.peer = s.peer;
            r.host.assign(s.host);
            r.port = s.port;
            r.size = s.size;
            hex_into(r.sha256, *s.sha256);
            if (s.root == nullptr) {
                r.root.clear();
            } else if (*s.root == *s.sha256) {
                r.root = r.sha256; // a file of one piece
            } else {
                hex_into(r.root, *s.root);
            }
            if (s.cert != nullptr) {
                hex_into(r.cert_sha256, *s.cert);
            } else {
                r.cert_sha256.clear();
            }
        }
    }
    out.finish();
    co_return api_result<void>{};
}

asio::awaitable<api_result<store_counts>> memory_backend::async_counts() {
    store_.expire(now());
    co_return store_counts{store_.peer_count(), store_.name_count(), store_.file_count()};
}

asio::awaitable<void> memory_backend::async_stop() { co_return; }

} // namespace p2pshare::detail
