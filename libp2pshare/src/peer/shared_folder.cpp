#include "shared_folder.hpp"

#include "../blocking.hpp"

#include <p2pshare/names.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// The plain files of a folder with their stamps (symlinks, folders, devices are never shared).
std::vector<std::pair<std::string, file_stamp>> list_folder(
    const std::shared_ptr<unique_fd>& folder) {
    const int dir = folder->get();
    std::vector<std::pair<std::string, file_stamp>> out;
    std::vector<std::string> names;
    if (DIR* d = ::fdopendir(::dup(dir))) {
        ::rewinddir(d);
        while (const dirent* e = ::readdir(d)) {
            if (is_valid_file_name(e->d_name)) names.emplace_back(e->d_name);
        }
        ::closedir(d);
    }
    for (auto& name : names) {
        struct stat st {};
        if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(st.st_mode)) continue;
        out.emplace_back(std::move(name), stamp_of(st));
    }
    return out;
}

using entry = shared_folder::entry;

/// Reads the first `stamp.size` bytes of the open file `fd` once, for its SHA-256, its piece
/// hashes and their root. Stops within one 1 MiB read once `cut` is set (errc::shutting_down).
/// Every byte read is added to `counter`.
api_result<entry> hash_open_file(int fd, const std::string& name, file_stamp stamp,
                                 const std::atomic<bool>& cut,
                                 std::atomic<std::uint64_t>& counter) {
    piece_hasher hasher(stamp.size);
    std::vector<char> buffer(1 << 20);
    std::uint64_t offset = 0;
    while (offset < stamp.size) {
        if (cut.load(std::memory_order_relaxed)) {
            return fail(errc::shutting_down, "the peer is stopping");
        }
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), stamp.size - offset));
        const auto n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(errc::io_error, "cannot read " + name + ": " + errno_text(errno));
        if (n == 0) return fail(errc::io_error, "cannot read " + name + ": it became shorter");
        hasher.update(buffer.data(), static_cast<std::size_t>(n));
        offset += static_cast<std::uint64_t>(n);
        counter.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    auto r = hasher.finish();
    return entry{stamp, std::move(r.sha256), to_hex(r.root),
                 std::make_shared<const std::vector<digest>>(std::move(r.pieces))};
}

/// Opens `name` without blocking on a special file swapped in, and hashes it if it still has
/// `expected` as its stamp.
api_result<entry> hash_file(const std::shared_ptr<unique_fd>& folder, const std::string& name,
                            file_stamp expected, const std::shared_ptr<std::atomic<bool>>& cut,
                            const std::shared_ptr<std::atomic<std::uint64_t>>& counter) {
    unique_fd fd(
        ::openat(folder->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return fail(errc::not_found, name + " is gone or not a plain file");
    }
    if (stamp_of(st) != expected) {
        return fail(errc::not_found, name + " changed while waiting to be hashed");
    }
    return hash_open_file(fd.get(), name, expected, *cut, *counter);
}

api_result<entry> rehash_file(const std::shared_ptr<unique_fd>& fd, const std::string& name,
                              file_stamp stamp, const std::shared_ptr<std::atomic<bool>>& cut,
                              const std::shared_ptr<std::atomic<std::uint64_t>>& counter) {
    return hash_open_file(fd->get(), name, stamp, *cut, *counter);
}

/// The hash cache as read from disk: its entries, or why it was ignored.
struct loaded_cache {
    std::map<std::string, entry, std::less<>> entries;
    std::string problem; ///< empty: read (or there is no such file yet)
};

loaded_cache load_cache(const std::filesystem::path& file) {
    loaded_cache out;
    unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno != ENOENT) out.problem = "cannot open it: " + errno_text(errno);
        return out;
    }
    std::string bytes;
    char buffer[64 * 1024];
    for (;;) {
        const auto n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            out.problem = "cannot read it: " + errno_text(errno);
            return out;
        }
        if (n == 0) break;
        bytes.append(buffer, static_cast<std::size_t>(n));
    }
    auto records = decode_hash_cache(bytes);
    if (!records) {
        out.problem = records.error().message;
        return out;
    }
    for (auto& r : *records) {
        out.entries.emplace(std::move(r.name),
                            entry{r.stamp, to_hex(r.sha256), to_hex(r.root), std::move(r.pieces)});
    }
    return out;
}

