#include "test_support.hpp"
#include "test_http.hpp"

#include <openssl/evp.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

namespace p2pshare::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

temp_dir::temp_dir(std::string_view prefix) {
    std::random_device rd;
    for (int i = 0; i < 100; ++i) {
        auto p = std::filesystem::temp_directory_path() /
                 (std::string(prefix) + std::to_string(rd()) + std::to_string(rd()));
        if (std::filesystem::create_directory(p)) {
            path_ = p;
            return;
        }
    }
    throw std::runtime_error("cannot create a temporary folder");
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& file, std::string_view content) {
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    std::ostringstream s;
    s << in.rdbuf();
    return std::move(s).str();
}

std::string random_text(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> d(33, 126);
    std::string s(n, ' ');
    for (auto& c : s)
        c = static_cast<char>(d(rng));
    return s;
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 15]);
    }
    return out;
}

std::string piece_hashes(std::string_view data) {
    // docs/protocol.md, "Pieces", written again here from the text: 1 MiB pieces for files
    // below 32 GiB, the SHA-256 of each (an empty file has one empty piece).
    constexpr std::size_t piece = 1 << 20;
    std::string out;
    std::size_t at = 0;
    do {
        unsigned char md[32];
        unsigned int len = 0;
        const auto part = data.substr(at, piece);
        EVP_Digest(part.data(), part.size(), md, &len, EVP_sha256(), nullptr);
        out.append(reinterpret_cast<const char*>(md), 32);
        at += piece;
    } while (at < data.size());
    return out;
}

std::string piece_root_hex(std::string_view data) {
    // Zero digests up to a power of two, then SHA-256 of each pair, up to one.
    const auto hashes = piece_hashes(data);
    std::vector<std::string> level;
    for (std::size_t i = 0; i < hashes.size(); i += 32)
        level.push_back(hashes.substr(i, 32));
    std::size_t width = 1;
    while (width < level.size())
        width *= 2;
    level.resize(width, std::string(32, '\0'));
    while (level.size() > 1) {
        std::vector<std::string> up;
        for (std::size_t i = 0; i < level.size(); i += 2) {
            const auto both = level[i] + level[i + 1];
            unsigned char md[32];
            unsigned int len = 0;
            EVP_Digest(both.data(), both.size(), md, &len, EVP_sha256(), nullptr);
            up.emplace_back(reinterpret_cast<const char*>(md), 32);
        }
        level = std::move(up);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const auto c : level.front()) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(hex[u >> 4]);
        out.push_back(hex[u & 15]);
    }
    return out;
}

io_thread::io_thread() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

io_thread::~io_thread() {
    work_.reset();
    // Give coroutines that are still running a moment to see their cancellation, then stop.
    asio::post(io_, [this] { io_.stop(); });
    thread_.join();
}

std::string http_reply::header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
}

http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body, const std::map<std::string, std::string>& headers) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::write(stream, make_request(method, target, body, headers));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 32);
    if (method == "HEAD") parser.skip(true);
    http::read(stream, buffer, parser);
    return to_reply(parser.get());
}

http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                              const std::string& body,
                                              const std::map<std::string, std::string>& headers,
                                              unsigned version) {
    http::request<http::string_body> req{http::string_to_verb(method), target, version};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers)
        req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PUT") {
        req.body() = body;
        req.prepare_payload();
    }
    return req;
}

std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

http_reply to_reply(const http::response<http::string_body>& res) {
    http_reply reply;
    reply.status = res.result_int();
    for (const auto& field : res) {
        std::string name(field.name_string());
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        reply.headers[name] = std::string(field.value());
    }
    reply.body = res.body();
    return reply;
}

std::string raw_call(std::uint16_t port, std::string_view bytes) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::write(stream, asio::buffer(bytes.data(), bytes.size()));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec) {
        const auto n = stream.read_some(asio::buffer(buf), ec);
        out.append(buf, n);
    }
    return out;
}

