#include "transfer_body.hpp"

#include "blocking.hpp"
#include "support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace p2pshare::detail {

using namespace boost::asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
} // namespace

attempt failed(errc code, std::string message) {
    return {make_error_code(code), std::move(message), {}, 0};
}

/// Parses "bytes FIRST-LAST/TOTAL".
bool parse_content_range(std::string_view v, std::uint64_t& first, std::uint64_t& last,
                         std::uint64_t& total) {
    constexpr std::string_view unit = "bytes ";
    if (v.substr(0, unit.size()) != unit) return false;
    v.remove_prefix(unit.size());
    const auto dash = v.find('-');
    const auto slash = v.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
        return false;
    }
    const auto num = [](std::string_view t, std::uint64_t& out) {
        const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        return !t.empty() && ec == std::errc{} && p == t.data() + t.size();
    };
    return num(v.substr(0, dash), first) && num(v.substr(dash + 1, slash - dash - 1), last) &&
           num(v.substr(slash + 1), total);
}

/// Hashes bytes [offset, end) of `fd` into `h`.
bool hash_range(int fd, std::uint64_t offset, std::uint64_t end, sha256& h,
                std::vector<char>& buffer) {
    while (offset < end) {
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), end - offset));
        const auto n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        h.update(buffer.data(), static_cast<std::size_t>(n));
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

/// hash_range on the disk thread: a large stretch must not hold up the caller's strand.
/// (A plain function: its lambda captures only trivially destructible values.)
asio::awaitable<bool> nothing_to_read_back() { co_return true; }

asio::awaitable<bool> read_back(asio::any_io_executor blocking, int fd, std::uint64_t offset,
                                std::uint64_t end, sha256& h, std::vector<char>& buffer) {
    // Nothing kept (a download from the start): no trip to the disk thread and back.
    if (offset >= end) return nothing_to_read_back();
    return asio::co_spawn(
        std::move(blocking),
        [fd, offset, end, &h, &buffer]() -> asio::awaitable<bool> {
            co_return hash_range(fd, offset, end, h, buffer);
        },
        blocking_token());
}

