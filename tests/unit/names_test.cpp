#include <p2pshare/names.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

BOOST_AUTO_TEST_SUITE(names)

BOOST_AUTO_TEST_CASE(plain_names_are_valid) {
    BOOST_TEST(p2pshare::is_valid_file_name("a.txt"));
    BOOST_TEST(p2pshare::is_valid_file_name("file with spaces.bin"));
    BOOST_TEST(p2pshare::is_valid_file_name(std::string(255, 'x')));
    BOOST_TEST(p2pshare::is_valid_file_name("h\xc3\xa9llo")); // UTF-8 is fine
}

BOOST_AUTO_TEST_CASE(bad_names_are_refused) {
    using namespace std::string_literals;
    for (const auto& bad : {""s, "."s, ".."s, "a/b"s, "../x"s, "/etc/passwd"s, "a\\b"s, "a\0b"s,
                            "x.part"s, "x.part.pieces"s, std::string(256, 'x'), "tab\there"s}) {
        BOOST_TEST_CONTEXT("name: " << bad) {
            BOOST_TEST(!p2pshare::is_valid_file_name(bad));
            BOOST_TEST(!p2pshare::file_name_problem(bad).empty());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
