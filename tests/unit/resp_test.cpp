// RESP with plain bytes: every kind of reply, fed whole, in pieces and one byte at a time; the
// bytes that are not RESP and those over a bound; commands byte for byte; hash slots against
// the values a Redis 7.0 server gives (CLUSTER KEYSLOT); redirects and cluster errors as a
// cluster sends them; CLUSTER SLOTS replies captured from a Redis 7.0 cluster of three masters
// and three replicas (and from a one-node cluster); fields of INFO.
#include "unit_common.hpp"

#include "resp.hpp"

#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

using p2pshare::errc;
namespace d = p2pshare::detail;

namespace p2pshare::detail {
inline std::ostream& boost_test_print_type(std::ostream& os, const resp_value& v) {
    switch (v.kind) {
        case resp_kind::simple_string:
            return os << '+' << v.str;
        case resp_kind::bulk_string:
            return os << '"' << v.str << '"';
        case resp_kind::error:
            return os << '-' << v.str;
        case resp_kind::integer:
            return os << v.integer;
        case resp_kind::nil:
            return os << "nil";
        case resp_kind::array:
            os << '[';
            for (std::size_t i = 0; i < v.elements.size(); ++i)
                boost_test_print_type(os << (i > 0 ? ", " : ""), v.elements[i]);
            return os << ']';
    }
    return os;
}
inline std::ostream& boost_test_print_type(std::ostream& os, const slot_range& r) {
    return os << r.first << '-' << r.last << '@' << r.host << ':' << r.port;
}
inline std::ostream& boost_test_print_type(std::ostream& os, const redirect& r) {
    return os << (r.kind == redirect_kind::moved ? "MOVED " : "ASK ") << r.slot << ' ' << r.host
              << ':' << r.port;
}
template <class T>
std::ostream& boost_test_print_type(std::ostream& os, const std::optional<T>& v) {
    if (!v) return os << "nullopt";
    return boost_test_print_type(os, *v);
}
} // namespace p2pshare::detail

namespace {

/// The lines given, each ended by CRLF: RESP as it reads.
std::string lines(std::initializer_list<std::string_view> list) {
    std::string out;
    for (const auto line : list) {
        out += line;
        out += "\r\n";
    }
    return out;
}

d::resp_value simple(std::string_view s) { return {d::resp_kind::simple_string, std::string(s)}; }
d::resp_value bulk(std::string_view s) { return {d::resp_kind::bulk_string, std::string(s)}; }
d::resp_value error(std::string_view s) { return {d::resp_kind::error, std::string(s)}; }
d::resp_value integer(std::int64_t n) { return {d::resp_kind::integer, {}, n}; }
d::resp_value nil() { return {}; }
d::resp_value array(std::vector<d::resp_value> elements) {
    return {d::resp_kind::array, {}, 0, std::move(elements)};
}

/// Every reply of `bytes` fed at once; fails the test on an error.
std::vector<d::resp_value> read_all(std::string_view bytes, const d::resp_limits& limits = {}) {
    d::resp_reader reader(limits);
    reader.feed(bytes);
    std::vector<d::resp_value> out;
    for (;;) {
        auto r = reader.next();
        BOOST_TEST_REQUIRE(r.has_value(), "error: " << r.error().message);
        if (!*r) return out;
        out.push_back(std::move(**r));
    }
}

/// The one reply of `bytes`.
d::resp_value read_one(std::string_view bytes) {
    auto all = read_all(bytes);
    BOOST_TEST_REQUIRE(all.size() == 1u);
    return std::move(all.front());
}

/// The error that reading `bytes` (fed at once) ends with; "" when there is none.
std::string read_error(std::string_view bytes, const d::resp_limits& limits = {}) {
    d::resp_reader reader(limits);
    reader.feed(bytes);
    for (;;) {
        auto r = reader.next();
        if (!r) {
            BOOST_TEST(r.error().code == errc::bad_response);
            return r.error().message;
        }
        if (!*r) return "";
    }
}

/// The text of an optional string, "<none>" for none.
std::string or_none(std::optional<std::string_view> s) {
    return s ? std::string(*s) : std::string("<none>");
}

/// Bytes in use in glibc's allocator. Under a sanitizer, which replaces the allocator, it does
/// not move and the checks that use it prove nothing.
std::size_t heap_in_use() {
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd; // hblkhd: the blocks large enough to be mapped on their own
}

/// The ranges of a CLUSTER SLOTS reply given as bytes, read through resp_reader.
d::api_result<std::vector<d::slot_range>> slots_of(std::string_view bytes) {
    return d::decode_cluster_slots(read_one(bytes));
}

/// CLUSTER SLOTS of a Redis 7.0.15 cluster of three masters (31001-31003) and a replica each
/// (31004-31006), 31002 announcing the hostname redis-b.example (its networking metadata).
const std::string cluster_slots = lines({"*3",
                                         "*4",
                                         ":0",
                                         ":5460",
                                         "*4",
                                         "$9",
                                         "127.0.0.1",
                                         ":31001",
                                         "$40",
                                         "4ded4cbad25a938429e5abf3ff88724bec2b44a5",
                                         "*0",
                                         "*4",
                                         "$9",
                                         "127.0.0.1",
                                         ":31004",
                                         "$40",
                                         "5052e44d4a22743ae76d842fb8ef2d78f58308e3",
                                         "*0",
                                         "*4",
                                         ":5461",
                                         ":10922",
                                         "*4",
                                         "$9",
                                         "127.0.0.1",
                                         ":31002",
                                         "$40",
                                         "8379e0916522d3a240fbccedff78aec754218fe1",
                                         "*2",
                                         "$8",
                                         "hostname",
                                         "$15",
                                         "redis-b.example",
                                         "*4",
                                         "$9",
                                         "127.0.0.1",
                                         ":31005",
                                         "$40",
                                         "988850409879153e4fe58fc22203304e73c58633",
                                         "*0",
                                         "*4",
                                         ":10923",
                                         ":16383",
                                         "*4",
                                         "$9",
                                         "127.0.0.1",
                                         ":31003",
                                         "$40",
                                         "249b2a01727a33c7d67776c3f054bd5b2d3b0d40",
                                         "*0",
                                         "*4",
                                         "$9",
                                         "127.0.0.1",
                                         ":31006",
                                         "$40",
                                         "1314f6086ee15e10e906349c5053ec715e3c182c",
                                         "*0"});

} // namespace

