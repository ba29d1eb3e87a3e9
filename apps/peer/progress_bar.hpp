// peer: one progress line on the terminal for all downloads in flight.
#pragma once

#include <p2pshare/file_transfer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace peer {

/// One progress line for all downloads in flight, redrawn at most ten times a second.
/// update() may be called from any thread.
class ProgressBar {
public:
    void update(const p2pshare::TransferProgress& p);
    /// Erases the line (if drawn) and forgets the files.
    void finish();

private:
    std::mutex mutex_;
    struct file {
        std::uint64_t done = 0;
        std::uint64_t total = 0;
        std::size_t sources = 0; ///< sending now
    };
    std::map<std::string, file> files_;
    std::chrono::steady_clock::time_point start_{};
    std::chrono::steady_clock::time_point last_draw_{};
    bool started_ = false;
    bool drawn_ = false;
};

} // namespace peer
