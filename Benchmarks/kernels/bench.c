// Standalone test + benchmark for Sources/Kernels (GEMM and vmath). See README.md for the build line.
//   ./kbench            run all tests, then the benchmarks
//   ./kbench test       tests only
//   ./kbench bench      benchmarks only
#define _GNU_SOURCE
#include "Kernels.h"
#include "../../Sources/Kernels/kernels_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {  // uniform in [-1, 1)
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}

static int failures = 0;

// ------------------------------------------------------------------------------------------------
// GEMM correctness.

/// Checks one call against a double-precision reference. Matrices get padded strides.
static int check_gemm(int tA, int tB, long M, long N, long K, float alpha, float beta, long pad) {
    long arows = tA ? K : M, acols = tA ? M : K;
    long brows = tB ? N : K, bcols = tB ? K : N;
    long lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    float *A = malloc(sizeof(float) * (arows * lda + 1));
    float *B = malloc(sizeof(float) * (brows * ldb + 1));
    float *C = malloc(sizeof(float) * (M * ldc + 1));
    float *C0 = malloc(sizeof(float) * (M * ldc + 1));
    for (long i = 0; i < arows * lda; i++) A[i] = frand();
    for (long i = 0; i < brows * ldb; i++) B[i] = frand();
    for (long i = 0; i < M * ldc; i++) C0[i] = beta == 0.0f ? NAN : frand();
    // Sentinels in the padding columns of C must survive.
    for (long i = 0; i < M; i++)
        for (long j = N; j < ldc; j++) C0[i * ldc + j] = 12345.0f;
    memcpy(C, C0, sizeof(float) * M * ldc);
    unroll_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int bad = 0;
    double worst = 0;
    for (long i = 0; i < M && !bad; i++) {
        for (long j = 0; j < ldc; j++) {
            float got = C[i * ldc + j];
            if (j >= N) {
                if (got != 12345.0f) { bad = 1; printf("  padding overwritten at %ld,%ld\n", i, j); break; }
                continue;
            }
            double s = 0, mag = 0;
            for (long p = 0; p < K; p++) {
                double a = tA ? A[p * lda + i] : A[i * lda + p];
                double b = tB ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            double ref = alpha * s, bound = fabs(alpha) * mag;
            if (beta != 0.0f) {
                ref += beta * (double)C0[i * ldc + j];
                bound += fabs(beta * (double)C0[i * ldc + j]);
            }
            double err = fabs(got - ref);
            double tol = 4e-7 * (K + 4) * (bound + 1e-30);
            if (!(err <= tol)) {
                printf("  mismatch at (%ld,%ld): got %g ref %g\n", i, j, got, ref);
                bad = 1;
                break;
            }
            if (bound > 0 && err / bound > worst) worst = err / bound;
        }
    }
    if (bad) {
        printf("FAIL sgemm tA=%d tB=%d M=%ld N=%ld K=%ld alpha=%g beta=%g pad=%ld\n", tA, tB, M, N, K, alpha,
               beta, pad);
        failures++;
    }
    free(A); free(B); free(C); free(C0);
    return !bad;
}

static void test_gemm(const char *label) {
    int before = failures;
    long count = 0;
    const float alphas[] = {1.0f, -1.5f};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            // Every M, N in 1..33 with a few K; every K in 1..33 with a few M, N.
            const long ks[] = {1, 3, 8, 17, 33};
            for (long M = 1; M <= 33; M++)
                for (long N = 1; N <= 33; N++)
                    for (int q = 0; q < 5; q++) {
                        long K = ks[q];
                        int v = (int)(M * 7 + N * 3 + q);
                        check_gemm(tA, tB, M, N, K, alphas[v % 2], betas[v % 3], v % 4 == 0 ? 0 : v % 5);
                        count++;
                    }
            const long mn[] = {1, 5, 6, 7, 16, 23, 33};
            for (long K = 0; K <= 33; K++)
                for (int a = 0; a < 7; a++)
                    for (int b = 0; b < 7; b++) {
                        int v = (int)(K + a * 5 + b);
                        check_gemm(tA, tB, mn[a], mn[b], K, alphas[v % 2], betas[v % 3], v % 3);
                        count++;
                    }
            // Larger shapes crossing the MC / KC / NC block boundaries, and skinny ones (direct paths).
            const long big[][3] = {{150, 70, 300},  {145, 2100, 20}, {37, 49, 520},  {200, 33, 257},
                                   {2, 1000, 300},  {4, 77, 700},    {5, 300, 90},   {300, 1, 100},
                                   {300, 3, 70},    {1, 1, 2000},    {64, 64, 64},   {128, 160, 400},
                                   {13, 16, 1},     {288, 48, 513},  {7, 4100, 9},   {100, 17, 1000},
                                   {3, 500, 200},   {100, 4, 300},   {2, 37, 1000},  {20, 328, 300},
                                   {1, 3, 5000},    {40, 1, 1}};
            for (int s = 0; s < (int)(sizeof big / sizeof big[0]); s++)
                for (int b = 0; b < 3; b++) {
                    check_gemm(tA, tB, big[s][0], big[s][1], big[s][2], alphas[(s + b) % 2], betas[b], (s + b) % 3 * 5);
                    count++;
                }
        }
    printf("sgemm %-16s: %ld cases, %s\n", label, count, failures == before ? "all passed" : "FAILURES");
}

// One row of op(A) times a non-transposed B (a weight gradient xᵀ·D with one input feature): against the double
// reference, and bitwise equal whether the columns are computed in one call or in any ranges (gemm() splits such
// a product by the thread count, so a column's bits must not depend on its neighbours).
static void test_one_row(const char *label) {
    int before = failures;
    long count = 0;
    const long ns[] = {1, 7, 9, 100, 1023, 1025, 1600, 2100};
    const long ks[] = {1, 3, 5, 64, 4096};
    const long cuts[] = {1, 5, 13, 16, 100, 777, 1024, 1030};
    for (int tA = 0; tA < 2; tA++)
        for (int a = 0; a < 8; a++)
            for (int q = 0; q < 5; q++) {
                long N = ns[a], K = ks[q], pad = (a + q) % 3 * 3;
                if (K == 4096 && N != 1600 && N != 9) continue;
                int v = a + q + tA;
                float alpha = v % 2 ? -1.5f : 1.0f, beta = v % 3 == 0 ? 0.0f : (v % 3 == 1 ? 1.0f : 0.5f);
                check_gemm(tA, 0, 1, N, K, alpha, beta, pad);
                count++;
                long lda = tA ? 1 + pad : K + pad, ldb = N + pad;
                float *A = malloc(sizeof(float) * (tA ? K * lda : lda));
                float *B = malloc(sizeof(float) * K * ldb);
                float *C0 = malloc(sizeof(float) * N), *C1 = malloc(sizeof(float) * N), *C2 = malloc(sizeof(float) * N);
                for (long i = 0; i < (tA ? K * lda : lda); i++) A[i] = frand();
                for (long i = 0; i < K * ldb; i++) B[i] = frand();
                for (long j = 0; j < N; j++) C0[j] = frand();
                memcpy(C1, C0, sizeof(float) * N);
                unroll_sgemm(tA, 0, 1, N, K, alpha, A, lda, B, ldb, beta, C1, N);
                for (int c = 0; c < 8; c++) {
                    memcpy(C2, C0, sizeof(float) * N);
                    for (long lo = 0; lo < N; lo += cuts[c]) {
                        long hi = lo + cuts[c] < N ? lo + cuts[c] : N;
                        unroll_sgemm(tA, 0, 1, hi - lo, K, alpha, A, lda, B + lo, ldb, beta, C2 + lo, N);
                    }
                    if (memcmp(C1, C2, sizeof(float) * N) != 0) {
                        printf("FAIL one row tA=%d N=%ld K=%ld: columns in ranges of %ld differ from one call\n", tA,
                               N, K, cuts[c]);
                        failures++;
                        break;
                    }
                }
                free(A); free(B); free(C0); free(C1); free(C2);
            }
    printf("one-row %-16s: %ld cases, %s\n", label, count, failures == before ? "all passed" : "FAILURES");
}

