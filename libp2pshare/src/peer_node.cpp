#include <p2pshare/error.hpp>
#include <p2pshare/names.hpp>
#include <p2pshare/peer_node.hpp>

#include "async_mutex.hpp"
#include "http_client.hpp"
#include "http_server.hpp"
#include "protocol.hpp"
#include "query.hpp"
#include "sha256.hpp"
#include "support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>

namespace p2pshare {

using namespace detail;

std::string_view to_string(DownloadOutcome::status s) noexcept {
    switch (s) {
        case DownloadOutcome::status::downloaded:
            return "downloaded";
        case DownloadOutcome::status::not_found:
            return "not_found";
        case DownloadOutcome::status::failed:
            return "failed";
    }
    return "failed";
}

std::string_view to_string(DeleteOutcome::status s) noexcept {
    switch (s) {
        case DeleteOutcome::status::deleted:
            return "deleted";
        case DeleteOutcome::status::not_found:
            return "not_found";
        case DeleteOutcome::status::failed:
            return "failed";
    }
    return "failed";
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using clock = std::chrono::steady_clock;

/// Bodies up to this size are read and sent with their header; larger ones use sendfile(2).
constexpr std::uint64_t small_body = 16 * 1024;
/// Bytes of a file body per sendfile(2) call; the peer's other work runs between two calls.
constexpr std::uint64_t send_chunk = 512 * 1024;

/// sendfile(2) has no MSG_NOSIGNAL: a downloader that goes away in the middle of a body raises
/// SIGPIPE, whose default action kills the whole process. Ignore it, unless the program installed
/// a handler of its own; the failed write is then reported as EPIPE and ends that upload only.
void ignore_sigpipe() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction current {};
        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
            ::signal(SIGPIPE, SIG_IGN);
        }
    });
}

/// What identifies a version of a file without reading it.
struct file_stamp {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    friend bool operator==(const file_stamp&, const file_stamp&) = default;
};

file_stamp stamp_of(const struct stat& st) {
    return {static_cast<std::uint64_t>(st.st_size),
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
            static_cast<std::uint64_t>(st.st_ino)};
}

std::string json_files(std::uint32_t id, const std::vector<file_entry>& files) {
    boost::json::object o;
    o["id"] = id;
    auto& array = o["files"].emplace_array();
    for (const auto& f : files)
        array.emplace_back(encode_file(f));
    return boost::json::serialize(o);
}

} // namespace

struct PeerNode::impl : std::enable_shared_from_this<impl> {
    struct cached {
        file_stamp stamp;
        std::string sha256;
    };

    impl(asio::any_io_executor executor, PeerOptions o)
        : strand(serial_executor(std::move(executor), o.single_thread)),
          options(std::move(o)),
          wake(strand),
          loop_done(strand, asio::steady_timer::time_point::max()),
          index_lock(strand) {
        folder = options.folder.empty() ? std::filesystem::path("p" + std::to_string(options.id))
                                        : options.folder;
        config_file = options.config_file.empty()
                          ? std::filesystem::path("p" + std::to_string(options.id) + ".config")
                          : options.config_file;
        options.limits.stop_grace = options.drain_timeout;
    }

    ~impl() {
        hashing_cut = true;
        hasher.stop();
        hasher.join();
    }

    // --- the shared folder ---------------------------------------------------------------
    asio::awaitable<bool> rescan();
    std::vector<file_entry> entries() const;
    /// Fails with errc::shutting_down once cut_hashing() was called (within one 1 MiB read).
    asio::awaitable<boost::system::result<std::string>> hash(int fd, std::uint64_t size);
    /// Stopping: hashing is cut short, so that a huge file dropped into the folder holds
    /// neither a folder scan (and with it the index lock quit needs) nor an upload waiting for
    /// its re-hash.
    void cut_hashing() {
        stopping = true;
        hashing_cut = true;
    }

    // --- the index --------------------------------------------------------------------------
    asio::awaitable<api_result<void>> do_register();
    asio::awaitable<api_result<void>> do_renew();
    asio::awaitable<api_result<void>> push_files();
    asio::awaitable<boost::system::error_code> sync();
    asio::awaitable<void> maintain();
    void write_config();

    // --- the file server -------------------------------------------------------------------
    /// `keep` holds the peer while the request is answered.
    asio::awaitable<bool> handle(request& req, connection& conn, std::shared_ptr<impl> keep);
    asio::awaitable<bool> serve_file(request& req, connection& conn, const std::string& name);

