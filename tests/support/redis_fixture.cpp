#include "redis_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace p2pshare::test {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

/// Every folder of this harness starts with this, then the pid of the test process that made
/// it: a folder whose process is gone was left by a killed test and can be removed.
constexpr std::string_view folder_prefix = "p2pshare-redis-";

std::string own_folder_prefix() {
    return std::string(folder_prefix) + std::to_string(::getpid()) + "-";
}

/// The program `name` on PATH. Not canonicalised: /usr/bin/redis-server is a link to
/// redis-check-rdb, and the binary decides what to be from the name it is run by.
fs::path find_program(const std::string& name, const std::string& package) {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "";
    while (!dirs.empty()) {
        const auto colon = dirs.find(':');
        const auto dir = dirs.substr(0, colon);
        dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
        if (dir.empty()) continue;
        const auto candidate = fs::path(dir) / name;
        std::error_code ec;
        if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    throw std::runtime_error(name + " is not installed (not found on PATH): the Redis tests need " +
                             "it. `make deps` installs it (Debian package " + package + ").");
}

/// Binds 127.0.0.1:port (0: any port) and releases it at once; returns the port bound, or 0 when
/// it is taken. The port can be taken again before the server binds it, so a start that fails to
/// bind is retried on another port.
std::uint16_t probe_port(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
    // As redis-server binds: a stopped server leaves its connections in TIME_WAIT for a minute,
    // which keep a port from a bind without SO_REUSEADDR but not from the server's.
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    std::uint16_t bound = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        bound = ntohs(addr.sin_port);
    }
    ::close(fd);
    return bound;
}

/// A free port; for a cluster node, one whose cluster bus port (port + 10000) is free as well.
std::uint16_t pick_port(bool cluster) {
    for (int i = 0; i < 1000; ++i) {
        const auto port = probe_port(0);
        if (port == 0) continue;
        if (!cluster) return port;
        if (port + 10000 > 65535) continue; // the ephemeral range reaches 60999
        if (probe_port(static_cast<std::uint16_t>(port + 10000)) != 0) return port;
    }
    throw std::runtime_error("no free loopback port (and port + 10000) found");
}

std::string read_text(const fs::path& file, std::uintmax_t from = 0) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return {};
    in.seekg(static_cast<std::streamoff>(from));
    std::ostringstream s;
    s << in.rdbuf();
    return std::move(s).str();
}

std::string last_lines(const std::string& text, std::size_t lines) {
    auto at = text.size();
    if (at > 0 && text[at - 1] == '\n') --at;
    for (std::size_t n = 0; n < lines && at > 0; ++n) {
        const auto nl = text.rfind('\n', at - 1);
        at = nl == std::string::npos ? 0 : nl;
    }
    return text.substr(at == 0 ? 0 : at + 1);
}

/// The value of `field` in INFO or CLUSTER INFO text ("field:value" lines), or "".
std::string info_value(const std::string& info, std::string_view field) {
    std::istringstream in(info);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
            line[field.size()] == ':') {
            return line.substr(field.size() + 1);
        }
    }
    return {};
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    while (true) {
        const auto at = s.find(sep);
        if (at != 0) out.emplace_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return out;
}

std::string millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

/// Removes the folders that test processes now gone left behind: a test binary killed with
/// SIGKILL runs no destructor, and its servers die with it (PR_SET_PDEATHSIG), but their folders
/// stay. A folder is kept while the pid in its name runs.
void sweep_stale_folders() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::temp_directory_path(), ec)) {
        const auto name = entry.path().filename().string();
        if (name.rfind(folder_prefix, 0) != 0) continue;
        int pid = 0;
        const auto digits = std::string_view(name).substr(folder_prefix.size());
        const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
        if (err != std::errc{} || end == digits.data() || *end != '-' || pid <= 0) continue;
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        std::error_code ignored;
        fs::remove_all(entry.path(), ignored);
    }
}

} // namespace

void sweep_stale_redis_folders() { sweep_stale_folders(); }

