#include <p2pshare/config.hpp>
#include <p2pshare/index_server.hpp>

#include "http_server.hpp"
#include "index/backend.hpp"
#include "index/memory_backend.hpp"
#include "index/redis_backend.hpp"
#include "metrics.hpp"
#include "protocol.hpp"
#include "query.hpp"
#include "run_on.hpp"
#include "status_pages.hpp"
#include "support.hpp"
#include "tls.hpp"
#include "words.hpp"

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

std::shared_ptr<IndexMetrics> make_index_metrics() { return std::make_shared<IndexMetrics>(); }

struct IndexServer::impl {
    impl(asio::any_io_executor executor, IndexServerOptions o)
        : strand(std::move(executor)),
          options(std::move(o)),
          metrics(options.metrics ? options.metrics : make_index_metrics()),
          store(std::make_unique<memory_backend>(options.lease_ttl, options.index)) {
        store->count_expiries_in(&metrics->lease_expiries);
    }

    /// `keep` holds the index while the request is answered.
    asio::awaitable<bool> handle(request& req, connection& conn, std::shared_ptr<impl> keep);

    asio::awaitable<response> do_register(const request& req, const connection& conn);
    asio::awaitable<response> do_renew(const request& req, std::uint32_t id);
    asio::awaitable<response> do_files(const request& req, std::uint32_t id);
    asio::awaitable<response> do_unregister(const request& req, std::uint32_t id);
    asio::awaitable<response> do_list(const request& req, const target& t);
    /// `buffer`: a string whose capacity the answer may take.
    asio::awaitable<response> do_lookup(const request& req, std::string buffer);
    asio::awaitable<response> do_health(const request& req);
    asio::awaitable<response> do_metrics(const request& req);
    /// Counts `res`, just sent, under `e`, from `start`. (Not a coroutine: no frame to make.)
    void counted(const response& res, index_endpoint e,
                 std::chrono::steady_clock::time_point start) noexcept;

    /// A lookup_results for one lookup: a kept one, or a new one.
    std::unique_ptr<lookup_results> take_results() {
        if (spare_results.empty()) return std::make_unique<lookup_results>();
        auto r = std::move(spare_results.back());
        spare_results.pop_back();
        return r;
    }
    /// Keeps `r` for the next lookups, unless enough are kept or it grew large.
    void give_back(std::unique_ptr<lookup_results> r) {
        if (spare_results.size() < 64 && r->sources.size() <= 4096) {
            spare_results.push_back(std::move(r));
        }
    }

    strand_type strand;
    IndexServerOptions options;
    std::shared_ptr<IndexMetrics> metrics;
    std::unique_ptr<index_backend> store;
    std::vector<std::unique_ptr<lookup_results>> spare_results; ///< for lookups, reused
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

} // namespace

asio::awaitable<response> IndexServer::impl::do_register(const request& req,
                                                         const connection& conn) {
    auto r = decode_register(req.body(), options.index.max_files_per_peer);
    if (!r) co_return fail_response(req, r.error());
    const auto source = conn.remote().address().to_string();
    if (r->host.empty()) r->host = source;
    if (r->port < options.index.min_peer_port) {
        co_return fail_response(
            req, fail(errc::bad_field,
                      "'port' must be at least " + std::to_string(options.index.min_peer_port)));
    }
    if (options.index.host_must_match_source && r->host != source) {
        co_return fail_response(
            req, fail(errc::forbidden,
                      "a peer may only advertise the address it connects from (" + source + ")"));
    }
    const auto id = r->id;
    const ServerAddress address{r->host, r->port};
    const auto files = r->files.size();
    auto lease = co_await store->async_register(std::move(*r), source);
    if (!lease) co_return fail_response(req, lease.error());
    log().info("index: peer {} registered at {} with {} files", id, to_string(address), files);
    boost::json::object body;
    body["id"] = id;
    body["token"] = lease->token;
    body["ttl_ms"] = lease->ttl.count();
    body["host"] = address.host;
    body["port"] = address.port;
    co_return ok(req, lease->taken_back ? http::status::ok : http::status::created, body);
}

