#define BOOST_TEST_MODULE p2pshare end to end tests
#include <boost/test/unit_test.hpp>
