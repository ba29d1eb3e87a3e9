#include <p2pshare/error.hpp>
#include <p2pshare/file_transfer.hpp>
#include <p2pshare/names.hpp>

#include "blocking.hpp"
#include "connection_pool.hpp"
#include "http_client.hpp"
#include "piece_picker.hpp"
#include "piece_record.hpp"
#include "pieces.hpp"
#include "protocol.hpp"
#include "rate_limiter.hpp"
#include "run_on.hpp"
#include "sha256.hpp"
#include "support.hpp"
#include "transfer_body.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <random>

namespace p2pshare {

using namespace detail;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Pieces up to this size, into a file on a file system held in memory, are hashed and written
/// on the network thread: cheaper than a hop to the blocking executor and back.
constexpr std::uint64_t max_inline_store = 64 * 1024;

/// Pieces up to this size are hashed and written by one job of the blocking executor; larger
/// ones by two, so that the next piece is hashed while this one is written.
constexpr std::uint64_t max_one_job_store = 256 * 1024;

/// Pieces up to this size are held in memory until verified (two or more per source in use:
/// some are checked and written while the next arrives).
constexpr std::uint64_t max_piece_in_memory = 32 << 20;

/// The memory a download holds its received pieces in, shared among its sources (each has at
/// least two pieces, whatever their size).
constexpr std::size_t held_bytes_per_download = 16 << 20;
/// A source is judged slow only once its requests were out this long, and this many times the
/// wait for its first byte (TCP's slow start lasts a few round trips), and only against a source
/// serving now, measured that long too.
constexpr std::uint64_t slow_after_us = 300'000;
constexpr std::uint64_t slow_after_first_bytes = 8;
/// A source this many times slower than the fastest gives way to a source not used yet.
constexpr double slow_ratio = 4.0;

/// NAME + suffix, or for a name too long for that, a shortened name made unique by a hash of
/// the name (so that a later run finds it again to resume).
std::string side_name(const std::string& name, std::string_view suffix) {
    if (name.size() + pieces_suffix.size() <= max_name_length) return name + std::string(suffix);
    const auto tag = "~" + sha256_hex(name).substr(0, 16);
    return name.substr(0, max_name_length - pieces_suffix.size() - tag.size()) + tag +
           std::string(suffix);
}

std::mt19937_64& rng() {
    thread_local std::mt19937_64 engine{std::random_device{}()};
    return engine;
}

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

struct download_state;

/// One source of a download, and what it did.
struct source_ctx final : piece_listener {
    FileSource src;
    std::string key;      ///< host:port (after https:// for a source that serves over TLS)
    std::string pool_key; ///< key, and the certificate's fingerprint
    std::size_t id = 0;
    download_state* d = nullptr;
    SourceReport report;
    errc code = errc::all_sources_failed; ///< its last error
    std::optional<client_stream> stream;
    beast::flat_buffer buffer;
    bool reused = false;                    ///< the connection came from the pool
    bool stop = false;                      ///< the piece in flight is no longer wanted
    unsigned failures = 0;                  ///< transport failures in a row
    bool fetching = false;                  ///< a piece is being received
    std::size_t current = 0;                ///< ... this one
    std::uint64_t since = 0;                ///< when the piece in flight was asked for (now_us)
    std::optional<asio::steady_timer> wake; ///< waited on until an end-game copy may start
    // Its speed: bytes received over the time requests to it were out.
    std::uint64_t got = 0;           ///< bytes received from it (pieces whole or not)
    std::uint64_t busy_us = 0;       ///< time its finished requests were out
    std::uint64_t asked_at = 0;      ///< when the request out now was sent (while `fetching`)
    std::uint64_t first_byte_us = 0; ///< the wait for the first byte of its first answer
    bool serving = false;            ///< a worker serves it now
    bool giving_way = false;         ///< it leaves at once for a faster source not used yet
    bool gave_way = false;           ///< ... and left: benched once its worker is done with it
    bool benched = false;            ///< it gave way: used again only if no unused source is left

    /// Bytes per second, once measured long enough (slow_after_us, slow_after_first_bytes);
    /// else nullopt.
    std::optional<double> speed(std::uint64_t now) const {
        const auto us = busy_us + (fetching ? now - std::min(now, asked_at) : 0);
        if (us < std::max(slow_after_us, slow_after_first_bytes * first_byte_us))
            return std::nullopt;
        return static_cast<double>(got) * 1e6 / static_cast<double>(us);
    }

    void on_bytes(std::size_t n) override;
};

/// Everything the workers of one download share; each holds it, so it outlives them all.
struct download_state {
    asio::any_io_executor executor;
    asio::any_io_executor blocking;
    const TransferOptions* options = nullptr;
    connection_pool* pool = nullptr;
    rate_limiter* rate = nullptr; ///< the FileTransfer's cap on received bytes
    std::string name;
    std::string target;
    std::string etag;
    std::uint64_t size = 0;
    std::uint64_t piece_length = 0;
    bool in_memory = true;  ///< pieces are received into memory and written once verified
    bool memory_fs = false; ///< the file is on tmpfs or ramfs: writing it never waits for a disk
    std::vector<digest> hashes;
    piece_picker picker{0};
    std::vector<bool> verified;
    std::vector<std::unique_ptr<source_ctx>> sources;
    std::size_t next_source = 0;
    std::vector<source_ctx*> benched_order; ///< sources that gave way, in that order
    std::size_t give_ways_left = 0;         ///< a slow source may give way this many more times
    int fd = -1;
    int record_fd = -1;
    std::optional<piece_record> record;
    std::size_t unrecorded = 0;
    bool record_failed = false;
    asio::steady_timer changed;     ///< cancelled whenever a worker may find work
    asio::steady_timer record_wake; ///< cancelled when there is something to record, or at the end
    asio::steady_timer watch;       ///< waited on until the download is cancelled or ends
    std::size_t slots = 0;          ///< workers still running
    bool finished = false;
    errc failure = errc::all_sources_failed;
    std::string failure_message; ///< set when the download as a whole failed (a write)
    std::uint64_t verified_bytes = 0;
    std::uint64_t in_flight_bytes = 0;
    std::uint64_t received = 0;
    std::uint64_t reported = 0;
    std::uint64_t refetched = 0;
    unsigned connections = 0;   ///< new connections opened
    std::uint64_t piece_us = 0; ///< time spent on the verified pieces, from request to hash
    std::size_t timed_pieces = 0;
    std::uint32_t last_peer = 0;
    std::string last_source;

