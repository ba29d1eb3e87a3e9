// The index server's error answers on a real server. After each error the server must still
// answer, and the error must have changed nothing a client can see.
#include "index_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

namespace test = p2pshare::test;
using namespace std::string_literals;

namespace {

struct errors_fixture : test::running_index {
    errors_fixture() : test::running_index(make_options()) {
        token1 = test::register_peer(port(), 1, {"a.txt", "shared.txt"}, 5001);
        token2 = test::register_peer(port(), 2, {"shared.txt"}, 5002);
    }

    static p2pshare::IndexServerOptions make_options() {
        auto o = defaults();
        o.limits.header_limit = 1024;
        o.limits.body_limit = 4096;
        o.index.max_files_per_peer = 3;
        o.index.max_lookup_names = 3;
        o.index.max_list_page = 5;
        return o;
    }

    /// Sends a request that must fail with `status` and `code`, then checks that the server still
    /// answers and that nothing changed.
    void expect_error(const std::function<test::http_reply()>& send, unsigned status,
                      std::string_view code) {
        const auto before = test::snapshot(port(), probes);
        const auto reply = send();
        test::check_error(reply, status, code);
        test::check_alive(port());
        BOOST_TEST(test::snapshot(port(), probes) == before);
    }

    void expect_error(const std::string& method, const std::string& target, const std::string& body,
                      unsigned status, std::string_view code,
                      const std::map<std::string, std::string>& headers = {}) {
        BOOST_TEST_CONTEXT(method << " " << target << " " << body) {
            expect_error([&] { return test::http_call(port(), method, target, body, headers); },
                         status, code);
        }
    }

    void expect_raw_error(const std::string& bytes, unsigned status, std::string_view code) {
        BOOST_TEST_CONTEXT("raw request: " << bytes.substr(0, 80)) {
            expect_error([&] { return test::parse_reply(test::raw_call(port(), bytes)); }, status,
                         code);
        }
    }

    /// Both leases are still good.
    void check_tokens() {
        BOOST_TEST(
            test::http_call(port(), "PUT", "/v1/peers/1/lease", "", test::bearer(token1)).status ==
            200u);
        BOOST_TEST(
            test::http_call(port(), "PUT", "/v1/peers/2/lease", "", test::bearer(token2)).status ==
            200u);
    }

    std::string register_body(const std::string& files, std::uint32_t id = 3) {
        return R"({"id":)" + std::to_string(id) + R"(,"port":6000,"files":)" + files + "}";
    }

