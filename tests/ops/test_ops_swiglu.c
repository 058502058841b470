/* test_ops_swiglu.c — SwiGLU forward against float64 silu(g) * u; backward (written dgate, dup) against the
 * float64 derivative and central finite differences of L = sum(out * R). Includes large |gate| values where
 * exp(-g) overflows or underflows. swiglu_bwd_pack_b16 and geglu_bwd_pack_b16 (the two gradients side by side) against
 * the unpacked bf16 ops and copies, bit for bit, on the CPU and the strict backend. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x6a09e667f3bcc909ULL
#include "ops_common.h"


typedef void (*GluBwdB16)(uint16_t *, uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *, size_t, int);
typedef void (*GluBwdPackB16)(uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *, size_t, int);
/* one packed op against its unpacked op: on the CPU backend and, through device copies, the strict one */
static void pack_check(const char *what, GluBwdB16 unpacked, GluBwdPackB16 cpu_packed, GluBwdPackB16 strict_packed,
                       size_t N, int FF) {
    const Backend *be = backend_cpu(), *sb = backend_cpu_strict();
    size_t n = N * (size_t)FF;
    float *f = sd_alloc(3 * n * 4, "inputs");
    fill(f, 3 * n, -6, 6);
    uint16_t *in = sd_alloc(3 * n * 2, "bf16 inputs"), *dg = sd_alloc(2 * n * 2, "dg du"),
             *want = sd_alloc(2 * n * 2, "want"), *got = sd_alloc(2 * n * 2, "got");
    be->to_bf16(in, f, 3 * n); /* dout, gate, up */
    unpacked(dg, dg + n, in, in + n, in + 2 * n, N, FF);
    for (size_t r = 0; r < N; r++) {
        memcpy(want + r * 2 * FF, dg + r * FF, (size_t)FF * 2);
        memcpy(want + r * 2 * FF + FF, dg + n + r * FF, (size_t)FF * 2);
    }
    memset(got, 0xff, 2 * n * 2);
    cpu_packed(got, in, in + n, in + 2 * n, N, FF);
    CHECK(memcmp(got, want, 2 * n * 2) == 0, "%s differs from the unpacked op and copies", what);
    uint16_t *d_in = sb->alloc(3 * n * 2, "in"), *d_out = sb->alloc(2 * n * 2, "out");
    sb->upload(d_in, in, 3 * n * 2);
    strict_packed(d_out, d_in, d_in + n, d_in + 2 * n, N, FF);
    memset(got, 0xff, 2 * n * 2);
    sb->download(got, d_out, 2 * n * 2);
    CHECK(memcmp(got, want, 2 * n * 2) == 0, "%s on the strict backend differs from the CPU's", what);
    printf("%s N=%zu FF=%d: the unpacked op and copies, bitwise (CPU, strict)\n", what, N, FF);
    sb->free(d_in), sb->free(d_out);
    free(f), free(in), free(dg), free(want), free(got);
}

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
    const Backend *cb = backend_cpu(), *sb = backend_cpu_strict();
    pack_check("swiglu_bwd_pack_b16", cb->swiglu_bwd_b16, cb->swiglu_bwd_pack_b16, sb->swiglu_bwd_pack_b16, 7, 40);
    pack_check("geglu_bwd_pack_b16", cb->geglu_bwd_b16, cb->geglu_bwd_pack_b16, sb->geglu_bwd_pack_b16, 5, 24);
    TEST_END();
}
