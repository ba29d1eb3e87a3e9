// The index's state in this process's memory (index_store), behind the store interface: the
// default, for one index server. Each operation completes at once, on the caller's executor.
#pragma once

#include "index/backend.hpp"
#include "index_store.hpp"

#include <p2pshare/limits.hpp>

namespace p2pshare::detail {

class memory_backend final : public index_backend {
public:
    memory_backend(std::chrono::milliseconds ttl, const IndexLimits& limits);

    std::chrono::milliseconds ttl() const noexcept override { return store_.ttl(); }
    boost::asio::awaitable<api_result<store_lease>> async_register(register_request r,
                                                                   std::string client) override;
    boost::asio::awaitable<api_result<store_lease>> async_renew(std::uint32_t id,
                                                                std::string token) override;
    boost::asio::awaitable<api_result<void>> async_replace_files(
        std::uint32_t id, std::string token, std::vector<file_entry> files) override;
    boost::asio::awaitable<api_result<void>> async_unregister(std::uint32_t id,
                                                              std::string token) override;
    boost::asio::awaitable<api_result<store_page>> async_list(list_query q) override;
    boost::asio::awaitable<api_result<void>> async_lookup(std::span<const std::string_view> names,
                                                          lookup_results& out) override;
    boost::asio::awaitable<api_result<store_counts>> async_counts() override;
    boost::asio::awaitable<void> async_stop() override;
    void count_expiries_in(counter* c) noexcept override { store_.count_expiries_in(c); }

private:
    index_store store_;
};

} // namespace p2pshare::detail
