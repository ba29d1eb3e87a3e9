#include "protocol.hpp"

#include <p2pshare/names.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/throw_exception.hpp>

#include <charconv>
#include <limits>
#include <stdexcept>
#include <unordered_set>

namespace p2pshare::detail {

void throw_exception_from_error(const api_error& e, const boost::source_location& location) {
    boost::throw_exception(std::runtime_error(e.message), location);
}

namespace {

bool is_hex_lower(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

} // namespace

api_result<boost::json::value> parse_json(std::string_view body, boost::json::storage_ptr storage) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec, std::move(storage));
    if (ec) return fail(errc::bad_json, "the body is not valid JSON: " + ec.message());
    return v;
}

api_result<const boost::json::object*> as_object(const boost::json::value& v) {
    if (!v.is_object()) return fail(errc::bad_field, "the body must be a JSON object");
    return &v.get_object();
}

const boost::json::value* find(const boost::json::object& o, std::string_view key) {
    const auto it = o.find(key);
    return it == o.end() ? nullptr : &it->value();
}

/// An unsigned integer field within [min, max]; JSON numbers like 5.0 are refused.
api_result<std::uint64_t> get_uint(const boost::json::object& o, std::string_view key,
                                   std::uint64_t min, std::uint64_t max) {
    const auto* v = find(o, key);
    if (v == nullptr) return fail(errc::bad_field, "missing field '" + std::string(key) + "'");
    std::uint64_t n = 0;
    if (v->is_uint64()) {
        n = v->get_uint64();
    } else if (v->is_int64() && v->get_int64() >= 0) {
        n = static_cast<std::uint64_t>(v->get_int64());
    } else {
        return fail(errc::bad_field,
                    "field '" + std::string(key) + "' must be a non-negative integer");
    }
    if (n < min || n > max) {
        return fail(errc::bad_field, "field '" + std::string(key) + "' must be within " +
                                         std::to_string(min) + ".." + std::to_string(max));
    }
    return n;
}

api_result<std::string> get_string(const boost::json::object& o, std::string_view key,
                                   bool required) {
    const auto* v = find(o, key);
    if (v == nullptr) {
        if (required) return fail(errc::bad_field, "missing field '" + std::string(key) + "'");
        return std::string{};
    }
    if (!v->is_string()) {
        return fail(errc::bad_field, "field '" + std::string(key) + "' must be a string");
    }
    return std::string(v->get_string());
}

namespace {

api_result<std::string> check_name(const boost::json::value& v) {
    if (!v.is_string()) return fail(errc::bad_field, "a file name must be a string");
    std::string name(v.get_string());
    if (const auto problem = file_name_problem(name); !problem.empty()) {
        return fail(errc::bad_name, std::string(problem));
    }
    return name;
}

} // namespace

bool is_sha256_hex(std::string_view s) noexcept {
    if (s.size() != 64) return false;
    for (const char c : s) {
        if (!is_hex_lower(c)) return false;
    }
    return true;
}

bool is_token(std::string_view s) noexcept {
    if (s.size() != 32) return false;
    for (const char c : s) {
        if (!is_hex_lower(c)) return false;
    }
    return true;
}

bool is_valid_host(std::string_view s) noexcept {
    if (s.empty() || s.size() > 253) return false;
    for (const char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' || c == '_';
        if (!ok) return false;
    }
    return true;
}

boost::json::object encode_file(const file_entry& f) {
    boost::json::object o;
    o["name"] = f.name;
    o["size"] = f.size;
    o["sha256"] = f.sha256;
    if (!f.root.empty()) o["root"] = f.root;
    return o;
}

api_result<std::vector<file_entry>> decode_file_array(const boost::json::value& v,
                                                      std::size_t max_files) {
    if (!v.is_array()) return fail(errc::bad_field, "field 'files' must be an array");
    const auto& array = v.get_array();
    if (array.size() > max_files) {
        return fail(errc::too_many,
                    "at most " + std::to_string(max_files) + " files in one request");
    }
    std::vector<file_entry> files;
    files.reserve(array.size());
    std::unordered_set<std::string_view> seen;
    for (const auto& item : array) {
        if (!item.is_object()) return fail(errc::bad_field, "each file must be an object");
        const auto& o = item.get_object();
        const auto* name_value = find(o, "name");
        if (name_value == nullptr) return fail(errc::bad_field, "a file has no 'name'");
        auto name = check_name(*name_value);
        if (!name) return name.error();
        auto size = get_uint(o, "size", 0, std::numeric_limits<std::int64_t>::max());
        if (!size) return size.error();
        auto sha = get_string(o, "sha256", true);
        if (!sha) return sha.error();
        if (!is_sha256_hex(*sha)) {
            return fail(errc::bad_field, "'sha256' must be 64 lowercase hex digits");
        }
        // Optional (a peer of an older version sends none), but valid when given.
        std::string root;
        if (const auto* r = find(o, "root"); r != nullptr) {
            if (!r->is_string() || !is_sha256_hex(r->get_string())) {
                return fail(errc::bad_field, "'root' must be 64 lowercase hex digits");
            }
            root = std::string(r->get_string());
        }
        files.push_back({std::move(*name), *size, std::move(*sha), std::move(root)});
    }
    for (const auto& f : files) {
        if (!seen.insert(f.name).second) {
            return fail(errc::bad_field, "the file '" + f.name + "' is listed twice");
        }
    }
    return files;
}

