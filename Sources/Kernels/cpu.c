// Run-time CPU dispatch: the AVX2 + FMA kernels are used only when the CPU (and OS) support them.
#include "Kernels.h"
#include "kernels_internal.h"

static int cpu_level = -1;     // -1 unknown, 0 portable, 1 AVX2 + FMA; benign race (idempotent)
static int force_portable = 0;

static int detect(void) {
#if UNROLL_X86 && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#else
    return 0;
#endif
}

int unroll_kernels_use_avx2(void) {
    int level = __atomic_load_n(&cpu_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = detect();
        __atomic_store_n(&cpu_level, level, __ATOMIC_RELAXED);
    }
    return level && !__atomic_load_n(&force_portable, __ATOMIC_RELAXED);
}

void unroll_kernels_force_portable(int force) { __atomic_store_n(&force_portable, force ? 1 : 0, __ATOMIC_RELAXED); }

int unroll_has_avx2_fma(void) { return unroll_kernels_use_avx2(); }

void unroll_spin_pause(void) {
#if UNROLL_X86 && (defined(__clang__) || defined(__GNUC__))
    __builtin_ia32_pause();
#endif
}
