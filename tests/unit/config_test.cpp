// config.hpp: the key=value files, durations and sizes.
#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>

using namespace std::string_literals;
using namespace std::chrono_literals;
using p2pshare::errc;

namespace p2pshare {
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) { return os << to_string(e); }
} // namespace p2pshare

namespace {

p2pshare::PeerConfig sample_peer() {
    p2pshare::PeerConfig c;
    c.id = 4294967295u;
    c.folder = "/srv/shared files/p1";
    c.listen = {"127.0.0.1", 40001};
    c.index = {"index.example.org", 1};
    c.token = std::string(32, 'f');
    return c;
}

void check_same(const p2pshare::PeerConfig& a, const p2pshare::PeerConfig& b) {
    BOOST_TEST(a.id == b.id);
    BOOST_TEST(a.folder == b.folder);
    BOOST_TEST((a.listen == b.listen));
    BOOST_TEST((a.index == b.index));
    BOOST_TEST(a.token == b.token);
}

} // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(key_values) {
    auto kv = p2pshare::parse_key_values(
        "# comment\n\n  a = 1 \r\nb=\n\t# indented comment\nc=x=y\n   \nd=last");
    BOOST_TEST_REQUIRE(kv.has_value());
    BOOST_TEST(kv->size() == 4u);
    BOOST_TEST(kv->at("a") == "1");
    BOOST_TEST(kv->at("b") == "");
    BOOST_TEST(kv->at("c") == "x=y");
    BOOST_TEST(kv->at("d") == "last");
    BOOST_TEST(p2pshare::parse_key_values("").has_value());
    BOOST_TEST(p2pshare::parse_key_values("").value().empty());
    for (const auto& bad : {"novalue\n"s, "a=1\na=2\n"s, "=1\n"s, " = x"s}) {
        BOOST_TEST_CONTEXT("text: " << bad) {
            auto r = p2pshare::parse_key_values(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == errc::bad_field);
        }
    }
}

BOOST_AUTO_TEST_CASE(server_config_round_trip) {
    const p2pshare::ServerAddress a{"127.0.0.1", 54321};
    const auto text = p2pshare::format_server_config(a);
    BOOST_TEST(text.find("port=54321") != std::string::npos);
    auto back = p2pshare::parse_server_config(text);
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == a));
}

BOOST_AUTO_TEST_CASE(server_config_comments_and_unknown_keys) {
    auto c = p2pshare::parse_server_config(
        "# written by hand\n\nversion=2\n host = ::1 \nport=65535\n# port=1\n");
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->host == "::1");
    BOOST_TEST(c->port == 65535);
}

BOOST_AUTO_TEST_CASE(server_config_errors) {
    for (const auto& bad :
         {""s, "host=a\n"s, "port=1\n"s, "host=\nport=1\n"s, "host=a\nport=\n"s,
          "host=a\nport=0\n"s, "host=a\nport=65536\n"s, "host=a\nport=-1\n"s, "host=a\nport=8o\n"s,
          "host=a\nport=1\nport=2\n"s, "host=a\nport=1\ngarbage\n"s}) {
        BOOST_TEST_CONTEXT("text: " << bad) {
            auto r = p2pshare::parse_server_config(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == errc::bad_field);
        }
    }
}

BOOST_AUTO_TEST_CASE(peer_config_round_trip) {
    const auto c = sample_peer();
    auto back = p2pshare::parse_peer_config(p2pshare::format_peer_config(c));
    BOOST_TEST_REQUIRE(back.has_value());
    check_same(*back, c);
    // Without a token (a peer that never registered).
    auto no_token = c;
    no_token.token.clear();
    no_token.id = 0;
    auto back2 = p2pshare::parse_peer_config(p2pshare::format_peer_config(no_token));
    BOOST_TEST_REQUIRE(back2.has_value());
    check_same(*back2, no_token);
}

BOOST_AUTO_TEST_CASE(peer_config_missing_keys_and_bad_values) {
    const auto good = p2pshare::format_peer_config(sample_peer());
    BOOST_TEST(p2pshare::parse_peer_config(good).has_value());
    // Dropping any required line makes it invalid.
    for (const auto* key : {"id=", "folder=", "host=", "port=", "index_host=", "index_port="}) {
        std::string text;
        std::size_t start = 0;
        while (start < good.size()) {
            const auto eol = good.find('\n', start);
            const auto line = good.substr(start, eol - start);
            if (line.rfind(key, 0) != 0) text += line + "\n";
            start = eol == std::string::npos ? good.size() : eol + 1;
        }
        BOOST_TEST_CONTEXT("without " << key) {
            auto r = p2pshare::parse_peer_config(text);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == errc::bad_field);
        }
    }
    const auto base = "folder=/x\nhost=h\nport=1\nindex_host=i\nindex_port=2\n"s;
    BOOST_TEST(p2pshare::parse_peer_config("id=3\n" + base).has_value());
    for (const auto& id : {"-1"s, "4294967296"s, "x"s, "1.5"s}) {
        BOOST_TEST(!p2pshare::parse_peer_config("id=" + id + "\n" + base).has_value());
    }
    BOOST_TEST(!p2pshare::parse_peer_config(
                    "id=1\nfolder=/x\nhost=h\nport=0\nindex_host=i\nindex_port=2\n")
                    .has_value());
    BOOST_TEST(!p2pshare::parse_peer_config(
                    "id=1\nfolder=/x\nhost=h\nport=1\nindex_host=i\nindex_port=65536\n")
                    .has_value());
}

