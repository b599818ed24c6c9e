// Portable reference transcendentals. To be replaced by SIMD polynomial versions.
#include "Kernels.h"
#include <math.h>

void unroll_vexp(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = expf(x[i]); }
void unroll_vtanh(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = tanhf(x[i]); }
void unroll_vsigmoid(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i])); }
int unroll_has_avx2_fma(void) { return 0; }