    std::string token1;
    std::string token2;
    const std::vector<std::string> probes{"new.txt", "b.txt", "x", "f0"};
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(index_errors, errors_fixture)

BOOST_AUTO_TEST_CASE(malformed_json) {
    for (const auto& body : {""s, "{"s, "nope"s, R"({"id":3,"port":1,"files":[]}})"s,
                             R"({"id":3,"port":1,"files":[],})"s}) {
        expect_error("POST", "/v1/peers", body, 400, "bad_json");
        expect_error("PUT", "/v1/peers/1/files", body, 400, "bad_json", test::bearer(token1));
        expect_error("POST", "/v1/lookup", body, 400, "bad_json");
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(wrong_types) {
    const auto f = test::file_json("new.txt");
    for (const auto& body : {
             "[]"s,
             R"("text")"s,
             R"({"id":"3","port":6000,"files":[]})"s,
             R"({"id":-3,"port":6000,"files":[]})"s,
             R"({"id":3.5,"port":6000,"files":[]})"s,
             R"({"id":4294967296,"port":6000,"files":[]})"s,
             R"({"id":3,"port":"6000","files":[]})"s,
             R"({"id":3,"port":0,"files":[]})"s,
             R"({"id":3,"port":65536,"files":[]})"s,
             R"({"id":3,"port":6000,"files":{}})"s,
             R"({"id":3,"port":6000,"files":["new.txt"]})"s,
             R"({"id":3,"port":6000,"files":[{"name":5,"size":1,"sha256":")" + test::sha_of("x") +
                 R"("}]})",
             R"({"id":3,"port":6000,"files":[{"name":"x","size":-1,"sha256":")" +
                 test::sha_of("x") + R"("}]})",
             R"({"id":3,"port":6000,"files":[{"name":"x","size":1.5,"sha256":")" +
                 test::sha_of("x") + R"("}]})",
             R"({"id":3,"port":6000,"files":[{"name":"x","size":1,"sha256":"abc"}]})"s,
             R"({"id":3,"port":6000,"files":[{"name":"x","size":1,"sha256":")" +
                 std::string(64, 'A') + R"("}]})",
             R"({"id":3,"port":6000,"files":[)" + f + "," + f + "]}",
             R"({"id":3,"port":6000,"files":[],"host":"bad host"})"s,
             R"({"id":3,"port":6000,"files":[],"token":"short"})"s,
         }) {
        expect_error("POST", "/v1/peers", body, 400, "bad_field");
    }
    for (const auto& body :
         {"[]"s, R"({"files":"a"})"s, R"({"files":[1]})"s, R"({"files":[)" + f + "," + f + "]}"}) {
        expect_error("PUT", "/v1/peers/1/files", body, 400, "bad_field", test::bearer(token1));
    }
    for (const auto& body :
         {"[]"s, R"({"names":"x"})"s, R"({"names":[1]})"s, R"({"names":[null]})"s}) {
        expect_error("POST", "/v1/lookup", body, 400, "bad_field");
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(missing_fields) {
    const auto files = test::files_json({"new.txt"});
    for (const auto& body :
         {"{}"s, R"({"port":6000,"files":[]})"s, R"({"id":3,"files":[]})"s,
          R"({"id":3,"port":6000})"s,
          R"({"id":3,"port":6000,"files":[{"size":1,"sha256":")" + test::sha_of("x") + R"("}]})",
          R"({"id":3,"port":6000,"files":[{"name":"x","sha256":")" + test::sha_of("x") + R"("}]})",
          R"({"id":3,"port":6000,"files":[{"name":"x","size":1}]})"s}) {
        expect_error("POST", "/v1/peers", body, 400, "bad_field");
    }
    expect_error("PUT", "/v1/peers/1/files", "{}", 400, "bad_field", test::bearer(token1));
    expect_error("POST", "/v1/lookup", "{}", 400, "bad_field");
    check_tokens();
}

BOOST_AUTO_TEST_CASE(bad_names) {
    for (const auto& name :
         {""s, "/"s, "a/b"s, ".."s, "new\0.txt"s, std::string(256, 'n'), "x.part"s}) {
        BOOST_TEST_CONTEXT("name " << test::json_quote(name)) {
            expect_error("POST", "/v1/peers", register_body("[" + test::file_json(name) + "]"), 400,
                         "bad_name");
            expect_error("PUT", "/v1/peers/1/files", R"({"files":[)" + test::file_json(name) + "]}",
                         400, "bad_name", test::bearer(token1));
            expect_error("POST", "/v1/lookup", R"({"names":[)" + test::json_quote(name) + "]}", 400,
                         "bad_name");
        }
    }
    // A bad name among good ones refuses the whole request.
    expect_error(
        "POST", "/v1/peers",
        register_body("[" + test::file_json("new.txt") + "," + test::file_json("..") + "]"), 400,
        "bad_name");
    check_tokens();
}

BOOST_AUTO_TEST_CASE(too_many_items) {
    const auto four = test::files_json({"f0", "f1", "f2", "f3"});
    expect_error("POST", "/v1/peers", register_body(four), 400, "too_many");
    expect_error("PUT", "/v1/peers/1/files", R"({"files":)" + four + "}", 400, "too_many",
                 test::bearer(token1));
    expect_error("POST", "/v1/lookup", R"({"names":["a.txt","b","c","d"]})", 400, "too_many");
    // At the limit it works.
    const auto three = test::files_json({"f0", "f1", "f2"});
    BOOST_TEST(
        test::http_call(port(), "POST", "/v1/lookup", R"({"names":["a.txt","b","c"]})").status ==
        200u);
    BOOST_TEST(test::http_call(port(), "POST", "/v1/peers", register_body(three)).status == 201u);
    BOOST_TEST(test::list_names(port(), "contains=f") ==
               (std::vector<std::string>{"f0", "f1", "f2"}));
}

BOOST_AUTO_TEST_CASE(header_too_large) {
    const auto pad = std::string(2000, 'p');
    expect_raw_error("GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + "\r\n\r\n", 431,
                     "header_too_large");
    expect_raw_error("GET /v1/files?contains=" + pad + " HTTP/1.1\r\nHost: x\r\n\r\n", 431,
                     "header_too_large");
    expect_error("GET", "/v1/health", "", 431, "header_too_large", {{"X-Pad", pad}});
    // The request line and the header fields share the one limit (1024 bytes here): each is
    // under it alone, not together.
    const auto half = std::string(600, 'q');
    expect_raw_error(
        "GET /v1/health?pad=" + half + " HTTP/1.1\r\nHost: x\r\nX-Pad: " + half + "\r\n\r\n", 431,
        "header_too_large");
    const auto line_alone = test::parse_reply(test::raw_call(
        port(),
        "GET /v1/health?pad=" + half + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    BOOST_TEST(line_alone.status == 200u);
    const auto fields_alone = test::parse_reply(test::raw_call(
        port(),
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + half + "\r\nConnection: close\r\n\r\n"));
    BOOST_TEST(fields_alone.status == 200u);
    // Exactly at the limit it works; one byte more does not.
    const std::string start = "GET /v1/health HTTP/1.1\r\nConnection: close\r\nX-Pad: ";
    const auto exact = start + std::string(1024 - start.size() - 4, 'e') + "\r\n\r\n";
    BOOST_TEST_REQUIRE(exact.size() == 1024u);
    BOOST_TEST(test::parse_reply(test::raw_call(port(), exact)).status == 200u);
    const auto over = start + std::string(1024 - start.size() - 3, 'e') + "\r\n\r\n";
    expect_raw_error(over, 431, "header_too_large");
    // Just under the limit it works.
    const auto small = test::http_call(port(), "GET", "/v1/health", "", {{"X-Pad", "p"}});
    BOOST_TEST(small.status == 200u);
    check_tokens();
}

BOOST_AUTO_TEST_CASE(body_too_large) {
    // A JSON body made long with spaces: exactly at the limit it is accepted.
    const std::string json = R"({"names":["a.txt"]})";
    const auto at_limit = json + std::string(4096 - json.size(), ' ');
    const auto ok = test::http_call(port(), "POST", "/v1/lookup", at_limit);
    BOOST_TEST(ok.status == 200u, ok.body);
    const auto over = at_limit + " ";
    expect_error("POST", "/v1/lookup", over, 413, "body_too_large");
    expect_error("POST", "/v1/peers", register_body("[]") + std::string(5000, ' '), 413,
                 "body_too_large");
    expect_raw_error("PUT /v1/peers/1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                         token1 + "\r\nContent-Length: 100000\r\n\r\n{",
                     413, "body_too_large");
    // Chunked: the limit is found while the body arrives.
    std::string chunked =
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i)
        chunked += "400\r\n" + std::string(0x400, ' ') + "\r\n";
    chunked += "0\r\n\r\n";
    expect_raw_error(chunked, 413, "body_too_large");
    check_tokens();
}

BOOST_AUTO_TEST_CASE(unknown_peer) {
    expect_error("PUT", "/v1/peers/99/lease", "", 404, "not_found", test::bearer(token1));
    expect_error("PUT", "/v1/peers/99/files", R"({"files":[]})", 404, "not_found",
                 test::bearer(token1));
    expect_error("DELETE", "/v1/peers/99", "", 404, "not_found", test::bearer(token1));
    check_tokens();
}

BOOST_AUTO_TEST_CASE(wrong_token) {
    const auto other = std::string(32, '0');
    for (const auto& token : {token2, other, "abc"s, std::string(32, 'A')}) {
        BOOST_TEST_CONTEXT("token " << token) {
            expect_error("PUT", "/v1/peers/1/lease", "", 403, "forbidden", test::bearer(token));
            expect_error("PUT", "/v1/peers/1/files",
                         R"({"files":)" + test::files_json({"new.txt"}) + "}", 403, "forbidden",
                         test::bearer(token));
            expect_error("DELETE", "/v1/peers/1", "", 403, "forbidden", test::bearer(token));
        }
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(missing_token) {
    const std::map<std::string, std::string> none;
    for (const auto& headers :
         {none, std::map<std::string, std::string>{{"Authorization", "Basic " + token1}},
          std::map<std::string, std::string>{{"Authorization", token1}}}) {
        expect_error("PUT", "/v1/peers/1/lease", "", 401, "unauthorized", headers);
        expect_error("PUT", "/v1/peers/1/files", R"({"files":[]})", 401, "unauthorized", headers);
        expect_error("DELETE", "/v1/peers/1", "", 401, "unauthorized", headers);
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(id_taken) {
    // Peer 1 is live: neither another peer's token nor no token can take its id.
    expect_error("POST", "/v1/peers", register_body(test::files_json({"new.txt"}), 1), 409,
                 "conflict");
    expect_error("POST", "/v1/peers",
                 R"({"id":1,"port":6000,"files":[],"token":")" + token2 + R"("})", 409, "conflict");
    expect_error("POST", "/v1/peers",
                 R"({"id":1,"port":6000,"files":[],"token":")" + std::string(32, '9') + R"("})",
                 409, "conflict");
    check_tokens();
}

BOOST_AUTO_TEST_CASE(wrong_method) {
    const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
        {"POST", "/v1/health", "GET"},
        {"DELETE", "/v1/health", "GET"},
        {"POST", "/v1/files", "GET"},
        {"PUT", "/v1/files", "GET"},
        {"GET", "/v1/lookup", "POST"},
        {"PUT", "/v1/lookup", "POST"},
        {"GET", "/v1/peers", "POST"},
        {"DELETE", "/v1/peers", "POST"},
        {"GET", "/v1/peers/1", "DELETE"},
        {"PUT", "/v1/peers/1", "DELETE"},
        {"GET", "/v1/peers/1/lease", "PUT"},
        {"POST", "/v1/peers/1/lease", "PUT"},
        {"DELETE", "/v1/peers/1/lease", "PUT"},
        {"GET", "/v1/peers/1/files", "PUT"},
        {"POST", "/v1/peers/1/files", "PUT"},
        // The status page and the counters (protocol.md §6.9, §6.10).
        {"PUT", "/", "GET"},
        {"POST", "/metrics", "GET"},
    };
    for (const auto& [method, target, allow] : cases) {
        BOOST_TEST_CONTEXT(method << " " << target) {
            const auto before = test::snapshot(port(), probes);
            const auto reply =
                test::http_call(port(), method, target, R"({"files":[]})", test::bearer(token1));
            test::check_error(reply, 405, "method_not_allowed");
            // The Allow header lists the method of the path, never the one refused.
            const auto allowed = test::allowed_methods(reply);
            BOOST_TEST((std::find(allowed.begin(), allowed.end(), allow) != allowed.end()),
                       "Allow: " << reply.header("allow"));
            BOOST_TEST((std::find(allowed.begin(), allowed.end(), method) == allowed.end()),
                       "Allow: " << reply.header("allow"));
            test::check_alive(port());
            BOOST_TEST(test::snapshot(port(), probes) == before);
        }
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(unknown_path) {
    for (const auto* target :
         {"/v1", "/v2/health", "/v1/health/x", "/v1/peers/1/other", "/v1/peers/1/lease/x",
          "/v1/files/a.txt", "/health", "/V1/health", "/metrics/x", "//"}) {
        expect_error("GET", target, "", 404, "not_found");
        expect_error("PUT", target, "", 404, "not_found", test::bearer(token1));
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(bad_peer_id) {
    for (const auto* target : {"/v1/peers/abc", "/v1/peers/01/lease", "/v1/peers/-1/files",
                               "/v1/peers/4294967296", "/v1/peers/1.0/lease", "/v1/peers//lease"}) {
        expect_error("PUT", target, "", 400, "bad_field", test::bearer(token1));
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(bad_list_parameters) {
    for (const auto* query : {"limit=0", "limit=6", "limit=abc", "limit=-1", "limit=", "limit=1x",
                              "limit=99999999999999999999999"}) {
        expect_error("GET", "/v1/files?"s + query, "", 400, "bad_field");
    }
}

BOOST_AUTO_TEST_CASE(malformed_requests) {
    for (const auto& bytes :
         {"GARBAGE\r\n\r\n"s, "GET\r\n\r\n"s,
          "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"s,
          "GET /v1/health HTTP/1.1\r\nno colon here\r\n\r\n"s,
          "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n"s,
          "GET /v1/health HTTQ/1.1\r\n\r\n"s, "GET  /v1/health HTTP/1.1\r\n\r\n"s}) {
        expect_raw_error(bytes, 400, "bad_request");
    }
    // Targets the router cannot read.
    for (const auto* target : {"/v1/%zz", "v1/health", "/v1/files?contains=%"}) {
        expect_raw_error("GET "s + target + " HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    }
    check_tokens();
}

BOOST_AUTO_TEST_CASE(unknown_methods) {
    // Methods HTTP does not know get 400 (not 404 or 405) whatever the path, and change nothing.
    for (const auto* method : {"FOO", "BREW", "get", "Post"}) {
        for (const auto* target : {"/v1/health", "/v1/peers", "/v1/peers/1/lease", "/nothing"}) {
            expect_raw_error(std::string(method) + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n",
                             400, "bad_request");
        }
    }
    check_tokens();
}

BOOST_AUTO_TEST_SUITE_END()
