// p2pshare — error codes shared by the library, the wire protocol and the apps.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <type_traits>

namespace p2pshare {

/// Every failure p2pshare reports. Each has a stable wire name (see docs/protocol.md),
/// an HTTP status and a message a user can act on.
enum class errc {
    ok = 0,
    bad_request,          ///< malformed request line, header or body (400)
    bad_json,             ///< the body is not valid JSON (400)
    bad_field,            ///< a field is missing or has the wrong type or value (400)
    bad_name,             ///< a file name breaks the naming rules (400)
    too_many,             ///< more items in one request than the limit allows (400)
    unauthorized,         ///< no lease token given (401)
    forbidden,            ///< a lease token was given but is not the peer's (403)
    not_found,            ///< no such peer, file or path (404)
    method_not_allowed,   ///< the path exists but not with this method (405)
    conflict,             ///< the peer id is live under another lease (409)
    body_too_large,       ///< request body over the limit (413)
    bad_range,            ///< the Range cannot be satisfied (416)
    header_too_large,     ///< request header over the limit (431)
    too_many_connections, ///< the server is at its connection limit (503)
    shutting_down,        ///< the server or peer is stopping (503)
    exists,               ///< the destination file exists and overwriting was not asked for
    no_sources,           ///< the index knows no peer that shares the file
    size_mismatch,        ///< a source sent more or fewer bytes than announced
    hash_mismatch,        ///< the received bytes do not have the announced SHA-256
    bad_response,         ///< a server answered something the protocol does not allow
    unreachable,          ///< a server could not be reached
    timeout,              ///< a deadline passed
    io_error,             ///< the local file system refused an operation
    full,                 ///< the index is at one of its bounds (503)
    bad_config,          ///< a config file cannot be parsed (file, line and problem in the message)
    precondition_failed, ///< If-Match names another version than the one served (412)
    store_unavailable,   ///< the index's store (Redis) did not answer in time (503)
    tls_required,        ///< plain HTTP sent to a port that speaks TLS (400)
    tls_failed, ///< a TLS handshake failed, or the server's certificate is not the one expected
    all_sources_failed, ///< every source of a file was tried and failed (keep last)
};

const boost::system::error_category& p2pshare_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), p2pshare_category()};
}

/// A failure as the library reports it: a code (in p2pshare's category, or
/// boost::asio::error::operation_aborted for a cancelled operation, or a system error) and a
/// message for people that says what failed and where.
struct Error {
    boost::system::error_code code;
    std::string message;

    /// True when it holds a failure.
    explicit operator bool() const noexcept { return static_cast<bool>(code); }
    friend bool operator==(const Error& e, errc c) noexcept { return e.code == make_error_code(c); }
    friend bool operator==(const Error& e, const boost::system::error_code& c) noexcept {
        return e.code == c;
    }
};

/// Stable identifier of an error on the wire, e.g. "bad_name".
std::string_view to_string(errc e) noexcept;

/// The errc whose wire name is `name`, or errc::bad_response for an unknown name.
errc errc_from_string(std::string_view name) noexcept;

/// HTTP status code that carries an error on the wire (500 when it has none of its own).
unsigned http_status(errc e) noexcept;

/// Thrown by Result<T>::value() on an error: a std::system_error-like exception with the message.
[[noreturn]] void throw_exception_from_error(const Error& e,
                                             const boost::source_location& location);

/// The value of an operation that can fail, or its Error.
template <class T>
using Result = boost::system::result<T, Error>;

} // namespace p2pshare

template <>
struct boost::system::is_error_code_enum<p2pshare::errc> : std::true_type {};
