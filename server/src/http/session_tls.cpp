// Session over TLS: the server's default.
#include "session.h"
#include "sessions.h"

namespace pocketllm::server::http_front {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

void start_tls_session(Shared& shared, std::string address, std::shared_ptr<ssl::context> tls, tcp::socket socket) {
  ssl::context& ctx = *tls;
  std::make_shared<Session<TlsStream>>(shared, std::move(address), std::move(tls), std::move(socket), ctx)->start();
}

void close_idle_tls_sessions(Shared& shared) {
  for (auto& s : shared.idle_sessions()) std::static_pointer_cast<Session<TlsStream>>(s)->close_idle();
}

}  // namespace pocketllm::server::http_front
