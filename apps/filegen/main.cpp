// filegen: writes files of random printable ASCII into folders, for p2pshare peers to share.
//
// Run without --dirs/--sizes it asks its questions on standard input, like the original
// filegenerator.py; with them it runs unattended. See --help for the naming scheme.
// dialog: the answers and the questions; generate: names and writing; content: the bytes.
#include "dialog.hpp"
#include "generate.hpp"

#include <boost/program_options.hpp>

#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace filegen;

int main(int argc, char** argv) {
    Settings s;
    std::vector<std::string> dir_args;
    std::vector<std::string> size_args;
    std::string count_arg;
    std::string seed_arg;
    po::options_description desc(
        "filegen: writes files of random printable ASCII into folders, for p2pshare peers to\n"
        "share (each peer shares one folder, such as p1).\n\n"
        "Usage: filegen                                  (asks its questions on stdin)\n"
        "       filegen --dirs p1 p2 --sizes 128 2kb [--count 3] [--prefix] [--seed 42]\n\n"
        "Without --dirs and --sizes, filegen asks for the folders, the sizes, how many files\n"
        "of each size and whether to prefix names with the folder name (questions already\n"
        "answered by --count or --prefix are skipped). With either option it asks nothing and\n"
        "both are required.\n\n"
        "File names: [FOLDER-]SIZE-K.txt, where SIZE is the size in the largest binary unit\n"
        "that divides it exactly (2048 -> 2KiB, 3145728 -> 3MiB, 1000 -> 1000B) and K counts\n"
        "1..COUNT; with --prefix FOLDER is the folder's own name: p1/p1-2KiB-1.txt.\n"
        "Sizes that are equal once parsed (2kb, 2048) are written once.\n\n"
        "Content: bytes 33..126 ('!' to '~'; no spaces, no newlines) from a fast generator.\n"
        "It depends only on the seed and the file name: the same seed and arguments give\n"
        "byte-identical files, and files with the same name in several folders are the same.\n\n"
        "Each file is written to NAME.part (never listed nor served by a peer), then renamed,\n"
        "so no partial file ever has the final name. One line 'PATH SIZE bytes' is printed per "
        "file written.\n\n"
        "Exit status: 0 all files written; 1 some file could not be written or already\n"
        "existed; 2 bad options, or the input ended before every question was answered.\n\n"
        "Options");
    // clang-format off
    desc.add_options()
        ("help,h", "show this help and exit")
        ("dirs,d", po::value(&dir_args)->multitoken(),
         "folders to fill, created if missing")
        ("sizes,s", po::value(&size_args)->multitoken(),
         "file sizes in bytes; suffixes k/kb/KiB, m/mb/MiB, g/gb/GiB are multiples of 1024")
        ("count,n", po::value(&count_arg),
         "files of each size in each folder, 1..1000000 (default 1)")
        ("prefix,p", po::bool_switch(&s.prefix),
         "start each file name with the folder's name and '-'")
        ("seed", po::value(&seed_arg),
         "seed for the content, 0..2^64-1 (default: a random one)")
        ("force,f", po::bool_switch(&s.force), "overwrite files that already exist")
        ("quiet,q", po::bool_switch(&s.quiet), "do not print a line per file");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "filegen: " << e.what() << "\nTry 'filegen --help'.\n";
        return exit_usage;
    }
    if (vm.count("help")) {
        std::cout << desc << '\n';
        return exit_ok;
    }
    const auto usage_error = [](const std::string& message) {
        std::cerr << "filegen: " << message << "\nTry 'filegen --help'.\n";
        return exit_usage;
    };
    if (vm.count("count")) {
        if (auto problem = parse_count(count_arg, s.count); !problem.empty()) {
            return usage_error("--count: " + problem);
        }
    }
    if (vm.count("seed")) {
        if (auto problem = parse_seed(seed_arg, s.seed); !problem.empty()) {
            return usage_error("--seed: " + problem);
        }
    } else {
        std::random_device rd;
        s.seed = (std::uint64_t{rd()} << 32) ^ rd();
    }

    const bool interactive = !vm.count("dirs") && !vm.count("sizes");
    if (interactive) {
        if (!run_dialog(s, !vm.count("count"), !s.prefix)) {
            std::cerr << "filegen: the input ended before every question was answered\n";
            return exit_usage;
        }
        if (auto problem = check_names(s); !problem.empty()) return usage_error(problem);
    } else {
        if (!vm.count("dirs")) return usage_error("--sizes needs --dirs");
        if (!vm.count("sizes")) return usage_error("--dirs needs --sizes");
        s.dirs = dir_args;
        if (auto problem = check_dirs(s.dirs); !problem.empty()) {
            return usage_error("--dirs: " + problem);
        }
        std::vector<std::string> words;
        for (const auto& a : size_args) {
            for (auto& w : split_words(a))
                words.push_back(std::move(w));
        }
        if (auto problem = parse_sizes(words, s.sizes); !problem.empty()) {
            return usage_error("--sizes: " + problem);
        }
        if (auto problem = check_names(s); !problem.empty()) return usage_error(problem);
    }
    return generate(s);
}
