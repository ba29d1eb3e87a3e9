// PeerNode: composes the shared folder, the index session, the file server and the downloads,
// and carries the public operations onto the peer's (serial) executor.
#include <p2pshare/names.hpp>
#include <p2pshare/peer_node.hpp>

#include "blocking.hpp"
#include "client_stream.hpp"
#include "peer/downloads.hpp"
#include "peer/file_server.hpp"
#include "peer/index_session.hpp"
#include "peer/shared_folder.hpp"
#include "run_on.hpp"
#include "support.hpp"
#include "tls.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>

namespace p2pshare {

using namespace detail;
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

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

Error error_of(const api_error& e) { return {make_error_code(e.code), e.message}; }

/// Deletes the plain file `name` of the folder `dir`.
std::pair<errc, std::string> delete_file(int dir, const std::string& name,
                                         const std::string& where) {
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return {errc::not_found, "no such file in " + where};
    }
    if (!S_ISREG(st.st_mode)) return {errc::io_error, "not a plain file; left alone"};
    if (::unlinkat(dir, name.c_str(), 0) != 0) return {errc::io_error, errno_text(errno)};
    return {errc::ok, {}};
}

const Error aborted{asio::error::operation_aborted, "the operation was cancelled"};

} // namespace

struct PeerNode::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor executor, PeerOptions o)
        : ex(std::move(executor)),
          options(std::move(o)),
          name("peer " + std::to_string(options.id)),
          rescan_timer(ex),
          rescan_done(ex, asio::steady_timer::time_point::max()) {
        prepare_openssl(); // before the pool's threads start
        if (options.blocking_executor) {
            blocking = *options.blocking_executor;
        } else {
            own_pool.emplace(2);
            blocking = own_pool->get_executor();
        }
        const auto path = options.folder.empty()
                              ? std::filesystem::path("p" + std::to_string(options.id))
                              : options.folder;
        folder = std::make_shared<shared_folder>(ex, blocking, path, name, options.hash_cache);
        options.limits.stop_grace = options.drain_timeout;
        // Quit serves the next pieces asked on connections it has (PeerNode::async_quit).
        options.limits.stop_idle =
            std::min<std::chrono::milliseconds>(options.drain_timeout, std::chrono::seconds(2));
        if (!options.transfer.blocking_executor) options.transfer.blocking_executor = blocking;
    }

    /// Joins the peer's own pool: no work of the peer is left on a thread that would touch the
    /// peer's executor after the peer is gone (Asio's co_spawn releases the awaiting executor on
    /// the pool's thread after the awaiting coroutine resumed).
    ~impl() {
        if (!own_pool) return;
        folder->cut(); // a hash in flight ends within one read
        own_pool->join();
    }

    asio::awaitable<Error> start();
    asio::awaitable<Error> sync(bool settle);
    asio::awaitable<void> quit();
    asio::awaitable<void> rescan_loop();
    void write_config(const std::string& token);
    /// Stops everything at once, without unregistering (the PeerNode is going away).
    void abort();

    asio::any_io_executor ex;
    PeerOptions options;
    std::optional<asio::thread_pool> own_pool; ///< unless options.blocking_executor is given
    asio::any_io_executor blocking;
    std::string name;
    std::vector<ServerAddress> indexes; ///< the index servers, each once, in order
    std::shared_ptr<shared_folder> folder;
    std::shared_ptr<index_session> session;
    std::shared_ptr<file_server> server;
    std::unique_ptr<downloads> fetcher;
    std::shared_ptr<peer_metrics> metrics = std::make_shared<peer_metrics>(); ///< GET /metrics
    std::shared_ptr<std::atomic<bool>> stopping = std::make_shared<std::atomic<bool>>(false);
    std::atomic<bool> started{false}; ///< written on the executor; read by ~PeerNode too
    /// Written by the index session; read by PeerNode::registered() from any thread.
    std::shared_ptr<std::atomic<bool>> is_registered = std::make_shared<std::atomic<bool>>(false);
    bool rescanning = false;
    asio::steady_timer rescan_timer;
    asio::steady_timer rescan_done;
};

