// The lease never waits for hashing; the peer works with an index configured with lower limits;
// config files that cannot be parsed; special files swapped into the folder; the library's logger.
#include <p2pshare/error.hpp>
#include <p2pshare/log.hpp>

#include <spdlog/spdlog.h>
#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;

namespace {

bool has(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

/// The peer's own health answer says it is hashing a file.
bool hashing(const PeerNode& node) {
    const auto reply = test::http_call(node.port(), "GET", "/v1/health");
    return reply.status == 200 && reply.body.find("\"hashing\":0") == std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_lease)

BOOST_AUTO_TEST_CASE(the_lease_is_renewed_while_a_large_file_is_hashed) {
    constexpr auto ttl = 1s;
    IndexServerOptions index_options;
    index_options.lease_ttl = ttl;
    test::network net(index_options);
    test::write_file(net / "p1" / "a.txt", test::random_text(1'000, 1));
    test::write_file(net / "p1" / "b.txt", test::random_text(2'000, 2));
    auto options = net.options(1);
    options.rescan_interval = 100ms;
    auto& p1 = net.start_peer(options);
    auto& p2 = net.start_peer(2);

    // A sparse file whose hash takes several lease periods appears in the folder.
    const auto started = std::chrono::steady_clock::now();
    {
        std::ofstream huge(net / "p1" / "huge.bin", std::ios::binary);
        huge.seekp(8LL << 30);
        huge.put('x');
    }
    BOOST_TEST_REQUIRE(test::eventually([&] { return hashing(p1); }));

    // Throughout three lease periods, another peer lists p1's other files, never the new one.
    const auto lists_the_others = [&] {
        const auto names = net.io().run(p2.async_list_network_files());
        return names && has(*names, "a.txt") && has(*names, "b.txt") && !has(*names, "huge.bin");
    };
    BOOST_TEST(test::holds_for(lists_the_others, 3 * ttl));
    BOOST_TEST(p1.registered());
    // The hash was still going on: the check above spanned the hashing, not an idle peer.
    BOOST_TEST_REQUIRE(hashing(p1));

    // Once hashed, the new file is offered too.
    BOOST_TEST(test::eventually(
        [&] {
            const auto names = net.io().run(p2.async_list_network_files());
            return names && has(*names, "huge.bin") && has(*names, "a.txt");
        },
        120s));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST_MESSAGE("hashing 8 GiB took "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms, lease " << ttl.count() << " s");
    BOOST_TEST(took > 3 * ttl);
}

BOOST_AUTO_TEST_CASE(an_index_with_lower_limits_is_used_within_them) {
    IndexServerOptions index_options;
    index_options.index.max_list_page = 2;
    index_options.index.max_lookup_names = 2;
    test::network net(index_options);
    std::vector<std::string> names;
    for (int i = 0; i < 5; ++i) {
        names.push_back("f" + std::to_string(i) + ".txt");
        test::write_file(net / "p1" / names.back(), test::random_text(100 + i, i));
    }
    net.start_peer(1);
    auto& p2 = net.start_peer(2);
    const auto listed = net.io().run(p2.async_list_network_files());
    BOOST_TEST_REQUIRE(listed.has_value(), listed.error().message);
    BOOST_TEST(*listed == names, boost::test_tools::per_element());
    const auto outcomes = net.io().run(p2.async_download(names));
    BOOST_TEST_REQUIRE(outcomes.size() == 5u);
    for (const auto& o : outcomes)
        BOOST_TEST(!o.error, o.name << ": " << o.message);
    BOOST_TEST(test::files_in(net / "p2") == names, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_config_file_that_cannot_be_parsed_stops_the_peer_and_is_kept) {
    test::network net;
    const std::string broken = "# p2pshare peer 1\nid=1\nthis line has no equals sign\n";
    test::write_file(net / "p1.config", broken);
    PeerNode node(net.io().executor(), net.options(1));
    const auto started = net.io().run(node.async_start());
    BOOST_TEST((started == errc::bad_config), started.message);
    BOOST_TEST(started.message.find("p1.config") != std::string::npos, started.message);
    BOOST_TEST(started.message.find(":3") != std::string::npos, started.message);
    BOOST_TEST(!node.registered());
    BOOST_TEST(test::read_file(net / "p1.config") == broken);
    BOOST_TEST(net.io().run(net.index().async_stats()).peers == 0u);

    // A malformed server.config is reported the same way.
    test::write_file(net / "bad-server.config", "host=127.0.0.1\nport=not-a-port\n");
    auto options = net.options(2);
    options.index.clear();
    options.server_config = net / "bad-server.config";
    PeerNode other(net.io().executor(), options);
    const auto refused = net.io().run(other.async_start());
    BOOST_TEST((refused == errc::bad_config), refused.message);
    BOOST_TEST(refused.message.find("bad-server.config:2") != std::string::npos, refused.message);
}

BOOST_AUTO_TEST_CASE(the_library_writes_no_file_it_was_not_asked_to) {
    test::network net;
    auto options = net.options(1);
    options.config_file.clear();
    options.server_config.clear();
    auto& p1 = net.start_peer(options);
    net.quit(p1);
    // Only the folder, the index's own config dir: no pN.config anywhere.
    for (const auto& e : fs::recursive_directory_iterator(net.root())) {
        const bool allowed =
            e.path().extension() != ".config" || e.path().filename() == "server.config";
        BOOST_TEST(allowed, e.path());
    }
    BOOST_TEST(!fs::exists("p1.config"));
}

BOOST_AUTO_TEST_CASE(a_fifo_swapped_into_the_folder_is_refused_without_waiting) {
    test::network net;
    test::write_file(net / "p1" / "song.mp3", test::random_text(3'000, 3));
    auto& p1 = net.start_peer(1);
    // The shared file is replaced by a FIFO that no one writes to: opening it for reading
    // would block forever.
    fs::remove(net / "p1" / "song.mp3");
    BOOST_TEST_REQUIRE(::mkfifo((net / "p1" / "song.mp3").c_str(), 0644) == 0);
    const auto reply = test::http_call(p1.port(), "GET", "/v1/files/song.mp3");
    BOOST_TEST(reply.status == 404u, reply.body);
    // The peer is still answering, and a scan does not offer the FIFO.
    BOOST_TEST(test::http_call(p1.port(), "GET", "/v1/health").status == 200u);
    BOOST_TEST(!net.io().run(p1.async_sync()));
    const auto local = net.io().run(p1.async_local_files());
    BOOST_TEST_REQUIRE(local.has_value());
    BOOST_TEST(local->empty());
}

BOOST_AUTO_TEST_CASE(the_log_level_is_the_library_logger_s_only) {
    const auto global = spdlog::get_level();
    const auto default_level = spdlog::default_logger()->level();
    BOOST_TEST(set_log_level("trace"));
    BOOST_TEST(spdlog::get("p2pshare") != nullptr);
    BOOST_TEST(spdlog::get("p2pshare")->level() == spdlog::level::trace);
    BOOST_TEST(spdlog::default_logger()->level() == default_level);
    BOOST_TEST(spdlog::get_level() == global);
    BOOST_TEST(!set_log_level("loud"));
    BOOST_TEST(set_log_level("info"));
}

BOOST_AUTO_TEST_SUITE_END()
