// A client's connection to a server: plain TCP, or TLS over it, behind one type that Beast reads
// and writes, with the deadlines of beast::tcp_stream either way. A TLS server is checked either
// against certificate authorities and its name (index servers), or by the SHA-256 fingerprint of
// its certificate, which must be exactly the one expected (peers: the index gives it with each
// source). OpenSSL's and Asio's TLS headers stay in client_stream.cpp.
#pragma once

#include <p2pshare/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace p2pshare::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

/// What a client trusts: the certificate authorities for servers checked by name, and the
/// settings for servers checked by fingerprint.
class tls_client_context;

/// Trusts the CA certificates of a PEM file, or the system's store when `ca_file` is empty.
/// Fails with errc::bad_config and a message naming the file when it cannot be loaded.
Result<std::shared_ptr<tls_client_context>> make_tls_client(const std::filesystem::path& ca_file);

/// For servers checked by fingerprint only (no CA is loaded): one for the process.
std::shared_ptr<tls_client_context> pinned_tls_client();

/// What a client asks of a server's TLS.
struct tls_expectation {
    std::shared_ptr<tls_client_context> context;
    /// Empty: the certificate must chain to a trusted authority and name the host connected
    /// to. Otherwise the certificate's SHA-256 (64 lowercase hex digits), and nothing else is
    /// checked: the index vouches for it.
    std::string fingerprint;
};

class client_stream {
public:
    using executor_type = asio::any_io_executor;
    using completion = asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

    explicit client_stream(tcp::socket socket);
    client_stream(client_stream&&) noexcept;
    client_stream& operator=(client_stream&&) noexcept;
    ~client_stream();

    executor_type get_executor() noexcept { return plain_->get_executor(); }
    tcp::socket& socket() noexcept { return plain_->socket(); }
    void expires_after(std::chrono::steady_clock::duration d) { plain_->expires_after(d); }
    void expires_at(std::chrono::steady_clock::time_point t) { plain_->expires_at(t); }
    void expires_never() { plain_->expires_never(); }
    /// Cancels the operations in flight and every later one: they complete with
    /// operation_aborted. (A cancel() that came between two operations of a request would
    /// otherwise miss the second; a stream once cancelled is dropped by its owner.)
    void cancel() {
        cancelled_ = true;
        plain_->cancel();
    }
    /// Whether cancel() was called: such a stream is never reused.
    bool cancelled() const noexcept { return cancelled_; }
    bool tls() const noexcept { return tls_ != nullptr; }

    /// Starts TLS on the connection as `expect` says, checking the certificate of `host` (a name
    /// or an address), under the deadline set before. Fails with errc::tls_failed and a message
    /// saying why (a handshake that failed, a certificate refused, another fingerprint), or
    /// errc::timeout. Cancelled, it fails with operation_aborted; the stream is then unusable.
    asio::awaitable<Error> async_handshake(const tls_expectation& expect, const std::string& host);

    template <typename MutableBuffers, typename Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
                if (cancelled_) {
                    refuse(std::move(handler));
                } else if (!tls_) {
                    plain_->async_read_some(b, std::move(handler));
                } else {
                    read_tls(first_of<asio::mutable_buffer>(b), completion(std::move(handler)));
                }
            },
            token, buffers);
    }

    template <typename ConstBuffers, typename Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                if (cancelled_) {
                    refuse(std::move(handler));
                } else if (!tls_) {
                    plain_->async_write_some(b, std::move(handler));
                } else {
                    write_tls(first_of<asio::const_buffer>(b), completion(std::move(handler)));
                }
            },
            token, buffers);
    }

private:
    struct tls_state;

    /// Completes an operation started after cancel(), as its own would have been.
    template <typename Handler>
    void refuse(Handler handler) {
        asio::post(
            plain_->get_executor(),
            asio::append(std::move(handler), asio::error::operation_aborted, std::size_t{0}));
    }

    /// The first buffer that is not empty (TLS writes and reads one buffer at a time).
    template <typename Buffer, typename Buffers>
    static Buffer first_of(const Buffers& buffers) {
        for (auto i = asio::buffer_sequence_begin(buffers); i != asio::buffer_sequence_end(buffers);
             ++i) {
            Buffer b(*i);
            if (b.size() > 0) return b;
        }
        return Buffer();
    }
    void read_tls(asio::mutable_buffer buffer, completion handler);
    void write_tls(asio::const_buffer buffer, completion handler);

    std::unique_ptr<beast::tcp_stream> plain_; ///< at a fixed address: TLS refers to it
    std::unique_ptr<tls_state> tls_;
    bool cancelled_ = false;
};

} // namespace p2pshare::detail
