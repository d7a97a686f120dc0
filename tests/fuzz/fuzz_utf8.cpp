// Generated text on its way to apps: bytes a model emits (anything) split into token pieces (anywhere).
// Byte 0 seeds the piece lengths; the rest is the text. What Utf8Stream hands out must be valid UTF-8,
// the same whichever way the bytes are split, and the identity exactly when the input was valid.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pocketllm/common/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint32_t state = data[0] * 2654435761u + 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string whole = pocketllm::to_valid_utf8(text);
  if (!pocketllm::is_valid_utf8(whole)) std::abort();
  if (pocketllm::is_valid_utf8(text) != (whole == text)) std::abort();
  pocketllm::Utf8Stream stream;
  std::string streamed;
  for (size_t i = 0; i < text.size();) {
    state = state * 1103515245u + 12345u;
    const size_t n = 1 + (state >> 16) % 5;  // pieces of 1..5 bytes, as tokens are
    const std::string piece = stream.push(text.substr(i, n));
    if (!pocketllm::is_valid_utf8(piece) || stream.pending() > 3) std::abort();
    streamed += piece;
    i += n;
  }
  streamed += stream.finish();
  if (streamed != whole) std::abort();
  return 0;
}
