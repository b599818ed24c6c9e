#include "Linalg.h"
#include <math.h>

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