asio::awaitable<response> IndexServer::impl::do_renew(const request& req, std::uint32_t id) {
    auto token = decode_bearer(req[http::field::authorization]);
    if (!token) co_return fail_response(req, token.error());
    auto lease = co_await store->async_renew(id, std::move(*token));
    if (!lease) co_return fail_response(req, lease.error());
    boost::json::object body;
    body["id"] = id;
    body["ttl_ms"] = lease->ttl.count();
    co_return ok(req, http::status::ok, body);
}

asio::awaitable<response> IndexServer::impl::do_files(const request& req, std::uint32_t id) {
    auto token = decode_bearer(req[http::field::authorization]);
    if (!token) co_return fail_response(req, token.error());
    auto files = decode_files_update(req.body(), options.index.max_files_per_peer);
    if (!files) co_return fail_response(req, files.error());
    const auto count = files->size();
    auto done = co_await store->async_replace_files(id, std::move(*token), std::move(*files));
    if (!done) co_return fail_response(req, done.error());
    log().info("index: peer {} now shares {} files", id, count);
    boost::json::object body;
    body["id"] = id;
    body["files"] = count;
    body["ttl_ms"] = store->ttl().count();
    co_return ok(req, http::status::ok, body);
}

asio::awaitable<response> IndexServer::impl::do_unregister(const request& req, std::uint32_t id) {
    auto token = decode_bearer(req[http::field::authorization]);
    if (!token) co_return fail_response(req, token.error());
    auto done = co_await store->async_unregister(id, std::move(*token));
    if (!done) co_return fail_response(req, done.error());
    log().info("index: peer {} unregistered", id);
    boost::json::object body;
    body["id"] = id;
    body["unregistered"] = true;
    co_return ok(req, http::status::ok, body);
}

asio::awaitable<response> IndexServer::impl::do_list(const request& req, const target& t) {
    list_query q;
    q.limit = options.index.max_list_page;
    if (const auto text = t.param("limit")) {
        std::size_t n = 0;
        const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
        if (ec != std::errc{} || ptr != text->data() + text->size() || n == 0 ||
            n > options.index.max_list_page) {
            co_return fail_response(
                req, fail(errc::bad_field, "'limit' must be an integer within 1.." +
                                               std::to_string(options.index.max_list_page)));
        }
        q.limit = n;
    }
    q.contains = t.param("contains").value_or("");
    q.after = t.param("after").value_or("");
    if (const auto words = t.param("q")) {
        if (!q.contains.empty()) {
            co_return fail_response(
                req, fail(errc::bad_field, "give either 'q' (words) or 'contains', not both"));
        }
        auto parsed = query_words(*words);
        if (!parsed) co_return fail_response(req, parsed.error());
        q.words = std::move(parsed->indexed);
        q.narrowing = std::move(parsed->narrowing);
    }
    auto page = co_await store->async_list(std::move(q));
    if (!page) co_return fail_response(req, page.error());
    boost::json::object body;
    auto& names = body["names"].emplace_array();
    names.reserve(page->names.size());
    for (const auto& name : page->names)
        names.emplace_back(name);
    if (page->next_after) {
        body["next_after"] = *page->next_after;
    } else {
        body["next_after"] = nullptr;
    }
    co_return ok(req, http::status::ok, body);
}

asio::awaitable<response> IndexServer::impl::do_lookup(const request& req, std::string buffer) {
    // The plain form is read in place; anything else goes through the full JSON parser.
    std::vector<std::string_view> names;
    std::vector<std::string> decoded;
    if (!scan_lookup(req.body(), options.index.max_lookup_names, names)) {
        auto full = decode_lookup(req.body(), options.index.max_lookup_names);
        if (!full) co_return fail_response(req, full.error());
        decoded = std::move(*full);
        names.assign(decoded.begin(), decoded.end());
    }
    // The answer's sources go into an object this index keeps for the next lookup.
    auto results = take_results();
    auto found = co_await store->async_lookup(names, *results);
    if (!found) {
        give_back(std::move(results));
        co_return fail_response(req, found.error());
    }
    // The index's hot path: the answer is written straight into the body, without building a
    // JSON tree first. Same fields, in the same order, as the other answers' serializer writes.
    auto res = json_response(req, http::status::ok, std::move(buffer));
    auto& out = res.body();
    out.clear();
    out.reserve(32 + names.size() * 256);
    out.append(R"({"results":[)");
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out.push_back(',');
        out.append(R"({"name":)");
        append_json_string(out, names[i]);
        out.append(R"(,"sources":[)");
        const auto sources = results->of(i);
        bool first_source = true;
        for (const auto& src : sources) {
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
            // The certificate's fingerprint only for a peer that serves over TLS (§11).
            if (!src.cert_sha256.empty()) {
                out.append(R"(","cert_sha256":")");
                out.append(src.cert_sha256);
            }
            out.append(R"("})");
        }
        out.append(sources.empty() ? R"(],"found":false})" : R"(],"found":true})");
    }
    out.append("]}");
    give_back(std::move(results));
    co_return res;
}

