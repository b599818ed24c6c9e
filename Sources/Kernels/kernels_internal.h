// Private declarations shared by the kernel sources (not part of the public module interface).
#ifndef UNROLL_KERNELS_INTERNAL_H
#define UNROLL_KERNELS_INTERNAL_H

#if (defined(__x86_64__) || defined(__i386__)) && !defined(UNROLL_NO_X86)  // -DUNROLL_NO_X86: test the portable build
#define UNROLL_X86 1
#else
#define UNROLL_X86 0
#endif

#if UNROLL_X86 && (defined(__clang__) || defined(__GNUC__))
#define UNROLL_AVX2 __attribute__((target("avx2,fma")))
#define UNROLL_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define UNROLL_AVX2
#define UNROLL_AVX512
#endif

/// 1 when the AVX2 + FMA paths are taken (CPU check cached; honours the test override below).
int unroll_kernels_use_avx2(void);

/// 1 when the AVX-512F loops of the transcendentals and the element-wise interpreter may run (the CPU and OS have
/// AVX-512F, no override).
int unroll_kernels_use_avx512(void);

/// Test hook: a non-zero value forces the portable fallbacks (for the C harness only; not thread-safe).
void unroll_kernels_force_portable(int force);

/// GEMM tuning knob: non-transposed B is read in place (not packed) when M <= this value (-1: built-in rule).
extern long unroll_gemm_unpacked_max_m;
/// Harness switch: 0 packs B before the tiles in unroll_sgemm_stacked_b(_blocks) (and so
/// unroll_sgemm_prepacked_a_blocks) instead of in their first tile.
extern int unroll_gemm_fused_b_packing;

#endif
