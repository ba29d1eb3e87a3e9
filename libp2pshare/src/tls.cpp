#include "tls.hpp"

#include "pieces.hpp"
#include "support.hpp"

#include <p2pshare/config.hpp>

#include <boost/asio/ip/address.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>

namespace p2pshare::detail {

namespace {

template <typename T, void (*Free)(T*)>
struct freer {
    void operator()(T* p) const noexcept { Free(p); }
};
using x509_ptr = std::unique_ptr<X509, freer<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, freer<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, freer<BIO, BIO_free_all>>;

Error config_error(std::string message) {
    return {make_error_code(errc::bad_config), std::move(message)};
}

} // namespace

std::string certificate_sha256(X509* cert) {
    digest md{};
    unsigned int size = 0;
    if (cert == nullptr || X509_digest(cert, EVP_sha256(), md.data(), &size) != 1 ||
        size != md.size()) {
        return {};
    }
    return to_hex(md);
}

namespace {

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

} // namespace

std::string openssl_errors() {
    std::string out;
    while (const auto e = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        if (!out.empty()) out += "; ";
        out += text;
    }
    return out.empty() ? "no detail from OpenSSL" : out;
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<tls_server_context>> tls_server_context::load(
    const std::filesystem::path& cert, const std::filesystem::path& key) {
    prepare_openssl();
    ERR_clear_error();
    std::shared_ptr<tls_server_context> c(new tls_server_context);
    c->ctx_ = SSL_CTX_new(TLS_server_method());
    if (c->ctx_ == nullptr) return config_error("cannot make a TLS context: " + openssl_errors());
    SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
    // Partial writes let a full socket take what it can; the buffer given again after
    // want_write may be the same bytes at another address (a string that moved).
    SSL_CTX_set_mode(c->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
    // A client that closes without the closing alert (most HTTP clients, once the answer is
    // read) is a normal end, not an error; kernel TLS where the kernel has it.
    std::uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF;
#ifdef SSL_OP_ENABLE_KTLS
    options |= SSL_OP_ENABLE_KTLS;
#endif
    SSL_CTX_set_options(c->ctx_, options);
    if (SSL_CTX_use_certificate_chain_file(c->ctx_, cert.c_str()) != 1) {
        return config_error("cannot use the certificate " + cert.string() + ": " +
                            openssl_errors());
    }
    if (SSL_CTX_use_PrivateKey_file(c->ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return config_error("the key " + key.string() + " is not the key of the certificate " +
                                cert.string());
        }
        return config_error("cannot use the key " + key.string() + ": " + openssl_errors());
    }
    if (SSL_CTX_check_private_key(c->ctx_) != 1) {
        ERR_clear_error();
        return config_error("the key " + key.string() + " is not the key of the certificate " +
                            cert.string());
    }
    c->fingerprint_ = certificate_sha256(SSL_CTX_get0_certificate(c->ctx_));
    if (c->fingerprint_.empty()) {
        return config_error("cannot hash the certificate " + cert.string() + ": " +
                            openssl_errors());
    }
    return c;
}

tls_server_context::~tls_server_context() { SSL_CTX_free(ctx_); }

Error make_self_signed(const std::filesystem::path& cert, const std::filesystem::path& key,
                       const std::string& common_name, const std::vector<std::string>& hosts) {
    prepare_openssl();
    ERR_clear_error();
    const auto failed = [](const std::string& what) {
        return Error{make_error_code(errc::io_error), what + ": " + openssl_errors()};
    };
    pkey_ptr pkey(EVP_EC_gen("P-256"));
    if (!pkey) return failed("cannot make a key");
    x509_ptr x(X509_new());
    if (!x) return failed("cannot make a certificate");
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) return failed("no random serial");
    serial[0] &= 0x7f; // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    ASN1_INTEGER* asn = bn != nullptr ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
    BN_free(bn);
    if (asn == nullptr) return failed("no serial");
    X509_set_serialNumber(x.get(), asn);
    ASN1_INTEGER_free(asn);
    X509_set_version(x.get(), 2);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(x.get(), name);
    X509_set_pubkey(x.get(), pkey.get());
    if (!hosts.empty()) {
        std::string names;
        for (const auto& h : hosts) {
            if (!names.empty()) names += ',';
            boost::system::error_code not_address;
            boost::asio::ip::make_address(h, not_address);
            names += (not_address ? "DNS:" : "IP:") + h;
        }
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
        X509_EXTENSION* ext =
            X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, names.c_str());
        if (ext == nullptr) return failed("bad host names " + names);
        X509_add_ext(x.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x.get(), pkey.get(), EVP_sha256()) == 0) return failed("cannot sign");
    bio_ptr cert_pem(BIO_new(BIO_s_mem()));
    bio_ptr key_pem(BIO_new(BIO_s_mem()));
    if (!cert_pem || !key_pem || PEM_write_bio_X509(cert_pem.get(), x.get()) != 1 ||
        PEM_write_bio_PrivateKey(key_pem.get(), pkey.get(), nullptr, nullptr, 0, nullptr,
                                 nullptr) != 1) {
        return failed("cannot encode the certificate");
    }
    // The key first: a certificate on disk always has its key.
    if (const auto ec = write_file_atomically(key, bio_text(key_pem.get()), true)) {
        return {ec, "cannot write " + key.string() + ": " + ec.message()};
    }
    if (const auto ec = write_file_atomically(cert, bio_text(cert_pem.get()))) {
        return {ec, "cannot write " + cert.string() + ": " + ec.message()};
    }
    return {};
}

Result<std::string> certificate_fingerprint(const std::filesystem::path& cert) {
    ERR_clear_error();
    bio_ptr bio(BIO_new_file(cert.c_str(), "r"));
    if (!bio) return config_error("cannot read the certificate " + cert.string());
    x509_ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) return config_error("no PEM certificate in " + cert.string());
    return certificate_sha256(x.get());
}

