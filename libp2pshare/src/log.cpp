#include <p2pshare/log.hpp>

#include "support.hpp"

#include <spdlog/spdlog.h>

#include <string>

namespace p2pshare {

bool set_log_level(std::string_view level) {
    const std::string name(level);
    const auto parsed = spdlog::level::from_str(name);
    if (parsed == spdlog::level::off && name != "off") return false;
    detail::log().set_level(parsed);
    return true;
}

} // namespace p2pshare
