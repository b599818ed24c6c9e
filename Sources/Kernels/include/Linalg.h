#ifndef UNROLL_LINALG_H
#define UNROLL_LINALG_H

#ifdef __cplusplus
extern "C" {
#endif

/// Orthonormalises the `count` vectors of length `length` stored one after another in `vectors`
/// (modified Gram-Schmidt, in double precision). Returns 0, or -1 if a vector is linearly dependent
/// on the earlier ones. In C so that debug builds of the package stay fast for 400x400 matrices.
int unroll_orthonormalize(double *vectors, long count, long length);

#ifdef __cplusplus
}
#endif

#endif
