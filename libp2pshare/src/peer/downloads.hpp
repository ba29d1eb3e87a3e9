// The peer's downloads: one lookup for all the names (in batches of the index's limit), an answer
// checked before anything is fetched, then bounded workers over FileTransfer. Every worker runs
// in a parallel group that the operation awaits: cancelling the operation cancels the workers
// and waits for them, so that none outlives the state it uses.
#pragma once

#include "metrics.hpp"

#include "index_session.hpp"
#include "shared_folder.hpp"

#include <p2pshare/peer_node.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace p2pshare::detail {

class downloads {
public:
    struct settings {
        std::uint32_t id = 0; ///< this peer, never its own source
        std::size_t max_parallel = 4;
        TransferOptions transfer;
        std::shared_ptr<peer_metrics> metrics; ///< what the downloads did (none: not counted)
    };

    /// `executor` must be serial (the peer's).
    downloads(boost::asio::any_io_executor executor, std::shared_ptr<shared_folder> folder,
              std::shared_ptr<index_session> session, settings s);

    /// See PeerNode::async_download. Must run on the executor.
    boost::asio::awaitable<std::vector<DownloadOutcome>> async_download(
        std::vector<std::string> names, std::shared_ptr<std::atomic<bool>> stopping);

    /// Idle keep-alive connections to sources (on the executor).
    std::size_t idle_connections() const noexcept { return transfer_->idle_connections(); }

private:
    boost::asio::any_io_executor executor_;
    std::shared_ptr<shared_folder> folder_;
    std::shared_ptr<index_session> session_;
    settings settings_;
    std::shared_ptr<FileTransfer> transfer_;
};

} // namespace p2pshare::detail
