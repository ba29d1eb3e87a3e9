#include "app.hpp"

#include "output.hpp"

#include <charconv>
#include <iostream>

namespace peer {

bool PeerApp::list() { return print_network_files(run(node->async_list_network_files()), json); }

bool PeerApp::get(std::vector<std::string> names) {
    const auto outcomes = run(node->async_download(std::move(names)));
    bar.finish();
    return print_downloads(outcomes, json);
}

bool PeerApp::rm(std::vector<std::string> names) {
    return print_deletions(run(node->async_delete_local(std::move(names))), json);
}

void PeerApp::show_local() {
    const auto listed = run(node->async_local_files());
    print_local_files(listed, node->folder());
}

void PeerApp::quit() {
    if (!json) std::cout << "Quitting: leaving the index, letting uploads finish...\n";
    run(node->async_quit());
    if (!json) std::cout << "Bye.\n";
}

std::optional<std::uint32_t> parse_id(const std::string& text) {
    std::uint32_t id = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
    return id;
}

} // namespace peer
