// The one translation unit that compiles Boost.Asio, Asio's SSL and Boost.Beast
// (BOOST_*_SEPARATE_COMPILATION): every other networking TU only instantiates what it uses.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
