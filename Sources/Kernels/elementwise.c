// A tiny interpreter for fused element-wise kernels. A program is a list of register instructions over one
// tile (at most EW_TILE columns of one row, or several whole short rows when the operands allow); each instruction is one vectorisable loop over the tile, so the
// interpreter's dispatch costs a few nanoseconds per instruction per tile while the values stay in L1.
// Graph compiles groups of fused records (and their derivative formulas) into these programs.
//
// Contraction into FMA is off: the interpreter must give the same bits as the eager Swift kernels
// (Swift never contracts `a * p + q`), so compiled and eager training agree.
#include "Kernels.h"
#include "kernels_internal.h"

#include <math.h>
#include <string.h>

#pragma clang fp contract(off)

#define EW_TILE 256
#define EW_MAX_REGISTERS 256

long unroll_ew_scratch_count(long register_count) { return (register_count + 1) * EW_TILE; }

static int ew_portable = 0;

void unroll_ew_use_portable(int portable) { __atomic_store_n(&ew_portable, portable ? 1 : 0, __ATOMIC_RELAXED); }

/// 0: portable loops, 1: AVX2, 2: AVX-512F.
static int ew_vector_level(void) {
#if UNROLL_X86
    if (__atomic_load_n(&ew_portable, __ATOMIC_RELAXED) || !unroll_kernels_use_avx2()) return 0;
    return unroll_kernels_use_avx512() ? 2 : 1;
#else
    return 0;
#endif
}

static void ew_apply(const unroll_ew_instruction *in, float *d, const float *a, const float *b, const float *c,
                     long n) {
    const float p = in->p, q = in->q;
    switch (in->op) {
    case UNROLL_EW_COPY: if (d != a) memmove(d, a, (size_t)n * sizeof(float)); break;
    case UNROLL_EW_NEGATE: for (long i = 0; i < n; i++) d[i] = -a[i]; break;
    case UNROLL_EW_EXP: unroll_vexp(a, d, n); break;
    case UNROLL_EW_LOG: for (long i = 0; i < n; i++) d[i] = logf(a[i]); break;
    case UNROLL_EW_TANH: unroll_vtanh(a, d, n); break;
    case UNROLL_EW_SIGMOID: unroll_vsigmoid(a, d, n); break;
    case UNROLL_EW_RELU: for (long i = 0; i < n; i++) d[i] = a[i] > 0 ? a[i] : 0; break;
    case UNROLL_EW_SQUARE: for (long i = 0; i < n; i++) d[i] = a[i] * a[i]; break;
    case UNROLL_EW_SQRT: for (long i = 0; i < n; i++) d[i] = sqrtf(a[i]); break;
    case UNROLL_EW_ABS: for (long i = 0; i < n; i++) d[i] = fabsf(a[i]); break;
    case UNROLL_EW_ADD: for (long i = 0; i < n; i++) d[i] = a[i] + b[i]; break;
    case UNROLL_EW_SUBTRACT: for (long i = 0; i < n; i++) d[i] = a[i] - b[i]; break;
    case UNROLL_EW_MULTIPLY: for (long i = 0; i < n; i++) d[i] = a[i] * b[i]; break;
    case UNROLL_EW_DIVIDE: for (long i = 0; i < n; i++) d[i] = a[i] / b[i]; break;
    case UNROLL_EW_AFFINE: for (long i = 0; i < n; i++) d[i] = a[i] * p + q; break;
    case UNROLL_EW_CLAMP:
        for (long i = 0; i < n; i++) { float x = a[i] > p ? a[i] : p; d[i] = x < q ? x : q; }
        break;
    case UNROLL_EW_MASK_POSITIVE: for (long i = 0; i < n; i++) d[i] = b[i] > 0 ? a[i] : 0; break;
    case UNROLL_EW_MASK_SIGN:
        for (long i = 0; i < n; i++) d[i] = b[i] > 0 ? a[i] : (b[i] < 0 ? -a[i] : 0);
        break;
    case UNROLL_EW_MASK_INSIDE: for (long i = 0; i < n; i++) d[i] = (b[i] >= p && b[i] <= q) ? a[i] : 0; break;
    case UNROLL_EW_MULTIPLY_MULTIPLY: for (long i = 0; i < n; i++) d[i] = (a[i] * b[i]) * c[i]; break;
    case UNROLL_EW_MULTIPLY_ADD: for (long i = 0; i < n; i++) d[i] = (a[i] * b[i]) + c[i]; break;
    case UNROLL_EW_ADD_ADD: for (long i = 0; i < n; i++) d[i] = (a[i] + b[i]) + c[i]; break;
    case UNROLL_EW_ADD_MULTIPLY: for (long i = 0; i < n; i++) d[i] = (a[i] + b[i]) * c[i]; break;
    case UNROLL_EW_MULTIPLY_AFFINE: for (long i = 0; i < n; i++) d[i] = (a[i] * b[i]) * p + q; break;
    case UNROLL_EW_AFFINE_MULTIPLY: for (long i = 0; i < n; i++) d[i] = (a[i] * p + q) * b[i]; break;
    case UNROLL_EW_AFFINE_ADD: for (long i = 0; i < n; i++) d[i] = (a[i] * p + q) + b[i]; break;
    case UNROLL_EW_SQUARE_AFFINE: for (long i = 0; i < n; i++) d[i] = (a[i] * a[i]) * p + q; break;
    case UNROLL_EW_SQUARE_AFFINE_MULTIPLY: for (long i = 0; i < n; i++) d[i] = ((a[i] * a[i]) * p + q) * b[i]; break;
    case UNROLL_EW_AFFINE_MULTIPLY_MULTIPLY: for (long i = 0; i < n; i++) d[i] = (a[i] * p + q) * (b[i] * c[i]); break;
    default: break;
    }
}

