// The one translation unit that compiles Beast (BOOST_BEAST_SEPARATE_COMPILATION, private to the
// library).
#include <boost/beast/src.hpp>