// ---------------------------------------------------------------------------------------------
// RESP

std::string to_string(const redis_reply& reply) {
    switch (reply.type) {
        case redis_reply::kind::integer:
            return std::to_string(reply.integer);
        case redis_reply::kind::nil:
            return {};
        case redis_reply::kind::array: {
            std::string out;
            for (std::size_t i = 0; i < reply.elements.size(); ++i) {
                if (i > 0) out += '\n';
                out += to_string(reply.elements[i]);
            }
            return out;
        }
        default:
            return reply.text;
    }
}

redis_connection::redis_connection(std::uint16_t port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout) {
    // Non-blocking with poll() for every step, so that no call can outlast its deadline (a
    // stopped or frozen server must fail a test, not hang it).
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    int err = 0;
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
                socklen_t len = sizeof err;
                ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            } else {
                err = ETIMEDOUT;
            }
        }
    }
    if (err != 0) {
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port) +
                                 ": connect: " + std::strerror(err));
    }
}

redis_connection::~redis_connection() {
    if (fd_ >= 0) ::close(fd_);
}

void redis_connection::send_all(std::string_view bytes, clock_type::time_point deadline) {
    while (!bytes.empty()) {
        // MSG_NOSIGNAL: a server that closed the connection must not kill the test with SIGPIPE.
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                     ": send: " + std::strerror(errno));
        }
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now());
        pollfd p{fd_, POLLOUT, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
            throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                     ": send timed out");
        }
    }
}

void redis_connection::fill(clock_type::time_point deadline) {
    if (at_ == in_.size()) {
        in_.clear();
        at_ = 0;
    }
    for (;;) {
        char buf[16384];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            in_.append(buf, static_cast<std::size_t>(n));
            return;
        }
        if (n == 0) {
            throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                     ": connection closed");
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                     ": recv: " + std::strerror(errno));
        }
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now());
        pollfd p{fd_, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
            throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                     ": no reply within " + millis(timeout_));
        }
    }
}

std::string redis_connection::read_line(clock_type::time_point deadline) {
    for (;;) {
        const auto eol = in_.find("\r\n", at_);
        if (eol != std::string::npos) {
            std::string line = in_.substr(at_, eol - at_);
            at_ = eol + 2;
            return line;
        }
        fill(deadline);
    }
}

std::string redis_connection::read_exact(std::size_t n, clock_type::time_point deadline) {
    while (in_.size() - at_ < n)
        fill(deadline);
    std::string out = in_.substr(at_, n);
    at_ += n;
    return out;
}

redis_reply redis_connection::read_reply(clock_type::time_point deadline, int depth) {
    const auto line = read_line(deadline);
    if (line.empty() || depth > 16) {
        throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                 ": malformed reply '" + line + "'");
    }
    const auto number = [&] {
        long long v = 0;
        const auto [end, err] = std::from_chars(line.data() + 1, line.data() + line.size(), v);
        if (err != std::errc{} || end != line.data() + line.size()) {
            throw std::runtime_error("redis: bad number in reply '" + line + "'");
        }
        return v;
    };
    redis_reply reply;
    switch (line[0]) {
        case '+':
            reply.type = redis_reply::kind::status;
            reply.text = line.substr(1);
            break;
        case '-':
            reply.type = redis_reply::kind::error;
            reply.text = line.substr(1);
            break;
        case ':':
            reply.type = redis_reply::kind::integer;
            reply.integer = number();
            break;
        case '$': {
            const auto n = number();
            if (n < 0) break; // nil
            reply.type = redis_reply::kind::bulk;
            reply.text = read_exact(static_cast<std::size_t>(n) + 2, deadline);
            reply.text.resize(static_cast<std::size_t>(n)); // without its \r\n
            break;
        }
        case '*': {
            const auto n = number();
            if (n < 0) break; // nil
            reply.type = redis_reply::kind::array;
            for (long long i = 0; i < n; ++i)
                reply.elements.push_back(read_reply(deadline, depth + 1));
            break;
        }
        default:
            throw std::runtime_error("redis 127.0.0.1:" + std::to_string(port_) +
                                     ": unknown reply type '" + line + "'");
    }
    return reply;
}