// ---------------------------------------------------------------------------------------------

tls_stream::tls_stream(const tls_server_context& context, int socket)
    : ssl_(SSL_new(context.native())) {
    if (ssl_ == nullptr) throw std::bad_alloc();
    SSL_set_fd(ssl_, socket);
    SSL_set_accept_state(ssl_);
}

tls_stream::~tls_stream() { SSL_free(ssl_); }

tls_stream::status tls_stream::fail(int ret) {
    switch (SSL_get_error(ssl_, ret)) {
        case SSL_ERROR_WANT_READ:
            return status::want_read;
        case SSL_ERROR_WANT_WRITE:
            return status::want_write;
        case SSL_ERROR_ZERO_RETURN:
            return status::closed;
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) {
                message_ = errno != 0 ? errno_text(errno) : "the connection was closed";
                return errno == 0 ? status::closed : status::failed;
            }
            break;
        default:
            break;
    }
    message_ = openssl_errors();
    return status::failed;
}

tls_stream::status tls_stream::handshake() {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl_);
    return r == 1 ? status::done : fail(r);
}

tls_stream::result tls_stream::read(void* data, std::size_t size) {
    ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, data, size, &n);
    if (r == 1) return {status::done, n};
    return {fail(r), 0};
}

tls_stream::result tls_stream::write(const void* data, std::size_t size) {
    ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, data, size, &n);
    if (r == 1) return {status::done, n};
    return {fail(r), 0};
}

tls_stream::result tls_stream::sendfile(int fd, std::uint64_t offset, std::size_t size) {
    ERR_clear_error();
    errno = 0;
    const auto n = SSL_sendfile(ssl_, fd, static_cast<off_t>(offset), size, 0);
    if (n >= 0) return {status::done, static_cast<std::size_t>(n)};
    if (errno == EAGAIN) return {status::want_write, 0};
    message_ = errno != 0 ? errno_text(errno) : openssl_errors();
    return {status::failed, 0};
}

bool tls_stream::kernel_send() const noexcept { return BIO_get_ktls_send(SSL_get_wbio(ssl_)) != 0; }

void tls_stream::shutdown() noexcept {
    ERR_clear_error();
    if (SSL_is_init_finished(ssl_) == 1) SSL_shutdown(ssl_);
    ERR_clear_error();
}

} // namespace p2pshare::detail
