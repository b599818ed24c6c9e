// Vectorised transcendentals: exp, tanh, sigmoid.
//
// AVX2 + FMA (8 lanes) and AVX-512F (16 lanes, in optimised builds), masked tails, chosen at run time, share one
// algorithm (vmath_lanes.h, written once for both widths) and one core: for a = n ln2 + r (n = round(a / ln2),
// two-part ln2, with FMA), e^a = 2^n (1 + q) with q = e^r - 1 = r + r^2 P(r), P of degree 4 (minimax for the
// relative error of e^r on |r| <= ln2 / 2, coefficients rounded to float one at a time and the rest refitted), so
// that e^a, 1 - e^a and 1 + e^a are each one FMA from exact parts.
// exp: s (1 + q) with s = 2^n while every |x| <= 87; a vector holding some larger |x| clamps x to [-104, 89] and
// scales by two factors 2^(n/2) * 2^(n - n/2), so results that overflow give +inf and results below FLT_MIN come
// out as correctly scaled subnormals (then 0 below about -103.9).
// tanh: (1 - e^a) / (1 + e^a) with a = -2|x| (clamped at -18.5), sign restored: no cancellation at small |x|
// (q is used directly), tiny x come back unchanged, exactly +-1 for |x| > ~9.
// sigmoid: with e = exp(-|x|): 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0; -> 0 and 1 at the ends without
// NaN, subnormal results kept (two-factor scaling as in exp for a vector holding some |x| > 87).
// Where a result is normal the two scalings give the same bits (scaling by a power of two is exact): a lane's
// result never depends on the other lanes of its vector (tiles are split differently per thread count).
// The portable scalar versions (no FMA there) keep the older algorithms: exp Cephes-style with a degree-5
// polynomial in y = P(r) r^2 + r + 1; tanh for |x| < 0.625 an odd polynomial (Cephes tanhf), otherwise
// (1 - t) / (1 + t) with t = exp(-2|x|); sigmoid as above through that exp.
// NaN in gives NaN out. Without optimisation (SwiftPM debug builds) inline-assembly copies of the AVX2 loops run
// instead (same results, bit for bit: `kbench hash`).
// Max relative error vs a double reference (measured, Benchmarks/kernels, dense sweep of [-20, 20], random points
// and tiny |x|): AVX2 exp 8.4e-8 (1.0 ulp), tanh 1.63e-7 (1.84 ulp), sigmoid 1.76e-7 (2.34 ulp); portable exp
// 8.2e-8, tanh 1.5e-7 (1.5 ulp), sigmoid 1.76e-7. AVX2 time per element, one thread (Zen 4, `kbench vmath`):
// exp 0.23 ns, tanh 0.44 ns, sigmoid 0.38 ns (0.36, 0.85 and 0.55 with the portable algorithms vectorised); the
// AVX-512F loops (same bits) 0.20, 0.30 and 0.27 ns.
#include "Kernels.h"
#include "kernels_internal.h"

#include <stdint.h>
#include <string.h>

#if UNROLL_X86
#include <immintrin.h>
#endif

#define EXP_HI 89.0f
#define EXP_LO -104.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187045e-06f
#define EP0 1.9875691500E-4f
#define EP1 1.3981999507E-3f
#define EP2 8.3334519073E-3f
#define EP3 4.1665795894E-2f
#define EP4 1.6666665459E-1f
#define EP5 5.0000001201E-1f
#define TP0 -5.70498872745E-3f
#define TP1 2.06390887954E-2f
#define TP2 -5.37397155531E-2f
#define TP3 1.33314422036E-1f
#define TP4 -3.33332819422E-1f
#define TANH_SMALL 0.625f
#define XC2 0.4999999403953552f
#define XC3 0.1666652113199234f
#define XC4 0.041668254882097244f
#define XC5 0.008368678390979767f
#define XC6 0.001382205868139863f
#define TANH_LO -18.5f
#define SIGMOID_FAST_LO -87.0f
#define EXP_FAST_HI 87.0f