api_result<register_request> decode_register(std::string_view body, std::size_t max_files) {
    auto v = parse_json(body);
    if (!v) return v.error();
    auto o = as_object(*v);
    if (!o) return o.error();
    register_request r;
    auto id = get_uint(**o, "id", 0, std::numeric_limits<std::uint32_t>::max());
    if (!id) return id.error();
    r.id = static_cast<std::uint32_t>(*id);
    auto host = get_string(**o, "host", false);
    if (!host) return host.error();
    if (!host->empty() && !is_valid_host(*host)) {
        return fail(errc::bad_field, "'host' must be a host name or an IP address");
    }
    r.host = std::move(*host);
    auto port = get_uint(**o, "port", 1, 65535);
    if (!port) return port.error();
    r.port = static_cast<std::uint16_t>(*port);
    const auto* files = find(**o, "files");
    if (files == nullptr) return fail(errc::bad_field, "missing field 'files'");
    auto list = decode_file_array(*files, max_files);
    if (!list) return list.error();
    r.files = std::move(*list);
    auto token = get_string(**o, "token", false);
    if (!token) return token.error();
    if (!token->empty() && !is_token(*token)) {
        return fail(errc::bad_field, "'token' must be 32 lowercase hex digits");
    }
    r.token = std::move(*token);
    auto cert = get_string(**o, "cert_sha256", false);
    if (!cert) return cert.error();
    if (!cert->empty() && !is_sha256_hex(*cert)) {
        return fail(errc::bad_field, "'cert_sha256' must be 64 lowercase hex digits");
    }
    r.cert_sha256 = std::move(*cert);
    return r;
}

api_result<std::vector<file_entry>> decode_files_update(std::string_view body,
                                                        std::size_t max_files) {
    auto v = parse_json(body);
    if (!v) return v.error();
    auto o = as_object(*v);
    if (!o) return o.error();
    const auto* files = find(**o, "files");
    if (files == nullptr) return fail(errc::bad_field, "missing field 'files'");
    return decode_file_array(*files, max_files);
}

api_result<std::vector<std::string>> decode_lookup(std::string_view body, std::size_t max_names) {
    // A lookup is the index's most frequent request: its JSON lives on the stack while the
    // names are copied out (a larger body spills over into the heap).
    unsigned char arena[4096];
    boost::json::monotonic_resource memory(arena, sizeof arena);
    auto v = parse_json(body, &memory);
    if (!v) return v.error();
    auto o = as_object(*v);
    if (!o) return o.error();
    const auto* names = find(**o, "names");
    if (names == nullptr) return fail(errc::bad_field, "missing field 'names'");
    if (!names->is_array()) return fail(errc::bad_field, "field 'names' must be an array");
    const auto& array = names->get_array();
    if (array.size() > max_names) {
        return fail(errc::too_many,
                    "at most " + std::to_string(max_names) + " names in one lookup");
    }
    std::vector<std::string> out;
    out.reserve(array.size());
    for (const auto& item : array) {
        auto name = check_name(item);
        if (!name) return name.error();
        out.push_back(std::move(*name));
    }
    return out;
}

bool scan_lookup(std::string_view body, std::size_t max_names,
                 std::vector<std::string_view>& names) {
    const char* p = body.data();
    const char* const end = p + body.size();
    const auto skip_space = [&] {
        while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            ++p;
    };
    const auto take = [&](std::string_view text) {
        if (static_cast<std::size_t>(end - p) < text.size() ||
            std::string_view(p, text.size()) != text) {
            return false;
        }
        p += text.size();
        return true;
    };
    const auto first = names.size();
    const auto give_up = [&] {
        names.resize(first);
        return false;
    };
    skip_space();
    if (!take("{")) return false;
    skip_space();
    if (!take("\"names\"")) return false;
    skip_space();
    if (!take(":")) return false;
    skip_space();
    if (!take("[")) return false;
    skip_space();
    if (p != end && *p == ']') {
        ++p;
    } else {
        for (;;) {
            if (!take("\"")) return give_up();
            const char* const start = p;
            // Plain printable ASCII only: an escape or any other byte goes to the full parser.
            while (p != end && *p != '"' && *p != '\\' && *p >= 0x20 && *p <= 0x7e)
                ++p;
            if (p == end || *p != '"') return give_up();
            const std::string_view name(start, static_cast<std::size_t>(p - start));
            ++p;
            if (names.size() - first == max_names || !file_name_problem(name).empty()) {
                return give_up();
            }
            names.push_back(name);
            skip_space();
            if (p != end && *p == ',') {
                ++p;
                skip_space();
                continue;
            }
            if (!take("]")) return give_up();
            break;
        }
    }
    skip_space();
    if (!take("}")) return give_up();
    skip_space();
    if (p != end) return give_up();
    return true;
}