BOOST_AUTO_TEST_SUITE(resp)

BOOST_AUTO_TEST_CASE(every_kind) {
    BOOST_TEST(read_one("+OK\r\n") == simple("OK"));
    BOOST_TEST(read_one("+\r\n") == simple(""));
    BOOST_TEST(read_one("-ERR unknown command\r\n") == error("ERR unknown command"));
    BOOST_TEST(read_one(":0\r\n") == integer(0));
    BOOST_TEST(read_one(":-42\r\n") == integer(-42));
    BOOST_TEST(read_one(":9223372036854775807\r\n") == integer(INT64_MAX));
    BOOST_TEST(read_one(":-9223372036854775808\r\n") == integer(INT64_MIN));
    BOOST_TEST(read_one("$5\r\nhello\r\n") == bulk("hello"));
    BOOST_TEST(read_one("$0\r\n\r\n") == bulk(""));
    // Binary-safe: CR, LF and NUL inside a bulk string are bytes like any other.
    const std::string binary("a\r\n\0b", 5);
    BOOST_TEST(read_one("$5\r\n" + binary + "\r\n") == bulk(binary));
    BOOST_TEST(read_one("$-1\r\n") == nil());
    BOOST_TEST(read_one("*-1\r\n") == nil());
    BOOST_TEST(read_one("*0\r\n") == array({}));
    BOOST_TEST(read_one("*3\r\n:1\r\n$1\r\na\r\n+b\r\n") ==
               array({integer(1), bulk("a"), simple("b")}));

    const auto v = read_one("$3\r\nabc\r\n");
    BOOST_TEST(or_none(v.as_string()) == "abc");
    BOOST_TEST(or_none(simple("x").as_string()) == "x");
    BOOST_TEST(!error("x").as_string());
    BOOST_TEST(!integer(1).as_string());
    BOOST_TEST(error("x").is_error());
    BOOST_TEST(nil().is_nil());
    BOOST_TEST(array({}).is_array());
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time) {
    const std::string bytes = cluster_slots + "$5\r\nhe\r\no\r\n" + "-MOVED 1 h:1\r\n";
    const auto whole = read_all(bytes);
    BOOST_TEST_REQUIRE(whole.size() == 3u);
    d::resp_reader reader;
    std::vector<d::resp_value> got;
    for (const char c : bytes) {
        reader.feed(&c, 1);
        for (;;) {
            auto r = reader.next();
            BOOST_TEST_REQUIRE(r.has_value());
            if (!*r) break;
            got.push_back(std::move(**r));
        }
    }
    BOOST_TEST(got == whole, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(several_replies_in_one_feed) {
    const auto all = read_all("+OK\r\n:1\r\n$3\r\nabc\r\n*1\r\n$-1\r\n-ERR x\r\n");
    const std::vector<d::resp_value> expected{simple("OK"), integer(1), bulk("abc"), array({nil()}),
                                              error("ERR x")};
    BOOST_TEST(all == expected, boost::test_tools::per_element());

    // A feed that ends inside a reply: the replies before it, then nothing until the rest.
    d::resp_reader reader;
    reader.feed("+OK\r\n*2\r\n:1");
    BOOST_TEST(*reader.next() == std::optional(simple("OK")));
    BOOST_TEST(!*reader.next());
    BOOST_TEST(!*reader.next()); // asking again changes nothing
    reader.feed("\r\n:2\r\n");
    BOOST_TEST(*reader.next() == std::optional(array({integer(1), integer(2)})));
    BOOST_TEST(!*reader.next());
}

BOOST_AUTO_TEST_CASE(a_reader_moves_in_the_middle_of_a_reply) {
    d::resp_reader first;
    first.feed("*2\r\n$3\r\nab");
    BOOST_TEST(!*first.next());
    d::resp_reader second(std::move(first));
    second.feed("c\r\n:7\r\n");
    BOOST_TEST(*second.next() == std::optional(array({bulk("abc"), integer(7)})));
}

BOOST_AUTO_TEST_CASE(nested_arrays) {
    BOOST_TEST(read_one("*2\r\n*2\r\n:1\r\n*0\r\n*3\r\n$1\r\na\r\n*-1\r\n$-1\r\n") ==
               array({array({integer(1), array({})}), array({bulk("a"), nil(), nil()})}));
    // hiredis 0.14 keeps its unfinished arrays in a stack of nine: eight arrays deep at most.
    const auto nested = [](int depth) {
        std::string s;
        for (int i = 0; i < depth; ++i)
            s += "*1\r\n";
        return s + ":5\r\n";
    };
    auto v = read_one(nested(8));
    for (int i = 0; i < 8; ++i) {
        BOOST_TEST_REQUIRE(v.elements.size() == 1u);
        auto inner = std::move(v.elements.front());
        v = std::move(inner);
    }
    BOOST_TEST(v == integer(5));
    BOOST_TEST(read_error(nested(9)).find("nested multi bulk") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_resp) {
    const auto protocol_error = [](std::string_view bytes, std::string_view says) {
        const auto message = read_error(bytes);
        BOOST_TEST(message.find(says) != std::string::npos, bytes << ": " << message);
    };
    protocol_error("!oops\r\n", "got \"!\" as reply type byte");
    protocol_error("HTTP/1.1 200 OK\r\n", "got \"H\" as reply type byte");
    protocol_error("*1\r\n?\r\n", "got \"?\" as reply type byte");
    protocol_error("$-2\r\n", "Bulk string length out of range");
    protocol_error("*-2\r\n", "Multi-bulk length out of range");
    protocol_error("$99999999999999999999\r\n", "Bad bulk string length");
    protocol_error("*2147483648\r\n", "Multi-bulk length out of range");
    protocol_error("*99999999999999999999\r\n", "Bad multi-bulk length");
    protocol_error("$x\r\n", "Bad bulk string length");
    protocol_error("$01\r\na\r\n", "Bad bulk string length");
    protocol_error(":12a\r\n", "Bad integer value");
    protocol_error(":9223372036854775808\r\n", "Bad integer value");
    protocol_error(":\r\n", "Bad integer value");
    // hiredis takes the two bytes after a bulk string on trust; this reader does not.
    protocol_error("$3\r\nabcXY:1\r\n", "not followed by CRLF");
    protocol_error("*2\r\n$1\r\nab\r\n:1\r\n", "not followed by CRLF");

    // After an error the reader stays broken: the same error, whatever is fed.
    d::resp_reader reader;
    reader.feed("+OK\r\n!\r\n");
    BOOST_TEST(*reader.next() == std::optional(simple("OK")));
    const auto first = reader.next();
    BOOST_TEST_REQUIRE(!first);
    reader.feed("+OK\r\n");
    const auto again = reader.next();
    BOOST_TEST_REQUIRE(!again);
    BOOST_TEST(again.error().message == first.error().message);
}

BOOST_AUTO_TEST_CASE(bounds_at_their_edges) {
    d::resp_limits small;
    small.max_string = 10;
    small.max_elements = 3;
    small.max_line = 16;

    BOOST_TEST(read_all("$10\r\n0123456789\r\n", small).size() == 1u);
    BOOST_TEST(read_error("$11\r\n01234567890\r\n", small).find("a bulk string of 11 bytes") !=
               std::string::npos);
    // Refused by its length line, before any of its bytes.
    BOOST_TEST(read_error("$11\r\n", small).find("over the bound of 10") != std::string::npos);
    BOOST_TEST(read_error("$11\r\n0123", small) != "");

    BOOST_TEST(read_all("*3\r\n:1\r\n:2\r\n:3\r\n", small).size() == 1u);
    BOOST_TEST(read_error("*4\r\n", small).find("an array of 4 elements") != std::string::npos);
    // The bound holds for all the arrays of a reply together, and again for the next reply.
    BOOST_TEST(read_all("*2\r\n*1\r\n:1\r\n:2\r\n*3\r\n:1\r\n:2\r\n:3\r\n", small).size() == 2u);
    BOOST_TEST(
        read_error("*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n", small).find("a reply of 4 array elements") !=
        std::string::npos);

    const std::string line16(16, 'x');
    BOOST_TEST(read_all("+" + line16 + "\r\n-" + line16 + "\r\n", small).size() == 2u);
    BOOST_TEST(read_error("+" + line16 + "x\r\n", small).find("a line of 17 bytes") !=
               std::string::npos);
    BOOST_TEST(read_error("-" + line16 + "x\r\n", small) != "");
    // A line without its end is refused once it is longer than the bound, whatever its kind.
    BOOST_TEST(read_error("+" + line16, small) == "");
    BOOST_TEST(read_error("+" + line16 + "x", small).find("a line of more than 16 bytes") !=
               std::string::npos);
    BOOST_TEST(read_error(":" + std::string(17, '1'), small) != "");
    // A line at its bound whose CR came without its LF is not over it.
    d::resp_reader cut(small);
    cut.feed("+" + line16 + "\r");
    BOOST_TEST(!*cut.next());
    cut.feed("\n");
    BOOST_TEST(*cut.next() == std::optional(simple(line16)));
    BOOST_TEST(read_error("$" + std::string(17, '1'), small) != "");
    BOOST_TEST(read_error("*" + std::string(17, '1'), small) != "");
}

BOOST_AUTO_TEST_CASE(hostile_counts_allocate_nothing_for_themselves) {
    // The default bounds: 64 MiB for a string, 2^20 elements.
    BOOST_TEST(read_error("$67108865\r\n").find("over the bound of 67108864") != std::string::npos);
    BOOST_TEST(read_error("$9223372036854775807\r\n") != "");
    BOOST_TEST(read_error("*1048577\r\n").find("an array of 1048577 elements") !=
               std::string::npos);
    BOOST_TEST(read_error("*2147483647\r\n") != "");

    // A count within the bounds is the sender's word only: nothing is reserved for it, nor
    // for the bytes of a bulk string that has not arrived.
    d::resp_reader reader;
    const auto before = heap_in_use();
    reader.feed("*1048576\r\n:1\r\n");
    BOOST_TEST(!*reader.next());
    BOOST_TEST(heap_in_use() < before + (std::size_t{1} << 20));
    d::resp_reader strings;
    strings.feed("$67108864\r\nabc");
    BOOST_TEST(!*strings.next());
    BOOST_TEST(heap_in_use() < before + (std::size_t{1} << 20));
}

BOOST_AUTO_TEST_CASE(commands_byte_for_byte) {
    std::string out;
    d::append_command(out, {"SET", "key", "value"});
    BOOST_TEST(out == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");

    // Appended after what is there: a pipeline.
    d::append_command(out, {"GET", ""});
    BOOST_TEST(out ==
               "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n");

    out.clear();
    d::append_command(out, {});
    BOOST_TEST(out == "*0\r\n");

    const std::string binary("\r\n\0$*", 5);
    const std::string big(100'000, 'z');
    const std::vector<std::string_view> args{"SET", binary, big};
    out.clear();
    d::append_command(out, args);
    BOOST_TEST(out == "*3\r\n$3\r\nSET\r\n$5\r\n" + binary + "\r\n$100000\r\n" + big + "\r\n");
    // A command is an array of bulk strings: it reads back as one.
    BOOST_TEST(read_one(out) == array({bulk("SET"), bulk(binary), bulk(big)}));
}

BOOST_AUTO_TEST_CASE(hash_slots) {
    // The Redis Cluster specification's check value of CRC16-XMODEM.
    BOOST_TEST(d::crc16("123456789") == 0x31C3);
    BOOST_TEST(d::crc16("") == 0);
    // Each value as `CLUSTER KEYSLOT key` answered it on Redis 7.0.15.
    struct row {
        std::string_view key;
        std::uint16_t slot;
    };
    for (const auto& r : std::vector<row>{{"foo", 12182},
                                          {"bar", 5061},
                                          {"123456789", 12739},
                                          {"hello", 866},
                                          {"somekey", 11058},
                                          {"p2pshare:file:a.txt", 11243},
                                          {"", 0},
                                          {"{user1000}.following", 3443},
                                          {"{user1000}.followers", 3443},
                                          {"foo{}{bar}", 8363},
                                          {"foo{{bar}}zap", 4015},
                                          {"{bar", 4015},
                                          {"foo{bar}{zap}", 5061},
                                          {"a{b}c", 3300},
                                          {"{}", 15257},
                                          {"{", 4092},
                                          {"}", 12090}}) {
        BOOST_TEST(d::key_slot(r.key) == r.slot, r.key);
    }
    // The hash tag rule as the specification states it.
    BOOST_TEST(d::key_slot("foo{}{bar}") == d::crc16("foo{}{bar}") % 16384);
    BOOST_TEST(d::key_slot("foo{{bar}}zap") == d::key_slot("{bar"));
    BOOST_TEST(d::key_slot("foo{bar}{zap}") == d::key_slot("bar"));
    BOOST_TEST(d::key_slot("x}{y}") == d::key_slot("y"));
    BOOST_TEST(d::key_slot("no tag {") == d::crc16("no tag {") % 16384);
    BOOST_TEST(d::key_slot(std::string_view("\xff\x00{\x01}", 5)) == d::key_slot("\x01"));
}

BOOST_AUTO_TEST_CASE(redirects) {
    using d::redirect_kind;
    const auto parse = [](std::string_view text) { return d::parse_redirect(text); };
    BOOST_TEST(parse("MOVED 3999 127.0.0.1:6381") ==
               std::optional(d::redirect{redirect_kind::moved, 3999, "127.0.0.1", 6381}));
    BOOST_TEST(parse("ASK 12182 127.0.0.1:31001") ==
               std::optional(d::redirect{redirect_kind::ask, 12182, "127.0.0.1", 31001}));
    BOOST_TEST(parse("MOVED 0 redis-b.example:6379") ==
               std::optional(d::redirect{redirect_kind::moved, 0, "redis-b.example", 6379}));
    BOOST_TEST(parse("MOVED 16383 ::1:6381") ==
               std::optional(d::redirect{redirect_kind::moved, 16383, "::1", 6381}));
    BOOST_TEST(parse("ASK 1 fe80::1:2:65535") ==
               std::optional(d::redirect{redirect_kind::ask, 1, "fe80::1:2", 65535}));
    // No endpoint (cluster-preferred-endpoint-type unknown-endpoint): the same host.
    BOOST_TEST(parse("MOVED 15495 :31003") ==
               std::optional(d::redirect{redirect_kind::moved, 15495, "", 31003}));
    // What Redis sends when a node should announce a hostname it has none of.
    BOOST_TEST(!parse("MOVED 15495 ?:31003"));
    for (const std::string_view garbage : {"",
                                           "MOVED",
                                           "MOVED ",
                                           "MOVED 3999",
                                           "MOVED 3999 ",
                                           "MOVED 3999 host",
                                           "MOVED 3999 host:",
                                           "MOVED 3999 host:0",
                                           "MOVED 3999 host:65536",
                                           "MOVED 3999 host:-1",
                                           "MOVED 3999 host:+1",
                                           "MOVED 3999 host:1 extra",
                                           "MOVED 16384 host:1",
                                           "MOVED -1 host:1",
                                           "MOVED x host:1",
                                           "MOVED  3999 host:1",
                                           "MOVED 3999  host:1",
                                           "MOVED 3999 ho st:1",
                                           "MOVED 3999 [::1]:1",
                                           "moved 3999 host:1",
                                           "MOVEDX 1 host:1",
                                           "ASK",
                                           "ASKING 1 host:1",
                                           "ERR MOVED 1 host:1",
                                           "TRYAGAIN x"}) {
        BOOST_TEST(!parse(garbage), garbage);
    }
}

BOOST_AUTO_TEST_CASE(cluster_errors) {
    using k = d::resp_error_kind;
    struct row {
        std::string_view text;
        k kind;
    };
    for (const auto& r : std::vector<row>{
             {"MOVED 3999 127.0.0.1:6381", k::moved},
             {"ASK 3999 127.0.0.1:6381", k::ask},
             {"TRYAGAIN Multiple keys request during rehashing of slot", k::tryagain},
             {"NOSCRIPT No matching script. Please use EVAL.", k::noscript},
             {"CLUSTERDOWN The cluster is down", k::clusterdown},
             {"LOADING Redis is loading the dataset in memory", k::loading},
             {"READONLY You can't write against a read only replica.", k::readonly},
             {"READONLY", k::readonly},
             {"ERR unknown command", k::other},
             {"WRONGTYPE Operation against a key holding the wrong kind of value", k::other},
             {"readonly x", k::other},
             {"LOADINGX", k::other},
             {" LOADING", k::other},
             {"", k::other}}) {
        BOOST_TEST((d::classify_error(r.text) == r.kind), r.text);
    }
}

BOOST_AUTO_TEST_CASE(cluster_slots_of_a_real_cluster) {
    const auto map = slots_of(cluster_slots);
    BOOST_TEST_REQUIRE(map.has_value());
    const std::vector<d::slot_range> expected{{0, 5460, "127.0.0.1", 31001},
                                              {5461, 10922, "127.0.0.1", 31002},
                                              {10923, 16383, "127.0.0.1", 31003}};
    BOOST_TEST(*map == expected, boost::test_tools::per_element());

    // The same cluster with cluster-preferred-endpoint-type unknown-endpoint: no endpoints
    // (nil), a port each; the client uses the host it asked.
    const auto unknown = slots_of(lines({"*3",
                                         "*4",
                                         ":0",
                                         ":5460",
                                         "*4",
                                         "$-1",
                                         ":31001",
                                         "$40",
                                         "4ded4cbad25a938429e5abf3ff88724bec2b44a5",
                                         "*2",
                                         "$2",
                                         "ip",
                                         "$9",
                                         "127.0.0.1",
                                         "*4",
                                         "$-1",
                                         ":31004",
                                         "$40",
                                         "5052e44d4a22743ae76d842fb8ef2d78f58308e3",
                                         "*2",
                                         "$2",
                                         "ip",
                                         "$9",
                                         "127.0.0.1",
                                         "*4",
                                         ":5461",
                                         ":10922",
                                         "*4",
                                         "$-1",
                                         ":31002",
                                         "$40",
                                         "8379e0916522d3a240fbccedff78aec754218fe1",
                                         "*4",
                                         "$2",
                                         "ip",
                                         "$9",
                                         "127.0.0.1",
                                         "$8",
                                         "hostname",
                                         "$15",
                                         "redis-b.example",
                                         "*4",
                                         "$-1",
                                         ":31005",
                                         "$40",
                                         "988850409879153e4fe58fc22203304e73c58633",
                                         "*2",
                                         "$2",
                                         "ip",
                                         "$9",
                                         "127.0.0.1",
                                         "*4",
                                         ":10923",
                                         ":16383",
                                         "*4",
                                         "$-1",
                                         ":31003",
                                         "$40",
                                         "249b2a01727a33c7d67776c3f054bd5b2d3b0d40",
                                         "*2",
                                         "$2",
                                         "ip",
                                         "$9",
                                         "127.0.0.1",
                                         "*4",
                                         "$-1",
                                         ":31006",
                                         "$40",
                                         "1314f6086ee15e10e906349c5053ec715e3c182c",
                                         "*2",
                                         "$2",
                                         "ip",
                                         "$9",
                                         "127.0.0.1"}));
    BOOST_TEST_REQUIRE(unknown.has_value());
    const std::vector<d::slot_range> same_host{
        {0, 5460, "", 31001}, {5461, 10922, "", 31002}, {10923, 16383, "", 31003}};
    BOOST_TEST(*unknown == same_host, boost::test_tools::per_element());

    // With cluster-preferred-endpoint-type hostname: only 31002 has one, the others say "?"
    // and their ranges are left out.
    const auto preferred = slots_of(lines({"*3",
                                           "*4",
                                           ":0",
                                           ":5460",
                                           "*4",
                                           "$1",
                                           "?",
                                           ":31001",
                                           "$40",
                                           "4ded4cbad25a938429e5abf3ff88724bec2b44a5",
                                           "*2",
                                           "$2",
                                           "ip",
                                           "$9",
                                           "127.0.0.1",
                                           "*4",
                                           "$1",
                                           "?",
                                           ":31004",
                                           "$40",
                                           "5052e44d4a22743ae76d842fb8ef2d78f58308e3",
                                           "*2",
                                           "$2",
                                           "ip",
                                           "$9",
                                           "127.0.0.1",
                                           "*4",
                                           ":5461",
                                           ":10922",
                                           "*4",
                                           "$15",
                                           "redis-b.example",
                                           ":31002",
                                           "$40",
                                           "8379e0916522d3a240fbccedff78aec754218fe1",
                                           "*2",
                                           "$2",
                                           "ip",
                                           "$9",
                                           "127.0.0.1",
                                           "*4",
                                           "$1",
                                           "?",
                                           ":31005",
                                           "$40",
                                           "988850409879153e4fe58fc22203304e73c58633",
                                           "*2",
                                           "$2",
                                           "ip",
                                           "$9",
                                           "127.0.0.1",
                                           "*4",
                                           ":10923",
                                           ":16383",
                                           "*4",
                                           "$1",
                                           "?",
                                           ":31003",
                                           "$40",
                                           "249b2a01727a33c7d67776c3f054bd5b2d3b0d40",
                                           "*2",
                                           "$2",
                                           "ip",
                                           "$9",
                                           "127.0.0.1",
                                           "*4",
                                           "$1",
                                           "?",
                                           ":31006",
                                           "$40",
                                           "1314f6086ee15e10e906349c5053ec715e3c182c",
                                           "*2",
                                           "$2",
                                           "ip",
                                           "$9",
                                           "127.0.0.1"}));
    BOOST_TEST_REQUIRE(preferred.has_value());
    const std::vector<d::slot_range> named{{5461, 10922, "redis-b.example", 31002}};
    BOOST_TEST(*preferred == named, boost::test_tools::per_element());

    // A one-node cluster that owns 0-99 and 200-16383: it does not know its own address (""),
    // and answers with entries of three elements (no replicas).
    const auto single =
        slots_of(lines({"*2", "*3", ":0",     ":99",    "*4",
                        "$0", "",   ":31007", "$40",    "495f3035647f0b1de70ae941b4deeab7a5d9ee58",
                        "*0", "*3", ":200",   ":16383", "*4",
                        "$0", "",   ":31007", "$40",    "495f3035647f0b1de70ae941b4deeab7a5d9ee58",
                        "*0"}));
    BOOST_TEST_REQUIRE(single.has_value());
    const std::vector<d::slot_range> two{{0, 99, "", 31007}, {200, 16383, "", 31007}};
    BOOST_TEST(*single == two, boost::test_tools::per_element());

    // Ranges out of order come back sorted; no slots assigned is an empty map; a master with
    // only an endpoint and a port (Redis before 4.0) is enough.
    const auto unsorted = slots_of(lines({"*2", "*3", ":100", ":200", "*2", "$1", "b", ":2", "*3",
                                          ":0", ":99", "*2", "$1", "a", ":1"}));
    BOOST_TEST_REQUIRE(unsorted.has_value());
    const std::vector<d::slot_range> sorted{{0, 99, "a", 1}, {100, 200, "b", 2}};
    BOOST_TEST(*unsorted == sorted, boost::test_tools::per_element());
    BOOST_TEST(slots_of("*0\r\n").value().empty());
}

BOOST_AUTO_TEST_CASE(cluster_slots_malformed) {
    const auto refused = [](const d::resp_value& reply, std::string_view says) {
        const auto r = d::decode_cluster_slots(reply);
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == errc::bad_response);
        BOOST_TEST(r.error().message.find(says) != std::string::npos, r.error().message);
    };
    const auto master = [](d::resp_value host, std::int64_t port) {
        return array({std::move(host), integer(port), bulk("id")});
    };
    const auto entry = [&](std::int64_t first, std::int64_t last, d::resp_value node) {
        return array({array({integer(first), integer(last), std::move(node)})});
    };
    refused(error("ERR This instance has cluster support disabled"), "cluster support disabled");
    refused(nil(), "not an array");
    refused(bulk("x"), "not an array");
    refused(array({integer(1)}), "an entry is not an array");
    refused(array({array({integer(0), integer(1)})}), "an entry is not an array");
    refused(entry(5, 4, master(bulk("h"), 1)), "not within 0..16383 in order");
    refused(entry(-1, 4, master(bulk("h"), 1)), "not within 0..16383 in order");
    refused(entry(0, 16384, master(bulk("h"), 1)), "not within 0..16383 in order");
    refused(array({array({bulk("0"), integer(1), master(bulk("h"), 1)})}), "not within");
    refused(entry(0, 1, master(bulk("h"), 0)), "port is not within 1..65535");
    refused(entry(0, 1, master(bulk("h"), 65536)), "port is not within 1..65535");
    refused(entry(0, 1, array({bulk("h"), bulk("6379")})), "port is not within 1..65535");
    refused(entry(0, 1, array({bulk("h")})), "a master is not an array");
    refused(entry(0, 1, bulk("h:1")), "a master is not an array");
    refused(entry(0, 1, master(integer(1), 1)), "endpoint is not a string");
    refused(entry(0, 1, master(bulk("a b"), 1)), "not a host name or an IP address");
    refused(entry(0, 1, master(error("h"), 1)), "endpoint is not a string");
    refused(array({array({integer(0), integer(10), master(bulk("a"), 1)}),
                   array({integer(10), integer(20), master(bulk("b"), 1)})}),
            "slot 10 is in two ranges");
    // What the sender gave of the same range twice is the same overlap.
    refused(array({array({integer(7), integer(7), master(bulk("a"), 1)}),
                   array({integer(7), integer(7), master(bulk("a"), 1)})}),
            "slot 7 is in two ranges");
}

BOOST_AUTO_TEST_CASE(info_fields) {
    // The start of INFO of Redis 7.0.15 in cluster mode, and its Cluster section.
    const std::string info =
        lines({"# Server", "redis_version:7.0.15", "redis_git_sha1:00000000", "redis_mode:cluster",
               "os:Linux 6.1.0 x86_64", "", "# Cluster", "cluster_enabled:1", "empty:"});
    BOOST_TEST(or_none(d::info_field(info, "redis_version")) == "7.0.15");
    BOOST_TEST(or_none(d::info_field(info, "redis_mode")) == "cluster");
    BOOST_TEST(or_none(d::info_field(info, "os")) == "Linux 6.1.0 x86_64");
    BOOST_TEST(or_none(d::info_field(info, "cluster_enabled")) == "1");
    BOOST_TEST(or_none(d::info_field(info, "empty")) == "");
    for (const std::string_view absent :
         {"redis", "redis_version:", "version", "Server", "# Server", "", "cluster_state"}) {
        BOOST_TEST(!d::info_field(info, absent), absent);
    }
    // CLUSTER INFO is alike; the last line may come without its end, or with LF alone.
    BOOST_TEST(or_none(d::info_field("cluster_state:ok\r\ncluster_slots_assigned:16384",
                                     "cluster_slots_assigned")) == "16384");
    BOOST_TEST(or_none(d::info_field("a:1\nb:2\n", "b")) == "2");
    BOOST_TEST(or_none(d::info_field("a:1\r2\r\n", "a")) == "1");
    BOOST_TEST(!d::info_field("", "a"));
}

BOOST_AUTO_TEST_SUITE_END()
