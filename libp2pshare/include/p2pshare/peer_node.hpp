// p2pshare — one peer: shares a folder, keeps itself registered with the index, serves its files
// to other peers and offers the operations behind the original menu.
#pragma once

#include <p2pshare/config.hpp>
#include <p2pshare/file_transfer.hpp>
#include <p2pshare/limits.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace p2pshare {

struct PeerOptions {
    std::uint32_t id = 0;
    std::filesystem::path folder;        ///< shared folder; empty: "p<id>" (created if missing)
    std::filesystem::path config_file;   ///< empty: "p<id>.config"
    std::string host = "127.0.0.1";      ///< address the file server listens on
    std::uint16_t port = 0;              ///< 0 picks a free port
    std::string advertise_host;          ///< address given to the index; empty: `host`
    std::optional<ServerAddress> index; ///< empty: read from `server_config`
    std::filesystem::path server_config = "config/server.config";
    std::chrono::milliseconds rescan_interval{5'000}; ///< folder checked for changes by hand
    std::chrono::milliseconds drain_timeout{10'000};  ///< quit: uploads cut after no progress
    std::chrono::milliseconds retry_max{5'000};       ///< re-registration backoff cap
    std::size_t max_parallel_downloads = 4;
    ServerLimits limits{};
    TransferOptions transfer{};
    /// Set when one thread only runs the executor's io_context (an "implicit strand"): the
    /// peer's work then runs on the executor itself rather than on a strand made from it, which
    /// saves a queue hop and two allocations per I/O. Wrong (data races) if several threads run it.
    bool single_thread = false;
};

struct LocalFile {
    std::string name;
    std::uint64_t size = 0;
    std::string sha256;
};

struct DownloadOutcome {
    enum class status { downloaded, not_found, failed };
    std::string name;
    status state = status::failed;
    std::string message; ///< why it failed, empty on success
    TransferResult transfer;
};

struct DeleteOutcome {
    enum class status { deleted, not_found, failed };
    std::string name;
    status state = status::failed;
    std::string message;
};

std::string_view to_string(DownloadOutcome::status s) noexcept;
std::string_view to_string(DeleteOutcome::status s) noexcept;

/// A peer on an executor (all its work runs on one strand made from it, or with
/// options.single_thread on the executor itself). Start it, await its
/// operations, then quit it; every operation in flight completes with a result or an error.
class PeerNode {
public:
    PeerNode(boost::asio::any_io_executor executor, PeerOptions options);
    ~PeerNode();
    PeerNode(const PeerNode&) = delete;
    PeerNode& operator=(const PeerNode&) = delete;

    /// Creates the folder, starts the file server, writes the config file and registers.
    /// Files are sent with sendfile(2), which can raise SIGPIPE: when SIGPIPE still has its
    /// default action (which kills the process), the first start sets it to ignored.
    /// errc::unreachable: the node runs and keeps trying to register in the background;
    /// any other error: the node did not start (errc::conflict: the id is taken).
    boost::asio::awaitable<boost::system::error_code> async_start();

    /// Every distinct file name in the network, optionally only those containing `contains`.
    boost::asio::awaitable<boost::system::result<std::vector<std::string>>>
    async_list_network_files(std::string contains = {});

    /// Looks all names up in one request, then fetches them concurrently (at most
    /// max_parallel_downloads at a time). The index is updated afterwards.
    boost::asio::awaitable<std::vector<DownloadOutcome>> async_download(
        std::vector<std::string> names);

    /// Deletes plain files of the shared folder; the index is updated afterwards.
    boost::asio::awaitable<std::vector<DeleteOutcome>> async_delete_local(
        std::vector<std::string> names);

    /// The shared files, after checking the folder for changes.
    boost::asio::awaitable<std::vector<LocalFile>> async_local_files();

    /// Checks the folder now and tells the index about any change.
    boost::asio::awaitable<boost::system::error_code> async_sync();

    /// Unregisters, stops accepting, lets uploads in progress finish (cut only after
    /// drain_timeout without progress), then stops. Safe to call more than once.
    boost::asio::awaitable<void> async_quit();

    std::uint32_t id() const noexcept;
    std::uint16_t port() const noexcept;
    const std::filesystem::path& folder() const noexcept;
    bool registered() const noexcept;
    /// Requests being answered by the file server right now.
    std::size_t active_uploads() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace p2pshare
