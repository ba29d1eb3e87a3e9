// The peer's shared folder: what it holds, and the SHA-256 of each file, kept by stamp (size,
// mtime, inode) so that a file is hashed again only when it changed. Listing the folder and
// hashing run on the blocking executor; the state lives on the peer's (serial) executor and
// is never locked while the disk works. A file is offered only once it is hashed: a large file
// being hashed holds back nothing else.
#pragma once

#include "../protocol.hpp"
#include "../support.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace p2pshare::detail {

/// What identifies a version of a file without reading it.
struct file_stamp {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    friend bool operator==(const file_stamp&, const file_stamp&) = default;
};

file_stamp stamp_of(const struct stat& st) noexcept;

class shared_folder : public std::enable_shared_from_this<shared_folder> {
public:
    struct entry {
        file_stamp stamp;
        std::string sha256;
    };

    /// `executor` must be serial; every member is called on it. Held by a shared_ptr: its
    /// hashing coroutine keeps it alive.
    shared_folder(boost::asio::any_io_executor executor, boost::asio::any_io_executor blocking,
                  std::filesystem::path folder, std::string log_name);
    ~shared_folder();
    shared_folder(const shared_folder&) = delete;
    shared_folder& operator=(const shared_folder&) = delete;

    /// Creates the folder if missing, opens it and locks it against another running peer
    /// (errc::conflict when one holds it, errc::io_error when it cannot be opened).
    boost::asio::awaitable<api_result<void>> async_open();

    /// Lists the folder: files gone are dropped at once, new or changed ones are queued for
    /// hashing (and offered once hashed). Returns whether the offered list changed. Scans run
    /// one at a time. Cancelling it cancels only the wait for an earlier scan.
    boost::asio::awaitable<bool> async_scan();

    /// Waits until every file queued so far is hashed (or given up because it changed or
    /// vanished meanwhile). errc::shutting_down once cut() was called. Cancelled: returns
    /// operation_aborted at once; the hashing goes on.
    boost::asio::awaitable<boost::system::error_code> async_settle();

    /// Hashes the open file `fd` (whose stamp is `stamp`) again, for a request that found the
    /// file changed since its last hash, and records the result. errc::shutting_down once cut.
    boost::asio::awaitable<api_result<std::string>> async_rehash(std::string name,
                                                                 std::shared_ptr<unique_fd> fd,
                                                                 file_stamp stamp);

    /// The files offered: hashed, and unchanged since as far as the last scan saw.
    std::vector<file_entry> offered() const;
    const entry* find(std::string_view name) const;
    /// Records a file this peer verified itself (a download), so that it is not hashed again.
    void remember(const std::string& name, file_stamp stamp, std::string sha256);
    /// Files waiting to be hashed.
    std::size_t backlog() const noexcept { return pending_.size(); }

    /// Stops hashing within one 1 MiB read; settle and rehash then fail with shutting_down.
    void cut();
    /// Waits until no file is being hashed (after cut(): within one read), so that no work of
    /// the folder is left on the blocking executor when the peer's executor goes away.
    boost::asio::awaitable<void> async_idle();

    int dir() const noexcept { return dir_ ? dir_->get() : -1; }
    const std::filesystem::path& path() const noexcept { return folder_; }

    /// Called on the executor whenever the offered list changed.
    std::function<void()> on_change;

private:
    boost::asio::awaitable<void> hash_pending();
    void changed();

    boost::asio::any_io_executor executor_;
    boost::asio::any_io_executor blocking_;
    std::filesystem::path folder_;
    std::string log_name_;
    std::shared_ptr<unique_fd> dir_;
    std::shared_ptr<std::atomic<bool>> cut_ = std::make_shared<std::atomic<bool>>(false);
    std::map<std::string, entry, std::less<>> files_;
    std::map<std::string, file_stamp, std::less<>> pending_; ///< found, not hashed yet
    bool hashing_ = false;
    bool scanning_ = false;
    boost::asio::steady_timer settled_; ///< cancelled when the backlog empties
    boost::asio::steady_timer scanned_; ///< cancelled when a scan ends
};

} // namespace p2pshare::detail
