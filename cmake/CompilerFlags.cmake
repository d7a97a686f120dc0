# Instruction set, warnings and ccache. Floating-point rules that the perturbation spec depends on
# (no FMA contraction, no fast-math) are set on the targets that need them, not here.

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

add_compile_options(-Wall -Wextra -Wno-unused-parameter)

if(POCKETLLM_PORTABLE)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    add_compile_options(-march=x86-64-v2)
    set(POCKETLLM_ISA "x86-64-v2 (portable)")
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    add_compile_options(-march=armv8-a)
    set(POCKETLLM_ISA "armv8-a (portable)")
  else()
    set(POCKETLLM_ISA "compiler default (portable)")
  endif()
elseif(POCKETLLM_NATIVE AND NOT CMAKE_CROSSCOMPILING)
  add_compile_options(-march=native)
  set(POCKETLLM_ISA "native")
else()
  set(POCKETLLM_ISA "compiler default")
endif()
message(STATUS "pocketllm: instruction set ${POCKETLLM_ISA}, build type ${CMAKE_BUILD_TYPE}")