redis_reply redis_connection::call(const std::vector<std::string>& args) {
    if (fd_ < 0) throw std::runtime_error("redis: the connection failed before");
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args)
        out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    const auto deadline = clock_type::now() + timeout_;
    try {
        send_all(out, deadline);
        return read_reply(deadline, 0);
    } catch (...) {
        // Half a reply may be in the buffer: nothing after it could be trusted.
        ::close(fd_);
        fd_ = -1;
        throw;
    }
}

std::string redis_connection::command_args(const std::vector<std::string>& args) {
    const auto reply = call(args);
    if (reply.is_error()) {
        throw redis_error("redis 127.0.0.1:" + std::to_string(port_) + " " +
                          (args.empty() ? std::string() : args.front()) + ": " + reply.text);
    }
    return to_string(reply);
}

bool redis_ping(std::uint16_t port, std::chrono::milliseconds timeout) {
    try {
        redis_connection c(port, timeout);
        const auto reply = c.call({"PING"});
        return reply.type == redis_reply::kind::status && reply.text == "PONG";
    } catch (const std::exception&) {
        return false;
    }
}

// ---------------------------------------------------------------------------------------------
// redis_server

redis_server::redis_server(redis_options options)
    : options_(std::move(options)), dir_([] {
          // Before the first folder of this process: the leftovers of killed test processes.
          static bool swept = false;
          if (!swept) {
              swept = true;
              sweep_stale_folders();
          }
          return own_folder_prefix();
      }()) {
    launch_and_wait(false);
}

redis_server::~redis_server() {
    try {
        stop();
    } catch (...) {
        // process_ kills it below; a destructor cannot fail the test.
    }
}

void redis_server::launch_and_wait(bool fixed_port) {
    const auto exe = find_program("redis-server", "redis-server");
    const auto deadline = clock_type::now() + redis_start_deadline;
    std::string failures;
    for (int attempt = 1;; ++attempt) {
        if (!fixed_port) port_ = pick_port(options_.cluster);
        std::vector<std::string> args = {
            "--port", std::to_string(port_), "--bind", "127.0.0.1",
            // A child of the test process, so that it dies with it (a daemon would outlive it).
            "--daemonize", "no",
            // Nothing on disk but the log: no RDB (not even on SHUTDOWN), no AOF, and --dir in
            // the folder in case something is written anyway.
            "--save", "", "--appendonly", "no", "--dir", dir_.path().string(), "--logfile",
            log_path().string()};
        if (options_.cluster) {
            args.insert(args.end(), {"--cluster-enabled", "yes", "--cluster-config-file",
                                     (dir_ / "nodes.conf").string(), "--cluster-node-timeout",
                                     std::to_string(options_.cluster_node_timeout.count())});
        }
        args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());

        std::error_code ec;
        const auto log_start = fs::exists(log_path(), ec) ? fs::file_size(log_path(), ec) : 0;
        process_ = std::make_unique<child>(exe, args, dir_.path());
        const int pid = process_->pid();
        std::optional<int> status;
        // Ready when it answers PING and is ours: a server that another test started on the
        // same port in the meantime answers too (ours then fails to bind and exits).
        const bool ready = eventually(
            [&] {
                status = process_->try_wait();
                if (status) return true;
                if (!redis_ping(port_)) return false;
                try {
                    redis_connection c(port_, 1s);
                    const auto info = to_string(c.call({"INFO", "server"}));
                    return info_value(info, "process_id") == std::to_string(pid);
                } catch (const std::exception&) {
                    return false;
                }
            },
            std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now()), 10ms);

        if (ready && !status) return;
        // This start's part of the log, and its stderr: what it said before its log was open (a
        // bad argument, say) went there.
        const auto log = read_text(log_path(), log_start);
        auto said = log_path().string() + " ends with:\n" + last_lines(log, 30);
        if (const auto err = process_->error_output(); !err.empty()) {
            said += "\nits stderr:\n" + last_lines(err, 10);
        }
        if (!status) {
            process_->signal(SIGKILL);
            process_.reset();
            throw std::runtime_error("redis-server on " + address() +
                                     " did not answer PING within " + millis(redis_start_deadline) +
                                     "; " + said);
        }
        process_.reset();
        const bool bind_failed = log.find("Address already in use") != std::string::npos;
        failures += "attempt " + std::to_string(attempt) + " on port " + std::to_string(port_) +
                    ": exit status " + std::to_string(*status) + "\n";
        // Another process took the port (or, for a cluster node, the bus port) between our
        // probe and the server's bind: try another port. A restart must keep its port (the
        // cluster knows the node by it), so it waits for the port to be free again.
        if (!bind_failed || clock_type::now() >= deadline || attempt >= 200) {
            throw std::runtime_error("redis-server could not start:\n" + failures + said);
        }
        if (fixed_port) {
            const auto bus_port = static_cast<std::uint16_t>(port_ + 10000);
            eventually(
                [&] {
                    return probe_port(port_) != 0 &&
                           (!options_.cluster || probe_port(bus_port) != 0);
                },
                std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_type::now()), 20ms);
        }
    }
}