// ---------------------------------------------------------------------------------------------------------
// Portable scalar versions (same algorithms).

static float pow2i(int n) {  // 2^n for -126 <= n <= 127
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float exp_scalar(float x) {
    if (x != x) return x;
    if (x > EXP_HI) x = EXP_HI;
    if (x < EXP_LO) x = EXP_LO;
    float t = x * LOG2E;
    float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (|t| < 2^22)
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float z = r * r;
    float y = ((((EP0 * r + EP1) * r + EP2) * r + EP3) * r + EP4) * r + EP5;
    y = y * z + r + 1.0f;
    int ni = (int)n;
    int n1 = ni >> 1;
    return y * pow2i(n1) * pow2i(ni - n1);
}

static float tanh_scalar(float x) {
    float ax = x < 0 ? -x : x;
    if (ax < TANH_SMALL) {
        float z = x * x;
        float p = (((TP0 * z + TP1) * z + TP2) * z + TP3) * z + TP4;
        return x + x * z * p;
    }
    float t = exp_scalar(-2.0f * ax);
    float y = (1.0f - t) / (1.0f + t);
    return x < 0 ? -y : y;  // NaN: y is NaN
}

static float sigmoid_scalar(float x) {
    float e = exp_scalar(x < 0 ? x : -x);  // exp(-|x|) <= 1, NaN stays NaN
    return (x >= 0 ? 1.0f : e) / (1.0f + e);
}

// ---------------------------------------------------------------------------------------------------------
// AVX2 + FMA and AVX-512F versions.

#if UNROLL_X86

// The functions at both widths come from vmath_lanes.h (one algorithm; see its header for the operations it needs).
#define VF __m256
#define VI __m256i
#define VM __m256i
#define V_TARGET UNROLL_AVX2
#define V_NAME(name) name##8
#define V_LANES 8
#define V_SET1 _mm256_set1_ps
#define V_SET1I _mm256_set1_epi32
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_MIN _mm256_min_ps
#define V_MAX _mm256_max_ps
#define V_FMADD _mm256_fmadd_ps
#define V_FNMADD _mm256_fnmadd_ps
#define V_ROUND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT _mm256_cvtps_epi32
#define V_ADDI _mm256_add_epi32
#define V_SUBI _mm256_sub_epi32
#define V_SRAI _mm256_srai_epi32
#define V_SLLI _mm256_slli_epi32
#define V_ANDI _mm256_and_si256
#define V_ORI _mm256_or_si256
#define V_ASF _mm256_castsi256_ps
#define V_ASI _mm256_castps_si256
#define V_ANY_GT(a, b) (_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)) != 0)
#define V_ANY_LT(a, b) (_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LT_OQ)) != 0)
#define V_SIGN_SELECT(a, b, x) _mm256_blendv_ps(a, b, x)
#define V_LOAD _mm256_loadu_ps
#define V_STORE _mm256_storeu_ps
#define V_TAIL vm_tail_mask
#define V_LOAD_TAIL(m, p) _mm256_maskload_ps(p, m)
#define V_STORE_TAIL(p, m, v) _mm256_maskstore_ps(p, m, v)

UNROLL_AVX2
static inline __m256i vm_tail_mask(long n) {  // lanes 0 .. n-1 set, 0 <= n <= 8
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - n));
}

#include "vmath_lanes.h"

