// Small pieces shared by the library's sources.
#pragma once

#include <unistd.h>

#include <exception>
#include <functional>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace p2pshare::detail {

/// The library's logger, named "p2pshare" (include <spdlog/spdlog.h> to use it). The library
/// never touches spdlog's default logger nor its global level.
spdlog::logger& log();

/// Owns a file descriptor.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    ~unique_fd() { reset(); }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_;
};

/// A hash of strings that also takes string_views: an unordered map keyed by std::string with
/// it and std::equal_to<> is searched without making a string.
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

/// Sets OpenSSL up (its configuration loaded) on the calling thread, once per process.
void prepare_openssl();

/// Whether the file of `fd` is on a file system held in memory (tmpfs, ramfs): reading or
/// writing it never waits for a disk, so it may be done on the network's thread.
bool on_memory_fs(int fd) noexcept;

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
