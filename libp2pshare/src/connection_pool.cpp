#include "connection_pool.hpp"

namespace p2pshare::detail {

connection_pool::connection_pool(std::chrono::milliseconds idle, std::size_t per_source)
    : idle_(idle), per_source_(per_source) {}

void connection_pool::sweep(std::chrono::steady_clock::time_point now) {
    for (auto it = idle_streams_.begin(); it != idle_streams_.end();) {
        auto& q = it->second;
        while (!q.empty() && now - q.front().since >= idle_)
            q.pop_front(); // the oldest first
        it = q.empty() ? idle_streams_.erase(it) : std::next(it);
    }
}

std::optional<boost::beast::tcp_stream> connection_pool::take(const std::string& key) {
    sweep(std::chrono::steady_clock::now());
    const auto it = idle_streams_.find(key);
    if (it == idle_streams_.end()) return std::nullopt;
    auto stream = std::move(it->second.back().stream);
    it->second.pop_back();
    if (it->second.empty()) idle_streams_.erase(it);
    return stream;
}

void connection_pool::put(const std::string& key, boost::beast::tcp_stream stream) {
    const auto now = std::chrono::steady_clock::now();
    sweep(now);
    if (per_source_ == 0 || !stream.socket().is_open()) return;
    auto& q = idle_streams_[key];
    if (q.size() >= per_source_) q.pop_front();
    stream.expires_never();
    q.push_back({std::move(stream), now});
}

void connection_pool::clear() { idle_streams_.clear(); }

std::size_t connection_pool::idle() const noexcept {
    std::size_t n = 0;
    for (const auto& [key, q] : idle_streams_)
        n += q.size();
    return n;
}

} // namespace p2pshare::detail
