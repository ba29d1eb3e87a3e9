// filegen: the content of a file, printable ASCII that depends only on a seed and the file name.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace filegen {

/// An endless stream of printable ASCII ('!' .. '~', bytes 33..126), from xoshiro256**.
/// Each 64-bit output gives eight characters: each 32-bit half is read as a fraction and
/// multiplied by 94 four times, the integer parts being the characters (bias below 1e-6).
class PrintableStream {
public:
    explicit PrintableStream(std::uint64_t seed) noexcept;

    /// Fills `out[0..n)`. Only the last call for a stream may have `n` not a multiple of 8.
    void fill(char* out, std::size_t n) noexcept;

private:
    std::uint64_t next() noexcept;

    std::array<std::uint64_t, 4> s_{};
};

/// The stream of file `name` for `seed`: a name stands for one content whatever the folder.
PrintableStream content_of(std::uint64_t seed, std::string_view name) noexcept;

} // namespace filegen
