// filegen: what to write (the settings), the file names, and the writing itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace filegen {

constexpr int exit_ok = 0;
constexpr int exit_write_failed = 1;
constexpr int exit_usage = 2;

struct Settings {
    std::vector<std::string> dirs;
    std::vector<std::uint64_t> sizes; ///< distinct, in the order given
    std::uint64_t count = 1;
    bool prefix = false;
    std::uint64_t seed = 0;
    bool force = false;
    bool quiet = false;
};

/// Checks that every file name the settings produce is valid (with --prefix, folder names
/// such as "/" have no name to use). Returns a problem or "".
std::string check_names(const Settings& s);

/// Writes every file; returns the exit status.
int generate(const Settings& s);

} // namespace filegen
