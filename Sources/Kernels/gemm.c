// Single-precision GEMM, row-major, one thread per call (thread-safe).
//
// Large problems: BLIS-style blocking. op(B) is packed into 16-column panels (KC x NC block), op(A) into
// 6-row panels (MC x KC block), and a 6x16 register-blocked micro-kernel (12 ymm accumulators, 2 B vectors
// and a broadcast) computes each tile. Transposes are absorbed by the packing routines. Edge tiles go through
// a small aligned buffer. Packing buffers are per-thread (thread-local, 64-byte aligned, grown on demand and
// freed when the thread exits).
// Small or skinny problems (few flops, M <= 4, N <= 4) take a direct loop without packing.
//
// AVX2 + FMA code lives in functions marked target("avx2,fma") and is chosen at run time; the portable
// path uses the same blocking with plain C kernels.
#include "Kernels.h"
#include "kernels_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if UNROLL_X86
#include <immintrin.h>
#endif

#define MR 6
#define NR 16
#define KC_MAX 256
#define MC_MAX 144   // multiple of MR
#define NC_MAX 2048  // multiple of NR

// ---------------------------------------------------------------------------------------------------------
// Thread-local packing workspace.

typedef struct {
    float *a, *b;
    size_t a_cap, b_cap;  // in floats
} workspace;

static _Thread_local workspace *tls_ws;
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_destroy(void *p) {
    workspace *w = (workspace *)p;
    if (!w) return;
    free(w->a);
    free(w->b);
    free(w);
}

static void ws_make_key(void) { (void)pthread_key_create(&ws_key, ws_destroy); }

static float *alloc_floats(size_t n) {
    // Padding past the end: the AVX2 A-packing writes up to 2 floats beyond a panel (later overwritten).
    size_t bytes = ((n + 32) * sizeof(float) + 63) & ~(size_t)63;
    return (float *)aligned_alloc(64, bytes);
}

static workspace *get_ws(size_t a_need, size_t b_need) {
    workspace *w = tls_ws;
    if (!w) {
        pthread_once(&ws_once, ws_make_key);
        w = (workspace *)calloc(1, sizeof(workspace));
        if (!w) return NULL;
        tls_ws = w;
        (void)pthread_setspecific(ws_key, w);
    }
    if (w->a_cap < a_need) {
        free(w->a);
        w->a = alloc_floats(a_need);
        w->a_cap = w->a ? a_need : 0;
    }
    if (w->b_cap < b_need) {
        free(w->b);
        w->b = alloc_floats(b_need);
        w->b_cap = w->b ? b_need : 0;
    }
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

typedef void (*ukernel_t)(long, const float *, const float *, long, float *, long, float, float);
typedef void (*pack_a_t)(int, const float *, long, long, long, long, long, float *);
typedef void (*pack_b_t)(int, const float *, long, long, long, long, long, float *);

/// One implementation of the blocked algorithm: micro-kernels by row count (index 1..MR) and packers.
typedef struct {
    ukernel_t kern[MR + 1];
    ukernel_t kern8[MR + 1];  // 8-column variants (optional: NULL entries fall back to kern)
    pack_a_t pack_a;
    pack_b_t pack_b;
} kernel_set;

static const kernel_set portable_set = {
    {NULL, ukernel_portable_1, ukernel_portable_2, ukernel_portable_3, ukernel_portable_4, ukernel_portable_5,
     ukernel_portable_6},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    pack_a_portable, pack_b_portable};

/// Direct (unpacked) GEMM for small problems, portable. Requires K >= 1.
static void direct_portable(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                            long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    long sai = transA ? 1 : lda, sap = transA ? lda : 1;  // op(A)[i,p] = A[i*sai + p*sap]
    long sbp = transB ? 1 : ldb, sbj = transB ? ldb : 1;  // op(B)[p,j] = B[p*sbp + j*sbj]
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (long j = 0; j < N; j++) {
            float s = 0.0f;
            for (long p = 0; p < K; p++) s += A[i * sai + p * sap] * B[p * sbp + j * sbj];
            c[j] = beta == 0.0f ? alpha * s : alpha * s + beta * c[j];
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

UNROLL_AVX2
static void pack_a_avx2(int transA, const float *A, long lda, long i0, long mc, long p0, long kc,
                        float *dst) {
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
                _mm256_storeu_ps(o + 7 * MR, r7);  // spills 2 floats into the next slot: rewritten next
            }
            for (; p < kc; p++)
                for (long r = 0; r < MR; r++) d[p * MR + r] = a[r * lda + p];
        } else if (transA && m == MR) {
            const float *a = A + p0 * lda + i0 + ip;
            for (long p = 0; p < kc; p++) {
                const float *s = a + p * lda;
                float *o = d + p * MR;
                _mm_storeu_ps(o, _mm_loadu_ps(s));
                o[4] = s[4];
                o[5] = s[5];
            }
        } else {
            pack_a_portable(transA, A, lda, i0 + ip, m, p0, kc, d);
        }
    }
}

