// peer: a p2pshare peer. Shares folder pN, registers with the index server and offers the
// original menu (list, download, delete, quit), or runs one action as a subcommand.
#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>
#include <p2pshare/peer_node.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace po = boost::program_options;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// ---- standard input, interruptible by a signal ------------------------------------------------

/// Reads lines from stdin; a signal handler (through wake()) makes read_line return nullopt.
class line_reader {
public:
    line_reader() {
        if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe failed");
    }
    ~line_reader() {
        ::close(wake_[0]);
        ::close(wake_[1]);
    }
    void wake() {
        woken_ = true;
        const char c = 1;
        [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
    }
    bool woken() const { return woken_; }

    /// The next line without its newline; nullopt at end of input or when woken.
    std::optional<std::string> read_line() {
        for (;;) {
            if (woken_) return std::nullopt;
            if (const auto eol = buffer_.find('\n'); eol != std::string::npos) {
                std::string line = buffer_.substr(0, eol);
                buffer_.erase(0, eol + 1);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                return line;
            }
            if (eof_) {
                if (buffer_.empty()) return std::nullopt;
                return std::exchange(buffer_, {});
            }
            pollfd fds[2] = {{0, POLLIN, 0}, {wake_[0], POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return std::nullopt;
            }
            if (fds[1].revents != 0) return std::nullopt;
            char buf[4096];
            const auto n = ::read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                eof_ = true;
            } else {
                buffer_.append(buf, static_cast<std::size_t>(n));
            }
        }
    }

    /// Blocks until woken.
    void wait() {
        pollfd p{wake_[0], POLLIN, 0};
        while (!woken_)
            ::poll(&p, 1, -1);
    }

private:
    int wake_[2]{-1, -1};
    std::atomic<bool> woken_{false};
    std::string buffer_;
    bool eof_ = false;
};

// ---- formatting ------------------------------------------------------------------------------

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

/// The error name of docs/protocol.md §2 that scripts test for ("cancelled" for a cancelled
/// operation, "io_error" for an error of the system).
std::string error_name(const boost::system::error_code& ec) {
    if (ec.category() == p2pshare::p2pshare_category()) {
        return std::string(p2pshare::to_string(static_cast<p2pshare::errc>(ec.value())));
    }
    return ec == boost::asio::error::operation_aborted ? "cancelled" : "io_error";
}

std::vector<std::string> split_words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

/// One progress line for all downloads in flight, redrawn at most ten times a second.
class progress_bar {
public:
    void update(const p2pshare::TransferProgress& p) {
        std::lock_guard lock(mutex_);
        if (!started_) {
            started_ = true;
            start_ = std::chrono::steady_clock::now();
        }
        auto& f = files_[p.name];
        f = {p.done, p.total};
        const auto now = std::chrono::steady_clock::now();
        if (now - last_draw_ < 100ms && p.done != p.total) return;
        last_draw_ = now;
        std::uint64_t done = 0;
        std::uint64_t total = 0;
        for (const auto& [name, v] : files_) {
            done += v.first;
            total += v.second;
        }
        const double seconds = std::chrono::duration<double>(now - start_).count();
        const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        constexpr int width = 30;
        const int filled =
            total ? static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total))
                  : width;
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        char eta[32] = "-";
        if (rate > 0 && total >= done) {
            std::snprintf(eta, sizeof eta, "%.1fs", static_cast<double>(total - done) / rate);
        }
        std::printf("\r\033[K  [%s] %s / %s  %s  left %s  (%zu files)", bar.c_str(),
                    human_size(static_cast<double>(done)).c_str(),
                    human_size(static_cast<double>(total)).c_str(),
                    rate > 0 ? (human_size(rate) + "/s").c_str() : "-", eta, files_.size());
        std::fflush(stdout);
        drawn_ = true;
    }
    void finish() {
        std::lock_guard lock(mutex_);
        if (drawn_) std::printf("\r\033[K");
        std::fflush(stdout);
        files_.clear();
        started_ = drawn_ = false;
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> files_;
    std::chrono::steady_clock::time_point start_{};
    std::chrono::steady_clock::time_point last_draw_{};
    bool started_ = false;
    bool drawn_ = false;
};

// ---- the actions -----------------------------------------------------------------------------

