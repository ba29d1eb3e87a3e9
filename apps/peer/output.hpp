// peer: what each action prints, for people or (with --json) as one JSON object on one line.
#pragma once

#include <p2pshare/error.hpp>
#include <p2pshare/peer_node.hpp>

#include <boost/system/error_code.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace peer {

/// 1536 -> "1.5 KiB", 100 -> "100 B".
std::string human_size(double bytes);
/// "2.0 MiB/s"; "-" when no time has passed.
std::string human_rate(double bytes, double seconds);

/// The error name of docs/protocol.md §2 that scripts test for ("cancelled" for a cancelled
/// operation, "io_error" for an error of the system).
std::string error_name(const boost::system::error_code& ec);

/// `list`: every name in the network, or why they cannot be listed. Returns whether it listed.
bool print_network_files(const p2pshare::Result<std::vector<std::string>>& names, bool json);
/// `get`: one line (or JSON entry) per name. Returns whether every file was downloaded.
bool print_downloads(const std::vector<p2pshare::DownloadOutcome>& outcomes, bool json);
/// `rm`: one line (or JSON entry) per name. Returns whether every file was deleted.
bool print_deletions(const std::vector<p2pshare::DeleteOutcome>& outcomes, bool json);
/// The menu's list of the files in the shared folder (before it asks which to delete).
void print_local_files(const p2pshare::Result<std::vector<p2pshare::LocalFile>>& listed,
                       const std::filesystem::path& folder);

} // namespace peer
