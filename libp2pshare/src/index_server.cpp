#include <p2pshare/config.hpp>
#include <p2pshare/index_server.hpp>

#include "http_server.hpp"
#include "index_store.hpp"
#include "protocol.hpp"
#include "query.hpp"
#include "run_on.hpp"
#include "support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace p2pshare {

using namespace detail;

struct IndexServer::impl {
    impl(asio::any_io_executor executor, IndexServerOptions o)
        : strand(std::move(executor)),
          options(std::move(o)),
          store(options.lease_ttl, nullptr, index_store::bounds::of(options.index)) {}

    /// `keep` holds the index while the request is answered.
    asio::awaitable<bool> handle(request& req, connection& conn, std::shared_ptr<impl> keep);

    response do_register(const request& req, const connection& conn);
    response do_renew(const request& req, std::uint32_t id);
    response do_files(const request& req, std::uint32_t id);
    response do_unregister(const request& req, std::uint32_t id);
    response do_list(const request& req, const target& t);
    /// `buffer`: a string whose capacity the answer may take.
    response do_lookup(const request& req, std::string buffer = {});
    response do_health(const request& req);

    strand_type strand;
    IndexServerOptions options;
    std::vector<std::string_view> lookup_names; ///< do_lookup's, reused
    index_store store;
    std::shared_ptr<http_server> server;
    std::string advertised_host;
};

namespace {

response ok(const request& req, http::status status, const boost::json::object& body) {
    return json_response(req, status, boost::json::serialize(body));
}

response fail_response(const request& req, const api_error& e) {
    return error_response(req, e.code, e.message);
}

response wrong_method(const request& req, std::string_view allowed) {
    auto res = error_response(
        req, errc::method_not_allowed,
        std::string(req.method_string()) + " is not allowed here; use " + std::string(allowed));
    res.set(http::field::allow, allowed);
    return res;
}

index_store::time_point now() { return index_store::clock::now(); }

} // namespace

response IndexServer::impl::do_register(const request& req, const connection& conn) {
    auto r = decode_register(req.body(), options.index.max_files_per_peer);
    if (!r) return fail_response(req, r.error());
    const auto source = conn.remote().address().to_string();
    if (r->host.empty()) r->host = source;
    if (r->port < options.index.min_peer_port) {
        return fail_response(
            req, fail(errc::bad_field,
                      "'port' must be at least " + std::to_string(options.index.min_peer_port)));
    }
    if (options.index.host_must_match_source && r->host != source) {
        return fail_response(
            req, fail(errc::forbidden,
                      "a peer may only advertise the address it connects from (" + source + ")"));
    }
    const auto id = r->id;
    const ServerAddress address{r->host, r->port};
    const auto files = r->files.size();
    auto lease = store.register_peer(std::move(*r), now(), source);
    if (!lease) return fail_response(req, lease.error());
    log().info("index: peer {} registered at {} with {} files", id, to_string(address), files);
    boost::json::object body;
    body["id"] = id;
    body["token"] = lease->token;
    body["ttl_ms"] = lease->ttl.count();
    body["host"] = address.host;
    body["port"] = address.port;
    return ok(req, lease->taken_back ? http::status::ok : http::status::created, body);
}

response IndexServer::impl::do_renew(const request& req, std::uint32_t id) {
    auto token = decode_bearer(req[http::field::authorization]);
    if (!token) return fail_response(req, token.error());
    auto lease = store.renew(id, *token, now());
    if (!lease) return fail_response(req, lease.error());
    boost::json::object body;
    body["id"] = id;
    body["ttl_ms"] = lease->ttl.count();
    return ok(req, http::status::ok, body);
}

response IndexServer::impl::do_files(const request& req, std::uint32_t id) {
    auto token = decode_bearer(req[http::field::authorization]);
    if (!token) return fail_response(req, token.error());
    auto files = decode_files_update(req.body(), options.index.max_files_per_peer);
    if (!files) return fail_response(req, files.error());
    const auto count = files->size();
    auto done = store.replace_files(id, *token, std::move(*files), now());
    if (!done) return fail_response(req, done.error());
    log().info("index: peer {} now shares {} files", id, count);
    boost::json::object body;
    body["id"] = id;
    body["files"] = count;
    body["ttl_ms"] = store.ttl().count();
    return ok(req, http::status::ok, body);
}

response IndexServer::impl::do_unregister(const request& req, std::uint32_t id) {
    auto token = decode_bearer(req[http::field::authorization]);
    if (!token) return fail_response(req, token.error());
    auto done = store.unregister(id, *token, now());
    if (!done) return fail_response(req, done.error());
    log().info("index: peer {} unregistered", id);
    boost::json::object body;
    body["id"] = id;
    body["unregistered"] = true;
    return ok(req, http::status::ok, body);
}

