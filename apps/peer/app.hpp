// peer: the running peer of the app (its io thread, its node, its terminal) and its actions.
#pragma once

#include "line_reader.hpp"
#include "progress_bar.hpp"

#include <p2pshare/peer_node.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace peer {

/// The node runs on `io`, which `thread` alone runs (a serial executor, as PeerNode requires);
/// the main thread reads the terminal and waits for each action with run().
struct PeerApp {
    boost::asio::io_context io{1}; // run by `thread` only (other threads post to it)
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work{
        boost::asio::make_work_guard(io)};
    std::thread thread;
    std::unique_ptr<p2pshare::PeerNode> node;
    LineReader input;
    ProgressBar bar;
    bool json = false;

    /// Runs `op` on the io thread and waits for its result.
    template <class T>
    T run(boost::asio::awaitable<T> op) {
        return boost::asio::co_spawn(io, std::move(op), boost::asio::use_future).get();
    }
    void run(boost::asio::awaitable<void> op) {
        boost::asio::co_spawn(io, std::move(op), boost::asio::use_future).get();
    }

    /// The actions of the menu and the subcommands; each returns whether it fully succeeded.
    bool list();
    bool get(std::vector<std::string> names);
    bool rm(std::vector<std::string> names);
    void show_local();
    /// Leaves the index, lets uploads finish (says so unless --json).
    void quit();
};

/// A peer id: a decimal number 0..4294967295.
std::optional<std::uint32_t> parse_id(const std::string& text);

} // namespace peer
