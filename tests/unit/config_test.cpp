// config.hpp: the key=value files, durations and sizes.
#include "unit_common.hpp"

#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

using namespace std::string_literals;
using namespace std::chrono_literals;
using p2pshare::errc;

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
            BOOST_TEST(r.error().code == errc::bad_field);
        }
    }
}

using addresses = std::vector<p2pshare::ServerAddress>;

BOOST_AUTO_TEST_CASE(server_config_round_trip) {
    const p2pshare::ServerAddress a{"127.0.0.1", 54321};
    const auto text = p2pshare::format_server_config(a);
    // One address (what an index server writes) in the form of the first versions, which every
    // peer reads.
    BOOST_TEST(text.find("\nhost=127.0.0.1\nport=54321\n") != std::string::npos, text);
    BOOST_TEST(text.find("index=") == std::string::npos, text);
    auto back = p2pshare::parse_server_config(text);
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == addresses{a}));
    BOOST_TEST(p2pshare::format_server_config(addresses{a}) == text);
}

BOOST_AUTO_TEST_CASE(server_config_with_several_index_servers_round_trip) {
    const addresses list{{"10.0.0.1", 4000}, {"::1", 4001}, {"index.example.org", 1}};
    const auto text = p2pshare::format_server_config(list);
    BOOST_TEST(text.find("\nindex=10.0.0.1:4000\nindex=[::1]:4001\nindex=index.example.org:1\n") !=
                   std::string::npos,
               text);
    BOOST_TEST(text.find("host=") == std::string::npos, text);
    auto back = p2pshare::parse_server_config(text);
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == list));
}

BOOST_AUTO_TEST_CASE(server_config_lists_index_servers_in_order) {
    const auto ok = [](std::string_view text) {
        auto r = p2pshare::parse_server_config(text);
        BOOST_TEST_REQUIRE(r.has_value(), text << ": " << (r ? "" : r.error().message));
        return *r;
    };
    // One line per index server, comments between them; one line may also list several.
    BOOST_TEST((ok("# preferred first\nindex=a:1\n\n# the backup\n  index = b:2 \n"
                   "index=[::1]:3, c.example.org:4\n") ==
                addresses{{"a", 1}, {"b", 2}, {"::1", 3}, {"c.example.org", 4}}));
    BOOST_TEST((ok("index=a:1\n") == addresses{{"a", 1}}));
    // The old pair is one address, before those of the index lines wherever it is written.
    BOOST_TEST((ok("host=a\nport=1\n") == addresses{{"a", 1}}));
    BOOST_TEST(
        (ok("index=b:2\nhost=a\nport=1\nindex=c:3\n") == addresses{{"a", 1}, {"b", 2}, {"c", 3}}));
    // Unknown keys are still ignored.
    BOOST_TEST((ok("version=3\nindex=a:1\nweight=2\n") == addresses{{"a", 1}}));
}

BOOST_AUTO_TEST_CASE(server_config_comments_and_unknown_keys) {
    auto c = p2pshare::parse_server_config(
        "# written by hand\n\nversion=2\n host = ::1 \nport=65535\n# port=1\n");
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST_REQUIRE(c->size() == 1u);
    BOOST_TEST(c->front().host == "::1");
    BOOST_TEST(c->front().port == 65535);
}

BOOST_AUTO_TEST_CASE(server_config_errors) {
    for (const auto& bad : {""s,
                            "host=a\n"s,
                            "port=1\n"s,
                            "host=\nport=1\n"s,
                            "host=a\nport=\n"s,
                            "host=a\nport=0\n"s,
                            "host=a\nport=65536\n"s,
                            "host=a\nport=-1\n"s,
                            "host=a\nport=8o\n"s,
                            "host=a\nport=1\nport=2\n"s,
                            "host=a\nport=1\ngarbage\n"s,
                            "# nothing\n"s,
                            "index=\n"s,
                            "index=a\n"s,
                            "index=a:0\n"s,
                            "index=a:1,\n"s,
                            "index=,a:1\n"s,
                            "index=a:1,,b:2\n"s,
                            "index=::1:2\n"s,
                            "index=a:1\nindex=b\n"s,
                            "index=a:1\nhost=b\n"s,
                            "index=a:1\nport=2\n"s,
                            "index=a:1 b:2\n"s,
                            "index=a:1\nhost=b\nhost=c\nport=1\n"s}) {
        BOOST_TEST_CONTEXT("text: " << bad) {
            auto r = p2pshare::parse_server_config(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == errc::bad_field);
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
            BOOST_TEST(r.error().code == errc::bad_field);
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
    BOOST_TEST((*read == addresses{{"127.0.0.1", 9000}}));
    // Overwriting replaces the content and leaves no temporary file behind.
    BOOST_TEST(!p2pshare::write_file_atomically(
        file, p2pshare::format_server_config({"127.0.0.1", 9001})));
    BOOST_TEST(p2pshare::read_server_config(file).value().front().port == 9001);
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
    BOOST_TEST(missing.error().code == errc::not_found);
    BOOST_TEST(missing.error().message.find("nope.config") != std::string::npos,
               missing.error().message);
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
            BOOST_TEST(r.error().code == errc::bad_field);
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
            BOOST_TEST(r.error().code == errc::bad_field);
        }
    }
}