UNROLL_AVX2
static void pack_b_avx2(int transB, const float *B, long ldb, long p0, long kc, long j0, long nc,
                        float *dst) {
    for (long jp = 0; jp < nc; jp += NR) {
        long n = nc - jp < NR ? nc - jp : NR;
        float *d = dst + jp * kc;
        if (n < NR) {
            pack_b_portable(transB, B, ldb, p0, kc, j0 + jp, n, d);
        } else if (!transB) {
            const float *b = B + p0 * ldb + j0 + jp;
            long p = 0;
            for (; p + 2 <= kc; p += 2) {
                __m256 x0 = _mm256_loadu_ps(b + p * ldb), x1 = _mm256_loadu_ps(b + p * ldb + 8);
                __m256 y0 = _mm256_loadu_ps(b + (p + 1) * ldb), y1 = _mm256_loadu_ps(b + (p + 1) * ldb + 8);
                _mm256_store_ps(d + p * NR, x0);
                _mm256_store_ps(d + p * NR + 8, x1);
                _mm256_store_ps(d + p * NR + 16, y0);
                _mm256_store_ps(d + p * NR + 24, y1);
            }
            for (; p < kc; p++) {
                _mm256_store_ps(d + p * NR, _mm256_loadu_ps(b + p * ldb));
                _mm256_store_ps(d + p * NR + 8, _mm256_loadu_ps(b + p * ldb + 8));
            }
        } else {
            const float *b = B + (j0 + jp) * ldb + p0;
            long p = 0;
            for (; p + 8 <= kc; p += 8) {
                for (int h = 0; h < 2; h++) {
                    const float *s = b + (long)h * 8 * ldb + p;
                    __m256 r0 = _mm256_loadu_ps(s + 0 * ldb), r1 = _mm256_loadu_ps(s + 1 * ldb);
                    __m256 r2 = _mm256_loadu_ps(s + 2 * ldb), r3 = _mm256_loadu_ps(s + 3 * ldb);
                    __m256 r4 = _mm256_loadu_ps(s + 4 * ldb), r5 = _mm256_loadu_ps(s + 5 * ldb);
                    __m256 r6 = _mm256_loadu_ps(s + 6 * ldb), r7 = _mm256_loadu_ps(s + 7 * ldb);
                    TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
                    float *o = d + p * NR + h * 8;
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
            for (; p < kc; p++)
                for (long c = 0; c < NR; c++) d[p * NR + c] = b[c * ldb + p];
        }
    }
}

// Micro-kernels: R x 16 tile (R = 1..6 rows of the packed A panel; R = 6 is the main kernel) with
// 2R ymm accumulators. B rows are `ldbk` floats apart: NR for a packed panel, ldb when B is read in place.
#define UK_ROW(r, off)                                                                    \
    if (UK_R > r) {                                                                        \
        __m256 av = _mm256_broadcast_ss(a + (off) * MR + r);                              \
        c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                       \
        c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                                       \
    }
#define UK_STEP(off, boff)                                                                \
    do {                                                                                  \
        __m256 b0 = _mm256_loadu_ps(b + (boff)), b1 = _mm256_loadu_ps(b + (boff) + 8);    \
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

#ifndef UK_PF_DIST
#define UK_PF_DIST 8
#endif
#if UK_PF_DIST > 0
#define UK_PF do { _mm_prefetch((const char *)(b + UK_PF_DIST * ldbk), _MM_HINT_T0); \
                   _mm_prefetch((const char *)(b + (UK_PF_DIST + 1) * ldbk), _MM_HINT_T0); \
                   _mm_prefetch((const char *)(b + (UK_PF_DIST + 2) * ldbk), _MM_HINT_T0); \
                   _mm_prefetch((const char *)(b + (UK_PF_DIST + 3) * ldbk), _MM_HINT_T0); } while (0)
#else
#define UK_PF do {} while (0)
#endif
/// C[R,16] = alpha * A(R rows of a 6 x kc panel) * B(kc x 16, rows ldbk apart) + beta * C (beta 0: not read).
#define DEFINE_UKERNEL(R)                                                                 \
    UNROLL_AVX2 static void ukernel_avx2_##R(long kc, const float *a, const float *b, long ldbk, float *c, \
                                             long ldc, float alpha, float beta) {        \
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
            UK_PF;                                                                        \
            UK_STEP(0, 0);                                                                \
            UK_STEP(1, ldbk);                                                             \
            UK_STEP(2, 2 * ldbk);                                                         \
            UK_STEP(3, 3 * ldbk);                                                         \
            a += 4 * MR;                                                                  \
            b += 4 * ldbk;                                                                \
            k -= 4;                                                                       \
        }                                                                                 \
        while (k > 0) {                                                                   \
            UK_STEP(0, 0);                                                                \
            a += MR;                                                                      \
            b += ldbk;                                                                    \
            k--;                                                                          \
        }                                                                                 \
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);                     \
        UK_STORE_ROW(0) UK_STORE_ROW(1) UK_STORE_ROW(2) UK_STORE_ROW(3) UK_STORE_ROW(4) UK_STORE_ROW(5) \
        (void)c01; (void)c11; (void)c21; (void)c31; (void)c41; (void)c51;                 \
        (void)c00; (void)c10; (void)c20; (void)c30; (void)c40; (void)c50;                 \
    }

