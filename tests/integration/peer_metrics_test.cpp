// GET /metrics of the index server and of peers (docs/protocol.md §8), in the Prometheus text
// format: the values after known traffic, read directly, and read back through a real Prometheus
// server (Debian's prometheus, started here on a free loopback port) that scrapes them.
#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;

namespace {

using p2pshare::test::mib;

/// The format's rules that a scraper relies on: every sample belongs to a family announced by
/// # HELP and # TYPE before it, under the p2pshare_ prefix; counters end in _total.
void check_format(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    std::map<std::string, std::string> types;
    std::set<std::string> helped;
    while (std::getline(in, line)) {
        BOOST_TEST_REQUIRE(!line.empty());
        if (line.starts_with("# HELP ")) {
            helped.insert(line.substr(7, line.find(' ', 7) - 7));
            continue;
        }
        if (line.starts_with("# TYPE ")) {
            const auto rest = line.substr(7);
            const auto name = rest.substr(0, rest.find(' '));
            const auto type = rest.substr(rest.find(' ') + 1);
            BOOST_TEST(helped.count(name) == 1u, name);
            BOOST_TEST((type == "counter" || type == "gauge" || type == "histogram"), type);
            if (type == "counter") BOOST_TEST(name.ends_with("_total"), name);
            types[name] = type;
            continue;
        }
        auto name = line.substr(0, line.find_first_of("{ "));
        BOOST_TEST(name.starts_with("p2pshare_"), line);
        if (!types.count(name)) {
            for (const auto* suffix : {"_bucket", "_sum", "_count"}) {
                if (name.ends_with(suffix)) {
                    name.resize(name.size() - std::string_view(suffix).size());
                    break;
                }
            }
            BOOST_TEST((types.count(name) && types[name] == "histogram"), line);
        }
        const auto value = line.substr(line.rfind(' ') + 1);
        char* end = nullptr;
        std::strtod(value.c_str(), &end);
        BOOST_TEST((end != nullptr && *end == '\0' && !value.empty()), line);
    }
}

std::string metrics_of(std::uint16_t port) {
    const auto r = test::http_call(port, "GET", "/metrics");
    BOOST_TEST_REQUIRE(r.status == 200u);
    BOOST_TEST(r.header("content-type").starts_with("text/plain; version=0.0.4"));
    return r.body;
}

/// `n` lookups of `name` through the index's HTTP API.
void lookups(std::uint16_t index_port, const std::string& name, int n) {
    for (int i = 0; i < n; ++i) {
        const auto r = test::http_call(index_port, "POST", "/v1/lookup",
                                       R"({"names":[)" + test::json_quote(name) + "]}",
                                       {{"Content-Type", "application/json"}});
        BOOST_TEST_REQUIRE(r.status == 200u);
    }
}

/// A network of an index and two peers; peer 1 shares a file of 4 pieces, which peer 2 then
/// downloads after 5 lookups and one request for a path that does not exist.
struct traffic {
    test::network net;
    std::string content = test::random_text(3 * mib + 5, 91);
    PeerNode* p1 = nullptr;
    PeerNode* p2 = nullptr;

    traffic() {
        test::write_file(net / "p1" / "m.bin", content);
        p1 = &net.start_peer(1);
        p2 = &net.start_peer(2);
    }

    void run() {
        lookups(net.index_port(), "m.bin", 5);
        BOOST_TEST(test::http_call(net.index_port(), "GET", "/nope").status == 404u);
        const auto outcomes = net.io().run(p2->async_download({"m.bin"}));
        BOOST_TEST_REQUIRE(outcomes.size() == 1u);
        BOOST_TEST_REQUIRE(!outcomes[0].error, outcomes[0].message);
    }
};

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    std::uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
}