void PeerNode::impl::write_config(const std::string& token) {
    if (options.config_file.empty()) return;
    PeerConfig c;
    c.id = options.id;
    c.folder = folder->path();
    c.listen = {options.advertise_host.empty() ? options.host : options.advertise_host,
                server ? server->port() : options.port, options.tls};
    c.index = session ? session->client().address() : indexes.front(); // the one in use
    c.token = token;
    if (auto ec = write_file_atomically(options.config_file, format_peer_config(c), true)) {
        log().warn("{}: cannot write {}: {}", name, options.config_file.string(), ec.message());
    }
}

void PeerNode::impl::abort() {
    stopping->store(true);
    folder->cut();
    rescan_timer.cancel();
    if (session) session->abort();
    if (server) server->cancel();
}

asio::awaitable<Error> PeerNode::impl::start() {
    if (started)
        co_return Error{make_error_code(errc::bad_request), "the peer was started already"};
    ignore_sigpipe();
    std::vector<ServerAddress> listed = options.index;
    if (listed.empty() && options.server_config.empty()) {
        co_return Error{make_error_code(errc::bad_config),
                        "no index server given (neither an address nor a server.config)"};
    }
    if (listed.empty()) {
        auto addresses = read_server_config(options.server_config);
        if (!addresses) {
            // A missing file: the index server has not run here yet.
            const auto code =
                addresses.error().code == errc::not_found ? errc::not_found : errc::bad_config;
            co_return Error{make_error_code(code), addresses.error().message};
        }
        listed = std::move(*addresses);
    }
    // An address given twice would only be tried twice in a row.
    indexes.clear();
    for (auto& a : listed) {
        if (std::find(indexes.begin(), indexes.end(), a) == indexes.end()) {
            indexes.push_back(std::move(a));
        }
    }
    // Take our lease back after a restart, if the index still has it. A file that cannot be
    // parsed stops the start and is left as it is: it may hold a live token.
    std::string token;
    if (!options.config_file.empty()) {
        std::error_code exists_ec;
        if (std::filesystem::exists(options.config_file, exists_ec)) {
            auto old = read_peer_config(options.config_file);
            if (!old) {
                co_return Error{make_error_code(errc::bad_config),
                                old.error().message + " (the file is left as it is)"};
            }
            if (old->id == options.id) token = old->token;
        }
    }
    if (auto opened = co_await folder->async_open(); !opened) {
        co_return error_of(opened.error());
    }
    std::weak_ptr<impl> weak = shared_from_this();
    server = std::make_shared<file_server>(
        ex, blocking, folder, options.id, options.limits,
        [weak]() -> file_server::health {
            auto self = weak.lock();
            if (!self) return {false, true, 0, {}, {}};
            auto* const lease = self->session.get();
            return {lease != nullptr && lease->registered(), self->stopping->load(),
                    self->fetcher ? self->fetcher->idle_connections() : 0,
                    lease != nullptr ? to_string(lease->client().address()) : std::string(),
                    lease != nullptr ? lease->ttl() : std::chrono::milliseconds(0)};
        },
        name, options.max_upload_rate, metrics);
    // TLS: the certificate (made first if asked and there is none yet) and, for index servers
    // reached over TLS, the CAs they are checked against.
    std::shared_ptr<const tls_server_context> tls;
    if (options.tls) {
        if (options.tls_cert.empty() || options.tls_key.empty()) {
            co_return Error{make_error_code(errc::bad_config),
                            "TLS needs the paths of a certificate and of its key"};
        }
        std::error_code ignored;
        if (options.tls_self_signed && !std::filesystem::exists(options.tls_cert, ignored) &&
            !std::filesystem::exists(options.tls_key, ignored)) {
            // It names the address the peer is reached at, so that a client checking names
            // (curl --cacert pN.crt) accepts it too; downloaders check only its fingerprint.
            std::vector<std::string> names;
            for (const auto& h : {options.advertise_host, options.host}) {
                if (!h.empty() && h != "0.0.0.0" && h != "::" &&
                    std::find(names.begin(), names.end(), h) == names.end()) {
                    names.push_back(h);
                }
            }
            if (auto e = make_self_signed(options.tls_cert, options.tls_key,
                                          "p2pshare peer " + std::to_string(options.id), names)) {
                co_return e;
            }
            log().info("{}: made a self-signed certificate {}", name, options.tls_cert.string());
        }
        auto loaded = tls_server_context::load(options.tls_cert, options.tls_key);
        if (!loaded) co_return loaded.error();
        tls = std::move(*loaded);
        log().info("{}: serving over TLS, certificate SHA-256 {}", name, tls->fingerprint());
    }
    std::shared_ptr<tls_client_context> index_tls;
    if (!options.tls_ca.empty() ||
        std::any_of(indexes.begin(), indexes.end(), [](const auto& a) { return a.tls; })) {
        auto made = make_tls_client(options.tls_ca);
        if (!made) co_return made.error();
        index_tls = std::move(*made);
    }
    if (auto ec = server->listen(options.host, options.port, tls)) {
        co_return Error{ec, "cannot listen on " +
                                to_string(ServerAddress{options.host, options.port}) + ": " +
                                ec.message()};
    }
    std::string host = options.advertise_host.empty() ? options.host : options.advertise_host;
    if (host == "0.0.0.0" || host == "::") host.clear(); // the index takes our address
    session = std::make_shared<index_session>(
        ex, indexes,
        index_session::settings{
            options.id, host, options.advertise_port != 0 ? options.advertise_port : server->port(),
            options.retry_max, name, is_registered, metrics,
            tls ? tls->fingerprint() : std::string()},
        [weak] {
            auto self = weak.lock();
            return self ? self->folder->offered() : std::vector<file_entry>{};
        },
        token);
    if (index_tls) session->client().use_tls(std::move(index_tls));
    session->on_token = [weak](const std::string& t) {
        if (auto self = weak.lock()) self->write_config(t);
    };
    // pN.config names the index server in use.
    session->on_move = [weak] {
        if (auto self = weak.lock()) self->write_config(self->session->token());
    };
    folder->on_change = [weak] {
        if (auto self = weak.lock(); self && self->session) self->session->files_changed();
    };
    fetcher = std::make_unique<downloads>(
        ex, folder, session,
        downloads::settings{options.id, options.max_parallel_downloads, options.transfer, metrics});
    started = true;
    write_config(token);
    server->start();
    co_await folder->async_scan();
    if (stopping->load())
        co_return Error{make_error_code(errc::shutting_down), "quit while starting"};

    // Registered at once, with the files hashed so far: the lease does not wait for hashing.
    Error result;
    if (auto r = co_await session->async_register(); !r) {
        const auto code = r.error().code;
        result = error_of(r.error());
        // The index refused us for good (id taken, port or host not allowed, a request it cannot
        // accept): retrying would not change its answer.
        if (code == errc::conflict || code == errc::bad_field || code == errc::forbidden ||
            code == errc::too_many || code == errc::bad_name || code == errc::body_too_large ||
            code == errc::shutting_down) {
            log().error("{}: the index refused the registration: {}", name, r.error().message);
            abort();
            co_return result;
        }
        log().warn("{}: not registered yet ({}); retrying in the background", name,
                   r.error().message);
    }
    session->start();
    rescanning = true;
    asio::co_spawn(ex, rescan_loop(), [self = shared_from_this()](std::exception_ptr e) {
        log_exception(self->name + ": folder rescans", e);
        self->rescanning = false;
        self->rescan_done.cancel();
    });
    // The files found now are offered as their hashes complete; start returns once they are.
    if (const auto ec = co_await folder->async_settle()) {
        if (ec == asio::error::operation_aborted) co_return aborted;
        co_return Error{make_error_code(errc::shutting_down), "quit while starting"};
    }
    if (session->registered()) co_await session->async_send_files();
    log().info("{}: sharing {} ({} files) on {}", name, folder->path().string(),
               folder->offered().size(), to_string(ServerAddress{options.host, server->port()}));
    co_return result;
}

