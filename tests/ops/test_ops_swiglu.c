/* test_ops_swiglu.c — SwiGLU forward against float64 silu(g) * u; backward (written dgate, dup) against the
 * float64 derivative and central finite differences of L = sum(out * R). Includes large |gate| values where
 * exp(-g) overflows or underflows. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x6a09e667f3bcc909ULL
#include "ops_common.h"


int main(void) {
    const Backend *be = backend_cpu();
    const size_t N = 9;
    const int FF = 37;
    size_t n = N * FF;
    float *g = sd_alloc(n * 4, "gate"), *u = sd_alloc(n * 4, "up"), *out = sd_alloc(n * 4, "out");
    float *R = sd_alloc(n * 4, "R"), *dg = sd_alloc(n * 4, "dg"), *du = sd_alloc(n * 4, "du");
    double *ro = sd_alloc(n * 8, "ro"), *rdg = sd_alloc(n * 8, "rdg"), *rdu = sd_alloc(n * 8, "rdu");
    fill(g, n, -6, 6);
    fill(u, n, -2, 2);
    fill(R, n, -1, 1);
    g[0] = -100.0f, g[1] = 100.0f, g[2] = -90.0f, g[3] = 0.0f; /* exp(-g) overflow / underflow */
    for (size_t i = 0; i < n; i++) out[i] = dg[i] = du[i] = 555.0f;
    be->swiglu_fwd(out, g, u, N, FF);
    for (size_t i = 0; i < n; i++) {
        double x = g[i], sig = 1.0 / (1.0 + exp(-x));
        ro[i] = x * sig * u[i];
        rdg[i] = R[i] * u[i] * sig * (1.0 + x * (1.0 - sig));
        rdu[i] = R[i] * x * sig;
    }
    /* a few fp32 operations and one expf: a few ulp */
    double e_o = rel_err(out, ro, n);
    CHECK(e_o < 1e-6, "swiglu_fwd rel err %.3g", e_o);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(out[i]);
    CHECK(finite, "swiglu_fwd finite for |gate| = 100");
    be->swiglu_bwd(dg, du, R, g, u, N, FF);
    double e_g = rel_err(dg, rdg, n), e_u = rel_err(du, rdu, n);
    CHECK(e_g < 1e-6, "swiglu_bwd dgate vs float64 rel err %.3g", e_g);
    CHECK(e_u < 1e-6, "swiglu_bwd dup vs float64 rel err %.3g", e_u);
    /* central differences, h = 1e-2: elementwise op, so L changes in one term only and the cancellation error is
     * ~2^-24 |L| / h ~ 1e-5; truncation h^2 |f'''| / 6 ~ 1e-5. 1e-3 of the largest gradient is safe, and a
     * wrong derivative (e.g. sig instead of sig (1 + g (1 - sig))) is off by O(1). */
    for (int which = 0; which < 2; which++) {
        float *t = which ? u : g, *an = which ? du : dg;
        double err = 0, gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(an[i]));
        for (int c = 0; c < 50; c++) {
            size_t i = 4 + (size_t)(urand() * (n - 4));
            float x0 = t[i], xp = x0 + 1e-2f, xm = x0 - 1e-2f;
            double L[2];
            for (int s = 0; s < 2; s++) {
                t[i] = s ? xm : xp;
                be->swiglu_fwd(out, g, u, N, FF);
                L[s] = 0;
                for (size_t j = 0; j < n; j++) L[s] += (double)out[j] * R[j];
            }
            t[i] = x0;
            err = fmax(err, fabs((L[0] - L[1]) / ((double)xp - xm) - an[i]));
        }
        CHECK(err < 1e-3 * gmax, "swiglu_bwd %s vs finite differences: %.3g (max %.3g)", which ? "dup" : "dgate",
              err, gmax);
        printf("swiglu fd %s: %.2g\n", which ? "dup" : "dgate", err / gmax);
    }
    printf("swiglu: fwd %.2g bwd %.2g/%.2g\n", e_o, e_g, e_u);
    free(g), free(u), free(out), free(R), free(dg), free(du), free(ro), free(rdg), free(rdu);
    TEST_END();
}
