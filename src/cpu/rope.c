/* rope.c — rotary position embedding in HF "rotate_half" layout, forward and its transpose. */
#include "cpu_ops.h"

/* out = x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1): (x1, x2) -> (x1 c - x2 s, x2 c + x1 s). */
void cpu_rope_fwd(float *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    int half = HD / 2;
#pragma omp parallel for if (N * (size_t)H * HD > SD_OMP_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *c = cos + (size_t)pos[n] * half, *s = sin + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            float *xh = x + (n * (size_t)H + h) * HD;
            for (int i = 0; i < half; i++) {
                float x1 = xh[i], x2 = xh[i + half];
                xh[i] = x1 * c[i] - x2 * s[i];
                xh[i + half] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

/* The rotation's transpose (= its inverse): (g1, g2) -> (g1 c + g2 s, g2 c - g1 s). */
void cpu_rope_bwd(float *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    int half = HD / 2;
#pragma omp parallel for if (N * (size_t)H * HD > SD_OMP_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *c = cos + (size_t)pos[n] * half, *s = sin + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            float *gh = dx + (n * (size_t)H + h) * HD;
            for (int i = 0; i < half; i++) {
                float g1 = gh[i], g2 = gh[i + half];
                gh[i] = g1 * c[i] + g2 * s[i];
                gh[i + half] = g2 * c[i] - g1 * s[i];
            }
        }
    }
}
