// bench_index_memory: peak memory of the indexserver executable holding 100,000 peers that share
// 10 files each. It starts indexserver, registers the peers over HTTP (keep-alive connections
// from a few client threads), checks the counts with GET /v1/health and reads the server's
// VmHWM/VmRSS from /proc/PID/status.
//
// usage: bench_index_memory --indexserver PATH [--out DIR | --log FILE] [--peers 100000]
//                           [--files 10] [--clients 4]
#include "bench_common.hpp"

#include <boost/json/parse.hpp>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <csignal>

namespace fs = std::filesystem;
using namespace p2pshare::bench;

namespace {

constexpr std::uint64_t target_mib = 512;

/// The indexserver child process; killed when this goes out of scope.
class server_process {
public:
    server_process(const fs::path& exe, const fs::path& config_dir, const std::string& store) {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            const std::string dir = config_dir.string();
            ::execl(exe.c_str(), exe.c_str(), "--port", "0", "--config-dir", dir.c_str(),
                    "--lease-ttl", "1h", "--log-level", "warn", "--store", store.c_str(),
                    // Every peer registers from 127.0.0.1.
                    "--max-peers-per-address", "10000000", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        out_ = out[0];
    }
    ~server_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_ >= 0) ::close(out_);
    }
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    /// Waits (at most 10 s) for "indexserver listening on HOST:PORT" and returns the port.
    std::uint16_t wait_for_port() {
        std::string text;
        const auto deadline = clock::now() + std::chrono::seconds(10);
        while (clock::now() < deadline) {
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char b[512];
            const auto n = ::read(out_, b, sizeof b);
            if (n <= 0) break;
            text.append(b, static_cast<std::size_t>(n));
            const auto at = text.find("listening on ");
            const auto eol = at == std::string::npos ? at : text.find('\n', at);
            if (eol != std::string::npos) {
                const auto line = text.substr(at, eol - at);
                return static_cast<std::uint16_t>(std::stoul(line.substr(line.rfind(':') + 1)));
            }
        }
        throw std::runtime_error("indexserver did not say where it listens; its output: " + text);
    }

    /// SIGTERM, then waits (at most 10 s) for a clean exit; returns the exit status or -1.
    int stop() {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 200; ++i) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return -1;
    }

    std::string pid() const { return std::to_string(pid_); }

private:
    pid_t pid_ = -1;
    int out_ = -1;
};

std::string register_body(std::size_t id, std::size_t files, std::mt19937_64& rng) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string b;
    b.reserve(160 + files * 130);
    b += R"({"id":)" + std::to_string(id) + R"(,"host":"127.0.0.1","port":)" +
         std::to_string(1024 + id % 60000) + R"(,"files":[)";
    for (std::size_t k = 1; k <= files; ++k) {
        if (k > 1) b += ',';
        // filegen's names with --prefix: pID-SIZE-1.txt
        b += R"({"name":"p)" + std::to_string(id) + "-" + std::to_string(k) +
             R"(KiB-1.txt","size":)" + std::to_string(k * 1024) + R"(,"sha256":")";
        for (int i = 0; i < 4; ++i) {
            auto v = rng();
            for (int j = 0; j < 16; ++j, v >>= 4)
                b += digits[v & 15];
        }
        b += R"("})";
    }
    b += "]}";
    return b;
}

std::string mib(std::uint64_t kib) { return fixed(static_cast<double>(kib) / 1024, 1) + " MiB"; }

} // namespace

