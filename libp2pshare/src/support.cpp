#include "support.hpp"

#include "blocking.hpp"

#include <openssl/crypto.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/thread_pool.hpp>

#include <linux/magic.h>
#include <sys/vfs.h>

#include <cstring>

namespace p2pshare::detail {

spdlog::logger& log() {
    // The program's own logger of that name when it registered one before; else one on stderr.
    static const std::shared_ptr<spdlog::logger> logger = [] {
        if (auto existing = spdlog::get("p2pshare")) return existing;
        auto made = spdlog::stderr_color_mt("p2pshare");
        made->set_level(spdlog::level::info);
        return made;
    }();
    return *logger;
}

void prepare_openssl() {
    // Once, on the thread that makes the first peer or transfer (not on a pool's thread, whose
    // state of OpenSSL's set-up would then outlive it), and before the default pool exists, so
    // that OpenSSL's clean-up at exit comes after the pool is joined.
    static const bool ready = OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr) == 1;
    (void)ready;
}

namespace {

struct openssl_ready {
    openssl_ready() { prepare_openssl(); }
};

struct blocking_pool : openssl_ready {
    boost::asio::thread_pool threads{2};
};

} // namespace

boost::asio::any_io_executor default_blocking_executor() {
    static blocking_pool pool;
    return pool.threads.get_executor();
}

std::string errno_text(int e) { return std::strerror(e); }

bool on_memory_fs(int fd) noexcept {
    struct statfs fs {};
    if (::fstatfs(fd, &fs) != 0) return false;
    return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

void log_exception(const std::string& what, std::exception_ptr e) noexcept {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        log().error("{} failed: {}", what, x.what());
    } catch (...) {
        log().error("{} failed", what);
    }
}

} // namespace p2pshare::detail
