// Small pieces shared by the library's sources.
#pragma once

#include <unistd.h>

#include <exception>
#include <string>

namespace p2pshare::detail {

/// Owns a file descriptor.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    ~unique_fd() { reset(); }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_;
};

/// strerror(e) as a string.
std::string errno_text(int e);

/// Logs what `e` holds (if anything) as "WHAT failed: REASON". For co_spawn completions, so that
/// an exception never escapes a detached coroutine unseen.
void log_exception(const std::string& what, std::exception_ptr e) noexcept;

/// A co_spawn completion handler that logs an exception with log_exception.
struct log_failure {
    std::string what;
    void operator()(std::exception_ptr e) const noexcept { log_exception(what, e); }
};

} // namespace p2pshare::detail
