#include <p2pshare/error.hpp>
#include <p2pshare/file_transfer.hpp>
#include <p2pshare/names.hpp>

#include "blocking.hpp"
#include "http_client.hpp"
#include "protocol.hpp"
#include "run_on.hpp"
#include "sha256.hpp"
#include "support.hpp"
#include "transfer_body.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace p2pshare {

using namespace detail;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// NAME.part, or for a name too long for that, a shortened name made unique by a hash of the
/// name (so that a later run finds it again to resume).
std::string part_name(const std::string& name) {
    if (name.size() + part_suffix.size() <= max_name_length) return name + std::string(part_suffix);
    const auto tag = "~" + sha256_hex(name).substr(0, 16);
    return name.substr(0, max_name_length - part_suffix.size() - tag.size()) + tag +
           std::string(part_suffix);
}

std::mt19937_64& rng() {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    return engine;
}

/// Fetches bytes [offset, size) of `name` from `src` into `fd`, hashing the whole file.
asio::awaitable<attempt> fetch(asio::any_io_executor executor, const TransferOptions& options,
                               const asio::cancellation_state& cancel, const std::string& name,
                               const FileSource& src, int fd, std::uint64_t offset,
                               std::vector<char>& buffer) {
    attempt out;
    sha256 hash;
    if (offset == src.size) { // a complete .part from an earlier run: only verify it
        if (!co_await read_back(*options.blocking_executor, fd, 0, offset, hash, buffer)) {
            co_return failed(errc::io_error, "cannot read the partial file back");
        }
        out.kept = offset;
        out.digest = hash.hex_digest();
        co_return out;
    }
    auto connected = co_await async_connect(executor, src.host, src.port, options.connect_timeout);
    if (!connected) {
        co_return failed(errc::unreachable, "cannot connect: " + connected.error().message());
    }
    beast::tcp_stream stream(std::move(*connected));
    client_request req{http::verb::get, "/v1/files/" + percent_encode(name), 11};
    req.set(http::field::host, src.host);
    req.set(http::field::user_agent, "p2pshare");
    if (offset > 0) {
        // The rest of this version only: a source that has another one answers 200 with it.
        req.set(http::field::range, "bytes=" + std::to_string(offset) + "-");
        req.set(http::field::if_range, "\"" + src.sha256 + "\"");
    }
    req.keep_alive(false);
    stream.expires_after(options.stall_timeout);
    if (auto [ec, n] = co_await http::async_write(stream, req, use_tuple); ec) {
        co_return failed(errc::unreachable, "cannot send the request: " + ec.message());
    }
    beast::flat_buffer read_buffer;
    http::response_parser<http::empty_body> parser;
    parser.body_limit(boost::none);
    if (auto [ec, n] = co_await http::async_read_header(stream, read_buffer, parser, use_tuple);
        ec) {
        co_return failed(ec == beast::error::timeout ? errc::timeout : errc::bad_response,
                         "no valid response header: " + ec.message());
    }
    const auto& res = parser.get();
    const auto status = res.result_int();
    if (status == 200 && offset > 0) {
        // The source ignored the range: take the whole file again (the kept bytes are dropped
        // below, once the answer proved valid).
        offset = 0;
    } else if (status == 206) {
        std::uint64_t first = 0;
        std::uint64_t last = 0;
        std::uint64_t total = 0;
        if (!parse_content_range(res[http::field::content_range], first, last, total) ||
            first != offset || last + 1 != src.size || total != src.size) {
            co_return failed(
                errc::bad_response,
                "unexpected Content-Range '" + std::string(res[http::field::content_range]) + "'");
        }
    } else if (status != 200) {
        co_return failed(status == 404 ? errc::not_found : errc::bad_response,
                         "the source answered " + std::to_string(status));
    }
    const auto etag = res[http::field::etag];
    if (!etag.empty() && etag != "\"" + src.sha256 + "\"") {
        co_return failed(errc::hash_mismatch, "the source now has another version of the file");
    }
    const auto expected = src.size - offset;
    const auto length = parser.content_length();
    if (!length || *length != expected) {
        co_return failed(errc::size_mismatch, "the source announced " +
                                                  (length ? std::to_string(*length) : "no") +
                                                  " bytes instead of " + std::to_string(expected));
    }
    // Drop whatever lies beyond the kept bytes, but only when there is something: on ext4 a
    // truncation to size 0, even of an empty file, marks the file to be written out at close
    // (auto_da_alloc), which would put a synchronous writeback on this thread at the end of
    // every download from the start.
    struct stat st {};
    if (::fstat(fd, &st) != 0) co_return failed(errc::io_error, errno_text(errno));
    if (static_cast<std::uint64_t>(st.st_size) != offset &&
        ::ftruncate(fd, static_cast<off_t>(offset)) != 0) {
        co_return failed(errc::io_error, errno_text(errno));
    }
    out.kept = offset;
    if (!co_await read_back(*options.blocking_executor, fd, 0, offset, hash, buffer)) {
        co_return failed(errc::io_error, "cannot read the partial file back");
    }
    std::uint64_t position = offset;
    std::uint64_t reported = position;
    TransferProgress progress{name, position, src.size, src.peer,
                              src.host + ":" + std::to_string(src.port)};
    if (options.on_progress) options.on_progress(progress);
    // Bytes of the body that came with the header are written first; the rest then goes
    // through splice(2) or through buffers (below), each wait under the stall deadline.
    const auto keep = [&](const char* data, std::size_t n) -> bool {
        int error = 0;
        if (!write_all(fd, data, n, position, error)) {
            out = failed(errc::io_error, "cannot write the file: " + errno_text(error));
            return false;
        }
        hash.update(data, n);
        position += n;
        if (options.on_progress && (position - reported >= 64 * 1024 || position == src.size)) {
            reported = position;
            progress.done = position;
            options.on_progress(progress);
        }
        return true;
    };
    if (read_buffer.size() > 0) {
        const auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(read_buffer.size(), src.size - position));
        if (!keep(static_cast<const char*>(read_buffer.data().data()), n)) {
            out.received = position - offset;
            co_return out;
        }
        read_buffer.consume(read_buffer.size());
    }
    // Then the body goes through splice(2) where the system allows.
    if (position < src.size && options.zero_copy) {
        auto body = co_await splice_body(stream.socket(), options, cancel, fd, src.size, position,
                                         hash, buffer, progress, reported);
        if (body.error) {
            body.received = position - offset;
            co_return body;
        }
    }
    // Where splice(2) is not available, a pipeline: while chunk k is written and hashed on the
    // disk thread, chunk k+1 is received, so hashing costs no receive time. Two buffers
    // alternate.
    std::vector<char> second(position < src.size ? buffer.size() : 0);
    char* chunks[2] = {buffer.data(), second.data()};
    int next = 0;
    const char* stored_data = nullptr; // the chunk being written and hashed, if any
    std::size_t stored_size = 0;
    std::uint64_t received = position;
    const auto store = [&hash, fd, &options](const char* data, std::size_t n, std::uint64_t at) {
        return asio::co_spawn(
            *options.blocking_executor,
            [&hash, fd, data, n, at]() -> asio::awaitable<int> {
                int error = 0;
                if (!write_all(fd, data, n, at, error)) co_return error;
                hash.update(data, n);
                co_return 0;
            },
            blocking_token());
    };
    const auto stored = [&](int error) -> bool {
        if (error != 0) {
            out = failed(errc::io_error, "cannot write the file: " + errno_text(error));
            return false;
        }
        position += stored_size;
        stored_size = 0;
        if (options.on_progress && (position - reported >= 64 * 1024 || position == src.size)) {
            reported = position;
            progress.done = position;
            options.on_progress(progress);
        }
        return true;
    };
    while (received < src.size) {
        if (cancelled(cancel)) {
            out = failed(errc::timeout, "cancelled");
            break;
        }
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), src.size - received));
        char* into = chunks[next];
        boost::system::error_code ec;
        std::size_t n = 0;
        if (stored_size > 0) {
            // (&& flattens the results: the read's error and size, then the store's errno)
            auto [read_error, read_size, error] =
                co_await (fill(stream, into, want, options.stall_timeout) &&
                          store(stored_data, stored_size, position));
            ec = read_error;
            n = read_size;
            if (!stored(error)) break;
        } else {
            std::tie(ec, n) = co_await fill(stream, into, want, options.stall_timeout);
        }
        if (n > 0) {
            stored_data = into;
            stored_size = n;
            received += n;
            next ^= 1;
        }
        if (ec) {
            if (stored_size > 0) stored(co_await store(stored_data, stored_size, position));
            out = failed(ec == beast::error::timeout ? errc::timeout : errc::size_mismatch,
                         "the transfer stopped after " + std::to_string(position) + " of " +
                             std::to_string(src.size) + " bytes: " + ec.message());
            break;
        }
    }
    if (out.error) {
        out.received = position - offset;
        co_return out;
    }
    if (stored_size > 0 && !stored(co_await store(stored_data, stored_size, position))) {
        out.received = position - offset;
        co_return out;
    }
    out.received = position - offset;
    if (position != src.size) {
        co_return failed(errc::size_mismatch, "received " + std::to_string(position) + " of " +
                                                  std::to_string(src.size) + " bytes");
    }
    out.digest = hash.hex_digest();
    co_return out;
}

} // namespace

