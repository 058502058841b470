/* test_ops_geglu.c — Gemma 2's elementwise ops on the CPU backend: GeGLU forward against float64
 * gelu_tanh(g) * u, backward (dgate, dup) against the float64 derivative and central finite differences of
 * L = sum(out * R); soft-capping forward against float64 cap * tanh(x / cap) and backward against the float64
 * derivative and finite differences. Large |x| included (tanh saturates). */
#include <stdint.h>
#include <string.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x3c6ef372fe94f82bULL
#include "ops_common.h"

static double gelu64(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

/* central differences of L = sum(y * R) w.r.t. 50 random elements of t (run recomputes y); returns the worst error
 * relative to the largest analytic gradient. h = 1e-2: cancellation ~2^-24 |L| / h ~ 1e-5, truncation h^2 |f'''|
 * / 6 ~ 1e-5, so 1e-3 is safe, and a wrong derivative is off by O(1). */
static double fd_err(float *t, const float *an, const float *R, float *y, size_t n, void (*run)(void)) {
    double err = 0, gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(an[i]));
    for (int c = 0; c < 50; c++) {
        size_t i = 4 + (size_t)(urand() * (n - 4));
        float x0 = t[i], xp = x0 + 1e-2f, xm = x0 - 1e-2f;
        double L[2];
        for (int s = 0; s < 2; s++) {
            t[i] = s ? xm : xp;
            run();
            L[s] = 0;
            for (size_t j = 0; j < n; j++) L[s] += (double)y[j] * R[j];
        }
        t[i] = x0;
        err = fmax(err, fabs((L[0] - L[1]) / ((double)xp - xm) - an[i]));
    }
    return err / gmax;
}

enum { N = 9, FF = 37, n = N * FF };
static const Backend *be;
static float g[n], u[n], out[n], R[n], x[n], y[n];
static const float CAP = 3.0f;
static void run_geglu(void) { be->geglu_fwd(out, g, u, N, FF); }
static void run_softcap(void) {
    memcpy(y, x, sizeof y);
    be->softcap_fwd(y, n, CAP);
}

int main(void) {
    be = backend_cpu();
    float dg[n], du[n], dx[n];
    double ro[n], rdg[n], rdu[n], ry[n], rdx[n];
    fill(g, n, -6, 6);
    fill(u, n, -2, 2);
    fill(R, n, -1, 1);
    g[0] = -100.0f, g[1] = 100.0f, g[2] = -9.0f, g[3] = 0.0f; /* tanh saturates */
    run_geglu();
    for (size_t i = 0; i < n; i++) {
        double z = g[i], k = 0.7978845608028654, t = tanh(k * (z + 0.044715 * z * z * z));
        double d = 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * k * (1 + 3 * 0.044715 * z * z);
        ro[i] = gelu64(z) * u[i];
        rdg[i] = R[i] * u[i] * d;
        rdu[i] = R[i] * gelu64(z);
    }
    double e_o = rel_err(out, ro, n);
    CHECK(e_o < 1e-6, "geglu_fwd rel err %.3g", e_o);
    be->geglu_bwd(dg, du, R, g, u, N, FF);
    double e_g = rel_err(dg, rdg, n), e_u = rel_err(du, rdu, n);
    CHECK(e_g < 1e-6 && e_u < 1e-6, "geglu_bwd vs float64: dgate %.3g dup %.3g", e_g, e_u);
    double f_g = fd_err(g, dg, R, out, n, run_geglu), f_u = fd_err(u, du, R, out, n, run_geglu);
    CHECK(f_g < 1e-3 && f_u < 1e-3, "geglu_bwd vs finite differences: dgate %.3g dup %.3g", f_g, f_u);
    printf("geglu: fwd %.2g bwd %.2g/%.2g fd %.2g/%.2g\n", e_o, e_g, e_u, f_g, f_u);

    fill(x, n, -12, 12);
    x[0] = -1000.0f, x[1] = 1000.0f, x[2] = 0.0f;
    run_softcap();
    for (size_t i = 0; i < n; i++) {
        double t = tanh(x[i] / (double)CAP);
        ry[i] = CAP * t;
        rdx[i] = R[i] * (1 - t * t);
    }
    double e_y = rel_err(y, ry, n);
    CHECK(e_y < 1e-6, "softcap_fwd rel err %.3g", e_y);
    memcpy(dx, R, sizeof dx);
    be->softcap_bwd(dx, x, n, CAP);
    double e_dx = rel_err(dx, rdx, n);
    CHECK(e_dx < 1e-6, "softcap_bwd vs float64 rel err %.3g", e_dx);
    double f_x = fd_err(x, dx, R, y, n, run_softcap);
    CHECK(f_x < 1e-3, "softcap_bwd vs finite differences %.3g", f_x);
    printf("softcap: fwd %.2g bwd %.2g fd %.2g\n", e_y, e_dx, f_x);
    TEST_END();
}
