// End to end: the real indexserver, peer and filegen executables in a fresh folder per test, the
// way a user runs them (config/server.config, pN folders and pN.config all land in that folder).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace p2pshare;

namespace {

const std::string file_a = "2KiB-1.txt";
const std::string file_b = "2KiB-2.txt";

using test::run_result;

/// Runs `peer args...` in `cwd` to its end, feeding it `input` and then the end of input.
run_result run_peer(const fs::path& cwd, const std::vector<std::string>& args,
                    const std::string& input = {}) {
    return test::run_app("peer", args, cwd, input);
}

/// The last line of `out`, parsed as JSON (the --json output is one object on one line).
json::object last_json(const std::string& out) {
    auto end = out.find_last_not_of('\n');
    if (end == std::string::npos) throw std::runtime_error("no output");
    const auto begin = out.rfind('\n', end);
    const auto line = out.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin + 1));
    return json::parse(line).as_object();
}

/// The "results" of a get/rm --json answer, by file name: {status, message}.
std::map<std::string, json::object> results_by_name(const json::object& o) {
    std::map<std::string, json::object> out;
    for (const auto& e : o.at("results").as_array()) {
        const auto& entry = e.as_object();
        out[std::string(entry.at("name").as_string())] = entry;
    }
    return out;
}

std::string field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string{};
}

/// `peer --id N serve` in `cwd`, once it says it is serving.
std::unique_ptr<test::child> serve(const fs::path& cwd, std::uint32_t id,
                                   std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--id", std::to_string(id), "serve"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto c = std::make_unique<test::child>(test::app_path("peer"), args, cwd);
    const auto line = c->wait_for_line("serving");
    BOOST_TEST_REQUIRE(line.find("peer " + std::to_string(id) + " serving") != std::string::npos,
                       line);
    return c;
}

/// A fresh folder with `indexserver --port 0` running in it.
struct network {
    test::temp_dir dir;
    std::unique_ptr<test::child> index;
    std::uint16_t port = 0;

    network() {
        index = std::make_unique<test::child>(test::app_path("indexserver"),
                                              std::vector<std::string>{"--port", "0"}, dir.path());
        const auto line = index->wait_for_line("listening on");
        port = static_cast<std::uint16_t>(std::stoul(line.substr(line.rfind(':') + 1)));
        BOOST_TEST_REQUIRE(port != 0u, line);
        BOOST_TEST_REQUIRE(fs::exists(dir / "config" / "server.config"));
    }

    /// filegen: two 2 KiB files (file_a, file_b) in folder `folder`.
    void generate(const std::string& folder) {
        test::child c(
            test::app_path("filegen"),
            {"--dirs", folder, "--sizes", "2kb", "--count", "2", "--seed", "1", "--quiet"},
            dir.path());
        c.close_stdin();
        BOOST_TEST_REQUIRE(c.wait() == 0, c.error_output());
        BOOST_TEST_REQUIRE(fs::file_size(dir / folder / file_a) == 2048u);
        BOOST_TEST_REQUIRE(fs::file_size(dir / folder / file_b) == 2048u);
    }

    /// The number of peers the index lists now.
    std::int64_t peer_count() const {
        const auto reply = test::http_call(port, "GET", "/v1/health");
        BOOST_TEST_REQUIRE(reply.status == 200u, reply.body);
        return json::parse(reply.body).as_object().at("peers").to_number<std::int64_t>();
    }

    /// The ids of the peers the index gives as sources of `name`.
    std::set<std::int64_t> sources(const std::string& name) const {
        const auto reply =
            test::http_call(port, "POST", "/v1/lookup", R"({"names":[")" + name + R"("]})",
                            {{"Content-Type", "application/json"}});
        BOOST_TEST_REQUIRE(reply.status == 200u, reply.body);
        std::set<std::int64_t> ids;
        const auto body = json::parse(reply.body);
        const auto& result = body.as_object().at("results").as_array().at(0).as_object();
        for (const auto& s : result.at("sources").as_array()) {
            ids.insert(s.as_object().at("id").to_number<std::int64_t>());
        }
        return ids;
    }
};

