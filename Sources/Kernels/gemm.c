// Single-precision GEMM, row-major, one thread per call (thread-safe).
//
// Blocked path (BLIS-style): op(B) is packed into 16-column panels (KC x NC block), op(A) into 6-row panels
// (MC x KC block), and a 6x16 register-blocked micro-kernel (12 ymm accumulators, 2 B vectors and a
// broadcast) computes each tile; R x 16 (R < 6) and R x 8 variants take the ragged last rows/columns.
// Transposes are absorbed by the packing routines (8x8 AVX transposes). KC and MC are split evenly
// (K = 600 -> 2 x 300). A non-transposed B is read in place instead of packed when M is small enough for
// its row stride (see in_place_max_m). Partial tiles go through a small aligned buffer. Packing buffers
// are per thread (thread-local, 64-byte aligned, grown on demand, freed when the thread exits). With B
// pre-packed (unroll_sgemm_prepacked_b) a small non-transposed A is read in place, rows lda apart.
//
// Column blocks from a pre-packed A (unroll_sgemm_prepacked_a_blocks, unroll_sgemm_stacked_b_blocks) run the K blocks
// outermost over all the blocks of a call, and the first tile over each panel of a non-transposed B packs it as it
// reads it (ukernel_packing_*), so the copy's loads overlap multiply-adds instead of running as a pass of their own.
//
// Skinny path (no packing): M == 1 with B not transposed (rows of B scaled and summed); B transposed with
// M <= 20, or N <= 24 (N <= 6 for a transposed A): dot products, 3 rows of op(A) x 4 columns of op(B) at a
// time. Tiny problems (M*N*K <= 8192) too.
//
// AVX2 + FMA code lives in functions marked target("avx2,fma") and is chosen at run time
// (unroll_kernels_use_avx2); the portable path uses the same blocking with plain C kernels. When compiled
// without optimisation (SwiftPM debug builds), inline-assembly copies of the micro-kernels keep the
// blocked path fast.
#include "Kernels.h"
#include "kernels_internal.h"

#include <pthread.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if UNROLL_X86
#include <immintrin.h>
#endif

#define MR 6
#define NR 16
#define KC_MAX 512   // a recurrent layer of 257-512 units sums K in one pass (see unroll_sgemm_max_single_pass_k)
#define MC_MAX 144   // multiple of MR
#define NC_MAX 2048  // multiple of NR

// ---------------------------------------------------------------------------------------------------------
// Thread-local packing workspace.

typedef struct {
    float *a, *b;
    size_t a_cap, b_cap;  // in floats
    float *whole_a;       // a whole packed op(A) (unroll_sgemm_packed_a_buffer), written by the caller's workers
    size_t whole_a_cap;
} workspace;

static _Thread_local workspace *tls_ws;
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_destroy(void *p) {
    workspace *w = (workspace *)p;
    if (!w) return;
    free(w->a);
    free(w->b);
    free(w->whole_a);
    free(w);
}

static void ws_make_key(void) { (void)pthread_key_create(&ws_key, ws_destroy); }

static float *alloc_floats(size_t n) {
    // Padding past the end: a margin for vector accesses near a buffer's end (packers keep within their panels).
    size_t bytes = ((n + 32) * sizeof(float) + 63) & ~(size_t)63;
    return (float *)aligned_alloc(64, bytes);
}

static workspace *thread_ws(void) {
    workspace *w = tls_ws;
    if (!w) {
        pthread_once(&ws_once, ws_make_key);
        w = (workspace *)calloc(1, sizeof(workspace));
        if (!w) return NULL;
        tls_ws = w;
        (void)pthread_setspecific(ws_key, w);
    }
    return w;
}

/// Makes *buffer hold at least `need` floats (reallocated when smaller; contents not kept) and returns it, or
/// NULL when the allocation failed.
static float *grow(float **buffer, size_t *capacity, size_t need) {
    if (*capacity < need) {
        free(*buffer);
        *buffer = alloc_floats(need);
        *capacity = *buffer ? need : 0;
    }
    return *buffer;
}

static workspace *get_ws(size_t a_need, size_t b_need) {
    workspace *w = thread_ws();
    if (!w) return NULL;
    grow(&w->a, &w->a_cap, a_need);
    grow(&w->b, &w->b_cap, b_need);
    if ((a_need && !w->a) || (b_need && !w->b)) return NULL;
    return w;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers shared by both paths.

/// C[M,N] = beta * C (beta == 0 writes zeros without reading C).
static void scale_c(long M, long N, float beta, float *C, long ldc) {
    if (beta == 1.0f) return;
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) {
            for (long j = 0; j < N; j++) c[j] = 0.0f;
        } else {
            for (long j = 0; j < N; j++) c[j] *= beta;
        }
    }
}

/// Rows 0 .. M of C[M,N] set to `row` (N floats), bit for bit: the initial C of a product with a row addend.
/// Inline loops, not memcpy: the blocked path calls it per tile, 6 rows of 16 floats, where a call per row cost
/// more than the copy.
static inline void spread_row(long M, long N, const float *restrict row, float *restrict C, long ldc) {
    for (long i = 0; i < M; i++) {
        float *restrict c = C + i * ldc;
        for (long j = 0; j < N; j++) c[j] = row[j];
    }
}

/// Writes an mr x nr corner of a 6x16 tile (row stride NR) into C: C = alpha * T + beta * C.
static void store_edge(long mr, long nr, const float *t, float *c, long ldc, float alpha, float beta) {
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = t + i * NR;
        if (beta == 0.0f) {
            for (long j = 0; j < nr; j++) ci[j] = alpha * ti[j];
        } else {
            for (long j = 0; j < nr; j++) ci[j] = alpha * ti[j] + beta * ci[j];
        }
    }
}

/// Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into MR-row panels: panel q holds dst[q*MR*kc + p*MR + r].
static void pack_a_portable(int transA, const float *A, long lda, long i0, long mc, long p0, long kc,
                            float *dst) {
    for (long ip = 0; ip < mc; ip += MR) {
        long m = mc - ip < MR ? mc - ip : MR;
        float *d = dst + ip * kc;
        if (!transA) {
            const float *a = A + (i0 + ip) * lda + p0;
            for (long p = 0; p < kc; p++) {
                long r = 0;
                for (; r < m; r++) d[p * MR + r] = a[r * lda + p];
                for (; r < MR; r++) d[p * MR + r] = 0.0f;
            }
        } else {
            const float *a = A + p0 * lda + i0 + ip;
            for (long p = 0; p < kc; p++) {
                long r = 0;
                for (; r < m; r++) d[p * MR + r] = a[p * lda + r];
                for (; r < MR; r++) d[p * MR + r] = 0.0f;
            }
        }
    }
}

/// Packs op(B)[p0 .. p0+kc, j0 .. j0+nc] into NR-column panels: panel q holds dst[q*NR*kc + p*NR + c].
static void pack_b_portable(int transB, const float *B, long ldb, long p0, long kc, long j0, long nc,
                            float *dst) {
    for (long jp = 0; jp < nc; jp += NR) {
        long n = nc - jp < NR ? nc - jp : NR;
        float *d = dst + jp * kc;
        if (!transB) {
            const float *b = B + p0 * ldb + j0 + jp;
            for (long p = 0; p < kc; p++) {
                long c = 0;
                for (; c < n; c++) d[p * NR + c] = b[p * ldb + c];
                for (; c < NR; c++) d[p * NR + c] = 0.0f;
            }
        } else {
            const float *b = B + (j0 + jp) * ldb + p0;
            for (long p = 0; p < kc; p++) {
                long c = 0;
                for (; c < n; c++) d[p * NR + c] = b[c * ldb + p];
                for (; c < NR; c++) d[p * NR + c] = 0.0f;
            }
        }
    }
}

/// Portable R x 16 micro-kernel (R <= 6): C = alpha * Apanel * Bpanel + beta * C (beta == 0: C not read).
static inline void ukernel_portable(int R, long kc, const float *a, const float *b, long ldbk, float *c,
                                    long ldc, float alpha, float beta) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (long p = 0; p < kc; p++) {
        const float *bp = b + p * ldbk;
        const float *ap = a + p * MR;
        for (int i = 0; i < MR; i++) {
            float ai = ap[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * bp[j];
        }
    }
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < NR; j++) ci[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < NR; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
        }
    }
}

#define DEFINE_UKERNEL_PORTABLE(R)                                                                         \
    static void ukernel_portable_##R(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, \
                                     float alpha, float beta) {                                           \
        ukernel_portable(R, kc, a, b, ldbk, c, ldc, alpha, beta);                                         \
    }
DEFINE_UKERNEL_PORTABLE(1)
DEFINE_UKERNEL_PORTABLE(2)
DEFINE_UKERNEL_PORTABLE(3)
DEFINE_UKERNEL_PORTABLE(4)
DEFINE_UKERNEL_PORTABLE(5)
DEFINE_UKERNEL_PORTABLE(6)

/// C = alpha * T + row for an mr x nr corner of a tile: the portable kernels' beta = 1 store with `row` for C.
static void store_row_portable(long mr, long nr, const float *t, const float *row, float *c, long ldc, float alpha) {
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = t + i * NR;
        for (long j = 0; j < nr; j++) ci[j] = alpha * ti[j] + row[j];
    }
}

/// Stores an mr x nr corner of a tile as alpha * T + a, a = x_i w_j (+ row_j) rounded as a K = 1 product (from zero)
/// stored onto `row` (or alone), and T added to it as a kernel's beta = 1 store: the bits of that product followed by
/// this one accumulated into it. x: one value per row, ldx apart; w and row: nr floats (row may be NULL).
static void store_outer_portable(long mr, long nr, const float *t, const float *x, long ldx, const float *w,
                                 const float *row, float *c, long ldc, float alpha) {
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = t + i * NR;
        for (long j = 0; j < nr; j++) {
            float a = 0.0f + x[i * ldx] * w[j];
            if (row) a = 1.0f * a + row[j];
            ci[j] = alpha * ti[j] + 1.0f * a;
        }
    }
}

/// Micro-kernel: (kc, A panel, B panel, B row stride, C, ldc, alpha, beta).
typedef void (*ukernel_t)(long, const float *, const float *, long, float *, long, float, float);
typedef void (*pack_a_t)(int, const float *, long, long, long, long, long, float *);
typedef void (*pack_b_t)(int, const float *, long, long, long, long, long, float *);
typedef void (*store_t)(long, long, const float *, float *, long, float, float);
/// Stores an mr x nr corner of a tile (row stride NR) as alpha * T + row, rounded as a kernel's beta = 1 store.
typedef void (*store_row_t)(long, long, const float *, const float *, float *, long, float);
/// An outer-product addend of a product: x (one value per row of C, ldx apart) times w (one per column).
typedef struct {
    const float *x;
    long ldx;
    const float *w;
} outer_addend;
typedef void (*store_outer_t)(long, long, const float *, const float *, long, const float *, const float *, float *, long,
                              float);
/// Micro-kernel reading op(A) in place: (kc, A rows, lda, B panel, B row stride, C, ldc, alpha, beta).
typedef void (*ukernel_rows_t)(long, const float *, long, const float *, long, float *, long, float, float);
/// Micro-kernel that packs the 16-column panel of B it reads: (kc, A panel, B rows ldb apart, ldb, packed panel
/// (kc x 16, 32-byte aligned) to write, C, ldc, alpha, beta).
typedef void (*ukernel_packing_t)(long, const float *, const float *, long, float *, float *, long, float, float);

/// One implementation of the blocked algorithm: micro-kernels by row count (index 1..MR) and packers.
typedef struct {
    ukernel_t kern[MR + 1];
    ukernel_t kern8[MR + 1];  // 8-column variants (optional: NULL entries fall back to kern)
    pack_a_t pack_a;
    pack_b_t pack_b;
    store_t store_edge;  // rounds like the full-tile kernels, so a column's result does not depend on its tile
    ukernel_rows_t rows[MR + 1];  // same as kern, A read in place (optional: NULL means pack A)
    store_row_t store_row;  // a tile onto a row addend, rounded as store_edge with beta = 1 onto that row
    ukernel_packing_t packing[MR + 1];  // same as kern, packing B as it goes (optional: NULL means pack B first)
    store_outer_t store_outer;  // a tile onto an outer-product addend x wᵀ (+ row), rounded as store_row then beta = 1
} kernel_set;

static const kernel_set portable_set = {
    {NULL, ukernel_portable_1, ukernel_portable_2, ukernel_portable_3, ukernel_portable_4, ukernel_portable_5,
     ukernel_portable_6},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    pack_a_portable, pack_b_portable, store_edge, {NULL, NULL, NULL, NULL, NULL, NULL, NULL}, store_row_portable,
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL}, store_outer_portable};

