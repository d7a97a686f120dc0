// The vector exp the forward's element-wise kernels share (softmax, narrow-head attention, SiLU, the
// loss's log-sum-exp): Cephes' constants, and the 16-lane AVX-512 exp. No Eigen here, so that the
// target-attribute kernel files (kernels_avx2.cpp, kernels_avx512.cpp) can include it.
//
// exp_ps: exp(x) = 2^n · p(r) with n = round(x / ln 2), r = x − n·ln 2 in two steps (Cephes' split of
// ln 2), p Cephes' degree-7 polynomial, 2^n applied by vscalefps (which overflows to +inf). Inputs are
// clamped to [−87, 89] first, so ±inf keep the range reduction finite, and lanes below −87 give 0: a
// denormal result would cost a microcode assist per instruction, and attention's masked lanes (−inf) are
// many. So exp(−inf) = 0, exp(x) = +inf above ln(FLT_MAX), NaN stays NaN; within 2 ulp of expf on
// [−87, 88]. kernels.cpp's 16-float blocks use it in AVX-512 builds (Eigen's packet exp in others), and
// kernels_avx512.cpp in any x86-64 build when the CPU has AVX-512.
//
// Deterministic per lane: every lane takes the same instructions, so a value gives the same bytes in any
// lane of any block.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PLLM_EXP_X86 1
#endif

namespace pocketllm::vexp {

// Cephes' expf: ln 2 split in two for the range reduction, and p(r) = 1 + r + r² · (kPoly[0] r⁵ + … +
// kPoly[5]). kernels_avx2.cpp's eight-lane exp uses the same constants.
namespace cephes {
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
}  // namespace cephes

#if defined(PLLM_EXP_X86)
// Compiled with its own target so that run-time-chosen AVX-512 kernels of any x86-64 build can inline it.
__attribute__((target("avx512f"))) inline __m512 exp_ps(__m512 x) {
  // max(lo, x) and min(hi, ·) return their second operand when it is NaN: a NaN passes through.
  const __m512 lo = _mm512_set1_ps(-87.0f);
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(lo, x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(cephes::kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(cephes::kLn2Hi), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(cephes::kLn2Lo), r);
  __m512 y = _mm512_set1_ps(cephes::kPoly[0]);
  for (int i = 1; i < 6; ++i) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(cephes::kPoly[i]));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // Lanes below lo give 0 (NaN lanes compare "not less" and keep their NaN): a result under 2^-126 would
  // take a microcode assist per instruction, and the masked lanes of attention (-inf) are many.
  return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), y, n);
}
#endif

}  // namespace pocketllm::vexp
