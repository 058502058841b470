/* swiglu.c — out = silu(gate) * up, silu(x) = x / (1 + exp(-x)) (torch's CPU formula), and its gradient. */
#include <math.h>
#include "cpu_ops.h"

void cpu_swiglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)FF;
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* d silu(g)/dg = sig(g) (1 + g (1 - sig(g))). */
void cpu_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                    int FF) {
    size_t n = N * (size_t)FF;
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], dy = dout[i];
        float sig = 1.0f / (1.0f + expf(-g));
        float silu = g / (1.0f + expf(-g));
        dgate[i] = dy * up[i] * sig * (1.0f + g * (1.0f - sig));
        dup[i] = dy * silu;
    }
}
