// TLS (docs/protocol.md §11): an index server over HTTPS checked against its CA, peers that serve
// over TLS with their own self-signed certificates, pinned by the fingerprint the index gives
// with each source. Refused: another certificate than the one the index gave, a certificate with
// another key. Plain HTTP to a TLS port gets a clear answer, and a peer never sends its token to
// an index configured for TLS before the TLS handshake. curl reaches both servers with --cacert.
#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"
#include "tls.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace fs = std::filesystem;
using namespace p2pshare;
using namespace std::chrono_literals;

namespace {

/// A certificate for 127.0.0.1 and its key, made in `dir` under `name`.crt / `name`.key.
std::pair<fs::path, fs::path> make_certificate(const fs::path& dir, const std::string& name) {
    const auto cert = dir / (name + ".crt");
    const auto key = dir / (name + ".key");
    const auto e = detail::make_self_signed(cert, key, name, {"127.0.0.1", "localhost"});
    BOOST_REQUIRE_MESSAGE(!e, e.message);
    return {cert, key};
}

/// An index server over TLS, and the CA (its own certificate) its peers trust.
struct tls_network {
    test::temp_dir certs;
    std::pair<fs::path, fs::path> index_cert = make_certificate(certs.path(), "index");
    test::network net{[this] {
        IndexServerOptions o;
        o.tls_cert = index_cert.first;
        o.tls_key = index_cert.second;
        return o;
    }()};

