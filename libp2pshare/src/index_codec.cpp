#include "index_codec.hpp"

#include <p2pshare/names.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <limits>
#include <unordered_set>

namespace p2pshare::detail {
namespace {

/// Longest lease an answer may give (a day): more is a broken or hostile index.
constexpr std::uint64_t max_ttl_ms = 86'400'000;

std::string peer_path(std::uint32_t id) { return "/v1/peers/" + std::to_string(id); }

api_error bad_answer(std::string what) {
    return fail(errc::bad_response, "the index's answer is not valid: " + std::move(what));
}

/// The object of a 2xx answer, or the error of any other.
api_result<boost::json::value> success_body(unsigned status, std::string_view body) {
    if (status / 100 != 2) return decode_error_answer(status, body);
    auto v = parse_json(body);
    if (!v) return bad_answer("not JSON");
    if (!v->is_object()) return bad_answer("not a JSON object");
    return v;
}

/// A field the answer must have, with any error turned into bad_response.
template <class T>
api_result<T> required(api_result<T> r) {
    if (!r) return bad_answer(r.error().message);
    return r;
}

api_result<std::chrono::milliseconds> ttl_of(const boost::json::object& o) {
    auto ttl = required(get_uint(o, "ttl_ms", 1, max_ttl_ms));
    if (!ttl) return ttl.error();
    return std::chrono::milliseconds(static_cast<std::int64_t>(*ttl));
}

std::string files_body(const std::vector<file_entry>& files) {
    boost::json::array array;
    array.reserve(files.size());
    for (const auto& f : files)
        array.emplace_back(encode_file(f));
    return boost::json::serialize(array);
}

} // namespace

index_request encode_register(const register_request& r) {
    boost::json::object body;
    body["id"] = r.id;
    body["host"] = r.host;
    body["port"] = r.port;
    auto& list = body["files"].emplace_array();
    list.reserve(r.files.size());
    for (const auto& f : r.files)
        list.emplace_back(encode_file(f));
    if (!r.token.empty()) body["token"] = r.token;
    if (!r.cert_sha256.empty()) body["cert_sha256"] = r.cert_sha256;
    return {"POST", "/v1/peers", boost::json::serialize(body), false};
}

index_request encode_renew(std::uint32_t id) { return {"PUT", peer_path(id) + "/lease", {}, true}; }

index_request encode_replace_files(std::uint32_t id, const std::vector<file_entry>& files) {
    return {"PUT", peer_path(id) + "/files", "{\"files\":" + files_body(files) + "}", true};
}

index_request encode_unregister(std::uint32_t id) { return {"DELETE", peer_path(id), {}, true}; }

index_request encode_list(std::string_view contains, std::string_view after, std::size_t limit) {
    std::string target = "/v1/files";
    char separator = '?';
    const auto add = [&](std::string_view key, std::string_view value) {
        target += separator;
        target += key;
        target += '=';
        target += value;
        separator = '&';
    };
    if (limit > 0) add("limit", std::to_string(limit));
    if (!contains.empty()) add("contains", percent_encode(contains));
    if (!after.empty()) add("after", percent_encode(after));
    return {"GET", std::move(target), {}, false};
}

index_request encode_lookup(std::span<const std::string> names) {
    std::string body = "{\"names\":[";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) body += ',';
        append_json_string(body, names[i]);
    }
    body += "]}";
    return {"POST", "/v1/lookup", std::move(body), false};
}

index_request encode_health() { return {"GET", "/v1/health", {}, false}; }

api_error decode_error_answer(unsigned status, std::string_view body) {
    api_error e{errc::bad_response, "the index answered HTTP " + std::to_string(status)};
    auto v = parse_json(body);
    if (!v || !v->is_object()) return e;
    const auto& o = v->get_object();
    if (const auto* m = find(o, "message"); m && m->is_string()) {
        e.message = std::string(m->get_string());
    }
    if (const auto* c = find(o, "error"); c && c->is_string()) {
        e.code = errc_from_string(c->get_string());
        if (e.code == errc::ok) e.code = errc::bad_response; // "ok" is no error
    }
    return e;
}

api_result<lease_grant> decode_register_answer(unsigned status, std::string_view body) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    const auto& o = v->get_object();
    auto token = required(get_string(o, "token", true));
    if (!token) return token.error();
    if (!is_token(*token)) return bad_answer("'token' is not 32 lowercase hex digits");
    auto ttl = ttl_of(o);
    if (!ttl) return ttl.error();
    return lease_grant{std::move(*token), *ttl};
}

api_result<std::chrono::milliseconds> decode_renew_answer(unsigned status, std::string_view body) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    return ttl_of(v->get_object());
}

api_result<void> decode_replace_files_answer(unsigned status, std::string_view body) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    return {};
}

api_result<void> decode_unregister_answer(unsigned status, std::string_view body) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    return {};
}

