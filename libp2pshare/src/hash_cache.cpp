#include "hash_cache.hpp"

#include <p2pshare/names.hpp>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <unordered_set>

namespace p2pshare::detail {
namespace {

/// Bytes of a record without its name and its pieces.
constexpr std::size_t record_fixed = 2 + 8 + 8 + 8 + 32 + 32 + 4;

template <class T>
void put(std::string& out, T value) {
    using U = std::make_unsigned_t<T>;
    auto u = static_cast<U>(value);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out.push_back(static_cast<char>(u & 0xff));
        u = static_cast<U>(u >> 8);
    }
}

void put(std::string& out, const digest& d) {
    out.append(reinterpret_cast<const char*>(d.data()), d.size());
}

/// Reads the bytes of a cache front to back; every read checks that the bytes are there.
class reader {
public:
    explicit reader(std::string_view bytes) : left_(bytes) {}

    template <class T>
    bool get(T& value) {
        using U = std::make_unsigned_t<T>;
        if (left_.size() < sizeof(T)) return false;
        U u = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            u = static_cast<U>(u | static_cast<U>(static_cast<unsigned char>(left_[i])) << (8 * i));
        value = static_cast<T>(u);
        left_.remove_prefix(sizeof(T));
        return true;
    }
    bool get(digest& d) {
        if (left_.size() < d.size()) return false;
        std::memcpy(d.data(), left_.data(), d.size());
        left_.remove_prefix(d.size());
        return true;
    }
    bool get(std::string& text, std::size_t n) {
        if (left_.size() < n) return false;
        text.assign(left_.substr(0, n));
        left_.remove_prefix(n);
        return true;
    }
    std::size_t left() const noexcept { return left_.size(); }

private:
    std::string_view left_;
};

api_error bad(std::string what) {
    return fail(errc::bad_config, "the hash cache is not valid: " + std::move(what));
}

} // namespace

std::string encode_hash_cache(std::span<const hash_record> records) {
    std::size_t total = hash_cache_magic.size() + 4 + 32;
    for (const auto& r : records)
        total += record_fixed + r.name.size() + 32 * (r.pieces ? r.pieces->size() : 0);
    std::string out;
    out.reserve(total);
    out.append(hash_cache_magic);
    put(out, static_cast<std::uint32_t>(records.size()));
    for (const auto& r : records) {
        put(out, static_cast<std::uint16_t>(r.name.size()));
        out.append(r.name);
        put(out, r.stamp.size);
        put(out, r.stamp.mtime_ns);
        put(out, r.stamp.inode);
        put(out, r.sha256);
        put(out, r.root);
        const auto count = r.pieces ? r.pieces->size() : 0;
        put(out, static_cast<std::uint32_t>(count));
        if (count > 0) out.append(reinterpret_cast<const char*>(r.pieces->data()), 32 * count);
    }
    put(out, sha256_digest(out.data(), out.size()));
    return out;
}

api_result<std::vector<hash_record>> decode_hash_cache(std::string_view bytes) {
    if (bytes.substr(0, hash_cache_magic.size()) != hash_cache_magic) {
        return bad("another format or version");
    }
    if (bytes.size() < hash_cache_magic.size() + 4 + 32) return bad("truncated");
    // The checksum first: a file cut short or damaged is refused before anything is read.
    const auto body = bytes.substr(0, bytes.size() - 32);
    const auto sum = sha256_digest(body.data(), body.size());
    if (std::memcmp(sum.data(), bytes.data() + body.size(), 32) != 0) {
        return bad("its checksum does not match (truncated or damaged)");
    }
    reader in(body.substr(hash_cache_magic.size()));
    std::uint32_t count = 0;
    in.get(count);
    if (count > in.left() / record_fixed) return bad("more records than bytes");
    std::vector<hash_record> records;
    records.reserve(count);
    std::unordered_set<std::string> names;
    for (std::uint32_t i = 0; i < count; ++i) {
        hash_record r;
        std::uint16_t name_size = 0;
        std::uint32_t pieces = 0;
        if (!in.get(name_size) || !in.get(r.name, name_size) || !in.get(r.stamp.size) ||
            !in.get(r.stamp.mtime_ns) || !in.get(r.stamp.inode) || !in.get(r.sha256) ||
            !in.get(r.root) || !in.get(pieces)) {
            return bad("a record is cut short");
        }
        if (!is_valid_file_name(r.name)) return bad("a name breaks the naming rules");
        if (!names.insert(r.name).second) return bad("'" + r.name + "' is recorded twice");
        if (r.stamp.size > static_cast<std::uint64_t>(INT64_MAX) ||
            pieces != piece_count_for(r.stamp.size)) {
            return bad("the pieces of '" + r.name + "' do not fit its size");
        }
        if (in.left() / 32 < pieces) return bad("a record is cut short");
        auto list = std::make_shared<std::vector<digest>>(pieces);
        for (auto& d : *list)
            in.get(d);
        if (merkle_root(*list) != r.root)
            return bad("the pieces of '" + r.name + "' do not make its root");
        r.pieces = std::move(list);
        records.push_back(std::move(r));
    }
    if (in.left() != 0) return bad("bytes left over after the records");
    return records;
}

} // namespace p2pshare::detail
