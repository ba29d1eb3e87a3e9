// The peer's typed client of the index: one awaitable per endpoint, built on the sans-I/O codec
// (index_codec.hpp) and one kept-alive connection that is reopened when the index closed it.
// Calls that overlap (the lease loop and a lookup, say) each get a connection of their own, so
// a long listing never delays a renewal. It knows every index server of the peer's list and
// sends each call to the current one; its callers decide when to move to the next
// (index_session).
#pragma once

#include "../index_codec.hpp"

#include <p2pshare/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace p2pshare::detail {

class tls_client_context;

/// Every operation runs on the executor given (which must be serial) and fails with
/// errc::unreachable or errc::timeout when the index cannot be reached in time, errc::bad_response
/// when it answers what the protocol does not allow, or the error the index answered. Cancelled
/// (per-operation cancellation), the exchange in flight ends at once with errc::unreachable
/// ("cancelled") and its connection is dropped; the caller, whose cancellation state says so,
/// reports operation_aborted.
class index_client {
public:
    struct timeouts {
        std::chrono::milliseconds connect{3'000};
        std::chrono::milliseconds request{10'000};
    };

    /// `indexes`: the index servers in order of preference (at least one); calls go to the
    /// first until move_on().
    index_client(boost::asio::any_io_executor executor, std::vector<ServerAddress> indexes);
    index_client(boost::asio::any_io_executor executor, std::vector<ServerAddress> indexes,
                 timeouts t);
    ~index_client();
    index_client(const index_client&) = delete;
    index_client& operator=(const index_client&) = delete;

    /// The index server that calls go to now.
    const ServerAddress& address() const noexcept { return addresses_[current_]; }
    /// Its place in the list; a caller keeps it to say which one failed (move_on).
    std::size_t current() const noexcept { return current_; }
    std::size_t size() const noexcept { return addresses_.size(); }
    const ServerAddress& address(std::size_t i) const noexcept { return addresses_[i]; }
    /// The index server at `from` failed: calls go to the next one (after the last: the first)
    /// from now on, the kept-alive connection is dropped and the limits are asked again. Nothing
    /// is done when another call moved away from `from` already; returns whether it moved.
    bool move_on(std::size_t from);

    /// The longest a call of the lease may take, connection included (register and the health
    /// asked before it, renew, file list, unregister): the lease loop keeps a failover round
    /// within the lease (lease_schedule::call_limit). Never more than the request timeout.
    void limit_lease_calls(std::chrono::milliseconds limit) noexcept {
        lease_limit_ = std::min(limit, timeouts_.request);
    }
    std::chrono::milliseconds request_timeout() const noexcept { return timeouts_.request; }

    boost::asio::awaitable<api_result<lease_grant>> async_register(const register_request& r);
    boost::asio::awaitable<api_result<std::chrono::milliseconds>> async_renew(
        std::uint32_t id, const std::string& token);
    boost::asio::awaitable<api_result<void>> async_replace_files(
        std::uint32_t id, const std::string& token, const std::vector<file_entry>& files);
    boost::asio::awaitable<api_result<void>> async_unregister(std::uint32_t id,
                                                              const std::string& token);
    /// Every name (all pages, in pages of the index's own limit), optionally containing
    /// `contains`.
    boost::asio::awaitable<api_result<std::vector<std::string>>> async_list(std::string contains);
    /// The sources of each name, in order, in as many requests as the index's limit needs.
    /// `names` must be distinct.
    boost::asio::awaitable<api_result<std::vector<std::vector<source_entry>>>> async_lookup(
        std::vector<std::string> names);
    /// The index's limits (asked once, then kept until forget_bounds() or a move), within the
    /// deadline of a call of the lease.
    boost::asio::awaitable<api_result<index_bounds>> async_bounds();
    /// The limits last read, or the protocol's defaults.
    index_bounds bounds() const { return bounds_.value_or(index_bounds{}); }
    /// The index may have restarted with other limits: ask again next time.
    void forget_bounds() noexcept { bounds_.reset(); }

    /// Drops the kept-alive connection.
    void close();

    /// The CAs that index servers reached over TLS (`https://` addresses) are checked against;
    /// none given: the system's, loaded at the first such call. Before the first call.
    void use_tls(std::shared_ptr<tls_client_context> context) noexcept {
        tls_ = std::move(context);
    }

private:
    struct answer {
        unsigned status = 0;
        std::string body;
    };
    /// One request to the current index server, answered within `limit` (connection included).
    boost::asio::awaitable<api_result<answer>> exchange(index_request request, std::string token,
                                                        std::chrono::milliseconds limit);

    struct idle_connection;
    boost::asio::any_io_executor executor_;
    std::vector<ServerAddress> addresses_;
    std::size_t current_ = 0;
    /// Counts the moves: a call that began before one keeps neither its connection nor the
    /// limits it read, which belong to the index it left.
    std::uint64_t moves_ = 0;
    timeouts timeouts_;
    std::chrono::milliseconds lease_limit_;
    std::unique_ptr<idle_connection> idle_;
    std::optional<index_bounds> bounds_;
    std::shared_ptr<tls_client_context> tls_;
};

} // namespace p2pshare::detail
