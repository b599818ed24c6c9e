// A tiny interpreter for fused element-wise kernels. A program is a list of register instructions over one
// tile (at most EW_TILE columns of one row); each instruction is one vectorisable loop over the tile, so the
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

static void ew_apply(const unroll_ew_instruction *in, float *d, const float *a, const float *b, long n) {
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
    default: break;
    }
}

#if UNROLL_X86
// The same loops compiled for AVX2: the compiler vectorises them 8 wide (the transcendentals dispatch on
// their own). Same operations in the same order, so the same bits as the portable version.
UNROLL_AVX2 static void ew_apply_avx2(const unroll_ew_instruction *in, float *d, const float *a,
                                      const float *b, long n) {
    const float p = in->p, q = in->q;
    switch (in->op) {
    case UNROLL_EW_NEGATE: for (long i = 0; i < n; i++) d[i] = -a[i]; return;
    case UNROLL_EW_RELU: for (long i = 0; i < n; i++) d[i] = a[i] > 0 ? a[i] : 0; return;
    case UNROLL_EW_SQUARE: for (long i = 0; i < n; i++) d[i] = a[i] * a[i]; return;
    case UNROLL_EW_ADD: for (long i = 0; i < n; i++) d[i] = a[i] + b[i]; return;
    case UNROLL_EW_SUBTRACT: for (long i = 0; i < n; i++) d[i] = a[i] - b[i]; return;
    case UNROLL_EW_MULTIPLY: for (long i = 0; i < n; i++) d[i] = a[i] * b[i]; return;
    case UNROLL_EW_DIVIDE: for (long i = 0; i < n; i++) d[i] = a[i] / b[i]; return;
    case UNROLL_EW_AFFINE: for (long i = 0; i < n; i++) d[i] = a[i] * p + q; return;
    case UNROLL_EW_MASK_POSITIVE: for (long i = 0; i < n; i++) d[i] = b[i] > 0 ? a[i] : 0; return;
    default: ew_apply(in, d, a, b, n); return;
    }
}
#endif

void unroll_ew_run(const unroll_ew_instruction *code, long instruction_count,
                   const unroll_ew_operand *operands, long operand_count, long register_count,
                   long row_begin, long row_end, long column_begin, long column_end, float *scratch) {
    if (register_count > EW_MAX_REGISTERS || row_begin >= row_end || column_begin >= column_end) return;
#if UNROLL_X86
    const int avx2 = unroll_kernels_use_avx2();
#endif
    float *registers[EW_MAX_REGISTERS];
    for (long r = row_begin; r < row_end; r++) {
        for (long c0 = column_begin; c0 < column_end; c0 += EW_TILE) {
            long n = column_end - c0 < EW_TILE ? column_end - c0 : EW_TILE;
            for (long k = 0; k < operand_count; k++) {
                const unroll_ew_operand *o = &operands[k];
                float *at = o->base + r * o->row_stride;
                if (o->column_stride == 1) {
                    registers[k] = at + c0;
                } else {  // one value broadcast along the row
                    float *tile = scratch + k * EW_TILE, v = *at;
                    for (long i = 0; i < n; i++) tile[i] = v;
                    registers[k] = tile;
                }
            }
            for (long k = operand_count; k < register_count; k++) registers[k] = scratch + k * EW_TILE;
            for (long i = 0; i < instruction_count; i++) {
                const unroll_ew_instruction *in = &code[i];
                const float *b = in->b >= 0 ? registers[in->b] : 0;
#if UNROLL_X86
                if (avx2) { ew_apply_avx2(in, registers[in->dst], registers[in->a], b, n); continue; }
#endif
                ew_apply(in, registers[in->dst], registers[in->a], b, n);
            }
        }
    }
}
