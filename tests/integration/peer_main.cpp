#define BOOST_TEST_MODULE p2pshare peer tests
#include <boost/test/unit_test.hpp>