    strand_type strand;
    PeerOptions options;
    std::filesystem::path folder;
    std::filesystem::path config_file;
    ServerAddress index_address;
    std::optional<index_client> index;
    std::shared_ptr<http_server> server;
    unique_fd dir;
    asio::thread_pool hasher{1};
    std::atomic<bool> hashing_cut{false}; ///< read by the hasher thread

    std::map<std::string, cached, std::less<>> files;
    bool announced_stale = true; ///< the index may not have our latest list
    std::string token;
    std::chrono::milliseconds ttl{30'000};
    clock::time_point renew_due{};
    clock::time_point rescan_due{};
    std::atomic<bool> is_registered{false};
    std::atomic<bool> started{false};  ///< written on the strand; read by ~PeerNode too
    std::atomic<bool> stopping{false}; ///< written on the strand; read by ~PeerNode too
    bool loop_running = false;
    asio::steady_timer wake;
    asio::steady_timer loop_done;
    async_mutex index_lock;
    std::mt19937 rng{std::random_device{}()};
};

// ---------------------------------------------------------------------------------------------
// The shared folder

asio::awaitable<boost::system::result<std::string>> PeerNode::impl::hash(int fd,
                                                                          std::uint64_t size) {
    // Hashing a large file takes seconds: it runs on a worker thread, not on the strand.
    // (A plain function, as the public operations below: see there.)
    return asio::co_spawn(
        hasher.get_executor(),
        [fd, size, cut = &hashing_cut]() -> asio::awaitable<boost::system::result<std::string>> {
            co_return sha256_fd(fd, size, cut);
        },
        asio::use_awaitable);
}

asio::awaitable<bool> PeerNode::impl::rescan() {
    std::map<std::string, cached, std::less<>> now;
    std::vector<std::string> names;
    if (DIR* d = ::fdopendir(::dup(dir.get()))) {
        ::rewinddir(d);
        while (const dirent* e = ::readdir(d)) {
            if (is_valid_file_name(e->d_name)) names.emplace_back(e->d_name);
        }
        ::closedir(d);
    }
    for (auto& name : names) {
        if (stopping) co_return false; // quit must not wait behind hashing a large folder
        struct stat st {};
        if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(st.st_mode)) continue; // symlinks, folders, devices are never shared
        const auto stamp = stamp_of(st);
        if (const auto it = files.find(name); it != files.end() && it->second.stamp == stamp) {
            now.emplace(std::move(name), it->second);
            continue;
        }
        unique_fd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) continue;
        auto digest = co_await hash(fd.get(), stamp.size);
        if (stopping) co_return false; // cut short, or the peer quit meanwhile
        if (!digest) continue;         // changed under our feet: the next scan will see it
        now.emplace(std::move(name), cached{stamp, std::move(*digest)});
    }
    bool changed = now.size() != files.size();
    if (!changed) {
        for (auto a = now.begin(), b = files.begin(); a != now.end(); ++a, ++b) {
            if (a->first != b->first || a->second.sha256 != b->second.sha256 ||
                a->second.stamp.size != b->second.stamp.size) {
                changed = true;
                break;
            }
        }
    }
    files = std::move(now);
    if (changed) announced_stale = true;
    rescan_due = clock::now() + options.rescan_interval;
    co_return changed;
}

std::vector<file_entry> PeerNode::impl::entries() const {
    std::vector<file_entry> out;
    out.reserve(files.size());
    for (const auto& [name, c] : files)
        out.push_back({name, c.stamp.size, c.sha256});
    return out;
}

// ---------------------------------------------------------------------------------------------
// The index

void PeerNode::impl::write_config() {
    PeerConfig c;
    c.id = options.id;
    c.folder = folder;
    c.listen = {options.advertise_host.empty() ? options.host : options.advertise_host,
                server ? server->port() : options.port};
    c.index = index_address;
    c.token = token;
    if (auto ec = write_file_atomically(config_file, format_peer_config(c), true)) {
        spdlog::warn("peer {}: cannot write {}: {}", options.id, config_file.string(),
                     ec.message());
    }
}

