/* test_ops_xent.c — vocabulary-slice log-softmax statistics and cross-entropy gradient.
 *   - xent_stats over the full vocabulary: logp = tgt - max - log(sumexp) against float64 log-softmax, lsum against
 *     the float64 row sum;
 *   - the vocab-parallel combination of two (and three) slices with V_off > 0, where some targets lie outside
 *     each slice (tgt must be exactly 0 there), gives the same log-probs and row sums as the full slice;
 *   - xent_bwd against the float64 formula on the full vocabulary and on slices (no one-hot term when the target
 *     is outside the slice), and against central finite differences of L = sum_n g[n] logp[n]. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0xbb67ae8584caa73bULL
#include "ops_common.h"


enum { N = 8, V = 53 };
static const Backend *be;
static int tg[N];

/* copy columns [off, off + len) of full[N, V] into a [N, len] slice */
static float *slice_of(const float *full, int off, int len) {
    float *s = sd_alloc((size_t)N * len * 4, "slice");
    for (int n = 0; n < N; n++) memcpy(s + (size_t)n * len, full + (size_t)n * V + off, (size_t)len * 4);
    return s;
}

/* log-probs of the targets by combining the stats of slices [cuts[i], cuts[i+1]) as vocab-parallel would */
static void logp_sliced(double *lp, double *ls, const float *logits, const int *cuts, int ns) {
    double M[N], SE[N], T[N];
    for (int n = 0; n < N; n++) M[n] = -INFINITY, SE[n] = 0, T[n] = 0, ls[n] = 0;
    for (int s = 0; s < ns; s++) {
        int off = cuts[s], len = cuts[s + 1] - cuts[s];
        float *sl = slice_of(logits, off, len), mx[N], se[N], t[N], l[N];
        be->xent_stats(mx, se, t, l, sl, tg, N, len, off);
        for (int n = 0; n < N; n++) {
            int inside = tg[n] >= off && tg[n] < off + len;
            CHECK(inside || t[n] == 0.0f, "tgt is 0 when the target lies outside the slice");
            double m2 = fmax(M[n], mx[n]);
            SE[n] = SE[n] * exp(M[n] - m2) + se[n] * exp(mx[n] - m2);
            M[n] = m2;
            T[n] += t[n];
            ls[n] += l[n];
        }
        free(sl);
    }
    for (int n = 0; n < N; n++) lp[n] = T[n] - M[n] - log(SE[n]);
}

