// indexserver: runs a p2pshare index server until SIGINT or SIGTERM.
#include <p2pshare/config.hpp>
#include <p2pshare/index_server.hpp>
#include <p2pshare/log.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

namespace po = boost::program_options;

int main(int argc, char** argv) {
    p2pshare::IndexServerOptions options;
    std::string lease_ttl = "30s";
    std::string store_timeout = "2s";
    std::string log_level = "info";
    std::string config_dir = "config";
    std::string max_name_bytes = "256MiB"; // IndexLimits::max_name_bytes
    unsigned threads = 1;
    po::options_description desc(
        "indexserver: the p2pshare index server. It knows which peers are online and which\n"
        "files each shares, and answers peers over HTTP/JSON (docs/protocol.md).\n\n"
        "Usage: indexserver [options]\n\nOptions");
    // clang-format off
    desc.add_options()
        ("help,h", "show this help and exit")
        ("host", po::value(&options.host)->default_value(options.host),
         "address to listen on (0.0.0.0 for every interface)")
        ("port,p", po::value(&options.port)->default_value(options.port),
         "port to listen on; 0 picks a free one (the real port goes to server.config)")
        ("config-dir", po::value(&config_dir)->default_value(config_dir),
         "folder that receives server.config")
        ("lease-ttl", po::value(&lease_ttl)->default_value(lease_ttl),
         "how long a peer stays listed without renewing (e.g. 30s, 500ms, 2m)")
        ("store", po::value(&options.store)->default_value(options.store),
         "where the index keeps its state: memory, or redis://HOST:PORT[,HOST:PORT...] (a Redis\n"
         "server or cluster shared by several index servers; docs/scaling.md)")
        ("store-timeout", po::value(&store_timeout)->default_value(store_timeout),
         "each wait on a Redis store at most (e.g. 2s); past it a request gets 503")
        ("threads", po::value(&threads)->default_value(threads),
         "index servers in this process, one thread each, on one port (SO_REUSEPORT); more\n"
         "than 1 needs a Redis --store, which they share (limits such as --max-connections\n"
         "are per thread)")
        ("max-connections", po::value(&options.limits.max_connections)
             ->default_value(options.limits.max_connections), "open connections at most")
        ("max-peers", po::value(&options.index.max_peers)
             ->default_value(options.index.max_peers), "live peers at most")
        ("max-peers-per-address", po::value(&options.index.max_peers_per_address)
             ->default_value(options.index.max_peers_per_address),
         "live peers registered from one client address at most")
        ("max-files", po::value(&options.index.max_files)
             ->default_value(options.index.max_files),
         "(peer, file) entries over all peers at most")
        ("max-name-bytes", po::value(&max_name_bytes)->default_value(max_name_bytes),
         "bytes of file names over those entries at most (e.g. 256MiB)")
        ("max-sources-per-name", po::value(&options.index.max_sources_per_name)
             ->default_value(options.index.max_sources_per_name),
         "sources in a lookup answer for one name (a random sample when more share it)")
        ("min-peer-port", po::value(&options.index.min_peer_port)
             ->default_value(options.index.min_peer_port),
         "lowest port a peer may advertise (1024 keeps system ports out)")
        ("strict-hosts", po::bool_switch(&options.index.host_must_match_source),
         "a peer may only advertise the address it connects from")
        ("tls-cert", po::value(&options.tls_cert),
         "speak TLS (HTTPS) with this PEM certificate chain (with --tls-key); server.config "
         "then says tls=true")
        ("tls-key", po::value(&options.tls_key), "the PEM private key of --tls-cert")
        ("log-level", po::value(&log_level)->default_value(log_level),
         "trace, debug (one line per request), info, warn, error or off");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        std::cerr << "indexserver: " << e.what() << "\nTry 'indexserver --help'.\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc << '\n';
        return 0;
    }
    const auto ttl = p2pshare::parse_duration(lease_ttl);
    if (!ttl || ttl->count() <= 0) {
        std::cerr << "indexserver: --lease-ttl: "
                  << (ttl ? "the lease must last more than 0 ms" : ttl.error().message) << '\n';
        return 2;
    }
    options.lease_ttl = *ttl;
    const auto store_wait = p2pshare::parse_duration(store_timeout);
    if (!store_wait || store_wait->count() <= 0) {
        std::cerr << "indexserver: --store-timeout: "
                  << (store_wait ? "it must be more than 0 ms" : store_wait.error().message)
                  << '\n';
        return 2;
    }
    options.store_timeout = *store_wait;
    const auto name_bytes = p2pshare::parse_size(max_name_bytes);
    if (!name_bytes) {
        std::cerr << "indexserver: --max-name-bytes: " << name_bytes.error().message << '\n';
        return 2;
    }
    options.index.max_name_bytes = static_cast<std::size_t>(*name_bytes);
    options.config_dir = config_dir;
    const auto level = spdlog::level::from_str(log_level);
    if (level == spdlog::level::off && log_level != "off") {
        std::cerr << "indexserver: --log-level: unknown level '" << log_level << "'\n";
        return 2;
    }
    spdlog::set_default_logger(spdlog::stderr_color_mt("indexserver"));
    spdlog::set_level(level);
    p2pshare::set_log_level(log_level); // the library logs through its own logger
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    if (threads == 0 || threads > 256) {
        std::cerr << "indexserver: --threads must be within 1..256\n";
        return 2;
    }
    if (threads > 1 && options.store == "memory") {
        std::cerr << "indexserver: --threads " << threads
                  << " needs a shared store (--store redis://...): on the memory store each "
                     "thread would answer for a network of its own\n";
        return 2;
    }
    options.reuse_port = threads > 1;
    // One set of counters for the process: GET /metrics, whichever thread answers it, shows all.
    options.metrics = p2pshare::make_index_metrics();

    // One io_context per thread, each run by its thread only (Asio then skips locking where it
    // can), each with an index server of its own on the one port; they share only the store.
    std::vector<std::unique_ptr<boost::asio::io_context>> ios;
    for (unsigned i = 0; i < threads; ++i)
        ios.push_back(std::make_unique<boost::asio::io_context>(1));
    std::vector<std::unique_ptr<p2pshare::IndexServer>> servers;
    servers.push_back(std::make_unique<p2pshare::IndexServer>(ios[0]->get_executor(), options));
    // Handle the signals before announcing the port: whoever reads that line may signal at once.
    boost::asio::signal_set signals(*ios[0], SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int signo) {
        if (ec) return;
        spdlog::info("signal {}: stopping", signo);
        for (std::size_t i = 0; i < servers.size(); ++i)
            boost::asio::co_spawn(*ios[i], servers[i]->async_stop(), boost::asio::detached);
    });
    if (const auto ec = servers[0]->start()) {
        spdlog::error("cannot start: {}", ec.message);
        return 1;
    }
    // The others on the port the first one got; server.config is the first one's to write.
    options.port = servers[0]->port();
    options.config_dir.clear();
    for (unsigned i = 1; i < threads; ++i) {
        servers.push_back(std::make_unique<p2pshare::IndexServer>(ios[i]->get_executor(), options));
        if (const auto ec = servers[i]->start()) {
            spdlog::error("cannot start index server {} of {}: {}", i + 1, threads, ec.message);
            return 1;
        }
    }
    std::printf(
        "indexserver listening on %s\n",
        p2pshare::to_string({servers[0]->host(), servers[0]->port(), !options.tls_cert.empty()})
            .c_str());
    std::fflush(stdout);

    std::vector<std::thread> others;
    for (std::size_t i = 1; i < ios.size(); ++i)
        others.emplace_back([io = ios[i].get()] { io->run(); });
    ios[0]->run();
    for (auto& t : others)
        t.join();
    return 0;
}
