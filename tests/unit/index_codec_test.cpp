// The client half of the index protocol, the lease schedule and the coroutine mutex: plain
// bytes, time passed in, timers only (no sockets).
#include "unit_common.hpp"

#include "async_mutex.hpp"
#include "index_codec.hpp"
#include "peer/index_session.hpp"
#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using p2pshare::errc;
namespace d = p2pshare::detail;
namespace asio = boost::asio;

namespace {

const std::string hash_a(64, 'a');
const std::string token = "0123456789abcdef0123456789abcdef";

std::string source(unsigned id, const std::string& host = "127.0.0.1", unsigned port = 5001) {
    return R"({"id":)" + std::to_string(id) + R"(,"host":")" + host + R"(","port":)" +
           std::to_string(port) + R"(,"size":4,"sha256":")" + hash_a + R"("})";
}

std::string result(const std::string& name, const std::string& sources) {
    return R"({"name":")" + name + R"(","sources":[)" + sources + R"(],"found":true})";
}

} // namespace

BOOST_AUTO_TEST_SUITE(index_codec)

BOOST_AUTO_TEST_CASE(requests_are_what_the_protocol_says) {
    const auto reg = d::encode_register({7, "", 5001, {{"a.txt", 4, hash_a}}, token});
    BOOST_TEST(reg.method == "POST");
    BOOST_TEST(reg.target == "/v1/peers");
    BOOST_TEST(!reg.needs_token);
    const auto body = boost::json::parse(reg.body).as_object();
    BOOST_TEST(body.at("id").as_int64() == 7);
    BOOST_TEST(body.at("token").as_string() == token);
    BOOST_TEST(body.at("files").as_array().size() == 1u);

    const auto renew = d::encode_renew(7);
    BOOST_TEST(renew.method == "PUT");
    BOOST_TEST(renew.target == "/v1/peers/7/lease");
    BOOST_TEST(renew.needs_token);
    BOOST_TEST(d::encode_unregister(7).target == "/v1/peers/7");
    BOOST_TEST(d::encode_replace_files(7, {}).body == R"({"files":[]})");

    BOOST_TEST(d::encode_list("", "", 0).target == "/v1/files");
    BOOST_TEST(d::encode_list("a b", "z/1", 5).target ==
               "/v1/files?limit=5&contains=a%20b&after=z%2F1");
    const std::vector<std::string> names{"a", "q\"uote"};
    BOOST_TEST(d::encode_lookup(names).body == R"({"names":["a","q\"uote"]})");
}

BOOST_AUTO_TEST_CASE(an_error_answer_gives_its_name_and_message) {
    const auto e = d::decode_error_answer(409, R"({"error":"conflict","message":"taken"})");
    BOOST_TEST(e.code == errc::conflict);
    BOOST_TEST(e.message == "taken");
    BOOST_TEST(d::decode_error_answer(502, "<html>").code == errc::bad_response);
    BOOST_TEST(d::decode_error_answer(500, R"({"error":"ok"})").code == errc::bad_response);
    const auto r = d::decode_register_answer(409, R"({"error":"conflict","message":"taken"})");
    BOOST_TEST_REQUIRE(!r);
    BOOST_TEST(r.error().code == errc::conflict);
}

BOOST_AUTO_TEST_CASE(registration_answers) {
    auto ok =
        d::decode_register_answer(201, R"({"id":1,"token":")" + token + R"(","ttl_ms":3000})");
    BOOST_TEST_REQUIRE(ok.has_value());
    BOOST_TEST(ok->token == token);
    BOOST_TEST(ok->ttl.count() == 3000);
    for (const std::string& bad : std::vector<std::string>{
             R"([])", R"({"token":")" + token + R"("})", R"({"token":"xyz","ttl_ms":3000})",
             R"({"token":")" + token + R"(","ttl_ms":0})",
             R"({"token":")" + token + R"(","ttl_ms":86400001})",
             R"({"token":")" + token + R"(","ttl_ms":-5})", "not json"}) {
        BOOST_TEST_CONTEXT(bad) {
            const auto r = d::decode_register_answer(201, bad);
            BOOST_TEST_REQUIRE(!r);
            BOOST_TEST(r.error().code == errc::bad_response);
        }
    }
}