/// `indexserver --port 0 ARGS...` running in `cwd`, and the port it listens on.
std::pair<std::unique_ptr<test::child>, std::uint16_t> start_indexserver(
    const fs::path& cwd, std::vector<std::string> args) {
    args.insert(args.begin(), {"--port", "0"});
    auto index = std::make_unique<test::child>(test::app_path("indexserver"), args, cwd);
    const auto line = index->wait_for_line("listening on");
    const auto port = static_cast<std::uint16_t>(std::stoul(line.substr(line.rfind(':') + 1)));
    BOOST_TEST_REQUIRE(port != 0u, line);
    return {std::move(index), port};
}

/// The number of peers the index on `port` lists now.
std::int64_t peers_at(std::uint16_t port) {
    const auto reply = test::http_call(port, "GET", "/v1/health");
    BOOST_TEST_REQUIRE(reply.status == 200u, reply.body);
    return json::parse(reply.body).as_object().at("peers").to_number<std::int64_t>();
}

/// A port of 127.0.0.1 on which nothing listens (it was free a moment ago).
std::uint16_t closed_port() {
    test::temp_dir scratch;
    auto [index, port] = start_indexserver(scratch.path(), {});
    index->signal(SIGKILL);
    index->wait();
    return port;
}

std::set<std::string> file_list(const json::object& o) {
    std::set<std::string> names;
    for (const auto& n : o.at("files").as_array())
        names.emplace(n.as_string());
    return names;
}

} // namespace

// ---- subcommands -------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(e2e_subcommands)

