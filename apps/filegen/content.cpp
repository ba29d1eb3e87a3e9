#include "content.hpp"

#include <algorithm>

namespace filegen {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::uint64_t fnv1a64(std::string_view text) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

void expand(std::uint32_t fraction, char* out) noexcept {
    std::uint64_t r = fraction;
    for (int i = 0; i < 4; ++i) {
        r *= 94;
        out[i] = static_cast<char>(33 + (r >> 32));
        r &= 0xffffffffULL;
    }
}

std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

} // namespace

PrintableStream::PrintableStream(std::uint64_t seed) noexcept {
    for (auto& s : s_)
        s = splitmix64(seed);
}

void PrintableStream::fill(char* out, std::size_t n) noexcept {
    std::array<char, 8> group{};
    while (n > 0) {
        const std::uint64_t word = next();
        char* dst = n >= 8 ? out : group.data();
        expand(static_cast<std::uint32_t>(word), dst);
        expand(static_cast<std::uint32_t>(word >> 32), dst + 4);
        if (n < 8) {
            std::copy_n(group.data(), n, out);
            return;
        }
        out += 8;
        n -= 8;
    }
}

std::uint64_t PrintableStream::next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

PrintableStream content_of(std::uint64_t seed, std::string_view name) noexcept {
    std::uint64_t mix = seed;
    mix = splitmix64(mix) ^ fnv1a64(name);
    return PrintableStream(splitmix64(mix));
}

} // namespace filegen