/// Direct (unpacked) GEMM for small problems, portable. Requires K >= 1.
/// transB == 0: each C row is built from scaled rows of B (unit stride, vectorisable); else dot products.
static void direct_portable(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                            long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    long sai = transA ? 1 : lda, sap = transA ? lda : 1;  // op(A)[i,p] = A[i*sai + p*sap]
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        const float *a = A + i * sai;
        if (!transB && beta == 0.0f) {
            for (long j = 0; j < N; j++) c[j] = 0.0f;
            for (long p = 0; p < K; p++) {
                float ap = alpha * a[p * sap];
                const float *b = B + p * ldb;
                for (long j = 0; j < N; j++) c[j] += ap * b[j];
            }
        } else if (!transB) {
            // The products summed apart from C, then added once: with alpha = beta = 1 that is fl(acc + c), the
            // bits of a beta = 0 product added to C afterwards (a plan runs `a + x·W` that way).
            for (long j0 = 0; j0 < N; j0 += 64) {
                long nj = N - j0 < 64 ? N - j0 : 64;
                float acc[64];
                for (long j = 0; j < nj; j++) acc[j] = 0.0f;
                for (long p = 0; p < K; p++) {
                    float ap = alpha * a[p * sap];
                    const float *b = B + p * ldb + j0;
                    for (long j = 0; j < nj; j++) acc[j] += ap * b[j];
                }
                for (long j = 0; j < nj; j++) c[j0 + j] = acc[j] + beta * c[j0 + j];
            }
        } else {
            for (long j = 0; j < N; j++) {
                const float *b = B + j * ldb;
                float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 partial sums: vectorisable when sap == 1
                long p = 0;
                if (sap == 1)
                    for (; p + 8 <= K; p += 8)
                        for (int q = 0; q < 8; q++) part[q] += a[p + q] * b[p + q];
                float s = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
                for (; p < K; p++) s += a[p * sap] * b[p];
                c[j] = beta == 0.0f ? alpha * s : alpha * s + beta * c[j];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// AVX2 + FMA path.

#if UNROLL_X86

#define TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7)                                      \
    do {                                                                                  \
        __m256 t0_ = _mm256_unpacklo_ps(r0, r1), t1_ = _mm256_unpackhi_ps(r0, r1);        \
        __m256 t2_ = _mm256_unpacklo_ps(r2, r3), t3_ = _mm256_unpackhi_ps(r2, r3);        \
        __m256 t4_ = _mm256_unpacklo_ps(r4, r5), t5_ = _mm256_unpackhi_ps(r4, r5);        \
        __m256 t6_ = _mm256_unpacklo_ps(r6, r7), t7_ = _mm256_unpackhi_ps(r6, r7);        \
        __m256 s0_ = _mm256_shuffle_ps(t0_, t2_, 0x44), s1_ = _mm256_shuffle_ps(t0_, t2_, 0xEE); \
        __m256 s2_ = _mm256_shuffle_ps(t1_, t3_, 0x44), s3_ = _mm256_shuffle_ps(t1_, t3_, 0xEE); \
        __m256 s4_ = _mm256_shuffle_ps(t4_, t6_, 0x44), s5_ = _mm256_shuffle_ps(t4_, t6_, 0xEE); \
        __m256 s6_ = _mm256_shuffle_ps(t5_, t7_, 0x44), s7_ = _mm256_shuffle_ps(t5_, t7_, 0xEE); \
        r0 = _mm256_permute2f128_ps(s0_, s4_, 0x20);                                      \
        r1 = _mm256_permute2f128_ps(s1_, s5_, 0x20);                                      \
        r2 = _mm256_permute2f128_ps(s2_, s6_, 0x20);                                      \
        r3 = _mm256_permute2f128_ps(s3_, s7_, 0x20);                                      \
        r4 = _mm256_permute2f128_ps(s0_, s4_, 0x31);                                      \
        r5 = _mm256_permute2f128_ps(s1_, s5_, 0x31);                                      \
        r6 = _mm256_permute2f128_ps(s2_, s6_, 0x31);                                      \
        r7 = _mm256_permute2f128_ps(s3_, s7_, 0x31);                                      \
    } while (0)

/// The transposed case of pack_a_avx2 for rows [0, mc) of op(A) (the columns a[0 .. mc) of kc rows of A, lda
/// apart): the full 6-row panels, then the ragged rest. Panel row p is 6 consecutive floats of A's row p, so
/// packing is a copy; it goes 8 rows of A at a time across all panels, which reads each row's cache lines once
/// (panel by panel, every panel touched a line of each of the kc rows again).
UNROLL_AVX2
static void pack_at_avx2(const float *a, long lda, long mc, long kc, float *dst) {
    long full = mc / MR * MR;
    for (long p = 0; p < kc; p += 8) {
        long rows = kc - p < 8 ? kc - p : 8;
        for (long ip = 0; ip < full; ip += MR) {
            const float *s = a + p * lda + ip;
            float *o = dst + ip * kc + p * MR;
            for (long r = 0; r < rows; r++) {
                _mm_storeu_ps(o + r * MR, _mm_loadu_ps(s + r * lda));
                _mm_storel_pi((__m64 *)(o + r * MR + 4), _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(s + r * lda + 4)));
            }
        }
    }
    if (full < mc) pack_a_portable(1, a, lda, full, mc - full, 0, kc, dst + full * kc);
}

UNROLL_AVX2
static void pack_a_avx2(int transA, const float *A, long lda, long i0, long mc, long p0, long kc,
                        float *dst) {
    if (transA) {
        pack_at_avx2(A + p0 * lda + i0, lda, mc, kc, dst);
        return;
    }
    for (long ip = 0; ip < mc; ip += MR) {
        long m = mc - ip < MR ? mc - ip : MR;
        float *d = dst + ip * kc;
        if (!transA && m == MR) {
            const float *a = A + (i0 + ip) * lda + p0;
            long p = 0;
            // 6 rows x 8 columns -> 8 rows of 6 (stored with overlapping 8-wide stores, in increasing order).
            for (; p + 8 <= kc; p += 8) {
                __m256 r0 = _mm256_loadu_ps(a + 0 * lda + p), r1 = _mm256_loadu_ps(a + 1 * lda + p);
                __m256 r2 = _mm256_loadu_ps(a + 2 * lda + p), r3 = _mm256_loadu_ps(a + 3 * lda + p);
                __m256 r4 = _mm256_loadu_ps(a + 4 * lda + p), r5 = _mm256_loadu_ps(a + 5 * lda + p);
                __m256 r6 = _mm256_setzero_ps(), r7 = _mm256_setzero_ps();
                TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
                float *o = d + p * MR;
                _mm256_storeu_ps(o + 0 * MR, r0);
                _mm256_storeu_ps(o + 1 * MR, r1);
                _mm256_storeu_ps(o + 2 * MR, r2);
                _mm256_storeu_ps(o + 3 * MR, r3);
                _mm256_storeu_ps(o + 4 * MR, r4);
                _mm256_storeu_ps(o + 5 * MR, r5);
                _mm256_storeu_ps(o + 6 * MR, r6);
                if (p + 8 < kc) {
                    _mm256_storeu_ps(o + 7 * MR, r7);  // spills 2 floats into the next slot: rewritten next
                } else {
                    // The panel's last row: nothing past it is written, so threads can pack neighbouring
                    // panels of one buffer at the same time (unroll_sgemm_pack_a).
                    _mm_storeu_ps(o + 7 * MR, _mm256_castps256_ps128(r7));
                    _mm_storel_pi((__m64 *)(o + 7 * MR + 4), _mm256_extractf128_ps(r7, 1));
                }
            }
            for (; p < kc; p++)
                for (long r = 0; r < MR; r++) d[p * MR + r] = a[r * lda + p];
        } else {
            pack_a_portable(transA, A, lda, i0 + ip, m, p0, kc, d);
        }
    }
}

UNROLL_AVX2
static void pack_b_avx2(int transB, const float *B, long ldb, long p0, long kc, long j0, long nc,
                        float *dst) {
    if (!transB) {
        // Row blocks of 4 across all panels: 4 sequential read streams, 256-byte contiguous writes.
        long nfull = nc / NR * NR;
        for (long p = 0; p < kc; p += 4) {
            long pr = kc - p < 4 ? kc - p : 4;
            const float *b = B + (p0 + p) * ldb + j0;
            for (long jp = 0; jp < nfull; jp += NR) {
                float *d = dst + jp * kc + p * NR;
                for (long r = 0; r < pr; r++) {
                    _mm256_store_ps(d + r * NR, _mm256_loadu_ps(b + r * ldb + jp));
                    _mm256_store_ps(d + r * NR + 8, _mm256_loadu_ps(b + r * ldb + jp + 8));
                }
            }
        }
        if (nfull < nc) pack_b_portable(0, B, ldb, p0, kc, j0 + nfull, nc - nfull, dst + nfull * kc);
        return;
    }
    // Transposed: 16 rows of B (8 at a time) x 8 consecutive k -> 8 x 16 through two 8x8 transposes.
    for (long jp = 0; jp < nc; jp += NR) {
        long n = nc - jp < NR ? nc - jp : NR;
        float *d = dst + jp * kc;
        const float *b = B + (j0 + jp) * ldb + p0;
        for (int h = 0; h < 2; h++) {
            long nh = n - 8 * h;  // rows of B (columns of the panel) in this half
            float *dh = d + 8 * h;
            const float *bh = b + (long)h * 8 * ldb;
            if (nh <= 0) {
                for (long p = 0; p < kc; p++) _mm256_store_ps(dh + p * NR, _mm256_setzero_ps());
                continue;
            }
            long p = 0;
            if (nh >= 8) {
                for (; p + 8 <= kc; p += 8) {
                    const float *s = bh + p;
                    __m256 r0 = _mm256_loadu_ps(s + 0 * ldb), r1 = _mm256_loadu_ps(s + 1 * ldb);
                    __m256 r2 = _mm256_loadu_ps(s + 2 * ldb), r3 = _mm256_loadu_ps(s + 3 * ldb);
                    __m256 r4 = _mm256_loadu_ps(s + 4 * ldb), r5 = _mm256_loadu_ps(s + 5 * ldb);
                    __m256 r6 = _mm256_loadu_ps(s + 6 * ldb), r7 = _mm256_loadu_ps(s + 7 * ldb);
                    TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
                    float *o = dh + p * NR;
                    _mm256_store_ps(o + 0 * NR, r0);
                    _mm256_store_ps(o + 1 * NR, r1);
                    _mm256_store_ps(o + 2 * NR, r2);
                    _mm256_store_ps(o + 3 * NR, r3);
                    _mm256_store_ps(o + 4 * NR, r4);
                    _mm256_store_ps(o + 5 * NR, r5);
                    _mm256_store_ps(o + 6 * NR, r6);
                    _mm256_store_ps(o + 7 * NR, r7);
                }
            }
            for (; p < kc; p++) {
                long c = 0;
                for (; c < nh && c < 8; c++) dh[p * NR + c] = bh[c * ldb + p];
                for (; c < 8; c++) dh[p * NR + c] = 0.0f;
            }
        }
    }
}

/// C = fma(alpha, T, row) for an mr x nr corner of a tile: the AVX2 kernels' beta = 1 store with `row` for C. The
/// tile is in L1 and C is only written: spreading the row into C for the kernel to load had each 32-byte load wait
/// for two 16-byte stores to a line not yet in cache (1.5x the time of a separate spread pass for K = 8).
UNROLL_AVX2
static void store_row_avx2(long mr, long nr, const float *t, const float *row, float *c, long ldc, float alpha) {
    __m256 va = _mm256_set1_ps(alpha);
    if (nr == NR) {
        __m256 r0 = _mm256_loadu_ps(row), r1 = _mm256_loadu_ps(row + 8);
        for (long i = 0; i < mr; i++) {
            _mm256_storeu_ps(c + i * ldc, _mm256_fmadd_ps(va, _mm256_load_ps(t + i * NR), r0));
            _mm256_storeu_ps(c + i * ldc + 8, _mm256_fmadd_ps(va, _mm256_load_ps(t + i * NR + 8), r1));
        }
        return;
    }
    __m128 vs = _mm_set_ss(alpha);
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = t + i * NR;
        for (long j = 0; j < nr; j++) ci[j] = _mm_cvtss_f32(_mm_fmadd_ss(vs, _mm_set_ss(ti[j]), _mm_set_ss(row[j])));
    }
}

/// store_outer_portable with the AVX2 kernels' rounding: a = fma(x_i, w_j, 0) (a K = 1 tile from zero), then
/// fma(1, a, row_j) (store_row), then fma(alpha, t, a) (a beta = 1 store onto it).
UNROLL_AVX2
static void store_outer_avx2(long mr, long nr, const float *t, const float *x, long ldx, const float *w,
                             const float *row, float *c, long ldc, float alpha) {
    __m256 va = _mm256_set1_ps(alpha), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    if (nr == NR) {
        __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        __m256 r0 = row ? _mm256_loadu_ps(row) : zero, r1 = row ? _mm256_loadu_ps(row + 8) : zero;
        for (long i = 0; i < mr; i++) {
            __m256 xi = _mm256_set1_ps(x[i * ldx]);
            __m256 a0 = _mm256_fmadd_ps(xi, w0, zero), a1 = _mm256_fmadd_ps(xi, w1, zero);
            if (row) {
                a0 = _mm256_fmadd_ps(one, a0, r0);
                a1 = _mm256_fmadd_ps(one, a1, r1);
            }
            _mm256_storeu_ps(c + i * ldc, _mm256_fmadd_ps(va, _mm256_load_ps(t + i * NR), a0));
            _mm256_storeu_ps(c + i * ldc + 8, _mm256_fmadd_ps(va, _mm256_load_ps(t + i * NR + 8), a1));
        }
        return;
    }
    __m128 vs = _mm_set_ss(alpha), one1 = _mm_set_ss(1.0f), zero1 = _mm_setzero_ps();
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = t + i * NR;
        __m128 xi = _mm_set_ss(x[i * ldx]);
        for (long j = 0; j < nr; j++) {
            __m128 a = _mm_fmadd_ss(xi, _mm_set_ss(w[j]), zero1);
            if (row) a = _mm_fmadd_ss(one1, a, _mm_set_ss(row[j]));
            ci[j] = _mm_cvtss_f32(_mm_fmadd_ss(vs, _mm_set_ss(ti[j]), a));
        }
    }
}

