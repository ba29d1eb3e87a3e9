#include "transfer_body.hpp"

#include "blocking.hpp"
#include "sha256.hpp"
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
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace p2pshare::detail {

using namespace boost::asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
} // namespace

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
    client_stream& stream, char* data, std::size_t size, std::chrono::milliseconds stall) {
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

namespace {

/// One step of storing a piece written as it comes: hash `n` bytes at `data` and write them at
/// `at`.
struct store_job {
    sha256* hash = nullptr;
    int fd = -1;
    const char* data = nullptr;
    std::size_t n = 0;
    std::uint64_t at = 0;
};

struct chunk_result {
    int error = 0; ///< an errno of a write
};

chunk_result run_store(const store_job& job) {
    chunk_result r;
    if (!write_all(job.fd, job.data, job.n, job.at, r.error)) return r;
    job.hash->update(job.data, job.n);
    return r;
}

/// The one store of a chunk in flight on the blocking executor, beside the next read. (Not
/// `read && write`: an awaitable_operators group that holds work handed to another executor
/// does not complete when cancelled, with Boost 1.81.)
struct write_slot {
    explicit write_slot(asio::any_io_executor ex)
        : done(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done; ///< cancelled when the store ends
    bool busy = false;
    chunk_result result;
};

/// Hands a store to the blocking executor; `slot.done` is cancelled, on the slot's executor,
/// once it ended. (A plain function: its lambdas are not made in a coroutine.)
void start_store(write_slot& slot, asio::any_io_executor blocking, const store_job& job) {
    slot.busy = true;
    asio::post(blocking, [&slot, job] {
        const auto result = run_store(job);
        asio::post(slot.done.get_executor(), [&slot, result] {
            slot.result = result;
            slot.busy = false;
            slot.done.cancel();
        });
    });
}

/// Waits for the store in flight, if any, whatever cancellation comes meanwhile: the chunk and
/// the hash it uses must outlive it.
asio::awaitable<int> end_store(write_slot& slot) {
    while (slot.busy)
        co_await slot.done.async_wait(use_tuple);
    co_return slot.result.error;
}

piece_outcome outcome(piece_status status, std::string message) {
    piece_outcome o;
    o.status = status;
    o.message = std::move(message);
    return o;
}

bool aborted(const boost::system::error_code& ec) { return ec == asio::error::operation_aborted; }

/// Reads the body of a refusal whose header `parser` read, when it is short and says its length,
/// so that the connection may carry the next request; false when it cannot be.
asio::awaitable<bool> skip_body(client_stream& stream, beast::flat_buffer& buffer,
                                http::response_parser<http::empty_body>& parser) {
    constexpr std::uint64_t longest = 16 * 1024;
    const auto length = parser.content_length();
    if (parser.chunked() || !length || *length > longest) co_return false;
    const auto n = static_cast<std::size_t>(*length);
    while (buffer.size() < n) {
        auto [ec, got] =
            co_await stream.async_read_some(buffer.prepare(n - buffer.size()), use_tuple);
        if (ec) co_return false;
        buffer.commit(got);
    }
    buffer.consume(n);
    co_return true;
}

} // namespace

asio::awaitable<piece_outcome> request_range(client_stream& stream, beast::flat_buffer& buffer,
                                             const piece_request& request,
                                             std::chrono::milliseconds stall) {
    co_await asio::this_coro::throw_if_cancelled(false);
    http::response_parser<http::empty_body> parser;
    client_request req{http::verb::get, request.target, 11};
    req.set(http::field::host, request.host);
    req.set(http::field::user_agent, "p2pshare");
    req.set(http::field::range, "bytes=" + std::to_string(request.offset) + "-" +
                                    std::to_string(request.offset + request.length - 1));
    req.set(http::field::if_match, request.etag);
    req.keep_alive(true);
    stream.expires_after(stall);
    if (auto [ec, n] = co_await http::async_write(stream, req, use_tuple); ec) {
        co_return outcome(aborted(ec) ? piece_status::interrupted : piece_status::transport,
                          "cannot send the request: " + ec.message());
    }
    parser.body_limit(boost::none);
    parser.header_limit(16 * 1024);
    if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple); ec) {
        if (aborted(ec)) co_return outcome(piece_status::interrupted, "interrupted");
        if (ec == beast::error::timeout) {
            co_return outcome(piece_status::stalled, "no answer within the stall deadline");
        }
        const bool closed = ec == http::error::end_of_stream || ec == asio::error::eof ||
                            ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
        co_return outcome(closed ? piece_status::transport : piece_status::refused,
                          "no valid response header: " + ec.message());
    }
    const auto& res = parser.get();
    piece_outcome out;
    out.answered = true;
    out.status_code = static_cast<int>(res.result_int());
    const auto refuse = [&out](std::string message) {
        out.status = piece_status::refused;
        out.message = std::move(message);
        out.keep_alive = false;
        return out;
    };
    if (out.status_code == 206) {
        std::uint64_t first = 0;
        std::uint64_t last = 0;
        std::uint64_t total = 0;
        if (!parse_content_range(res[http::field::content_range], first, last, total) ||
            first != request.offset || last + 1 != request.offset + request.length ||
            total != request.file_size) {
            co_return refuse("unexpected Content-Range '" +
                             std::string(res[http::field::content_range]) + "'");
        }
    } else if (out.status_code == 200) {
        // A source may answer a range that covers the whole file with the whole file.
        if (request.offset != 0 || request.length != request.file_size) {
            co_return refuse("the source ignored the range");
        }
    } else if (out.status_code == 404 || out.status_code == 412) {
        auto r =
            refuse(out.status_code == 404 ? "the source no longer shares the file (404)"
                                          : "the source now has another version of the file (412)");
        // Its short message read to the end, the connection may carry the next request: a
        // file gone from one source is no reason to connect to it again for the next download.
        if (res.keep_alive()) r.keep_alive = co_await skip_body(stream, buffer, parser);
        co_return r;
    } else {
        co_return refuse("the source answered " + std::to_string(out.status_code));
    }
    const auto etag = res[http::field::etag];
    if (!etag.empty() && etag != request.etag) {
        co_return refuse("the source now has another version of the file");
    }
    const auto length = parser.content_length();
    if (!length || *length != request.length) {
        co_return refuse("the source announced " + (length ? std::to_string(*length) : "no") +
                         " bytes instead of " + std::to_string(request.length));
    }
    out.keep_alive = res.keep_alive();
    co_return out;
}

