// p2pshare — downloading one file from the peers that share it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace p2pshare {

/// A peer that shares a file, as the index's lookup returns it.
struct FileSource {
    std::uint32_t peer = 0;
    std::string host;
    std::uint16_t port = 0;
    std::uint64_t size = 0;
    std::string sha256; ///< 64 lowercase hex digits
    /// The Merkle root of the file's piece hashes (64 lowercase hex digits, docs/protocol.md,
    /// "Pieces"); empty where the index gave none (a peer of an older version). Defaulted, so that
    /// a source written as {peer, host, port, size, sha256} still compiles without warnings.
    std::string root{};
    /// The SHA-256 of the certificate the source serves with over TLS (64 lowercase hex digits,
    /// as the index gives it): the download then speaks TLS to it and accepts exactly that
    /// certificate. Empty: plain HTTP.
    std::string cert_sha256{};
};

struct TransferProgress {
    std::string name;
    std::uint64_t done = 0;        ///< bytes of the file present so far (kept pieces included)
    std::uint64_t total = 0;       ///< the file's size
    std::size_t sources = 0;       ///< sources sending bytes now
    std::uint32_t source_peer = 0; ///< the peer the latest bytes came from
    std::string source;            ///< its host:port
};

struct TransferOptions {
    bool overwrite = false; ///< replace an existing file of the same name
    /// Sources fetched from at once (docs/protocol.md, "What a downloader does"): 1 to
    /// max_sources; values outside are clamped.
    std::size_t sources = 4;
    static constexpr std::size_t max_sources = 16;
    std::chrono::milliseconds connect_timeout{5'000};
    /// No byte from a source for this long: the source is dropped and its piece goes to others.
    std::chrono::milliseconds stall_timeout{15'000};
    /// Idle keep-alive connections to sources are kept this long for the next piece or download
    /// (at most 4 per source); 0 closes them after each download.
    std::chrono::milliseconds idle_timeout{10'000};
    /// Bytes received from one source before they are hashed and written (two such buffers per
    /// source: one fills while the other is written).
    std::size_t buffer_size = 256 * 1024;
    /// Bytes per second that all downloads of this FileTransfer (of a PeerNode: all of its
    /// downloads) may receive together; 0: no cap.
    std::uint64_t max_download_rate = 0;
    /// Where writes of received bytes and their hashing run (they may wait for the disk).
    /// Empty: a pool of two threads shared by the process.
    std::optional<boost::asio::any_io_executor> blocking_executor;
    /// Called on the transfer's executor as bytes arrive (at most every 64 KiB or so).
    std::function<void(const TransferProgress&)> on_progress;
};

/// What one source gave to a download.
struct SourceReport {
    std::uint32_t peer = 0;
    std::string address;     ///< host:port
    std::uint64_t bytes = 0; ///< bytes of verified pieces it sent
    unsigned pieces = 0;     ///< verified pieces it sent
    unsigned bad_pieces = 0; ///< pieces it sent that failed their hash
    bool banned = false;     ///< it sent a bad piece (or bad piece hashes): not used again
    std::string failure;     ///< why it was left, if it was (empty when it served to the end)
};

struct TransferResult {
    std::string name;
    boost::system::error_code error;   ///< empty on success
    std::string message;               ///< what went wrong, for people
    std::uint64_t size = 0;            ///< the file's size
    std::uint64_t received = 0;        ///< bytes of pieces received over the network
    std::uint64_t resumed_from = 0;    ///< bytes of verified pieces kept from an earlier run
    std::uint64_t pieces = 0;          ///< the file's pieces
    std::uint64_t refetched = 0;       ///< pieces fetched again after a failure (bad, lost, stall)
    std::uint64_t end_game_copies = 0; ///< second copies of pieces in flight asked at the end
    unsigned connections = 0;          ///< TCP connections opened (kept-alive ones reused: none)
    std::uint32_t source_peer = 0;     ///< the peer that sent the most bytes (or the first asked)
    std::string source;                ///< its host:port
    std::string sha256;                ///< the file's SHA-256 (hex), on success
    std::string root;                  ///< its root (hex), on success; empty where none was given
    /// Its piece hashes, checked against `root`, on success (empty where there was no root).
    std::vector<std::array<std::uint8_t, 32>> piece_hashes;
    std::vector<SourceReport> sources; ///< every source used, in the order first used
    std::chrono::microseconds elapsed{0};

    explicit operator bool() const noexcept { return !error; }
};

namespace detail {
class connection_pool;
class rate_limiter;
} // namespace detail

/// Downloads one file into a folder from the peers that share it (docs/protocol.md, "What a
/// downloader does"). The sources given are grouped by content (size, SHA-256, root): the
/// largest group is used and the bytes of two versions are never mixed. For a file of more than
/// one piece the piece hashes are fetched from a source and checked against the root before any
/// is trusted. Pieces are then fetched from up to `options.sources` sources at once over
/// keep-alive connections, one piece at a time per source, each verified as it arrives (hashed
/// from memory) and written in place into a preallocated `NAME.part`. A source that sends a
/// bad piece is banned for this file; one that fails or stalls is dropped, its piece going to
/// the others; one under a quarter of the fastest one's speed gives way to a source not used
/// yet, if any; the last pieces are fetched from a second source as well (end-game). Verified
/// pieces are recorded in `NAME.part.pieces` (after the data is on disk), so a later run keeps
/// them. The file is moved into place only when every piece is verified.
///
/// It runs on the executor given, which must be serial (a strand, or the executor of an
/// io_context that one thread runs): `on_progress` is called there, one call at a time. Writes of
/// received bytes and their hashing run on `options.blocking_executor`. Several downloads may
/// run at once and share the idle connections. async_download may be awaited from any coroutine
/// and honours per-operation cancellation: it then completes promptly with `error` =
/// boost::asio::error::operation_aborted, the `.part` and its record kept for a later run and
/// nothing under the final name; the writes in flight on the blocking executor end first.
/// Errors (in p2pshare's category): bad_name, no_sources, exists (the file, or another download
/// of it), io_error, bad_response (sources that disagree with themselves or the protocol),
/// hash_mismatch, all_sources_failed; with one source, that source's own error.
class FileTransfer {
public:
    FileTransfer(boost::asio::any_io_executor executor, std::filesystem::path folder,
                 TransferOptions options = {});
    ~FileTransfer();
    FileTransfer(FileTransfer&&) noexcept;
    FileTransfer& operator=(FileTransfer&&) noexcept;

    boost::asio::awaitable<TransferResult> async_download(std::string name,
                                                          std::vector<FileSource> sources);

    /// Idle keep-alive connections to sources, kept for the next downloads (see
    /// TransferOptions::idle_timeout). Call it on the transfer's executor.
    std::size_t idle_connections() const noexcept;

private:
    boost::asio::awaitable<TransferResult> download(std::string name,
                                                    std::vector<FileSource> sources);

    boost::asio::any_io_executor executor_;
    std::filesystem::path folder_;
    TransferOptions options_;
    std::shared_ptr<detail::connection_pool> pool_;
    std::shared_ptr<detail::rate_limiter> download_rate_;
};

} // namespace p2pshare
