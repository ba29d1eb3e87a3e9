#include "generate.hpp"

#include "content.hpp"

#include <p2pshare/names.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <iostream>
#include <memory>
#include <system_error>
#include <utility>

namespace fs = std::filesystem;

namespace filegen {

namespace {

/// Bytes generated and written at a time; a multiple of 8 so that a file's content does not
/// depend on where the chunks end.
constexpr std::size_t chunk_size = std::size_t{1} << 20;

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

// --- writing -------------------------------------------------------------------------------

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

/// Writes `size` bytes from `content` to `tmp`; returns a problem or "".
std::string write_content(const fs::path& tmp, std::uint64_t size, PrintableStream& content,
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

} // namespace

std::string check_names(const Settings& s) {
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

int generate(const Settings& s) {
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
                PrintableStream content = content_of(s.seed, name);
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

} // namespace filegen
