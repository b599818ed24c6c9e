#ifndef UNROLL_KERNELS_H
#define UNROLL_KERNELS_H

#include <stddef.h>
#include "Linalg.h"
#include "Elementwise.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major single-precision GEMM on one thread:
///   C[M,N] = alpha * op(A) * op(B) + beta * C
/// op(A) is A ([M,K], row stride lda) when transA == 0, else A^T with A stored [K,M] (row stride lda).
/// op(B) is B ([K,N], row stride ldb) when transB == 0, else B^T with B stored [N,K] (row stride ldb).
/// beta == 0 means C is written without being read (it may hold garbage or NaN). alpha == 0 or K == 0 only
/// scales C by beta (A and B are not read).
/// Thread-safe: callers may run it on disjoint blocks of C from several threads at once (each thread keeps
/// its own packing buffers). To use 2 cores, split N in multiples of 16 (each part packs only its own
/// columns of B); split M (in multiples of 6) only when N is small. Results depend only on the shape of
/// each call, so a fixed split gives bitwise-reproducible results.
/// AVX2 + FMA kernels (~90% of a core's peak on large shapes) are chosen at run time; see
/// Benchmarks/kernels for tests and measurements.
void unroll_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb,
                  float beta, float *C, long ldc);

/// unroll_sgemm with a row addend: C[M,N] = alpha * op(A) * op(B) + row, `row` (N floats) added to every row. C is
/// written without being read. The blocked path stores each tile of its first K block onto the row, rounded as its
/// beta == 1 store rounds onto C, so the bits are those of spreading the row into C and calling unroll_sgemm with
/// beta == 1, without that pass over C (a bias added to a product: `x·W + b`); the other paths do spread it first.
void unroll_sgemm_row(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                      const float *B, long ldb, const float *row, float *C, long ldc);

/// The largest K that unroll_sgemm and unroll_sgemm_prepacked_b accumulate in one pass over op(A)·op(B) (larger
/// ones are summed block by block into C). Up to it, with alpha == 1 and beta == 1 every path stores
/// fl(acc + C): the bits of the product computed with beta == 0 and then added to C.
long unroll_sgemm_max_single_pass_k(void);
/// Asks the cache for `rows` rows of `columns` floats, `stride` floats apart, before a GEMM packs them: one
/// prefetch per cache line, all issued at once, so the lines arrive in parallel where the packing loops, one
/// 4 KiB page of rows after another, would wait for them a few at a time (a weight gradient's operands, written
/// long before, come from L3 or memory). Changes no value.
void unroll_prefetch_rows(const float *p, long rows, long columns, long stride);

/// Pre-packed A, for a product computed as several column blocks (one call each, possibly on several threads):
/// pack op(A) once with unroll_sgemm_pack_a, then compute each block with unroll_sgemm_prepacked_a, instead of
/// every unroll_sgemm call packing all of op(A) again. The results are bitwise those of unroll_sgemm wherever
/// unroll_sgemm_packs_a says it takes its blocked path (same K blocks, micro-kernels and operation order).
///
/// 1 when unroll_sgemm(transA, transB, M, N, K, alpha, ...) takes its blocked path, which packs op(A) into panels;
/// 0 when it takes a skinny or tiny shortcut (or has nothing to multiply), whose bits pre-packed A would not give.
int unroll_sgemm_packs_a(int transA, int transB, long M, long N, long K, float alpha);
/// The number of floats a packed op(A) of M rows and K columns needs: K * (M rounded up to 6).
size_t unroll_sgemm_packed_a_size(long M, long K);
/// A buffer of at least `count` floats (64-byte aligned) owned by the calling thread: grown on demand, reused by
/// the thread's later calls, freed when the thread exits. Other threads may write and read it while the owner
/// waits for them (the owner's own GEMM calls never touch it). NULL when out of memory.
float *unroll_sgemm_packed_a_buffer(size_t count);
/// Packs rows [i0, i1) of op(A) ([M, K]: A stored [M, K] when transA == 0, else A stored [K, M] and read
/// transposed; row stride lda) into `packed` (unroll_sgemm_packed_a_size(M, K) floats), as panels of 6 rows.
/// i0 must be a multiple of 6; i1 a multiple of 6 or M. Calls on disjoint row ranges of one buffer may run on
/// several threads at once (nothing outside a range's panels is written). The layout depends only on M and K.
void unroll_sgemm_pack_a(int transA, long M, long K, const float *A, long lda, long i0, long i1, float *packed);
/// Columns [n0, n1) of C[M,N] = alpha * op(A) * op(B) + beta * C, with op(A) from unroll_sgemm_pack_a(.., M, K,
/// ..) over all rows. B and C point at column 0 (op(B) as for unroll_sgemm); only columns n0 ..< n1 are written.
/// Each call packs its own columns of B (or reads a non-transposed B in place, as unroll_sgemm decides).
/// Thread-safe; every column's bits are the same whatever [n0, n1) a call computes. Returns 0 (nothing
/// written) when out of memory for the B-packing buffer, else 1.
int unroll_sgemm_prepacked_a(int transB, long M, long K, float alpha, const float *packed, const float *B, long ldb,
                             long n0, long n1, float beta, float *C, long ldc);

