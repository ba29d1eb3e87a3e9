// The peer's file server: GET/HEAD of the shared files with byte ranges, a strong ETag (the
// SHA-256) and If-Match, their piece hashes, its listing, health and metrics (docs/protocol.md
// §7 and §10), over detail::http_server. Bodies go
// out with sendfile(2) from the page cache; a part of a file that is not in the page cache is
// read on the blocking executor, so a slow disk never stalls the peer's other work.
#pragma once

#include "../http_server.hpp"
#include "../rate_limiter.hpp"
#include "shared_folder.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace p2pshare::detail {

class tls_server_context;

class file_server : public std::enable_shared_from_this<file_server> {
public:
    struct health {
        bool registered = false;
        bool stopping = false;
        std::size_t idle_connections = 0; ///< the downloads' keep-alive connections to sources
        std::string index;                ///< the index server in use, "host:port"
        std::chrono::milliseconds lease_ttl{0};
    };

    /// `executor` must be serial (the peer's). `status` is asked for /v1/health.
    file_server(boost::asio::any_io_executor executor, boost::asio::any_io_executor blocking,
                std::shared_ptr<shared_folder> folder, std::uint32_t id, ServerLimits limits,
                std::function<health()> status, std::string log_name,
                std::uint64_t max_upload_rate = 0, std::shared_ptr<peer_metrics> metrics = {});

    /// With `tls`, every connection speaks TLS with that certificate.
    boost::system::error_code listen(const std::string& host, std::uint16_t port,
                                     std::shared_ptr<const tls_server_context> tls = {});
    std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }
    void start();
    /// Lets uploads in progress finish (cut after limits.stop_grace without progress).
    boost::asio::awaitable<void> async_stop();
    void cancel();
    std::size_t busy_count() const noexcept { return server_ ? server_->busy_count() : 0; }

private:
    boost::asio::awaitable<bool> handle(request& req, connection& conn);
    /// A shared file opened for a request, with the hashes of what is on disk now.
    struct opened_file {
        std::shared_ptr<unique_fd> fd;
        std::uint64_t size = 0;
        std::string sha256;
        std::shared_ptr<const std::vector<digest>> pieces; ///< null: not hashed in pieces yet
    };
    /// Opens `name` in the folder; a file changed since it was hashed is hashed again first.
    boost::asio::awaitable<api_result<opened_file>> open_shared(const std::string& name);
    boost::asio::awaitable<bool> serve_file(request& req, connection& conn,
                                            const std::string& name);
    boost::asio::awaitable<bool> serve_pieces(request& req, connection& conn,
                                              const std::string& name);
    /// A body of `length` bytes from `first` over TLS: SSL_sendfile where the kernel encrypts,
    /// otherwise read (from the blocking executor unless in the page cache) and encrypted.
    boost::asio::awaitable<bool> send_tls_body(connection& conn, std::shared_ptr<unique_fd> fd,
                                               std::uint64_t first, std::uint64_t length);
    /// GET /metrics: the peer's counters in the Prometheus text format.
    response metrics_response(const request& req) const;

    boost::asio::any_io_executor executor_;
    boost::asio::any_io_executor blocking_;
    rate_limiter upload_; ///< shared by every upload (PeerOptions::max_upload_rate)
    std::shared_ptr<shared_folder> folder_;
    std::uint32_t id_;
    ServerLimits limits_;
    std::function<health()> status_;
    std::string log_name_;
    std::shared_ptr<peer_metrics> metrics_; ///< always set (its own when none was given)
    std::shared_ptr<http_server> server_;
};

} // namespace p2pshare::detail
