#include <p2pshare/names.hpp>

#include "words.hpp"

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

BOOST_AUTO_TEST_CASE(the_words_of_a_name) {
    using v = std::vector<std::string>;
    namespace d = p2pshare::detail;
    BOOST_TEST(d::name_words("Blue Train (1957).FLAC") == (v{"blue", "train", "1957", "flac"}));
    BOOST_TEST(d::name_words("ab_cd-ab.ef ab") == (v{"ab", "cd", "ef"})); // distinct, first order
    BOOST_TEST(d::name_words("...").empty());
    // Words of one character are not indexed; has_word() still finds them, whole.
    BOOST_TEST(d::name_words("Disc 2 - a song.ogg") == (v{"disc", "song", "ogg"}));
    BOOST_TEST(d::has_word("Disc 2 - a song.ogg", "2"));
    BOOST_TEST(d::has_word("Disc 2 - a song.ogg", "a"));
    BOOST_TEST(d::has_word("Disc 2 - a song.ogg", "disc"));
    BOOST_TEST(!d::has_word("Disc 12 - song.ogg", "2"));
    BOOST_TEST(!d::has_word("Disc 12 - song.ogg", "s"));
    BOOST_TEST(!d::has_word("Disc 12 - song.ogg", ""));
    // Bytes over 0x7f belong to words: a UTF-8 letter stays inside its word, unchanged.
    BOOST_TEST(d::name_words("Caf\xc3\xa9 M\xc3\xbcller.txt") ==
               (v{"caf\xc3\xa9", "m\xc3\xbcller", "txt"}));
    // A long word is cut at max_word_bytes, in names and queries alike.
    const std::string long_word(100, 'X');
    BOOST_TEST(d::name_words(long_word + ".bin") ==
               (v{std::string(d::max_word_bytes, 'x'), "bin"}));
    BOOST_TEST(d::query_words(long_word).value().indexed == v{std::string(d::max_word_bytes, 'x')});
    BOOST_TEST(d::has_word(long_word + ".bin", std::string(d::max_word_bytes, 'x')));
}

BOOST_AUTO_TEST_CASE(query_words_are_bounded) {
    namespace d = p2pshare::detail;
    using v = std::vector<std::string>;
    BOOST_TEST(d::query_words("Blue  TRAIN blue").value().indexed == (v{"blue", "train"}));
    BOOST_TEST(d::query_words("Blue  TRAIN blue").value().narrowing.empty());
    const auto split = d::query_words("Disc 2 A disc a").value();
    BOOST_TEST(split.indexed == v{"disc"});
    BOOST_TEST(split.narrowing == (v{"2", "a"}));
    BOOST_TEST((d::query_words(" -- ").error().code == p2pshare::errc::bad_field));
    BOOST_TEST((d::query_words("").error().code == p2pshare::errc::bad_field));
    // Only words of one character: nothing indexed to walk.
    BOOST_TEST((d::query_words("a 2").error().code == p2pshare::errc::bad_field));
    BOOST_TEST((d::query_words("ab c d e f g h i j").error().code == p2pshare::errc::too_many));
    BOOST_TEST(
        (d::query_words("aa bb cc dd ee ff gg hh ii").error().code == p2pshare::errc::too_many));
    BOOST_TEST(d::query_words("aa b c d e f g h").value().narrowing.size() == 7u);
}

BOOST_AUTO_TEST_SUITE_END()