struct app {
    asio::io_context io{1}; // run by `thread` only (other threads post to it)
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
        asio::make_work_guard(io)};
    std::thread thread;
    std::unique_ptr<p2pshare::PeerNode> node;
    line_reader input;
    progress_bar bar;
    bool json = false;

    template <class T>
    T run(asio::awaitable<T> op) {
        return asio::co_spawn(io, std::move(op), asio::use_future).get();
    }
    void run(asio::awaitable<void> op) {
        asio::co_spawn(io, std::move(op), asio::use_future).get();
    }

    bool list() {
        auto names = run(node->async_list_network_files());
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

    bool get(std::vector<std::string> names) {
        const auto outcomes = run(node->async_download(std::move(names)));
        bar.finish();
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
                } else {
                    e["error"] = error_name(r.error);
                    e["message"] = r.message;
                }
                a.emplace_back(std::move(e));
            } else if (ok) {
                std::cout << "  downloaded " << r.name << "  "
                          << human_size(static_cast<double>(r.transfer.size)) << " in "
                          << seconds * 1000 << " ms ("
                          << human_rate(static_cast<double>(r.transfer.received), seconds)
                          << ") from peer " << r.transfer.source_peer << " at " << r.transfer.source
                          << '\n';
            } else if (r.error == p2pshare::errc::no_sources) {
                std::cout << "  not found  " << r.name << ": " << r.message << '\n';
            } else {
                std::cout << "  failed     " << r.name << ": " << r.message << '\n';
            }
        }
        if (json) std::cout << boost::json::serialize(o) << '\n';
        return all;
    }

    bool rm(std::vector<std::string> names) {
        const auto outcomes = run(node->async_delete_local(std::move(names)));
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

    void show_local() {
        const auto listed = run(node->async_local_files());
        if (!listed) {
            std::cout << "Cannot list your files: " << listed.error().message << '\n';
            return;
        }
        const auto& files = *listed;
        if (files.empty()) {
            std::cout << "Your folder " << node->folder().string() << " is empty.\n";
            return;
        }
        std::cout << "Your files in " << node->folder().string() << ":\n";
        for (const auto& f : files) {
            std::cout << "  " << f.name << "  (" << human_size(static_cast<double>(f.size))
                      << ")\n";
        }
    }

    void quit() {
        if (!json) std::cout << "Quitting: leaving the index, letting uploads finish...\n";
        run(node->async_quit());
        if (!json) std::cout << "Bye.\n";
    }

    int menu() {
        std::cout << "p2pshare peer " << node->id() << ": sharing " << node->folder().string()
                  << " on port " << node->port() << '\n';
        for (;;) {
            std::cout << "\n  1  list the files in the network\n"
                         "  2  download files\n"
                         "  3  delete files in my folder\n"
                         "  4  quit\n"
                         "Choice: "
                      << std::flush;
            const auto line = input.read_line();
            if (!line) {
                std::cout << '\n';
                break;
            }
            const auto words = split_words(*line);
            const std::string choice = words.empty() ? "" : words.front();
            if (choice == "1") {
                list();
            } else if (choice == "2") {
                std::cout << "File names to download (separated by spaces): " << std::flush;
                const auto names = input.read_line();
                if (!names) break;
                auto list = split_words(*names);
                if (list.empty()) {
                    std::cout << "No names given.\n";
                    continue;
                }
                get(std::move(list));
            } else if (choice == "3") {
                show_local();
                std::cout << "File names to delete (separated by spaces): " << std::flush;
                const auto names = input.read_line();
                if (!names) break;
                auto list = split_words(*names);
                if (list.empty()) {
                    std::cout << "No names given.\n";
                    continue;
                }
                rm(std::move(list));
            } else if (choice == "4") {
                break;
            } else {
                std::cout << "Unknown choice '" << *line << "': please enter 1, 2, 3 or 4.\n";
            }
        }
        quit();
        return 0;
    }
};

std::optional<std::uint32_t> parse_id(const std::string& text) {
    std::uint32_t id = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
    return id;
}

} // namespace