#if UNROLL_X86
// The same loops compiled for AVX2: the compiler vectorises them 8 wide (the transcendentals dispatch on
// their own). Same operations in the same order, so the same bits as the portable version. The output tile is
// often an input's own tile (registers are reused in place): without `assume_safety` clang guards each loop
// with an overlap check that sends exactly those in-place loops to its scalar remainder. Operands are either
// the same tile or disjoint, and each element is read before it is written, so the vector loop is safe.
#if defined(__clang__)
#define EW_FOR(i, n) _Pragma("clang loop vectorize(assume_safety)") for (long i = 0; i < (n); i++)
#else
#define EW_FOR(i, n) for (long i = 0; i < (n); i++)
#endif
// The body of the vector loops below, compiled once for AVX2 and once for AVX-512F.
#define EW_APPLY_VECTOR_BODY \
    const float p = in->p, q = in->q;                                                                            \
    switch (in->op) {                                                                                            \
    case UNROLL_EW_NEGATE: EW_FOR(i, n) d[i] = -a[i]; return;                                                    \
    case UNROLL_EW_RELU: EW_FOR(i, n) d[i] = a[i] > 0 ? a[i] : 0; return;                                        \
    case UNROLL_EW_SQUARE: EW_FOR(i, n) d[i] = a[i] * a[i]; return;                                              \
    case UNROLL_EW_ADD: EW_FOR(i, n) d[i] = a[i] + b[i]; return;                                                 \
    case UNROLL_EW_SUBTRACT: EW_FOR(i, n) d[i] = a[i] - b[i]; return;                                            \
    case UNROLL_EW_MULTIPLY: EW_FOR(i, n) d[i] = a[i] * b[i]; return;                                            \
    case UNROLL_EW_DIVIDE: EW_FOR(i, n) d[i] = a[i] / b[i]; return;                                              \
    case UNROLL_EW_AFFINE: EW_FOR(i, n) d[i] = a[i] * p + q; return;                                             \
    case UNROLL_EW_MASK_POSITIVE: EW_FOR(i, n) d[i] = b[i] > 0 ? a[i] : 0; return;                               \
    case UNROLL_EW_MULTIPLY_MULTIPLY: EW_FOR(i, n) d[i] = (a[i] * b[i]) * c[i]; return;                          \
    case UNROLL_EW_MULTIPLY_ADD: EW_FOR(i, n) d[i] = (a[i] * b[i]) + c[i]; return;                               \
    case UNROLL_EW_ADD_ADD: EW_FOR(i, n) d[i] = (a[i] + b[i]) + c[i]; return;                                    \
    case UNROLL_EW_ADD_MULTIPLY: EW_FOR(i, n) d[i] = (a[i] + b[i]) * c[i]; return;                               \
    case UNROLL_EW_MULTIPLY_AFFINE: EW_FOR(i, n) d[i] = (a[i] * b[i]) * p + q; return;                           \
    case UNROLL_EW_AFFINE_MULTIPLY: EW_FOR(i, n) d[i] = (a[i] * p + q) * b[i]; return;                           \
    case UNROLL_EW_AFFINE_ADD: EW_FOR(i, n) d[i] = (a[i] * p + q) + b[i]; return;                                \
    case UNROLL_EW_SQUARE_AFFINE: EW_FOR(i, n) d[i] = (a[i] * a[i]) * p + q; return;                             \
    case UNROLL_EW_SQUARE_AFFINE_MULTIPLY: EW_FOR(i, n) d[i] = ((a[i] * a[i]) * p + q) * b[i]; return;           \
    case UNROLL_EW_AFFINE_MULTIPLY_MULTIPLY: EW_FOR(i, n) d[i] = (a[i] * p + q) * (b[i] * c[i]); return;         \
    default: ew_apply(in, d, a, b, c, n); return;                                                                \
    }