asio::awaitable<void> PeerNode::impl::rescan_loop() {
    co_await asio::this_coro::throw_if_cancelled(false);
    while (!stopping->load()) {
        rescan_timer.expires_after(options.rescan_interval);
        co_await rescan_timer.async_wait(use_tuple);
        if (stopping->load()) break;
        co_await folder->async_scan(); // hashing goes on in the background
    }
}

asio::awaitable<Error> PeerNode::impl::sync(bool settle) {
    if (!started || stopping->load()) {
        co_return Error{make_error_code(errc::shutting_down), "the peer is not running"};
    }
    co_await folder->async_scan();
    if (settle) {
        const auto ec = co_await folder->async_settle();
        if (ec)
            co_return Error{ec, ec == asio::error::operation_aborted ? aborted.message
                                                                     : "the peer is stopping"};
        // What was hashed is in the hash cache on disk before the index hears of it.
        if (co_await folder->async_cache_written()) co_return aborted;
    }
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return aborted;
    auto r = co_await session->async_send_files();
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return aborted;
    co_return r ? Error{} : error_of(r.error());
}

asio::awaitable<void> PeerNode::impl::quit() {
    if (!started) co_return;
    const bool first = !stopping->exchange(true);
    folder->cut(); // hashing stops within one read
    rescan_timer.cancel();
    if (first) {
        // 1. No new downloader is sent here.
        co_await session->async_stop();
        if (server->busy_count() > 0) {
            log().info("{}: waiting for {} uploads to finish", name, server->busy_count());
        }
    }
    // 2. Uploads in progress finish (cut at once when quit itself is cancelled); 3. then stop.
    co_await server->async_stop();
    while (rescanning)
        co_await rescan_done.async_wait(use_tuple);
    co_await folder->async_idle(); // the hash in flight, cut short, ends on the blocking pool
    if (first) log().info("{}: stopped", name);
}