namespace {

/// A pseudo-terminal in raw mode: {master, slave}, both close-on-exec.
std::pair<int, int> open_terminal() {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char name[128];
    const int slave = master >= 0 && ::grantpt(master) == 0 && ::unlockpt(master) == 0 &&
                              ::ptsname_r(master, name, sizeof name) == 0
                          ? ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)
                          : -1;
    if (slave < 0) {
        const std::string why = strerror(errno);
        if (master >= 0) ::close(master);
        throw std::runtime_error("cannot open a pseudo-terminal: " + why);
    }
    termios mode{};
    if (::tcgetattr(slave, &mode) == 0) {
        ::cfmakeraw(&mode); // no "\n" made "\r\n", no echo
        ::tcsetattr(slave, TCSANOW, &mode);
    }
    return {master, slave};
}

} // namespace

child::child(const std::filesystem::path& exe, const std::vector<std::string>& args,
             const std::filesystem::path& cwd, out_to stdout_to) {
    int in_pipe[2];
    int out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (stdout_to == out_to::terminal) {
        std::tie(out_pipe[0], out_pipe[1]) = open_terminal();
    } else if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    err_file_ = cwd / (".stderr-" + std::to_string(::getpid()) + "-" +
                       std::to_string(std::random_device{}()));
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a test that crashed
        ::dup2(in_pipe[0], 0);
        ::dup2(out_pipe[1], 1);
        const int err = ::open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (err >= 0) ::dup2(err, 2);
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        std::vector<char*> argv;
        std::string exe_string = exe.string();
        argv.push_back(exe_string.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(exe_string.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    in_ = in_pipe[1];
    out_fd_ = out_pipe[0];
}

child::~child() {
    if (!status_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
    }
    if (in_ >= 0) ::close(in_);
    if (out_fd_ >= 0) ::close(out_fd_);
    std::error_code ec;
    std::filesystem::remove(err_file_, ec);
}

void child::write_stdin(std::string_view text) {
    while (!text.empty()) {
        const auto n = ::write(in_, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("write to child failed");
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

void child::close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
}

bool child::read_some(std::chrono::milliseconds timeout) {
    pollfd p{out_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return false;
    char buf[4096];
    const auto n = ::read(out_fd_, buf, sizeof buf);
    // (A terminal's reader gets EIO, not end of file, once the child has closed it.)
    if (n == 0 || (n < 0 && errno == EIO)) eof_ = true;
    if (n <= 0) return false;
    out_.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::string child::wait_for_line(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        while (true) {
            const auto eol = out_.find('\n', scanned_);
            if (eol == std::string::npos) break;
            std::string line = out_.substr(scanned_, eol - scanned_);
            scanned_ = eol + 1;
            if (line.find(needle) != std::string::npos) return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 ||
            (!read_some(left) && std::chrono::steady_clock::now() >= deadline)) {
            throw std::runtime_error("no line with '" + std::string(needle) +
                                     "' within the deadline; output so far:\n" + out_ +
                                     "\nstderr:\n" + error_output());
        }
        // Once the child has closed its stdout (it ended), no line can come any more.
        if (status_ || eof_) break;
    }
    throw std::runtime_error("the process ended without a line with '" + std::string(needle) +
                             "'; output:\n" + out_ + "\nstderr:\n" + error_output());
}

int child::wait(std::chrono::milliseconds timeout) {
    if (status_) return *status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    bool out_open = true;
    for (;;) {
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            while (out_open && read_some(std::chrono::milliseconds(0))) {
            }
            if (pidfd >= 0) ::close(pidfd);
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return *status_;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            if (pidfd >= 0) ::close(pidfd);
            throw std::runtime_error("the process did not exit within the deadline; output:\n" +
                                     out_ + "\nstderr:\n" + error_output());
        }
        // Wake on the process's exit (pidfd) or on its output, which is drained so that it
        // never blocks on a full pipe.
        pollfd fds[2] = {{pidfd, POLLIN, 0}, {out_open ? out_fd_ : -1, POLLIN, 0}};
        ::poll(fds, 2, static_cast<int>(left.count()));
        if (fds[1].revents != 0) {
            char buf[4096];
            const auto n = ::read(out_fd_, buf, sizeof buf);
            if (n > 0) {
                out_.append(buf, static_cast<std::size_t>(n));
            } else {
                out_open = false;
            }
        }
    }
}

std::optional<int> child::try_wait() {
    if (status_) return status_;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return std::nullopt;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
}

void child::signal(int signo) {
    // Once reaped, the pid may belong to another process: signal only a child not yet waited for.
    if (!status_) ::kill(pid_, signo);
}

std::string child::error_output() const {
    std::ifstream in(err_file_);
    std::ostringstream s;
    s << in.rdbuf();
    return std::move(s).str();
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::io_context io;
    asio::steady_timer timer(io);
    for (;;) {
        if (predicate()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return predicate();
        timer.expires_after(interval);
        timer.wait();
    }
}

bool holds_for(const std::function<bool()>& predicate, std::chrono::milliseconds period) {
    const auto end = std::chrono::steady_clock::now() + period;
    asio::io_context io;
    asio::steady_timer timer(io);
    for (;;) {
        if (!predicate()) return false;
        if (std::chrono::steady_clock::now() >= end) return true;
        timer.expires_after(std::chrono::milliseconds(20));
        timer.wait();
    }
}

std::vector<std::string> index_names(std::uint16_t index_port) {
    std::vector<std::string> names;
    std::string after;
    for (;;) {
        std::string target = "/v1/files?limit=1000";
        if (!after.empty()) {
            target += "&after=";
            static constexpr char hex[] = "0123456789ABCDEF";
            for (const char c : after) {
                const auto u = static_cast<unsigned char>(c);
                if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
                    target.push_back(c);
                } else {
                    target.push_back('%');
                    target.push_back(hex[u >> 4]);
                    target.push_back(hex[u & 15]);
                }
            }
        }
        const auto reply = http_call(index_port, "GET", target);
        if (reply.status != 200) {
            throw std::runtime_error("GET /v1/files answered " + std::to_string(reply.status));
        }
        const auto v = boost::json::parse(reply.body);
        for (const auto& n : v.at("names").as_array())
            names.emplace_back(n.as_string());
        const auto& next = v.at("next_after");
        if (!next.is_string()) break;
        after = std::string(next.as_string());
    }
    return names;
}

std::set<std::uint32_t> index_sources(std::uint16_t index_port, const std::string& name) {
    boost::json::object body;
    body["names"].emplace_array().emplace_back(name);
    const auto reply = http_call(index_port, "POST", "/v1/lookup", boost::json::serialize(body),
                                 {{"Content-Type", "application/json"}});
    if (reply.status != 200) {
        throw std::runtime_error("POST /v1/lookup answered " + std::to_string(reply.status));
    }
    std::set<std::uint32_t> ids;
    const auto v = boost::json::parse(reply.body);
    for (const auto& result : v.at("results").as_array()) {
        if (result.at("name").as_string() != name) continue;
        for (const auto& s : result.at("sources").as_array())
            ids.insert(s.at("id").to_number<std::uint32_t>());
    }
    return ids;
}

run_result run_app(const std::string& app, const std::vector<std::string>& args,
                   const std::filesystem::path& cwd, const std::string& input) {
    child c(app_path(app), args, cwd);
    if (!input.empty()) c.write_stdin(input);
    c.close_stdin();
    run_result r;
    r.status = c.wait();
    r.out = c.output();
    r.err = c.error_output();
    return r;
}

std::filesystem::path app_path(const std::string& name) {
    return std::filesystem::path(P2PSHARE_APPS_DIR) / name;
}

} // namespace p2pshare::test
