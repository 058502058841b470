/* adamw.c — one AdamW step (torch.optim.AdamW semantics), evaluated in double and rounded once per element:
 *   g = g * gscale (in fp32, bitwise what clip_grad_norm_'s in-place scaling leaves)
 *   p = p (1 - lr wd);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p = p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
 * Why double: in the first steps Adam's update is lr * g / (|g| + eps) for every element, so fp32 rounding of the
 * update (and of lr itself) is a bias shared by all elements, not noise: the scalars come in double for the same
 * reason. The state stays fp32. */
#include <math.h>
#include "cpu_ops.h"
#include "util.h"

void cpu_adamw(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m, float *v,
               size_t n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2) {
    const double decay = 1.0 - lr * wd, step = (double)lr / bc1, bc2_sqrt = sqrt(bc2);
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        if (rows && !grad_rows_in(rows, i)) continue; /* outside the part of the rows asked for */
        double gi = (rows ? grad_rows_at(g, rows, i) : g[i]) * gscale; /* rows: zero outside the held rows */
        double mi = b1 * m[i] + (1.0 - b1) * gi;
        double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] = (float)((double)p[i] * decay - step * mi / (sqrt(vi) / bc2_sqrt + eps));
        m[i] = (float)mi;
        v[i] = (float)vi;
        if (p16) p16[i] = sd_f32_to_bf16(p[i]);
    }
}
