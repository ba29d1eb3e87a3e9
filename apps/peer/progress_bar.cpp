#include "progress_bar.hpp"

#include "output.hpp"

#include <cstdio>

namespace peer {

using namespace std::chrono_literals;

void ProgressBar::update(const p2pshare::TransferProgress& p) {
    std::lock_guard lock(mutex_);
    if (!started_) {
        started_ = true;
        start_ = std::chrono::steady_clock::now();
    }
    auto& f = files_[p.name];
    f = {p.done, p.total, p.done == p.total ? 0 : p.sources};
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < 100ms && p.done != p.total) return;
    last_draw_ = now;
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    std::size_t sources = 0;
    for (const auto& [name, v] : files_) {
        done += v.done;
        total += v.total;
        sources += v.sources;
    }
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    constexpr int width = 30;
    const int filled =
        total ? static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total))
              : width;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    char eta[32] = "-";
    if (rate > 0 && total >= done) {
        std::snprintf(eta, sizeof eta, "%.1fs", static_cast<double>(total - done) / rate);
    }
    std::printf("\r\033[K  [%s] %s / %s  %s  left %s  (%zu files, %zu sources)", bar.c_str(),
                human_size(static_cast<double>(done)).c_str(),
                human_size(static_cast<double>(total)).c_str(),
                rate > 0 ? (human_size(rate) + "/s").c_str() : "-", eta, files_.size(), sources);
    std::fflush(stdout);
    drawn_ = true;
}

void ProgressBar::finish() {
    std::lock_guard lock(mutex_);
    if (drawn_) std::printf("\r\033[K");
    std::fflush(stdout);
    files_.clear();
    started_ = drawn_ = false;
}

} // namespace peer