response IndexServer::impl::do_list(const request& req, const target& t) {
    std::size_t limit = options.index.max_list_page;
    if (const auto text = t.param("limit")) {
        std::size_t n = 0;
        const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
        if (ec != std::errc{} || ptr != text->data() + text->size() || n == 0 ||
            n > options.index.max_list_page) {
            return fail_response(
                req, fail(errc::bad_field, "'limit' must be an integer within 1.." +
                                               std::to_string(options.index.max_list_page)));
        }
        limit = n;
    }
    const auto contains = t.param("contains").value_or("");
    const auto after = t.param("after").value_or("");
    auto page = store.list(contains, after, limit, now());
    boost::json::object body;
    auto& names = body["names"].emplace_array();
    names.reserve(page.names.size());
    for (const auto name : page.names)
        names.emplace_back(name);
    if (page.next_after) {
        body["next_after"] = *page.next_after;
    } else {
        body["next_after"] = nullptr;
    }
    return ok(req, http::status::ok, body);
}

response IndexServer::impl::do_lookup(const request& req, std::string buffer) {
    // The plain form is read in place; anything else goes through the full JSON parser.
    auto& names = lookup_names;
    names.clear();
    std::vector<std::string> decoded;
    if (!scan_lookup(req.body(), options.index.max_lookup_names, names)) {
        auto full = decode_lookup(req.body(), options.index.max_lookup_names);
        if (!full) return fail_response(req, full.error());
        decoded = std::move(*full);
        names.assign(decoded.begin(), decoded.end());
    }
    const auto t = now();
    // The index's hot path: the answer is written straight into the body, without building a
    // JSON tree first. Same fields, in the same order, as the other answers' serializer writes.
    auto res = json_response(req, http::status::ok, std::move(buffer));
    auto& out = res.body();
    out.clear();
    out.reserve(32 + names.size() * 256);
    out.append(R"({"results":[)");
    bool first_name = true;
    for (const auto name : names) {
        if (!first_name) out.push_back(',');
        first_name = false;
        out.append(R"({"name":)");
        append_json_string(out, name);
        out.append(R"(,"sources":[)");
        const auto found = store.lookup(name, t);
        const bool any = !found.empty();
        if (any) {
            bool first_source = true;
            for (const auto& src : found) {
                if (!first_source) out.push_back(',');
                first_source = false;
                // Hosts and digests were validated on registration: nothing in them to escape.
                out.append(R"({"id":)");
                append_number(out, src.peer);
                out.append(R"(,"host":")");
                out.append(src.host);
                out.append(R"(","port":)");
                append_number(out, src.port);
                out.append(R"(,"size":)");
                append_number(out, src.size);
                out.append(R"(,"sha256":")");
                out.append(src.sha256);
                // The piece root only where the peer gave one (docs/protocol.md §6.6).
                if (!src.root.empty()) {
                    out.append(R"(","root":")");
                    out.append(src.root);
                }
                out.append(R"("})");
            }
        }
        out.append(any ? R"(],"found":true})" : R"(],"found":false})");
    }
    out.append("]}");
    names.clear(); // views into this call's request and `decoded`
    return res;
}

response IndexServer::impl::do_health(const request& req) {
    store.expire(now());
    boost::json::object body;
    body["status"] = "ok";
    body["peers"] = store.peer_count();
    body["names"] = store.name_count();
    body["files"] = store.file_count();
    body["lease_ttl_ms"] = store.ttl().count();
    // What a client needs to size its requests (docs/protocol.md §6.7).
    const auto& index = options.index;
    const auto& server_limits = options.limits;
    auto& limits = body["limits"].emplace_object();
    limits["max_files_per_peer"] = index.max_files_per_peer;
    limits["max_lookup_names"] = index.max_lookup_names;
    limits["max_list_page"] = index.max_list_page;
    limits["max_sources_per_name"] = index.max_sources_per_name;
    limits["max_peers_per_address"] = index.max_peers_per_address;
    limits["min_peer_port"] = index.min_peer_port;
    limits["header_limit"] = server_limits.header_limit;
    limits["body_limit"] = server_limits.body_limit;
    return ok(req, http::status::ok, body);
}

