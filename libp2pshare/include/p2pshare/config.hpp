// p2pshare — the small human-readable files that tell where servers are, and the text forms of
// addresses, durations and sizes that the programs take on their command lines.
//
// Both files are lines of `key=value`; blank lines and lines starting with '#' are ignored.
// Unknown keys are ignored so that later versions can add some. See docs/protocol.md §9.
//
// Every parser returns a Result: on failure an Error with errc::bad_field (errc::not_found or
// errc::io_error when a file cannot be read) and a message that names the file (when one was
// given), the line and the problem, e.g. `p1.config:3: "port" is not a number 1-65535`.
#pragma once

#include <p2pshare/error.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare {

/// A host and a TCP port, and whether the server there speaks TLS.
struct ServerAddress {
    std::string host; ///< a host name, an IPv4 address or an IPv6 address without brackets
    std::uint16_t port = 0;
    bool tls = false; ///< HTTPS: the server's certificate is checked against the CAs trusted

    friend bool operator==(const ServerAddress&, const ServerAddress&) = default;
};

/// Contents of `pN.config`, written by a peer when it starts.
struct PeerConfig {
    std::uint32_t id = 0;
    std::filesystem::path folder; ///< the shared folder
    ServerAddress listen;         ///< where the peer serves its files
    /// The index server it uses now: the first of its list, or the one it moved to when another
    /// could not be reached (the file is rewritten at each move).
    ServerAddress index;
    std::string token; ///< its lease token, to take its registration back after a restart
};

/// `HOST:PORT` or `[IPV6]:PORT` (an IPv6 address needs the brackets); the port is 1-65535.
/// `https://` before it marks a server that speaks TLS (`http://` is allowed too), and a '/'
/// may end it.
Result<ServerAddress> parse_host_port(std::string_view text);
/// `HOST:PORT`, or `[IPV6]:PORT` when the host contains a ':', after `https://` when the
/// server speaks TLS; parse_host_port reads it back.
std::string to_string(const ServerAddress& address);
/// `HOST:PORT[,HOST:PORT...]`: one address or more, in order, separated by commas (spaces around
/// an address are ignored); each as parse_host_port reads it.
Result<std::vector<ServerAddress>> parse_host_port_list(std::string_view text);

/// Parses `key=value` lines. Fails on a line without '=', an empty key or a repeated key.
/// `source` names the text in messages (a file name); empty: messages say "line N".
Result<std::map<std::string, std::string, std::less<>>> parse_key_values(
    std::string_view text, std::string_view source = {});

/// `config/server.config`: the index servers, in order of preference. Each `index=HOST:PORT` line
/// (a key that may be repeated; one line may also list several, separated by commas; an address
/// after `https://` speaks TLS) gives addresses; the older pair of `host` and `port` lines is one
/// address (with `tls=true`: over TLS), placed before those of the `index` lines. At least one
/// address. See docs/protocol.md §9.1.
Result<std::vector<ServerAddress>> parse_server_config(std::string_view text,
                                                       std::string_view source = {});
/// One address as `host` and `port`: the form that every version of the peer reads (what an
/// index server writes).
std::string format_server_config(const ServerAddress& address);
/// Several addresses as one `index=HOST:PORT` line each, in order; a single one as above.
std::string format_server_config(std::span<const ServerAddress> addresses);

Result<PeerConfig> parse_peer_config(std::string_view text, std::string_view source = {});
std::string format_peer_config(const PeerConfig& config);

/// "30s", "500ms", "2m", "1h"; a bare number is seconds.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// "2048", "2kb", "2KiB", "1MiB", "1mb", "1g": bytes, with binary multiples (kb = KiB = 1024).
Result<std::uint64_t> parse_size(std::string_view text);

/// Reads and parses a `server.config` file; messages name `file`. A missing file is
/// errc::not_found.
Result<std::vector<ServerAddress>> read_server_config(const std::filesystem::path& file);
/// Reads and parses a `pN.config` file; messages name `file`. A missing file is errc::not_found.
Result<PeerConfig> read_peer_config(const std::filesystem::path& file);

/// Writes `text` to `file` atomically (a temporary file renamed over it), creating parent folders.
/// A `private_file` is readable by its owner only (pN.config holds the lease token).
boost::system::error_code write_file_atomically(const std::filesystem::path& file,
                                                std::string_view text, bool private_file = false);

} // namespace p2pshare
