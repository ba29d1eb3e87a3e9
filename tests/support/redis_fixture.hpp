// Real Redis servers for the tests, started and stopped by the tests themselves: a standalone
// redis-server and a Redis Cluster of three masters, each server on a free loopback port with its
// own temporary folder and no persistence. The servers are children of the test process (never
// daemonized) and die with it, even when it is killed.
//
// The harness speaks RESP itself over a blocking socket and does not use the library's Redis
// code: that code is tested against these servers, so it must not be what checks them.
#pragma once

#include "test_support.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace p2pshare::test {

/// How long a server or a cluster may take to be ready: only a hung start reaches it.
inline constexpr std::chrono::milliseconds redis_start_deadline = 20s;

/// One RESP2 reply.
struct redis_reply {
    enum class kind { status, error, integer, bulk, nil, array };
    kind type = kind::nil;
    std::string text;                  ///< status, error and bulk replies
    std::int64_t integer = 0;          ///< integer replies
    std::vector<redis_reply> elements; ///< array replies

    bool is_error() const noexcept { return type == kind::error; }
};

/// A reply as redis-cli --raw prints it: strings as they are, integers in decimal, nil as an
/// empty string, arrays one element a line (nested arrays flattened).
std::string to_string(const redis_reply& reply);

/// An error reply (-ERR ..., -MOVED ...) to a command sent with command().
class redis_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class T>
std::string redis_arg(const T& value) {
    if constexpr (std::is_arithmetic_v<T>) {
        return std::to_string(value);
    } else {
        return std::string(std::string_view(value));
    }
}
} // namespace detail

/// A blocking connection to 127.0.0.1:port. Every call has `timeout` to complete; a connection
/// that fails or times out throws std::runtime_error and is unusable afterwards.
class redis_connection {
public:
    explicit redis_connection(std::uint16_t port, std::chrono::milliseconds timeout = 5s);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    /// Sends one command and reads its reply; error replies are returned, not thrown.
    redis_reply call(const std::vector<std::string>& args);
    /// The reply as a string (to_string); throws redis_error for an error reply.
    template <class... Args>
    std::string command(const Args&... args) {
        return command_args({detail::redis_arg(args)...});
    }
    std::string command_args(const std::vector<std::string>& args);

private:
    void send_all(std::string_view bytes, std::chrono::steady_clock::time_point deadline);
    std::string read_line(std::chrono::steady_clock::time_point deadline);
    std::string read_exact(std::size_t n, std::chrono::steady_clock::time_point deadline);
    void fill(std::chrono::steady_clock::time_point deadline);
    redis_reply read_reply(std::chrono::steady_clock::time_point deadline, int depth);

    int fd_ = -1;
    std::uint16_t port_;
    std::chrono::milliseconds timeout_;
    std::string in_;
    std::size_t at_ = 0; ///< where the unread part of in_ starts
};

/// True when 127.0.0.1:port answers PING with PONG within `timeout`.
bool redis_ping(std::uint16_t port, std::chrono::milliseconds timeout = 1s);

/// Removes the folders of this harness left by test processes that no longer run (killed, so
/// their destructors did not run). The first server of a process does it.
void sweep_stale_redis_folders();

struct redis_options {
    bool cluster = false; ///< cluster-enabled, with nodes.conf in the server's folder
    /// Short, so that a stopped node is seen as failed (and the cluster as down) within seconds.
    std::chrono::milliseconds cluster_node_timeout = 2000ms;
    std::vector<std::string> extra_args; ///< more `--name value` settings
};

/// One redis-server process: 127.0.0.1 on a free port, its own temporary folder (its log, and
/// nodes.conf for a cluster node), no persistence. Started by the constructor, which returns once
/// it answers PING; stopped and its folder removed by the destructor.
class redis_server {
public:
    explicit redis_server(redis_options options = {});
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    /// What the index server takes: "redis://127.0.0.1:P".
    std::string seeds() const { return "redis://" + address(); }
    const std::filesystem::path& dir() const noexcept { return dir_.path(); }
    std::filesystem::path log_path() const { return dir_ / "redis.log"; }
    /// The last `lines` lines of the server's log, for the message of a failing test.
    std::string log_tail(std::size_t lines = 30) const;
    bool running();
    int pid() const;

    /// SHUTDOWN NOSAVE, then waits for the process (SIGKILL after a few seconds). The port and
    /// the folder are kept for start().
    void stop();
    /// SIGKILL, as a crash would: nothing is written on the way out.
    void kill();
    /// Starts the server again on the same port with the same folder (a cluster node reads its
    /// nodes.conf and rejoins); returns once it answers PING.
    void start();

    redis_reply call(const std::vector<std::string>& args);
    /// One command on a fresh connection, its reply as a string; throws redis_error for an error
    /// reply. E.g. command("SET", "k", "v"), command("INFO", "memory").
    template <class... Args>
    std::string command(const Args&... args) {
        return command_args({detail::redis_arg(args)...});
    }
    std::string command_args(const std::vector<std::string>& args);
    void flushall() { command("FLUSHALL"); }

private:
    void launch_and_wait(bool fixed_port);

    redis_options options_;
    temp_dir dir_;
    std::uint16_t port_ = 0;
    std::unique_ptr<child> process_; ///< destroyed (and killed if still running) before dir_
};

