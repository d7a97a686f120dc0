// Starting and closing sessions without seeing their template: the listener and the shutdown path call
// these, session_plain.cpp and session_tls.cpp define them over Session<Stream> (one stream type each,
// so the two Beast instantiations compile in parallel instead of in one long TU).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "shared_state.h"

namespace pocketllm::server::http_front {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// Serves one accepted connection until it closes; the session owns itself (shared_from_this).
void start_plain_session(Shared& shared, std::string address, boost::asio::ip::tcp::socket socket);
// The same over TLS made with `tls`, which the session holds (a reload never takes it from the connection).
void start_tls_session(Shared& shared, std::string address, std::shared_ptr<boost::asio::ssl::context> tls,
                       boost::asio::ip::tcp::socket socket);

// On shutdown: closes the sessions of that kind waiting between requests (Shared::idle); the others
// finish their request first.
void close_idle_plain_sessions(Shared& shared);
void close_idle_tls_sessions(Shared& shared);

}  // namespace pocketllm::server::http_front