// Pre-packed B: against the double reference, against unroll_sgemm's blocked path (bitwise), and column
// ranges computed by separate calls (bitwise equal to one call over all columns).
static void check_prepacked(int tA, int tB, long M, long N, long K, float alpha, float beta, long pad) {
    long arows = tA ? K : M, acols = tA ? M : K;
    long brows = tB ? N : K, bcols = tB ? K : N;
    long lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    float *A = malloc(sizeof(float) * (arows * lda + 1));
    float *B = malloc(sizeof(float) * (brows * ldb + 1));
    float *C0 = malloc(sizeof(float) * (M * ldc + 1));
    float *C1 = malloc(sizeof(float) * (M * ldc + 1));
    float *C2 = malloc(sizeof(float) * (M * ldc + 1));
    float *C3 = malloc(sizeof(float) * (M * ldc + 1));
    size_t size = unroll_sgemm_packed_b_size(K, N);
    float *P = aligned_alloc(64, sizeof(float) * (size + 16));
    for (long i = 0; i < arows * lda; i++) A[i] = frand();
    for (long i = 0; i < brows * ldb; i++) B[i] = frand();
    for (long i = 0; i < M * ldc; i++) C0[i] = beta == 0.0f ? NAN : frand();
    for (long i = 0; i < M; i++)
        for (long j = N; j < ldc; j++) C0[i * ldc + j] = 12345.0f;
    memcpy(C1, C0, sizeof(float) * M * ldc);
    memcpy(C2, C0, sizeof(float) * M * ldc);
    memcpy(C3, C0, sizeof(float) * M * ldc);
    unroll_sgemm_pack_b(tB, K, N, B, ldb, P);
    unroll_sgemm_prepacked_b(tA, M, N, K, alpha, A, lda, P, 0, N, beta, C1, ldc);
    // Two calls split at a multiple of 16, three at arbitrary columns.
    long s16 = (N / 2) / 16 * 16, s1 = N / 3, s2 = N - N / 4;
    unroll_sgemm_prepacked_b(tA, M, N, K, alpha, A, lda, P, 0, s16, beta, C2, ldc);
    unroll_sgemm_prepacked_b(tA, M, N, K, alpha, A, lda, P, s16, N, beta, C2, ldc);
    unroll_sgemm_prepacked_b(tA, M, N, K, alpha, A, lda, P, 0, s1, beta, C3, ldc);
    unroll_sgemm_prepacked_b(tA, M, N, K, alpha, A, lda, P, s1, s2, beta, C3, ldc);
    unroll_sgemm_prepacked_b(tA, M, N, K, alpha, A, lda, P, s2, N, beta, C3, ldc);
    int bad = 0;
    for (long i = 0; i < M && !bad; i++)
        for (long j = 0; j < ldc; j++) {
            float got = C1[i * ldc + j];
            if (memcmp(&got, &C2[i * ldc + j], 4) || memcmp(&got, &C3[i * ldc + j], 4)) {
                printf("  split result differs at (%ld,%ld): %g %g %g\n", i, j, got, C2[i * ldc + j], C3[i * ldc + j]);
                bad = 1;
                break;
            }
            if (j >= N) {
                if (got != 12345.0f) { bad = 1; printf("  padding overwritten at %ld,%ld\n", i, j); break; }
                continue;
            }
            double s = 0, mag = 0;
            for (long p = 0; p < K; p++) {
                double a = tA ? A[p * lda + i] : A[i * lda + p];
                double b = tB ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            double ref = alpha * s, bound = fabs(alpha) * mag;
            if (beta != 0.0f) {
                ref += beta * (double)C0[i * ldc + j];
                bound += fabs(beta * (double)C0[i * ldc + j]);
            }
            if (!(fabs(got - ref) <= 4e-7 * (K + 4) * (bound + 1e-30))) {
                printf("  mismatch at (%ld,%ld): got %g ref %g\n", i, j, got, ref);
                bad = 1;
                break;
            }
        }
    // Where unroll_sgemm takes its blocked path (no skinny or tiny shortcut), the results are bitwise equal.
    if (!bad && M > 20 && N > 24 && (double)M * N * K > 8192.0 && K > 0) {
        memcpy(C2, C0, sizeof(float) * M * ldc);
        unroll_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
        if (memcmp(C1, C2, sizeof(float) * M * ldc)) {
            printf("  differs from unroll_sgemm's blocked path\n");
            bad = 1;
        }
    }
    if (bad) {
        printf("FAIL prepacked tA=%d tB=%d M=%ld N=%ld K=%ld alpha=%g beta=%g pad=%ld\n", tA, tB, M, N, K, alpha,
               beta, pad);
        failures++;
    }
    free(A); free(B); free(C0); free(C1); free(C2); free(C3); free(P);
}

static void test_prepacked(const char *label) {
    int before = failures;
    long count = 0;
    const float alphas[] = {1.0f, -1.5f};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            const long ks[] = {0, 1, 3, 8, 17, 33};
            for (long M = 1; M <= 20; M++)
                for (long N = 1; N <= 40; N++)
                    for (int q = 0; q < 6; q++) {
                        int v = (int)(M * 7 + N * 3 + q);
                        check_prepacked(tA, tB, M, N, ks[q], alphas[v % 2], betas[v % 3], v % 4 == 0 ? 0 : v % 5);
                        count++;
                    }
            // Recurrent shapes (batch 13..128; h U with U [H, gates H], dG U^T) and KC / MC block edges.
            const long big[][3] = {{13, 64, 16},    {32, 1024, 256}, {32, 256, 1024}, {128, 1600, 400},
                                   {128, 400, 1600}, {16, 384, 128},  {16, 128, 384},  {32, 256, 128},
                                   {32, 128, 256},  {100, 33, 257},  {150, 70, 300},  {145, 100, 513},
                                   {21, 25, 9},     {64, 17, 700},   {7, 2100, 20}};
            for (int s = 0; s < (int)(sizeof big / sizeof big[0]); s++)
                for (int b = 0; b < 3; b++) {
                    check_prepacked(tA, tB, big[s][0], big[s][1], big[s][2], alphas[(s + b) % 2], betas[b],
                                    (s + b) % 3 * 5);
                    count++;
                }
        }
    printf("prepacked %-12s: %ld cases, %s\n", label, count, failures == before ? "all passed" : "FAILURES");
}

// Pre-packed A (unroll_sgemm_pack_a + unroll_sgemm_prepacked_a): packing split over panel ranges and columns
// over uneven ranges, bitwise against one unroll_sgemm call wherever that takes its blocked path.
static void check_prepacked_a(int tA, int tB, long M, long N, long K, float alpha, float beta, long pad) {
    long arows = tA ? K : M, acols = tA ? M : K;
    long brows = tB ? N : K, bcols = tB ? K : N;
    long lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * (arows * lda + 1));
    float *B = malloc(sizeof(float) * (brows * ldb + 1));
    float *C1 = malloc(sizeof(float) * (M * ldc + 1));
    float *C2 = malloc(sizeof(float) * (M * ldc + 1));
    size_t size = unroll_sgemm_packed_a_size(M, K);
    float *P = malloc(sizeof(float) * (size + 1));
    for (long i = 0; i < arows * lda; i++) A[i] = frand();
    for (long i = 0; i < brows * ldb; i++) B[i] = frand();
    for (long i = 0; i < M * ldc; i++) C1[i] = beta == 0.0f ? NAN : frand();
    memcpy(C2, C1, sizeof(float) * M * ldc);
    for (size_t i = 0; i <= size; i++) P[i] = NAN;
    long panels = (M + 5) / 6, cut = 6 * (panels / 2);
    unroll_sgemm_pack_a(tA, M, K, A, lda, cut, M, P);  // the second half first: nothing may spill backwards
    unroll_sgemm_pack_a(tA, M, K, A, lda, 0, cut, P);
    int bad = !isnan(P[size]);
    long s1 = N / 3, s2 = N - N / 5;
    bad |= !unroll_sgemm_prepacked_a(tB, M, K, alpha, P, B, ldb, 0, s1, beta, C1, ldc);
    bad |= !unroll_sgemm_prepacked_a(tB, M, K, alpha, P, B, ldb, s1, s2, beta, C1, ldc);
    bad |= !unroll_sgemm_prepacked_a(tB, M, K, alpha, P, B, ldb, s2, N, beta, C1, ldc);
    unroll_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
    if (bad || memcmp(C1, C2, sizeof(float) * M * ldc)) {
        printf("FAIL prepacked A tA=%d tB=%d M=%ld N=%ld K=%ld alpha=%g beta=%g pad=%ld\n", tA, tB, M, N, K, alpha,
               beta, pad);
        failures++;
    }
    // K blocks outermost over column blocks (gemm()'s blocks, up to 16 of multiples of 16, plus an empty one), run
    // in contiguous runs as 1, 2, 3 and 7 threads take them, alone and through the stacked entry beside a second
    // product of other rows (op(A2) transposed, so both transposes of A meet one B).
    long units = (N + 15) / 16, count = units / 4 < 1 ? 1 : units / 4 > 16 ? 16 : units / 4, edges[18];
    for (long q = 0; q <= count; q++) edges[q] = 16 * (q * units / count) < N ? 16 * (q * units / count) : N;
    memmove(edges + count / 2 + 1, edges + count / 2, sizeof(long) * (count - count / 2 + 1));  // an empty block
    long blocks = count + 1, M2 = M / 2 + 7;
    float *A2 = malloc(sizeof(float) * (K * (M2 + 1) + 1)), *D0 = malloc(sizeof(float) * (M2 * ldc + 1));
    float *D1 = malloc(sizeof(float) * (M2 * ldc + 1)), *D2 = malloc(sizeof(float) * (M2 * ldc + 1));
    float *C0 = malloc(sizeof(float) * (M * ldc + 1)), *C3 = malloc(sizeof(float) * (M * ldc + 1));
    float *P2 = malloc(sizeof(float) * (unroll_sgemm_packed_a_size(M2, K) + 1));
    for (long i = 0; i < K * (M2 + 1); i++) A2[i] = frand();
    for (long i = 0; i < M2 * ldc; i++) D0[i] = beta == 0.0f ? NAN : frand();
    for (long i = 0; i < M * ldc; i++) C0[i] = beta == 0.0f ? NAN : frand();
    memcpy(D2, D0, sizeof(float) * M2 * ldc);
    memcpy(C2, C0, sizeof(float) * M * ldc);
    unroll_sgemm(1, tB, M2, N, K, alpha, A2, M2 + 1, B, ldb, beta, D2, ldc);
    unroll_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
    unroll_sgemm_pack_a(1, M2, K, A2, M2 + 1, 0, M2, P2);
    // Both products' rows stacked into one packed op(A) for the stacked entry.
    unroll_sgemm_stacked_part stack[2] = {{M, tA, A, lda, beta, NULL, ldc, 0}, {M2, 1, A2, M2 + 1, beta, NULL, ldc, 0}};
    float *S = malloc(sizeof(float) * (unroll_sgemm_stacked_a_size(2, stack, K) + 1));
    unroll_sgemm_pack_stacked_a(2, stack, K, 0, (M + M2 + 5) / 6, S);
    int second = unroll_sgemm_packs_a(1, tB, M2, N, K, alpha);
    const int threads[] = {1, 2, 3, 7};
    for (int t = 0; t < 4; t++)
        for (int shared = 0; shared < 1 + second; shared++) {
            memcpy(C3, C0, sizeof(float) * M * ldc);
            memcpy(D1, D0, sizeof(float) * M2 * ldc);
            unroll_sgemm_stacked_part parts[2] = {{M, tA, A, lda, beta, C3, ldc, 0}, {M2, 1, A2, M2 + 1, beta, D1, ldc, 0}};
            int ok = 1;
            for (int w = 0; w < threads[t]; w++) {
                long q0 = w * blocks / threads[t], q1 = (w + 1) * blocks / threads[t];
                ok &= shared ? unroll_sgemm_stacked_b_blocks(2, parts, S, tB, N, K, alpha, B, ldb, edges + q0, q1 - q0)
                             : unroll_sgemm_prepacked_a_blocks(tB, M, K, alpha, P, B, ldb, edges + q0, q1 - q0, beta,
                                                               C3, ldc);
            }
            if (!ok || memcmp(C3, C2, sizeof(float) * M * ldc) ||
                (shared && memcmp(D1, D2, sizeof(float) * M2 * ldc))) {
                printf("FAIL %s blocks, K outermost, %d threads: tA=%d tB=%d M=%ld N=%ld K=%ld alpha=%g beta=%g\n",
                       shared ? "stacked" : "prepacked A", threads[t], tA, tB, M, N, K, alpha, beta);
                failures++;
            }
        }
    free(C0); free(C3); free(D0);
    free(A2); free(D1); free(D2); free(P2); free(S);
    free(A); free(B); free(C1); free(C2); free(P);
}

