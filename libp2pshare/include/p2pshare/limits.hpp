// p2pshare — bounds and deadlines of the HTTP servers. Defaults are documented in docs/protocol.md.
#pragma once

#include <chrono>
#include <cstddef>

namespace p2pshare {

struct server_limits {
    std::size_t header_limit = 8 * 1024;            ///< request line + headers, bytes (431 above)
    std::size_t body_limit = 2 * 1024 * 1024;       ///< request body, bytes (413 above)
    std::size_t max_connections = 1024;             ///< open connections; more are refused with 503
    std::chrono::milliseconds read_timeout{10'000}; ///< to receive a whole request once it began
    std::chrono::milliseconds idle_timeout{30'000}; ///< keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{
        30'000}; ///< to send a response; file bodies: without progress
    std::chrono::milliseconds stop_grace{5'000}; ///< stop(): wait for requests in flight
};

/// Bounds of the index's API.
struct index_limits {
    std::size_t max_files_per_peer = 10'000; ///< files in one registration or update
    std::size_t max_lookup_names = 1'000;    ///< names in one lookup
    std::size_t max_list_page = 10'000;      ///< names in one page of the list
};

} // namespace p2pshare
