#!/usr/bin/env bash
# The never-arrows of docs/architecture.md, checked on the built static libraries' undefined symbols:
#   the engine (core, common, protocol, client, federation) references no socket, TLS, Asio/Beast or
#   SQLite code; the server core references no model code (pocketllm::LanguageModel, loaders, tokenizers);
#   secure aggregation references neither.
# usage: check_layering.sh CORE.a COMMON.a PROTOCOL.a CLIENT.a FEDERATION.a [SERVER_CORE.a] [SECAGG.a]
set -uo pipefail
fails=0
network='(\bSSL_|\bTLS_|\bBIO_|boost::asio|boost::beast|sqlite3_|\bsocket\b|\bconnect\b|getaddrinfo)'
for lib in "$1" "$2" "$3" "$4" "$5"; do
  [ -f "$lib" ] || { echo "FAIL missing library $lib"; fails=$((fails + 1)); continue; }
  hits=$(nm -C --undefined-only "$lib" 2>/dev/null | grep -E "$network" | sort -u | head -5)
  if [ -n "$hits" ]; then echo "FAIL $(basename "$lib") references network/store code:"; echo "$hits"; fails=$((fails + 1));
  else echo "ok   $(basename "$lib") references no network or store code"; fi
done
model='pocketllm::(LanguageModel|WeightStore|load_model|Tokenizer|ZoTrainer|TransformerModel)'
no_model() {
  hits=$(nm -C "$1" 2>/dev/null | grep -E "$model" | sort -u | head -5)
  if [ -n "$hits" ]; then echo "FAIL $(basename "$1") references model code:"; echo "$hits"; fails=$((fails + 1));
  else echo "ok   $(basename "$1") references no model code"; fi
}
if [ $# -ge 6 ] && [ -n "$6" ]; then no_model "$6"; fi
if [ $# -ge 7 ] && [ -n "$7" ]; then
  no_model "$7"
  hits=$(nm -C --undefined-only "$7" 2>/dev/null | grep -E "$network" | sort -u | head -5)
  if [ -n "$hits" ]; then echo "FAIL $(basename "$7") references network/store code:"; echo "$hits"; fails=$((fails + 1));
  else echo "ok   $(basename "$7") references no network or store code"; fi
fi
# The check must be able to fail: the HTTPS client library does reference TLS.
echo "$fails failed"
[ $fails -eq 0 ]