UNROLL_AVX2 static void ew_apply_avx2(const unroll_ew_instruction *in, float *d, const float *a,
                                      const float *b, const float *c, long n) {
    EW_APPLY_VECTOR_BODY
}

#if defined(__OPTIMIZE__)
// 16 lanes where the CPU has AVX-512F, in optimised builds: the same loops, the same bits (each lane is the same
// IEEE operations, never contracted), half the instructions per element.
#define UNROLL_EW_AVX512 1
UNROLL_AVX512 static void ew_apply_avx512(const unroll_ew_instruction *in, float *d, const float *a,
                                          const float *b, const float *c, long n) {
    EW_APPLY_VECTOR_BODY
}
#endif
#endif

static void ew_execute(const unroll_ew_instruction *code, long instruction_count, float **registers, long n,
                       int level) {
    (void)level;
    for (long i = 0; i < instruction_count; i++) {
        const unroll_ew_instruction *in = &code[i];
        const float *b = in->b >= 0 ? registers[in->b] : 0, *c = in->c >= 0 ? registers[in->c] : 0;
#if defined(UNROLL_EW_AVX512)
        if (level == 2) { ew_apply_avx512(in, registers[in->dst], registers[in->a], b, c, n); continue; }
#endif
#if UNROLL_X86
        if (level) { ew_apply_avx2(in, registers[in->dst], registers[in->a], b, c, n); continue; }
#endif
        ew_apply(in, registers[in->dst], registers[in->a], b, c, n);
    }
}

/// Whether tiles may span several rows of `width` columns: every operand is contiguous across rows (row stride
/// = width), or read-only and broadcast (a scalar, a repeated row, one value per row), so that a tile of whole
/// rows is one run of consecutive elements of every operand that is not rebuilt in scratch.
static int ew_rows_are_contiguous(const unroll_ew_instruction *code, long instruction_count,
                                  const unroll_ew_operand *operands, long operand_count, long width) {
    for (long k = 0; k < operand_count; k++) {
        const unroll_ew_operand *o = &operands[k];
        if (o->column_stride == 1 && o->row_stride == width) continue;
        if (o->column_stride != 0 && o->row_stride != 0) return 0;  // a strided view: rows lie apart
        for (long i = 0; i < instruction_count; i++)
            if (code[i].dst == k) return 0;
    }
    return 1;
}