/// store_edge with the AVX2 kernels' rounding: alpha * t, or fma(alpha, t, beta * c).
UNROLL_AVX2
static void store_edge_avx2(long mr, long nr, const float *t, float *c, long ldc, float alpha, float beta) {
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = t + i * NR;
        if (beta == 0.0f) {
            for (long j = 0; j < nr; j++) ci[j] = alpha * ti[j];
        } else {
            __m128 va = _mm_set_ss(alpha);
            for (long j = 0; j < nr; j++)
                ci[j] = _mm_cvtss_f32(_mm_fmadd_ss(va, _mm_set_ss(ti[j]), _mm_set_ss(beta * ci[j])));
        }
    }
}

// Micro-kernels: R x 16 tile (R = 1..6 rows of the packed A panel; R = 6 is the main kernel) with
// 2R ymm accumulators. B rows are `ldbk` floats apart: NR for a packed panel, ldb when B is read in place.
#define UK_ROW(r, off)                                                                    \
    if (UK_R > r) {                                                                        \
        __m256 av = _mm256_broadcast_ss(a + (off) * ask + r * asr);                       \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                       \
        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                       \
    }
#define UK_STEP(off, boff)                                                                \
    do {                                                                                  \
        __m256 b0 = _mm256_loadu_ps(b + (boff)), b1 = _mm256_loadu_ps(b + (boff) + 8);    \
        if (UK_PACKING) {                                                                 \
            _mm256_store_ps(bp + (off) * NR, b0);                                         \
            _mm256_store_ps(bp + (off) * NR + 8, b1);                                     \
        }                                                                                 \
        UK_ROW(0, off) UK_ROW(1, off) UK_ROW(2, off) UK_ROW(3, off) UK_ROW(4, off) UK_ROW(5, off) \
    } while (0)
#define UK_STORE_ROW(r)                                                                   \
    if (UK_R > r) {                                                                        \
        float *ci = c + (r) * ldc;                                                        \
        if (beta == 0.0f) {                                                               \
            _mm256_storeu_ps(ci, _mm256_mul_ps(va, c##r##0));                             \
            _mm256_storeu_ps(ci + 8, _mm256_mul_ps(va, c##r##1));                         \
        } else {                                                                          \
            _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, c##r##0, _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));         \
            _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, c##r##1, _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)))); \
        }                                                                                 \
    }

/// Body of the R x 16 kernels: op(A)[r, p] is at a[p * ask + r * asr] (a packed panel: ask = MR, asr = 1;
/// rows read in place: ask = 1, asr = lda). Every element is one fma chain over p from zero, so both give the
/// same bits. With UK_PACKING the rows of B it reads are also stored, 16 floats each, at bp.
#define UKERNEL_BODY(R)                                                                   \
        enum { UK_R = R };                                                                \
        __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();                      \
        __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();                      \
        __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();                      \
        __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();                      \
        __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();                      \
        __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();                      \
        for (int i = 0; i < UK_R; i++) {                                                  \
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);                       \
            _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);                  \
        }                                                                                 \
        long k = kc;                                                                      \
        while (k >= 4) {                                                                  \
            UK_STEP(0, 0);                                                                \
            UK_STEP(1, ldbk);                                                             \
            UK_STEP(2, 2 * ldbk);                                                         \
            UK_STEP(3, 3 * ldbk);                                                         \
            a += 4 * ask;                                                                 \
            b += 4 * ldbk;                                                                \
            if (UK_PACKING) bp += 4 * NR;                                                 \
            k -= 4;                                                                       \
        }                                                                                 \
        while (k > 0) {                                                                   \
            UK_STEP(0, 0);                                                                \
            a += ask;                                                                     \
            b += ldbk;                                                                    \
            if (UK_PACKING) bp += NR;                                                     \
            k--;                                                                          \
        }                                                                                 \
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);                     \
        UK_STORE_ROW(0) UK_STORE_ROW(1) UK_STORE_ROW(2) UK_STORE_ROW(3) UK_STORE_ROW(4) UK_STORE_ROW(5) \
        (void)c01; (void)c11; (void)c21; (void)c31; (void)c41; (void)c51;                 \
        (void)c00; (void)c10; (void)c20; (void)c30; (void)c40; (void)c50;

/// C[R,16] = alpha * A(R rows of a 6 x kc panel) * B(kc x 16, rows ldbk apart) + beta * C (beta 0: not read).
#define DEFINE_UKERNEL(R)                                                                 \
    UNROLL_AVX2 __attribute__((unused)) static void ukernel_avx2_##R(long kc, const float *a, const float *b, long ldbk, float *c, \
                                             long ldc, float alpha, float beta) { \
        enum { ask = MR, asr = 1, UK_PACKING = 0 };                                       \
        float *bp = NULL;                                                                 \
        UKERNEL_BODY(R)                                                                   \
        (void)bp;                                                                         \
    }

/// The same, also storing the rows of B it reads (ldbk apart: B in place) as a packed kc x 16 panel at bp, so the
/// first tile over a panel of B packs it for the others (packing's loads overlap the tile's multiply-adds).
#define DEFINE_UKERNEL_PACKING(R)                                                         \
    UNROLL_AVX2 __attribute__((unused)) static void ukernel_packing_avx2_##R(long kc, const float *a, const float *b, long ldbk, float *bp, \
                                                     float *c, long ldc, float alpha, float beta) { \
        enum { ask = MR, asr = 1, UK_PACKING = 1 };                                       \
        UKERNEL_BODY(R)                                                                   \
    }

/// The same with op(A) read in place: R rows of a row-major A, lda floats apart (no packing of A).
#define DEFINE_UKERNEL_ROWS(R)                                                            \
    UNROLL_AVX2 static void ukernel_rows_avx2_##R(long kc, const float *a, long lda, const float *b, long ldbk, \
                                                  float *c, long ldc, float alpha, float beta) { \
        const long ask = 1, asr = lda;                                                    \
        enum { UK_PACKING = 0 };                                                          \
        float *bp = NULL;                                                                 \
        UKERNEL_BODY(R)                                                                   \
        (void)bp;                                                                         \
    }

DEFINE_UKERNEL(1)
DEFINE_UKERNEL(2)
DEFINE_UKERNEL(3)
DEFINE_UKERNEL(4)
DEFINE_UKERNEL(5)
DEFINE_UKERNEL(6)
DEFINE_UKERNEL_ROWS(1)
DEFINE_UKERNEL_ROWS(2)
DEFINE_UKERNEL_ROWS(3)
DEFINE_UKERNEL_ROWS(4)
DEFINE_UKERNEL_ROWS(5)
DEFINE_UKERNEL_ROWS(6)
DEFINE_UKERNEL_PACKING(1)
DEFINE_UKERNEL_PACKING(2)
DEFINE_UKERNEL_PACKING(3)
DEFINE_UKERNEL_PACKING(4)
DEFINE_UKERNEL_PACKING(5)
DEFINE_UKERNEL_PACKING(6)


UNROLL_AVX2
static inline __m256i tail_mask(long n) {  // lanes 0 .. n-1 set, 0 <= n <= 8
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - n));
}

UNROLL_AVX2
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Direct GEMM with transB == 0: each C row is accumulated as sum_p op(A)[i,p] * B[p,:]. Requires K >= 1.
UNROLL_AVX2
static void direct_nn_avx2(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                           const float *B, long ldb, float beta, float *C, long ldc) {
    long sai = transA ? 1 : lda, sap = transA ? lda : 1;
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (long i = 0; i < M; i++) {
        const float *ai = A + i * sai;
        float *c = C + i * ldc;
        long j = 0;
        for (; j + 32 <= N; j += 32) {
            __m256 x0 = _mm256_setzero_ps(), x1 = _mm256_setzero_ps();
            __m256 x2 = _mm256_setzero_ps(), x3 = _mm256_setzero_ps();
            const float *b = B + j;
            for (long p = 0; p < K; p++, b += ldb) {
                __m256 av = _mm256_set1_ps(ai[p * sap]);
                x0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b), x0);
                x1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 8), x1);
                x2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 16), x2);
                x3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 24), x3);
            }
            if (beta == 0.0f) {
                _mm256_storeu_ps(c + j, _mm256_mul_ps(va, x0));
                _mm256_storeu_ps(c + j + 8, _mm256_mul_ps(va, x1));
                _mm256_storeu_ps(c + j + 16, _mm256_mul_ps(va, x2));
                _mm256_storeu_ps(c + j + 24, _mm256_mul_ps(va, x3));
            } else {
                _mm256_storeu_ps(c + j, _mm256_fmadd_ps(va, x0, _mm256_mul_ps(vb, _mm256_loadu_ps(c + j))));
                _mm256_storeu_ps(c + j + 8,
                                 _mm256_fmadd_ps(va, x1, _mm256_mul_ps(vb, _mm256_loadu_ps(c + j + 8))));
                _mm256_storeu_ps(c + j + 16,
                                 _mm256_fmadd_ps(va, x2, _mm256_mul_ps(vb, _mm256_loadu_ps(c + j + 16))));
                _mm256_storeu_ps(c + j + 24,
                                 _mm256_fmadd_ps(va, x3, _mm256_mul_ps(vb, _mm256_loadu_ps(c + j + 24))));
            }
        }
        for (; j + 8 <= N; j += 8) {
            __m256 x0 = _mm256_setzero_ps(), x1 = _mm256_setzero_ps();
            const float *b = B + j;
            long p = 0;
            for (; p + 2 <= K; p += 2, b += 2 * ldb) {
                x0 = _mm256_fmadd_ps(_mm256_set1_ps(ai[p * sap]), _mm256_loadu_ps(b), x0);
                x1 = _mm256_fmadd_ps(_mm256_set1_ps(ai[(p + 1) * sap]), _mm256_loadu_ps(b + ldb), x1);
            }
            if (p < K) x0 = _mm256_fmadd_ps(_mm256_set1_ps(ai[p * sap]), _mm256_loadu_ps(b), x0);
            __m256 r = _mm256_mul_ps(va, _mm256_add_ps(x0, x1));
            if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + j), r);
            _mm256_storeu_ps(c + j, r);
        }
        if (j < N) {
            __m256i mask = tail_mask(N - j);
            __m256 x0 = _mm256_setzero_ps(), x1 = _mm256_setzero_ps();
            const float *b = B + j;
            long p = 0;
            for (; p + 2 <= K; p += 2, b += 2 * ldb) {
                x0 = _mm256_fmadd_ps(_mm256_set1_ps(ai[p * sap]), _mm256_maskload_ps(b, mask), x0);
                x1 = _mm256_fmadd_ps(_mm256_set1_ps(ai[(p + 1) * sap]), _mm256_maskload_ps(b + ldb, mask), x1);
            }
            if (p < K) x0 = _mm256_fmadd_ps(_mm256_set1_ps(ai[p * sap]), _mm256_maskload_ps(b, mask), x0);
            x0 = _mm256_add_ps(x0, x1);
            __m256 r = _mm256_mul_ps(va, x0);
            if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + j, mask), r);
            _mm256_maskstore_ps(c + j, mask, r);
        }
    }
}

