// p2pshare — the rules for shared file names.
#pragma once

#include <cstddef>
#include <string_view>

namespace p2pshare {

/// Longest shared file name, in bytes.
inline constexpr std::size_t max_name_length = 255;

/// Suffix of a file that is still being downloaded; such files are never listed nor served.
inline constexpr std::string_view part_suffix = ".part";
/// Suffix of the record of a download's verified pieces, beside its `.part`.
inline constexpr std::string_view pieces_suffix = ".part.pieces";

/// True when `name` may be shared: a plain file name, 1..255 bytes, no '/', no '\\', no NUL,
/// no control characters, not "." nor "..", and not ending in ".part" nor ".part.pieces".
bool is_valid_file_name(std::string_view name) noexcept;

/// A human-readable reason why `name` is not valid, or an empty view when it is.
std::string_view file_name_problem(std::string_view name) noexcept;

} // namespace p2pshare
