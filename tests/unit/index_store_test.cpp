// detail::index_store with simulated time: leases, tokens, the inverted index and paging.
#include "unit_common.hpp"

#include "index_store.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using p2pshare::errc;

using p2pshare::detail::file_entry;
namespace d = p2pshare::detail;
using p2pshare::detail::register_request;

namespace {

/// Tokens "000...1", "000...2", ... so that tests can tell them apart and predict them.
struct counting_tokens {
    int next = 0;
    std::string operator()() {
        auto s = std::to_string(++next);
        return std::string(32 - s.size(), '0') + s;
    }
};

struct store_fixture {
    store_fixture() : store(1000ms, counting_tokens{}) {}

    d::index_store store;
    const d::index_store::time_point t0{std::chrono::hours(1)};

    static register_request request(std::uint32_t id, std::vector<file_entry> files,
                                    std::string token = {}) {
        register_request r;
        r.id = id;
        r.host = "10.0.0." + std::to_string(id);
        r.port = static_cast<std::uint16_t>(4000 + id);
        r.files = std::move(files);
        r.token = std::move(token);
        return r;
    }

    std::string register_ok(std::uint32_t id, std::vector<file_entry> files,
                            d::index_store::time_point now) {
        auto lease = store.register_peer(request(id, std::move(files)), now);
        BOOST_TEST_REQUIRE(lease.has_value());
        return lease->token;
    }

    std::vector<std::string> list_all(std::string_view contains, d::index_store::time_point now) {
        auto page = store.list(contains, "", 1'000'000, now);
        BOOST_TEST(!page.next_after.has_value());
        return {page.names.begin(), page.names.end()};
    }

    std::vector<std::uint32_t> lookup_peers(std::string_view name, d::index_store::time_point now) {
        std::vector<std::uint32_t> out;
        for (const auto& s : store.lookup(name, now))
            out.push_back(s.peer);
        std::sort(out.begin(), out.end());
        return out;
    }
};

using name_list = std::vector<std::string>;
using ids = std::vector<std::uint32_t>;

} // namespace

BOOST_FIXTURE_TEST_SUITE(index_store, store_fixture)

BOOST_AUTO_TEST_CASE(register_gives_a_token_and_the_ttl) {
    auto lease = store.register_peer(request(1, {{"a.txt", 3, sha_a}}), t0);
    BOOST_TEST_REQUIRE(lease.has_value());
    BOOST_TEST(lease->token == std::string(31, '0') + "1");
    BOOST_TEST(lease->ttl.count() == 1000);
    BOOST_TEST(store.ttl().count() == 1000);
    BOOST_TEST(store.peer_count() == 1u);
    BOOST_TEST(store.name_count() == 1u);
    BOOST_TEST(store.file_count() == 1u);
}

BOOST_AUTO_TEST_CASE(default_tokens_are_random_hex) {
    d::index_store random_store(1s);
    auto a = random_store.register_peer(request(1, {}), t0);
    auto b = random_store.register_peer(request(2, {}), t0);
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST_REQUIRE(b.has_value());
    BOOST_TEST(p2pshare::detail::is_token(a->token));
    BOOST_TEST(p2pshare::detail::is_token(b->token));
    BOOST_TEST(a->token != b->token);
}

BOOST_AUTO_TEST_CASE(reregister_with_own_token_keeps_the_token_and_replaces_files) {
    const auto token = register_ok(1, {{"old.txt", 1, sha_a}}, t0);
    auto again = store.register_peer(request(1, {{"new.txt", 2, sha_b}}, token), t0 + 500ms);
    BOOST_TEST_REQUIRE(again.has_value());
    BOOST_TEST(again->token == token);
    BOOST_TEST(store.peer_count() == 1u);
    BOOST_TEST(list_all("", t0 + 500ms) == name_list{"new.txt"});
    BOOST_TEST(store.file_count() == 1u);
    // The lease now runs from the second registration.
    BOOST_TEST(store.expire(t0 + 1400ms) == 0u);
    BOOST_TEST(store.expire(t0 + 1500ms) == 1u);
}

BOOST_AUTO_TEST_CASE(reregister_with_another_or_no_token_is_a_conflict) {
    const auto token = register_ok(1, {{"a.txt", 1, sha_a}}, t0);
    const std::string other(32, 'f');
    for (const auto& t : {other, std::string{}}) {
        BOOST_TEST_CONTEXT("token '" << t << "'") {
            auto r = store.register_peer(request(1, {{"b.txt", 1, sha_b}}, t), t0 + 1ms);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == errc::conflict);
            BOOST_TEST(!r.error().message.empty());
        }
    }
    // Nothing changed.
    BOOST_TEST(list_all("", t0 + 1ms) == name_list{"a.txt"});
    BOOST_TEST(lookup_peers("b.txt", t0 + 1ms).empty());
    auto renewed = store.renew(1, token, t0 + 2ms);
    BOOST_TEST(renewed.has_value());
}

