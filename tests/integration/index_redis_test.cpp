// Index servers on a Redis store, against real redis-server processes that the tests start:
// several index servers serve one network, leases end by Redis's clock, a stopped node gives
// 503 store_unavailable until it is back, and lookups stay right while slots migrate. (The API
// suite itself runs against a standalone Redis and the cluster too: ctest index_api.redis and
// index_api.cluster.)
#include "index_fixture.hpp"
#include "redis_fixture.hpp"
#include "resp.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

namespace test = p2pshare::test;
using names = std::vector<std::string>;
using ids = std::vector<std::uint64_t>;
using namespace std::chrono_literals;

namespace {

p2pshare::IndexServerOptions on_store(const std::string& seeds,
                                      std::chrono::milliseconds ttl = std::chrono::minutes(10)) {
    auto o = test::running_index::defaults();
    o.store = seeds;
    o.lease_ttl = ttl;
    o.store_timeout = 1500ms;
    return o;
}

/// Two index servers, A and B, on one store: what one is told, the other answers.
void two_servers_share_one_network(const std::string& seeds) {
    test::running_index a(on_store(seeds));
    test::running_index b(on_store(seeds));
    const auto token = test::register_peer(a.port(), 1, {"song.mp3", "Blue Train.flac"});
    test::register_peer(b.port(), 2, {"song.mp3"});
    BOOST_TEST(test::lookup_ids(b.port(), "song.mp3") == (ids{1, 2}));
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == (ids{1, 2}));
    BOOST_TEST(test::list_names(b.port()) == (names{"Blue Train.flac", "song.mp3"}));
    BOOST_TEST(test::list_names(b.port(), "q=train") == names{"Blue Train.flac"});
    // One live token per id, whichever index is asked: B refuses id 1 to another process.
    const auto taken =
        test::http_call(b.port(), "POST", "/v1/peers", R"({"id":1,"port":6000,"files":[]})");
    test::check_error(taken, 409, "conflict");
    // The lease made through A is renewed through B with its token, and changed there.
    const auto renewed =
        test::http_call(b.port(), "PUT", "/v1/peers/1/lease", "", test::bearer(token));
    BOOST_TEST(renewed.status == 200u, renewed.body);
    const auto files =
        test::http_call(b.port(), "PUT", "/v1/peers/1/files",
                        R"({"files":[)" + test::file_json("other.bin") + "]}", test::bearer(token));
    BOOST_TEST(files.status == 200u, files.body);
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == ids{2});
    BOOST_TEST(test::lookup_ids(a.port(), "other.bin") == ids{1});
    BOOST_TEST(test::list_names(a.port(), "q=train").empty());
    const auto health = test::json_of(test::http_call(a.port(), "GET", "/v1/health"));
    BOOST_TEST(health.at("peers").to_number<int>() == 2);
    BOOST_TEST(health.at("names").to_number<int>() == 2);
    BOOST_TEST(health.at("files").to_number<int>() == 2);
    // Unregistered through A: gone from B.
    const auto gone = test::http_call(a.port(), "DELETE", "/v1/peers/1", "", test::bearer(token));
    BOOST_TEST(gone.status == 200u, gone.body);
    BOOST_TEST(test::lookup_ids(b.port(), "other.bin").empty());
    BOOST_TEST(test::list_names(b.port()) == names{"song.mp3"});
}

