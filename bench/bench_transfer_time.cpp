// bench_transfer_time: download times as the original transfer-time.sh measured them: 4
// concurrent peers each downloading five files of 128 B, 512 B, 2 KiB, 8 KiB and 32 KiB, here
// over many repetitions (each downloader downloads the five files, one download call per file,
// then deletes them). Then the throughput of one 1 GiB download on tmpfs, SHA-256 verification
// included.
//
// Everything runs in this process: the index server, the source peer and the downloaders each
// on their own io_context thread, talking over loopback HTTP as separate processes would.
//
// usage: bench_transfer_time [--out DIR | --log FILE] [--repetitions 200] [--big-runs 3]
//                            [--big-dir /dev/shm] [--no-big]
#include "bench_common.hpp"

#include <p2pshare/index_server.hpp>
#include <p2pshare/peer_node.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include <stdlib.h>
#include <sys/statvfs.h>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace p2pshare::bench;

namespace {

constexpr std::array<std::uint64_t, 5> small_sizes{128, 512, 2048, 8192, 32768};
constexpr double original_best_ms = 13.0; // the original: 13-220 ms for 128 B..32 KB

/// One io_context run by its own thread until destroyed.
struct io_thread {
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
        asio::make_work_guard(io)};
    std::thread thread{[this] { io.run(); }};
    ~io_thread() {
        work.reset();
        io.stop();
        thread.join();
    }
    template <class T>
    T run(asio::awaitable<T> op) {
        return asio::co_spawn(io, std::move(op), asio::use_future).get();
    }
    void run(asio::awaitable<void> op) {
        asio::co_spawn(io, std::move(op), asio::use_future).get();
    }
};

/// filegen's naming: the largest binary unit that divides the size, then "-1.txt".
std::string file_name(std::uint64_t size) {
    if (size % (1u << 30) == 0) return std::to_string(size >> 30) + "GiB-1.txt";
    if (size % (1u << 20) == 0) return std::to_string(size >> 20) + "MiB-1.txt";
    if (size % 1024 == 0) return std::to_string(size >> 10) + "KiB-1.txt";
    return std::to_string(size) + "B-1.txt";
}

std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/// Random printable ASCII as filegen writes it, in 1 MiB chunks (never the whole file in memory).
void generate(const fs::path& file, std::uint64_t size, std::uint64_t seed) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + file.string());
    std::vector<char> chunk(1 << 20);
    std::uint64_t state = seed;
    for (std::uint64_t left = size; left > 0;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
        for (std::size_t i = 0; i < n; i += 8) {
            auto v = splitmix64(state);
            for (std::size_t j = i; j < std::min(n, i + 8); ++j, v >>= 8) {
                chunk[j] = static_cast<char>(32 + (v & 0xff) % 95);
            }
        }
        out.write(chunk.data(), static_cast<std::streamsize>(n));
        left -= n;
    }
    if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
}

fs::path make_temp_dir(const fs::path& under) {
    std::string pattern = (under / "p2pshare-bench.XXXXXX").string();
    if (!::mkdtemp(pattern.data())) {
        throw std::runtime_error("cannot create a folder under " + under.string());
    }
    return pattern;
}

/// Removes a folder tree when it goes out of scope.
struct scoped_dir {
    fs::path path;
    ~scoped_dir() {
        std::error_code ec;
        if (!path.empty()) fs::remove_all(path, ec);
    }
};

std::unique_ptr<p2pshare::PeerNode> make_peer(io_thread& t, std::uint32_t id,
                                              const fs::path& folder, const fs::path& config_dir,
                                              std::uint16_t index_port) {
    p2pshare::PeerOptions o;
    o.id = id;
    o.folder = folder;
    o.config_file = config_dir / ("p" + std::to_string(id) + ".config");
    o.index = {p2pshare::ServerAddress{"127.0.0.1", index_port}};
    // t.io is run by its thread only: its executor is serial, as the peer requires.
    auto node = std::make_unique<p2pshare::PeerNode>(t.io.get_executor(), o);
    if (const auto ec = t.run(node->async_start())) {
        throw std::runtime_error("peer " + std::to_string(id) + " did not start: " + ec.message);
    }
    return node;
}

