// Slow clients against the index and a peer with short deadlines: a header sent one byte at a
// time, a body never finished, a reader that never reads a large file. Each is cut by its
// deadline while other clients are served as usual.
#include <boost/test/unit_test.hpp>

#include "fault_support.hpp"
#include "index_fixture.hpp"
#include "peer_fixture.hpp"

#include <poll.h>

#include <functional>

namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto read_timeout = 400ms;
constexpr auto write_timeout = 400ms;
constexpr auto idle_timeout = 3s; // longer than every case: never the deadline that cuts
constexpr auto slack = 1500ms;    // how late a deadline may fire on a busy machine

ServerLimits short_limits() {
    ServerLimits l;
    l.read_timeout = read_timeout;
    l.write_timeout = write_timeout;
    l.idle_timeout = idle_timeout;
    return l;
}

using p2pshare::test::since;

/// Sends `request` one byte every `interval` (the client's pace), until the server closes the
/// connection. `meanwhile` runs after the third byte. Checks that the server cut the request
/// within its read deadline, without an answer, before it was complete.
void trickle(std::uint16_t port, const std::string& request, std::chrono::milliseconds interval,
             const std::function<void()>& meanwhile) {
    BOOST_TEST_REQUIRE(interval * request.size() > read_timeout + slack);
    test::raw_socket s(port);
    const auto t0 = clock_type::now();
    std::size_t sent = 0;
    while (sent < request.size() && !s.closed()) {
        if (!s.send(request.substr(sent, 1))) break;
        ++sent;
        if (sent == 3) meanwhile();
        // The pace of the client; a close by the server ends the wait early.
        s.wait_closed(interval);
    }
    s.wait_closed(read_timeout + slack);
    const auto took = since(t0);
    BOOST_TEST(s.closed());
    BOOST_TEST(sent < request.size(), "sent " << sent << " of " << request.size() << " bytes");
    BOOST_TEST(s.received().empty(), s.received());
    BOOST_TEST(took >= read_timeout, "closed after " << took.count() << " ms");
    BOOST_TEST(took <= read_timeout + slack, "closed after " << took.count() << " ms");
    BOOST_TEST_MESSAGE("one byte per " << interval.count() << " ms: cut after " << sent
                                       << " bytes, " << took.count() << " ms");
}

/// Sends a request whose body never ends; the server closes the connection within its read
/// deadline without an answer.
void unfinished_body(std::uint16_t port, const std::string& head) {
    test::raw_socket s(port);
    const auto t0 = clock_type::now();
    BOOST_TEST_REQUIRE(s.send(head + "Content-Length: 100\r\n\r\n" + R"({"names":)"));
    BOOST_TEST(s.wait_closed(read_timeout + slack));
    const auto took = since(t0);
    BOOST_TEST(s.received().empty(), s.received());
    BOOST_TEST(took >= read_timeout, "closed after " << took.count() << " ms");
    BOOST_TEST(took <= read_timeout + slack, "closed after " << took.count() << " ms");
}

} // namespace

BOOST_AUTO_TEST_SUITE(hostile_slow)

BOOST_AUTO_TEST_CASE(index_cuts_a_header_sent_byte_by_byte_and_an_unfinished_body) {
    auto options = test::running_index::defaults();
    options.limits = short_limits();
    test::running_index index(options);
    const auto token = test::register_peer(index.port(), 1, {"a.txt"}, 5001);
    const auto before = test::snapshot(index.port(), {"a.txt"});

    trickle(index.port(), "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", 100ms, [&] {
        // Another client meanwhile: answered at once.
        const auto t0 = clock_type::now();
        test::check_alive(index.port());
        BOOST_TEST(since(t0) < read_timeout);
    });
    unfinished_body(index.port(), "POST /v1/lookup HTTP/1.1\r\nHost: x\r\n");
    unfinished_body(index.port(),
                    "PUT /v1/peers/1/files HTTP/1.1\r\nHost: x\r\nAuthorization: "
                    "Bearer " +
                        token + "\r\n");

    test::check_alive(index.port());
    BOOST_TEST(test::snapshot(index.port(), {"a.txt"}) == before);
}

BOOST_AUTO_TEST_CASE(peer_cuts_a_header_sent_byte_by_byte_and_an_unfinished_body) {
    test::network net;
    const auto small = test::random_text(5000, 7);
    test::write_file(net / "p1" / "small.txt", small);
    auto options = net.options(1);
    options.limits = short_limits();
    auto& peer = net.start_peer(options);

    trickle(peer.port(), "GET /v1/files/small.txt HTTP/1.1\r\nHost: x\r\n\r\n", 60ms, [&] {
        const auto reply = test::http_call(peer.port(), "GET", "/v1/files/small.txt");
        BOOST_TEST(reply.status == 200u);
        BOOST_TEST((reply.body == small));
    });
    unfinished_body(peer.port(), "GET /v1/files/small.txt HTTP/1.1\r\nHost: x\r\n");
    const auto reply = test::http_call(peer.port(), "GET", "/v1/files/small.txt");
    BOOST_TEST(reply.status == 200u);
    BOOST_TEST((reply.body == small));
}

BOOST_AUTO_TEST_CASE(peer_cuts_a_reader_that_never_reads_and_serves_others_meanwhile) {
    test::network net;
    const auto small = test::random_text(5000, 8);
    test::write_file(net / "p1" / "small.txt", small);
    {
        // 64 MiB, sparse: fast to make and to hash.
        test::write_file(net / "p1" / "big.bin", "");
        fs::resize_file(net / "p1" / "big.bin", 64u << 20);
    }
    auto options = net.options(1);
    options.limits = short_limits();
    auto& peer = net.start_peer(options);

    // A small receive buffer: the server's socket fills up at once and stays full.
    test::raw_socket lazy(peer.port(), 4096);
    BOOST_TEST_REQUIRE(lazy.send("GET /v1/files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
    BOOST_TEST_REQUIRE(test::eventually([&] { return peer.active_uploads() == 1; }));
    const auto t0 = clock_type::now();

    // Others are served while the upload hangs.
    const auto reply = test::http_call(peer.port(), "GET", "/v1/files/small.txt");
    BOOST_TEST(reply.status == 200u);
    BOOST_TEST((reply.body == small));
    // (that request counts as busy until its connection is done with it)
    BOOST_TEST(test::eventually([&] { return peer.active_uploads() == 1; }));

    // No progress for write_timeout: the upload is cut and the connection closed.
    BOOST_TEST(test::eventually([&] { return peer.active_uploads() == 0; }, 10s));
    const auto took = since(t0);
    BOOST_TEST(took >= write_timeout - 50ms, "cut after " << took.count() << " ms");
    BOOST_TEST(took <= write_timeout + slack, "cut after " << took.count() << " ms");
    BOOST_TEST(lazy.wait_closed(10s));
    BOOST_TEST(lazy.received().find("HTTP/1.1 200 OK") == 0u);
    BOOST_TEST(lazy.received().size() < (64u << 20), "received " << lazy.received().size());
    BOOST_TEST_MESSAGE("a reader that never reads: cut after " << took.count() << " ms, "
                                                               << lazy.received().size()
                                                               << " bytes had been sent");

    const auto again = test::http_call(peer.port(), "GET", "/v1/files/small.txt");
    BOOST_TEST(again.status == 200u);
    BOOST_TEST((again.body == small));
}

BOOST_AUTO_TEST_SUITE_END()