// unroll_sgemm_prepacked_b_outer against a one-column product stored into C (onto a row, or not) and the product
// then added into it with beta = 1, bit for bit, over column ranges; C is NaN before, so a read of it would show.
static void test_prepacked_outer(const char *label) {
    long shapes[][3] = {{64, 1600, 400}, {13, 40, 9}, {7, 96, 600}, {1400, 48, 400}, {2, 37, 5}};
    int bad = 0, cases = 0;
    for (int s = 0; s < 5; s++) {
        long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldx = 3, ldc = N + 5;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *x = malloc(sizeof(float) * M * ldx);
        float *w = malloc(sizeof(float) * N), *row = malloc(sizeof(float) * N);
        float *P = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_b_size(K, N) + 16));
        float *C0 = malloc(sizeof(float) * M * ldc), *C1 = malloc(sizeof(float) * M * ldc);
        for (long i = 0; i < M * K; i++) A[i] = frand();
        for (long i = 0; i < K * N; i++) B[i] = frand();
        for (long i = 0; i < M * ldx; i++) x[i] = frand();
        for (long i = 0; i < N; i++) { w[i] = frand(); row[i] = frand(); }
        unroll_sgemm_pack_b(0, K, N, B, N, P);
        for (int in_place = 0; in_place < 2; in_place++)
            for (int with_row = 0; with_row < 2; with_row++) {
                long ranges[2][2] = {{0, N}, {16, N - 3}};
                for (int r = 0; r < 2; r++) {
                    long n0 = ranges[r][0], n1 = ranges[r][1];
                    if (n0 >= n1) continue;
                    for (long i = 0; i < M * ldc; i++) { C0[i] = 9.0f; C1[i] = NAN; }
                    if (with_row) unroll_sgemm_row(0, 0, M, N, 1, 1, x, ldx, w, N, row, C0, ldc);
                    else unroll_sgemm(0, 0, M, N, 1, 1, x, ldx, w, N, 0, C0, ldc);
                    unroll_sgemm_prepacked_b_choosing(in_place, 0, M, N, K, 1, A, K, P, n0, n1, 1, C0, ldc);
                    // The outer entry chooses by size as unroll_sgemm_prepacked_b does: rows in place for all shapes but
                    // 1400 x 400 (packed); the reference takes both ways, which give the same bits.
                    unroll_sgemm_prepacked_b_outer(0, M, N, K, 1, A, K, P, n0, n1, x, ldx, w, with_row ? row : NULL, C1, ldc);
                    for (long i = 0; i < M; i++)
                        for (long j = 0; j < ldc; j++) {
                            int inside = j >= n0 && j < n1;
                            float g = C1[i * ldc + j], e = C0[i * ldc + j];
                            if (inside ? memcmp(&g, &e, sizeof g) != 0 : !isnan(g)) bad++;
                        }
                    cases++;
                }
            }
        free(A); free(B); free(x); free(w); free(row); free(P); free(C0); free(C1);
    }
    printf("prepacked outer %s: %d cases, %s\n", label, cases, bad ? "FAILED" : "all passed");
    if (bad) failures++;
}

static void test_prepacked_a(const char *label) {
    int before = failures;
    long count = 0;
    const float alphas[] = {1.0f, -1.5f};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    const long shapes[][3] = {{21, 25, 20},  {23, 40, 33},  {30, 64, 5},    {37, 100, 130}, {53, 33, 600},
                              {145, 70, 40}, {150, 48, 513}, {64, 30, 1100}, {97, 130, 257}, {400, 100, 512},
                              {3, 200, 64},  {7, 31, 700},  {288, 40, 1024}, {40, 700, 600}, {65, 1030, 1100}};
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++)
            for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
                long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                if (!unroll_sgemm_packs_a(tA, tB, M, N, K, 1.0f)) continue;
                int v = s + 2 * tA + tB;
                check_prepacked_a(tA, tB, M, N, K, alphas[v % 2], betas[v % 3], v % 3 * 3);
                count++;
            }
    printf("prepacked A %-10s: %ld cases, %s\n", label, count, failures == before ? "all passed" : "FAILURES");
}

/// Stacked parts (unroll_sgemm_stacked_b_blocks) with B packed (read in place forbidden): gemm()'s column blocks plus
/// an empty one, in the runs 1, 2, 3 and 7 threads take, with B packed by the first tile over each panel (also a
/// first tile that spans parts, when a one-row part comes first) against B packed before the tiles: bitwise equal,
/// and a part that takes unroll_sgemm's blocked path alone gets its bits.
static void test_stacked(const char *label) {
    int before = failures;
    long saved = unroll_gemm_unpacked_max_m;
    unroll_gemm_unpacked_max_m = 0;
    const long shapes[][5] = {{150, 5, 100, 600, 0}, {140, 7, 250, 513, 1}, {400, 1, 1600, 40, 0}, {3, 2, 70, 30, 1}};
    long cases = 0;
    for (int s = 0; s < 4; s++) {
        long M1 = shapes[s][0], M2 = shapes[s][1], N = shapes[s][2], K = shapes[s][3];
        int ones_first = (int)shapes[s][4];
        float beta = s % 2 ? 1.0f : 0.0f;
        float *A1 = malloc(sizeof(float) * K * M1), *A2 = malloc(sizeof(float) * K * M2);
        float *B = malloc(sizeof(float) * K * N), *C[2][3], *R = malloc(sizeof(float) * M1 * N);
        for (long i = 0; i < K * M1; i++) A1[i] = frand();
        for (long i = 0; i < K * M2; i++) A2[i] = frand();
        for (long i = 0; i < K * N; i++) B[i] = frand();
        long ms[3] = {M1, M2, 1};
        for (int v = 0; v < 2; v++)
            for (int i = 0; i < 3; i++) C[v][i] = malloc(sizeof(float) * ms[i] * N);
        for (long i = 0; i < M1 * N; i++) R[i] = beta == 0.0f ? NAN : 0.5f;
        unroll_sgemm(1, 0, M1, N, K, 1.0f, A1, M1, B, N, beta, R, N);
        long units = (N + 15) / 16, count = units / 4 < 1 ? 1 : units / 4 > 16 ? 16 : units / 4, edges[18];
        for (long q = 0; q <= count; q++) edges[q] = 16 * (q * units / count) < N ? 16 * (q * units / count) : N;
        memmove(edges + count / 2 + 1, edges + count / 2, sizeof(long) * (count - count / 2 + 1));
        long blocks = count + 1;
        const int threads[] = {1, 2, 3, 7};
        for (int t = 0; t < 4; t++) {
            for (int v = 0; v < 2; v++) {
                for (int i = 0; i < 3; i++)
                    for (long j = 0; j < ms[i] * N; j++) C[v][i][j] = beta == 0.0f ? NAN : 0.5f;
                unroll_sgemm_stacked_part big = {M1, 1, A1, M1, beta, C[v][0], N, 0};
                unroll_sgemm_stacked_part small = {M2, 1, A2, M2, beta, C[v][1], N, 0};
                unroll_sgemm_stacked_part ones = {1, 0, NULL, 0, beta, C[v][2], N, 0};
                unroll_sgemm_stacked_part parts[3] = {big, small, ones};
                if (ones_first) {
                    parts[0] = ones;
                    parts[2] = big;
                }
                float *S = malloc(sizeof(float) * (unroll_sgemm_stacked_a_size(3, parts, K) + 1));
                unroll_sgemm_pack_stacked_a(3, parts, K, 0, (M1 + M2 + 1 + 5) / 6, S);
                unroll_gemm_fused_b_packing = v == 0;
                for (int w = 0; w < threads[t]; w++) {
                    long q0 = w * blocks / threads[t], q1 = (w + 1) * blocks / threads[t];
                    if (!unroll_sgemm_stacked_b_blocks(3, parts, S, 0, N, K, 1.0f, B, N, edges + q0, q1 - q0))
                        failures++;
                }
                unroll_gemm_fused_b_packing = 1;
                free(S);
            }
            int same = 1;
            for (int i = 0; i < 3; i++) same &= memcmp(C[0][i], C[1][i], sizeof(float) * ms[i] * N) == 0;
            if (unroll_sgemm_packs_a(1, 0, M1, N, K, 1.0f)) same &= memcmp(C[0][0], R, sizeof(float) * M1 * N) == 0;
            if (!same) {
                printf("FAIL stacked parts %ld+%ld+1 N=%ld K=%ld, %d threads\n", M1, M2, N, K, threads[t]);
                failures++;
            }
            cases++;
        }
        free(A1); free(A2); free(B); free(R);
        for (int v = 0; v < 2; v++)
            for (int i = 0; i < 3; i++) free(C[v][i]);
    }
    unroll_gemm_unpacked_max_m = saved;
    printf("stacked B %-10s: %ld cases, %s\n", label, cases, failures == before ? "all passed" : "FAILURES");
}

