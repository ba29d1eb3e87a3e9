// The body of one attempt of a download: receiving bytes into the `.part` (splice(2) where the
// system allows, else buffers), writing and hashing them on the blocking executor, off the
// receiving path. Used by FileTransfer (file_transfer.cpp).
#pragma once

#include "http_client.hpp"
#include "sha256.hpp"

#include <p2pshare/error.hpp>
#include <p2pshare/file_transfer.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace p2pshare::detail {

/// What one attempt at one source did.
struct attempt {
    boost::system::error_code error;
    std::string message;
    std::string digest;         ///< SHA-256 of the whole .part when the body arrived complete
    std::uint64_t received = 0; ///< body bytes received
    std::uint64_t kept = 0;     ///< bytes of the .part kept (0 when the source sent it all)
};

/// An attempt that failed with `code`.
attempt failed(errc code, std::string message);

/// Parses "bytes FIRST-LAST/TOTAL".
bool parse_content_range(std::string_view v, std::uint64_t& first, std::uint64_t& last,
                         std::uint64_t& total);

/// Hashes bytes [offset, end) of `fd` into `h` on the blocking executor.
asio::awaitable<bool> read_back(asio::any_io_executor blocking, int fd, std::uint64_t offset,
                                std::uint64_t end, sha256& h, std::vector<char>& buffer);

/// pwrite of all `size` bytes; false with `error` set when the system refused.
bool write_all(int fd, const char* data, std::size_t size, std::uint64_t offset, int& error);

/// Reads into `data` until `size` bytes, or at least a quarter MiB, arrived; each read has the
/// stall deadline.
asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> fill(
    beast::tcp_stream& stream, char* data, std::size_t size, std::chrono::milliseconds stall);

/// Moves the body [position, size) from the socket into `fd` through a pipe: splice(2) copies
/// each byte once while the blocking executor hashes what is in the file from the page cache.
/// Stops early, without an error, where splice(2) does not work with this socket or file;
/// `position` tells how far it got, and `hash` then covers [0, position). Checks `cancel` between
/// steps; every step, and the hashing, has ended when it returns.
asio::awaitable<attempt> splice_body(tcp::socket& socket, const TransferOptions& options,
                                     const asio::cancellation_state& cancel, int fd,
                                     std::uint64_t size, std::uint64_t& position, sha256& hash,
                                     std::vector<char>& buffer, TransferProgress& progress,
                                     std::uint64_t& reported);

} // namespace p2pshare::detail
