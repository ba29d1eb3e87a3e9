// filegen: the answers to its questions, read from options or asked on standard input. Each
// parser returns a problem to show, or "" when the answer is accepted.
#pragma once

#include "generate.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace filegen {

/// Files of each size in each folder, at most.
constexpr std::uint64_t max_count = 1'000'000;

std::vector<std::string> split_words(std::string_view text);

std::string check_dirs(const std::vector<std::string>& dirs);
/// Sizes such as 128, 2kb, 1MiB; sizes equal once parsed are kept once, in the order given.
std::string parse_sizes(const std::vector<std::string>& words, std::vector<std::uint64_t>& out);
std::string parse_count(std::string_view text, std::uint64_t& out);
std::string parse_seed(std::string_view text, std::uint64_t& out);

/// Asks for the folders, the sizes, and (when asked for) the count and the prefix, each until
/// it is accepted. Returns false when the input ends first.
bool run_dialog(Settings& s, bool ask_count, bool ask_prefix);

} // namespace filegen
