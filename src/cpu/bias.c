/* bias.c — bias_add / bias_add_b16 / bias_grad / bias_grad_b16 (backend.h): the linear biases of Qwen2's q, k, v
 * projections, added to the rows of a projection's output and summed over the rows of its gradient. */
#include "cpu_ops.h"
#include "util.h"

void cpu_bias_add(float *y, const float *b, size_t N, int D, int ld) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < (long)N; n++) {
        float *r = y + (size_t)n * (size_t)ld;
        for (int j = 0; j < D; j++) r[j] += b[j];
    }
}

void cpu_bias_add_b16(uint16_t *y, const float *b, size_t N, int D, int ld) {
#pragma omp parallel for schedule(static)
    for (long n = 0; n < (long)N; n++) {
        uint16_t *r = y + (size_t)n * (size_t)ld;
        for (int j = 0; j < D; j++) r[j] = sd_f32_to_bf16(sd_bf16_to_f32(r[j]) + b[j]);
    }
}

/* each column's sum in double, rows in order (the same bits at any thread count) */
void cpu_bias_grad(float *db, const float *dy, size_t N, int D, int ld) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < D; j++) {
        double s = 0.0;
        for (size_t n = 0; n < N; n++) s += dy[n * (size_t)ld + (size_t)j];
        db[j] += (float)s;
    }
}

void cpu_bias_grad_b16(float *db, const uint16_t *dy, size_t N, int D, int ld) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < D; j++) {
        double s = 0.0;
        for (size_t n = 0; n < N; n++) s += sd_bf16_to_f32(dy[n * (size_t)ld + (size_t)j]);
        db[j] += (float)s;
    }
}
