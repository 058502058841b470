/* test_ops_adamw.c — AdamW (torch semantics) against a float64 reimplementation over 3 steps, with wd = 0 and
 * wd > 0, a large learning rate (so the update and the decay are far above fp32 rounding) and tiny gradients
 * (so eps matters); with a clipping scale the gradient is g * gscale rounded to fp32, as after torch's in-place
 * clip_grad_norm_, and g itself is left untouched; with p16 the updated weights' bf16 copy is written (and only
 * then). */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x3c6ef372fe94f82bULL
#include "ops_common.h"


static void run(size_t n, float lr, float wd, float b1, float b2, float eps, float gscale) {
    float *p = sd_alloc(n * 4, "p"), *g = sd_alloc(n * 4, "g"), *m = sd_calloc(n, 4, "m"), *v = sd_calloc(n, 4, "v");
    uint16_t *p16 = sd_alloc(n * 2, "p16");
    memset(p16, 0xff, n * 2);
    double *P = sd_alloc(n * 8, "P"), *Mm = sd_calloc(n, 8, "M"), *Vv = sd_calloc(n, 8, "V");
    double *Am = sd_calloc(n, 8, "|M|"); /* the m recursion on |g|: the scale m's rounding errors are relative to */
    for (size_t i = 0; i < n; i++) P[i] = p[i] = (float)(urand() * 4 - 2);
    for (int t = 1; t <= 3; t++) {
        for (size_t i = 0; i < n; i++) {
            double sc = i % 10 == 0 ? 1e-9 : 1.0; /* every tenth gradient is tiny: eps dominates the denominator */
            g[i] = (float)((urand() * 2 - 1) * sc);
        }
        double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
        float g0 = g[0];
        /* steps 2 and 3 also write the bf16 copy of the updated weights (p16) */
        backend_cpu()->adamw(p, t > 1 ? p16 : NULL, g, NULL, gscale, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
        CHECK(g[0] == g0, "adamw leaves the gradient as it was");
        size_t bad16 = 0;
        for (size_t i = 0; i < n; i++) bad16 += p16[i] != (t > 1 ? sd_f32_to_bf16(p[i]) : 0xffff);
        CHECK(bad16 == 0, "adamw step %d: %zu p16 elements are not bf16 of p (or written without p16)", t, bad16);
        for (size_t i = 0; i < n; i++) g[i] = g[i] * gscale; /* what clipping in place would leave */
        for (size_t i = 0; i < n; i++) {
            P[i] -= (double)lr * wd * P[i];
            Mm[i] = (double)b1 * Mm[i] + (1 - (double)b1) * g[i];
            Am[i] = (double)b1 * Am[i] + (1 - (double)b1) * fabs(g[i]);
            Vv[i] = (double)b2 * Vv[i] + (1 - (double)b2) * (double)g[i] * g[i];
            P[i] -= (double)lr / bc1 * Mm[i] / (sqrt(Vv[i]) / sqrt(bc2) + eps);
        }
        double ep = 0, em = 0, ev = 0;
        for (size_t i = 0; i < n; i++) {
            ep = fmax(ep, fabs(p[i] - P[i]) / fmax(1.0, fabs(P[i])));
            em = fmax(em, fabs(m[i] - Mm[i]) / Am[i]); /* m may cancel to ~0: compare with its terms */
            ev = fmax(ev, fabs(v[i] - Vv[i]) / Vv[i]);
        }
        /* fp32: each state element goes through a handful of roundings per step (2^-24 ~ 6e-8 each), so after 3
         * steps p, m, v stay within ~5e-7 relative of float64; a wrong bias correction, a missing decay or eps
         * in the wrong place changes p by >= lr * 1e-2 ~ 1e-4. */
        CHECK(ep < 1e-6, "adamw step %d lr=%g wd=%g: p rel err %.3g", t, lr, wd, ep);
        CHECK(em < 1e-6, "adamw step %d: m rel err %.3g", t, em);
        CHECK(ev < 1e-6, "adamw step %d: v rel err %.3g", t, ev);
        printf("adamw n=%zu lr=%g wd=%g gscale=%g step %d: p %.2g m %.2g v %.2g\n", n, lr, wd, gscale, t, ep, em, ev);
    }
    free(p), free(p16), free(g), free(m), free(v), free(P), free(Mm), free(Vv), free(Am);
}

int main(void) {
    run(1000, 1e-2f, 0.0f, 0.9f, 0.999f, 1e-8f, 1.0f);
    run(1000, 1e-2f, 0.1f, 0.9f, 0.999f, 1e-8f, 1.0f);
    run(1000, 1e-2f, 0.1f, 0.9f, 0.999f, 1e-8f, 0.37f); /* clipped */
    run(300000, 3e-2f, 0.5f, 0.8f, 0.95f, 1e-6f, 0.8f); /* large enough for the OpenMP path */
    TEST_END();
}
