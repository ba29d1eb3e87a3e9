#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <random>
#include <sstream>
#include <system_error>
#include <vector>

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

Error bad_field(std::string message) {
    return {make_error_code(errc::bad_field), std::move(message)};
}

/// One `key=value` line of a config file.
struct entry {
    std::string_view key;
    std::string_view value;
    std::size_t line = 0;
};

/// The `key=value` lines of one file, in their order, with what is needed to report a problem
/// by file and line. A key appears once, unless it names a list (`index` of server.config),
/// whose lines are read from `entries` in order.
struct config_lines {
    std::string_view source; ///< the file name for messages, or empty
    std::vector<entry> entries;

    /// "p1.config:3: PROBLEM", or "line 3: PROBLEM" without a file name.
    Error at(std::size_t line, std::string_view problem) const {
        std::string m = source.empty() ? "line " : std::string(source) + ":";
        m += std::to_string(line);
        m += ": ";
        m += problem;
        return bad_field(std::move(m));
    }
    /// "p1.config: PROBLEM", for a problem of no one line (a missing key).
    Error whole(std::string_view problem) const {
        return bad_field(source.empty() ? std::string(problem)
                                        : std::string(source) + ": " + std::string(problem));
    }

    const entry* find(std::string_view key) const {
        for (const auto& e : entries) {
            if (e.key == key) return &e;
        }
        return nullptr;
    }

    Result<std::string> required(std::string_view key) const {
        const auto* e = find(key);
        if (e == nullptr) return whole("\"" + std::string(key) + "\" is missing");
        if (e->value.empty()) return at(e->line, "\"" + std::string(key) + "\" is empty");
        return std::string(e->value);
    }

    Result<std::uint16_t> required_port(std::string_view key) const {
        auto text = required(key);
        if (!text) return text.error();
        std::uint16_t port = 0;
        if (!parse_int<std::uint16_t>(*text, port, 1, 65535)) {
            return at(find(key)->line, "\"" + std::string(key) + "\" is not a number 1-65535");
        }
        return port;
    }
};

/// `lists`: the keys that may be given on several lines (each line adds to a list).
Result<config_lines> parse_lines(std::string_view text, std::string_view source,
                                 std::initializer_list<std::string_view> lists = {}) {
    config_lines out{source, {}};
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        const auto eol = text.find('\n');
        const auto line = trim(text.substr(0, eol));
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        if (line.empty() || line.front() == '#') continue;
        const auto eq = line.find('=');
        if (eq == std::string_view::npos) {
            return out.at(number, "a line must be key=value (or a # comment)");
        }
        const auto key = trim(line.substr(0, eq));
        if (key.empty()) return out.at(number, "no key before the '='");
        const bool list = std::find(lists.begin(), lists.end(), key) != lists.end();
        if (const auto* first = out.find(key); first != nullptr && !list) {
            return out.at(number, "\"" + std::string(key) + "\" is given twice (also on line " +
                                      std::to_string(first->line) + ")");
        }
        out.entries.push_back({key, trim(line.substr(eq + 1)), number});
    }
    return out;
}

Result<std::string> read_all(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const int err = errno;
        return Error{make_error_code(err == ENOENT ? errc::not_found : errc::io_error),
                     file.string() + ": cannot read it" +
                         (err != 0 ? ": " + std::generic_category().message(err) : "")};
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return Error{make_error_code(errc::io_error), file.string() + ": read failed"};
    return std::move(text).str();
}

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

} // namespace

