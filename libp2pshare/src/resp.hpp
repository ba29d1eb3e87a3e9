// RESP, the protocol of Redis, as a client of a Redis Cluster speaks it: replies read from
// bytes, commands written to bytes, the hash slot of a key, the redirects and the errors a
// cluster answers, its slot map (CLUSTER SLOTS) and the fields of INFO. No I/O, so it is
// unit-tested with plain bytes and fuzzed. The reader trusts nothing: bytes that are not RESP,
// or that would make it hold more than its bounds, are errc::bad_response with a message.
#pragma once

#include "protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

enum class resp_kind : std::uint8_t { simple_string, bulk_string, error, integer, nil, array };

/// One reply, owned. RESP2 has one nil: "$-1" and "*-1" both read as resp_kind::nil.
struct resp_value {
    resp_kind kind = resp_kind::nil;
    std::string str;                    ///< simple_string, bulk_string and error
    std::int64_t integer = 0;           ///< integer
    std::vector<resp_value> elements{}; ///< array

    bool is_error() const noexcept { return kind == resp_kind::error; }
    bool is_nil() const noexcept { return kind == resp_kind::nil; }
    bool is_array() const noexcept { return kind == resp_kind::array; }
    /// The text of a simple or bulk string; nullopt for any other kind.
    std::optional<std::string_view> as_string() const noexcept;

    friend bool operator==(const resp_value&, const resp_value&) = default;
};

/// What one reply may hold. Each bound is checked as soon as the bytes that break it arrive,
/// not once the whole reply is there: a bulk string is refused by its length line.
struct resp_limits {
    /// Bytes of one bulk string.
    std::size_t max_string = std::size_t{64} << 20;
    /// Elements of one array, and of all the arrays of one reply together.
    std::size_t max_elements = std::size_t{1} << 20;
    /// Bytes of one line: a simple string, an error, an integer or a length. hiredis looks for a
    /// line's end from its start again at each read, so an endless line costs time as the
    /// square of its length: this bound keeps that small.
    std::size_t max_line = std::size_t{64} << 10;
};

/// Reads replies from the bytes of one connection, in order (hiredis's redisReader, building
/// resp_value directly). Feed it what each read gave, then call next() until it needs more
/// bytes: the bounds are checked there.
class resp_reader {
public:
    explicit resp_reader(const resp_limits& limits = {});
    ~resp_reader();
    resp_reader(resp_reader&&) noexcept;
    resp_reader& operator=(resp_reader&&) noexcept;

    void feed(const char* data, std::size_t n);
    void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

    /// The next complete reply; nullopt when it needs more bytes; errc::bad_response when the
    /// bytes are not RESP or break a bound. After an error the reader is unusable: next() gives
    /// the same error again and feed() ignores its bytes (the connection must be closed).
    api_result<std::optional<resp_value>> next();

private:
    struct state;
    std::unique_ptr<state> state_;
};

/// Appends a command, a RESP array of bulk strings, to `out`. Binary-safe.
void append_command(std::string& out, std::span<const std::string_view> args);
void append_command(std::string& out, std::initializer_list<std::string_view> args);

/// Redis Cluster's hash slots.
inline constexpr std::uint16_t slot_count = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), as the Redis Cluster specification.
std::uint16_t crc16(std::string_view bytes) noexcept;
/// The slot of a key: crc16 mod 16384 of its hash tag when it has one (the bytes between its
/// first '{' and the first '}' after it, when there are any), else of the whole key.
std::uint16_t key_slot(std::string_view key) noexcept;

enum class redirect_kind : std::uint8_t {
    moved, ///< for good: update the slot map
    ask,   ///< for this command only, sent again after ASKING to the node named
};

/// A cluster's answer that the slot of a key is served elsewhere.
struct redirect {
    redirect_kind kind = redirect_kind::moved;
    std::uint16_t slot = 0;
    std::string host; ///< empty: the host of the connection that got the redirect
    std::uint16_t port = 0;
    friend bool operator==(const redirect&, const redirect&) = default;
};

/// The redirect of an error reply's text, "MOVED 3999 127.0.0.1:6381" or "ASK 3999 ::1:6381"
/// (the port follows the last colon); nullopt for any other text. A host of "?" (a node set to
/// announce a hostname it does not have) cannot be reached: nullopt too.
std::optional<redirect> parse_redirect(std::string_view error_text);

/// The errors of a cluster that a client acts on, by the first word of their text.
enum class resp_error_kind : std::uint8_t {
    other,
    moved,       ///< MOVED: see parse_redirect
    ask,         ///< ASK: see parse_redirect
    tryagain,    ///< TRYAGAIN: a multi-key command during a slot's migration; retry later
    noscript,    ///< NOSCRIPT: EVALSHA of a script the node does not have; send EVAL
    clusterdown, ///< CLUSTERDOWN: the cluster cannot serve the slot now
    loading,     ///< LOADING: the node is loading its data set
    readonly,    ///< READONLY: a write sent to a replica (it was failed over)
};
resp_error_kind classify_error(std::string_view error_text) noexcept;

/// A range of slots and the master that serves it.
struct slot_range {
    std::uint16_t first = 0;
    std::uint16_t last = 0; ///< included
    std::string host;       ///< empty: the host that answered CLUSTER SLOTS
    std::uint16_t port = 0;
    friend bool operator==(const slot_range&, const slot_range&) = default;
};

/// The slot map of a CLUSTER SLOTS reply, sorted by slot: for each range its master, the first
/// node listed (replicas, node ids and the networking metadata of Redis 7 are ignored). A
/// master's endpoint that is nil (cluster-preferred-endpoint-type unknown-endpoint) or empty
/// (a node that does not know its own address) means the host that answered, and gives an
/// empty host; one of "?" (announced hostname missing) is no endpoint, and its range is left
/// out as if unassigned. errc::bad_response when the reply is an error, or when a range is not
/// within 0..16383, ends before it starts, overlaps another, or has no valid host and port.
api_result<std::vector<slot_range>> decode_cluster_slots(const resp_value& reply);

/// The value of field `name` in the text of INFO (or CLUSTER INFO): lines "name:value\r\n",
/// with sections "# Name" between them; a line may end with LF alone, and its value ends at
/// the first CR. nullopt when no line has that name.
std::optional<std::string_view> info_field(std::string_view info, std::string_view name);

} // namespace p2pshare::detail