/// A peer that stops renewing is in no answer of either server once its lease ended (by Redis's
/// clock): no lookup, no listing, no word search. The sweeper of one of them then removes its
/// name from the listing's keys.
void a_lease_ends_everywhere(test::redis_cluster& cluster) {
    constexpr auto ttl = 1500ms;
    test::running_index a(on_store(cluster.seeds(), ttl));
    test::running_index b(on_store(cluster.seeds(), ttl));
    const auto listing =
        "p2p:{n" + std::to_string(p2pshare::detail::crc16("fleeting.txt") % 64) + "}:names";
    const auto registered = std::chrono::steady_clock::now();
    test::register_peer(a.port(), 5, {"fleeting.txt"});
    BOOST_TEST(test::lookup_ids(b.port(), "fleeting.txt") == ids{5});
    BOOST_TEST(test::list_names(b.port()) == names{"fleeting.txt"});
    BOOST_TEST(cluster.command("ZCARD", listing) == "1");
    BOOST_TEST(test::eventually([&] {
        return test::lookup_ids(a.port(), "fleeting.txt").empty() &&
               test::lookup_ids(b.port(), "fleeting.txt").empty();
    }));
    const auto took = std::chrono::steady_clock::now() - registered;
    BOOST_TEST((took >= ttl - 100ms));  // not before the lease ended
    BOOST_TEST((took <= ttl + 1500ms)); // and at once after (the poll's interval, loaded CI)
    BOOST_TEST(test::json_of(test::http_call(b.port(), "GET", "/v1/health"))
                   .at("peers")
                   .to_number<int>() == 0);
    // The listing is checked against the leases: the name is gone from it at once, before the
    // sweeper (every tenth of a lease, on either server) has taken it out of the listing's keys.
    BOOST_TEST(test::list_names(a.port()).empty());
    BOOST_TEST(test::list_names(b.port()).empty());
    BOOST_TEST(test::list_names(b.port(), "q=fleeting").empty());
    BOOST_TEST(test::eventually([&] { return cluster.command("ZCARD", listing) == "0"; }));
}

/// An index server reads first the sources a name had at its last lookup there, with the name's
/// own keys: what it reads of them counts only for the sources the name has now.
void lookups_check_the_sources_they_remember(const std::string& seeds) {
    test::running_index a(on_store(seeds));
    test::running_index b(on_store(seeds));
    const auto one = test::register_peer(b.port(), 1, {"song.mp3"});
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == ids{1});
    const auto replace = [&](std::uint32_t id, const std::string& token,
                             const std::vector<std::string>& files) {
        std::string body = R"({"files":[)";
        for (std::size_t i = 0; i < files.size(); ++i)
            body += (i ? "," : "") + test::file_json(files[i]);
        const auto r =
            test::http_call(b.port(), "PUT", "/v1/peers/" + std::to_string(id) + "/files",
                            body + "]}", test::bearer(token));
        BOOST_TEST(r.status == 200u, r.body);
    };
    // Peer 1 no longer has it (its lease lives on) and peer 2 has: A's memory of peer 1 is wrong.
    replace(1, one, {"other.bin"});
    const auto two = test::register_peer(b.port(), 2, {"song.mp3"});
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == ids{2});
    BOOST_TEST(test::lookup_ids(a.port(), "other.bin") == ids{1});
    // Both have it (a set of sources), then peer 2 leaves, then peer 1 too.
    replace(1, one, {"song.mp3", "other.bin"});
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == (ids{1, 2}));
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == (ids{1, 2}));
    const auto gone = test::http_call(b.port(), "DELETE", "/v1/peers/2", "", test::bearer(two));
    BOOST_TEST(gone.status == 200u, gone.body);
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3") == ids{1});
    replace(1, one, {"other.bin"});
    BOOST_TEST(test::lookup_ids(a.port(), "song.mp3").empty());
    BOOST_TEST(test::lookup_ids(a.port(), "other.bin") == ids{1});
    // Several names in one lookup, some remembered and some not, one twice: each gets its own
    // sources, each source with that file (third.txt and song.mp3 of peer 3 differ in size).
    const auto three =
        test::http_call(b.port(), "POST", "/v1/peers",
                        R"({"id":3,"port":5003,"files":[)" + test::file_json("song.mp3", 1) + "," +
                            test::file_json("third.txt", 333) + "]}");
    BOOST_TEST_REQUIRE(three.status == 201u, three.body);
    const auto many = [&] {
        const auto reply =
            test::http_call(a.port(), "POST", "/v1/lookup",
                            R"({"names":["third.txt","other.bin","song.mp3","none","other.bin"]})");
        BOOST_TEST_REQUIRE(reply.status == 200u, reply.body);
        std::vector<ids> out;
        const auto answer = test::json_of(reply);
        for (const auto& r : answer.at("results").as_array()) {
            out.emplace_back();
            for (const auto& source : r.at("sources").as_array()) {
                out.back().push_back(source.at("id").to_number<std::uint64_t>());
                out.back().push_back(source.at("size").to_number<std::uint64_t>());
            }
        }
        return out;
    };
    // (id, size) of each source
    const std::vector<ids> expected{{3, 333}, {1, 1}, {3, 1}, {}, {1, 1}};
    for (int round = 0; round < 2; ++round) {
        const auto got = many();
        BOOST_TEST_REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i)
            BOOST_TEST(got[i] == expected[i], "round " << round << ", name " << i);
    }
}