asio::awaitable<api_result<void>> PeerNode::impl::do_register() {
    boost::json::object body;
    body["id"] = options.id;
    std::string host = options.advertise_host.empty() ? options.host : options.advertise_host;
    if (host == "0.0.0.0" || host == "::") host.clear(); // the index takes our address
    body["host"] = host;
    body["port"] = server->port();
    auto& list = body["files"].emplace_array();
    for (const auto& f : entries())
        list.emplace_back(encode_file(f));
    if (!token.empty()) body["token"] = token;
    auto r = co_await index->call(http::verb::post, "/v1/peers", boost::json::serialize(body));
    if (!r) {
        if (r.error().code == errc::bad_field && !token.empty()) token.clear();
        co_return r.error();
    }
    const auto* o = r->if_object();
    const auto* t = o ? o->if_contains("token") : nullptr;
    const auto* ttl_ms = o ? o->if_contains("ttl_ms") : nullptr;
    std::int64_t ttl_value = 0;
    if (ttl_ms && ttl_ms->is_int64()) ttl_value = ttl_ms->get_int64();
    if (ttl_ms && ttl_ms->is_uint64() && ttl_ms->get_uint64() <= 86'400'000) {
        ttl_value = static_cast<std::int64_t>(ttl_ms->get_uint64());
    }
    if (!t || !t->is_string() || !is_token(t->get_string()) || ttl_value <= 0 ||
        ttl_value > 86'400'000) {
        co_return fail(errc::bad_response,
                       "the index's registration answer lacks a valid token or ttl_ms");
    }
    token = std::string(t->get_string());
    ttl = std::chrono::milliseconds(std::max<std::int64_t>(ttl_value, 30));
    renew_due = clock::now() + ttl / 3;
    announced_stale = false;
    const bool was = is_registered.exchange(true);
    if (!was) {
        spdlog::info("peer {}: registered with {}:{} ({} files, lease {} ms)", options.id,
                     index_address.host, index_address.port, files.size(), ttl.count());
    }
    write_config();
    co_return api_result<void>{};
}

asio::awaitable<api_result<void>> PeerNode::impl::do_renew() {
    auto r = co_await index->call(http::verb::put,
                                  "/v1/peers/" + std::to_string(options.id) + "/lease", {}, token);
    if (!r) {
        if (r.error().code == errc::not_found || r.error().code == errc::forbidden) {
            // The index forgot us (it restarted, or our lease ended): register again.
            spdlog::info("peer {}: the index lost our lease ({}); registering again", options.id,
                         r.error().message);
            is_registered = false;
            if (r.error().code == errc::forbidden) token.clear();
        }
        co_return r.error();
    }
    renew_due = clock::now() + ttl / 3;
    co_return api_result<void>{};
}

asio::awaitable<api_result<void>> PeerNode::impl::push_files() {
    if (!is_registered) co_return api_result<void>{}; // registering sends the list anyway
    boost::json::object body;
    auto& list = body["files"].emplace_array();
    for (const auto& f : entries())
        list.emplace_back(encode_file(f));
    auto r =
        co_await index->call(http::verb::put, "/v1/peers/" + std::to_string(options.id) + "/files",
                             boost::json::serialize(body), token);
    if (!r) {
        if (r.error().code == errc::not_found || r.error().code == errc::forbidden) {
            is_registered = false;
            if (r.error().code == errc::forbidden) token.clear();
            wake.cancel();
        }
        co_return r.error();
    }
    announced_stale = false;
    renew_due = clock::now() + ttl / 3;
    co_return api_result<void>{};
}

asio::awaitable<boost::system::error_code> PeerNode::impl::sync() {
    auto guard = co_await index_lock.lock();
    co_await rescan();
    if (stopping) co_return make_error_code(errc::shutting_down); // the scan may have been cut
    if (!announced_stale) co_return boost::system::error_code{};
    if (!is_registered) {
        wake.cancel(); // the maintenance loop registers, with the full list
        co_return make_error_code(errc::unreachable);
    }
    auto r = co_await push_files();
    co_return r ? boost::system::error_code{} : make_error_code(r.error().code);
}

