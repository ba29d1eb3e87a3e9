#include "support.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

namespace p2pshare::detail {

std::string errno_text(int e) { return std::strerror(e); }

void log_exception(const std::string& what, std::exception_ptr e) noexcept {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        spdlog::error("{} failed: {}", what, x.what());
    } catch (...) {
        spdlog::error("{} failed", what);
    }
}

} // namespace p2pshare::detail
