// What several unit test files share.
#pragma once

#include <p2pshare/error.hpp>

#include <ostream>
#include <string>

namespace p2pshare {

// For the messages of failed checks.
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) { return os << to_string(e); }

} // namespace p2pshare

// SHA-256 digests in hex that tests tell apart by their digit.
inline const std::string sha_a(64, 'a');
inline const std::string sha_b(64, 'b');
inline const std::string sha_c(64, 'c');
