#include "piece_picker.hpp"
#include "piece_record.hpp"
#include "rate_limiter.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using p2pshare::detail::digest;
using p2pshare::detail::piece_picker;
using p2pshare::detail::piece_record;

namespace {

/// A picker whose pieces are had where `state` has '#'.
piece_picker from(const std::string& state) {
    piece_picker p(state.size());
    for (std::size_t i = 0; i < state.size(); ++i)
        if (state[i] == '#') p.have(i);
    return p;
}

} // namespace

BOOST_AUTO_TEST_SUITE(piece_picker_suite)

BOOST_AUTO_TEST_CASE(sources_take_the_lowest_wanted_piece_one_at_a_time) {
    auto p = from("#--#--");
    BOOST_TEST(p.pick(0, 1).value() == 1u);
    BOOST_TEST(p.pick(1, 1).value() == 2u);
    BOOST_TEST(p.pick(2, 1).value() == 4u);
    BOOST_TEST(p.picture() == "#11#1-");
    BOOST_TEST(p.complete(1, 2).empty());
    BOOST_TEST(p.pick(1, 2).value() == 5u);
    BOOST_TEST(p.picture() == "#1##11");
    BOOST_TEST(p.fetched_by(0) == std::vector<std::size_t>{1});
}

BOOST_AUTO_TEST_CASE(a_run_extends_over_wanted_pieces_only) {
    auto p = from("---#--");
    BOOST_TEST(p.wanted() == 5u);
    BOOST_TEST(p.pick(0, 1).value() == 0u);
    BOOST_TEST(p.take(0, 1, 1));
    BOOST_TEST(p.take(0, 2, 1));
    BOOST_TEST(p.wanted() == 2u);
    BOOST_TEST(!p.take(0, 3, 1)); // had
    BOOST_TEST(!p.take(0, 6, 1)); // beyond the end
    BOOST_TEST(p.pick(1, 1).value() == 4u);
    BOOST_TEST(!p.take(2, 4, 1)); // fetched by another
    BOOST_TEST(p.picture() == "111#1-");
    BOOST_TEST(p.copies(4) == 1u);
    BOOST_TEST(p.copies(5) == 0u);
    BOOST_TEST(p.wanted() == 1u);
    // The rest of a run that broke off is wanted again, lowest first.
    p.release(0, 2);
    p.release(0, 1);
    p.release(0, 1); // (twice: no change)
    BOOST_TEST(p.wanted() == 3u);
    BOOST_TEST(p.pick(2, 2).value() == 1u);
    BOOST_TEST(p.wanted() == 2u);
    BOOST_TEST(p.complete(1, 4).empty());
    BOOST_TEST(p.complete(1, 5).empty()); // verified without being asked for
    BOOST_TEST(p.wanted() == 1u);
    BOOST_TEST(p.fetched_by(0) == std::vector<std::size_t>{0});
}

BOOST_AUTO_TEST_CASE(a_released_piece_is_wanted_again_first) {
    auto p = from("----");
    BOOST_TEST(p.pick(0, 1).value() == 0u);
    BOOST_TEST(p.pick(1, 1).value() == 1u);
    BOOST_TEST(p.pick(2, 1).value() == 2u);
    p.release(0, 0); // source 0 failed
    BOOST_TEST(p.picture() == "-11-");
    BOOST_TEST(p.pick(3, 2).value() == 0u);
}

BOOST_AUTO_TEST_CASE(end_game_duplicates_the_piece_held_longest_and_the_first_copy_wins) {
    auto p = from("#---");
    BOOST_TEST(p.pick(0, 10).value() == 1u); // the slow one, first
    BOOST_TEST(p.pick(1, 20).value() == 2u);
    BOOST_TEST(p.pick(2, 30).value() == 3u);
    // Nothing wanted: a source with nothing to do takes the piece held longest.
    BOOST_TEST(p.complete(2, 3).empty());
    BOOST_TEST(p.pick(2, 40).value() == 1u);
    BOOST_TEST(p.picture() == "#21#");
    BOOST_TEST(p.duplicates() == 1u);
    // A third source takes the other piece, not a third copy.
    BOOST_TEST(p.pick(3, 50).value() == 2u);
    BOOST_TEST(p.picture() == "#22#");
    // Then there is nothing for anyone: at most two copies while they are not late, and never
    // twice at one source.
    BOOST_TEST(!p.pick(4, 60, 50).has_value());
    BOOST_TEST(!p.pick(0, 60, 50).has_value());
    // The fast copy lands first: the slow source's copy is to be dropped.
    BOOST_TEST(p.complete(2, 1) == std::vector<std::size_t>{0});
    BOOST_TEST(p.picture() == "##2#");
    BOOST_TEST(!p.done());
    BOOST_TEST(p.complete(1, 2) == std::vector<std::size_t>{3});
    BOOST_TEST(p.done());
    BOOST_TEST(p.had() == 4u);
}

