#include "output.hpp"

#include <boost/asio/error.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

namespace peer {

std::string human_size(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return buf;
}

std::string human_rate(double bytes, double seconds) {
    if (seconds <= 0) return "-";
    return human_size(bytes / seconds) + "/s";
}

std::string error_name(const boost::system::error_code& ec) {
    if (ec.category() == p2pshare::p2pshare_category()) {
        return std::string(p2pshare::to_string(static_cast<p2pshare::errc>(ec.value())));
    }
    return ec == boost::asio::error::operation_aborted ? "cancelled" : "io_error";
}

bool print_network_files(const p2pshare::Result<std::vector<std::string>>& names, bool json) {
    if (!names) {
        if (json) {
            boost::json::object o;
            o["error"] = error_name(names.error().code);
            o["message"] = names.error().message;
            std::cout << boost::json::serialize(o) << '\n';
        } else {
            std::cout << "Cannot list the network's files: " << names.error().message << '\n';
        }
        return false;
    }
    if (json) {
        boost::json::object o;
        auto& a = o["files"].emplace_array();
        for (const auto& n : *names)
            a.emplace_back(n);
        std::cout << boost::json::serialize(o) << '\n';
    } else if (names->empty()) {
        std::cout << "No files in the network yet.\n";
    } else {
        std::cout << names->size() << " files in the network:\n";
        for (const auto& n : *names)
            std::cout << "  " << n << '\n';
    }
    return true;
}

bool print_downloads(const std::vector<p2pshare::DownloadOutcome>& outcomes, bool json) {
    bool all = true;
    boost::json::object o;
    auto& a = o["results"].emplace_array();
    for (const auto& r : outcomes) {
        const bool ok = !r.error;
        all = all && ok;
        const double seconds = std::chrono::duration<double>(r.transfer.elapsed).count();
        if (json) {
            boost::json::object e;
            e["name"] = r.name;
            e["status"] = ok                                      ? "downloaded"
                          : r.error == p2pshare::errc::no_sources ? "not_found"
                                                                  : "failed";
            if (ok) {
                e["size"] = r.transfer.size;
                e["received"] = r.transfer.received;
                e["resumed_from"] = r.transfer.resumed_from;
                e["seconds"] = seconds;
                e["source"] = r.transfer.source;
                e["source_peer"] = r.transfer.source_peer;
                e["pieces"] = r.transfer.pieces;
                e["refetched"] = r.transfer.refetched;
                e["end_game_copies"] = r.transfer.end_game_copies;
                e["connections"] = r.transfer.connections;
            } else {
                e["error"] = error_name(r.error);
                e["message"] = r.message;
            }
            auto& sources = e["sources"].emplace_array();
            for (const auto& s : r.transfer.sources) {
                boost::json::object so;
                so["peer"] = s.peer;
                so["address"] = s.address;
                so["bytes"] = s.bytes;
                so["pieces"] = s.pieces;
                so["bad_pieces"] = s.bad_pieces;
                so["banned"] = s.banned;
                if (!s.failure.empty()) so["failure"] = s.failure;
                sources.emplace_back(std::move(so));
            }
            a.emplace_back(std::move(e));
        } else if (ok) {
            std::cout << "  downloaded " << r.name << "  "
                      << human_size(static_cast<double>(r.transfer.size)) << " in "
                      << seconds * 1000 << " ms ("
                      << human_rate(static_cast<double>(r.transfer.received), seconds) << ")";
            std::size_t used = 0;
            for (const auto& s : r.transfer.sources)
                used += s.bytes > 0 ? 1 : 0;
            if (used <= 1) {
                std::cout << " from peer " << r.transfer.source_peer << " at " << r.transfer.source
                          << '\n';
            } else {
                std::cout << " from " << used << " peers:\n";
                for (const auto& s : r.transfer.sources) {
                    if (s.bytes == 0) continue;
                    std::cout << "      peer " << s.peer << " at " << s.address << ": "
                              << human_size(static_cast<double>(s.bytes)) << '\n';
                }
            }
            for (const auto& s : r.transfer.sources) {
                if (s.banned) {
                    std::cout << "      peer " << s.peer << " at " << s.address
                              << " banned: " << s.failure << '\n';
                }
            }
        } else if (r.error == p2pshare::errc::no_sources) {
            std::cout << "  not found  " << r.name << ": " << r.message << '\n';
        } else {
            std::cout << "  failed     " << r.name << ": " << r.message << '\n';
        }
    }
    if (json) std::cout << boost::json::serialize(o) << '\n';
    return all;
}

bool print_deletions(const std::vector<p2pshare::DeleteOutcome>& outcomes, bool json) {
    bool all = true;
    boost::json::object o;
    auto& a = o["results"].emplace_array();
    for (const auto& r : outcomes) {
        const bool ok = !r.error;
        all = all && ok;
        if (json) {
            boost::json::object e;
            e["name"] = r.name;
            e["status"] = ok                                     ? "deleted"
                          : r.error == p2pshare::errc::not_found ? "not_found"
                                                                 : "failed";
            if (!ok) {
                e["error"] = error_name(r.error);
                e["message"] = r.message;
            }
            a.emplace_back(std::move(e));
        } else if (ok) {
            std::cout << "  deleted    " << r.name << '\n';
        } else if (r.error == p2pshare::errc::not_found) {
            std::cout << "  not found  " << r.name << ": " << r.message << '\n';
        } else {
            std::cout << "  refused    " << r.name << ": " << r.message << '\n';
        }
    }
    if (json) std::cout << boost::json::serialize(o) << '\n';
    return all;
}

void print_local_files(const p2pshare::Result<std::vector<p2pshare::LocalFile>>& listed,
                       const std::filesystem::path& folder) {
    if (!listed) {
        std::cout << "Cannot list your files: " << listed.error().message << '\n';
        return;
    }
    const auto& files = *listed;
    if (files.empty()) {
        std::cout << "Your folder " << folder.string() << " is empty.\n";
        return;
    }
    std::cout << "Your files in " << folder.string() << ":\n";
    for (const auto& f : files) {
        std::cout << "  " << f.name << "  (" << human_size(static_cast<double>(f.size)) << ")\n";
    }
}

} // namespace peer
