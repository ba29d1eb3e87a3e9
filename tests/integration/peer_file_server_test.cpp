// Hostile and odd requests to a peer's file server: nothing outside the folder is ever served,
// ranges are exact, and the server keeps answering.
#include <p2pshare/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include "peer_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace p2pshare;

namespace {

/// Every byte but letters and digits as %XX.
std::string percent_path(const std::string& text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u)) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    return out;
}

struct file_server_fixture {
    file_server_fixture() {
        test::write_file(net / "secret.txt", secret);
        test::write_file(net / "p1" / "p.txt", content);
        test::write_file(net / "p1" / "p.txt.part", secret);
        fs::create_symlink(net / "secret.txt", net / "p1" / "evil");
        fs::create_directories(net / "p1" / "sub");
        test::write_file(net / "p1" / "sub" / "inner.txt", secret);
        node = &net.start_peer(1);
        port = node->port();
    }

    /// Fails if `text` shows anything of the secret files (the secret itself, the peer's token).
    void check_no_leak(const std::string& text) {
        BOOST_TEST(text.find("TOP-SECRET") == std::string::npos);
        const auto config = test::read_file(net / "p1.config");
        const auto at = config.find("token=");
        BOOST_REQUIRE(at != std::string::npos);
        const auto token = config.substr(at + 6, config.find('\n', at) - at - 6);
        BOOST_REQUIRE(!token.empty());
        BOOST_TEST(text.find(token) == std::string::npos);
    }

    /// The server still serves the real file normally.
    void check_still_serving() {
        const auto r = test::http_call(port, "GET", "/v1/files/p.txt");
        BOOST_TEST(r.status == 200u);
        BOOST_TEST((r.body == content));
    }

    /// GET `target`: refused with `status`, with a JSON error body and nothing secret.
    void check_refused(const std::string& target, unsigned status) {
        BOOST_TEST_CONTEXT(target) {
            const auto r = test::http_call(port, "GET", target);
            BOOST_TEST(r.status == status);
            BOOST_TEST(r.header("content-type") == "application/json");
            const auto v = boost::json::parse(r.body);
            BOOST_TEST(v.at("error").is_string());
            BOOST_TEST(!v.at("message").as_string().empty());
            check_no_leak(r.body);
            check_still_serving();
        }
    }

