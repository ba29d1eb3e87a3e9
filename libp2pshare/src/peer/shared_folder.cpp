#include "shared_folder.hpp"

#include "../blocking.hpp"
#include "../sha256.hpp"

#include <p2pshare/names.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>

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

struct hashed {
    api_result<std::string> digest = fail(errc::not_found, "");
    file_stamp stamp;
};

/// Opens `name` without blocking on a special file swapped in, and hashes it if it still has
/// `expected` as its stamp.
hashed hash_file(const std::shared_ptr<unique_fd>& folder, const std::string& name,
                 file_stamp expected, const std::shared_ptr<std::atomic<bool>>& cut_flag) {
    const int dir = folder->get();
    const std::atomic<bool>* cut = cut_flag.get();
    hashed out;
    unique_fd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        out.digest = fail(errc::not_found, name + " is gone or not a plain file");
        return out;
    }
    out.stamp = stamp_of(st);
    if (out.stamp != expected) {
        out.digest = fail(errc::not_found, name + " changed while waiting to be hashed");
        return out;
    }
    auto digest = sha256_fd(fd.get(), out.stamp.size, cut);
    if (!digest) {
        out.digest =
            fail(digest.error() == make_error_code(errc::shutting_down) ? errc::shutting_down
                                                                        : errc::io_error,
                 "cannot read " + name + ": " + digest.error().message());
        return out;
    }
    out.digest = std::move(*digest);
    return out;
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
                             std::filesystem::path folder, std::string log_name)
    : executor_(executor),
      blocking_(std::move(blocking)),
      folder_(std::move(folder)),
      log_name_(std::move(log_name)),
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
    std::map<std::string, entry, std::less<>> files;
    std::map<std::string, file_stamp, std::less<>> pending;
    for (const auto& [name, stamp] : found) {
        if (const auto it = files_.find(name); it != files_.end() && it->second.stamp == stamp) {
            files.emplace(name, it->second);
            continue;
        }
        pending.emplace(name, stamp);
    }
    for (const auto& [name, e] : files_) {
        if (!files.contains(name)) offered_changed = true; // gone, or changed: not offered now
    }
    files_ = std::move(files);
    pending_ = std::move(pending);
    if (pending_.empty()) settled_.cancel();
    if (!pending_.empty() && !hashing_ && !cut_->load()) {
        hashing_ = true;
        asio::co_spawn(executor_, self->hash_pending(),
                       log_failure{log_name_ + ": hashing the shared folder"});
    }
    if (offered_changed) changed();
    co_return offered_changed;
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
        auto h = co_await run_blocking(blocking_, &hash_file, dir_, name, stamp, cut_);
        if (cut_->load()) break;
        const auto it = pending_.find(name);
        if (it == pending_.end() || it->second != stamp) continue; // a scan saw it change
        pending_.erase(it);
        if (!h.digest) {
            log().debug("{}: {} not shared: {}", log_name_, name, h.digest.error().message);
            continue;
        }
        files_[name] = entry{h.stamp, std::move(*h.digest)};
        changed();
    }
}

asio::awaitable<void> shared_folder::async_idle() {
    auto self = shared_from_this();
    while (hashing_)
        co_await settled_.async_wait(use_tuple);
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

asio::awaitable<api_result<std::string>> shared_folder::async_rehash(std::string name,
                                                                     std::shared_ptr<unique_fd> fd,
                                                                     file_stamp stamp) {
    auto self = shared_from_this();
    auto digest = co_await run_blocking(
        blocking_,
        [](const std::shared_ptr<unique_fd>& file, std::uint64_t size,
           const std::shared_ptr<std::atomic<bool>>& cut) {
            return sha256_fd(file->get(), size, cut.get());
        },
        fd, stamp.size, cut_);
    if (cut_->load()) co_return fail(errc::shutting_down, "the peer is stopping");
    if (!digest) co_return fail(errc::not_found, name + " is changing; try again");
    remember(name, stamp, *digest);
    co_return std::move(*digest);
}

std::vector<file_entry> shared_folder::offered() const {
    std::vector<file_entry> out;
    out.reserve(files_.size());
    for (const auto& [name, e] : files_)
        out.push_back({name, e.stamp.size, e.sha256});
    return out;
}

const shared_folder::entry* shared_folder::find(std::string_view name) const {
    const auto it = files_.find(name);
    return it == files_.end() ? nullptr : &it->second;
}

void shared_folder::remember(const std::string& name, file_stamp stamp, std::string sha256) {
    auto& e = files_[name];
    const bool same = e.stamp == stamp && e.sha256 == sha256;
    e = entry{stamp, std::move(sha256)};
    pending_.erase(name);
    if (pending_.empty()) settled_.cancel();
    if (!same) changed();
}

void shared_folder::changed() {
    if (on_change) on_change();
}

} // namespace p2pshare::detail