api_result<name_page> decode_list_answer(unsigned status, std::string_view body,
                                         std::string_view after, std::size_t limit) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    const auto& o = v->get_object();
    const auto* names = find(o, "names");
    if (names == nullptr || !names->is_array()) return bad_answer("'names' is not an array");
    const auto& array = names->get_array();
    if (limit > 0 && array.size() > limit) {
        return bad_answer(std::to_string(array.size()) + " names in a page of at most " +
                          std::to_string(limit));
    }
    name_page page;
    page.names.reserve(array.size());
    std::string_view last = after;
    for (const auto& item : array) {
        if (!item.is_string()) return bad_answer("a name is not a string");
        const std::string_view name = item.get_string();
        if (!is_valid_file_name(name)) return bad_answer("a name breaks the naming rules");
        if (name <= last) return bad_answer("the names are not in increasing order");
        page.names.emplace_back(name);
        last = page.names.back();
    }
    if (const auto* next = find(o, "next_after"); next != nullptr && !next->is_null()) {
        if (!next->is_string()) return bad_answer("'next_after' is neither a string nor null");
        const std::string_view cursor = next->get_string();
        // The cursor moves forward, past every name given: reading on always ends.
        if (cursor <= after || cursor < last) return bad_answer("'next_after' does not move on");
        page.next_after.emplace(cursor);
    }
    return page;
}

api_result<std::vector<std::vector<source_entry>>> decode_lookup_answer(
    unsigned status, std::string_view body, std::span<const std::string> asked) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    const auto* results = find(v->get_object(), "results");
    if (results == nullptr || !results->is_array()) return bad_answer("'results' is not an array");
    const auto& array = results->get_array();
    if (array.size() != asked.size()) {
        return bad_answer(std::to_string(array.size()) + " results for " +
                          std::to_string(asked.size()) + " names asked");
    }
    std::vector<std::vector<source_entry>> out(asked.size());
    for (std::size_t i = 0; i < array.size(); ++i) {
        const auto* result = array[i].if_object();
        if (result == nullptr) return bad_answer("a result is not an object");
        const auto* name = find(*result, "name");
        if (name == nullptr || !name->is_string() || name->get_string() != asked[i]) {
            return bad_answer("result " + std::to_string(i) + " is not for '" + asked[i] + "'");
        }
        const auto* sources = find(*result, "sources");
        if (sources == nullptr || !sources->is_array()) {
            return bad_answer("the sources of '" + asked[i] + "' are not an array");
        }
        const auto& list = sources->get_array();
        if (list.size() > max_sources_per_name) return bad_answer("too many sources");
        std::unordered_set<std::uint32_t> peers;
        auto& entries = out[i];
        entries.reserve(list.size());
        for (const auto& item : list) {
            const auto* s = item.if_object();
            if (s == nullptr) return bad_answer("a source is not an object");
            auto id = required(get_uint(*s, "id", 0, std::numeric_limits<std::uint32_t>::max()));
            if (!id) return id.error();
            auto host = required(get_string(*s, "host", true));
            if (!host) return host.error();
            if (!is_valid_host(*host)) return bad_answer("a source's host is not valid");
            auto port = required(get_uint(*s, "port", 1, 65535));
            if (!port) return port.error();
            auto size = required(
                get_uint(*s, "size", 0,
                         static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
            if (!size) return size.error();
            auto sha = required(get_string(*s, "sha256", true));
            if (!sha) return sha.error();
            if (!is_sha256_hex(*sha)) return bad_answer("a source's sha256 is not valid");
            std::string root;
            if (const auto* r = find(*s, "root"); r != nullptr) {
                if (!r->is_string() || !is_sha256_hex(r->get_string())) {
                    return bad_answer("a source's root is not valid");
                }
                root = std::string(r->get_string());
            }
            std::string cert;
            if (const auto* c = find(*s, "cert_sha256"); c != nullptr) {
                if (!c->is_string() || !is_sha256_hex(c->get_string())) {
                    return bad_answer("a source's cert_sha256 is not valid");
                }
                cert = std::string(c->get_string());
            }
            const auto peer = static_cast<std::uint32_t>(*id);
            if (!peers.insert(peer).second) {
                return bad_answer("peer " + std::to_string(peer) + " is given twice for '" +
                                  asked[i] + "'");
            }
            entries.push_back({peer, std::move(*host), static_cast<std::uint16_t>(*port), *size,
                               std::move(*sha), std::move(root), std::move(cert)});
        }
    }
    return out;
}

api_result<index_bounds> decode_health_answer(unsigned status, std::string_view body) {
    auto v = success_body(status, body);
    if (!v) return v.error();
    const auto& top = v->get_object();
    index_bounds bounds;
    // Each bound is optional (an older index does not give it), but when given it is valid.
    const auto* limits = find(top, "limits");
    if (limits != nullptr && !limits->is_object()) return bad_answer("'limits' is not an object");
    static const boost::json::object none;
    const auto& o = limits != nullptr ? limits->get_object() : none;
    const auto bound = [&](std::string_view key, std::size_t& out) -> api_result<void> {
        if (find(o, key) == nullptr) return {};
        auto n = required(get_uint(o, key, 1, std::numeric_limits<std::uint32_t>::max()));
        if (!n) return n.error();
        out = static_cast<std::size_t>(*n);
        return {};
    };
    for (const auto& [key, out] : {std::pair<std::string_view, std::size_t*>{
                                       "max_files_per_peer", &bounds.max_files_per_peer},
                                   {"max_lookup_names", &bounds.max_lookup_names},
                                   {"max_list_page", &bounds.max_list_page}}) {
        if (auto r = bound(key, *out); !r) return r.error();
    }
    if (find(top, "lease_ttl_ms") != nullptr) {
        auto ttl = required(get_uint(top, "lease_ttl_ms", 1, max_ttl_ms));
        if (!ttl) return ttl.error();
        bounds.lease_ttl = std::chrono::milliseconds(static_cast<std::int64_t>(*ttl));
    }
    return bounds;
}

} // namespace p2pshare::detail
