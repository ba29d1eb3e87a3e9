// The Redis store's values and replies (index/redis_replies.hpp), from RESP bytes as a Redis 7.0
// server sends them: well-formed ones decode to what the store wrote, and every other shape
// decodes to nothing rather than to a wrong answer.
#include "unit_common.hpp"

#include "index/redis_replies.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace d = p2pshare::detail;
using namespace std::string_literals;

namespace {

/// The one reply in `bytes`.
d::resp_value reply(std::string_view bytes) {
    d::resp_reader reader;
    reader.feed(bytes);
    auto r = reader.next();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST_REQUIRE(r->has_value());
    return std::move(**r);
}

const std::string sha_mixed = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

} // namespace

BOOST_AUTO_TEST_SUITE(redis_replies)

BOOST_AUTO_TEST_CASE(a_file_value_round_trips_and_stays_short) {
    std::uint64_t size = 0;
    std::string sha;
    std::string root;
    for (const auto& f :
         {p2pshare::detail::file_entry{"a", 12, sha_a, ""},
          p2pshare::detail::file_entry{"b", 1 << 20, sha_a, sha_a},
          p2pshare::detail::file_entry{"c", 9'223'372'036'854'775'807ULL, sha_a, sha_mixed}}) {
        BOOST_TEST_CONTEXT(f.name) {
            const auto v = d::encode_file_value(f);
            BOOST_TEST_REQUIRE(v.has_value());
            BOOST_TEST(d::decode_file_value(*v, size, sha, root));
            BOOST_TEST(size == f.size);
            BOOST_TEST(sha == f.sha256);
            BOOST_TEST(root == f.root);
        }
    }
    // A file of one piece (its root is its SHA-256) fits Redis's compact hash encoding.
    BOOST_TEST(d::encode_file_value({"b", 1 << 20, sha_a, sha_a})->size() <= 64u);
    BOOST_TEST(!d::encode_file_value({"x", 1, "not hex", ""}).has_value());
    BOOST_TEST(!d::encode_file_value({"x", 1, sha_a, "ABC"}).has_value());
    // Anything else is no value.
    const auto good = *d::encode_file_value({"a", 12, sha_a, ""});
    for (const auto& bad :
         {""s, "\x03"s + good.substr(1), good.substr(0, 33), good + "x", good.substr(0, 33) + "-1",
          good.substr(0, 33) + "+1", good.substr(0, 33) + "99999999999999999999999"}) {
        BOOST_TEST(!d::decode_file_value(bad, size, sha, root));
    }
}

BOOST_AUTO_TEST_CASE(peer_ids_and_listed_sources) {
    BOOST_TEST(d::decode_peer_id("0").value() == 0u);
    BOOST_TEST(d::decode_peer_id("4294967295").value() == 4294967295u);
    for (const auto* bad : {"", "-1", "+1", "4294967296", "1x", " 1"})
        BOOST_TEST(!d::decode_peer_id(std::string_view(bad)).has_value(), bad);
    BOOST_TEST(d::decode_peer_id(reply(":7\r\n")).value() == 7u);
    BOOST_TEST(!d::decode_peer_id(reply(":-7\r\n")).has_value());
    BOOST_TEST(d::listed_source("song\0"s + "12", "song").value() == 12u);
    BOOST_TEST(!d::listed_source("song", "song").has_value()); // several sources: in its set
    BOOST_TEST(!d::listed_source("song 2\0"s + "12", "song").has_value());
    BOOST_TEST(!d::listed_source("song\0"s, "song").has_value());
    BOOST_TEST(!d::listed_source("son\0"s + "12", "song").has_value());
}