/// Writes the cache atomically: a temporary file in the same folder, flushed to the disk, then
/// renamed over the old one. Returns what failed, or "".
std::string write_cache(const std::filesystem::path& file,
                        const std::vector<hash_record>& records) {
    const auto bytes = encode_hash_cache(records);
    if (file.has_parent_path()) {
        std::error_code ignored; // a folder that cannot be made fails the open below
        std::filesystem::create_directories(file.parent_path(), ignored);
    }
    auto tmp = file;
    tmp += ".tmp" + std::to_string(::getpid());
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return "cannot create " + tmp.string() + ": " + errno_text(errno);
    std::string_view left = bytes;
    while (!left.empty()) {
        const auto n = ::write(fd.get(), left.data(), left.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const auto e = errno_text(errno);
            ::unlink(tmp.c_str());
            return "cannot write " + tmp.string() + ": " + e;
        }
        left.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
        const auto e = errno_text(errno);
        ::unlink(tmp.c_str());
        return "cannot write " + tmp.string() + ": " + e;
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) {
        const auto e = errno_text(errno);
        ::unlink(tmp.c_str());
        return "cannot rename " + tmp.string() + ": " + e;
    }
    return {};
}

/// Creates the folder if missing, opens it and locks it.
api_result<int> open_folder(const std::filesystem::path& folder) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    unique_fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        return fail(errc::io_error,
                    "cannot open folder " + folder.string() + ": " + errno_text(errno));
    }
    // One running peer per folder: another process with our id would read our token from
    // the config file and take our lease over. The lock ends with the process.
    if (::flock(dir.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        return fail(errc::conflict,
                    "folder " + folder.string() + " is shared by another running peer");
    }
    return dir.release();
}

} // namespace

file_stamp stamp_of(const struct stat& st) noexcept {
    return {static_cast<std::uint64_t>(st.st_size),
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
            static_cast<std::uint64_t>(st.st_ino)};
}

shared_folder::shared_folder(asio::any_io_executor executor, asio::any_io_executor blocking,
                             std::filesystem::path folder, std::string log_name,
                             std::filesystem::path hash_cache)
    : executor_(executor),
      blocking_(std::move(blocking)),
      folder_(std::move(folder)),
      log_name_(std::move(log_name)),
      cache_file_(std::move(hash_cache)),
      settled_(executor, asio::steady_timer::time_point::max()),
      scanned_(executor, asio::steady_timer::time_point::max()) {}

shared_folder::~shared_folder() { cut_->store(true); }

void shared_folder::cut() {
    cut_->store(true);
    settled_.cancel();
}

asio::awaitable<api_result<void>> shared_folder::async_open() {
    auto opened = co_await run_blocking(blocking_, &open_folder, folder_);

    if (!opened) co_return opened.error();
    dir_ = std::make_shared<unique_fd>(*opened);
    if (!cache_file_.empty()) {
        auto cache = co_await run_blocking(blocking_, &load_cache, cache_file_);
        if (!cache.problem.empty()) {
            log().warn("{}: ignoring the hash cache {}: {}", log_name_, cache_file_.string(),
                       cache.problem);
        }
        cached_ = std::move(cache.entries);
    }
    co_return api_result<void>{};
}

