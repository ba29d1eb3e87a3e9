// The status pages served at GET /: one self-contained HTML page each (inline style and script,
// no external asset, no framework) for the index server and for a peer. Each polls its server's
// JSON once a second and updates itself (docs/protocol.md §6.10).
#pragma once

#include "http_message.hpp"

#include <string_view>

namespace p2pshare::detail {

/// The index server's page: it polls GET /v1/health.
std::string_view index_status_page();

/// A peer's page: it polls the peer's GET /v1/health and GET /v1/files.
std::string_view peer_status_page();

inline constexpr std::string_view html_content_type = "text/html; charset=utf-8";

/// A 200 answer to `req` with `page`, not to be cached.
response page_response(const request& req, std::string_view page);

} // namespace p2pshare::detail
