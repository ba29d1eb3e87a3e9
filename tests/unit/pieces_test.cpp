// Pieces and the hash cache, with plain bytes: the piece size rule at its edges, Merkle roots
// computed by hand, the check of a list of piece hashes, the one-pass hasher, and the cache's
// round trip and refusals.
#include "unit_common.hpp"

#include "hash_cache.hpp"
#include "pieces.hpp"
#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

using p2pshare::errc;
namespace d = p2pshare::detail;

namespace {

constexpr std::uint64_t MiB = std::uint64_t{1} << 20;
constexpr std::uint64_t GiB = std::uint64_t{1} << 30;

/// The SHA-256 of `bytes`, raw, by the test support's own OpenSSL call.
d::digest sha(std::string_view bytes) {
    return *d::digest_from_hex(p2pshare::test::sha256_hex(bytes));
}

std::string raw(const d::digest& x) {
    return std::string(reinterpret_cast<const char*>(x.data()), 32);
}

std::string raw(const std::vector<d::digest>& list) {
    std::string out;
    for (const auto& x : list)
        out += raw(x);
    return out;
}

d::digest parent(const d::digest& left, const d::digest& right) {
    return sha(raw(left) + raw(right));
}

/// Bytes that are not all alike, so that a piece out of place shows.
std::string content(std::size_t n) { return p2pshare::test::random_text(n, 7); }

} // namespace

BOOST_AUTO_TEST_SUITE(pieces)

