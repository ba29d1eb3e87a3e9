// libFuzzer target: every decoder that takes bytes from the network or from a config file.
// The first byte picks the decoder; the rest is its input. Decoders must never crash, hang or
// accept something that breaks the rules they enforce.
#include <p2pshare/config.hpp>
#include <p2pshare/names.hpp>

#include "hash_cache.hpp"
#include "index/redis_replies.hpp"
#include "index_codec.hpp"
#include "piece_record.hpp"
#include "pieces.hpp"
#include "protocol.hpp"
#include "query.hpp"
#include "resp.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

void check_files(const std::vector<p2pshare::detail::file_entry>& files) {
    for (const auto& f : files) {
        check(p2pshare::is_valid_file_name(f.name));
        check(p2pshare::detail::is_sha256_hex(f.sha256));
    }
}

/// A value a resp_reader gave keeps the kinds' rules and the bounds; `elements` counts the
/// array elements of the whole reply.
void check_resp(const p2pshare::detail::resp_value& v, const p2pshare::detail::resp_limits& limits,
                std::size_t& elements) {
    using p2pshare::detail::resp_kind;
    check(v.kind == resp_kind::array || v.elements.empty());
    switch (v.kind) {
        case resp_kind::bulk_string:
            check(v.str.size() <= limits.max_string);
            break;
        case resp_kind::simple_string:
        case resp_kind::error:
            check(v.str.size() <= limits.max_line);
            check(v.str.find("\r\n") == std::string::npos);
            break;
        default:
            check(v.str.empty());
    }
    if (v.kind != resp_kind::integer) check(v.integer == 0);
    elements += v.elements.size();
    check(elements <= limits.max_elements);
    for (const auto& e : v.elements)
        check_resp(e, limits, elements);
}

/// What the decoders built on RESP make of one reply.
/// A file value of the Redis store: what decodes encodes back to a value that decodes the same.
void check_file_value(std::string_view bytes) {
    using namespace p2pshare::detail;
    file_entry f;
    if (!decode_file_value(bytes, f.size, f.sha256, f.root)) return;
    check(f.sha256.size() == 64 && (f.root.empty() || f.root.size() == 64));
    const auto again = encode_file_value(f);
    check(again.has_value());
    file_entry g;
    check(decode_file_value(*again, g.size, g.sha256, g.root));
    check(g.size == f.size && g.sha256 == f.sha256 && g.root == f.root);
}