BOOST_AUTO_TEST_CASE(files_on_disk) {
    p2pshare::test::temp_dir dir;
    const auto file = dir / "sub" / "dir" / "server.config";
    BOOST_TEST(!p2pshare::write_file_atomically(
        file, p2pshare::format_server_config({"127.0.0.1", 9000})));
    auto read = p2pshare::read_server_config(file);
    BOOST_TEST_REQUIRE(read.has_value());
    BOOST_TEST(read->port == 9000);
    // Overwriting replaces the content and leaves no temporary file behind.
    BOOST_TEST(!p2pshare::write_file_atomically(
        file, p2pshare::format_server_config({"127.0.0.1", 9001})));
    BOOST_TEST(p2pshare::read_server_config(file).value().port == 9001);
    int entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(file.parent_path()))
        ++entries;
    BOOST_TEST(entries == 1);

    const auto peer_file = dir / "p1.config";
    BOOST_TEST(
        !p2pshare::write_file_atomically(peer_file, p2pshare::format_peer_config(sample_peer())));
    auto peer = p2pshare::read_peer_config(peer_file);
    BOOST_TEST_REQUIRE(peer.has_value());
    check_same(*peer, sample_peer());

    auto missing = p2pshare::read_server_config(dir / "nope.config");
    BOOST_TEST_REQUIRE(!missing.has_value());
    BOOST_TEST(missing.error() == errc::not_found);
}

BOOST_AUTO_TEST_CASE(parse_duration_cases) {
    const auto ms = [](std::string_view t) {
        auto r = p2pshare::parse_duration(t);
        BOOST_TEST_REQUIRE(r.has_value(), "duration '" << t << "' refused");
        return r->count();
    };
    BOOST_TEST(ms("30s") == 30'000);
    BOOST_TEST(ms("30") == 30'000);
    BOOST_TEST(ms("500ms") == 500);
    BOOST_TEST(ms("2m") == 120'000);
    BOOST_TEST(ms("2min") == 120'000);
    BOOST_TEST(ms("1h") == 3'600'000);
    BOOST_TEST(ms("0") == 0);
    BOOST_TEST(ms(" 7s ") == 7'000);
    for (const auto* bad :
         {"", "s", "abc", "1x", "1 s", "-1s", "1.5s", "10S", "1ms2", "1d", "1000000001ms"}) {
        BOOST_TEST_CONTEXT("text: '" << bad << "'") {
            auto r = p2pshare::parse_duration(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == errc::bad_field);
        }
    }
}

BOOST_AUTO_TEST_CASE(parse_size_cases) {
    const auto bytes = [](std::string_view t) {
        auto r = p2pshare::parse_size(t);
        BOOST_TEST_REQUIRE(r.has_value(), "size '" << t << "' refused");
        return *r;
    };
    BOOST_TEST(bytes("0") == 0u);
    BOOST_TEST(bytes("2048") == 2048u);
    BOOST_TEST(bytes("2048b") == 2048u);
    BOOST_TEST(bytes("2kb") == 2048u);
    BOOST_TEST(bytes("2KiB") == 2048u);
    BOOST_TEST(bytes("2k") == 2048u);
    BOOST_TEST(bytes("1MiB") == 1048576u);
    BOOST_TEST(bytes("1mb") == 1048576u);
    BOOST_TEST(bytes("1g") == 1073741824u);
    BOOST_TEST(bytes("3 GB") == 3221225472u);
    BOOST_TEST(bytes("18446744073709551615") == 18446744073709551615ull);
    BOOST_TEST(bytes("17179869183g") == 17179869183ull << 30);
    for (const auto* bad :
         {"", "kb", "1tb", "1.5mb", "-1", "18446744073709551616", "17179869184g", "1 k b"}) {
        BOOST_TEST_CONTEXT("text: '" << bad << "'") {
            auto r = p2pshare::parse_size(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error() == errc::bad_field);
        }
    }
}

BOOST_AUTO_TEST_CASE(files_are_written_whole_and_a_private_one_for_its_owner_only) {
    namespace fs = std::filesystem;
    p2pshare::test::temp_dir dir;
    const auto shared = dir / "sub" / "server.config";
    const auto secret = dir / "p1.config";
    BOOST_TEST(!p2pshare::write_file_atomically(shared, "host=a\nport=1\n"));
    BOOST_TEST(!p2pshare::write_file_atomically(secret, "token=x\n", true));
    BOOST_TEST(p2pshare::test::read_file(shared) == "host=a\nport=1\n");
    BOOST_TEST(p2pshare::test::read_file(secret) == "token=x\n");
    const auto others = fs::perms::group_all | fs::perms::others_all;
    BOOST_TEST(((fs::status(secret).permissions() & others) == fs::perms::none));
    BOOST_TEST(((fs::status(secret).permissions() & fs::perms::owner_read) != fs::perms::none));
    // Rewriting replaces the content and leaves no temporary file behind.
    BOOST_TEST(!p2pshare::write_file_atomically(secret, "token=y\n", true));
    BOOST_TEST(p2pshare::test::read_file(secret) == "token=y\n");
    BOOST_TEST(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}) == 2);
}

BOOST_AUTO_TEST_SUITE_END()
