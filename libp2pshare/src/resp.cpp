#include "resp.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <new>
#include <system_error>

// resp_reader bounds what it holds by looking at the state of an unfinished reply in the
// redisReader's own fields (rstack, ridx, buf, pos, len), which hiredis 1.x changed.
#if HIREDIS_MAJOR != 0 || HIREDIS_MINOR != 14
#error "resp.cpp reads the redisReader of hiredis 0.14"
#endif

namespace p2pshare::detail {
namespace {

/// The capacity the reader's buffer may keep while it holds no bytes (hiredis's maxbuf). The
/// default, 16 KiB, is below one read from a socket: the buffer would be freed and allocated
/// again at every read. Above this, the buffer a large reply needed is given back.
constexpr std::size_t idle_buffer = std::size_t{256} << 10;

/// What an array reserves before its elements arrive: its count is the sender's word only.
constexpr std::size_t reserved_elements = 256;

/// A decimal number of at most `max`, digits only.
std::optional<std::uint64_t> decimal(std::string_view s, std::uint64_t max) noexcept {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || n > max) {
        return std::nullopt;
    }
    return n;
}

void append_header(std::string& out, char type, std::size_t n) {
    std::array<char, 24> buf;
    buf[0] = type;
    const auto end = std::to_chars(buf.data() + 1, buf.data() + buf.size() - 2, n).ptr;
    end[0] = '\r';
    end[1] = '\n';
    out.append(buf.data(), end + 2);
}

api_error bad_slots(std::string what) {
    return fail(errc::bad_response, "the CLUSTER SLOTS reply is not valid: " + std::move(what));
}

} // namespace

std::optional<std::string_view> resp_value::as_string() const noexcept {
    if (kind != resp_kind::simple_string && kind != resp_kind::bulk_string) return std::nullopt;
    return std::string_view(str);
}

// hiredis parses; these callbacks build the resp_value tree as it goes, so that a reply is
// not built as hiredis's redisReply first and copied, and so that a count or a length is
// refused before anything is allocated for it. hiredis frees, through free_object, only the
// root of an unfinished reply: the other values live in their parent's `elements`. A callback
// that refuses returns nullptr, which hiredis reports as "Out of memory": `refusal` says why.
struct resp_reader::state {
    redisReader* reader = nullptr;
    resp_limits limits;
    std::size_t elements = 0; ///< array elements declared so far in the reply being read
    std::string refusal;
    std::optional<api_error> failure;

    static redisReplyObjectFunctions functions;

    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() { redisReaderFree(reader); }

    static state& of(const redisReadTask* task) { return *static_cast<state*>(task->privdata); }

    /// Refuses a value, saying why (hiredis says "Out of memory" whatever the reason).
    void* refuse(const char* why) noexcept {
        try {
            refusal = why;
        } catch (...) {
        }
        return nullptr;
    }

    /// Refuses a value: "WHAT of N UNIT, over the bound of BOUND".
    void* refuse(const char* what, std::size_t n, const char* unit, std::size_t bound) noexcept {
        try {
            refusal = std::string(what) + " of " + std::to_string(n) + " " + unit +
                      ", over the bound of " + std::to_string(bound);
        } catch (...) {
            refusal = "over a bound";
        }
        return nullptr;
    }

    /// Places `v` in the reply: the root is allocated, any other value goes into the array
    /// being filled. No array grows while one of its elements is still being filled (hiredis
    /// fills them in order), so the pointer returned stays valid as long as hiredis uses it.
    static void* place(const redisReadTask* task, resp_value&& v) noexcept {
        try {
            if (task->parent == nullptr) return new resp_value(std::move(v));
            auto& parent = *static_cast<resp_value*>(task->parent->obj);
            parent.elements.push_back(std::move(v));
            return &parent.elements.back();
        } catch (...) {
            return of(task).refuse("out of memory");
        }
    }