/// One row of op(A) times a non-transposed B, `c = alpha * op(A)[0, :] B + beta * c`, streaming B's rows: a weight
/// gradient `xᵀ·D` with one input feature reads a D of megabytes. Walking B a few columns at a time down all K rows
/// (direct_nn_avx2) touches a new page on every row and ran at ~5 GFLOP/s; here 1024 columns' sums stay in L1 and
/// B is read four whole rows at a time. Every column is the same chain of fused multiply-adds over p in order,
/// masked lanes included, so a column's bits do not depend on which columns are computed with it (gemm() splits a
/// one-row product by the thread count).
UNROLL_AVX2
static void row_stream_avx2(long N, long K, float alpha, const float *a, long sap, const float *B, long ldb,
                            float beta, float *C) {
    enum { CHUNK = 1024 };
    _Alignas(32) float acc[CHUNK];
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (long j0 = 0; j0 < N; j0 += CHUNK) {
        long nj = N - j0 < CHUNK ? N - j0 : CHUNK;
        long full = nj & ~7L;
        __m256i mask = tail_mask(nj - full);
        for (long j = 0; j < nj; j += 8) _mm256_store_ps(acc + j, _mm256_setzero_ps());
        const float *b = B + j0;
        long p = 0;
        for (; p + 4 <= K; p += 4, b += 4 * ldb) {
            __m256 x0 = _mm256_set1_ps(a[p * sap]), x1 = _mm256_set1_ps(a[(p + 1) * sap]);
            __m256 x2 = _mm256_set1_ps(a[(p + 2) * sap]), x3 = _mm256_set1_ps(a[(p + 3) * sap]);
            const float *b1 = b + ldb, *b2 = b + 2 * ldb, *b3 = b + 3 * ldb;
            long j = 0;
            for (; j < full; j += 8) {
                __m256 s = _mm256_load_ps(acc + j);
                s = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b + j), s);
                s = _mm256_fmadd_ps(x1, _mm256_loadu_ps(b1 + j), s);
                s = _mm256_fmadd_ps(x2, _mm256_loadu_ps(b2 + j), s);
                s = _mm256_fmadd_ps(x3, _mm256_loadu_ps(b3 + j), s);
                _mm256_store_ps(acc + j, s);
            }
            if (j < nj) {
                __m256 s = _mm256_load_ps(acc + j);
                s = _mm256_fmadd_ps(x0, _mm256_maskload_ps(b + j, mask), s);
                s = _mm256_fmadd_ps(x1, _mm256_maskload_ps(b1 + j, mask), s);
                s = _mm256_fmadd_ps(x2, _mm256_maskload_ps(b2 + j, mask), s);
                s = _mm256_fmadd_ps(x3, _mm256_maskload_ps(b3 + j, mask), s);
                _mm256_store_ps(acc + j, s);
            }
        }
        for (; p < K; p++, b += ldb) {
            __m256 x0 = _mm256_set1_ps(a[p * sap]);
            long j = 0;
            for (; j < full; j += 8)
                _mm256_store_ps(acc + j, _mm256_fmadd_ps(x0, _mm256_loadu_ps(b + j), _mm256_load_ps(acc + j)));
            if (j < nj)
                _mm256_store_ps(acc + j,
                                _mm256_fmadd_ps(x0, _mm256_maskload_ps(b + j, mask), _mm256_load_ps(acc + j)));
        }
        float *c = C + j0;
        long j = 0;
        for (; j < full; j += 8) {
            __m256 r = _mm256_mul_ps(va, _mm256_load_ps(acc + j));
            if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + j), r);
            _mm256_storeu_ps(c + j, r);
        }
        if (j < nj) {
            __m256 r = _mm256_mul_ps(va, _mm256_load_ps(acc + j));
            if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + j, mask), r);
            _mm256_maskstore_ps(c + j, mask, r);
        }
    }
}

/// RA rows of A (contiguous, lda apart) against all N rows of B (contiguous, ldb apart), 4 B rows at a
/// time: C[r, j] = alpha * dot(A_r, B_j) + beta * C[r, j]. RA x 4 accumulators share every load.
static inline void nt_store(float *c, float s, float alpha, float beta) {
    *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
}

#define DEFINE_NT_ROWS(RA)                                                                \
    UNROLL_AVX2 __attribute__((noinline)) static void nt_rows_##RA(long N, long K, float alpha, const float *a, long lda, \
                                         const float *B, long ldb, float beta, float *c, long ldc) { \
        __m256i kmask = tail_mask(K & 7);                                                 \
        long kfull = K & ~7L;                                                     \
        long j = 0;                                                                       \
        for (; j + 4 <= N; j += 4) {                                                      \
            const float *b = B + j * ldb;                                                 \
            __m256 x[RA][4];                                                              \
            for (int r = 0; r < RA; r++)                                                  \
                for (int q = 0; q < 4; q++) x[r][q] = _mm256_setzero_ps();                \
            for (long p = 0; p < kfull; p += 8) {                                         \
                __m256 av[RA];                                                            \
                for (int r = 0; r < RA; r++) av[r] = _mm256_loadu_ps(a + r * lda + p);    \
                for (int q = 0; q < 4; q++) {                                             \
                    __m256 bv = _mm256_loadu_ps(b + q * ldb + p);                         \
                    for (int r = 0; r < RA; r++) x[r][q] = _mm256_fmadd_ps(av[r], bv, x[r][q]); \
                }                                                                         \
            }                                                                             \
            if (kfull < K) {                                                              \
                __m256 av[RA];                                                            \
                for (int r = 0; r < RA; r++) av[r] = _mm256_maskload_ps(a + r * lda + kfull, kmask); \
                for (int q = 0; q < 4; q++) {                                             \
                    __m256 bv = _mm256_maskload_ps(b + q * ldb + kfull, kmask);           \
                    for (int r = 0; r < RA; r++) x[r][q] = _mm256_fmadd_ps(av[r], bv, x[r][q]); \
                }                                                                         \
            }                                                                             \
            for (int r = 0; r < RA; r++)                                                  \
                for (int q = 0; q < 4; q++) nt_store(c + r * ldc + j + q, hsum256(x[r][q]), alpha, beta); \
        }                                                                                 \
        for (; j < N; j++) {                                                              \
            const float *b = B + j * ldb;                                                 \
            __m256 x[RA];                                                                 \
            for (int r = 0; r < RA; r++) x[r] = _mm256_setzero_ps();                      \
            for (long p = 0; p < kfull; p += 8) {                                         \
                __m256 bv = _mm256_loadu_ps(b + p);                                       \
                for (int r = 0; r < RA; r++)                                              \
                    x[r] = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + p), bv, x[r]);   \
            }                                                                             \
            if (kfull < K) {                                                              \
                __m256 bv = _mm256_maskload_ps(b + kfull, kmask);                         \
                for (int r = 0; r < RA; r++)                                              \
                    x[r] = _mm256_fmadd_ps(_mm256_maskload_ps(a + r * lda + kfull, kmask), bv, x[r]); \
            }                                                                             \
            for (int r = 0; r < RA; r++) nt_store(c + r * ldc + j, hsum256(x[r]), alpha, beta); \
        }                                                                                 \
    }
DEFINE_NT_ROWS(1)
DEFINE_NT_ROWS(2)
DEFINE_NT_ROWS(3)

/// Direct GEMM with transA == 0, transB == 1: C[i,j] = dot(A row i, B row j), both contiguous. K >= 1.
UNROLL_AVX2
static void direct_nt_avx2(long M, long N, long K, float alpha, const float *A, long lda, const float *B,
                           long ldb, float beta, float *C, long ldc) {
    long i = 0;
    for (; i + 3 <= M; i += 3) nt_rows_3(N, K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc);
    if (M - i == 2) nt_rows_2(N, K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc);
    if (M - i == 1) nt_rows_1(N, K, alpha, A + i * lda, lda, B, ldb, beta, C + i * ldc, ldc);
}

// The R x 16 kernels once more in inline assembly (generated from the same pattern; a 1-deep k loop). Used
// when this file is compiled without optimisation: SwiftPM debug builds use -O0, where clang ignores
// optimize attributes and the intrinsics kernels run ~40x slower. Same operation order as ukernel_avx2_R,
// so debug and release results are bitwise identical.
#if UNROLL_X86 && (defined(__clang__) || defined(__GNUC__)) && defined(__x86_64__)
#define UNROLL_HAVE_ASM_KERNEL 1
UNROLL_AVX2 __attribute__((unused))
static void ukernel_asm_1(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float alpha,
                          float beta) {
    long ldb_bytes = ldbk * (long)sizeof(float), ldc_bytes = ldc * (long)sizeof(float);
    long beta_zero = beta == 0.0f;
    float ab[2] = {alpha, beta};
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm0\n\t"
        "vmovups 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss (%[ab]), %%ymm0\n\t"
        "vbroadcastss 4(%[ab]), %%ymm1\n\t"
        "test %[bz], %[bz]\n\t"
        "jz 3f\n\t"
        "vmulps %%ymm0, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm0, %%ymm5, %%ymm5\n\t"
        "vmovups %%ymm4, (%[c])\n\t"
        "vmovups %%ymm5, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm4, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm5, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "4:\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc), [c] "+r"(c)
        : [ldb] "r"(ldb_bytes), [ldc] "r"(ldc_bytes), [ab] "r"(ab), [bz] "r"(beta_zero)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

UNROLL_AVX2 __attribute__((unused))
static void ukernel_asm_2(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float alpha,
                          float beta) {
    long ldb_bytes = ldbk * (long)sizeof(float), ldc_bytes = ldc * (long)sizeof(float);
    long beta_zero = beta == 0.0f;
    float ab[2] = {alpha, beta};
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm0\n\t"
        "vmovups 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss (%[ab]), %%ymm0\n\t"
        "vbroadcastss 4(%[ab]), %%ymm1\n\t"
        "test %[bz], %[bz]\n\t"
        "jz 3f\n\t"
        "vmulps %%ymm0, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm0, %%ymm5, %%ymm5\n\t"
        "vmulps %%ymm0, %%ymm6, %%ymm6\n\t"
        "vmulps %%ymm0, %%ymm7, %%ymm7\n\t"
        "vmovups %%ymm4, (%[c])\n\t"
        "vmovups %%ymm5, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm6, (%[c])\n\t"
        "vmovups %%ymm7, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm4, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm5, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm6, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm7, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "4:\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc), [c] "+r"(c)
        : [ldb] "r"(ldb_bytes), [ldc] "r"(ldc_bytes), [ab] "r"(ab), [bz] "r"(beta_zero)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

UNROLL_AVX2 __attribute__((unused))
static void ukernel_asm_3(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float alpha,
                          float beta) {
    long ldb_bytes = ldbk * (long)sizeof(float), ldc_bytes = ldc * (long)sizeof(float);
    long beta_zero = beta == 0.0f;
    float ab[2] = {alpha, beta};
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm0\n\t"
        "vmovups 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
        "vbroadcastss 8(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss (%[ab]), %%ymm0\n\t"
        "vbroadcastss 4(%[ab]), %%ymm1\n\t"
        "test %[bz], %[bz]\n\t"
        "jz 3f\n\t"
        "vmulps %%ymm0, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm0, %%ymm5, %%ymm5\n\t"
        "vmulps %%ymm0, %%ymm6, %%ymm6\n\t"
        "vmulps %%ymm0, %%ymm7, %%ymm7\n\t"
        "vmulps %%ymm0, %%ymm8, %%ymm8\n\t"
        "vmulps %%ymm0, %%ymm9, %%ymm9\n\t"
        "vmovups %%ymm4, (%[c])\n\t"
        "vmovups %%ymm5, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm6, (%[c])\n\t"
        "vmovups %%ymm7, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm8, (%[c])\n\t"
        "vmovups %%ymm9, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm4, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm5, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm6, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm7, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm8, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm9, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "4:\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc), [c] "+r"(c)
        : [ldb] "r"(ldb_bytes), [ldc] "r"(ldc_bytes), [ab] "r"(ab), [bz] "r"(beta_zero)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