void check_resp_decoders(const p2pshare::detail::resp_value& v) {
    using namespace p2pshare::detail;
    // The Redis store's replies: what decodes keeps the shape the store relies on.
    if (auto a = decode_files_answer(v)) {
        check(a->before >= 0 && a->count >= 0);
        check(a->added.size() + a->removed.size() == v.elements.size() - 6);
    }
    if (auto share = decode_list_share(v)) check(share->names.size() <= v.elements.size() - 2);
    if (auto read = decode_source_read(v)) check(read->port != 0 && !read->host.empty());
    (void)decode_peer_id(v);
    (void)reply_integer(v);
    if (auto map = decode_cluster_slots(v)) {
        for (std::size_t i = 0; i < map->size(); ++i) {
            const auto& r = (*map)[i];
            check(r.first <= r.last && r.last < slot_count && r.port != 0);
            check(r.host.empty() || is_valid_host(r.host));
            if (i > 0) check((*map)[i - 1].last < r.first);
        }
    }
    if (v.is_error()) {
        const auto kind = classify_error(v.str);
        if (auto r = parse_redirect(v.str)) {
            check(r->slot < slot_count && r->port != 0);
            check(r->host.empty() || is_valid_host(r->host));
            check(kind == (r->kind == redirect_kind::moved ? resp_error_kind::moved
                                                           : resp_error_kind::ask));
        }
    }
    if (auto s = v.as_string()) {
        check_file_value(*s);
        if (const auto nul = s->find('\0'); nul != std::string_view::npos) {
            (void)listed_source(*s, s->substr(0, nul));
        }
        check(key_slot(*s) < slot_count);
        if (auto field = info_field(*s, "redis_version")) {
            check(field->find_first_of("\r\n") == std::string_view::npos);
        }
    }
    // A command is an array of bulk strings: one reads back as itself.
    if (v.is_array() && std::all_of(v.elements.begin(), v.elements.end(), [](const auto& e) {
            return e.kind == resp_kind::bulk_string;
        })) {
        std::vector<std::string_view> args;
        for (const auto& e : v.elements)
            args.push_back(e.str);
        std::string bytes;
        append_command(bytes, args);
        resp_reader again;
        again.feed(bytes);
        auto back = again.next();
        check(back && *back && **back == v);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace p2pshare::detail;
    if (size == 0) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    // Cases 0-9 keep the first bytes of the corpus; a new decoder takes the next number.
    switch (data[0] % 12) {
        case 0:
            if (auto r = decode_register(input, 100)) {
                check_files(r->files);
                check(r->port != 0);
                check(r->files.size() <= 100);
            }
            break;
        case 1:
            if (auto r = decode_files_update(input, 100)) check_files(*r);
            break;
        case 2: {
            auto r = decode_lookup(input, 100);
            if (r) {
                check(r->size() <= 100);
                for (const auto& n : *r)
                    check(p2pshare::is_valid_file_name(n));
            }
            // The index's fast path takes a body only when the full parser gives the same names.
            std::vector<std::string_view> names;
            if (scan_lookup(input, 100, names)) {
                check(r.has_value());
                check(r->size() == names.size());
                for (std::size_t i = 0; i < names.size(); ++i)
                    check((*r)[i] == names[i]);
            }
            break;
        }
        case 3: {
            // Range against a size taken from the input's length, so both edges are reached.
            const std::uint64_t file_size = input.size() % 64;
            if (auto r = parse_range(input, file_size); r && *r) {
                check((*r)->first <= (*r)->last);
                check((*r)->last < file_size);
            }
            break;
        }
        case 4:
            check(p2pshare::is_valid_file_name(input) ==
                  p2pshare::file_name_problem(input).empty());
            if (p2pshare::is_valid_file_name(input)) {
                check(input.find('/') == std::string_view::npos);
                check(input != "..");
            }
            break;
        case 5:
            if (auto r = p2pshare::parse_peer_config(input)) {
                check(r->listen.port != 0 && r->index.port != 0);
            }
            break;
        case 6:
            if (auto r = p2pshare::parse_server_config(input)) {
                check(!r->empty());
                for (const auto& a : *r)
                    check(a.port != 0 && !a.host.empty());
            }
            break;
        case 7:
            if (auto t = parse_target(input)) {
                check(!t->segments.empty());
            }
            if (auto d = percent_decode(input)) {
                check(percent_decode(percent_encode(*d)) == *d);
            }
            break;
        case 8:
            (void)decode_bearer(input);
            (void)parse_peer_id(input);
            (void)p2pshare::parse_duration(input);
            (void)p2pshare::parse_size(input);
            if (auto a = p2pshare::parse_host_port(input)) {
                auto back = p2pshare::parse_host_port(p2pshare::to_string(*a));
                check(back.has_value() && *back == *a);
            }
            break;
        case 9: {
            // The client half: the index's answers, with a status from the second byte.
            if (input.empty()) break;
            const unsigned status = 200 + static_cast<unsigned char>(input[0]) % 3 * 100;
            const auto body = input.substr(1);
            (void)decode_error_answer(status, body);
            (void)decode_register_answer(status, body);
            (void)decode_renew_answer(status, body);
            (void)decode_health_answer(status, body);
            if (auto page = decode_list_answer(status, body, "m", 3)) {
                check(page->names.size() <= 3);
                for (const auto& n : page->names)
                    check(p2pshare::is_valid_file_name(n) && n > "m");
                if (page->next_after) check(*page->next_after > "m");
            }
            const std::vector<std::string> asked{"a", "b"};
            if (auto found = decode_lookup_answer(status, body, asked)) {
                check(found->size() == asked.size());
                for (const auto& sources : *found) {
                    for (const auto& src : sources)
                        check(src.port != 0 && is_sha256_hex(src.sha256) &&
                              is_valid_host(src.host) &&
                              (src.root.empty() || is_sha256_hex(src.root)));
                }
            }
            break;
        }
        case 10: {
            // Bytes read from the disk at a peer's start: its hash cache. What it accepts keeps
            // every rule, and encodes back to the same bytes.
            if (auto records = decode_hash_cache(input)) {
                for (const auto& r : *records) {
                    check(p2pshare::is_valid_file_name(r.name));
                    check(r.pieces && r.pieces->size() == piece_count_for(r.stamp.size));
                    check(merkle_root(*r.pieces) == r.root);
                }
                check(encode_hash_cache(*records) == input);
            }
            // A peer's list of piece hashes, against a root that is its own for an even first
            // byte (so that both answers are reached) and all zeros otherwise.
            if (!input.empty()) {
                const auto count = input.size() / 32;
                const std::uint64_t size = count == 0 ? 0 : count * min_piece_size - (input[0] & 1);
                digest root{};
                if (input[0] % 2 == 0 && input.size() % 32 == 0 && count > 0) {
                    std::vector<digest> list(count);
                    for (std::size_t i = 0; i < count; ++i)
                        std::copy_n(input.data() + 32 * i, 32, list[i].begin());
                    root = merkle_root(list);
                }
                if (auto list = decode_piece_hashes(input, size, root)) {
                    check(list->size() == piece_count_for(size));
                    check(merkle_root(*list) == root);
                }
            }
            // A download's record of its verified pieces, read at a restart: it names exactly
            // the file's pieces, or nothing.
            if (!input.empty()) {
                const std::uint64_t pieces = 1 + input[0] % 40;
                piece_record record(pieces * min_piece_size, min_piece_size, pieces, digest{},
                                    digest{});
                if (auto verified = record.read(input)) check(verified->size() == pieces);
            }
            break;
        }
        case 11: {
            // Replies of a Redis store. The first byte seeds the sizes of the chunks the rest is
            // fed in (as reads from a socket would cut it) and, by its top bit, small bounds that
            // the input can reach. The values, and where it fails, do not depend on the chunks:
            // the same bytes fed at once give the same.
            if (input.empty()) break;
            const auto seed = static_cast<unsigned char>(input[0]);
            const auto bytes = input.substr(1);
            resp_limits limits;
            if ((seed & 0x80) != 0) {
                limits.max_string = 64;
                limits.max_elements = 16;
                limits.max_line = 32;
            }
            const auto drain = [&](resp_reader& reader, std::vector<resp_value>& out) {
                for (;;) {
                    auto r = reader.next();
                    if (!r) {
                        check(r.error().code == p2pshare::errc::bad_response);
                        return false;
                    }
                    if (!*r) return true;
                    std::size_t elements = 0;
                    check_resp(**r, limits, elements);
                    out.push_back(std::move(**r));
                }
            };
            resp_reader chunked(limits);
            std::vector<resp_value> values;
            bool ok = true;
            unsigned state = seed;
            for (std::size_t at = 0; at < bytes.size() && ok;) {
                state = state * 1103515245u + 12345u;
                const std::size_t n =
                    std::min<std::size_t>(1 + (state >> 16) % 37, bytes.size() - at);
                chunked.feed(bytes.substr(at, n));
                at += n;
                ok = drain(chunked, values);
            }
            resp_reader whole(limits);
            whole.feed(bytes);
            std::vector<resp_value> at_once;
            check(drain(whole, at_once) == ok);
            check(at_once == values);
            for (const auto& v : values)
                check_resp_decoders(v);
            check_file_value(bytes);
            (void)decode_peer_id(bytes);
            (void)info_field(bytes, "cluster_enabled");
            if (auto field = info_field(bytes, "redis_version")) {
                check(field->find_first_of("\r\n") == std::string_view::npos);
            }
            break;
        }
    }
    return 0;
}