/// One thread: packing all of op(A) once (unroll_sgemm_pack_a), best of many, in µs and GB/s read.
static void bench_pack_a(int tA, long M, long K) {
    float *A = aligned_alloc(64, sizeof(float) * (M * K + 16));
    float *P = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_a_size(M, K) + 16));
    for (long i = 0; i < M * K; i++) A[i] = frand();
    double best = 1e30;
    for (int trial = 0; trial < 200; trial++) {
        double t0 = now();
        unroll_sgemm_pack_a(tA, M, K, A, tA ? M : K, 0, M, P);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("  pack op(A) %s M=%5ld K=%5ld : %8.1f us  %5.1f GB/s\n", tA ? "T" : "N", M, K, best * 1e6,
           4.0 * M * K / best * 1e-9);
    free(A); free(P);
}

/// One thread: a product in column blocks as gemm() cuts it (16 blocks of a multiple of 16 columns), each block an
/// unroll_sgemm call packing all of op(A), against op(A) packed once and every block from the packed panels.
static void bench_split(int tA, int tB, long M, long N, long K) {
    long lda = tA ? M : K, ldb = tB ? K : N;
    float *A = aligned_alloc(64, sizeof(float) * (M * K + 16));
    float *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
    float *C1 = aligned_alloc(64, sizeof(float) * (M * N + 16)), *C2 = aligned_alloc(64, sizeof(float) * (M * N + 16));
    float *P = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_a_size(M, K) + 16));
    for (long i = 0; i < M * K; i++) A[i] = frand();
    for (long i = 0; i < K * N; i++) B[i] = frand();
    long units = (N + 15) / 16, blocks = units / 4 < 16 ? (units / 4 < 1 ? 1 : units / 4) : 16;
    double best[2] = {1e30, 1e30};
    for (int trial = 0; trial < 30; trial++)
        for (int mode = 0; mode < 2; mode++) {
            double t0 = now();
            if (mode) unroll_sgemm_pack_a(tA, M, K, A, lda, 0, M, P);
            for (long q = 0; q < blocks; q++) {
                long j0 = 16 * (q * units / blocks), j1 = 16 * ((q + 1) * units / blocks);
                if (j1 > N) j1 = N;
                if (mode)
                    unroll_sgemm_prepacked_a(tB, M, K, 1.0f, P, B, ldb, j0, j1, 0.0f, C2, N);
                else
                    unroll_sgemm(tA, tB, M, j1 - j0, K, 1.0f, A, lda, tB ? B + j0 * ldb : B + j0, ldb, 0.0f, C1 + j0, N);
            }
            double t = now() - t0;
            if (t < best[mode]) best[mode] = t;
        }
    int same = memcmp(C1, C2, sizeof(float) * M * N) == 0;
    if (!same) failures++;
    printf("  %s%s M=%4ld N=%4ld K=%4ld, %2ld blocks : A packed per block %8.1f us | once %8.1f us (%+.1f%%)%s\n",
           tA ? "T" : "N", tB ? "T" : "N", M, N, K, blocks, best[0] * 1e6, best[1] * 1e6, (best[1] / best[0] - 1) * 100,
           same ? "" : "  BITS DIFFER");
    free(A); free(B); free(C1); free(C2); free(P);
}

/// One thread, a recurrent layer's weight and bias gradients from one D (K x N): Hᵀ·D (M2 rows), Xᵀ·D (M1 rows) and
/// the column sums 1ᵀ·D, over gemm()'s column blocks. Apart: each A packed, each product's own blocks
/// (unroll_sgemm_prepacked_a, or unroll_sgemm where it takes no blocked path) and the sums in a loop (as the plan's
/// row sum); stacked: the three stacked into one packed op(A) and one unroll_sgemm_stacked_b call per block.
/// Packing is in both timings. Bits: a part that takes the blocked path alone must match; the others (and the
/// sums) must be within 1e-5 of a double-precision sum relative to the largest magnitude.
static void bench_shared(long M1, long M2, long N, long K) {
    long Ms[2] = {M2, M1};
    float *A[2], *P[2], *C1[3], *C2[3];
    for (int i = 0; i < 2; i++) {
        A[i] = aligned_alloc(64, sizeof(float) * (Ms[i] * K + 16));
        P[i] = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_a_size(Ms[i], K) + 16));
        for (long j = 0; j < Ms[i] * K; j++) A[i][j] = frand();
    }
    for (int i = 0; i < 3; i++) {
        long m = i < 2 ? Ms[i] : 1;
        C1[i] = aligned_alloc(64, sizeof(float) * (m * N + 16));
        C2[i] = aligned_alloc(64, sizeof(float) * (m * N + 16));
    }
    float *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
    for (long i = 0; i < K * N; i++) B[i] = frand();
    unroll_sgemm_stacked_part parts[3] = {
        {M2, 1, A[0], M2, 0.0f, C2[0], N, 0}, {M1, 1, A[1], M1, 0.0f, C2[1], N, 0}, {1, 1, NULL, 1, 0.0f, C2[2], N, 0}};
    float *S = aligned_alloc(64, sizeof(float) * (unroll_sgemm_stacked_a_size(3, parts, K) + 16));
    int blocked[2];
    for (int i = 0; i < 2; i++) blocked[i] = unroll_sgemm_packs_a(1, 0, Ms[i], N, K, 1.0f);
    long units = (N + 15) / 16, blocks = units / 4 < 16 ? (units / 4 < 1 ? 1 : units / 4) : 16;
    double best[2] = {1e30, 1e30};
    for (int trial = 0; trial < 20; trial++)
        for (int mode = 0; mode < 2; mode++) {
            double t0 = now();
            if (mode)
                unroll_sgemm_pack_stacked_a(3, parts, K, 0, (M1 + M2 + 1 + 5) / 6, S);
            else
                for (int i = 0; i < 2; i++)
                    if (blocked[i]) unroll_sgemm_pack_a(1, Ms[i], K, A[i], Ms[i], 0, Ms[i], P[i]);
            for (long q = 0; q < blocks; q++) {
                long j0 = 16 * (q * units / blocks), j1 = 16 * ((q + 1) * units / blocks);
                if (j1 > N) j1 = N;
                if (mode) {
                    unroll_sgemm_stacked_b(3, parts, S, 0, N, K, 1.0f, B, N, j0, j1);
                    continue;
                }
                for (int i = 0; i < 2; i++) {
                    if (blocked[i])
                        unroll_sgemm_prepacked_a(0, Ms[i], K, 1.0f, P[i], B, N, j0, j1, 0.0f, C1[i], N);
                    else
                        unroll_sgemm(1, 0, Ms[i], j1 - j0, K, 1.0f, A[i], Ms[i], B + j0, N, 0.0f, C1[i] + j0, N);
                }
                for (long j = j0; j < j1; j++) C1[2][j] = 0.0f;
                for (long r = 0; r < K; r++)
                    for (long j = j0; j < j1; j++) C1[2][j] += B[r * N + j];
            }
            double t = now() - t0;
            if (t < best[mode]) best[mode] = t;
        }
    int same = 1;
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        long m = i < 2 ? Ms[i] : 1;
        if (i < 2 && blocked[i]) {
            same &= memcmp(C1[i], C2[i], sizeof(float) * m * N) == 0;
            continue;
        }
        double largest = 0, err = 0;
        for (long r = 0; r < m; r++)
            for (long j = 0; j < N; j++) {
                double exact = 0;
                for (long p = 0; p < K; p++) exact += (i < 2 ? (double)A[i][p * m + r] : 1.0) * B[p * N + j];
                if (fabs(exact) > largest) largest = fabs(exact);
                double e = fabs(exact - C2[i][r * N + j]);
                if (e > err) err = e;
            }
        if (err / (largest > 0 ? largest : 1) > worst) worst = err / (largest > 0 ? largest : 1);
    }
    if (!same || worst > 1e-5) failures++;
    double flops = 2.0 * (M1 + M2 + 1) * N * K;
    printf("  TN M=%4ld+%4ld+1 N=%4ld K=%5ld : apart %8.1f us %5.1f GFLOP/s | stacked %8.1f us %5.1f GFLOP/s (%+.1f%%)%s"
           " small parts rel err %.1e\n",
           M2, M1, N, K, best[0] * 1e6, flops / best[0] * 1e-9, best[1] * 1e6, flops / best[1] * 1e-9,
           (best[1] / best[0] - 1) * 100, same ? "" : "  BITS DIFFER", worst);
    for (int i = 0; i < 2; i++) { free(A[i]); free(P[i]); }
    for (int i = 0; i < 3; i++) { free(C1[i]); free(C2[i]); }
    free(B);
    free(S);
}

// Two threads writing disjoint halves of C at the same time, many times.
typedef struct {
    int tA, tB;
    long M, N, K;
    const float *A, *B;
    long lda, ldb;
    float *C;
    long ldc;
    void (*fn)(void *);  // when set, the job is fn(arg) instead of the product
    void *arg;
} gemm_job;

static void run_job(const gemm_job *j) {
    if (j->fn) {
        j->fn(j->arg);
        return;
    }
    unroll_sgemm(j->tA, j->tB, j->M, j->N, j->K, 1.0f, j->A, j->lda, j->B, j->ldb, 0.0f, j->C, j->ldc);
}

