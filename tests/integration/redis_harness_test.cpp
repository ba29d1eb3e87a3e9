// The Redis test harness itself (tests/support/redis_fixture.hpp): real servers that the tests
// start and stop, checked before the index server's Redis store is tested against them.
#include "redis_fixture.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
namespace test = p2pshare::test;
namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace {

/// Nothing listens on 127.0.0.1:port any more.
bool refuses(std::uint16_t port) {
    try {
        test::redis_connection c(port, 1s);
        return false;
    } catch (const std::exception& e) {
        return std::string(e.what()).find("Connection refused") != std::string::npos;
    }
}

/// The process has ended (a zombie counts: it runs no more, only its parent has not reaped it).
bool gone(int pid) {
    if (::kill(pid, 0) != 0) return errno == ESRCH;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = content.rfind(')');
    return paren != std::string::npos && content.compare(paren, 3, ") Z") == 0;
}

/// The cluster's hash slot of a key without a hash tag: CRC16 (XMODEM) modulo 16384.
int key_slot(std::string_view key) {
    std::uint16_t crc = 0;
    for (const char c : key) {
        crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(c) << 8);
        for (int i = 0; i < 8; ++i)
            crc = static_cast<std::uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc & 16383;
}

/// How many slots each node serves, by node index.
std::map<std::size_t, int> slot_counts(test::redis_cluster& cluster, std::size_t seen_by) {
    std::map<std::size_t, int> counts;
    for (const auto& r : cluster.slots(seen_by))
        counts[cluster.node_index(r.port)] += r.last - r.first + 1;
    return counts;
}

} // namespace

BOOST_AUTO_TEST_SUITE(redis_harness)

BOOST_AUTO_TEST_CASE(standalone_answers_and_is_gone_after) {
    std::uint16_t port = 0;
    int pid = 0;
    fs::path dir;
    {
        test::redis_server server;
        port = server.port();
        pid = server.pid();
        dir = server.dir();
        BOOST_TEST(server.seeds() == "redis://127.0.0.1:" + std::to_string(port));
        BOOST_TEST(server.command("PING") == "PONG");
        BOOST_TEST(server.command("SET", "greeting", "hello") == "OK");
        BOOST_TEST(server.command("GET", "greeting") == "hello");
        BOOST_TEST(server.command("INCRBY", "n", 41) == "41");
        BOOST_TEST(server.command("GET", "missing") == "");
        BOOST_TEST((server.call({"GET", "missing"}).type == test::redis_reply::kind::nil));
        BOOST_CHECK_THROW(server.command("NO-SUCH-COMMAND"), test::redis_error);

        // Nothing written anywhere but the folder: no persistence, the folder as --dir.
        BOOST_TEST(server.command("CONFIG", "GET", "save") == "save\n");
        BOOST_TEST(server.command("CONFIG", "GET", "appendonly") == "appendonly\nno");
        BOOST_TEST(server.command("CONFIG", "GET", "dir") == "dir\n" + dir.string());
        BOOST_TEST(server.command("CONFIG", "GET", "bind") == "bind\n127.0.0.1");
        BOOST_TEST(fs::exists(server.log_path()));
        BOOST_TEST(server.log_tail().find("Ready to accept connections") != std::string::npos);
    }
    BOOST_TEST(refuses(port));
    BOOST_TEST(gone(pid));
    BOOST_TEST(!fs::exists(dir));
}

BOOST_AUTO_TEST_CASE(standalone_stop_start_and_kill) {
    test::redis_server server;
    const auto port = server.port();
    server.command("SET", "k", "v");

    server.stop();
    BOOST_TEST(!server.running());
    BOOST_TEST(refuses(port));
    BOOST_TEST(fs::exists(server.dir()));
    BOOST_TEST(!fs::exists(server.dir() / "dump.rdb")); // SHUTDOWN NOSAVE, and no save points

    server.start();
    BOOST_TEST(server.port() == port);
    BOOST_TEST(server.command("PING") == "PONG");
    BOOST_TEST(server.command("EXISTS", "k") == "0"); // no persistence: it comes back empty

    const int pid = server.pid();
    server.kill();
    BOOST_TEST(gone(pid));
    BOOST_TEST(refuses(port));
    server.start();
    BOOST_TEST(server.command("PING") == "PONG");
    BOOST_TEST(!fs::exists(server.dir() / "dump.rdb"));
}

