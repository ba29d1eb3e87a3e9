#include "http_message.hpp"

#include "http_parser.hpp"
#include "protocol.hpp"

#include <boost/beast/core/string.hpp>

#include <algorithm>

namespace p2pshare::detail {

// ---------------------------------------------------------------------------------------------
// request and response

std::string_view request::operator[](http::field f) const noexcept {
    for (std::size_t i = 0; i < used_; ++i) {
        if (fields_[i].first == f) return fields_[i].second;
    }
    return {};
}

void request::clear() noexcept {
    method_ = http::verb::unknown;
    method_text_.clear();
    target_.clear();
    version_ = 11;
    keep_alive_ = false;
    body_.clear();
    used_ = 0;
}

void request::trim() noexcept {
    if (body_.capacity() > 64 * 1024) std::string().swap(body_);
}

void request::add(http::field f, std::string_view value) {
    if (used_ < fields_.size()) {
        fields_[used_].first = f;
        fields_[used_].second.assign(value);
    } else {
        fields_.emplace_back(f, std::string(value));
    }
    ++used_;
}

void response::set(http::field f, std::string_view value) {
    for (auto& [field, text] : fields_) {
        if (field == f) {
            text.assign(value);
            return;
        }
    }
    fields_.emplace_back(f, std::string(value));
}

std::string_view response::operator[](http::field f) const noexcept {
    if (f == http::field::content_type) return content_type_;
    for (const auto& [field, text] : fields_) {
        if (field == f) return text;
    }
    return {};
}

void response::write_head(std::string& out, std::uint64_t content_length, bool closing) const {
    out.append(version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    append_number(out, static_cast<unsigned>(status_));
    out.push_back(' ');
    const auto reason = http::obsolete_reason(status_);
    out.append(reason.data(), reason.size());
    out.append("\r\nServer: p2pshare\r\n");
    if (!content_type_.empty()) {
        out.append("Content-Type: ");
        out.append(content_type_);
        out.append("\r\n");
    }
    for (const auto& [field, text] : fields_) {
        const auto name = http::to_string(field);
        out.append(name.data(), name.size());
        out.append(": ");
        out.append(text);
        out.append("\r\n");
    }
    out.append("Content-Length: ");
    append_number(out, content_length);
    if (!keep_alive_ || closing) {
        out.append("\r\nConnection: close");
    } else if (version_ == 10) {
        out.append("\r\nConnection: keep-alive");
    }
    out.append("\r\n\r\n");
}

response json_response(const request& req, http::status status, std::string body) {
    response res{status, req.version(), req.keep_alive()};
    res.content_type("application/json");
    res.body() = std::move(body);
    return res;
}

response error_response(const request& req, errc code, std::string message) {
    return json_response(req, static_cast<http::status>(http_status(code)),
                         encode_error({code, std::move(message)}));
}

response error_response(errc code, std::string message) {
    response res{static_cast<http::status>(http_status(code)), 11, false};
    res.content_type("application/json");
    res.body() = encode_error({code, std::move(message)});
    return res;
}

// ---------------------------------------------------------------------------------------------
// request_parser

request_parser::request_parser(request& req, const ServerLimits& limits)
    : req_(req), header_budget_(std::min<std::size_t>(limits.header_limit, UINT32_MAX)) {
    req_.clear();
    header_limit(static_cast<std::uint32_t>(header_budget_));
    body_limit(limits.body_limit);
    eager(true);
}

std::size_t request_parser::put(boost::asio::const_buffer buffer, boost::system::error_code& ec) {
    if (is_header_done()) return basic_parser::put(buffer, ec);
    // Beast consumes the request line, then each complete header field, and limits each call to
    // header_limit bytes of what it is given: what earlier calls consumed is counted here.
    header_limit(static_cast<std::uint32_t>(header_budget_ - header_used_));
    put_start_ = static_cast<const char*>(buffer.data());
    const auto used = basic_parser::put(buffer, ec);
    if (!is_header_done()) header_used_ += std::min(used, header_budget_ - header_used_);
    return used;
}

void request_parser::finish() noexcept { req_.keep_alive_ = keep_alive(); }

void request_parser::on_request_impl(http::verb method, beast::string_view method_text,
                                     beast::string_view target, int version,
                                     boost::system::error_code&) {
    req_.method_ = method;
    req_.method_text_.assign(method_text.data(), method_text.size());
    req_.target_.assign(target.data(), target.size());
    req_.version_ = static_cast<unsigned>(version);
    // The fields that follow in this same call share what the request line left: the line
    // began this call's bytes and ends with " HTTP/1.1\r\n" after the target.
    const auto line = static_cast<std::size_t>(target.data() + target.size() + 11 - put_start_);
    const auto left = header_budget_ - header_used_;
    header_limit(static_cast<std::uint32_t>(left - std::min(line, left)));
}

void request_parser::on_field_impl(http::field f, beast::string_view, beast::string_view value,
                                   boost::system::error_code&) {
    if (f == http::field::unknown) return;
    if (f == http::field::expect) expect_continue_ = beast::iequals(value, "100-continue");
    req_.add(f, {value.data(), value.size()});
}

void request_parser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                       boost::system::error_code&) {
    // The parser has already refused a length over the body limit.
    if (length) req_.body_.reserve(static_cast<std::size_t>(*length));
}

std::size_t request_parser::on_body_impl(beast::string_view body, boost::system::error_code&) {
    req_.body_.append(body.data(), body.size());
    return body.size();
}

std::size_t request_parser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                               boost::system::error_code&) {
    req_.body_.append(body.data(), body.size());
    return body.size();
}

} // namespace p2pshare::detail
