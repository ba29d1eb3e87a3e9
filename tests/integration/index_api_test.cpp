// The index server's endpoints on a real server, over loopback: what a well-behaved peer sees.
#include "index_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace test = p2pshare::test;
namespace json = boost::json;
using names = std::vector<std::string>;
using ids = std::vector<std::uint64_t>;

namespace {

struct api_fixture : test::running_index {
    api_fixture() : test::running_index(make_options()) {}
    static p2pshare::IndexServerOptions make_options() {
        auto o = defaults();
        o.index.max_list_page = 4;
        return o;
    }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(index_api, api_fixture)

BOOST_AUTO_TEST_CASE(register_answers_the_lease) {
    const auto reply =
        test::http_call(port(), "POST", "/v1/peers",
                        R"({"id":7,"port":4321,"files":[)" + test::file_json("a.txt", 10) + "]}");
    BOOST_TEST(reply.status == 201u);
    BOOST_TEST(reply.header("content-type") == "application/json");
    const auto v = test::json_of(reply);
    BOOST_TEST(v.at("id").to_number<int>() == 7);
    const std::string token(v.at("token").as_string());
    BOOST_TEST(token.size() == 32u);
    BOOST_TEST(token.find_first_not_of("0123456789abcdef") == std::string::npos);
    BOOST_TEST(v.at("ttl_ms").to_number<std::int64_t>() == options().lease_ttl.count());
    // Without a host, the index uses the address the request came from.
    BOOST_TEST(v.at("host").as_string() == "127.0.0.1");
    BOOST_TEST(v.at("port").to_number<int>() == 4321);

    // Another peer, with an explicit host, gets another token.
    const auto other = test::http_call(port(), "POST", "/v1/peers",
                                       R"({"id":8,"host":"peer8.example","port":1,"files":[]})");
    BOOST_TEST(other.status == 201u);
    BOOST_TEST(test::json_of(other).at("host").as_string() == "peer8.example");
    BOOST_TEST(test::json_of(other).at("token").as_string() != token);

    const auto stats = io().run(server().async_stats());
    BOOST_TEST(stats.peers == 2u);
    BOOST_TEST(stats.names == 1u);
    BOOST_TEST(stats.files == 1u);
}

BOOST_AUTO_TEST_CASE(register_again_with_own_token) {
    const auto token = test::register_peer(port(), 3, {"old.txt"}, 4000);
    const auto reply = test::http_call(port(), "POST", "/v1/peers",
                                       R"({"id":3,"port":4001,"token":")" + token +
                                           R"(","files":)" + test::files_json({"new.txt"}) + "}");
    BOOST_TEST(reply.status == 200u); // 200: taken back, not created
    const auto v = test::json_of(reply);
    BOOST_TEST(v.at("token").as_string() == token);
    BOOST_TEST(v.at("port").to_number<int>() == 4001);
    BOOST_TEST(test::list_names(port()) == names{"new.txt"});
    const auto lookup =
        test::json_of(test::http_call(port(), "POST", "/v1/lookup", R"({"names":["new.txt"]})"));
    BOOST_TEST(lookup.at("results").at(0).at("sources").at(0).at("port").to_number<int>() == 4001);
}

BOOST_AUTO_TEST_CASE(renew_the_lease) {
    const auto token = test::register_peer(port(), 1, {"a"});
    const auto reply = test::http_call(port(), "PUT", "/v1/peers/1/lease", "", test::bearer(token));
    BOOST_TEST(reply.status == 200u);
    const auto v = test::json_of(reply);
    BOOST_TEST(v.at("id").to_number<int>() == 1);
    BOOST_TEST(v.at("ttl_ms").to_number<std::int64_t>() == options().lease_ttl.count());
    BOOST_TEST(test::lookup_ids(port(), "a") == ids{1});
}