std::string redis_server::log_tail(std::size_t lines) const {
    return last_lines(read_text(log_path()), lines);
}

bool redis_server::running() { return process_ && !process_->try_wait(); }

int redis_server::pid() const { return process_ ? process_->pid() : -1; }

void redis_server::stop() {
    if (!running()) {
        process_.reset();
        return;
    }
    try {
        // The server closes the connection instead of answering when it shuts down.
        redis_connection c(port_, 2s);
        c.call({"SHUTDOWN", "NOSAVE"});
    } catch (const std::exception&) {
    }
    try {
        process_->wait(5s);
    } catch (const std::exception&) {
        process_->signal(SIGKILL);
        process_->wait(5s);
    }
    process_.reset();
}

void redis_server::kill() {
    if (running()) {
        process_->signal(SIGKILL);
        process_->wait(5s);
    }
    process_.reset();
}

void redis_server::start() {
    if (running()) return;
    launch_and_wait(true);
}

redis_reply redis_server::call(const std::vector<std::string>& args) {
    redis_connection c(port_);
    return c.call(args);
}

std::string redis_server::command_args(const std::vector<std::string>& args) {
    redis_connection c(port_);
    return c.command_args(args);
}

// ---------------------------------------------------------------------------------------------
// redis_cluster

namespace {

/// Runs redis-cli with `args`, its output (which can be long: a line per slot moved) going to
/// `log` rather than to a pipe that nobody reads while it runs.
std::unique_ptr<child> run_redis_cli(const fs::path& cwd, const fs::path& log,
                                     const std::vector<std::string>& args) {
    const auto cli = find_program("redis-cli", "redis-tools");
    std::vector<std::string> sh_args = {"-c", "log=$1; shift; exec \"$@\" >\"$log\" 2>&1", "sh",
                                        log.string(), cli.string()};
    sh_args.insert(sh_args.end(), args.begin(), args.end());
    return std::make_unique<child>("/bin/sh", sh_args, cwd);
}

} // namespace

redis_reshard::redis_reshard(redis_cluster& cluster, std::unique_ptr<child> process,
                             std::filesystem::path log)
    : cluster_(cluster), process_(std::move(process)), log_(std::move(log)) {}

redis_reshard::~redis_reshard() {
    if (!process_) return;
    try {
        // Killed halfway, redis-cli would leave a slot open (migrating on one node, importing on
        // the other), and the next reshard would refuse to run: let it finish.
        process_->wait(60s);
    } catch (...) {
    }
}

