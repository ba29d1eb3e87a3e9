#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace p2pshare {
namespace {

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

template <class Int>
bool parse_int(std::string_view text, Int& out, Int min, Int max) {
    Int value{};
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr != text.data() + text.size() || value < min || value > max) {
        return false;
    }
    out = value;
    return true;
}

using key_values = std::map<std::string, std::string, std::less<>>;

boost::system::result<std::string> required(const key_values& kv, std::string_view key) {
    const auto it = kv.find(key);
    if (it == kv.end() || it->second.empty()) return make_error_code(errc::bad_field);
    return it->second;
}

boost::system::result<std::uint16_t> required_port(const key_values& kv, std::string_view key) {
    auto text = required(kv, key);
    if (!text) return text.error();
    std::uint16_t port = 0;
    if (!parse_int<std::uint16_t>(*text, port, 1, 65535)) return make_error_code(errc::bad_field);
    return port;
}

boost::system::result<std::string> read_all(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return make_error_code(errc::not_found);
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return make_error_code(errc::io_error);
    return std::move(text).str();
}

} // namespace

boost::system::result<key_values> parse_key_values(std::string_view text) {
    key_values out;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const auto line = trim(text.substr(0, eol));
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        if (line.empty() || line.front() == '#') continue;
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) return make_error_code(errc::bad_field);
        const auto key = trim(line.substr(0, eq));
        if (key.empty()) return make_error_code(errc::bad_field);
        if (!out.emplace(std::string(key), std::string(trim(line.substr(eq + 1)))).second) {
            return make_error_code(errc::bad_field);
        }
    }
    return out;
}

boost::system::result<ServerAddress> parse_server_config(std::string_view text) {
    auto kv = parse_key_values(text);
    if (!kv) return kv.error();
    auto host = required(*kv, "host");
    if (!host) return host.error();
    auto port = required_port(*kv, "port");
    if (!port) return port.error();
    return ServerAddress{std::move(*host), *port};
}

std::string format_server_config(const ServerAddress& address) {
    std::ostringstream out;
    out << "# p2pshare index server: where peers find it. Rewritten each time it starts.\n"
        << "host=" << address.host << "\nport=" << address.port << '\n';
    return std::move(out).str();
}

boost::system::result<PeerConfig> parse_peer_config(std::string_view text) {
    auto kv = parse_key_values(text);
    if (!kv) return kv.error();
    PeerConfig config;
    auto id = required(*kv, "id");
    if (!id) return id.error();
    if (!parse_int<std::uint32_t>(*id, config.id, 0, UINT32_MAX)) {
        return make_error_code(errc::bad_field);
    }
    auto folder = required(*kv, "folder");
    if (!folder) return folder.error();
    config.folder = *folder;
    auto host = required(*kv, "host");
    if (!host) return host.error();
    auto port = required_port(*kv, "port");
    if (!port) return port.error();
    config.listen = {std::move(*host), *port};
    auto index_host = required(*kv, "index_host");
    if (!index_host) return index_host.error();
    auto index_port = required_port(*kv, "index_port");
    if (!index_port) return index_port.error();
    config.index = {std::move(*index_host), *index_port};
    if (const auto it = kv->find("token"); it != kv->end()) config.token = it->second;
    return config;
}

std::string format_peer_config(const PeerConfig& config) {
    std::ostringstream out;
    out << "# p2pshare peer " << config.id << ". Rewritten by the peer; the token is secret.\n"
        << "id=" << config.id << "\nfolder=" << config.folder.string()
        << "\nhost=" << config.listen.host << "\nport=" << config.listen.port
        << "\nindex_host=" << config.index.host << "\nindex_port=" << config.index.port
        << "\ntoken=" << config.token << '\n';
    return std::move(out).str();
}

boost::system::result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    text = trim(text);
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    std::uint64_t n = 0;
    if (!parse_int<std::uint64_t>(text.substr(0, digits), n, 0, 1'000'000'000)) {
        return make_error_code(errc::bad_field);
    }
    const auto unit = text.substr(digits);
    std::uint64_t ms = 0;
    if (unit.empty() || unit == "s") {
        ms = n * 1000;
    } else if (unit == "ms") {
        ms = n;
    } else if (unit == "m" || unit == "min") {
        ms = n * 60'000;
    } else if (unit == "h") {
        ms = n * 3'600'000;
    } else {
        return make_error_code(errc::bad_field);
    }
    return std::chrono::milliseconds(ms);
}

boost::system::result<std::uint64_t> parse_size(std::string_view text) {
    text = trim(text);
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    std::uint64_t n = 0;
    if (!parse_int<std::uint64_t>(text.substr(0, digits), n, 0, UINT64_MAX)) {
        return make_error_code(errc::bad_field);
    }
    std::string unit;
    for (const char c : trim(text.substr(digits))) {
        unit.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    }
    int shift = 0;
    if (unit.empty() || unit == "b") {
        shift = 0;
    } else if (unit == "k" || unit == "kb" || unit == "kib") {
        shift = 10;
    } else if (unit == "m" || unit == "mb" || unit == "mib") {
        shift = 20;
    } else if (unit == "g" || unit == "gb" || unit == "gib") {
        shift = 30;
    } else {
        return make_error_code(errc::bad_field);
    }
    if (shift > 0 && n > (UINT64_MAX >> shift)) return make_error_code(errc::bad_field);
    return n << shift;
}

boost::system::result<ServerAddress> read_server_config(const std::filesystem::path& file) {
    auto text = read_all(file);
    if (!text) return text.error();
    return parse_server_config(*text);
}

boost::system::result<PeerConfig> read_peer_config(const std::filesystem::path& file) {
    auto text = read_all(file);
    if (!text) return text.error();
    return parse_peer_config(*text);
}

boost::system::error_code write_file_atomically(const std::filesystem::path& file,
                                                std::string_view text, bool private_file) {
    std::error_code ec;
    if (file.has_parent_path()) {
        std::filesystem::create_directories(file.parent_path(), ec);
        if (ec) return make_error_code(errc::io_error);
    }
    auto tmp = file;
    tmp += ".tmp" + std::to_string(std::random_device{}());
    // Created with its final mode, so that a private file is never readable by others.
    const int fd =
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, private_file ? 0600 : 0644);
    if (fd < 0) return make_error_code(errc::io_error);
    bool ok = true;
    while (ok && !text.empty()) {
        const auto n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) text.remove_prefix(static_cast<std::size_t>(n));
    }
    ok = ::close(fd) == 0 && ok;
    if (ok) std::filesystem::rename(tmp, file, ec);
    if (!ok || ec) {
        std::filesystem::remove(tmp, ec);
        return make_error_code(errc::io_error);
    }
    return {};
}

} // namespace p2pshare