BOOST_AUTO_TEST_CASE(the_answer_of_a_files_script) {
    const auto a = d::decode_files_answer(
        reply("*9\r\n$3\r\ntok\r\n:1\r\n:1700000000000\r\n:2\r\n:3\r\n:2\r\n$1\r\na\r\n"
              "$1\r\nb\r\n$1\r\nc\r\n"));
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST(a->head == "tok");
    BOOST_TEST(a->taken);
    BOOST_TEST(a->now_ms == 1700000000000);
    BOOST_TEST(a->before == 2);
    BOOST_TEST(a->count == 3);
    BOOST_TEST(a->added == (std::vector<std::string>{"a", "b"}));
    BOOST_TEST(a->removed == std::vector<std::string>{"c"});
    // More added than names, a negative count, a name that is not a string, too short.
    for (const auto* bad : {"*6\r\n$2\r\nok\r\n:0\r\n:1\r\n:0\r\n:0\r\n:1\r\n",
                            "*6\r\n$2\r\nok\r\n:0\r\n:1\r\n:-1\r\n:0\r\n:0\r\n",
                            "*7\r\n$2\r\nok\r\n:0\r\n:1\r\n:0\r\n:1\r\n:1\r\n:5\r\n",
                            "*2\r\n$2\r\nok\r\n:0\r\n", "$2\r\nok\r\n"})
        BOOST_TEST(!d::decode_files_answer(reply(bad)).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(a_share_of_a_list_page_and_a_source_read) {
    const auto share = d::decode_list_share(reply("*4\r\n:0\r\n$1\r\nm\r\n$1\r\nk\r\n$1\r\nm\r\n"));
    BOOST_TEST_REQUIRE(share.has_value());
    BOOST_TEST(!share->done);
    BOOST_TEST(share->last == "m");
    BOOST_TEST(share->names == (std::vector<std::string>{"k", "m"}));
    BOOST_TEST(!d::decode_list_share(reply("*1\r\n:1\r\n")).has_value());
    BOOST_TEST(!d::decode_list_share(reply("*2\r\n:1\r\n:2\r\n")).has_value());

    // A source_read is views into its reply, which must outlive it.
    const auto full = reply("*4\r\n$9\r\n127.0.0.1\r\n$4\r\n5001\r\n$0\r\n\r\n$3\r\nabc\r\n");
    const auto read = d::decode_source_read(full);
    BOOST_TEST_REQUIRE(read.has_value());
    BOOST_TEST(read->host == "127.0.0.1");
    BOOST_TEST(read->port == 5001u);
    BOOST_TEST(read->cert.empty()); // plain HTTP
    BOOST_TEST(read->value.value() == "abc");
    const std::string cert(64, 'a');
    const auto with_cert = reply("*4\r\n$1\r\nh\r\n$1\r\n1\r\n$64\r\n" + cert + "\r\n$1\r\nv\r\n");
    const auto tls = d::decode_source_read(with_cert);
    BOOST_TEST_REQUIRE(tls.has_value());
    BOOST_TEST(tls->cert == cert);
    const auto partial = reply("*4\r\n$1\r\nh\r\n$1\r\n1\r\n$-1\r\n$-1\r\n");
    const auto without = d::decode_source_read(partial);
    BOOST_TEST_REQUIRE(without.has_value());
    BOOST_TEST(without->cert.empty());       // a lease of an older version: no field
    BOOST_TEST(!without->value.has_value()); // the peer no longer has that file
    for (const auto* bad : {"*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n", // the lease ended
                            "*4\r\n$1\r\nh\r\n$5\r\n65536\r\n$-1\r\n$-1\r\n",
                            "*4\r\n$1\r\nh\r\n$1\r\n0\r\n$-1\r\n$-1\r\n",
                            "*4\r\n$1\r\nh\r\n$1\r\n1\r\n$3\r\nabc\r\n$-1\r\n", // not a digest
                            "*3\r\n$1\r\nh\r\n$1\r\n1\r\n$-1\r\n"})
        BOOST_TEST(!d::decode_source_read(reply(bad)).has_value(), bad);
}

BOOST_AUTO_TEST_SUITE_END()