void redis_reshard::wait(std::chrono::milliseconds timeout) {
    if (!process_) return;
    int status = 0;
    try {
        status = process_->wait(timeout);
    } catch (const std::exception&) {
        throw std::runtime_error("redis-cli --cluster reshard did not finish within " +
                                 millis(timeout) + "; its output:\n" +
                                 last_lines(read_text(log_), 30));
    }
    process_.reset();
    if (status != 0) {
        throw std::runtime_error("redis-cli --cluster reshard exited with " +
                                 std::to_string(status) + "; its output:\n" +
                                 last_lines(read_text(log_), 30));
    }
    cluster_.wait_ready();
}

redis_cluster::redis_cluster(std::chrono::milliseconds node_timeout) : dir_(own_folder_prefix()) {
    find_program("redis-cli", "redis-tools"); // before starting anything
    redis_options options;
    options.cluster = true;
    options.cluster_node_timeout = node_timeout;
    // One after the other: a node's ports are bound before the next one probes for free ports.
    for (std::size_t i = 0; i < size; ++i)
        nodes_.push_back(std::make_unique<redis_server>(options));

    std::vector<std::string> args = {"--cluster", "create"};
    for (const auto& n : nodes_)
        args.push_back(n->address());
    args.insert(args.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    const auto log = dir_ / "create.log";
    const auto cli = run_redis_cli(dir_.path(), log, args);
    int status = -1;
    try {
        status = cli->wait(redis_start_deadline);
    } catch (const std::exception&) {
    }
    if (status != 0) {
        throw std::runtime_error("redis-cli --cluster create failed (status " +
                                 std::to_string(status) + "); its output:\n" +
                                 last_lines(read_text(log), 40) + "\n" + describe());
    }
    wait_ready();
    for (std::size_t i = 0; i < size; ++i)
        ids_.push_back(command_on(i, "CLUSTER", "MYID"));
}

redis_cluster::~redis_cluster() = default;

namespace {
/// Destroyed at exit, which stops its servers and removes their folders.
std::unique_ptr<redis_cluster> shared_cluster;
} // namespace

redis_cluster& redis_cluster::shared() {
    // Not a function-local static: Boost.Test leaves a test by siglongjmp on a signal or a
    // timeout decorator, and one that left during the construction would leave its guard taken
    // (the next call would wait for it forever). Tests run on one thread, which must live as
    // long as the process for PR_SET_PDEATHSIG to kill the servers if the process is killed:
    // the main thread that runs Boost.Test's tests does.
    if (!shared_cluster) shared_cluster = std::make_unique<redis_cluster>();
    return *shared_cluster;
}

std::string redis_cluster::seeds() const {
    std::string out = "redis://";
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (i > 0) out += ',';
        out += nodes_[i]->address();
    }
    return out;
}

std::size_t redis_cluster::node_index(std::uint16_t port) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->port() == port) return i;
    }
    throw std::runtime_error("no cluster node on port " + std::to_string(port));
}

std::string redis_cluster::cluster_info(std::size_t i, std::string_view field) {
    return info_value(command_on(i, "CLUSTER", "INFO"), field);
}

namespace {

/// What one node thinks of the cluster (CLUSTER INFO and CLUSTER NODES): "" when it is ready,
/// else why not. `slot_map` receives "id:slots" of every master, sorted, to compare the nodes.
std::string node_state(redis_server& node, std::string& slot_map, bool& open_slots) {
    redis_connection c(node.port(), 2s);
    const auto info = to_string(c.call({"CLUSTER", "INFO"}));
    if (info_value(info, "cluster_state") != "ok") return "cluster_state is not ok";
    if (info_value(info, "cluster_slots_ok") != "16384") {
        return "cluster_slots_ok is " + info_value(info, "cluster_slots_ok");
    }
    const auto known = info_value(info, "cluster_known_nodes");
    if (known != std::to_string(redis_cluster::size)) return "it knows " + known + " nodes";
    // CLUSTER NODES lines: id addr flags master ping pong epoch link slot...
    std::vector<std::string> masters;
    for (const auto& line : split(to_string(c.call({"CLUSTER", "NODES"})), '\n')) {
        const auto fields = split(line, ' ');
        if (fields.size() < 8) continue;
        const auto& flags = fields[2];
        if (flags.find("fail") != std::string::npos ||
            flags.find("handshake") != std::string::npos ||
            flags.find("noaddr") != std::string::npos || fields[7] != "connected") {
            return "it sees " + fields[1] + " as " + flags + " " + fields[7];
        }
        if (flags.find("master") == std::string::npos) continue;
        std::string entry = fields[0] + ":";
        for (std::size_t f = 8; f < fields.size(); ++f) {
            // [slot->-id] and [slot-<-id]: a slot being migrated, which a reshard leaves only
            // when it was stopped halfway (and which makes the next one refuse to run).
            if (fields[f].front() == '[') {
                open_slots = true;
                return "slot " + fields[f] + " is open";
            }
            entry += fields[f] + ",";
        }
        masters.push_back(entry);
    }
    std::sort(masters.begin(), masters.end());
    slot_map.clear();
    for (const auto& m : masters)
        slot_map += m + "\n";
    return {};
}

} // namespace

