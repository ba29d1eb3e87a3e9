// The shared folder: deleting, changes made by hand, and files that are never overwritten.
#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <set>

namespace fs = std::filesystem;
using namespace p2pshare;

namespace {

const DeleteOutcome* outcome_of(const std::vector<DeleteOutcome>& outcomes,
                                const std::string& name) {
    for (const auto& o : outcomes) {
        if (o.name == name) return &o;
    }
    return nullptr;
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_folder)

BOOST_AUTO_TEST_CASE(delete_local_removes_only_plain_files_of_the_folder) {
    test::network net;
    const std::string secret = "outside the folder: " + test::random_text(100, 41);
    test::write_file(net / "secret.txt", secret);
    test::write_file(net / "p1" / "x.txt", "x");
    test::write_file(net / "p1" / "y.txt", "y");
    test::write_file(net / "p1" / "sub" / "inner.txt", "inner");
    fs::create_symlink(net / "secret.txt", net / "p1" / "link");
    fs::create_symlink(net / "p1" / "y.txt", net / "p1" / "link_to_y");
    test::write_file(net / "p2" / "x.txt", "x");
    auto& p1 = net.start_peer(1);
    net.start_peer(2);
    BOOST_TEST(test::index_sources(net.index_port(), "x.txt") == (std::set<std::uint32_t>{1, 2}));
    // Symlinks and folders are not shared in the first place.
    BOOST_TEST(!listed(test::index_names(net.index_port()), "link"));
    BOOST_TEST(!listed(test::index_names(net.index_port()), "sub"));

    const auto outcomes = net.io().run(
        p1.async_delete_local({"x.txt", "nope.txt", "../secret.txt", "sub/inner.txt", "sub", "link",
                               "link_to_y", "..", ".", "", "/etc/passwd", "a\\b", "x.txt.part"}));
    BOOST_TEST(outcomes.size() == 13u);
    BOOST_TEST(!outcome_of(outcomes, "x.txt")->error);
    BOOST_TEST(outcome_of(outcomes, "nope.txt")->error == make_error_code(errc::not_found));
    for (const auto* name : {"../secret.txt", "sub/inner.txt", "sub", "link", "link_to_y", "..",
                             ".", "", "/etc/passwd", "a\\b", "x.txt.part"}) {
        BOOST_TEST_CONTEXT("'" << name << "'") {
            const auto* o = outcome_of(outcomes, name);
            BOOST_REQUIRE(o != nullptr);
            BOOST_TEST((o->error && o->error != make_error_code(errc::not_found)));
            BOOST_TEST(!o->message.empty());
        }
    }
    BOOST_TEST(!fs::exists(net / "p1" / "x.txt"));
    BOOST_TEST(test::read_file(net / "p1" / "y.txt") == "y");
    BOOST_TEST(test::read_file(net / "p1" / "sub" / "inner.txt") == "inner");
    BOOST_TEST(fs::is_symlink(net / "p1" / "link"));
    BOOST_TEST(fs::is_symlink(net / "p1" / "link_to_y"));
    BOOST_TEST(test::read_file(net / "secret.txt") == secret);
    BOOST_TEST(test::read_file(net / "p2" / "x.txt") == "x");

    // The index knows at once: p1 no longer shares x.txt, p2 still does.
    BOOST_TEST(test::index_sources(net.index_port(), "x.txt") == std::set<std::uint32_t>{2});
    BOOST_TEST(test::index_sources(net.index_port(), "y.txt") == std::set<std::uint32_t>{1});

    // The last copy gone, the name leaves the network.
    const auto y = net.io().run(p1.async_delete_local({"y.txt"}));
    BOOST_REQUIRE_EQUAL(y.size(), 1u);
    BOOST_TEST(!y[0].error);
    BOOST_TEST(!listed(test::index_names(net.index_port()), "y.txt"));
    const auto local = net.io().run(p1.async_local_files());
    BOOST_TEST_REQUIRE(local.has_value());
    BOOST_TEST(local->empty());
}

BOOST_AUTO_TEST_CASE(files_changed_by_hand_are_announced_on_sync) {
    test::network net;
    auto options = net.options(1);
    options.rescan_interval = std::chrono::hours(1); // only async_sync looks at the folder
    auto& p1 = net.start_peer(options);
    const auto port = net.index_port();
    BOOST_TEST(test::index_names(port).empty());

    const auto content = test::random_text(12'345, 51);
    test::write_file(net / "p1" / "by_hand.txt", content);
    BOOST_TEST(!listed(test::index_names(port), "by_hand.txt")); // not before a sync
    BOOST_TEST(!net.io().run(p1.async_sync()));
    BOOST_TEST(test::index_sources(port, "by_hand.txt") == std::set<std::uint32_t>{1});
    // The listing of the peer's own file server agrees, hash included.
    const auto own = test::http_call(p1.port(), "GET", "/v1/files");
    BOOST_TEST(own.status == 200u);
    BOOST_TEST(own.body.find(test::sha256_hex(content)) != std::string::npos);

    fs::remove(net / "p1" / "by_hand.txt");
    BOOST_TEST(!net.io().run(p1.async_sync()));
    BOOST_TEST(test::index_sources(port, "by_hand.txt").empty());
    BOOST_TEST(!listed(test::index_names(port), "by_hand.txt"));
}

BOOST_AUTO_TEST_CASE(files_changed_by_hand_are_announced_by_the_periodic_rescan) {
    test::network net;
    auto options = net.options(2);
    options.rescan_interval = std::chrono::milliseconds(100);
    net.start_peer(options);
    const auto port = net.index_port();

    const auto content = test::random_text(3'000, 52);
    test::write_file(net / "p2" / "later.txt", content);
    BOOST_TEST(test::eventually([&] { return listed(test::index_names(port), "later.txt"); }));
    BOOST_TEST(test::index_sources(port, "later.txt") == std::set<std::uint32_t>{2});

    // A peer that asks for it gets the bytes written by hand.
    auto& p3 = net.start_peer(3);
    const auto got = net.io().run(p3.async_download({"later.txt"}));
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_TEST(!got[0].error);
    BOOST_TEST(test::read_file(net / "p3" / "later.txt") == content);

    fs::remove(net / "p2" / "later.txt");
    BOOST_TEST(test::eventually(
        [&] { return test::index_sources(port, "later.txt") == std::set<std::uint32_t>{3}; }));
}

BOOST_AUTO_TEST_CASE(an_existing_file_is_not_overwritten_unless_asked) {
    test::network net;
    const auto remote = test::random_text(8'000, 61);
    const std::string local = "the local version";
    test::write_file(net / "p1" / "same.txt", remote);
    test::write_file(net / "p3" / "same.txt", local);
    net.start_peer(1);
    auto options = net.options(3);
    options.transfer.overwrite = true;
    auto& p3 = net.start_peer(options);

    // Asked to overwrite, p3 replaces its version by p1's (its only other source).
    const auto replaced = net.io().run(p3.async_download({"same.txt"}));
    BOOST_REQUIRE_EQUAL(replaced.size(), 1u);
    BOOST_TEST(!replaced[0].error);
    BOOST_TEST(replaced[0].transfer.source_peer == 1u);
    BOOST_TEST(test::read_file(net / "p3" / "same.txt") == remote);
    BOOST_TEST(test::files_in(net / "p3") == std::vector<std::string>{"same.txt"});

    // Not asked to, p2 keeps its own version and is told why.
    test::write_file(net / "p2" / "same.txt", local);
    auto& p2 = net.start_peer(2);
    const auto refused = net.io().run(p2.async_download({"same.txt"}));
    BOOST_REQUIRE_EQUAL(refused.size(), 1u);
    BOOST_TEST(refused[0].error == make_error_code(errc::exists));
    BOOST_TEST(refused[0].transfer.error == make_error_code(errc::exists));
    BOOST_TEST(!refused[0].message.empty());
    BOOST_TEST(test::read_file(net / "p2" / "same.txt") == local);
    BOOST_TEST(test::files_in(net / "p2") == std::vector<std::string>{"same.txt"});
}

BOOST_AUTO_TEST_SUITE_END()