Result<ServerAddress> parse_host_port(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return bad_field("'" + std::string(text) + "' is not HOST:PORT: " + std::string(why));
    };
    std::string_view host;
    std::string_view rest;
    bool tls = false;
    if (text.starts_with("https://")) {
        tls = true;
        text.remove_prefix(8);
    } else if (text.starts_with("http://")) {
        text.remove_prefix(7);
    }
    if (text.ends_with('/')) text.remove_suffix(1);
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return bad("no ']' after the IPv6 address");
        host = text.substr(1, close - 1);
        rest = text.substr(close + 1);
        if (host.find(':') == std::string_view::npos) return bad("[...] is for IPv6 addresses");
        for (const char c : host) {
            if (!is_host_char(c) && c != ':') return bad("a bad character in the address");
        }
    } else {
        const auto colon = text.find(':');
        if (colon == std::string_view::npos) return bad("no ':' before the port");
        host = text.substr(0, colon);
        rest = text.substr(colon);
        if (rest.find(':', 1) != std::string_view::npos) {
            return bad("write an IPv6 address in brackets, as [::1]:4000");
        }
        for (const char c : host) {
            if (!is_host_char(c)) return bad("a bad character in the host");
        }
    }
    if (host.empty()) return bad("the host is empty");
    if (host.size() > 253) return bad("the host is longer than 253 characters");
    if (rest.empty() || rest.front() != ':') return bad("no ':' before the port");
    std::uint16_t port = 0;
    if (!parse_int<std::uint16_t>(rest.substr(1), port, 1, 65535)) {
        return bad("the port is not a number 1-65535");
    }
    return ServerAddress{std::string(host), port, tls};
}

std::string to_string(const ServerAddress& address) {
    const bool v6 = address.host.find(':') != std::string::npos;
    std::string out;
    out.reserve(address.host.size() + 16);
    if (address.tls) out += "https://";
    if (v6) out += '[';
    out += address.host;
    if (v6) out += ']';
    out += ':';
    out += std::to_string(address.port);
    return out;
}

