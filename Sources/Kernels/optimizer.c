// Optimizer element loops: one function per step rule (SGD, Adam, RMSProp, Adagrad), plus in-place gradient
// clipping and the sum of squares that clipping by norm needs.
//
// Each rule is written twice: a scalar function per element (the portable fallback, and the reference) and an
// AVX2 version over 8 lanes with masked tails, chosen at run time. Both do the same operations in the same
// order with no fused multiply-add (FP_CONTRACT is off), so the two give the same bits, and the numbers match
// the SSE Swift loops these replaced. The compiler cannot vectorise the scalar loops itself: it cannot prove
// that the parameter, gradient and state arrays do not overlap, and `sqrtf` may set errno.
#include "Kernels.h"
#include "kernels_internal.h"

#include <math.h>
#include <stdint.h>

#if UNROLL_X86
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF
#ifdef __clang__
#pragma clang fp contract(off)
#endif

// max and min as SSE/AVX compute them: the second operand when either is NaN, so a NaN gradient propagates.
static inline float max_sse(float a, float b) { return a > b ? a : b; }
static inline float min_sse(float a, float b) { return a < b ? a : b; }

static inline float clip1(float g, unroll_update u) { return min_sse(u.limit, max_sse(-u.limit, g * u.scale)); }

static void sgd1(float *p, const float *gradient, float *velocity, unroll_update u, float momentum, int nesterov) {
    float g = clip1(*gradient, u);
    if (!velocity) {
        *p = *p * u.decay - u.rate * g;
        return;
    }
    float step = u.rate * g;
    float v = momentum * *velocity - step;
    *velocity = v;
    *p = *p * u.decay + (nesterov ? momentum * v - step : v);
}

static void adam1(float *p, const float *gradient, float *first, float *second, float *maximum, unroll_update u,
                  float beta1, float beta2, float epsilon, float correction) {
    float g = clip1(*gradient, u);
    float m = beta1 * *first + (1 - beta1) * g;
    float v = beta2 * *second + (1 - beta2) * g * g;
    *first = m;
    *second = v;
    if (maximum) {
        v = max_sse(*maximum, v);
        *maximum = v;
    }
    *p = *p * u.decay - u.rate * m / (sqrtf(v) * correction + epsilon);
}

static void rmsprop1(float *p, const float *gradient, float *mean_square, float *velocity, float *mean_gradient,
                     unroll_update u, float rho, float momentum, float epsilon) {
    float g = clip1(*gradient, u);
    float s = rho * *mean_square + (1 - rho) * g * g;
    *mean_square = s;
    float variance = s;
    if (mean_gradient) {
        float a = rho * *mean_gradient + (1 - rho) * g;
        *mean_gradient = a;
        variance = max_sse(0, s - a * a);  // rounding can push s − a² a hair below zero
    }
    float step = u.rate * g / (sqrtf(variance) + epsilon);
    if (velocity) {
        step = step + momentum * *velocity;
        *velocity = step;
    }
    *p = *p * u.decay - step;
}

static void adagrad1(float *p, const float *gradient, float *accumulator, unroll_update u, float epsilon) {
    float g = clip1(*gradient, u);
    float s = *accumulator + g * g;
    *accumulator = s;
    *p = *p * u.decay - u.rate * g / (sqrtf(s) + epsilon);
}

// Offsets an optional state array (NULL stays NULL).
#define AT(pointer, i) ((pointer) ? (pointer) + (i) : NULL)

#if UNROLL_X86

// The 8-lane loop every AVX2 rule runs: full blocks, then one masked block for the tail. `BODY` reads its
// arrays with LOAD(pointer) and writes them with STORE(pointer, vector) at the current block.
#define LANES_LOOP(BODY)                                                                                       \
    long i = 0;                                                                                                \
    __m256i mask = _mm256_set1_epi32(-1);                                                                      \
    for (; i + 8 <= n; i += 8) { BODY }                                                                        \
    if (i < n) {                                                                                               \
        mask = lanes_tail_mask(n - i);                                                                         \
        BODY                                                                                                   \
    }
#define LOAD(pointer) _mm256_maskload_ps((pointer) + i, mask)
#define STORE(pointer, vector) _mm256_maskstore_ps((pointer) + i, mask, (vector))
#define SET(x) _mm256_set1_ps(x)
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define DIV _mm256_div_ps

UNROLL_AVX2 static inline __m256i lanes_tail_mask(long n) {  // lanes 0 .. n-1 set, 0 < n < 8
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - n));
}

UNROLL_AVX2 static inline __m256 clip8(__m256 g, unroll_update u) {
    return _mm256_min_ps(SET(u.limit), _mm256_max_ps(SET(-u.limit), MUL(g, SET(u.scale))));
}

UNROLL_AVX2 static void sgd_avx2(float *value, const float *gradient, float *velocity, long n, unroll_update u,
                                 float momentum, int nesterov) {
    if (!velocity) {
        LANES_LOOP(STORE(value, SUB(MUL(LOAD(value), SET(u.decay)), MUL(SET(u.rate), clip8(LOAD(gradient), u))));)
        return;
    }
    LANES_LOOP({
        __m256 step = MUL(SET(u.rate), clip8(LOAD(gradient), u));
        __m256 v = SUB(MUL(SET(momentum), LOAD(velocity)), step);
        STORE(velocity, v);
        __m256 move = nesterov ? SUB(MUL(SET(momentum), v), step) : v;
        STORE(value, ADD(MUL(LOAD(value), SET(u.decay)), move));
    })
}

