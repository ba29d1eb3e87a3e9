#include "pieces.hpp"

#include "sha256.hpp"

#include <p2pshare/error.hpp>

#include <algorithm>
#include <bit>
#include <cstring>

namespace p2pshare::detail {

std::uint64_t piece_size_for(std::uint64_t size) noexcept {
    std::uint64_t piece = min_piece_size;
    while (piece < (std::uint64_t{1} << 62) && (size + piece - 1) / piece > max_piece_count)
        piece <<= 1;
    return piece;
}

std::uint64_t piece_count_for(std::uint64_t size) noexcept {
    const auto piece = piece_size_for(size);
    return std::max<std::uint64_t>(1, size / piece + (size % piece != 0 ? 1 : 0));
}

piece_span piece_at(std::uint64_t size, std::uint64_t index) noexcept {
    const auto piece = piece_size_for(size);
    const auto offset = std::min(size, index * piece);
    return {offset, std::min(piece, size - offset)};
}

digest sha256_digest(const void* data, std::size_t n) {
    sha256 h;
    h.update(data, n);
    digest d;
    h.digest_into(d.data());
    return d;
}

digest merkle_root(std::span<const digest> pieces) {
    if (pieces.empty()) return sha256_digest("", 0);
    if (pieces.size() == 1) return pieces.front();
    const auto width = std::bit_ceil(pieces.size());
    std::vector<digest> level(width, digest{});
    std::copy(pieces.begin(), pieces.end(), level.begin());
    sha256 h;
    while (level.size() > 1) {
        for (std::size_t i = 0; i < level.size() / 2; ++i) {
            h.update(level[2 * i].data(), 32);
            h.update(level[2 * i + 1].data(), 32);
            h.digest_into(level[i].data());
        }
        level.resize(level.size() / 2);
    }
    return level.front();
}

namespace {

/// The two lowercase hex digits of each byte value.
constexpr auto hex_pairs = [] {
    std::array<char, 512> t{};
    constexpr char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < 256; ++i) {
        t[2 * i] = hex[i >> 4];
        t[2 * i + 1] = hex[i & 15];
    }
    return t;
}();

} // namespace

void hex_into(std::string& out, std::span<const std::uint8_t> bytes) {
    out.resize(2 * bytes.size());
    char* p = out.data();
    for (const auto b : bytes) {
        std::memcpy(p, &hex_pairs[2 * std::size_t{b}], 2);
        p += 2;
    }
}

std::string to_hex(const digest& d) {
    std::string out;
    hex_into(out, d);
    return out;
}

std::optional<digest> digest_from_hex(std::string_view hex) noexcept {
    if (hex.size() != 64) return std::nullopt;
    const auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    digest d;
    for (std::size_t i = 0; i < 32; ++i) {
        const int hi = nibble(hex[2 * i]);
        const int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        d[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return d;
}

boost::system::result<std::vector<digest>> decode_piece_hashes(std::string_view body,
                                                               std::uint64_t size,
                                                               const digest& root) {
    const auto count = piece_count_for(size);
    if (body.size() % 32 != 0 || body.size() / 32 != count) {
        return make_error_code(errc::bad_response);
    }
    std::vector<digest> pieces(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < pieces.size(); ++i)
        std::memcpy(pieces[i].data(), body.data() + 32 * i, 32);
    if (merkle_root(pieces) != root) return make_error_code(errc::hash_mismatch);
    return pieces;
}

struct piece_hasher::impl {
    std::uint64_t size;
    std::uint64_t piece;
    std::uint64_t at = 0;       ///< bytes hashed so far
    std::uint64_t in_piece = 0; ///< bytes of the current piece hashed
    sha256 file;
    sha256 current;
    std::vector<digest> pieces;
};

piece_hasher::piece_hasher(std::uint64_t size) : impl_(std::make_unique<impl>()) {
    impl_->size = size;
    impl_->piece = piece_size_for(size);
    impl_->pieces.reserve(static_cast<std::size_t>(piece_count_for(size)));
}
piece_hasher::~piece_hasher() = default;
piece_hasher::piece_hasher(piece_hasher&&) noexcept = default;
piece_hasher& piece_hasher::operator=(piece_hasher&&) noexcept = default;

void piece_hasher::update(const void* data, std::size_t n) {
    auto& s = *impl_;
    const auto* p = static_cast<const unsigned char*>(data);
    s.file.update(p, n);
    while (n > 0) {
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(n, s.piece - s.in_piece));
        s.current.update(p, take);
        s.in_piece += take;
        s.at += take;
        p += take;
        n -= take;
        if (s.in_piece == s.piece) {
            s.current.digest_into(s.pieces.emplace_back().data());
            s.in_piece = 0;
        }
    }
}

piece_hasher::result piece_hasher::finish() {
    auto& s = *impl_;
    // The last, shorter piece (or the one empty piece of an empty file).
    if (s.in_piece > 0 || s.pieces.empty()) s.current.digest_into(s.pieces.emplace_back().data());
    result r;
    r.sha256 = s.file.hex_digest();
    r.root = merkle_root(s.pieces);
    r.pieces = std::move(s.pieces);
    s.pieces.clear();
    s.in_piece = 0;
    s.at = 0;
    return r;
}

} // namespace p2pshare::detail
