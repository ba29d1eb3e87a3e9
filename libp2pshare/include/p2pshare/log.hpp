// p2pshare — the library's log. It writes through spdlog's default logger (stderr unless the
// program set another one), at "info" unless told otherwise.
#pragma once

#include <string_view>

namespace p2pshare {

/// Sets the level of the library's log: "trace", "debug", "info", "warn", "error" or "off".
/// Returns false (and changes nothing) for any other name.
bool set_log_level(std::string_view level);

} // namespace p2pshare
