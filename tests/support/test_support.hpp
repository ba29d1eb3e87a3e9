// Helpers shared by the p2pshare tests: temporary folders, running coroutines under a deadline,
// a small synchronous HTTP client and child processes with pipes. No mocks: real sockets, real
// files, real executables.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace p2pshare::test {

/// Milliseconds from `t0` to now, on the steady clock.
inline std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
}

using namespace std::chrono_literals;

/// A fresh folder under the system's temporary folder, removed with everything in it. Its name is
/// `prefix` and a random number, so that a kind of folder can be told apart (and swept up when a
/// killed test process left it behind).
class temp_dir {
public:
    temp_dir() : temp_dir("p2pshare-test-") {}
    explicit temp_dir(std::string_view prefix);
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }

private:
    std::filesystem::path path_;
};

void write_file(const std::filesystem::path& file, std::string_view content);
std::string read_file(const std::filesystem::path& file);
/// `n` bytes of printable ASCII from a fixed seed.
std::string random_text(std::size_t n, std::uint32_t seed = 1);
std::string sha256_hex(std::string_view data);
/// The SHA-256 of each piece of `data`, one after another (docs/protocol.md, "Pieces").
std::string piece_hashes(std::string_view data);
/// The Merkle root of the piece hashes of `data` (docs/protocol.md, "Pieces"), as hex.
std::string piece_root_hex(std::string_view data);

/// An io_context run by a background thread, so that test code can block on futures.
class io_thread {
public:
    io_thread();
    ~io_thread();
    boost::asio::io_context& context() noexcept { return io_; }
    boost::asio::any_io_executor executor() { return io_.get_executor(); }

    /// Runs a coroutine on the context and waits for its result; fails the test after `timeout`
    /// (which only a hung test reaches).
    template <class T>
    T run(boost::asio::awaitable<T> op, std::chrono::milliseconds timeout = 30s) {
        auto future = boost::asio::co_spawn(io_, std::move(op), boost::asio::use_future);
        if (future.wait_for(timeout) != std::future_status::ready) {
            throw std::runtime_error("the operation did not finish within its deadline");
        }
        return future.get();
    }

private:
    boost::asio::io_context io_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::thread thread_;
};

struct http_reply {
    unsigned status = 0;
    std::map<std::string, std::string> headers; ///< lower-case names
    std::string body;
    std::string header(const std::string& name) const;
};

/// A JSON string literal for `s`, escaping what JSON requires (independent of the library's).
std::string json_quote(std::string_view s);

/// One blocking HTTP/1.1 request on a fresh connection (2 s connect/IO deadline).
http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {});

/// Sends raw bytes and returns everything the server answers until it closes (or 5 s pass).
std::string raw_call(std::uint16_t port, std::string_view bytes);

/// A child process with its standard streams on pipes, or its stdout on a pseudo-terminal (in
/// raw mode: what it writes arrives unchanged), for programs that draw differently on a terminal.
class child {
public:
    enum class out_to { pipe, terminal };
    child(const std::filesystem::path& exe, const std::vector<std::string>& args,
          const std::filesystem::path& cwd, out_to stdout_to = out_to::pipe);
    ~child();
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    void write_stdin(std::string_view text);
    void close_stdin();
    /// Reads stdout until a line containing `needle` arrives; returns that line. Throws after
    /// `timeout`. Everything read is kept in output().
    std::string wait_for_line(std::string_view needle, std::chrono::milliseconds timeout = 20s);
    /// Waits until the process exits, reading the rest of its stdout; returns its exit status
    /// (128 + signal when killed). Throws after `timeout`.
    int wait(std::chrono::milliseconds timeout = 30s);
    /// The exit status if the process has ended (reaping it), without waiting; nullopt while it
    /// runs. Its output is not drained: for children that write to files, such as servers.
    std::optional<int> try_wait();
    void signal(int signo);
    int pid() const noexcept { return pid_; }
    const std::string& output() const noexcept { return out_; }
    std::string error_output() const;

private:
    bool read_some(std::chrono::milliseconds timeout);

    int pid_ = -1;
    int in_ = -1;
    int out_fd_ = -1;
    std::filesystem::path err_file_;
    std::string out_;
    std::size_t scanned_ = 0;
    std::optional<int> status_;
    bool eof_ = false; ///< the child closed its stdout
};

/// Re-checks `predicate` every `interval` until it holds or `timeout` passes (which only a hung
/// test reaches); returns its last value. For conditions that another thread or process makes
/// true; a predicate that costs a round trip to another process may want a longer interval.
bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout = 10s,
                std::chrono::milliseconds interval = 5ms);

/// Checks that `predicate` keeps holding over `period` (a property over time, such as leases
/// being renewed); false as soon as it does not.
bool holds_for(const std::function<bool()>& predicate, std::chrono::milliseconds period);

/// Every distinct name an index lists (GET /v1/files, all pages).
std::vector<std::string> index_names(std::uint16_t index_port);

/// The ids of the peers an index gives as sources of `name` (POST /v1/lookup).
std::set<std::uint32_t> index_sources(std::uint16_t index_port, const std::string& name);

/// Where the built executables are (set by CMake).
std::filesystem::path app_path(const std::string& name);

/// What a finished process left: exit status, standard output and standard error.
struct run_result {
    int status = -1;
    std::string out;
    std::string err;
};

/// Runs the built executable `app` in `cwd` to its end, feeding it `input` then end of input.
run_result run_app(const std::string& app, const std::vector<std::string>& args,
                   const std::filesystem::path& cwd, const std::string& input = {});

} // namespace p2pshare::test