UNROLL_AVX2 __attribute__((unused))
static void ukernel_asm_4(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float alpha,
                          float beta) {
    long ldb_bytes = ldbk * (long)sizeof(float), ldc_bytes = ldc * (long)sizeof(float);
    long beta_zero = beta == 0.0f;
    float ab[2] = {alpha, beta};
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm0\n\t"
        "vmovups 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
        "vbroadcastss 8(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 12(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss (%[ab]), %%ymm0\n\t"
        "vbroadcastss 4(%[ab]), %%ymm1\n\t"
        "test %[bz], %[bz]\n\t"
        "jz 3f\n\t"
        "vmulps %%ymm0, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm0, %%ymm5, %%ymm5\n\t"
        "vmulps %%ymm0, %%ymm6, %%ymm6\n\t"
        "vmulps %%ymm0, %%ymm7, %%ymm7\n\t"
        "vmulps %%ymm0, %%ymm8, %%ymm8\n\t"
        "vmulps %%ymm0, %%ymm9, %%ymm9\n\t"
        "vmulps %%ymm0, %%ymm10, %%ymm10\n\t"
        "vmulps %%ymm0, %%ymm11, %%ymm11\n\t"
        "vmovups %%ymm4, (%[c])\n\t"
        "vmovups %%ymm5, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm6, (%[c])\n\t"
        "vmovups %%ymm7, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm8, (%[c])\n\t"
        "vmovups %%ymm9, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm10, (%[c])\n\t"
        "vmovups %%ymm11, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm4, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm5, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm6, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm7, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm8, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm9, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm10, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm11, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "4:\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc), [c] "+r"(c)
        : [ldb] "r"(ldb_bytes), [ldc] "r"(ldc_bytes), [ab] "r"(ab), [bz] "r"(beta_zero)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

UNROLL_AVX2 __attribute__((unused))
static void ukernel_asm_5(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float alpha,
                          float beta) {
    long ldb_bytes = ldbk * (long)sizeof(float), ldc_bytes = ldc * (long)sizeof(float);
    long beta_zero = beta == 0.0f;
    float ab[2] = {alpha, beta};
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
        "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm0\n\t"
        "vmovups 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
        "vbroadcastss 8(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 12(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
        "vbroadcastss 16(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss (%[ab]), %%ymm0\n\t"
        "vbroadcastss 4(%[ab]), %%ymm1\n\t"
        "test %[bz], %[bz]\n\t"
        "jz 3f\n\t"
        "vmulps %%ymm0, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm0, %%ymm5, %%ymm5\n\t"
        "vmulps %%ymm0, %%ymm6, %%ymm6\n\t"
        "vmulps %%ymm0, %%ymm7, %%ymm7\n\t"
        "vmulps %%ymm0, %%ymm8, %%ymm8\n\t"
        "vmulps %%ymm0, %%ymm9, %%ymm9\n\t"
        "vmulps %%ymm0, %%ymm10, %%ymm10\n\t"
        "vmulps %%ymm0, %%ymm11, %%ymm11\n\t"
        "vmulps %%ymm0, %%ymm12, %%ymm12\n\t"
        "vmulps %%ymm0, %%ymm13, %%ymm13\n\t"
        "vmovups %%ymm4, (%[c])\n\t"
        "vmovups %%ymm5, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm6, (%[c])\n\t"
        "vmovups %%ymm7, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm8, (%[c])\n\t"
        "vmovups %%ymm9, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm10, (%[c])\n\t"
        "vmovups %%ymm11, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm12, (%[c])\n\t"
        "vmovups %%ymm13, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm4, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm5, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm6, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm7, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm8, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm9, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm10, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm11, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm12, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm13, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "4:\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc), [c] "+r"(c)
        : [ldb] "r"(ldb_bytes), [ldc] "r"(ldc_bytes), [ab] "r"(ab), [bz] "r"(beta_zero)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