BOOST_AUTO_TEST_CASE(replace_the_files) {
    const auto token = test::register_peer(port(), 1, {"a", "b"});
    test::register_peer(port(), 2, {"b"});
    const auto reply = test::http_call(port(), "PUT", "/v1/peers/1/files",
                                       R"({"files":)" + test::files_json({"b", "c", "d"}) + "}",
                                       test::bearer(token));
    BOOST_TEST(reply.status == 200u);
    const auto v = test::json_of(reply);
    BOOST_TEST(v.at("id").to_number<int>() == 1);
    BOOST_TEST(v.at("files").to_number<int>() == 3);
    BOOST_TEST(v.at("ttl_ms").to_number<std::int64_t>() == options().lease_ttl.count());
    BOOST_TEST(test::list_names(port()) == (names{"b", "c", "d"}));
    BOOST_TEST(test::lookup_ids(port(), "a").empty());
    BOOST_TEST(test::lookup_ids(port(), "b") == (ids{1, 2}));
    BOOST_TEST(test::lookup_ids(port(), "c") == ids{1});
    // An empty list withdraws every file but keeps the peer.
    const auto empty =
        test::http_call(port(), "PUT", "/v1/peers/1/files", R"({"files":[]})", test::bearer(token));
    BOOST_TEST(empty.status == 200u);
    BOOST_TEST(test::list_names(port()) == names{"b"});
    const auto health = test::json_of(test::http_call(port(), "GET", "/v1/health"));
    BOOST_TEST(health.at("peers").to_number<int>() == 2);
}

BOOST_AUTO_TEST_CASE(unregister_the_peer) {
    const auto token = test::register_peer(port(), 1, {"mine", "ours"});
    test::register_peer(port(), 2, {"ours"});
    const auto reply = test::http_call(port(), "DELETE", "/v1/peers/1", "", test::bearer(token));
    BOOST_TEST(reply.status == 200u);
    const auto v = test::json_of(reply);
    BOOST_TEST(v.at("id").to_number<int>() == 1);
    BOOST_TEST(v.at("unregistered").as_bool());
    BOOST_TEST(test::list_names(port()) == names{"ours"});
    BOOST_TEST(test::lookup_ids(port(), "ours") == ids{2});
    // It is gone: the token is worthless and the id free for anyone.
    test::check_error(test::http_call(port(), "DELETE", "/v1/peers/1", "", test::bearer(token)),
                      404, "not_found");
    test::check_error(test::http_call(port(), "PUT", "/v1/peers/1/lease", "", test::bearer(token)),
                      404, "not_found");
    const auto fresh = test::register_peer(port(), 1, {});
    BOOST_TEST(fresh != token);
}

BOOST_AUTO_TEST_CASE(list_pages_and_filters) {
    // 10 names over three peers, some shared by several: the list shows each name once.
    test::register_peer(port(), 1, {"alpha one", "beta", "gamma.txt", "delta.txt"});
    test::register_peer(port(), 2, {"beta", "epsilon.txt", "zeta", "eta", "alpha one"});
    test::register_peer(port(), 3, {"theta.txt", "iota", "kappa", "beta"});
    const names all{"alpha one", "beta", "delta.txt", "epsilon.txt", "eta",
                    "gamma.txt", "iota", "kappa",     "theta.txt",   "zeta"};

    // Page by page by hand: max_list_page is 4 here.
    const auto page1 = test::json_of(test::http_call(port(), "GET", "/v1/files"));
    BOOST_TEST(json::serialize(page1.at("names")) ==
               R"(["alpha one","beta","delta.txt","epsilon.txt"])");
    BOOST_TEST(page1.at("next_after").as_string() == "epsilon.txt");
    const auto page2 =
        test::json_of(test::http_call(port(), "GET", "/v1/files?after=epsilon.txt&limit=3"));
    BOOST_TEST(json::serialize(page2.at("names")) == R"(["eta","gamma.txt","iota"])");
    BOOST_TEST(page2.at("next_after").as_string() == "iota");
    const auto page3 =
        test::json_of(test::http_call(port(), "GET", "/v1/files?after=iota&limit=4"));
    BOOST_TEST(json::serialize(page3.at("names")) == R"(["kappa","theta.txt","zeta"])");
    BOOST_TEST(page3.at("next_after").is_null());

    BOOST_TEST(test::list_names(port()) == all);
    BOOST_TEST(test::list_names(port(), "limit=1") == all);
    BOOST_TEST(test::list_names(port(), "contains=.txt") ==
               (names{"delta.txt", "epsilon.txt", "gamma.txt", "theta.txt"}));
    BOOST_TEST(test::list_names(port(), "contains=.txt&limit=2") ==
               (names{"delta.txt", "epsilon.txt", "gamma.txt", "theta.txt"}));
    // Query values are percent-decoded; '+' is a space.
    BOOST_TEST(test::list_names(port(), "contains=a%20o") == names{"alpha one"});
    BOOST_TEST(test::list_names(port(), "contains=a+o") == names{"alpha one"});
    BOOST_TEST(test::list_names(port(), "contains=nothing").empty());
    const auto empty = test::json_of(test::http_call(port(), "GET", "/v1/files?after=zeta"));
    BOOST_TEST(empty.at("names").as_array().empty());
    BOOST_TEST(empty.at("next_after").is_null());
}