struct samples {
    std::vector<double> transfer_us; ///< transfer_result.elapsed
    std::vector<double> wall_us; ///< the whole async_download call (lookup, fetch, index update)
};

struct downloader_stats {
    std::map<std::uint64_t, samples> by_size;
    std::size_t failures = 0;
    std::size_t retried = 0;       ///< downloads that fetched a piece more than once
    std::size_t from_original = 0; ///< downloads served by the source peer (others: downloaders)
    std::string last_failure;
};

/// One downloader: `reps` times, downloads each small file (one call per file), then deletes them.
asio::awaitable<void> download_loop(p2pshare::PeerNode& node, std::size_t reps, bool record,
                                    std::uint32_t source_id, downloader_stats& stats) {
    std::vector<std::string> names;
    for (const auto size : small_sizes)
        names.push_back(file_name(size));
    for (std::size_t rep = 0; rep < reps; ++rep) {
        for (std::size_t i = 0; i < small_sizes.size(); ++i) {
            std::vector<std::string> one{names[i]}; // (GCC 12: no braced list in a co_await)
            const auto t0 = clock::now();
            auto outcomes = co_await node.async_download(std::move(one));
            const double wall = micros(clock::now() - t0);
            const auto& o = outcomes.front();
            if (o.error) {
                ++stats.failures;
                stats.last_failure = o.name + ": " + o.message;
                continue;
            }
            if (!record) continue;
            auto& s = stats.by_size[small_sizes[i]];
            s.transfer_us.push_back(static_cast<double>(o.transfer.elapsed.count()));
            s.wall_us.push_back(wall);
            if (o.transfer.refetched > 0) ++stats.retried;
            if (o.transfer.source_peer == source_id) ++stats.from_original;
        }
        co_await node.async_delete_local(names);
    }
}

std::string size_text(std::uint64_t size) {
    if (size >= 1024) return std::to_string(size / 1024) + " KiB";
    return std::to_string(size) + " B";
}

} // namespace

