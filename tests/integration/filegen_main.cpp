#define BOOST_TEST_MODULE p2pshare filegen tests
#include <boost/test/unit_test.hpp>
