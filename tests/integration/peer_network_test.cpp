// Several peers and an index: listing, downloading from several peers at once, re-registration
// after an index restart, and ids that are already taken.
#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace p2pshare;

namespace {

const DownloadOutcome* outcome_of(const std::vector<DownloadOutcome>& outcomes,
                                  const std::string& name) {
    for (const auto& o : outcomes) {
        if (o.name == name) return &o;
    }
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_network)

BOOST_AUTO_TEST_CASE(three_peers_list_and_download_from_several) {
    test::network net;
    const std::map<std::string, std::string> content = {
        {"a.txt", test::random_text(70'000, 11)},
        {"b.txt", test::random_text(1'000, 12)},
        {"c.txt", test::random_text(300'000, 13)},
        {"shared.txt", test::random_text(5'000, 14)},
        {"empty.txt", ""},
    };
    // p1: a, shared; p2: b, shared, empty; p3: c.
    test::write_file(net / "p1" / "a.txt", content.at("a.txt"));
    test::write_file(net / "p1" / "shared.txt", content.at("shared.txt"));
    test::write_file(net / "p2" / "b.txt", content.at("b.txt"));
    test::write_file(net / "p2" / "shared.txt", content.at("shared.txt"));
    test::write_file(net / "p2" / "empty.txt", content.at("empty.txt"));
    test::write_file(net / "p3" / "c.txt", content.at("c.txt"));
    auto& p1 = net.start_peer(1);
    auto& p2 = net.start_peer(2);
    auto& p3 = net.start_peer(3);

    // Every peer sees every name once, and names only.
    for (auto* node : {&p1, &p2, &p3}) {
        auto listed = net.io().run(node->async_list_network_files());
        BOOST_REQUIRE(listed.has_value());
        const std::set<std::string> distinct(listed->begin(), listed->end());
        BOOST_TEST(distinct.size() == listed->size());
        BOOST_TEST(distinct ==
                   (std::set<std::string>{"a.txt", "b.txt", "c.txt", "empty.txt", "shared.txt"}));
    }
    auto filtered = net.io().run(p1.async_list_network_files(".txt"));
    BOOST_REQUIRE(filtered.has_value());
    BOOST_TEST(filtered->size() == 5u);
    filtered = net.io().run(p1.async_list_network_files("hare"));
    BOOST_REQUIRE(filtered.has_value());
    BOOST_TEST(*filtered == std::vector<std::string>{"shared.txt"});

    // p3 fetches names held by p1, p2 and both at once.
    const auto outcomes = net.io().run(p3.async_download(
        {"a.txt", "b.txt", "shared.txt", "empty.txt", "missing.txt", "../evil", "a.txt"}));
    BOOST_TEST(outcomes.size() == 6u); // the repeated name is reported once
    for (const auto* name : {"a.txt", "b.txt", "shared.txt", "empty.txt"}) {
        BOOST_TEST_CONTEXT(name) {
            const auto* o = outcome_of(outcomes, name);
            BOOST_REQUIRE(o != nullptr);
            BOOST_TEST(!o->error);
            BOOST_TEST(o->message.empty());
            BOOST_TEST(!o->transfer.error);
            BOOST_TEST(o->transfer.size == content.at(name).size());
            BOOST_TEST(test::read_file(net / "p3" / name) == content.at(name));
        }
    }
    BOOST_TEST(outcome_of(outcomes, "a.txt")->transfer.source_peer == 1u);
    BOOST_TEST(outcome_of(outcomes, "b.txt")->transfer.source_peer == 2u);
    BOOST_TEST(outcome_of(outcomes, "empty.txt")->transfer.source_peer == 2u);
    const auto shared_from = outcome_of(outcomes, "shared.txt")->transfer.source_peer;
    BOOST_TEST((shared_from == 1u || shared_from == 2u));

    const auto* missing = outcome_of(outcomes, "missing.txt");
    BOOST_REQUIRE(missing != nullptr);
    BOOST_TEST(missing->error == make_error_code(errc::no_sources));
    BOOST_TEST(!missing->message.empty());
    const auto* evil = outcome_of(outcomes, "../evil");
    BOOST_REQUIRE(evil != nullptr);
    BOOST_TEST(evil->error == make_error_code(errc::bad_name));
    BOOST_TEST(!evil->message.empty());
    BOOST_TEST(!fs::exists(net / "evil"));
    BOOST_TEST(!fs::exists(net / "p3" / "missing.txt"));

    // No leftovers, and p3 is a source of what it fetched as soon as the download returned.
    BOOST_TEST(test::files_in(net / "p3") ==
               (std::vector<std::string>{"a.txt", "b.txt", "c.txt", "empty.txt", "shared.txt"}));
    BOOST_TEST(test::index_sources(net.index_port(), "a.txt") == (std::set<std::uint32_t>{1, 3}));
    BOOST_TEST(test::index_sources(net.index_port(), "b.txt") == (std::set<std::uint32_t>{2, 3}));
    BOOST_TEST(test::index_sources(net.index_port(), "shared.txt") ==
               (std::set<std::uint32_t>{1, 2, 3}));
    BOOST_TEST(test::index_sources(net.index_port(), "c.txt") == (std::set<std::uint32_t>{3}));
    BOOST_TEST(test::index_sources(net.index_port(), "missing.txt").empty());
    const auto stats = net.io().run(net.index().async_stats());
    BOOST_TEST(stats.peers == 3u);
    BOOST_TEST(stats.names == 5u);
    BOOST_TEST(stats.files == 2u + 3u + 5u);
}

BOOST_AUTO_TEST_CASE(peers_register_again_after_the_index_restarts) {
    IndexServerOptions first;
    first.lease_ttl = std::chrono::milliseconds(600);
    test::network net(first);
    const auto one = test::random_text(10'000, 21);
    const auto two = test::random_text(20'000, 22);
    test::write_file(net / "p1" / "one.txt", one);
    test::write_file(net / "p2" / "two.txt", two);
    auto& p1 = net.start_peer(1);
    auto& p2 = net.start_peer(2);
    const auto port = net.index_port();
    BOOST_TEST(test::index_sources(port, "one.txt") == std::set<std::uint32_t>{1});

    // A new, empty index on the same port: the peers notice and register by themselves.
    IndexServerOptions second;
    second.lease_ttl = std::chrono::milliseconds(600);
    net.restart_index(second);
    BOOST_REQUIRE_EQUAL(net.index_port(), port);
    BOOST_TEST(
        test::eventually([&] { return net.io().run(net.index().async_stats()).peers == 2; }));
    BOOST_TEST(test::eventually([&] {
        const auto names = test::index_names(port);
        return names == std::vector<std::string>{"one.txt", "two.txt"};
    }));
    BOOST_TEST(test::eventually([&] { return p1.registered() && p2.registered(); }));
    BOOST_TEST(test::index_sources(port, "one.txt") == std::set<std::uint32_t>{1});
    BOOST_TEST(test::index_sources(port, "two.txt") == std::set<std::uint32_t>{2});

    // Lookups and downloads work again through the new index.
    const auto outcomes = net.io().run(p1.async_download({"two.txt"}));
    BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
    BOOST_TEST(!outcomes[0].error);
    BOOST_TEST(test::read_file(net / "p1" / "two.txt") == two);
    BOOST_TEST(test::index_sources(port, "two.txt") == (std::set<std::uint32_t>{1, 2}));

    // The new leases are renewed: both peers stay listed over several lease times.
    BOOST_TEST(test::holds_for([&] { return net.io().run(net.index().async_stats()).peers == 2; },
                               std::chrono::milliseconds(1'500)));
}

BOOST_AUTO_TEST_CASE(an_id_live_under_another_token_is_refused) {
    test::network net;
    const auto mine = test::random_text(4'000, 31);
    test::write_file(net / "p7" / "mine.txt", mine);
    auto& first = net.start_peer(7);

    auto options = net.options(7);
    options.folder = net / "other";
    options.config_file = net / "other.config";
    test::write_file(net / "other" / "theirs.txt", "not to be announced");
    PeerNode second(net.io().executor(), options);
    const auto ec = net.io().run(second.async_start());
    BOOST_TEST(ec == make_error_code(errc::conflict));
    BOOST_TEST(!second.registered());
    net.io().run(second.async_quit());

    // The first keeps its registration; the second took nothing over and removed nothing.
    BOOST_TEST(first.registered());
    BOOST_TEST(test::index_sources(net.index_port(), "mine.txt") == std::set<std::uint32_t>{7});
    BOOST_TEST(test::index_sources(net.index_port(), "theirs.txt").empty());
    BOOST_TEST(net.io().run(net.index().async_stats()).peers == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
