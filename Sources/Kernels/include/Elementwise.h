#ifndef UNROLL_ELEMENTWISE_H
#define UNROLL_ELEMENTWISE_H

#ifdef __cplusplus
extern "C" {
#endif

/// Operation codes of the element-wise interpreter (Graph's `ElementOp` maps onto them one to one).
enum {
    UNROLL_EW_COPY = 0, UNROLL_EW_NEGATE, UNROLL_EW_EXP, UNROLL_EW_LOG, UNROLL_EW_TANH, UNROLL_EW_SIGMOID,
    UNROLL_EW_RELU, UNROLL_EW_SQUARE, UNROLL_EW_SQRT, UNROLL_EW_ABS,
    UNROLL_EW_ADD, UNROLL_EW_SUBTRACT, UNROLL_EW_MULTIPLY, UNROLL_EW_DIVIDE,
    UNROLL_EW_AFFINE,          // a * p + q
    UNROLL_EW_CLAMP,           // min(max(a, p), q)
    UNROLL_EW_MASK_POSITIVE,   // b > 0 ? a : 0
    UNROLL_EW_MASK_SIGN,       // b > 0 ? a : (b < 0 ? -a : 0)
    UNROLL_EW_MASK_INSIDE,     // p <= b <= q ? a : 0
    // Super-instructions: two or three of the operations above whose intermediates nothing else reads, merged
    // into one loop by Graph's peephole pass. Each rounds after every operation, in the order the separate
    // instructions would, so the bits are theirs.
    UNROLL_EW_MULTIPLY_MULTIPLY,       // (a * b) * c
    UNROLL_EW_MULTIPLY_ADD,            // (a * b) + c
    UNROLL_EW_ADD_ADD,                 // (a + b) + c
    UNROLL_EW_ADD_MULTIPLY,            // (a + b) * c
    UNROLL_EW_MULTIPLY_AFFINE,         // (a * b) * p + q
    UNROLL_EW_AFFINE_MULTIPLY,         // (a * p + q) * b
    UNROLL_EW_AFFINE_ADD,              // (a * p + q) + b
    UNROLL_EW_SQUARE_AFFINE,           // (a * a) * p + q
    UNROLL_EW_SQUARE_AFFINE_MULTIPLY,  // ((a * a) * p + q) * b
    UNROLL_EW_AFFINE_MULTIPLY_MULTIPLY,// (a * p + q) * (b * c)
    UNROLL_EW_OPERATION_COUNT
};

/// One instruction: `dst = op(a, b, c; p, q)` over a tile (`b` and `c` are -1 where the operation reads fewer
/// inputs). Registers below the operand count are operands (read in place, or written in place when the program
/// writes them); the others are scratch tiles.
typedef struct {
    int op, dst, a, b, c;
    float p, q;
} unroll_ew_instruction;

/// An operand of an element-wise program over a `[rows, columns]` iteration space: element (r, c) lives at
/// `base[r * row_stride + c * column_stride]`. A column stride of 0 broadcasts one value along a row
/// (read-only); a row stride of 0 repeats one row (a bias; read-only).
typedef struct {
    float *base;
    long row_stride;
    long column_stride;
} unroll_ew_operand;

/// The floats of scratch `unroll_ew_run` needs for a program with `register_count` registers.
long unroll_ew_scratch_count(long register_count);

/// Runs a program over rows `[row_begin, row_end)` and columns `[column_begin, column_end)`, one tile of at
/// most 256 columns of one row at a time (of several whole rows, up to 256 elements, when rows are short and
/// every operand is contiguous across rows or a read-only broadcast): every instruction runs over the tile before the next one, so the
/// tile's intermediate values stay in L1. Instructions whose `dst` is an operand write that operand in place
/// (its column stride must be 1). `scratch` holds `unroll_ew_scratch_count(register_count)` floats, 64-byte
/// aligned; threads running disjoint ranges of rows or columns each need their own.
/// Per element, the result does not depend on the ranges, so any split gives the same bits.
void unroll_ew_run(const unroll_ew_instruction *code, long instruction_count,
                   const unroll_ew_operand *operands, long operand_count, long register_count,
                   long row_begin, long row_end, long column_begin, long column_end, float *scratch);

/// Test hook: while `portable` is non-zero, `unroll_ew_run` takes its portable loops even where the CPU has AVX2,
/// so that tests can check both paths give the same bits. Process-wide; set it only while no program runs.
void unroll_ew_use_portable(int portable);

#ifdef __cplusplus
}
#endif

#endif