UNROLL_AVX2 __attribute__((unused))
static void ukernel_asm_6(long kc, const float *a, const float *b, long ldbk, float *c, long ldc, float alpha,
                          float beta) {
    long ldb_bytes = ldbk * (long)sizeof(float), ldc_bytes = ldc * (long)sizeof(float);
    long beta_zero = beta == 0.0f;
    float ab[2] = {alpha, beta};
    __asm__ volatile(
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
        "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
        "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
        "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm0\n\t"
        "vmovups 32(%[b]), %%ymm1\n\t"
        "vbroadcastss 0(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm4\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm5\n\t"
        "vbroadcastss 4(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm6\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm7\n\t"
        "vbroadcastss 8(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm8\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm9\n\t"
        "vbroadcastss 12(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm10\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm11\n\t"
        "vbroadcastss 16(%[a]), %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm2, %%ymm12\n\t"
        "vfmadd231ps %%ymm1, %%ymm2, %%ymm13\n\t"
        "vbroadcastss 20(%[a]), %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm3, %%ymm14\n\t"
        "vfmadd231ps %%ymm1, %%ymm3, %%ymm15\n\t"
        "add $24, %[a]\n\t"
        "add %[ldb], %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss (%[ab]), %%ymm0\n\t"
        "vbroadcastss 4(%[ab]), %%ymm1\n\t"
        "test %[bz], %[bz]\n\t"
        "jz 3f\n\t"
        "vmulps %%ymm0, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm0, %%ymm5, %%ymm5\n\t"
        "vmulps %%ymm0, %%ymm6, %%ymm6\n\t"
        "vmulps %%ymm0, %%ymm7, %%ymm7\n\t"
        "vmulps %%ymm0, %%ymm8, %%ymm8\n\t"
        "vmulps %%ymm0, %%ymm9, %%ymm9\n\t"
        "vmulps %%ymm0, %%ymm10, %%ymm10\n\t"
        "vmulps %%ymm0, %%ymm11, %%ymm11\n\t"
        "vmulps %%ymm0, %%ymm12, %%ymm12\n\t"
        "vmulps %%ymm0, %%ymm13, %%ymm13\n\t"
        "vmulps %%ymm0, %%ymm14, %%ymm14\n\t"
        "vmulps %%ymm0, %%ymm15, %%ymm15\n\t"
        "vmovups %%ymm4, (%[c])\n\t"
        "vmovups %%ymm5, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm6, (%[c])\n\t"
        "vmovups %%ymm7, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm8, (%[c])\n\t"
        "vmovups %%ymm9, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm10, (%[c])\n\t"
        "vmovups %%ymm11, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm12, (%[c])\n\t"
        "vmovups %%ymm13, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmovups %%ymm14, (%[c])\n\t"
        "vmovups %%ymm15, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "jmp 4f\n\t"
        "3:\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm4, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm5, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm6, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm7, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm8, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm9, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm10, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm11, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm12, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm13, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "vmulps (%[c]), %%ymm1, %%ymm2\n\t"
        "vmulps 32(%[c]), %%ymm1, %%ymm3\n\t"
        "vfmadd231ps %%ymm0, %%ymm14, %%ymm2\n\t"
        "vfmadd231ps %%ymm0, %%ymm15, %%ymm3\n\t"
        "vmovups %%ymm2, (%[c])\n\t"
        "vmovups %%ymm3, 32(%[c])\n\t"
        "add %[ldc], %[c]\n\t"
        "4:\n\t"
        "vzeroupper\n\t"
        : [a] "+r"(a), [b] "+r"(b), [k] "+r"(kc), [c] "+r"(c)
        : [ldb] "r"(ldb_bytes), [ldc] "r"(ldc_bytes), [ab] "r"(ab), [bz] "r"(beta_zero)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}
#endif

// R x 8 variants for ragged last panels with at most 8 columns (half the work of a 16-wide tile).
#define UK8_ROW(r, off)                                                                   \
    if (UK_R > r) c##r##0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + (off) * MR + r), b0, c##r##0);
#define UK8_STEP(off, boff)                                                               \
    do {                                                                                  \
        __m256 b0 = _mm256_loadu_ps(b + (boff));                                          \
        UK8_ROW(0, off) UK8_ROW(1, off) UK8_ROW(2, off) UK8_ROW(3, off) UK8_ROW(4, off) UK8_ROW(5, off) \
    } while (0)
#define UK8_STORE_ROW(r)                                                                  \
    if (UK_R > r) {                                                                       \
        float *ci = c + (r) * ldc;                                                        \
        if (beta == 0.0f)                                                                 \
            _mm256_storeu_ps(ci, _mm256_mul_ps(va, c##r##0));                             \
        else                                                                              \
            _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, c##r##0, _mm256_mul_ps(vb, _mm256_loadu_ps(ci)))); \
    }
#define DEFINE_UKERNEL8(R)                                                                \
    UNROLL_AVX2 static void ukernel8_avx2_##R(long kc, const float *a, const float *b, long ldbk, float *c, \
                                              long ldc, float alpha, float beta) { \
        enum { UK_R = R };                                                                \
        __m256 c00 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(); \
        __m256 c30 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(); \
        long k = kc;                                                                      \
        while (k >= 4) {                                                                  \
            UK8_STEP(0, 0);                                                               \
            UK8_STEP(1, ldbk);                                                            \
            UK8_STEP(2, 2 * ldbk);                                                        \
            UK8_STEP(3, 3 * ldbk);                                                        \
            a += 4 * MR;                                                                  \
            b += 4 * ldbk;                                                                \
            k -= 4;                                                                       \
        }                                                                                 \
        while (k > 0) {                                                                   \
            UK8_STEP(0, 0);                                                               \
            a += MR;                                                                      \
            b += ldbk;                                                                    \
            k--;                                                                          \
        }                                                                                 \
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);                     \
        UK8_STORE_ROW(0) UK8_STORE_ROW(1) UK8_STORE_ROW(2) UK8_STORE_ROW(3) UK8_STORE_ROW(4) UK8_STORE_ROW(5) \
        (void)c00; (void)c10; (void)c20; (void)c30; (void)c40; (void)c50;                 \
    }

DEFINE_UKERNEL8(1)
DEFINE_UKERNEL8(2)
DEFINE_UKERNEL8(3)
DEFINE_UKERNEL8(4)
DEFINE_UKERNEL8(5)
DEFINE_UKERNEL8(6)

/// Whether skinny_avx2 takes a problem of this shape (unless it runs out of memory for a workspace).
static int skinny_shape(int transA, int transB, long M, long N, int tiny) {
    if (tiny || (!transB && M == 1) || (transB && M <= 20)) return 1;
    return N <= (transA ? 6 : 24);
}

/// Skinny and tiny problems without packing. Returns 0 when the blocked path should be used.
/// Thresholds measured on Zen 4 (Benchmarks/kernels): the dot-product kernel (3 rows of A x 4 rows of B) beats
/// packing a transposed B up to M ~ 20, and beats the blocked path up to N ~ 24 columns.

UNROLL_AVX2
static int skinny_avx2(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                       const float *B, long ldb, float beta, float *C, long ldc, int tiny) {
    if (!skinny_shape(transA, transB, M, N, tiny)) return 0;
    if (!transB) {
        if (M == 1) {
            row_stream_avx2(N, K, alpha, A, transA ? lda : 1, B, ldb, beta, C);
            return 1;
        }
        if (tiny) {
            direct_nn_avx2(transA, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return 1;
        }
    } else if (!transA) {
        if (tiny || M <= 20) {
            direct_nt_avx2(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return 1;
        }
    } else if (M <= 20) {
        // A^T B^T with few rows: gather the rows of op(A) (columns of A), then dot products.
        workspace *ws = get_ws((size_t)M * K, 0);
        if (!ws) return 0;
        float *t = ws->a;
        for (long p = 0; p < K; p++)
            for (long i = 0; i < M; i++) t[i * K + p] = A[p * lda + i];
        direct_nt_avx2(M, N, K, alpha, t, K, B, ldb, beta, C, ldc);
        return 1;
    }
    if (N <= (transA ? 6 : 24)) {
        // Few columns: make the columns of op(B) contiguous, then dot products (or axpys when A is transposed).
        workspace *ws = get_ws((size_t)N * K + (size_t)M, 0);
        if (!ws) return 0;
        const float *bt = B;
        long ldbt = ldb;
        if (!transB) {
            float *t = ws->a;
            for (long p = 0; p < K; p++)
                for (long j = 0; j < N; j++) t[j * K + p] = B[p * ldb + j];
            bt = t;
            ldbt = K;
        }
        if (!transA) {
            direct_nt_avx2(M, N, K, alpha, A, lda, bt, ldbt, beta, C, ldc);
            return 1;
        }
        float *r = ws->a + (size_t)N * K;  // one column of C as a row: r = bt_j^T A
        for (long j = 0; j < N; j++) {
            direct_nn_avx2(0, 1, M, K, 1.0f, bt + j * ldbt, ldbt, A, lda, 0.0f, r, M);
            for (long i = 0; i < M; i++) {
                float *c = C + i * ldc + j;
                *c = beta == 0.0f ? alpha * r[i] : alpha * r[i] + beta * *c;
            }
        }
        return 1;
    }
    if (tiny) {
        direct_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return 1;
    }
    return 0;
}

static const kernel_set avx2_set = {
#if defined(UNROLL_HAVE_ASM_KERNEL) && (!defined(__OPTIMIZE__) || defined(UNROLL_FORCE_ASM_KERNEL))
    {NULL, ukernel_asm_1, ukernel_asm_2, ukernel_asm_3, ukernel_asm_4, ukernel_asm_5, ukernel_asm_6},
#else
    {NULL, ukernel_avx2_1, ukernel_avx2_2, ukernel_avx2_3, ukernel_avx2_4, ukernel_avx2_5, ukernel_avx2_6},
#endif
    {NULL, ukernel8_avx2_1, ukernel8_avx2_2, ukernel8_avx2_3, ukernel8_avx2_4, ukernel8_avx2_5, ukernel8_avx2_6},
    pack_a_avx2, pack_b_avx2, store_edge_avx2,
    {NULL, ukernel_rows_avx2_1, ukernel_rows_avx2_2, ukernel_rows_avx2_3, ukernel_rows_avx2_4, ukernel_rows_avx2_5,
     ukernel_rows_avx2_6},
    store_row_avx2,
#if defined(UNROLL_HAVE_ASM_KERNEL) && (!defined(__OPTIMIZE__) || defined(UNROLL_FORCE_ASM_KERNEL))
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},  // unoptimised builds: pack B first, then the assembly kernels
#else
    {NULL, ukernel_packing_avx2_1, ukernel_packing_avx2_2, ukernel_packing_avx2_3, ukernel_packing_avx2_4,
     ukernel_packing_avx2_5, ukernel_packing_avx2_6},
#endif
    store_outer_avx2};
#endif  // UNROLL_X86

// ---------------------------------------------------------------------------------------------------------
// Blocked driver.

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

/// The number of K blocks, split evenly (K = 600 -> 2 x 300): every entry and packed layout cuts K the same way.
static long kc_block_count(long K) { return ceil_div(K, KC_MAX); }

long unroll_sgemm_max_single_pass_k(void) { return KC_MAX; }

void unroll_prefetch_rows(const float *p, long rows, long columns, long stride) {
    if (rows <= 0 || columns <= 0) return;
    for (long r = 0; r < rows; r++) {
        const char *row = (const char *)(p + r * stride), *end = (const char *)(p + r * stride + columns);
        for (const char *line = (const char *)((uintptr_t)row & ~(uintptr_t)63); line < end; line += 64)
            __builtin_prefetch(line, 0, 3);
    }
}

long unroll_gemm_unpacked_max_m = -1;  // harness override of the rule below (-1: use the rule)
int unroll_gemm_fused_b_packing = 1;   // harness switch (kbench blocks): 0 packs B before the tiles

/// Largest M for which a non-transposed B is read in place rather than packed. Reading B in place saves the
/// packing pass (a large share of the time when M is small) but its kc rows, ldb floats apart, fall into few
/// L1 sets when ldb has a large power-of-two factor; measured on Zen 4 (see Benchmarks/kernels).
static long in_place_max_m(long ldb) {
    if (unroll_gemm_unpacked_max_m >= 0) return unroll_gemm_unpacked_max_m;
    unsigned long bytes = (unsigned long)ldb * sizeof(float);
    unsigned long low = bytes & (~bytes + 1);  // largest power of two dividing the row stride
    long lines = low >= 64 ? (long)(low / 64) : 1;
    if (lines >= 64) return 0;  // stride a multiple of 4 KiB: every row in the same L1 set
    long m = 768 / lines;
    return m > 128 ? 128 : m;
}

static long padded_m(long M) { return ceil_div(M, MR) * MR; }

/// One K block (rows pc .. pc+kc of op(B)) times columns jc .. jc+nc: every M block of op(A), packed into `a_buf`
/// or read from `packed_a` (unroll_sgemm_pack_a's layout), over the panels of op(B) packed in `bp` (or, with
/// `b_in_place`, a non-transposed B read where it lies, a ragged last panel packed into `bp`). C (at column 0 of
/// the product) gets alpha * the block's sum + beta_eff * C.
static void multiply_b_block(const kernel_set *ks, int transA, long M, const float *A, long lda, const float *packed_a,
                             long mc_size, float *a_buf, long pc, long kc, long jc, long nc, float *bp, int b_in_place,
                             const float *B, long ldb, float alpha, float beta_eff, const float *c_row, float *C,
                             long ldc) {
    long mpad = padded_m(M);
    _Alignas(64) float tile[MR * NR];
    for (long ic = 0; ic < M; ic += mc_size) {
        long mc = M - ic < mc_size ? M - ic : mc_size;
        const float *ap;
        if (packed_a) {
            ap = packed_a + pc * mpad + ic * kc;
        } else {
            ks->pack_a(transA, A, lda, ic, mc, pc, kc, a_buf);
            ap = a_buf;
        }
        for (long jr = 0; jr < nc; jr += NR) {
            long nr = nc - jr < NR ? nc - jr : NR;
            const float *bpanel;
            long ldbk = NR;
            if (!b_in_place) {
                bpanel = bp + jr * kc;
            } else if (nr == NR) {
                bpanel = B + pc * ldb + jc + jr;
                ldbk = ldb;
            } else {
                pack_b_portable(0, B, ldb, pc, kc, jc + jr, nr, bp);
                bpanel = bp;
            }
            for (long ir = 0; ir < mc; ir += MR) {
                long mr = mc - ir < MR ? mc - ir : MR;
                const float *apanel = ap + ir * kc;
                float *cptr = C + (ic + ir) * ldc + jc + jr;
                if (c_row) {
                    // The tile's sum, then stored onto the row addend: C is written, never read.
                    if (nr <= 8 && ks->kern8[mr])
                        ks->kern8[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                    else
                        ks->kern[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                    ks->store_row(mr, nr, tile, c_row + jc + jr, cptr, ldc, alpha);
                } else if (nr == NR) {
                    ks->kern[mr](kc, apanel, bpanel, ldbk, cptr, ldc, alpha, beta_eff);
                } else if (nr <= 8 && ks->kern8[mr]) {
                    ks->kern8[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                    ks->store_edge(mr, nr, tile, cptr, ldc, alpha, beta_eff);
                } else {
                    ks->kern[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                    ks->store_edge(mr, nr, tile, cptr, ldc, alpha, beta_eff);
                }
            }
        }
    }
}

/// The blocked algorithm. With `packed_a` (unroll_sgemm_pack_a's layout) the panels of op(A) are read from it
/// instead of being packed per M block; the operation order is the same, and so are the bits. With `c_row`, C
/// starts as that row (N floats) in every row instead of beta * C: each tile of the first K block is stored onto it.
static int packed_gemm(const kernel_set *ks, int transA, int transB, long M, long N, long K, float alpha,
                       const float *A, long lda, const float *packed_a, const float *B, long ldb, float beta,
                       const float *c_row, float *C, long ldc) {
    // Even splits of K and M so that no block is a tiny remainder.
    long kc_blocks = kc_block_count(K);
    long kc_size = ceil_div(K, kc_blocks);
    long mc_blocks = ceil_div(M, MC_MAX);
    long mc_size = ceil_div(ceil_div(M, mc_blocks), MR) * MR;
    long nc_blocks = ceil_div(N, NC_MAX);
    long nc_size = ceil_div(ceil_div(N, nc_blocks), NR) * NR;
    // With few rows, each packed element of B would be used only a few times: read B in place instead
    // (non-transposed B only; a ragged last panel is still packed so that nothing past column N is read).
    int b_in_place = !transB && M <= in_place_max_m(ldb);
    workspace *ws = get_ws(packed_a ? 0 : (size_t)mc_size * kc_size, (size_t)kc_size * (b_in_place ? NR : nc_size));
    if (!ws) return 0;
    float *bp = ws->b;
    for (long jc = 0; jc < N; jc += nc_size) {
        long nc = N - jc < nc_size ? N - jc : nc_size;
        for (long pc = 0; pc < K; pc += kc_size) {
            long kc = K - pc < kc_size ? K - pc : kc_size;
            float beta_eff = pc == 0 && !c_row ? beta : 1.0f;
            if (!b_in_place) ks->pack_b(transB, B, ldb, pc, kc, jc, nc, bp);
            multiply_b_block(ks, transA, M, A, lda, packed_a, mc_size, ws->a, pc, kc, jc, nc, bp, b_in_place, B, ldb,
                             alpha, beta_eff, pc == 0 ? c_row : NULL, C, ldc);
        }
    }
    return 1;
}

/// unroll_sgemm, or with `c_row` unroll_sgemm_row (beta ignored). The paths other than the blocked one spread
/// the row into C first and add onto it with beta = 1: the same bits, one more pass over C.
static void sgemm(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                  const float *B, long ldb, float beta, const float *c_row, float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        if (c_row) spread_row(M, N, c_row, C, ldc);
        else scale_c(M, N, beta, C, ldc);
        return;
    }
    int tiny = (double)M * (double)N * (double)K <= 8192.0;
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        if (skinny_shape(transA, transB, M, N, tiny) && c_row) {
            spread_row(M, N, c_row, C, ldc);
            c_row = NULL;
            beta = 1.0f;
        }
        if (skinny_avx2(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, tiny)) return;
        if (packed_gemm(&avx2_set, transA, transB, M, N, K, alpha, A, lda, NULL, B, ldb, beta, c_row, C, ldc)) return;
    } else
#endif
    if (!(tiny || M <= 2 || N <= 2) &&
        packed_gemm(&portable_set, transA, transB, M, N, K, alpha, A, lda, NULL, B, ldb, beta, c_row, C, ldc))
        return;
    // Out of memory for the workspace, or too small to pack: the plain loop.
    if (c_row) {
        spread_row(M, N, c_row, C, ldc);
        beta = 1.0f;
    }
    direct_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void unroll_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb,
                  float beta, float *C, long ldc) {
    sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, NULL, C, ldc);
}

void unroll_sgemm_row(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                      const float *B, long ldb, const float *row, float *C, long ldc) {
    sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, 1.0f, row, C, ldc);
}

// ---------------------------------------------------------------------------------------------------------
// Pre-packed A: a product split by columns into blocks (one per call, for reproducible bits and threads)
// packs all of op(A) in every call; packing it once and running every block from the packed panels saves
// that. The layout depends only on (M, K): K is cut into packed_gemm's even KC blocks, and block q (columns
// p0 .. p0+kc of op(A)) starts at float p0 * Mpad (Mpad = M rounded up to 6); inside it, the panel of rows
// i .. i+5 (i a multiple of 6) is kc x 6 floats at offset i * kc, zero-padded past row M. packed_gemm's
// M blocks are runs of these panels, so it reads them where it would have packed them.

static const kernel_set *current_set(void) {
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) return &avx2_set;
#endif
    return &portable_set;
}

int unroll_sgemm_packs_a(int transA, int transB, long M, long N, long K, float alpha) {
    if (M <= 0 || N <= 0 || K <= 0 || alpha == 0.0f) return 0;
    int tiny = (double)M * (double)N * (double)K <= 8192.0;
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) return !skinny_shape(transA, transB, M, N, tiny);
#else
    (void)transA;
    (void)transB;
#endif
    return !(tiny || M <= 2 || N <= 2);
}

size_t unroll_sgemm_packed_a_size(long M, long K) {
    if (M <= 0 || K <= 0) return 0;
    return (size_t)K * (size_t)padded_m(M);
}

float *unroll_sgemm_packed_a_buffer(size_t count) {
    workspace *w = thread_ws();
    return w ? grow(&w->whole_a, &w->whole_a_cap, count) : NULL;
}

void unroll_sgemm_pack_a(int transA, long M, long K, const float *A, long lda, long i0, long i1, float *packed) {
    if (i1 > M) i1 = M;
    if (i0 < 0) i0 = 0;
    if (K <= 0 || i1 <= i0) return;
    long kc_blocks = kc_block_count(K), kc_size = ceil_div(K, kc_blocks), mpad = padded_m(M);
    pack_a_t pack = current_set()->pack_a;
    for (long pc = 0; pc < K; pc += kc_size) {
        long kc = K - pc < kc_size ? K - pc : kc_size;
        pack(transA, A, lda, i0, i1 - i0, pc, kc, packed + pc * mpad + i0 * kc);
    }
}

int unroll_sgemm_prepacked_a(int transB, long M, long K, float alpha, const float *packed, const float *B, long ldb,
                             long n0, long n1, float beta, float *C, long ldc) {
    if (n0 < 0) n0 = 0;
    if (M <= 0 || n1 <= n0) return 1;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, n1 - n0, beta, C + n0, ldc);
        return 1;
    }
    const float *b = transB ? B + n0 * ldb : B + n0;
    return packed_gemm(current_set(), 0, transB, M, n1 - n0, K, alpha, NULL, 0, packed, b, ldb, beta, NULL, C + n0,
                       ldc);
}