    explicit download_state(asio::any_io_executor ex)
        : executor(ex),
          changed(ex, asio::steady_timer::time_point::max()),
          record_wake(ex, asio::steady_timer::time_point::max()),
          watch(ex, asio::steady_timer::time_point::max()) {}

    piece_span span(std::size_t piece) const {
        const auto offset = std::min(size, piece * piece_length);
        return {offset, std::min(piece_length, size - offset)};
    }

    void notify() {
        changed.cancel();
        for (auto& s : sources)
            if (s->wake) s->wake->cancel();
    }

    /// How long a piece is in flight before an idle source fetches a second copy (end-game):
    /// twice the mean time of the pieces verified so far, within [20 ms, 2 s]; 250 ms before
    /// the first. A piece about to arrive, such as a small file's only one, is not asked for
    /// twice, and a stalled one is soon.
    std::uint64_t copy_after() const {
        if (timed_pieces == 0) return 250'000;
        return std::clamp<std::uint64_t>(2 * piece_us / timed_pieces, 20'000, 2'000'000);
    }

    /// The time one piece is expected to take: the mean so far, or half the first `copy_after`.
    std::uint64_t piece_estimate() const {
        return timed_pieces == 0 ? 125'000 : piece_us / timed_pieces;
    }

    std::size_t active() const {
        std::size_t n = 0;
        for (const auto& s : sources)
            n += s->fetching ? 1 : 0;
        return n;
    }

    void progress(bool force) {
        const auto done = std::min(size, verified_bytes + in_flight_bytes);
        if (!options->on_progress) return;
        if (!force && done - std::min(done, reported) < 64 * 1024 && done != size) return;
        reported = done;
        TransferProgress p{name, done, size, active(), last_peer, last_source};
        options->on_progress(p);
    }

    /// Ends the download: every worker leaves, pieces in flight are dropped.
    void finish() {
        if (finished) return;
        finished = true;
        for (auto& s : sources) {
            // A piece in flight is dropped with its connection; an idle connection is kept.
            if (!s->fetching) continue;
            s->stop = true;
            if (s->stream) s->stream->cancel();
        }
        notify();
        record_wake.cancel();
    }

    void fail(errc code, std::string message) {
        if (failure_message.empty()) {
            failure = code;
            failure_message = std::move(message);
        }
        finish();
    }

    /// The next source not used yet and not banned (by its piece hashes); once none is left, one
    /// that gave way to a faster one (first benched, first back); else nullptr.
    source_ctx* take_source() {
        while (next_source < sources.size()) {
            auto* s = sources[next_source++].get();
            if (!s->report.banned) return s;
        }
        for (auto* s : benched_order) {
            if (!s->benched) continue;
            s->benched = false;
            s->report.failure.clear();
            return s;
        }
        return nullptr;
    }

    /// Whether a source not used yet (and not banned) is left.
    bool unused_left() const {
        for (auto i = next_source; i < sources.size(); ++i)
            if (!sources[i]->report.banned) return true;
        return false;
    }

    /// Whether `s` runs far below the fastest source measured (slow_ratio) while a source not
    /// used yet could take its place: then it gives way (its run goes back to the others).
    bool should_give_way(const source_ctx& s, std::uint64_t now) const {
        if (s.giving_way || finished || give_ways_left == 0 || !unused_left()) return false;
        const auto mine = s.speed(now);
        if (!mine) return false;
        return fastest_other(s, now) > slow_ratio * *mine;
    }

    /// The speed of the fastest source other than `s` that is served now (one that left, was
    /// banned or gave way does not count), in bytes per second; 0 if none is measured yet.
    double fastest_other(const source_ctx& s, std::uint64_t now) const {
        double best = 0;
        for (const auto& o : sources)
            if (o.get() != &s && o->serving && !o->giving_way && !o->report.banned)
                best = std::max(best, o->speed(now).value_or(0.0));
        return best;
    }

    /// `s` verified `piece` first. The other copies still arriving are dropped (their
    /// connections with them); one already received is found to have lost when it is checked.
    void claim(source_ctx& s, std::size_t piece) {
        for (const auto other : picker.complete(s.id, piece)) {
            auto& o = *sources[other];
            if (!o.fetching || o.current != piece) continue;
            o.stop = true;
            if (o.stream) o.stream->cancel();
        }
    }

    /// `piece`, claimed by `s`, is in the file.
    void stored(source_ctx& s, std::size_t piece) {
        const auto len = span(piece).length;
        verified[piece] = true;
        verified_bytes += len;
        s.report.bytes += len;
        ++s.report.pieces;
        ++unrecorded;
        record_wake.cancel();
        notify();
        if (std::all_of(verified.begin(), verified.end(), [](bool v) { return v; })) finish();
    }
};

void source_ctx::on_bytes(std::size_t n) {
    d->in_flight_bytes += n;
    d->received += n;
    got += n;
    const auto now = now_us();
    if (first_byte_us == 0 && fetching) first_byte_us = std::max<std::uint64_t>(1, now - asked_at);
    if (d->should_give_way(*this, now)) {
        // The transfer in progress ends after this chunk; serve() sees giving_way and leaves.
        giving_way = true;
        --d->give_ways_left; // (counted when decided: two sources cannot both take the last)
        stop = true;
    }
    d->last_peer = src.peer;
    d->last_source = key;
    d->progress(false);
}

/// Makes the record durable: the data of the pieces first, then the record slot naming them.
int sync_and_record(int fd, int record_fd, std::uint64_t offset, std::string bytes) {
    if (::fdatasync(fd) != 0) return errno;
    int error = 0;
    if (!write_all(record_fd, bytes.data(), bytes.size(), offset, error)) return error;
    if (::fdatasync(record_fd) != 0) return errno;
    return 0;
}

/// Records verified pieces as they come, one write at a time, until the download ends.
asio::awaitable<void> recorder(std::shared_ptr<download_state> d) {
    co_await asio::this_coro::throw_if_cancelled(false);
    for (;;) {
        if (d->unrecorded > 0 && d->record && !d->record_failed) {
            d->unrecorded = 0;
            auto w = d->record->update(d->verified);
            const int error = co_await run_blocking(d->blocking, &sync_and_record, d->fd,
                                                    d->record_fd, w.offset, std::move(w.bytes));
            if (error != 0) {
                // The download goes on; a later run just keeps fewer pieces.
                d->record_failed = true;
                log().warn("{}: cannot record the verified pieces: {}", d->name, errno_text(error));
            }
            continue;
        }
        if (d->finished && d->slots == 0) co_return;
        co_await d->record_wake.async_wait(use_tuple);
    }
}

/// What became of `piece` of `length` bytes, received from `s` (asked for at `since`) and
/// checked: stored in the file when `right`, else `s` is banned for this file (and the piece it
/// receives now, if any, dropped); an `error` of the write ends the download.
void settle(download_state& d, source_ctx& s, std::size_t piece, std::uint64_t length,
            std::uint64_t since, const store_result& r) {
    d.in_flight_bytes -= std::min(d.in_flight_bytes, length);
    if (r.error != 0) {
        d.picker.release(s.id, piece);
        d.fail(errc::io_error, "cannot write the file: " + errno_text(r.error));
        return;
    }
    if (r.right) {
        // (Also a piece of a run whose source was banned meanwhile, by an earlier piece: its
        // bytes hashed right, so they are the file's.)
        if (d.picker.has(piece)) {
            d.picker.release(s.id, piece); // an end-game copy that lost the race
            return;
        }
        d.piece_us += now_us() - since;
        ++d.timed_pieces;
        // In the file already: only verified bytes are written there, and two verified copies
        // are the same bytes.
        d.claim(s, piece);
        d.stored(s, piece);
        d.progress(d.finished);
        return;
    }
    d.picker.release(s.id, piece);
    d.notify();
    if (s.report.banned) return; // a later piece of a run whose source is banned already
    ++d.refetched;
    ++s.report.bad_pieces;
    s.report.banned = true;
    s.report.failure = "piece " + std::to_string(piece) + " failed its hash";
    s.code = errc::hash_mismatch;
    log().warn("{}: {} (peer {}) sent a bad piece {}: banned for this file", d.name, s.key,
               s.src.peer, piece);
    if (s.fetching) {
        s.stop = true;
        if (s.stream) s.stream->cancel();
    }
}

/// A piece received whole, held while the blocking executor checks and writes it.
struct held_piece {
    held_piece(asio::any_io_executor ex, std::size_t size)
        : data(new char[size]), done(ex, asio::steady_timer::time_point::max()) {}
    std::unique_ptr<char[]> data; ///< left uninitialised: only received bytes are read
    asio::steady_timer done;      ///< cancelled when its store ends
    bool busy = false;
    std::size_t piece = 0;
    std::uint64_t since = 0;
};

/// Ends the store of `h`: settles its piece on the download's executor.
void end_store(const std::shared_ptr<download_state>& d, source_ctx& s, held_piece& h,
               store_result r) {
    asio::post(d->executor, [d, &s, &h, r] {
        h.busy = false;
        h.done.cancel();
        settle(*d, s, h.piece, d->span(h.piece).length, h.since, r);
    });
}

/// Checks `h`'s piece on the blocking executor and, if right, writes it there as a second job,
/// so that the next piece is hashed (on the pool's other thread) while this one is written.
/// (Plain functions: their lambdas are not made in a coroutine.)
void start_store(std::shared_ptr<download_state> d, source_ctx& s, held_piece& h) {
    h.busy = true;
    asio::post(d->blocking, [d, &s, &h] {
        const auto sp = d->span(h.piece);
        const auto n = static_cast<std::size_t>(sp.length);
        if (sp.length <= max_one_job_store) {
            // Small: one hop less is worth more than the overlap.
            return end_store(d, s, h,
                             store_piece(d->fd, h.data.get(), n, sp.offset, d->hashes[h.piece]));
        }
        store_result r;
        r.right = sha256_digest(h.data.get(), n) == d->hashes[h.piece];
        if (!r.right) return end_store(d, s, h, r);
        asio::post(d->blocking, [d, &s, &h, n, at = sp.offset, r]() mutable {
            write_all(d->fd, h.data.get(), n, at, r.error);
            end_store(d, s, h, r);
        });
    });
}

/// Waits until `h` is free, whatever cancellation comes meanwhile: its bytes must outlive the
/// store.
asio::awaitable<void> free_held(held_piece& h) {
    while (h.busy)
        co_await h.done.async_wait(use_tuple);
}

/// Opens a connection to `s`: an idle one from the pool, else a new one.
asio::awaitable<bool> ensure_connected(download_state& d, source_ctx& s) {
    if (s.stream) co_return true;
    if (auto kept = d.pool->take(s.pool_key)) {
        s.stream.emplace(std::move(*kept));
        s.reused = true;
        s.buffer.clear();
        co_return true;
    }
    // A source that serves over TLS must show exactly the certificate the index gave.
    std::optional<tls_expectation> tls;
    if (!s.src.cert_sha256.empty()) tls = tls_expectation{pinned_tls_client(), s.src.cert_sha256};
    auto connected = co_await async_open(d.executor, s.src.host, s.src.port,
                                         d.options->connect_timeout, tls ? &*tls : nullptr);
    if (!connected) {
        const auto& e = connected.error();
        s.report.failure = e.code == make_error_code(errc::tls_failed)
                               ? e.message
                               : "cannot connect: " + e.code.message();
        s.code = e.code == make_error_code(errc::tls_failed) ? errc::tls_failed : errc::unreachable;
        co_return false;
    }
    s.stream.emplace(std::move(*connected));
    s.reused = false;
    s.buffer.clear();
    ++d.connections;
    co_return true;
}

/// `s` leaves for a source not used yet: it is far slower than the fastest. Once its worker is
/// done with it (slot()), it is benched, to be used again only if every source not used yet is
/// gone.
void give_way(download_state& d, source_ctx& s, std::uint64_t now) {
    const auto best = d.fastest_other(s, now);
    const auto mine = s.speed(now).value_or(0.0);
    if (!s.giving_way) --d.give_ways_left; // (decided here, not as its bytes arrived)
    s.giving_way = false;
    s.gave_way = true;
    const auto kib = [](double v) { return std::to_string(static_cast<std::uint64_t>(v / 1024)); };
    s.report.failure = "far slower than the fastest source (" + kib(mine) + " KiB/s against " +
                       kib(best) + " KiB/s): replaced by a source not used yet";
    log().info("{}: {} (peer {}) left: {}", d.name, s.key, s.src.peer, s.report.failure);
}

/// Fetches pieces from `s` until it has no more to give or the download ends.
asio::awaitable<void> serve(std::shared_ptr<download_state> d, source_ctx& s,
                            asio::cancellation_state cancel) {
    s.report.peer = s.src.peer;
    s.report.address = s.key;
    // Buffers for the largest piece of this file (a small file's only piece is its size).
    const auto largest =
        static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min(d->piece_length, d->size)));
    // Pieces held in memory: while one arrives, the ones before it are hashed and written on
    // the blocking executor. A deep queue keeps the source sending through the pauses of the
    // threads that hash and write (measured with one source, 1 GiB into tmpfs on two cores:
    // 1.74-1.95 s with 3 pieces held, 1.35-1.54 s with 12, no gain beyond): up to
    // held_bytes_per_download shared among the workers, at least two pieces each.
    std::vector<std::unique_ptr<held_piece>> held;
    if (d->in_memory) {
        const auto workers = std::max<std::size_t>(1, d->slots);
        const std::size_t n =
            std::min(std::clamp<std::size_t>(held_bytes_per_download / (largest * workers), 2, 16),
                     d->picker.size());
        for (std::size_t i = 0; i < n; ++i)
            held.push_back(std::make_unique<held_piece>(d->executor, largest));
    }
    std::size_t next_held = 0;
    // Pieces held in memory are asked for in runs of consecutive wanted pieces of up to 4 MiB,
    // one request each: the source sends without a pause between them.
    const std::size_t max_run = held.empty() ? 1 : std::max<std::size_t>(1, (4u << 20) / largest);
    const auto step = std::min(largest, std::max<std::size_t>(d->options->buffer_size, 4096));
    std::unique_ptr<char[]> chunks(d->in_memory ? nullptr : new char[2 * step]);
    const auto over = [&] { return d->finished || cancelled(cancel) || s.report.banned; };
    for (;;) {
        if (over()) break;
        if (!held.empty()) {
            co_await free_held(*held[next_held]);
            if (over()) break;
        }
        const auto now = now_us();
        if (s.giving_way || d->should_give_way(s, now)) {
            give_way(*d, s, now);
            break;
        }
        const auto piece = d->picker.pick(s.id, now, d->copy_after());
        if (!piece) {
            if (d->picker.done()) break;
            if (const auto at = d->picker.next_copy(s.id, d->copy_after())) {
                // An end-game copy becomes due then, unless something changes first.
                if (!s.wake) s.wake.emplace(d->executor);
                s.wake->expires_at(asio::steady_timer::time_point(std::chrono::microseconds(*at)));
                co_await s.wake->async_wait(use_tuple);
            } else {
                co_await d->changed.async_wait(use_tuple);
            }
            continue;
        }
        // A wanted piece (not an end-game copy) starts a run of the wanted pieces after it, of
        // no more than this worker's share of them: the other workers find work too.
        std::size_t run = 1;
        if (d->picker.copies(*piece) == 1) {
            const auto share =
                (d->picker.wanted() + 1 + d->slots - 1) / std::max<std::size_t>(1, d->slots);
            // Each is expected once the ones before it are in: an end-game copy of it is judged
            // from then, not from the request.
            const auto each = d->piece_estimate();
            while (run < std::min(max_run, share) &&
                   d->picker.take(s.id, *piece + run, now + run * each))
                ++run;
        }
        s.since = now;
        const auto first = d->span(*piece);
        const auto last = d->span(*piece + run - 1);
        const auto release_from = [&](std::size_t i) {
            for (; i < run; ++i)
                d->picker.release(s.id, *piece + i);
            d->notify();
        };
        if (!co_await ensure_connected(*d, s)) {
            release_from(0);
            break;
        }
        if (over()) { // (ended while it connected: finish() found it not fetching)
            release_from(0);
            break;
        }
        s.stop = false;
        s.fetching = true;
        s.asked_at = now_us();
        s.current = *piece;
        piece_request req{d->target,        s.src.host,   d->etag,
                          d->size,          first.offset, last.offset + last.length - first.offset,
                          d->hashes[*piece]};
        piece_outcome out;
        std::size_t done = 0; // pieces of the run received whole
        if (held.empty()) {
            out = co_await fetch_piece(*s.stream, s.buffer, req, d->fd, d->blocking,
                                       d->options->stall_timeout, std::span(chunks.get(), step),
                                       std::span(chunks.get() + step, step), s.stop, s, d->rate);
            done = out.status == piece_status::verified || out.status == piece_status::bad_piece
                       ? 1
                       : 0;
        } else {
            out = co_await request_range(*s.stream, s.buffer, req, d->options->stall_timeout);
            while (out.status == piece_status::verified && done < run) {
                auto& h = *held[next_held];
                co_await free_held(h); // (the source waits meanwhile: TCP's window)
                const auto k = *piece + done;
                if (done > 0) {
                    if (d->picker.has(k)) {
                        // An end-game copy from another source won it: the rest of the run is
                        // dropped with the connection rather than received for nothing.
                        out = body_broken_off(std::move(out), {}, true, 0, 0);
                        break;
                    }
                    d->picker.started(s.id, k, now_us());
                }
                const auto sp = d->span(k);
                s.current = k;
                auto [ec, n] = co_await receive_body(*s.stream, s.buffer, h.data.get(), sp.length,
                                                     d->options->stall_timeout, s.stop, s, d->rate);
                // (A piece that arrived whole is kept even if `stop` came with its last bytes.)
                if (ec || n < sp.length) {
                    out = body_broken_off(std::move(out), ec, s.stop, n, sp.length);
                    break;
                }
                h.piece = *piece + done;
                h.since = s.since;
                s.since = now_us();
                ++done;
                if (d->memory_fs && sp.length <= max_inline_store) {
                    // Cheaper here than a hop to the blocking executor and back.
                    settle(*d, s, h.piece, sp.length, h.since,
                           store_piece(d->fd, h.data.get(), static_cast<std::size_t>(sp.length),
                                       sp.offset, d->hashes[h.piece]));
                } else {
                    start_store(d, s, h);
                    next_held = (next_held + 1) % held.size();
                }
            }
        }
        s.fetching = false;
        s.busy_us += now_us() - std::min(now_us(), s.asked_at);
        const bool reused = s.reused;
        s.reused = false;
        if (done == run) {
            // A whole answer: the connection may carry the next request.
            s.failures = 0;
            if (!out.keep_alive) s.stream.reset();
            if (held.empty()) {
                settle(*d, s, *piece, first.length, s.since,
                       store_result{out.status == piece_status::verified, 0});
            }
            continue;
        }
        release_from(done);
        d->in_flight_bytes -= std::min(d->in_flight_bytes, out.received);
        // A refusal read to its end leaves the connection usable (kept in the pool below).
        if (out.status != piece_status::refused || !out.keep_alive) s.stream.reset();
        if (out.status == piece_status::interrupted) {
            if (over()) break;
            continue; // its copy was no longer needed: on to the next piece
        }
        if (out.status == piece_status::io_error) {
            d->fail(errc::io_error, out.message);
            break;
        }
        ++d->refetched;
        if (out.status == piece_status::transport && reused && !out.answered) {
            // An idle connection the source had closed: once more on a new one.
            --d->refetched;
            continue;
        }
        s.report.failure = out.message;
        if (out.status == piece_status::refused) {
            s.code = out.status_code == 404 ? errc::not_found : errc::bad_response;
            if (out.status_code == 412) s.code = errc::hash_mismatch;
            log().info("{}: {} (peer {}) left: {}", d->name, s.key, s.src.peer, out.message);
            break;
        }
        s.code = out.status == piece_status::stalled     ? errc::timeout
                 : out.status == piece_status::truncated ? errc::size_mismatch
                                                         : errc::unreachable;
        if (out.status != piece_status::transport || ++s.failures >= 2) {
            log().info("{}: {} (peer {}) left: {}", d->name, s.key, s.src.peer, out.message);
            break;
        }
    }
    // The pieces held are settled before the buffers go.
    for (auto& x : held)
        co_await free_held(*x);
    // What is left is a connection whose last answer ended cleanly: kept for the next pieces or
    // downloads.
    if (s.stream) {
        if (s.stream->socket().is_open()) d->pool->put(s.pool_key, std::move(*s.stream));
        s.stream.reset();
    }
}

