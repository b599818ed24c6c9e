// Run-time CPU dispatch: the AVX2 + FMA kernels are used only when the CPU (and OS) support them, and the
// AVX-512 versions of the transcendentals only where AVX-512F is there too (and the OS saves its registers).
#include "Kernels.h"
#include "kernels_internal.h"

static int cpu_level = -1;     // -1 unknown, 0 portable, 1 AVX2 + FMA, 2 also AVX-512F; benign race (idempotent)
static int force_portable = 0;
static int without_avx512 = 0;

static int detect(void) {
#if UNROLL_X86 && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    // The compilers' check of avx512f includes the OS saving the ZMM state (XCR0).
    return __builtin_cpu_supports("avx512f") ? 2 : 1;
#else
    return 0;
#endif
}

static int level(void) {
    int level = __atomic_load_n(&cpu_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = detect();
        __atomic_store_n(&cpu_level, level, __ATOMIC_RELAXED);
    }
    return level;
}

int unroll_kernels_use_avx2(void) { return level() >= 1 && !__atomic_load_n(&force_portable, __ATOMIC_RELAXED); }

int unroll_kernels_use_avx512(void) {
    return level() >= 2 && !__atomic_load_n(&force_portable, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&without_avx512, __ATOMIC_RELAXED);
}

int unroll_has_avx512(void) { return level() >= 2; }

void unroll_kernels_avoid_avx512(int avoid) { __atomic_store_n(&without_avx512, avoid ? 1 : 0, __ATOMIC_RELAXED); }

void unroll_kernels_force_portable(int force) { __atomic_store_n(&force_portable, force ? 1 : 0, __ATOMIC_RELAXED); }

int unroll_has_avx2_fma(void) { return unroll_kernels_use_avx2(); }

void unroll_spin_pause(void) {
#if UNROLL_X86 && (defined(__clang__) || defined(__GNUC__))
    __builtin_ia32_pause();
#endif
}
