// Portable reference GEMM. To be replaced by a packed, register-blocked AVX2/FMA kernel.
#include "Kernels.h"

void unroll_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb,
                  float beta, float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) { for (long j = 0; j < N; j++) c[j] = 0.0f; }
        else if (beta != 1.0f) { for (long j = 0; j < N; j++) c[j] *= beta; }
        for (long p = 0; p < K; p++) {
            float a = alpha * (transA ? A[p * lda + i] : A[i * lda + p]);
            if (!transB) {
                const float *b = B + p * ldb;
                for (long j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (long j = 0; j < N; j++) c[j] += a * B[j * ldb + p];
            }
        }
    }
}