    const std::string secret = "TOP-SECRET " + test::random_text(200, 101);
    const std::string content = test::random_text(1'000, 102);
    test::network net;
    PeerNode* node = nullptr;
    std::uint16_t port = 0;
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(peer_file_server, file_server_fixture)

BOOST_AUTO_TEST_CASE(path_traversal_in_every_form_is_refused) {
    check_refused("/v1/files/../x", 404);
    check_refused("/v1/files/../secret.txt", 404);
    check_refused("/v1/files/../../secret.txt", 404);
    check_refused("/v1/files/..", 400);
    check_refused("/v1/files/%2e%2e", 400);
    check_refused("/v1/files/%2e%2e%2fx", 400);
    check_refused("/v1/files/%2E%2E%2Fsecret.txt", 400);
    check_refused("/v1/files/..%2Fp1.config", 400);
    check_refused("/v1/files/..%2fsecret.txt", 400);
    check_refused("/v1/files/%2Fetc%2Fpasswd", 400);
    check_refused("/v1/files/" + percent_path((net / "secret.txt").string()), 400);
    check_refused("/v1/files/..%5Csecret.txt", 400);
    check_refused("/v1/files/%5C..%5Csecret.txt", 400);
    check_refused("/v1/files/p.txt%00", 400);
    check_refused("/v1/files/p.txt%00.jpg", 400);
    check_refused("/v1/files/sub%2Finner.txt", 400);
    check_refused("/v1/files/sub/inner.txt", 404);
    check_refused("/v1/files/sub", 404);
    check_refused("/v1/files/%", 400);
    check_refused("/v1/files/%zz", 400);
    check_refused("/v1/files/.", 400);
    check_refused("/v1/files/", 400);
    // Backslashes and relative paths sent raw, without the client's help.
    for (const std::string target : {"/v1/files/..\\secret.txt", "/v1/files/\\etc\\passwd",
                                     "v1/files/p.txt", "http://127.0.0.1/v1/files/../secret.txt"}) {
        BOOST_TEST_CONTEXT(target) {
            const auto raw = test::raw_call(
                port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            BOOST_TEST(raw.substr(0, 12) == "HTTP/1.1 400");
            check_no_leak(raw);
            check_still_serving();
        }
    }
}

BOOST_AUTO_TEST_CASE(symlinks_folders_and_part_files_are_neither_listed_nor_served) {
    const auto listing = test::http_call(port, "GET", "/v1/files");
    BOOST_TEST(listing.status == 200u);
    const auto v = boost::json::parse(listing.body);
    std::vector<std::string> names;
    for (const auto& f : v.at("files").as_array())
        names.emplace_back(f.at("name").as_string());
    BOOST_TEST(names == std::vector<std::string>{"p.txt"});
    check_no_leak(listing.body);

    check_refused("/v1/files/evil", 404);
    check_refused("/v1/files/p.txt.part", 400);
    const auto head = test::http_call(port, "HEAD", "/v1/files/evil");
    BOOST_TEST(head.status == 404u);

    // A symlink put in place of a shared file after it was listed is not followed either.
    fs::remove(net / "p1" / "p.txt");
    fs::create_symlink(net / "secret.txt", net / "p1" / "p.txt");
    const auto swapped = test::http_call(port, "GET", "/v1/files/p.txt");
    BOOST_TEST(swapped.status == 404u);
    check_no_leak(swapped.body);
    const auto swapped_range =
        test::http_call(port, "GET", "/v1/files/p.txt", {}, {{"Range", "bytes=0-"}});
    BOOST_TEST(swapped_range.status == 404u);
    check_no_leak(swapped_range.body);
    BOOST_TEST(test::read_file(net / "secret.txt") == secret);
}

BOOST_AUTO_TEST_CASE(unsatisfiable_ranges_get_416_with_the_size) {
    const auto size = std::to_string(content.size());
    for (const std::string range :
         {"bytes=10-5", "bytes=999999-", "bytes=1000-", "bytes=0-1,5-6", "bytes=-0", "bytes=abc",
          "bytes=", "bytes=-", "bytes=5", "items=0-1", "bytes=1-2-3", "bytes=-1-2",
          "bytes=99999999999999999999999-"}) {
        BOOST_TEST_CONTEXT(range) {
            const auto r = test::http_call(port, "GET", "/v1/files/p.txt", {}, {{"Range", range}});
            BOOST_TEST(r.status == 416u);
            BOOST_TEST(r.header("content-range") == "bytes */" + size);
            BOOST_TEST(boost::json::parse(r.body).at("error").as_string() == "bad_range");
            check_still_serving();
        }
    }
}

BOOST_AUTO_TEST_CASE(satisfiable_ranges_get_206_with_exact_bytes) {
    const auto size = content.size();
    const auto etag = "\"" + test::sha256_hex(content) + "\"";
    struct expected_range {
        std::string header;
        std::size_t first;
        std::size_t last;
    };
    for (const auto& e : std::vector<expected_range>{{"bytes=0-9", 0, 9},
                                                     {"bytes=0-0", 0, 0},
                                                     {"bytes=10-", 10, size - 1},
                                                     {"bytes=990-5000", 990, size - 1},
                                                     {"bytes=-5", size - 5, size - 1},
                                                     {"bytes=-5000", 0, size - 1},
                                                     {"bytes=999-999", 999, 999}}) {
        BOOST_TEST_CONTEXT(e.header) {
            const auto r =
                test::http_call(port, "GET", "/v1/files/p.txt", {}, {{"Range", e.header}});
            BOOST_TEST(r.status == 206u);
            BOOST_TEST(r.header("content-range") == "bytes " + std::to_string(e.first) + "-" +
                                                        std::to_string(e.last) + "/" +
                                                        std::to_string(size));
            BOOST_TEST(r.header("content-length") == std::to_string(e.last - e.first + 1));
            BOOST_TEST(r.header("etag") == etag);
            BOOST_TEST(r.body == content.substr(e.first, e.last - e.first + 1));
        }
    }
    // An If-Range with another ETag gets the whole file.
    const auto stale = test::http_call(port, "GET", "/v1/files/p.txt", {},
                                       {{"Range", "bytes=0-9"}, {"If-Range", "\"other\""}});
    BOOST_TEST(stale.status == 200u);
    BOOST_TEST((stale.body == content));
    const auto full = test::http_call(port, "GET", "/v1/files/p.txt");
    BOOST_TEST(full.status == 200u);
    BOOST_TEST(full.header("accept-ranges") == "bytes");
    BOOST_TEST(full.header("etag") == etag);
}

BOOST_AUTO_TEST_CASE(head_gives_the_headers_without_a_body) {
    const auto raw = test::raw_call(
        port, "HEAD /v1/files/p.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(raw.substr(0, 12) == "HTTP/1.1 200");
    const auto end = raw.find("\r\n\r\n");
    BOOST_REQUIRE(end != std::string::npos);
    BOOST_TEST(end + 4 == raw.size()); // no body
    const auto headers = raw.substr(0, end);
    BOOST_TEST(headers.find("Content-Length: " + std::to_string(content.size())) !=
               std::string::npos);
    BOOST_TEST(headers.find("ETag: \"" + test::sha256_hex(content) + "\"") != std::string::npos);

    const auto r = test::http_call(port, "HEAD", "/v1/files/p.txt");
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.header("etag") == "\"" + test::sha256_hex(content) + "\"");
    BOOST_TEST(r.header("content-length") == std::to_string(content.size()));
    BOOST_TEST(r.body.empty());
    check_still_serving();
}

BOOST_AUTO_TEST_CASE(other_methods_get_405) {
    for (const std::string method : {"POST", "PUT", "DELETE", "PATCH"}) {
        BOOST_TEST_CONTEXT(method) {
            const auto r = test::http_call(port, method, "/v1/files/p.txt", "x");
            BOOST_TEST(r.status == 405u);
            BOOST_TEST(r.header("allow") == "GET, HEAD");
            BOOST_TEST(boost::json::parse(r.body).at("error").as_string() == "method_not_allowed");
            const auto listing = test::http_call(port, method, "/v1/files", "x");
            BOOST_TEST(listing.status == 405u);
            check_still_serving();
        }
    }
    BOOST_TEST(test::read_file(net / "p1" / "p.txt") == content);
    BOOST_TEST(test::http_call(port, "GET", "/v1/nothing").status == 404u);
}

BOOST_AUTO_TEST_CASE(unknown_methods_get_400) {
    for (const std::string method : {"FOO", "BREW", "get"}) {
        for (const std::string target : {"/v1/health", "/v1/files", "/v1/files/p.txt"}) {
            BOOST_TEST_CONTEXT(method << " " << target) {
                // raw: an HTTP client library refuses to send a method it does not know.
                const auto raw =
                    test::raw_call(port, method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
                BOOST_TEST(raw.starts_with("HTTP/1.1 400 "), raw);
                const auto body_at = raw.find("\r\n\r\n");
                BOOST_TEST_REQUIRE(body_at != std::string::npos);
                const auto v = boost::json::parse(raw.substr(body_at + 4));
                BOOST_TEST(v.at("error").as_string() == "bad_request");
                BOOST_TEST(!v.at("message").as_string().empty());
                check_still_serving();
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(health_is_get_or_head_only) {
    for (const std::string method : {"POST", "PUT", "DELETE", "PATCH"}) {
        BOOST_TEST_CONTEXT(method) {
            const auto r = test::http_call(port, method, "/v1/health", "x");
            BOOST_TEST(r.status == 405u);
            BOOST_TEST(r.header("allow") == "GET, HEAD");
            BOOST_TEST(boost::json::parse(r.body).at("error").as_string() == "method_not_allowed");
        }
    }
    const auto get = test::http_call(port, "GET", "/v1/health");
    BOOST_TEST(get.status == 200u);
    BOOST_TEST(boost::json::parse(get.body).at("status").as_string() == "ok");
    const auto head = test::http_call(port, "HEAD", "/v1/health");
    BOOST_TEST(head.status == 200u);
    BOOST_TEST(head.body.empty());
    check_still_serving();
}

// curl, a client that knows nothing of p2pshare, against a peer over plain HTTP: the whole file,
// a byte range, a download resumed from a partial file (-C -), and the headers of HEAD.
BOOST_AUTO_TEST_CASE(curl_downloads_whole_ranged_and_resumed) {
    const auto url = "http://127.0.0.1:" + std::to_string(port) + "/v1/files/p.txt";
    const auto curl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"-s", "-S", "-f", "--max-time", "20"});
        args.push_back(url);
        test::child c("/usr/bin/curl", args, net.root());
        const int status = c.wait(std::chrono::seconds(30));
        BOOST_TEST(status == 0, c.error_output());
        return c.output();
    };
    BOOST_TEST(curl({}) == content);
    BOOST_TEST(curl({"-r", "100-199"}) == content.substr(100, 100));
    BOOST_TEST(curl({"-r", "990-"}) == content.substr(990));
    const auto part = net.root() / "from-curl.txt";
    test::write_file(part, content.substr(0, 400));
    curl({"-C", "-", "-o", part.string()});
    BOOST_TEST(test::read_file(part) == content);
    const auto head = curl({"-I"});
    BOOST_TEST(head.find("Accept-Ranges: bytes") != std::string::npos, head);
    BOOST_TEST(head.find("ETag: \"" + test::sha256_hex(content) + "\"") != std::string::npos, head);
    BOOST_TEST(head.find("Content-Length: 1000") != std::string::npos, head);
}

BOOST_AUTO_TEST_SUITE_END()

// A reader that keeps up with sendfile never fills the socket, so the upload never has to wait:
// the peer must still answer its other requests while it goes on.
BOOST_AUTO_TEST_CASE(a_large_upload_to_a_fast_reader_lets_other_requests_through) {
    test::network net;
    constexpr std::size_t big = 64 * 1024 * 1024;
    test::write_file(net / "p1" / "big.bin", std::string(big, 'b'));
    test::write_file(net / "p1" / "small.txt", "small");
    auto& node = net.start_peer(1);

    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(node.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_TEST_REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) ==
                       0);
    const std::string request =
        "GET /v1/files/big.bin HTTP/1.1\r\nHost: p1\r\nConnection: close\r\n\r\n";
    BOOST_TEST_REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                       static_cast<ssize_t>(request.size()));

    // The reader: as fast as it can (MSG_TRUNC: the kernel drops the bytes instead of copying
    // them out), counting; it says when the first MiB is in.
    std::atomic<std::size_t> received{0};
    std::mutex mutex;
    std::condition_variable started;
    std::thread reader([&] {
        std::vector<char> buffer(1024 * 1024);
        for (;;) {
            const auto n = ::recv(fd, buffer.data(), buffer.size(), MSG_TRUNC);
            if (n <= 0) break;
            const auto total = received += static_cast<std::size_t>(n);
            if (total - static_cast<std::size_t>(n) < 1024 * 1024 && total >= 1024 * 1024) {
                std::lock_guard lock(mutex);
                started.notify_all();
            }
        }
        std::lock_guard lock(mutex);
        started.notify_all();
    });
    {
        std::unique_lock lock(mutex);
        started.wait_for(lock, std::chrono::seconds(30),
                         [&] { return received.load() >= 1024 * 1024; });
    }
    const auto small = test::http_call(node.port(), "GET", "/v1/files/small.txt");
    const auto seen = received.load();
    reader.join();
    ::close(fd);
    BOOST_TEST(small.status == 200u);
    BOOST_TEST(small.body == "small");
    BOOST_TEST(seen < big, "the other request was answered only after " << seen << " of " << big
                                                                        << " bytes of the upload");
    BOOST_TEST(received.load() > big); // the whole upload came, after its header
    BOOST_TEST_MESSAGE("the other request was answered after " << seen / 1024
                                                               << " KiB of the upload");
}