// The same three loops in inline assembly (identical operation order, so identical results), used when
// this file is compiled without optimisation: SwiftPM debug builds use -O0, where the intrinsics versions
// run ~100x slower (~50-80 ns per element) and clang ignores optimize attributes.
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define UNROLL_HAVE_ASM_VMATH 1
static const struct {
    float f[16];
    int32_t bias;
} vm_consts = {
    {EXP_HI,          /* 0 */
     EXP_LO,          /* 4 */
     LOG2E,           /* 8 */
     LN2_HI,          /* 12 */
     LN2_LO,          /* 16 */
     1.0f,            /* 20 */
     -0.0f,           /* 24: sign bit */
     XC2,             /* 28 */
     XC3,             /* 32 */
     XC4,             /* 36 */
     XC5,             /* 40 */
     XC6,             /* 44 */
     TANH_LO,         /* 48 */
     -2.0f,           /* 52 */
     SIGMOID_FAST_LO, /* 56 */
     EXP_FAST_HI},    /* 60 */
    127 /* 64 */};

// expm1_core8 and pow2_8 in assembly: a in ymm0 -> n in ymm1, q in ymm3 (ymm2, ymm4, ymm5 clobbered); then
// 2^n in ymm1.
#define VM_ASM_EXPM1_CORE                        \
    "vbroadcastss 8(%[k]), %%ymm5\n\t"           \
    "vmulps %%ymm5, %%ymm0, %%ymm1\n\t"          \
    "vroundps $8, %%ymm1, %%ymm1\n\t"            \
    "vmovaps %%ymm0, %%ymm2\n\t"                 \
    "vbroadcastss 12(%[k]), %%ymm5\n\t"          \
    "vfnmadd231ps %%ymm5, %%ymm1, %%ymm2\n\t"    \
    "vbroadcastss 16(%[k]), %%ymm5\n\t"          \
    "vfnmadd231ps %%ymm5, %%ymm1, %%ymm2\n\t"    \
    "vbroadcastss 44(%[k]), %%ymm3\n\t"          \
    "vbroadcastss 40(%[k]), %%ymm5\n\t"          \
    "vfmadd213ps %%ymm5, %%ymm2, %%ymm3\n\t"     \
    "vbroadcastss 36(%[k]), %%ymm5\n\t"          \
    "vfmadd213ps %%ymm5, %%ymm2, %%ymm3\n\t"     \
    "vbroadcastss 32(%[k]), %%ymm5\n\t"          \
    "vfmadd213ps %%ymm5, %%ymm2, %%ymm3\n\t"     \
    "vbroadcastss 28(%[k]), %%ymm5\n\t"          \
    "vfmadd213ps %%ymm5, %%ymm2, %%ymm3\n\t"     \
    "vmulps %%ymm2, %%ymm2, %%ymm4\n\t"          \
    "vfmadd213ps %%ymm2, %%ymm4, %%ymm3\n\t"
#define VM_ASM_POW2                              \
    "vcvtps2dq %%ymm1, %%ymm1\n\t"               \
    "vpbroadcastd 64(%[k]), %%ymm5\n\t"          \
    "vpaddd %%ymm5, %%ymm1, %%ymm1\n\t"          \
    "vpslld $23, %%ymm1, %%ymm1\n\t"

// e = 2^n (1 + q) in one FMA (n in ymm1, q in ymm3): e in ymm1; the fast path, while every 2^n is normal.
#define VM_ASM_ONE_FACTOR \
    VM_ASM_POW2 \
    "vfmadd231ps %%ymm3, %%ymm1, %%ymm1\n\t"

// e = 2^n (1 + q) with 2^n as two factors 2^(n/2) 2^(n - n/2) (n in ymm1, q in ymm3): e in ymm1.
#define VM_ASM_TWO_FACTORS \
    "vcvtps2dq %%ymm1, %%ymm1\n\t" \
    "vpsrad $1, %%ymm1, %%ymm4\n\t" \
    "vpsubd %%ymm4, %%ymm1, %%ymm1\n\t" \
    "vpbroadcastd 64(%[k]), %%ymm5\n\t" \
    "vpaddd %%ymm5, %%ymm4, %%ymm4\n\t" \
    "vpslld $23, %%ymm4, %%ymm4\n\t" \
    "vpaddd %%ymm5, %%ymm1, %%ymm1\n\t" \
    "vpslld $23, %%ymm1, %%ymm1\n\t" \
    "vfmadd231ps %%ymm3, %%ymm4, %%ymm4\n\t" \
    "vmulps %%ymm1, %%ymm4, %%ymm1\n\t"

