// The Redis store's values and the replies of its commands and scripts, encoded and decoded
// apart from any I/O: every decoder here takes bytes that came from Redis, and `make fuzz` feeds
// them (fuzz/fuzz_protocol.cpp). A reply that does not have the expected shape decodes to
// nothing; the store then answers 503 store_unavailable.
#pragma once

#include "protocol.hpp"
#include "resp.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

/// A file's value in its peer's lease hash: a byte for its root (0: none given, 1: the same as
/// its SHA-256, as for a file of one piece, 2: its own, which follows), the SHA-256's 32 bytes,
/// the root's 32 when it has its own, then the size in decimal. A file of one piece so takes
/// 40-odd bytes: a peer's hash of small files stays in Redis's compact encoding (listpack,
/// values of at most 64 bytes by default). bad_field for a digest that is not 64 hex digits.
api_result<std::string> encode_file_value(const file_entry& f);

/// A file value back: its size, SHA-256 and root (lowercase hex; root empty when none was
/// given), into the caller's strings (their capacity is reused). False when `v` is not one.
bool decode_file_value(std::string_view v, std::uint64_t& size, std::string& sha256,
                       std::string& root);

/// An integer reply, or a bulk string of decimal digits (with an optional '-').
std::optional<std::int64_t> reply_integer(const resp_value& v);

/// The strings of an array reply from element `from` on (elements that are not strings skipped).
std::vector<std::string> reply_strings(const resp_value& v, std::size_t from);

/// A peer id: a member of a source set or of an expiry bucket ("0".."4294967295").
std::optional<std::uint32_t> decode_peer_id(std::string_view member);
std::optional<std::uint32_t> decode_peer_id(const resp_value& v);

/// The one source of a name as its bucket's listing holds it: "<name>\0<id>" gives id; "<name>"
/// alone (a name of several sources, in its set) and anything else give nothing.
std::optional<std::uint32_t> listed_source(std::string_view member, std::string_view name);

/// The answer of a script that changed a peer's files (files_lua's answer()): {head, taken,
/// now ms, files before, files now, added count, added..., removed...}.
struct files_answer {
    std::string head; ///< the token (register) or "ok" (replace)
    bool taken = false;
    std::int64_t now_ms = 0;
    std::int64_t before = 0;
    std::int64_t count = 0;
    std::vector<std::string> added;
    std::vector<std::string> removed;
};
std::optional<files_answer> decode_files_answer(const resp_value& v);

/// One name bucket's share of a list page (list_lua): whether the bucket has nothing past what
/// it examined, the last name it examined, and the names that matched.
struct list_share {
    bool done = false;
    std::string last;
    std::vector<std::string> names;
};
std::optional<list_share> decode_list_share(const resp_value& v);

/// The HMGET of a source's lease hash for a lookup: its address and that file's value (absent
/// when the peer no longer has it), as views into the reply, which must outlive it. Nothing
/// when the lease has ended or the reply is not one.
struct source_read {
    std::string_view host;
    std::uint16_t port = 0;
    std::string_view cert; ///< the TLS certificate's SHA-256; empty: plain HTTP
    std::optional<std::string_view> value;
};
std::optional<source_read> decode_source_read(const resp_value& v);

} // namespace p2pshare::detail
