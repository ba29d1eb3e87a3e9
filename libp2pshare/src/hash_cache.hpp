// The peer's hash cache (`pN.hashes`, docs/protocol.md §9.4): for each shared file its stamp,
// SHA-256, piece hashes and their root, so that a peer restarted over an unchanged folder offers
// its files at once instead of reading them all again. Encoding and decoding only, no I/O:
// unit-tested and fuzzed. A cache is a convenience, never trusted: anything that does not decode
// exactly (another version, a wrong checksum, a record that breaks a rule) is refused whole.
#pragma once

#include "pieces.hpp"
#include "protocol.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

/// What identifies a version of a file without reading it.
struct file_stamp {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    friend bool operator==(const file_stamp&, const file_stamp&) = default;
};

/// One file as the cache records it.
struct hash_record {
    std::string name;
    file_stamp stamp;
    digest sha256{};
    digest root{};
    /// piece_count_for(stamp.size) digests whose Merkle root is `root`; never null.
    std::shared_ptr<const std::vector<digest>> pieces;
};

/// The first line of a cache: what it is and the version of its format.
inline constexpr std::string_view hash_cache_magic = "p2pshare hash cache 1\n";

/// The cache's bytes: the magic line, the number of records (u32), each record (name length u16,
/// name, size u64, mtime_ns i64, inode u64, sha256, root, piece count u32, the piece digests;
/// integers little-endian, digests 32 raw bytes), then the SHA-256 of everything before it.
std::string encode_hash_cache(std::span<const hash_record> records);

/// The records of a cache, or errc::bad_config with what is wrong: another magic or version, a
/// checksum that does not match (a truncated or damaged file), a name that breaks the naming
/// rules or comes twice, a piece count that is not the one of the file's size, pieces whose
/// root is not the recorded one, bytes left over.
api_result<std::vector<hash_record>> decode_hash_cache(std::string_view bytes);

} // namespace p2pshare::detail