/// A worker: serves one source after another until none is left or the download ends.
asio::awaitable<void> slot(std::shared_ptr<download_state> d) {
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto cancel = co_await asio::this_coro::cancellation_state;
    while (!d->finished && !cancelled(cancel)) {
        auto* s = d->take_source();
        if (!s) break;
        s->serving = true;
        co_await serve(d, *s, cancel);
        s->serving = false;
        if (s->gave_way) {
            // Only now may another worker take it back: serve() has put its connection away.
            s->gave_way = false;
            s->benched = true;
            if (std::find(d->benched_order.begin(), d->benched_order.end(), s) ==
                d->benched_order.end())
                d->benched_order.push_back(s);
        }
    }
    if (--d->slots == 0) {
        // The last worker: whatever is missing now stays missing.
        d->finished = true;
        d->record_wake.cancel();
        d->watch.cancel();
    } else {
        d->notify(); // a worker waiting for pieces in flight here may take them now
    }
}

/// Turns a cancellation of the download into the end of every piece in flight: the streams are
/// cancelled directly, as a per-operation cancellation of a read on a beast::tcp_stream is not
/// always seen (Boost 1.81).
asio::awaitable<void> watcher(std::shared_ptr<download_state> d) {
    co_await asio::this_coro::throw_if_cancelled(false);
    if (d->slots > 0) co_await d->watch.async_wait(use_tuple);
    d->finish();
}