// A name goes from one source to several and back: the lookup, the list (names that are
// prefixes of others included) and word search follow each step, on every store.
BOOST_AUTO_TEST_CASE(a_name_from_one_source_to_several_and_back) {
    const auto sorted_ids = [&](const std::string& name) {
        auto v = test::lookup_ids(port(), name);
        std::sort(v.begin(), v.end());
        return v;
    };
    const auto one = test::register_peer(port(), 1, {"song", "song 2", "song.txt"});
    BOOST_TEST(sorted_ids("song") == ids{1});
    const auto two = test::register_peer(port(), 2, {"song"});
    const auto three = test::register_peer(port(), 3, {"song", "other"});
    BOOST_TEST(sorted_ids("song") == (ids{1, 2, 3}));
    const names all{"other", "song", "song 2", "song.txt"};
    BOOST_TEST(test::list_names(port()) == all);
    BOOST_TEST(test::list_names(port(), "limit=1") == all);
    BOOST_TEST(test::list_names(port(), "q=song") == (names{"song", "song 2", "song.txt"}));
    BOOST_TEST(test::http_call(port(), "DELETE", "/v1/peers/2", "", test::bearer(two)).status ==
               200u);
    BOOST_TEST(sorted_ids("song") == (ids{1, 3}));
    // Peer 1 drops it: one source left.
    BOOST_TEST(test::http_call(port(), "PUT", "/v1/peers/1/files",
                               R"({"files":)" + test::files_json({"song 2", "song.txt"}) + "}",
                               test::bearer(one))
                   .status == 200u);
    BOOST_TEST(sorted_ids("song") == ids{3});
    BOOST_TEST(test::list_names(port(), "limit=1") == all);
    BOOST_TEST(test::list_names(port(), "after=song") == (names{"song 2", "song.txt"}));
    // And back to two, then none.
    const auto four = test::register_peer(port(), 4, {"song"});
    BOOST_TEST(sorted_ids("song") == (ids{3, 4}));
    BOOST_TEST(test::http_call(port(), "DELETE", "/v1/peers/3", "", test::bearer(three)).status ==
               200u);
    BOOST_TEST(sorted_ids("song") == ids{4});
    BOOST_TEST(test::http_call(port(), "DELETE", "/v1/peers/4", "", test::bearer(four)).status ==
               200u);
    BOOST_TEST(sorted_ids("song").empty());
    BOOST_TEST(test::list_names(port()) == (names{"song 2", "song.txt"}));
    BOOST_TEST(test::list_names(port(), "q=song") == (names{"song 2", "song.txt"}));
}

BOOST_AUTO_TEST_CASE(word_search_with_q) {
    test::register_peer(port(), 1, {"Blue Train (1957).flac", "blue_in_green.mp3", "Kind of Blue"});
    test::register_peer(port(), 2, {"blue-train-live.ogg", "Train of Thought.mp3"});
    BOOST_TEST(test::list_names(port(), "q=train+BLUE") ==
               (names{"Blue Train (1957).flac", "blue-train-live.ogg"}));
    BOOST_TEST(test::list_names(port(), "q=blue&limit=1") ==
               (names{"Blue Train (1957).flac", "Kind of Blue", "blue-train-live.ogg",
                      "blue_in_green.mp3"}));
    BOOST_TEST(test::list_names(port(), "q=%28thought%29").size() == 1u);
    BOOST_TEST(test::list_names(port(), "q=trai").empty());
    // Words of one character are not indexed: they narrow what the longer words find, whole.
    test::register_peer(port(), 3, {"Blue 2.ogg", "Blue 12.ogg", "Disc 2 - Blue A.ogg"});
    BOOST_TEST(test::list_names(port(), "q=blue+2") ==
               (names{"Blue 2.ogg", "Disc 2 - Blue A.ogg"}));
    BOOST_TEST(test::list_names(port(), "q=a+2+BLUE") == names{"Disc 2 - Blue A.ogg"});
    BOOST_TEST(test::list_names(port(), "q=blue+3").empty());
    // Bad queries: no word, only words of one character, too many words, or q with contains.
    for (const auto* query :
         {"q=", "q=--", "q=2", "q=a+b", "q=ab+b+c+d+e+f+g+h+i", "q=blue&contains=b"}) {
        BOOST_TEST_CONTEXT(query) {
            const auto reply = test::http_call(port(), "GET", std::string("/v1/files?") + query);
            BOOST_TEST(reply.status == 400u);
            const auto error = std::string(test::json_of(reply).at("error").as_string());
            BOOST_TEST((error == "bad_field" || error == "too_many"));
        }
    }
}