BOOST_AUTO_TEST_CASE(an_expired_id_can_be_taken_by_anyone) {
    const auto token = register_ok(1, {{"a.txt", 1, sha_a}}, t0);
    auto r = store.register_peer(request(1, {{"b.txt", 1, sha_b}}), t0 + 1000ms);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->token != token);
    BOOST_TEST(list_all("", t0 + 1000ms) == name_list{"b.txt"});
}

BOOST_AUTO_TEST_CASE(only_a_live_lease_is_taken_back) {
    auto first = store.register_peer(request(1, {{"a.txt", 1, sha_a}}), t0);
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST(!first->taken_back);
    // With its token while the lease lives: taken back, same token.
    auto back = store.register_peer(request(1, {{"a.txt", 1, sha_a}}, first->token), t0 + 500ms);
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->taken_back);
    BOOST_TEST(back->token == first->token);
    // With the same token after the lease ended: a new lease with a new token.
    auto stale = store.register_peer(request(1, {{"b.txt", 1, sha_b}}, first->token), t0 + 1500ms);
    BOOST_TEST_REQUIRE(stale.has_value());
    BOOST_TEST(!stale->taken_back);
    BOOST_TEST(stale->token != first->token);
    BOOST_TEST(list_all("", t0 + 1500ms) == name_list{"b.txt"});
}