    static void* create_string(const redisReadTask* task, char* str, std::size_t len) noexcept {
        auto& s = of(task);
        // A bulk string's length was checked by next() as soon as its line arrived, unless the
        // whole string came with it: it is checked here again. A line is a status or an error.
        const bool bulk = task->type == REDIS_REPLY_STRING;
        const auto bound = bulk ? s.limits.max_string : s.limits.max_line;
        if (len > bound) return s.refuse(bulk ? "a bulk string" : "a line", len, "bytes", bound);
        // hiredis skips the two bytes after a bulk string without looking at them; they are in
        // its buffer (it waited for them), and must be CRLF, or the sender and this reader do
        // not agree where the string ends.
        if (bulk && (str[len] != '\r' || str[len + 1] != '\n')) {
            return s.refuse("a bulk string is not followed by CRLF");
        }
        resp_value v;
        v.kind = bulk                              ? resp_kind::bulk_string
                 : task->type == REDIS_REPLY_ERROR ? resp_kind::error
                                                   : resp_kind::simple_string;
        try {
            v.str.assign(str, len);
        } catch (...) {
            return s.refuse("out of memory");
        }
        return place(task, std::move(v));
    }

    static void* create_array(const redisReadTask* task, int count) noexcept {
        auto& s = of(task);
        // hiredis gives 0..INT_MAX; its own callback would allocate that many pointers at once.
        const auto n = static_cast<std::size_t>(count);
        const auto bound = s.limits.max_elements;
        if (n > bound) return s.refuse("an array", n, "elements", bound);
        if (n > bound - s.elements) {
            return s.refuse("a reply", s.elements + n, "array elements", bound);
        }
        s.elements += n;
        resp_value v;
        v.kind = resp_kind::array;
        try {
            v.elements.reserve(std::min(n, reserved_elements));
        } catch (...) {
            return s.refuse("out of memory");
        }
        return place(task, std::move(v));
    }

    static void* create_integer(const redisReadTask* task, long long value) noexcept {
        resp_value v;
        v.kind = resp_kind::integer;
        v.integer = value;
        return place(task, std::move(v));
    }

    static void* create_nil(const redisReadTask* task) noexcept {
        return place(task, resp_value{});
    }

    static void free_object(void* root) noexcept { delete static_cast<resp_value*>(root); }

    api_error fail_with(std::string why) {
        failure = fail(errc::bad_response, "invalid RESP reply: " + std::move(why));
        return *failure;
    }

    /// Why the unfinished reply cannot go on, or "". hiredis has taken all it could: what is
    /// left in its buffer is the one item it waits for the end of, a line without its CRLF or
    /// a bulk string whose bytes have not all arrived (pos is still at its length line).
    std::string check_unfinished() const {
        const redisReader& r = *reader;
        if (r.ridx < 0 || r.buf == nullptr) return {};
        const std::string_view left(r.buf + r.pos, r.len - r.pos);
        // A line's end is looked for within its bound only (max: a bound of SIZE_MAX).
        const auto scan = std::max(limits.max_line, limits.max_line + 2);
        const auto line_end = left.substr(0, scan).find("\r\n");
        if (r.rstack[r.ridx].type == REDIS_REPLY_STRING && line_end != std::string_view::npos) {
            // hiredis read the length line and found a number of at least -1 (-1 is a nil,
            // finished at once): refuse it now rather than buffer the bytes it announces.
            std::uint64_t n = 0;
            const auto [end, ec] = std::from_chars(left.data(), left.data() + line_end, n);
            if (ec == std::errc::result_out_of_range || n > limits.max_string) {
                return "a bulk string of " + std::string(left.substr(0, line_end)) +
                       " bytes, over the bound of " + std::to_string(limits.max_string);
            }
            return {};
        }
        // The line so far may end with the CR of its CRLF.
        const auto line = left.size() - (left.ends_with('\r') ? 1 : 0);
        if (line_end == std::string_view::npos && line > limits.max_line) {
            return "a line of more than " + std::to_string(limits.max_line) +
                   " bytes, over the bound";
        }
        return {};
    }
};

