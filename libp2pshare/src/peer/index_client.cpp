#include "index_client.hpp"

#include "../http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <stdexcept>

namespace p2pshare::detail {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
/// The largest answer the index may give (a list page or a lookup of many names).
constexpr std::size_t max_index_answer = 64 * 1024 * 1024;

http::verb verb_of(std::string_view method) {
    if (method == "POST") return http::verb::post;
    if (method == "PUT") return http::verb::put;
    if (method == "DELETE") return http::verb::delete_;
    return http::verb::get;
}
} // namespace

struct index_client::idle_connection {
    client_stream stream;
};

index_client::index_client(asio::any_io_executor executor, std::vector<ServerAddress> indexes)
    : index_client(std::move(executor), std::move(indexes), timeouts{}) {}

index_client::index_client(asio::any_io_executor executor, std::vector<ServerAddress> indexes,
                           timeouts t)
    : executor_(std::move(executor)),
      addresses_(std::move(indexes)),
      timeouts_(t),
      lease_limit_(t.request) {
    if (addresses_.empty()) throw std::invalid_argument("index_client: no index server");
}

index_client::~index_client() = default;

void index_client::close() { idle_.reset(); }

bool index_client::move_on(std::size_t from) {
    if (from != current_ || addresses_.size() < 2) return false;
    current_ = (current_ + 1) % addresses_.size();
    ++moves_;
    idle_.reset();
    bounds_.reset(); // the next index may be configured otherwise
    return true;
}

asio::awaitable<api_result<index_client::answer>> index_client::exchange(
    index_request request, std::string token, std::chrono::milliseconds limit) {
    // The address is fixed now: a move while this call is in flight sends the next call
    // elsewhere, not this one.
    const auto address = addresses_[current_];
    const auto moves = moves_;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    client_request req{verb_of(request.method), request.target, 11};
    req.set(http::field::host, address.host);
    req.set(http::field::user_agent, "p2pshare");
    if (request.needs_token) req.set(http::field::authorization, "Bearer " + token);
    if (!request.body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(request.body);
    }
    req.prepare_payload();
    req.keep_alive(true);
    const auto where = to_string(address);

    // A kept connection may have been closed by the index meanwhile: then try once afresh,
    // within the same deadline.
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= std::chrono::milliseconds::zero()) {
            co_return fail(errc::timeout,
                           "the index server at " + where + " did not answer in time");
        }
        const bool reused = idle_ != nullptr;
        std::unique_ptr<idle_connection> conn = std::move(idle_);
        if (!conn) {
            // An index server reached over TLS is checked against the CAs before the request
            // (and its token) is sent.
            std::optional<tls_expectation> tls;
            if (address.tls) {
                if (!tls_) {
                    auto made = make_tls_client({});
                    if (!made) co_return fail(errc::tls_failed, made.error().message);
                    tls_ = std::move(*made);
                }
                tls = tls_expectation{tls_, {}};
            }
            auto connected =
                co_await async_open(executor_, address.host, address.port,
                                    std::min(timeouts_.connect, left), tls ? &*tls : nullptr);
            if (!connected) {
                const auto& e = connected.error();
                if (e.code == asio::error::operation_aborted) {
                    co_return fail(errc::unreachable, "the request to the index was cancelled");
                }
                if (e.code == make_error_code(errc::tls_failed)) {
                    co_return fail(errc::tls_failed,
                                   "the index server at " + where + ": " + e.message);
                }
                co_return fail(
                    e.code == make_error_code(errc::timeout) ? errc::timeout : errc::unreachable,
                    "the index server at " + where + " cannot be reached");
            }
            conn.reset(new idle_connection{std::move(*connected)});
        }
        conn->stream.expires_at(deadline);
        auto [wec, wn] = co_await http::async_write(conn->stream, req, use_tuple);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(max_index_answer);
        boost::system::error_code ec = wec;
        if (!ec) {
            std::tie(ec, std::ignore) =
                co_await http::async_read(conn->stream, buffer, parser, use_tuple);
        }
        if (ec == asio::error::operation_aborted) {
            co_return fail(errc::unreachable, "the request to the index was cancelled");
        }
        if (ec) {
            if (reused && ec != beast::error::timeout) continue;
            co_return fail(ec == beast::error::timeout ? errc::timeout : errc::unreachable,
                           "the index server at " + where + " did not answer: " + ec.message());
        }
        auto& res = parser.get();
        // Kept for the next call only if that one goes to the same index.
        if (res.keep_alive() && !idle_ && moves == moves_) idle_ = std::move(conn);
        co_return answer{res.result_int(), std::move(res.body())};
    }
    co_return fail(errc::unreachable, "the index server at " + where + " closed the connection");
}

