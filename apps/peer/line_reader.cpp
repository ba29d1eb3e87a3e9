#include "line_reader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

namespace peer {

LineReader::LineReader() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe failed");
}

LineReader::~LineReader() {
    ::close(wake_[0]);
    ::close(wake_[1]);
}

void LineReader::wake() {
    woken_ = true;
    const char c = 1;
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
}

std::optional<std::string> LineReader::read_line() {
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

void LineReader::wait() {
    pollfd p{wake_[0], POLLIN, 0};
    while (!woken_)
        ::poll(&p, 1, -1);
}

} // namespace peer