/// One slot range of CLUSTER SLOTS and the master that serves it.
struct redis_slot_range {
    int first = 0;
    int last = 0;
    std::uint16_t port = 0;
    std::string node_id;
};

class redis_cluster;

/// A `redis-cli --cluster reshard` running in the background.
class redis_reshard {
public:
    redis_reshard(redis_cluster& cluster, std::unique_ptr<child> process,
                  std::filesystem::path log);
    /// Lets a reshard not waited for finish (see the definition).
    ~redis_reshard();
    redis_reshard(redis_reshard&&) = default;
    /// Waits for redis-cli to finish (throwing with its output when it failed), then for every
    /// node to agree on the new slot map.
    void wait(std::chrono::milliseconds timeout = 60s);
    child& process() noexcept { return *process_; }
    const std::filesystem::path& log_path() const noexcept { return log_; }

private:
    redis_cluster& cluster_;
    std::unique_ptr<child> process_;
    std::filesystem::path log_;
};

/// Three masters (no replicas) made into a cluster by `redis-cli --cluster create`; the
/// constructor returns once every node reports cluster_state:ok and knows all 16384 slots.
class redis_cluster {
public:
    static constexpr std::size_t size = 3;

    explicit redis_cluster(std::chrono::milliseconds node_timeout = 2000ms);
    ~redis_cluster();
    redis_cluster(const redis_cluster&) = delete;
    redis_cluster& operator=(const redis_cluster&) = delete;

    /// One cluster for the whole test process, started by the first call and stopped at exit:
    /// starting a cluster costs seconds. Tests that share it begin with reset().
    static redis_cluster& shared();

    redis_server& node(std::size_t i) { return *nodes_.at(i); }
    /// What the index server takes: "redis://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3".
    std::string seeds() const;
    /// CLUSTER MYID of node i (the id stays across restarts: it is in nodes.conf).
    const std::string& node_id(std::size_t i) const { return ids_.at(i); }

    /// Every node running reports cluster_state:ok, cluster_slots_ok:16384 and all the nodes,
    /// and they agree on who serves which slots. Throws after `timeout` with the nodes' logs.
    void wait_ready(std::chrono::milliseconds timeout = redis_start_deadline);
    /// A field of CLUSTER INFO on node i, e.g. cluster_info(0, "cluster_state") == "fail" once
    /// the node timeout has passed with a master stopped.
    std::string cluster_info(std::size_t i, std::string_view field);
    /// node(i).stop(). The other nodes flag it failed, and report cluster_state:fail (its slots
    /// are not served), about a second after the node timeout (2.9 s with 2000 ms here).
    void stop(std::size_t i) { node(i).stop(); }
    void kill(std::size_t i) { node(i).kill(); }
    /// Starts node i again (same port, folder and nodes.conf: same node id, same slots) and
    /// waits for wait_ready(). It comes back empty (no persistence). It takes seconds: a master
    /// that starts reports cluster_state:ok only 2 s after (Redis's CLUSTER_WRITABLE_DELAY), and
    /// once flagged failed, the others clear the flag only 2 node timeouts after setting it
    /// (with 2000 ms: a node stopped until the cluster failed is ok again 4 s after start).
    void start(std::size_t i);
    /// Starts whatever node a previous test left stopped, waits for wait_ready(), and empties
    /// every node: the start of a test on the shared cluster.
    void reset();

    /// One command sent to node i; throws redis_error for an error reply (-MOVED included).
    template <class... Args>
    std::string command_on(std::size_t i, const Args&... args) {
        return node(i).command(args...);
    }
    /// One command sent to node 0 and redirected (MOVED, ASK) to the node that serves its key.
    template <class... Args>
    std::string command(const Args&... args) {
        return command_args({detail::redis_arg(args)...});
    }
    std::string command_args(const std::vector<std::string>& args);
    /// FLUSHALL on every master.
    void flushall();

    /// The index of the node that serves `key` (CLUSTER KEYSLOT, then CLUSTER SLOTS).
    std::size_t node_for_key(std::string_view key);
    std::size_t node_for_slot(int slot);
    /// CLUSTER SLOTS as node i sees it, by first slot.
    std::vector<redis_slot_range> slots(std::size_t i = 0);
    /// The index of the node listening on `port`.
    std::size_t node_index(std::uint16_t port) const;

    /// Moves `count` slots from node `from` to node `to` with redis-cli --cluster reshard and
    /// waits until every node agrees on the result.
    void reshard(std::size_t from, std::size_t to, int count);
    /// The same, running in the background while the test does other work; wait() on it.
    redis_reshard start_reshard(std::size_t from, std::size_t to, int count);

private:
    /// "" when wait_ready() would return, else why not; `open_slots` tells whether a slot is
    /// left half migrated.
    std::string not_ready(bool& open_slots);
    /// A readable state of every node, for the message of a failed wait.
    std::string describe();

    temp_dir dir_; ///< redis-cli's output
    std::vector<std::unique_ptr<redis_server>> nodes_;
    std::vector<std::string> ids_;
    int tool_runs_ = 0;
};

/// For BOOST_FIXTURE_TEST_CASE and BOOST_FIXTURE_TEST_SUITE: every test gets the process's
/// shared cluster with every node running, ready and empty.
struct shared_redis_cluster {
    redis_cluster& cluster = redis_cluster::shared();
    shared_redis_cluster() { cluster.reset(); }
};

} // namespace p2pshare::test
