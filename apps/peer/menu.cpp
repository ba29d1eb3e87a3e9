#include "menu.hpp"

#include <iostream>
#include <sstream>
#include <utility>
#include <vector>

namespace peer {

namespace {

std::vector<std::string> split_words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

} // namespace

std::optional<std::string> ask_id(LineReader& input) {
    for (;;) {
        std::cout << "Peer id (a number; the peer shares folder p<id>): " << std::flush;
        const auto line = input.read_line();
        if (!line) return std::nullopt;
        const auto words = split_words(*line);
        if (words.size() == 1 && parse_id(words.front())) return words.front();
        std::cout << "'" << *line << "' is not a peer id: enter a number such as 1.\n";
    }
}

int run_menu(PeerApp& app) {
    std::cout << "p2pshare peer " << app.node->id() << ": sharing " << app.node->folder().string()
              << " on port " << app.node->port() << '\n';
    for (;;) {
        std::cout << "\n  1  list the files in the network\n"
                     "  2  download files\n"
                     "  3  delete files in my folder\n"
                     "  4  quit\n"
                     "Choice: "
                  << std::flush;
        const auto line = app.input.read_line();
        if (!line) {
            std::cout << '\n';
            break;
        }
        const auto words = split_words(*line);
        const std::string choice = words.empty() ? "" : words.front();
        if (choice == "1") {
            app.list();
        } else if (choice == "2" || choice == "3") {
            if (choice == "3") app.show_local();
            std::cout << "File names to " << (choice == "2" ? "download" : "delete")
                      << " (separated by spaces): " << std::flush;
            const auto names = app.input.read_line();
            if (!names) break;
            auto list = split_words(*names);
            if (list.empty()) {
                std::cout << "No names given.\n";
                continue;
            }
            if (choice == "2") {
                app.get(std::move(list));
            } else {
                app.rm(std::move(list));
            }
        } else if (choice == "4") {
            break;
        } else {
            std::cout << "Unknown choice '" << *line << "': please enter 1, 2, 3 or 4.\n";
        }
    }
    app.quit();
    return 0;
}

} // namespace peer
