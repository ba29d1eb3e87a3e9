#include "index/redis_replies.hpp"

#include "pieces.hpp"
#include "protocol.hpp"

#include <charconv>

namespace p2pshare::detail {

namespace {

constexpr char no_root = 0;
constexpr char root_is_sha256 = 1;
constexpr char own_root = 2;

/// The 32 bytes of a digest stored at `p`.
std::span<const std::uint8_t, 32> digest_bytes(const char* p) {
    return std::span<const std::uint8_t, 32>(reinterpret_cast<const std::uint8_t*>(p), 32);
}

template <typename T>
std::optional<T> whole_number(std::string_view s) {
    T n{};
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return n;
}

} // namespace

api_result<std::string> encode_file_value(const file_entry& f) {
    const auto sha = digest_from_hex(f.sha256);
    const auto root = f.root.empty() ? std::optional<digest>() : digest_from_hex(f.root);
    if (!sha || (!f.root.empty() && !root)) {
        return fail(errc::bad_field, "'sha256' and 'root' must be 64 lowercase hex digits");
    }
    std::string v;
    v.reserve(1 + 64 + 20);
    v.push_back(!root ? no_root : *root == *sha ? root_is_sha256 : own_root);
    v.append(reinterpret_cast<const char*>(sha->data()), sha->size());
    if (v.front() == own_root) v.append(reinterpret_cast<const char*>(root->data()), root->size());
    v += std::to_string(f.size);
    return v;
}

bool decode_file_value(std::string_view v, std::uint64_t& size, std::string& sha256,
                       std::string& root) {
    if (v.empty()) return false;
    const char kind = v.front();
    if (kind != no_root && kind != root_is_sha256 && kind != own_root) return false;
    const std::size_t digests = kind == own_root ? 64 : 32;
    if (v.size() < 1 + digests + 1) return false;
    const auto digits = v.substr(1 + digests);
    const auto n = whole_number<std::uint64_t>(digits);
    if (!n) return false;
    size = *n;
    hex_into(sha256, digest_bytes(v.data() + 1));
    if (kind == no_root) {
        root.clear();
    } else {
        hex_into(root, digest_bytes(v.data() + 1 + (kind == own_root ? 32 : 0)));
    }
    return true;
}

std::optional<std::int64_t> reply_integer(const resp_value& v) {
    if (v.kind == resp_kind::integer) return v.integer;
    if (const auto s = v.as_string()) return whole_number<std::int64_t>(*s);
    return std::nullopt;
}

std::vector<std::string> reply_strings(const resp_value& v, std::size_t from) {
    std::vector<std::string> out;
    for (std::size_t i = from; i < v.elements.size(); ++i)
        if (const auto s = v.elements[i].as_string()) out.emplace_back(*s);
    return out;
}

std::optional<std::uint32_t> decode_peer_id(std::string_view member) {
    return whole_number<std::uint32_t>(member); // unsigned: no sign, no space
}

std::optional<std::uint32_t> decode_peer_id(const resp_value& v) {
    if (v.kind == resp_kind::integer) {
        if (v.integer < 0 || v.integer > 0xffffffffLL) return std::nullopt;
        return static_cast<std::uint32_t>(v.integer);
    }
    if (const auto s = v.as_string()) return decode_peer_id(*s);
    return std::nullopt;
}

std::optional<std::uint32_t> listed_source(std::string_view member, std::string_view name) {
    if (member.size() <= name.size() + 1 || !member.starts_with(name) ||
        member[name.size()] != '\0') {
        return std::nullopt;
    }
    return decode_peer_id(member.substr(name.size() + 1));
}

std::optional<files_answer> decode_files_answer(const resp_value& v) {
    if (!v.is_array() || v.elements.size() < 6) return std::nullopt;
    const auto head = v.elements[0].as_string();
    const auto taken = reply_integer(v.elements[1]);
    const auto now = reply_integer(v.elements[2]);
    const auto before = reply_integer(v.elements[3]);
    const auto count = reply_integer(v.elements[4]);
    const auto added = reply_integer(v.elements[5]);
    if (!head || !taken || !now || !before || !count || !added || *before < 0 || *count < 0 ||
        *added < 0 || static_cast<std::uint64_t>(*added) > v.elements.size() - 6) {
        return std::nullopt;
    }
    files_answer a;
    a.head.assign(*head);
    a.taken = *taken == 1;
    a.now_ms = *now;
    a.before = *before;
    a.count = *count;
    auto names = reply_strings(v, 6);
    if (names.size() != v.elements.size() - 6) return std::nullopt; // a name that is no string
    const auto split = static_cast<std::size_t>(*added);
    a.added.assign(std::make_move_iterator(names.begin()),
                   std::make_move_iterator(names.begin() + static_cast<std::ptrdiff_t>(split)));
    a.removed.assign(std::make_move_iterator(names.begin() + static_cast<std::ptrdiff_t>(split)),
                     std::make_move_iterator(names.end()));
    return a;
}

std::optional<list_share> decode_list_share(const resp_value& v) {
    if (!v.is_array() || v.elements.size() < 2) return std::nullopt;
    const auto done = reply_integer(v.elements[0]);
    const auto last = v.elements[1].as_string();
    if (!done || !last) return std::nullopt;
    list_share share;
    share.done = *done != 0;
    share.last.assign(*last);
    share.names = reply_strings(v, 2);
    return share;
}

std::optional<source_read> decode_source_read(const resp_value& v) {
    if (!v.is_array() || v.elements.size() != 4) return std::nullopt;
    const auto host = v.elements[0].as_string();
    const auto port = reply_integer(v.elements[1]);
    if (!host || host->empty() || !port || *port <= 0 || *port > 65535) return std::nullopt;
    // A lease written before certificates were kept has no field: plain HTTP.
    const auto cert = v.elements[2].as_string().value_or(std::string_view{});
    if (!cert.empty() && !is_sha256_hex(cert)) return std::nullopt;
    return source_read{*host, static_cast<std::uint16_t>(*port), cert, v.elements[3].as_string()};
}

} // namespace p2pshare::detail