BOOST_AUTO_TEST_CASE(list_pages_must_move_forward) {
    auto page = d::decode_list_answer(200, R"({"names":["b","c"],"next_after":"c"})", "a", 2);
    BOOST_TEST_REQUIRE(page.has_value());
    BOOST_TEST(page->names == (std::vector<std::string>{"b", "c"}));
    BOOST_TEST(*page->next_after == "c");
    // A page filtered by `contains` may be empty while the cursor moves on.
    page = d::decode_list_answer(200, R"({"names":[],"next_after":"k"})", "a", 2);
    BOOST_TEST_REQUIRE(page.has_value());
    BOOST_TEST(*page->next_after == "k");
    page = d::decode_list_answer(200, R"({"names":["b"],"next_after":null})", "", 2);
    BOOST_TEST_REQUIRE(page.has_value());
    BOOST_TEST(!page->next_after);
    for (const std::string bad :
         {R"({"names":["c","b"],"next_after":null})",     // not in order
          R"({"names":["a"],"next_after":null})",         // not after the cursor
          R"({"names":["b","b"],"next_after":null})",     // twice
          R"({"names":["b","c","d"],"next_after":null})", // over the limit
          R"({"names":["../x"],"next_after":null})",      // not a file name
          R"({"names":["b"],"next_after":"a"})",          // cursor going back
          R"({"names":["c"],"next_after":"b"})",          // cursor before a name given
          R"({"names":[1]})", R"({"next_after":null})"}) {
        BOOST_TEST_CONTEXT(bad) {
            const auto r = d::decode_list_answer(200, bad, "a", 2);
            BOOST_TEST_REQUIRE(!r);
            BOOST_TEST(r.error().code == errc::bad_response);
        }
    }
}

BOOST_AUTO_TEST_CASE(lookup_answers_name_exactly_what_was_asked) {
    const std::vector<std::string> asked{"a.txt", "b.txt"};
    const auto good = R"({"results":[)" + result("a.txt", source(1) + "," + source(2, "::1")) +
                      "," + result("b.txt", "") + "]}";
    auto r = d::decode_lookup_answer(200, good, asked);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST_REQUIRE(r->size() == 2u);
    BOOST_TEST((*r)[0].size() == 2u);
    BOOST_TEST((*r)[0][1].host == "::1");
    BOOST_TEST((*r)[1].empty());
    const std::vector<std::string> bad = {
        // a name not asked for, in place of one that was
        R"({"results":[)" + result("a.txt", source(1)) + "," + result("evil.txt", source(2)) + "]}",
        // a name twice, one missing
        R"({"results":[)" + result("a.txt", source(1)) + "," + result("a.txt", source(2)) + "]}",
        // the right names in another order
        R"({"results":[)" + result("b.txt", "") + "," + result("a.txt", source(1)) + "]}",
        // one result short, one too many
        R"({"results":[)" + result("a.txt", source(1)) + "]}",
        R"({"results":[)" + result("a.txt", "") + "," + result("b.txt", "") + "," +
            result("b.txt", "") + "]}",
        // malformed sources
        R"({"results":[)" + result("a.txt", source(1) + "," + source(1)) + "," +
            result("b.txt", "") + "]}",
        R"({"results":[)" + result("a.txt", source(1, "evil host")) + "," + result("b.txt", "") +
            "]}",
        R"({"results":[)" + result("a.txt", source(1, "127.0.0.1", 0)) + "," + result("b.txt", "") +
            "]}",
        R"({"results":[)" + result("a.txt", R"({"id":1,"host":"h","port":1,"size":4})") + "," +
            result("b.txt", "") + "]}",
        R"({"results":[)" + result("a.txt", "42") + "," + result("b.txt", "") + "]}",
        R"({"results":{}})",
    };
    for (const auto& body : bad) {
        BOOST_TEST_CONTEXT(body) {
            const auto answer = d::decode_lookup_answer(200, body, asked);
            BOOST_TEST_REQUIRE(!answer);
            BOOST_TEST(answer.error().code == errc::bad_response);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_source_root_is_optional_but_valid_when_given) {
    const std::vector<std::string> asked{"a.txt"};
    const std::string root(64, 'c');
    const auto with = [&](const std::string& field) {
        return R"({"results":[)" +
               result("a.txt", R"({"id":1,"host":"h","port":1,"size":4,"sha256":")" + hash_a +
                                   "\"" + field + "}") +
               "]}";
    };
    auto r = d::decode_lookup_answer(200, with(R"(,"root":")" + root + "\""), asked);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST((*r)[0][0].root == root);
    r = d::decode_lookup_answer(200, with(""), asked); // an index of an older version
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST((*r)[0][0].root.empty());
    for (const std::string& bad :
         std::vector<std::string>{R"(,"root":"")", R"(,"root":null)", R"(,"root":7)",
                                  R"(,"root":")" + std::string(64, 'C') + "\"",
                                  R"(,"root":")" + std::string(63, 'c') + "\""}) {
        BOOST_TEST_CONTEXT(bad) {
            const auto answer = d::decode_lookup_answer(200, with(bad), asked);
            BOOST_TEST_REQUIRE(!answer);
            BOOST_TEST(answer.error().code == errc::bad_response);
        }
    }
    // The peer sends the roots it knows in its registration and its file list.
    const d::file_entry f{"a.txt", 4, hash_a, root};
    const auto reg = boost::json::parse(d::encode_register({7, "", 5001, {f}, {}}).body);
    BOOST_TEST(reg.at("files").at(0).at("root").as_string() == root);
    const auto files = boost::json::parse(d::encode_replace_files(7, {f}).body);
    BOOST_TEST(files.at("files").at(0).at("root").as_string() == root);
}