BOOST_AUTO_TEST_CASE(renew_extends_the_lease) {
    const auto token = register_ok(1, {{"a.txt", 1, sha_a}}, t0);
    auto lease = store.renew(1, token, t0 + 900ms);
    BOOST_TEST_REQUIRE(lease.has_value());
    BOOST_TEST(lease->token == token);
    BOOST_TEST(lease->ttl.count() == 1000);
    BOOST_TEST(lookup_peers("a.txt", t0 + 1899ms) == ids{1});
    BOOST_TEST(lookup_peers("a.txt", t0 + 1900ms).empty());
    BOOST_TEST(store.peer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(renew_errors) {
    const auto token = register_ok(1, {{"a.txt", 1, sha_a}}, t0);
    auto wrong = store.renew(1, std::string(32, 'e'), t0 + 1ms);
    BOOST_TEST_REQUIRE(!wrong.has_value());
    BOOST_TEST(wrong.error().code == errc::forbidden);
    auto unknown = store.renew(2, token, t0 + 1ms);
    BOOST_TEST_REQUIRE(!unknown.has_value());
    BOOST_TEST(unknown.error().code == errc::not_found);
    // A refused renewal does not extend the lease.
    BOOST_TEST(store.expire(t0 + 1000ms) == 1u);
    auto late = store.renew(1, token, t0 + 1000ms);
    BOOST_TEST_REQUIRE(!late.has_value());
    BOOST_TEST(late.error().code == errc::not_found);
}

BOOST_AUTO_TEST_CASE(replace_files_swaps_the_index_entries) {
    const auto token = register_ok(1, {{"a.txt", 1, sha_a}, {"b.txt", 2, sha_b}}, t0);
    register_ok(2, {{"b.txt", 2, sha_b}}, t0);
    BOOST_TEST(store.file_count() == 3u);
    auto done = store.replace_files(1, token, {{"b.txt", 2, sha_b}, {"c.txt", 3, sha_c}}, t0 + 1ms);
    BOOST_TEST_REQUIRE(done.has_value());
    BOOST_TEST(list_all("", t0 + 1ms) == (name_list{"b.txt", "c.txt"}));
    BOOST_TEST(lookup_peers("a.txt", t0 + 1ms).empty());
    BOOST_TEST(lookup_peers("b.txt", t0 + 1ms) == (ids{1, 2}));
    BOOST_TEST(lookup_peers("c.txt", t0 + 1ms) == ids{1});
    BOOST_TEST(store.peer_count() == 2u);
    BOOST_TEST(store.name_count() == 2u);
    BOOST_TEST(store.file_count() == 3u);
    // Replacing the files renews the lease too.
    BOOST_TEST(store.expire(t0 + 1000ms) == 1u);
    BOOST_TEST(lookup_peers("c.txt", t0 + 1000ms) == ids{1});
    // An empty list is allowed.
    BOOST_TEST(store.replace_files(1, token, {}, t0 + 1000ms).has_value());
    BOOST_TEST(store.peer_count() == 1u);
    BOOST_TEST(store.file_count() == 0u);
    BOOST_TEST(list_all("", t0 + 1000ms).empty());
}

BOOST_AUTO_TEST_CASE(replace_files_errors_change_nothing) {
    const auto token = register_ok(1, {{"a.txt", 1, sha_a}}, t0);
    auto wrong = store.replace_files(1, std::string(32, 'e'), {{"x", 1, sha_b}}, t0 + 1ms);
    BOOST_TEST_REQUIRE(!wrong.has_value());
    BOOST_TEST(wrong.error().code == errc::forbidden);
    auto unknown = store.replace_files(7, token, {{"x", 1, sha_b}}, t0 + 1ms);
    BOOST_TEST_REQUIRE(!unknown.has_value());
    BOOST_TEST(unknown.error().code == errc::not_found);
    BOOST_TEST(list_all("", t0 + 1ms) == name_list{"a.txt"});
    BOOST_TEST(store.file_count() == 1u);
}

BOOST_AUTO_TEST_CASE(unregister_removes_the_peer) {
    const auto token1 = register_ok(1, {{"a.txt", 1, sha_a}, {"s.txt", 9, sha_c}}, t0);
    register_ok(2, {{"s.txt", 9, sha_c}}, t0);
    auto wrong = store.unregister(1, std::string(32, 'e'), t0);
    BOOST_TEST_REQUIRE(!wrong.has_value());
    BOOST_TEST(wrong.error().code == errc::forbidden);
    auto unknown = store.unregister(3, token1, t0);
    BOOST_TEST_REQUIRE(!unknown.has_value());
    BOOST_TEST(unknown.error().code == errc::not_found);
    BOOST_TEST(store.peer_count() == 2u);

    BOOST_TEST(store.unregister(1, token1, t0 + 1ms).has_value());
    BOOST_TEST(store.peer_count() == 1u);
    BOOST_TEST(store.name_count() == 1u);
    BOOST_TEST(store.file_count() == 1u);
    BOOST_TEST(lookup_peers("a.txt", t0 + 1ms).empty());
    BOOST_TEST(lookup_peers("s.txt", t0 + 1ms) == ids{2});
    // Gone for good: the token no longer works and the id is free.
    auto again = store.unregister(1, token1, t0 + 2ms);
    BOOST_TEST_REQUIRE(!again.has_value());
    BOOST_TEST(again.error().code == errc::not_found);
    BOOST_TEST(store.register_peer(request(1, {}), t0 + 3ms).has_value());
    // The unregistered peer's expiry no longer counts.
    BOOST_TEST(store.expire(t0 + 1000ms) == 1u);
}

BOOST_AUTO_TEST_CASE(lookup_returns_every_source) {
    register_ok(1, {{"s.bin", 10, sha_a}}, t0);
    register_ok(2, {{"s.bin", 10, sha_a}, {"t.bin", 5, sha_b}}, t0);
    register_ok(3, {{"s.bin", 11, sha_c}}, t0);
    const auto sources = store.lookup("s.bin", t0);
    BOOST_TEST_REQUIRE(sources.size() == 3u);
    std::vector<d::index_store::source> sorted(sources.begin(), sources.end());
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.peer < b.peer; });
    for (std::uint32_t i = 0; i < 3; ++i) {
        const auto& s = sorted[i];
        BOOST_TEST(s.peer == i + 1);
        BOOST_TEST(s.host == "10.0.0." + std::to_string(i + 1));
        BOOST_TEST(s.port == 4001 + i);
    }
    BOOST_TEST(sorted[0].size == 10u);
    BOOST_TEST(d::to_hex(*sorted[0].sha256) == sha_a);
    BOOST_TEST(sorted[2].size == 11u);
    BOOST_TEST(d::to_hex(*sorted[2].sha256) == sha_c);
    BOOST_TEST(store.lookup("nothing", t0).empty());
    BOOST_TEST(store.lookup("", t0).empty());
}

BOOST_AUTO_TEST_CASE(lookup_gives_each_source_its_own_root) {
    const std::string root_d(64, 'd');
    register_ok(1, {{"s.bin", 10, sha_a, root_d}}, t0);
    register_ok(2, {{"s.bin", 10, sha_a}}, t0); // no root: a peer of an older version
    auto sources = store.lookup("s.bin", t0);
    BOOST_TEST_REQUIRE(sources.size() == 2u);
    std::map<std::uint32_t, std::string> roots;
    for (const auto& s : sources)
        roots[s.peer] = s.root != nullptr ? d::to_hex(*s.root) : std::string();
    BOOST_TEST(roots[1] == root_d);
    BOOST_TEST(roots[2].empty());
    // A new list replaces the roots too.
    const auto token = register_ok(3, {{"t.bin", 1, sha_b}}, t0);
    BOOST_TEST_REQUIRE(
        store.replace_files(3, token, {{"t.bin", 1, sha_b, root_d}}, t0).has_value());
    sources = store.lookup("t.bin", t0);
    BOOST_TEST_REQUIRE(sources.size() == 1u);
    BOOST_TEST(d::to_hex(*sources[0].root) == root_d);
}

