// Helpers of the fault and hostile-input tests: the real executables in a fresh folder, sources
// as the index hands them out, large files, and what /proc says about this process.
#pragma once

#include <p2pshare/file_transfer.hpp>

#include "test_support.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::test {

/// `indexserver` and `peer ... serve` processes in one temporary folder (config/server.config,
/// pN folders and pN.config all land there). Every process is killed and reaped at the end.
///
/// Index server 0 is started by the constructor; add_index() starts more with the same
/// arguments, which on one `--store redis://...` serve one network. (Each writes
/// config/server.config: it names the last one started. The peers here are given `--index`.)
class process_network {
public:
    /// Starts `indexserver --port 0 <index_args...>` and waits for its "listening on" line.
    explicit process_network(std::vector<std::string> index_args = {});

    /// Starts one more index server with the same arguments; returns its number (1 for the
    /// second).
    std::size_t add_index();
    /// Starts index server `i` again (after it died) on its port with the same arguments.
    void restart_index(std::size_t i = 0);
    /// SIGKILL to index server `i`, then reaps it.
    void kill_index(std::size_t i = 0);

    /// `peer --id ID serve <extra...> --index 127.0.0.1:PORT` once it says it is serving. The
    /// index is server 0, unless `extra` gives `--index` itself (e.g. index_addresses()).
    child& serve(std::uint32_t id, std::vector<std::string> extra = {});
    /// The file server port a serving peer announced.
    std::uint16_t port_of(std::uint32_t id) const;
    child& peer(std::uint32_t id);
    /// SIGKILL to a serving peer, then reaps it; returns its status (128 + 9).
    int kill_peer(std::uint32_t id);

    /// `peer --id ID <args...> --index ...` run to its end; returns the child (reaped). The
    /// index is server 0, unless `args` gives `--index` itself.
    std::unique_ptr<child> run_peer(std::uint32_t id, const std::vector<std::string>& args,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

    std::uint16_t index_port(std::size_t i = 0) const { return indexes_.at(i).port; }
    std::string index_address(std::size_t i = 0) const {
        return "127.0.0.1:" + std::to_string(index_port(i));
    }
    /// Every index server in the order started, as `--index` takes them: "127.0.0.1:P0,...".
    std::string index_addresses() const;
    child& index(std::size_t i = 0) { return *indexes_.at(i).process; }
    const std::filesystem::path& root() const noexcept { return dir_.path(); }
    std::filesystem::path operator/(const std::filesystem::path& p) const { return dir_ / p; }

private:
    struct index_process {
        std::unique_ptr<child> process;
        std::uint16_t port = 0;
    };
    /// Starts an index server on `port` (0: any) and returns it once it listens.
    index_process start_index(std::uint16_t port);
    /// `args`, then `--index` and index server 0 unless `args` gives `--index` itself.
    std::vector<std::string> with_index(std::vector<std::string> args) const;

    temp_dir dir_;
    std::vector<std::string> index_args_;
    std::vector<index_process> indexes_;
    struct serving {
        std::uint32_t id;
        std::uint16_t port;
        std::unique_ptr<child> process;
    };
    std::vector<serving> peers_;
};

/// `size` bytes from a fast deterministic generator (any byte value).
std::string big_content(std::size_t size, std::uint64_t seed);

/// The sources of `name` as POST /v1/lookup gives them, sorted by peer id.
std::vector<FileSource> lookup_sources(std::uint16_t index_port, const std::string& name);
/// Everything a downloader sees of `names` in one line per source (for before/after checks).
std::string lookup_text(std::uint16_t index_port, const std::vector<std::string>& names);
/// The live peers of GET /v1/health.
std::int64_t health_peers(std::uint16_t index_port);

/// Every entry of `folder` (any type, `.part` files included), sorted.
std::vector<std::string> folder_entries(const std::filesystem::path& folder);

/// The file descriptors this process has open now.
std::size_t open_fds();
/// This process's resident memory (VmRSS), in KiB.
std::size_t rss_kib();

/// A blocking TCP connection to 127.0.0.1:`port` as a plain socket, for clients that misbehave
/// on purpose (one byte at a time, never reading, never closing).
class raw_socket {
public:
    /// `receive_buffer` > 0 sets SO_RCVBUF before connecting; `from` binds the local address.
    explicit raw_socket(std::uint16_t port, int receive_buffer = 0, const std::string& from = {});
    ~raw_socket();
    raw_socket(const raw_socket&) = delete;
    raw_socket& operator=(const raw_socket&) = delete;

    int fd() const noexcept { return fd_; }
    /// Sends every byte; false once the server closed the connection (EPIPE, ECONNRESET).
    bool send(std::string_view bytes);
    /// Waits up to `timeout` for the server: appends what it sends to received(); true once the
    /// connection is closed (end of stream or reset).
    bool wait_closed(std::chrono::milliseconds timeout);
    const std::string& received() const noexcept { return received_; }
    bool closed() const noexcept { return closed_; }

private:
    int fd_ = -1;
    bool closed_ = false;
    std::string received_;
};

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
std::size_t raise_fd_limit();

} // namespace p2pshare::test