/// Short rows: tiles of as many whole rows as fit in EW_TILE elements, so that the dispatch of every instruction
/// is paid once per ~EW_TILE elements instead of once per row. Broadcast operands are laid out in scratch as
/// the tile's rows would hold them (scalars and repeated rows once, one value per row per tile).
static void ew_run_rows(const unroll_ew_instruction *code, long instruction_count,
                        const unroll_ew_operand *operands, long operand_count, long register_count,
                        long row_begin, long row_end, long column_begin, long width, float *scratch) {
    const long per_tile = EW_TILE / width;
    float *registers[EW_MAX_REGISTERS];
    for (long k = 0; k < operand_count; k++) {
        const unroll_ew_operand *o = &operands[k];
        if (o->row_stride != 0) continue;
        float *tile = scratch + k * EW_TILE;
        for (long r = 0; r < per_tile; r++) {
            if (o->column_stride == 0) {
                for (long i = 0; i < width; i++) tile[r * width + i] = o->base[0];
            } else {
                memcpy(tile + r * width, o->base + column_begin, (size_t)width * sizeof(float));
            }
        }
        registers[k] = tile;
    }
    for (long k = operand_count; k < register_count; k++) registers[k] = scratch + k * EW_TILE;
    for (long r0 = row_begin; r0 < row_end; r0 += per_tile) {
        long rows = row_end - r0 < per_tile ? row_end - r0 : per_tile;
        for (long k = 0; k < operand_count; k++) {
            const unroll_ew_operand *o = &operands[k];
            if (o->row_stride == 0) continue;
            if (o->column_stride == 1) {
                registers[k] = o->base + r0 * o->row_stride + column_begin;
                continue;
            }
            float *tile = scratch + k * EW_TILE;  // one value per row, spread along it
            for (long r = 0; r < rows; r++) {
                float v = o->base[(r0 + r) * o->row_stride];
                for (long i = 0; i < width; i++) tile[r * width + i] = v;
            }
            registers[k] = tile;
        }
        ew_execute(code, instruction_count, registers, rows * width, ew_vector_level());
    }
}

void unroll_ew_run(const unroll_ew_instruction *code, long instruction_count,
                   const unroll_ew_operand *operands, long operand_count, long register_count,
                   long row_begin, long row_end, long column_begin, long column_end, float *scratch) {
    if (register_count > EW_MAX_REGISTERS || row_begin >= row_end || column_begin >= column_end) return;
    const long width = column_end - column_begin;
    if (2 * width <= EW_TILE && row_end - row_begin > 1 &&
        ew_rows_are_contiguous(code, instruction_count, operands, operand_count, width)) {
        ew_run_rows(code, instruction_count, operands, operand_count, register_count, row_begin, row_end,
                    column_begin, width, scratch);
        return;
    }
    const int level = ew_vector_level();
    // A value broadcast along a row is spread into its scratch tile once per row (once for a scalar), not once
    // per tile: no instruction writes an operand that is not contiguous, so the spread values stay.
    const long spread = width < EW_TILE ? width : EW_TILE;
    float *registers[EW_MAX_REGISTERS];
    for (long k = 0; k < operand_count; k++) {
        const unroll_ew_operand *o = &operands[k];
        if (o->column_stride != 0) continue;
        float *tile = scratch + k * EW_TILE, v = o->base[row_begin * o->row_stride];
        for (long i = 0; i < spread; i++) tile[i] = v;
        registers[k] = tile;
    }
    for (long k = operand_count; k < register_count; k++) registers[k] = scratch + k * EW_TILE;
    for (long r = row_begin; r < row_end; r++) {
        for (long k = 0; k < operand_count; k++) {
            const unroll_ew_operand *o = &operands[k];
            if (o->column_stride != 0 || o->row_stride == 0 || r == row_begin) continue;
            float *tile = registers[k], v = o->base[r * o->row_stride];
            for (long i = 0; i < spread; i++) tile[i] = v;
        }
        for (long c0 = column_begin; c0 < column_end; c0 += EW_TILE) {
            long n = column_end - c0 < EW_TILE ? column_end - c0 : EW_TILE;
            for (long k = 0; k < operand_count; k++) {
                const unroll_ew_operand *o = &operands[k];
                if (o->column_stride == 1) registers[k] = o->base + r * o->row_stride + c0;
            }
            ew_execute(code, instruction_count, registers, n, level);
        }
    }
}