std::string redis_cluster::not_ready(bool& open_slots) {
    open_slots = false;
    std::string first_map;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        auto& n = *nodes_[i];
        if (!n.running()) {
            throw std::runtime_error("cluster node " + std::to_string(i) + " (" + n.address() +
                                     ") is not running; its log ends with:\n" + n.log_tail(20));
        }
        std::string map;
        std::string why;
        try {
            why = node_state(n, map, open_slots);
        } catch (const std::exception& e) {
            why = e.what();
        }
        if (!why.empty()) return "node " + std::to_string(i) + " (" + n.address() + "): " + why;
        if (i == 0) {
            first_map = map;
        } else if (map != first_map) {
            return "node " + std::to_string(i) + " does not agree with node 0 on the slots";
        }
    }
    return {};
}

void redis_cluster::wait_ready(std::chrono::milliseconds timeout) {
    std::string why;
    bool open_slots = false;
    const bool ready = eventually(
        [&] {
            why = not_ready(open_slots);
            return why.empty();
        },
        timeout, 20ms);
    if (!ready) {
        throw std::runtime_error("the Redis cluster was not ready within " + millis(timeout) +
                                 ": " + why + "\n" + describe());
    }
}

void redis_cluster::start(std::size_t i) {
    node(i).start();
    wait_ready();
}

void redis_cluster::reset() {
    for (auto& n : nodes_) {
        if (!n->running()) n->start();
    }
    std::string why;
    bool open_slots = false;
    const bool settled = eventually(
        [&] {
            why = not_ready(open_slots);
            return why.empty() || open_slots;
        },
        redis_start_deadline, 20ms);
    if (!settled) {
        throw std::runtime_error("the Redis cluster was not ready within " +
                                 millis(redis_start_deadline) + ": " + why + "\n" + describe());
    }
    if (open_slots) {
        // A reshard that a failed test stopped halfway: redis-cli --cluster fix closes its slot.
        const auto log = dir_ / ("fix-" + std::to_string(++tool_runs_) + ".log");
        const auto cli = run_redis_cli(dir_.path(), log,
                                       {"--cluster", "fix", node(0).address(), "--cluster-yes"});
        const int status = cli->wait(60s);
        if (status != 0) {
            throw std::runtime_error("redis-cli --cluster fix exited with " +
                                     std::to_string(status) + "; its output:\n" +
                                     last_lines(read_text(log), 30));
        }
        wait_ready();
    }
    flushall();
}

void redis_cluster::flushall() {
    // Every node is a master (no replicas). A stopped node has nothing to flush: without
    // persistence it comes back empty.
    for (auto& n : nodes_) {
        if (n->running()) n->flushall();
    }
}