// ---------------------------------------------------------------------------------------------

PeerNode::PeerNode(asio::any_io_executor executor, PeerOptions options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

PeerNode::~PeerNode() {
    auto d = impl_;
    if (d->started && !d->stopping->load()) asio::post(d->ex, [d] { d->abort(); });
}

// Each operation is a plain function that hands a lambda to run_on (a lambda that captures a
// coroutine's parameters is miscompiled by GCC 12). run_on passes the caller's cancellation on,
// also one that comes as the operation completes.

asio::awaitable<Error> PeerNode::async_start() {
    return run_on(impl_->ex, [d = impl_]() -> asio::awaitable<Error> {
        co_await asio::this_coro::throw_if_cancelled(false);
        auto r = co_await d->start();
        if (cancelled(co_await asio::this_coro::cancellation_state)) {
            d->abort();
            co_return aborted;
        }
        co_return r;
    });
}

asio::awaitable<Result<std::vector<std::string>>> PeerNode::async_list_network_files(
    std::string contains) {
    return run_on(
        impl_->ex,
        [d = impl_,
         contains = std::move(contains)]() -> asio::awaitable<Result<std::vector<std::string>>> {
            co_await asio::this_coro::throw_if_cancelled(false);
            if (!d->session || d->stopping->load()) {
                co_return Error{make_error_code(errc::shutting_down), "the peer is not running"};
            }
            auto r = co_await d->session->async_list(contains);
            if (cancelled(co_await asio::this_coro::cancellation_state)) co_return aborted;
            if (!r) co_return error_of(r.error());
            co_return std::move(*r);
        });
}

asio::awaitable<std::vector<DownloadOutcome>> PeerNode::async_download(
    std::vector<std::string> names) {
    return run_on(
        impl_->ex,
        [d = impl_,
         names = std::move(names)]() mutable -> asio::awaitable<std::vector<DownloadOutcome>> {
            co_await asio::this_coro::throw_if_cancelled(false);
            if (!d->fetcher) {
                std::vector<DownloadOutcome> out;
                for (auto& n : names)
                    out.push_back({std::move(n),
                                   make_error_code(errc::shutting_down),
                                   "the peer is not running",
                                   {}});
                co_return out;
            }
            auto out = co_await d->fetcher->async_download(std::move(names), d->stopping);
            // Tell the index now, unless cancelled (the lease loop tells it anyway).
            if (!cancelled(co_await asio::this_coro::cancellation_state) && !d->stopping->load()) {
                co_await d->session->async_send_files();
            }
            co_return out;
        });
}

asio::awaitable<std::vector<DeleteOutcome>> PeerNode::async_delete_local(
    std::vector<std::string> names) {
    return run_on(
        impl_->ex,
        [d = impl_, names = std::move(names)]() -> asio::awaitable<std::vector<DeleteOutcome>> {
            co_await asio::this_coro::throw_if_cancelled(false);
            std::vector<DeleteOutcome> out;
            if (d->folder->dir() < 0) {
                for (const auto& n : names)
                    out.push_back({n, make_error_code(errc::shutting_down), "not running"});
                co_return out;
            }
            for (const auto& n : names) {
                DeleteOutcome o{n, {}, {}};
                if (cancelled(co_await asio::this_coro::cancellation_state)) {
                    o.error = asio::error::operation_aborted;
                    o.message = "not deleted: the operation was cancelled";
                } else if (const auto problem = file_name_problem(n); !problem.empty()) {
                    o.error = make_error_code(errc::bad_name);
                    o.message = std::string(problem);
                } else {
                    // On the blocking executor: an unlink can wait for the disk.
                    auto [code, message] = co_await run_blocking(
                        d->blocking, &delete_file, d->folder->dir(), n, d->folder->path().string());
                    if (code != errc::ok) o.error = make_error_code(code);
                    o.message = std::move(message);
                }
                out.push_back(std::move(o));
            }
            if (!cancelled(co_await asio::this_coro::cancellation_state) && !d->stopping->load()) {
                co_await d->sync(false);
            }
            co_return out;
        });
}

asio::awaitable<Result<std::vector<LocalFile>>> PeerNode::async_local_files() {
    return run_on(impl_->ex, [d = impl_]() -> asio::awaitable<Result<std::vector<LocalFile>>> {
        co_await asio::this_coro::throw_if_cancelled(false);
        if (d->folder->dir() < 0) {
            co_return Error{make_error_code(errc::shutting_down), "the peer is not running"};
        }
        co_await d->folder->async_scan();
        if (auto ec = co_await d->folder->async_settle(); ec) {
            co_return ec == asio::error::operation_aborted ? aborted
                                                           : Error{ec, "the peer is stopping"};
        }
        std::vector<LocalFile> out;
        for (auto& f : d->folder->offered())
            out.push_back({std::move(f.name), f.size, std::move(f.sha256)});
        co_return out;
    });
}

asio::awaitable<Error> PeerNode::async_sync() {
    return run_on(impl_->ex, [d = impl_]() -> asio::awaitable<Error> {
        co_await asio::this_coro::throw_if_cancelled(false);
        co_return co_await d->sync(true);
    });
}

asio::awaitable<void> PeerNode::async_quit() {
    return run_on(impl_->ex, [d = impl_]() -> asio::awaitable<void> {
        co_await asio::this_coro::throw_if_cancelled(false);
        co_await d->quit();
    });
}

std::uint32_t PeerNode::id() const noexcept { return impl_->options.id; }
std::uint16_t PeerNode::port() const noexcept { return impl_->server ? impl_->server->port() : 0; }
const std::filesystem::path& PeerNode::folder() const noexcept { return impl_->folder->path(); }
bool PeerNode::registered() const noexcept { return impl_->is_registered->load(); }
std::size_t PeerNode::active_uploads() const noexcept {
    return impl_->server ? impl_->server->busy_count() : 0;
}

} // namespace p2pshare