UNROLL_AVX2 static void adam_avx2(float *value, const float *gradient, float *first, float *second, float *maximum,
                                  long n, unroll_update u, float beta1, float beta2, float epsilon, float correction) {
    LANES_LOOP({
        __m256 g = clip8(LOAD(gradient), u);
        __m256 m = ADD(MUL(SET(beta1), LOAD(first)), MUL(SET(1 - beta1), g));
        __m256 v = ADD(MUL(SET(beta2), LOAD(second)), MUL(MUL(SET(1 - beta2), g), g));
        STORE(first, m);
        STORE(second, v);
        if (maximum) {
            v = _mm256_max_ps(LOAD(maximum), v);
            STORE(maximum, v);
        }
        __m256 denominator = ADD(MUL(_mm256_sqrt_ps(v), SET(correction)), SET(epsilon));
        STORE(value, SUB(MUL(LOAD(value), SET(u.decay)), DIV(MUL(SET(u.rate), m), denominator)));
    })
}

UNROLL_AVX2 static void rmsprop_avx2(float *value, const float *gradient, float *mean_square, float *velocity,
                                     float *mean_gradient, long n, unroll_update u, float rho, float momentum,
                                     float epsilon) {
    LANES_LOOP({
        __m256 g = clip8(LOAD(gradient), u);
        __m256 s = ADD(MUL(SET(rho), LOAD(mean_square)), MUL(MUL(SET(1 - rho), g), g));
        STORE(mean_square, s);
        __m256 variance = s;
        if (mean_gradient) {
            __m256 a = ADD(MUL(SET(rho), LOAD(mean_gradient)), MUL(SET(1 - rho), g));
            STORE(mean_gradient, a);
            variance = _mm256_max_ps(_mm256_setzero_ps(), SUB(s, MUL(a, a)));
        }
        __m256 step = DIV(MUL(SET(u.rate), g), ADD(_mm256_sqrt_ps(variance), SET(epsilon)));
        if (velocity) {
            step = ADD(step, MUL(SET(momentum), LOAD(velocity)));
            STORE(velocity, step);
        }
        STORE(value, SUB(MUL(LOAD(value), SET(u.decay)), step));
    })
}

UNROLL_AVX2 static void adagrad_avx2(float *value, const float *gradient, float *accumulator, long n,
                                     unroll_update u, float epsilon) {
    LANES_LOOP({
        __m256 g = clip8(LOAD(gradient), u);
        __m256 s = ADD(LOAD(accumulator), MUL(g, g));
        STORE(accumulator, s);
        __m256 step = DIV(MUL(SET(u.rate), g), ADD(_mm256_sqrt_ps(s), SET(epsilon)));
        STORE(value, SUB(MUL(LOAD(value), SET(u.decay)), step));
    })
}

UNROLL_AVX2 static void clip_avx2(float *x, long n, unroll_update u) { LANES_LOOP(STORE(x, clip8(LOAD(x), u));) }

#endif  // UNROLL_X86

void unroll_sgd_step(float *value, const float *gradient, float *velocity, long n, unroll_update u, float momentum,
                     int nesterov) {
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        sgd_avx2(value, gradient, velocity, n, u, momentum, nesterov);
        return;
    }
#endif
    for (long i = 0; i < n; i++) sgd1(value + i, gradient + i, AT(velocity, i), u, momentum, nesterov);
}

void unroll_adam_step(float *value, const float *gradient, float *first, float *second, float *maximum, long n,
                      unroll_update u, float beta1, float beta2, float epsilon, float correction) {
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        adam_avx2(value, gradient, first, second, maximum, n, u, beta1, beta2, epsilon, correction);
        return;
    }
#endif
    for (long i = 0; i < n; i++)
        adam1(value + i, gradient + i, first + i, second + i, AT(maximum, i), u, beta1, beta2, epsilon, correction);
}

void unroll_rmsprop_step(float *value, const float *gradient, float *mean_square, float *velocity,
                         float *mean_gradient, long n, unroll_update u, float rho, float momentum, float epsilon) {
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        rmsprop_avx2(value, gradient, mean_square, velocity, mean_gradient, n, u, rho, momentum, epsilon);
        return;
    }
#endif
    for (long i = 0; i < n; i++)
        rmsprop1(value + i, gradient + i, mean_square + i, AT(velocity, i), AT(mean_gradient, i), u, rho, momentum,
                 epsilon);
}

void unroll_adagrad_step(float *value, const float *gradient, float *accumulator, long n, unroll_update u,
                         float epsilon) {
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        adagrad_avx2(value, gradient, accumulator, n, u, epsilon);
        return;
    }
#endif
    for (long i = 0; i < n; i++) adagrad1(value + i, gradient + i, accumulator + i, u, epsilon);
}

void unroll_clip(float *x, long n, unroll_update u) {
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        clip_avx2(x, n, u);
        return;
    }
#endif
    for (long i = 0; i < n; i++) x[i] = clip1(x[i], u);
}

double unroll_sum_of_squares(const float *x, long n) {
    // Four double lanes, element i in lane i % 4, summed in lane order at the end: the order the SSE loop
    // this replaced used, so norms (and with them clipping factors) keep their bits. Doubles, so that a
    // million-element sum keeps its digits; memory-bound either way, so no AVX2 version.
    double lanes[4] = {0, 0, 0, 0};
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int lane = 0; lane < 4; lane++) {
            double element = x[i + lane];
            lanes[lane] += element * element;
        }
    }
    for (int lane = 0; i + lane < n; lane++) {
        double element = x[i + lane];
        lanes[lane] += element * element;
    }
    return ((lanes[0] + lanes[1]) + lanes[2]) + lanes[3];
}
