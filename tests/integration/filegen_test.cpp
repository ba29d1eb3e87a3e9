// The filegen executable, run for real: options, the dialog on stdin, names, sizes, content.
#include <p2pshare/names.hpp>

#include <boost/test/unit_test.hpp>

#include "test_support.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace p2pshare;

namespace {

using test::run_result;

/// Runs filegen in `cwd` with `args`, feeding it `input` and then the end of input.
run_result run_filegen(const fs::path& cwd, const std::vector<std::string>& args,
                       const std::string& input = {}) {
    return test::run_app("filegen", args, cwd, input);
}

/// The names of the files in `dir`.
std::set<std::string> names_in(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
        names.insert(entry.path().filename().string());
    }
    return names;
}

bool all_printable(const std::string& content) {
    return std::all_of(content.begin(), content.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 33 && u <= 126;
    });
}

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(filegen_exe)

BOOST_AUTO_TEST_CASE(writes_files_of_exact_sizes_and_printable_content) {
    test::temp_dir dir;
    // 3 MiB + 5 spans several 1 MiB chunks and ends on a partial 8-byte group.
    const auto r = run_filegen(dir.path(), {"--dirs", "p1", "p2", "--sizes", "128", "2kb", "1000",
                                            "3145733", "--count", "2", "--seed", "7"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    const std::vector<std::pair<std::string, std::size_t>> expected{
        {"128B", 128}, {"2KiB", 2048}, {"1000B", 1000}, {"3145733B", 3145733}};
    std::set<std::string> expected_names;
    for (const auto& [label, size] : expected) {
        for (int k = 1; k <= 2; ++k)
            expected_names.insert(label + "-" + std::to_string(k) + ".txt");
    }
    for (const std::string folder : {"p1", "p2"}) {
        BOOST_TEST(names_in(dir / folder) == expected_names, "files in " << folder);
        for (const auto& [label, size] : expected) {
            for (int k = 1; k <= 2; ++k) {
                const std::string name = label + "-" + std::to_string(k) + ".txt";
                BOOST_TEST(is_valid_file_name(name));
                const auto content = test::read_file(dir / folder / name);
                BOOST_TEST(content.size() == size, name);
                BOOST_TEST(all_printable(content), name);
                BOOST_TEST(r.out.find(folder + "/" + name + " " + std::to_string(size) +
                                      " bytes\n") != std::string::npos,
                           r.out);
            }
        }
    }
    BOOST_TEST(count_of(r.out, "\n") == 16u, r.out); // one line per file
    // Two files of one size are different; a name stands for one content in every folder.
    BOOST_TEST(test::read_file(dir / "p1" / "2KiB-1.txt") !=
               test::read_file(dir / "p1" / "2KiB-2.txt"));
    BOOST_TEST(test::read_file(dir / "p1" / "2KiB-1.txt") ==
               test::read_file(dir / "p2" / "2KiB-1.txt"));
}

BOOST_AUTO_TEST_CASE(same_seed_gives_same_bytes_and_another_seed_other_bytes) {
    test::temp_dir a;
    test::temp_dir b;
    test::temp_dir c;
    const auto args = [](const std::string& seed) {
        return std::vector<std::string>{"--dirs", "p1",     "--sizes", "1000",   "1MiB",
                                        "100003", "--seed", seed,      "--quiet"};
    };
    BOOST_TEST_REQUIRE(run_filegen(a.path(), args("42")).status == 0);
    BOOST_TEST_REQUIRE(run_filegen(b.path(), args("42")).status == 0);
    BOOST_TEST_REQUIRE(run_filegen(c.path(), args("43")).status == 0);
    for (const std::string name : {"1000B-1.txt", "1MiB-1.txt", "100003B-1.txt"}) {
        const auto first = test::read_file(a / "p1" / name);
        BOOST_TEST(first == test::read_file(b / "p1" / name), name);
        BOOST_TEST(first != test::read_file(c / "p1" / name), name);
    }
}

BOOST_AUTO_TEST_CASE(prefix_uses_the_folder_name) {
    test::temp_dir dir;
    const auto r = run_filegen(dir.path(), {"--dirs", "p1", "sub/p2/", "--sizes", "2kb", "2048",
                                            "--prefix", "--seed", "1"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(names_in(dir / "p1") == std::set<std::string>{"p1-2KiB-1.txt"});
    BOOST_TEST(names_in(dir / "sub" / "p2") == std::set<std::string>{"p2-2KiB-1.txt"});
    BOOST_TEST(test::read_file(dir / "sub" / "p2" / "p2-2KiB-1.txt").size() == 2048u);
    BOOST_TEST(count_of(r.out, "\n") == 2u, r.out);
}

BOOST_AUTO_TEST_CASE(quiet_prints_nothing) {
    test::temp_dir dir;
    const auto r = run_filegen(dir.path(), {"--dirs", "p1", "--sizes", "10", "--quiet"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.empty(), r.out);
    BOOST_TEST(test::read_file(dir / "p1" / "10B-1.txt").size() == 10u);
}

BOOST_AUTO_TEST_CASE(dialog_on_stdin_asks_again_after_a_bad_answer) {
    test::temp_dir dir;
    // Bad size, then good; bad count, then good; bad yes/no, then good.
    const auto r =
        run_filegen(dir.path(), {"--seed", "3"}, "p1 p2\n12xb 128\n128 2kb\n0\n2\nmaybe\ny\n");
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST(count_of(r.out, "Folders to fill") == 1u, r.out);
    BOOST_TEST(count_of(r.out, "File sizes in bytes") == 2u, r.out);
    BOOST_TEST(count_of(r.out, "How many files of each size") == 2u, r.out);
    BOOST_TEST(count_of(r.out, "Prefix file names with the folder name") == 2u, r.out);
    BOOST_TEST(r.out.find("'12xb' is not a size") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("'0' is not a number of files") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("answer y or n") != std::string::npos, r.out);
    for (const std::string folder : {"p1", "p2"}) {
        BOOST_TEST(names_in(dir / folder) ==
                   (std::set<std::string>{folder + "-128B-1.txt", folder + "-128B-2.txt",
                                          folder + "-2KiB-1.txt", folder + "-2KiB-2.txt"}));
        const auto content = test::read_file(dir / folder / (folder + "-2KiB-2.txt"));
        BOOST_TEST(content.size() == 2048u);
        BOOST_TEST(all_printable(content));
    }
}

BOOST_AUTO_TEST_CASE(dialog_skips_questions_answered_by_options) {
    test::temp_dir dir;
    const auto r = run_filegen(dir.path(), {"--count", "3", "--prefix"}, "p1\n64\n");
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST(r.out.find("How many files") == std::string::npos, r.out);
    BOOST_TEST(r.out.find("Prefix file names") == std::string::npos, r.out);
    BOOST_TEST(names_in(dir / "p1") ==
               (std::set<std::string>{"p1-64B-1.txt", "p1-64B-2.txt", "p1-64B-3.txt"}));
}

BOOST_AUTO_TEST_CASE(end_of_input_in_the_dialog_fails_with_a_message) {
    test::temp_dir dir;
    const auto r = run_filegen(dir.path(), {}, "p1\n");
    BOOST_TEST(r.status != 0);
    BOOST_TEST(r.err.find("input ended") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(dir / "p1"));
}

BOOST_AUTO_TEST_CASE(bad_options_fail_with_a_message_and_write_nothing) {
    const std::vector<std::vector<std::string>> cases{
        {"--dirs", "p1", "--sizes", "12xb"},
        {"--dirs", "p1"},
        {"--sizes", "128"},
        {"--dirs", "p1", "--sizes", "128", "--count", "0"},
        {"--dirs", "p1", "--sizes", "128", "--count", "-1"},
        {"--dirs", "p1", "--sizes", "128", "--count", "two"},
        {"--dirs", "p1", "--sizes", "128", "--seed", "abc"},
        {"--dirs", "p1", "--sizes", "128", "--bogus"},
        {"--dirs", "p1", "--sizes", "128", "extra"},
        {"--dirs", "/", "--sizes", "128", "--prefix"},
    };
    for (const auto& args : cases) {
        test::temp_dir dir;
        std::string joined;
        for (const auto& a : args)
            joined += a + " ";
        const auto r = run_filegen(dir.path(), args);
        BOOST_TEST(r.status == 2, joined);
        BOOST_TEST(!r.err.empty(), joined);
        BOOST_TEST(!fs::exists(dir / "p1"), joined);
    }
}

BOOST_AUTO_TEST_CASE(existing_file_is_kept_unless_forced) {
    test::temp_dir dir;
    test::write_file(dir / "p1" / "128B-1.txt", "mine");
    auto r = run_filegen(dir.path(), {"--dirs", "p1", "--sizes", "128", "--count", "2"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("128B-1.txt already exists") != std::string::npos, r.err);
    BOOST_TEST(test::read_file(dir / "p1" / "128B-1.txt") == "mine");
    BOOST_TEST(test::read_file(dir / "p1" / "128B-2.txt").size() == 128u); // the others are written
    BOOST_TEST(names_in(dir / "p1") == (std::set<std::string>{"128B-1.txt", "128B-2.txt"}));

    r = run_filegen(dir.path(), {"--dirs", "p1", "--sizes", "128", "--count", "2", "--force"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    const auto content = test::read_file(dir / "p1" / "128B-1.txt");
    BOOST_TEST(content.size() == 128u);
    BOOST_TEST(all_printable(content));
    BOOST_TEST(names_in(dir / "p1") == (std::set<std::string>{"128B-1.txt", "128B-2.txt"}));
}

BOOST_AUTO_TEST_CASE(help_documents_the_options) {
    test::temp_dir dir;
    const auto r = run_filegen(dir.path(), {"--help"});
    BOOST_TEST(r.status == 0);
    for (const std::string option : {"--dirs", "--sizes", "--count", "--prefix", "--seed",
                                     "--force", "--quiet", "2KiB-1.txt"}) {
        BOOST_TEST(r.out.find(option) != std::string::npos, option);
    }
}

BOOST_AUTO_TEST_SUITE_END()