BOOST_AUTO_TEST_CASE(expiry_is_exactly_at_the_ttl) {
    register_ok(1, {{"a.txt", 1, sha_a}}, t0);
    register_ok(2, {{"a.txt", 1, sha_a}, {"b.txt", 1, sha_b}}, t0 + 100ms);
    BOOST_TEST(store.expire(t0 + 999ms) == 0u);
    BOOST_TEST(lookup_peers("a.txt", t0 + 999ms) == (ids{1, 2}));
    BOOST_TEST(store.expire(t0 + 1000ms) == 1u);
    BOOST_TEST(lookup_peers("a.txt", t0 + 1000ms) == ids{2});
    BOOST_TEST(store.peer_count() == 1u);
    BOOST_TEST(lookup_peers("b.txt", t0 + 1099ms) == ids{2});
    BOOST_TEST(list_all("", t0 + 1100ms).empty());
    BOOST_TEST(store.peer_count() == 0u);
    BOOST_TEST(store.name_count() == 0u);
    BOOST_TEST(store.file_count() == 0u);
    BOOST_TEST(store.expire(t0 + 10s) == 0u);
}

BOOST_AUTO_TEST_CASE(expire_counts_every_peer_it_drops) {
    for (std::uint32_t id = 0; id < 5; ++id) {
        register_ok(id, {{"f" + std::to_string(id), id, sha_a}},
                    t0 + std::chrono::milliseconds(id));
    }
    BOOST_TEST(store.peer_count() == 5u);
    BOOST_TEST(store.expire(t0 + 1002ms) == 3u);
    BOOST_TEST(store.peer_count() == 2u);
    BOOST_TEST(list_all("", t0 + 1002ms) == (name_list{"f3", "f4"}));
    BOOST_TEST(store.expire(t0 + 5s) == 2u);
    BOOST_TEST(store.peer_count() == 0u);
}

BOOST_AUTO_TEST_CASE(counts_peers_names_and_files) {
    BOOST_TEST(store.peer_count() == 0u);
    BOOST_TEST(store.name_count() == 0u);
    BOOST_TEST(store.file_count() == 0u);
    register_ok(1, {{"a", 1, sha_a}, {"b", 1, sha_a}, {"c", 1, sha_a}}, t0);
    register_ok(2, {{"b", 1, sha_a}, {"c", 1, sha_a}}, t0);
    register_ok(3, {}, t0);
    BOOST_TEST(store.peer_count() == 3u);
    BOOST_TEST(store.name_count() == 3u);
    BOOST_TEST(store.file_count() == 5u);
}

BOOST_AUTO_TEST_CASE(list_is_sorted_distinct_and_filtered) {
    register_ok(1, {{"zeta.txt", 1, sha_a}, {"alpha.bin", 1, sha_a}, {"Movie.mkv", 1, sha_a}}, t0);
    register_ok(2, {{"alpha.bin", 1, sha_a}, {"beta.txt", 1, sha_b}}, t0);
    register_ok(3, {{"alpha.bin", 1, sha_c}, {"zeta.txt", 1, sha_c}}, t0);
    // Byte order: upper case before lower case; each name once although several peers share it.
    BOOST_TEST(list_all("", t0) == (name_list{"Movie.mkv", "alpha.bin", "beta.txt", "zeta.txt"}));
    BOOST_TEST(list_all(".txt", t0) == (name_list{"beta.txt", "zeta.txt"}));
    BOOST_TEST(list_all("ovi", t0) == name_list{"Movie.mkv"});
    BOOST_TEST(list_all("movie", t0).empty()); // case-sensitive
    BOOST_TEST(list_all("nothing", t0).empty());
}

BOOST_AUTO_TEST_CASE(list_pages_with_after_and_limit) {
    // 23 names f00..f22 spread over 3 peers, each shared by two peers.
    std::vector<std::vector<file_entry>> files(3);
    name_list expected;
    for (int i = 0; i < 23; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "f%02d", i);
        expected.emplace_back(name);
        files[static_cast<std::size_t>(i) % 3].push_back({name, 1, sha_a});
        files[static_cast<std::size_t>(i + 1) % 3].push_back({name, 1, sha_a});
    }
    for (std::uint32_t id = 0; id < 3; ++id)
        register_ok(id, files[id], t0);
    BOOST_TEST(store.name_count() == 23u);
    BOOST_TEST(store.file_count() == 46u);

    name_list seen;
    std::string after;
    int pages = 0;
    for (;;) {
        auto page = store.list("", after, 5, t0);
        ++pages;
        BOOST_TEST_REQUIRE(pages <= 10);
        BOOST_TEST(page.names.size() <= 5u);
        seen.insert(seen.end(), page.names.begin(), page.names.end());
        if (!page.next_after) break;
        BOOST_TEST(page.names.size() == 5u);
        BOOST_TEST(*page.next_after == std::string(page.names.back()));
        after = *page.next_after;
    }
    BOOST_TEST(pages == 5);
    BOOST_TEST(seen == expected);

    // An exact fit has no next page.
    auto exact = store.list("", "f17", 5, t0);
    BOOST_TEST(exact.names.size() == 5u);
    BOOST_TEST(!exact.next_after.has_value());
    // 'after' need not be a listed name, and paging combines with 'contains'.
    auto filtered = store.list("1", "f0", 3, t0);
    BOOST_TEST((name_list{filtered.names.begin(), filtered.names.end()}) ==
               (name_list{"f01", "f10", "f11"}));
    BOOST_TEST_REQUIRE(filtered.next_after.has_value());
    BOOST_TEST(*filtered.next_after == "f11");
    auto rest = store.list("1", *filtered.next_after, 100, t0);
    BOOST_TEST((name_list{rest.names.begin(), rest.names.end()}) ==
               (name_list{"f12", "f13", "f14", "f15", "f16", "f17", "f18", "f19", "f21"}));
    BOOST_TEST(!rest.next_after.has_value());
    // After the last name: empty.
    auto past = store.list("", "f22", 5, t0);
    BOOST_TEST(past.names.empty());
    BOOST_TEST(!past.next_after.has_value());
    // A limit of 0 is taken as 1.
    auto one = store.list("", "", 0, t0);
    BOOST_TEST(one.names.size() == 1u);
    BOOST_TEST(one.next_after.has_value());
}

