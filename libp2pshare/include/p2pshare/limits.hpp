// p2pshare — bounds and deadlines of the HTTP servers. Defaults are documented in docs/protocol.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace p2pshare {

struct ServerLimits {
    std::size_t header_limit = 8 * 1024;            ///< request line + headers, bytes (431 above)
    std::size_t body_limit = 2 * 1024 * 1024;       ///< request body, bytes (413 above)
    std::size_t max_connections = 1024;             ///< open connections; more are refused with 503
    std::chrono::milliseconds read_timeout{10'000}; ///< to receive a whole request once it began
    std::chrono::milliseconds idle_timeout{30'000}; ///< keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{
        30'000}; ///< to send a response; file bodies: without progress
    std::chrono::milliseconds stop_grace{5'000}; ///< stop(): wait for requests in flight
    /// stop(): a connection waiting for its next request is kept this long for it, and served,
    /// so that a client fetching a file piece by piece finishes it; 0 closes such connections at
    /// once and answers requests in flight with "Connection: close". Either way no new
    /// connection is accepted and stop_grace cuts connections that make no progress.
    std::chrono::milliseconds stop_idle{0};
};

/// Bounds of the index's API and of what it holds. /v1/health tells clients the ones they
/// need (docs/protocol.md §3 and §6.7).
struct IndexLimits {
    std::size_t max_files_per_peer = 10'000; ///< files in one registration or update
    std::size_t max_lookup_names = 1'000;    ///< names in one lookup
    std::size_t max_list_page = 10'000;      ///< names in one page of the list
    std::size_t max_peers = 1'000'000;       ///< live peers; more registrations get 503 "full"
    /// (peer, file) pairs over every live peer, /v1/health's "files"; beyond: 503 "full".
    std::size_t max_files = 2'000'000;
    /// Bytes of file names over those pairs (a name shared by two peers counts twice);
    /// beyond: 503 "full".
    std::size_t max_name_bytes = 256 * 1024 * 1024;
    /// Live peers registered from one client address (the TCP peer of the registering
    /// request); beyond: 503 "full". Tests and benchmarks on loopback raise it.
    std::size_t max_peers_per_address = 64;
    /// Sources given for one name in a lookup answer; a random sample when more peers share it.
    std::size_t max_sources_per_name = 50;
    /// Names one list request with `contains` examines past its cursor; the page may then be
    /// short (even empty) with a `next_after` to continue from.
    std::size_t max_list_scan = 100'000;
    std::uint16_t min_peer_port = 1; ///< lowest port a peer may advertise (1024: no system ports)
    /// A peer may only advertise the address its registration comes from (no third-party
    /// addresses: the index cannot be used to send downloaders to someone else's host).
    bool host_must_match_source = false;
};

} // namespace p2pshare