asio::awaitable<bool> shared_folder::async_scan() {
    auto self = shared_from_this();
    while (scanning_) {
        co_await scanned_.async_wait(use_tuple);
        if (cancelled(co_await asio::this_coro::cancellation_state)) co_return false;
    }
    if (!dir_) co_return false;
    scanning_ = true;
    struct done_scanning {
        shared_folder& f;
        ~done_scanning() {
            f.scanning_ = false;
            f.scanned_.cancel();
        }
    } mark{*this};
    const auto found = co_await run_blocking(blocking_, &list_folder, dir_);
    bool offered_changed = false;
    bool cache_stale = false; // the cache on disk holds a record it should not
    std::map<std::string, entry, std::less<>> files;
    std::map<std::string, file_stamp, std::less<>> pending;
    for (const auto& [name, stamp] : found) {
        if (const auto it = files_.find(name); it != files_.end() && it->second.stamp == stamp) {
            // Remembered without its pieces, or without its SHA-256 checked: offered, and
            // hashed for them.
            if (!it->second.pieces || !it->second.sha256_checked) pending.emplace(name, stamp);
            files.emplace(name, it->second);
            continue;
        }
        // Unchanged since the hash cache was written: offered without reading it.
        if (const auto it = cached_.find(name); it != cached_.end() && it->second.stamp == stamp) {
            files.emplace(name, std::move(it->second));
            cached_.erase(it);
            offered_changed = true;
            continue;
        }
        pending.emplace(name, stamp);
    }
    for (const auto& [name, e] : files_) {
        if (!files.contains(name)) offered_changed = cache_stale = true; // gone, or changed
    }
    // The cache serves the first scan only; what it held that did not match is stale.
    if (!cached_.empty()) cache_stale = true;
    cached_.clear();
    files_ = std::move(files);
    pending_ = std::move(pending);
    if (pending_.empty()) settled_.cancel();
    start_hashing();
    const bool first = !scanned_once_;
    scanned_once_ = true;
    if (cache_stale || (first && cache_dirty_)) cache_changed();
    if (offered_changed) changed();
    co_return offered_changed;
}

void shared_folder::start_hashing() {
    if (pending_.empty() || hashing_ || cut_->load()) return;
    hashing_ = true;
    asio::co_spawn(executor_, shared_from_this()->hash_pending(),
                   log_failure{log_name_ + ": hashing the shared folder"});
}

asio::awaitable<void> shared_folder::hash_pending() {
    auto self = shared_from_this();
    struct done_hashing {
        shared_folder& f;
        ~done_hashing() {
            f.hashing_ = false;
            f.settled_.cancel();
        }
    } mark{*this};
    while (!pending_.empty() && !cut_->load()) {
        const std::string name = pending_.begin()->first;
        const file_stamp stamp = pending_.begin()->second;
        auto h =
            co_await run_blocking(blocking_, &hash_file, dir_, name, stamp, cut_, hashed_bytes_);
        if (cut_->load()) break;
        const auto it = pending_.find(name);
        if (it == pending_.end() || it->second != stamp) continue; // a scan saw it change
        pending_.erase(it);
        if (!h) {
            log().debug("{}: {} not shared: {}", log_name_, name, h.error().message);
            // Remembered without pieces, then changed or gone: no longer offered.
            if (files_.erase(name) > 0) changed();
            continue;
        }
        auto& e = files_[name];
        const bool same = e.sha256 == h->sha256 && e.root == h->root;
        if (!e.sha256_checked && e.root == h->root && e.sha256 != h->sha256) {
            log().warn(
                "{}: the SHA-256 of {} is {}, not {} as its sources said: offered with its "
                "own",
                log_name_, name, h->sha256, e.sha256);
        }
        e = std::move(*h);
        if (!same) changed();
        cache_changed();
    }
}

void shared_folder::cache_changed() {
    if (cache_file_.empty()) return;
    cache_dirty_ = true;
    ++cache_generation_;
    // Before the first scan the folder does not hold what the cache holds: writing it then
    // would lose the records the scan is about to use.
    if (saving_ || !scanned_once_) return;
    saving_ = true;
    asio::co_spawn(executor_, shared_from_this()->save_cache(),
                   log_failure{log_name_ + ": writing the hash cache"});
}