BOOST_AUTO_TEST_CASE(word_search_finds_names_with_every_word) {
    register_ok(1,
                {{"Blue Train (1957).flac", 1, sha_a},
                 {"blue_in_green.mp3", 1, sha_a},
                 {"Train of Thought.mp3", 1, sha_a}},
                t0);
    register_ok(2, {{"KIND OF BLUE.mp3", 1, sha_b}, {"blue-train-live.ogg", 1, sha_b}}, t0);
    const auto search = [&](std::vector<std::string> words) {
        auto page = store.search(words, {}, "", 100, t0);
        BOOST_TEST(!page.next_after.has_value());
        return name_list{page.names.begin(), page.names.end()};
    };
    // Every word, whole, in any case and order; byte order of names.
    BOOST_TEST(search({"blue"}) == (name_list{"Blue Train (1957).flac", "KIND OF BLUE.mp3",
                                              "blue-train-live.ogg", "blue_in_green.mp3"}));
    BOOST_TEST(search({"train", "blue"}) ==
               (name_list{"Blue Train (1957).flac", "blue-train-live.ogg"}));
    BOOST_TEST(search({"mp3", "blue"}) == (name_list{"KIND OF BLUE.mp3", "blue_in_green.mp3"}));
    BOOST_TEST(search({"1957"}) == name_list{"Blue Train (1957).flac"});
    BOOST_TEST(search({"trai"}).empty()); // words, not parts of words
    // Words of one character narrow what the indexed words find.
    const auto four = register_ok(4, {{"Blue 2.mp3", 1, sha_a}, {"Blue 12.mp3", 1, sha_a}}, t0);
    const auto two = store.search({"blue"}, {"2"}, "", 100, t0);
    BOOST_TEST((name_list{two.names.begin(), two.names.end()}) == name_list{"Blue 2.mp3"});
    BOOST_TEST(store.unregister(4, four, t0).has_value());
    BOOST_TEST(search({"blue", "nowhere"}).empty());
    // A name leaves the word index with its last source, and only then.
    register_ok(3, {{"KIND OF BLUE.mp3", 1, sha_b}}, t0);
    BOOST_TEST(store.unregister(2, "00000000000000000000000000000002", t0).has_value());
    BOOST_TEST(search({"kind"}) == name_list{"KIND OF BLUE.mp3"});
    BOOST_TEST(search({"live"}).empty());
    // And when its peer's lease ends.
    BOOST_TEST(search({"thought"}) == name_list{"Train of Thought.mp3"});
    BOOST_TEST(search({"thought"}).size() == 1u);
    auto late = store.search({"thought"}, {}, "", 100, t0 + 1000ms);
    BOOST_TEST(late.names.empty());
}

