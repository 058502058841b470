/* test_ops_rope.c — rotary embedding (HF rotate_half) forward against float64 on packed positions; backward
 * against the float64 transpose, the adjoint identity <fwd(x), y> = <x, bwd(y)>, bwd(fwd(x)) = x, and central
 * finite differences of L = sum(fwd(x) * R). rope_bwd_pack_b16 (the q, k, v gradients side by side) against
 * rope_bwd_b16 in place and copies, bit for bit, on the CPU and the strict backend. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0xda942042e4dd58b5ULL
#include "ops_common.h"


/* rope_bwd_pack_b16 on backend b (its memory) from host dq, dk, dv: the packed rows, downloaded into out */
static void pack_on(const Backend *b, uint16_t *out, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv,
                    const int *pos, const float *cs, const float *sn, size_t N, int NH, int NKV, int HD, int MAXP) {
    size_t qd = (size_t)NH * HD, kd = (size_t)NKV * HD, half = (size_t)HD / 2;
    void *d[7];
    size_t sz[7] = {N * qd * 2, N * kd * 2, N * kd * 2, N * sizeof(int), MAXP * half * 4, MAXP * half * 4,
                    N * (qd + 2 * kd) * 2};
    const void *src[6] = {dq, dk, dv, pos, cs, sn};
    for (int i = 0; i < 7; i++) {
        d[i] = b->alloc(sz[i], "pack test");
        if (i < 6) b->upload(d[i], src[i], sz[i]);
    }
    b->rope_bwd_pack_b16(d[6], d[0], d[1], d[2], d[3], d[4], d[5], N, NH, NKV, HD);
    b->download(out, d[6], sz[6]);
    for (int i = 0; i < 7; i++) b->free(d[i]);
}

/* rope_bwd_pack_b16: row n of the packed tensor is rope_bwd_b16(dq)[n] | rope_bwd_b16(dk)[n] | dv[n], bitwise */
static void pack_checks(const int *pos, int N, int MAXP) {
    const int NH = 4, NKV = 2, HD = 16, half = HD / 2;
    size_t qd = (size_t)NH * HD, kd = (size_t)NKV * HD, ld = qd + 2 * kd;
    float *cs = sd_alloc((size_t)MAXP * half * 4, "cos"), *sn = sd_alloc((size_t)MAXP * half * 4, "sin");
    for (int p = 0; p < MAXP; p++)
        for (int i = 0; i < half; i++) {
            double a = p * pow(500000.0, -2.0 * i / HD);
            cs[p * half + i] = (float)cos(a), sn[p * half + i] = (float)sin(a);
        }
    float *f = sd_alloc(N * ld * 4, "f");
    uint16_t *q = sd_alloc(N * qd * 2, "dq"), *k = sd_alloc(N * kd * 2, "dk"), *v = sd_alloc(N * kd * 2, "dv");
    fill(f, N * ld, -3, 3);
    const Backend *be = backend_cpu();
    be->to_bf16(q, f, N * qd), be->to_bf16(k, f + N * qd, N * kd), be->to_bf16(v, f + N * (qd + kd), N * kd);
    uint16_t *want = sd_alloc(N * ld * 2, "want"), *got = sd_alloc(N * ld * 2, "got");
    uint16_t *rq = sd_alloc(N * qd * 2, "rq"), *rk = sd_alloc(N * kd * 2, "rk");
    memcpy(rq, q, N * qd * 2), memcpy(rk, k, N * kd * 2);
    be->rope_bwd_b16(rq, pos, cs, sn, N, NH, HD);
    be->rope_bwd_b16(rk, pos, cs, sn, N, NKV, HD);
    for (int n = 0; n < N; n++) {
        memcpy(want + n * ld, rq + n * qd, qd * 2);
        memcpy(want + n * ld + qd, rk + n * kd, kd * 2);
        memcpy(want + n * ld + qd + kd, v + n * kd, kd * 2);
    }
    uint16_t *q0 = sd_alloc(N * ld * 2, "inputs"); /* dq, dk, dv as given, side by side (not rotated) */
    memcpy(q0, q, N * qd * 2), memcpy(q0 + N * qd, k, N * kd * 2), memcpy(q0 + N * (qd + kd), v, N * kd * 2);
    memset(got, 0xff, N * ld * 2);
    be->rope_bwd_pack_b16(got, q, k, v, pos, cs, sn, N, NH, NKV, HD);
    CHECK(memcmp(got, want, N * ld * 2) == 0, "rope_bwd_pack_b16 differs from rope_bwd_b16 in place and copies");
    CHECK(!memcmp(q0, q, N * qd * 2) && !memcmp(q0 + N * qd, k, N * kd * 2) &&
              !memcmp(q0 + N * (qd + kd), v, N * kd * 2),
          "rope_bwd_pack_b16 wrote its inputs");
    free(q0);
    memset(got, 0xff, N * ld * 2);
    pack_on(backend_cpu_strict(), got, q, k, v, pos, cs, sn, N, NH, NKV, HD, MAXP);
    CHECK(memcmp(got, want, N * ld * 2) == 0, "rope_bwd_pack_b16 on the strict backend differs from the CPU's");
    printf("rope_bwd_pack_b16 NH=%d NKV=%d HD=%d N=%d: rope_bwd_b16 and copies, bitwise (CPU, strict)\n", NH, NKV,
           HD, N);
    free(cs), free(sn), free(f), free(q), free(k), free(v), free(want), free(got), free(rq), free(rk);
}

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
    pack_checks(pos, N, MAXP);
    TEST_END();
}