asio::awaitable<void> shared_folder::save_cache() {
    auto self = shared_from_this();
    struct done_saving {
        shared_folder& f;
        ~done_saving() {
            f.saving_ = false;
            f.settled_.cancel();
        }
    } mark{*this};
    // One write at a time; what changed meanwhile is written by the next turn.
    while (cache_dirty_) {
        cache_dirty_ = false;
        const auto generation = cache_generation_;
        std::vector<hash_record> records;
        records.reserve(files_.size());
        for (const auto& [name, e] : files_) {
            const auto sha = digest_from_hex(e.sha256);
            const auto root = digest_from_hex(e.root);
            if (!e.pieces || !sha || !root || !e.sha256_checked) continue; // not hashed yet
            records.push_back({name, e.stamp, *sha, *root, e.pieces});
        }
        const auto problem =
            co_await run_blocking(blocking_, &write_cache, cache_file_, std::move(records));
        if (!problem.empty()) {
            log().warn("{}: cannot write the hash cache: {}", log_name_, problem);
            break; // tried again at the next change
        }
        written_generation_ = generation;
        settled_.cancel();
    }
}

asio::awaitable<void> shared_folder::async_idle() {
    auto self = shared_from_this();
    while (hashing_ || saving_)
        co_await settled_.async_wait(use_tuple);
}

asio::awaitable<boost::system::error_code> shared_folder::async_cache_written() {
    auto self = shared_from_this();
    // What the folder knows now, not what it learns meanwhile: a folder that keeps changing
    // would keep the writes going.
    const auto wanted = cache_generation_;
    while (saving_ && written_generation_ < wanted) {
        co_await settled_.async_wait(use_tuple);
        if (cancelled(co_await asio::this_coro::cancellation_state)) {
            co_return asio::error::operation_aborted;
        }
    }
    co_return boost::system::error_code{};
}

asio::awaitable<boost::system::error_code> shared_folder::async_settle() {
    auto self = shared_from_this();
    while (!pending_.empty() && !cut_->load()) {
        co_await settled_.async_wait(use_tuple);
        if (cancelled(co_await asio::this_coro::cancellation_state)) {
            co_return asio::error::operation_aborted;
        }
    }
    if (cut_->load()) co_return make_error_code(errc::shutting_down);
    co_return boost::system::error_code{};
}

asio::awaitable<api_result<shared_folder::entry>> shared_folder::async_rehash(
    std::string name, std::shared_ptr<unique_fd> fd, file_stamp stamp) {
    auto self = shared_from_this();
    auto hashed =
        co_await run_blocking(blocking_, &rehash_file, fd, name, stamp, cut_, hashed_bytes_);
    if (cut_->load()) co_return fail(errc::shutting_down, "the peer is stopping");
    if (!hashed) co_return fail(errc::not_found, name + " is changing; try again");
    remember(name, stamp, hashed->sha256, hashed->root, hashed->pieces);
    co_return std::move(*hashed);
}

std::vector<file_entry> shared_folder::offered() const {
    std::vector<file_entry> out;
    out.reserve(files_.size());
    for (const auto& [name, e] : files_)
        out.push_back({name, e.stamp.size, e.sha256, e.root});
    return out;
}

const shared_folder::entry* shared_folder::find(std::string_view name) const {
    const auto it = files_.find(name);
    return it == files_.end() ? nullptr : &it->second;
}

void shared_folder::remember(const std::string& name, file_stamp stamp, std::string sha256,
                             std::string root, std::shared_ptr<const std::vector<digest>> pieces,
                             bool sha256_checked) {
    const auto root_digest = digest_from_hex(root);
    const bool whole = pieces && root_digest && pieces->size() == piece_count_for(stamp.size) &&
                       merkle_root(*pieces) == *root_digest;
    if (!whole) {
        // Offered at once with the hash the download verified; its pieces are hashed here.
        root.clear();
        pieces.reset();
    }
    auto& e = files_[name];
    const bool same = e.stamp == stamp && e.sha256 == sha256 && e.root == root;
    e = entry{stamp, std::move(sha256), std::move(root), std::move(pieces),
              !whole || sha256_checked};
    if (whole && sha256_checked) {
        pending_.erase(name);
        if (pending_.empty()) settled_.cancel();
        cache_changed();
    } else {
        pending_[name] = stamp;
        start_hashing();
    }
    if (!same) changed();
}

void shared_folder::changed() {
    if (on_change) on_change();
}

} // namespace p2pshare::detail
