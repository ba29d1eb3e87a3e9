// query.hpp: request targets split into decoded path segments and query parameters.
#include "query.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>
#include <vector>

using segments = std::vector<std::string>;
using params = std::vector<std::pair<std::string, std::string>>;
using p2pshare::detail::parse_target;

BOOST_AUTO_TEST_SUITE(query)

BOOST_AUTO_TEST_CASE(path_segments) {
    auto t = parse_target("/v1/peers/12/lease");
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST(t->segments == (segments{"v1", "peers", "12", "lease"}));
    BOOST_TEST(t->query.empty());
    auto root = parse_target("/");
    BOOST_TEST_REQUIRE(root.has_value());
    BOOST_TEST(root->segments == segments{""});
    auto trailing = parse_target("/v1/files/");
    BOOST_TEST_REQUIRE(trailing.has_value());
    BOOST_TEST(trailing->segments == (segments{"v1", "files", ""}));
    auto empty_middle = parse_target("/a//b");
    BOOST_TEST_REQUIRE(empty_middle.has_value());
    BOOST_TEST(empty_middle->segments == (segments{"a", "", "b"}));
}

BOOST_AUTO_TEST_CASE(segments_are_percent_decoded) {
    auto t = parse_target("/v1/files/a%20b%2Fc+d");
    BOOST_TEST_REQUIRE(t.has_value());
    // An encoded '/' stays inside its segment; '+' means '+' in a path.
    BOOST_TEST(t->segments == (segments{"v1", "files", "a b/c+d"}));
}

BOOST_AUTO_TEST_CASE(query_parameters) {
    auto t = parse_target("/v1/files?contains=a+b&after=x%26y&limit=5&&flag&contains=second");
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST(t->segments == (segments{"v1", "files"}));
    BOOST_TEST(t->query == (params{{"contains", "a b"},
                                   {"after", "x&y"},
                                   {"limit", "5"},
                                   {"flag", ""},
                                   {"contains", "second"}}));
    BOOST_TEST(t->param("contains").value() == "a b"); // the first one wins
    BOOST_TEST(t->param("after").value() == "x&y");
    BOOST_TEST(t->param("flag").value() == "");
    BOOST_TEST(!t->param("missing").has_value());
    auto plus = parse_target("/x?q=%2B1+2");
    BOOST_TEST_REQUIRE(plus.has_value());
    BOOST_TEST(plus->param("q").value() == "+1 2");
    auto empty = parse_target("/x?");
    BOOST_TEST_REQUIRE(empty.has_value());
    BOOST_TEST(empty->query.empty());
    auto eq = parse_target("/x?a=b=c");
    BOOST_TEST_REQUIRE(eq.has_value());
    BOOST_TEST(eq->param("a").value() == "b=c");
}

BOOST_AUTO_TEST_CASE(malformed_targets) {
    for (const auto* bad : {"", "v1/files", "*", "http://host/v1/files", "/v1/%zz", "/v1/%2",
                            "/v1/files?contains=%", "/v1/files?%g1=x", "/a%"}) {
        BOOST_TEST_CONTEXT("target: '" << bad << "'") { BOOST_TEST(!parse_target(bad)); }
    }
}

BOOST_AUTO_TEST_SUITE_END()
