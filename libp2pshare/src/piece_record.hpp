// The record of a download's verified pieces, kept beside its `.part` as `NAME.part.pieces`
// (docs/protocol.md, "What a downloader does"). No I/O here: the caller reads and writes the
// bytes.
//
// Layout: a header that names the content (magic, size, piece size, SHA-256, root), then two
// slots. A slot holds a sequence number, one bit per piece (set: verified and on disk) and a
// SHA-256 over the header and the slot. Each update writes the older slot, so a torn write
// leaves the other one intact: a reader takes the valid slot with the higher sequence number.
#pragma once

#include "pieces.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

class piece_record {
public:
    piece_record(std::uint64_t size, std::uint64_t piece_size, std::uint64_t pieces,
                 const digest& sha256, const digest& root);

    /// The bytes of a new record with no piece verified; updates follow it.
    std::string initial();

    /// The verified pieces a record's bytes hold for this content; nullopt when they are of
    /// other content, of another layout, or corrupt in both slots. Sets the next sequence
    /// number and slot so that the next update does not overwrite the newest valid slot.
    std::optional<std::vector<bool>> read(std::string_view bytes);

    /// The next update: where to write (an offset into the record) and what.
    struct write {
        std::uint64_t offset = 0;
        std::string bytes;
    };
    write update(const std::vector<bool>& verified);

    std::size_t file_size() const noexcept;

private:
    std::string header_;
    std::uint64_t pieces_;
    std::uint64_t sequence_ = 1;
    unsigned next_slot_ = 0;

    std::size_t slot_size() const noexcept;
    std::string slot(std::uint64_t sequence, const std::vector<bool>& verified) const;
};

} // namespace p2pshare::detail
