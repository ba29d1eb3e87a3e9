// SHA-256 through OpenSSL's libcrypto.
#pragma once

#include <boost/system/result.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace p2pshare::detail {

class sha256 {
public:
    sha256();
    ~sha256();
    sha256(sha256&&) noexcept;
    sha256& operator=(sha256&&) noexcept;
    void update(const void* data, std::size_t size);
    /// Lowercase hex digest; the object starts over afterwards.
    std::string hex_digest();
    /// The 32 bytes of the digest into `out`; the object starts over afterwards.
    void digest_into(unsigned char* out);

private:
    struct ctx_deleter {
        void operator()(void* ctx) const noexcept;
    };
    std::unique_ptr<void, ctx_deleter> ctx_;
};

std::string sha256_hex(std::string_view data);

/// Hashes the first `length` bytes of an open file descriptor (from offset 0). When `cut` is
/// given and becomes true, stops within one 1 MiB read with errc::shutting_down.
boost::system::result<std::string> sha256_fd(int fd, std::uint64_t length,
                                             const std::atomic<bool>* cut = nullptr);

} // namespace p2pshare::detail