api_result<std::string> decode_bearer(std::string_view authorization) {
    constexpr std::string_view scheme = "Bearer ";
    if (authorization.empty()) {
        return fail(errc::unauthorized, "send the lease token as 'Authorization: Bearer TOKEN'");
    }
    if (authorization.size() <= scheme.size() || authorization.substr(0, scheme.size()) != scheme) {
        return fail(errc::unauthorized, "the Authorization header must be 'Bearer TOKEN'");
    }
    std::string token(authorization.substr(scheme.size()));
    if (!is_token(token)) return fail(errc::forbidden, "the lease token is not valid");
    return token;
}

void append_number(std::string& out, std::uint64_t n) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
}

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t plain = 0; // start of the run of characters copied as they are
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + plain, i - plain);
        plain = i + 1;
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            default:
                out.append("\\u00");
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 15]);
        }
    }
    out.append(text.data() + plain, text.size() - plain);
    out.push_back('"');
}

std::optional<std::uint32_t> parse_peer_id(std::string_view text) noexcept {
    std::uint32_t id = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
    if (text.size() > 1 && text.front() == '0') return std::nullopt;
    return id;
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (ec != std::errc{} || ptr != text.data() + i + 3) return std::nullopt;
        out.push_back(static_cast<char>(value));
        i += 2;
    }
    return out;
}

std::string percent_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    return out;
}

api_result<std::optional<byte_range>> parse_range(std::string_view header, std::uint64_t size) {
    constexpr std::string_view unit = "bytes=";
    const auto bad = [&](std::string why) { return fail(errc::bad_range, std::move(why)); };
    if (header.substr(0, unit.size()) != unit) return bad("only 'bytes=' ranges are supported");
    const auto spec = header.substr(unit.size());
    if (spec.find(',') != std::string_view::npos) return bad("only one range per request");
    const auto dash = spec.find('-');
    if (dash == std::string_view::npos) return bad("a range needs a '-'");
    const auto first_text = spec.substr(0, dash);
    const auto last_text = spec.substr(dash + 1);
    // Digits only; a number too large for 64 bits reads as the largest one, so that a LAST or
    // a suffix length beyond any file is cut to its end (and a FIRST is beyond it).
    const auto number = [](std::string_view t, std::uint64_t& out) {
        const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        if (t.empty() || ptr != t.data() + t.size()) return false;
        if (ec == std::errc::result_out_of_range) out = UINT64_MAX;
        return ec == std::errc{} || ec == std::errc::result_out_of_range;
    };
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    if (first_text.empty()) { // suffix range: the last N bytes
        std::uint64_t suffix = 0;
        if (!number(last_text, suffix)) return bad("malformed range");
        if (suffix == 0 || size == 0) return bad("the range is empty");
        first = suffix >= size ? 0 : size - suffix;
        last = size - 1;
    } else {
        if (!number(first_text, first)) return bad("malformed range");
        if (last_text.empty()) {
            last = size == 0 ? 0 : size - 1;
        } else if (!number(last_text, last) || last < first) {
            return bad("malformed range");
        }
        if (first >= size) return bad("the range starts beyond the end of the file");
        if (last >= size) last = size - 1;
    }
    return std::optional<byte_range>{byte_range{first, last}};
}

bool if_match_allows(std::string_view header, std::string_view etag) noexcept {
    const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    const auto trim = [&](std::string_view t) {
        while (!t.empty() && is_space(t.front()))
            t.remove_prefix(1);
        while (!t.empty() && is_space(t.back()))
            t.remove_suffix(1);
        return t;
    };
    header = trim(header);
    if (header.empty() || header == "*") return true;
    while (!header.empty()) {
        const auto comma = header.find(',');
        if (trim(header.substr(0, comma)) == etag) return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

std::string encode_error(const api_error& e) {
    boost::json::object o;
    o["error"] = to_string(e.code);
    o["message"] = e.message.empty() ? make_error_code(e.code).message() : e.message;
    return boost::json::serialize(o);
}

} // namespace p2pshare::detail