BOOST_AUTO_TEST_CASE(messages_name_the_file_the_line_and_the_problem) {
    const auto message = [](const auto& r) {
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().code == errc::bad_field);
        return r.error().message;
    };
    const auto good = "id=1\nfolder=/x\nhost=h\nport=1\nindex_host=i\nindex_port=2\n"s;
    BOOST_TEST(message(p2pshare::parse_peer_config("# p1\nid=1\nfolder=/x\nhost=h\nport=70000\n",
                                                   "p1.config")) ==
               R"(p1.config:5: "port" is not a number 1-65535)");
    BOOST_TEST(message(p2pshare::parse_peer_config("id=x\n" + good.substr(5), "p1.config")) ==
               R"(p1.config:1: "id" is not a number 0-4294967295)");
    BOOST_TEST(message(p2pshare::parse_peer_config(good + "\ngarbage\n", "p1.config")) ==
               "p1.config:8: a line must be key=value (or a # comment)");
    BOOST_TEST(message(p2pshare::parse_peer_config(good + "port=3\n", "p1.config")) ==
               R"(p1.config:7: "port" is given twice (also on line 4))");
    BOOST_TEST(message(p2pshare::parse_peer_config(good + " = 3\n", "p1.config")) ==
               "p1.config:7: no key before the '='");
    BOOST_TEST(message(p2pshare::parse_peer_config("id=1\n", "p1.config")) ==
               R"(p1.config: "folder" is missing)");
    BOOST_TEST(message(p2pshare::parse_server_config("host=\nport=1\n", "server.config")) ==
               R"(server.config:1: "host" is empty)");
    // Without a file name, the line alone.
    BOOST_TEST(message(p2pshare::parse_server_config("host=a\n\n\nport=x\n")) ==
               R"(line 4: "port" is not a number 1-65535)");
    // The index lines of server.config.
    BOOST_TEST(message(p2pshare::parse_server_config("# p2pshare\n", "server.config")) ==
               R"(server.config: "index" is missing (or "host" and "port"))");
    BOOST_TEST(message(p2pshare::parse_server_config("index=a:1\nindex=b\n", "server.config")) ==
               R"(server.config:2: "index": 'b' is not HOST:PORT: no ':' before the port)");
    BOOST_TEST(message(p2pshare::parse_server_config("\nindex=a:1,\n", "server.config")) ==
               R"(server.config:2: "index": 'a:1,' has an empty address (HOST:PORT, separated )"
               R"(by commas))");
    BOOST_TEST(message(p2pshare::parse_server_config("index=\n", "server.config")) ==
               R"(server.config:1: "index" is empty)");
    BOOST_TEST(message(p2pshare::parse_server_config("index=a:1\nhost=b\n", "server.config")) ==
               R"(server.config: "port" is missing)");
    // Only index may be repeated.
    BOOST_TEST(message(p2pshare::parse_server_config("index=a:1\nindex=b:2\nport=1\nport=2\n",
                                                     "server.config")) ==
               R"(server.config:4: "port" is given twice (also on line 3))");
    BOOST_TEST(message(p2pshare::parse_peer_config(good + "index=a:1\nindex=b:2\n", "p1.config")) ==
               R"(p1.config:8: "index" is given twice (also on line 7))");
    BOOST_TEST(message(p2pshare::parse_key_values("a=1\nb\n")) ==
               "line 2: a line must be key=value (or a # comment)");
}

