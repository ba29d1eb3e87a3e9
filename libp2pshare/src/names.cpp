#include <p2pshare/names.hpp>

namespace p2pshare {

std::string_view file_name_problem(std::string_view name) noexcept {
    if (name.empty()) return "the name is empty";
    if (name.size() > max_name_length) return "the name is longer than 255 bytes";
    if (name == "." || name == "..") return "the name is '.' or '..'";
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '/' || c == '\\') return "the name contains a path separator";
        if (u == 0) return "the name contains a NUL byte";
        if (u < 0x20 || u == 0x7f) return "the name contains a control character";
    }
    if (name.ends_with(part_suffix)) return "names ending in .part are reserved for downloads";
    if (name.ends_with(pieces_suffix)) {
        return "names ending in .part.pieces are reserved for downloads";
    }
    return {};
}

bool is_valid_file_name(std::string_view name) noexcept { return file_name_problem(name).empty(); }

} // namespace p2pshare