/// p2pshare_index_lease_expiries_total of an index server's /metrics.
double expiries_of(std::uint16_t port) {
    const auto r = test::http_call(port, "GET", "/metrics");
    BOOST_TEST_REQUIRE(r.status == 200u);
    const std::string series = "\np2pshare_index_lease_expiries_total ";
    const auto at = r.body.find(series);
    BOOST_TEST_REQUIRE(at != std::string::npos);
    return std::stod(r.body.substr(at + series.size()));
}

} // namespace

BOOST_AUTO_TEST_SUITE(index_redis)

BOOST_AUTO_TEST_CASE(lookups_check_the_sources_they_remember_on_standalone_redis) {
    test::redis_server redis;
    lookups_check_the_sources_they_remember(redis.seeds());
}

BOOST_FIXTURE_TEST_CASE(lookups_check_the_sources_they_remember_on_a_cluster,
                        test::shared_redis_cluster) {
    lookups_check_the_sources_they_remember(cluster.seeds());
}

BOOST_AUTO_TEST_CASE(two_index_servers_on_one_standalone_redis) {
    test::redis_server redis;
    two_servers_share_one_network(redis.seeds());
}

BOOST_FIXTURE_TEST_CASE(two_index_servers_on_one_cluster, test::shared_redis_cluster) {
    two_servers_share_one_network(cluster.seeds());
    // The keys are spread over the masters: more than one holds some.
    std::size_t holding = 0;
    for (std::size_t i = 0; i < test::redis_cluster::size; ++i)
        holding += std::stoi(cluster.command_on(i, "DBSIZE")) > 0 ? 1 : 0;
    BOOST_TEST(holding >= 2u);
}

BOOST_FIXTURE_TEST_CASE(a_lease_that_is_not_renewed_ends_on_every_index_server,
                        test::shared_redis_cluster) {
    a_lease_ends_everywhere(cluster);
}

// A stopped Redis: 503 store_unavailable within the store timeout, the index server stays up,
// and it serves again once Redis is back (without a restart of the index server).
BOOST_AUTO_TEST_CASE(a_stopped_redis_gives_503_and_service_comes_back) {
    test::redis_server redis;
    test::running_index index(on_store(redis.seeds()));
    test::register_peer(index.port(), 1, {"a.txt"});
    redis.stop();
    const auto started = std::chrono::steady_clock::now();
    const auto lookup =
        test::http_call(index.port(), "POST", "/v1/lookup", R"({"names":["a.txt"]})");
    test::check_error(lookup, 503, "store_unavailable");
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
    const auto reg =
        test::http_call(index.port(), "POST", "/v1/peers", R"({"id":2,"port":5000,"files":[]})");
    test::check_error(reg, 503, "store_unavailable");
    redis.start(); // empty: no persistence
    BOOST_TEST(test::eventually([&] {
        return test::http_call(index.port(), "POST", "/v1/lookup", R"({"names":["a.txt"]})")
                   .status == 200u;
    }));
    test::register_peer(index.port(), 1, {"a.txt"});
    BOOST_TEST(test::lookup_ids(index.port(), "a.txt") == ids{1});
}

// A Redis that stops answering (SIGSTOP: connections open, no reply): 503 store_unavailable once
// the store timeout has passed, never a hang; and service as soon as it answers again.
BOOST_AUTO_TEST_CASE(a_frozen_redis_gives_503_after_the_store_timeout) {
    test::redis_server redis;
    auto options = on_store(redis.seeds());
    options.store_timeout = 500ms;
    test::running_index index(options);
    test::register_peer(index.port(), 1, {"a.txt"});
    BOOST_TEST_REQUIRE(::kill(redis.pid(), SIGSTOP) == 0);
    const auto started = std::chrono::steady_clock::now();
    const auto lookup =
        test::http_call(index.port(), "POST", "/v1/lookup", R"({"names":["a.txt"]})");
    const auto took = std::chrono::steady_clock::now() - started;
    test::check_error(lookup, 503, "store_unavailable");
    BOOST_TEST((took >= 450ms));
    BOOST_TEST((took < 3s));
    BOOST_TEST_REQUIRE(::kill(redis.pid(), SIGCONT) == 0);
    BOOST_TEST(test::eventually([&] { return test::lookup_ids(index.port(), "a.txt") == ids{1}; }));
}

