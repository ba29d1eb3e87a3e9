#include "piece_record.hpp"

#include "sha256.hpp"

#include <cstring>

namespace p2pshare::detail {

namespace {

constexpr std::string_view magic = "p2pshare-pieces1";

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view in) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= std::uint64_t{static_cast<unsigned char>(in[static_cast<std::size_t>(i)])} << (8 * i);
    return v;
}

} // namespace

piece_record::piece_record(std::uint64_t size, std::uint64_t piece_size, std::uint64_t pieces,
                           const digest& sha256, const digest& root)
    : pieces_(pieces) {
    header_.append(magic);
    put_u64(header_, size);
    put_u64(header_, piece_size);
    put_u64(header_, pieces);
    header_.append(reinterpret_cast<const char*>(sha256.data()), sha256.size());
    header_.append(reinterpret_cast<const char*>(root.data()), root.size());
}

std::size_t piece_record::slot_size() const noexcept {
    return 8 + static_cast<std::size_t>((pieces_ + 7) / 8) + 32;
}

std::size_t piece_record::file_size() const noexcept { return header_.size() + 2 * slot_size(); }

std::string piece_record::slot(std::uint64_t sequence, const std::vector<bool>& verified) const {
    std::string s;
    s.reserve(slot_size());
    put_u64(s, sequence);
    std::string bits(static_cast<std::size_t>((pieces_ + 7) / 8), '\0');
    for (std::size_t i = 0; i < verified.size() && i < pieces_; ++i)
        if (verified[i]) bits[i / 8] = static_cast<char>(bits[i / 8] | (1 << (i % 8)));
    s += bits;
    sha256 h;
    h.update(header_.data(), header_.size());
    h.update(s.data(), s.size());
    unsigned char sum[32];
    h.digest_into(sum);
    s.append(reinterpret_cast<const char*>(sum), 32);
    return s;
}

std::string piece_record::initial() {
    const std::vector<bool> none(static_cast<std::size_t>(pieces_), false);
    std::string out = header_;
    out += slot(1, none);
    out += slot(0, none);
    sequence_ = 2;
    next_slot_ = 1;
    return out;
}

std::optional<std::vector<bool>> piece_record::read(std::string_view bytes) {
    if (bytes.size() != file_size() || bytes.substr(0, header_.size()) != header_) {
        return std::nullopt;
    }
    std::optional<std::vector<bool>> best;
    std::uint64_t best_sequence = 0;
    unsigned best_slot = 0;
    for (unsigned k = 0; k < 2; ++k) {
        const auto s = bytes.substr(header_.size() + k * slot_size(), slot_size());
        const auto body = s.substr(0, slot_size() - 32);
        sha256 h;
        h.update(header_.data(), header_.size());
        h.update(body.data(), body.size());
        unsigned char sum[32];
        h.digest_into(sum);
        if (std::memcmp(sum, s.data() + body.size(), 32) != 0) continue;
        const auto sequence = get_u64(body);
        if (best && sequence <= best_sequence) continue;
        std::vector<bool> verified(static_cast<std::size_t>(pieces_), false);
        for (std::size_t i = 0; i < verified.size(); ++i)
            verified[i] = (static_cast<unsigned char>(body[8 + i / 8]) >> (i % 8)) & 1;
        best = std::move(verified);
        best_sequence = sequence;
        best_slot = k;
    }
    if (best) {
        sequence_ = best_sequence + 1;
        next_slot_ = best_slot ^ 1;
    }
    return best;
}

piece_record::write piece_record::update(const std::vector<bool>& verified) {
    write w;
    w.offset = header_.size() + next_slot_ * slot_size();
    w.bytes = slot(sequence_, verified);
    ++sequence_;
    next_slot_ ^= 1;
    return w;
}

} // namespace p2pshare::detail
