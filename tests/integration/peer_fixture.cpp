#include "peer_fixture.hpp"

#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>

namespace p2pshare::test {

namespace {

index_server_options with_config_dir(index_server_options options, const temp_dir& dir) {
    options.host = "127.0.0.1";
    options.config_dir = dir / "config";
    return options;
}

} // namespace

network::network(index_server_options options) {
    index_ = std::make_unique<index_server>(io_.executor(), with_config_dir(options, dir_));
    const auto ec = index_->start();
    if (ec) throw std::runtime_error("the index server did not start: " + ec.message());
}

network::~network() {
    try {
        for (auto& p : peers_)
            io_.run(p->async_quit());
        if (index_) io_.run(index_->async_stop());
    } catch (const std::exception& x) {
        BOOST_TEST_MESSAGE("teardown: " << x.what());
    }
    peers_.clear();
    index_.reset();
}

peer_options network::options(std::uint32_t id) const {
    peer_options o;
    o.id = id;
    o.folder = dir_ / ("p" + std::to_string(id));
    o.config_file = dir_ / ("p" + std::to_string(id) + ".config");
    o.server_config = dir_ / "config" / "server.config";
    o.host = "127.0.0.1";
    o.port = 0;
    o.index = server_address{"127.0.0.1", index_->port()};
    o.retry_max = std::chrono::milliseconds(100);
    return o;
}

peer_node& network::start_peer(peer_options options) {
    auto node = std::make_unique<peer_node>(io_.executor(), std::move(options));
    const auto ec = io_.run(node->async_start());
    BOOST_REQUIRE_MESSAGE(!ec, "peer " << node->id() << " did not start: " << ec.message());
    BOOST_REQUIRE(node->registered());
    BOOST_REQUIRE_NE(node->port(), 0);
    peers_.push_back(std::move(node));
    return *peers_.back();
}

void network::quit(peer_node& node) { io_.run(node.async_quit()); }

void network::stop_index() {
    if (!index_) return;
    io_.run(index_->async_stop());
}

void network::restart_index(index_server_options options) {
    const auto old_port = index_ ? index_->port() : 0;
    stop_index();
    index_.reset();
    if (options.port == 0) options.port = old_port;
    index_ = std::make_unique<index_server>(io_.executor(), with_config_dir(options, dir_));
    const auto ec = index_->start();
    if (ec) throw std::runtime_error("the index server did not restart: " + ec.message());
}

file_source network::source_of(const peer_node& node, const std::string& content) const {
    return file_source{node.id(), "127.0.0.1", node.port(), content.size(), sha256_hex(content)};
}

std::vector<std::string> files_in(const std::filesystem::path& folder) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(folder)) {
        if (!e.is_symlink() && e.is_regular_file()) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace p2pshare::test
