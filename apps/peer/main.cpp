// peer: a p2pshare peer. Shares folder pN, registers with the index server and offers the
// original menu (list, download, delete, quit), or runs one action as a subcommand.
//
// The terminal pieces live beside this file: app (the io thread, the node and the actions),
// menu, output (human and --json), line_reader and progress_bar.
#include "app.hpp"
#include "menu.hpp"

#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>
#include <p2pshare/log.hpp>
#include <p2pshare/peer_node.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace po = boost::program_options;
namespace asio = boost::asio;

int main(int argc, char** argv) {
    p2pshare::PeerOptions options;
    std::string id_text;
    std::string index;
    std::string server_config = "config/server.config";
    std::string folder;
    std::string config;
    std::string hash_cache;
    std::string drain = "10s";
    std::string rescan = "5s";
    std::string upload_rate = "0";
    std::string download_rate = "0";
    std::string log_level = "warn";
    std::string command;
    std::vector<std::string> names;
    std::string tls_cert;
    std::string tls_key;
    std::string tls_ca;
    po::options_description desc(
        "peer: a p2pshare peer. It shares folder pN, writes pN.config and pN.hashes, registers\n"
        "with the index server (found in config/server.config) and serves its files to other\n"
        "peers.\n\n"
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
        ("hash-cache", po::value(&hash_cache),
         "where the hashes of the shared files are kept across restarts (default pN.hashes "
         "beside the config file)")
        ("host", po::value(&options.host)->default_value(options.host),
         "address the file server listens on")
        ("port", po::value(&options.port)->default_value(0), "file server port; 0 = any free")
        ("advertise-host", po::value(&options.advertise_host),
         "address other peers should use (default: --host)")
        ("advertise-port", po::value(&options.advertise_port)->default_value(0),
         "port other peers should use, behind a port mapping (default: the port listened on)")
        ("index", po::value(&index),
         "index servers HOST:PORT[,HOST:PORT...] ([IPV6]:PORT for IPv6) in order of preference; "
         "the peer moves to the next when one cannot be reached (default: read --server-config)")
        ("server-config", po::value(&server_config)->default_value(server_config),
         "the index server's config file")
        ("parallel", po::value(&options.max_parallel_downloads)
             ->default_value(options.max_parallel_downloads), "downloads at once")
        ("max-upload-rate", po::value(&upload_rate)->default_value(upload_rate),
         "bytes per second all uploads may send together, e.g. 20MiB; 0 = no cap")
        ("max-download-rate", po::value(&download_rate)->default_value(download_rate),
         "bytes per second all downloads may receive together, e.g. 20MiB; 0 = no cap")
        ("sources", po::value(&options.transfer.sources)->default_value(options.transfer.sources),
         "sources one file is fetched from at once (1 to 16)")
        ("overwrite", po::bool_switch(&options.transfer.overwrite),
         "let a download replace an existing file")
        ("drain-timeout", po::value(&drain)->default_value(drain),
         "on quit, cut uploads that made no progress for this long")
        ("rescan", po::value(&rescan)->default_value(rescan),
         "how often the folder is checked for files added or removed by hand")
        ("tls", po::bool_switch(&options.tls),
         "serve files over TLS with the peer's own self-signed certificate (pN.crt and pN.key "
         "beside pN.config, made at the first start); downloaders check it by the fingerprint "
         "the index gives")
        ("tls-cert", po::value(&tls_cert), "serve over TLS with this PEM certificate instead")
        ("tls-key", po::value(&tls_key), "the PEM private key of --tls-cert")
        ("tls-ca", po::value(&tls_ca),
         "PEM file of the CAs that index servers reached over TLS are checked against "
         "(default: the system's)")
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
    const auto up = p2pshare::parse_size(upload_rate);
    const auto down = p2pshare::parse_size(download_rate);
    if (!up) return fail_usage("--max-upload-rate: '" + upload_rate + "' is not a size");
    if (!down) return fail_usage("--max-download-rate: '" + download_rate + "' is not a size");
    if (options.transfer.sources < 1 || options.transfer.sources > 16) {
        return fail_usage("--sources: between 1 and 16");
    }
    options.max_upload_rate = *up;
    options.transfer.max_download_rate = *down;
    options.drain_timeout = *drain_ms;
    options.rescan_interval = *rescan_ms;
    options.server_config = server_config;
    if (!index.empty()) {
        auto addresses = p2pshare::parse_host_port_list(index);
        if (!addresses) return fail_usage("--index: " + addresses.error().message);
        options.index = std::move(*addresses);
    }
    const auto level = spdlog::level::from_str(log_level);
    if (level == spdlog::level::off && log_level != "off") {
        return fail_usage("--log-level: unknown level '" + log_level + "'");
    }
    spdlog::set_default_logger(spdlog::stderr_color_mt("peer"));
    spdlog::set_level(level);
    p2pshare::set_log_level(log_level); // the library logs through its own logger
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    // Past a file size limit, a write must fail with EFBIG (a clear message), not kill us.
    std::signal(SIGXFSZ, SIG_IGN);

    peer::PeerApp a;
    a.json = vm.count("json") > 0;

    if (id_text.empty()) {
        if (!command.empty()) return fail_usage(command + " needs --id");
        auto asked = peer::ask_id(a.input);
        if (!asked) {
            std::cerr << "peer: no id given\n";
            return 2;
        }
        id_text = std::move(*asked);
    }
    const auto id = peer::parse_id(id_text);
    if (!id) return fail_usage("--id: '" + id_text + "' is not a number 0..4294967295");
    options.id = *id;
    if (!folder.empty()) options.folder = folder;
    // The app keeps the lease token in pN.config (the library writes no file unless asked).
    options.config_file = config.empty() ? "p" + std::to_string(*id) + ".config" : config;
    // ... and the hashes of its files in pN.hashes beside it, so that a restart reads none again.
    options.hash_cache = hash_cache.empty() ? options.config_file.parent_path() /
                                                  ("p" + std::to_string(*id) + ".hashes")
                                            : std::filesystem::path(hash_cache);
    // TLS: a given certificate, or the peer's own, made at the first start and kept.
    if (tls_cert.empty() != tls_key.empty()) return fail_usage("--tls-cert needs --tls-key");
    if (!tls_cert.empty()) {
        options.tls = true;
        options.tls_cert = tls_cert;
        options.tls_key = tls_key;
    } else if (options.tls) {
        const auto base = options.config_file.parent_path() / ("p" + std::to_string(*id));
        options.tls_cert = base.string() + ".crt";
        options.tls_key = base.string() + ".key";
        options.tls_self_signed = true;
    }
    options.tls_ca = tls_ca;
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
        peer::PeerApp& a;
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
    } else if (ec == p2pshare::errc::tls_failed) {
        // A certificate refused (a wrong --tls-ca?) or a handshake cut: said, and tried again.
        std::cerr << "peer: " << started.message << "; the peer keeps trying\n";
    } else if (ec) {
        std::cerr << "peer: cannot start: " << started.message;
        if (ec == p2pshare::errc::not_found && options.index.empty()) {
            std::cerr << " (" << options.server_config.string()
                      << " is missing: start indexserver first, or give --index HOST:PORT)";
        }
        std::cerr << '\n';
        return 1;
    }

    int status = 0;
    if (command.empty()) {
        status = peer::run_menu(a);
    } else if (command == "serve") {
        std::cout << "peer " << options.id << " serving " << a.node->folder().string() << " on "
                  << p2pshare::to_string({options.host, a.node->port()}) << std::endl;
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
