// Piece hashes on the serving side, over real sockets: a peer restarted over an unchanged folder
// offers its files from its hash cache without reading them; GET/HEAD /v1/pieces/NAME gives the
// piece hashes that the root in the index's lookup answer commits to; If-Match on pieces and
// files; and the index's handling of "root" in registrations.
#include <p2pshare/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include "hash_cache.hpp"
#include "peer/shared_folder.hpp"
#include "peer_fixture.hpp"
#include "pieces.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace p2pshare;
namespace d = p2pshare::detail;

namespace {

constexpr std::uint64_t MiB = std::uint64_t{1} << 20;

/// A peer of the test's own, so that it can be destroyed and made again over the same folder
/// (the folder's lock goes with the PeerNode).
std::unique_ptr<PeerNode> start(test::network& net, const PeerOptions& options) {
    auto node = std::make_unique<PeerNode>(net.io().executor(), options);
    const auto e = net.io().run(node->async_start());
    BOOST_REQUIRE_MESSAGE(!e.code, "peer " << node->id() << " did not start: " << e.message);
    BOOST_REQUIRE(node->registered());
    return node;
}

void stop(test::network& net, std::unique_ptr<PeerNode>& node) {
    net.io().run(node->async_quit());
    node.reset();
}

boost::json::object health(const PeerNode& node) {
    const auto r = test::http_call(node.port(), "GET", "/v1/health");
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    return boost::json::parse(r.body).as_object();
}

std::uint64_t hashed_bytes(const PeerNode& node) {
    return health(node).at("hashed_bytes").to_number<std::uint64_t>();
}

/// The one source the index gives for `name`, as JSON.
/// The source `id` of `name` in a lookup (an empty object when it is not one).
boost::json::object source_of_peer(std::uint16_t index_port, const std::string& name,
                                   std::uint32_t id) {
    const auto r = test::http_call(index_port, "POST", "/v1/lookup",
                                   R"({"names":[)" + test::json_quote(name) + "]}");
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    const auto v = boost::json::parse(r.body);
    for (const auto& s : v.at("results").at(0).at("sources").as_array())
        if (s.at("id").to_number<std::uint32_t>() == id) return s.as_object();
    return {};
}

boost::json::object only_source(std::uint16_t index_port, const std::string& name) {
    const auto r = test::http_call(index_port, "POST", "/v1/lookup",
                                   R"({"names":[)" + test::json_quote(name) + "]}");
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    const auto v = boost::json::parse(r.body);
    const auto& sources = v.at("results").at(0).at("sources").as_array();
    BOOST_REQUIRE_EQUAL(sources.size(), 1u);
    return sources[0].as_object();
}

/// A file of `size` bytes with nothing written: it reads as zeros and takes no disk.
void make_sparse(const fs::path& file, std::uint64_t size) {
    fs::create_directories(file.parent_path());
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
    ::close(fd);
}

std::string error_name(const test::http_reply& r) {
    return std::string(boost::json::parse(r.body).at("error").as_string());
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_pieces)

BOOST_AUTO_TEST_CASE(a_restart_over_an_unchanged_folder_hashes_nothing) {
    test::network net;
    auto options = net.options(1);
    options.hash_cache = net / "p1.hashes";
    const auto several = test::random_text(5 * MiB + 3, 301);
    const std::uint64_t sparse_size = 256 * MiB;
    test::write_file(net / "p1" / "several.bin", several);
    test::write_file(net / "p1" / "small.txt", "small");
    test::write_file(net / "p1" / "changed.txt", "before");
    make_sparse(net / "p1" / "sparse.bin", sparse_size);
    const std::vector<std::string> names{"changed.txt", "several.bin", "small.txt", "sparse.bin"};

    // First start: every file is read once, and the cache is written.
    auto node = start(net, options);
    BOOST_TEST(hashed_bytes(*node) == several.size() + 5 + 6 + sparse_size);
    BOOST_TEST(test::index_names(net.index_port()) == names);
    const auto root_before = only_source(net.index_port(), "several.bin").at("root");
    stop(net, node);
    BOOST_TEST_REQUIRE(fs::exists(net / "p1.hashes"));

    // Restarted over the same folder: nothing is read, everything is offered at once.
    node = start(net, options);
    BOOST_TEST(hashed_bytes(*node) == 0u);
    BOOST_TEST(health(*node).at("files").to_number<std::uint64_t>() == names.size());
    BOOST_TEST(test::index_names(net.index_port()) == names);
    BOOST_TEST(only_source(net.index_port(), "several.bin").at("root") == root_before);
    // What it serves is still right: the file, and the pieces its root commits to.
    const auto got = test::http_call(node->port(), "GET", "/v1/files/several.bin");
    BOOST_TEST(got.status == 200u);
    BOOST_TEST((got.body == several));
    const auto pieces = test::http_call(node->port(), "GET", "/v1/pieces/several.bin");
    BOOST_TEST_REQUIRE(pieces.status == 200u);
    const auto root = d::digest_from_hex(root_before.as_string());
    BOOST_TEST_REQUIRE(root.has_value());
    BOOST_TEST(d::decode_piece_hashes(pieces.body, several.size(), *root).has_value());
    stop(net, node);

    // A file changed while the peer was down is read again, and only that one.
    test::write_file(net / "p1" / "changed.txt", "after, and longer");
    node = start(net, options);
    BOOST_TEST(hashed_bytes(*node) == 17u);
    BOOST_TEST(test::index_names(net.index_port()) == names);
    BOOST_TEST(only_source(net.index_port(), "changed.txt").at("sha256").as_string() ==
               test::sha256_hex("after, and longer"));
    stop(net, node);

    // A damaged cache is ignored (with a log line): the files are hashed again, and served.
    auto bytes = test::read_file(net / "p1.hashes");
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
    test::write_file(net / "p1.hashes", bytes);
    node = start(net, options);
    BOOST_TEST(hashed_bytes(*node) == several.size() + 5 + 17 + sparse_size);
    BOOST_TEST(test::index_names(net.index_port()) == names);
    stop(net, node);
    // ... and written anew, so that the next start reads nothing again.
    node = start(net, options);
    BOOST_TEST(hashed_bytes(*node) == 0u);
    stop(net, node);
}

BOOST_AUTO_TEST_CASE(pieces_are_served_with_the_root_the_index_gives) {
    test::network net;
    const auto content = test::random_text(3 * MiB + 5, 302); // four pieces
    test::write_file(net / "p1" / "p.bin", content);
    test::write_file(net / "p1" / "s.txt", "short");
    auto& node = net.start_peer(1);
    const auto port = node.port();

    const auto source = only_source(net.index_port(), "p.bin");
    const auto sha = std::string(source.at("sha256").as_string());
    const auto root = d::digest_from_hex(source.at("root").as_string());
    BOOST_TEST_REQUIRE(root.has_value());
    const std::string etag = "\"" + sha + "\"";

    const auto r = test::http_call(port, "GET", "/v1/pieces/p.bin");
    BOOST_TEST_REQUIRE(r.status == 200u);
    BOOST_TEST(r.header("content-type") == "application/octet-stream");
    BOOST_TEST(r.header("etag") == etag);
    BOOST_TEST(r.body.size() == 4u * 32u);
    const auto list = d::decode_piece_hashes(r.body, content.size(), *root);
    BOOST_TEST_REQUIRE(list.has_value());
    // Each hash is that of its piece.
    for (std::uint64_t i = 0; i < list->size(); ++i) {
        const auto span = d::piece_at(content.size(), i);
        BOOST_TEST(d::to_hex((*list)[i]) ==
                   test::sha256_hex(std::string_view(content).substr(span.offset, span.length)));
    }
    // A file of one piece: one hash, its SHA-256, which is also its root.
    const auto small = test::http_call(port, "GET", "/v1/pieces/s.txt");
    BOOST_TEST_REQUIRE(small.status == 200u);
    BOOST_TEST(small.body.size() == 32u);
    BOOST_TEST(only_source(net.index_port(), "s.txt").at("root").as_string() ==
               test::sha256_hex("short"));

    // HEAD: the same header, no body.
    const auto head = test::http_call(port, "HEAD", "/v1/pieces/p.bin");
    BOOST_TEST(head.status == 200u);
    BOOST_TEST(head.header("content-length") == "128");
    BOOST_TEST(head.header("etag") == etag);
    BOOST_TEST(head.body.empty());

    // If-Match: the current ETag or * go on; anything else is 412 with the current ETag.
    BOOST_TEST(test::http_call(port, "GET", "/v1/pieces/p.bin", {}, {{"If-Match", etag}}).status ==
               200u);
    BOOST_TEST(test::http_call(port, "GET", "/v1/pieces/p.bin", {}, {{"If-Match", "*"}}).status ==
               200u);
    const std::string other = "\"" + std::string(64, 'a') + "\"";
    for (const std::string target : {"/v1/pieces/p.bin", "/v1/files/p.bin"}) {
        BOOST_TEST_CONTEXT(target) {
            for (const std::string method : {"GET", "HEAD"}) {
                const auto refused =
                    test::http_call(port, method, target, {}, {{"If-Match", other}});
                BOOST_TEST(refused.status == 412u);
                BOOST_TEST(refused.header("etag") == etag);
                if (method == "GET") BOOST_TEST(error_name(refused) == "precondition_failed");
            }
            // A weak tag never matches.
            BOOST_TEST(
                test::http_call(port, "GET", target, {}, {{"If-Match", "W/" + etag}}).status ==
                412u);
        }
    }
    // A piece fetched as the downloader does: a range of one version.
    const auto span = d::piece_at(content.size(), 2);
    const auto range = "bytes=" + std::to_string(span.offset) + "-" +
                       std::to_string(span.offset + span.length - 1);
    const auto piece =
        test::http_call(port, "GET", "/v1/files/p.bin", {}, {{"Range", range}, {"If-Match", etag}});
    BOOST_TEST(piece.status == 206u);
    BOOST_TEST(d::to_hex((*list)[2]) == test::sha256_hex(piece.body));
    const auto stale = test::http_call(port, "GET", "/v1/files/p.bin", {},
                                       {{"Range", range}, {"If-Match", other}});
    BOOST_TEST(stale.status == 412u);

    // Names it does not share, or that break the rules, are refused as for files.
    for (const std::string method : {"GET", "HEAD"}) {
        BOOST_TEST(test::http_call(port, method, "/v1/pieces/nothing.bin").status == 404u);
    }
    const auto unknown = test::http_call(port, "GET", "/v1/pieces/nothing.bin");
    BOOST_TEST(error_name(unknown) == "not_found");
    BOOST_TEST(test::http_call(port, "GET", "/v1/pieces/p.bin.part").status == 400u);
    BOOST_TEST(test::http_call(port, "GET", "/v1/pieces/..%2Fp1.config").status == 400u);
    const auto post = test::http_call(port, "POST", "/v1/pieces/p.bin", "{}");
    BOOST_TEST(post.status == 405u);
    BOOST_TEST(post.header("allow") == "GET, HEAD");
}

BOOST_AUTO_TEST_CASE(a_file_changed_by_hand_is_hashed_again_before_its_pieces_are_served) {
    test::network net;
    const auto before = test::random_text(2 * MiB, 303);
    test::write_file(net / "p1" / "c.bin", before);
    auto& node = net.start_peer(1);
    const auto port = node.port();
    const std::string old_etag = "\"" + test::sha256_hex(before) + "\"";
    BOOST_TEST(test::http_call(port, "GET", "/v1/pieces/c.bin").header("etag") == old_etag);

    // Same size, other bytes: the next request finds another stamp and hashes it first.
    auto after = before;
    after[MiB + 7] = static_cast<char>(after[MiB + 7] ^ 1);
    test::write_file(net / "p1" / "c.bin", after);
    const std::string new_etag = "\"" + test::sha256_hex(after) + "\"";
    const auto refused =
        test::http_call(port, "GET", "/v1/pieces/c.bin", {}, {{"If-Match", old_etag}});
    BOOST_TEST(refused.status == 412u);
    BOOST_TEST(refused.header("etag") == new_etag);
    const auto r = test::http_call(port, "GET", "/v1/pieces/c.bin");
    BOOST_TEST_REQUIRE(r.status == 200u);
    BOOST_TEST(r.header("etag") == new_etag);
    BOOST_TEST_REQUIRE(r.body.size() == 64u);
    const std::vector<d::digest> expected{
        *d::digest_from_hex(test::sha256_hex(after.substr(0, MiB))),
        *d::digest_from_hex(test::sha256_hex(after.substr(MiB)))};
    BOOST_TEST(d::decode_piece_hashes(r.body, after.size(), d::merkle_root(expected)).has_value());
    // The index is told the new hash and root.
    BOOST_TEST(net.io().run(node.async_sync()).code == boost::system::error_code{});
    const auto source = only_source(net.index_port(), "c.bin");
    BOOST_TEST("\"" + std::string(source.at("sha256").as_string()) + "\"" == new_etag);
    BOOST_TEST(source.at("root").as_string() == d::to_hex(d::merkle_root(expected)));
}

BOOST_AUTO_TEST_CASE(a_downloaded_file_is_offered_at_once_with_its_pieces) {
    test::network net;
    const auto content = test::random_text(2 * MiB + 9, 304);
    test::write_file(net / "p1" / "d.bin", content);
    net.start_peer(1);
    auto options = net.options(2);
    options.hash_cache = net / "p2.hashes";
    auto& p2 = net.start_peer(options);
    const auto outcomes = net.io().run(p2.async_download({"d.bin"}));
    BOOST_TEST_REQUIRE(outcomes.size() == 1u);
    BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
    // A source as soon as the download returned (with the hash it verified) ...
    BOOST_TEST(test::index_sources(net.index_port(), "d.bin") == (std::set<std::uint32_t>{1, 2}));
    // ... with the root peer 1 gives (the downloader checked the piece hashes against it).
    const auto root_of = [&](std::uint32_t id) {
        const auto r =
            test::http_call(net.index_port(), "POST", "/v1/lookup", R"({"names":["d.bin"]})");
        const auto v = boost::json::parse(r.body);
        for (const auto& s : v.at("results").at(0).at("sources").as_array()) {
            if (s.at("id").to_number<std::uint32_t>() == id && s.as_object().contains("root")) {
                return std::string(s.at("root").as_string());
            }
        }
        return std::string{};
    };
    BOOST_TEST_REQUIRE(test::eventually([&] { return !root_of(2).empty(); }));
    BOOST_TEST(root_of(2) == root_of(1));
    const auto pieces = test::http_call(p2.port(), "GET", "/v1/pieces/d.bin");
    BOOST_TEST_REQUIRE(pieces.status == 200u);
    BOOST_TEST(d::decode_piece_hashes(pieces.body, content.size(), *d::digest_from_hex(root_of(1)))
                   .has_value());
    // The pieces came with the download (checked as they came); the file is read once more, in
    // the background, for its whole SHA-256, which was the sources' word until then.
    BOOST_TEST(test::eventually([&] { return hashed_bytes(p2) == content.size(); }));
    BOOST_TEST(source_of_peer(net.index_port(), "d.bin", 2).at("sha256").as_string() ==
               test::sha256_hex(content));
}

// A source whose SHA-256 is wrong but whose pieces make the right root (a damaged hash cache, a
// bug, a lie): the download is checked against the root and completes; the downloader hashes the
// file in the background and offers it with its true SHA-256, not the one it was told, and keeps
// only that in its hash cache.
BOOST_AUTO_TEST_CASE(a_sha256_told_by_the_sources_is_checked_after_the_download) {
    test::network net;
    const auto content = test::random_text(2 * MiB + 9, 305);
    const auto file = net / "p1" / "e.bin";
    test::write_file(file, content);
    struct stat st {};
    BOOST_TEST_REQUIRE(::stat(file.c_str(), &st) == 0);
    // Peer 1's hash cache gives the right pieces and root, and a wrong SHA-256.
    auto pieces = std::make_shared<std::vector<d::digest>>();
    for (std::size_t at = 0; at < content.size(); at += MiB)
        pieces->push_back(*d::digest_from_hex(test::sha256_hex(content.substr(at, MiB))));
    const auto root = d::merkle_root(*pieces);
    const auto wrong = *d::digest_from_hex(test::sha256_hex("not the content"));
    const d::hash_record record{"e.bin", d::stamp_of(st), wrong, root, pieces};
    test::write_file(net / "p1.hashes", d::encode_hash_cache(std::span(&record, 1)));
    auto options = net.options(1);
    options.hash_cache = net / "p1.hashes";
    net.start_peer(options);
    BOOST_TEST_REQUIRE(source_of_peer(net.index_port(), "e.bin", 1).at("sha256").as_string() ==
                       d::to_hex(wrong));
    auto options2 = net.options(2);
    options2.hash_cache = net / "p2.hashes";
    auto& p2 = net.start_peer(options2);
    const auto outcomes = net.io().run(p2.async_download({"e.bin"}));
    BOOST_TEST_REQUIRE(outcomes.size() == 1u);
    BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(test::read_file(net / "p2" / "e.bin") == content);
    BOOST_TEST(test::eventually([&] {
        return source_of_peer(net.index_port(), "e.bin", 2).at("sha256").as_string() ==
               test::sha256_hex(content);
    }));
    BOOST_TEST(source_of_peer(net.index_port(), "e.bin", 2).at("root").as_string() ==
               d::to_hex(root));
    BOOST_TEST(net.io().run(p2.async_sync()).code == boost::system::error_code{});
    const auto cached = d::decode_hash_cache(test::read_file(net / "p2.hashes"));
    BOOST_TEST_REQUIRE(cached.has_value());
    BOOST_TEST_REQUIRE(cached->size() == 1u);
    BOOST_TEST(d::to_hex(cached->front().sha256) == test::sha256_hex(content));
}

BOOST_AUTO_TEST_CASE(the_index_checks_a_root_when_given_and_keeps_none_when_not) {
    test::network net;
    const auto port = net.index_port();
    const std::string sha(64, 'a');
    const auto file = [&](const std::string& name, const std::string& root_field) {
        return R"({"name":")" + name + R"(","size":1,"sha256":")" + sha + "\"" + root_field + "}";
    };
    for (const std::string& bad :
         std::vector<std::string>{R"(,"root":"xyz")", R"(,"root":"")", R"(,"root":null)",
                                  R"(,"root":")" + std::string(64, 'B') + "\""}) {
        BOOST_TEST_CONTEXT(bad) {
            const auto r =
                test::http_call(port, "POST", "/v1/peers",
                                R"({"id":50,"port":5000,"files":[)" + file("r.txt", bad) + "]}");
            BOOST_TEST(r.status == 400u);
            BOOST_TEST(error_name(r) == "bad_field");
        }
    }
    // Without a root (a peer of an older version): registered, and looked up without one.
    const auto old = test::http_call(
        port, "POST", "/v1/peers", R"({"id":50,"port":5000,"files":[)" + file("r.txt", "") + "]}");
    BOOST_TEST(old.status == 201u);
    BOOST_TEST(!only_source(port, "r.txt").contains("root"));
    // With one: given back as it came.
    const std::string root(64, 'c');
    const auto with = test::http_call(
        port, "POST", "/v1/peers",
        R"({"id":51,"port":5001,"files":[)" + file("q.txt", R"(,"root":")" + root + "\"") + "]}");
    BOOST_TEST(with.status == 201u);
    BOOST_TEST(only_source(port, "q.txt").at("root").as_string() == root);
    // A file list with a bad root is refused too, and changes nothing.
    const auto token = std::string(boost::json::parse(with.body).at("token").as_string());
    const auto update = test::http_call(port, "PUT", "/v1/peers/51/files",
                                        R"({"files":[)" + file("q.txt", R"(,"root":"00")") + "]}",
                                        {{"Authorization", "Bearer " + token}});
    BOOST_TEST(update.status == 400u);
    BOOST_TEST(only_source(port, "q.txt").at("root").as_string() == root);
}

BOOST_AUTO_TEST_SUITE_END()
