#define BOOST_TEST_MODULE p2pshare fault and hostile input tests
#include <spdlog/spdlog.h>
#include <boost/test/unit_test.hpp>

namespace {

/// The servers' info lines would drown the test log; warnings and errors still show.
struct quiet_logs {
    quiet_logs() { spdlog::set_level(spdlog::level::warn); }
};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(quiet_logs);