asio::awaitable<response> IndexServer::impl::do_health(const request& req) {
    auto counts = co_await store->async_counts();
    if (!counts) co_return fail_response(req, counts.error());
    boost::json::object body;
    body["status"] = "ok";
    body["peers"] = counts->peers;
    body["names"] = counts->names;
    body["files"] = counts->files;
    body["lease_ttl_ms"] = store->ttl().count();
    body["store"] = options.store == "memory" ? "memory" : "redis";
    std::uint64_t lookups = 0;
    for (const auto& c : metrics->requests[static_cast<std::size_t>(index_endpoint::lookup)])
        lookups += c.value();
    body["lookups"] = lookups;
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
    co_return ok(req, http::status::ok, body);
}

asio::awaitable<response> IndexServer::impl::do_metrics(const request& req) {
    // The store's figures first: the text is then made without a wait.
    auto counts = co_await store->async_counts();
    std::string body;
    body.reserve(16 * 1024);
    metrics_text m(body);
    const auto& x = *metrics;
    m.family("p2pshare_index_requests_total", "counter",
             "Requests answered, by endpoint and HTTP status.");
    for (std::size_t e = 0; e < index_endpoint_count; ++e) {
        const auto endpoint = label("endpoint", to_string(static_cast<index_endpoint>(e)));
        for (std::size_t k = 0; k <= counted_statuses.size(); ++k) {
            const auto n = x.requests[e][k].value();
            if (n == 0) continue;
            const auto code = k < counted_statuses.size() ? std::to_string(counted_statuses[k])
                                                          : std::string("other");
            m.sample("p2pshare_index_requests_total", endpoint + "," + label("code", code), n);
        }
    }
    m.family("p2pshare_index_request_duration_seconds", "histogram",
             "From a request read whole to its answer handed to the kernel, by endpoint.");
    for (std::size_t e = 0; e < index_endpoint_count; ++e) {
        if (x.durations[e].count() == 0) continue;
        m.histogram_samples("p2pshare_index_request_duration_seconds",
                            label("endpoint", to_string(static_cast<index_endpoint>(e))),
                            x.durations[e]);
    }
    if (counts) {
        m.family("p2pshare_index_peers", "gauge", "Peers with a live lease.");
        m.sample("p2pshare_index_peers", "", static_cast<std::uint64_t>(counts->peers));
        m.family("p2pshare_index_names", "gauge", "Distinct file names shared.");
        m.sample("p2pshare_index_names", "", static_cast<std::uint64_t>(counts->names));
        m.family("p2pshare_index_files", "gauge", "(peer, file) entries: files shared, all peers.");
        m.sample("p2pshare_index_files", "", static_cast<std::uint64_t>(counts->files));
    }
    m.family("p2pshare_index_lease_ttl_seconds", "gauge", "How long a lease lasts unrenewed.");
    m.sample("p2pshare_index_lease_ttl_seconds", "",
             std::chrono::duration<double>(store->ttl()).count());
    m.family("p2pshare_index_lease_expiries_total", "counter",
             "Peers removed because their lease ended (with Redis: by this process's sweeper).");
    m.sample("p2pshare_index_lease_expiries_total", "", x.lease_expiries.value());
    m.family("p2pshare_index_connections_open", "gauge", "Client connections open.");
    m.sample("p2pshare_index_connections_open", "", x.connections.open.value());
    m.family("p2pshare_index_connections_accepted_total", "counter",
             "Client connections accepted.");
    m.sample("p2pshare_index_connections_accepted_total", "", x.connections.accepted.value());
    m.family("p2pshare_index_connections_refused_total", "counter",
             "Client connections refused at the connection limit.");
    m.sample("p2pshare_index_connections_refused_total", "", x.connections.refused.value());
    m.family("p2pshare_index_store_errors_total", "counter",
             "Requests answered 503 store_unavailable: the store could not be reached in time.");
    m.sample("p2pshare_index_store_errors_total", "", x.store_errors.value());
    m.family("p2pshare_index_store_up", "gauge",
             "1 when the store answered this scrape's counts, else 0.");
    m.sample("p2pshare_index_store_up", "", std::uint64_t{counts ? 1u : 0u});
    response res{http::status::ok, req.version(), req.keep_alive()};
    res.content_type(metrics_content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    co_return res;
}

void IndexServer::impl::counted(const response& res, index_endpoint e,
                                std::chrono::steady_clock::time_point start) noexcept {
    const auto status = res.result_int();
    metrics->count(e, status, std::chrono::steady_clock::now() - start);
    if (status == 503) metrics->store_errors.add();
}

asio::awaitable<bool> IndexServer::impl::handle(request& req, connection& conn,
                                                std::shared_ptr<impl> /*keep*/) {
    const auto start = std::chrono::steady_clock::now();
    if (req.target() == "/v1/lookup" && req.method() == http::verb::post) {
        // The most frequent request, routed without splitting its target.
        auto res = co_await do_lookup(req, std::move(conn.spare()));
        const bool written = co_await conn.write(res);
        counted(res, index_endpoint::lookup, start);
        conn.spare() = std::move(res.body());
        co_return written&& res.keep_alive();
    }
    const auto parsed = parse_target(req.target());
    if (!parsed) {
        auto res = error_response(req, errc::bad_request, "malformed request target");
        res.keep_alive(false);
        co_await conn.write(res);
        counted(res, index_endpoint::other, start);
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
    auto endpoint = index_endpoint::other;
    if (is({""})) {
        endpoint = index_endpoint::status;
        if (is_get) {
            res = page_response(req, index_status_page());
        } else {
            res = wrong_method(req, "GET, HEAD");
        }
    } else if (is({"metrics"})) {
        endpoint = index_endpoint::metrics;
        if (is_get) {
            res = co_await do_metrics(req);
        } else {
            res = wrong_method(req, "GET, HEAD");
        }
    } else if (is({"v1", "health"})) {
        endpoint = index_endpoint::health;
        if (is_get) {
            res = co_await do_health(req);
        } else {
            res = wrong_method(req, "GET, HEAD");
        }
    } else if (is({"v1", "files"})) {
        endpoint = index_endpoint::list;
        if (is_get) {
            res = co_await do_list(req, t);
        } else {
            res = wrong_method(req, "GET, HEAD");
        }
    } else if (is({"v1", "lookup"})) {
        endpoint = index_endpoint::lookup;
        if (method == http::verb::post) {
            res = co_await do_lookup(req, std::string());
        } else {
            res = wrong_method(req, "POST");
        }
    } else if (is({"v1", "peers"})) {
        endpoint = index_endpoint::register_peer;
        if (method == http::verb::post) {
            res = co_await do_register(req, conn);
        } else {
            res = wrong_method(req, "POST");
        }
    } else if (seg.size() >= 3 && seg.size() <= 4 && seg[0] == "v1" && seg[1] == "peers") {
        const auto id = parse_peer_id(seg[2]);
        if (!id) {
            res = error_response(req, errc::bad_field, "a peer id is an integer 0..4294967295");
        } else if (seg.size() == 3) {
            endpoint = index_endpoint::unregister;
            if (method == http::verb::delete_) {
                res = co_await do_unregister(req, *id);
            } else {
                res = wrong_method(req, "DELETE");
            }
        } else if (seg[3] == "lease") {
            endpoint = index_endpoint::renew;
            if (method == http::verb::put) {
                res = co_await do_renew(req, *id);
            } else {
                res = wrong_method(req, "PUT");
            }
        } else if (seg[3] == "files") {
            endpoint = index_endpoint::files;
            if (method == http::verb::put) {
                res = co_await do_files(req, *id);
            } else {
                res = wrong_method(req, "PUT");
            }
        } else {
            res =
                error_response(req, errc::not_found, "no such path: " + std::string(req.target()));
        }
    } else {
        res = error_response(req, errc::not_found, "no such path: " + std::string(req.target()));
    }
    const bool written = co_await conn.write(res);
    counted(res, endpoint, start);
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
    redis_backend* redis = nullptr;
    if (d.options.store != "memory") {
        auto seeds = parse_redis_address(d.options.store);
        if (!seeds) {
            return {make_error_code(errc::bad_config),
                    "--store: " + seeds.error().message + " (or \"memory\")"};
        }
        redis_settings settings;
        settings.timeout = d.options.store_timeout;
        auto backend = std::make_unique<redis_backend>(
            d.strand, std::move(*seeds), d.options.lease_ttl, d.options.index, settings);
        redis = backend.get();
        d.store = std::move(backend);
        d.store->count_expiries_in(&d.metrics->lease_expiries);
    }
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
    d.server->count_connections_in(&d.metrics->connections, d.metrics);
    const bool tls = !d.options.tls_cert.empty() || !d.options.tls_key.empty();
    if (tls) {
        if (d.options.tls_cert.empty() || d.options.tls_key.empty()) {
            d.server.reset();
            return {make_error_code(errc::bad_config), "TLS needs both a certificate and its key"};
        }
        auto context = tls_server_context::load(d.options.tls_cert, d.options.tls_key);
        if (!context) {
            d.server.reset();
            return context.error();
        }
        d.server->use_tls(std::move(*context));
    }
    if (auto ec = d.server->listen(d.options.host, d.options.port, d.options.reuse_port)) {
        d.server.reset();
        return {ec, "cannot listen on " + to_string(ServerAddress{d.options.host, d.options.port}) +
                        ": " + ec.message()};
    }
    d.advertised_host = d.options.host;
    if (d.advertised_host == "0.0.0.0") d.advertised_host = "127.0.0.1";
    if (d.advertised_host == "::") d.advertised_host = "::1";
    if (!d.options.config_dir.empty()) {
        const ServerAddress address{d.advertised_host, d.server->port(), tls};
        const auto file = d.options.config_dir / "server.config";
        if (auto ec = write_file_atomically(file, format_server_config(address))) {
            d.server.reset();
            return {ec, "cannot write " + file.string() + ": " + ec.message()};
        }
    }
    d.server->start();
    if (redis != nullptr) redis->start_sweeper();
    log().info("index: listening on {} (lease {} ms)",
               to_string(ServerAddress{d.options.host, d.server->port(), tls}),
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
/// `keep` holds the index that owns `store`.
asio::awaitable<void> stop_store(index_backend* store, std::shared_ptr<void> /*keep*/) {
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await store->async_stop();
}

asio::awaitable<void> stop_on_strand(strand_type strand, std::shared_ptr<http_server> server,
                                     index_backend* store, std::shared_ptr<void> keep) {
    if (!server) co_return;
    co_await run_on(strand, server->async_stop());
    co_await run_on(strand, stop_store(store, std::move(keep)));
    log().info("index: stopped");
}

} // namespace

asio::awaitable<void> IndexServer::async_stop() {
    return stop_on_strand(impl_->strand, impl_->server, impl_->store.get(), impl_);
}

asio::awaitable<IndexStats> IndexServer::async_stats() {
    // Not a coroutine itself: GCC 12 mishandles a capturing lambda made in a co_await expression
    // of a coroutine (its captures are released twice), so the lambda is made in a plain function.
    auto self = impl_;
    return run_on(self->strand, [self]() -> asio::awaitable<IndexStats> {
        // Completes without a wait: Boost 1.81's co_spawn would throw a cancellation that
        // came meanwhile out of the executor's thread unless told not to.
        co_await asio::this_coro::throw_if_cancelled(false);
        auto counts = co_await self->store->async_counts();
        if (!counts) co_return IndexStats{};
        co_return IndexStats{counts->peers, counts->names, counts->files};
    });
}

} // namespace p2pshare
