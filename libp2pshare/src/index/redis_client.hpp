// A client of Redis, standalone or Cluster, for the index's store: which it is, is found out
// from the seeds (INFO cluster); in a cluster each command goes to the master that serves its
// key's slot (CLUSTER SLOTS), following MOVED, ASK and TRYAGAIN, and a script unknown to a node
// (NOSCRIPT) is loaded there. One pipelined connection per node (redis_connection) carries every
// request of the index server. Runs on the index's serial executor.
#pragma once

#include "async_mutex.hpp"
#include "index/redis_connection.hpp"

#include <p2pshare/config.hpp>

#include <array>
#include <map>
#include <optional>

namespace p2pshare::detail {

/// A Lua script, called by its SHA-1 (EVALSHA) and loaded where a node does not have it.
struct redis_script {
    explicit redis_script(std::string source);
    std::string source;
    std::string sha1; ///< lowercase hex
};

/// One command for redis_client::async_run.
struct redis_command {
    std::string bytes;                    ///< one command in RESP (append_command)
    std::optional<std::uint16_t> slot;    ///< the slot of its keys; none: any node will do
    const redis_script* script = nullptr; ///< set for an EVALSHA of it (NOSCRIPT loads it)
};

/// Appends EVALSHA of `script` with its keys and arguments.
void append_evalsha(std::string& out, const redis_script& script,
                    std::span<const std::string_view> keys, std::span<const std::string_view> args);

class redis_client {
public:
    /// `executor` must be serial. Nothing is connected before the first request.
    redis_client(boost::asio::any_io_executor executor, std::vector<ServerAddress> seeds,
                 redis_settings settings);

    /// Runs `commands`, each on the node that serves its slot (all on the one node of a
    /// standalone server), pipelined per node, the nodes at once; the replies in order. An
    /// error reply is a reply: only MOVED, ASK, TRYAGAIN and NOSCRIPT are acted on here.
    /// errc::store_unavailable when no seed can be reached, a node fails (see
    /// redis_connection::async_exec), or a command is still redirected after a few rounds.
    boost::asio::awaitable<api_result<std::vector<resp_value>>> async_run(
        std::vector<redis_command> commands);

    /// Runs `command` on every master (one of a standalone server): for what is spread over the
    /// cluster, such as counts. The replies in the order of the masters.
    boost::asio::awaitable<api_result<std::vector<resp_value>>> async_on_every_master(
        std::string command);

    /// Scripts to load on every master whenever the client learns which nodes are masters, ahead
    /// of any command it sends them; a node that still lacks one (restarted, or added to the
    /// cluster since) answers NOSCRIPT, and the script is loaded there and the command sent again.
    /// The scripts must outlive the client.
    void preload(std::vector<const redis_script*> scripts) { preload_ = std::move(scripts); }

    /// Whether the seeds form a cluster (known after the first request).
    bool cluster() const noexcept { return cluster_; }
    /// Closes every connection: requests waiting fail with store_unavailable.
    void close();

private:
    /// Where a command goes again: to the node an ASK named, and whether its script must be
    /// loaded there first.
    struct route {
        std::shared_ptr<redis_connection> ask;
        bool load_script = false;
    };
    /// Whether `reply`, from `from`, sends `c` to another round (MOVED, ASK, TRYAGAIN, or
    /// NOSCRIPT of a script), noting where in `r` and learning the slot map from a MOVED.
    bool redirected(const redis_command& c, const resp_value& reply, const redis_connection& from,
                    route& r, bool& tryagain);
    boost::asio::awaitable<api_result<void>> ensure_topology();
    boost::asio::awaitable<api_result<void>> discover();
    std::shared_ptr<redis_connection> node(const std::string& host, std::uint16_t port);
    /// Queues SCRIPT LOAD of every preloaded script on every master; nothing waits for them.
    void load_scripts();

    boost::asio::any_io_executor executor_;
    std::vector<ServerAddress> seeds_;
    redis_settings settings_;
    async_mutex topology_lock_;
    bool known_ = false; ///< the topology was found out
    bool stale_ = false; ///< a MOVED or a failed node said it changed: find it out again
    bool cluster_ = false;
    std::map<std::string, std::shared_ptr<redis_connection>> nodes_; ///< by host:port
    std::vector<std::shared_ptr<redis_connection>> masters_;
    std::array<std::int16_t, slot_count> slots_{}; ///< index into masters_, -1: unserved
    std::string scratch_; ///< a node's commands of a round, before they are queued
    std::vector<const redis_script*> preload_;
};

/// The seeds of a store address "redis://HOST:PORT[,HOST:PORT...]"; errc::bad_config otherwise.
api_result<std::vector<ServerAddress>> parse_redis_address(std::string_view address);

} // namespace p2pshare::detail
