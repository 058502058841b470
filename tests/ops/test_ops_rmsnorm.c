/* test_ops_rmsnorm.c — RMSNorm forward (out, rstd) against float64 HF formulas; backward (accumulating dx, dw)
 * against a float64 analytic gradient and against central finite differences of L = sum(out * R). */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x2545f4914f6cdd1dULL
#include "ops_common.h"


static const Backend *be;
static size_t N;
static int C;
static float eps = 1e-5f;

/* L = sum(out * R) in double, out from the kernel */
static double loss(const float *x, const float *w, const float *R) {
    float *out = sd_alloc(N * C * sizeof(float), "out"), *rstd = sd_alloc(N * sizeof(float), "rstd");
    be->rmsnorm_fwd(out, rstd, x, w, N, C, eps);
    double L = 0;
    for (size_t i = 0; i < N * C; i++) L += (double)out[i] * R[i];
    free(out), free(rstd);
    return L;
}

/* central differences on `cnt` random elements of t (an input of loss()), compared with the analytic g;
 * the step of element i is 1e-2 * scale[i] (the rms of its row for x, so the tiny row gets a tiny step). */
static double fd_check(float *t, size_t n, const float *g, const double *scale, const float *x, const float *w,
                       const float *R, int cnt) {
    double err = 0, gmax = 1e-300;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (int c = 0; c < cnt; c++) {
        size_t i = (size_t)(urand() * n);
        float x0 = t[i];
        float xp = (float)(x0 + 1e-2 * scale[i]), xm = (float)(x0 - 1e-2 * scale[i]);
        t[i] = xp;
        double Lp = loss(x, w, R);
        t[i] = xm;
        double Lm = loss(x, w, R);
        t[i] = x0;
        double fd = (Lp - Lm) / ((double)xp - (double)xm);
        err = fmax(err, fabs(fd - g[i]));
    }
    return err / gmax;
}