/// unroll_sgemm_prepacked_a over the column blocks [edges[q], edges[q+1]) for q < blocks (edges ascending,
/// contiguous), bitwise one call per block, the K blocks outermost: the single-part case of
/// unroll_sgemm_stacked_b_blocks (op(A) packed by unroll_sgemm_pack_a is a stack of one part).
int unroll_sgemm_prepacked_a_blocks(int transB, long M, long K, float alpha, const float *packed, const float *B,
                                    long ldb, const long *edges, long blocks, float beta, float *C, long ldc);

/// One part of a stacked left operand (unroll_sgemm_pack_stacked_a, unroll_sgemm_stacked_b): m rows of op(A)
/// (A [m, K], or with trans_a A stored [K, m]; with a NULL A, rows of ones: the product is then the column sums
/// of op(B), a bias gradient), and its product's C (row stride ldc, pointing at column 0) and beta. zero_k: how
/// many leading rows of K op(A) is zero in (a recurrent layer's zero initial state): while they lie in the first K
/// block, the kernel starts that block's sum after them for the panels of this part alone, which gives the same
/// bits as summing their +0 products for a finite B (an fma chain from +0 stays +0 over them).
typedef struct {
    long m;
    int trans_a;
    const float *a;
    long lda;
    float beta;
    float *c;
    long ldc;
    long zero_k;
} unroll_sgemm_stacked_part;
/// Floats of the packed op(A) that stacks the parts' rows in order (unroll_sgemm_pack_a's layout for their total).
size_t unroll_sgemm_stacked_a_size(long count, const unroll_sgemm_stacked_part *parts, long K);
/// Packs the 6-row panels [panel0, panel1) of the parts' rows stacked in order into `packed`
/// (unroll_sgemm_stacked_a_size floats). Threads may pack disjoint panel ranges of one buffer at once.
void unroll_sgemm_pack_stacked_a(long count, const unroll_sgemm_stacked_part *parts, long K, long panel0, long panel1,
                                 float *packed);
/// Columns [n0, n1) of `count` products sharing their right operand, C_i[m_i, N] = alpha * op(A_i) * op(B) + beta_i *
/// C_i, from their rows stacked and packed by unroll_sgemm_pack_stacked_a: each K x N block of op(B) is packed once
/// for all of them, and a part of one or two rows fills the padding of another's last 6-row panel. A part that
/// unroll_sgemm runs through its blocked path (unroll_sgemm_packs_a) gets its bits, and every column's bits are the
/// same whatever [n0, n1) a call computes. The C_i must not overlap each other, B or the packed operand.
/// Thread-safe; returns 0 (nothing written) when out of memory for the B-packing buffer.
int unroll_sgemm_stacked_b(long count, const unroll_sgemm_stacked_part *parts, const float *packed, int transB,
                           long N, long K, float alpha, const float *B, long ldb, long n0, long n1);