asio::awaitable<void> PeerNode::impl::maintain() {
    auto self = shared_from_this();
    loop_running = true;
    // However the loop ends (even by an exception), quit must not wait for it forever.
    struct on_exit {
        impl& d;
        ~on_exit() {
            d.loop_running = false;
            d.loop_done.cancel();
        }
    } mark_done{*this};
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping) {
        bool failed = false;
        {
            auto guard = co_await index_lock.lock();
            if (stopping) break;
            const auto now = clock::now();
            if (now >= rescan_due) co_await rescan();
            if (stopping) break;
            if (!is_registered) {
                auto r = co_await do_register();
                if (!r) {
                    failed = true;
                    spdlog::log(
                        backoff >= options.retry_max ? spdlog::level::warn : spdlog::level::debug,
                        "peer {}: registration failed: {}", options.id, r.error().message);
                }
            } else if (announced_stale) {
                failed = !co_await push_files();
            } else if (now >= renew_due) {
                failed = !co_await do_renew();
            }
        }
        if (stopping) break;
        clock::time_point next;
        if (failed) {
            // Back off with jitter; an unregistered peer keeps trying until it gets through.
            std::uniform_int_distribution<long> jitter(0, backoff.count() / 2);
            next = clock::now() + backoff + std::chrono::milliseconds(jitter(rng));
            backoff = std::min(backoff * 2, options.retry_max);
        } else {
            backoff = std::chrono::milliseconds(100);
            next = is_registered ? std::min(renew_due, rescan_due) : clock::now();
        }
        wake.expires_at(next);
        co_await wake.async_wait(use_tuple);
    }
}

// ---------------------------------------------------------------------------------------------
// The file server

asio::awaitable<bool> PeerNode::impl::handle(request& req, connection& conn,
                                              std::shared_ptr<impl> /*keep*/) {
    const auto method = req.method();
    const bool is_get = method == http::verb::get || method == http::verb::head;
    const auto t = parse_target(req.target());
    response res;
    if (!t) {
        res = error_response(req, errc::bad_request, "malformed request target");
    } else if (t->segments.size() == 3 && t->segments[0] == "v1" && t->segments[1] == "files") {
        if (!is_get) {
            res = error_response(req, errc::method_not_allowed, "use GET or HEAD");
            res.set(http::field::allow, "GET, HEAD");
        } else {
            co_return co_await serve_file(req, conn, t->segments[2]);
        }
    } else if (t->segments == std::vector<std::string>{"v1", "files"}) {
        if (!is_get) {
            res = error_response(req, errc::method_not_allowed, "use GET or HEAD");
            res.set(http::field::allow, "GET, HEAD");
        } else {
            res = json_response(req, http::status::ok, json_files(options.id, entries()));
        }
    } else if (t->segments == std::vector<std::string>{"v1", "health"} && !is_get) {
        res = error_response(req, errc::method_not_allowed, "use GET or HEAD");
        res.set(http::field::allow, "GET, HEAD");
    } else if (t->segments == std::vector<std::string>{"v1", "health"}) {
        boost::json::object o;
        o["status"] = stopping ? "stopping" : "ok";
        o["id"] = options.id;
        o["files"] = files.size();
        o["registered"] = is_registered.load();
        res = json_response(req, http::status::ok, boost::json::serialize(o));
    } else {
        res = error_response(req, errc::not_found, "no such path: " + std::string(req.target()));
    }
    const bool ok = co_await conn.write(res);
    co_return ok&& res.keep_alive();
}

