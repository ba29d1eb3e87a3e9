// filegen: writes files of random printable ASCII into folders, for p2pshare peers to share.
//
// Run without --dirs/--sizes it asks its questions on standard input, like the original
// filegenerator.py; with them it runs unattended. See --help for the naming scheme.
#include <p2pshare/config.hpp>
#include <p2pshare/names.hpp>

#include <boost/program_options.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

/// Bytes generated and written at a time; a multiple of 8 so that a file's content does not
/// depend on where the chunks end.
constexpr std::size_t chunk_size = std::size_t{1} << 20;
/// Files of each size in each folder, at most.
constexpr std::uint64_t max_count = 1'000'000;

constexpr int exit_ok = 0;
constexpr int exit_write_failed = 1;
constexpr int exit_usage = 2;

struct settings {
    std::vector<std::string> dirs;
    std::vector<std::uint64_t> sizes; ///< distinct, in the order given
    std::uint64_t count = 1;
    bool prefix = false;
    std::uint64_t seed = 0;
    bool force = false;
    bool quiet = false;
};

// --- content -------------------------------------------------------------------------------

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::uint64_t fnv1a64(std::string_view text) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

/// An endless stream of printable ASCII ('!' .. '~', bytes 33..126), from xoshiro256**.
/// Each 64-bit output gives eight characters: each 32-bit half is read as a fraction and
/// multiplied by 94 four times, the integer parts being the characters (bias below 1e-6).
class printable_stream {
public:
    explicit printable_stream(std::uint64_t seed) noexcept {
        for (auto& s : s_)
            s = splitmix64(seed);
    }

    /// Fills `out[0..n)`. Only the last call for a stream may have `n` not a multiple of 8.
    void fill(char* out, std::size_t n) noexcept {
        std::array<char, 8> group{};
        while (n > 0) {
            const std::uint64_t word = next();
            char* dst = n >= 8 ? out : group.data();
            expand(static_cast<std::uint32_t>(word), dst);
            expand(static_cast<std::uint32_t>(word >> 32), dst + 4);
            if (n < 8) {
                std::copy_n(group.data(), n, out);
                return;
            }
            out += 8;
            n -= 8;
        }
    }

private:
    static void expand(std::uint32_t fraction, char* out) noexcept {
        std::uint64_t r = fraction;
        for (int i = 0; i < 4; ++i) {
            r *= 94;
            out[i] = static_cast<char>(33 + (r >> 32));
            r &= 0xffffffffULL;
        }
    }

    static std::uint64_t rotl(std::uint64_t x, int k) noexcept {
        return (x << k) | (x >> (64 - k));
    }

    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    std::array<std::uint64_t, 4> s_{};
};

// --- names ---------------------------------------------------------------------------------

/// 2048 -> "2KiB", 3145728 -> "3MiB", 1000 -> "1000B", 0 -> "0B": the largest binary unit that
/// divides the size exactly.
std::string size_label(std::uint64_t size) {
    static constexpr std::array<std::pair<int, const char*>, 3> units{
        {{30, "GiB"}, {20, "MiB"}, {10, "KiB"}}};
    for (const auto& [shift, unit] : units) {
        const std::uint64_t one = std::uint64_t{1} << shift;
        if (size != 0 && size % one == 0) return std::to_string(size / one) + unit;
    }
    return std::to_string(size) + "B";
}

/// The folder's own name, used by --prefix: "p1" for "p1", "p1/", "./p1" or "/x/p1".
std::string folder_name(const std::string& dir) {
    std::error_code ec;
    fs::path p = fs::absolute(fs::path(dir), ec);
    if (ec) p = fs::path(dir);
    p = p.lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    return p.filename().string();
}

std::string file_name(const std::string& prefix, std::uint64_t size, std::uint64_t k) {
    std::string name = prefix.empty() ? std::string() : prefix + "-";
    return name + size_label(size) + "-" + std::to_string(k) + ".txt";
}

// --- answers (shared by the options and the dialog); each returns a problem or "" ----------

std::vector<std::string> split_words(std::string_view text) {
    std::istringstream in{std::string(text)};
    std::vector<std::string> words;
    for (std::string w; in >> w;)
        words.push_back(w);
    return words;
}

std::string check_dirs(const std::vector<std::string>& dirs) {
    if (dirs.empty()) return "give at least one folder";
    for (const auto& d : dirs) {
        if (d.empty()) return "a folder name is empty";
    }
    return {};
}

std::string parse_sizes(const std::vector<std::string>& words, std::vector<std::uint64_t>& out) {
    out.clear();
    if (words.empty()) return "give at least one size";
    for (const auto& w : words) {
        const auto size = p2pshare::parse_size(w);
        if (!size) {
            return "'" + w + "' is not a size; write bytes such as 128, or 2kb, 8KiB, 1MiB, 1g";
        }
        if (std::find(out.begin(), out.end(), *size) == out.end()) out.push_back(*size);
    }
    return {};
}

std::string parse_count(std::string_view text, std::uint64_t& out) {
    const auto words = split_words(text);
    if (words.size() != 1) return "give one whole number, at least 1";
    const std::string& w = words.front();
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
    if (ec != std::errc() || end != w.data() + w.size() || n < 1 || n > max_count) {
        return "'" + w + "' is not a number of files between 1 and " + std::to_string(max_count);
    }
    out = n;
    return {};
}

std::string parse_seed(std::string_view text, std::uint64_t& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return "'" + std::string(text) + "' is not a whole number between 0 and 2^64-1";
    }
    return {};
}

