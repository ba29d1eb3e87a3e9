// Beast-level helpers of the test support, apart so that test_support.hpp stays light.
#pragma once

#include "test_support.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace p2pshare::test {

/// A request to 127.0.0.1 with `headers`; a body (and its Content-Length) when one is given or
/// the method is POST or PUT.
boost::beast::http::request<boost::beast::http::string_body> make_request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::map<std::string, std::string>& headers, unsigned version = 11);

/// A parsed response as an http_reply (header names in lower case).
http_reply to_reply(const boost::beast::http::response<boost::beast::http::string_body>& res);

} // namespace p2pshare::test
