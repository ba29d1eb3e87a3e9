// Keep-alive connections to sources, kept between pieces and between downloads, so that a series
// of small downloads does not pay a TCP connect each. Used on one serial executor, on which a timer
// closes each connection once it has been idle for the time given.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include "client_stream.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace p2pshare::detail {

class connection_pool : public std::enable_shared_from_this<connection_pool> {
public:
    /// Keeps at most `per_source` idle connections per host:port, each at most `idle` long.
    /// `executor` must be serial: every call, and the timer, run on it. Made by make_shared.
    connection_pool(boost::asio::any_io_executor executor, std::chrono::milliseconds idle,
                    std::size_t per_source);

    /// An idle connection to `key` (host:port), the most recently used first.
    std::optional<client_stream> take(const std::string& key);
    /// Keeps an open connection whose last answer allowed keep-alive (not one cancelled).
    void put(const std::string& key, client_stream stream);
    /// Closes every idle connection.
    void clear();
    std::size_t idle() const noexcept;

private:
    void sweep(std::chrono::steady_clock::time_point now);
    /// Sets the timer for the connection idle longest, unless it is set already.
    void arm();

    struct kept {
        client_stream stream;
        std::chrono::steady_clock::time_point since;
    };
    std::chrono::milliseconds idle_;
    std::size_t per_source_;
    std::map<std::string, std::deque<kept>, std::less<>> idle_streams_;
    boost::asio::steady_timer timer_;
    bool armed_ = false;
};

} // namespace p2pshare::detail