static void run(size_t N_, int C_) {
    N = N_, C = C_;
    size_t NC = N * C;
    float *x = sd_alloc(NC * 4, "x"), *w = sd_alloc(C * 4, "w"), *out = sd_alloc(NC * 4, "out");
    float *rstd = sd_alloc(N * 4, "rstd"), *R = sd_alloc(NC * 4, "R");
    float *dx = sd_alloc(NC * 4, "dx"), *dw = sd_alloc(C * 4, "dw"), *dx0 = sd_alloc(NC * 4, "dx0");
    float *dw0 = sd_alloc(C * 4, "dw0");
    double *ro = sd_alloc(NC * 8, "ref out"), *rr = sd_alloc(N * 8, "ref rstd");
    double *rdx = sd_alloc(NC * 8, "ref dx"), *rdw = sd_alloc(C * 8, "ref dw");
    fill(x, NC, -2, 2);
    for (int r = 0; r < 2 && (size_t)r < N; r++) /* a tiny row and a large one: eps matters, scale matters */
        for (int i = 0; i < C; i++) x[r * C + i] *= r == 0 ? 1e-3f : 50.0f;
    fill(w, C, 0.5, 1.5);
    fill(R, NC, -1, 1);
    be->rmsnorm_fwd(out, rstd, x, w, N, C, eps);
    for (size_t n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)x[n * C + i] * x[n * C + i];
        rr[n] = 1.0 / sqrt(ss / C + (double)eps);
        for (int i = 0; i < C; i++) ro[n * C + i] = (double)w[i] * x[n * C + i] * rr[n];
    }
    /* fp32 evaluation of the same formula: a handful of roundings, each 2^-24 ~ 6e-8 relative */
    double e_out = rel_err(out, ro, NC), e_r = 0;
    for (size_t n = 0; n < N; n++) e_r = fmax(e_r, fabs(rstd[n] - rr[n]) / rr[n]);
    CHECK(e_out < 1e-6, "rmsnorm_fwd N=%zu C=%d out rel err %.3g", N, C, e_out);
    CHECK(e_r < 1e-6, "rmsnorm_fwd N=%zu C=%d rstd rel err %.3g", N, C, e_r);

    /* backward: accumulates into pre-filled dx, dw */
    fill(dx0, NC, -1, 1);
    fill(dw0, C, -1, 1);
    memcpy(dx, dx0, NC * 4);
    memcpy(dw, dw0, C * 4);
    be->rmsnorm_bwd(dx, dw, R, x, w, rstd, N, C);
    /* rmsnorm_bwd_out16 (autocast storage's norms' backward): the same dx, dw bit for bit, and dx16 = bf16(dx),
     * on the CPU and through the strict backend's checks */
    const Backend *b16s[2] = {be, backend_cpu_strict()};
    for (int k = 0; k < 2; k++) {
        const Backend *b = b16s[k];
        float *dxb = b->alloc(NC * 4, "dx"), *dwb = b->alloc(C * 4, "dw"), *Rb = b->alloc(NC * 4, "R");
        float *xb = b->alloc(NC * 4, "x"), *wb = b->alloc(C * 4, "w"), *rb = b->alloc(N * 4, "rstd");
        uint16_t *d16 = b->alloc(NC * 2, "dx16");
        b->upload(dxb, dx0, NC * 4), b->upload(dwb, dw0, C * 4), b->upload(Rb, R, NC * 4), b->upload(xb, x, NC * 4);
        b->upload(wb, w, C * 4), b->upload(rb, rstd, N * 4);
        b->rmsnorm_bwd_out16(dxb, d16, dwb, Rb, xb, wb, rb, N, C);
        float *hx = sd_alloc(NC * 4, "dx"), *hw = sd_alloc(C * 4, "dw");
        uint16_t *h16 = sd_alloc(NC * 2, "dx16");
        b->download(hx, dxb, NC * 4), b->download(hw, dwb, C * 4), b->download(h16, d16, NC * 2);
        size_t bad16 = 0;
        for (size_t i = 0; i < NC; i++) bad16 += h16[i] != sd_f32_to_bf16(dx[i]);
        CHECK(!memcmp(hx, dx, NC * 4) && !memcmp(hw, dw, C * 4) && bad16 == 0,
              "rmsnorm_bwd_out16 (%s) N=%zu C=%d: dx, dw not rmsnorm_bwd's or %zu dx16 not bf16(dx)", b->name, N, C,
              bad16);
        free(hx), free(hw), free(h16);
        b->free(dxb), b->free(dwb), b->free(Rb), b->free(xb), b->free(wb), b->free(rb), b->free(d16);
    }
    for (int i = 0; i < C; i++) rdw[i] = 0;
    for (size_t n = 0; n < N; n++) {
        double r = rr[n], dot = 0;
        for (int i = 0; i < C; i++) dot += (double)R[n * C + i] * w[i] * x[n * C + i];
        for (int i = 0; i < C; i++) {
            size_t k = n * C + i;
            rdx[k] = r * w[i] * R[k] - r * r * r / C * x[k] * dot;
            rdw[i] += (double)R[k] * x[k] * r;
        }
    }
    for (size_t k = 0; k < NC; k++) dx[k] -= dx0[k]; /* remove the pre-filled part to compare gradients */
    for (int i = 0; i < C; i++) dw[i] -= dw0[i];
    double e_dx = rel_err(dx, rdx, NC), e_dw = rel_err(dw, rdw, C);
    /* float64 reference: the kernel's only error is fp32 rounding (and subtracting the O(1) pre-fill) */
    CHECK(e_dx < 1e-5, "rmsnorm_bwd dx vs float64 rel err %.3g", e_dx);
    CHECK(e_dw < 1e-5, "rmsnorm_bwd dw vs float64 rel err %.3g", e_dw);
    /* finite differences, h = 1e-2 of the row's rms in fp32: truncation O(h^2 f''') and cancellation
     * ~sqrt(NC) 2^-24 |L| / h measure <= 1e-4 of the largest gradient here; 1e-3 leaves 10x margin while a wrong
     * term (e.g. a dropped r^3 correction or a missing w) gives O(1) errors. */
    double *hx = sd_alloc(NC * 8, "steps x"), *hw = sd_alloc(C * 8, "steps w");
    for (size_t k = 0; k < NC; k++) hx[k] = sqrt(1.0 / (rr[k / C] * rr[k / C]) - eps);
    for (int i = 0; i < C; i++) hw[i] = 1.0;
    double f_dx = fd_check(x, NC, dx, hx, x, w, R, 40), f_dw = fd_check(w, C, dw, hw, x, w, R, 20);
    free(hx), free(hw);
    CHECK(f_dx < 1e-3, "rmsnorm_bwd dx vs finite differences rel err %.3g", f_dx);
    CHECK(f_dw < 1e-3, "rmsnorm_bwd dw vs finite differences rel err %.3g", f_dw);
    printf("rmsnorm N=%zu C=%d: fwd %.2g/%.2g, bwd %.2g/%.2g, fd %.2g/%.2g\n", N, C, e_out, e_r, e_dx, e_dw, f_dx,
           f_dw);
    free(x), free(w), free(out), free(rstd), free(R), free(dx), free(dw), free(dx0), free(dw0);
    free(ro), free(rr), free(rdx), free(rdw);
}

/* rmsnorm_fwd_b16 / rmsnorm_bwd_b16 (Qwen3's q / k norms in autocast storage): bf16 rows x, dout; the forward's out
 * is bf16(rmsnorm_fwd of the widened x) and within one bf16 rounding (2^-9 relative) of a float64 evaluation; the
 * backward writes dx = bf16(rmsnorm_bwd's d/dx from zero) (pre-filled dx overwritten) and accumulates dw; the
 * strict backend gives the same bits */
