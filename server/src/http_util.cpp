#include "http_util.h"
#include "pocketllm/common/json_util.h"

namespace pocketllm::server {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool url_decode(const std::string& in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int a = hex_value(in[i + 1]), b = hex_value(in[i + 2]);
      if (a < 0 || b < 0) return false;
      out->push_back(static_cast<char>(a * 16 + b));
      i += 2;
    } else {
      out->push_back(in[i] == '+' ? ' ' : in[i]);
    }
  }
  return true;
}

// Splits `s` on `sep`, dropping empty parts.
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(sep, i);
    if (j == std::string::npos) j = s.size();
    if (j > i) parts.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

}  // namespace

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  // Messages may quote the request (a path, a field name): bytes that are not UTF-8 are replaced.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

HttpResponse error_reply(const protocol::ErrorReply& e) {
  HttpResponse r = json_response(protocol::http_status(e.code), protocol::to_json(e));
  if (r.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");  // RFC 6750: every 401 names the scheme
  return r;
}

HttpResponse error(protocol::ErrorCode code, const std::string& message) {
  protocol::ErrorReply e;
  e.code = code;
  e.message = message;
  return error_reply(e);
}

bool parse_body(const std::string& body, nlohmann::json* out, HttpResponse* err) {
  *out = parse_json(body);
  if (out->is_discarded()) {
    *err = error(protocol::ErrorCode::kMalformedJson, "the body is not valid JSON");
    return false;
  }
  if (!out->is_object()) {
    *err = error(protocol::ErrorCode::kMalformedJson, "the body must be a JSON object");
    return false;
  }
  return true;
}

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

bool parse_target(const std::string& target, Target* out) {
  const size_t q = target.find('?');
  const std::string raw_path = target.substr(0, q);
  if (raw_path.empty() || raw_path[0] != '/') return false;
  for (const std::string& raw : split(raw_path, '/')) {
    std::string seg;
    if (!url_decode(raw, &seg)) return false;
    out->segments.push_back(std::move(seg));
  }
  if (q == std::string::npos) return true;
  for (const std::string& kv : split(target.substr(q + 1), '&')) {
    const size_t eq = kv.find('=');
    std::string k, v;
    if (!url_decode(kv.substr(0, eq), &k) || (eq != std::string::npos && !url_decode(kv.substr(eq + 1), &v))) return false;
    if (!k.empty()) out->query[k] = v;
  }
  return true;
}

}  // namespace pocketllm::server
