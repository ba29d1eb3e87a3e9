#include "client_stream.hpp"

#include "support.hpp"
#include "tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace p2pshare::detail {

namespace ssl = asio::ssl;

class tls_client_context {
public:
    ssl::context by_name{ssl::context::tls_client};
    ssl::context by_fingerprint{ssl::context::tls_client};
};

namespace {

std::shared_ptr<tls_client_context> make_context() {
    prepare_openssl();
    auto c = std::make_shared<tls_client_context>();
    for (auto* ctx : {&c->by_name, &c->by_fingerprint}) {
        SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
        SSL_CTX_set_options(ctx->native_handle(),
                            SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    }
    // By name: nothing is trusted until make_tls_client() loads the CAs.
    c->by_name.set_verify_mode(ssl::verify_peer);
    // By fingerprint: any certificate completes the handshake, and the fingerprint is compared
    // before a byte of the request is sent.
    c->by_fingerprint.set_verify_mode(ssl::verify_none);
    return c;
}

} // namespace

std::shared_ptr<tls_client_context> pinned_tls_client() {
    static const auto shared = make_context();
    return shared;
}

Result<std::shared_ptr<tls_client_context>> make_tls_client(const std::filesystem::path& ca_file) {
    auto c = make_context();
    boost::system::error_code ec;
    if (ca_file.empty()) {
        c->by_name.set_default_verify_paths(ec);
    } else {
        c->by_name.load_verify_file(ca_file.string(), ec);
    }
    if (ec) {
        return Error{make_error_code(errc::bad_config),
                     "cannot load the certificate authorities " +
                         (ca_file.empty() ? std::string("of the system") : ca_file.string()) +
                         ": " + ec.message()};
    }
    return c;
}

struct client_stream::tls_state {
    tls_state(beast::tcp_stream& next, ssl::context& context) : stream(next, context) {}
    ssl::stream<beast::tcp_stream&> stream;
};

client_stream::client_stream(tcp::socket socket)
    : plain_(std::make_unique<beast::tcp_stream>(std::move(socket))) {}
client_stream::client_stream(client_stream&&) noexcept = default;
client_stream& client_stream::operator=(client_stream&&) noexcept = default;
client_stream::~client_stream() = default;

namespace {

std::string peer_certificate_sha256(SSL* ssl) {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) return {};
    auto out = certificate_sha256(cert);
    X509_free(cert);
    return out;
}

} // namespace

asio::awaitable<Error> client_stream::async_handshake(const tls_expectation& expect,
                                                      const std::string& host) {
    auto& context =
        expect.fingerprint.empty() ? expect.context->by_name : expect.context->by_fingerprint;
    tls_ = std::make_unique<tls_state>(*plain_, context);
    auto* native = tls_->stream.native_handle();
    boost::system::error_code address_ec;
    asio::ip::make_address(host, address_ec);
    // Server name indication for names; certificates name addresses in their own field.
    if (address_ec) {
        SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str()));
    }
    if (expect.fingerprint.empty())
        tls_->stream.set_verify_callback(ssl::host_name_verification(host));
    ERR_clear_error();
    auto [ec] = co_await tls_->stream.async_handshake(ssl::stream_base::client,
                                                      asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted)
        co_return Error{ec, "the TLS handshake was cancelled"};
    if (ec == beast::error::timeout) {
        co_return Error{make_error_code(errc::timeout),
                        "the TLS handshake with " + host + " did not end in time"};
    }
    if (ec) {
        std::string why = ec.message();
        const long verify = SSL_get_verify_result(native);
        if (verify != X509_V_OK) {
            why =
                std::string("its certificate is refused: ") + X509_verify_cert_error_string(verify);
        }
        co_return Error{make_error_code(errc::tls_failed), "TLS with " + host + " failed: " + why};
    }
    if (!expect.fingerprint.empty()) {
        const auto got = peer_certificate_sha256(native);
        if (got != expect.fingerprint) {
            co_return Error{make_error_code(errc::tls_failed),
                            "the certificate of " + host + " has the SHA-256 fingerprint " +
                                (got.empty() ? std::string("(none)") : got) +
                                ", not the one the index gave (" + expect.fingerprint + ")"};
        }
    }
    co_return Error{};
}

// The erased handler completes on the stream's executor (Beast's stream cannot post to the
// executor an erased handler carries); the stream's users run on that executor.
void client_stream::read_tls(asio::mutable_buffer buffer, completion handler) {
    tls_->stream.async_read_some(buffer,
                                 asio::bind_executor(plain_->get_executor(), std::move(handler)));
}

void client_stream::write_tls(asio::const_buffer buffer, completion handler) {
    tls_->stream.async_write_some(buffer,
                                  asio::bind_executor(plain_->get_executor(), std::move(handler)));
}

} // namespace p2pshare::detail
