// Wire protocol of p2pshare (docs/protocol.md): decoding and encoding with no I/O, so that it is
// unit-tested with plain bytes and fuzzed.
#pragma once

#include <p2pshare/error.hpp>
#include <p2pshare/limits.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

/// An expected failure with a message for the user; travels as {"error":..., "message":...}.
struct api_error {
    errc code = errc::bad_request;
    std::string message;
};

[[noreturn]] void throw_exception_from_error(const api_error& e,
                                             const boost::source_location& location);

template <class T>
using api_result = boost::system::result<T, api_error>;

inline api_error fail(errc code, std::string message) { return {code, std::move(message)}; }

/// One shared file as the index knows it.
struct file_entry {
    std::string name;
    std::uint64_t size = 0;
    std::string sha256; ///< 64 lowercase hex digits
    /// The Merkle root of its piece hashes (docs/protocol.md, "Pieces"): 64 lowercase hex
    /// digits, or empty when unknown (a peer of an older version registers none).
    std::string root{};

    friend bool operator==(const file_entry&, const file_entry&) = default;
};

struct register_request {
    std::uint32_t id = 0;
    std::string host; ///< empty: the index uses the address the request came from
    std::uint16_t port = 0;
    std::vector<file_entry> files;
    std::string token; ///< empty unless the peer takes back its own live lease
    /// The SHA-256 of the certificate the peer serves its files with over TLS (64 lowercase hex
    /// digits); empty: it serves plain HTTP.
    std::string cert_sha256{};
};

/// The JSON of a body; errc::bad_json when it is not JSON.
api_result<boost::json::value> parse_json(std::string_view body,
                                          boost::json::storage_ptr storage = {});
/// The object a body must be; errc::bad_field otherwise.
api_result<const boost::json::object*> as_object(const boost::json::value& v);
/// The value of `key`, or nullptr.
const boost::json::value* find(const boost::json::object& o, std::string_view key);
/// An unsigned integer field within [min, max]; JSON numbers like 5.0 are refused (bad_field).
api_result<std::uint64_t> get_uint(const boost::json::object& o, std::string_view key,
                                   std::uint64_t min, std::uint64_t max);
/// A string field; a missing one is "" unless `required` (bad_field).
api_result<std::string> get_string(const boost::json::object& o, std::string_view key,
                                   bool required);

bool is_sha256_hex(std::string_view s) noexcept;
bool is_token(std::string_view s) noexcept;
bool is_valid_host(std::string_view s) noexcept;

api_result<register_request> decode_register(std::string_view body, std::size_t max_files);
api_result<std::vector<file_entry>> decode_files_update(std::string_view body,
                                                        std::size_t max_files);
api_result<std::vector<std::string>> decode_lookup(std::string_view body, std::size_t max_names);

/// The index's hot path: the names of a lookup body in the plain form clients send
/// (`{"names":["a","b"]}`, any JSON whitespace, names without escapes, control characters or
/// bytes over 0x7f), appended to `names` as views into `body`, when there are at most
/// `max_names` and each is a valid file name. Returns false, leaving `names` as it was, for any
/// other body: decode_lookup then gives the answer (or the error). Wherever it returns true,
/// the names are those decode_lookup returns (the fuzzer checks it).
bool scan_lookup(std::string_view body, std::size_t max_names,
                 std::vector<std::string_view>& names);

/// Appends `text` to `out` as a JSON string (quoted, escaped; UTF-8 passes through).
void append_json_string(std::string& out, std::string_view text);
/// Appends `n` in decimal (a JSON number, a Content-Length).
void append_number(std::string& out, std::uint64_t n);

/// The bearer token of an `Authorization: Bearer TOKEN` header.
api_result<std::string> decode_bearer(std::string_view authorization);

/// A peer id as written in a path segment.
std::optional<std::uint32_t> parse_peer_id(std::string_view text) noexcept;

/// Decodes %XX escapes of a path segment; fails on a bad escape.
std::optional<std::string> percent_decode(std::string_view text);
/// Encodes a file name for use as a path segment (RFC 3986 unreserved characters kept).
std::string percent_encode(std::string_view text);

/// An inclusive byte range [first, last].
struct byte_range {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    std::uint64_t length() const noexcept { return last - first + 1; }
    friend bool operator==(const byte_range&, const byte_range&) = default;
};

/// Parses a `Range` header against a file of `size` bytes: nullopt when the whole file is
/// to be sent, a range for 206, errc::bad_range for 416 (malformed, several ranges, unsatisfiable).
api_result<std::optional<byte_range>> parse_range(std::string_view header, std::uint64_t size);

/// {"error": CODE, "message": TEXT}
std::string encode_error(const api_error& e);

/// Whether an `If-Match` header lets a request on a resource whose strong ETag is `etag` (with its
/// quotes) go on: an empty header or `*` does, and so does a comma-separated list of entity tags
/// with `etag` among them. Weak tags (`W/"..."`) never match (strong comparison, RFC 9110 13.1.1).
bool if_match_allows(std::string_view header, std::string_view etag) noexcept;

/// {"name", "size", "sha256"} and "root" when it is known.
boost::json::object encode_file(const file_entry& f);
/// Parses the JSON array of file objects used by registration, the peer's listing and lookups.
api_result<std::vector<file_entry>> decode_file_array(const boost::json::value& v,
                                                      std::size_t max_files);

} // namespace p2pshare::detail