asio::awaitable<bool> PeerNode::impl::serve_file(request& req, connection& conn,
                                                  const std::string& name) {
    const auto refuse = [&](errc code, std::string message) -> asio::awaitable<bool> {
        auto res = error_response(req, code, std::move(message));
        const bool ok = co_await conn.write(res);
        co_return ok&& res.keep_alive();
    };
    if (const auto problem = file_name_problem(name); !problem.empty()) {
        co_return co_await refuse(errc::bad_name, std::string(problem));
    }
    auto it = files.find(name);
    if (it == files.end()) co_return co_await refuse(errc::not_found, name + " is not shared here");
    // openat + O_NOFOLLOW on the folder's descriptor: a name is looked up in this folder only,
    // and a symlink put in place of a shared file is refused.
    unique_fd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        announced_stale = true;
        wake.cancel();
        co_return co_await refuse(errc::not_found, name + " is not shared here");
    }
    if (stamp_of(st) != it->second.stamp) {
        // Changed by hand since it was hashed: hash it again before announcing an ETag.
        auto digest = co_await hash(fd.get(), static_cast<std::uint64_t>(st.st_size));
        if (!digest && digest.error() == make_error_code(errc::shutting_down)) {
            co_return co_await refuse(errc::shutting_down, "the peer is stopping");
        }
        if (!digest) co_return co_await refuse(errc::not_found, name + " is changing; try again");
        it = files.find(name);
        if (it == files.end()) co_return co_await refuse(errc::not_found, name + " was removed");
        it->second = cached{stamp_of(st), std::move(*digest)};
        announced_stale = true;
        wake.cancel();
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const std::string etag = "\"" + it->second.sha256 + "\"";
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
        auto& body = res.body();
        body.resize(static_cast<std::size_t>(length));
        std::size_t got = 0;
        while (got < body.size()) {
            const auto n = ::pread(fd.get(), body.data() + got, body.size() - got,
                                   static_cast<off_t>(first + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) co_return false; // the file shrank under us: close rather than lie
            got += static_cast<std::size_t>(n);
        }
        const bool ok = co_await conn.write(res);
        co_return ok&& res.keep_alive();
    }
    // The header is held back (MSG_MORE) so that it leaves with the first bytes of the body.
    const bool is_head = req.method() == http::verb::head;
    if (!co_await conn.write_head(res, length, !is_head && length > 0)) co_return false;
    if (is_head) co_return res.keep_alive();

    // The body goes from the page cache to the socket with sendfile(2); when the socket is
    // full, wait until it is writable again, under the progress deadline. A reader that keeps
    // up never fills the socket, and one sendfile call would then send the whole file: it is
    // called for at most send_chunk bytes at a time, and between two calls the peer's other
    // work runs (other requests, the lease renewal), which a large upload to a fast client
    // would otherwise hold up until its end.
    auto& socket = conn.socket();
    auto offset = static_cast<off_t>(first);
    std::uint64_t left = length;
    while (left > 0) {
        const auto chunk = static_cast<std::size_t>(std::min(left, send_chunk));
        const auto n = ::sendfile(socket.native_handle(), fd.get(), &offset, chunk);
        if (n > 0) {
            left -= static_cast<std::uint64_t>(n);
            conn.progressed(static_cast<std::size_t>(n));
            if (left > 0) co_await asio::post(asio::use_awaitable);
            continue;
        }
        if (n == 0) co_return false; // the file shrank: the client sees a short body
        if (errno == EINTR) continue;
        if (errno != EAGAIN) co_return false;
        if (!co_await conn.wait_writable()) co_return false;
    }
    co_return res.keep_alive();
}

// ---------------------------------------------------------------------------------------------
// PeerNode