/// The piece hashes from the sources, checked against the root: each source is asked in turn
/// until one answers with the right ones. A source whose hashes do not make the root is banned.
/// One source's part of fetch_hashes(): its piece hashes, checked against `root`, into
/// `d.hashes`; false when it has none to give (the reason in its report, a bad list banning it)
/// or when its request was cancelled.
asio::awaitable<bool> fetch_hashes_from(download_state& d, source_ctx& s, const digest& root,
                                        std::size_t& mismatches) {
    const auto count = piece_count_for(d.size);
    const std::string target = "/v1/pieces/" + percent_encode(d.name);
    s.report.peer = s.src.peer;
    s.report.address = s.key;
    for (int round = 0; round < 2; ++round) {
        if (!co_await ensure_connected(d, s)) break;
        const bool reused = s.reused;
        s.reused = false;
        client_request req{http::verb::get, target, 11};
        req.set(http::field::host, s.src.host);
        req.set(http::field::user_agent, "p2pshare");
        req.set(http::field::if_match, d.etag);
        req.keep_alive(true);
        s.stream->expires_after(d.options->stall_timeout);
        http::response_parser<http::string_body> parser;
        parser.body_limit(count * 32);
        parser.header_limit(16 * 1024);
        auto [wec, wn] = co_await http::async_write(*s.stream, req, use_tuple);
        boost::system::error_code ec = wec;
        if (!ec) {
            auto [rec, rn] = co_await http::async_read(*s.stream, s.buffer, parser, use_tuple);
            ec = rec;
        }
        if (ec == asio::error::operation_aborted) {
            s.stream.reset(); // cut off mid-answer: not reusable
            co_return false;
        }
        if (ec) {
            s.stream.reset();
            if (reused && !parser.is_header_done()) continue; // a stale idle connection
            s.report.failure = ec == http::error::body_limit
                                   ? "its piece hashes are longer than the file's pieces"
                                   : "cannot fetch the piece hashes: " + ec.message();
            s.code = ec == http::error::body_limit ? errc::bad_response : errc::unreachable;
            if (ec == http::error::body_limit) {
                s.report.banned = true;
                ++mismatches;
            }
            break;
        }
        const auto& res = parser.get();
        if (!res.keep_alive()) s.stream.reset();
        if (res.result_int() != 200) {
            s.report.failure =
                "the piece hashes were refused (" + std::to_string(res.result_int()) + ")";
            s.code = res.result_int() == 404 ? errc::not_found : errc::bad_response;
            break;
        }
        auto hashes = decode_piece_hashes(res.body(), d.size, root);
        if (!hashes) {
            s.report.banned = true;
            s.report.failure =
                hashes.error() == make_error_code(errc::hash_mismatch)
                    ? "its piece hashes do not make the root"
                    : "its piece hashes are not " + std::to_string(count) + " × 32 bytes";
            s.code = static_cast<errc>(hashes.error().value());
            ++mismatches;
            log().warn("{}: {} (peer {}): {}; banned for this file", d.name, s.key, s.src.peer,
                       s.report.failure);
            s.stream.reset();
            break;
        }
        d.hashes = std::move(*hashes);
        if (s.stream) {
            d.pool->put(s.pool_key, std::move(*s.stream));
            s.stream.reset();
        }
        co_return true;
    }
    co_return false;
}

