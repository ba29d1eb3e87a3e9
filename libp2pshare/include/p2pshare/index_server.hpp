// p2pshare — the index server: which peers are online and which files each one shares.
#pragma once

#include <p2pshare/error.hpp>
#include <p2pshare/limits.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace p2pshare {

/// The counters an index server shows at GET /metrics (defined inside the library).
struct IndexMetrics;

/// Counters that several IndexServers of one process may share (IndexServerOptions::metrics),
/// so that each shows the figures of them all, as `indexserver --threads` does.
std::shared_ptr<IndexMetrics> make_index_metrics();

struct IndexServerOptions {
    std::string host = "127.0.0.1"; ///< address to listen on
    std::uint16_t port = 0;         ///< 0 picks a free port
    /// Where `server.config` is written (the `indexserver` app says "config"). Empty (the
    /// default): the library writes no file.
    std::filesystem::path config_dir;
    std::chrono::milliseconds lease_ttl{30'000}; ///< a peer not renewed within this disappears
    /// Where the index keeps its state: "memory" (this process's; the default), or
    /// "redis://HOST:PORT[,HOST:PORT...]": a Redis server or Redis Cluster (found out from the
    /// nodes named), shared by every index server given it, which then serve one network
    /// (docs/scaling.md). Give them all the same lease_ttl.
    std::string store = "memory";
    /// Each wait on a Redis store: past it, the request gets 503 store_unavailable.
    std::chrono::milliseconds store_timeout{2'000};
    /// Listen with SO_REUSEPORT: several index servers (threads of one process, or processes)
    /// on one shared store may then listen on one port, and the kernel spreads the connections
    /// over them. Each must set it. For a store they share (Redis): servers on the memory store
    /// would each answer for their own network.
    bool reuse_port = false;
    /// Speak TLS (docs/protocol.md §11) with the PEM certificate chain `tls_cert` and its key
    /// `tls_key`; both empty (the default): plain HTTP. server.config then says `tls=true`.
    std::filesystem::path tls_cert;
    std::filesystem::path tls_key;
    /// The counters behind GET /metrics; none (the default): its own.
    std::shared_ptr<IndexMetrics> metrics;
    ServerLimits limits{};
    IndexLimits index{};
};

struct IndexStats {
    std::size_t peers = 0; ///< live peers
    std::size_t names = 0; ///< distinct file names
    std::size_t files = 0; ///< (peer, file) pairs
};

/// An HTTP/1.1 + JSON index server (docs/protocol.md). It runs on the executor it is given, which
/// must be serial: a strand (`boost::asio::make_strand(io)`, when several threads run the
/// io_context), or the executor of an io_context that one thread runs. Every public operation may
/// be awaited from any coroutine and honours per-operation cancellation: async_stop cancelled
/// closes the connections it was waiting for at once; async_stats completes at once anyway.
class IndexServer {
public:
    IndexServer(boost::asio::any_io_executor executor, IndexServerOptions options);
    ~IndexServer();
    IndexServer(const IndexServer&) = delete;
    IndexServer& operator=(const IndexServer&) = delete;

    /// Binds, listens, writes `config_dir/server.config` and starts accepting. Fails (and does
    /// not run) when the address cannot be bound or the file cannot be written, with the
    /// system's error and a message naming the address or the file; errc::bad_config for a
    /// `store` it cannot parse, or a TLS certificate or key it cannot use (a key that is not
    /// the certificate's, a file it cannot read); errc::bad_request when it was started already. A
    /// Redis store is not reached here: requests that find it unreachable get 503
    /// store_unavailable, and the index serves again once it answers.
    Error start();

    /// The port it listens on (the real one when 0 was asked), valid after start().
    std::uint16_t port() const noexcept;
    const std::string& host() const noexcept;

    /// Stops accepting, lets requests in flight finish for up to `limits.stop_grace`, then closes
    /// every connection. Completes when no session is left. Safe to call more than once.
    boost::asio::awaitable<void> async_stop();

    /// Counters of the live index, for status output and tests.
    boost::asio::awaitable<IndexStats> async_stats();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace p2pshare