redisReplyObjectFunctions resp_reader::state::functions{&state::create_string, &state::create_array,
                                                        &state::create_integer, &state::create_nil,
                                                        &state::free_object};

resp_reader::resp_reader(const resp_limits& limits) : state_(std::make_unique<state>()) {
    state_->limits = limits;
    state_->reader = redisReaderCreateWithFunctions(&state::functions);
    if (state_->reader == nullptr) throw std::bad_alloc();
    state_->reader->privdata = state_.get();
    state_->reader->maxbuf = idle_buffer;
}

resp_reader::~resp_reader() = default;
resp_reader::resp_reader(resp_reader&&) noexcept = default;
resp_reader& resp_reader::operator=(resp_reader&&) noexcept = default;

void resp_reader::feed(const char* data, std::size_t n) {
    auto& s = *state_;
    if (s.failure || n == 0) return;
    if (redisReaderFeed(s.reader, data, n) != REDIS_OK) s.fail_with("out of memory");
}

api_result<std::optional<resp_value>> resp_reader::next() {
    auto& s = *state_;
    if (s.failure) return *s.failure;
    if (s.reader->ridx < 0) s.elements = 0; // a new reply starts
    void* reply = nullptr;
    if (redisReaderGetReply(s.reader, &reply) != REDIS_OK) {
        return s.fail_with(s.refusal.empty() ? std::string(s.reader->errstr) : s.refusal);
    }
    if (reply != nullptr) {
        const std::unique_ptr<resp_value> root(static_cast<resp_value*>(reply));
        return std::optional<resp_value>(std::move(*root));
    }
    if (auto why = s.check_unfinished(); !why.empty()) return s.fail_with(std::move(why));
    return std::optional<resp_value>();
}

void append_command(std::string& out, std::span<const std::string_view> args) {
    std::size_t size = 24;
    for (const auto arg : args)
        size += arg.size() + 26;
    out.reserve(out.size() + size);
    append_header(out, '*', args.size());
    for (const auto arg : args) {
        append_header(out, '$', arg.size());
        out.append(arg);
        out.append("\r\n");
    }
}

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
    append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

namespace {

constexpr std::array<std::uint16_t, 256> crc16_table = [] {
    std::array<std::uint16_t, 256> table{};
    for (unsigned i = 0; i < table.size(); ++i) {
        unsigned crc = i << 8;
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
        table[i] = static_cast<std::uint16_t>(crc);
    }
    return table;
}();

} // namespace

std::uint16_t crc16(std::string_view bytes) noexcept {
    unsigned crc = 0;
    for (const char c : bytes)
        crc = ((crc << 8) ^ crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]) &
              0xffff;
    return static_cast<std::uint16_t>(crc);
}

std::uint16_t key_slot(std::string_view key) noexcept {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        // "{}" is no tag: the whole key is hashed.
        if (close != std::string_view::npos && close > open + 1) {
            key = key.substr(open + 1, close - open - 1);
        }
    }
    // 16384 is a power of two.
    return static_cast<std::uint16_t>(crc16(key) & (slot_count - 1));
}

std::optional<redirect> parse_redirect(std::string_view error_text) {
    redirect r;
    std::string_view rest;
    if (error_text.starts_with("MOVED ")) {
        r.kind = redirect_kind::moved;
        rest = error_text.substr(6);
    } else if (error_text.starts_with("ASK ")) {
        r.kind = redirect_kind::ask;
        rest = error_text.substr(4);
    } else {
        return std::nullopt;
    }
    const auto space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const auto slot = decimal(rest.substr(0, space), slot_count - 1);
    // The endpoint is host:port, and an IPv6 host has colons of its own (Redis sends it
    // without brackets).
    const auto endpoint = rest.substr(space + 1);
    const auto colon = endpoint.rfind(':');
    if (!slot || colon == std::string_view::npos) return std::nullopt;
    const auto port = decimal(endpoint.substr(colon + 1), 65535);
    const auto host = endpoint.substr(0, colon);
    if (!port || *port == 0 || (!host.empty() && !is_valid_host(host))) return std::nullopt;
    r.slot = static_cast<std::uint16_t>(*slot);
    r.host = std::string(host);
    r.port = static_cast<std::uint16_t>(*port);
    return r;
}