/// The sources asked for piece hashes at once (fetch_hashes), and what they came to.
struct hash_race {
    hash_race(const asio::any_io_executor& ex, std::size_t sources)
        : wake(ex), asking(sources, 0) {}
    asio::steady_timer wake; ///< cancelled when an attempt ends
    std::size_t running = 0;
    bool got = false;
    std::vector<char> asking; ///< per source, whether its attempt runs
};

asio::awaitable<void> hash_attempt(download_state& d, std::size_t i, const digest& root,
                                   std::size_t& mismatches, hash_race& race) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto& s = *d.sources[i];
    try {
        if (co_await fetch_hashes_from(d, s, root, mismatches)) race.got = true;
    } catch (const std::exception& e) {
        s.report.failure = std::string("cannot fetch the piece hashes: ") + e.what();
        s.stream.reset();
    }
    race.asking[i] = 0;
    --race.running;
    race.wake.cancel();
}

/// How long a source asked for the piece hashes may take before the next one is asked too.
std::chrono::milliseconds hash_hedge(const TransferOptions& o) {
    return std::clamp<std::chrono::milliseconds>(
        o.stall_timeout / 8, std::chrono::milliseconds(100), std::chrono::seconds(1));
}

/// The piece hashes of the download, from the first source (in the sources' order) that gives a
/// list making `root`: the next source is asked when the last one asked failed or has not
/// answered within hash_hedge(), so that a frozen source costs a moment, not the stall timeout.
/// The others are cut off once one answered. Cancelled: every request is, and it returns false.
asio::awaitable<bool> fetch_hashes(download_state& d, const digest& root, std::size_t& mismatches) {
    hash_race race(d.executor, d.sources.size());
    const auto hedge = hash_hedge(*d.options);
    std::size_t next = 0;
    bool ask_next = true;
    bool stopped = false;
    for (;;) {
        if (ask_next && !race.got && !stopped && next < d.sources.size()) {
            race.asking[next] = 1;
            ++race.running;
            asio::co_spawn(d.executor, hash_attempt(d, next++, root, mismatches, race),
                           asio::detached);
        }
        if (race.running == 0) break;
        if (race.got || stopped) {
            for (std::size_t i = 0; i < next; ++i)
                if (race.asking[i] != 0 && d.sources[i]->stream) d.sources[i]->stream->cancel();
        }
        race.wake.expires_after(hedge);
        const std::size_t before = race.running;
        auto [ec] = co_await race.wake.async_wait(use_tuple);
        if (cancelled(co_await asio::this_coro::cancellation_state)) stopped = true;
        // A hedge that passed, or an attempt that failed: the next source is asked.
        ask_next = !ec || race.running < before;
    }
    co_return race.got && !stopped;
}