    /// Options of a peer that reaches the index over TLS; with `tls`, it serves over TLS with
    /// its own self-signed certificate.
    PeerOptions peer(std::uint32_t id, bool tls) const {
        auto o = net.options(id);
        o.index.front().tls = true;
        o.tls_ca = index_cert.first;
        if (tls) {
            o.tls = true;
            o.tls_self_signed = true;
            o.tls_cert = net / ("p" + std::to_string(id) + ".crt");
            o.tls_key = net / ("p" + std::to_string(id) + ".key");
        }
        return o;
    }
};

/// curl's output (-s) for `url`, with `args` before it; "" when curl fails.
std::string curl(const fs::path& dir, std::vector<std::string> args, const std::string& url) {
    args.insert(args.begin(), {"-s", "-S", "--max-time", "20"});
    args.push_back(url);
    test::child c("/usr/bin/curl", args, dir);
    const int status = c.wait(30s);
    BOOST_TEST_MESSAGE("curl " << url << ": " << status << " " << c.error_output());
    return status == 0 ? c.output() : std::string();
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_tls)

// A peer over TLS registered with an index over TLS: the lookup gives its certificate's
// fingerprint, a plain peer downloads from it over TLS, and curl reaches both with --cacert.
BOOST_AUTO_TEST_CASE(files_move_over_tls_pinned_by_the_index) {
    tls_network t;
    const auto content = test::random_text(3 * 1024 * 1024 + 123, 7);
    test::write_file(t.net / "p1" / "big.bin", content);
    auto& a = t.net.start_peer(t.peer(1, true));
    auto& b = t.net.start_peer(t.peer(2, false));

    // The certificate the peer made for itself at its first start, kept beside its config.
    const auto fingerprint = detail::certificate_fingerprint(t.net / "p1.crt");
    BOOST_REQUIRE(fingerprint.has_value());
    BOOST_TEST(fs::exists(t.net / "p1.key"));
    BOOST_TEST(((fs::status(t.net / "p1.key").permissions() &
                 (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none));

    // The lookup, with curl over TLS against the index's own certificate as the CA.
    const auto index_url = "https://127.0.0.1:" + std::to_string(t.net.index_port());
    const auto looked = curl(
        t.net.root(),
        {"--cacert", t.index_cert.first.string(), "-X", "POST", "-d", R"({"names":["big.bin"]})"},
        index_url + "/v1/lookup");
    BOOST_REQUIRE(!looked.empty());
    const auto v = boost::json::parse(looked);
    const auto& source = v.at("results").at(0).at("sources").at(0);
    BOOST_TEST(source.at("id").as_int64() == 1);
    BOOST_TEST(source.at("cert_sha256").as_string() == *fingerprint);

    const auto got = t.net.io().run(b.async_download({"big.bin"}));
    BOOST_REQUIRE_EQUAL(got.size(), 1u);
    BOOST_REQUIRE_MESSAGE(got[0], got[0].message);
    BOOST_TEST(got[0].transfer.source.starts_with("https://"));
    BOOST_TEST(test::read_file(t.net / "p2" / "big.bin") == content);

    // curl, with the peer's certificate as its own CA, fetches a range; the peer's metrics say
    // how the bodies went out (kernel TLS where the kernel has it, else OpenSSL's copy).
    const auto peer_url = "https://127.0.0.1:" + std::to_string(a.port());
    const auto part =
        curl(t.net.root(), {"--cacert", (t.net / "p1.crt").string(), "-r", "1000-1999"},
             peer_url + "/v1/files/big.bin");
    BOOST_TEST(part == content.substr(1000, 1000));
    const auto metrics =
        curl(t.net.root(), {"--cacert", (t.net / "p1.crt").string()}, peer_url + "/metrics");
    const auto kernel =
        test::metric_sample(metrics, R"(p2pshare_peer_body_bytes_total{path="kernel_tls"})");
    const auto copied =
        test::metric_sample(metrics, R"(p2pshare_peer_body_bytes_total{path="tls_copy"})");
    BOOST_TEST(test::metric_sample(metrics, R"(p2pshare_peer_body_bytes_total{path="sendfile"})") ==
               0);
    BOOST_TEST(kernel + copied >= static_cast<double>(content.size()));
    BOOST_TEST_MESSAGE("body bytes over kernel TLS " << kernel << ", copied " << copied);

    // A certificate that exists is used as it is, never made anew: the fingerprint stays.
    auto again = t.peer(5, true);
    again.tls_cert = t.net / "p1.crt";
    again.tls_key = t.net / "p1.key";
    t.net.start_peer(again);
    BOOST_TEST(detail::certificate_fingerprint(t.net / "p1.crt").value() == *fingerprint);
}

// A source whose certificate is not the one the index gave is refused before a byte of the file
// is asked for, and no file appears.
BOOST_AUTO_TEST_CASE(another_certificate_than_the_one_given_is_refused) {
    tls_network t;
    const auto content = test::random_text(100 * 1024, 3);
    test::write_file(t.net / "p1" / "f.bin", content);
    auto& a = t.net.start_peer(t.peer(1, true));
    auto source = t.net.source_of(a, content);
    source.cert_sha256 = std::string(64, 'a'); // not its certificate's

    test::temp_dir into;
    FileTransfer transfer(t.net.io().executor(), into.path(), {});
    const auto r = t.net.io().run(transfer.async_download("f.bin", {source}));
    BOOST_TEST(r.error == make_error_code(errc::tls_failed), r.error.message()
                                                                 << ": " << r.message);
    BOOST_TEST(r.message.find("fingerprint") != std::string::npos, r.message);
    BOOST_TEST(r.received == 0u);
    BOOST_TEST(!fs::exists(into.path() / "f.bin"));

    // With the right one, the same transfer works.
    source.cert_sha256 = detail::certificate_fingerprint(t.net / "p1.crt").value();
    const auto ok = t.net.io().run(transfer.async_download("f.bin", {source}));
    BOOST_TEST(!ok.error, ok.message);
    BOOST_TEST(test::read_file(into.path() / "f.bin") == content);
}

// A certificate with another key than its own is refused at the start, with a message that says
// so, by the index server and by a peer alike.
BOOST_AUTO_TEST_CASE(a_certificate_with_another_key_is_refused) {
    test::temp_dir dir;
    const auto one = make_certificate(dir.path(), "one");
    const auto two = make_certificate(dir.path(), "two");
    test::io_thread io;
    IndexServerOptions o;
    o.tls_cert = one.first;
    o.tls_key = two.second;
    IndexServer index(io.executor(), o);
    const auto e = index.start();
    BOOST_TEST(e.code == make_error_code(errc::bad_config));
    BOOST_TEST(e.message.find("is not the key of the certificate") != std::string::npos, e.message);

    tls_network t;
    auto p = t.peer(1, false);
    p.tls = true;
    p.tls_cert = one.first;
    p.tls_key = two.second;
    PeerNode node(t.net.io().executor(), p);
    const auto pe = t.net.io().run(node.async_start());
    BOOST_TEST(pe.code == make_error_code(errc::bad_config));
    BOOST_TEST(pe.message.find("is not the key of the certificate") != std::string::npos,
               pe.message);
}

// Plain HTTP sent to a TLS port gets 400 tls_required in plain HTTP, with a message naming the
// https:// address; the server stays up for TLS clients.
BOOST_AUTO_TEST_CASE(plain_http_to_a_tls_port_gets_a_clear_error) {
    tls_network t;
    auto& a = t.net.start_peer(t.peer(1, true));
    for (const auto port : {t.net.index_port(), a.port()}) {
        const auto answer =
            test::raw_call(port, "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        BOOST_TEST(answer.starts_with("HTTP/1.1 400 "), answer);
        BOOST_TEST(answer.find(R"("error":"tls_required")") != std::string::npos, answer);
        BOOST_TEST(answer.find("https://127.0.0.1:" + std::to_string(port)) != std::string::npos,
                   answer);
    }
    const auto health =
        curl(t.net.root(), {"--cacert", t.index_cert.first.string()},
             "https://127.0.0.1:" + std::to_string(t.net.index_port()) + "/v1/health");
    BOOST_TEST(health.find(R"("status":"ok")") != std::string::npos, health);
}

// A peer told that its index speaks TLS sends nothing before the handshake: a listener that
// records what arrives sees a TLS record, never the peer's token nor an HTTP request. And an
// index whose certificate the peer does not trust never sees a registration.
BOOST_AUTO_TEST_CASE(no_token_goes_in_clear_to_an_index_configured_for_tls) {
    tls_network t;
    const std::string token = "0123456789abcdef0123456789abcdef";

    // A listener on a free port that keeps every byte of its first connection.
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    const auto port = ntohs(addr.sin_port);
    std::string received;
    std::thread recorder([&] {
        const int c = ::accept(listener, nullptr, nullptr);
        if (c < 0) return;
        timeval tv{5, 0}; // only a hung test waits this long
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[4096];
        // The client hello, then the peer gives up (it gets no answer) and closes.
        for (;;) {
            const auto n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            received.append(buf, static_cast<std::size_t>(n));
        }
        ::close(c);
    });

    // The peer takes its lease back with the token of its config file: it would send it.
    test::write_file(t.net / "p7.config", "id=7\nfolder=" + (t.net / "p7").string() +
                                              "\nhost=127.0.0.1\nport=1\nindex_host=127.0.0.1\n"
                                              "index_port=" +
                                              std::to_string(port) + "\ntoken=" + token + "\n");
    auto o = t.peer(7, false);
    o.index = {ServerAddress{"127.0.0.1", port, true}};
    {
        PeerNode node(t.net.io().executor(), o);
        const auto e = t.net.io().run(node.async_start());
        BOOST_TEST(!node.registered());
        recorder.join();
        t.net.io().run(node.async_quit());
        BOOST_TEST_MESSAGE("start: " << e.message);
    }
    ::close(listener);
    BOOST_REQUIRE(!received.empty());
    BOOST_TEST(received[0] == '\x16'); // a TLS handshake record
    BOOST_TEST(received.find(token) == std::string::npos);
    BOOST_TEST(received.find("HTTP/1.1") == std::string::npos);

    // An index over TLS with a certificate the peer does not trust: no registration arrives.
    test::temp_dir other;
    const auto stranger = make_certificate(other.path(), "stranger");
    auto p = t.peer(8, false);
    p.tls_ca = stranger.first;
    PeerNode node(t.net.io().executor(), p);
    const auto e = t.net.io().run(node.async_start());
    BOOST_TEST(!node.registered());
    BOOST_TEST(e.message.find("certificate") != std::string::npos, e.message);
    t.net.io().run(node.async_quit());
    BOOST_TEST(t.net.io().run(t.net.index().async_stats()).peers == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