BOOST_FIXTURE_TEST_CASE(list_get_rm_with_json, network) {
    generate("p2");
    const auto original_a = test::read_file(dir / "p2" / file_a);
    const auto original_b = test::read_file(dir / "p2" / file_b);
    auto p2 = serve(dir.path(), 2);

    // list: every name in the network.
    auto r = run_peer(dir.path(), {"--id", "1", "list", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST((file_list(last_json(r.out)) == std::set<std::string>{file_a, file_b}), r.out);

    // get: two found, one missing; exit 1 because one failed.
    r = run_peer(dir.path(), {"--id", "1", "get", file_a, file_b, "missing.txt", "--json"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    auto results = results_by_name(last_json(r.out));
    BOOST_TEST_REQUIRE(results.size() == 3u, r.out);
    BOOST_TEST(field(results[file_a], "status") == "downloaded", r.out);
    BOOST_TEST(field(results[file_b], "status") == "downloaded", r.out);
    BOOST_TEST(results[file_a].at("source_peer").to_number<std::int64_t>() == 2, r.out);
    BOOST_TEST(results[file_a].at("size").to_number<std::int64_t>() == 2048, r.out);
    BOOST_TEST(field(results["missing.txt"], "status") == "not_found", r.out);
    BOOST_TEST(test::read_file(dir / "p1" / file_a) == original_a);
    BOOST_TEST(test::read_file(dir / "p1" / file_b) == original_b);
    BOOST_TEST(!fs::exists(dir / "p1" / "missing.txt"));
    // The subcommand left the index when it was done: only peer 2 is listed.
    BOOST_TEST(peer_count() == 1);
    BOOST_TEST((sources(file_a) == std::set<std::int64_t>{2}));

    // get again: the file exists, is not overwritten, exit 1.
    const std::string edited = "edited by hand\n";
    test::write_file(dir / "p1" / file_a, edited);
    r = run_peer(dir.path(), {"--id", "1", "get", file_a, "--json"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    results = results_by_name(last_json(r.out));
    BOOST_TEST(field(results[file_a], "status") == "failed", r.out);
    BOOST_TEST(field(results[file_a], "message").find("exists") != std::string::npos, r.out);
    BOOST_TEST(test::read_file(dir / "p1" / file_a) == edited);

    // rm: deletes a file of p1 (not of p2), exit 0; an unknown name gives exit 1.
    r = run_peer(dir.path(), {"--id", "1", "rm", file_a, "--json"});
    BOOST_TEST(r.status == 0, r.out << r.err);
    results = results_by_name(last_json(r.out));
    BOOST_TEST(field(results[file_a], "status") == "deleted", r.out);
    BOOST_TEST(!fs::exists(dir / "p1" / file_a));
    BOOST_TEST(fs::exists(dir / "p1" / file_b));
    BOOST_TEST(test::read_file(dir / "p2" / file_a) == original_a);

    r = run_peer(dir.path(), {"--id", "1", "rm", "nope", "--json"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    results = results_by_name(last_json(r.out));
    BOOST_TEST(field(results["nope"], "status") == "not_found", r.out);

    p2->signal(SIGTERM);
    BOOST_TEST(p2->wait() == 0, p2->error_output());
}

BOOST_FIXTURE_TEST_CASE(json_failures_carry_the_error_names_of_the_protocol, network) {
    generate("p2");
    auto p2 = serve(dir.path(), 2);
    const std::string edited = "edited by hand\n";
    test::write_file(dir / "p1" / file_a, edited);

    // A name nobody shares and a name that already exists here: each failure has its name.
    auto r = run_peer(dir.path(), {"--id", "1", "get", "nobody-shares.txt", file_a, "--json"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    BOOST_TEST(r.out.find(R"("error":"no_sources")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("error":"exists")") != std::string::npos, r.out);
    auto results = results_by_name(last_json(r.out));
    BOOST_TEST_REQUIRE(results.size() == 2u, r.out);
    BOOST_TEST(field(results["nobody-shares.txt"], "status") == "not_found", r.out);
    BOOST_TEST(field(results["nobody-shares.txt"], "error") == "no_sources", r.out);
    BOOST_TEST(field(results[file_a], "status") == "failed", r.out);
    BOOST_TEST(field(results[file_a], "error") == "exists", r.out);
    BOOST_TEST(!field(results[file_a], "message").empty(), r.out);
    BOOST_TEST(!fs::exists(dir / "p1" / "nobody-shares.txt"));
    BOOST_TEST(test::read_file(dir / "p1" / file_a) == edited);

    // rm of a name the folder does not have.
    r = run_peer(dir.path(), {"--id", "1", "rm", "nobody-shares.txt", "--json"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    results = results_by_name(last_json(r.out));
    BOOST_TEST(field(results["nobody-shares.txt"], "error") == "not_found", r.out);

    p2->signal(SIGTERM);
    BOOST_TEST(p2->wait() == 0, p2->error_output());
}

BOOST_FIXTURE_TEST_CASE(usage_errors_exit_2_and_help_exits_0, network) {
    const auto usage = [&](const std::vector<std::string>& args, const std::string& message) {
        const auto r = run_peer(dir.path(), args);
        BOOST_TEST(r.status == 2, r.out << r.err);
        BOOST_TEST(r.err.find(message) != std::string::npos, r.err);
        BOOST_TEST(r.out.empty(), r.out);
    };
    usage({"--id", "1", "get"}, "get needs at least one file name");
    usage({"--id", "1", "rm"}, "rm needs at least one file name");
    usage({"--id", "1", "bogus"}, "unknown command 'bogus'");
    usage({"--id", "x", "list"}, "--id: 'x' is not a number");
    usage({"list"}, "list needs --id");
    usage({"--id", "1", "list", "--no-such-option"}, "no-such-option");
    // None of them started a peer.
    BOOST_TEST(!fs::exists(dir / "p1"));
    BOOST_TEST(peer_count() == 0);

    const auto help = run_peer(dir.path(), {"--help"});
    BOOST_TEST(help.status == 0, help.err);
    BOOST_TEST(help.out.find("Usage:") != std::string::npos, help.out);
    BOOST_TEST(help.out.find("peer --id N get NAME...") != std::string::npos, help.out);
}

// get --json of a file three peers share: each source with its peer, bytes, bad pieces and ban
// (what the issue's users script against); --sources 1 takes it from one of them only.
BOOST_FIXTURE_TEST_CASE(get_json_lists_the_sources_of_each_file, network) {
    const auto content = test::random_text(4 * 1024 * 1024 + 5, 77); // five pieces
    std::vector<std::unique_ptr<test::child>> peers;
    for (std::uint32_t id = 2; id <= 4; ++id) {
        test::write_file(dir / ("p" + std::to_string(id)) / "big.bin", content);
        peers.push_back(serve(dir.path(), id));
    }
    BOOST_TEST_REQUIRE(test::eventually([&] { return sources("big.bin").size() == 3u; }));
    const auto check = [&](const std::string& sources_option, std::size_t at_most) {
        fs::remove(dir / "p1" / "big.bin");
        const auto r = run_peer(
            dir.path(), {"--id", "1", "get", "big.bin", "--json", "--sources", sources_option});
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
        auto results = results_by_name(last_json(r.out));
        BOOST_TEST_REQUIRE(results.size() == 1u, r.out);
        const auto& o = results["big.bin"];
        BOOST_TEST(field(o, "status") == "downloaded", r.out);
        const auto& list = o.at("sources").as_array();
        BOOST_TEST((list.size() >= 1u && list.size() <= at_most), r.out);
        std::uint64_t bytes = 0;
        std::set<std::int64_t> ids;
        for (const auto& e : list) {
            const auto& source = e.as_object();
            ids.insert(source.at("peer").to_number<std::int64_t>());
            bytes += source.at("bytes").to_number<std::uint64_t>();
            BOOST_TEST(source.at("bad_pieces").to_number<std::int64_t>() == 0, r.out);
            BOOST_TEST(source.at("banned").as_bool() == false, r.out);
        }
        BOOST_TEST(ids.size() == list.size(), r.out);
        for (const auto id : ids)
            BOOST_TEST((id >= 2 && id <= 4), r.out);
        BOOST_TEST(bytes == content.size(), r.out); // every byte counted once
        BOOST_TEST(test::read_file(dir / "p1" / "big.bin") == content);
    };
    check("3", 3);
    check("1", 1);
}

BOOST_FIXTURE_TEST_CASE(the_progress_bar_shows_bytes_speed_and_sources_on_a_terminal, network) {
    // Three sources capped at 2 MiB/s each: the download takes over a second, time for several
    // redraws (at most ten a second) with all three sending.
    const auto content = test::random_text(8 * 1024 * 1024 + 5, 78);
    std::vector<std::unique_ptr<test::child>> peers;
    for (std::uint32_t id = 2; id <= 4; ++id) {
        test::write_file(dir / ("p" + std::to_string(id)) / "big.bin", content);
        peers.push_back(serve(dir.path(), id, {"--max-upload-rate", "2MiB"}));
    }
    BOOST_TEST_REQUIRE(test::eventually([&] { return sources("big.bin").size() == 3u; }));
    test::child get(test::app_path("peer"), {"--id", "1", "get", "big.bin", "--sources", "3"},
                    dir.path(), test::child::out_to::terminal);
    get.close_stdin();
    BOOST_TEST_REQUIRE(get.wait() == 0, get.output() << get.error_output());
    BOOST_TEST(test::read_file(dir / "p1" / "big.bin") == content);

    // Each redraw starts with a carriage return and an erase of the line.
    const std::string erase = "\r\033[K";
    const auto& out = get.output();
    std::vector<std::string> frames;
    for (auto at = out.find(erase); at != std::string::npos;) {
        const auto from = at + erase.size();
        const auto next = out.find(erase, from);
        frames.push_back(out.substr(from, next == std::string::npos ? next : next - from));
        at = next;
    }
    BOOST_TEST_REQUIRE(frames.size() >= 3u, out);
    // The last erase clears the bar before the result is printed.
    BOOST_TEST(frames.back().find("downloaded big.bin") != std::string::npos, out);
    frames.pop_back();
    const std::regex bar(
        R"(  \[([#.]{30})\] (\S+ \S+) / 8\.0 MiB  (\S+ \S+/s|-)  left \S+  \(1 files, (\d) sources\))");
    std::size_t most_sources = 0;
    std::size_t with_speed = 0;
    std::size_t filled = 0;
    for (const auto& f : frames) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(f, m, bar), "not a progress line: '" << f << "'");
        const auto hashes = static_cast<std::size_t>(std::count(m[1].first, m[1].second, '#'));
        BOOST_TEST(hashes >= filled, out); // it only moves forward
        filled = hashes;
        if (m[3].str() != "-") ++with_speed;
        most_sources = std::max<std::size_t>(most_sources, std::stoul(m[4].str()));
    }
    BOOST_TEST(with_speed >= 1u, out);
    BOOST_TEST(most_sources >= 2u, out); // several sources sending at once were counted
    BOOST_TEST(most_sources <= 3u, out);
    // The last drawing is the whole file, with no source sending any more.
    BOOST_TEST(frames.back().find("8.0 MiB / 8.0 MiB") != std::string::npos, out);
    BOOST_TEST(frames.back().find("(1 files, 0 sources)") != std::string::npos, out);
    BOOST_TEST(filled == 30u, out);

    // Not on a terminal (a pipe), no bar is drawn.
    fs::remove(dir / "p1" / "big.bin");
    const auto r = run_peer(dir.path(), {"--id", "1", "get", "big.bin"});
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST(r.out.find(erase) == std::string::npos, r.out);
    BOOST_TEST(r.out.find("downloaded big.bin") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the interactive menu ----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(e2e_menu)

BOOST_FIXTURE_TEST_CASE(menu_asks_the_id_then_lists_downloads_deletes_and_quits, network) {
    generate("p2");
    auto p2 = serve(dir.path(), 2);

    test::child p1(test::app_path("peer"), {}, dir.path());
    // A bad id is refused and asked again.
    p1.write_stdin("abc\n");
    BOOST_TEST(p1.wait_for_line("is not a peer id").find("'abc'") != std::string::npos,
               p1.output());
    p1.write_stdin("1\n");
    BOOST_TEST(p1.wait_for_line("p2pshare peer 1: sharing").find("p1") != std::string::npos);
    p1.wait_for_line("4  quit");
    {
        const auto& out = p1.output();
        std::size_t prompts = 0;
        for (auto pos = out.find("Peer id ("); pos != std::string::npos;
             pos = out.find("Peer id (", pos + 1)) {
            ++prompts;
        }
        BOOST_TEST(prompts == 2u, out);
    }

    // The output since `mark`, once the menu is shown again.
    const auto step = [&p1](const std::string& input) {
        const auto mark = p1.output().size();
        p1.write_stdin(input);
        p1.wait_for_line("4  quit");
        return p1.output().substr(mark);
    };

    auto out = step("1\n");
    BOOST_TEST(out.find("2 files in the network:") != std::string::npos, out);
    BOOST_TEST(out.find("  " + file_a + "\n") != std::string::npos, out);
    BOOST_TEST(out.find("  " + file_b + "\n") != std::string::npos, out);

    const auto mark = p1.output().size();
    p1.write_stdin("2\n");
    p1.write_stdin(file_a + " " + file_b + "\n");
    p1.wait_for_line("4  quit");
    out = p1.output().substr(mark);
    BOOST_TEST(out.find("File names to download") != std::string::npos, out);
    BOOST_TEST(out.find("downloaded " + file_a) != std::string::npos, out);
    BOOST_TEST(out.find("downloaded " + file_b) != std::string::npos, out);
    BOOST_TEST(test::read_file(dir / "p1" / file_a) == test::read_file(dir / "p2" / file_a));
    BOOST_TEST(test::read_file(dir / "p1" / file_b) == test::read_file(dir / "p2" / file_b));
    // Peer 1 told the index about its new files.
    BOOST_TEST((sources(file_b) == std::set<std::int64_t>{1, 2}));

    out = step("3\n" + file_a + "\n");
    BOOST_TEST(out.find("Your files in p1:") != std::string::npos, out);
    BOOST_TEST(out.find("File names to delete") != std::string::npos, out);
    BOOST_TEST(out.find("deleted    " + file_a) != std::string::npos, out);
    BOOST_TEST(!fs::exists(dir / "p1" / file_a));
    BOOST_TEST(fs::exists(dir / "p2" / file_a));
    BOOST_TEST((sources(file_a) == std::set<std::int64_t>{2}));

    out = step("9\n");
    BOOST_TEST(out.find("Unknown choice '9': please enter 1, 2, 3 or 4.") != std::string::npos,
               out);
    BOOST_TEST(out.find("1  list the files in the network") != std::string::npos, out);
    BOOST_TEST(peer_count() == 2);

    p1.write_stdin("4\n");
    BOOST_TEST(p1.wait() == 0, p1.output() << p1.error_output());
    BOOST_TEST(p1.output().find("Bye.") != std::string::npos, p1.output());
    // Peer 1 left the index.
    BOOST_TEST(peer_count() == 1);
    BOOST_TEST((sources(file_b) == std::set<std::int64_t>{2}));
    const auto r = run_peer(dir.path(), {"--id", "5", "list", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST((file_list(last_json(r.out)) == std::set<std::string>{file_a, file_b}), r.out);
}

BOOST_FIXTURE_TEST_CASE(end_of_input_quits_with_status_0, network) {
    generate("p1");
    test::child p1(test::app_path("peer"), {"--id", "1"}, dir.path());
    p1.wait_for_line("4  quit");
    BOOST_TEST((sources(file_a) == std::set<std::int64_t>{1}));
    p1.close_stdin();
    BOOST_TEST(p1.wait() == 0, p1.output() << p1.error_output());
    BOOST_TEST(p1.output().find("Bye.") != std::string::npos, p1.output());
    BOOST_TEST(peer_count() == 0);
    BOOST_TEST(sources(file_a).empty());
}

BOOST_FIXTURE_TEST_CASE(end_of_input_at_the_id_prompt_exits_2, network) {
    const auto r = run_peer(dir.path(), {}, "abc\n");
    BOOST_TEST(r.status == 2, r.out << r.err);
    BOOST_TEST(r.out.find("'abc' is not a peer id") != std::string::npos, r.out);
    BOOST_TEST(r.err.find("no id given") != std::string::npos, r.err);
    BOOST_TEST(peer_count() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- signals -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(e2e_signals)

BOOST_FIXTURE_TEST_CASE(sigterm_and_sigint_stop_a_serving_peer_gracefully, network) {
    generate("p2");
    for (const int signo : {SIGTERM, SIGINT}) {
        BOOST_TEST_CONTEXT("signal " << signo) {
            auto p2 = serve(dir.path(), 2);
            BOOST_TEST(peer_count() == 1);
            BOOST_TEST((sources(file_a) == std::set<std::int64_t>{2}));
            p2->signal(signo);
            BOOST_TEST(p2->wait() == 0, p2->output() << p2->error_output());
            BOOST_TEST(peer_count() == 0);
            BOOST_TEST(sources(file_a).empty());
        }
    }
}

BOOST_FIXTURE_TEST_CASE(sigterm_stops_the_index_server, network) {
    BOOST_TEST(peer_count() == 0); // it answers
    index->signal(SIGTERM);
    BOOST_TEST(index->wait() == 0, index->output() << index->error_output());
}

BOOST_FIXTURE_TEST_CASE(sigint_stops_the_index_server, network) {
    index->signal(SIGINT);
    BOOST_TEST(index->wait() == 0, index->output() << index->error_output());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- starting up -------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(e2e_startup)

BOOST_FIXTURE_TEST_CASE(an_id_in_use_is_refused_from_the_same_folder, network) {
    generate("p2");
    auto p2 = serve(dir.path(), 2);
    const auto config_before = test::read_file(dir / "p2.config");

    const auto r = run_peer(dir.path(), {"--id", "2", "list", "--json"});
    BOOST_TEST(r.status != 0, r.out << r.err);
    BOOST_TEST(r.err.find("id 2 is in use") != std::string::npos, r.err);
    // The running peer is untouched: still listed, its config file still its own.
    BOOST_TEST(peer_count() == 1);
    BOOST_TEST((sources(file_a) == std::set<std::int64_t>{2}));
    BOOST_TEST(test::read_file(dir / "p2.config") == config_before);

    p2->signal(SIGTERM);
    BOOST_TEST(p2->wait() == 0, p2->error_output());
    BOOST_TEST(peer_count() == 0);
}

BOOST_FIXTURE_TEST_CASE(an_id_in_use_is_refused_from_another_folder, network) {
    generate("p2");
    auto p2 = serve(dir.path(), 2);

    test::temp_dir elsewhere;
    const auto r = run_peer(elsewhere.path(),
                            {"--id", "2", "--index", "127.0.0.1:" + std::to_string(port), "serve"});
    BOOST_TEST(r.status != 0, r.out << r.err);
    BOOST_TEST(r.err.find("id 2 is in use") != std::string::npos, r.err);
    BOOST_TEST(r.out.find("serving") == std::string::npos, r.out);
    BOOST_TEST(peer_count() == 1);
    BOOST_TEST((sources(file_a) == std::set<std::int64_t>{2}));

    p2->signal(SIGTERM);
    BOOST_TEST(p2->wait() == 0, p2->error_output());
}

BOOST_AUTO_TEST_CASE(peers_and_the_index_on_ipv6_loopback) {
    test::temp_dir dir;
    test::child index(test::app_path("indexserver"), {"--host", "::1", "--port", "0"}, dir.path());
    const auto listening = index.wait_for_line("listening on");
    BOOST_TEST_REQUIRE(listening.find("listening on [::1]:") != std::string::npos, listening);
    const auto port = listening.substr(listening.rfind(':') + 1);
    BOOST_TEST_REQUIRE(std::stoul(port) != 0u, listening);
    const std::string index_address = "[::1]:" + port;

    const auto generated = test::run_app(
        "filegen", {"--dirs", "p2", "--sizes", "2kb", "--count", "2", "--seed", "1", "--quiet"},
        dir.path());
    BOOST_TEST_REQUIRE(generated.status == 0, generated.err);

    // The serving peer prints its address with brackets.
    auto p2 = serve(dir.path(), 2, {"--host", "::1", "--index", index_address});
    BOOST_TEST(p2->output().find("peer 2 serving p2 on [::1]:") != std::string::npos, p2->output());

    const std::vector<std::string> p1{"--id", "1", "--host", "::1", "--index", index_address};
    auto args = p1;
    args.insert(args.end(), {"list", "--json"});
    auto r = run_peer(dir.path(), args);
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST((file_list(last_json(r.out)) == std::set<std::string>{file_a, file_b}), r.out);

    args = p1;
    args.insert(args.end(), {"get", file_a, "--json"});
    r = run_peer(dir.path(), args);
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    auto results = results_by_name(last_json(r.out));
    BOOST_TEST(field(results[file_a], "status") == "downloaded", r.out);
    BOOST_TEST(results[file_a].at("source_peer").to_number<std::int64_t>() == 2, r.out);
    BOOST_TEST(test::read_file(dir / "p1" / file_a) == test::read_file(dir / "p2" / file_a));

    // A bad --index is refused with the parser's message.
    r = run_peer(dir.path(), {"--id", "1", "--index", "::1:" + port, "list"});
    BOOST_TEST(r.status == 2, r.out << r.err);
    BOOST_TEST(r.err.find("--index: '::1:" + port + "' is not HOST:PORT") != std::string::npos,
               r.err);

    p2->signal(SIGTERM);
    BOOST_TEST(p2->wait() == 0, p2->error_output());
    index.signal(SIGTERM);
    BOOST_TEST(index.wait() == 0, index.error_output());
}

BOOST_AUTO_TEST_CASE(a_peer_with_several_index_servers_moves_to_the_next_when_one_dies) {
    // Two index servers with a short lease, each in a folder of its own, and the peers' folder.
    test::temp_dir dir;
    test::temp_dir dir_a;
    test::temp_dir dir_b;
    auto [a, port_a] = start_indexserver(dir_a.path(), {"--lease-ttl", "1s"});
    auto [b, port_b] = start_indexserver(dir_b.path(), {"--lease-ttl", "1s"});
    const auto address = [](std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); };
    const auto both = address(port_a) + "," + address(port_b);
    const auto generated = test::run_app(
        "filegen", {"--dirs", "p2", "--sizes", "2kb", "--count", "2", "--seed", "1", "--quiet"},
        dir.path());
    BOOST_TEST_REQUIRE(generated.status == 0, generated.err);

    auto p2 = serve(dir.path(), 2, {"--index", both, "--log-level", "info"});
    BOOST_TEST(peers_at(port_a) == 1);
    BOOST_TEST(peers_at(port_b) == 0);

    // A crashes: the serving peer is at B within its lease, by itself.
    a->signal(SIGKILL);
    BOOST_TEST(a->wait() == 128 + SIGKILL);
    BOOST_TEST_REQUIRE(test::eventually([&] { return peers_at(port_b) == 1; }));
    BOOST_TEST(test::read_file(dir / "p2.config").find("index_port=" + std::to_string(port_b)) !=
               std::string::npos);

    // Another peer given the same list (A first, down) lists and downloads through B.
    auto r = run_peer(dir.path(), {"--id", "1", "--index", both, "list", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST((file_list(last_json(r.out)) == std::set<std::string>{file_a, file_b}), r.out);
    r = run_peer(dir.path(), {"--id", "1", "--index", both, "get", file_a, "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST(field(results_by_name(last_json(r.out))[file_a], "status") == "downloaded", r.out);

    // The same list from config/server.config, one index line per server.
    test::write_file(
        dir / "config" / "server.config",
        "# two index servers\nindex=" + address(port_a) + "\nindex=" + address(port_b) + "\n");
    r = run_peer(dir.path(), {"--id", "3", "list", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST((file_list(last_json(r.out)) == std::set<std::string>{file_a, file_b}), r.out);

    p2->signal(SIGTERM);
    BOOST_TEST(p2->wait() == 0, p2->error_output());
    BOOST_TEST(peers_at(port_b) == 0);
    // The move was logged.
    const auto log = p2->error_output();
    BOOST_TEST(log.find("peer 2: index " + address(port_a) + " unreachable") != std::string::npos,
               log);
    BOOST_TEST(log.find("moving to " + address(port_b)) != std::string::npos, log);
    b->signal(SIGTERM);
    BOOST_TEST(b->wait() == 0, b->error_output());
}

BOOST_AUTO_TEST_CASE(index_lists_that_cannot_be_parsed_are_refused) {
    test::temp_dir dir;
    const auto dead = "127.0.0.1:" + std::to_string(closed_port());
    // On the command line: a usage error, exit 2.
    for (const auto& [given, message] : std::vector<std::pair<std::string, std::string>>{
             {dead + ",", "has an empty address"},
             {dead + ",nowhere", "'nowhere' is not HOST:PORT"},
             {dead + ";" + dead, "is not HOST:PORT"}}) {
        BOOST_TEST_CONTEXT("--index " << given) {
            const auto r = run_peer(dir.path(), {"--id", "1", "--index", given, "list"});
            BOOST_TEST(r.status == 2, r.out << r.err);
            BOOST_TEST(r.err.find("--index: ") != std::string::npos, r.err);
            BOOST_TEST(r.err.find(message) != std::string::npos, r.err);
        }
    }
    // In config/server.config: refused, with the file and the line.
    test::write_file(dir / "config" / "server.config", "index=" + dead + "\nindex=nowhere\n");
    const auto r = run_peer(dir.path(), {"--id", "1", "list", "--json"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    BOOST_TEST(r.err.find("config/server.config:2: \"index\": 'nowhere' is not HOST:PORT") !=
                   std::string::npos,
               r.err);
    BOOST_TEST(!fs::exists(dir / "p1"));
}

BOOST_AUTO_TEST_CASE(a_peer_without_an_index_server_says_so) {
    test::temp_dir dir; // no indexserver ever ran here: no config/server.config
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--id", "1", "list", "--json"}, {"--id", "1", "serve"}, {"--id", "1"}}) {
        BOOST_TEST_CONTEXT(args.size() << " arguments") {
            const auto r = run_peer(dir.path(), args);
            BOOST_TEST(r.status != 0, r.out << r.err);
            BOOST_TEST(r.err.find("config/server.config is missing") != std::string::npos, r.err);
            BOOST_TEST(r.err.find("start indexserver first") != std::string::npos, r.err);
            BOOST_TEST(r.out.find("serving") == std::string::npos, r.out);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