UNROLL_AVX2 __attribute__((unused))
static void vexp_asm_blocks(const float *x, float *y, long blocks) {  // blocks of 8 floats
    __asm__ volatile(
        "test %[n], %[n]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[x]), %%ymm0\n\t"
        "vbroadcastss 24(%[k]), %%ymm5\n\t"
        "vandnps %%ymm0, %%ymm5, %%ymm2\n\t"
        "vbroadcastss 60(%[k]), %%ymm5\n\t"
        "vcmpps $0x1e, %%ymm5, %%ymm2, %%ymm2\n\t"
        "vtestps %%ymm2, %%ymm2\n\t"
        "jnz 3f\n\t"
        VM_ASM_EXPM1_CORE
        VM_ASM_ONE_FACTOR
        "jmp 4f\n\t"
        "3:\n\t"  // some |x| > 87: clamp, two-factor scaling
        "vbroadcastss 0(%[k]), %%ymm5\n\t"
        "vminps %%ymm0, %%ymm5, %%ymm0\n\t"
        "vbroadcastss 4(%[k]), %%ymm5\n\t"
        "vmaxps %%ymm0, %%ymm5, %%ymm0\n\t"
        VM_ASM_EXPM1_CORE
        VM_ASM_TWO_FACTORS
        "4:\n\t"
        "vmovups %%ymm1, (%[y])\n\t"
        "add $32, %[x]\n\t"
        "add $32, %[y]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vzeroupper\n\t"
        : [x] "+r"(x), [y] "+r"(y), [n] "+r"(blocks)
        : [k] "r"(&vm_consts)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "memory", "cc");
}

__attribute__((unused)) static void vexp_asm(const float *x, float *y, long n) {
    vexp_asm_blocks(x, y, n / 8);
    long i = n / 8 * 8;
    if (i < n) {  // tail through a buffer of 8
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long j = i; j < n; j++) buf[j - i] = x[j];
        vexp_asm_blocks(buf, buf, 1);
        for (long j = i; j < n; j++) y[j] = buf[j - i];
    }
}

UNROLL_AVX2 __attribute__((unused))
static void vtanh_asm_blocks(const float *x, float *y, long blocks) {  // blocks of 8 floats
    __asm__ volatile(
        "test %[n], %[n]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[x]), %%ymm6\n\t"
        "vbroadcastss 24(%[k]), %%ymm5\n\t"
        "vandnps %%ymm6, %%ymm5, %%ymm7\n\t"
        "vbroadcastss 52(%[k]), %%ymm5\n\t"
        "vmulps %%ymm5, %%ymm7, %%ymm0\n\t"
        "vbroadcastss 48(%[k]), %%ymm5\n\t"
        "vmaxps %%ymm0, %%ymm5, %%ymm0\n\t"
        VM_ASM_EXPM1_CORE
        VM_ASM_POW2
        "vbroadcastss 20(%[k]), %%ymm5\n\t"
        "vsubps %%ymm1, %%ymm5, %%ymm0\n\t"
        "vaddps %%ymm1, %%ymm5, %%ymm2\n\t"
        "vfnmadd231ps %%ymm3, %%ymm1, %%ymm0\n\t"
        "vfmadd231ps %%ymm3, %%ymm1, %%ymm2\n\t"
        "vdivps %%ymm2, %%ymm0, %%ymm0\n\t"
        "vbroadcastss 24(%[k]), %%ymm5\n\t"
        "vandps %%ymm6, %%ymm5, %%ymm5\n\t"
        "vorps %%ymm5, %%ymm0, %%ymm0\n\t"
        "vmovups %%ymm0, (%[y])\n\t"
        "add $32, %[x]\n\t"
        "add $32, %[y]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vzeroupper\n\t"
        : [x] "+r"(x), [y] "+r"(y), [n] "+r"(blocks)
        : [k] "r"(&vm_consts)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "memory", "cc");
}

