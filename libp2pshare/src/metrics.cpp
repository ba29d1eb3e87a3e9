#include "metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace p2pshare::detail {

void histogram::observe(std::chrono::nanoseconds d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < bounds.size() && s > bounds[i])
        ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count())),
                      std::memory_order_relaxed);
}

std::uint64_t histogram::count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& c : counts_)
        n += c.load(std::memory_order_relaxed);
    return n;
}

namespace {

void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, ec == std::errc{} ? end : buf);
    }
}

template <class T>
void append_integer(std::string& out, T v) {
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc{} ? end : buf);
}

void head(std::string& out, std::string_view name, std::string_view labels) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
}

} // namespace

void metrics_text::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (const char c : help) {
        if (c == '\\') {
            out_ += "\\\\";
        } else if (c == '\n') {
            out_ += "\\n";
        } else {
            out_ += c;
        }
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void metrics_text::sample(std::string_view name, std::string_view labels, double value) {
    head(out_, name, labels);
    append_number(out_, value);
    out_ += '\n';
}

void metrics_text::sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    head(out_, name, labels);
    append_integer(out_, value);
    out_ += '\n';
}

void metrics_text::sample(std::string_view name, std::string_view labels, std::int64_t value) {
    head(out_, name, labels);
    append_integer(out_, value);
    out_ += '\n';
}

void metrics_text::histogram_samples(std::string_view name, std::string_view labels,
                                     const histogram& h) {
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t cumulative = 0;
    std::string le;
    for (std::size_t i = 0; i <= histogram::bounds.size(); ++i) {
        cumulative += h.bucket(i);
        le.clear();
        if (i < histogram::bounds.size()) {
            append_number(le, histogram::bounds[i]);
        } else {
            le = "+Inf";
        }
        std::string l(labels);
        if (!l.empty()) l += ',';
        l += label("le", le);
        sample(bucket, l, cumulative);
    }
    sample(std::string(name) + "_sum", labels, h.sum_seconds());
    sample(std::string(name) + "_count", labels, cumulative);
}

std::string label(std::string_view name, std::string_view value) {
    std::string out(name);
    out += "=\"";
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::size_t status_slot(unsigned status) noexcept {
    const auto it = std::find(counted_statuses.begin(), counted_statuses.end(), status);
    return static_cast<std::size_t>(it - counted_statuses.begin());
}

std::string_view to_string(index_endpoint e) noexcept {
    switch (e) {
        case index_endpoint::lookup:
            return "lookup";
        case index_endpoint::list:
            return "list";
        case index_endpoint::register_peer:
            return "register";
        case index_endpoint::renew:
            return "renew";
        case index_endpoint::files:
            return "files";
        case index_endpoint::unregister:
            return "unregister";
        case index_endpoint::health:
            return "health";
        case index_endpoint::metrics:
            return "metrics";
        case index_endpoint::status:
            return "status";
        case index_endpoint::other:
            return "other";
    }
    return "other";
}

} // namespace p2pshare::detail
