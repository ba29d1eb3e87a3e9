// The index's state in Redis, standalone or Cluster, shared by any number of index servers
// (docs/scaling.md has the key layout, the steps of each operation and the failure modes).
//
// A peer's own keys share one hash slot ({p<id>}), so registering, renewing, replacing the file
// list and unregistering are each one Lua script there: atomic per peer, with the lease as the
// key's TTL, counted by Redis's clock. What is derived from the peers' file lists, the sources
// of each name, the listing and the word index, lives in 64 name buckets ({n<k>}); each change
// to a bucket is one script too, run after the peer's, before the answer. Lookups check each
// source against the peer's own keys, so that a peer whose lease ended is in no answer of any
// index server. Expired peers' names are removed by a sweeper that every index server runs:
// 64 expiry buckets ({e<j>}), each claimed by one server at a time with a lock key. No key is
// touched by every request.
#pragma once

#include "index/backend.hpp"
#include "index/redis_client.hpp"

#include <p2pshare/limits.hpp>

#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace p2pshare::detail {

class redis_backend final : public index_backend {
public:
    /// `executor` must be serial (the index's). Nothing is connected before the first request.
    redis_backend(boost::asio::any_io_executor executor, std::vector<ServerAddress> seeds,
                  std::chrono::milliseconds ttl, const IndexLimits& limits,
                  redis_settings settings);
    ~redis_backend() override;

    std::chrono::milliseconds ttl() const noexcept override { return ttl_; }
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

    /// Runs one round of the sweeper now: the expired peers of every expiry bucket this server
    /// could claim are removed from the names. Returns how many peers it removed. (The sweeper
    /// also runs on its own every quarter lease once start_sweeper() was called.)
    boost::asio::awaitable<api_result<std::size_t>> async_sweep();
    void start_sweeper();
    void count_expiries_in(counter* c) noexcept override;

    static constexpr std::size_t name_buckets = 64;
    static constexpr std::size_t expiry_buckets = 64;

private:
    struct shared;
    static boost::asio::awaitable<api_result<std::size_t>> sweep_once(std::shared_ptr<shared> s);
    static boost::asio::awaitable<void> sweep_loop(std::shared_ptr<shared> s);
    /// One page of the listing, as it is (names whose leases ended included), of at most
    /// `limit` names.
    static boost::asio::awaitable<api_result<store_page>> list_round(std::shared_ptr<shared> s,
                                                                     const list_query& q,
                                                                     std::size_t limit);

    std::shared_ptr<shared> s_;
    std::chrono::milliseconds ttl_;
};

} // namespace p2pshare::detail
