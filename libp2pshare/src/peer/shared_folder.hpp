// The peer's shared folder: what it holds, and the SHA-256, piece hashes and piece root of each
// file, kept by stamp (size, mtime, inode) so that a file is hashed again only when it changed.
// Listing the folder and hashing run on the blocking executor; the state lives on the peer's
// (serial) executor and is never locked while the disk works. A file is offered only once it is
// hashed: a large file being hashed holds back nothing else. With a hash cache file, the hashes
// survive a restart: a file whose stamp matches its cached record is offered without reading it.
#pragma once

#include "../hash_cache.hpp"
#include "../pieces.hpp"
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

file_stamp stamp_of(const struct stat& st) noexcept;

class shared_folder : public std::enable_shared_from_this<shared_folder> {
public:
    /// A hashed file.
    struct entry {
        file_stamp stamp;
        std::string sha256; ///< hex
        std::string root;   ///< hex Merkle root of `pieces`
        /// piece_count_for(stamp.size) piece hashes. Null (and `root` empty) only for a file
        /// remember()ed without them, until the folder has hashed it in the background.
        std::shared_ptr<const std::vector<digest>> pieces;
        /// `sha256` was computed from the bytes (false for a download verified piece by piece,
        /// until the folder has hashed it in the background): only then is it in the cache.
        bool sha256_checked = true;
    };

    /// `executor` must be serial; every member is called on it. Held by a shared_ptr: its
    /// hashing coroutine keeps it alive. `hash_cache`: the file the hashes are kept in across
    /// restarts (read by async_open, rewritten after hashing); empty: none.
    shared_folder(boost::asio::any_io_executor executor, boost::asio::any_io_executor blocking,
                  std::filesystem::path folder, std::string log_name,
                  std::filesystem::path hash_cache = {});
    ~shared_folder();
    shared_folder(const shared_folder&) = delete;
    shared_folder& operator=(const shared_folder&) = delete;

    /// Creates the folder if missing, opens it and locks it against another running peer
    /// (errc::conflict when one holds it, errc::io_error when it cannot be opened), and reads the
    /// hash cache, if any (one that cannot be read or decoded is ignored, with a log line).
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
    boost::asio::awaitable<api_result<entry>> async_rehash(std::string name,
                                                           std::shared_ptr<unique_fd> fd,
                                                           file_stamp stamp);

    /// The files offered: hashed, and unchanged since as far as the last scan saw.
    std::vector<file_entry> offered() const;
    const entry* find(std::string_view name) const;
    /// Records a file this peer verified itself (a download), so that it is not hashed again,
    /// with its piece hashes and their root (hex). Without pieces (or with pieces that do not
    /// fit the size or make the root), it is offered at once with its SHA-256 and no root, and
    /// queued for hashing, which then gives it its pieces. With pieces but `sha256_checked`
    /// false (its pieces were checked, not the whole file's SHA-256, which its sources gave), it
    /// is offered at once and queued for hashing too, which confirms or corrects its SHA-256
    /// (a warning when it differs); it enters the hash cache only once hashed.
    void remember(const std::string& name, file_stamp stamp, std::string sha256,
                  std::string root = {}, std::shared_ptr<const std::vector<digest>> pieces = {},
                  bool sha256_checked = true);
    /// Files waiting to be hashed.
    std::size_t backlog() const noexcept { return pending_.size(); }
    /// Bytes read for hashing since the folder was made (any thread may ask).
    std::uint64_t hashed_bytes() const noexcept { return hashed_bytes_->load(); }

    /// Stops hashing within one 1 MiB read; settle and rehash then fail with shutting_down.
    void cut();
    /// Waits until no file is being hashed (after cut(): within one read) and no hash cache is
    /// being written, so that no work of the folder is left on the blocking executor when the
    /// peer's executor goes away.
    boost::asio::awaitable<void> async_idle();
    /// Waits until the hash cache on disk holds what the folder knows now: a write in progress,
    /// and the one it may have queued, are done (a failed write is logged and not retried until
    /// the next change). Changes made meanwhile are not waited for. Cancelled:
    /// operation_aborted.
    boost::asio::awaitable<boost::system::error_code> async_cache_written();

    int dir() const noexcept { return dir_ ? dir_->get() : -1; }
    const std::filesystem::path& path() const noexcept { return folder_; }

    /// Called on the executor whenever the offered list changed.
    std::function<void()> on_change;

private:
    boost::asio::awaitable<void> hash_pending();
    boost::asio::awaitable<void> save_cache();
    void start_hashing();
    /// Asks for the hash cache to be written again (at most one write in flight).
    void cache_changed();
    void changed();

    boost::asio::any_io_executor executor_;
    boost::asio::any_io_executor blocking_;
    std::filesystem::path folder_;
    std::string log_name_;
    std::shared_ptr<unique_fd> dir_;
    std::shared_ptr<std::atomic<bool>> cut_ = std::make_shared<std::atomic<bool>>(false);
    std::map<std::string, entry, std::less<>> files_;
    std::map<std::string, file_stamp, std::less<>> pending_; ///< found, not hashed yet
    std::filesystem::path cache_file_;
    /// The hash cache as read at open, until the first scan took what still matches.
    std::map<std::string, entry, std::less<>> cached_;
    std::shared_ptr<std::atomic<std::uint64_t>> hashed_bytes_ =
        std::make_shared<std::atomic<std::uint64_t>>(0);
    bool hashing_ = false;
    bool scanning_ = false;
    bool scanned_once_ = false; ///< no cache is written before: it would drop what it holds
    bool saving_ = false;
    bool cache_dirty_ = false;
    std::uint64_t cache_generation_ = 0;   ///< changes to the cache's content so far
    std::uint64_t written_generation_ = 0; ///< ... of which the cache on disk holds these
    boost::asio::steady_timer settled_;    ///< cancelled when the backlog empties or a save ends
    boost::asio::steady_timer scanned_;    ///< cancelled when a scan ends
};

} // namespace p2pshare::detail
