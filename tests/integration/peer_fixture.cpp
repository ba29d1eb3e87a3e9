#include "peer_fixture.hpp"

#include <p2pshare/error.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace p2pshare::test {

namespace {

IndexServerOptions with_config_dir(IndexServerOptions options, const temp_dir& dir) {
    options.host = "127.0.0.1";
    options.config_dir = dir / "config";
    return options;
}

} // namespace

network::network(IndexServerOptions options) {
    index_ = std::make_unique<IndexServer>(io_.executor(), with_config_dir(options, dir_));
    const auto ec = index_->start();
    if (ec) throw std::runtime_error("the index server did not start: " + ec.message);
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

PeerOptions network::options(std::uint32_t id) const {
    PeerOptions o;
    o.id = id;
    o.folder = dir_ / ("p" + std::to_string(id));
    o.config_file = dir_ / ("p" + std::to_string(id) + ".config");
    o.server_config = dir_ / "config" / "server.config";
    o.host = "127.0.0.1";
    o.port = 0;
    o.index = {ServerAddress{"127.0.0.1", index_->port()}};
    o.retry_max = std::chrono::milliseconds(100);
    return o;
}

PeerNode& network::start_peer(PeerOptions options) {
    auto node = std::make_unique<PeerNode>(io_.executor(), std::move(options));
    const auto e = io_.run(node->async_start());
    BOOST_REQUIRE_MESSAGE(!e.code, "peer " << node->id() << " did not start: " << e.message);
    BOOST_REQUIRE(node->registered());
    BOOST_REQUIRE_NE(node->port(), 0);
    peers_.push_back(std::move(node));
    return *peers_.back();
}

void network::quit(PeerNode& node) { io_.run(node.async_quit()); }

void network::stop_index() {
    if (!index_) return;
    io_.run(index_->async_stop());
}

void network::restart_index(IndexServerOptions options) {
    const auto old_port = index_ ? index_->port() : 0;
    stop_index();
    index_.reset();
    if (options.port == 0) options.port = old_port;
    index_ = std::make_unique<IndexServer>(io_.executor(), with_config_dir(options, dir_));
    const auto ec = index_->start();
    if (ec) throw std::runtime_error("the index server did not restart: " + ec.message);
}

FileSource network::source_of(const PeerNode& node, const std::string& content) const {
    return FileSource{node.id(),      "127.0.0.1",         node.port(),
                      content.size(), sha256_hex(content), piece_root_hex(content)};
}

std::vector<std::string> files_in(const std::filesystem::path& folder) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(folder)) {
        if (!e.is_symlink() && e.is_regular_file()) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

const SourceReport* report_of(const TransferResult& r, std::uint32_t peer) {
    for (const auto& s : r.sources)
        if (s.peer == peer) return &s;
    return nullptr;
}

double metric_sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ') {
            return std::strtod(line.c_str() + series.size() + 1, nullptr);
        }
    }
    return std::nan("");
}

} // namespace p2pshare::test