BOOST_AUTO_TEST_CASE(health_gives_the_index_limits) {
    auto b = d::decode_health_answer(
        200,
        R"({"status":"ok","lease_ttl_ms":3000,"limits":{"max_lookup_names":10,"max_list_page":5,"later":1}})");
    BOOST_TEST_REQUIRE(b.has_value());
    BOOST_TEST(b->max_lookup_names == 10u);
    BOOST_TEST(b->max_list_page == 5u);
    BOOST_TEST(b->max_files_per_peer == 10'000u); // not given: the protocol's default
    BOOST_TEST(b->lease_ttl.count() == 3000);
    BOOST_TEST(!d::decode_health_answer(200, R"({"limits":{"max_list_page":0}})"));
    BOOST_TEST(!d::decode_health_answer(200, R"({"limits":[]})"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lease_schedule)

using step = d::lease_schedule::step;
using clock = d::lease_schedule::clock;

BOOST_AUTO_TEST_CASE(registers_then_renews_three_times_per_lease) {
    d::lease_schedule s(100ms, 5s);
    const auto t0 = clock::time_point{} + 1h;
    BOOST_TEST((s.next(t0).what == step::register_peer));
    s.registered(3s, t0);
    BOOST_TEST((s.next(t0) == d::lease_schedule::action{step::wait, t0 + 1s}));
    BOOST_TEST((s.next(t0 + 1s).what == step::renew));
    s.renewed(3s, t0 + 1s);
    BOOST_TEST((s.next(t0 + 1500ms) == d::lease_schedule::action{step::wait, t0 + 2s}));
    s.files_changed();
    BOOST_TEST((s.next(t0 + 1500ms).what == step::send_files));
    s.files_sent(t0 + 1500ms);
    BOOST_TEST((s.next(t0 + 1500ms) == d::lease_schedule::action{step::wait, t0 + 2500ms}));
}

BOOST_AUTO_TEST_CASE(failures_back_off_and_a_lost_lease_registers_again) {
    d::lease_schedule s(100ms, 400ms);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    // Three failures in a row: waits of 100, 200, 400 ms (no jitter), then capped.
    auto t = t0 + 1s;
    for (const auto wait : {100ms, 200ms, 400ms, 400ms}) {
        BOOST_TEST((s.next(t).what == step::renew));
        BOOST_TEST(!s.failed(step::renew, errc::unreachable, t, 0.0).drop_token);
        BOOST_TEST((s.next(t) == d::lease_schedule::action{step::wait, t + wait}));
        t += wait;
    }
    // Jitter adds up to half the wait.
    BOOST_TEST(!s.failed(step::renew, errc::timeout, t, 1.0).drop_token);
    BOOST_TEST((s.next(t) == d::lease_schedule::action{step::wait, t + 600ms}));
    t += 600ms;
    // 404: the index forgot us: register again (token kept); 403: the token is void.
    BOOST_TEST(!s.failed(step::renew, errc::not_found, t, 0.0).drop_token);
    BOOST_TEST(!s.is_registered());
    BOOST_TEST((s.next(t + 400ms).what == step::register_peer));
    BOOST_TEST(s.failed(step::send_files, errc::forbidden, t, 0.0).drop_token);
    BOOST_TEST(s.failed(step::register_peer, errc::bad_field, t, 0.0).drop_token);
    // A success resets the backoff.
    s.registered(3s, t + 1s);
    BOOST_TEST(!s.failed(step::renew, errc::unreachable, t + 2s, 0.0).drop_token);
    BOOST_TEST((s.next(t + 2s) == d::lease_schedule::action{step::wait, t + 2s + 100ms}));
}

BOOST_AUTO_TEST_CASE(a_refused_file_list_does_not_hold_up_the_renewals) {
    d::lease_schedule s(100ms, 5s);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    s.files_changed();
    // The index refuses the list (too many files): it is retried with backoff...
    BOOST_TEST((s.next(t0).what == step::send_files));
    BOOST_TEST(!s.failed(step::send_files, errc::too_many, t0, 0.0).drop_token);
    auto t = t0;
    for (int i = 0; i < 5; ++i) {
        const auto a = s.next(t);
        if (a.what == step::wait) {
            t = a.at;
            continue;
        }
        BOOST_TEST((a.what == step::send_files));
        BOOST_TEST(!s.failed(step::send_files, errc::full, t, 0.0).drop_token);
    }
    // ...while the lease is renewed on time, as if nothing failed.
    BOOST_TEST((s.next(t0 + 1s).what == step::renew));
    s.renewed(3s, t0 + 1s);
    BOOST_TEST(s.is_registered());
    BOOST_TEST((s.next(t0 + 2s).what == step::renew));
}

// --- several index servers ---

BOOST_AUTO_TEST_CASE(an_index_that_cannot_serve_is_left_for_the_next_at_once) {
    d::lease_schedule s(100ms, 5s, 3);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    auto t = t0 + 1s;
    BOOST_TEST((s.next(t).what == step::renew));
    // Each way of not serving moves on, and the renewal is due again at once, at the next
    // index, as a renewal: the lease and its token are kept.
    for (const auto code : {errc::unreachable, errc::timeout}) {
        BOOST_TEST_CONTEXT(to_string(code)) {
            const auto v = s.failed(step::renew, code, t, 1.0);
            BOOST_TEST(v.move);
            BOOST_TEST(!v.drop_token);
            BOOST_TEST(s.is_registered());
            BOOST_TEST((s.next(t) == d::lease_schedule::action{step::renew, t}));
            t += 10ms;
        }
    }
    // The third failure in a row ends the round over the three: back to the first, after the
    // backoff, as with one index server.
    BOOST_TEST(s.failed(step::renew, errc::store_unavailable, t, 0.0).move);
    BOOST_TEST((s.next(t) == d::lease_schedule::action{step::wait, t + 100ms}));
    t += 100ms;
    // The next round moves at once again; its end backs off twice as long.
    BOOST_TEST(s.failed(step::renew, errc::shutting_down, t, 0.0).move);
    BOOST_TEST((s.next(t).what == step::renew));
    BOOST_TEST(s.failed(step::renew, errc::too_many_connections, t, 0.0).move);
    BOOST_TEST((s.next(t).what == step::renew));
    BOOST_TEST(s.failed(step::renew, errc::unreachable, t, 0.0).move);
    BOOST_TEST((s.next(t) == d::lease_schedule::action{step::wait, t + 200ms}));
    // A renewal that succeeds anywhere ends the failures: the next one moves at once.
    s.renewed(3s, t + 200ms);
    BOOST_TEST((s.next(t + 200ms) == d::lease_schedule::action{step::wait, t + 1200ms}));
    t += 1200ms;
    BOOST_TEST(s.failed(step::renew, errc::unreachable, t, 0.0).move);
    BOOST_TEST((s.next(t) == d::lease_schedule::action{step::renew, t}));
}

BOOST_AUTO_TEST_CASE(a_renewal_at_the_next_index_keeps_the_lease_and_its_token) {
    // Index servers that share their store: the next one knows the lease.
    d::lease_schedule s(100ms, 5s, 2);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    const auto t = t0 + 1s;
    const auto v = s.failed(step::renew, errc::unreachable, t, 0.0);
    BOOST_TEST(v.move);
    BOOST_TEST(!v.drop_token);
    BOOST_TEST((s.next(t) == d::lease_schedule::action{step::renew, t}));
    s.renewed(3s, t + 5ms);
    BOOST_TEST(s.is_registered());
    // No registration, nothing to send: the next renewal a third of the lease later.
    BOOST_TEST((s.next(t + 5ms) == d::lease_schedule::action{step::wait, t + 1005ms}));
}

BOOST_AUTO_TEST_CASE(the_next_index_not_knowing_the_lease_registers_there) {
    // Index servers with a store each: the next one answers 404 to the renewal.
    d::lease_schedule s(100ms, 5s, 2);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    auto t = t0 + 1s;
    BOOST_TEST(s.failed(step::renew, errc::unreachable, t, 0.0).move);
    BOOST_TEST((s.next(t).what == step::renew));
    t += 5ms;
    const auto v = s.failed(step::renew, errc::not_found, t, 0.0);
    BOOST_TEST(!v.move); // that index answered: the peer stays there
    BOOST_TEST(!v.drop_token);
    BOOST_TEST(!s.is_registered());
    // It registers again there, as after any 404 (after the first backoff), with the whole list.
    BOOST_TEST((s.next(t) == d::lease_schedule::action{step::wait, t + 100ms}));
    BOOST_TEST((s.next(t + 100ms).what == step::register_peer));
    s.registered(3s, t + 100ms);
    BOOST_TEST((s.next(t + 100ms) == d::lease_schedule::action{step::wait, t + 1100ms}));
}

BOOST_AUTO_TEST_CASE(registrations_and_file_lists_move_on_too) {
    d::lease_schedule s(100ms, 5s, 2);
    const auto t0 = clock::time_point{} + 1h;
    BOOST_TEST(s.failed(step::register_peer, errc::unreachable, t0, 0.0).move);
    BOOST_TEST((s.next(t0) == d::lease_schedule::action{step::register_peer, t0}));
    s.registered(3s, t0);
    s.files_changed();
    BOOST_TEST((s.next(t0).what == step::send_files));
    BOOST_TEST(s.failed(step::send_files, errc::timeout, t0, 0.0).move);
    BOOST_TEST((s.next(t0) == d::lease_schedule::action{step::send_files, t0}));
    s.files_sent(t0 + 5ms);
    BOOST_TEST((s.next(t0 + 5ms) == d::lease_schedule::action{step::wait, t0 + 1005ms}));
}

BOOST_AUTO_TEST_CASE(an_index_that_answers_is_not_left) {
    d::lease_schedule s(100ms, 5s, 2);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    s.files_changed();
    // A refusal is the index's answer, which another index of the network would give too.
    for (const auto code : {errc::full, errc::too_many, errc::bad_response, errc::conflict}) {
        BOOST_TEST_CONTEXT(to_string(code)) {
            BOOST_TEST(!s.failed(step::send_files, code, t0, 0.0).move);
            BOOST_TEST((s.next(t0).what == step::wait));
        }
    }
    // ... and it starts a new round: an unreachable index after it is left at once.
    auto t = t0 + 1s;
    BOOST_TEST(s.failed(step::renew, errc::unreachable, t, 0.0).move);
    BOOST_TEST((s.next(t).what == step::renew));
    BOOST_TEST(!s.failed(step::renew, errc::full, t, 0.0).move);
    BOOST_TEST(s.failed(step::renew, errc::unreachable, t + 1s, 0.0).move);
    BOOST_TEST((s.next(t + 1s).what == step::renew));
}

BOOST_AUTO_TEST_CASE(one_index_backs_off_as_it_always_did) {
    d::lease_schedule s(100ms, 5s);
    const auto t0 = clock::time_point{} + 1h;
    s.registered(3s, t0);
    const auto v = s.failed(step::renew, errc::unreachable, t0 + 1s, 0.0);
    BOOST_TEST(!v.move);
    BOOST_TEST((s.next(t0 + 1s) == d::lease_schedule::action{step::wait, t0 + 1100ms}));
    BOOST_TEST(!s.failed(step::renew, errc::store_unavailable, t0 + 1100ms, 0.0).move);
    BOOST_TEST((s.next(t0 + 1100ms) == d::lease_schedule::action{step::wait, t0 + 1300ms}));
}

BOOST_AUTO_TEST_CASE(a_round_of_calls_fits_in_the_second_third_of_the_lease) {
    d::lease_schedule one(100ms, 5s);
    BOOST_TEST(one.call_limit(10s).count() == 10'000); // nowhere to go: the client's own
    d::lease_schedule two(100ms, 5s, 2);
    BOOST_TEST(two.call_limit(10s).count() == 5'000); // 30 s (before any lease) / 3 / 2
    const auto t0 = clock::time_point{} + 1h;
    two.registered(60s, t0);
    BOOST_TEST(two.call_limit(10s).count() == 10'000);
    two.renewed(6s, t0);
    BOOST_TEST(two.call_limit(10s).count() == 1'000);
    two.renewed(1s, t0);
    BOOST_TEST(two.call_limit(10s) == d::lease_schedule::min_call_limit);
    BOOST_TEST(two.call_limit(100ms).count() == 100);
    d::lease_schedule four(100ms, 5s, 4);
    four.registered(30s, t0);
    BOOST_TEST(four.call_limit(10s).count() == 2'500);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_mutex)

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_is_not_handed_the_lock) {
    asio::io_context io;
    d::async_mutex mutex(io.get_executor());
    std::vector<std::string> events;
    asio::cancellation_signal cancel_b;
    // A holds the lock; B and C wait; B's wait is cancelled; A unlocks: C gets it, B never.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto guard = co_await mutex.lock();
            events.push_back(guard ? "a locked" : "a empty");
            // Let B and C queue up, then cancel B, then give the lock back.
            for (int i = 0; i < 5; ++i)
                co_await asio::post(io, asio::use_awaitable);
            cancel_b.emit(asio::cancellation_type::terminal);
            for (int i = 0; i < 5; ++i)
                co_await asio::post(io, asio::use_awaitable);
            events.push_back("a unlocks");
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await asio::this_coro::throw_if_cancelled(false);
            auto guard = co_await mutex.lock();
            events.push_back(guard ? "b locked" : "b cancelled");
        },
        asio::bind_cancellation_slot(cancel_b.slot(), asio::detached));
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto guard = co_await mutex.lock();
            events.push_back(guard ? "c locked" : "c empty");
            BOOST_TEST(mutex.locked());
        },
        asio::detached);
    io.run();
    BOOST_TEST(events ==
               (std::vector<std::string>{"a locked", "b cancelled", "a unlocks", "c locked"}));
    BOOST_TEST(!mutex.locked());
}

BOOST_AUTO_TEST_SUITE_END()