asio::awaitable<bool> IndexServer::impl::handle(request& req, connection& conn,
                                                std::shared_ptr<impl> /*keep*/) {
    if (req.target() == "/v1/lookup" && req.method() == http::verb::post) {
        // The most frequent request, routed without splitting its target.
        auto res = do_lookup(req, std::move(conn.spare()));
        const bool written = co_await conn.write(res);
        conn.spare() = std::move(res.body());
        co_return written&& res.keep_alive();
    }
    const auto parsed = parse_target(req.target());
    if (!parsed) {
        auto res = error_response(req, errc::bad_request, "malformed request target");
        res.keep_alive(false);
        co_await conn.write(res);
        co_return false;
    }
    const auto& t = *parsed;
    const auto method = req.method();
    const bool is_get = method == http::verb::get || method == http::verb::head;
    const auto& seg = t.segments;
    const auto is = [&](std::initializer_list<std::string_view> parts) {
        return std::equal(seg.begin(), seg.end(), parts.begin(), parts.end());
    };
    response res;
    if (is({"v1", "health"})) {
        res = is_get ? do_health(req) : wrong_method(req, "GET, HEAD");
    } else if (is({"v1", "files"})) {
        res = is_get ? do_list(req, t) : wrong_method(req, "GET, HEAD");
    } else if (is({"v1", "lookup"})) {
        res = method == http::verb::post ? do_lookup(req) : wrong_method(req, "POST");
    } else if (is({"v1", "peers"})) {
        res = method == http::verb::post ? do_register(req, conn) : wrong_method(req, "POST");
    } else if (seg.size() >= 3 && seg.size() <= 4 && seg[0] == "v1" && seg[1] == "peers") {
        const auto id = parse_peer_id(seg[2]);
        if (!id) {
            res = error_response(req, errc::bad_field, "a peer id is an integer 0..4294967295");
        } else if (seg.size() == 3) {
            res = method == http::verb::delete_ ? do_unregister(req, *id)
                                                : wrong_method(req, "DELETE");
        } else if (seg[3] == "lease") {
            res = method == http::verb::put ? do_renew(req, *id) : wrong_method(req, "PUT");
        } else if (seg[3] == "files") {
            res = method == http::verb::put ? do_files(req, *id) : wrong_method(req, "PUT");
        } else {
            res =
                error_response(req, errc::not_found, "no such path: " + std::string(req.target()));
        }
    } else {
        res = error_response(req, errc::not_found, "no such path: " + std::string(req.target()));
    }
    const bool written = co_await conn.write(res);
    co_return written&& res.keep_alive();
}

IndexServer::IndexServer(asio::any_io_executor executor, IndexServerOptions options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

IndexServer::~IndexServer() {
    if (impl_->server && !impl_->server->stopping()) {
        // Not stopped: cut everything rather than leave sessions pointing at a dead index.
        asio::post(impl_->strand, [server = impl_->server] { server->cancel(); });
    }
}

Error IndexServer::start() {
    auto& d = *impl_;
    if (d.server) return {make_error_code(errc::bad_request), "the index was started already"};
    std::weak_ptr<impl> weak = impl_;
    d.server = std::make_shared<http_server>(
        d.strand, d.options.limits,
        // Not a coroutine: it hands the request to impl::handle, one coroutine frame less.
        [weak](request& req, connection& conn) -> asio::awaitable<bool> {
            auto self = weak.lock();
            if (!self) {
                return refuse_request(req, conn, errc::shutting_down, "the index is stopping");
            }
            auto* const index = self.get();
            return index->handle(req, conn, std::move(self));
        },
        "index");
    if (auto ec = d.server->listen(d.options.host, d.options.port)) {
        d.server.reset();
        return {ec, "cannot listen on " + to_string(ServerAddress{d.options.host, d.options.port}) +
                        ": " + ec.message()};
    }
    d.advertised_host = d.options.host;
    if (d.advertised_host == "0.0.0.0") d.advertised_host = "127.0.0.1";
    if (d.advertised_host == "::") d.advertised_host = "::1";
    if (!d.options.config_dir.empty()) {
        const ServerAddress address{d.advertised_host, d.server->port()};
        const auto file = d.options.config_dir / "server.config";
        if (auto ec = write_file_atomically(file, format_server_config(address))) {
            d.server.reset();
            return {ec, "cannot write " + file.string() + ": " + ec.message()};
        }
    }
    d.server->start();
    log().info("index: listening on {} (lease {} ms)",
               to_string(ServerAddress{d.options.host, d.server->port()}),
               d.options.lease_ttl.count());
    return {};
}

std::uint16_t IndexServer::port() const noexcept {
    return impl_->server ? impl_->server->port() : 0;
}

const std::string& IndexServer::host() const noexcept { return impl_->advertised_host; }

namespace {

/// Stops `server` on its strand. A coroutine with parameters rather than a lambda that captures
/// the server: GCC 12 destroys such a lambda made in a co_await expression twice, which released
/// a reference to the server it never held and freed the server while it still ran.
asio::awaitable<void> stop_on_strand(strand_type strand, std::shared_ptr<http_server> server) {
    if (!server) co_return;
    co_await run_on(strand, server->async_stop());
    log().info("index: stopped");
}

} // namespace

asio::awaitable<void> IndexServer::async_stop() {
    return stop_on_strand(impl_->strand, impl_->server);
}

asio::awaitable<IndexStats> IndexServer::async_stats() {
    // Not a coroutine itself: GCC 12 mishandles a capturing lambda made in a co_await expression
    // of a coroutine (its captures are released twice), so the lambda is made in a plain function.
    auto self = impl_;
    return run_on(self->strand, [self]() -> asio::awaitable<IndexStats> {
        // Completes without a wait: Boost 1.81's co_spawn would throw a cancellation that
        // came meanwhile out of the executor's thread unless told not to.
        co_await asio::this_coro::throw_if_cancelled(false);
        self->store.expire(index_store::clock::now());
        co_return IndexStats{self->store.peer_count(), self->store.name_count(),
                             self->store.file_count()};
    });
}

} // namespace p2pshare
