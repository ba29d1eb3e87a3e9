// Starts an index server from the installed p2pshare package, stops it and prints OK.
#include <p2pshare/index_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <iostream>

int main() {
    boost::asio::io_context io;
    p2pshare::IndexServerOptions options;
    options.port = 0;
    options.config_dir.clear();
    p2pshare::IndexServer server(io.get_executor(), options);
    if (const auto ec = server.start()) {
        std::cerr << "start failed: " << ec.message << '\n';
        return 1;
    }
    if (server.port() == 0) {
        std::cerr << "no port\n";
        return 1;
    }
    bool stopped = false;
    boost::asio::co_spawn(io, server.async_stop(),
                          [&](std::exception_ptr e) { stopped = e == nullptr; });
    io.run();
    if (!stopped) {
        std::cerr << "stop failed\n";
        return 1;
    }
    std::cout << "OK\n";
    return 0;
}