// Finding out the store's nodes asks every seed at once: seeds that do not answer cost one store
// timeout together, not one each (here the same frozen node three times, before any request).
BOOST_AUTO_TEST_CASE(seeds_that_do_not_answer_cost_one_store_timeout) {
    test::redis_server redis;
    const auto seed = "127.0.0.1:" + std::to_string(redis.port());
    auto options = on_store("redis://" + seed + "," + seed + "," + seed);
    options.store_timeout = 700ms;
    BOOST_TEST_REQUIRE(::kill(redis.pid(), SIGSTOP) == 0);
    test::running_index index(options);
    const auto started = std::chrono::steady_clock::now();
    const auto lookup =
        test::http_call(index.port(), "POST", "/v1/lookup", R"({"names":["a.txt"]})");
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST_REQUIRE(::kill(redis.pid(), SIGCONT) == 0);
    test::check_error(lookup, 503, "store_unavailable");
    BOOST_TEST((took >= 650ms));
    BOOST_TEST((took < 1600ms)); // asked one after the other: 2.1 s
    BOOST_TEST(test::eventually([&] {
        return test::http_call(index.port(), "POST", "/v1/lookup", R"({"names":["a.txt"]})")
                   .status == 200u;
    }));
}

// A master of the cluster stopped: the requests whose keys it holds get 503, the others are
// served; once it is back, everything is.
BOOST_FIXTURE_TEST_CASE(a_stopped_cluster_node_gives_503_for_its_keys_until_it_is_back,
                        test::shared_redis_cluster) {
    test::running_index index(on_store(cluster.seeds()));
    test::register_peer(index.port(), 1, {"a.txt"});
    // The node that holds peer 1's lease.
    const auto holder = cluster.node_for_key("p2p:{p1}");
    cluster.stop(holder);
    const auto renew = test::http_call(index.port(), "PUT", "/v1/peers/1/lease", "",
                                       test::bearer(std::string(32, '0')));
    test::check_error(renew, 503, "store_unavailable");
    cluster.start(holder);
    BOOST_TEST(test::eventually([&] {
        return test::http_call(index.port(), "POST", "/v1/peers",
                               R"({"id":1,"port":5000,"files":[)" + test::file_json("a.txt") + "]}")
                   .status == 201u;
    }));
    BOOST_TEST(test::lookup_ids(index.port(), "a.txt") == ids{1});
}