__attribute__((unused)) static void vtanh_asm(const float *x, float *y, long n) {
    vtanh_asm_blocks(x, y, n / 8);
    long i = n / 8 * 8;
    if (i < n) {  // tail through a buffer of 8
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long j = i; j < n; j++) buf[j - i] = x[j];
        vtanh_asm_blocks(buf, buf, 1);
        for (long j = i; j < n; j++) y[j] = buf[j - i];
    }
}

UNROLL_AVX2 __attribute__((unused))
static void vsigmoid_asm_blocks(const float *x, float *y, long blocks) {  // blocks of 8 floats
    __asm__ volatile(
        "test %[n], %[n]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[x]), %%ymm6\n\t"
        "vbroadcastss 24(%[k]), %%ymm5\n\t"
        "vorps %%ymm6, %%ymm5, %%ymm0\n\t"
        "vbroadcastss 56(%[k]), %%ymm5\n\t"
        "vcmpps $0x11, %%ymm5, %%ymm0, %%ymm2\n\t"
        "vtestps %%ymm2, %%ymm2\n\t"
        "jnz 3f\n\t"
        VM_ASM_EXPM1_CORE
        VM_ASM_ONE_FACTOR
        "jmp 4f\n\t"
        "3:\n\t"  // some |x| > 87: two-factor scaling
        "vbroadcastss 4(%[k]), %%ymm5\n\t"
        "vmaxps %%ymm0, %%ymm5, %%ymm0\n\t"
        VM_ASM_EXPM1_CORE
        VM_ASM_TWO_FACTORS
        "4:\n\t"
        "vbroadcastss 20(%[k]), %%ymm5\n\t"
        "vblendvps %%ymm6, %%ymm1, %%ymm5, %%ymm0\n\t"
        "vaddps %%ymm1, %%ymm5, %%ymm3\n\t"
        "vdivps %%ymm3, %%ymm0, %%ymm0\n\t"
        "vmovups %%ymm0, (%[y])\n\t"
        "add $32, %[x]\n\t"
        "add $32, %[y]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vzeroupper\n\t"
        : [x] "+r"(x), [y] "+r"(y), [n] "+r"(blocks)
        : [k] "r"(&vm_consts)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "memory", "cc");
}

__attribute__((unused)) static void vsigmoid_asm(const float *x, float *y, long n) {
    vsigmoid_asm_blocks(x, y, n / 8);
    long i = n / 8 * 8;
    if (i < n) {  // tail through a buffer of 8
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long j = i; j < n; j++) buf[j - i] = x[j];
        vsigmoid_asm_blocks(buf, buf, 1);
        for (long j = i; j < n; j++) y[j] = buf[j - i];
    }
}
#endif

