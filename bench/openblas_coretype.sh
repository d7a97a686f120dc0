# Sourced by the bench scripts that run OpenBLAS (PyTorch's BLAS, the GEMM shoot-out): picks the widest
# kernel set this CPU can execute. Debian's OpenBLAS detects older CPUs itself but falls back to generic
# kernels on models newer than its tables (why the Zen 5 and Xeon rows forced SkylakeX), and forcing
# SkylakeX on a CPU without AVX-512 (Zen 3, AVX2 laptops) dies with SIGILL. An explicit
# OPENBLAS_CORETYPE in the environment wins.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell
  fi
fi