resp_error_kind classify_error(std::string_view error_text) noexcept {
    const auto word = error_text.substr(0, error_text.find(' '));
    static constexpr std::pair<std::string_view, resp_error_kind> known[] = {
        {"MOVED", resp_error_kind::moved},
        {"ASK", resp_error_kind::ask},
        {"TRYAGAIN", resp_error_kind::tryagain},
        {"NOSCRIPT", resp_error_kind::noscript},
        {"CLUSTERDOWN", resp_error_kind::clusterdown},
        {"LOADING", resp_error_kind::loading},
        {"READONLY", resp_error_kind::readonly},
    };
    for (const auto& [name, kind] : known) {
        if (word == name) return kind;
    }
    return resp_error_kind::other;
}

api_result<std::vector<slot_range>> decode_cluster_slots(const resp_value& reply) {
    if (reply.is_error()) return fail(errc::bad_response, "CLUSTER SLOTS failed: " + reply.str);
    if (!reply.is_array()) return bad_slots("not an array");
    std::vector<slot_range> ranges;
    ranges.reserve(reply.elements.size());
    // Each entry: first slot, last slot, then the master [endpoint, port, id?, metadata?] and
    // the replicas alike.
    for (const auto& entry : reply.elements) {
        if (!entry.is_array() || entry.elements.size() < 3) {
            return bad_slots("an entry is not an array of a range and its nodes");
        }
        const auto& first = entry.elements[0];
        const auto& last = entry.elements[1];
        const auto& master = entry.elements[2];
        if (first.kind != resp_kind::integer || last.kind != resp_kind::integer ||
            first.integer < 0 || first.integer > last.integer || last.integer >= slot_count) {
            return bad_slots("a range is not within 0..16383 in order");
        }
        if (!master.is_array() || master.elements.size() < 2) {
            return bad_slots("a master is not an array of its endpoint and port");
        }
        const auto& endpoint = master.elements[0];
        const auto& port = master.elements[1];
        if (port.kind != resp_kind::integer || port.integer < 1 || port.integer > 65535) {
            return bad_slots("a master's port is not within 1..65535");
        }
        slot_range range{static_cast<std::uint16_t>(first.integer),
                         static_cast<std::uint16_t>(last.integer),
                         {},
                         static_cast<std::uint16_t>(port.integer)};
        if (const auto host = endpoint.as_string()) {
            if (*host == "?") continue;
            if (!host->empty() && !is_valid_host(*host)) {
                return bad_slots("a master's endpoint is not a host name or an IP address");
            }
            range.host = std::string(*host);
        } else if (!endpoint.is_nil()) {
            return bad_slots("a master's endpoint is not a string");
        }
        ranges.push_back(std::move(range));
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const slot_range& a, const slot_range& b) { return a.first < b.first; });
    for (std::size_t i = 1; i < ranges.size(); ++i) {
        if (ranges[i].first <= ranges[i - 1].last) {
            return bad_slots("slot " + std::to_string(ranges[i].first) + " is in two ranges");
        }
    }
    return ranges;
}

std::optional<std::string_view> info_field(std::string_view info, std::string_view name) {
    if (name.empty() || name.find_first_of(":\r\n") != std::string_view::npos) {
        return std::nullopt;
    }
    while (!info.empty()) {
        const auto end = info.find('\n');
        const auto line = info.substr(0, end);
        info = end == std::string_view::npos ? std::string_view() : info.substr(end + 1);
        if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':') {
            // The value ends at the line's CR, or at a stray one: it never holds one.
            const auto value = line.substr(name.size() + 1);
            return value.substr(0, value.find('\r'));
        }
    }
    return std::nullopt;
}

} // namespace p2pshare::detail