/// Splits one GEMM into 2 jobs. mode 0: N in multiples of 16 when N >= M, else M in multiples of 6
/// (what Sources/Graph/GEMM.swift does); 1: N in multiples of 16; 2: N in multiples of 8; 3: M in multiples of 6.
static void split2m(int mode, int tA, int tB, long M, long N, long K, const float *A, long lda, const float *B,
                    long ldb, float *C, long ldc, gemm_job out[2]) {
    int splitN = mode == 0 ? N >= M : mode != 3;
    long total = splitN ? N : M, g = splitN ? (mode == 2 ? 8 : 16) : 6;
    long chunk = ((total + 1) / 2 + g - 1) / g * g;
    if (chunk > total) chunk = total;
    for (int t = 0; t < 2; t++) {
        long s = t * chunk, e = t == 0 ? chunk : total;
        gemm_job j = {tA, tB, M, N, K, A, B, lda, ldb, C, ldc, NULL, NULL};
        if (splitN) {
            j.N = e - s;
            j.B = tB ? B + s * ldb : B + s;
            j.C = C + s;
        } else {
            j.M = e - s;
            j.A = tA ? A + s : A + s * lda;
            j.C = C + s * ldc;
        }
        out[t] = j;
    }
}

// A persistent second worker, woken by a generation counter (spin wait) so timings exclude thread start.
static gemm_job worker_job;
static volatile int worker_gen = 0, worker_done = 0, worker_quit = 0;
static void *worker_main(void *arg) {
    (void)arg;
    int seen = 0;
    for (;;) {
        while (__atomic_load_n(&worker_gen, __ATOMIC_ACQUIRE) == seen) {
            if (__atomic_load_n(&worker_quit, __ATOMIC_ACQUIRE)) return NULL;
            __builtin_ia32_pause();
        }
        seen = __atomic_load_n(&worker_gen, __ATOMIC_ACQUIRE);
        run_job(&worker_job);
        __atomic_store_n(&worker_done, seen, __ATOMIC_RELEASE);
    }
}
static void split2(int tA, int tB, long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                   float *C, long ldc, gemm_job out[2]) {
    split2m(0, tA, tB, M, N, K, A, lda, B, ldb, C, ldc, out);
}
static pthread_t worker;
static void run2(const gemm_job jobs[2]) {
    worker_job = jobs[1];
    int g = worker_gen + 1;
    __atomic_store_n(&worker_gen, g, __ATOMIC_RELEASE);
    run_job(&jobs[0]);
    while (__atomic_load_n(&worker_done, __ATOMIC_ACQUIRE) != g) __builtin_ia32_pause();
}

static void *short_lived(void *arg) {
    // A packed call (workspace allocated), then thread exit (workspace freed by the key destructor).
    long n = 64 + (long)(intptr_t)arg * 16;
    float *A = calloc(n * n, sizeof(float)), *B = calloc(n * n, sizeof(float)), *C = calloc(n * n, sizeof(float));
    unroll_sgemm(0, 1, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    free(A); free(B); free(C);
    return NULL;
}

static void test_threads(void) {
    for (int t = 0; t < 16; t++) {
        pthread_t th;
        pthread_create(&th, NULL, short_lived, (void *)(intptr_t)t);
        pthread_join(th, NULL);
    }
    const long shapes[][5] = {{0, 0, 128, 1600, 400}, {1, 0, 400, 1600, 128}, {0, 1, 128, 400, 1600},
                              {1, 1, 150, 70, 300}, {0, 0, 7, 3, 50}};
    int ok = 1;
    for (int s = 0; s < 5; s++) {
        int tA = (int)shapes[s][0], tB = (int)shapes[s][1];
        long M = shapes[s][2], N = shapes[s][3], K = shapes[s][4];
        long lda = tA ? M : K, ldb = tB ? K : N;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
        for (long i = 0; i < M * K; i++) A[i] = frand();
        for (long i = 0; i < K * N; i++) B[i] = frand();
        unroll_sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
        gemm_job jobs[2];
        split2(tA, tB, M, N, K, A, lda, B, ldb, C2, N, jobs);
        for (int rep = 0; rep < 20; rep++) {
            for (long i = 0; i < M * N; i++) C2[i] = NAN;
            run2(jobs);
            for (long i = 0; i < M * N; i++) {
                // Same blocking per column/row block, so results must agree closely (bitwise when N is split).
                if (!(fabsf(C1[i] - C2[i]) <= 1e-4f * (1 + fabsf(C1[i])))) { ok = 0; break; }
            }
        }
        free(A); free(B); free(C1); free(C2);
    }
    if (!ok) failures++;
    printf("sgemm 2 threads: %s\n", ok ? "passed" : "FAILED");
}

// ------------------------------------------------------------------------------------------------
// vmath accuracy.

typedef void (*vfun)(const float *, float *, long);
static double ref_exp(double x) { return exp(x); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// Error in units in the last place of the float nearest the exact value (ulp of a power of two: the one above).
static double ulp_error(float y, double r) {
    float rf = (float)r;
    if (rf == 0 || isinf(rf)) return 0;
    return fabs(y - r) / ldexp(1.0, ilogbf(rf) - 23 > -149 ? ilogbf(rf) - 23 : -149);
}

static void test_vmath_one(const char *name, vfun f, double (*ref)(double), double lo, double hi, double bound) {
    const long n = 1 << 22;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    double worst_rel = 0, worst_at = 0, worst_abs_small = 0, worst_ulp = 0;
    // Dense sweep of [lo, hi] plus random points.
    for (int pass = 0; pass < 2; pass++) {
        for (long i = 0; i < n; i++)
            x[i] = pass == 0 ? (float)(lo + (hi - lo) * (double)i / (n - 1)) : (float)(lo + (hi - lo) * (frand() + 1) / 2);
        f(x, y, n);
        for (long i = 0; i < n; i++) {
            double r = ref((double)x[i]);
            double e = fabs(y[i] - r);
            double rel = r != 0 ? e / fabs(r) : e;
            if (rel > worst_rel) { worst_rel = rel; worst_at = x[i]; }
            if (ulp_error(y[i], r) > worst_ulp) worst_ulp = ulp_error(y[i], r);
            if (fabs(x[i]) < 0.01 && e > worst_abs_small) worst_abs_small = e;
        }
    }
    // All floats near 0 for tanh / sigmoid (relative error at tiny inputs).
    long m = 0;
    for (float v = 1e-30f; v < 1.0f && m < n - 1; v *= 1.0001f) { x[m++] = v; x[m++] = -v; }
    f(x, y, m);
    for (long i = 0; i < m; i++) {
        double r = ref((double)x[i]);
        double rel = fabs(y[i] - r) / fabs(r);
        if (rel > worst_rel) { worst_rel = rel; worst_at = x[i]; }
    }
    printf("  %-8s max rel err %.3g (at x=%.6g) over [%g,%g] and tiny |x|, max %.2f ulp (bound %.2g)\n", name,
           worst_rel, worst_at, lo, hi, worst_ulp, bound);
    if (worst_rel > bound) { printf("FAIL %s accuracy\n", name); failures++; }
    free(x); free(y);
}

static void test_vmath_specials(void) {
    float in[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 88.0f, 88.7f, 88.8f, 89.5f, 100.0f, 1e30f,
                  -87.0f, -88.0f, -95.0f, -100.0f, -103.0f, -104.0f, -110.0f, -1e30f, 9.0f, -9.0f, 9.5f,
                  -12.0f, 30.0f, -30.0f, 1e-40f, -1e-40f};
    long n = sizeof in / sizeof in[0];
    float out[64];
    int ok = 1;
    unroll_vexp(in, out, n);
    for (long i = 0; i < n; i++) {
        float r = expf(in[i]);
        int good = isnan(r) ? isnan(out[i])
                   : isinf(r) ? out[i] == r
                   : r < 1.17549435e-38f ? fabsf(out[i] - r) <= 3e-45f + 3e-7f * r
                   : fabsf(out[i] - r) <= 3e-7f * r;
        if (!good) { printf("  exp(%g) = %g, libm %g\n", in[i], out[i], r); ok = 0; }
    }
    unroll_vtanh(in, out, n);
    for (long i = 0; i < n; i++) {
        float r = tanhf(in[i]);
        double rd = tanh((double)in[i]);
        int good = isnan(r) ? isnan(out[i])
                   : fabsf(in[i]) > 9.1f ? out[i] == (in[i] > 0 ? 1.0f : -1.0f)  // exact saturation
                   : fabs(out[i] - rd) <= 3e-7 * fabs(rd);
        if (!good) { printf("  tanh(%g) = %.9g, libm %.9g\n", in[i], out[i], r); ok = 0; }
    }
    unroll_vsigmoid(in, out, n);
    for (long i = 0; i < n; i++) {
        double r = ref_sigmoid(in[i]);
        int good = isnan(r) ? isnan(out[i]) : (fabs(out[i] - r) <= 3e-7 * r || fabs(out[i] - r) < 1e-44);
        if (!good) { printf("  sigmoid(%g) = %.9g, ref %.9g\n", in[i], out[i], r); ok = 0; }
    }
    // Tails and in-place: n = 0 .. 40, compare against the full-array result, never write past n.
    float buf[64], ref[64], big[64];
    for (int i = 0; i < 48; i++) big[i] = frand() * 10;
    vfun fs[3] = {unroll_vexp, unroll_vtanh, unroll_vsigmoid};
    for (int k = 0; k < 3; k++) {
        fs[k](big, ref, 48);
        for (long len = 0; len <= 40; len++) {
            for (int i = 0; i < 64; i++) buf[i] = i < 48 ? big[i] : -7.0f;
            for (int i = (int)len; i < 64; i++) buf[i] = 77.0f;
            memcpy(buf, big, sizeof(float) * len);
            fs[k](buf, buf, len);  // in place
            for (long i = 0; i < 64; i++) {
                float want = i < len ? ref[i] : 77.0f;
                if (buf[i] != want) { ok = 0; printf("  tail error f%d len %ld at %ld\n", k, len, i); break; }
            }
        }
    }
    // A lane's bits never depend on its neighbours: every third value replaced by an extreme one (which sends its
    // 8-lane vector down a slower path) leaves the others' results unchanged.
    enum { NL = 1024 };
    float *lx = malloc(sizeof(float) * NL), *ly = malloc(sizeof(float) * NL), *lz = malloc(sizeof(float) * NL);
    const float extremes[] = {-100.0f, 100.0f, -1e30f, INFINITY, -INFINITY, NAN, 1e-40f, 30.0f};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < NL; i++) lx[i] = frand() * 30;
        fs[k](lx, ly, NL);
        for (int i = 0; i < NL; i += 3) lx[i] = extremes[(i / 3) % 8];
        fs[k](lx, lz, NL);
        for (int i = 0; i < NL; i++)
            if (i % 3 && memcmp(&ly[i], &lz[i], sizeof(float)) != 0) { ok = 0; printf("  f%d lane %d depends on its neighbours\n", k, i); break; }
    }
    free(lx); free(ly); free(lz);
    if (!ok) failures++;
    printf("  specials / tails / NaN / lanes independent: %s\n", ok ? "passed" : "FAILED");
}