// AVX-512F: 16 lanes, the same operations per lane (vmath_lanes.h). Zen 4 runs a 512-bit operation as two 256-bit
// halves, so the gain is in instructions (half as many to issue per element): sigmoid 0.38 -> 0.27 ns per element on
// one core. Only AVX-512F instructions are used (bit operations through the integer forms, sign masks by integer
// compare).
#undef VF
#undef VI
#undef VM
#undef V_TARGET
#undef V_NAME
#undef V_LANES
#undef V_SET1
#undef V_SET1I
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_DIV
#undef V_MIN
#undef V_MAX
#undef V_FMADD
#undef V_FNMADD
#undef V_ROUND
#undef V_CVT
#undef V_ADDI
#undef V_SUBI
#undef V_SRAI
#undef V_SLLI
#undef V_ANDI
#undef V_ORI
#undef V_ASF
#undef V_ASI
#undef V_ANY_GT
#undef V_ANY_LT
#undef V_SIGN_SELECT
#undef V_LOAD
#undef V_STORE
#undef V_TAIL
#undef V_LOAD_TAIL
#undef V_STORE_TAIL
#define VF __m512
#define VI __m512i
#define VM __mmask16
#define V_TARGET UNROLL_AVX512
#define V_NAME(name) name##16
#define V_LANES 16
#define V_SET1 _mm512_set1_ps
#define V_SET1I _mm512_set1_epi32
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_MIN _mm512_min_ps
#define V_MAX _mm512_max_ps
#define V_FMADD _mm512_fmadd_ps
#define V_FNMADD _mm512_fnmadd_ps
#define V_ROUND(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT _mm512_cvtps_epi32
#define V_ADDI _mm512_add_epi32
#define V_SUBI _mm512_sub_epi32
#define V_SRAI _mm512_srai_epi32
#define V_SLLI _mm512_slli_epi32
#define V_ANDI _mm512_and_si512
#define V_ORI _mm512_or_si512
#define V_ASF _mm512_castsi512_ps
#define V_ASI _mm512_castps_si512
#define V_ANY_GT(a, b) (_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0)
#define V_ANY_LT(a, b) (_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ) != 0)
#define V_SIGN_SELECT(a, b, x) _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(_mm512_castps_si512(x), _mm512_setzero_si512()), a, b)
#define V_LOAD _mm512_loadu_ps
#define V_STORE _mm512_storeu_ps
#define V_TAIL(count) ((__mmask16)((1u << (count)) - 1u))
#define V_LOAD_TAIL(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_STORE_TAIL(p, m, v) _mm512_mask_storeu_ps(p, m, v)

#include "vmath_lanes.h"

#if defined(UNROLL_HAVE_ASM_VMATH) && (!defined(__OPTIMIZE__) || defined(UNROLL_FORCE_ASM_KERNEL))
#define VEXP_X86 vexp_asm
#define VTANH_X86 vtanh_asm
#define VSIGMOID_X86 vsigmoid_asm
#else
#define VEXP_X86 vexp8
#define VTANH_X86 vtanh8
#define VSIGMOID_X86 vsigmoid8
// Optimised builds take the AVX-512 loops where the CPU has them (without optimisation their intrinsics would run
// far slower than the assembly above).
#define UNROLL_VMATH_AVX512 1
#endif


#endif  // UNROLL_X86

void unroll_vexp(const float *x, float *y, long n) {
#if UNROLL_X86
#if defined(UNROLL_VMATH_AVX512)
    if (unroll_kernels_use_avx512()) {
        vexp16(x, y, n);
        return;
    }
#endif
    if (unroll_kernels_use_avx2()) {
        VEXP_X86(x, y, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) y[i] = exp_scalar(x[i]);
}

void unroll_vtanh(const float *x, float *y, long n) {
#if UNROLL_X86
#if defined(UNROLL_VMATH_AVX512)
    if (unroll_kernels_use_avx512()) {
        vtanh16(x, y, n);
        return;
    }
#endif
    if (unroll_kernels_use_avx2()) {
        VTANH_X86(x, y, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) y[i] = tanh_scalar(x[i]);
}

void unroll_vsigmoid(const float *x, float *y, long n) {
#if UNROLL_X86
#if defined(UNROLL_VMATH_AVX512)
    if (unroll_kernels_use_avx512()) {
        vsigmoid16(x, y, n);
        return;
    }
#endif
    if (unroll_kernels_use_avx2()) {
        VSIGMOID_X86(x, y, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) y[i] = sigmoid_scalar(x[i]);
}

int unroll_vmath_avx512(int function, const float *x, float *y, long n) {
#if UNROLL_X86
    if (!unroll_has_avx512() || function < 0 || function > 2) return 0;
    if (function == 0) vexp16(x, y, n);
    else if (function == 1) vtanh16(x, y, n);
    else vsigmoid16(x, y, n);
    return 1;
#else
    (void)function, (void)x, (void)y, (void)n;
    return 0;
#endif
}