BOOST_AUTO_TEST_CASE(word_search_pages_like_a_filtered_list) {
    std::vector<file_entry> files;
    for (int i = 0; i < 12; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "song %02d %s.mp3", i, i % 3 == 0 ? "live" : "studio");
        files.push_back({name, 1, sha_a});
    }
    register_ok(1, files, t0);
    auto first = store.search({"live", "song"}, {}, "", 2, t0);
    BOOST_TEST((name_list{first.names.begin(), first.names.end()}) ==
               (name_list{"song 00 live.mp3", "song 03 live.mp3"}));
    BOOST_TEST_REQUIRE(first.next_after.has_value());
    auto second = store.search({"live", "song"}, {}, *first.next_after, 2, t0);
    BOOST_TEST((name_list{second.names.begin(), second.names.end()}) ==
               (name_list{"song 06 live.mp3", "song 09 live.mp3"}));
    BOOST_TEST(!second.next_after.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// A store with the given bounds and predictable tokens.
d::index_store bounded(d::index_store::bounds b) {
    return d::index_store(1000ms, counting_tokens{}, b);
}

std::vector<file_entry> files_named(std::initializer_list<std::string> list) {
    std::vector<file_entry> out;
    for (const auto& n : list)
        out.push_back({n, 1, sha_a});
    return out;
}

/// Everything a client can see of a store, to tell that a refusal changed nothing.
std::string state_of(d::index_store& store, d::index_store::time_point now) {
    std::string out = std::to_string(store.peer_count()) + " peers, " +
                      std::to_string(store.file_count()) + " files, " +
                      std::to_string(store.name_bytes()) + " bytes:";
    const auto page = store.list("", "", 1'000'000, now);
    for (const auto name : page.names) {
        out += " " + std::string(name) + "=";
        std::vector<std::uint32_t> peers;
        for (const auto& s : store.lookup(name, now))
            peers.push_back(s.peer);
        std::sort(peers.begin(), peers.end());
        for (const auto p : peers)
            out += std::to_string(p) + ",";
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(sorted_names_suite)

// The chunked set against std::set, through enough names to split and empty chunks.
BOOST_AUTO_TEST_CASE(sorted_names_is_a_sorted_set) {
    std::vector<std::string> pool;
    for (int i = 0; i < 3000; ++i)
        pool.push_back("n" + std::to_string((i * 7919) % 3001));
    d::sorted_names chunked;
    std::set<std::string_view> model;
    const auto same = [&] {
        std::vector<std::string_view> a(chunked.begin(), chunked.end());
        return chunked.size() == model.size() &&
               a == std::vector<std::string_view>(model.begin(), model.end());
    };
    for (const auto& n : pool)
        BOOST_TEST(chunked.insert(n) == model.insert(n).second);
    BOOST_TEST(same());
    BOOST_TEST(!chunked.insert(pool[5])); // once only
    for (const auto* probe : {"", "n1", "n15", "n2999", "n3000", "z"}) {
        const auto it = chunked.upper_bound(probe);
        const auto m = model.upper_bound(probe);
        BOOST_TEST((it == chunked.end()) == (m == model.end()));
        if (m != model.end()) BOOST_TEST(*it == *m);
    }
    for (std::size_t i = 0; i < pool.size(); i += 2)
        BOOST_TEST(chunked.erase(pool[i]) == (model.erase(pool[i]) == 1));
    BOOST_TEST(!chunked.erase("absent"));
    BOOST_TEST(same());
    BOOST_TEST(chunked.contains(pool[1]));
    BOOST_TEST(!chunked.contains(pool[0]));
    for (const auto& n : pool) {
        chunked.erase(n);
        model.erase(n);
    }
    BOOST_TEST(chunked.empty());
    BOOST_TEST(same());
    BOOST_TEST((chunked.begin() == chunked.end()));
    BOOST_TEST(chunked.insert("again"));
    BOOST_TEST(*chunked.begin() == "again");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(index_store_bounds)

const d::index_store::time_point t0{std::chrono::hours(1)};

BOOST_AUTO_TEST_CASE(files_beyond_max_files_are_refused_and_change_nothing) {
    auto store = bounded({.max_files = 5});
    BOOST_TEST_REQUIRE(
        store.register_peer(store_fixture::request(1, files_named({"a", "b", "c"})), t0)
            .has_value());
    const auto token2 = store.register_peer(store_fixture::request(2, files_named({"a", "d"})), t0);
    BOOST_TEST_REQUIRE(token2.has_value());
    BOOST_TEST(store.file_count() == 5u);
    const auto before = state_of(store, t0);
    // A new peer with one file more.
    auto full = store.register_peer(store_fixture::request(3, files_named({"e"})), t0);
    BOOST_TEST_REQUIRE(!full.has_value());
    BOOST_TEST(full.error().code == errc::full);
    BOOST_TEST(full.error().message.find("5 (peer, file) entries") != std::string::npos,
               full.error().message);
    // A peer that grows its list beyond the limit, by update or by taking its lease back.
    auto grown = store.replace_files(2, token2->token, files_named({"a", "d", "e"}), t0);
    BOOST_TEST_REQUIRE(!grown.has_value());
    BOOST_TEST(grown.error().code == errc::full);
    auto again = store_fixture::request(2, files_named({"a", "d", "e"}), token2->token);
    BOOST_TEST(store.register_peer(again, t0).error().code == errc::full);
    BOOST_TEST(state_of(store, t0) == before);
    BOOST_TEST(store.peer_count() == 2u);
    // Within the limit, counting the files it replaces: same size, other names.
    BOOST_TEST(store.replace_files(2, token2->token, files_named({"x", "y"}), t0).has_value());
    BOOST_TEST(store.file_count() == 5u);
    // A peer with no file still gets in: only files are counted.
    BOOST_TEST(store.register_peer(store_fixture::request(3, {}), t0).has_value());
    // Room made by a peer that leaves is free again.
    BOOST_TEST(store.unregister(2, token2->token, t0).has_value());
    BOOST_TEST(
        store.replace_files(3, "00000000000000000000000000000003", files_named({"e", "f"}), t0)
            .has_value());
    BOOST_TEST(store.file_count() == 5u);
}

BOOST_AUTO_TEST_CASE(name_bytes_beyond_max_name_bytes_are_refused_and_change_nothing) {
    auto store = bounded({.max_name_bytes = 20});
    // A name shared by two peers counts twice: it is held twice.
    BOOST_TEST_REQUIRE(
        store.register_peer(store_fixture::request(1, files_named({"0123456789"})), t0)
            .has_value());
    const auto lease = store.register_peer(store_fixture::request(2, files_named({"abc"})), t0);
    BOOST_TEST_REQUIRE(lease.has_value());
    BOOST_TEST(store.name_bytes() == 13u);
    const auto before = state_of(store, t0);
    auto full = store.register_peer(store_fixture::request(3, files_named({"0123456789"})), t0);
    BOOST_TEST_REQUIRE(!full.has_value());
    BOOST_TEST(full.error().code == errc::full);
    BOOST_TEST(full.error().message.find("20 bytes of file names") != std::string::npos,
               full.error().message);
    BOOST_TEST(
        store.replace_files(2, lease->token, files_named({"abc", "defghijk"}), t0).error().code ==
        errc::full);
    BOOST_TEST(state_of(store, t0) == before);
    // Exactly at the limit is fine; the bytes of the replaced list are given back first.
    BOOST_TEST(store.replace_files(2, lease->token, files_named({"abc", "defg"}), t0).has_value());
    BOOST_TEST(store.name_bytes() == 17u);
    BOOST_TEST(store.replace_files(2, lease->token, files_named({"0123456789"}), t0).has_value());
    BOOST_TEST(store.name_bytes() == 20u);
    // Expiry gives them back too.
    BOOST_TEST(store.expire(t0 + 1000ms) == 2u);
    BOOST_TEST(store.name_bytes() == 0u);
    BOOST_TEST(store.file_count() == 0u);
}

BOOST_AUTO_TEST_CASE(one_address_holds_at_most_max_peers_per_address) {
    auto store = bounded({.max_peers_per_address = 2});
    const auto reg = [&](std::uint32_t id, std::string_view client, std::string token = {}) {
        return store.register_peer(store_fixture::request(id, files_named({"f"}), token), t0,
                                   client);
    };
    const auto one = reg(1, "192.0.2.1");
    BOOST_TEST_REQUIRE(one.has_value());
    BOOST_TEST_REQUIRE(reg(2, "192.0.2.1").has_value());
    BOOST_TEST(store.peers_of("192.0.2.1") == 2u);
    const auto before = state_of(store, t0);
    auto third = reg(3, "192.0.2.1");
    BOOST_TEST_REQUIRE(!third.has_value());
    BOOST_TEST(third.error().code == errc::full);
    BOOST_TEST(third.error().message.find("192.0.2.1") != std::string::npos);
    BOOST_TEST(third.error().message.find("per-address") != std::string::npos);
    BOOST_TEST(state_of(store, t0) == before);
    // Another address is counted on its own.
    BOOST_TEST(reg(3, "192.0.2.9").has_value());
    BOOST_TEST(store.peers_of("192.0.2.9") == 1u);
    // A peer taking its lease back from its own address is not a new one...
    BOOST_TEST(reg(1, "192.0.2.1", one->token).has_value());
    BOOST_TEST(store.peers_of("192.0.2.1") == 2u);
    // ...but from a full address it is refused, and stays where it was.
    const auto three = std::string(32 - 1, '0') + "3";
    BOOST_TEST(reg(3, "192.0.2.1", three).error().code == errc::full);
    BOOST_TEST(store.peers_of("192.0.2.9") == 1u);
    // Moving to an address with room moves its count.
    BOOST_TEST(reg(1, "192.0.2.9", one->token).has_value());
    BOOST_TEST(store.peers_of("192.0.2.1") == 1u);
    BOOST_TEST(store.peers_of("192.0.2.9") == 2u);
    // Unregistering and expiry give the room back.
    BOOST_TEST(store.unregister(1, one->token, t0).has_value());
    BOOST_TEST(store.peers_of("192.0.2.9") == 1u);
    BOOST_TEST(reg(4, "192.0.2.1").has_value());
    BOOST_TEST(store.expire(t0 + 1000ms) == 3u);
    BOOST_TEST(store.peers_of("192.0.2.1") == 0u);
    BOOST_TEST(store.peers_of("192.0.2.9") == 0u);
}

BOOST_AUTO_TEST_CASE(a_lookup_gives_at_most_max_sources_per_name_a_random_sample) {
    auto store = bounded({.max_sources_per_name = 5});
    for (std::uint32_t id = 1; id <= 40; ++id) {
        BOOST_TEST_REQUIRE(
            store.register_peer(store_fixture::request(id, files_named({"many"})), t0).has_value());
    }
    for (std::uint32_t id = 41; id <= 45; ++id) {
        BOOST_TEST_REQUIRE(
            store.register_peer(store_fixture::request(id, files_named({"five"})), t0).has_value());
    }
    // At the limit: every source.
    std::set<std::uint32_t> five;
    for (const auto& s : store.lookup("five", t0))
        five.insert(s.peer);
    BOOST_TEST((five == std::set<std::uint32_t>{41, 42, 43, 44, 45}));
    // Beyond: 5 distinct live sharers, not always the same ones.
    std::map<std::uint32_t, int> seen;
    for (int round = 0; round < 200; ++round) {
        const auto sample = store.lookup("many", t0);
        BOOST_TEST_REQUIRE(sample.size() == 5u);
        std::set<std::uint32_t> ids;
        for (const auto& s : sample) {
            BOOST_TEST(s.peer >= 1u);
            BOOST_TEST(s.peer <= 40u);
            BOOST_TEST(s.host == "10.0.0." + std::to_string(s.peer));
            ids.insert(s.peer);
            ++seen[s.peer];
        }
        BOOST_TEST(ids.size() == 5u);
    }
    // 1,000 draws of 5 out of 40: each peer is drawn 25 times on average; a peer never drawn
    // has a probability of (35/40)^200 < 1e-11.
    BOOST_TEST(seen.size() == 40u);
    // Sampling does not lose sources: the store still holds all 40.
    BOOST_TEST(store.file_count() == 45u);
    for (std::uint32_t id = 1; id <= 40; ++id) {
        BOOST_TEST_REQUIRE(
            store
                .unregister(
                    id, std::string(32 - std::to_string(id).size(), '0') + std::to_string(id), t0)
                .has_value());
    }
    BOOST_TEST(store.lookup("many", t0).empty());
}

BOOST_AUTO_TEST_CASE(a_filtered_list_examines_at_most_max_list_scan_names) {
    auto store = bounded({.max_list_scan = 10});
    // 100 names n000..n099; those with a '7' match.
    std::vector<std::string> all;
    for (int i = 0; i < 100; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "n%03d", i);
        all.emplace_back(name);
    }
    std::vector<file_entry> files;
    for (const auto& n : all)
        files.push_back({n, 1, sha_a});
    BOOST_TEST_REQUIRE(store.register_peer(store_fixture::request(1, files), t0).has_value());

    // Each request looks at 10 names at most: n000..n009 holds one match, then the cursor.
    auto first = store.list("7", "", 100, t0);
    BOOST_TEST((std::vector<std::string>(first.names.begin(), first.names.end()) ==
                std::vector<std::string>{"n007"}));
    BOOST_TEST_REQUIRE(first.next_after.has_value());
    BOOST_TEST(*first.next_after == "n009");
    // Only n077 has "77": after n009, the ten names examined hold none, and the page is empty
    // with a cursor.
    auto empty = store.list("77", "n009", 100, t0);
    BOOST_TEST(empty.names.empty());
    BOOST_TEST_REQUIRE(empty.next_after.has_value());
    BOOST_TEST(*empty.next_after == "n019");
    // Following the cursors finds every match once, in order, in 10 requests.
    std::vector<std::string> seen;
    std::string after;
    int requests = 0;
    for (;;) {
        auto page = store.list("7", after, 100, t0);
        ++requests;
        BOOST_TEST_REQUIRE(requests <= 20);
        seen.insert(seen.end(), page.names.begin(), page.names.end());
        if (!page.next_after) break;
        BOOST_TEST(*page.next_after > after);
        after = *page.next_after;
    }
    std::vector<std::string> expected;
    for (const auto& n : all) {
        if (n.find('7') != std::string::npos) expected.push_back(n);
    }
    BOOST_TEST(seen == expected);
    BOOST_TEST(requests == 10);
    // A full page whose next match is out of reach ends at the last name examined.
    auto two = store.list("0", "", 2, t0);
    BOOST_TEST((std::vector<std::string>(two.names.begin(), two.names.end()) ==
                std::vector<std::string>{"n000", "n001"}));
    BOOST_TEST(*two.next_after == "n001");
    // Without a filter, pages are full whatever the scan bound: the page bounds the work.
    auto plain = store.list("", "", 30, t0);
    BOOST_TEST(plain.names.size() == 30u);
    BOOST_TEST(*plain.next_after == "n029");
    auto last = store.list("", "n089", 30, t0);
    BOOST_TEST(last.names.size() == 10u);
    BOOST_TEST(!last.next_after.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