BOOST_AUTO_TEST_CASE(restart_waits_for_its_port) {
    // A port taken while the server is stopped (by anything: an outgoing connection's local
    // port, another test) makes redis-server exit at once; start() keeps trying the same port,
    // which is how a cluster knows the node.
    test::redis_server server;
    const auto port = server.port();
    server.stop();
    std::promise<void> bound;
    std::jthread holder([&bound, port, log = server.log_path()] {
        try {
            boost::asio::io_context io;
            // With SO_REUSEADDR, as the stopped server's connections are in TIME_WAIT.
            boost::asio::ip::tcp::acceptor acceptor(
                io, {boost::asio::ip::make_address("127.0.0.1"), port});
            bound.set_value();
            // Taken until redis-server has found it taken (its log says so), then freed.
            test::eventually(
                [&] {
                    std::ifstream in(log);
                    const std::string text{std::istreambuf_iterator<char>(in), {}};
                    return text.find("Address already in use") != std::string::npos;
                },
                60s);
        } catch (...) {
            bound.set_exception(std::current_exception());
        }
    });
    bound.get_future().get(); // throws if the port could not be taken
    server.start();
    BOOST_TEST(server.port() == port);
    BOOST_TEST(server.command("PING") == "PONG");
    BOOST_TEST(server.log_tail(200).find("Address already in use") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_redis_server_is_reported) {
    const std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    ::setenv("PATH", "/nonexistent", 1);
    std::string message;
    try {
        test::redis_server server;
    } catch (const std::exception& e) {
        message = e.what();
    }
    ::setenv("PATH", path.c_str(), 1);
    BOOST_TEST(message.find("redis-server is not installed") != std::string::npos, message);
    BOOST_TEST(message.find("make deps") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(failed_start_says_why) {
    test::redis_options options;
    options.extra_args = {"--no-such-setting", "1"};
    std::string message;
    try {
        test::redis_server server(options);
    } catch (const std::exception& e) {
        message = e.what();
    }
    BOOST_TEST(message.find("redis-server could not start") != std::string::npos, message);
    BOOST_TEST(message.find("no-such-setting") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(killed_test_process_leaves_no_server) {
    test::temp_dir cwd;
    test::child holder(fs::read_symlink("/proc/self/exe"),
                       {"--run_test=redis_harness_holder", "--log_level=nothing",
                        "--report_level=no", "--", "--hold"},
                       cwd.path());
    std::istringstream line(holder.wait_for_line("holding ", test::redis_start_deadline));
    std::string word;
    int pid = 0;
    std::uint16_t port = 0;
    std::string dir;
    line >> word >> pid >> port >> dir;
    BOOST_TEST_REQUIRE(pid > 0);
    BOOST_TEST(test::redis_ping(port));

    // SIGKILL runs no destructor: the server is killed with its parent (PR_SET_PDEATHSIG)...
    holder.signal(SIGKILL);
    holder.wait();
    BOOST_TEST(test::eventually([&] { return gone(pid); }));
    BOOST_TEST(test::eventually([&] { return refuses(port); }));
    // ...and its folder, left behind, is removed by the next test process that starts a server.
    BOOST_TEST(fs::exists(dir));
    test::sweep_stale_redis_folders();
    BOOST_TEST(!fs::exists(dir));
}

BOOST_FIXTURE_TEST_CASE(cluster_is_ok_on_every_node, test::shared_redis_cluster) {
    std::set<std::string> ids;
    std::string seeds = "redis://";
    for (std::size_t i = 0; i < cluster.size; ++i) {
        BOOST_TEST(cluster.cluster_info(i, "cluster_state") == "ok");
        BOOST_TEST(cluster.cluster_info(i, "cluster_slots_ok") == "16384");
        BOOST_TEST(cluster.cluster_info(i, "cluster_known_nodes") == "3");
        BOOST_TEST(cluster.command_on(i, "CLUSTER", "MYID") == cluster.node_id(i));
        BOOST_TEST(cluster.node(i).command("CONFIG", "GET", "cluster-config-file") ==
                   "cluster-config-file\n" + (cluster.node(i).dir() / "nodes.conf").string());
        ids.insert(cluster.node_id(i));
        seeds += (i > 0 ? "," : "") + cluster.node(i).address();
        // A node's cluster bus listens on its port + 10000.
        BOOST_TEST(!refuses(static_cast<std::uint16_t>(cluster.node(i).port() + 10000)));
    }
    BOOST_TEST(ids.size() == 3u);
    BOOST_TEST(cluster.seeds() == seeds);
    BOOST_TEST(seeds.find("redis://127.0.0.1:") == 0u);
    // Every node serves slots (three masters, no replicas).
    BOOST_TEST(slot_counts(cluster, 0).size() == 3u);
}

BOOST_FIXTURE_TEST_CASE(key_set_on_its_node_is_read_back, test::shared_redis_cluster) {
    // reset() flushed what a previous test left.
    BOOST_TEST(cluster.command("DBSIZE") == "0");
    const std::string key = "file:hello.txt";
    BOOST_TEST(std::to_string(key_slot(key)) == cluster.command_on(0, "CLUSTER", "KEYSLOT", key));
    const auto owner = cluster.node_for_key(key);
    BOOST_TEST(cluster.command_on(owner, "SET", key, "peer-1") == "OK");
    BOOST_TEST(cluster.command_on(owner, "GET", key) == "peer-1");
    // Another node redirects; command() follows the redirection.
    const auto other = (owner + 1) % cluster.size;
    try {
        cluster.command_on(other, "GET", key);
        BOOST_ERROR("node " << other << " answered for a key it does not serve");
    } catch (const test::redis_error& e) {
        BOOST_TEST(std::string(e.what()).find("MOVED") != std::string::npos, e.what());
    }
    BOOST_TEST(cluster.command("GET", key) == "peer-1");
    BOOST_TEST(cluster.command("EXISTS", key) == "1");
    cluster.flushall();
    BOOST_TEST(cluster.command("EXISTS", key) == "0");
}

BOOST_FIXTURE_TEST_CASE(stopped_node_rejoins, test::shared_redis_cluster) {
    auto& node = cluster.node(1);
    const auto port = node.port();
    const auto id = cluster.node_id(1);
    cluster.stop(1);
    BOOST_TEST(refuses(port));
    BOOST_TEST(fs::exists(node.dir() / "nodes.conf"));

    // Same port, same folder: it reads nodes.conf, is the same node and rejoins.
    cluster.start(1);
    BOOST_TEST(node.port() == port);
    BOOST_TEST(cluster.command_on(1, "CLUSTER", "MYID") == id);
    for (std::size_t i = 0; i < cluster.size; ++i) {
        BOOST_TEST(cluster.cluster_info(i, "cluster_state") == "ok");
        BOOST_TEST(cluster.cluster_info(i, "cluster_slots_ok") == "16384");
    }
    const std::string key = "after-restart";
    BOOST_TEST(cluster.command("SET", key, "1") == "OK");
    BOOST_TEST(cluster.command("GET", key) == "1");
}

BOOST_FIXTURE_TEST_CASE(reshard_moves_slots_and_keys, test::shared_redis_cluster) {
    const auto before = slot_counts(cluster, 0);
    // Keys in the first slots of node 0, which are the ones redis-cli moves.
    const auto first_slot = cluster.slots(0);
    int low = -1;
    for (const auto& r : first_slot) {
        if (cluster.node_index(r.port) == 0) {
            low = r.first;
            break;
        }
    }
    BOOST_TEST_REQUIRE(low >= 0);
    std::vector<std::string> moved_keys;
    for (int i = 0; moved_keys.size() < 20; ++i) {
        const auto key = "key-" + std::to_string(i);
        const int slot = key_slot(key);
        if (slot >= low && slot < low + 100) moved_keys.push_back(key);
    }
    for (const auto& key : moved_keys)
        BOOST_TEST(cluster.command_on(0, "SET", key, key) == "OK");

    // In the background, while keys are written and read (through MOVED and ASK).
    auto job = cluster.start_reshard(0, 2, 100);
    for (int i = 0; i < 50; ++i) {
        const auto key = "during-" + std::to_string(i);
        BOOST_TEST(cluster.command("SET", key, i) == "OK");
        BOOST_TEST(cluster.command("GET", key) == std::to_string(i));
    }
    job.wait();

    for (std::size_t seen_by = 0; seen_by < cluster.size; ++seen_by) {
        auto after = slot_counts(cluster, seen_by);
        BOOST_TEST(after[0] == before.at(0) - 100);
        BOOST_TEST(after[2] == before.at(2) + 100);
        BOOST_TEST(after[1] == before.at(1));
    }
    for (const auto& key : moved_keys) {
        BOOST_TEST(cluster.node_for_key(key) == 2u);
        BOOST_TEST(cluster.command_on(2, "GET", key) == key);
    }
    for (int i = 0; i < 50; ++i)
        BOOST_TEST(cluster.command("GET", "during-" + std::to_string(i)) == std::to_string(i));
}

BOOST_FIXTURE_TEST_CASE(reset_closes_a_half_done_migration, test::shared_redis_cluster) {
    // What a reshard stopped halfway leaves: a slot migrating from one node and importing into
    // another, which makes the next reshard refuse to run. The next test's reset() mends it.
    const auto slot = cluster.slots(0).front();
    const auto from = cluster.node_index(slot.port);
    const auto to = (from + 1) % cluster.size;
    const auto slot_text = std::to_string(slot.first);
    cluster.command_on(to, "CLUSTER", "SETSLOT", slot_text, "IMPORTING", cluster.node_id(from));
    cluster.command_on(from, "CLUSTER", "SETSLOT", slot_text, "MIGRATING", cluster.node_id(to));
    BOOST_TEST(cluster.command_on(from, "CLUSTER", "NODES").find("[" + slot_text + "->-") !=
               std::string::npos);
    cluster.reset();
    for (std::size_t i = 0; i < cluster.size; ++i)
        BOOST_TEST(cluster.command_on(i, "CLUSTER", "NODES").find('[') == std::string::npos);
    cluster.reshard(to, from, 1);
}

BOOST_AUTO_TEST_SUITE_END()

// Run by redis_harness/killed_test_process_leaves_no_server in a test process of its own, which
// it kills. A suite of its own, disabled: running redis_harness (which runs its disabled test
// cases too) must not run it.
BOOST_AUTO_TEST_SUITE(redis_harness_holder, *utf::disabled())

BOOST_AUTO_TEST_CASE(holds_a_server) {
    const auto& suite = utf::framework::master_test_suite();
    if (suite.argc < 2 || std::string_view(suite.argv[suite.argc - 1]) != "--hold") return;
    test::redis_server server;
    std::cout << "holding " << server.pid() << " " << server.port() << " " << server.dir().string()
              << std::endl;
    std::string line;
    std::getline(std::cin, line); // until killed
}

BOOST_AUTO_TEST_SUITE_END()
