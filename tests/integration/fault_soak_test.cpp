// Soak: 8 in-process peers download 2,000 files among themselves and delete some at random.
// Every file is verified, and the process's descriptors and memory do not grow (beyond the
// keep-alive connections the peers' downloads keep for their next downloads, which are counted).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include "fault_support.hpp"
#include "peer_fixture.hpp"

#include <algorithm>
#include <future>
#include <map>
#include <random>
#include <set>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__)
// The soak checks that the process's memory does not grow. AddressSanitizer keeps freed memory
// in a quarantine (256 MiB by default) to catch uses after free, and that quarantine fills up
// while the soak runs: resident memory then grows by the quarantine's size, not the program's.
// Measured: +160 MiB with the default quarantine, +5 MiB without one. This binary keeps a
// 32 MiB quarantine, so a use of memory freed within the last 32 MiB of frees is still caught
// and the check still measures the program. (ASAN_OPTIONS in the environment overrides this.)
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=32"; }
#endif

namespace {

/// Waits for a future under a deadline that only a hung test reaches.
template <class T>
T take(std::future<T>& f) {
    if (f.wait_for(60s) != std::future_status::ready) {
        throw std::runtime_error("a peer operation did not finish within its deadline");
    }
    return f.get();
}

/// The keep-alive connections all peers' downloads hold open, from their /v1/health. Each such
/// connection is two descriptors of this process (both peers are in it). Asked before the
/// descriptors are counted: between the two, connections may only close (nothing downloads).
std::size_t idle_connections(const std::vector<PeerNode*>& peers) {
    std::size_t n = 0;
    for (auto* p : peers) {
        const auto reply =
            test::http_call(p->port(), "GET", "/v1/health", "", {{"Connection", "close"}});
        n += boost::json::parse(reply.body).at("idle_connections").to_number<std::size_t>();
    }
    return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(fault_soak)

BOOST_AUTO_TEST_CASE(eight_peers_2000_downloads_with_random_deletes) {
    constexpr std::uint32_t peer_count = 8;
    constexpr std::size_t file_count = 48;
    constexpr std::size_t downloads_wanted = 2000;
    constexpr std::size_t per_round = 5; // names each peer downloads per round
    test::network net;

    // Every file starts at one peer; the model knows who holds what.
    std::map<std::string, std::string> content;
    std::map<std::string, std::set<std::uint32_t>> holders;
    for (std::size_t i = 0; i < file_count; ++i) {
        const auto name = "f" + std::to_string(100 + i) + ".txt";
        const std::uint32_t owner = static_cast<std::uint32_t>(i % peer_count) + 1;
        content[name] =
            test::random_text(512 + (i * 997) % (16 * 1024), static_cast<std::uint32_t>(i));
        test::write_file(net / ("p" + std::to_string(owner)) / name, content[name]);
        holders[name].insert(owner);
    }
    std::vector<PeerNode*> peers;
    for (std::uint32_t id = 1; id <= peer_count; ++id) {
        auto options = net.options(id);
        options.rescan_interval = 60s; // only the operations' own syncs tell the index
        peers.push_back(&net.start_peer(options));
    }

    std::mt19937 rng(6);
    std::size_t downloads = 0;
    std::size_t deletes = 0;
    std::size_t rounds = 0;
    std::size_t fds_before = 0;
    std::size_t idle_before = 0;
    std::size_t rss_before = 0;
    const auto started = std::chrono::steady_clock::now();
    while (downloads < downloads_wanted) {
        // Download phase: every peer fetches up to `per_round` names it lacks, all at once.
        std::vector<std::vector<std::string>> wanted(peer_count);
        std::vector<std::future<std::vector<DownloadOutcome>>> running;
        for (std::uint32_t p = 0; p < peer_count; ++p) {
            std::vector<std::string> lacking;
            for (const auto& [name, who] : holders) {
                if (!who.contains(p + 1)) lacking.push_back(name);
            }
            std::shuffle(lacking.begin(), lacking.end(), rng);
            lacking.resize(std::min({lacking.size(), per_round, downloads_wanted - downloads}));
            downloads += lacking.size();
            wanted[p] = lacking;
            running.push_back(asio::co_spawn(net.io().context(), peers[p]->async_download(lacking),
                                             asio::use_future));
        }
        for (std::uint32_t p = 0; p < peer_count; ++p) {
            const auto outcomes = take(running[p]);
            BOOST_TEST_REQUIRE(outcomes.size() == wanted[p].size());
            for (const auto& o : outcomes) {
                BOOST_TEST_CONTEXT("round " << rounds << ", peer " << p + 1 << ", " << o.name) {
                    BOOST_TEST_REQUIRE(!o.error, o.message);
                    const auto file = peers[p]->folder() / o.name;
                    BOOST_TEST_REQUIRE((test::read_file(file) == content.at(o.name)));
                    holders[o.name].insert(p + 1);
                }
            }
        }
        // Delete phase: each peer deletes up to two files that someone else still has.
        std::vector<std::vector<std::string>> doomed(peer_count);
        std::vector<std::future<std::vector<DeleteOutcome>>> deleting;
        for (std::uint32_t p = 0; p < peer_count; ++p) {
            std::vector<std::string> held;
            for (const auto& [name, who] : holders) {
                if (who.contains(p + 1) && who.size() >= 2) held.push_back(name);
            }
            std::shuffle(held.begin(), held.end(), rng);
            for (const auto& name : held) {
                if (doomed[p].size() == 2 || rng() % 2 == 0) break;
                if (holders[name].size() < 2) continue;
                holders[name].erase(p + 1);
                doomed[p].push_back(name);
            }
            deletes += doomed[p].size();
            deleting.push_back(asio::co_spawn(
                net.io().context(), peers[p]->async_delete_local(doomed[p]), asio::use_future));
        }
        for (std::uint32_t p = 0; p < peer_count; ++p) {
            for (const auto& o : take(deleting[p])) {
                BOOST_TEST_REQUIRE((!o.error), o.message);
                BOOST_TEST_REQUIRE(!fs::exists(peers[p]->folder() / o.name));
            }
        }
        ++rounds;
        if (rounds == 2) {
            // Measured once everything started up (thread pools, caches) and has been used.
            idle_before = idle_connections(peers);
            fds_before = test::open_fds();
            // Live memory, not what the allocator keeps of freed blocks after a peak of
            // concurrent downloads: both measurements trim first.
            ::malloc_trim(0);
            rss_before = test::rss_kib();
        }
    }
    const auto idle_after = idle_connections(peers);
    const auto fds_after = test::open_fds();
    ::malloc_trim(0);
    const auto rss_after = test::rss_kib();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    BOOST_TEST_MESSAGE("soak: " << downloads << " downloads, " << deletes << " deletes in "
                                << rounds << " rounds, " << took.count() << " ms; fds "
                                << fds_before << " -> " << fds_after << " (idle keep-alive "
                                << idle_before << " -> " << idle_after << "), VmRSS " << rss_before
                                << " -> " << rss_after << " KiB");
    BOOST_TEST(downloads == downloads_wanted);
    BOOST_TEST(deletes > 0u);
    BOOST_TEST(idle_after <= peer_count * (peer_count - 1) * 4); // at most 4 per source
    BOOST_TEST(fds_after - 2 * idle_after <= fds_before - 2 * idle_before + 16);
    BOOST_TEST(rss_after <= rss_before + 64 * 1024);

    // The index agrees with the folders: every file is listed with exactly its holders.
    for (const auto& [name, who] : holders) {
        BOOST_TEST_CONTEXT(name) {
            BOOST_TEST(test::index_sources(net.index_port(), name) == who);
            for (std::uint32_t p = 1; p <= peer_count; ++p) {
                BOOST_TEST(fs::exists(peers[p - 1]->folder() / name) == who.contains(p));
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
