// One piece of a download from one source over a keep-alive connection: the ranged request, the
// checks of the answer, and the body, either received whole into memory (then hashed, and
// written in place into the `.part` only if right, by store_piece on the blocking executor while
// the next piece arrives) or, for a piece too large to hold, hashed and written chunk by chunk as
// it arrives. Used by FileTransfer (file_transfer.cpp).
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
    client_stream& stream, char* data, std::size_t size, std::chrono::milliseconds stall);

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

/// Sends the ranged request for `request`'s bytes on `stream` (whose read buffer is `buffer`)
/// and reads the answer's header: `verified` when the body that follows is exactly those bytes
/// of that version of the file (then `keep_alive` tells whether the connection may carry the
/// next request), else why not (a 404 or 412 whose short body was read to its end may keep the
/// connection too: `keep_alive`). A cancellation of the awaiting operation, or of the stream,
/// ends it with `interrupted`; `stall` bounds each wait.
asio::awaitable<piece_outcome> request_range(client_stream& stream, beast::flat_buffer& buffer,
                                             const piece_request& request,
                                             std::chrono::milliseconds stall);

/// Receives the next `length` bytes of a body whose header request_range read into `into`:
/// no error and `length` once they all arrived (unchecked), else the error and how many did.
/// Stops early, with no error, when `stop` is set (checked between reads); a cancellation of
/// the awaiting operation, or of the stream, ends it with `operation_aborted`. Each read has
/// the `stall` deadline. Received bytes are taken from `rate` (none: no cap), pausing as it
/// says, and told to `listener`.
asio::awaitable<std::tuple<boost::system::error_code, std::uint64_t>> receive_body(
    client_stream& stream, beast::flat_buffer& buffer, char* into, std::uint64_t length,
    std::chrono::milliseconds stall, const bool& stop, piece_listener& listener,
    rate_limiter* rate);

/// The outcome of a piece whose body ended early (receive_body): `interrupted` if `stop` or
/// cancelled, `stalled` on the deadline, else `truncated`. The connection is not to be kept.
piece_outcome body_broken_off(piece_outcome out, const boost::system::error_code& read_error,
                              bool stop, std::uint64_t received, std::uint64_t length);

/// What store_piece did.
struct store_result {
    bool right = false; ///< the bytes hash to the expected digest (only then were they written)
    int error = 0;      ///< an errno of the write
};

/// Checks a piece received whole against `expected` and, only if it is right, writes it at
/// `offset` in `fd`: only verified bytes reach the file, so end-game copies of one piece may
/// be stored at once (two verified copies are the same bytes). Blocking: for the blocking
/// executor, or inline for a small piece into memory.
store_result store_piece(int fd, const char* data, std::size_t length, std::uint64_t offset,
                         const digest& expected);

/// Fetches one piece too large to hold in memory on `stream` into `fd`, in place. Chunks of at
/// most `chunk.size()` bytes alternate between `chunk` and `spare`: one is hashed and written
/// on `blocking` while the other fills; the digest is checked at the end (so a bad piece has
/// reached the file, and is written over when fetched again; one copy of such a piece may be in
/// flight at a time). Checks `stop` between chunks; a cancellation of the awaiting operation,
/// or of the stream, ends it with `interrupted`. Every write has ended when it returns.
/// Received bytes are taken from `rate` (none: no cap), pausing as it says.
asio::awaitable<piece_outcome> fetch_piece(client_stream& stream, beast::flat_buffer& buffer,
                                           const piece_request& request, int fd,
                                           asio::any_io_executor blocking,
                                           std::chrono::milliseconds stall, std::span<char> chunk,
                                           std::span<char> spare, const bool& stop,
                                           piece_listener& listener, rate_limiter* rate);

} // namespace p2pshare::detail
