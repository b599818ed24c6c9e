#ifndef UNROLL_LINALG_H
#define UNROLL_LINALG_H

#ifdef __cplusplus
extern "C" {
#endif

/// Orthonormalises the `count` vectors of length `length` stored one after another in `vectors`
/// (modified Gram-Schmidt, in double precision). Returns 0, or -1 if a vector is linearly dependent
/// on the earlier ones. In C so that debug builds of the package stay fast for 400x400 matrices.
int unroll_orthonormalize(double *vectors, long count, long length);

/// Adds `rows` rows to a ridge regression's sums (double, row-major): `gram` `[f, f]` gets Σ s sᵀ (upper
/// triangle only), `feature_sums` `[f]` Σ s, `cross` `[f, o]` Σ s yᵀ, `target_sums` `[o]` Σ y, from
/// `features` `[rows, f]` and `targets` `[rows, o]`. Returns 0, or -1 when out of memory.
int unroll_ridge_accumulate(double *gram, double *feature_sums, double *cross, double *target_sums,
                            const float *features, const float *targets, long rows, long f, long o);

/// Solves A X = B in place for a symmetric positive definite `a` `[n, n]` and `b` `[n, count]` (row-major,
/// double) by Cholesky factorisation: on return `b` holds X and the lower triangle of `a` holds L.
/// Returns 0, or -1 (arrays partly overwritten) when a pivot is not above n·ε times the largest diagonal
/// entry: A is singular to working precision.
int unroll_cholesky_solve(double *a, long n, double *b, long count);

#ifdef __cplusplus
}
#endif

#endif
