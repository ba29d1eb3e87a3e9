#include "piece_picker.hpp"

#include <algorithm>

namespace p2pshare::detail {

piece_picker::piece_picker(std::size_t pieces, std::size_t copies)
    : copies_(copies), has_(pieces, false), fetching_(pieces), wanted_(pieces) {}

void piece_picker::have(std::size_t piece) {
    if (has_[piece]) return;
    if (fetching_[piece].empty()) --wanted_;
    has_[piece] = true;
    ++had_;
}

std::optional<std::pair<std::size_t, std::uint64_t>> piece_picker::copy_candidate(
    source_id source, std::uint64_t copy_after) const {
    std::optional<std::pair<std::size_t, std::uint64_t>> best;
    std::size_t best_copies = 0;
    for (std::size_t i = 0; i < has_.size(); ++i) {
        const auto& f = fetching_[i];
        if (has_[i] || f.empty()) continue;
        if (f.size() >= copies_ && copies_ < 2) continue; // (written as it comes: one at a time)
        if (std::any_of(f.begin(), f.end(), [&](const fetch& x) { return x.source == source; })) {
            continue;
        }
        const auto [oldest, newest] = std::minmax_element(
            f.begin(), f.end(), [](auto& a, auto& b) { return a.since < b.since; });
        // Under the cap, due once it has been in flight for copy_after; at it, once even its
        // newest copy is late.
        const auto due = f.size() < copies_ ? oldest->since + copy_after
                                            : newest->since + late_copies * copy_after;
        if (!best || f.size() < best_copies || (f.size() == best_copies && due < best->second)) {
            best.emplace(i, due);
            best_copies = f.size();
        }
    }
    return best;
}

std::optional<std::size_t> piece_picker::pick(source_id source, std::uint64_t now,
                                              std::uint64_t copy_after) {
    // The lowest piece nobody has or fetches.
    while (first_wanted_ < has_.size() &&
           (has_[first_wanted_] || !fetching_[first_wanted_].empty())) {
        ++first_wanted_;
    }
    for (std::size_t i = first_wanted_; i < has_.size(); ++i) {
        if (!has_[i] && fetching_[i].empty()) {
            fetching_[i].push_back({source, now});
            --wanted_;
            return i;
        }
    }
    // End-game: a piece in flight elsewhere, fewest copies first, then the one held longest,
    // once it has been in flight for `copy_after`.
    const auto best = copy_candidate(source, copy_after);
    if (!best || now < best->second) return std::nullopt;
    fetching_[best->first].push_back({source, now});
    ++duplicates_;
    return best->first;
}

bool piece_picker::take(source_id source, std::size_t piece, std::uint64_t now) {
    if (piece >= has_.size() || has_[piece] || !fetching_[piece].empty()) return false;
    fetching_[piece].push_back({source, now});
    --wanted_;
    return true;
}

void piece_picker::started(source_id source, std::size_t piece, std::uint64_t now) {
    for (auto& f : fetching_[piece])
        if (f.source == source) f.since = now;
}

std::optional<std::uint64_t> piece_picker::next_copy(source_id source,
                                                     std::uint64_t copy_after) const {
    if (first_wanted_ < has_.size()) {
        for (std::size_t i = first_wanted_; i < has_.size(); ++i)
            if (!has_[i] && fetching_[i].empty()) return 0; // a wanted piece: now
    }
    const auto best = copy_candidate(source, copy_after);
    if (!best) return std::nullopt;
    return best->second;
}

std::vector<piece_picker::source_id> piece_picker::complete(source_id source, std::size_t piece) {
    std::vector<source_id> others;
    for (const auto& f : fetching_[piece])
        if (f.source != source) others.push_back(f.source);
    if (!has_[piece]) {
        if (fetching_[piece].empty()) --wanted_; // (verified without being asked for)
        has_[piece] = true;
        ++had_;
    }
    fetching_[piece].clear();
    return others;
}

void piece_picker::release(source_id source, std::size_t piece) {
    auto& f = fetching_[piece];
    const auto erased = std::erase_if(f, [&](const fetch& x) { return x.source == source; });
    if (!has_[piece] && f.empty() && erased > 0) {
        first_wanted_ = std::min(first_wanted_, piece);
        ++wanted_;
    }
}

std::vector<std::size_t> piece_picker::fetched_by(source_id source) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < fetching_.size(); ++i)
        for (const auto& f : fetching_[i])
            if (f.source == source) out.push_back(i);
    return out;
}

std::string piece_picker::picture() const {
    std::string out;
    for (std::size_t i = 0; i < has_.size(); ++i) {
        if (has_[i]) {
            out.push_back('#');
        } else if (fetching_[i].empty()) {
            out.push_back('-');
        } else {
            out.push_back(static_cast<char>('0' + fetching_[i].size()));
        }
    }
    return out;
}

} // namespace p2pshare::detail