/// Sizes the .part: space for the whole file, reserved where the file system can. On a file
/// system held in memory (tmpfs, ramfs) nothing fragments and a reservation zeroes every page
/// before the writes fill it (0.15 s per GiB here, a seventh of the download): there the free
/// space is checked, and the file only sized.
int preallocate(int fd, std::uint64_t size, bool memory_fs) {
    if (size == 0) return 0;
    if (memory_fs) {
        struct stat st {};
        struct statvfs vfs {};
        if (::fstat(fd, &st) != 0 || ::fstatvfs(fd, &vfs) != 0) return errno;
        const auto have = static_cast<std::uint64_t>(std::max<off_t>(0, st.st_blocks)) * 512;
        const auto free_bytes = std::uint64_t{vfs.f_bavail} * vfs.f_frsize;
        // (ramfs reports no size at all: 0 blocks, and takes what it is given)
        if (vfs.f_blocks != 0 && size > have && size - have > free_bytes) return ENOSPC;
        return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
    }
    const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (rc == 0) return 0;
    if (rc != EOPNOTSUPP && rc != EINVAL) return rc;
    return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
}

/// Which pieces lying wholly within the first `present` bytes of `fd` hash right: a `.part`
/// without a record of its own (left by an older version, or whose record was lost).
std::vector<bool> verify_present(int fd, std::uint64_t size, std::uint64_t piece_length,
                                 std::vector<digest> hashes, std::uint64_t present) {
    std::vector<bool> good(hashes.size(), false);
    std::vector<char> buffer(1 << 20);
    for (std::size_t i = 0; i < hashes.size(); ++i) {
        const auto offset = std::min(size, i * piece_length);
        const auto length = std::min(piece_length, size - offset);
        if (length == 0 || offset + length > present) break;
        sha256 h;
        std::uint64_t at = offset;
        bool read = true;
        while (at < offset + length) {
            const auto want = static_cast<std::size_t>(
                std::min<std::uint64_t>(buffer.size(), offset + length - at));
            const auto n = ::pread(fd, buffer.data(), want, static_cast<off_t>(at));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                read = false;
                break;
            }
            h.update(buffer.data(), static_cast<std::size_t>(n));
            at += static_cast<std::uint64_t>(n);
        }
        if (!read) break;
        digest d;
        h.digest_into(d.data());
        good[i] = d == hashes[i];
    }
    return good;
}