/// unroll_sgemm_stacked_b over the column blocks [edges[q], edges[q+1]) for q < blocks (edges ascending,
/// contiguous), bitwise one call per block, with the K blocks outermost: each K block of the packed op(A) is read from
/// L2 by all the blocks in turn instead of once per block from L3.
int unroll_sgemm_stacked_b_blocks(long count, const unroll_sgemm_stacked_part *parts, const float *packed, int transB,
                                  long N, long K, float alpha, const float *B, long ldb, const long *edges, long blocks);

/// Pre-packed B, for a matrix that is the right operand of many products (a recurrent kernel, used at every
/// time step): pack op(B) once with unroll_sgemm_pack_b, then multiply any number of left operands by it with
/// unroll_sgemm_prepacked_b, which skips the packing pass unroll_sgemm does on every call.
///
/// The number of floats a packed op(B) of K rows and N columns needs: K * (N rounded up to 16).
size_t unroll_sgemm_packed_b_size(long K, long N);
/// Packs op(B) ([K, N]: B stored [K, N] when transB == 0, else B stored [N, K] and read transposed; row stride
/// ldb) into `packed` (unroll_sgemm_packed_b_size(K, N) floats; 64-byte alignment is fastest). The layout
/// depends only on K and N.
void unroll_sgemm_pack_b(int transB, long K, long N, const float *B, long ldb, float *packed);
/// Columns [n0, n1) of C[M,N] = alpha * op(A) * op(B) + beta * C, with op(B) from unroll_sgemm_pack_b(.., K, N,
/// ..). C points at column 0 of C (row stride ldc); only columns n0 ..< n1 are written. op(A) as for
/// unroll_sgemm. Callers split N over threads on the same packed panels: with n0 a multiple of 16 no panel is
/// computed twice. Every column's result is bitwise the same whatever [n0, n1) and M-blocking the call uses,
/// and equals unroll_sgemm's blocked (packed) path for the same shape. Thread-safe (the packed panels are
/// only read; each thread packs op(A) into its own buffer, or reads a small non-transposed A in place).
void unroll_sgemm_prepacked_b(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                              const float *packed, long n0, long n1, float beta, float *C, long ldc);
/// unroll_sgemm_prepacked_b with a row addend, as unroll_sgemm_row: columns [n0, n1) of alpha * op(A) * op(B) + row
/// (`row` points at column 0, like C).
void unroll_sgemm_prepacked_b_row(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                                  const float *packed, long n0, long n1, const float *row, float *C, long ldc);
/// unroll_sgemm_prepacked_b onto an outer-product addend: columns [n0, n1) of alpha * op(A) * op(B) + a, with
/// a[i][j] = x[i * ldx] * w[j] (+ row[j] when `row` is not NULL). `w` and `row` point at column 0, like C. The bits
/// are those of a K = 1 product x·wᵀ (unroll_sgemm_row onto `row`, or unroll_sgemm) stored into C and this product
/// then added into it with beta = 1: the addend is formed as each tile is stored, so C is written once, never read.
void unroll_sgemm_prepacked_b_outer(int transA, long M, long N, long K, float alpha, const float *A, long lda,
                                    const float *packed, long n0, long n1, const float *x, long ldx, const float *w,
                                    const float *row, float *C, long ldc);
/// unroll_sgemm_prepacked_b with its choice for a non-transposed A forced, for tests and benchmarks: 1 reads the
/// rows of A in place (where the CPU's kernels allow it), 0 packs A into panels, -1 decides by size as
/// unroll_sgemm_prepacked_b does. The result bits are the same either way.
void unroll_sgemm_prepacked_b_choosing(int a_in_place, int transA, long M, long N, long K, float alpha,
                                       const float *A, long lda, const float *packed, long n0, long n1, float beta,
                                       float *C, long ldc);

