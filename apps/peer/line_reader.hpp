// peer: standard input read line by line, interruptible by a signal.
#pragma once

#include <atomic>
#include <optional>
#include <string>

namespace peer {

/// Reads lines from stdin; a signal handler (through wake()) makes read_line return nullopt.
class LineReader {
public:
    LineReader();
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    /// Makes read_line() and wait() return, now and from then on; safe from another thread.
    void wake();
    bool woken() const { return woken_; }

    /// The next line without its newline; nullopt at end of input or when woken.
    std::optional<std::string> read_line();

    /// Blocks until woken.
    void wait();

private:
    int wake_[2]{-1, -1}; ///< a pipe: wake() writes to it, the poll() of read_line and wait reads
    std::atomic<bool> woken_{false};
    std::string buffer_;
    bool eof_ = false;
};

} // namespace peer
