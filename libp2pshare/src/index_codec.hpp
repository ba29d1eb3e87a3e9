// The client half of the index's protocol (docs/protocol.md §6): every request a peer sends to
// the index, as a method, a target and a body, and every answer decoded from a status and a
// body. No I/O, so it is unit-tested with plain bytes and fuzzed. The decoders trust nothing:
// any answer the protocol does not allow is errc::bad_response with a message.
#pragma once

#include "protocol.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

/// A request to the index, before HTTP framing.
struct index_request {
    std::string_view method; ///< "GET", "POST", "PUT" or "DELETE"
    std::string target;
    std::string body;         ///< JSON; empty for none
    bool needs_token = false; ///< send `Authorization: Bearer TOKEN`
};

/// The limits an index advertises in /v1/health, as a client uses them.
struct index_bounds {
    std::size_t max_files_per_peer = 10'000;
    std::size_t max_lookup_names = 1'000;
    std::size_t max_list_page = 10'000;
    std::chrono::milliseconds lease_ttl{30'000};
};

/// A lease as the index grants it.
struct lease_grant {
    std::string token;
    std::chrono::milliseconds ttl{0};
};

/// A page of the list of names.
struct name_page {
    std::vector<std::string> names;
    std::optional<std::string> next_after;
};

/// One peer sharing a name, as a lookup answers it.
struct source_entry {
    std::uint32_t peer = 0;
    std::string host;
    std::uint16_t port = 0;
    std::uint64_t size = 0;
    std::string sha256;
    std::string root{}; ///< the Merkle root of its pieces; empty when the index gave none
    /// The SHA-256 of the certificate it serves with over TLS; empty: it serves plain HTTP.
    std::string cert_sha256{};
    friend bool operator==(const source_entry&, const source_entry&) = default;
};

/// Bounds of what the decoders accept.
inline constexpr std::size_t max_sources_per_name = 100'000;

index_request encode_register(const register_request& r);
index_request encode_renew(std::uint32_t id);
index_request encode_replace_files(std::uint32_t id, const std::vector<file_entry>& files);
index_request encode_unregister(std::uint32_t id);
/// GET /v1/files with the query parameters that are set (`limit` 0: none).
index_request encode_list(std::string_view contains, std::string_view after, std::size_t limit);
index_request encode_lookup(std::span<const std::string> names);
index_request encode_health();

/// The error an answer outside 2xx carries: its `error` name and `message` when the body has
/// them, else errc::bad_response naming the status.
api_error decode_error_answer(unsigned status, std::string_view body);

/// Each decoder: a non-2xx status gives decode_error_answer; a 2xx with a body the protocol
/// does not allow gives errc::bad_response.
api_result<lease_grant> decode_register_answer(unsigned status, std::string_view body);
api_result<std::chrono::milliseconds> decode_renew_answer(unsigned status, std::string_view body);
api_result<void> decode_replace_files_answer(unsigned status, std::string_view body);
api_result<void> decode_unregister_answer(unsigned status, std::string_view body);
/// A page asked for with `after` and `limit`: its names must be valid, in strictly increasing
/// order, after `after`, at most `limit` of them; `next_after` must move past `after`.
api_result<name_page> decode_list_answer(unsigned status, std::string_view body,
                                         std::string_view after, std::size_t limit);
/// The sources of each name of `asked`, in that order. The answer must name exactly the names
/// asked, in order; a name answered twice, an unknown name or a malformed source (a peer id
/// given twice for one name, a bad host, port, size, hash or root) fails the whole answer. A
/// source's `root` is optional; when given it must be 64 lowercase hex digits.
api_result<std::vector<std::vector<source_entry>>> decode_lookup_answer(
    unsigned status, std::string_view body, std::span<const std::string> asked);
/// The index's bounds (`limits` object, and `lease_ttl_ms`); a field it does not give keeps the
/// default above.
api_result<index_bounds> decode_health_answer(unsigned status, std::string_view body);

} // namespace p2pshare::detail
