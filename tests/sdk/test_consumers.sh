#!/usr/bin/env bash
# The three ways a separate project uses the SDK: the installed package (find_package), pkg-config,
# and the source tree pulled into its build (FetchContent / add_subdirectory). Each consumer builds
# tests/sdk/consumer/app.c, runs it, and it loads stories260K and generates.
#   test_consumers.sh SOURCE_DIR BUILD_DIR SHARED_DIR
set -euo pipefail
src="$(realpath "$1")"; build="$(realpath "$2")"; shared="$(realpath "$3")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
consumer="$src/tests/sdk/consumer"

echo "== install the SDK into a temporary prefix"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
ls "$work/prefix/include/pocketllm/pocketllm.h" "$work/prefix/include/pocketllm/pocketllm_version.h" \
   "$work/prefix/lib/cmake/pocketllm/pocketllmConfig.cmake" "$work/prefix/lib/pkgconfig/pocketllm.pc" > /dev/null
# Only the SDK is installed: no server, tools, static modules or third-party headers.
unexpected=$(find "$work/prefix" -type f | grep -vE '/include/pocketllm/pocketllm(\.h|\.hpp|_version\.h)$|/lib/libpocketllm\.so\.[0-9.]+$|/lib/cmake/pocketllm/|/lib/pkgconfig/pocketllm\.pc$' || true)
[ -z "$unexpected" ] || { echo "installed more than the SDK: $unexpected" >&2; exit 1; }
readlink "$work/prefix/lib/libpocketllm.so" | grep -q '^libpocketllm\.so\.0$'

echo "== 1. find_package(pocketllm 0.2 REQUIRED)"
cmake -S "$consumer/find_package" -B "$work/fp" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/fp.log"
cmake --build "$work/fp" > /dev/null
"$work/fp/app" "$model" | tee "$work/fp.out"
grep -q '^generated:' "$work/fp.out"
# A version the package does not satisfy is refused at configure time.
sed 's/find_package(pocketllm 0.2 REQUIRED)/find_package(pocketllm 9.0 REQUIRED)/' "$consumer/find_package/CMakeLists.txt" > "$work/CMakeLists.txt"
mkdir -p "$work/too-new" && cp "$work/CMakeLists.txt" "$work/too-new/" && cp "$consumer/app.c" "$work/app.c"
if cmake -S "$work/too-new" -B "$work/too-new-build" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null 2>&1; then
  echo "find_package(pocketllm 9.0) should have failed" >&2; exit 1
fi

echo "== 2. pkg-config"
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --modversion pocketllm
cc -o "$work/pc-app" "$consumer/app.c" $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs pocketllm) \
  -Wl,-rpath,"$work/prefix/lib"
"$work/pc-app" "$model" | grep -q '^generated:'

echo "== 3. FetchContent (add_subdirectory of the source tree): only the SDK is built"
# The consumer also sets one of the SDK's build options (unity batches, which keeps this clean build short).
cmake -S "$consumer/fetchcontent" -B "$work/fc" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOCKETLLM_SOURCE_DIR="$src" \
  -DPOCKETLLM_UNITY_BUILD=ON > "$work/fc.log"
grep -q "/Unity/unity_0_cxx.cxx" "$work/fc/build.ninja" || { echo "the consumer's POCKETLLM_UNITY_BUILD=ON did not reach the SDK" >&2; exit 1; }
if grep -q "pocketllm-server\|Catch2" "$work/fc/build.ninja"; then echo "the consumer's build pulled in the server or the tests" >&2; exit 1; fi
cmake --build "$work/fc" -j2 > "$work/fc-build.log" || { tail -30 "$work/fc-build.log"; exit 1; }
"$work/fc/app" "$model" | grep -q '^generated:'
echo "test_consumers: find_package, pkg-config and FetchContent consumers built and ran"
