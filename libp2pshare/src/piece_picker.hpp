// Which piece each source of a download fetches next: plain bookkeeping with no I/O and no
// clock, unit-tested from short strings (tests/unit/piece_picker_test.cpp).
//
// A piece is wanted, in flight at one or more sources, or had (verified). A source asks for
// work one piece at a time and gets the lowest wanted piece; it may extend that into a short run
// of the wanted pieces that follow (take), asked for in one request, so that a slow source
// delays nothing but its run. Once no piece is
// wanted (end-game), a source with nothing to do takes a piece in flight elsewhere that fewer
// sources fetch, the one held longest first: the last pieces are never left to the slowest
// source alone. The first copy verified wins; the others are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace p2pshare::detail {

class piece_picker {
public:
    using source_id = std::size_t;
    /// At most `copies` sources fetch one piece at once (2: one end-game copy; 1: none), unless
    /// `copies` is 2 or more and every one of them is late: a piece whose newest copy has been in
    /// flight for `late_copies` × copy_after gets one more, so that sources that all stall on
    /// one piece (frozen) do not hold it to their stall deadline.
    explicit piece_picker(std::size_t pieces, std::size_t copies = 2);
    static constexpr std::uint64_t late_copies = 4;

    /// Marks a piece had without fetching it (kept from an earlier run).
    void have(std::size_t piece);

    /// The piece `source` fetches next, or nullopt when there is nothing it could do now (every
    /// piece had, or in flight at this source already, or for less than `copy_after`, or at
    /// `copies` sources for less than late_copies × copy_after since the newest). `now` orders
    /// the end-game: the piece with the fewest copies, then whose fetch started earliest, is
    /// duplicated first.
    std::optional<std::size_t> pick(source_id source, std::uint64_t now,
                                    std::uint64_t copy_after = 0);

    /// Takes `piece` for `source` if it is wanted (nobody has or fetches it): to extend a run
    /// of pieces that follow the one `pick` gave. False, and nothing changes, otherwise.
    /// `now` is when the piece is expected to start arriving, later than the run's start for
    /// the pieces after its first.
    bool take(source_id source, std::size_t piece, std::uint64_t now);

    /// `source` starts receiving `piece` (a piece of a run it took) at `now`: its time in flight,
    /// which orders the end-game, counts from then. Nothing happens if `source` does not fetch it.
    void started(source_id source, std::size_t piece, std::uint64_t now);

    /// How many sources fetch `piece` now.
    std::size_t copies(std::size_t piece) const noexcept { return fetching_[piece].size(); }

    /// When `pick(source, ..., copy_after)` could next give `source` an end-game copy, if no
    /// piece is verified or released meanwhile; nullopt when it never could.
    std::optional<std::uint64_t> next_copy(source_id source, std::uint64_t copy_after) const;

    /// `source` verified `piece`. Returns the other sources that were fetching it (their copy
    /// is no longer needed).
    std::vector<source_id> complete(source_id source, std::size_t piece);

    /// `source` stopped fetching `piece` without it (failure, ban, cancellation): the piece is
    /// wanted again unless another source fetches it or it is had.
    void release(source_id source, std::size_t piece);

    bool done() const noexcept { return had_ == has_.size(); }
    /// Pieces nobody has or fetches.
    std::size_t wanted() const noexcept { return wanted_; }
    std::size_t had() const noexcept { return had_; }
    std::size_t size() const noexcept { return has_.size(); }
    bool has(std::size_t piece) const noexcept { return has_[piece]; }
    /// Whether any source fetches `piece` now.
    bool in_flight(std::size_t piece) const noexcept { return !fetching_[piece].empty(); }
    /// The pieces `source` fetches now.
    std::vector<std::size_t> fetched_by(source_id source) const;
    /// Pieces handed out again in end-game so far.
    std::size_t duplicates() const noexcept { return duplicates_; }

    /// One character per piece, for tests: '#' had, '-' wanted, else the number of sources
    /// fetching it.
    std::string picture() const;

private:
    struct fetch {
        source_id source;
        std::uint64_t since;
    };
    std::size_t copies_;
    std::vector<bool> has_;
    std::vector<std::vector<fetch>> fetching_;
    std::size_t had_ = 0;
    std::size_t wanted_ = 0;
    std::size_t first_wanted_ = 0; ///< no wanted piece lies below it

    /// The end-game candidate for `source`: fewest copies, then held longest; when it is due.
    std::optional<std::pair<std::size_t, std::uint64_t>> copy_candidate(
        source_id source, std::uint64_t copy_after) const;
    std::size_t duplicates_ = 0;
};

} // namespace p2pshare::detail