// The AVX-512F loops against the AVX2 ones, bit for bit (a NaN's payload and sign aside: they follow the operand
// order the compiler picks for each fused multiply-add): random bit patterns (NaN, infinities, subnormals), a dense
// sweep of [-120, 120], and every tail length 0..40.
static void test_vmath_avx512_bits(void) {
    const long n = 1 << 20;
    float *x = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) {
        uint32_t u = (uint32_t)i * 2654435761u;
        if (i < n / 2) memcpy(&x[i], &u, sizeof u); else x[i] = -120.0f + 240.0f * (float)(i - n / 2) / (float)(n / 2);
    }
    vfun fs[3] = {unroll_vexp, unroll_vtanh, unroll_vsigmoid};
    const char *names[3] = {"exp", "tanh", "sigmoid"};
    for (int k = 0; k < 3; k++) {
        long differ = 0;
        unroll_kernels_avoid_avx512(1);
        fs[k](x, a, n);
        unroll_kernels_avoid_avx512(0);
        unroll_vmath_avx512(k, x, b, n);
        for (long i = 0; i < n; i++) differ += memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]));
        for (long len = 0; len <= 40; len++) {
            float ta[48], tb[48];
            for (int i = 0; i < 48; i++) ta[i] = tb[i] = 77.0f;
            unroll_kernels_avoid_avx512(1);
            fs[k](x + n - 100, ta, len);
            unroll_kernels_avoid_avx512(0);
            unroll_vmath_avx512(k, x + n - 100, tb, len);
            differ += memcmp(ta, tb, sizeof ta) != 0;
        }
        printf("  %-8s AVX-512F against AVX2: %ld of %ld differ\n", names[k], differ, n + 41);
        if (differ) failures++;
    }
    free(x); free(a); free(b);
}

static void test_vmath(const char *label) {
    printf("vmath %s:\n", label);
    test_vmath_one("exp", unroll_vexp, ref_exp, -20, 20, 1e-7);
    test_vmath_one("exp", unroll_vexp, ref_exp, -87, 88.7, 1e-7);
    test_vmath_one("tanh", unroll_vtanh, ref_tanh, -20, 20, 1.8e-7);
    test_vmath_one("sigmoid", unroll_vsigmoid, ref_sigmoid, -20, 20, 2e-7);
    test_vmath_one("sigmoid", unroll_vsigmoid, ref_sigmoid, -87, 87, 2e-7);
    test_vmath_specials();
}

// ------------------------------------------------------------------------------------------------
// Benchmarks.

/// gemm()'s column blocks of a product from op(A) packed once, on 1 thread (all blocks) and on 2 (each a contiguous
/// half, the persistent worker taking the second): one unroll_sgemm_prepacked_a call per block against one
/// unroll_sgemm_prepacked_a_blocks call per thread (K blocks outermost), and unroll_sgemm on each half of the
/// columns (its own packing of A included). Packing A once is excluded; bits compared.
typedef struct {
    int mode, tB;
    long M, K, first, last, ldb, ldc;
    const float *P, *B, *A;
    int tA;
    long lda;
    const long *edges;
    float *C;
    double cpu;  // the thread's processor time of the last run (robust to other processes sharing the cores)
} blocks_job;
static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static void run_blocks_timed(void *arg);
static void run_blocks(void *arg) {
    blocks_job *j = arg;
    double t0 = thread_cpu();
    run_blocks_timed(arg);
    j->cpu = thread_cpu() - t0;
}
static void run_blocks_timed(void *arg) {
    const blocks_job *j = arg;
    if (j->mode == 0) {
        for (long q = j->first; q < j->last; q++)
            unroll_sgemm_prepacked_a(j->tB, j->M, j->K, 1.0f, j->P, j->B, j->ldb, j->edges[q], j->edges[q + 1], 0.0f,
                                     j->C, j->ldc);
    } else if (j->mode == 1 || j->mode == 3) {
        unroll_gemm_fused_b_packing = j->mode == 1;  // both threads run the same mode at once
        unroll_sgemm_prepacked_a_blocks(j->tB, j->M, j->K, 1.0f, j->P, j->B, j->ldb, j->edges + j->first,
                                        j->last - j->first, 0.0f, j->C, j->ldc);
    } else {
        long n0 = j->edges[j->first], n1 = j->edges[j->last];
        unroll_sgemm(j->tA, j->tB, j->M, n1 - n0, j->K, 1.0f, j->A, j->lda, j->tB ? j->B + n0 * j->ldb : j->B + n0,
                     j->ldb, 0.0f, j->C + n0, j->ldc);
    }
}
static void bench_blocks(int tA, int tB, long M, long N, long K) {
    long lda = tA ? M : K, ldb = tB ? K : N;
    float *A = aligned_alloc(64, sizeof(float) * (M * K + 16));
    float *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
    float *C[4];
    for (int m = 0; m < 4; m++) C[m] = aligned_alloc(64, sizeof(float) * (M * N + 16));
    float *P = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_a_size(M, K) + 16));
    for (long i = 0; i < M * K; i++) A[i] = frand();
    for (long i = 0; i < K * N; i++) B[i] = frand();
    unroll_sgemm_pack_a(tA, M, K, A, lda, 0, M, P);
    long units = (N + 15) / 16, blocks = units / 4 < 16 ? (units / 4 < 1 ? 1 : units / 4) : 16;
    long edges[17];
    for (long q = 0; q <= blocks; q++) edges[q] = 16 * (q * units / blocks) < N ? 16 * (q * units / blocks) : N;
    double flops = 2.0 * M * N * K, best1[4] = {1e30, 1e30, 1e30, 1e30}, best2[4] = {1e30, 1e30, 1e30, 1e30};
    double cpu1[4] = {1e30, 1e30, 1e30, 1e30}, cpu2[4] = {1e30, 1e30, 1e30, 1e30};
    for (int trial = 0; trial < 12; trial++)
        for (int m = 0; m < 4; m++) {
            blocks_job one = {m, tB, M, K, 0, blocks, ldb, N, P, B, A, tA, lda, edges, C[m], 0};
            double t0 = now();
            run_blocks(&one);
            double t = now() - t0;
            if (t < best1[m]) best1[m] = t;
            if (one.cpu < cpu1[m]) cpu1[m] = one.cpu;
            blocks_job halves[2] = {one, one};
            halves[0].last = halves[1].first = blocks / 2;
            gemm_job jobs[2] = {{0}, {0}};
            for (int h = 0; h < 2; h++) {
                jobs[h].fn = run_blocks;
                jobs[h].arg = &halves[h];
            }
            t0 = now();
            run2(jobs);
            t = now() - t0;
            if (t < best2[m]) best2[m] = t;
            double cpu = halves[0].cpu > halves[1].cpu ? halves[0].cpu : halves[1].cpu;
            if (cpu < cpu2[m]) cpu2[m] = cpu;
        }
    unroll_gemm_fused_b_packing = 1;
    int same = memcmp(C[0], C[1], sizeof(float) * M * N) == 0 && memcmp(C[0], C[3], sizeof(float) * M * N) == 0;
    if (!same) failures++;
    printf("  %s%s M=%4ld N=%4ld K=%5ld, %2ld blocks, GFLOP/s: 1T per block %5.1f | K outer %5.1f | sgemm %5.1f ;"
           " 2T per block %5.1f | K outer %5.1f | sgemm halves %5.1f%s\n",
           tA ? "T" : "N", tB ? "T" : "N", M, N, K, blocks, flops / best1[0] * 1e-9, flops / best1[1] * 1e-9,
           flops / best1[2] * 1e-9, flops / best2[0] * 1e-9, flops / best2[1] * 1e-9, flops / best2[2] * 1e-9,
           same ? "" : "  BITS DIFFER");
    printf("      by processor time (the slower thread for 2T): 1T %5.1f | %5.1f | %5.1f ; 2T %5.1f | %5.1f | %5.1f\n",
           flops / cpu1[0] * 1e-9, flops / cpu1[1] * 1e-9, flops / cpu1[2] * 1e-9, flops / cpu2[0] * 1e-9,
           flops / cpu2[1] * 1e-9, flops / cpu2[2] * 1e-9);
    printf("      K outer with B packed before the tiles (not in the first tile): 1T %5.1f, by processor time %5.1f ;"
           " 2T %5.1f, %5.1f\n", flops / best1[3] * 1e-9, flops / cpu1[3] * 1e-9, flops / best2[3] * 1e-9,
           flops / cpu2[3] * 1e-9);
    free(A); free(B); free(P);
    for (int m = 0; m < 4; m++) free(C[m]);
}

