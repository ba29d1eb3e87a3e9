#include "file_server.hpp"

#include "../tls.hpp"

#include "../blocking.hpp"
#include "../query.hpp"
#include "../status_pages.hpp"

#include <p2pshare/names.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace p2pshare::detail {

namespace {

/// Bodies up to this size are read and sent with their header; larger ones use sendfile(2).
constexpr std::uint64_t small_body = 16 * 1024;
/// Bytes of a file body per sendfile(2) call; the peer's other work runs between two calls.
constexpr std::uint64_t send_chunk = 512 * 1024;

/// Whether every page of [offset, offset + length) of `fd` is in the page cache, so that
/// reading it cannot wait for the disk.
bool in_page_cache(int fd, std::uint64_t offset, std::size_t length) {
    static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const auto first = offset / page * page;
    const auto span = static_cast<std::size_t>(offset + length - first);
    void* map = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(first));
    if (map == MAP_FAILED) return false;
    std::vector<unsigned char> pages((span + page - 1) / page);
    bool all = ::mincore(map, span, pages.data()) == 0;
    for (std::size_t i = 0; all && i < pages.size(); ++i)
        all = (pages[i] & 1) != 0;
    ::munmap(map, span);
    return all;
}

/// pread of the whole of `size` bytes; false when the file is shorter or cannot be read.
bool read_exactly(int fd, char* data, std::size_t size, std::uint64_t offset) {
    std::size_t got = 0;
    while (got < size) {
        const auto n = ::pread(fd, data + got, size - got, static_cast<off_t>(offset + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += static_cast<std::size_t>(n);
    }
    return true;
}

/// What one sendfile(2) call did: bytes sent, or the errno of its failure.
struct sent {
    ssize_t n = 0;
    int error = 0;
};

sent send_some(int socket, int fd, std::uint64_t offset, std::size_t length) {
    auto at = static_cast<off_t>(offset);
    for (;;) {
        const auto n = ::sendfile(socket, fd, &at, length);
        if (n < 0 && errno == EINTR) continue;
        return {n, n < 0 ? errno : 0};
    }
}

/// Bytes [at, at + want) of a file, read where they may not be in the page cache; "" when the
/// file is shorter.
std::string read_cold(const std::shared_ptr<unique_fd>& fd, std::uint64_t at, std::size_t want) {
    std::string bytes(want, '\0');
    if (!read_exactly(fd->get(), bytes.data(), want, at)) bytes.clear();
    return bytes;
}

sent send_cold(const std::shared_ptr<unique_fd>& socket, const std::shared_ptr<unique_fd>& fd,
               std::uint64_t offset, std::size_t length) {
    return send_some(socket->get(), fd->get(), offset, length);
}

std::string files_json(std::uint32_t id, const std::vector<file_entry>& files) {
    boost::json::object o;
    o["id"] = id;
    auto& array = o["files"].emplace_array();
    for (const auto& f : files)
        array.emplace_back(encode_file(f));
    return boost::json::serialize(o);
}

/// 412 for a request whose If-Match names another version of `name` than `etag`; returns
/// whether the connection stays open.
asio::awaitable<bool> refuse_other_version(request& req, connection& conn, const std::string& name,
                                           const std::string& etag) {
    auto res = error_response(req, errc::precondition_failed,
                              name + " is no longer the version If-Match names");
    res.set(http::field::etag, etag);
    const bool ok = co_await conn.write(res);
    co_return ok&& res.keep_alive();
}

} // namespace

file_server::file_server(asio::any_io_executor executor, asio::any_io_executor blocking,
                         std::shared_ptr<shared_folder> folder, std::uint32_t id,
                         ServerLimits limits, std::function<health()> status, std::string log_name,
                         std::uint64_t max_upload_rate, std::shared_ptr<peer_metrics> metrics)
    : executor_(std::move(executor)),
      blocking_(std::move(blocking)),
      upload_(max_upload_rate),
      folder_(std::move(folder)),
      id_(id),
      limits_(limits),
      status_(std::move(status)),
      log_name_(std::move(log_name)),
      metrics_(metrics ? std::move(metrics) : std::make_shared<peer_metrics>()) {}

boost::system::error_code file_server::listen(const std::string& host, std::uint16_t port,
                                              std::shared_ptr<const tls_server_context> tls) {
    std::weak_ptr<file_server> weak = shared_from_this();
    server_ = std::make_shared<http_server>(
        executor_, limits_,
        // Not a coroutine: it hands the request to handle(), which keeps the server alive.
        [weak](request& req, connection& conn) -> asio::awaitable<bool> {
            auto self = weak.lock();
            if (!self) return refuse_request(req, conn, errc::shutting_down, "the peer stopped");
            auto* const server = self.get();
            return [](std::shared_ptr<file_server> keep, file_server* s, request& r,
                      connection& c) -> asio::awaitable<bool> {
                (void)keep;
                co_return co_await s->handle(r, c);
            }(std::move(self), server, req, conn);
        },
        log_name_);
    server_->count_connections_in(&metrics_->connections, metrics_);
    if (tls) server_->use_tls(std::move(tls));
    return server_->listen(host, port);
}

void file_server::start() { server_->start(); }

asio::awaitable<void> file_server::async_stop() {
    if (server_) co_await server_->async_stop();
}

void file_server::cancel() {
    if (server_) server_->cancel();
}

asio::awaitable<bool> file_server::handle(request& req, connection& conn) {
    const auto method = req.method();
    const bool is_get = method == http::verb::get || method == http::verb::head;
    const auto t = parse_target(req.target());
    const auto not_allowed = [&] {
        auto res = error_response(
            req, errc::method_not_allowed,
            std::string(req.method_string()) + " is not allowed here; use GET or HEAD");
        res.set(http::field::allow, "GET, HEAD");
        return res;
    };
    response res;
    if (!t) {
        res = error_response(req, errc::bad_request, "malformed request target");
    } else if (t->segments.size() == 3 && t->segments[0] == "v1" && t->segments[1] == "files") {
        if (!is_get) {
            res = not_allowed();
        } else {
            // Counted as it ends, whichever way it ends (the coroutine may be destroyed).
            struct upload {
                peer_metrics& m;
                const connection& c;
                explicit upload(peer_metrics& x, const connection& y) : m(x), c(y) {
                    m.uploads.add();
                    m.uploads_in_flight.add(1);
                }
                ~upload() {
                    m.uploads_in_flight.add(-1);
                    m.sent_bytes.add(c.bytes_sent);
                }
                upload(const upload&) = delete;
                upload& operator=(const upload&) = delete;
            } counted{*metrics_, conn};
            co_return co_await serve_file(req, conn, t->segments[2]);
        }
    } else if (t->segments.size() == 3 && t->segments[0] == "v1" && t->segments[1] == "pieces") {
        if (!is_get) {
            res = not_allowed();
        } else {
            co_return co_await serve_pieces(req, conn, t->segments[2]);
        }
    } else if (t->segments == std::vector<std::string>{"v1", "files"}) {
        res = is_get ? json_response(req, http::status::ok, files_json(id_, folder_->offered()))
                     : not_allowed();
    } else if (t->segments == std::vector<std::string>{""}) {
        if (is_get) {
            res = page_response(req, peer_status_page());
        } else {
            res = not_allowed();
        }
    } else if (t->segments == std::vector<std::string>{"metrics"}) {
        res = is_get ? metrics_response(req) : not_allowed();
    } else if (t->segments == std::vector<std::string>{"v1", "health"}) {
        if (is_get) {
            const auto s = status_();
            boost::json::object o;
            o["status"] = s.stopping ? "stopping" : "ok";
            o["id"] = id_;
            o["files"] = folder_->offered().size();
            o["hashing"] = folder_->backlog();
            o["hashed_bytes"] = folder_->hashed_bytes();
            o["registered"] = s.registered;
            o["idle_connections"] = s.idle_connections;
            o["index"] = s.index;
            o["lease_ttl_ms"] = s.lease_ttl.count();
            o["uploads"] = metrics_->uploads_in_flight.value();
            o["downloads"] = metrics_->downloads_in_flight.value();
            o["sent_bytes"] = metrics_->sent_bytes.value();
            o["received_bytes"] = metrics_->received_bytes.value();
            // Each transfer in flight (the first 100), with its progress.
            auto& list = o["transfers"].emplace_array();
            for (const auto& e : metrics_->transfers.entries) {
                if (list.size() == 100) break;
                boost::json::object one;
                one["direction"] = e.upload ? "upload" : "download";
                one["name"] = e.name;
                one["size"] = e.total;
                one["done"] = e.sent != nullptr ? std::min(*e.sent, e.total) : e.done;
                if (e.upload) {
                    one["peer"] = e.peer.to_string();
                } else {
                    one["sources"] = e.sources;
                }
                list.emplace_back(std::move(one));
            }
            res = json_response(req, http::status::ok, boost::json::serialize(o));
        } else {
            res = not_allowed();
        }
    } else {
        res = error_response(req, errc::not_found, "no such path: " + std::string(req.target()));
    }
    const bool ok = co_await conn.write(res);
    co_return ok&& res.keep_alive();
}

response file_server::metrics_response(const request& req) const {
    const auto& x = *metrics_;
    const auto s = status_();
    std::string body;
    body.reserve(4096);
    metrics_text m(body);
    const auto one = [&m](std::string_view name, std::string_view type, std::string_view help,
                          auto value) {
        m.family(name, type, help);
        m.sample(name, "", value);
    };
    one("p2pshare_peer_sent_bytes_total", "counter",
        "Bytes of file answers sent to other peers (headers and bodies), added as each ends.",
        x.sent_bytes.value());
    one("p2pshare_peer_received_bytes_total", "counter",
        "Piece bytes received from other peers, added as each download ends.",
        x.received_bytes.value());
    one("p2pshare_peer_uploads_total", "counter", "File answers (GET or HEAD of a shared file).",
        x.uploads.value());
    one("p2pshare_peer_uploads_in_flight", "gauge", "File answers being sent.",
        x.uploads_in_flight.value());
    one("p2pshare_peer_downloads_in_flight", "gauge", "Downloads running.",
        x.downloads_in_flight.value());
    m.family("p2pshare_peer_downloads_total", "counter", "Downloads ended, by outcome.");
    m.sample("p2pshare_peer_downloads_total", label("outcome", "ok"), x.downloads_ok.value());
    m.sample("p2pshare_peer_downloads_total", label("outcome", "failed"),
             x.downloads_failed.value());
    one("p2pshare_peer_pieces_verified_total", "counter",
        "Pieces received that hashed right (added as each download ends).",
        x.pieces_verified.value());
    one("p2pshare_peer_pieces_failed_total", "counter",
        "Pieces received that failed their hash (added as each download ends).",
        x.pieces_failed.value());
    one("p2pshare_peer_sources_banned_total", "counter",
        "Sources banned for a file: a bad piece, or piece hashes that do not make the root.",
        x.sources_banned.value());
    m.family("p2pshare_peer_body_bytes_total", "counter",
             "Body bytes of large file answers, by how they were sent: sendfile(2) on plain TCP, "
             "SSL_sendfile through kernel TLS, or read and encrypted by OpenSSL.");
    m.sample("p2pshare_peer_body_bytes_total", label("path", "sendfile"), x.body_sendfile.value());
    m.sample("p2pshare_peer_body_bytes_total", label("path", "kernel_tls"),
             x.body_kernel_tls.value());
    m.sample("p2pshare_peer_body_bytes_total", label("path", "tls_copy"), x.body_tls_copy.value());
    one("p2pshare_peer_shared_files", "gauge", "Files offered to the network.",
        static_cast<std::uint64_t>(folder_->offered().size()));
    one("p2pshare_peer_hashing_backlog", "gauge",
        "Files waiting to be hashed before they are offered.",
        static_cast<std::uint64_t>(folder_->backlog()));
    one("p2pshare_peer_registered", "gauge", "1 while the peer holds a lease at an index server.",
        std::uint64_t{s.registered ? 1u : 0u});
    one("p2pshare_peer_index_renewals_total", "counter", "Lease renewals the index accepted.",
        x.renewals.value());
    one("p2pshare_peer_index_failures_total", "counter",
        "Calls to the index server that failed (registration, renewal, file list).",
        x.index_failures.value());
    one("p2pshare_peer_connections_open", "gauge", "Connections to this peer's file server.",
        x.connections.open.value());
    one("p2pshare_peer_connections_refused_total", "counter",
        "Connections refused at the connection limit.", x.connections.refused.value());
    one("p2pshare_peer_source_connections_idle", "gauge",
        "Keep-alive connections to sources, kept for the next downloads.",
        static_cast<std::uint64_t>(s.idle_connections));
    response res{http::status::ok, req.version(), req.keep_alive()};
    res.content_type(metrics_content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

asio::awaitable<api_result<file_server::opened_file>> file_server::open_shared(
    const std::string& name) {
    if (const auto problem = file_name_problem(name); !problem.empty()) {
        co_return fail(errc::bad_name, std::string(problem));
    }
    const auto* cached = folder_->find(name);
    if (cached == nullptr) co_return fail(errc::not_found, name + " is not shared here");
    // openat + O_NOFOLLOW on the folder's descriptor: a name is looked up in this folder only,
    // and a symlink put in place of a shared file is refused. O_NONBLOCK: a FIFO or a device
    // swapped in is never waited on; fstat of the opened descriptor then refuses it.
    opened_file out;
    out.fd = std::make_shared<unique_fd>(
        ::openat(folder_->dir(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!*out.fd || ::fstat(out.fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        co_return fail(errc::not_found, name + " is not shared here");
    }
    out.size = static_cast<std::uint64_t>(st.st_size);
    if (stamp_of(st) == cached->stamp) {
        out.sha256 = cached->sha256;
        out.pieces = cached->pieces;
        co_return out;
    }
    // Changed by hand since it was hashed: hash it again before announcing an ETag.
    auto hashed = co_await folder_->async_rehash(name, out.fd, stamp_of(st));
    if (!hashed) co_return hashed.error();
    out.sha256 = std::move(hashed->sha256);
    out.pieces = std::move(hashed->pieces);
    co_return out;
}

asio::awaitable<bool> file_server::serve_pieces(request& req, connection& conn,
                                                const std::string& name) {
    auto file = co_await open_shared(name);
    if (file && !file->pieces) {
        file = fail(errc::not_found, "the piece hashes of " + name + " are not known yet");
    }
    if (!file) {
        auto res = error_response(req, file.error().code, std::move(file.error().message));
        const bool ok = co_await conn.write(res);
        co_return ok&& res.keep_alive();
    }
    const std::string etag = "\"" + file->sha256 + "\"";
    if (!if_match_allows(req[http::field::if_match], etag)) {
        co_return co_await refuse_other_version(req, conn, name, etag);
    }
    response res{http::status::ok, req.version(), req.keep_alive()};
    res.content_type("application/octet-stream");
    res.set(http::field::etag, etag);
    const auto& pieces = *file->pieces;
    res.body().assign(reinterpret_cast<const char*>(pieces.data()), pieces.size() * 32);
    const bool ok = co_await conn.write(res);
    co_return ok&& res.keep_alive();
}

asio::awaitable<bool> file_server::serve_file(request& req, connection& conn,
                                              const std::string& name) {
    auto file = co_await open_shared(name);
    if (!file) {
        auto res = error_response(req, file.error().code, std::move(file.error().message));
        const bool ok = co_await conn.write(res);
        co_return ok&& res.keep_alive();
    }
    const auto fd = file->fd;
    const std::string etag = "\"" + file->sha256 + "\"";
    // If-Match before Range (RFC 9110 13.2.2): a client that fetches pieces of one version never
    // gets bytes of another.
    if (!if_match_allows(req[http::field::if_match], etag)) {
        co_return co_await refuse_other_version(req, conn, name, etag);
    }
    const auto size = file->size;
    std::uint64_t first = 0;
    std::uint64_t length = size;
    bool partial = false;
    const auto range_header = req[http::field::range];
    const auto if_range = req[http::field::if_range];
    if (!range_header.empty() && (if_range.empty() || if_range == etag)) {
        auto range = parse_range(range_header, size);
        if (!range) {
            auto res = error_response(req, errc::bad_range, range.error().message);
            res.set(http::field::content_range, "bytes */" + std::to_string(size));
            const bool ok = co_await conn.write(res);
            co_return ok&& res.keep_alive();
        }
        if (*range) {
            partial = true;
            first = (*range)->first;
            length = (*range)->length();
        }
    }
    const auto status = partial ? http::status::partial_content : http::status::ok;
    response res{status, req.version(), req.keep_alive()};
    res.content_type("application/octet-stream");
    res.set(http::field::accept_ranges, "bytes");
    res.set(http::field::etag, etag);
    if (partial) {
        res.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                                std::to_string(first + length - 1) + "/" +
                                                std::to_string(size));
    }
    if (length <= small_body && req.method() == http::verb::get) {
        // A small body goes out with its header in one write: one packet, no sendfile call.
        // From the page cache at once (RWF_NOWAIT); what is not there is read on the blocking
        // executor.
        auto& body = res.body();
        body.resize(static_cast<std::size_t>(length));
        iovec io{body.data(), body.size()};
        auto n =
            body.empty() ? 0 : ::preadv2(fd->get(), &io, 1, static_cast<off_t>(first), RWF_NOWAIT);
        if (n < 0 && errno == EOPNOTSUPP && on_memory_fs(fd->get())) {
            // tmpfs takes no RWF_NOWAIT, and needs none: nothing there waits for a disk.
            n = read_exactly(fd->get(), body.data(), body.size(), first)
                    ? static_cast<ssize_t>(body.size())
                    : 0;
        }
        if (n < 0) n = 0;
        if (static_cast<std::size_t>(n) < body.size()) {
            auto rest = co_await run_blocking(blocking_, &read_cold, fd,
                                              first + static_cast<std::uint64_t>(n),
                                              body.size() - static_cast<std::size_t>(n));
            // The file shrank under us: close rather than lie.
            if (rest.size() != body.size() - static_cast<std::size_t>(n)) co_return false;
            std::copy(rest.begin(), rest.end(), body.begin() + n);
        }
        co_await async_throttle(&upload_, length);
        const bool ok = co_await conn.write(res);
        co_return ok&& res.keep_alive();
    }
    // The header is held back (MSG_MORE) so that it leaves with the first bytes of the body.
    const bool is_head = req.method() == http::verb::head;
    if (!co_await conn.write_head(res, length, !is_head && length > 0)) co_return false;
    if (is_head) co_return res.keep_alive();
    // A large body is on the status page while it is sent (a small one leaves in one write:
    // listing it would only cost). bytes_sent counts the header too.
    const transfer_board::listed shown(
        metrics_->transfers,
        transfer_board::entry{true, name, conn.remote().address(), 0, length, 0, &conn.bytes_sent});
    if (conn.tls() != nullptr)
        co_return co_await send_tls_body(conn, fd, first, length) && res.keep_alive();

    // The body goes from the page cache to the socket with sendfile(2) in steps of send_chunk;
    // when the socket is full, wait until it is writable again, under the progress deadline.
    // Between two steps the peer's other work runs. A step whose bytes are not all in the page
    // cache is sent from the blocking executor (on a duplicate of the socket's descriptor, so
    // that a connection closed meanwhile cannot hand its number to another file).
    auto& socket = conn.socket();
    boost::system::error_code ignored;
    socket.native_non_blocking(true, ignored);
    std::uint64_t offset = first;
    std::uint64_t left = length;
    const bool in_memory = on_memory_fs(fd->get()); // tmpfs: nothing to check
    while (left > 0) {
        const auto chunk = static_cast<std::size_t>(std::min(left, upload_.step(send_chunk)));
        sent s;
        if (in_memory || in_page_cache(fd->get(), offset, chunk)) {
            s = send_some(socket.native_handle(), fd->get(), offset, chunk);
        } else {
            unique_fd copy(::dup(socket.native_handle()));
            if (!copy) co_return false;
            s = co_await run_blocking(blocking_, &send_cold,
                                      std::make_shared<unique_fd>(std::move(copy)), fd, offset,
                                      chunk);
        }
        if (s.n > 0) {
            metrics_->body_sendfile.add(static_cast<std::uint64_t>(s.n));
            left -= static_cast<std::uint64_t>(s.n);
            offset += static_cast<std::uint64_t>(s.n);
            conn.progressed(static_cast<std::size_t>(s.n));
            if (upload_.limited()) {
                co_await async_throttle(&upload_, static_cast<std::uint64_t>(s.n));
            } else if (left > 0) {
                co_await asio::post(asio::use_awaitable);
            }
            continue;
        }
        if (s.n == 0) co_return false; // the file shrank: the client sees a short body
        if (s.error != EAGAIN) co_return false;
        if (!co_await conn.wait_writable()) co_return false;
    }
    co_return res.keep_alive();
}

asio::awaitable<bool> file_server::send_tls_body(connection& conn, std::shared_ptr<unique_fd> fd,
                                                 std::uint64_t first, std::uint64_t length) {
    auto& tls = *conn.tls();
    std::uint64_t offset = first;
    std::uint64_t left = length;
    const bool in_memory = on_memory_fs(fd->get());
    if (tls.kernel_send()) {
        while (left > 0) {
            const auto chunk = static_cast<std::size_t>(std::min(left, upload_.step(send_chunk)));
            const auto r = tls.sendfile(fd->get(), offset, chunk);
            if (r.st == tls_stream::status::done) {
                if (r.n == 0) co_return false; // the file shrank
                metrics_->body_kernel_tls.add(r.n);
                left -= r.n;
                offset += r.n;
                conn.progressed(r.n);
                if (upload_.limited()) {
                    co_await async_throttle(&upload_, r.n);
                } else if (left > 0) {
                    co_await asio::post(asio::use_awaitable);
                }
                continue;
            }
            if (r.st != tls_stream::status::want_write) co_return false;
            if (!co_await conn.wait_writable()) co_return false;
        }
        co_return true;
    }
    // OpenSSL encrypts from memory: a step is read (from the blocking executor when it may wait
    // for the disk), then sent.
    std::string bytes;
    while (left > 0) {
        const auto chunk = static_cast<std::size_t>(std::min(left, upload_.step(send_chunk)));
        if (in_memory || in_page_cache(fd->get(), offset, chunk)) {
            bytes.resize(chunk);
            if (!read_exactly(fd->get(), bytes.data(), chunk, offset)) co_return false;
        } else {
            bytes = co_await run_blocking(blocking_, &read_cold, fd, offset, chunk);
            if (bytes.size() != chunk) co_return false;
        }
        if (!co_await conn.send_body(bytes.data(), chunk)) co_return false;
        metrics_->body_tls_copy.add(chunk);
        left -= chunk;
        offset += chunk;
        if (upload_.limited()) co_await async_throttle(&upload_, chunk);
    }
    co_return true;
}

} // namespace p2pshare::detail
