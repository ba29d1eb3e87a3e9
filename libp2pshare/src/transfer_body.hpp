// One piece of a download from one source over a keep-alive connection: the ranged request, the
// checks of the answer, and the body received into memory, hashed and written in place into the
// `.part` on the blocking executor while the next bytes arrive. Used by FileTransfer
// (file_transfer.cpp).
#pragma once

#include "http_client.hpp"
#include "pieces.hpp"
#include "rate_limiter.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace p2pshare::detail {

/// Parses "bytes FIRST-LAST/TOTAL".
bool parse_content_range(std::string_view v, std::uint64_t& first, std::uint64_t& last,
                         std::uint64_t& total);

/// pwrite of all `size` bytes; false with `error` set when the system refused.
bool write_all(int fd, const char* data, std::size_t size, std::uint64_t offset, int& error);

/// Reads into `data` until `size` bytes, or at least a quarter MiB, arrived; each read has the
/// stall deadline.
asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> fill(
    beast::tcp_stream& stream, char* data, std::size_t size, std::chrono::milliseconds stall);

/// What to fetch: bytes [offset, offset + length) of the file at `target`, whose ETag must be
/// `etag` and whose bytes must hash to `expected`.
struct piece_request {
    std::string target; ///< "/v1/files/NAME", percent-encoded
    std::string host;   ///< the Host header
    std::string etag;   ///< "\"SHA256\""
    std::uint64_t file_size = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    digest expected{};
    /// Hash and write on the network thread, not `blocking`: for a small piece into a file on a
    /// file system held in memory, where a hop to another thread costs more than the work.
    bool store_inline = false;
};

enum class piece_status {
    verified,    ///< the bytes hash right, and are in the file
    bad_piece,   ///< they arrived complete and hash wrong: the source is to blame
    transport,   ///< the connection failed before an answer
    truncated,   ///< the answer broke off before the piece's last byte
    stalled,     ///< no byte within the stall deadline
    refused,     ///< an answer the request does not allow (status, range, version, length)
    io_error,    ///< the file could not be written
    interrupted, ///< cancelled, or `stop` was set: the bytes are no longer wanted
};

struct piece_outcome {
    piece_status status = piece_status::verified;
    std::string message;
    std::uint64_t received = 0; ///< body bytes received
    bool answered = false;      ///< a response header arrived
    bool keep_alive = false;    ///< the connection may carry the next request
    int status_code = 0;        ///< the HTTP status, once answered
};

/// Told of body bytes as they arrive, on the transfer's executor.
class piece_listener {
public:
    virtual void on_bytes(std::size_t n) = 0;

protected:
    ~piece_listener() = default;
};

/// Fetches one piece on `stream` (whose read buffer is `buffer`) into `fd`. Chunks of at most
/// `chunk.size()` bytes alternate between `chunk` and `spare`: one is hashed and written on
/// `blocking` while the other fills. Checks `stop` between chunks; a cancellation of the
/// awaiting operation, or of the stream, ends it with `interrupted`. Every write has ended when
/// it returns. Received bytes are taken from `rate` (none: no cap), pausing as it says.
/// The body is read `chunk.size()` bytes at a time.
/// With `whole` (room for the piece's length) the bytes are received into it and hashed as
/// they come; the work on the last chunk also checks the digest and, only if it is right,
/// writes the piece into the file. So only verified bytes ever reach the file: end-game copies
/// of one piece may arrive at once, and two verified copies are the same bytes. Without it,
/// each chunk is written in place as it is hashed: for pieces too large to hold, which then
/// have one copy in flight at a time.
asio::awaitable<piece_outcome> fetch_piece(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                           const piece_request& request, int fd,
                                           asio::any_io_executor blocking,
                                           std::chrono::milliseconds stall, std::span<char> chunk,
                                           std::span<char> spare, const bool& stop,
                                           piece_listener& listener, rate_limiter* rate,
                                           char* whole);

} // namespace p2pshare::detail