int main(int argc, char** argv) try {
    report out("index_memory", argc, argv);
    const fs::path exe = option(out.args(), "--indexserver", "");
    if (exe.empty()) throw std::runtime_error("give the indexserver executable with --indexserver");
    const auto peers = std::stoul(option(out.args(), "--peers", "100000"));
    const auto files = std::stoul(option(out.args(), "--files", "10"));
    const auto clients = std::max<std::size_t>(1, std::stoul(option(out.args(), "--clients", "4")));
    // --store redis://...: the index server keeps the network in Redis; scripts/bench.sh reads
    // Redis's own memory then, and this figure is the registrations/s.
    const auto store = option(out.args(), "--store", "memory");
    const auto store_name = option(out.args(), "--store-name", store);

    std::string tmpl = (fs::temp_directory_path() / "p2pshare-bench.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary folder");
    const fs::path dir = tmpl;
    struct cleanup {
        fs::path p;
        ~cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } remove_dir{dir};

    server_process server(exe, dir, store);
    const auto port = server.wait_for_port();
    const auto rss_start = proc_status_kib(server.pid(), "VmRSS");

    std::atomic<std::size_t> next{1};
    std::atomic<bool> failed{false};
    std::string failure;
    std::mutex failure_mutex;
    std::vector<std::thread> threads;
    const auto t0 = clock::now();
    for (std::size_t c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            try {
                http_connection conn(port);
                std::mt19937_64 rng(c + 1);
                std::string body;
                for (std::size_t id = next++; id <= peers && !failed; id = next++) {
                    const auto status = conn.round_trip(
                        make_request("POST", "/v1/peers", register_body(id, files, rng)), &body);
                    if (status != 201) {
                        throw std::runtime_error("registering peer " + std::to_string(id) +
                                                 " answered " + std::to_string(status) + ": " +
                                                 body);
                    }
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(failure_mutex);
                failure = e.what();
                failed = true;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (failed) throw std::runtime_error(failure);

    http_connection conn(port);
    std::string health;
    if (conn.round_trip(make_request("GET", "/v1/health"), &health) != 200) {
        throw std::runtime_error("GET /v1/health failed");
    }
    const auto h = boost::json::parse(health).as_object();
    const auto peers_seen = h.at("peers").to_number<std::uint64_t>();
    const auto files_seen = h.at("files").to_number<std::uint64_t>();
    std::string lookup;
    const auto lookup_status = conn.round_trip(
        make_request("POST", "/v1/lookup", R"({"names":["p77-3KiB-1.txt"]})"), &lookup);

    const auto hwm = proc_status_kib(server.pid(), "VmHWM");
    const auto rss = proc_status_kib(server.pid(), "VmRSS");
    const int exit_status = server.stop();

    out.line("p2pshare index memory");
    out.line("indexserver (separate process) holding " + std::to_string(peers) + " peers x " +
             std::to_string(files) + " files, names like p77-3KiB-1.txt, registered over HTTP by " +
             std::to_string(clients) + " keep-alive clients");
    out.line("registered in " + fixed(seconds, 2) + " s (" +
             fixed(static_cast<double>(peers) / seconds, 0) + " registrations/s)");
    out.line("health: " + std::to_string(peers_seen) + " peers, " + std::to_string(files_seen) +
             " files; a lookup answered " + std::to_string(lookup_status));
    out.line("RSS at start " + mib(rss_start) + ", RSS after " + mib(rss) + ", peak (VmHWM) " +
             mib(hwm) + "; target < " + std::to_string(target_mib) + " MiB");
    out.line("indexserver exited with status " + std::to_string(exit_status));
    const bool met = hwm < target_mib * 1024;
    if (store != "memory") {
        out.figure("registrations/s, " + std::to_string(peers) + " peers x " +
                       std::to_string(files) + " files, store " + store_name,
                   fixed(static_cast<double>(peers) / seconds, 0) + " registrations/s (index RSS " +
                       mib(rss) + ")",
                   "-", "-", "-", "-");
    } else {
        out.figure("index server peak memory, " + std::to_string(peers) + " peers x " +
                       std::to_string(files) + " files",
                   mib(hwm) + " (RSS " + mib(rss) + "; " +
                       fixed(static_cast<double>(peers) / seconds, 0) + " registrations/s)",
                   "target 512 MiB",
                   fixed(static_cast<double>(hwm) / 1024 / target_mib, 2) + "x of the target",
                   "< 512 MiB", met ? "met" : "MISSED");
    }
    const bool ok = peers_seen == peers && files_seen == peers * files && lookup_status == 200;
    if (!ok) out.line("the index does not hold what was registered");
    return ok ? 0 : 1;
} catch (const std::exception& e) {
    std::cerr << "bench_index_memory: " << e.what() << '\n';
    return 1;
}