BOOST_AUTO_TEST_CASE(an_end_game_copy_waits_until_the_piece_has_been_in_flight_long_enough) {
    auto p = from("--");
    BOOST_TEST(p.pick(0, 100, 50).value() == 0u);
    // A wanted piece is given at once, whatever the delay.
    BOOST_TEST(p.next_copy(1, 50).value() == 0u);
    BOOST_TEST(p.pick(1, 120, 50).value() == 1u);
    // Both in flight: a third source gets piece 0 once it has been in flight for 50.
    BOOST_TEST(p.next_copy(2, 50).value() == 150u);
    BOOST_TEST(!p.pick(2, 149, 50).has_value());
    BOOST_TEST(p.duplicates() == 0u);
    BOOST_TEST(p.pick(2, 150, 50).value() == 0u);
    BOOST_TEST(p.picture() == "21");
    // Then piece 1, 50 after its own start; source 0 never gets a copy of its own piece.
    BOOST_TEST(p.next_copy(0, 50).value() == 170u);
    BOOST_TEST(p.pick(0, 170, 50).value() == 1u);
    // Two copies of each: a third only once even the newer of them is late (4 × 50 after 150).
    BOOST_TEST(p.next_copy(3, 50).value() == 350u);
    BOOST_TEST(!p.pick(3, 349, 50).has_value());
    BOOST_TEST(p.pick(3, 350, 50).value() == 0u);
    // Then piece 1 (its newer copy from 170); then nothing more for source 3.
    BOOST_TEST(p.next_copy(3, 50).value() == 370u);
    BOOST_TEST(p.pick(3, 370, 50).value() == 1u);
    BOOST_TEST(p.picture() == "33");
    BOOST_TEST(!p.next_copy(3, 50).has_value());
}

// Two sources that both stall on a piece (frozen) do not hold it to their stall deadline: once
// even its newest copy is late (late_copies × copy_after), another source gets it too. A piece
// written as it comes (one copy at a time) never gets a second.
BOOST_AUTO_TEST_CASE(a_piece_whose_copies_are_all_late_gets_one_more) {
    auto p = from("-");
    BOOST_TEST(p.pick(0, 0, 10).value() == 0u);
    BOOST_TEST(p.pick(1, 10, 10).value() == 0u);   // the end-game copy, due at 0 + 10
    BOOST_TEST(p.next_copy(2, 10).value() == 50u); // 10 + 4 × 10
    BOOST_TEST(!p.pick(2, 49, 10).has_value());
    BOOST_TEST(p.pick(2, 50, 10).value() == 0u);
    BOOST_TEST(p.picture() == "3");
    BOOST_TEST(p.duplicates() == 2u);
    BOOST_TEST(p.complete(2, 0) == (std::vector<std::size_t>{0, 1}));
    BOOST_TEST(p.done());
    piece_picker one(1, 1);
    BOOST_TEST(one.pick(0, 0, 10).value() == 0u);
    BOOST_TEST(!one.next_copy(1, 10).has_value());
    BOOST_TEST(!one.pick(1, 1000, 10).has_value());
}

// The later pieces of a run are not copied before they could have arrived: their time in
// flight counts from when they are expected, then from when the source starts on them.
BOOST_AUTO_TEST_CASE(a_run_piece_is_copied_only_once_it_is_late) {
    auto p = from("---");
    BOOST_TEST(p.pick(0, 100, 50).value() == 0u);
    BOOST_TEST(p.take(0, 1, 200)); // expected once piece 0 is in
    BOOST_TEST(p.take(0, 2, 300));
    BOOST_TEST(p.next_copy(1, 50).value() == 150u); // piece 0 first
    BOOST_TEST(p.pick(1, 150, 50).value() == 0u);
    BOOST_TEST(!p.pick(2, 249, 50).has_value());
    // Source 0 starts on piece 1 late, at 280: a copy of it is due at 330, of piece 2 at 350.
    p.started(0, 1, 280);
    p.started(3, 1, 10); // (not a source of piece 1: nothing changes)
    BOOST_TEST(p.next_copy(2, 50).value() == 330u);
    BOOST_TEST(!p.pick(2, 329, 50).has_value());
    BOOST_TEST(p.pick(2, 330, 50).value() == 1u);
    BOOST_TEST(p.next_copy(3, 50).value() == 350u);
    BOOST_TEST(p.picture() == "221");
}

