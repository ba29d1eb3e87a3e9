#include "query.hpp"

#include "protocol.hpp"

namespace p2pshare::detail {

std::optional<std::string_view> target::param(std::string_view key) const {
    for (const auto& [k, v] : query) {
        if (k == key) return std::string_view(v);
    }
    return std::nullopt;
}

std::optional<target> parse_target(std::string_view text) {
    if (text.empty() || text.front() != '/') return std::nullopt;
    target out;
    const auto question = text.find('?');
    auto path =
        text.substr(1, question == std::string_view::npos ? std::string_view::npos : question - 1);
    while (true) {
        const auto slash = path.find('/');
        auto segment = percent_decode(path.substr(0, slash));
        if (!segment) return std::nullopt;
        out.segments.push_back(std::move(*segment));
        if (slash == std::string_view::npos) break;
        path = path.substr(slash + 1);
    }
    if (question == std::string_view::npos) return out;
    auto query = text.substr(question + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        std::string key(pair.substr(0, eq));
        std::string value(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        for (auto* s : {&key, &value}) {
            for (auto& c : *s) {
                if (c == '+') c = ' ';
            }
        }
        auto k = percent_decode(key);
        auto v = percent_decode(value);
        if (!k || !v) return std::nullopt;
        out.query.emplace_back(std::move(*k), std::move(*v));
    }
    return out;
}

} // namespace p2pshare::detail
