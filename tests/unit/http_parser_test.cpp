// detail::request_parser fed with bytes: the request line and the header fields share one
// header_limit, however the bytes are cut into reads.
#include "http_parser.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace d = p2pshare::detail;
namespace http = boost::beast::http;

namespace {

struct outcome {
    boost::system::error_code ec;
    bool done = false;
};

/// Feeds `pieces` one after the other, as reads that bring them, keeping what the parser did
/// not consume for the next call (as the server does).
outcome feed(d::request& req, std::size_t header_limit, const std::vector<std::string>& pieces) {
    p2pshare::ServerLimits limits;
    limits.header_limit = header_limit;
    d::request_parser parser(req, limits);
    std::string pending;
    outcome out;
    for (const auto& piece : pieces) {
        pending += piece;
        for (;;) {
            const auto used = parser.put(boost::asio::buffer(pending), out.ec);
            pending.erase(0, used);
            if (out.ec == http::error::need_more) {
                out.ec = {};
                break;
            }
            if (out.ec || parser.is_done()) {
                out.done = parser.is_done();
                return out;
            }
            if (used == 0 || pending.empty()) break;
        }
    }
    return out;
}

/// Cuts `text` into pieces of `n` bytes.
std::vector<std::string> cut(const std::string& text, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < text.size(); i += n)
        out.push_back(text.substr(i, n));
    return out;
}

/// A GET whose request line and header are exactly `size` bytes, the target `target_size`.
std::string request_of(std::size_t size, std::size_t target_size) {
    std::string text = "GET /" + std::string(target_size - 1, 't') + " HTTP/1.1\r\nX-Pad: ";
    text += std::string(size - text.size() - 4, 'p');
    text += "\r\n\r\n";
    return text;
}

} // namespace

BOOST_AUTO_TEST_SUITE(http_parser)

BOOST_AUTO_TEST_CASE(line_and_fields_share_the_header_limit) {
    d::request req;
    // Line and fields each under 1024, together over it: refused, in one read or two.
    const auto line = "GET /" + std::string(600, 'a') + " HTTP/1.1\r\n";
    const auto fields = "X-Pad: " + std::string(600, 'b') + "\r\n\r\n";
    auto r = feed(req, 1024, {line + fields});
    BOOST_TEST((r.ec == http::error::header_limit), r.ec.message());
    r = feed(req, 1024, {line, fields});
    BOOST_TEST((r.ec == http::error::header_limit), r.ec.message());
    // Each alone is fine.
    r = feed(req, 1024, {line + "\r\n"});
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.done);
    BOOST_TEST(req.target().size() == 601u);
    r = feed(req, 1024, {"GET / HTTP/1.1\r\n" + fields});
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.done);
}

BOOST_AUTO_TEST_CASE(fields_arriving_one_by_one_are_counted_together) {
    d::request req;
    // 40 fields of 50 bytes, each in its own read: 2 KiB of header against a 1 KiB limit.
    std::vector<std::string> pieces{"GET / HTTP/1.1\r\n"};
    for (int i = 0; i < 40; ++i)
        pieces.push_back("X-Field-" + std::to_string(100 + i) + ": " + std::string(35, 'v') +
                         "\r\n");
    pieces.push_back("\r\n");
    const auto r = feed(req, 1024, pieces);
    BOOST_TEST((r.ec == http::error::header_limit), r.ec.message());
    BOOST_TEST(!r.done);
}

BOOST_AUTO_TEST_CASE(exactly_the_limit_passes_one_byte_more_does_not) {
    for (const std::size_t target : {1u, 100u, 900u}) {
        for (const std::size_t piece : {1u, 7u, 100u, 512u, 5000u}) {
            BOOST_TEST_CONTEXT("target " << target << ", pieces of " << piece) {
                d::request req;
                auto r = feed(req, 1024, cut(request_of(1024, target), piece));
                BOOST_TEST(!r.ec, r.ec.message());
                BOOST_TEST(r.done);
                r = feed(req, 1024, cut(request_of(1025, target), piece));
                BOOST_TEST((r.ec == http::error::header_limit), r.ec.message());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(the_body_is_not_counted_in_the_header) {
    d::request req;
    const std::string body(5000, 'x');
    const auto text = "POST /v1/lookup HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + body;
    for (const std::size_t piece : {3u, 1000u, 10000u}) {
        const auto r = feed(req, 64, cut(text, piece));
        BOOST_TEST(!r.ec, r.ec.message());
        BOOST_TEST(r.done);
        BOOST_TEST(req.body() == body);
    }
}

BOOST_AUTO_TEST_SUITE_END()