static void bench_gemm(int tA, int tB, long M, long N, long K) {
    long lda = tA ? M : K, ldb = tB ? K : N;
    float *A = aligned_alloc(64, sizeof(float) * (M * K + 16));
    float *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
    float *C = aligned_alloc(64, sizeof(float) * (M * N + 16));
    for (long i = 0; i < M * K; i++) A[i] = frand();
    for (long i = 0; i < K * N; i++) B[i] = frand();
    double flops = 2.0 * M * N * K;
    int reps = (int)(2e9 / flops);  // ~20 ms per timing at 100 GFLOP/s
    if (reps < 1) reps = 1;
    if (reps > 20000) reps = 20000;
    double best1 = 1e30, best2[4] = {1e30, 1e30, 1e30, 1e30};
    gemm_job jobs[4][2];
    for (int m = 0; m < 4; m++) split2m(m, tA, tB, M, N, K, A, lda, B, ldb, C, N, jobs[m]);
    for (int trial = 0; trial < 15; trial++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) unroll_sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        double t = (now() - t0) / reps;
        if (t < best1) best1 = t;
        for (int m = 0; m < 4; m++) {
            t0 = now();
            for (int r = 0; r < reps; r++) run2(jobs[m]);
            t = (now() - t0) / reps;
            if (t < best2[m]) best2[m] = t;
        }
    }
    double g1 = flops / best1 * 1e-9;
    printf("  %s%s M=%4ld N=%4ld K=%4ld : 1T %5.1f GFLOP/s %3.0f%% %8.1f us | 2T GFLOP/s: N16 %5.1f  N8 %5.1f  M6 %5.1f (best %3.0f%% of 2 cores)\n",
           tA ? "T" : "N", tB ? "T" : "N", M, N, K, g1, g1 / 1.03, best1 * 1e6, flops / best2[1] * 1e-9,
           flops / best2[2] * 1e-9, flops / best2[3] * 1e-9,
           flops / fmin(fmin(best2[1], best2[2]), best2[3]) * 1e-9 / 2.05);
    free(A); free(B); free(C);
}

/// One thread: unroll_sgemm against the product from pre-packed B (packing excluded: it is done once).
static void bench_prepacked(int tA, int tB, long M, long N, long K) {
    long lda = tA ? M : K, ldb = tB ? K : N;
    float *A = aligned_alloc(64, sizeof(float) * (M * K + 16));
    float *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
    float *C = aligned_alloc(64, sizeof(float) * (M * N + 16));
    float *P = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_b_size(K, N) + 16));
    for (long i = 0; i < M * K; i++) A[i] = frand();
    for (long i = 0; i < K * N; i++) B[i] = frand();
    double flops = 2.0 * M * N * K;
    int reps = (int)(2e9 / flops);
    if (reps < 1) reps = 1;
    if (reps > 20000) reps = 20000;
    double best_plain = 1e30, best_packed = 1e30, best_pack = 1e30;
    for (int trial = 0; trial < 15; trial++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) unroll_sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        double t = (now() - t0) / reps;
        if (t < best_plain) best_plain = t;
        t0 = now();
        unroll_sgemm_pack_b(tB, K, N, B, ldb, P);
        t = now() - t0;
        if (t < best_pack) best_pack = t;
        t0 = now();
        for (int r = 0; r < reps; r++) unroll_sgemm_prepacked_b(tA, M, N, K, 1.0f, A, lda, P, 0, N, 0.0f, C, N);
        t = (now() - t0) / reps;
        if (t < best_packed) best_packed = t;
    }
    printf("  %s%s M=%4ld N=%4ld K=%4ld : unroll_sgemm %5.1f GFLOP/s %7.1f us | prepacked %5.1f GFLOP/s %7.1f us | pack once %6.1f us\n",
           tA ? "T" : "N", tB ? "T" : "N", M, N, K, flops / best_plain * 1e-9, best_plain * 1e6,
           flops / best_packed * 1e-9, best_packed * 1e6, best_pack * 1e6);
    free(A); free(B); free(C); free(P);
}

/// One thread, B pre-packed: op(A) packed per call against its rows read in place (bits compared too).
static void bench_rows(long M, long N, long K) {
    float *A = aligned_alloc(64, sizeof(float) * (M * K + 16));
    float *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
    float *C1 = aligned_alloc(64, sizeof(float) * (M * N + 16)), *C2 = aligned_alloc(64, sizeof(float) * (M * N + 16));
    float *P = aligned_alloc(64, sizeof(float) * (unroll_sgemm_packed_b_size(K, N) + 16));
    for (long i = 0; i < M * K; i++) A[i] = frand();
    for (long i = 0; i < K * N; i++) B[i] = frand();
    unroll_sgemm_pack_b(0, K, N, B, N, P);
    double flops = 2.0 * M * N * K;
    int reps = (int)(2e7 / flops);  // ~0.2 ms windows, best of many: short enough to fit between preemptions
    if (reps < 1) reps = 1;
    double best[2] = {1e30, 1e30};
    for (int trial = 0; trial < 300; trial++)
        for (int mode = 0; mode < 2; mode++) {
            float *C = mode ? C2 : C1;
            double t0 = now();
            for (int r = 0; r < reps; r++)
                unroll_sgemm_prepacked_b_choosing(mode, 0, M, N, K, 1.0f, A, K, P, 0, N, 0.0f, C, N);
            double t = (now() - t0) / reps;
            if (t < best[mode]) best[mode] = t;
        }
    int same = memcmp(C1, C2, sizeof(float) * M * N) == 0;
    if (!same) failures++;
    printf("  M=%4ld N=%4ld K=%4ld : pack A %5.1f GFLOP/s %7.2f us | A in place %5.1f GFLOP/s %7.2f us (%+.1f%%)%s\n",
           M, N, K, flops / best[0] * 1e-9, best[0] * 1e6, flops / best[1] * 1e-9, best[1] * 1e6,
           (best[1] / best[0] - 1) * 100, same ? "" : "  BITS DIFFER");
    free(A); free(B); free(C1); free(C2); free(P);
}

static void bench_vmath_once(void);
static void bench_vmath(void) {
    if (!unroll_has_avx512()) { bench_vmath_once(); return; }
    printf("  AVX2:\n");
    unroll_kernels_avoid_avx512(1);
    bench_vmath_once();
    unroll_kernels_avoid_avx512(0);
    printf("  AVX-512F (same bits):\n");
    bench_vmath_once();
}

static void bench_vmath_once(void) {
    const long sizes[] = {4096, 204800};
    const char *names[] = {"exp", "tanh", "sigmoid"};
    vfun fs[3] = {unroll_vexp, unroll_vtanh, unroll_vsigmoid};
    for (int s = 0; s < 2; s++) {
        long n = sizes[s];
        float *x = aligned_alloc(64, sizeof(float) * n), *y = aligned_alloc(64, sizeof(float) * n);
        for (long i = 0; i < n; i++) x[i] = frand() * 10;
        for (int k = 0; k < 3; k++) {
            int reps = (int)(2e7 / n) + 1;
            double best = 1e30;
            for (int t = 0; t < 7; t++) {
                double t0 = now();
                for (int r = 0; r < reps; r++) fs[k](x, y, n);
                double dt = (now() - t0) / reps;
                if (dt < best) best = dt;
            }
            printf("  %-8s n=%7ld : %.3f ns/element\n", names[k], n, best / n * 1e9);
        }
        free(x); free(y);
    }
}

static void bench_all(const char *label) {
    printf("sgemm benchmarks (%s):\n", label);
    bench_gemm(0, 0, 128, 1600, 400);
    bench_gemm(1, 0, 400, 1600, 128);
    bench_gemm(0, 1, 128, 400, 1600);
    bench_gemm(1, 1, 128, 1600, 400);
    bench_gemm(0, 0, 16, 384, 128);
    bench_gemm(0, 0, 128, 1024, 256);
    bench_gemm(0, 0, 512, 512, 512);
    bench_gemm(0, 0, 1, 1600, 400);
    bench_gemm(0, 1, 1, 400, 1600);
    bench_gemm(0, 0, 13, 16, 1);
    printf("pre-packed B, one thread (recurrent products: h U and dG U^T):\n");
    bench_prepacked(0, 0, 32, 1024, 256);
    bench_prepacked(0, 1, 32, 256, 1024);
    bench_prepacked(0, 0, 128, 1600, 400);
    bench_prepacked(0, 1, 128, 400, 1600);
    bench_prepacked(0, 0, 16, 384, 128);
    bench_prepacked(0, 1, 16, 128, 384);
    bench_prepacked(0, 0, 32, 256, 128);
    bench_prepacked(0, 1, 32, 128, 256);
    bench_prepacked(0, 0, 13, 64, 16);
    printf("vmath benchmarks (%s):\n", label);
    bench_vmath();
}