/// Vector transcendentals (8-wide AVX2 + FMA polynomials, 16-wide with the same bits where AVX-512F is there; max
/// relative error ~1e-7 for exp, ~2e-7 for tanh and sigmoid; NaN in, NaN out). Any n >= 0; a tail shorter than a
/// vector is handled with masked accesses.
/// y[i] = exp(x[i]); x and y may be the same array. exp(x) = +inf above ~88.72, subnormal below ~-87.3,
/// 0 below ~-103.9.
void unroll_vexp(const float *x, float *y, long n);
/// y[i] = tanh(x[i]); x and y may be the same array. Exactly +-1 for |x| > ~9.
void unroll_vtanh(const float *x, float *y, long n);
/// y[i] = 1 / (1 + exp(-x[i])); x and y may be the same array. Exactly 1 for large x; tends to 0 (through
/// subnormals, no NaN) for very negative x.
void unroll_vsigmoid(const float *x, float *y, long n);

/// What every optimizer step shares: gradient clipping, g ← min(max(g · scale, −limit), limit) (scale 1 and
/// limit +inf leave it as it is), the step's learning rate, and the decoupled weight-decay factor 1 − η λ
/// that multiplies the parameter.
typedef struct {
    float scale;
    float limit;
    float rate;
    float decay;
} unroll_update;

/// Optimizer steps over one parameter's n elements (`value` updated in place from `gradient`, which is read
/// only), each with its own state arrays of n floats; no array may overlap another. The formulas are those of
/// the Swift optimizers (Sources/Train). AVX2 versions are chosen at run time and give the same bits as the
/// portable ones (no fused multiply-add).
/// SGD: velocity NULL for plain descent, else momentum (Nesterov when nesterov != 0).
void unroll_sgd_step(float *value, const float *gradient, float *velocity, long n, unroll_update u, float momentum,
                     int nesterov);
/// Adam: u.rate is η / (1 − β₁ᵗ), correction is 1 / √(1 − β₂ᵗ); maximum (AMSGrad's v̂) may be NULL.
void unroll_adam_step(float *value, const float *gradient, float *first, float *second, float *maximum, long n,
                      unroll_update u, float beta1, float beta2, float epsilon, float correction);
/// RMSProp: velocity NULL without momentum, mean_gradient NULL unless centered.
void unroll_rmsprop_step(float *value, const float *gradient, float *mean_square, float *velocity,
                         float *mean_gradient, long n, unroll_update u, float rho, float momentum, float epsilon);
/// Adagrad.
void unroll_adagrad_step(float *value, const float *gradient, float *accumulator, long n, unroll_update u,
                         float epsilon);
/// Clips x in place with u.scale and u.limit (u.rate and u.decay are not used). NaN stays NaN.
void unroll_clip(float *x, long n, unroll_update u);
/// Returns the sum of x[i]², accumulated in double.
double unroll_sum_of_squares(const float *x, long n);

/// Runs `iterations` rounds of 12 independent 8-wide fused multiply-adds on this thread and returns the
/// floating-point operations done (192 per round): the arithmetic peak when timed. Returns 0 without running
/// anything when the AVX2 + FMA kernels are not in use (no peak to measure).
double unroll_fma_loop(long iterations);

/// 1 when the AVX2 + FMA kernels are in use on this CPU, 0 for the portable fallbacks.
int unroll_has_avx2_fma(void);

/// 1 when this CPU and OS have AVX-512F. The transcendentals then run 16 lanes wide in optimised builds, with the
/// same operations per lane as their AVX2 loops, so the same bits (a NaN result's payload aside).
int unroll_has_avx512(void);
/// Test hook: a non-zero value sends the transcendentals and the element-wise interpreter to their AVX2 loops even
/// where AVX-512F is there.
/// Process-wide; set it only while nothing else runs them.
void unroll_kernels_avoid_avx512(int avoid);
/// Test hook: runs the AVX-512F loop of `function` (0 exp, 1 tanh, 2 sigmoid) over x into y, whatever the build's
/// optimisation. Returns 0 (nothing written) where the CPU or OS lacks AVX-512F, else 1.
int unroll_vmath_avx512(int function, const float *x, float *y, long n);

/// A hint to the CPU that the caller is in a spin-wait loop (x86 `pause`; nothing elsewhere): it saves power and
/// frees the core's shared resources while a worker thread polls for its next job.
void unroll_spin_pause(void);

#ifdef __cplusplus
}
#endif

#endif