Result<std::vector<ServerAddress>> parse_host_port_list(std::string_view text) {
    std::vector<ServerAddress> out;
    std::string_view rest = text;
    for (;;) {
        const auto comma = rest.find(',');
        const auto item = trim(rest.substr(0, comma));
        if (item.empty()) {
            return bad_field("'" + std::string(text) +
                             "' has an empty address (HOST:PORT, separated by commas)");
        }
        auto address = parse_host_port(item);
        if (!address) return address.error();
        out.push_back(std::move(*address));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return out;
}

Result<std::map<std::string, std::string, std::less<>>> parse_key_values(std::string_view text,
                                                                         std::string_view source) {
    auto lines = parse_lines(text, source);
    if (!lines) return lines.error();
    std::map<std::string, std::string, std::less<>> out;
    for (const auto& e : lines->entries)
        out.emplace(std::string(e.key), std::string(e.value));
    return out;
}

Result<std::vector<ServerAddress>> parse_server_config(std::string_view text,
                                                       std::string_view source) {
    auto lines = parse_lines(text, source, {"index"});
    if (!lines) return lines.error();
    std::vector<ServerAddress> out;
    // The form of the first versions, one address: it comes first, as the index server writes it.
    if (lines->find("host") != nullptr || lines->find("port") != nullptr) {
        auto host = lines->required("host");
        if (!host) return host.error();
        auto port = lines->required_port("port");
        if (!port) return port.error();
        bool tls = false;
        if (const auto* t = lines->find("tls")) {
            if (t->value != "true" && t->value != "false") {
                return lines->at(t->line, "\"tls\" is neither true nor false");
            }
            tls = t->value == "true";
        }
        out.push_back({std::move(*host), *port, tls});
    }
    for (const auto& e : lines->entries) {
        if (e.key != "index") continue;
        if (e.value.empty()) return lines->at(e.line, "\"index\" is empty");
        auto addresses = parse_host_port_list(e.value);
        if (!addresses) return lines->at(e.line, "\"index\": " + addresses.error().message);
        out.insert(out.end(), addresses->begin(), addresses->end());
    }
    if (out.empty()) return lines->whole("\"index\" is missing (or \"host\" and \"port\")");
    return out;
}

std::string format_server_config(const ServerAddress& address) {
    return format_server_config(std::span<const ServerAddress>(&address, 1));
}

std::string format_server_config(std::span<const ServerAddress> addresses) {
    std::ostringstream out;
    if (addresses.size() == 1) {
        out << "# p2pshare index server: where peers find it. Rewritten each time it starts.\n"
            << "host=" << addresses.front().host << "\nport=" << addresses.front().port << '\n';
        // Only for TLS, which a peer of a version without TLS could not speak anyway.
        if (addresses.front().tls) out << "tls=true\n";
    } else {
        out << "# p2pshare index servers, in order of preference: a peer uses the first it can\n"
            << "# reach and moves to the next when that one fails.\n";
        for (const auto& a : addresses)
            out << "index=" << to_string(a) << '\n';
    }
    return std::move(out).str();
}

Result<PeerConfig> parse_peer_config(std::string_view text, std::string_view source) {
    auto lines = parse_lines(text, source);
    if (!lines) return lines.error();
    const auto& kv = *lines;
    PeerConfig config;
    auto id = kv.required("id");
    if (!id) return id.error();
    if (!parse_int<std::uint32_t>(*id, config.id, 0, UINT32_MAX)) {
        return kv.at(kv.find("id")->line, "\"id\" is not a number 0-4294967295");
    }
    auto folder = kv.required("folder");
    if (!folder) return folder.error();
    config.folder = *folder;
    auto host = kv.required("host");
    if (!host) return host.error();
    auto port = kv.required_port("port");
    if (!port) return port.error();
    config.listen = {std::move(*host), *port};
    auto index_host = kv.required("index_host");
    if (!index_host) return index_host.error();
    auto index_port = kv.required_port("index_port");
    if (!index_port) return index_port.error();
    config.index = {std::move(*index_host), *index_port};
    if (const auto* t = kv.find("index_tls")) config.index.tls = t->value == "true";
    if (const auto* t = kv.find("tls")) config.listen.tls = t->value == "true";
    if (const auto* token = kv.find("token")) config.token = token->value;
    return config;
}

std::string format_peer_config(const PeerConfig& config) {
    std::ostringstream out;
    out << "# p2pshare peer " << config.id << ". Rewritten by the peer; the token is secret.\n"
        << "id=" << config.id << "\nfolder=" << config.folder.string()
        << "\nhost=" << config.listen.host << "\nport=" << config.listen.port
        << "\nindex_host=" << config.index.host << "\nindex_port=" << config.index.port
        << "\ntoken=" << config.token << '\n';
    if (config.index.tls) out << "index_tls=true\n";
    if (config.listen.tls) out << "tls=true\n";
    return std::move(out).str();
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    const auto bad = [&] {
        return bad_field("'" + std::string(text) +
                         "' is not a duration such as 30s, 500ms, 2m or 1h");
    };
    const auto trimmed = trim(text);
    std::size_t digits = 0;
    while (digits < trimmed.size() && trimmed[digits] >= '0' && trimmed[digits] <= '9')
        ++digits;
    std::uint64_t n = 0;
    if (!parse_int<std::uint64_t>(trimmed.substr(0, digits), n, 0, 1'000'000'000)) return bad();
    const auto unit = trimmed.substr(digits);
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
        return bad();
    }
    return std::chrono::milliseconds(ms);
}

Result<std::uint64_t> parse_size(std::string_view text) {
    const auto bad = [&] {
        return bad_field("'" + std::string(text) +
                         "' is not a size such as 2048, 2kb, 8KiB, 1MiB or 1g");
    };
    const auto trimmed = trim(text);
    std::size_t digits = 0;
    while (digits < trimmed.size() && trimmed[digits] >= '0' && trimmed[digits] <= '9')
        ++digits;
    std::uint64_t n = 0;
    if (!parse_int<std::uint64_t>(trimmed.substr(0, digits), n, 0, UINT64_MAX)) return bad();
    std::string unit;
    for (const char c : trim(trimmed.substr(digits))) {
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
        return bad();
    }
    if (shift > 0 && n > (UINT64_MAX >> shift)) return bad();
    return n << shift;
}

Result<std::vector<ServerAddress>> read_server_config(const std::filesystem::path& file) {
    auto text = read_all(file);
    if (!text) return text.error();
    return parse_server_config(*text, file.string());
}

Result<PeerConfig> read_peer_config(const std::filesystem::path& file) {
    auto text = read_all(file);
    if (!text) return text.error();
    return parse_peer_config(*text, file.string());
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
