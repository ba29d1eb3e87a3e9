#include "dialog.hpp"

#include <p2pshare/config.hpp>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <sstream>
#include <system_error>

namespace filegen {

namespace {

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

} // namespace

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

bool run_dialog(Settings& s, bool ask_count, bool ask_prefix) {
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

} // namespace filegen