PeerNode::PeerNode(asio::any_io_executor executor, PeerOptions options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

PeerNode::~PeerNode() {
    auto d = impl_;
    if (d->started && !d->stopping) {
        asio::post(d->strand, [d] {
            d->cut_hashing();
            d->wake.cancel();
            if (d->server) d->server->cancel();
        });
    }
}

asio::awaitable<boost::system::error_code> PeerNode::async_start() {
    auto d = impl_;
    // Not a coroutine itself: a lambda that captures a coroutine's parameters is miscompiled
    // by GCC 12, so the parameters go into the lambda from a plain function.
    return asio::co_spawn(
        d->strand,
        [d]() -> asio::awaitable<boost::system::error_code> {
            if (d->started) co_return make_error_code(errc::bad_request);
            ignore_sigpipe();
            if (d->options.index) {
                d->index_address = *d->options.index;
            } else {
                auto address = read_server_config(d->options.server_config);
                if (!address) {
                    spdlog::error("peer {}: cannot read {}: is the index server running?",
                                  d->options.id, d->options.server_config.string());
                    co_return address.error().code;
                }
                d->index_address = *address;
            }
            std::error_code fec;
            std::filesystem::create_directories(d->folder, fec);
            d->dir.reset(::open(d->folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!d->dir) {
                spdlog::error("peer {}: cannot open folder {}: {}", d->options.id,
                              d->folder.string(), std::strerror(errno));
                co_return make_error_code(errc::io_error);
            }
            // One running peer per folder: another process with our id would read our token
            // from the config file and take our lease over. The lock ends with the process.
            if (::flock(d->dir.get(), LOCK_EX | LOCK_NB) != 0) {
                if (errno == EWOULDBLOCK) {
                    spdlog::error("peer {}: folder {} is shared by another running peer",
                                  d->options.id, d->folder.string());
                    co_return make_error_code(errc::conflict);
                }
                spdlog::warn("peer {}: cannot lock folder {}: {}", d->options.id,
                             d->folder.string(), std::strerror(errno));
            }
            std::weak_ptr<impl> weak = d;
            d->server = std::make_shared<http_server>(
                d->strand, d->options.limits,
                // Not a coroutine: it hands the request to impl::handle.
                [weak](request& req, connection& conn) -> asio::awaitable<bool> {
                    auto self = weak.lock();
                    if (!self) {
                        return refuse_request(req, conn, errc::shutting_down, "the peer stopped");
                    }
                    auto* const peer = self.get();
                    return peer->handle(req, conn, std::move(self));
                },
                "peer " + std::to_string(d->options.id));
            if (auto ec = d->server->listen(d->options.host, d->options.port)) {
                spdlog::error("peer {}: cannot listen on {}:{}: {}", d->options.id, d->options.host,
                              d->options.port, ec.message());
                co_return ec;
            }
            d->index.emplace(d->strand, d->index_address);
            // Take our lease back after a restart, if the index still has it.
            if (auto old = read_peer_config(d->config_file); old && old->id == d->options.id) {
                d->token = old->token;
            }
            d->started = true;
            {
                auto guard = co_await d->index_lock.lock();
                if (d->stopping) co_return make_error_code(errc::shutting_down);
                co_await d->rescan();
                if (d->stopping) co_return make_error_code(errc::shutting_down);
                d->write_config();
                d->server->start();
            }
            boost::system::error_code result;
            {
                auto guard = co_await d->index_lock.lock();
                // Quit while starting: do not register a peer that is going away.
                if (d->stopping) co_return make_error_code(errc::shutting_down);
                auto r = co_await d->do_register();
                if (!r) {
                    result = make_error_code(r.error().code);
                    const auto code = r.error().code;
                    // The index refused us for good (id taken, port or host not allowed, a
                    // request it cannot accept): retrying would not change its answer.
                    if (code == errc::conflict || code == errc::bad_field ||
                        code == errc::forbidden || code == errc::too_many ||
                        code == errc::bad_name || code == errc::body_too_large) {
                        spdlog::error("peer {}: the index refused the registration: {}",
                                      d->options.id, r.error().message);
                        d->cut_hashing();
                        d->server->cancel();
                        co_return result;
                    }
                    spdlog::warn("peer {}: not registered yet ({}); retrying in the background",
                                 d->options.id, r.error().message);
                }
            }
            spdlog::info("peer {}: sharing {} ({} files) on {}:{}", d->options.id,
                         d->folder.string(), d->files.size(), d->options.host, d->server->port());
            asio::co_spawn(d->strand, d->maintain(),
                           log_failure{"peer " + std::to_string(d->options.id) + ": maintenance"});
            co_return result;
        },
        asio::use_awaitable);
}

asio::awaitable<boost::system::result<std::vector<std::string>>>
PeerNode::async_list_network_files(std::string contains) {
    auto d = impl_;
    return asio::co_spawn(
        d->strand,
        [d, contains]() -> asio::awaitable<boost::system::result<std::vector<std::string>>> {
            if (!d->index) co_return make_error_code(errc::shutting_down);
            std::vector<std::string> names;
            std::string after;
            for (;;) {
                std::string target = "/v1/files?limit=10000";
                if (!contains.empty()) target += "&contains=" + percent_encode(contains);
                if (!after.empty()) target += "&after=" + percent_encode(after);
                auto r = co_await d->index->call(http::verb::get, target);
                if (!r) co_return make_error_code(r.error().code);
                const auto* o = r->if_object();
                const auto* list = o ? o->if_contains("names") : nullptr;
                if (!list || !list->is_array()) co_return make_error_code(errc::bad_response);
                for (const auto& n : list->get_array()) {
                    if (n.is_string()) names.emplace_back(n.get_string());
                }
                const auto* next = o->if_contains("next_after");
                if (!next || !next->is_string()) break;
                if (next->get_string() <= after) co_return make_error_code(errc::bad_response);
                after = std::string(next->get_string());
            }
            co_return names;
        },
        asio::use_awaitable);
}

asio::awaitable<std::vector<DownloadOutcome>> PeerNode::async_download(
    std::vector<std::string> names) {
    auto d = impl_;
    return asio::co_spawn(
        d->strand,
        [d, names = std::move(names)]() mutable -> asio::awaitable<std::vector<DownloadOutcome>> {
            std::vector<DownloadOutcome> out;
            std::set<std::string> seen;
            std::vector<std::string> wanted;
            for (auto& n : names) {
                if (!seen.insert(n).second) continue;
                DownloadOutcome o;
                o.name = n;
                if (const auto problem = file_name_problem(n); !problem.empty()) {
                    o.message = std::string(problem);
                } else {
                    wanted.push_back(n);
                }
                out.push_back(std::move(o));
            }
            const auto find = [&](const std::string& n) -> DownloadOutcome& {
                for (auto& o : out) {
                    if (o.name == n) return o;
                }
                return out.front(); // unreachable: every wanted name has an outcome
            };
            if (!d->index || d->stopping) {
                for (const auto& n : wanted)
                    find(n).message = "the peer is stopping";
                co_return out;
            }
            // One lookup for every name (in chunks of the index's default limit).
            std::vector<std::pair<std::string, std::vector<FileSource>>> jobs;
            constexpr std::size_t chunk = 1000;
            for (std::size_t i = 0; i < wanted.size(); i += chunk) {
                boost::json::object body;
                auto& array = body["names"].emplace_array();
                for (std::size_t j = i; j < std::min(wanted.size(), i + chunk); ++j) {
                    array.emplace_back(wanted[j]);
                }
                auto r = co_await d->index->call(http::verb::post, "/v1/lookup",
                                                 boost::json::serialize(body));
                if (!r) {
                    for (std::size_t j = i; j < std::min(wanted.size(), i + chunk); ++j) {
                        find(wanted[j]).message = "lookup failed: " + r.error().message;
                    }
                    continue;
                }
                const auto* o = r->if_object();
                const auto* results = o ? o->if_contains("results") : nullptr;
                if (!results || !results->is_array()) continue;
                for (const auto& item : results->get_array()) {
                    const auto* e = item.if_object();
                    if (!e || !e->contains("name") || !e->at("name").is_string()) continue;
                    std::string name(e->at("name").get_string());
                    std::vector<FileSource> sources;
                    if (const auto* s = e->if_contains("sources"); s && s->is_array()) {
                        for (const auto& v : s->get_array()) {
                            const auto* so = v.if_object();
                            if (!so) continue;
                            try {
                                FileSource fs;
                                fs.peer = so->at("id").to_number<std::uint32_t>();
                                fs.host = std::string(so->at("host").as_string());
                                fs.port = so->at("port").to_number<std::uint16_t>();
                                fs.size = so->at("size").to_number<std::uint64_t>();
                                fs.sha256 = std::string(so->at("sha256").as_string());
                                if (fs.peer != d->options.id) sources.push_back(std::move(fs));
                            } catch (const std::exception&) {
                                // a malformed source is skipped
                            }
                        }
                    }
                    auto& outcome = find(name);
                    if (sources.empty()) {
                        outcome.state = DownloadOutcome::status::not_found;
                        outcome.message = "no other peer shares it";
                    } else {
                        jobs.emplace_back(std::move(name), std::move(sources));
                    }
                }
            }
            // Fetch concurrently, at most max_parallel_downloads at a time.
            FileTransfer transfer(d->strand, d->folder, d->options.transfer);
            std::size_t next = 0;
            const std::size_t workers =
                std::min(jobs.size(), std::max<std::size_t>(d->options.max_parallel_downloads, 1));
            std::size_t running = workers;
            asio::steady_timer all_done(d->strand, asio::steady_timer::time_point::max());
            const auto worker = [&]() -> asio::awaitable<void> {
                while (next < jobs.size() && !d->stopping) {
                    auto& job = jobs[next++];
                    auto r = co_await transfer.async_download(job.first, job.second);
                    auto& outcome = find(job.first);
                    outcome.state =
                        r ? DownloadOutcome::status::downloaded : DownloadOutcome::status::failed;
                    outcome.message = r ? std::string{} : r.message;
                    if (r) {
                        // Remember the verified hash so the next scan need not read the file.
                        struct stat st {};
                        if (::fstatat(d->dir.get(), job.first.c_str(), &st, AT_SYMLINK_NOFOLLOW) ==
                            0) {
                            d->files[job.first] =
                                impl::cached{stamp_of(st), job.second.front().sha256};
                            for (const auto& s : job.second) {
                                if (s.peer == r.source_peer) d->files[job.first].sha256 = s.sha256;
                            }
                            d->announced_stale = true;
                        }
                    }
                    outcome.transfer = std::move(r);
                }
            };
            for (std::size_t i = 0; i < workers; ++i) {
                asio::co_spawn(d->strand, worker(), [&](std::exception_ptr e) {
                    log_exception("peer " + std::to_string(d->options.id) + ": download worker", e);
                    if (--running == 0) all_done.cancel();
                });
            }
            while (running > 0)
                co_await all_done.async_wait(use_tuple);
            for (auto& o : out) {
                if (o.state == DownloadOutcome::status::failed && o.message.empty()) {
                    o.message = "not attempted: the peer is stopping";
                }
            }
            co_await d->sync();
            co_return out;
        },
        asio::use_awaitable);
}

asio::awaitable<std::vector<DeleteOutcome>> PeerNode::async_delete_local(
    std::vector<std::string> names) {
    auto d = impl_;
    return asio::co_spawn(
        d->strand,
        [d, names = std::move(names)]() -> asio::awaitable<std::vector<DeleteOutcome>> {
            std::vector<DeleteOutcome> out;
            for (const auto& n : names) {
                DeleteOutcome o;
                o.name = n;
                struct stat st {};
                if (const auto problem = file_name_problem(n); !problem.empty()) {
                    o.message = std::string(problem);
                } else if (::fstatat(d->dir.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                    o.state = DeleteOutcome::status::not_found;
                    o.message = "no such file in " + d->folder.string();
                } else if (!S_ISREG(st.st_mode)) {
                    o.message = "not a plain file; left alone";
                } else if (::unlinkat(d->dir.get(), n.c_str(), 0) != 0) {
                    o.message = std::strerror(errno);
                } else {
                    o.state = DeleteOutcome::status::deleted;
                }
                out.push_back(std::move(o));
            }
            co_await d->sync();
            co_return out;
        },
        asio::use_awaitable);
}

asio::awaitable<std::vector<LocalFile>> PeerNode::async_local_files() {
    auto d = impl_;
    return asio::co_spawn(
        d->strand,
        [d]() -> asio::awaitable<std::vector<LocalFile>> {
            if (d->dir) co_await d->sync();
            std::vector<LocalFile> out;
            for (const auto& [name, c] : d->files)
                out.push_back({name, c.stamp.size, c.sha256});
            co_return out;
        },
        asio::use_awaitable);
}

asio::awaitable<boost::system::error_code> PeerNode::async_sync() {
    auto d = impl_;
    return asio::co_spawn(
        d->strand,
        [d]() -> asio::awaitable<boost::system::error_code> {
            if (!d->dir) co_return make_error_code(errc::shutting_down);
            co_return co_await d->sync();
        },
        asio::use_awaitable);
}

asio::awaitable<void> PeerNode::async_quit() {
    auto d = impl_;
    return asio::co_spawn(
        d->strand,
        [d]() -> asio::awaitable<void> {
            if (!d->started) co_return;
            const bool first = !d->stopping;
            d->cut_hashing(); // a folder scan waiting on a large file gives the lock back now
            d->wake.cancel();
            if (first) {
                // 1. No new downloader is sent here.
                auto guard = co_await d->index_lock.lock();
                if (d->is_registered) {
                    auto r = co_await d->index->call(http::verb::delete_,
                                                     "/v1/peers/" + std::to_string(d->options.id),
                                                     {}, d->token);
                    if (r) {
                        spdlog::info("peer {}: unregistered", d->options.id);
                    } else {
                        spdlog::warn(
                            "peer {}: could not unregister ({}); the index drops us "
                            "when the lease ends",
                            d->options.id, r.error().message);
                    }
                    d->is_registered = false;
                }
                d->token.clear();
                d->write_config();
                d->index->close();
                if (d->server->busy_count() > 0) {
                    spdlog::info("peer {}: waiting for {} uploads to finish", d->options.id,
                                 d->server->busy_count());
                }
            }
            // 2. Uploads in progress finish; 3. then everything stops.
            co_await d->server->async_stop();
            while (d->loop_running)
                co_await d->loop_done.async_wait(use_tuple);
            if (first) spdlog::info("peer {}: stopped", d->options.id);
        },
        asio::use_awaitable);
}

std::uint32_t PeerNode::id() const noexcept { return impl_->options.id; }
std::uint16_t PeerNode::port() const noexcept { return impl_->server ? impl_->server->port() : 0; }
const std::filesystem::path& PeerNode::folder() const noexcept { return impl_->folder; }
bool PeerNode::registered() const noexcept { return impl_->is_registered; }
std::size_t PeerNode::active_uploads() const noexcept {
    return impl_->server ? impl_->server->busy_count() : 0;
}

} // namespace p2pshare
