#include "fault_support.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace p2pshare::test {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::uint16_t port_after_colon(const std::string& line) {
    const auto colon = line.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("no port in: " + line);
    return static_cast<std::uint16_t>(std::stoul(line.substr(colon + 1)));
}

} // namespace

process_network::process_network(std::vector<std::string> index_args)
    : index_args_(std::move(index_args)) {
    indexes_.push_back(start_index(0));
}

process_network::index_process process_network::start_index(std::uint16_t port) {
    std::vector<std::string> args{"--port", std::to_string(port), "--log-level", "warn"};
    args.insert(args.end(), index_args_.begin(), index_args_.end());
    index_process started{std::make_unique<child>(app_path("indexserver"), args, dir_.path())};
    const auto line = started.process->wait_for_line("listening on");
    started.port = port_after_colon(line);
    BOOST_TEST_REQUIRE(started.port != 0u, line);
    if (port != 0) BOOST_TEST_REQUIRE(started.port == port, line);
    return started;
}

std::size_t process_network::add_index() {
    indexes_.push_back(start_index(0));
    return indexes_.size() - 1;
}

void process_network::kill_index(std::size_t i) {
    auto& index = *indexes_.at(i).process;
    index.signal(SIGKILL);
    BOOST_TEST(index.wait() == 128 + SIGKILL);
}

void process_network::restart_index(std::size_t i) {
    auto& slot = indexes_.at(i);
    slot = start_index(slot.port);
}

std::string process_network::index_addresses() const {
    std::string out;
    for (std::size_t i = 0; i < indexes_.size(); ++i) {
        if (i > 0) out += ',';
        out += index_address(i);
    }
    return out;
}

std::vector<std::string> process_network::with_index(std::vector<std::string> args) const {
    const bool given = std::any_of(args.begin(), args.end(), [](const std::string& a) {
        return a == "--index" || a.starts_with("--index=");
    });
    if (!given) {
        args.push_back("--index");
        args.push_back(index_address());
    }
    return args;
}

child& process_network::serve(std::uint32_t id, std::vector<std::string> extra) {
    std::vector<std::string> args{"--id", std::to_string(id), "serve"};
    const auto rest = with_index(std::move(extra));
    args.insert(args.end(), rest.begin(), rest.end());
    auto c = std::make_unique<child>(app_path("peer"), args, dir_.path());
    const auto line = c->wait_for_line("serving");
    BOOST_TEST_REQUIRE(line.find("peer " + std::to_string(id) + " serving") != std::string::npos,
                       line);
    const auto port = port_after_colon(line);
    peers_.push_back({id, port, std::move(c)});
    return *peers_.back().process;
}

std::uint16_t process_network::port_of(std::uint32_t id) const {
    for (const auto& p : peers_) {
        if (p.id == id) return p.port;
    }
    throw std::runtime_error("no serving peer " + std::to_string(id));
}

child& process_network::peer(std::uint32_t id) {
    for (auto& p : peers_) {
        if (p.id == id) return *p.process;
    }
    throw std::runtime_error("no serving peer " + std::to_string(id));
}

int process_network::kill_peer(std::uint32_t id) {
    auto& c = peer(id);
    c.signal(SIGKILL);
    return c.wait();
}

std::unique_ptr<child> process_network::run_peer(std::uint32_t id,
                                                 const std::vector<std::string>& args,
                                                 std::chrono::milliseconds timeout) {
    std::vector<std::string> all{"--id", std::to_string(id)};
    const auto rest = with_index(args);
    all.insert(all.end(), rest.begin(), rest.end());
    auto c = std::make_unique<child>(app_path("peer"), all, dir_.path());
    c->close_stdin();
    c->wait(timeout);
    return c;
}

std::string big_content(std::size_t size, std::uint64_t seed) {
    std::string out(size, '\0');
    std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    std::size_t i = 0;
    while (i < size) {
        // splitmix64
        x += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const auto n = std::min<std::size_t>(8, size - i);
        std::memcpy(out.data() + i, &z, n);
        i += n;
    }
    return out;
}

std::vector<FileSource> lookup_sources(std::uint16_t index_port, const std::string& name) {
    json::object body;
    body["names"].emplace_array().emplace_back(name);
    const auto reply = http_call(index_port, "POST", "/v1/lookup", json::serialize(body));
    if (reply.status != 200) {
        throw std::runtime_error("POST /v1/lookup answered " + std::to_string(reply.status));
    }
    std::vector<FileSource> out;
    const auto v = json::parse(reply.body);
    for (const auto& s : v.at("results").at(0).at("sources").as_array()) {
        FileSource f;
        f.peer = s.at("id").to_number<std::uint32_t>();
        f.host = std::string(s.at("host").as_string());
        f.port = s.at("port").to_number<std::uint16_t>();
        f.size = s.at("size").to_number<std::uint64_t>();
        f.sha256 = std::string(s.at("sha256").as_string());
        if (const auto* root = s.as_object().if_contains("root")) {
            f.root = std::string(root->as_string());
        }
        out.push_back(std::move(f));
    }
    std::sort(out.begin(), out.end(),
              [](const FileSource& a, const FileSource& b) { return a.peer < b.peer; });
    return out;
}

std::string lookup_text(std::uint16_t index_port, const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) {
        for (const auto& s : lookup_sources(index_port, name)) {
            out += name + " " + std::to_string(s.peer) + " " + s.host + ":" +
                   std::to_string(s.port) + " " + std::to_string(s.size) + " " + s.sha256 + "\n";
        }
    }
    return out;
}

std::int64_t health_peers(std::uint16_t index_port) {
    const auto reply = http_call(index_port, "GET", "/v1/health");
    if (reply.status != 200) {
        throw std::runtime_error("GET /v1/health answered " + std::to_string(reply.status));
    }
    return json::parse(reply.body).at("peers").to_number<std::int64_t>();
}

std::vector<std::string> folder_entries(const std::filesystem::path& folder) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(folder))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

std::size_t rss_kib() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
    }
    throw std::runtime_error("no VmRSS in /proc/self/status");
}

raw_socket::raw_socket(std::uint16_t port, int receive_buffer, const std::string& from) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (receive_buffer > 0) {
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (!from.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, from.c_str(), &local.sin_addr);
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
            const int e = errno;
            ::close(fd_);
            throw std::runtime_error("bind " + from + ": " + std::strerror(e));
        }
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        const int e = errno;
        ::close(fd_);
        throw std::runtime_error(std::string("connect: ") + std::strerror(e));
    }
}

raw_socket::~raw_socket() {
    if (fd_ >= 0) ::close(fd_);
}

bool raw_socket::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            closed_ = true;
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool raw_socket::wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[65536];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            received_.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            closed_ = true;
        }
    }
    return closed_;
}

std::size_t raise_fd_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
    if (r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
        ::getrlimit(RLIMIT_NOFILE, &r);
    }
    return static_cast<std::size_t>(r.rlim_cur);
}

} // namespace p2pshare::test
