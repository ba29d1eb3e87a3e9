// p2pshare — the library's log. It writes through the spdlog logger named "p2pshare": the
// program's own, when it registered one under that name before the library first logs, else one
// the library makes on stderr at level "info". The library never changes spdlog's default logger
// nor its global level.
#pragma once

#include <string_view>

namespace p2pshare {

/// Sets the level of the "p2pshare" logger only: "trace", "debug", "info", "warn", "error" or
/// "off". Returns false (and changes nothing) for any other name.
bool set_log_level(std::string_view level);

} // namespace p2pshare
