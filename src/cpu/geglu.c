/* geglu.c — Gemma's gated MLP activation out = gelu_tanh(gate) * up (torch's gelu(approximate="tanh")) and its
 * gradient; soft-capping cap * tanh(x / cap) and its gradient (softcap.c would hold three lines: they share this
 * file as the elementwise ops Gemma 2 adds). */
#include <math.h>
#include "cpu_ops.h"

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

void cpu_geglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)FF;
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = gate[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))) * up[i];
    }
}

/* d gelu_tanh(x)/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2), t = tanh(k (x + c x^3)). */
void cpu_geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                   int FF) {
    size_t n = N * (size_t)FF;
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = gate[i], dy = dout[i];
        float t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        dgate[i] = dy * up[i] * d;
        dup[i] = dy * 0.5f * x * (1.0f + t);
    }
}

void cpu_softcap_fwd(float *x, size_t n, float cap) {
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

void cpu_softcap_bwd(float *dx, const float *x_pre, size_t n, float cap) {
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float t = tanhf(x_pre[i] / cap);
        dx[i] *= 1.0f - t * t;
    }
}
