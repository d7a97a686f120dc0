// Session over plain TCP (a server started without TLS, tests and loopback deployments).
#include "session.h"
#include "sessions.h"

namespace pocketllm::server::http_front {

void start_plain_session(Shared& shared, std::string address, tcp::socket socket) {
  std::make_shared<Session<beast::tcp_stream>>(shared, std::move(address), nullptr, std::move(socket))->start();
}

void close_idle_plain_sessions(Shared& shared) {
  for (auto& s : shared.idle_sessions()) std::static_pointer_cast<Session<beast::tcp_stream>>(s)->close_idle();
}

}  // namespace pocketllm::server::http_front