std::string percent_encode_query(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : s) {
        if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

/// A Prometheus server that scrapes `targets` every second, on a free loopback port with its
/// storage in `dir`; stopped by the destructor.
class prometheus {
public:
    prometheus(const fs::path& dir, const std::vector<std::uint16_t>& targets) {
        fs::create_directories(dir / "data");
        std::string list;
        for (const auto t : targets)
            list += (list.empty() ? "'127.0.0.1:" : ", '127.0.0.1:") + std::to_string(t) + "'";
        test::write_file(dir / "prometheus.yml",
                         "global:\n"
                         "  scrape_interval: 1s\n"
                         "  scrape_timeout: 900ms\n"
                         "scrape_configs:\n"
                         "  - job_name: p2pshare\n"
                         "    static_configs:\n"
                         "      - targets: [" +
                             list + "]\n");
        // A port found free may be taken before the server binds it: a few tries.
        for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
            port_ = free_port();
            process_ = std::make_unique<test::child>(
                "/usr/bin/prometheus",
                std::vector<std::string>{"--config.file=" + (dir / "prometheus.yml").string(),
                                         "--storage.tsdb.path=" + (dir / "data").string(),
                                         "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                         "--log.level=warn"},
                dir);
            const bool ready = test::eventually(
                [&] {
                    if (process_->try_wait()) return true;
                    try {
                        return test::http_call(port_, "GET", "/-/ready").status == 200u;
                    } catch (const std::exception&) {
                        return false;
                    }
                },
                30s, 50ms);
            if (process_->try_wait()) {
                errors_ += process_->error_output();
                process_.reset();
                continue;
            }
            BOOST_TEST_REQUIRE(ready, "prometheus did not get ready: " << process_->error_output());
        }
        BOOST_TEST_REQUIRE(process_ != nullptr, "prometheus did not start: " << errors_);
    }

    ~prometheus() {
        if (!process_) return;
        process_->signal(SIGTERM);
        try {
            process_->wait(20s);
        } catch (const std::exception&) {
        }
    }

    prometheus(const prometheus&) = delete;
    prometheus& operator=(const prometheus&) = delete;

    /// The values of an instant query, by the `instance` label of each series.
    std::map<std::string, double> query(const std::string& promql) const {
        const auto r =
            test::http_call(port_, "GET", "/api/v1/query?query=" + percent_encode_query(promql));
        std::map<std::string, double> out;
        if (r.status != 200u) return out;
        const auto v = boost::json::parse(r.body);
        for (const auto& s : v.at("data").at("result").as_array()) {
            const auto& metric = s.at("metric").as_object();
            const auto* instance = metric.if_contains("instance");
            const auto value = s.at("value").as_array().at(1).as_string();
            out[instance ? std::string(instance->as_string()) : std::string()] =
                std::strtod(value.c_str(), nullptr);
        }
        return out;
    }

private:
    std::uint16_t port_ = 0;
    std::unique_ptr<test::child> process_;
    std::string errors_;
};

std::string instance(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

} // namespace

BOOST_AUTO_TEST_SUITE(peer_metrics)

BOOST_AUTO_TEST_CASE(the_index_and_the_peers_count_known_traffic) {
    traffic t;
    t.run();
    const auto size = static_cast<double>(t.content.size());

    const auto index = metrics_of(t.net.index_port());
    check_format(index);
    // The 5 lookups, and peer 2's own before it downloaded.
    BOOST_TEST(test::metric_sample(
                   index, R"(p2pshare_index_requests_total{endpoint="lookup",code="200"})") == 6.0);
    BOOST_TEST(test::metric_sample(
                   index, R"(p2pshare_index_request_duration_seconds_count{endpoint="lookup"})") ==
               6.0);
    BOOST_TEST(test::metric_sample(
                   index, R"(p2pshare_index_requests_total{endpoint="other",code="404"})") == 1.0);
    BOOST_TEST(test::metric_sample(
                   index, R"(p2pshare_index_requests_total{endpoint="register",code="201"})") ==
               2.0);
    BOOST_TEST(test::metric_sample(index, "p2pshare_index_peers") == 2.0);
    BOOST_TEST(test::metric_sample(index, "p2pshare_index_names") == 1.0);
    // Peer 2 shares the file too once it announced it.
    BOOST_TEST(test::eventually([&] {
        return test::metric_sample(metrics_of(t.net.index_port()), "p2pshare_index_files") == 2.0;
    }));
    BOOST_TEST(test::metric_sample(index, "p2pshare_index_store_errors_total") == 0.0);
    BOOST_TEST(test::metric_sample(index, "p2pshare_index_lease_expiries_total") == 0.0);
    BOOST_TEST(test::metric_sample(index, "p2pshare_index_connections_open") >= 2.0); // the peers'

    const auto source = metrics_of(t.p1->port());
    check_format(source);
    // The file's bytes, and the header of each answer.
    const auto uploads = test::metric_sample(source, "p2pshare_peer_uploads_total");
    BOOST_TEST(uploads >= 1.0);
    BOOST_TEST(test::metric_sample(source, "p2pshare_peer_sent_bytes_total") >= size);
    BOOST_TEST(test::metric_sample(source, "p2pshare_peer_sent_bytes_total") <=
               size + 1024 * uploads);
    BOOST_TEST(test::metric_sample(source, "p2pshare_peer_uploads_in_flight") == 0.0);
    BOOST_TEST(test::metric_sample(source, "p2pshare_peer_shared_files") == 1.0);
    BOOST_TEST(test::metric_sample(source, "p2pshare_peer_registered") == 1.0);

    const auto sink = metrics_of(t.p2->port());
    check_format(sink);
    BOOST_TEST(test::metric_sample(sink, "p2pshare_peer_received_bytes_total") == size);
    BOOST_TEST(test::metric_sample(sink, "p2pshare_peer_pieces_verified_total") == 4.0);
    BOOST_TEST(test::metric_sample(sink, "p2pshare_peer_pieces_failed_total") == 0.0);
    BOOST_TEST(test::metric_sample(sink, R"(p2pshare_peer_downloads_total{outcome="ok"})") == 1.0);
    BOOST_TEST(test::metric_sample(sink, R"(p2pshare_peer_downloads_total{outcome="failed"})") ==
               0.0);
    BOOST_TEST(test::metric_sample(sink, "p2pshare_peer_downloads_in_flight") == 0.0);
    BOOST_TEST(test::metric_sample(sink, "p2pshare_peer_sent_bytes_total") == 0.0);
    // The downloaded file is shared in turn.
    BOOST_TEST(test::eventually([&] {
        return test::metric_sample(metrics_of(t.p2->port()), "p2pshare_peer_shared_files") == 1.0;
    }));

    // Only GET and HEAD.
    BOOST_TEST(test::http_call(t.net.index_port(), "POST", "/metrics").status == 405u);
    BOOST_TEST(test::http_call(t.p1->port(), "DELETE", "/metrics").status == 405u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(peer_prometheus)

BOOST_AUTO_TEST_CASE(a_prometheus_server_scrapes_the_index_and_the_peers) {
    traffic t;
    const auto index = t.net.index_port();
    const auto p1 = t.p1->port();
    const auto p2 = t.p2->port();
    prometheus prom(t.net / "prometheus", {index, p1, p2});
    // Every target scraped.
    BOOST_TEST(test::eventually(
        [&] {
            const auto up = prom.query("up");
            return up.size() == 3 && up.at(instance(index)) == 1.0 && up.at(instance(p1)) == 1.0 &&
                   up.at(instance(p2)) == 1.0;
        },
        30s, 200ms));
    t.run();
    const auto size = static_cast<double>(t.content.size());
    // What Prometheus holds after its next scrapes: the values of the traffic.
    const auto value_in = [&](const std::string& promql, std::uint16_t port, double low,
                              double high) {
        double last = -1;
        const bool ok = test::eventually(
            [&] {
                const auto r = prom.query(promql);
                const auto it = r.find(instance(port));
                last = it == r.end() ? -1 : it->second;
                return last >= low && last <= high;
            },
            30s, 200ms);
        BOOST_TEST(ok, promql << " on " << instance(port) << ": " << last << ", not within " << low
                              << ".." << high);
    };
    const auto value_is = [&](const std::string& promql, std::uint16_t port, double expected) {
        value_in(promql, port, expected, expected);
    };
    value_is(R"(p2pshare_index_requests_total{endpoint="lookup",code="200"})", index, 6);
    value_is(R"(p2pshare_index_requests_total{endpoint="other",code="404"})", index, 1);
    value_is("p2pshare_index_peers", index, 2);
    value_is("p2pshare_index_files", index, 2); // peer 2 shares the file in turn
    value_in("p2pshare_peer_sent_bytes_total", p1, size, size + 4096); // with the headers
    value_is("p2pshare_peer_received_bytes_total", p2, size);
    value_is("p2pshare_peer_pieces_verified_total", p2, 4);
    value_is(R"(p2pshare_peer_downloads_total{outcome="ok"})", p2, 1);
    value_is("p2pshare_peer_registered", p1, 1);
    // A histogram Prometheus can compute with: the lookups' count from its buckets.
    value_is(R"(p2pshare_index_request_duration_seconds_bucket{endpoint="lookup",le="+Inf"})",
             index, 6);
}

BOOST_AUTO_TEST_SUITE_END()