BOOST_AUTO_TEST_CASE(lookup_returns_every_source) {
    const auto reg = [&](std::uint32_t id, const std::string& host, std::uint16_t peer_port,
                         const std::string& files) {
        const auto r = test::http_call(port(), "POST", "/v1/peers",
                                       R"({"id":)" + std::to_string(id) + R"(,"host":")" + host +
                                           R"(","port":)" + std::to_string(peer_port) +
                                           R"(,"files":)" + files + "}");
        BOOST_TEST_REQUIRE(r.status == 201u, r.body);
    };
    reg(1, "10.0.0.1", 1001, "[" + test::file_json("song.mp3", 1234) + "]");
    reg(2, "10.0.0.2", 1002,
        "[" + test::file_json("song.mp3", 1234) + "," + test::file_json("other", 5) + "]");
    const auto reply = test::http_call(port(), "POST", "/v1/lookup",
                                       R"({"names":["song.mp3","missing","other"]})");
    BOOST_TEST(reply.status == 200u);
    const auto v = test::json_of(reply);
    const auto& results = v.at("results").as_array();
    BOOST_TEST_REQUIRE(results.size() == 3u);
    // Results come in the order asked.
    BOOST_TEST(results[0].at("name").as_string() == "song.mp3");
    BOOST_TEST(results[0].at("found").as_bool());
    BOOST_TEST(results[1].at("name").as_string() == "missing");
    BOOST_TEST(!results[1].at("found").as_bool());
    BOOST_TEST(results[1].at("sources").as_array().empty());
    BOOST_TEST(results[2].at("found").as_bool());
    BOOST_TEST(results[2].at("sources").as_array().size() == 1u);

    auto sources = results[0].at("sources").as_array();
    BOOST_TEST_REQUIRE(sources.size() == 2u);
    std::sort(sources.begin(), sources.end(), [](const json::value& a, const json::value& b) {
        return a.at("id").to_number<int>() < b.at("id").to_number<int>();
    });
    for (int i = 0; i < 2; ++i) {
        const auto& s = sources[static_cast<std::size_t>(i)];
        BOOST_TEST(s.at("id").to_number<int>() == i + 1);
        BOOST_TEST(s.at("host").as_string() == "10.0.0." + std::to_string(i + 1));
        BOOST_TEST(s.at("port").to_number<int>() == 1001 + i);
        BOOST_TEST(s.at("size").to_number<std::uint64_t>() == 1234u);
        BOOST_TEST(s.at("sha256").as_string() == test::sha_of("song.mp3"));
    }
    // An empty lookup is fine.
    const auto none = test::http_call(port(), "POST", "/v1/lookup", R"({"names":[]})");
    BOOST_TEST(none.status == 200u);
    BOOST_TEST(test::json_of(none).at("results").as_array().empty());
}

BOOST_AUTO_TEST_CASE(health_counts) {
    auto v = test::json_of(test::http_call(port(), "GET", "/v1/health"));
    BOOST_TEST(v.at("status").as_string() == "ok");
    BOOST_TEST(v.at("peers").to_number<int>() == 0);
    BOOST_TEST(v.at("lease_ttl_ms").to_number<std::int64_t>() == options().lease_ttl.count());
    test::register_peer(port(), 1, {"a", "b"});
    test::register_peer(port(), 2, {"b", "c", "d"});
    v = test::json_of(test::http_call(port(), "GET", "/v1/health"));
    BOOST_TEST(v.at("peers").to_number<int>() == 2);
    BOOST_TEST(v.at("names").to_number<int>() == 4);
    BOOST_TEST(v.at("files").to_number<int>() == 5);
}