std::string parse_yes_no(std::string_view text, bool& out) {
    const auto words = split_words(text);
    std::string w = words.size() == 1 ? words.front() : std::string();
    for (auto& c : w)
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (w == "y" || w == "yes") {
        out = true;
        return {};
    }
    if (w == "n" || w == "no") {
        out = false;
        return {};
    }
    return "answer y or n";
}

/// Checks that every file name the settings produce is valid (with --prefix, folder names
/// such as "/" have no name to use).
std::string check_names(const settings& s) {
    for (const auto& dir : s.dirs) {
        const std::string prefix = s.prefix ? folder_name(dir) : std::string();
        if (s.prefix && (prefix.empty() || prefix == "." || prefix == "..")) {
            return "folder '" + dir + "' has no name to use as a prefix";
        }
        for (const std::uint64_t size : s.sizes) {
            const std::string name = file_name(prefix, size, s.count);
            if (const auto problem = p2pshare::file_name_problem(name); !problem.empty()) {
                return "file name '" + name + "' cannot be shared: " + std::string(problem);
            }
        }
    }
    return {};
}

// --- dialog --------------------------------------------------------------------------------

/// Asks `question` until `accept` returns no problem. Returns false at the end of input.
template <class Accept>
bool ask(const char* question, Accept accept) {
    for (;;) {
        std::cout << question << std::flush;
        std::string line;
        if (!std::getline(std::cin, line)) {
            std::cout << '\n';
            return false;
        }
        const std::string problem = accept(line);
        if (problem.empty()) return true;
        std::cout << "  " << problem << "; please try again.\n";
    }
}

bool run_dialog(settings& s, bool ask_count, bool ask_prefix) {
    if (!ask("Folders to fill (space separated): ", [&](const std::string& line) {
            s.dirs = split_words(line);
            return check_dirs(s.dirs);
        })) {
        return false;
    }
    if (!ask("File sizes in bytes (space separated; 2kb, 1MiB also work): ",
             [&](const std::string& line) { return parse_sizes(split_words(line), s.sizes); })) {
        return false;
    }
    if (ask_count && !ask("How many files of each size: ",
                          [&](const std::string& line) { return parse_count(line, s.count); })) {
        return false;
    }
    if (ask_prefix &&
        !ask("Prefix file names with the folder name? (y/n): ", [&](const std::string& line) {
            if (auto problem = parse_yes_no(line, s.prefix); !problem.empty()) {
                return problem;
            }
            return check_names(s);
        })) {
        return false;
    }
    return true;
}

// --- writing -------------------------------------------------------------------------------

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

/// Writes `size` bytes from `content` to `tmp`; returns a problem or "".
std::string write_content(const fs::path& tmp, std::uint64_t size, printable_stream& content,
                          char* buffer) {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot create " + tmp.string() + ": " + errno_text(errno);
    std::string problem;
    std::uint64_t left = size;
    while (left > 0 && problem.empty()) {
        const std::size_t n = left < chunk_size ? static_cast<std::size_t>(left) : chunk_size;
        content.fill(buffer, n);
        std::size_t done = 0;
        while (done < n) {
            const auto w = ::write(fd, buffer + done, n - done);
            if (w < 0) {
                if (errno == EINTR) continue;
                problem = "cannot write " + tmp.string() + ": " + errno_text(errno);
                break;
            }
            done += static_cast<std::size_t>(w);
        }
        left -= n;
    }
    if (::close(fd) != 0 && problem.empty()) {
        problem = "cannot write " + tmp.string() + ": " + errno_text(errno);
    }
    return problem;
}

/// Writes every file; returns the exit status.
int generate(const settings& s) {
    const auto buffer = std::make_unique<char[]>(chunk_size);
    int status = exit_ok;
    for (const auto& dir : s.dirs) {
        const fs::path folder(dir);
        std::error_code ec;
        fs::create_directories(folder, ec);
        if (ec || !fs::is_directory(folder)) {
            std::cerr << "filegen: cannot create folder " << dir << ": "
                      << (ec ? ec.message() : "a file with that name exists") << '\n';
            status = exit_write_failed;
            continue;
        }
        const std::string prefix = s.prefix ? folder_name(dir) : std::string();
        for (const std::uint64_t size : s.sizes) {
            for (std::uint64_t k = 1; k <= s.count; ++k) {
                const std::string name = file_name(prefix, size, k);
                const fs::path target = folder / name;
                if (fs::exists(fs::symlink_status(target, ec)) && !s.force) {
                    std::cerr << "filegen: " << target.string()
                              << " already exists; not overwritten (use --force)\n";
                    status = exit_write_failed;
                    continue;
                }
                if (fs::is_directory(target, ec)) {
                    std::cerr << "filegen: " << target.string() << " is a folder\n";
                    status = exit_write_failed;
                    continue;
                }
                // Content depends on the seed and the file name only, so that a name stands
                // for one content whatever the folder.
                std::uint64_t mix = s.seed;
                mix = splitmix64(mix) ^ fnv1a64(name);
                printable_stream content(splitmix64(mix));
                const fs::path tmp = folder / (name + std::string(p2pshare::part_suffix));
                std::string problem = write_content(tmp, size, content, buffer.get());
                if (problem.empty()) {
                    fs::rename(tmp, target, ec);
                    if (ec) {
                        problem =
                            "cannot rename " + tmp.string() + " to " + name + ": " + ec.message();
                    }
                }
                if (!problem.empty()) {
                    std::error_code ignored;
                    fs::remove(tmp, ignored);
                    std::cerr << "filegen: " << problem << '\n';
                    status = exit_write_failed;
                    continue;
                }
                if (!s.quiet) std::cout << target.string() << ' ' << size << " bytes\n";
            }
        }
    }
    std::cout << std::flush;
    return status;
}

} // namespace

int main(int argc, char** argv) {
    settings s;
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
