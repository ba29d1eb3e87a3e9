// Helpers shared by the p2pshare benchmarks: a minimal blocking HTTP/1.1 keep-alive client on a
// raw socket (so that the client costs as little as possible), latency statistics, a report
// printed to stdout and to a log file, and the figures file that scripts/bench.sh gathers into
// test-logs/summary.md.
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace p2pshare::bench {

using clock = std::chrono::steady_clock;

inline double micros(clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

// --- a blocking keep-alive HTTP client ------------------------------------------------------

/// One TCP connection to 127.0.0.1:port that sends complete requests and reads complete
/// responses (Content-Length bodies only, which is all p2pshare sends).
class http_connection {
public:
    explicit http_connection(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            const std::string why = std::strerror(errno);
            ::close(fd_);
            throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " + why);
        }
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        buf_.resize(64 * 1024);
    }
    ~http_connection() {
        if (fd_ >= 0) ::close(fd_);
    }
    http_connection(const http_connection&) = delete;
    http_connection& operator=(const http_connection&) = delete;

    /// Sends `request` (complete bytes) and reads one response. Returns its status; the body
    /// goes to `body` when given. Throws on a connection failure or a malformed response.
    unsigned round_trip(std::string_view request, std::string* body = nullptr) {
        send_all(request);
        // Read until the end of the headers.
        std::size_t header_end = std::string_view::npos;
        std::size_t have = 0;
        for (;;) {
            if (have == buf_.size()) buf_.resize(buf_.size() * 2);
            const auto n = ::recv(fd_, buf_.data() + have, buf_.size() - have, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::runtime_error("the server closed the connection");
            have += static_cast<std::size_t>(n);
            const std::string_view seen(buf_.data(), have);
            header_end = seen.find("\r\n\r\n");
            if (header_end != std::string_view::npos) break;
            if (have > 1024 * 1024) throw std::runtime_error("response headers too long");
        }
        const std::string_view head(buf_.data(), header_end);
        if (head.size() < 12 || head.substr(0, 5) != "HTTP/") {
            throw std::runtime_error("not an HTTP response");
        }
        const unsigned status =
            static_cast<unsigned>(std::atoi(std::string(head.substr(9, 3)).c_str()));
        const std::size_t length = content_length(head);
        const std::size_t body_start = header_end + 4;
        while (have < body_start + length) {
            if (have == buf_.size()) buf_.resize(std::max(buf_.size() * 2, body_start + length));
            const auto n = ::recv(fd_, buf_.data() + have, buf_.size() - have, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::runtime_error("the server closed the connection mid-body");
            have += static_cast<std::size_t>(n);
        }
        if (have != body_start + length) throw std::runtime_error("unexpected bytes after a body");
        if (body) body->assign(buf_.data() + body_start, length);
        return status;
    }

private:
    void send_all(std::string_view data) {
        while (!data.empty()) {
            const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::runtime_error("send: " + std::string(std::strerror(errno)));
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    static std::size_t content_length(std::string_view head) {
        std::size_t pos = 0;
        while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
            pos += 2;
            const auto line = head.substr(pos, head.find("\r\n", pos) - pos);
            constexpr std::string_view key = "content-length:";
            if (line.size() > key.size()) {
                bool match = true;
                for (std::size_t i = 0; i < key.size() && match; ++i) {
                    match = std::tolower(static_cast<unsigned char>(line[i])) == key[i];
                }
                if (match) return std::stoull(std::string(line.substr(key.size())));
            }
        }
        return 0;
    }

    int fd_ = -1;
    std::vector<char> buf_;
};

/// The bytes of an HTTP/1.1 keep-alive request with a JSON body (or none).
inline std::string make_request(std::string_view method, std::string_view target,
                                std::string_view json_body = {}) {
    std::string r;
    r.reserve(160 + json_body.size());
    r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if (!json_body.empty() || method == "POST" || method == "PUT") {
        r.append("Content-Type: application/json\r\nContent-Length: ")
            .append(std::to_string(json_body.size()))
            .append("\r\n");
    }
    r.append("\r\n").append(json_body);
    return r;
}

// --- statistics -----------------------------------------------------------------------------

struct latency_summary {
    std::size_t count = 0;
    double mean_us = 0;
    double p50_us = 0;
    double p99_us = 0;
    double max_us = 0;
};

/// Nearest-rank percentile of sorted samples.
inline double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

inline latency_summary summarize(std::vector<double> samples_us) {
    latency_summary s;
    s.count = samples_us.size();
    if (samples_us.empty()) return s;
    std::sort(samples_us.begin(), samples_us.end());
    s.mean_us = std::accumulate(samples_us.begin(), samples_us.end(), 0.0) /
                static_cast<double>(samples_us.size());
    s.p50_us = percentile(samples_us, 50);
    s.p99_us = percentile(samples_us, 99);
    s.max_us = samples_us.back();
    return s;
}

/// "12.3 us" below a millisecond, "1.234 ms" above.
inline std::string format_time(double us) {
    char b[32];
    if (us < 1000) {
        std::snprintf(b, sizeof b, "%.1f us", us);
    } else {
        std::snprintf(b, sizeof b, "%.3f ms", us / 1000);
    }
    return b;
}

inline std::string fixed(double v, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}

// --- output ---------------------------------------------------------------------------------

/// Where a benchmark writes: `--out DIR` (DIR/NAME.log and DIR/NAME.figures.tsv, plus any data
/// files) or `--log PATH` (the log only). Every line reported goes to stdout and the log.
class report {
public:
    report(std::string name, int argc, char** argv) : name_(std::move(name)) {
        for (int i = 1; i < argc; ++i) {
            const std::string_view a = argv[i];
            if ((a == "--out" || a == "--log") && i + 1 < argc) {
                (a == "--out" ? out_dir_ : log_path_) = argv[++i];
            } else {
                args_.emplace_back(a);
            }
        }
        if (!out_dir_.empty()) {
            std::filesystem::create_directories(out_dir_);
            if (log_path_.empty()) log_path_ = out_dir_ / (name_ + ".log");
        }
        if (!log_path_.empty()) {
            if (log_path_.has_parent_path())
                std::filesystem::create_directories(log_path_.parent_path());
            log_.open(log_path_, std::ios::trunc);
            if (!log_) throw std::runtime_error("cannot write " + log_path_.string());
        }
        if (!out_dir_.empty()) {
            figures_.open(out_dir_ / (name_ + ".figures.tsv"), std::ios::trunc);
        }
    }

    /// Arguments other than --out/--log, for the benchmark's own options.
    const std::vector<std::string>& args() const noexcept { return args_; }
    const std::filesystem::path& out_dir() const noexcept { return out_dir_; }

    /// A line on stdout and in the log.
    void line(const std::string& text) {
        std::cout << text << '\n' << std::flush;
        if (log_) log_ << text << '\n' << std::flush;
    }

    /// One row of test-logs/summary.md: figure, value, reference, ratio, target, verdict.
    void figure(const std::string& what, const std::string& value, const std::string& reference,
                const std::string& ratio, const std::string& target = "-",
                const std::string& verdict = "-") {
        if (figures_) {
            figures_ << what << '\t' << value << '\t' << reference << '\t' << ratio << '\t'
                     << target << '\t' << verdict << '\n'
                     << std::flush;
        }
    }

    /// A data file in the output folder (for plots); nothing without --out.
    std::ofstream data_file(const std::string& file_name) {
        if (out_dir_.empty()) return {};
        return std::ofstream(out_dir_ / file_name, std::ios::trunc);
    }

private:
    std::string name_;
    std::filesystem::path out_dir_;
    std::filesystem::path log_path_;
    std::vector<std::string> args_;
    std::ofstream log_;
    std::ofstream figures_;
};

/// A value of a `key=value`-style option among the benchmark's own arguments: --key VALUE.
inline std::string option(const std::vector<std::string>& args, std::string_view key,
                          std::string fallback) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == key) return args[i + 1];
    }
    return fallback;
}

/// "kB" figure of a /proc/PID/status field (VmHWM, VmRSS), 0 when unreadable.
inline std::uint64_t proc_status_kib(const std::string& pid, std::string_view field) {
    std::ifstream in("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
            line[field.size()] == ':') {
            return std::stoull(line.substr(field.size() + 1));
        }
    }
    return 0;
}

} // namespace p2pshare::bench
