/* test_ops_rope.c — rotary embedding (HF rotate_half) forward against float64 on packed positions; backward
 * against the float64 transpose, the adjoint identity <fwd(x), y> = <x, bwd(y)>, bwd(fwd(x)) = x, and central
 * finite differences of L = sum(fwd(x) * R). */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0xda942042e4dd58b5ULL
#include "ops_common.h"


int main(void) {
    const Backend *be = backend_cpu();
    const int cu[] = {0, 5, 6, 13, 40}, S = 4, N = 40, MAXP = 64;
    int pos[40];
    for (int s = 0; s < S; s++)
        for (int n = cu[s]; n < cu[s + 1]; n++) pos[n] = n - cu[s];
    for (int HD = 8; HD <= 16; HD += 8) {
        const int H = 3, half = HD / 2;
        size_t nx = (size_t)N * H * HD;
        float *cs = sd_alloc((size_t)MAXP * half * 4, "cos"), *sn = sd_alloc((size_t)MAXP * half * 4, "sin");
        for (int p = 0; p < MAXP; p++) /* Llama's tables: inv_freq = theta^(-2i/HD) */
            for (int i = 0; i < half; i++) {
                double a = p * pow(10000.0, -2.0 * i / HD);
                cs[p * half + i] = (float)cos(a);
                sn[p * half + i] = (float)sin(a);
            }
        float *x = sd_alloc(nx * 4, "x"), *y = sd_alloc(nx * 4, "y"), *g = sd_alloc(nx * 4, "g");
        double *ref = sd_alloc(nx * 8, "ref"), *refb = sd_alloc(nx * 8, "refb");
        fill(x, nx, -2, 2);
        fill(g, nx, -1, 1);
        memcpy(y, x, nx * 4);
        be->rope_fwd(y, pos, cs, sn, N, H, HD);
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < half; i++) {
                    size_t o = ((size_t)n * H + h) * HD;
                    double c = cs[pos[n] * half + i], s = sn[pos[n] * half + i];
                    double x1 = x[o + i], x2 = x[o + i + half], g1 = g[o + i], g2 = g[o + i + half];
                    ref[o + i] = x1 * c - x2 * s; /* x cos + rotate_half(x) sin, rotate_half = (-x2, x1) */
                    ref[o + i + half] = x2 * c + x1 * s;
                    refb[o + i] = g1 * c + g2 * s; /* the transpose */
                    refb[o + i + half] = g2 * c - g1 * s;
                }
        /* two products and a sum in fp32: <= ~2 ulp of the magnitude */
        double e_f = rel_err(y, ref, nx);
        CHECK(e_f < 5e-7, "rope_fwd HD=%d rel err %.3g", HD, e_f);
        float *gb = sd_alloc(nx * 4, "gb");
        memcpy(gb, g, nx * 4);
        be->rope_bwd(gb, pos, cs, sn, N, H, HD);
        double e_b = rel_err(gb, refb, nx);
        CHECK(e_b < 5e-7, "rope_bwd HD=%d rel err %.3g", HD, e_b);
        /* adjoint: <fwd(x), g> == <x, bwd(g)> */
        double l = 0, r = 0, mag = 0;
        for (size_t i = 0; i < nx; i++) {
            l += (double)y[i] * g[i];
            r += (double)x[i] * gb[i];
            mag += fabs((double)y[i] * g[i]);
        }
        CHECK(fabs(l - r) < 1e-6 * mag, "rope adjoint identity HD=%d: %.10g vs %.10g", HD, l, r);
        /* inverse: bwd(fwd(x)) = x (the rotation is orthogonal) */
        be->rope_bwd(y, pos, cs, sn, N, H, HD);
        double e_i = 0;
        for (size_t i = 0; i < nx; i++) e_i = fmax(e_i, fabs(y[i] - x[i]));
        CHECK(e_i < 1e-6 * 2, "rope_bwd(rope_fwd(x)) == x, HD=%d: err %.3g", HD, e_i);
        /* finite differences of L = sum(fwd(x) * g): L is linear in x, so only fp32 cancellation remains,
         * ~2^-24 sqrt(nx) |terms| / h ~ 1e-4 with h = 1e-2; 1e-3 of the largest gradient is a safe bound. */
        double fd_err = 0, gmax = 0;
        for (size_t i = 0; i < nx; i++) gmax = fmax(gmax, fabs(gb[i]));
        for (int t = 0; t < 30; t++) {
            size_t i = (size_t)(urand() * nx);
            double L[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                memcpy(y, x, nx * 4);
                y[i] = x[i] + (sgn ? -1e-2f : 1e-2f);
                be->rope_fwd(y, pos, cs, sn, N, H, HD);
                L[sgn] = 0;
                for (size_t j = 0; j < nx; j++) L[sgn] += (double)y[j] * g[j];
            }
            double step = (double)(x[i] + 1e-2f) - (double)(x[i] - 1e-2f);
            fd_err = fmax(fd_err, fabs((L[0] - L[1]) / step - gb[i]));
        }
        CHECK(fd_err < 1e-3 * gmax, "rope_bwd vs finite differences HD=%d: %.3g (max %.3g)", HD, fd_err, gmax);
        printf("rope HD=%d: fwd %.2g bwd %.2g inverse %.2g fd %.2g\n", HD, e_f, e_b, e_i, fd_err / gmax);
        free(cs), free(sn), free(x), free(y), free(g), free(gb), free(ref), free(refb);
    }
    TEST_END();
}