BOOST_AUTO_TEST_CASE(a_released_end_game_copy_leaves_the_other_in_flight) {
    auto p = from("-");
    BOOST_TEST(p.pick(0, 1).value() == 0u);
    BOOST_TEST(p.pick(1, 2).value() == 0u);
    p.release(0, 0);
    BOOST_TEST(p.picture() == "1");
    BOOST_TEST(p.in_flight(0));
    // The released source may take it again as an end-game copy.
    BOOST_TEST(p.pick(0, 3).value() == 0u);
    p.release(0, 0);
    p.release(1, 0);
    BOOST_TEST(p.picture() == "-");
    BOOST_TEST(!p.in_flight(0));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(piece_record_suite)

namespace {
digest filled(unsigned char c) {
    digest d;
    d.fill(c);
    return d;
}
piece_record record(std::uint64_t pieces = 10) {
    return piece_record(pieces << 20, 1 << 20, pieces, filled(1), filled(2));
}
} // namespace

BOOST_AUTO_TEST_CASE(updates_are_read_back_newest_first_whatever_the_order) {
    auto w = record();
    std::string bytes = w.initial();
    const auto apply = [&](const piece_record::write& u) {
        bytes.replace(static_cast<std::size_t>(u.offset), u.bytes.size(), u.bytes);
    };
    std::vector<bool> v(10, false);
    v[7] = true;
    apply(w.update(v));
    v[2] = true;
    apply(w.update(v));
    v[9] = true;
    apply(w.update(v));
    auto r = record();
    const auto got = r.read(bytes);
    BOOST_TEST_REQUIRE(got.has_value());
    BOOST_TEST((*got == v));
    // The reader continues where the writer left off: its next update replaces the older slot.
    v[0] = true;
    apply(r.update(v));
    BOOST_TEST((*record().read(bytes) == v));
}

BOOST_AUTO_TEST_CASE(a_torn_update_leaves_the_previous_one) {
    auto w = record();
    std::string bytes = w.initial();
    std::vector<bool> v(10, false);
    v[1] = true;
    auto u = w.update(v);
    bytes.replace(static_cast<std::size_t>(u.offset), u.bytes.size(), u.bytes);
    v[5] = true;
    u = w.update(v);
    // Only half of the second update reached the disk.
    bytes.replace(static_cast<std::size_t>(u.offset), u.bytes.size() / 2,
                  u.bytes.substr(0, u.bytes.size() / 2));
    const auto got = record().read(bytes);
    BOOST_TEST_REQUIRE(got.has_value());
    std::vector<bool> first(10, false);
    first[1] = true;
    BOOST_TEST((*got == first));
}

BOOST_AUTO_TEST_CASE(a_record_of_other_content_or_length_is_not_used) {
    auto w = record();
    const auto bytes = w.initial();
    BOOST_TEST(!record(11).read(bytes).has_value());
    BOOST_TEST(!piece_record(10 << 20, 1 << 20, 10, filled(1), filled(3)).read(bytes).has_value());
    BOOST_TEST(!record().read(bytes.substr(1)).has_value());
    BOOST_TEST(!record().read("").has_value());
    BOOST_TEST(record().read(bytes).has_value());
    // One slot corrupt: the other is read; both corrupt: nothing.
    const auto slot = (bytes.size() - 104) / 2; // after a header of 104 bytes
    std::string flipped = bytes;
    flipped[104 + 3] ^= 1;
    BOOST_TEST(record().read(flipped).has_value());
    flipped[104 + slot + 3] ^= 1;
    BOOST_TEST(!record().read(flipped).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rate_limiter_suite)

using p2pshare::detail::rate_limiter;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(no_cap_never_pauses) {
    rate_limiter r(0);
    BOOST_TEST(!r.limited());
    BOOST_TEST(
        (r.take(1ull << 40, rate_limiter::clock::now()) == rate_limiter::clock::duration::zero()));
    BOOST_TEST(r.step(512 * 1024) == 512u * 1024);
}

BOOST_AUTO_TEST_CASE(bytes_beyond_the_burst_are_paid_back_at_the_rate) {
    rate_limiter r(1 << 20); // 1 MiB/s: a burst of 64 KiB
    const auto t0 = rate_limiter::clock::now();
    BOOST_TEST((r.take(64 * 1024, t0) == rate_limiter::clock::duration::zero()));
    // 1 MiB more at once: about one second of pause.
    const auto pause = r.take(1 << 20, t0);
    BOOST_TEST(std::chrono::duration<double>(pause).count() == 1.0,
               boost::test_tools::tolerance(0.01));
    // After that second has passed, the next 64 KiB pays about 1/16 s.
    const auto next = r.take(64 * 1024, t0 + 1s);
    BOOST_TEST(std::chrono::duration<double>(next).count() == 0.0625,
               boost::test_tools::tolerance(0.01));
    // Long idle time does not bank more than the burst.
    const auto later = t0 + 100s;
    BOOST_TEST((r.take(64 * 1024, later) == rate_limiter::clock::duration::zero()));
    BOOST_TEST((r.take(64 * 1024, later) > rate_limiter::clock::duration::zero()));
}

BOOST_AUTO_TEST_CASE(steps_are_about_20_ms_of_bytes) {
    BOOST_TEST(rate_limiter(10 << 20).step(512 * 1024) == (10u << 20) / 50);
    BOOST_TEST(rate_limiter(1 << 10).step(512 * 1024) == 16u * 1024);
    BOOST_TEST(rate_limiter(1ull << 40).step(512 * 1024) == 512u * 1024);
}

BOOST_AUTO_TEST_SUITE_END()
