#include "Linalg.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>

int unroll_orthonormalize(double *vectors, long count, long length) {
    for (long j = 0; j < count; j++) {
        double *v = vectors + j * length;
        for (long k = 0; k < j; k++) {
            const double *u = vectors + k * length;
            double dot = 0.0;
            for (long i = 0; i < length; i++) dot += v[i] * u[i];
            for (long i = 0; i < length; i++) v[i] -= dot * u[i];
        }
        double norm = 0.0;
        for (long i = 0; i < length; i++) norm += v[i] * v[i];
        norm = sqrt(norm);
        if (!(norm > 1e-300)) return -1;
        for (long i = 0; i < length; i++) v[i] /= norm;
    }
    return 0;
}

// The ridge regression's sums and solve, ported from Swift with the same operation order (no fused
// multiply-add), so a readout fit keeps its bits.
#pragma STDC FP_CONTRACT OFF
#ifdef __clang__
#pragma clang fp contract(off)
#endif

int unroll_ridge_accumulate(double *gram, double *feature_sums, double *cross, double *target_sums,
                            const float *features, const float *targets, long rows, long f, long o) {
    // Four rows at a time, widened to double once, so each Gram entry is loaded and stored a quarter as
    // often: this loop dominates a readout fit.
    double *block = malloc(sizeof(double) * (size_t)(4 * f > 0 ? 4 * f : 1));
    if (!block) return -1;
    for (long row = 0; row < rows; row += 4) {
        long width = rows - row < 4 ? rows - row : 4;
        const float *source = features + row * f;
        long i = 0;
        for (; i < width * f; i++) block[i] = (double)source[i];
        for (; i < 4 * f; i++) block[i] = 0;
        const double *r0 = block, *r1 = block + f, *r2 = block + 2 * f, *r3 = block + 3 * f;
        for (i = 0; i < f; i++) {
            double a0 = r0[i], a1 = r1[i], a2 = r2[i], a3 = r3[i];
            double *gi = gram + i * f;
            for (long j = i; j < f; j++) gi[j] += a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j];
            feature_sums[i] += a0 + a1 + a2 + a3;
        }
        for (long k = 0; k < width; k++) {
            const double *s = block + k * f;
            const float *y = targets + (row + k) * o;
            for (long m = 0; m < o; m++) {
                double target = (double)y[m];
                target_sums[m] += target;
                double *cm = cross + m;
                for (i = 0; i < f; i++) cm[i * o] += s[i] * target;
            }
        }
    }
    free(block);
    return 0;
}

int unroll_cholesky_solve(double *a, long n, double *b, long count) {
    double largest_diagonal = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs(a[i * n + i]);
        if (d > largest_diagonal) largest_diagonal = d;
    }
    double threshold = (double)n * DBL_EPSILON * largest_diagonal;
    // Left-looking factorisation, row by row: L[i][j] = (A[i][j] − Σ_k<j L[i][k] L[j][k]) / L[j][j].
    for (long i = 0; i < n; i++) {
        double *row_i = a + i * n;
        for (long j = 0; j <= i; j++) {
            const double *row_j = a + j * n;
            double sum = row_i[j];
            for (long k = 0; k < j; k++) sum -= row_i[k] * row_j[k];
            if (i == j) {
                if (!(sum > threshold) || !isfinite(sum)) return -1;
                row_i[i] = sqrt(sum);
            } else {
                row_i[j] = sum / row_j[j];
            }
        }
    }
    // Forward substitution L Z = B, then back substitution Lᵀ X = Z, all columns together.
    for (long i = 0; i < n; i++) {
        const double *row_i = a + i * n;
        double *bi = b + i * count;
        for (long k = 0; k < i; k++) {
            double factor = row_i[k];
            const double *bk = b + k * count;
            for (long m = 0; m < count; m++) bi[m] -= factor * bk[m];
        }
        for (long m = 0; m < count; m++) bi[m] /= row_i[i];
    }
    for (long i = n - 1; i >= 0; i--) {
        double *bi = b + i * count;
        for (long k = i + 1; k < n; k++) {
            double factor = a[k * n + i];
            const double *bk = b + k * count;
            for (long m = 0; m < count; m++) bi[m] -= factor * bk[m];
        }
        for (long m = 0; m < count; m++) bi[m] /= a[i * n + i];
    }
    return 0;
}
