// Splitting a request target into its path segments and query parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2pshare::detail {

struct target {
    std::vector<std::string> segments; ///< decoded path segments, "/v1/files/a" -> {v1, files, a}
    std::vector<std::pair<std::string, std::string>> query; ///< decoded, in order

    /// The first value of a query parameter.
    std::optional<std::string_view> param(std::string_view key) const;
};

/// Parses an origin-form target ("/a/b?x=1"). Fails (nullopt) when it does not start with '/',
/// or has a bad %-escape.
std::optional<target> parse_target(std::string_view text);

} // namespace p2pshare::detail