BOOST_AUTO_TEST_CASE(a_file_that_cannot_be_parsed_is_reported_by_its_path_and_line) {
    p2pshare::test::temp_dir dir;
    const auto file = dir / "p7.config";
    BOOST_TEST(!p2pshare::write_file_atomically(
        file, "id=7\nfolder=p7\nhost=127.0.0.1\nport=5007\nindex_host=127.0.0.1\nindex_port=0\n"));
    const auto r = p2pshare::read_peer_config(file);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().code == errc::bad_field);
    BOOST_TEST(r.error().message == file.string() + R"(:6: "index_port" is not a number 1-65535)");
    // Reading never changes the file.
    BOOST_TEST(p2pshare::test::read_file(file).find("index_port=0\n") != std::string::npos);
    const auto server = dir / "config" / "server.config";
    BOOST_TEST(!p2pshare::write_file_atomically(server, "host=127.0.0.1\nport=12345\nport=1\n"));
    const auto s = p2pshare::read_server_config(server);
    BOOST_TEST_REQUIRE(!s.has_value());
    BOOST_TEST(s.error().message ==
               server.string() + R"(:3: "port" is given twice (also on line 2))");
}

BOOST_AUTO_TEST_CASE(host_port_lists) {
    const auto ok = [](std::string_view text) {
        auto r = p2pshare::parse_host_port_list(text);
        BOOST_TEST_REQUIRE(r.has_value(),
                           "'" << text << "' refused: " << (r ? "" : r.error().message));
        return *r;
    };
    BOOST_TEST((ok("127.0.0.1:4000") == addresses{{"127.0.0.1", 4000}}));
    BOOST_TEST((ok("a:1,b:2") == addresses{{"a", 1}, {"b", 2}}));
    BOOST_TEST((ok(" [::1]:1 ,\tb:2 ") == addresses{{"::1", 1}, {"b", 2}}));
    BOOST_TEST((ok("a:1,a:1") == addresses{{"a", 1}, {"a", 1}})); // as written
    for (const auto& bad : {""s, ","s, "a:1,"s, ",a:1"s, "a:1,,b:2"s, "a:1,b"s, "a:1;b:2"s,
                            "a:1 b:2"s, "::1:2,a:1"s, "a:1,b:65536"s}) {
        BOOST_TEST_CONTEXT("text: '" << bad << "'") {
            auto r = p2pshare::parse_host_port_list(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == errc::bad_field);
        }
    }
    BOOST_TEST(p2pshare::parse_host_port_list("a:1,b").error().message ==
               "'b' is not HOST:PORT: no ':' before the port");
}

BOOST_AUTO_TEST_CASE(host_port_forms) {
    const auto ok = [](std::string_view text) {
        auto r = p2pshare::parse_host_port(text);
        BOOST_TEST_REQUIRE(r.has_value(),
                           "'" << text << "' refused: " << (r ? "" : r.error().message));
        return *r;
    };
    BOOST_TEST((ok("127.0.0.1:4000") == p2pshare::ServerAddress{"127.0.0.1", 4000}));
    BOOST_TEST((ok("index.example.org:1") == p2pshare::ServerAddress{"index.example.org", 1}));
    BOOST_TEST((ok("[::1]:65535") == p2pshare::ServerAddress{"::1", 65535}));
    BOOST_TEST((ok("[fe80::1:2]:80") == p2pshare::ServerAddress{"fe80::1:2", 80}));
    for (const auto* bad : {"", ":80", "host", "host:", "host:0", "host:65536", "host:-1",
                            "host:8o", "host:80 ", "::1:80", "[::1]", "[::1]80", "[::1:80", "[]:80",
                            "[host]:80", "a/b:80", "a b:80", "host:+80"}) {
        BOOST_TEST_CONTEXT("text: '" << bad << "'") {
            auto r = p2pshare::parse_host_port(bad);
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == errc::bad_field);
            BOOST_TEST(r.error().message.find("HOST:PORT") != std::string::npos);
        }
    }
    BOOST_TEST(p2pshare::parse_host_port("::1:80").error().message.find("[::1]:4000") !=
               std::string::npos);
    // Printed so that parse_host_port reads it back; IPv6 in brackets.
    for (const p2pshare::ServerAddress& a :
         {p2pshare::ServerAddress{"127.0.0.1", 80}, p2pshare::ServerAddress{"::1", 4000},
          p2pshare::ServerAddress{"h.example", 65535}}) {
        BOOST_TEST((ok(p2pshare::to_string(a)) == a));
    }
    BOOST_TEST(p2pshare::to_string({"::1", 4000}) == "[::1]:4000");
    BOOST_TEST(p2pshare::to_string({"10.0.0.1", 5}) == "10.0.0.1:5");
}

BOOST_AUTO_TEST_CASE(duration_and_size_messages_quote_the_text) {
    BOOST_TEST(p2pshare::parse_duration("3d").error().message.find("'3d'") != std::string::npos);
    BOOST_TEST(p2pshare::parse_size("1tb").error().message.find("'1tb'") != std::string::npos);
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
