#ifndef UNROLL_KERNELS_H
#define UNROLL_KERNELS_H

#include <stddef.h>
#include "Linalg.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major single-precision GEMM on one thread:
///   C[M,N] = alpha * op(A) * op(B) + beta * C
/// op(A) is A ([M,K], row stride lda) when transA == 0, else A^T with A stored [K,M] (row stride lda).
/// op(B) is B ([K,N], row stride ldb) when transB == 0, else B^T with B stored [N,K] (row stride ldb).
/// beta == 0 means C is written without being read (it may hold garbage or NaN).
/// Thread-safe: callers may run it on disjoint blocks of C from several threads at once.
void unroll_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb,
                  float beta, float *C, long ldc);

/// y[i] = exp(x[i]); x and y may be the same array.
void unroll_vexp(const float *x, float *y, long n);
/// y[i] = tanh(x[i]); x and y may be the same array.
void unroll_vtanh(const float *x, float *y, long n);
/// y[i] = 1 / (1 + exp(-x[i])); x and y may be the same array.
void unroll_vsigmoid(const float *x, float *y, long n);

/// 1 when the AVX2 + FMA kernels are in use on this CPU, 0 for the portable fallbacks.
int unroll_has_avx2_fma(void);

#ifdef __cplusplus
}
#endif

#endif