BOOST_AUTO_TEST_CASE(piece_size_at_the_edges) {
    struct row {
        std::uint64_t size, piece, count;
    };
    for (const auto& r : std::vector<row>{{0, MiB, 1},
                                          {1, MiB, 1},
                                          {MiB, MiB, 1},
                                          {MiB + 1, MiB, 2},
                                          {32 * GiB, MiB, 32768},
                                          {32 * GiB + 1, 2 * MiB, 16385},
                                          {64 * GiB, 2 * MiB, 32768},
                                          {64 * GiB + 1, 4 * MiB, 16385}}) {
        BOOST_TEST_CONTEXT("size " << r.size) {
            BOOST_TEST(d::piece_size_for(r.size) == r.piece);
            BOOST_TEST(d::piece_count_for(r.size) == r.count);
            BOOST_TEST(d::piece_count_for(r.size) <= d::max_piece_count);
            // The pieces cover the file exactly; only the last may be shorter.
            const auto last = d::piece_at(r.size, r.count - 1);
            BOOST_TEST(last.offset + last.length == r.size);
            BOOST_TEST(last.length <= r.piece);
            if (r.count > 1) {
                const auto first = d::piece_at(r.size, 0);
                BOOST_TEST(first.offset == 0u);
                BOOST_TEST(first.length == r.piece);
                BOOST_TEST(last.offset == (r.count - 1) * r.piece);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(merkle_roots_of_one_two_and_three_pieces) {
    const auto a = sha("piece a");
    const auto b = sha("piece b");
    const auto c = sha("piece c");
    const d::digest zero{};
    BOOST_TEST((d::merkle_root(std::vector<d::digest>{a}) == a));
    BOOST_TEST((d::merkle_root(std::vector<d::digest>{a, b}) == parent(a, b)));
    // Three leaves are padded to four with an all-zero digest.
    BOOST_TEST(
        (d::merkle_root(std::vector<d::digest>{a, b, c}) == parent(parent(a, b), parent(c, zero))));
    // So three pieces and four whose last hash is all zeros share a root: a root is only ever
    // checked with the piece count that the file's size gives.
    BOOST_TEST((d::merkle_root(std::vector<d::digest>{a, b, c}) ==
                d::merkle_root(std::vector<d::digest>{a, b, c, zero})));
    // Five leaves: padded to eight.
    const auto e = sha("piece e");
    BOOST_TEST(
        (d::merkle_root(std::vector<d::digest>{a, b, c, a, e}) ==
         parent(parent(parent(a, b), parent(c, a)), parent(parent(e, zero), parent(zero, zero)))));
    // Order matters.
    BOOST_TEST((d::merkle_root(std::vector<d::digest>{b, a}) != parent(a, b)));
}

BOOST_AUTO_TEST_CASE(the_worked_example_of_the_protocol_page) {
    // docs/protocol.md §10.2: 2 MiB + 1 zero bytes.
    const std::string zeros(2 * MiB + 1, '\0');
    d::piece_hasher h(zeros.size());
    h.update(zeros.data(), zeros.size());
    const auto r = h.finish();
    BOOST_TEST_REQUIRE(r.pieces.size() == 3u);
    BOOST_TEST(d::to_hex(r.pieces[0]) ==
               "30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58");
    BOOST_TEST(d::to_hex(r.pieces[2]) ==
               "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    BOOST_TEST(d::to_hex(r.root) ==
               "2945c566bdc2b5db320c0ab2d5fb22caade1f0bd5c50f7a440ac50343416d07f");
    // An empty file: one empty piece, and its root is SHA-256 of nothing.
    d::piece_hasher empty(0);
    BOOST_TEST(d::to_hex(empty.finish().root) ==
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_CASE(hex_of_a_digest_round_trips_and_refuses_what_is_not_hex) {
    const auto a = sha("x");
    BOOST_TEST(d::to_hex(a) == p2pshare::test::sha256_hex("x"));
    BOOST_TEST((d::digest_from_hex(d::to_hex(a)) == a));
    BOOST_TEST(!d::digest_from_hex(std::string(64, 'A')));
    BOOST_TEST(!d::digest_from_hex(std::string(63, 'a')));
    BOOST_TEST(!d::digest_from_hex(std::string(63, 'a') + "g"));
}

BOOST_AUTO_TEST_CASE(decoding_piece_hashes_checks_length_and_root) {
    const auto size = 3 * MiB - 10; // three pieces
    const std::vector<d::digest> list{sha("0"), sha("1"), sha("2")};
    const auto root = d::merkle_root(list);
    auto good = d::decode_piece_hashes(raw(list), size, root);
    BOOST_TEST_REQUIRE(good.has_value());
    BOOST_TEST((*good == list));
    const auto error_of = [&](std::string_view body) {
        auto r = d::decode_piece_hashes(body, size, root);
        BOOST_TEST_REQUIRE(!r);
        return static_cast<errc>(r.error().value());
    };
    BOOST_TEST(error_of("") == errc::bad_response);
    BOOST_TEST(error_of(raw(list).substr(0, 64)) == errc::bad_response);   // short
    BOOST_TEST(error_of(raw(list).substr(0, 95)) == errc::bad_response);   // not whole
    BOOST_TEST(error_of(raw(list) + raw(sha("3"))) == errc::bad_response); // long
    BOOST_TEST(error_of(raw(list) + "x") == errc::bad_response);           // a byte too many
    BOOST_TEST(error_of(std::string(96, '\x5a')) == errc::hash_mismatch);  // garbage
    BOOST_TEST(error_of(raw({list[1], list[0], list[2]})) == errc::hash_mismatch); // out of order
    // A file up to one piece: its one hash, which is its SHA-256 and its root.
    const auto small = content(1000);
    auto one = d::decode_piece_hashes(raw(sha(small)), small.size(), sha(small));
    BOOST_TEST_REQUIRE(one.has_value());
    BOOST_TEST(one->size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_hasher_gives_what_hashing_each_piece_gives) {
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{MiB},
                                   std::size_t{2 * MiB}, std::size_t{3 * MiB + 5}}) {
        BOOST_TEST_CONTEXT("size " << size) {
            const auto bytes = content(size);
            d::piece_hasher h(size);
            // Fed in slices that do not line up with the pieces.
            for (std::size_t at = 0; at < size;) {
                const auto n = std::min<std::size_t>(size - at, 300'007);
                h.update(bytes.data() + at, n);
                at += n;
            }
            const auto r = h.finish();
            BOOST_TEST(r.sha256 == p2pshare::test::sha256_hex(bytes));
            std::vector<d::digest> expected;
            for (std::uint64_t i = 0; i < d::piece_count_for(size); ++i) {
                const auto span = d::piece_at(size, i);
                expected.push_back(sha(std::string_view(bytes).substr(span.offset, span.length)));
            }
            BOOST_TEST(r.pieces.size() == d::piece_count_for(size));
            BOOST_TEST((r.pieces == expected));
            BOOST_TEST((r.root == d::merkle_root(expected)));
            // Up to one piece, the root is the file's SHA-256.
            if (size <= MiB) BOOST_TEST(d::to_hex(r.root) == r.sha256);
            // The list the peer serves for it is accepted against the root.
            BOOST_TEST(d::decode_piece_hashes(raw(r.pieces), size, r.root).has_value());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

d::hash_record record(const std::string& name, std::size_t size, std::uint64_t inode) {
    const auto bytes = content(size);
    d::piece_hasher h(size);
    h.update(bytes.data(), bytes.size());
    auto r = h.finish();
    return {name,
            {size, 1'700'000'000'123'456'789 + static_cast<std::int64_t>(inode), inode},
            *d::digest_from_hex(r.sha256),
            r.root,
            std::make_shared<const std::vector<d::digest>>(std::move(r.pieces))};
}

bool same(const d::hash_record& a, const d::hash_record& b) {
    return a.name == b.name && a.stamp == b.stamp && a.sha256 == b.sha256 && a.root == b.root &&
           *a.pieces == *b.pieces;
}

/// `bytes` with its trailing checksum made right again (to reach the checks behind it).
std::string resealed(std::string bytes) {
    bytes.resize(bytes.size() - 32);
    const auto sum = d::sha256_digest(bytes.data(), bytes.size());
    bytes.append(reinterpret_cast<const char*>(sum.data()), 32);
    return bytes;
}

errc refusal(std::string_view bytes) {
    auto r = d::decode_hash_cache(bytes);
    BOOST_TEST_REQUIRE(!r);
    BOOST_TEST(!r.error().message.empty());
    return r.error().code;
}

} // namespace

BOOST_AUTO_TEST_SUITE(hash_cache)

BOOST_AUTO_TEST_CASE(records_round_trip) {
    const std::vector<d::hash_record> records{record("empty", 0, 1), record("a b.txt", 1, 2),
                                              record("big.bin", 3 * MiB + 1, 3)};
    const auto bytes = d::encode_hash_cache(records);
    BOOST_TEST(bytes.substr(0, d::hash_cache_magic.size()) == d::hash_cache_magic);
    auto back = d::decode_hash_cache(bytes);
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST_REQUIRE(back->size() == records.size());
    for (std::size_t i = 0; i < records.size(); ++i)
        BOOST_TEST(same((*back)[i], records[i]));
    BOOST_TEST((*back)[2].pieces->size() == 4u);
    // No records at all is a cache too.
    auto none = d::decode_hash_cache(d::encode_hash_cache({}));
    BOOST_TEST_REQUIRE(none.has_value());
    BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_CASE(a_damaged_truncated_or_foreign_cache_is_refused) {
    const std::vector<d::hash_record> records{record("a.txt", 10, 1), record("b.bin", MiB + 1, 2)};
    const auto bytes = d::encode_hash_cache(records);
    BOOST_TEST(refusal("") == errc::bad_config);
    BOOST_TEST(refusal(d::hash_cache_magic) == errc::bad_config);
    for (const std::size_t cut : {std::size_t{1}, std::size_t{31}, std::size_t{32}, std::size_t{33},
                                  bytes.size() / 2, bytes.size() - 1}) {
        BOOST_TEST_CONTEXT("cut at " << cut) {
            BOOST_TEST(refusal(std::string_view(bytes).substr(0, cut)) == errc::bad_config);
        }
    }
    for (const std::size_t at :
         {std::size_t{0}, d::hash_cache_magic.size() + 1, bytes.size() / 2, bytes.size() - 1}) {
        BOOST_TEST_CONTEXT("byte " << at << " changed") {
            auto damaged = bytes;
            damaged[at] = static_cast<char>(damaged[at] ^ 0x20);
            BOOST_TEST(refusal(damaged) == errc::bad_config);
        }
    }
    // Another version, even with a checksum that matches.
    auto other = bytes;
    other[d::hash_cache_magic.size() - 2] = '2';
    BOOST_TEST(refusal(resealed(other)) == errc::bad_config);
    // Bytes after the records.
    auto longer = bytes;
    longer.insert(longer.size() - 32, "x");
    BOOST_TEST(refusal(resealed(longer)) == errc::bad_config);
}

BOOST_AUTO_TEST_CASE(a_record_that_breaks_a_rule_is_refused_whole) {
    auto bad_name = record("x.part", 10, 1);
    auto twice = record("a.txt", 10, 1);
    auto short_list = record("s.bin", 2 * MiB + 1, 2);
    short_list.pieces = std::make_shared<const std::vector<d::digest>>(
        short_list.pieces->begin(), short_list.pieces->end() - 1);
    short_list.root = d::merkle_root(*short_list.pieces);
    auto wrong_root = record("w.bin", 2 * MiB + 1, 3);
    wrong_root.root[0] ^= 1;
    for (const auto& list : std::vector<std::vector<d::hash_record>>{
             {record("ok", 1, 9), bad_name}, {twice, twice}, {short_list}, {wrong_root}}) {
        BOOST_TEST_CONTEXT(list.back().name) {
            BOOST_TEST(refusal(d::encode_hash_cache(list)) == errc::bad_config);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