FileTransfer::FileTransfer(asio::any_io_executor executor, std::filesystem::path folder,
                           TransferOptions options)
    : executor_(std::move(executor)), folder_(std::move(folder)), options_(std::move(options)) {
    prepare_openssl();
    if (!options_.blocking_executor) options_.blocking_executor = default_blocking_executor();
}

asio::awaitable<TransferResult> FileTransfer::async_download(std::string name,
                                                             std::vector<FileSource> sources) {
    // Every step of the download and the hashing beside it (which share state) run on the
    // transfer's executor, which is serial. Cancelled, it ends with operation_aborted (the .part
    // stays, for a later resume).
    co_return co_await run_on(executor_, download(std::move(name), std::move(sources)));
}

asio::awaitable<TransferResult> FileTransfer::download(std::string name,
                                                       std::vector<FileSource> sources) {
    // Cancellation is seen as errors of the steps (checked between sources), not exceptions:
    // every step, and the hashing beside it, ends before the download does.
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto cancel = co_await asio::this_coro::cancellation_state;
    const auto started = std::chrono::steady_clock::now();
    TransferResult r;
    r.name = name;
    const auto finish = [&](errc code, std::string message) {
        r.error = make_error_code(code);
        r.message = std::move(message);
        r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        return r;
    };
    if (const auto problem = file_name_problem(name); !problem.empty()) {
        co_return finish(errc::bad_name, std::string(problem));
    }
    if (sources.empty()) co_return finish(errc::no_sources, "no peer shares " + name);

    unique_fd dir(::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        co_return finish(errc::io_error,
                         "cannot open the folder " + folder_.string() + ": " + errno_text(errno));
    }
    struct stat st {};
    if (!options_.overwrite && ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        co_return finish(errc::exists, name + " already exists in " + folder_.string());
    }
    const std::string part = part_name(name);
    unique_fd fd(
        ::openat(dir.get(), part.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) co_return finish(errc::io_error, "cannot open " + part + ": " + errno_text(errno));
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        co_return finish(errc::io_error, part + " is not a regular file");
    }
    // One download of a name at a time, in this process or any other.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        co_return finish(errc::exists, name + " is being downloaded already");
    }
    const auto source_count = sources.size();

    std::shuffle(sources.begin(), sources.end(), rng());
    // No larger than the file: a small download neither allocates nor clears a whole buffer.
    std::uint64_t largest = 0;
    for (const auto& src : sources)
        largest = std::max(largest, src.size);
    const std::size_t most = std::max<std::size_t>(options_.buffer_size, 16 * 1024);
    std::vector<char> buffer(
        static_cast<std::size_t>(std::clamp<std::uint64_t>(largest, 16 * 1024, most)));
    std::string failures;
    errc last_error = errc::all_sources_failed;
    for (std::size_t i = 0; i < sources.size(); ++i) {
        const auto& src = sources[i];
        ++r.attempts;
        if (::fstat(fd.get(), &st) != 0) co_return finish(errc::io_error, errno_text(errno));
        auto offset = static_cast<std::uint64_t>(st.st_size);
        if (offset > src.size) {
            if (::ftruncate(fd.get(), 0) != 0) co_return finish(errc::io_error, errno_text(errno));
            offset = 0;
        }
        const auto where = to_string(ServerAddress{src.host, src.port});
        auto a = co_await fetch(executor_, options_, cancel, name, src, fd.get(), offset, buffer);
        r.received += a.received;
        // Cancelled: the step in flight ended with an error and fetch waited for the hashing
        // beside it, so the .part is closed and unlocked when this returns.
        if (cancelled(cancel)) {
            r.error = asio::error::operation_aborted;
            r.message = "the download was cancelled";
            r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - started);
            co_return r;
        }
        if (!a.error && a.digest != src.sha256) {
            // Corrupt bytes: nothing of this .part can be trusted any more.
            if (::ftruncate(fd.get(), 0) != 0) co_return finish(errc::io_error, errno_text(errno));
            a.error = make_error_code(errc::hash_mismatch);
            a.message = "the received bytes do not have the announced SHA-256";
            if (a.kept > 0) {
                // The kept prefix may have been the culprit: give this source one clean try.
                log().info("{}: resumed file failed verification; restarting from {}", name, where);
                sources.insert(sources.begin() + static_cast<std::ptrdiff_t>(i) + 1, src);
                continue;
            }
        }
        if (a.error) {
            log().info("{}: source {} (peer {}) failed: {}", name, where, src.peer, a.message);
            failures += (failures.empty() ? "" : "; ") + where + ": " + a.message;
            last_error = static_cast<errc>(a.error.value());
            continue;
        }
        // Verified: move into place without ever replacing a file unless asked to.
        int rc = 0;
        if (options_.overwrite) {
            rc = ::renameat(dir.get(), part.c_str(), dir.get(), name.c_str());
        } else {
            rc = ::linkat(dir.get(), part.c_str(), dir.get(), name.c_str(), 0);
            if (rc == 0) ::unlinkat(dir.get(), part.c_str(), 0);
        }
        if (rc != 0) {
            const int e = errno;
            co_return finish(e == EEXIST ? errc::exists : errc::io_error,
                             "cannot move " + part + " into place: " + errno_text(e));
        }
        r.size = src.size;
        r.resumed_from = a.kept;
        r.source_peer = src.peer;
        r.source = where;
        r.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        co_return r;
    }
    co_return finish(source_count == 1 ? last_error : errc::all_sources_failed,
                     "every source failed: " + failures);
}

} // namespace p2pshare
