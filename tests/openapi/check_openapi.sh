#!/usr/bin/env bash
# docs/openapi.yaml is a valid OpenAPI 3 document (@apidevtools/swagger-parser, installed with npm ci into
# the build directory from this directory's lock file) and describes exactly the routes the server has
# (`pocketllm-server routes`): a route missing from the description, or a described path the server
# does not answer, fails.
#   check_openapi.sh SERVER_BIN OPENAPI_YAML WORK_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="$1"; spec="$2"; work="$3"
command -v npm >/dev/null || { echo "check_openapi: npm is not installed" >&2; exit 77; }
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/validate.mjs" "$work/"
if [ ! -d "$work/node_modules/@apidevtools/swagger-parser" ]; then
  (cd "$work" && npm ci --no-audit --no-fund --silent) || { echo "check_openapi: npm ci failed" >&2; exit 1; }
fi
described=$(node "$work/validate.mjs" "$spec" | sort)
served=$("$server" routes | sort)
echo "validated $spec: $(echo "$described" | wc -l) operations described, $(echo "$served" | wc -l) routes served"
status=0
missing=$(comm -23 <(echo "$served") <(echo "$described")); extra=$(comm -13 <(echo "$served") <(echo "$described"))
[ -z "$missing" ] || { echo "routes the server has but docs/openapi.yaml does not describe:"; echo "$missing"; status=1; }
[ -z "$extra" ] || { echo "operations docs/openapi.yaml describes but the server does not have:"; echo "$extra"; status=1; }
[ $status -eq 0 ] && echo "openapi: every route described, nothing extra"
exit $status