int main(int argc, char** argv) {
    p2pshare::PeerOptions options;
    std::string id_text;
    std::string index;
    std::string server_config = "config/server.config";
    std::string folder;
    std::string config;
    std::string drain = "10s";
    std::string rescan = "5s";
    std::string log_level = "warn";
    std::string command;
    std::vector<std::string> names;
    po::options_description desc(
        "peer: a p2pshare peer. It shares folder pN, writes pN.config, registers with the index\n"
        "server (found in config/server.config) and serves its files to other peers.\n\n"
        "Usage:\n"
        "  peer [--id N] [options]           the menu: 1 list, 2 download, 3 delete, 4 quit\n"
        "  peer --id N list [--json]         print every file name in the network\n"
        "  peer --id N get NAME... [--json]  download files into pN (exit 1 if any failed)\n"
        "  peer --id N rm NAME... [--json]   delete files from pN (exit 1 if any failed)\n"
        "  peer --id N serve                 share pN until SIGINT or SIGTERM\n"
        "Without --id the menu first asks for it. SIGINT/SIGTERM quit gracefully: the peer\n"
        "leaves the index, lets uploads in progress finish, then exits.\n\nOptions");
    // clang-format off
    desc.add_options()
        ("help,h", "show this help and exit")
        ("id", po::value(&id_text), "the peer's numeric id N")
        ("folder", po::value(&folder), "shared folder (default pN)")
        ("config", po::value(&config), "the peer's config file (default pN.config)")
        ("host", po::value(&options.host)->default_value(options.host),
         "address the file server listens on")
        ("port", po::value(&options.port)->default_value(0), "file server port; 0 = any free")
        ("advertise-host", po::value(&options.advertise_host),
         "address other peers should use (default: --host)")
        ("index", po::value(&index), "index server HOST:PORT (default: read --server-config)")
        ("server-config", po::value(&server_config)->default_value(server_config),
         "the index server's config file")
        ("parallel", po::value(&options.max_parallel_downloads)
             ->default_value(options.max_parallel_downloads), "downloads at once")
        ("overwrite", po::bool_switch(&options.transfer.overwrite),
         "let a download replace an existing file")
        ("drain-timeout", po::value(&drain)->default_value(drain),
         "on quit, cut uploads that made no progress for this long")
        ("rescan", po::value(&rescan)->default_value(rescan),
         "how often the folder is checked for files added or removed by hand")
        ("json", "machine-readable output (one JSON object)")
        ("no-progress", "no progress bar, even on a terminal")
        ("log-level", po::value(&log_level)->default_value(log_level),
         "trace, debug, info, warn, error or off (logs go to stderr)");
    po::options_description hidden;
    hidden.add_options()
        ("command", po::value(&command))
        ("names", po::value(&names)->composing());
    // clang-format on
    po::options_description all;
    all.add(desc).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1).add("names", -1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(),
                  vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "peer: " << e.what() << "\nTry 'peer --help'.\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc << '\n';
        return 0;
    }
    const auto fail_usage = [](const std::string& message) {
        std::cerr << "peer: " << message << "\nTry 'peer --help'.\n";
        return 2;
    };
    if (!command.empty() && command != "list" && command != "get" && command != "rm" &&
        command != "serve") {
        return fail_usage("unknown command '" + command + "' (list, get, rm or serve)");
    }
    if ((command == "get" || command == "rm") && names.empty()) {
        return fail_usage(command + " needs at least one file name");
    }
    if ((command == "list" || command == "serve") && !names.empty()) {
        return fail_usage(command + " takes no file names");
    }
    const auto drain_ms = p2pshare::parse_duration(drain);
    const auto rescan_ms = p2pshare::parse_duration(rescan);
    if (!drain_ms) return fail_usage("--drain-timeout: '" + drain + "' is not a duration");
    if (!rescan_ms || rescan_ms->count() <= 0) {
        return fail_usage("--rescan: '" + rescan + "' is not a duration");
    }
    options.drain_timeout = *drain_ms;
    options.rescan_interval = *rescan_ms;
    options.server_config = server_config;
    if (!index.empty()) {
        const auto colon = index.rfind(':');
        std::uint16_t port = 0;
        const auto port_text = colon == std::string::npos ? "" : index.substr(colon + 1);
        const auto [p, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (colon == std::string::npos || colon == 0 || ec != std::errc{} || port == 0 ||
            p != port_text.data() + port_text.size()) {
            return fail_usage("--index: '" + index + "' is not HOST:PORT");
        }
        options.index = p2pshare::ServerAddress{index.substr(0, colon), port};
    }
    const auto level = spdlog::level::from_str(log_level);
    if (level == spdlog::level::off && log_level != "off") {
        return fail_usage("--log-level: unknown level '" + log_level + "'");
    }
    spdlog::set_default_logger(spdlog::stderr_color_mt("peer"));
    spdlog::set_level(level);
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    // Past a file size limit, a write must fail with EFBIG (a clear message), not kill us.
    std::signal(SIGXFSZ, SIG_IGN);

    app a;
    a.json = vm.count("json") > 0;

    if (id_text.empty()) {
        if (!command.empty()) return fail_usage(command + " needs --id");
        for (;;) {
            std::cout << "Peer id (a number; the peer shares folder p<id>): " << std::flush;
            const auto line = a.input.read_line();
            if (!line) {
                std::cerr << "peer: no id given\n";
                return 2;
            }
            const auto words = split_words(*line);
            if (words.size() == 1 && parse_id(words.front())) {
                id_text = words.front();
                break;
            }
            std::cout << "'" << *line << "' is not a peer id: enter a number such as 1.\n";
        }
    }
    const auto id = parse_id(id_text);
    if (!id) return fail_usage("--id: '" + id_text + "' is not a number 0..4294967295");
    options.id = *id;
    if (!folder.empty()) options.folder = folder;
    // The app keeps the lease token in pN.config (the library writes no file unless asked).
    options.config_file = config.empty() ? "p" + std::to_string(*id) + ".config" : config;
    if (::isatty(1) && !a.json && !vm.count("no-progress")) {
        options.transfer.on_progress = [&a](const p2pshare::TransferProgress& p) {
            a.bar.update(p);
        };
    }

    // a.io is run by a.thread only: its executor is serial, as the peer requires.
    a.node = std::make_unique<p2pshare::PeerNode>(a.io.get_executor(), options);
    // A signal quits gracefully: the menu and `serve` are woken; a running subcommand makes the
    // node quit (it finishes the transfers in flight, starts no new one). A second signal
    // exits at once: partial downloads stay as NAME.part and resume next time.
    asio::signal_set signals(a.io, SIGINT, SIGTERM);
    std::function<void(boost::system::error_code, int)> on_signal;
    on_signal = [&](boost::system::error_code ec, int signo) {
        if (ec) return;
        if (a.input.woken()) {
            std::fprintf(stderr, "peer: second signal %d, exiting now\n", signo);
            std::_Exit(128 + signo);
        }
        a.input.wake();
        if (a.node && !command.empty() && command != "serve") {
            asio::co_spawn(a.io, a.node->async_quit(), asio::detached);
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);

    // The io thread starts after, and is joined before, everything its handlers use.
    a.thread = std::thread([&a] { a.io.run(); });
    struct joiner {
        app& a;
        ~joiner() {
            a.work.reset();
            a.io.stop();
            a.thread.join();
        }
    } join_at_exit{a};

    const auto started = a.run(a.node->async_start());
    const auto& ec = started.code;
    if (ec == p2pshare::errc::conflict) {
        std::cerr << "peer: id " << options.id
                  << " is in use by another running peer; choose another id\n";
        return 1;
    }
    if (ec == p2pshare::errc::unreachable || ec == p2pshare::errc::timeout) {
        std::cerr << "peer: the index server is not reachable now; the peer keeps trying\n";
    } else if (ec) {
        std::cerr << "peer: cannot start: " << started.message;
        if (ec == p2pshare::errc::not_found && !options.index) {
            std::cerr << " (" << options.server_config.string()
                      << " is missing: start indexserver first, or give --index HOST:PORT)";
        }
        std::cerr << '\n';
        return 1;
    }

    int status = 0;
    if (command.empty()) {
        status = a.menu();
    } else if (command == "serve") {
        std::cout << "peer " << options.id << " serving " << a.node->folder().string() << " on "
                  << options.host << ":" << a.node->port() << std::endl;
        a.input.wait();
        a.quit();
    } else {
        bool ok = false;
        if (command == "list") ok = a.list();
        if (command == "get") ok = a.get(names);
        if (command == "rm") ok = a.rm(names);
        a.run(a.node->async_quit());
        status = ok ? 0 : 1;
    }
    asio::post(a.io, [&signals] { signals.cancel(); });
    return status;
}