DEFINE_UKERNEL(1)
DEFINE_UKERNEL(2)
DEFINE_UKERNEL(3)
DEFINE_UKERNEL(4)
DEFINE_UKERNEL(5)
DEFINE_UKERNEL(6)


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

/// Direct GEMM with transA == 0, transB == 1: C[i,j] = dot(A row i, B row j), both contiguous. K >= 1.
UNROLL_AVX2
static void direct_nt_avx2(long M, long N, long K, float alpha, const float *A, long lda, const float *B,
                           long ldb, float beta, float *C, long ldc) {
    __m256i kmask = tail_mask(K & 7);
    long kfull = K & ~7L;
    for (long i = 0; i < M; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        long j = 0;
        for (; j + 4 <= N; j += 4) {
            const float *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            __m256 x0 = _mm256_setzero_ps(), x1 = _mm256_setzero_ps();
            __m256 x2 = _mm256_setzero_ps(), x3 = _mm256_setzero_ps();
            long p = 0;
            for (; p < kfull; p += 8) {
                __m256 av = _mm256_loadu_ps(a + p);
                x0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + p), x0);
                x1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + p), x1);
                x2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + p), x2);
                x3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + p), x3);
            }
            if (p < K) {
                __m256 av = _mm256_maskload_ps(a + p, kmask);
                x0 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b0 + p, kmask), x0);
                x1 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b1 + p, kmask), x1);
                x2 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b2 + p, kmask), x2);
                x3 = _mm256_fmadd_ps(av, _mm256_maskload_ps(b3 + p, kmask), x3);
            }
            float s[4] = {hsum256(x0), hsum256(x1), hsum256(x2), hsum256(x3)};
            for (int q = 0; q < 4; q++)
                c[j + q] = beta == 0.0f ? alpha * s[q] : alpha * s[q] + beta * c[j + q];
        }
        for (; j < N; j++) {
            const float *b0 = B + j * ldb;
            __m256 x0 = _mm256_setzero_ps();
            long p = 0;
            for (; p < kfull; p += 8) x0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), _mm256_loadu_ps(b0 + p), x0);
            if (p < K)
                x0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + p, kmask), _mm256_maskload_ps(b0 + p, kmask), x0);
            float s = hsum256(x0);
            c[j] = beta == 0.0f ? alpha * s : alpha * s + beta * c[j];
        }
    }
}

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
                                              long ldc, float alpha, float beta) {       \
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

/// Skinny and tiny problems without packing. Returns 0 when the blocked path should be used.
UNROLL_AVX2
static int skinny_avx2(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                       const float *B, long ldb, float beta, float *C, long ldc, int tiny) {
    if (!transB) {
        if (tiny || M == 1) {
            direct_nn_avx2(transA, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return 1;
        }
    } else if (!transA) {
        if (tiny || M <= 2) {
            direct_nt_avx2(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return 1;
        }
    } else if (M <= 2) {
        // A^T B^T with one or two rows: gather the rows of op(A) (columns of A), then dot products.
        workspace *ws = get_ws((size_t)M * K, 0);
        if (!ws) return 0;
        float *t = ws->a;
        for (long p = 0; p < K; p++)
            for (long i = 0; i < M; i++) t[i * K + p] = A[p * lda + i];
        direct_nt_avx2(M, N, K, alpha, t, K, B, ldb, beta, C, ldc);
        return 1;
    }
    if (N <= 4) {
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
    {NULL, ukernel_avx2_1, ukernel_avx2_2, ukernel_avx2_3, ukernel_avx2_4, ukernel_avx2_5, ukernel_avx2_6},
    {NULL, ukernel8_avx2_1, ukernel8_avx2_2, ukernel8_avx2_3, ukernel8_avx2_4, ukernel8_avx2_5, ukernel8_avx2_6},
    pack_a_avx2, pack_b_avx2};
#endif  // UNROLL_X86

// ---------------------------------------------------------------------------------------------------------
// Blocked driver.

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

long unroll_gemm_unpacked_max_m = 24;  // tuning knob (see below); in kernels_internal.h for the harness

static int packed_gemm(const kernel_set *ks, int transA, int transB, long M, long N, long K, float alpha,
                       const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    // Even splits of K and M so that no block is a tiny remainder.
    long kc_blocks = ceil_div(K, KC_MAX);
    long kc_size = ceil_div(K, kc_blocks);
    long mc_blocks = ceil_div(M, MC_MAX);
    long mc_size = ceil_div(ceil_div(M, mc_blocks), MR) * MR;
    long nc_blocks = ceil_div(N, NC_MAX);
    long nc_size = ceil_div(ceil_div(N, nc_blocks), NR) * NR;
    // With few rows, each packed element of B would be used only a few times: read B in place instead
    // (non-transposed B only; a ragged last panel is still packed so that nothing past column N is read).
    int b_in_place = !transB && M <= unroll_gemm_unpacked_max_m;
    workspace *ws = get_ws((size_t)mc_size * kc_size, (size_t)kc_size * (b_in_place ? NR : nc_size));
    if (!ws) return 0;
    float *ap = ws->a, *bp = ws->b;
    _Alignas(64) float tile[MR * NR];

    for (long jc = 0; jc < N; jc += nc_size) {
        long nc = N - jc < nc_size ? N - jc : nc_size;
        for (long pc = 0; pc < K; pc += kc_size) {
            long kc = K - pc < kc_size ? K - pc : kc_size;
            float beta_eff = pc == 0 ? beta : 1.0f;
            if (!b_in_place) ks->pack_b(transB, B, ldb, pc, kc, jc, nc, bp);
            for (long ic = 0; ic < M; ic += mc_size) {
                long mc = M - ic < mc_size ? M - ic : mc_size;
                ks->pack_a(transA, A, lda, ic, mc, pc, kc, ap);
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
                        if (nr == NR) {
                            ks->kern[mr](kc, apanel, bpanel, ldbk, cptr, ldc, alpha, beta_eff);
                        } else if (nr <= 8 && ks->kern8[mr]) {
                            ks->kern8[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                            store_edge(mr, nr, tile, cptr, ldc, alpha, beta_eff);
                        } else {
                            ks->kern[mr](kc, apanel, bpanel, ldbk, tile, NR, 1.0f, 0.0f);
                            store_edge(mr, nr, tile, cptr, ldc, alpha, beta_eff);
                        }
                    }
                }
            }
        }
    }
    return 1;
}

void unroll_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb,
                  float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    int tiny = (double)M * (double)N * (double)K <= 8192.0;
#if UNROLL_X86
    if (unroll_kernels_use_avx2()) {
        if (skinny_avx2(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, tiny)) return;
        if (packed_gemm(&avx2_set, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
        // Out of memory for the workspace: fall back to the plain loop.
        direct_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    if (tiny || M <= 2 || N <= 2 ||
        !packed_gemm(&portable_set, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        direct_portable(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
