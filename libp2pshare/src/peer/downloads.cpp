#include "downloads.hpp"

#include "../blocking.hpp"

#include <p2pshare/names.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <set>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {

struct job {
    std::size_t outcome; ///< its index in the outcomes
    std::vector<FileSource> sources;
    bool attempted = false;
};

/// Everything the workers share; each holds it, so it lives as long as the last of them.
struct work {
    std::vector<DownloadOutcome> outcomes;
    std::vector<job> jobs;
    std::size_t next = 0;
    std::shared_ptr<FileTransfer> transfer;
    std::shared_ptr<shared_folder> folder;
    std::shared_ptr<std::atomic<bool>> stopping;
    std::shared_ptr<peer_metrics> metrics;
};

/// Adds what one download did to `m`.
void count_download(peer_metrics& m, const TransferResult& r) {
    m.received_bytes.add(r.received);
    (r ? m.downloads_ok : m.downloads_failed).add();
    for (const auto& s : r.sources) {
        m.pieces_verified.add(s.pieces);
        m.pieces_failed.add(s.bad_pieces);
        if (s.banned) m.sources_banned.add();
    }
}

void set_error(DownloadOutcome& o, boost::system::error_code ec, std::string message) {
    o.error = ec;
    o.message = std::move(message);
}

asio::awaitable<void> worker(std::shared_ptr<work> w) {
    co_await asio::this_coro::throw_if_cancelled(false);
    while (w->next < w->jobs.size()) {
        if (cancelled(co_await asio::this_coro::cancellation_state) || w->stopping->load()) break;
        auto& j = w->jobs[w->next++];
        j.attempted = true;
        auto& outcome = w->outcomes[j.outcome];
        TransferResult r;
        // On the status page while it runs; the progress callback moves it on.
        std::optional<transfer_board::listed> shown;
        if (w->metrics) {
            w->metrics->downloads_in_flight.add(1);
            shown.emplace(
                w->metrics->transfers,
                transfer_board::entry{
                    false, outcome.name, {}, 0, j.sources.empty() ? 0 : j.sources.front().size});
        }
        try {
            r = co_await w->transfer->async_download(outcome.name, j.sources);
        } catch (const boost::system::system_error& e) {
            r.error = e.code();
            r.message = e.what();
        }
        shown.reset();
        if (w->metrics) {
            w->metrics->downloads_in_flight.add(-1);
            count_download(*w->metrics, r);
        }
        if (cancelled(co_await asio::this_coro::cancellation_state)) {
            set_error(outcome, asio::error::operation_aborted, "the download was cancelled");
            outcome.transfer = std::move(r);
            break;
        }
        if (r) {
            // Remember the verified hashes so that the file is offered at once, without being
            // read again.
            struct stat st {};
            if (::fstatat(w->folder->dir(), outcome.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
                std::shared_ptr<const std::vector<digest>> pieces;
                if (!r.piece_hashes.empty()) {
                    pieces = std::make_shared<const std::vector<digest>>(r.piece_hashes.begin(),
                                                                         r.piece_hashes.end());
                }
                // A file of several pieces was checked piece by piece against its root: its
                // SHA-256 is its sources' word until the folder has hashed it (in the
                // background). A file of one piece was checked whole.
                w->folder->remember(outcome.name, stamp_of(st), r.sha256, r.root, std::move(pieces),
                                    r.piece_hashes.size() <= 1);
            }
        } else {
            set_error(outcome, r.error, r.message);
        }
        outcome.transfer = std::move(r);
    }
}

/// The transfer options of `s`, whose progress also moves the download's entry on the status
/// page (both run on the peer's executor).
TransferOptions with_progress_shown(const downloads::settings& s) {
    auto options = s.transfer;
    if (!s.metrics) return options;
    options.on_progress = [user = s.transfer.on_progress,
                           metrics = s.metrics](const TransferProgress& p) {
        for (auto& e : metrics->transfers.entries) {
            if (e.upload || e.name != p.name) continue;
            e.done = p.done;
            e.total = p.total;
            e.sources = p.sources;
        }
        if (user) user(p);
    };
    return options;
}

} // namespace

