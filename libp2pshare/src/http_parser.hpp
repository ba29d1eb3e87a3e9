// The servers' request parser: Beast's basic_parser filling a connection's reused request.
#pragma once

#include "http_message.hpp"

#include <p2pshare/limits.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <cstddef>
#include <cstdint>

namespace p2pshare::detail {

/// Fills `req` from the bytes of one request, within the limits of `limits`: the request line
/// and the header fields together within header_limit (http::error::header_limit beyond), the
/// body within body_limit. Beast's own header limit applies to the request line and then again
/// to the fields, and only to the bytes of one put(): this one is one budget for them all,
/// however the bytes arrive.
class request_parser : public http::basic_parser<true> {
public:
    request_parser(request& req, const ServerLimits& limits);

    /// basic_parser::put, with the header budget.
    std::size_t put(boost::asio::const_buffer buffer, boost::system::error_code& ec);

    /// After the header: whether the client waits for "100 Continue" before sending its body.
    bool expects_continue() const noexcept { return expect_continue_; }
    void finish() noexcept;

private:
    void on_request_impl(http::verb method, beast::string_view method_text,
                         beast::string_view target, int version,
                         boost::system::error_code&) override;
    void on_response_impl(int, beast::string_view, int, boost::system::error_code&) override {}
    void on_field_impl(http::field f, beast::string_view, beast::string_view value,
                       boost::system::error_code&) override;
    void on_header_impl(boost::system::error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                           boost::system::error_code&) override;
    std::size_t on_body_impl(beast::string_view body, boost::system::error_code&) override;
    void on_chunk_header_impl(std::uint64_t, beast::string_view,
                              boost::system::error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                   boost::system::error_code&) override;
    void on_finish_impl(boost::system::error_code&) override {}

    request& req_;
    std::size_t header_budget_;   ///< header_limit
    std::size_t header_used_ = 0; ///< header bytes consumed by earlier calls of put()
    const char* put_start_ = nullptr;
    bool expect_continue_ = false;
};

} // namespace p2pshare::detail
