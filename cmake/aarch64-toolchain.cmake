# Cross-build for 64-bit ARM (the proxy for phones) with Debian's g++-aarch64-linux-gnu; tests run under
# qemu-aarch64. The core check links statically, so qemu needs no sysroot. The SDK check
# (-DPOCKETLLM_AARCH64_STATIC=OFF) links dynamically against Debian's arm64 multiarch libraries
# (libssl-dev:arm64, …, installed by scripts/setup.sh --cross-sdk); qemu then finds the arm64 loader
# and libraries on its own — and must not be given -L (shared/notes/toolchain.md).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
if(NOT DEFINED POCKETLLM_AARCH64_STATIC OR POCKETLLM_AARCH64_STATIC)
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
endif()
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