int main(void) {
    be = backend_cpu();
    float *lg = sd_alloc((size_t)N * V * 4, "logits");
    fill(lg, (size_t)N * V, -8, 8);
    for (int j = 0; j < V; j++) lg[j] += 60.0f; /* row 0 shifted: max subtraction must keep exp finite */
    for (int n = 0; n < N; n++) tg[n] = (int)(urand() * V);
    tg[1] = 0, tg[2] = V - 1, tg[3] = 26, tg[4] = 27; /* slice edges */

    /* full vocabulary vs float64 log-softmax */
    double ref[N], lse[N], rse[N], rmx[N], rls[N];
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, s = 0, ls = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, lg[n * V + j]);
        for (int j = 0; j < V; j++) s += exp((double)lg[n * V + j] - mx), ls += lg[n * V + j];
        rse[n] = s, rmx[n] = mx, rls[n] = ls;
        lse[n] = mx + log(s);
        ref[n] = lg[n * V + tg[n]] - lse[n];
    }
    float mx[N], se[N], t[N], ls[N];
    be->xent_stats(mx, se, t, ls, lg, tg, N, V, 0);
    double err = 0, ese = 0, els = 0, sabs = 0;
    for (int n = 0; n < N; n++) {
        double lp = (double)t[n] - mx[n] - log((double)se[n]);
        /* max and tgt are exact; each expf term is within ~1 ulp and sumexp is rounded once, so sumexp is within
         * a few 2^-24 ~ 6e-8 relative and logp within a few 6e-8 absolute: 3e-7 bounds both (observed ~1e-8) */
        err = fmax(err, fabs(lp - ref[n]) / fmax(1.0, fabs(ref[n])));
        ese = fmax(ese, fabs(se[n] - rse[n]) / rse[n]);
        els = fmax(els, fabs(ls[n] - rls[n])); /* rounded once from a double sum of floats: within 2^-24 relative of
                                                * the sum of the magnitudes */
        double a = 0;
        for (int j = 0; j < V; j++) a += fabs(lg[n * V + j]);
        sabs = fmax(sabs, a);
        CHECK(mx[n] == rmx[n], "maxv is the row max (row %d)", n);
        CHECK(t[n] == lg[n * V + tg[n]], "tgt is the target's logit (row %d)", n);
    }
    CHECK(err < 3e-7, "xent_stats log-probs vs float64 log-softmax: rel err %.3g", err);
    CHECK(ese < 3e-7, "xent_stats sumexp vs float64: rel err %.3g", ese);
    CHECK(els <= 0x1p-24 * sabs, "xent_stats lsum vs the float64 row sum: %.3g (row magnitudes up to %.3g)", els, sabs);

    /* vocab-parallel: two halves, then three uneven slices, must reproduce the full-slice log-probs */
    double lp1[N], lp2[N], lp3[N], ls1[N], ls2[N], ls3[N];
    const int c1[] = {0, V}, c2[] = {0, 27, V}, c3[] = {0, 5, 40, V};
    logp_sliced(lp1, ls1, lg, c1, 1);
    logp_sliced(lp2, ls2, lg, c2, 2);
    logp_sliced(lp3, ls3, lg, c3, 3);
    double e2 = 0, e3 = 0, el = 0;
    for (int n = 0; n < N; n++) {
        e2 = fmax(e2, fabs(lp2[n] - lp1[n]) / fmax(1.0, fabs(lp1[n])));
        e3 = fmax(e3, fabs(lp3[n] - lp1[n]) / fmax(1.0, fabs(lp1[n])));
        el = fmax(el, fmax(fabs(ls2[n] - rls[n]), fabs(ls3[n] - rls[n])));
    }
    /* each slice's sum rounded once: within 2^-24 of each slice's magnitudes, so of the row's */
    CHECK(el <= 0x1p-24 * sabs, "vocab slices' lsum add up to the row sum: %.3g", el);
    CHECK(e2 < 3e-7, "two vocab slices reproduce the full log-probs: rel err %.3g", e2);
    CHECK(e3 < 3e-7, "three vocab slices reproduce the full log-probs: rel err %.3g", e3);

    /* xent_bwd: full vocabulary and the two halves, against the float64 formula */
    float g[N], lsef[N];
    for (int n = 0; n < N; n++) g[n] = (float)(urand() * 2 - 1), lsef[n] = (float)lse[n];
    float *d = slice_of(lg, 0, V);
    be->xent_bwd(d, lsef, g, tg, N, V, 0);
    double eb = 0, dmax = 0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < V; j++) {
            double want = g[n] * ((j == tg[n]) - exp((double)lg[n * V + j] - lsef[n]));
            eb = fmax(eb, fabs(d[n * V + j] - want));
            dmax = fmax(dmax, fabs(want));
        }
    /* expf of an argument up to ~|lse| ~ 70 in fp32 carries ~70 * 2^-24 relative error: 1e-5 of the max */
    CHECK(eb < 1e-5 * dmax, "xent_bwd vs float64: %.3g (max %.3g)", eb, dmax);
    for (int s = 0; s < 2; s++) {
        int off = c2[s], len = c2[s + 1] - c2[s];
        float *ds = slice_of(lg, off, len);
        be->xent_bwd(ds, lsef, g, tg, N, len, off);
        double es = 0;
        for (int n = 0; n < N; n++)
            for (int j = 0; j < len; j++) es = fmax(es, fabs(ds[n * len + j] - d[n * V + off + j]));
        CHECK(es == 0.0, "xent_bwd on slice %d (V_off=%d) equals the full gradient's columns: %.3g", s, off, es);
        free(ds);
    }

    /* finite differences of L = sum_n g[n] logp[n], logp from xent_stats (full vocabulary), h = 1e-2:
     * |L| ~ 10, so fp32 cancellation ~2^-24 * 8 * 10 / h ~ 1e-4 absolute against gradients up to ~1;
     * truncation h^2 |f'''| / 6 < 1e-5. 1e-3 of the largest gradient is safe; a missing one-hot or a wrong
     * lse gives O(1) errors. */
    double fd = 0;
    for (int c = 0; c < 50; c++) {
        size_t i = c < 8 ? (size_t)c * V + tg[c] : (size_t)(urand() * N * V); /* every target logit, then random */
        float x0 = lg[i], xp = x0 + 1e-2f, xm = x0 - 1e-2f;
        double L[2];
        for (int s = 0; s < 2; s++) {
            lg[i] = s ? xm : xp;
            be->xent_stats(mx, se, t, ls, lg, tg, N, V, 0);
            L[s] = 0;
            for (int n = 0; n < N; n++) L[s] += g[n] * ((double)t[n] - mx[n] - log((double)se[n]));
        }
        lg[i] = x0;
        fd = fmax(fd, fabs((L[0] - L[1]) / ((double)xp - xm) - d[i]));
    }
    CHECK(fd < 1e-3 * dmax, "xent_bwd vs finite differences: %.3g (max %.3g)", fd, dmax);
    printf("xent: logp %.2g, slices %.2g/%.2g, bwd %.2g, fd %.2g\n", err, e2, e3, eb / dmax, fd / dmax);
    free(d), free(lg);
    TEST_END();
}
