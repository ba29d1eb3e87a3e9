// Shared by the index server's integration tests: a real IndexServer on 127.0.0.1 port 0 run by
// a background io thread, a keep-alive HTTP client and helpers to check JSON replies.
#pragma once

#include <p2pshare/error.hpp>
#include <p2pshare/index_server.hpp>

#include "test_support.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::test {

/// A real index server on 127.0.0.1, port 0, with its config folder in a temporary folder.
class running_index {
public:
    /// The index runs on the io thread's executor, or with `on_strand` on a strand made from it.
    explicit running_index(IndexServerOptions options = defaults(), bool on_strand = false);
    ~running_index();
    running_index(const running_index&) = delete;
    running_index& operator=(const running_index&) = delete;

    /// Options with short deadlines for tests; config_dir is set by the constructor.
    static IndexServerOptions defaults();

    void stop();
    std::uint16_t port() const noexcept { return port_; }
    IndexServer& server() noexcept { return *server_; }
    io_thread& io() noexcept { return io_; }
    const temp_dir& dir() const noexcept { return dir_; }
    const IndexServerOptions& options() const noexcept { return options_; }

private:
    temp_dir dir_;
    IndexServerOptions options_;
    io_thread io_; // outlives the server
    std::unique_ptr<IndexServer> server_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
};

/// One connection kept open for several requests (Beast, synchronous, 10 s deadline per call).
class http_client {
public:
    explicit http_client(std::uint16_t port);
    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = {},
                    const std::map<std::string, std::string>& headers = {}, unsigned version = 11);
    /// Reads one response (after send_raw, e.g. of pipelined requests).
    http_reply read_reply(bool head = false);
    /// Sends bytes as they are.
    void send_raw(std::string_view bytes);
    /// Reads until `needle` has arrived; returns everything read.
    std::string read_until(std::string_view needle);
    /// Waits until the server closes the connection; false when it is still open after `timeout`
    /// or sent unexpected bytes.
    bool wait_closed(std::chrono::milliseconds timeout);
    void close();

private:
    boost::asio::io_context io_;
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;
};

/// Parses a complete HTTP response received as raw bytes (e.g. from raw_call).
http_reply parse_reply(std::string_view raw);

boost::json::value json_of(const http_reply& reply);

/// A reply is a JSON error {"error": code, "message": TEXT} with `status`.
void check_error(const http_reply& reply, unsigned status, std::string_view code);

std::string sha_of(std::string_view seed);
/// {"name":..., "size":..., "sha256":...}
std::string file_json(std::string_view name, std::uint64_t size = 1);
/// A JSON array of files, all of size 1.
std::string files_json(const std::vector<std::string>& names);

/// POST /v1/peers; checks 201 and returns the token.
std::string register_peer(std::uint16_t port, std::uint32_t id,
                          const std::vector<std::string>& names, std::uint16_t peer_port = 5000);
std::map<std::string, std::string> bearer(const std::string& token);

/// The names of GET /v1/files (every page).
std::vector<std::string> list_names(std::uint16_t port, const std::string& query = {});
/// The peer ids of POST /v1/lookup for one name.
std::vector<std::uint64_t> lookup_ids(std::uint16_t port, const std::string& name);

/// Everything a client can see of the index: the list, the lookup of the listed names and of
/// `extra_names`, the counts of /v1/health. Two equal snapshots mean nothing changed.
std::string snapshot(std::uint16_t port, const std::vector<std::string>& extra_names = {});

/// The methods of an Allow header ("GET, HEAD" -> {GET, HEAD}).
std::vector<std::string> allowed_methods(const http_reply& reply);

/// GET /v1/health answers 200 on a fresh connection.
void check_alive(std::uint16_t port);

} // namespace p2pshare::test
