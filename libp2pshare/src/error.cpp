#include <p2pshare/error.hpp>

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include <string>

namespace p2pshare {
namespace {

struct entry {
    std::string_view name;
    unsigned status;
    const char* message;
};

entry describe(errc e) noexcept {
    switch (e) {
        case errc::ok:
            return {"ok", 200, "success"};
        case errc::bad_request:
            return {"bad_request", 400, "malformed HTTP request"};
        case errc::bad_json:
            return {"bad_json", 400, "the body is not valid JSON"};
        case errc::bad_field:
            return {"bad_field", 400, "a field is missing or has a wrong type or value"};
        case errc::bad_name:
            return {"bad_name", 400, "invalid file name"};
        case errc::too_many:
            return {"too_many", 400, "too many items in one request"};
        case errc::unauthorized:
            return {"unauthorized", 401, "a lease token is required"};
        case errc::forbidden:
            return {"forbidden", 403, "the lease token does not match this peer"};
        case errc::not_found:
            return {"not_found", 404, "not found"};
        case errc::method_not_allowed:
            return {"method_not_allowed", 405, "method not allowed here"};
        case errc::conflict:
            return {"conflict", 409, "the peer id is registered under another lease"};
        case errc::body_too_large:
            return {"body_too_large", 413, "request body too large"};
        case errc::bad_range:
            return {"bad_range", 416, "the requested range cannot be satisfied"};
        case errc::header_too_large:
            return {"header_too_large", 431, "request header too large"};
        case errc::too_many_connections:
            return {"too_many_connections", 503, "too many connections, try again later"};
        case errc::shutting_down:
            return {"shutting_down", 503, "the server is shutting down"};
        case errc::exists:
            return {"exists", 409, "the file already exists"};
        case errc::no_sources:
            return {"no_sources", 404, "no peer shares this file"};
        case errc::size_mismatch:
            return {"size_mismatch", 502, "the source sent a wrong number of bytes"};
        case errc::hash_mismatch:
            return {"hash_mismatch", 502, "the received file has the wrong SHA-256"};
        case errc::bad_response:
            return {"bad_response", 502, "the server sent an invalid response"};
        case errc::unreachable:
            return {"unreachable", 502, "the server could not be reached"};
        case errc::timeout:
            return {"timeout", 504, "the operation timed out"};
        case errc::io_error:
            return {"io_error", 500, "local file system error"};
        case errc::full:
            return {"full", 503, "the index is at one of its bounds"};
        case errc::store_unavailable:
            return {"store_unavailable", 503, "the index's store cannot be reached"};
        case errc::tls_required:
            return {"tls_required", 400, "this port speaks TLS: use https://"};
        case errc::tls_failed:
            return {"tls_failed", 502,
                    "the TLS handshake failed or the certificate is not the one expected"};
        case errc::bad_config:
            return {"bad_config", 500, "a config file cannot be parsed"};
        case errc::precondition_failed:
            return {"precondition_failed", 412,
                    "the file changed: it is no longer the version the request names"};
        case errc::all_sources_failed:
            return {"all_sources_failed", 502, "every source failed"};
    }
    return {"unknown", 500, "unknown p2pshare error"};
}

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "p2pshare"; }
    std::string message(int value) const override {
        return describe(static_cast<errc>(value)).message;
    }
};

} // namespace

const boost::system::error_category& p2pshare_category() noexcept {
    static const category instance;
    return instance;
}

std::string_view to_string(errc e) noexcept { return describe(e).name; }

errc errc_from_string(std::string_view name) noexcept {
    for (int i = 1; i <= static_cast<int>(errc::all_sources_failed); ++i) {
        if (describe(static_cast<errc>(i)).name == name) return static_cast<errc>(i);
    }
    return errc::bad_response;
}

unsigned http_status(errc e) noexcept { return describe(e).status; }

void throw_exception_from_error(const Error& e, const boost::source_location& location) {
    boost::throw_exception(boost::system::system_error(e.code, e.message), location);
}

} // namespace p2pshare