int main(int argc, char** argv) try {
    report out("transfer_time", argc, argv);
    const auto reps = std::stoul(option(out.args(), "--repetitions", "200"));
    const auto big_runs = std::stoul(option(out.args(), "--big-runs", "3"));
    const fs::path big_under = option(out.args(), "--big-dir", "/dev/shm");
    const bool no_big =
        std::find(out.args().begin(), out.args().end(), "--no-big") != out.args().end();
    spdlog::set_level(spdlog::level::warn);

    scoped_dir root{make_temp_dir(fs::temp_directory_path())};
    io_thread index_thread;
    p2pshare::IndexServerOptions io;
    io.port = 0;
    io.config_dir.clear();
    io.lease_ttl = std::chrono::hours(1);
    // index_thread.io is run by its thread only: its executor is serial, as the index requires.
    p2pshare::IndexServer index(index_thread.io.get_executor(), io);
    if (const auto ec = index.start()) throw std::runtime_error("index: " + ec.message);
    const auto port = index.port();

    // The source peer shares the five files; four downloaders fetch them.
    fs::create_directories(root.path / "p1");
    for (const auto size : small_sizes)
        generate(root.path / "p1" / file_name(size), size, size);
    io_thread source_thread;
    io_thread downloader_thread;
    auto source = make_peer(source_thread, 1, root.path / "p1", root.path, port);
    std::vector<std::unique_ptr<p2pshare::PeerNode>> downloaders;
    for (std::uint32_t id = 2; id <= 5; ++id) {
        downloaders.push_back(make_peer(downloader_thread, id,
                                        root.path / ("p" + std::to_string(id)), root.path, port));
    }

    const auto run_all = [&](std::size_t n, bool record) {
        std::vector<downloader_stats> stats(downloaders.size());
        std::vector<std::future<void>> done;
        for (std::size_t i = 0; i < downloaders.size(); ++i) {
            done.push_back(asio::co_spawn(downloader_thread.io,
                                          download_loop(*downloaders[i], n, record, 1, stats[i]),
                                          asio::use_future));
        }
        for (auto& f : done)
            f.get();
        return stats;
    };

    out.line("p2pshare transfer time");
    out.line(
        "index, source peer 1 and downloaders 2-5 in one process, each group on its own "
        "io_context thread; files in " +
        root.path.string());
    out.line("each downloader, " + std::to_string(reps) +
             " times: downloads the five files (one async_download call per file), then "
             "deletes them");
    out.line(
        "transfer = transfer_result.elapsed (connect, request, body, SHA-256, rename); "
        "call = the whole async_download (lookup, transfer, index update)");
    out.line("");
    run_all(5, false); // warm-up
    const auto t0 = clock::now();
    const auto stats = run_all(reps, true);
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();

    std::map<std::uint64_t, samples> merged;
    std::size_t failures = 0, retried = 0, from_original = 0, downloads = 0;
    std::string last_failure;
    for (const auto& s : stats) {
        failures += s.failures;
        retried += s.retried;
        from_original += s.from_original;
        if (!s.last_failure.empty()) last_failure = s.last_failure;
        for (const auto& [size, v] : s.by_size) {
            auto& m = merged[size];
            m.transfer_us.insert(m.transfer_us.end(), v.transfer_us.begin(), v.transfer_us.end());
            m.wall_us.insert(m.wall_us.end(), v.wall_us.begin(), v.wall_us.end());
            downloads += v.wall_us.size();
        }
    }
    out.line(
        "     size  downloads  transfer mean        p50        p99   call mean        p50"
        "        p99");
    auto dat = out.data_file("transfer_time.dat");
    if (dat) {
        dat << "# size_bytes transfer_mean_ms transfer_p50_ms transfer_p99_ms call_mean_ms "
               "call_p50_ms call_p99_ms\n";
    }
    for (const auto& [size, v] : merged) {
        const auto t = summarize(v.transfer_us);
        const auto w = summarize(v.wall_us);
        char b[256];
        std::snprintf(b, sizeof b, "%9s %10zu %14s %10s %10s %11s %10s %10s",
                      size_text(size).c_str(), t.count, format_time(t.mean_us).c_str(),
                      format_time(t.p50_us).c_str(), format_time(t.p99_us).c_str(),
                      format_time(w.mean_us).c_str(), format_time(w.p50_us).c_str(),
                      format_time(w.p99_us).c_str());
        out.line(b);
        if (dat) {
            dat << size << ' ' << t.mean_us / 1000 << ' ' << t.p50_us / 1000 << ' '
                << t.p99_us / 1000 << ' ' << w.mean_us / 1000 << ' ' << w.p50_us / 1000 << ' '
                << w.p99_us / 1000 << '\n';
        }
        out.figure("download " + size_text(size) + ", 4 concurrent peers (" +
                       std::to_string(t.count) + " downloads)",
                   fixed(t.mean_us / 1000, 3) + " ms transfer (p50 " + fixed(t.p50_us / 1000, 3) +
                       ", p99 " + fixed(t.p99_us / 1000, 3) + "); " + fixed(w.mean_us / 1000, 3) +
                       " ms whole call",
                   "original: 13-220 ms (128 B-32 KB)",
                   fixed(original_best_ms / (w.mean_us / 1000), 1) + "x (call mean), " +
                       fixed(original_best_ms / (w.p50_us / 1000), 1) +
                       "x (call p50) faster than 13 ms");
    }
    out.line("");
    out.line(std::to_string(downloads) + " downloads in " + fixed(seconds, 2) + " s (" +
             fixed(static_cast<double>(downloads) / seconds, 0) + " downloads/s); " +
             std::to_string(failures) + " failed, " + std::to_string(retried) +
             " needed a second source, " + std::to_string(from_original) +
             " came from peer 1 (the others from downloaders that had the file)");
    if (!last_failure.empty()) out.line("last failure: " + last_failure);
    out.line("");

    // One 1 GiB download on tmpfs, SHA-256 verification included.
    int status = failures == 0 ? 0 : 1;
    if (no_big) {
        out.line("1 GiB download: skipped (--no-big)");
    } else {
        constexpr std::uint64_t big = std::uint64_t{1} << 30;
        struct statvfs vfs {};
        const bool have_dir = ::statvfs(big_under.c_str(), &vfs) == 0;
        const auto free_bytes = have_dir ? std::uint64_t{vfs.f_bavail} * vfs.f_frsize : 0;
        if (!have_dir || free_bytes < 2 * big + (256u << 20)) {
            out.line("1 GiB download: skipped: " + big_under.string() + " has " +
                     std::to_string(free_bytes >> 20) + " MiB free, 2304 MiB are needed");
        } else {
            scoped_dir shm{make_temp_dir(big_under)};
            const auto name = file_name(big);
            fs::create_directories(shm.path / "p20");
            const auto tg = clock::now();
            generate(shm.path / "p20" / name, big, 1);
            out.line("1 GiB download on " + big_under.string() + " (generated in " +
                     fixed(std::chrono::duration<double>(clock::now() - tg).count(), 1) + " s)");
            auto big_source = make_peer(source_thread, 20, shm.path / "p20", shm.path, port);
            auto big_sink = make_peer(downloader_thread, 21, shm.path / "p21", shm.path, port);
            std::vector<double> rates;
            for (std::size_t run = 0; run < big_runs; ++run) {
                const auto tw = clock::now();
                auto outcomes = downloader_thread.run(big_sink->async_download({name}));
                const double wall = std::chrono::duration<double>(clock::now() - tw).count();
                const auto& o = outcomes.front();
                if (o.error) {
                    out.line("  run " + std::to_string(run + 1) + ": failed: " + o.message);
                    status = 1;
                    break;
                }
                const double s = std::chrono::duration<double>(o.transfer.elapsed).count();
                const double rate = static_cast<double>(big) / (1 << 20) / s;
                rates.push_back(rate);
                out.line("  run " + std::to_string(run + 1) + ": " + fixed(s * 1000, 0) +
                         " ms transfer with verification = " + fixed(rate, 0) + " MiB/s (call " +
                         fixed(wall * 1000, 0) + " ms)");
                downloader_thread.run(big_sink->async_delete_local({name}));
            }
            if (!rates.empty()) {
                const double best = *std::max_element(rates.begin(), rates.end());
                const double mean = std::accumulate(rates.begin(), rates.end(), 0.0) /
                                    static_cast<double>(rates.size());
                out.line("  best " + fixed(best, 0) + " MiB/s, mean " + fixed(mean, 0) + " MiB/s");
                out.figure("1 GiB download on tmpfs with SHA-256 (in-process peers, best of " +
                               std::to_string(rates.size()) + ")",
                           fixed(best, 0) + " MiB/s (mean " + fixed(mean, 0) + ")", "-", "-");
                if (auto f = out.data_file("transfer_big.txt")) f << best << '\n';
            }
            downloader_thread.run(big_sink->async_quit());
            source_thread.run(big_source->async_quit());
        }
    }

    for (auto& d : downloaders)
        downloader_thread.run(d->async_quit());
    source_thread.run(source->async_quit());
    index_thread.run(index.async_stop());
    return status;
} catch (const std::exception& e) {
    std::cerr << "bench_transfer_time: " << e.what() << '\n';
    return 1;
}
