// The one translation unit that compiles Asio (BOOST_ASIO_SEPARATE_COMPILATION, private to the
// library). Beast is in beast_impl.cpp: a program with its own compiled Asio links without
// pulling this object in.
#include <boost/asio/impl/src.hpp>
