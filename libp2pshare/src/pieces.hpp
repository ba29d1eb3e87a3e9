// Pieces of a shared file and the root that commits to them (docs/protocol.md, "Pieces"):
// the piece size a file of a given size has, the SHA-256 of each piece, the Merkle root over
// them, and the check of a list of piece hashes against a root. No I/O: unit-tested and fuzzed.
#pragma once

#include <boost/system/result.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

using digest = std::array<std::uint8_t, 32>;

/// The smallest piece: 1 MiB.
inline constexpr std::uint64_t min_piece_size = std::uint64_t{1} << 20;
/// A file has at most this many pieces: its piece size doubles until it does (so a list of
/// piece hashes is at most 1 MiB).
inline constexpr std::uint64_t max_piece_count = 32768;

/// The piece size of a file of `size` bytes: the smallest power of two, at least
/// min_piece_size, that cuts it into at most max_piece_count pieces.
std::uint64_t piece_size_for(std::uint64_t size) noexcept;
/// How many pieces a file of `size` bytes has: at least one (an empty file has one empty piece).
std::uint64_t piece_count_for(std::uint64_t size) noexcept;

/// Where piece `index` of a file of `size` bytes lies.
struct piece_span {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};
piece_span piece_at(std::uint64_t size, std::uint64_t index) noexcept;

/// The Merkle root over piece hashes: the leaves, padded with all-zero digests up to a power of
/// two, are hashed pairwise (SHA-256 of left || right) up to one digest. One piece: its hash.
digest merkle_root(std::span<const digest> pieces);

std::string to_hex(const digest& d);
/// The lowercase hex digits of `bytes`, into `out` (its capacity reused: a lookup's answers
/// encode digests without allocating). The one hex encoder of the library.
void hex_into(std::string& out, std::span<const std::uint8_t> bytes);
/// 64 lowercase hex digits; nullopt otherwise.
std::optional<digest> digest_from_hex(std::string_view hex) noexcept;

/// The piece hashes of a file of `size` bytes as a peer serves them (GET /v1/pieces/NAME: the
/// digests one after another, 32 bytes each), checked against `root`. errc::bad_response when
/// the length is not 32 × the file's piece count; errc::hash_mismatch when they do not make
/// `root`.
boost::system::result<std::vector<digest>> decode_piece_hashes(std::string_view body,
                                                               std::uint64_t size,
                                                               const digest& root);

/// Hashes a file as it is read, once: its SHA-256 and the SHA-256 of each piece.
class piece_hasher {
public:
    explicit piece_hasher(std::uint64_t size);
    ~piece_hasher();
    piece_hasher(piece_hasher&&) noexcept;
    piece_hasher& operator=(piece_hasher&&) noexcept;

    /// The next bytes of the file, in order.
    void update(const void* data, std::size_t n);
    /// After all `size` bytes: the file's SHA-256 (hex) and the piece hashes.
    struct result {
        std::string sha256;
        std::vector<digest> pieces;
        digest root{};
    };
    result finish();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// SHA-256 of one buffer, raw.
digest sha256_digest(const void* data, std::size_t n);

} // namespace p2pshare::detail