bool write_all(int fd, const char* data, std::size_t size, std::uint64_t offset, int& error) {
    while (size > 0) {
        const auto n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            error = errno;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

/// Reads into `data` until `size` bytes, or at least a quarter MiB, arrived: few large chunks
/// for the disk thread. Each read has the stall deadline, so "no byte for this long" still holds.
asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> fill(
    beast::tcp_stream& stream, char* data, std::size_t size, std::chrono::milliseconds stall) {
    const std::size_t enough = std::min<std::size_t>(size, 256 * 1024);
    std::size_t got = 0;
    while (got < enough) {
        stream.expires_after(stall);
        auto [ec, n] =
            co_await stream.async_read_some(asio::buffer(data + got, size - got), use_tuple);
        got += n;
        if (ec) co_return std::tuple{ec, got};
    }
    co_return std::tuple{boost::system::error_code{}, got};
}

/// A pipe for splice(2) of at least `capacity` bytes where the system allows; returns its
/// capacity, or 0 when there is no pipe.
std::size_t open_pipe(unique_fd& read_end, unique_fd& write_end, std::size_t capacity) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return 0;
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
    const auto wanted = static_cast<int>(std::min<std::size_t>(capacity, 1024 * 1024));
    ::fcntl(fds[1], F_SETPIPE_SZ, wanted); // a failure keeps the default size
    const int size = ::fcntl(fds[1], F_GETPIPE_SZ);
    return size > 0 ? static_cast<std::size_t>(size) : 0;
}

/// Copies the `size` bytes waiting in a pipe into `fd` at `offset` with read and pwrite.
bool copy_out_of_pipe(int pipe, int fd, std::uint64_t offset, std::size_t size, int& error) {
    std::vector<char> bytes(64 * 1024);
    while (size > 0) {
        const auto n = ::read(pipe, bytes.data(), std::min(bytes.size(), size));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = n < 0 ? errno : EIO;
            return false;
        }
        if (!write_all(fd, bytes.data(), static_cast<std::size_t>(n), offset, error)) return false;
        offset += static_cast<std::uint64_t>(n);
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

/// What splice_some did.
struct spliced {
    boost::system::error_code error; ///< of the socket: end of file, timeout, reset...
    int file_error = 0;              ///< errno of a failed write into the file
    bool unsupported = false;        ///< splice(2) does not work with this socket or file: use recv
    std::size_t size = 0;            ///< bytes moved into the file
};

/// What drain_pipe did.
struct drained {
    std::size_t size = 0;     ///< bytes moved into the file
    int file_error = 0;       ///< errno of a failed write
    bool unsupported = false; ///< the file system takes no splice (the bytes were copied)
};

/// Moves the `size` bytes waiting in a pipe into `fd` at `offset`: splice(2), or read and pwrite
/// where the file system takes no splice. May wait for the disk.
drained drain_pipe(int pipe_in, int fd, std::uint64_t offset, std::size_t size) {
    drained out;
    while (out.size < size) {
        auto at = static_cast<loff_t>(offset + out.size);
        const auto n = ::splice(pipe_in, nullptr, fd, &at, size - out.size, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL) {
            const auto left = size - out.size;
            if (copy_out_of_pipe(pipe_in, fd, offset + out.size, left, out.file_error)) {
                out.size += left;
            }
            out.unsupported = true;
            return out;
        }
        if (n <= 0) {
            out.file_error = n < 0 ? errno : EIO;
            return out;
        }
        out.size += static_cast<std::size_t>(n);
    }
    return out;
}

/// Moves body bytes from the socket into `fd` at `offset` through a pipe, without copying them
/// through user space: until `size` bytes, or at least a quarter MiB, are in the file. Each wait
/// for the socket has the stall deadline, so "no byte for this long" still holds.
asio::awaitable<spliced> splice_some(asio::any_io_executor blocking, bool in_memory,
                                     tcp::socket& socket, asio::steady_timer& timer, int pipe_in,
                                     int pipe_out, std::size_t pipe_size, int fd,
                                     std::uint64_t offset, std::size_t size,
                                     std::chrono::milliseconds stall) {
    spliced out;
    const int sock = socket.native_handle();
    const std::size_t enough = std::min<std::size_t>(size, 256 * 1024);
    while (out.size < enough) {
        const auto want = std::min(size - out.size, pipe_size);
        const auto got = ::splice(sock, nullptr, pipe_out, nullptr, want, SPLICE_F_NONBLOCK);
        if (got < 0) {
            const int e = errno;
            if (e == EINTR) continue;
            if (e == EAGAIN) {
                timer.expires_after(stall);
                auto ready = co_await (socket.async_wait(tcp::socket::wait_read, use_tuple) ||
                                       timer.async_wait(use_tuple));
                if (ready.index() == 1) {
                    out.error = beast::error::timeout;
                    co_return out;
                }
                if (const auto [ec] = std::get<0>(ready); ec) {
                    out.error = ec;
                    co_return out;
                }
                continue;
            }
            if (e == EINVAL) { // nothing was taken from the socket
                out.unsupported = true;
            } else {
                out.error = boost::system::error_code(e, boost::system::system_category());
            }
            co_return out;
        }
        if (got == 0) {
            out.error = asio::error::eof;
            co_return out;
        }
        // Empty the pipe into the file before anything else, so that no byte stays behind. The
        // write can wait for the disk: it runs on the blocking executor (unless the file is in
        // memory, where it cannot).
        const auto at = offset + out.size;
        const auto moved = in_memory ? drain_pipe(pipe_in, fd, at, static_cast<std::size_t>(got))
                                     : co_await run_blocking(blocking, &drain_pipe, pipe_in, fd, at,
                                                             static_cast<std::size_t>(got));
        out.size += moved.size;
        if (moved.file_error != 0) {
            out.file_error = moved.file_error;
            co_return out;
        }
        if (moved.unsupported) {
            out.unsupported = true;
            co_return out;
        }
    }
    co_return out;
}

/// What a file_hasher shares with the disk thread. Held by a shared_ptr, so that it outlives
/// a download that ends (or is cancelled, or throws) while a stretch is being hashed.
struct hasher_state {
    hasher_state(asio::any_io_executor executor, asio::any_io_executor disk, unique_fd file,
                 std::uint64_t from, sha256 started)
        : blocking(std::move(disk)),
          fd(std::move(file)),
          hashed(from),
          hash(std::move(started)),
          done(std::move(executor), asio::steady_timer::time_point::max()) {}

    asio::any_io_executor blocking;
    unique_fd fd; ///< its own descriptor: the download may close its own first
    std::uint64_t hashed;
    sha256 hash;
    std::vector<char> buffer = std::vector<char>(256 * 1024);
    asio::steady_timer done; ///< never expires; cancelled when a stretch is done
    bool running = false;
    bool ok = true;
};

/// Hashes [from, end) of the state's file on the disk thread. (A plain function: the lambda
/// holding the state is made outside any coroutine.)
asio::awaitable<bool> hash_on_disk_thread(std::shared_ptr<hasher_state> state, std::uint64_t from,
                                          std::uint64_t end) {
    auto blocking = state->blocking;
    return asio::co_spawn(
        std::move(blocking),
        [state = std::move(state), from, end]() -> asio::awaitable<bool> {
            co_return hash_range(state->fd.get(), from, end, state->hash, state->buffer);
        },
        blocking_token());
}

/// Hashes a file's bytes on the disk thread as they land in the file, one stretch at a time,
/// without the receiving side ever waiting for it (only at the end). Its executor must be the
/// receiving coroutine's and run one handler at a time (the download's strand): both touch the
/// state.
class file_hasher {
public:
    file_hasher(asio::any_io_executor executor, asio::any_io_executor blocking, unique_fd fd,
                std::uint64_t from, sha256 hash)
        : executor_(executor),
          state_(std::make_shared<hasher_state>(executor, std::move(blocking), std::move(fd), from,
                                                std::move(hash))) {}

    /// Closes the hasher's descriptor of the file unless a stretch is still being hashed: the
    /// state itself may be released later, on the disk thread, and the descriptor shares the
    /// download's lock on the .part, which must end with the download.
    ~file_hasher() {
        if (!state_->running) state_->fd.reset();
    }
    file_hasher(const file_hasher&) = delete;
    file_hasher& operator=(const file_hasher&) = delete;

    /// Hashes up to `end` unless a stretch is being hashed (the next call continues from it).
    void advance(std::uint64_t end) {
        if (!state_->running && state_->ok && state_->hashed < end) start(end);
    }

    /// Waits until no stretch is being hashed.
    asio::awaitable<void> async_idle() {
        const auto state = state_;
        while (state->running)
            co_await state->done.async_wait(use_tuple);
    }

    /// Waits until [from, end) is hashed, then hands the hash back in `out`. False if the file
    /// could not be read back.
    asio::awaitable<bool> async_finish(std::uint64_t end, sha256& out) {
        const auto state = state_;
        for (;;) {
            while (state->running) {
                co_await state->done.async_wait(use_tuple);
            }
            if (!state->ok) co_return false;
            if (state->hashed >= end) break;
            start(end);
        }
        out = std::move(state->hash);
        co_return true;
    }

private:
    void start(std::uint64_t end) {
        state_->running = true;
        asio::co_spawn(executor_, hash_stretch(state_, end), asio::detached);
    }

    static asio::awaitable<void> hash_stretch(std::shared_ptr<hasher_state> state,
                                              std::uint64_t end) {
        bool ok = false;
        try {
            ok = co_await hash_on_disk_thread(state, state->hashed, end);
        } catch (const std::exception& e) {
            log().warn("download: hashing failed: {}", e.what());
        }
        state->running = false;
        state->ok = state->ok && ok;
        state->hashed = end;
        state->done.cancel();
    }

    asio::any_io_executor executor_;
    std::shared_ptr<hasher_state> state_;
};

/// Moves the body [position, size) from the socket into `fd` through a pipe: splice(2) copies
/// each byte once, from the socket's buffers into the file's pages, while the disk thread
/// hashes what is in the file from the page cache. Stops early, without an error, where
/// splice(2) does not work with this socket or file; `position` tells how far it got, and `hash`
/// then covers [0, position).
asio::awaitable<attempt> splice_body(tcp::socket& socket, const TransferOptions& options,
                                     const asio::cancellation_state& cancel, int fd,
                                     std::uint64_t size, std::uint64_t& position, sha256& hash,
                                     std::vector<char>& buffer, TransferProgress& progress,
                                     std::uint64_t& reported) {
    attempt out;
    unique_fd pipe_in;
    unique_fd pipe_out;
    const auto pipe_size = open_pipe(pipe_in, pipe_out, buffer.size());
    if (pipe_size == 0) co_return out;
    boost::system::error_code not_set;
    socket.native_non_blocking(true, not_set);
    if (not_set) co_return out;
    asio::steady_timer timer(socket.get_executor());
    unique_fd own(::dup(fd));
    if (!own) co_return out; // no descriptor to spare: receive into buffers instead
    // The hash so far moves into the hasher and comes back when it is done.
    const auto strand = co_await asio::this_coro::executor; // the download's (async_download)
    const auto blocking = *options.blocking_executor;
    const bool in_memory = on_memory_fs(fd);
    file_hasher hasher(strand, blocking, std::move(own), position, std::move(hash));
    // splice_some waits only when the socket is empty: from a fast sender, every 256 KiB lets the
    // other work of the executor run (other downloads, the peer's file server and lease).
    std::uint64_t since_yield = 0;
    while (position < size) {
        if (cancelled(cancel)) {
            out = failed(errc::timeout, "cancelled");
            break;
        }
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - position));
        const auto s =
            co_await splice_some(blocking, in_memory, socket, timer, pipe_in.get(), pipe_out.get(),
                                 pipe_size, fd, position, want, options.stall_timeout);
        position += s.size;
        hasher.advance(position);
        if (options.on_progress && (position - reported >= 64 * 1024 || position == size)) {
            reported = position;
            progress.done = position;
            options.on_progress(progress);
        }
        if (s.file_error != 0) {
            out = failed(errc::io_error, "cannot write the file: " + errno_text(s.file_error));
            break;
        }
        if (s.error) {
            out = failed(s.error == beast::error::timeout ? errc::timeout : errc::size_mismatch,
                         "the transfer stopped after " + std::to_string(position) + " of " +
                             std::to_string(size) + " bytes: " + s.error.message());
            break;
        }
        if (s.unsupported) break;
        since_yield += s.size;
        if (since_yield >= 256 * 1024 && position < size) {
            since_yield = 0;
            co_await asio::post(asio::use_awaitable);
        }
    }
    if (out.error) {
        // The hash is of no use now, but a stretch being hashed must end before the download
        // does: work left on the disk thread would finish into an executor that the program
        // may have destroyed by then (seen under TSan when a program exited after a failure).
        co_await hasher.async_idle();
        co_return out;
    }
    if (!co_await hasher.async_finish(position, hash)) {
        out = failed(errc::io_error, "cannot read the partial file back");
    }
    co_return out;
}

} // namespace p2pshare::detail