int main(int argc, char **argv) {
    if (getenv("KB_UNPACKED_MAX_M")) unroll_gemm_unpacked_max_m = atol(getenv("KB_UNPACKED_MAX_M"));
    if (getenv("KB_FUSED_B_PACKING")) unroll_gemm_fused_b_packing = atoi(getenv("KB_FUSED_B_PACKING"));
    if (argc >= 2 && strcmp(argv[1], "vmath") == 0) {  // vmath timings only
        bench_vmath();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "hash") == 0) {  // bit patterns of results: compare builds (-O0 / -O2)
        long n = 1 << 20;
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
        vfun fs[3] = {unroll_vexp, unroll_vtanh, unroll_vsigmoid};
        for (int k = 0; k < 3; k++) {
            for (long i = 0; i < n; i++) x[i] = (float)(-110.0 + 220.0 * i / n);
            fs[k](x, y, n - 3);
            uint64_t h = 1469598103934665603ull;
            for (long i = 0; i < n - 3; i++) { uint32_t b; memcpy(&b, &y[i], 4); h = (h ^ b) * 1099511628211ull; }
            printf("vmath %d: %016llx\n", k, (unsigned long long)h);
        }
        const long shapes[][5] = {{0, 0, 128, 160, 400}, {1, 0, 40, 160, 128}, {0, 1, 128, 40, 300}, {1, 1, 50, 70, 90}, {0, 0, 13, 17, 19}};
        for (int q = 0; q < 5; q++) {
            int tA = (int)shapes[q][0], tB = (int)shapes[q][1];
            long M = shapes[q][2], N = shapes[q][3], K = shapes[q][4];
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C = malloc(sizeof(float) * M * N);
            for (long i = 0; i < M * K; i++) A[i] = frand();
            for (long i = 0; i < K * N; i++) B[i] = frand();
            for (long i = 0; i < M * N; i++) C[i] = frand();
            unroll_sgemm(tA, tB, M, N, K, 0.7f, A, tA ? M : K, B, tB ? K : N, 0.3f, C, N);
            uint64_t h = 1469598103934665603ull;
            for (long i = 0; i < M * N; i++) { uint32_t b; memcpy(&b, &C[i], 4); h = (h ^ b) * 1099511628211ull; }
            printf("sgemm %d: %016llx\n", q, (unsigned long long)h);
            free(A); free(B); free(C);
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "rows") == 0) {  // pre-packed B: A packed vs read in place, M N K triples
        if (argc >= 5) {
            for (int i = 2; i + 2 < argc; i += 3) bench_rows(atol(argv[i]), atol(argv[i + 1]), atol(argv[i + 2]));
        } else {
            const long shapes[][3] = {{16, 1024, 256}, {16, 256, 1024}, {64, 1600, 400}, {64, 400, 1600},
                                      {16, 128, 128}, {8, 384, 128}, {16, 384, 128}, {32, 1024, 256},
                                      {128, 1600, 400}};
            for (int q = 0; q < 9; q++) bench_rows(shapes[q][0], shapes[q][1], shapes[q][2]);
        }
        return failures ? 1 : 0;
    }
    if (argc >= 2 && strcmp(argv[1], "packa") == 0) {  // pre-packed A: tests, then packing times (tA M K triples)
        test_prepacked_a("default");
        if (argc >= 5) {
            for (int i = 2; i + 2 < argc; i += 3) bench_pack_a(atoi(argv[i]), atol(argv[i + 1]), atol(argv[i + 2]));
        } else {
            const long shapes[][3] = {{1, 400, 4096}, {1, 256, 2048}, {1, 128, 3200}, {1, 1600, 400},
                                      {0, 4096, 64},  {0, 400, 4096}};
            for (int q = 0; q < 6; q++) bench_pack_a((int)shapes[q][0], shapes[q][1], shapes[q][2]);
        }
        const long split[][5] = {{1, 0, 400, 1600, 4096}, {1, 0, 256, 1024, 2048}, {1, 0, 128, 256, 3200},
                                 {0, 0, 4096, 1600, 64}, {0, 1, 2048, 1024, 256}};
        if (getenv("KB_SPLIT")) {  // KB_SPLIT="tA tB M N K": that shape only
            long v[5] = {0};
            sscanf(getenv("KB_SPLIT"), "%ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4]);
            bench_split((int)v[0], (int)v[1], v[2], v[3], v[4]);
        } else {
            for (int q = 0; q < 5; q++)
                bench_split((int)split[q][0], (int)split[q][1], split[q][2], split[q][3], split[q][4]);
        }
        return failures ? 1 : 0;
    }
    if (argc >= 2 && strcmp(argv[1], "shared") == 0) {  // shared B: M1 M2 N K quadruples (default: LSTM gradients)
        if (argc >= 6) {
            for (int i = 2; i + 3 < argc; i += 4) bench_shared(atol(argv[i]), atol(argv[i + 1]), atol(argv[i + 2]), atol(argv[i + 3]));
        } else {
            bench_shared(64, 256, 1024, 2048);   // char-lstm: Xᵀ·D, Hᵀ·D and the bias gradient
            bench_shared(1, 400, 1600, 4096);    // seed-lstm
            bench_shared(8, 128, 384, 16000);    // gru-long
        }
        return failures ? 1 : 0;
    }
    if (argc >= 2 && strcmp(argv[1], "prepacked") == 0) {  // pre-packed B tests and timings only
        test_prepacked("default");
        for (int tB = 0; tB < 2; tB++) {
            bench_prepacked(0, tB, 32, tB ? 256 : 1024, tB ? 1024 : 256);
            bench_prepacked(0, tB, 128, tB ? 400 : 1600, tB ? 1600 : 400);
            bench_prepacked(0, tB, 16, tB ? 128 : 384, tB ? 384 : 128);
            bench_prepacked(0, tB, 32, tB ? 128 : 256, tB ? 256 : 128);
        }
        return failures ? 1 : 0;
    }
    if (argc >= 7 && strcmp(argv[1], "blocks") == 0) {  // ./kbench blocks tA tB M N K ...: K-outer column blocks
        pthread_create(&worker, NULL, worker_main, NULL);
        for (int i = 2; i + 4 < argc; i += 5)
            bench_blocks(atoi(argv[i]), atoi(argv[i + 1]), atol(argv[i + 2]), atol(argv[i + 3]), atol(argv[i + 4]));
        __atomic_store_n(&worker_quit, 1, __ATOMIC_RELEASE);
        pthread_join(worker, NULL);
        return failures ? 1 : 0;
    }
    if (argc >= 7 && strcmp(argv[1], "shape") == 0) {  // ./kbench shape tA tB M N K: one benchmark line
        pthread_create(&worker, NULL, worker_main, NULL);
        bench_gemm(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), atol(argv[5]), atol(argv[6]));
        __atomic_store_n(&worker_quit, 1, __ATOMIC_RELEASE);
        pthread_join(worker, NULL);
        return 0;
    }
    if (argc >= 7 && strcmp(argv[1], "one") == 0) {  // ./kbench one tA tB M N K [seconds]: loop for profiling
        int tA = atoi(argv[2]), tB = atoi(argv[3]);
        long M = atol(argv[4]), N = atol(argv[5]), K = atol(argv[6]);
        double secs = argc >= 8 ? atof(argv[7]) : 3.0;
        float *A = aligned_alloc(64, sizeof(float) * (M * K + 16)), *B = aligned_alloc(64, sizeof(float) * (K * N + 16));
        float *C = aligned_alloc(64, sizeof(float) * (M * N + 16));
        for (long i = 0; i < M * K + 16; i++) A[i] = frand();
        for (long i = 0; i < K * N + 16; i++) B[i] = frand();
        for (long i = 0; i < M * N + 16; i++) C[i] = 0;
        double best = 0, t0 = now();  // best of many ~20 ms windows (the machine is shared)
        while (now() - t0 < secs) {
            long calls = 0;
            double t1 = now();
            do {
                unroll_sgemm(tA, tB, M, N, K, 1.0f, A, tA ? M : K, B, tB ? K : N, 0.0f, C, N);
                calls++;
            } while (now() - t1 < 0.02);
            double g = 2.0 * M * N * K * calls / (now() - t1) * 1e-9;
            if (g > best) best = g;
        }
        printf("%.1f GFLOP/s\n", best);
        return 0;
    }
    int do_test = argc < 2 || strcmp(argv[1], "bench") != 0;
    int do_bench = argc < 2 || strcmp(argv[1], "test") != 0;
    int portable_too = argc >= 3 && strcmp(argv[2], "portable") == 0;
    pthread_create(&worker, NULL, worker_main, NULL);
    printf("unroll_has_avx2_fma() = %d\n", unroll_has_avx2_fma());
    if (do_test) {
        if (unroll_has_avx2_fma()) {
            test_gemm("avx2");
            test_one_row("avx2");
            test_prepacked("avx2");
            test_prepacked_outer("avx2");
            test_prepacked_a("avx2");
            unroll_gemm_unpacked_max_m = 0;  // force packing of B everywhere
            test_gemm("avx2 packed B");
            test_prepacked_a("avx2 packed B");  // B packed by the first tile over each panel, wherever it is not transposed
            unroll_gemm_fused_b_packing = 0;
            test_prepacked_a("avx2 packed B before the tiles");
            unroll_gemm_fused_b_packing = 1;
            test_stacked("avx2");
            unroll_gemm_unpacked_max_m = 100000;  // force reading B in place wherever allowed
            test_gemm("avx2 B in place");
            unroll_gemm_unpacked_max_m = -1;
            test_threads();
            if (unroll_has_avx512()) {
                unroll_kernels_avoid_avx512(1);
                test_vmath("avx2");
                unroll_kernels_avoid_avx512(0);
                test_vmath("avx-512f");
                test_vmath_avx512_bits();
            } else {
                test_vmath("avx2");
            }
        }
        unroll_kernels_force_portable(1);
        test_gemm("portable");
        test_one_row("portable");
        test_prepacked("portable");
        test_prepacked_outer("portable");
        test_prepacked_a("portable");
        test_vmath("portable");
        unroll_kernels_force_portable(0);
        printf(failures ? "%d FAILURES\n" : "all tests passed\n", failures);
    }
    if (do_bench) {
        bench_all(unroll_has_avx2_fma() ? "avx2" : "portable");
        if (portable_too) {
            unroll_kernels_force_portable(1);
            bench_all("portable");
            unroll_kernels_force_portable(0);
        }
    }
    __atomic_store_n(&worker_quit, 1, __ATOMIC_RELEASE);
    pthread_join(worker, NULL);
    return failures ? 1 : 0;
}