store_result store_piece(int fd, const char* data, std::size_t length, std::uint64_t offset,
                         const digest& expected) {
    store_result r;
    r.right = sha256_digest(data, length) == expected;
    if (r.right) write_all(fd, data, length, offset, r.error);
    return r;
}

asio::awaitable<std::tuple<boost::system::error_code, std::uint64_t>> receive_body(
    client_stream& stream, beast::flat_buffer& buffer, char* into, std::uint64_t length,
    std::chrono::milliseconds stall, const bool& stop, piece_listener& listener,
    rate_limiter* rate) {
    co_await asio::this_coro::throw_if_cancelled(false);
    std::uint64_t received = 0;
    if (buffer.size() > 0) {
        // Body bytes that came with the header, or with the piece before.
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
        std::memcpy(into, buffer.data().data(), n);
        buffer.consume(n);
        co_await async_throttle(rate, n);
        received += n;
        listener.on_bytes(n);
    }
    while (received < length && !stop) {
        auto [ec, n] = co_await fill(stream, into + received,
                                     static_cast<std::size_t>(length - received), stall);
        if (n > 0) {
            co_await async_throttle(rate, n);
            received += n;
            listener.on_bytes(n);
        }
        if (ec) co_return std::tuple{ec, received};
    }
    co_return std::tuple{boost::system::error_code{}, received};
}

piece_outcome body_broken_off(piece_outcome out, const boost::system::error_code& read_error,
                              bool stop, std::uint64_t received, std::uint64_t length) {
    out.received = received;
    out.keep_alive = false;
    if (stop || aborted(read_error)) {
        out.status = piece_status::interrupted;
        out.message = "interrupted";
        return out;
    }
    out.status =
        read_error == beast::error::timeout ? piece_status::stalled : piece_status::truncated;
    out.message = "the transfer stopped after " + std::to_string(received) + " of " +
                  std::to_string(length) + " bytes: " + read_error.message();
    return out;
}

asio::awaitable<piece_outcome> fetch_piece(client_stream& stream, beast::flat_buffer& buffer,
                                           const piece_request& request, int fd,
                                           asio::any_io_executor blocking,
                                           std::chrono::milliseconds stall, std::span<char> chunk,
                                           std::span<char> spare, const bool& stop,
                                           piece_listener& listener, rate_limiter* rate) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto out = co_await request_range(stream, buffer, request, stall);
    if (out.status != piece_status::verified) co_return out;

    // The body: chunk k is hashed and written on the blocking executor while chunk k+1 arrives.
    sha256 hash;
    write_slot writing(co_await asio::this_coro::executor);
    char* chunks[2] = {chunk.data(), spare.data()};
    int next = 0;
    std::uint64_t at = request.offset;
    std::uint64_t received = 0;
    int write_error = 0;
    boost::system::error_code read_error;
    while (received < request.length && write_error == 0 && !stop) {
        const auto want = static_cast<std::size_t>(
            std::min<std::uint64_t>(chunk.size(), request.length - received));
        char* into = chunks[next];
        std::size_t n = 0;
        if (buffer.size() > 0) {
            // Body bytes that came with the header first.
            n = std::min(want, buffer.size());
            std::memcpy(into, buffer.data().data(), n);
            buffer.consume(n);
        } else {
            std::tie(read_error, n) = co_await fill(stream, into, want, stall);
        }
        if (n > 0) co_await async_throttle(rate, n);
        write_error = co_await end_store(writing);
        if (n > 0 && write_error == 0) {
            start_store(writing, blocking, store_job{&hash, fd, into, n, at});
            at += n;
            received += n;
            next ^= 1;
            listener.on_bytes(n);
        }
        if (read_error) break;
    }
    if (const int e = co_await end_store(writing); write_error == 0) write_error = e;
    if (write_error != 0) {
        out.received = received;
        out.status = piece_status::io_error;
        out.message = "cannot write the file: " + errno_text(write_error);
        out.keep_alive = false;
        co_return out;
    }
    // A piece that arrived whole is checked even if `stop` came with its last bytes.
    if (received < request.length) {
        co_return body_broken_off(std::move(out), read_error, stop, received, request.length);
    }
    out.received = received;
    digest got;
    hash.digest_into(got.data());
    if (got != request.expected) {
        out.status = piece_status::bad_piece;
        out.message = "the bytes do not hash to the piece's SHA-256";
        co_return out;
    }
    out.status = piece_status::verified;
    co_return out;
}

} // namespace p2pshare::detail
