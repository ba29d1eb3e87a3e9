#include "sha256.hpp"

#include "pieces.hpp"

#include <p2pshare/error.hpp>

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <vector>

namespace p2pshare::detail {

void sha256::ctx_deleter::operator()(void* ctx) const noexcept {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx));
}

sha256::sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ ||
        EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_.get()), EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 is not available");
    }
}

sha256::~sha256() = default;
sha256::sha256(sha256&&) noexcept = default;
sha256& sha256::operator=(sha256&&) noexcept = default;

void sha256::update(const void* data, std::size_t size) {
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_.get()), data, size);
}

std::string sha256::hex_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    auto* ctx = static_cast<EVP_MD_CTX*>(ctx_.get());
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    std::string out;
    hex_into(out, std::span<const std::uint8_t>(md, len));
    return out;
}

void sha256::digest_into(unsigned char* out) {
    unsigned int len = 0;
    auto* ctx = static_cast<EVP_MD_CTX*>(ctx_.get());
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
}

std::string sha256_hex(std::string_view data) {
    sha256 h;
    h.update(data.data(), data.size());
    return h.hex_digest();
}

boost::system::result<std::string> sha256_fd(int fd, std::uint64_t length,
                                             const std::atomic<bool>* cut) {
    sha256 h;
    std::vector<char> buffer(1 << 20);
    std::uint64_t offset = 0;
    while (offset < length) {
        if (cut && cut->load(std::memory_order_relaxed))
            return make_error_code(errc::shutting_down);
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - offset));
        const auto n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return boost::system::error_code(errno, boost::system::system_category());
        }
        if (n == 0) return make_error_code(errc::size_mismatch);
        h.update(buffer.data(), static_cast<std::size_t>(n));
        offset += static_cast<std::uint64_t>(n);
    }
    return h.hex_digest();
}

} // namespace p2pshare::detail