BOOST_AUTO_TEST_CASE(head_on_get_routes) {
    test::register_peer(port(), 1, {"a"});
    for (const auto* target : {"/v1/health", "/v1/files", "/v1/files?contains=a"}) {
        BOOST_TEST_CONTEXT(target) {
            const auto get = test::http_call(port(), "GET", target);
            const auto head = test::http_call(port(), "HEAD", target);
            BOOST_TEST(head.status == 200u);
            BOOST_TEST(head.body.empty());
            BOOST_TEST(head.header("content-type") == "application/json");
            BOOST_TEST(head.header("content-length") == std::to_string(get.body.size()));
            BOOST_TEST(!get.body.empty());
        }
    }
    // HEAD is a GET: not allowed where GET is not.
    const auto head = test::http_call(port(), "HEAD", "/v1/lookup");
    BOOST_TEST(head.status == 405u);
    const auto allowed = test::allowed_methods(head);
    BOOST_TEST((std::find(allowed.begin(), allowed.end(), "POST") != allowed.end()));
    BOOST_TEST((std::find(allowed.begin(), allowed.end(), "HEAD") == allowed.end()));
    BOOST_TEST(head.body.empty());
    BOOST_TEST(test::http_call(port(), "HEAD", "/v1/nothing").status == 404u);
}

BOOST_AUTO_TEST_CASE(percent_encoded_paths_and_big_ids) {
    const auto token = test::register_peer(port(), 4294967295u, {"x"});
    // %-escapes in the path are decoded before routing.
    const auto reply =
        test::http_call(port(), "PUT", "/v1/peers/%34294967295/%6Cease", "", test::bearer(token));
    BOOST_TEST(reply.status == 200u, reply.body);
    BOOST_TEST(test::json_of(reply).at("id").to_number<std::uint64_t>() == 4294967295u);
    const auto zero =
        test::http_call(port(), "POST", "/v1/peers", R"({"id":0,"port":1,"files":[]})");
    BOOST_TEST(zero.status == 201u);
    const auto del =
        test::http_call(port(), "DELETE", "/v1/peers/0", "",
                        test::bearer(std::string(test::json_of(zero).at("token").as_string())));
    BOOST_TEST(del.status == 200u);
}

BOOST_AUTO_TEST_SUITE_END()

// The lookup's plain form is read in place and anything else by the full JSON parser; both must
// give the same answer, with the index on a strand or on the executor of a one-thread io_context.
BOOST_AUTO_TEST_CASE(lookup_answers_alike_in_every_form_and_threading) {
    for (const bool on_strand : {false, true}) {
        BOOST_TEST_CONTEXT("on a strand " << on_strand) {
            test::running_index index(test::running_index::defaults(), on_strand);
            test::register_peer(index.port(), 1, {"a b.txt", "caf\xc3\xa9.txt", "x"});
            test::register_peer(index.port(), 2, {"x"});
            test::http_client client(index.port()); // one connection for every request
            const auto lookup = [&](const std::string& body) {
                const auto reply = client.call("POST", "/v1/lookup", body);
                BOOST_TEST(reply.status == 200u, reply.body);
                return reply.body;
            };
            const auto plain = lookup(R"({"names":["a b.txt","missing","x"]})");
            const auto v = json::parse(plain);
            BOOST_TEST(v.at("results").at(0).at("found").as_bool());
            BOOST_TEST(!v.at("results").at(1).at("found").as_bool());
            BOOST_TEST(v.at("results").at(2).at("sources").as_array().size() == 2u);
            BOOST_TEST(lookup(" {\n \"names\" : [ \"a b.txt\" , \"missing\",\"x\" ] }\r\n") ==
                       plain);
            BOOST_TEST(lookup(R"({"names":["a\u0020b.txt","missing","x"]})") == plain);
            // A UTF-8 name, raw or escaped.
            const auto raw = lookup("{\"names\":[\"caf\xc3\xa9.txt\"]}");
            BOOST_TEST(json::parse(raw).at("results").at(0).at("found").as_bool());
            BOOST_TEST(lookup(R"({"names":["caf\u00e9.txt"]})") == raw);
            // A large answer, then a small one on the same connection.
            std::string many = R"({"names":[)";
            for (int i = 0; i < 1000; ++i)
                many += (i > 0 ? ",\"x\"" : "\"x\"");
            many += "]}";
            const auto big = json::parse(lookup(many));
            BOOST_TEST(big.at("results").as_array().size() == 1000u);
            BOOST_TEST(big.at("results").at(999).at("sources").as_array().size() == 2u);
            BOOST_TEST(lookup(R"({"names":["a b.txt","missing","x"]})") == plain);
            // Errors are the full parser's.
            const auto bad = client.call("POST", "/v1/lookup", R"({"names":["a/b"]})");
            BOOST_TEST(bad.status == 400u);
            BOOST_TEST(test::json_of(bad).at("error").as_string() == "bad_name");
        }
    }
}