// ---------------------------------------------------------------------------------------------------------
// Stacked left operands: several products with the same right operand (a recurrent layer's weight gradients Hᵀ·D
// and Xᵀ·D over all time steps, and its bias gradient, the column sums of D = 1ᵀ·D) each streamed all of op(B)
// for their own few rows; a one-row product or a row sum ran memory-bound on its own. Here their rows are stacked
// into one op(A) (unroll_sgemm_pack_a's layout for the total rows) and each K x N block of op(B) is packed once
// and multiplied by all of them: the one-row parts fill the padding of a 6-row panel another part leaves. Every
// row of C is one fma chain per K block, as in packed_gemm, whichever panel and panel height it falls in: a
// part that unroll_sgemm runs through its blocked path gets the same bits stacked.

static long stacked_rows(long count, const unroll_sgemm_stacked_part *parts) {
    long rows = 0;
    for (long i = 0; i < count; i++) rows += parts[i].m > 0 ? parts[i].m : 0;
    return rows;
}

size_t unroll_sgemm_stacked_a_size(long count, const unroll_sgemm_stacked_part *parts, long K) {
    return unroll_sgemm_packed_a_size(stacked_rows(count, parts), K);
}

/// Row `i` of op(part) over columns p0 .. p0+kc into slot `r` of the 6-row panel at `d` (a row of ones without A).
static void pack_stacked_row(const unroll_sgemm_stacked_part *part, long i, long p0, long kc, float *d, long r) {
    if (!part->a) {
        for (long p = 0; p < kc; p++) d[p * MR + r] = 1.0f;
    } else if (part->trans_a) {
        const float *a = part->a + p0 * part->lda + i;
        for (long p = 0; p < kc; p++) d[p * MR + r] = a[p * part->lda];
    } else {
        const float *a = part->a + i * part->lda + p0;
        for (long p = 0; p < kc; p++) d[p * MR + r] = a[p];
    }
}

void unroll_sgemm_pack_stacked_a(long count, const unroll_sgemm_stacked_part *parts, long K, long panel0, long panel1,
                                 float *packed) {
    long M = stacked_rows(count, parts);
    if (M <= 0 || K <= 0) return;
    long panels = ceil_div(M, MR);
    if (panel0 < 0) panel0 = 0;
    if (panel1 > panels) panel1 = panels;
    if (panel1 <= panel0) return;
    long kc_blocks = kc_block_count(K), kc_size = ceil_div(K, kc_blocks), mpad = padded_m(M);
    long lower = panel0 * MR, upper = panel1 * MR < M ? panel1 * MR : M;
    pack_a_t pack = current_set()->pack_a;
    for (long pc = 0; pc < K; pc += kc_size) {
        long kc = K - pc < kc_size ? K - pc : kc_size;
        float *block = packed + pc * mpad;
        // The padding rows of the last panel stay zero (a part packed row by row does not write them).
        if (panel1 == panels && M % MR) memset(block + (panels - 1) * MR * kc, 0, sizeof(float) * MR * kc);
        long start = 0;
        for (long i = 0; i < count; i++) {
            const unroll_sgemm_stacked_part *part = &parts[i];
            long m = part->m > 0 ? part->m : 0;
            long lo = start > lower ? start : lower, hi = start + m < upper ? start + m : upper;
            start += m;
            if (lo >= hi) continue;
            // Rows up to the next panel edge one by one; whole panels (and a ragged last one, whose zero padding a
            // later part then overwrites) through the fast packer; parts run in row order, so nothing is lost.
            long row = lo, edge = ceil_div(lo, MR) * MR;
            for (; row < hi && row < edge; row++)
                pack_stacked_row(part, row - (start - m), pc, kc, block + row / MR * MR * kc, row % MR);
            if (row >= hi) continue;
            if (part->a) {
                pack(part->trans_a, part->a, part->lda, row - (start - m), hi - row, pc, kc, block + row * kc);
            } else {
                for (; row < hi; row++) pack_stacked_row(part, 0, pc, kc, block + row / MR * MR * kc, row % MR);
            }
        }
    }
}

/// The part holding stacked row `row` (`starts`: each part's first row; parts without rows are skipped).
static long stacked_part_at(long count, const unroll_sgemm_stacked_part *parts, const long *starts, long row) {
    long lo = 0, hi = count - 1;
    while (lo < hi) {  // last part whose start <= row and that has rows
        long mid = (lo + hi + 1) / 2;
        if (starts[mid] <= row) lo = mid; else hi = mid - 1;
    }
    while (lo < count && (parts[lo].m <= 0 || starts[lo] + parts[lo].m <= row)) lo++;
    return lo;
}