static void run_b16(size_t N_, int C_) {
    size_t NC = N_ * (size_t)C_;
    float *x = sd_alloc(NC * 4, "x"), *w = sd_alloc((size_t)C_ * 4, "w"), *dy = sd_alloc(NC * 4, "dy");
    fill(x, NC, -3, 3);
    fill(w, (size_t)C_, 0.5, 1.5);
    fill(dy, NC, -1, 1);
    uint16_t *x16 = sd_alloc(NC * 2, "x16"), *dy16 = sd_alloc(NC * 2, "dy16");
    for (size_t i = 0; i < NC; i++) { /* the bf16 values, and x, dy as exactly those values */
        x16[i] = sd_f32_to_bf16(x[i]), x[i] = sd_bf16_to_f32(x16[i]);
        dy16[i] = sd_f32_to_bf16(dy[i]), dy[i] = sd_bf16_to_f32(dy16[i]);
    }
    /* the fp32 ops on the same values */
    float *out = sd_alloc(NC * 4, "out"), *rstd = sd_alloc(N_ * 4, "rstd"), *dx = sd_alloc(NC * 4, "dx");
    float *dw = sd_alloc((size_t)C_ * 4, "dw"), *dw0 = sd_alloc((size_t)C_ * 4, "dw0");
    fill(dw0, (size_t)C_, -1, 1);
    memcpy(dw, dw0, (size_t)C_ * 4);
    memset(dx, 0, NC * 4);
    be->rmsnorm_fwd(out, rstd, x, w, N_, C_, eps);
    be->rmsnorm_bwd(dx, dw, dy, x, w, rstd, N_, C_);
    double worst = 0;
    for (size_t n = 0; n < N_; n++) {
        double ss = 0;
        for (int i = 0; i < C_; i++) ss += (double)x[n * C_ + i] * x[n * C_ + i];
        double r = 1.0 / sqrt(ss / C_ + (double)eps);
        for (int i = 0; i < C_; i++) {
            double ref = (double)w[i] * x[n * C_ + i] * r;
            worst = fmax(worst, fabs(sd_bf16_to_f32(sd_f32_to_bf16(out[n * C_ + i])) - ref) / fmax(fabs(ref), 1e-30));
        }
    }
    CHECK(worst <= 1.0 / 256, "rmsnorm_fwd_b16's values vs float64: %.3g relative (one bf16 rounding: 2^-8)", worst);
    const Backend *bs[2] = {be, backend_cpu_strict()};
    for (int k = 0; k < 2; k++) {
        const Backend *b = bs[k];
        uint16_t *bx = b->alloc(NC * 2, "x"), *bdy = b->alloc(NC * 2, "dy"), *bo = b->alloc(NC * 2, "out");
        uint16_t *bdx = b->alloc(NC * 2, "dx");
        float *bw = b->alloc((size_t)C_ * 4, "w"), *br = b->alloc(N_ * 4, "rstd"), *bdw = b->alloc((size_t)C_ * 4, "dw");
        uint16_t *junk = sd_alloc(NC * 2, "junk");
        for (size_t i = 0; i < NC; i++) junk[i] = 0x4321; /* dx is written, whatever it held */
        b->upload(bx, x16, NC * 2), b->upload(bdy, dy16, NC * 2), b->upload(bw, w, (size_t)C_ * 4);
        b->upload(bdw, dw0, (size_t)C_ * 4), b->upload(bdx, junk, NC * 2);
        b->rmsnorm_fwd_b16(bo, br, bx, bw, N_, C_, eps);
        b->rmsnorm_bwd_b16(bdx, bdw, bdy, bx, bw, br, N_, C_);
        uint16_t *ho = sd_alloc(NC * 2, "out"), *hdx = sd_alloc(NC * 2, "dx");
        float *hr = sd_alloc(N_ * 4, "rstd"), *hw = sd_alloc((size_t)C_ * 4, "dw");
        b->download(ho, bo, NC * 2), b->download(hdx, bdx, NC * 2), b->download(hr, br, N_ * 4);
        b->download(hw, bdw, (size_t)C_ * 4);
        size_t bad_o = 0, bad_dx = 0;
        for (size_t i = 0; i < NC; i++) bad_o += ho[i] != sd_f32_to_bf16(out[i]), bad_dx += hdx[i] != sd_f32_to_bf16(dx[i]);
        CHECK(bad_o == 0 && !memcmp(hr, rstd, N_ * 4), "rmsnorm_fwd_b16 (%s) N=%zu C=%d: %zu outputs not bf16(fp32 op's)",
              b->name, N_, C_, bad_o);
        CHECK(bad_dx == 0 && !memcmp(hw, dw, (size_t)C_ * 4),
              "rmsnorm_bwd_b16 (%s) N=%zu C=%d: %zu dx not bf16(fp32 op's from zero), or dw not accumulated as it", b->name,
              N_, C_, bad_dx);
        free(ho), free(hdx), free(hr), free(hw), free(junk);
        b->free(bx), b->free(bdy), b->free(bo), b->free(bdx), b->free(bw), b->free(br), b->free(bdw);
    }
    free(x), free(w), free(dy), free(x16), free(dy16), free(out), free(rstd), free(dx), free(dw), free(dw0);
}

int main(void) {
    be = backend_cpu();
    run(7, 16);
    run(33, 64);
    run(3, 1000);
    run_b16(96, 16);  /* Qwen3-like rows: many heads of a small head dim */
    run_b16(40, 128);
    TEST_END();
}