std::string redis_cluster::command_args(const std::vector<std::string>& args) {
    if (args.empty()) throw std::invalid_argument("redis_cluster::command: no command");
    std::size_t at = 0;
    while (at < nodes_.size() && !nodes_[at]->running())
        ++at;
    if (at == nodes_.size()) throw std::runtime_error("no cluster node is running");
    bool asking = false;
    for (int hops = 0; hops < 5; ++hops) {
        redis_connection c(nodes_[at]->port());
        if (asking) c.call({"ASKING"});
        const auto reply = c.call(args);
        // -MOVED 3999 127.0.0.1:6381 (the slot lives there now) or -ASK 3999 127.0.0.1:6381
        // (this key is being migrated there: ask once, preceded by ASKING).
        const bool moved = reply.text.rfind("MOVED ", 0) == 0;
        const bool ask = reply.text.rfind("ASK ", 0) == 0;
        if (!reply.is_error() || (!moved && !ask)) {
            if (reply.is_error()) {
                throw redis_error("redis cluster " + args.front() + ": " + reply.text);
            }
            return to_string(reply);
        }
        const auto colon = reply.text.rfind(':');
        at = node_index(static_cast<std::uint16_t>(std::stoi(reply.text.substr(colon + 1))));
        asking = ask;
    }
    throw redis_error("redis cluster " + args.front() + ": too many redirections");
}

std::vector<redis_slot_range> redis_cluster::slots(std::size_t i) {
    const auto reply = node(i).call({"CLUSTER", "SLOTS"});
    if (reply.type != redis_reply::kind::array) {
        throw redis_error("CLUSTER SLOTS on node " + std::to_string(i) + ": " + to_string(reply));
    }
    // Each entry: first slot, last slot, [ip, port, id, ...] of the master, then its replicas.
    std::vector<redis_slot_range> out;
    for (const auto& e : reply.elements) {
        if (e.elements.size() < 3 || e.elements[2].elements.size() < 3) continue;
        const auto& master = e.elements[2].elements;
        out.push_back({static_cast<int>(e.elements[0].integer),
                       static_cast<int>(e.elements[1].integer),
                       static_cast<std::uint16_t>(master[1].integer), master[2].text});
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

std::size_t redis_cluster::node_for_slot(int slot) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]->running()) continue;
        for (const auto& r : slots(i)) {
            if (r.first <= slot && slot <= r.last) return node_index(r.port);
        }
        break;
    }
    throw std::runtime_error("no node serves slot " + std::to_string(slot));
}

std::size_t redis_cluster::node_for_key(std::string_view key) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->running()) {
            return node_for_slot(std::stoi(command_on(i, "CLUSTER", "KEYSLOT", key)));
        }
    }
    throw std::runtime_error("no cluster node is running");
}

redis_reshard redis_cluster::start_reshard(std::size_t from, std::size_t to, int count) {
    // redis-cli checks the cluster first and refuses to move anything unless every node agrees
    // on the slots, which they do not for a moment after a node restarted or a reshard.
    wait_ready();
    const auto log = dir_ / ("reshard-" + std::to_string(++tool_runs_) + ".log");
    auto cli = run_redis_cli(
        dir_.path(), log,
        {"--cluster", "reshard", node(from).address(), "--cluster-from", node_id(from),
         "--cluster-to", node_id(to), "--cluster-slots", std::to_string(count), "--cluster-yes"});
    return redis_reshard(*this, std::move(cli), log);
}

void redis_cluster::reshard(std::size_t from, std::size_t to, int count) {
    start_reshard(from, to, count).wait();
}

std::string redis_cluster::describe() {
    std::string out;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        auto& n = *nodes_[i];
        out += "--- node " + std::to_string(i) + " " + n.address() + " pid " +
               std::to_string(n.pid()) + (n.running() ? "" : " (not running)") + "\n";
        if (n.running()) {
            try {
                redis_connection c(n.port(), 1s);
                out += to_string(c.call({"CLUSTER", "NODES"})) + "\n";
            } catch (const std::exception& e) {
                out += std::string(e.what()) + "\n";
            }
        }
        out += n.log_path().string() + " ends with:\n" + n.log_tail(10) + "\n";
    }
    return out;
}

} // namespace p2pshare::test
