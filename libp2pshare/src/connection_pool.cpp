#include "connection_pool.hpp"

#include <algorithm>

namespace p2pshare::detail {

connection_pool::connection_pool(boost::asio::any_io_executor executor,
                                 std::chrono::milliseconds idle, std::size_t per_source)
    : idle_(idle), per_source_(per_source), timer_(std::move(executor)) {}

void connection_pool::arm() {
    if (armed_ || idle_streams_.empty()) return;
    auto oldest = std::chrono::steady_clock::time_point::max();
    for (const auto& [key, q] : idle_streams_)
        oldest = std::min(oldest, q.front().since);
    armed_ = true;
    timer_.expires_at(oldest + idle_);
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code&) {
        const auto self = weak.lock();
        if (!self) return; // the pool is gone, and its connections with it
        self->armed_ = false;
        self->sweep(std::chrono::steady_clock::now());
        self->arm();
    });
}

void connection_pool::sweep(std::chrono::steady_clock::time_point now) {
    for (auto it = idle_streams_.begin(); it != idle_streams_.end();) {
        auto& q = it->second;
        while (!q.empty() && now - q.front().since >= idle_)
            q.pop_front(); // the oldest first
        it = q.empty() ? idle_streams_.erase(it) : std::next(it);
    }
}

std::optional<client_stream> connection_pool::take(const std::string& key) {
    sweep(std::chrono::steady_clock::now());
    const auto it = idle_streams_.find(key);
    if (it == idle_streams_.end()) return std::nullopt;
    auto stream = std::move(it->second.back().stream);
    it->second.pop_back();
    if (it->second.empty()) idle_streams_.erase(it);
    return stream;
}

void connection_pool::put(const std::string& key, client_stream stream) {
    const auto now = std::chrono::steady_clock::now();
    sweep(now);
    // (A cancelled stream, one whose request was cut short by its download, is dropped.)
    if (per_source_ == 0 || stream.cancelled() || !stream.socket().is_open()) return;
    auto& q = idle_streams_[key];
    if (q.size() >= per_source_) q.pop_front();
    stream.expires_never();
    q.push_back({std::move(stream), now});
    arm();
}

void connection_pool::clear() {
    idle_streams_.clear();
    timer_.cancel();
}

std::size_t connection_pool::idle() const noexcept {
    std::size_t n = 0;
    for (const auto& [key, q] : idle_streams_)
        n += q.size();
    return n;
}

} // namespace p2pshare::detail