// A change of a peer's files whose name buckets could not be written (their master froze after
// the peer's own keys were changed) answers 503; the buckets still get it: through the same
// request sent again, or through the peer's next renewal.
BOOST_FIXTURE_TEST_CASE(a_change_cut_short_by_a_stopped_node_is_completed_later,
                        test::shared_redis_cluster) {
    auto options = on_store(cluster.seeds());
    options.store_timeout = 500ms; // (under the cluster's node timeout: no failover of the frozen)
    test::running_index index(options);
    const auto token = test::register_peer(index.port(), 1, {"a.txt"});
    const auto lease_node = cluster.node_for_key("p2p:{p1}");
    // Two names whose bucket is on another master than peer 1's keys.
    std::vector<std::string> far;
    std::size_t bucket_node = 0;
    for (int i = 0; far.size() < 2; ++i) {
        const auto name = "late-" + std::to_string(i) + ".bin";
        const auto node = cluster.node_for_key(
            "p2p:{n" + std::to_string(p2pshare::detail::crc16(name) % 64) + "}:names");
        if (node == lease_node || (!far.empty() && node != bucket_node)) continue;
        bucket_node = node;
        far.push_back(name);
    }
    const auto put = [&](const std::vector<std::string>& files) {
        std::string body = R"({"files":[)";
        for (std::size_t i = 0; i < files.size(); ++i)
            body += (i ? "," : "") + test::file_json(files[i]);
        return test::http_call(index.port(), "PUT", "/v1/peers/1/files", body + "]}",
                               test::bearer(token));
    };
    const auto cut_short = [&](const std::vector<std::string>& files) {
        const auto pid = cluster.node(bucket_node).pid();
        BOOST_TEST_REQUIRE(::kill(pid, SIGSTOP) == 0);
        test::check_error(put(files), 503, "store_unavailable");
        BOOST_TEST_REQUIRE(::kill(pid, SIGCONT) == 0);
    };
    // The same request again: the names it adds are written, although the peer's keys have
    // them already.
    cut_short({"a.txt", far[0]});
    BOOST_TEST(test::eventually([&] { return put({"a.txt", far[0]}).status == 200u; }));
    BOOST_TEST(test::lookup_ids(index.port(), far[0]) == ids{1});
    BOOST_TEST(test::list_names(index.port(), "q=late") == names{far[0]});
    // No retry: the renewal writes them.
    cut_short({"a.txt", far[0], far[1]});
    BOOST_TEST(test::eventually([&] {
        return test::http_call(index.port(), "PUT", "/v1/peers/1/lease", "", test::bearer(token))
                   .status == 200u;
    }));
    BOOST_TEST(test::lookup_ids(index.port(), far[1]) == ids{1});
    auto both = far;
    std::sort(both.begin(), both.end());
    BOOST_TEST(test::list_names(index.port(), "q=late") == both);
    // A removal cut short, then a renewal: the name leaves the buckets (the listing's keys).
    cut_short({"a.txt", far[1]});
    BOOST_TEST(test::eventually([&] {
        return test::http_call(index.port(), "PUT", "/v1/peers/1/lease", "", test::bearer(token))
                   .status == 200u;
    }));
    const auto listing =
        "p2p:{n" + std::to_string(p2pshare::detail::crc16(far[0]) % 64) + "}:names";
    const auto entries =
        cluster.command("ZRANGEBYLEX", listing, "[" + far[0], "(" + far[0] + "\x01");
    BOOST_TEST(entries.find(far[0]) == std::string::npos, entries);
    BOOST_TEST(test::lookup_ids(index.port(), far[0]).empty());
    BOOST_TEST(test::lookup_ids(index.port(), far[1]) == ids{1});
}