downloads::downloads(asio::any_io_executor executor, std::shared_ptr<shared_folder> folder,
                     std::shared_ptr<index_session> session, settings s)
    : executor_(std::move(executor)),
      folder_(std::move(folder)),
      session_(std::move(session)),
      settings_(std::move(s)),
      // One for the peer's life: its idle connections serve the next downloads.
      transfer_(std::make_shared<FileTransfer>(executor_, folder_->path(),
                                               with_progress_shown(settings_))) {}

asio::awaitable<std::vector<DownloadOutcome>> downloads::async_download(
    std::vector<std::string> names, std::shared_ptr<std::atomic<bool>> stopping) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto w =
        std::make_shared<work>(work{{}, {}, 0, transfer_, folder_, stopping, settings_.metrics});
    auto& outcomes = w->outcomes;
    std::set<std::string, std::less<>> seen;
    std::vector<std::string> wanted;
    std::vector<std::size_t> wanted_outcome;
    for (auto& n : names) {
        if (!seen.insert(n).second) continue;
        DownloadOutcome o;
        o.name = n;
        if (const auto problem = file_name_problem(n); !problem.empty()) {
            set_error(o, make_error_code(errc::bad_name), std::string(problem));
        } else {
            wanted.push_back(n);
            wanted_outcome.push_back(outcomes.size());
        }
        outcomes.push_back(std::move(o));
    }
    const auto fail_wanted = [&](boost::system::error_code ec, const std::string& message) {
        for (const auto i : wanted_outcome)
            set_error(outcomes[i], ec, message);
    };
    if (stopping->load()) {
        fail_wanted(make_error_code(errc::shutting_down), "the peer is stopping");
        co_return std::move(outcomes);
    }
    if (wanted.empty()) co_return std::move(outcomes);

    auto looked = co_await session_->async_lookup(wanted);
    if (cancelled(co_await asio::this_coro::cancellation_state)) {
        fail_wanted(asio::error::operation_aborted, "the download was cancelled");
        co_return std::move(outcomes);
    }
    if (!looked) {
        fail_wanted(make_error_code(looked.error().code),
                    "lookup failed: " + looked.error().message);
        co_return std::move(outcomes);
    }
    for (std::size_t i = 0; i < wanted.size(); ++i) {
        std::vector<FileSource> sources;
        for (auto& s : (*looked)[i]) {
            if (s.peer == settings_.id) continue;
            sources.push_back({s.peer, std::move(s.host), s.port, s.size, std::move(s.sha256),
                               std::move(s.root), std::move(s.cert_sha256)});
        }
        if (sources.empty()) {
            set_error(outcomes[wanted_outcome[i]], make_error_code(errc::no_sources),
                      "no other peer shares it");
        } else {
            w->jobs.push_back({wanted_outcome[i], std::move(sources)});
        }
    }

    // Fetch concurrently, at most max_parallel at a time, each worker taking the next job.
    const auto count = std::min(w->jobs.size(), std::max<std::size_t>(settings_.max_parallel, 1));
    if (count > 0) {
        using op = decltype(asio::co_spawn(executor_, worker(w), asio::deferred));
        std::vector<op> workers;
        workers.reserve(count);
        for (std::size_t i = 0; i < count; ++i)
            workers.push_back(asio::co_spawn(executor_, worker(w), asio::deferred));
        // Waits for every worker, also when cancelled (the group passes the cancellation on).
        co_await asio::experimental::make_parallel_group(std::move(workers))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    }
    const bool was_cancelled = cancelled(co_await asio::this_coro::cancellation_state);
    for (const auto& j : w->jobs) {
        auto& o = outcomes[j.outcome];
        if (j.attempted) continue;
        if (was_cancelled) {
            set_error(o, asio::error::operation_aborted, "the download was cancelled");
        } else {
            set_error(o, make_error_code(errc::shutting_down),
                      "not attempted: the peer is stopping");
        }
    }
    co_return std::move(outcomes);
}

} // namespace p2pshare::detail
