// TLS on OpenSSL for p2pshare's servers: a server's certificate and key, the self-signed
// certificate a peer makes for itself, certificate fingerprints, and the server side of a TLS
// connection on a non-blocking socket (the caller waits for the socket as the result says, so
// TLS fits the server's own reactor-driven reads and writes). docs/protocol.md §11.
#pragma once

#include <p2pshare/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

struct ssl_st;
struct ssl_ctx_st;
struct x509_st;

namespace p2pshare::detail {

/// A server's certificate chain and private key, loaded and checked against each other.
class tls_server_context {
public:
    /// Loads a PEM certificate chain and its PEM key. Fails with errc::bad_config and a message
    /// naming the file when one cannot be read or parsed, or when the key is not the
    /// certificate's.
    static Result<std::shared_ptr<tls_server_context>> load(const std::filesystem::path& cert,
                                                            const std::filesystem::path& key);
    ~tls_server_context();
    tls_server_context(const tls_server_context&) = delete;
    tls_server_context& operator=(const tls_server_context&) = delete;

    ssl_ctx_st* native() const noexcept { return ctx_; }
    /// SHA-256 of the leaf certificate's DER encoding: 64 lowercase hex digits.
    const std::string& fingerprint() const noexcept { return fingerprint_; }

private:
    tls_server_context() = default;
    ssl_ctx_st* ctx_ = nullptr;
    std::string fingerprint_;
};

/// Makes a self-signed certificate (ECDSA P-256, SHA-256, ten years) for `common_name` and the
/// host names and addresses of `hosts` (its subjectAltName, which a client checking names
/// needs), and writes it and its key as PEM, the key readable by its owner only, each
/// atomically. Fails with the file system's error and a message naming the file.
Error make_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                       const std::string& common_name, const std::vector<std::string>& hosts = {});

/// The SHA-256 of a certificate's DER encoding: 64 lowercase hex digits ("" if it fails).
std::string certificate_sha256(x509_st* cert);

/// The SHA-256 fingerprint (64 lowercase hex digits) of the first certificate of a PEM file.
Result<std::string> certificate_fingerprint(const std::filesystem::path& cert);

/// The server side of one TLS connection on a non-blocking socket it does not own.
class tls_stream {
public:
    enum class status {
        done,       ///< the call did its work (`n` bytes for reads and writes)
        want_read,  ///< call again once the socket is readable
        want_write, ///< call again once the socket is writable
        closed,     ///< the client closed the connection
        failed,     ///< a protocol or socket error: message() says which
    };
    struct result {
        status st;
        std::size_t n = 0;
    };

    tls_stream(const tls_server_context& context, int socket);
    ~tls_stream();
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    status handshake();
    result read(void* data, std::size_t size);
    /// Writes up to `size` bytes; after want_write, call again with the same bytes.
    result write(const void* data, std::size_t size);
    /// Sends `size` bytes of `fd` from `offset` through kernel TLS (only when kernel_send()).
    result sendfile(int fd, std::uint64_t offset, std::size_t size);
    /// Whether the kernel encrypts what is sent (kTLS), so that sendfile() works.
    bool kernel_send() const noexcept;
    /// Sends the closing alert, without waiting.
    void shutdown() noexcept;
    /// What the last failure was.
    const std::string& message() const noexcept { return message_; }

private:
    status fail(int ret);
    ssl_st* ssl_ = nullptr;
    std::string message_;
};

/// What OpenSSL's error queue holds, as one line (the queue is emptied).
std::string openssl_errors();

} // namespace p2pshare::detail
