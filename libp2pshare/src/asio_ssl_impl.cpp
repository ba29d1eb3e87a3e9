// Asio's TLS, compiled once (BOOST_ASIO_SEPARATE_COMPILATION), in a unit of its own so that a
// program with its own compiled Asio still links (it pulls only this one in).
#include <boost/asio/ssl/impl/src.hpp>
