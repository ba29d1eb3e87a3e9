// p2pshare — one peer: shares a folder, keeps itself registered with the index, serves its files
// to other peers and offers the operations behind the original menu.
#pragma once

#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>
#include <p2pshare/file_transfer.hpp>
#include <p2pshare/limits.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

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
    std::filesystem::path folder;   ///< shared folder; empty: "p<id>" (created if missing)
    std::string host = "127.0.0.1"; ///< address the file server listens on
    std::uint16_t port = 0;         ///< 0 picks a free port
    std::string advertise_host;     ///< address given to the index; empty: `host`
    /// Port given to the index, for a peer behind a port mapping; 0: the port it listens on.
    std::uint16_t advertise_port = 0;
    /// The index servers, in order of preference. The peer uses the first; when the one it uses
    /// cannot be reached or cannot serve (no connection, no answer in time, `503`), it moves to
    /// the next (after the last: the first) at once and renews its lease there with the same
    /// token, registering again only if that index does not know the lease. Index servers that
    /// share their store (docs/scaling.md) thus keep the peer's lease across a failover. An
    /// address given twice is used once. When empty, they are read from `server_config`, which
    /// must then be set.
    std::vector<ServerAddress> index;
    /// A `config/server.config` to read the index servers from (only when `index` is empty).
    /// Empty (the default): the library reads no such file.
    std::filesystem::path server_config;
    /// A `pN.config` that keeps the lease token across restarts: read at start (a file that
    /// cannot be parsed stops the start with errc::bad_config and is never overwritten), then
    /// written whenever the token changes. Empty (the default): the library writes no file.
    std::filesystem::path config_file;
    /// A file that keeps the hashes of the shared files across restarts (`pN.hashes` for the
    /// `peer` program): read at start, so that a file whose size, modification time and inode are
    /// those recorded is offered without being read again, and rewritten (atomically) after
    /// files were hashed. A file that cannot be read or decoded is ignored, with a log line.
    /// Empty (the default): every file is hashed at each start, and the library writes no file.
    std::filesystem::path hash_cache;
    /// Serve files over TLS (docs/protocol.md §11) with the PEM certificate `tls_cert` and its
    /// key `tls_key`. The peer registers the certificate's SHA-256 with the index, which gives
    /// it with each source, and downloaders accept exactly that certificate: no CA is needed.
    bool tls = false;
    std::filesystem::path tls_cert;
    std::filesystem::path tls_key;
    /// With `tls`, when neither file exists: make a self-signed certificate and its key there
    /// first, and keep them (the `peer` program's `--tls`). Otherwise a missing file fails the
    /// start with errc::bad_config.
    bool tls_self_signed = false;
    /// Index servers reached over TLS (`https://` addresses, or `tls=true` in server.config) are
    /// checked against the CA certificates of this PEM file; empty: the system's.
    std::filesystem::path tls_ca;
    std::chrono::milliseconds rescan_interval{5'000}; ///< folder checked for changes by hand
    std::chrono::milliseconds drain_timeout{10'000};  ///< quit: uploads cut after no progress
    /// Bytes per second that all uploads together may send; 0: no cap. (Downloads:
    /// transfer.max_download_rate.)
    std::uint64_t max_upload_rate = 0;
    std::chrono::milliseconds retry_max{5'000}; ///< re-registration backoff cap
    std::size_t max_parallel_downloads = 4;
    ServerLimits limits{};
    TransferOptions transfer{};
    /// Where hashing, folder scans, writes of downloads and reads of files not in the page cache
    /// run. Empty: a pool of two threads of the peer's own, joined when the PeerNode goes away.
    /// A pool given here must be idle (joined) before the peer's io_context is destroyed: Asio
    /// releases the awaiting executor on the pool's thread after the peer's work resumed.
    std::optional<boost::asio::any_io_executor> blocking_executor;
};

struct LocalFile {
    std::string name;
    std::uint64_t size = 0;
    std::string sha256;
};

/// The outcome of one name of a download. `error` is empty when the file was downloaded;
/// otherwise it is in p2pshare's category (errc::no_sources: no other peer shares it;
/// errc::bad_name, errc::exists, errc::hash_mismatch, errc::all_sources_failed, errc::bad_response
/// for a lookup answer that cannot be trusted, errc::shutting_down, ...) or
/// boost::asio::error::operation_aborted when the download was cancelled.
struct DownloadOutcome {
    std::string name;
    boost::system::error_code error;
    std::string message; ///< what went wrong, for people; empty on success
    TransferResult transfer;
    explicit operator bool() const noexcept { return !error; }
};

/// The outcome of one name of a deletion: empty `error` when deleted; errc::not_found,
/// errc::bad_name, errc::io_error (not a plain file, or the system refused) otherwise.
struct DeleteOutcome {
    std::string name;
    boost::system::error_code error;
    std::string message;
    explicit operator bool() const noexcept { return !error; }
};

/// A peer. It runs on the executor it is given, which must be serial: a strand, or the executor
/// of an io_context that one thread runs. Every public operation may be awaited from any
/// coroutine (it hops onto that executor) and honours per-operation cancellation (e.g. `||` with
/// a timer, or bind_cancellation_slot): cancelled, it completes promptly with
/// boost::asio::error::operation_aborted (in its result, or in each outcome not finished), holds
/// no lock and leaves no file under a final name that it did not complete. Work already handed to
/// the blocking executor (a hash, a write) finishes there first; the peer's state stays valid.
class PeerNode {
public:
    PeerNode(boost::asio::any_io_executor executor, PeerOptions options);
    /// Without a prior async_quit(), stops the file server and the lease loop at once.
    ~PeerNode();
    PeerNode(const PeerNode&) = delete;
    PeerNode& operator=(const PeerNode&) = delete;

    /// Opens (and creates) the folder, starts the file server, registers. Files are sent with
    /// sendfile(2), which can raise SIGPIPE: when SIGPIPE still has its default action (which
    /// kills the process), the first start sets it to ignored. Hashing of the folder's files goes
    /// on in the background: each file is offered once hashed.
    /// Errors: errc::unreachable, errc::timeout or errc::tls_failed (an index reached over TLS
    /// whose certificate is refused): the node runs and keeps trying to register in the
    /// background; any other error: the node did not start (errc::conflict: the id or folder is
    /// taken; errc::bad_config: a config file cannot be parsed, or a TLS certificate, key or CA
    /// file cannot be used; errc::bad_request: started twice).
    boost::asio::awaitable<Error> async_start();

    /// Every distinct file name in the network, optionally only those containing `contains`.
    boost::asio::awaitable<Result<std::vector<std::string>>> async_list_network_files(
        std::string contains = {});

    /// Looks all names up (in as few requests as the index's limit allows), then fetches them
    /// concurrently (at most max_parallel_downloads at a time). The index is told afterwards.
    /// A lookup answer that cannot be trusted (names not asked for, a name twice, a malformed
    /// source) fails every name with errc::bad_response and downloads nothing.
    boost::asio::awaitable<std::vector<DownloadOutcome>> async_download(
        std::vector<std::string> names);

    /// Deletes plain files of the shared folder; the index is told afterwards.
    boost::asio::awaitable<std::vector<DeleteOutcome>> async_delete_local(
        std::vector<std::string> names);

    /// The shared files, after checking the folder for changes and hashing what changed.
    boost::asio::awaitable<Result<std::vector<LocalFile>>> async_local_files();

    /// Checks the folder now, waits for the hashing of what changed and for the hash cache
    /// (PeerOptions::hash_cache) to be written, then tells the index. Errors: shutting_down when
    /// the peer is not running or stops meanwhile; the index's error when it refuses the list.
    /// Cancelled: operation_aborted, and the index is not told.
    boost::asio::awaitable<Error> async_sync();

    /// Unregisters, stops accepting, lets uploads in progress finish (cut only after
    /// drain_timeout without progress), then stops. A downloader fetching a file piece by piece
    /// over a connection it already has is served to the end: a connection that asks again
    /// within 2 s (or drain_timeout, if shorter) is kept; new connections are refused. Safe to call
    /// more than once. Cancelled, it cuts the uploads at once.
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
