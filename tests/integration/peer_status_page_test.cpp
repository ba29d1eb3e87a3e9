// The status pages at GET / of the index server and of a peer, rendered by a real browser:
// Debian's Chromium, headless, which runs each page's script against the running servers and
// gives back the DOM it built. The test reads the figures there, before and after traffic.
#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <regex>

namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;

namespace {

/// The DOM of `url` once its script ran: headless Chromium, its own profile folder in `dir`.
std::string rendered(const fs::path& dir, const std::string& url) {
    fs::create_directories(dir / "chromium");
    test::child browser("/usr/bin/chromium",
                        {"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--user-data-dir=" + (dir / "chromium").string(),
                         // Timers run in virtual time, so the page polls a few times; fetches
                         // are real and waited for.
                         "--virtual-time-budget=2500", "--dump-dom", url},
                        dir);
    const int status = browser.wait(60s);
    BOOST_TEST_REQUIRE(status == 0,
                       "chromium exited with " << status << ": " << browser.error_output());
    return browser.output();
}

/// The text of the element with id `id` (as the page's script set it), or "?" when absent.
std::string text_of(const std::string& dom, const std::string& id) {
    const std::regex re("id=\"" + id + "\"[^>]*>([^<]*)<");
    std::smatch m;
    return std::regex_search(dom, m, re) ? m[1].str() : std::string("?");
}

std::string url(std::uint16_t port) { return "http://127.0.0.1:" + std::to_string(port) + "/"; }

void lookup(std::uint16_t index_port, const std::string& name) {
    const auto r = test::http_call(index_port, "POST", "/v1/lookup",
                                   R"({"names":[)" + test::json_quote(name) + "]}",
                                   {{"Content-Type", "application/json"}});
    BOOST_TEST_REQUIRE(r.status == 200u);
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_status_pages)

BOOST_AUTO_TEST_CASE(the_index_page_shows_the_live_network_and_follows_it) {
    test::network net;
    test::write_file(net / "p1" / "a.txt", "alpha");
    test::write_file(net / "p1" / "b.txt", "beta");
    net.start_peer(1);
    lookup(net.index_port(), "a.txt");

    const auto page = test::http_call(net.index_port(), "GET", "/");
    BOOST_TEST(page.status == 200u);
    BOOST_TEST(page.header("content-type") == "text/html; charset=utf-8");
    // Self-contained: nothing is fetched from elsewhere.
    BOOST_TEST(page.body.find("http://") == std::string::npos);
    BOOST_TEST(page.body.find("https://") == std::string::npos);

    const auto before = rendered(net.root(), url(net.index_port()));
    BOOST_TEST(text_of(before, "peers") == "1");
    BOOST_TEST(text_of(before, "files") == "2");
    BOOST_TEST(text_of(before, "names") == "2");
    BOOST_TEST(text_of(before, "lookups") == "1");
    BOOST_TEST(text_of(before, "ttl") == "30 s");
    BOOST_TEST(text_of(before, "store") == "memory");
    BOOST_TEST(text_of(before, "state").starts_with("live"), text_of(before, "state"));

    // Traffic: a second peer with a file of its own, and more lookups.
    test::write_file(net / "p2" / "c.txt", "gamma");
    net.start_peer(2);
    for (int i = 0; i < 4; ++i)
        lookup(net.index_port(), "b.txt");
    const auto after = rendered(net.root(), url(net.index_port()));
    BOOST_TEST(text_of(after, "peers") == "2");
    BOOST_TEST(text_of(after, "files") == "3");
    BOOST_TEST(text_of(after, "names") == "3");
    BOOST_TEST(text_of(after, "lookups") == "5");
}

BOOST_AUTO_TEST_CASE(a_peer_page_shows_its_files_transfers_and_lease) {
    test::network net;
    const auto content = test::random_text(300'000, 93);
    test::write_file(net / "p1" / "shared.bin", content);
    auto& p1 = net.start_peer(1);
    auto& p2 = net.start_peer(2);

    const auto before = rendered(net.root(), url(p1.port()));
    BOOST_TEST(text_of(before, "id") == "1");
    BOOST_TEST(text_of(before, "files") == "1");
    BOOST_TEST(before.find("<td>shared.bin</td>") != std::string::npos);
    BOOST_TEST(text_of(before, "index") == "127.0.0.1:" + std::to_string(net.index_port()));
    BOOST_TEST(text_of(before, "lease") == "held, TTL 30 s");
    BOOST_TEST(text_of(before, "sent") == "0 B");
    BOOST_TEST(text_of(before, "uploads") == "0");

    // Traffic: peer 2 downloads the file, and shares it in turn.
    const auto outcomes = net.io().run(p2.async_download({"shared.bin"}));
    BOOST_TEST_REQUIRE(!outcomes.at(0).error, outcomes.at(0).message);
    const auto source = rendered(net.root(), url(p1.port()));
    BOOST_TEST(text_of(source, "sent") != "0 B", text_of(source, "sent"));
    BOOST_TEST(test::eventually([&] {
        return test::http_call(p2.port(), "GET", "/v1/files").body.find("shared.bin") !=
               std::string::npos;
    }));
    const auto sink = rendered(net.root(), url(p2.port()));
    BOOST_TEST(text_of(sink, "id") == "2");
    BOOST_TEST(text_of(sink, "received") == "293.0 KiB");
    BOOST_TEST(text_of(sink, "downloads") == "0");
    BOOST_TEST(sink.find("<td>shared.bin</td>") != std::string::npos);
    BOOST_TEST(sink.find(R"(<td class="size">293.0 KiB</td>)") != std::string::npos);
}

// Transfers in flight, each with its progress: an upload capped at 256 KiB/s is seen on the
// source's page and the download on the sink's, then both are gone once it ended.
BOOST_AUTO_TEST_CASE(a_peer_page_shows_each_transfer_in_flight_with_its_progress) {
    test::network net;
    const auto content = test::random_text(3 * 1024 * 1024, 17);
    test::write_file(net / "p1" / "slow.bin", content);
    auto slow = net.options(1);
    slow.max_upload_rate = 256 * 1024; // about 12 s for the file
    auto& p1 = net.start_peer(slow);
    auto& p2 = net.start_peer(2);
    auto done = boost::asio::co_spawn(net.io().context(), p2.async_download({"slow.bin"}),
                                      boost::asio::use_future);
    BOOST_TEST_REQUIRE(test::eventually([&] {
        return test::http_call(p1.port(), "GET", "/v1/health")
                   .body.find(R"("direction":"upload")") != std::string::npos;
    }));
    const std::regex pct(R"(<td class="pct">(\d+)%</td>)");
    std::smatch m;
    const auto source = rendered(net.root(), url(p1.port()));
    BOOST_TEST(source.find(R"(data-direction="upload")") != std::string::npos, source);
    BOOST_TEST(source.find(R"(<td class="name">slow.bin</td>)") != std::string::npos);
    BOOST_TEST(source.find("\u2191 to 127.0.0.1") != std::string::npos);
    BOOST_TEST_REQUIRE(std::regex_search(source, m, pct));
    BOOST_TEST(std::stoi(m[1].str()) < 100);
    const auto sink = rendered(net.root(), url(p2.port()));
    BOOST_TEST(sink.find(R"(data-direction="download")") != std::string::npos, sink);
    BOOST_TEST(sink.find(R"(<td class="name">slow.bin</td>)") != std::string::npos);
    BOOST_TEST(sink.find("\u2193 from 1 sources") != std::string::npos);

    BOOST_REQUIRE(done.wait_for(60s) == std::future_status::ready);
    const auto outcomes = done.get();
    BOOST_TEST_REQUIRE(!outcomes.at(0).error, outcomes.at(0).message);
    const auto after = rendered(net.root(), url(p1.port()));
    BOOST_TEST(after.find("data-direction") == std::string::npos);
    BOOST_TEST(after.find(R"(<tbody id="transfers"><tr><td>none</td></tr></tbody>)") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
