// The HTTP messages of the servers: a request as parsed (reused by a connection for all its
// requests), a response with a few header fields, and the JSON answers built from them.
#pragma once

#include <p2pshare/error.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2pshare::detail {

namespace beast = boost::beast;
namespace http = beast::http;

/// A request as the server parsed it. A connection reuses one for all its requests, so that
/// its strings keep their capacity.
class request {
public:
    http::verb method() const noexcept { return method_; }
    std::string_view method_string() const noexcept { return method_text_; }
    std::string_view target() const noexcept { return target_; }
    unsigned version() const noexcept { return version_; }
    bool keep_alive() const noexcept { return keep_alive_; }
    const std::string& body() const noexcept { return body_; }

    /// The value of a header field (the first one, when it came several times), or "".
    std::string_view operator[](http::field f) const noexcept;

    /// Gives back the capacity of a large body (an upload of a long file list), so that a
    /// connection waiting for its next request does not hold megabytes.
    void trim() noexcept;

private:
    friend class request_parser;
    void clear() noexcept;
    void add(http::field f, std::string_view value);

    http::verb method_ = http::verb::unknown;
    std::string method_text_;
    std::string target_;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    std::string body_;
    /// Known fields only; slots past `used_` keep their capacity for the next request.
    std::vector<std::pair<http::field, std::string>> fields_;
    std::size_t used_ = 0;
};

/// A response: status, a few header fields and a body. `Server`, `Content-Length` and
/// `Connection` are written by the server.
class response {
public:
    response() = default;
    response(http::status status, unsigned version, bool keep_alive)
        : status_(status), version_(version), keep_alive_(keep_alive) {}

    http::status result() const noexcept { return status_; }
    unsigned result_int() const noexcept { return static_cast<unsigned>(status_); }
    void result(http::status s) noexcept { status_ = s; }
    bool keep_alive() const noexcept { return keep_alive_; }
    void keep_alive(bool k) noexcept { keep_alive_ = k; }
    unsigned version() const noexcept { return version_; }

    /// Content-Type; a literal, so it is not copied.
    void content_type(std::string_view type) noexcept { content_type_ = type; }
    /// Sets a header field (replacing an earlier value of the same field).
    void set(http::field f, std::string_view value);
    std::string_view operator[](http::field f) const noexcept;

    std::string& body() noexcept { return body_; }
    const std::string& body() const noexcept { return body_; }

    /// Appends the status line and header of this response, with `content_length`, to `out`;
    /// with `closing`, says `Connection: close` whatever keep_alive() says.
    void write_head(std::string& out, std::uint64_t content_length, bool closing = false) const;

private:
    http::status status_ = http::status::ok;
    unsigned version_ = 11;
    bool keep_alive_ = true;
    std::string_view content_type_;
    std::vector<std::pair<http::field, std::string>> fields_;
    std::string body_;
};

/// A JSON response with the version and keep-alive of the request.
response json_response(const request& req, http::status status, std::string body);
/// {"error": CODE, "message": TEXT} with the status of `code`.
response error_response(const request& req, errc code, std::string message);
/// Same, for a request that could not be parsed (so the connection is closed after it).
response error_response(errc code, std::string message);

} // namespace p2pshare::detail
