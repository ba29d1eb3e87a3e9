// The peer's typed client of the index: one awaitable per endpoint, built on the sans-I/O codec
// (index_codec.hpp) and one kept-alive connection that is reopened when the index closed it.
// Calls that overlap (the lease loop and a lookup, say) each get a connection of their own, so
// a long listing never delays a renewal.
#pragma once

#include "../index_codec.hpp"

#include <p2pshare/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace p2pshare::detail {

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

    index_client(boost::asio::any_io_executor executor, ServerAddress index);
    index_client(boost::asio::any_io_executor executor, ServerAddress index, timeouts t);
    ~index_client();
    index_client(const index_client&) = delete;
    index_client& operator=(const index_client&) = delete;

    const ServerAddress& address() const noexcept { return address_; }

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
    /// The index's limits (asked once, then kept until forget_bounds()).
    boost::asio::awaitable<api_result<index_bounds>> async_bounds();
    /// The limits last read, or the protocol's defaults.
    index_bounds bounds() const { return bounds_.value_or(index_bounds{}); }
    /// The index may have restarted with other limits: ask again next time.
    void forget_bounds() noexcept { bounds_.reset(); }

    /// Drops the kept-alive connection.
    void close();

private:
    struct answer {
        unsigned status = 0;
        std::string body;
    };
    boost::asio::awaitable<api_result<answer>> exchange(index_request request, std::string token);

    struct idle_connection;
    boost::asio::any_io_executor executor_;
    ServerAddress address_;
    timeouts timeouts_;
    std::unique_ptr<idle_connection> idle_;
    std::optional<index_bounds> bounds_;
};

} // namespace p2pshare::detail