/// Column blocks [edges[q], edges[q+1]) (q < blocks, edges ascending) of the stacked products, the K blocks
/// outermost: every block runs over K block pc before any runs over pc + 1, so the packed op(A)'s panels of one K
/// block stay in L2 for all the blocks (block by block, every block streamed all of it from L3 again); a C element
/// sums its K blocks in the same order either way, so the bits are those of one call per block.
static int stacked_b_blocks(long count, const unroll_sgemm_stacked_part *parts, const float *packed, int transB,
                            long N, long K, float alpha, const float *B, long ldb, const long *edges, long blocks) {
    long M = stacked_rows(count, parts);
    long first = edges[0] < 0 ? 0 : edges[0], last = edges[blocks] > N ? N : edges[blocks];
    if (count <= 0 || blocks <= 0 || M <= 0 || last <= first) return 1;
    if (K <= 0 || alpha == 0.0f) {
        for (long i = 0; i < count; i++)
            scale_c(parts[i].m, last - first, parts[i].beta, parts[i].c + first, parts[i].ldc);
        return 1;
    }
    long small_starts[16];
    long *starts = count <= 16 ? small_starts : malloc(sizeof(long) * (size_t)count);
    if (!starts) return 0;
    for (long i = 0, row = 0; i < count; i++) {
        starts[i] = row;
        row += parts[i].m > 0 ? parts[i].m : 0;
    }
    const kernel_set *ks = current_set();
    long mpad = padded_m(M);
    long kc_blocks = kc_block_count(K), kc_size = ceil_div(K, kc_blocks);
    long mc_blocks = ceil_div(M, MC_MAX), mc_size = ceil_div(ceil_div(M, mc_blocks), MR) * MR;
    long widest = 0;
    for (long q = 0; q < blocks; q++) {
        long width = edges[q + 1] - edges[q];
        if (width > widest) widest = width;
    }
    long widest_nc = widest <= 0 ? NR : ceil_div(ceil_div(widest, ceil_div(widest, NC_MAX)), NR) * NR;
    // B is read in place where packed_gemm would read it so for all the rows together.
    int b_in_place = !transB && M <= in_place_max_m(ldb);
    // The first tile over each panel of a non-transposed B packs it: the copy's loads overlap multiply-adds.
    int b_packing = !transB && !b_in_place && ks->packing[MR] && unroll_gemm_fused_b_packing;
    workspace *ws = get_ws(0, (size_t)kc_size * (b_in_place ? NR : widest_nc));
    if (!ws) {
        if (starts != small_starts) free(starts);
        return 0;
    }
    float *bp = ws->b;
    _Alignas(64) float tile[MR * NR];
    for (long pc = 0; pc < K; pc += kc_size) {
        long kc = K - pc < kc_size ? K - pc : kc_size;
        for (long q = 0; q < blocks; q++) {
            long n0 = edges[q] < 0 ? 0 : edges[q], n1 = edges[q + 1] > N ? N : edges[q + 1];
            if (n1 <= n0) continue;
            long width = n1 - n0;
            long nc_blocks = ceil_div(width, NC_MAX), nc_size = ceil_div(ceil_div(width, nc_blocks), NR) * NR;
            const float *b = transB ? B + n0 * ldb : B + n0;
            for (long jc = 0; jc < width; jc += nc_size) {
                long nc = width - jc < nc_size ? width - jc : nc_size;
                if (!b_in_place && !b_packing) ks->pack_b(transB, b, ldb, pc, kc, jc, nc, bp);
                for (long ic = 0; ic < M; ic += mc_size) {
                    long mc = M - ic < mc_size ? M - ic : mc_size;
                    const float *ap = packed + pc * mpad + ic * kc;
                    for (long jr = 0; jr < nc; jr += NR) {
                        long nr = nc - jr < NR ? nc - jr : NR;
                        const float *bpanel;
                        long ldbk = NR;
                        // With b_packing, the first tile over a full panel (ic == ir == 0) packs it from here.
                        const float *source = b_packing && ic == 0 && nr == NR ? b + pc * ldb + jc + jr : NULL;
                        if (!b_in_place) {
                            bpanel = bp + jr * kc;
                            if (b_packing && ic == 0 && nr < NR)
                                pack_b_portable(0, b, ldb, pc, kc, jc + jr, nr, bp + jr * kc);
                        } else if (nr == NR) {
                            bpanel = b + pc * ldb + jc + jr;
                            ldbk = ldb;
                        } else {
                            pack_b_portable(0, b, ldb, pc, kc, jc + jr, nr, bp);
                            bpanel = bp;
                        }
                        long column = n0 + jc + jr;
                        for (long ir = 0; ir < mc; ir += MR) {
                            long row = ic + ir, mr = mc - ir < MR ? mc - ir : MR;
                            const float *apanel = ap + ir * kc;
                            long p = stacked_part_at(count, parts, starts, row);
                            if (nr == NR && row + mr <= starts[p] + parts[p].m) {
                                float *c = parts[p].c + (row - starts[p]) * parts[p].ldc + column;
                                float beta = pc == 0 ? parts[p].beta : 1.0f;
                                if (source && ir == 0) {
                                    ks->packing[mr](kc, apanel, source, ldb, bp + jr * kc, c, parts[p].ldc, alpha, beta);
                                } else {
                                    // Leading rows of K where this part's op(A) is zero add +0: start after them.
                                    long skip = pc == 0 && parts[p].zero_k > 0 && parts[p].zero_k < kc ? parts[p].zero_k : 0;
                                    ks->kern[mr](kc - skip, apanel + skip * MR, bpanel + skip * ldbk, ldbk, c, parts[p].ldc,
                                                 alpha, beta);
                                }
                                continue;
                            }
                            // A ragged column panel, or rows of several parts: through the tile, each part's rows
                            // stored with its own C and beta.
                            if (nr <= 8 && ks->kern8[mr])
                                ks->kern8[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                            else if (source && ir == 0)
                                ks->packing[mr](kc, apanel, source, ldb, bp + jr * kc, tile, NR, 1.0f, 0.0f);
                            else
                                ks->kern[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                            for (long r = row; r < row + mr;) {
                                p = stacked_part_at(count, parts, starts, r);
                                long end = starts[p] + parts[p].m < row + mr ? starts[p] + parts[p].m : row + mr;
                                ks->store_edge(end - r, nr, tile + (r - row) * NR,
                                               parts[p].c + (r - starts[p]) * parts[p].ldc + column, parts[p].ldc,
                                               alpha, pc == 0 ? parts[p].beta : 1.0f);
                                r = end;
                            }
                        }
                    }
                }
            }
        }
    }
    if (starts != small_starts) free(starts);
    return 1;
}

int unroll_sgemm_stacked_b(long count, const unroll_sgemm_stacked_part *parts, const float *packed, int transB,
                           long N, long K, float alpha, const float *B, long ldb, long n0, long n1) {
    long edges[2] = {n0, n1};
    return stacked_b_blocks(count, parts, packed, transB, N, K, alpha, B, ldb, edges, 1);
}

int unroll_sgemm_stacked_b_blocks(long count, const unroll_sgemm_stacked_part *parts, const float *packed, int transB,
                                  long N, long K, float alpha, const float *B, long ldb, const long *edges, long blocks) {
    return stacked_b_blocks(count, parts, packed, transB, N, K, alpha, B, ldb, edges, blocks);
}

int unroll_sgemm_prepacked_a_blocks(int transB, long M, long K, float alpha, const float *packed, const float *B,
                                    long ldb, const long *edges, long blocks, float beta, float *C, long ldc) {
    // One stacked part: its packed layout is unroll_sgemm_pack_a's for M rows, and its tiles those of packed_gemm.
    unroll_sgemm_stacked_part part = {M, 0, packed, 0, beta, C, ldc, 0};
    return stacked_b_blocks(1, &part, packed, transB, LONG_MAX, K, alpha, B, ldb, edges, blocks);
}

// ---------------------------------------------------------------------------------------------------------
// Pre-packed B: op(B) packed once into the blocked path's panel layout and reused by many products (a
// recurrent kernel multiplies the state at every time step). The layout depends only on (K, N): K is cut
// into the same even KC blocks as packed_gemm, and block q (rows p0 .. p0+kc of op(B)) starts at float
// p0 * Npad (Npad = N rounded up to 16); inside it, panel j (columns 16j .. 16j+15) is kc x 16 floats at
// offset 16j * kc, zero-padded past column N. Same blocks, same micro-kernels and the same operation
// order as the blocked path, so a product from packed panels equals unroll_sgemm's blocked result bitwise,
// and every column's result is the same whatever range [n0, n1) a call computes.

static long padded_n(long N) { return ceil_div(N, NR) * NR; }

size_t unroll_sgemm_packed_b_size(long K, long N) {
    if (K <= 0 || N <= 0) return 0;
    return (size_t)K * (size_t)padded_n(N);
}

void unroll_sgemm_pack_b(int transB, long K, long N, const float *B, long ldb, float *packed) {
    if (K <= 0 || N <= 0) return;
    long kc_blocks = kc_block_count(K), kc_size = ceil_div(K, kc_blocks), npad = padded_n(N);
    pack_b_t pack = pack_b_portable;
#if UNROLL_X86
    // The AVX2 packer stores with aligned 32-byte writes.
    if (unroll_kernels_use_avx2() && ((uintptr_t)packed & 31) == 0) pack = pack_b_avx2;
#endif
    for (long pc = 0; pc < K; pc += kc_size) {
        long kc = K - pc < kc_size ? K - pc : kc_size;
        pack(transB, B, ldb, pc, kc, 0, N, packed + pc * npad);
    }
}

/// Plain loops over the packed panels (no workspace): the fallback when the A-packing buffer cannot be had.
static void prepacked_direct(int transA, long M, long K, long npad, long kc_size, float alpha, const float *A,
                             long lda, const float *packed, long n0, long n1, float beta, float *C, long ldc) {
    long sai = transA ? 1 : lda, sap = transA ? lda : 1;
    for (long i = 0; i < M; i++)
        for (long j = n0; j < n1; j++) {
            float s = 0.0f;
            for (long p = 0; p < K; p++) {
                long p0 = p / kc_size * kc_size, kc = K - p0 < kc_size ? K - p0 : kc_size;
                s += A[i * sai + p * sap] * packed[p0 * npad + (j / NR * NR) * kc + (p - p0) * NR + j % NR];
            }
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
        }
}

/// Largest M * K (floats of op(A)) for which unroll_sgemm_prepacked_b reads a non-transposed A in place: the
/// packing pass is saved and the rows can be blocked freely (rows_block). Measured on Zen 4 with K blocks of up
/// to 512 (Benchmarks/kernels, `./kbench rows`): 0.3-18% faster from 8 x 128 up to 256 x 1600 (400K floats),
/// 2% slower at 1024 x 1024, where A no longer stays in L2.
#define ROWS_IN_PLACE_MAX_MK (512L * 1024)

/// Rows for the next in-place micro-kernel call when `left` rows remain. A kernel of R rows keeps 2R fma chains
/// in flight, and two FMA pipes of latency 4 need 8 to stay busy: so the last 7-9 rows go as 4 + 3, 4 + 4 and
/// 5 + 4 rather than 6 + 1, 6 + 2 and 6 + 3 (8 rows: 6 + 2 ran at ~80% of 4 + 4; measured with `./kbench rows`).
/// Otherwise as many 6-row blocks as fit: the 6-row kernel is the fastest per row, and ending in 5s instead of a 4
/// (16 = 6 + 5 + 5) was 0.4-1.5% slower.
/// Rows are independent, so the blocking does not change any bit.
static long rows_block(long left) {
    if (left == 7 || left == 8) return 4;
    if (left == 9) return 5;
    return left < MR ? left : MR;
}

/// Columns [n0, n1) from the packed panels with op(A) read in place (transA == 0): the blocked path's K blocks
/// and micro-kernel operation order, so the bits equal the packed-A path.
static void prepacked_rows(const kernel_set *ks, long M, long K, long npad, long kc_size, float alpha,
                           const float *A, long lda, const float *packed, long n0, long n1, float beta,
                           const float *c_row, const outer_addend *outer, float *C, long ldc) {
    _Alignas(64) float tile[MR * NR];
    for (long pc = 0; pc < K; pc += kc_size) {
        long kc = K - pc < kc_size ? K - pc : kc_size;
        float beta_eff = pc == 0 && !c_row && !outer ? beta : 1.0f;
        const float *block = packed + pc * npad;
        for (long js = n0 / NR * NR; js < n1; js += NR) {
            long lo = (n0 > js ? n0 : js) - js, hi = (n1 < js + NR ? n1 : js + NR) - js;
            const float *bpanel = block + js * kc;
            for (long ir = 0, mr; ir < M; ir += mr) {
                mr = rows_block(M - ir);
                const float *arows = A + ir * lda + pc;
                float *cptr = C + ir * ldc + js + lo;
                if ((c_row || outer) && pc == 0) {
                    ks->rows[mr](kc, arows, lda, bpanel, NR, tile, NR, 1.0f, 0.0f);
                    if (outer)
                        ks->store_outer(mr, hi - lo, tile + lo, outer->x + ir * outer->ldx, outer->ldx,
                                        outer->w + js + lo, c_row ? c_row + js + lo : NULL, cptr, ldc, alpha);
                    else
                        ks->store_row(mr, hi - lo, tile + lo, c_row + js + lo, cptr, ldc, alpha);
                } else if (lo == 0 && hi == NR) {
                    ks->rows[mr](kc, arows, lda, bpanel, NR, cptr, ldc, alpha, beta_eff);
                } else {
                    ks->rows[mr](kc, arows, lda, bpanel, NR, tile, NR, 1.0f, 0.0f);
                    ks->store_edge(mr, hi - lo, tile + lo, cptr, ldc, alpha, beta_eff);
                }
            }
        }
    }
}

/// Writes columns [n0, n1) of the outer-product addend x wᵀ (+ row) into C, rounded as store_outer_* round it (the
/// fallback paths then add the product onto it with beta = 1).
static void spread_outer(long M, long n0, long n1, const outer_addend *outer, const float *row, float *C, long ldc) {
    for (long i = 0; i < M; i++)
        for (long j = n0; j < n1; j++) {
            float a = 0.0f + outer->x[i * outer->ldx] * outer->w[j];
            C[i * ldc + j] = row ? 1.0f * a + row[j] : a;
        }
}

/// unroll_sgemm_prepacked_b_choosing, with `c_row` as unroll_sgemm_prepacked_b_row (beta ignored), and with `outer`
/// as unroll_sgemm_prepacked_b_outer (c_row then the row of its addend).
static void prepacked_b(int a_in_place, int transA, long M, long N, long K, float alpha, const float *A, long lda,
                        const float *packed, long n0, long n1, float beta, const float *c_row,
                        const outer_addend *outer, float *C, long ldc) {
    if (n1 > N) n1 = N;
    if (n0 < 0) n0 = 0;
    if (M <= 0 || n1 <= n0) return;
    if (K <= 0 || alpha == 0.0f) {
        if (outer) spread_outer(M, n0, n1, outer, c_row, C, ldc);
        else if (c_row) spread_row(M, n1 - n0, c_row + n0, C + n0, ldc);
        else scale_c(M, n1 - n0, beta, C + n0, ldc);
        return;
    }
    const kernel_set *ks = &portable_set;
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) ks = &avx2_set;
#endif
    long kc_blocks = kc_block_count(K), kc_size = ceil_div(K, kc_blocks), npad = padded_n(N);
    if (a_in_place < 0) {
        // The inline-assembly kernels of debug builds have no in-place twin: the intrinsics ones would be slower.
#if defined(UNROLL_HAVE_ASM_KERNEL) && (!defined(__OPTIMIZE__) || defined(UNROLL_FORCE_ASM_KERNEL))
        a_in_place = 0;
#else
        a_in_place = M * K <= ROWS_IN_PLACE_MAX_MK;
#endif
    }
    if (a_in_place && !transA && ks->rows[1]) {
        prepacked_rows(ks, M, K, npad, kc_size, alpha, A, lda, packed, n0, n1, beta, c_row, outer, C, ldc);
        return;
    }
    long mc_blocks = ceil_div(M, MC_MAX), mc_size = ceil_div(ceil_div(M, mc_blocks), MR) * MR;
    workspace *ws = get_ws((size_t)mc_size * kc_size, 0);
    if (!ws) {
        if (outer) {
            spread_outer(M, n0, n1, outer, c_row, C, ldc);
            beta = 1.0f;
        } else if (c_row) {
            spread_row(M, n1 - n0, c_row + n0, C + n0, ldc);
            beta = 1.0f;
        }
        prepacked_direct(transA, M, K, npad, kc_size, alpha, A, lda, packed, n0, n1, beta, C, ldc);
        return;
    }
    float *ap = ws->a;
    _Alignas(64) float tile[MR * NR];
    for (long pc = 0; pc < K; pc += kc_size) {
        long kc = K - pc < kc_size ? K - pc : kc_size;
        float beta_eff = pc == 0 && !c_row && !outer ? beta : 1.0f;
        const float *block = packed + pc * npad;
        for (long ic = 0; ic < M; ic += mc_size) {
            long mc = M - ic < mc_size ? M - ic : mc_size;
            ks->pack_a(transA, A, lda, ic, mc, pc, kc, ap);
            for (long js = n0 / NR * NR; js < n1; js += NR) {
                long lo = (n0 > js ? n0 : js) - js, hi = (n1 < js + NR ? n1 : js + NR) - js;
                const float *bpanel = block + js * kc;
                for (long ir = 0; ir < mc; ir += MR) {
                    long mr = mc - ir < MR ? mc - ir : MR;
                    const float *apanel = ap + ir * kc;
                    float *cptr = C + (ic + ir) * ldc + js + lo;
                    if ((c_row || outer) && pc == 0) {
                        if (hi <= 8 && ks->kern8[mr])
                            ks->kern8[mr](kc, apanel, bpanel, NR, tile, NR, 1.0f, 0.0f);
                        else
                            ks->kern[mr](kc, apanel, bpanel, NR, tile, NR, 1.0f, 0.0f);
                        if (outer)
                            ks->store_outer(mr, hi - lo, tile + lo, outer->x + (ic + ir) * outer->ldx, outer->ldx,
                                            outer->w + js + lo, c_row ? c_row + js + lo : NULL, cptr, ldc, alpha);
                        else
                            ks->store_row(mr, hi - lo, tile + lo, c_row + js + lo, cptr, ldc, alpha);
                    } else if (lo == 0 && hi == NR) {
                        ks->kern[mr](kc, apanel, bpanel, NR, cptr, ldc, alpha, beta_eff);
                    } else {
                        if (hi <= 8 && ks->kern8[mr])
                            ks->kern8[mr](kc, apanel, bpanel, NR, tile, NR, 1.0f, 0.0f);
                        else
                            ks->kern[mr](kc, apanel, bpanel, NR, tile, NR, 1.0f, 0.0f);
                        ks->store_edge(mr, hi - lo, tile + lo, cptr, ldc, alpha, beta_eff);
                    }
                }
            }
        }
    }
}

void unroll_sgemm_prepacked_b_choosing(int a_in_place, int transA, long M, long N, long K, float alpha,
                                       const float *A, long lda, const float *packed, long n0, long n1, float beta,
                                       float *C, long ldc) {
    prepacked_b(a_in_place, transA, M, N, K, alpha, A, lda, packed, n0, n1, beta, NULL, NULL, C, ldc);
}

void unroll_sgemm_prepacked_b(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                              const float *packed, long n0, long n1, float beta, float *C, long ldc) {
    prepacked_b(-1, transA, M, N, K, alpha, A, lda, packed, n0, n1, beta, NULL, NULL, C, ldc);
}

void unroll_sgemm_prepacked_b_row(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                                  const float *packed, long n0, long n1, const float *row, float *C, long ldc) {
    prepacked_b(-1, transA, M, N, K, alpha, A, lda, packed, n0, n1, 1.0f, row, NULL, C, ldc);
}

void unroll_sgemm_prepacked_b_outer(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                                    const float *packed, long n0, long n1, const float *x, long ldx, const float *w,
                                    const float *row, float *C, long ldc) {
    outer_addend outer = {x, ldx, w};
    prepacked_b(-1, transA, M, N, K, alpha, A, lda, packed, n0, n1, 1.0f, row, &outer, C, ldc);
}
