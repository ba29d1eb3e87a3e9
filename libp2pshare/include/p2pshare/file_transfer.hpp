// p2pshare — downloading one file from the peers that share it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
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
};

struct TransferProgress {
    std::string name;
    std::uint64_t done = 0;        ///< bytes of the file present so far (resumed bytes included)
    std::uint64_t total = 0;       ///< the file's size
    std::uint32_t source_peer = 0; ///< the peer the bytes come from now
    std::string source;            ///< its host:port
};

struct TransferOptions {
    bool overwrite = false; ///< replace an existing file of the same name
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds stall_timeout{15'000}; ///< no byte for this long: next source
    std::size_t buffer_size = 1024 * 1024;
    /// Move the body from the socket into the file with splice(2), without copying it through
    /// the process, where the system allows (Linux sockets and most file systems); false
    /// receives into a buffer and writes it. Both hash the bytes off the receiving path.
    bool zero_copy = true;
    /// Where writes of received bytes and their hashing run (they may wait for the disk).
    /// Empty: a pool of two threads shared by the process.
    std::optional<boost::asio::any_io_executor> blocking_executor;
    /// Called on the transfer's executor as bytes arrive (at most every 64 KiB or so).
    std::function<void(const TransferProgress&)> on_progress;
};

struct TransferResult {
    std::string name;
    boost::system::error_code error; ///< empty on success
    std::string message;             ///< what went wrong, for people
    std::uint64_t size = 0;          ///< the file's size
    std::uint64_t received = 0;      ///< bytes received over the network
    std::uint64_t resumed_from = 0;  ///< bytes kept from an earlier `.part`
    std::uint32_t source_peer = 0;   ///< the peer that completed the file
    std::string source;              ///< its host:port
    unsigned attempts = 0;           ///< sources tried
    std::chrono::microseconds elapsed{0};

    explicit operator bool() const noexcept { return !error; }
};

/// Downloads one file into a folder: picks a source at random, streams into `NAME.part`
/// (never holding the file in memory), verifies size and SHA-256, then moves it into place
/// atomically. A failed or corrupt source is left for another one, resuming the `.part` with a
/// byte range (with If-Range, so that only the same version continues it). It runs on the
/// executor given, which must be serial (a strand, or the executor of an io_context that one
/// thread runs): `on_progress` is called there, one call at a time. Writes of received bytes and
/// their hashing run on `options.blocking_executor`. Several downloads may run at once.
/// async_download may be awaited from any coroutine and honours per-operation cancellation: it
/// then completes promptly with `error` = boost::asio::error::operation_aborted, the `.part`
/// kept for a later resume and nothing under the final name; the write or hash in flight on the
/// blocking executor ends first.
class FileTransfer {
public:
    FileTransfer(boost::asio::any_io_executor executor, std::filesystem::path folder,
                 TransferOptions options = {});

    boost::asio::awaitable<TransferResult> async_download(std::string name,
                                                          std::vector<FileSource> sources);

private:
    boost::asio::awaitable<TransferResult> download(std::string name,
                                                    std::vector<FileSource> sources);

    boost::asio::any_io_executor executor_;
    std::filesystem::path folder_;
    TransferOptions options_;
};

} // namespace p2pshare
