// A small p2pshare network in one process for the peer tests: an index server and peers on one
// io_context run by a background thread, all on 127.0.0.1 port 0, in a temporary folder.
#pragma once

#include <p2pshare/file_transfer.hpp>
#include <p2pshare/index_server.hpp>
#include <p2pshare/peer_node.hpp>

#include "test_support.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace p2pshare {

// For the messages of failed checks.
inline std::ostream& operator<<(std::ostream& os, const Error& e) {
    return os << e.code.message() << ": " << e.message;
}

} // namespace p2pshare

namespace p2pshare::test {

inline constexpr std::size_t mib = std::size_t{1} << 20;

/// The report of source `peer` in `r`, or nullptr.
const SourceReport* report_of(const TransferResult& r, std::uint32_t peer);

/// The value of the sample written exactly `series` (its name and labels) in a /metrics text;
/// NaN (equal to nothing) when there is none.
double metric_sample(const std::string& text, const std::string& series);

class network {
public:
    /// Starts an index server with `options` (config_dir is put in the temporary folder).
    explicit network(IndexServerOptions options = {});
    /// Quits every peer still running, then stops the index.
    ~network();
    network(const network&) = delete;
    network& operator=(const network&) = delete;

    /// Options of peer `id`: folder `p<id>` and config file `p<id>.config` in the temporary
    /// folder, the index given explicitly, short retry backoff.
    PeerOptions options(std::uint32_t id) const;

    /// Creates and starts a peer; fails the test unless it starts and registers.
    PeerNode& start_peer(PeerOptions options);
    PeerNode& start_peer(std::uint32_t id) { return start_peer(options(id)); }

    /// Quits peer `node` (awaits async_quit).
    void quit(PeerNode& node);

    /// Stops the index server and starts a new one with `options` (port: the old one unless set).
    void restart_index(IndexServerOptions options);
    void stop_index();

    IndexServer& index() { return *index_; }
    std::uint16_t index_port() const { return index_->port(); }
    const std::filesystem::path& root() const { return dir_.path(); }
    std::filesystem::path operator/(const std::filesystem::path& p) const { return dir_ / p; }
    io_thread& io() { return io_; }

    /// `node` as a source of a file with `content`, as the index would give it to file_transfer.
    FileSource source_of(const PeerNode& node, const std::string& content) const;

private:
    temp_dir dir_;
    io_thread io_;
    std::unique_ptr<IndexServer> index_;
    std::vector<std::unique_ptr<PeerNode>> peers_;
};

/// The regular files of `folder` (names only).
std::vector<std::string> files_in(const std::filesystem::path& folder);

} // namespace p2pshare::test
