// Beast-level helpers of the test support, apart so that test_support.hpp stays light.
#pragma once

#include "test_support.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace p2pshare::test {

/// A parsed response as an http_reply (header names in lower case).
http_reply to_reply(const boost::beast::http::response<boost::beast::http::string_body>& res);

} // namespace p2pshare::test