/// The whole record file, or "" when it cannot be read.
std::string read_all(int fd, std::size_t limit) {
    std::string out(limit + 1, '\0');
    std::size_t got = 0;
    while (got < out.size()) {
        const auto n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

} // namespace

FileTransfer::FileTransfer(asio::any_io_executor executor, std::filesystem::path folder,
                           TransferOptions options)
    : executor_(std::move(executor)),
      folder_(std::move(folder)),
      options_(std::move(options)),
      pool_(std::make_shared<connection_pool>(executor_, options_.idle_timeout, 4)),
      download_rate_(std::make_shared<rate_limiter>(options_.max_download_rate)) {
    prepare_openssl();
    if (!options_.blocking_executor) options_.blocking_executor = default_blocking_executor();
}

FileTransfer::~FileTransfer() = default;

std::size_t FileTransfer::idle_connections() const noexcept { return pool_ ? pool_->idle() : 0; }
FileTransfer::FileTransfer(FileTransfer&&) noexcept = default;
FileTransfer& FileTransfer::operator=(FileTransfer&&) noexcept = default;

asio::awaitable<TransferResult> FileTransfer::async_download(std::string name,
                                                             std::vector<FileSource> sources) {
    // Every step of the download runs on the transfer's executor, which is serial. Cancelled, it
    // ends with operation_aborted (the .part and its record stay, for a later run).
    co_return co_await run_on(executor_, download(std::move(name), std::move(sources)));
}

asio::awaitable<TransferResult> FileTransfer::download(std::string name,
                                                       std::vector<FileSource> sources) {
    // Cancellation is seen as errors of the steps, not exceptions: every step, and the writes
    // beside it, end before the download does.
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto cancel = co_await asio::this_coro::cancellation_state;
    const auto started = std::chrono::steady_clock::now();
    TransferResult r;
    r.name = name;
    const auto elapsed = [&] {
        return std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
    };
    const auto finish = [&](errc code, std::string message) {
        r.error = make_error_code(code);
        r.message = std::move(message);
        r.elapsed = elapsed();
        return r;
    };
    if (const auto problem = file_name_problem(name); !problem.empty()) {
        co_return finish(errc::bad_name, std::string(problem));
    }
    if (sources.empty()) co_return finish(errc::no_sources, "no peer shares " + name);

    // Sources grouped by content: the largest group (ties at random) is used, so that the bytes
    // of two versions are never mixed.
    std::shuffle(sources.begin(), sources.end(), rng());
    std::map<std::tuple<std::uint64_t, std::string, std::string>, std::vector<FileSource>> groups;
    for (auto& s : sources)
        groups[{s.size, s.sha256, s.root}].push_back(std::move(s));
    auto best = groups.begin();
    for (auto it = groups.begin(); it != groups.end(); ++it)
        if (it->second.size() > best->second.size()) best = it;
    sources = std::move(best->second);
    const auto size = sources.front().size;
    const auto sha = digest_from_hex(sources.front().sha256);
    const auto root_hex = sources.front().root;
    std::optional<digest> root;
    if (!root_hex.empty()) root = digest_from_hex(root_hex);
    if (!sha || (!root_hex.empty() && !root)) {
        co_return finish(errc::bad_response, "the index gave a malformed hash for " + name);
    }

    auto d = std::make_shared<download_state>(executor_);
    d->blocking = *options_.blocking_executor;
    d->options = &options_;
    d->pool = pool_.get();
    d->rate = download_rate_.get();
    d->name = name;
    d->target = "/v1/files/" + percent_encode(name);
    d->etag = "\"" + sources.front().sha256 + "\"";
    d->size = size;
    for (auto& s : sources) {
        auto ctx = std::make_unique<source_ctx>();
        ctx->key = to_string(ServerAddress{s.host, s.port, !s.cert_sha256.empty()});
        // A kept connection was checked against one certificate: only that one may reuse it.
        ctx->pool_key = s.cert_sha256.empty() ? ctx->key : ctx->key + "#" + s.cert_sha256;
        ctx->src = std::move(s);
        ctx->id = d->sources.size();
        ctx->d = d.get();
        d->sources.push_back(std::move(ctx));
    }
    const auto report = [&] {
        for (const auto& s : d->sources)
            if (!s->report.address.empty()) r.sources.push_back(s->report);
        std::uint64_t most = 0;
        for (const auto& s : r.sources) {
            if (s.bytes > most) {
                most = s.bytes;
                r.source_peer = s.peer;
                r.source = s.address;
            }
        }
        if (r.source.empty() && !d->sources.empty()) {
            // No byte came from anyone (an empty file, or every piece kept): the first asked.
            r.source_peer = d->sources.front()->src.peer;
            r.source = d->sources.front()->key;
        }
        r.received = d->received;
        r.refetched = d->refetched;
        r.end_game_copies = d->picker.duplicates();
        r.connections = d->connections;
    };

    // The pieces: by the rule of docs/protocol.md where the index gave a root, else the whole
    // file as one piece checked against its SHA-256.
    if (root) {
        d->piece_length = piece_size_for(size);
        if (piece_count_for(size) == 1 && *root != *sha) {
            co_return finish(errc::bad_response,
                             "the sources' root and SHA-256 of a one-piece file differ");
        }
    } else {
        d->piece_length = std::max<std::uint64_t>(size, 1);
    }
    const auto count = root ? piece_count_for(size) : 1;
    r.pieces = count;
    r.size = size;

    unique_fd dir(::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        co_return finish(errc::io_error,
                         "cannot open the folder " + folder_.string() + ": " + errno_text(errno));
    }
    struct stat st {};
    if (!options_.overwrite && ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        co_return finish(errc::exists, name + " already exists in " + folder_.string());
    }
    const std::string part = side_name(name, part_suffix);
    const std::string record_name = side_name(name, pieces_suffix);
    unique_fd fd(
        ::openat(dir.get(), part.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) co_return finish(errc::io_error, "cannot open " + part + ": " + errno_text(errno));
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        co_return finish(errc::io_error, part + " is not a regular file");
    }
    // One download of a name at a time, in this process or any other.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        co_return finish(errc::exists, name + " is being downloaded already");
    }
    d->fd = fd.get();
    d->memory_fs = on_memory_fs(fd.get());

    if (count > 1) {
        std::size_t mismatches = 0;
        const bool got = co_await fetch_hashes(*d, *root, mismatches);
        if (cancelled(cancel)) {
            report();
            r.error = asio::error::operation_aborted;
            r.message = "the download was cancelled";
            r.elapsed = elapsed();
            co_return r;
        }
        if (!got) {
            report();
            if (d->sources.size() == 1) {
                co_return finish(d->sources[0]->code, d->sources[0]->report.failure);
            }
            co_return finish(mismatches > 0 ? errc::hash_mismatch : errc::all_sources_failed,
                             "no source gave piece hashes that make the root");
        }
    } else {
        d->hashes = {*sha};
    }

    // What an earlier run verified, if its record is of this content. A file of one piece has
    // no record: there is nothing to keep of it but the whole, which is checked.
    unique_fd record_fd;
    // Pieces up to 32 MiB are received into memory and written once verified, so end-game
    // copies of a piece may race. A larger one (the whole file, from a source that gave no root)
    // is written as it comes: one copy in flight at a time.
    d->in_memory = d->piece_length <= max_piece_in_memory;
    d->picker = piece_picker(static_cast<std::size_t>(count), d->in_memory ? 2 : 1);
    d->verified.assign(static_cast<std::size_t>(count), false);
    std::optional<std::vector<bool>> kept;
    if (count > 1) {
        record_fd.reset(::openat(dir.get(), record_name.c_str(),
                                 O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!record_fd) {
            co_return finish(errc::io_error,
                             "cannot open " + record_name + ": " + errno_text(errno));
        }
        d->record_fd = record_fd.get();
        d->record.emplace(size, d->piece_length, count, *sha, root.value_or(digest{}));
        if (::fstat(fd.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == size) {
            kept = d->record->read(read_all(record_fd.get(), d->record->file_size()));
        }
    } else if (::fstat(fd.get(), &st) != 0) {
        co_return finish(errc::io_error, errno_text(errno));
    }
    const bool recorded = kept.has_value();
    if (!kept && st.st_size > 0) {
        // A .part without a (valid) record: its pieces are checked, not trusted.
        kept = co_await run_blocking(d->blocking, &verify_present, fd.get(), size, d->piece_length,
                                     d->hashes, static_cast<std::uint64_t>(st.st_size));
    }
    if (kept) {
        for (std::size_t i = 0; i < count; ++i) {
            if (!(*kept)[i]) continue;
            d->picker.have(i);
            d->verified[i] = true;
            d->verified_bytes += d->span(i).length;
        }
        r.resumed_from = d->verified_bytes;
    }
    if (!recorded) {
        // A new record (so that no stale bit can name other bytes), naming what was checked
        // above, then the file's space.
        int error = 0;
        if (d->record) {
            const auto initial = d->record->initial();
            const auto update = d->record->update(d->verified);
            if (::ftruncate(record_fd.get(), 0) != 0 ||
                !write_all(record_fd.get(), initial.data(), initial.size(), 0, error) ||
                !write_all(record_fd.get(), update.bytes.data(), update.bytes.size(), update.offset,
                           error)) {
                co_return finish(errc::io_error, "cannot start " + record_name + ": " +
                                                     errno_text(error != 0 ? error : errno));
            }
        }
        if (static_cast<std::uint64_t>(st.st_size) > size &&
            ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
            co_return finish(errc::io_error, "cannot start " + part + ": " + errno_text(errno));
        }
        // A file of one piece is written at once, by one write that fails as early as the
        // reservation would: it is not reserved first.
        if (const int e = count == 1 ? 0
                                     : co_await run_blocking(d->blocking, &preallocate, fd.get(),
                                                             size, d->memory_fs);
            e != 0) {
            co_return finish(errc::io_error, "cannot make room for " + name + ": " + errno_text(e));
        }
    }
    // An empty file has one empty piece, verified here.
    if (size == 0 && !d->picker.done()) {
        if (sha256_digest("", 0) != *sha) {
            co_return finish(errc::hash_mismatch, "the announced SHA-256 is not that of no bytes");
        }
        d->picker.have(0);
        d->verified[0] = true;
    }

    if (!d->picker.done()) {
        const auto wanted =
            std::clamp<std::size_t>(options_.sources, 1, TransferOptions::max_sources);
        // One worker per piece and one more, at most: enough for every piece and an end-game
        // copy, and a one-piece file does not start workers with nothing to do.
        const auto workers = std::min({wanted, d->sources.size(), count + 1});
        d->slots = workers;
        // Each worker may replace a slow source once: a network where every new source looks
        // slow at first (long round trips) does not churn through all of them.
        d->give_ways_left = workers;
        using op = decltype(asio::co_spawn(executor_, slot(d), asio::deferred));
        std::vector<op> ops;
        ops.reserve(workers + 2);
        for (std::size_t i = 0; i < workers; ++i)
            ops.push_back(asio::co_spawn(executor_, slot(d), asio::deferred));
        if (d->record) ops.push_back(asio::co_spawn(executor_, recorder(d), asio::deferred));
        ops.push_back(asio::co_spawn(executor_, watcher(d), asio::deferred));
        d->progress(true);
        // Waits for every worker and the recorder, also when cancelled (the group passes the
        // cancellation on).
        co_await asio::experimental::make_parallel_group(std::move(ops))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    }
    report();
    const bool complete =
        std::all_of(d->verified.begin(), d->verified.end(), [](bool v) { return v; });
    if (cancelled(cancel) && !complete) {
        r.error = asio::error::operation_aborted;
        r.message = "the download was cancelled";
        r.elapsed = elapsed();
        co_return r;
    }
    if (!d->failure_message.empty()) co_return finish(d->failure, d->failure_message);
    if (!complete) {
        std::string failures;
        for (const auto& s : r.sources)
            if (!s.failure.empty())
                failures += (failures.empty() ? "" : "; ") + s.address + ": " + s.failure;
        if (d->sources.size() == 1) co_return finish(d->sources[0]->code, failures);
        co_return finish(errc::all_sources_failed, "every source failed: " + failures);
    }

    // Verified: move into place without ever replacing a file unless asked to.
    int rc = 0;
    if (options_.overwrite) {
        rc = ::renameat(dir.get(), part.c_str(), dir.get(), name.c_str());
    } else {
        rc = ::linkat(dir.get(), part.c_str(), dir.get(), name.c_str(), 0);
        if (rc == 0) ::unlinkat(dir.get(), part.c_str(), 0);
    }
    if (rc != 0) {
        const int e = errno;
        co_return finish(e == EEXIST ? errc::exists : errc::io_error,
                         "cannot move " + part + " into place: " + errno_text(e));
    }
    ::unlinkat(dir.get(), record_name.c_str(), 0);
    r.sha256 = to_hex(*sha);
    if (root) {
        r.root = to_hex(*root);
        r.piece_hashes = std::move(d->hashes);
    }
    r.elapsed = elapsed();
    co_return r;
}

} // namespace p2pshare