asio::awaitable<api_result<lease_grant>> index_client::async_register(const register_request& r) {
    auto a = co_await exchange(encode_register(r), {}, lease_limit_);
    if (!a) co_return a.error();
    co_return decode_register_answer(a->status, a->body);
}

asio::awaitable<api_result<std::chrono::milliseconds>> index_client::async_renew(
    std::uint32_t id, const std::string& token) {
    auto a = co_await exchange(encode_renew(id), token, lease_limit_);
    if (!a) co_return a.error();
    co_return decode_renew_answer(a->status, a->body);
}

asio::awaitable<api_result<void>> index_client::async_replace_files(
    std::uint32_t id, const std::string& token, const std::vector<file_entry>& files) {
    auto a = co_await exchange(encode_replace_files(id, files), token, lease_limit_);
    if (!a) co_return a.error();
    co_return decode_replace_files_answer(a->status, a->body);
}

asio::awaitable<api_result<void>> index_client::async_unregister(std::uint32_t id,
                                                                 const std::string& token) {
    auto a = co_await exchange(encode_unregister(id), token, lease_limit_);
    if (!a) co_return a.error();
    co_return decode_unregister_answer(a->status, a->body);
}

asio::awaitable<api_result<index_bounds>> index_client::async_bounds() {
    if (bounds_) co_return *bounds_;
    const auto moves = moves_;
    auto a = co_await exchange(encode_health(), {}, lease_limit_);
    if (!a) co_return a.error();
    // An index that gives no (valid) health answer is held to the protocol's defaults; it is
    // asked again next time.
    auto b = decode_health_answer(a->status, a->body);
    if (!b) co_return index_bounds{};
    if (moves == moves_) bounds_ = *b;
    co_return *b;
}

asio::awaitable<api_result<std::vector<std::string>>> index_client::async_list(
    std::string contains) {
    auto bounds = co_await async_bounds();
    if (!bounds) co_return bounds.error();
    const auto limit = bounds->max_list_page;
    std::vector<std::string> names;
    std::string after;
    for (;;) {
        auto a = co_await exchange(encode_list(contains, after, limit), {}, timeouts_.request);
        if (!a) co_return a.error();
        auto page = decode_list_answer(a->status, a->body, after, limit);
        if (!page) co_return page.error();
        names.insert(names.end(), std::make_move_iterator(page->names.begin()),
                     std::make_move_iterator(page->names.end()));
        if (!page->next_after) break;
        after = std::move(*page->next_after);
    }
    co_return names;
}

asio::awaitable<api_result<std::vector<std::vector<source_entry>>>> index_client::async_lookup(
    std::vector<std::string> names) {
    auto bounds = co_await async_bounds();
    if (!bounds) co_return bounds.error();
    const auto chunk = std::max<std::size_t>(bounds->max_lookup_names, 1);
    std::vector<std::vector<source_entry>> out;
    out.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); i += chunk) {
        const std::span<const std::string> asked(names.data() + i,
                                                 std::min(chunk, names.size() - i));
        auto a = co_await exchange(encode_lookup(asked), {}, timeouts_.request);
        if (!a) co_return a.error();
        auto sources = decode_lookup_answer(a->status, a->body, asked);
        if (!sources) co_return sources.error();
        for (auto& s : *sources)
            out.push_back(std::move(s));
    }
    co_return out;
}

} // namespace p2pshare::detail
