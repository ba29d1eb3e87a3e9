#define BOOST_TEST_MODULE p2pshare unit tests
#include <boost/test/unit_test.hpp>
