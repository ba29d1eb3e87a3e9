// p2pshare — the small human-readable files that tell where servers are.
//
// Both files are lines of `key=value`; blank lines and lines starting with '#' are ignored.
// Unknown keys are ignored so that later versions can add some. See docs/protocol.md.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace p2pshare {

/// A host and a TCP port.
struct ServerAddress {
    std::string host;
    std::uint16_t port = 0;

    friend bool operator==(const ServerAddress&, const ServerAddress&) = default;
};

/// Contents of `pN.config`, written by a peer when it starts.
struct PeerConfig {
    std::uint32_t id = 0;
    std::filesystem::path folder; ///< the shared folder
    ServerAddress listen;         ///< where the peer serves its files
    ServerAddress index;          ///< the index server it registers with
    std::string token; ///< its lease token, to take its registration back after a restart
};

/// Parses `key=value` lines. Fails with errc::bad_field on a line without '=' or a repeated key.
boost::system::result<std::map<std::string, std::string, std::less<>>> parse_key_values(
    std::string_view text);

boost::system::result<ServerAddress> parse_server_config(std::string_view text);
std::string format_server_config(const ServerAddress& address);

boost::system::result<PeerConfig> parse_peer_config(std::string_view text);
std::string format_peer_config(const PeerConfig& config);

/// "30s", "500ms", "2m", "1h"; a bare number is seconds. Fails with errc::bad_field.
boost::system::result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// "2048", "2kb", "2KiB", "1MiB", "1mb", "1g": bytes, with binary multiples (kb = KiB = 1024).
boost::system::result<std::uint64_t> parse_size(std::string_view text);

/// Reads and parses `dir/server.config`.
boost::system::result<ServerAddress> read_server_config(const std::filesystem::path& file);
boost::system::result<PeerConfig> read_peer_config(const std::filesystem::path& file);

/// Writes `text` to `file` atomically (a temporary file renamed over it), creating parent folders.
/// A `private_file` is readable by its owner only (pN.config holds the lease token).
boost::system::error_code write_file_atomically(const std::filesystem::path& file,
                                                std::string_view text, bool private_file = false);

} // namespace p2pshare