// The keys of a script in a slot being migrated, to a node that lacks the script (restarted, or
// new to the cluster): the command follows the ASK, the script is loaded on that node, and the
// command runs there.
BOOST_FIXTURE_TEST_CASE(a_script_asked_to_a_node_without_it_is_loaded_there,
                        test::shared_redis_cluster) {
    test::running_index index(on_store(cluster.seeds()));
    const auto token = test::register_peer(index.port(), 7, {"a.txt"});
    const std::string lease = "p2p:{p7}";
    const auto from = cluster.node_for_key(lease);
    const auto to = (from + 1) % test::redis_cluster::size;
    const auto slot = cluster.command_on(from, "CLUSTER", "KEYSLOT", lease);
    const auto from_id = cluster.command_on(from, "CLUSTER", "MYID");
    const auto to_id = cluster.command_on(to, "CLUSTER", "MYID");
    cluster.command_on(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", from_id);
    cluster.command_on(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", to_id);
    cluster.command_on(from, "MIGRATE", "127.0.0.1", std::to_string(cluster.node(to).port()), "",
                       "0", "5000", "KEYS", lease, lease + ":n");
    cluster.command_on(to, "SCRIPT", "FLUSH");
    const auto put = test::http_call(
        index.port(), "PUT", "/v1/peers/7/files",
        R"({"files":[)" + test::file_json("a.txt") + "," + test::file_json("b.txt") + "]}",
        test::bearer(token));
    BOOST_TEST(put.status == 200u, put.body);
    // The migration ends: the slot is the other node's, and the change is there.
    for (std::size_t i = 0; i < test::redis_cluster::size; ++i)
        cluster.command_on(i, "CLUSTER", "SETSLOT", slot, "NODE", to_id);
    BOOST_TEST(cluster.command_on(to, "HEXISTS", lease, "b.txt") == "1");
    BOOST_TEST(test::eventually([&] { return test::lookup_ids(index.port(), "b.txt") == ids{7}; }));
    const auto renewed =
        test::http_call(index.port(), "PUT", "/v1/peers/7/lease", "", test::bearer(token));
    BOOST_TEST(renewed.status == 200u, renewed.body);
}

// A word search examines at most max_list_scan names per request on Redis too (the buckets'
// shares of it): the page may be short, its cursor goes on, and following it finds every match
// once. A page without a filter is full.
BOOST_AUTO_TEST_CASE(a_word_search_examines_a_bounded_number_of_names_on_redis) {
    test::redis_server redis;
    auto options = on_store(redis.seeds());
    options.index.max_list_scan = 2 * 64; // two names per bucket
    test::running_index index(options);
    names all;
    for (int i = 0; i < 2000; ++i)
        all.push_back("common " + std::to_string(1000 + i) + ".txt");
    test::register_peer(index.port(), 1, all);
    const auto v =
        test::json_of(test::http_call(index.port(), "GET", "/v1/files?q=common&limit=1000"));
    BOOST_TEST(v.at("names").as_array().size() <= 128u);
    BOOST_TEST(!v.at("next_after").is_null());
    auto sorted = all;
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST(test::list_names(index.port(), "q=common") == sorted);
    const auto page = test::json_of(test::http_call(index.port(), "GET", "/v1/files?limit=500"));
    BOOST_TEST(page.at("names").as_array().size() == 500u);
}

// Two index servers sweep one store at once: each expired peer is reaped once, by one of them
// (their lease expiry counts add up to the number of peers, then stay there), and every name
// leaves the buckets.
BOOST_AUTO_TEST_CASE(two_sweepers_reap_each_expired_peer_once) {
    test::redis_server redis;
    constexpr auto ttl = 1000ms;
    test::running_index a(on_store(redis.seeds(), ttl));
    test::running_index b(on_store(redis.seeds(), ttl));
    constexpr int peers = 30;
    for (int id = 1; id <= peers; ++id) {
        names files; // every fifth peer shares nothing
        if (id % 5 != 0) files = {"shared.bin", "own-" + std::to_string(id) + ".bin"};
        test::register_peer(id % 2 != 0 ? a.port() : b.port(), static_cast<std::uint32_t>(id),
                            files);
    }
    const auto reaped = [&] { return expiries_of(a.port()) + expiries_of(b.port()); };
    BOOST_TEST(test::eventually([&] { return reaped() == peers; }, 20s), reaped());
    // Both sweep a few times more (every tenth of a lease): nobody is reaped again.
    BOOST_TEST(test::holds_for([&] { return reaped() == peers; }, 5 * ttl / 10), reaped());
    BOOST_TEST(test::eventually([&] {
        return test::json_of(test::http_call(a.port(), "GET", "/v1/health"))
                   .at("names")
                   .to_number<int>() == 0;
    }));
    BOOST_TEST(test::list_names(b.port()).empty());
}

// Slots move from one master to another while lookups run: every answer is right throughout.
BOOST_FIXTURE_TEST_CASE(lookups_stay_right_while_slots_migrate, test::shared_redis_cluster) {
    test::running_index index(on_store(cluster.seeds()));
    names all;
    for (int i = 0; i < 60; ++i)
        all.push_back("file-" + std::to_string(i) + ".bin");
    test::register_peer(index.port(), 1, all);
    test::register_peer(index.port(), 2, all);
    auto reshard = cluster.start_reshard(0, 1, 2000);
    test::http_client client(index.port());
    std::size_t lookups = 0;
    std::size_t wrong = 0;
    std::string first_wrong;
    bool running = true;
    while (running) {
        running = !reshard.process().try_wait().has_value();
        for (const auto& name : all) {
            const auto reply = client.call("POST", "/v1/lookup", R"({"names":[")" + name + "\"]}");
            ++lookups;
            const auto v = test::json_of(reply);
            const bool right =
                reply.status == 200u && v.at("results").at(0).at("sources").as_array().size() == 2u;
            if (!right) {
                ++wrong;
                if (first_wrong.empty()) first_wrong = name + ": " + reply.body;
            }
        }
    }
    reshard.wait();
    BOOST_TEST_MESSAGE("lookups during the reshard: " << lookups);
    BOOST_TEST(lookups > 0u);
    BOOST_TEST(wrong == 0u, first_wrong);
}

BOOST_AUTO_TEST_SUITE_END()
