/* test_ops_attention.c — causal GQA attention over packed sequences, with and without the Gemma 2 options
 * (AttnOpts: scale, soft-capping of the scaled scores, sliding window).
 * Forward (out, lse) against a float64 reference that builds each sequence's full score matrix; backward
 * (dq, dk, dv, which must be *written*) against a float64 analytic backward and against central finite
 * differences of L = sum(out * R). Shapes: several packed sequences of different lengths (incl. length 1),
 * GQA (NH=4, NKV=2 and NKV=1) and plain multi-head, HD = 8 and 16. Options: the scale, caps that bend the scores
 * hard, windows shorter than the sequences; the identities (all-zero options = NULL, a window as long as the
 * sequence = none, window 1 = out is v); the strict backend's wrapper passes them on and refuses nonsense.
 * Prefix sharing in the layers' rows (attn_fwd_b16_rows / attn_bwd_b16_rows, rows_checks): against the ops on
 * attention's layout gathered by hand, on the CPU and the strict backend. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x853c49e6748fea9bULL
#include "ops_common.h"


static const Backend *be;
static const int *cu;
static int S, NH, NKV, HD, N;
static const AttnOpts *opt; /* the options under test (NULL: Llama's attention) */

/* float64 reference forward and backward, sequence by sequence and head by head with full T x T matrices */
static void ref_attn(double *out, double *lse, double *dq, double *dk, double *dv, const float *q, const float *k,
                     const float *v, const float *dout) {
    size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    /* the kernel's scale as a float (the value it multiplies by), the cap and the window of opt */
    double sc = opt && opt->scale > 0 ? (double)opt->scale : 1.0 / sqrt((double)HD);
    double cap = opt && opt->softcap > 0 ? (double)opt->softcap : 0;
    int win = opt ? opt->window : 0;
    memset(dq, 0, N * qs * 8);
    memset(dk, 0, N * ks * 8);
    memset(dv, 0, N * ks * 8);
    for (int s = 0; s < S; s++) {
        int st = cu[s], T = cu[s + 1] - cu[s];
        double *P = sd_calloc((size_t)T * T, 8, "P"), *dP = sd_calloc((size_t)T * T, 8, "dP");
        double *Dc = sd_calloc((size_t)T * T, 8, "dcap"); /* d(capped score)/d(raw score) */
        for (int h = 0; h < NH; h++) {
            int g = h / (NH / NKV);
#define Q(i, d) ((double)q[(size_t)(st + (i)) * qs + (size_t)h * HD + (d)])
#define K(j, d) ((double)k[(size_t)(st + (j)) * ks + (size_t)g * HD + (d)])
#define VV(j, d) ((double)v[(size_t)(st + (j)) * ks + (size_t)g * HD + (d)])
#define DO(i, d) ((double)dout[(size_t)(st + (i)) * qs + (size_t)h * HD + (d)])
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double x = -INFINITY; /* causal mask, and the sliding window: i - win < j */
                    if (j <= i && (win <= 0 || j > i - win)) {
                        x = 0;
                        for (int d = 0; d < HD; d++) x += Q(i, d) * K(j, d);
                        x *= sc;
                        Dc[i * T + j] = 1;
                        if (cap > 0) {
                            double t = tanh(x / cap);
                            x = cap * t;
                            Dc[i * T + j] = 1 - t * t;
                        }
                    }
                    P[i * T + j] = x;
                    mx = fmax(mx, x);
                }
                for (int j = 0; j < T; j++) sum += exp(P[i * T + j] - mx);
                for (int j = 0; j < T; j++) P[i * T + j] = exp(P[i * T + j] - mx) / sum;
                lse[(size_t)(st + i) * NH + h] = mx + log(sum);
                for (int d = 0; d < HD; d++) {
                    double o = 0;
                    for (int j = 0; j < T; j++) o += P[i * T + j] * VV(j, d);
                    out[(size_t)(st + i) * qs + (size_t)h * HD + d] = o;
                }
            }
            /* backward of out = P V, P = softmax(S): dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)) */
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    double x = 0;
                    for (int d = 0; d < HD; d++) x += DO(i, d) * VV(j, d);
                    dP[i * T + j] = x;
                }
            for (int i = 0; i < T; i++) {
                double D = 0;
                for (int j = 0; j < T; j++) D += P[i * T + j] * dP[i * T + j];
                for (int j = 0; j < T; j++) {
                    double dS = P[i * T + j] * (dP[i * T + j] - D) * Dc[i * T + j] * sc;
                    for (int d = 0; d < HD; d++) {
                        dq[(size_t)(st + i) * qs + (size_t)h * HD + d] += dS * K(j, d);
                        dk[(size_t)(st + j) * ks + (size_t)g * HD + d] += dS * Q(i, d);
                        dv[(size_t)(st + j) * ks + (size_t)g * HD + d] += P[i * T + j] * DO(i, d);
                    }
                }
            }
#undef Q
#undef K
#undef VV
#undef DO
        }
        free(P), free(dP), free(Dc);
    }
}

static double loss(const float *q, const float *k, const float *v, const float *R) {
    size_t no = (size_t)N * NH * HD;
    float *out = sd_alloc(no * 4, "out"), *lse = sd_alloc((size_t)N * NH * 4, "lse");
    be->attn_fwd(out, lse, q, k, v, cu, S, NH, NKV, HD, opt);
    double L = 0;
    for (size_t i = 0; i < no; i++) L += (double)out[i] * R[i];
    free(out), free(lse);
    return L;
}

static double fd_check(float *t, size_t n, const float *g, const float *q, const float *k, const float *v,
                       const float *R, int cnt) {
    double err = 0, gmax = 1e-300;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (int c = 0; c < cnt; c++) {
        size_t i = (size_t)(urand() * n);
        float x0 = t[i], xp = x0 + 1e-2f, xm = x0 - 1e-2f;
        t[i] = xp;
        double Lp = loss(q, k, v, R);
        t[i] = xm;
        double Lm = loss(q, k, v, R);
        t[i] = x0;
        err = fmax(err, fabs((Lp - Lm) / ((double)xp - (double)xm) - g[i]));
    }
    return err / gmax;
}

static void run_opt(const int *cu_, int S_, int NH_, int NKV_, int HD_, double amp, const AttnOpts *o) {
    cu = cu_, S = S_, NH = NH_, NKV = NKV_, HD = HD_, N = cu[S], opt = o;
    size_t nq = (size_t)N * NH * HD, nk = (size_t)N * NKV * HD, nl = (size_t)N * NH;
    float *q = sd_alloc(nq * 4, "q"), *k = sd_alloc(nk * 4, "k"), *v = sd_alloc(nk * 4, "v");
    float *out = sd_alloc(nq * 4, "out"), *lse = sd_alloc(nl * 4, "lse"), *R = sd_alloc(nq * 4, "R");
    float *dq = sd_alloc(nq * 4, "dq"), *dk = sd_alloc(nk * 4, "dk"), *dv = sd_alloc(nk * 4, "dv");
    double *ro = sd_alloc(nq * 8, "ro"), *rl = sd_alloc(nl * 8, "rl"), *rdq = sd_alloc(nq * 8, "rdq");
    double *rdk = sd_alloc(nk * 8, "rdk"), *rdv = sd_alloc(nk * 8, "rdv");
    fill(q, nq, -amp, amp); /* amp scales the logits: ~amp^2 sqrt(HD) spread, a peaked softmax for amp = 2 */
    fill(k, nk, -amp, amp);
    fill(v, nk, -1, 1);
    fill(R, nq, -1, 1);
    be->attn_fwd(out, lse, q, k, v, cu, S, NH, NKV, HD, opt);
    ref_attn(ro, rl, rdq, rdk, rdv, q, k, v, R);
    /* fp32: dot products over HD and sums over <= T terms, ~1e-7 relative; 2e-6 is a tight bound */
    double e_o = rel_err(out, ro, nq), e_l = rel_err(lse, rl, nl);
    CHECK(e_o < 2e-6, "attn_fwd out rel err %.3g (S=%d NH=%d NKV=%d HD=%d)", e_o, S, NH, NKV, HD);
    CHECK(e_l < 2e-6, "attn_fwd lse rel err %.3g", e_l);
    for (size_t i = 0; i < nq; i++) dq[i] = 1234.0f; /* attn_bwd writes: stale contents must not leak */
    for (size_t i = 0; i < nk; i++) dk[i] = dv[i] = -777.0f;
    be->attn_bwd(dq, dk, dv, R, q, k, v, out, lse, cu, S, NH, NKV, HD, opt);
    /* float64 analytic backward: the kernel differs only by fp32 rounding (exp(s - lse) with an fp32 lse
     * carries ~|s| 2^-24 relative error per probability); observed <= 3e-7, so 1e-5 has 30x margin */
    double e_dq = rel_err(dq, rdq, nq), e_dk = rel_err(dk, rdk, nk), e_dv = rel_err(dv, rdv, nk);
    CHECK(e_dq < 1e-5, "attn_bwd dq vs float64 rel err %.3g", e_dq);
    CHECK(e_dk < 1e-5, "attn_bwd dk vs float64 rel err %.3g", e_dk);
    CHECK(e_dv < 1e-5, "attn_bwd dv vs float64 rel err %.3g", e_dv);
    /* finite differences with h = 1e-2 in fp32: truncation h^2 |f'''| / 6 and cancellation ~2^-24 sqrt(nq) / h
     * are each <= 1e-4 of the largest gradient (observed <= 6e-5); 1e-3 leaves margin while any wrong term
     * (mask, scale, GQA mapping, D_i) gives O(1e-1..1) errors. */
    double f_q = fd_check(q, nq, dq, q, k, v, R, 40), f_k = fd_check(k, nk, dk, q, k, v, R, 40);
    double f_v = fd_check(v, nk, dv, q, k, v, R, 40);
    CHECK(f_q < 1e-3, "attn_bwd dq vs finite differences rel err %.3g", f_q);
    CHECK(f_k < 1e-3, "attn_bwd dk vs finite differences rel err %.3g", f_k);
    CHECK(f_v < 1e-3, "attn_bwd dv vs finite differences rel err %.3g", f_v);
    printf("attn S=%d N=%d NH=%d NKV=%d HD=%d amp=%g", S, N, NH, NKV, HD, amp);
    if (o) printf(" scale=%g cap=%g window=%d", (double)o->scale, (double)o->softcap, o->window);
    printf(": fwd %.2g/%.2g bwd %.2g/%.2g/%.2g fd %.2g/%.2g/%.2g\n", e_o, e_l, e_dq, e_dk, e_dv, f_q, f_k, f_v);
    free(q), free(k), free(v), free(out), free(lse), free(R), free(dq), free(dk), free(dv);
    free(ro), free(rl), free(rdq), free(rdk), free(rdv);
    opt = NULL;
}
static void run(const int *cu_, int S_, int NH_, int NKV_, int HD_, double amp) {
    run_opt(cu_, S_, NH_, NKV_, HD_, amp, NULL);
}

/* forward and backward of one random problem under options o (out, lse, dq, dk, dv: host buffers) */
static void fwd_bwd(const Backend *b, const int *cu_, int S_, int NH_, int NKV_, int HD_, const AttnOpts *o,
                    const float *q, const float *k, const float *v, const float *R, float *out, float *lse, float *dq,
                    float *dk, float *dv) {
    b->attn_fwd(out, lse, q, k, v, cu_, S_, NH_, NKV_, HD_, o);
    b->attn_bwd(dq, dk, dv, R, q, k, v, out, lse, cu_, S_, NH_, NKV_, HD_, o);
}

/* bitwise equality of out, lse, dq, dk, dv between options a and b on the CPU backend */
static int same_results(const int *cu_, int S_, int NH_, int NKV_, int HD_, const AttnOpts *a, const AttnOpts *b) {
    int n = cu_[S_];
    size_t nq = (size_t)n * NH_ * HD_, nk = (size_t)n * NKV_ * HD_, nl = (size_t)n * NH_;
    float *q = sd_alloc(nq * 4, "q"), *k = sd_alloc(nk * 4, "k"), *v = sd_alloc(nk * 4, "v");
    float *R = sd_alloc(nq * 4, "R");
    fill(q, nq, -1.5, 1.5), fill(k, nk, -1.5, 1.5), fill(v, nk, -1, 1), fill(R, nq, -1, 1);
    float *r[2][5];
    for (int t = 0; t < 2; t++) {
        r[t][0] = sd_alloc(nq * 4, "out"), r[t][1] = sd_alloc(nl * 4, "lse"), r[t][2] = sd_alloc(nq * 4, "dq");
        r[t][3] = sd_alloc(nk * 4, "dk"), r[t][4] = sd_alloc(nk * 4, "dv");
        fwd_bwd(backend_cpu(), cu_, S_, NH_, NKV_, HD_, t ? b : a, q, k, v, R, r[t][0], r[t][1], r[t][2], r[t][3],
                r[t][4]);
    }
    size_t sz[5] = {nq, nl, nq, nk, nk};
    int same = 1;
    for (int i = 0; i < 5; i++) same &= memcmp(r[0][i], r[1][i], sz[i] * 4) == 0;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 5; i++) free(r[t][i]);
    free(q), free(k), free(v), free(R);
    return same;
}

/* the strict backend (backend memory the host cannot touch) with options: bit for bit the CPU backend */
static void strict_checks(const AttnOpts *o) {
    static const int c[] = {0, 7, 19};
    const int S_ = 2, NH_ = 4, NKV_ = 2, HD_ = 8, n = c[S_];
    size_t nq = (size_t)n * NH_ * HD_, nk = (size_t)n * NKV_ * HD_, nl = (size_t)n * NH_;
    float *h[9];
    size_t sz[9] = {nq, nk, nk, nq, nq, nl, nq, nk, nk}; /* q k v R | out lse dq dk dv */
    for (int i = 0; i < 9; i++) h[i] = sd_alloc(sz[i] * 4, "host");
    fill(h[0], nq, -1.5, 1.5), fill(h[1], nk, -1.5, 1.5), fill(h[2], nk, -1, 1), fill(h[3], nq, -1, 1);
    fwd_bwd(backend_cpu(), c, S_, NH_, NKV_, HD_, o, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
    const Backend *sb = backend_cpu_strict();
    float *d[9];
    for (int i = 0; i < 9; i++) {
        d[i] = sb->alloc(sz[i] * 4, "strict");
        if (i < 4) sb->upload(d[i], h[i], sz[i] * 4);
    }
    int *dcu = sb->alloc(sizeof c, "cu");
    sb->upload(dcu, c, sizeof c);
    fwd_bwd(sb, dcu, S_, NH_, NKV_, HD_, o, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]);
    int same = 1;
    for (int i = 4; i < 9; i++) {
        float *got = sd_alloc(sz[i] * 4, "got");
        sb->download(got, d[i], sz[i] * 4);
        same &= memcmp(got, h[i], sz[i] * 4) == 0;
        free(got);
    }
    CHECK(same, "strict backend with options (cap %g window %d) differs from the CPU backend", (double)o->softcap,
          o->window);
    for (int i = 0; i < 9; i++) sb->free(d[i]), free(h[i]);
    sb->free(dcu);
}

/* the strict backend refuses options that make no sense (a negative window or cap, a NaN scale) by name */
static AttnOpts g_bad;
static void strict_bad(void *arg) {
    (void)arg;
    static const int c[] = {0, 2};
    const Backend *sb = backend_cpu_strict();
    float *x = sb->alloc(64 * 4, "x");
    int *dcu = sb->alloc(sizeof c, "cu");
    sb->upload(dcu, c, sizeof c);
    sb->attn_fwd(x, x, x, x, x, dcu, 1, 1, 1, 8, &g_bad);
}

/* prefix sharing's layouts of P pairs pr[i] = {n_prompt, n_chosen, n_rejected} as data/pairs.c makes them: the layers'
 * rows [prompt | chosen | rejected] per pair, attention's sequences 2i = prompt + chosen, 2i + 1 = prompt + rejected
 * (its first n_prompt rows copies): cu [2P + 1], skip [2P], xrow [Na] (attention row -> token), own [Nt] (token ->
 * its own attention row), kind [Nt] ('p' prompt, 'x' response); *Nt, *Na the row counts (<= 64 here) */
static void rows_layout(const int (*pr)[3], int P, int *c, int *skip, int *xrow, int *own, char *kind, int *Nt,
                        int *Na) {
    int t = 0, a = 0;
    c[0] = 0;
    for (int i = 0; i < P; i++) {
        const int tp = t;
        for (int r = 0; r < 2; r++) {
            skip[2 * i + r] = r ? pr[i][0] : 0;
            for (int j = 0; j < pr[i][0] + pr[i][1 + r]; j++, a++) {
                if (j < pr[i][0] && r) xrow[a] = tp + j; /* a copy */
                else own[t] = a, kind[t] = j < pr[i][0] ? 'p' : 'x', xrow[a] = t++;
            }
            c[2 * i + r + 1] = a;
        }
    }
    *Nt = t, *Na = a;
}

/* attn_fwd_b16_rows / attn_bwd_b16_rows (prefix sharing: attention's rows read through xrow, the rejected sequence's
 * prompt rows copies of the chosen one's) against attn_fwd_b16 / attn_bwd_b16 on attention's layout gathered here,
 * a copy's dout zero: out, lse, dq bitwise (a copy adds exact zeros to dq); dk, dv bitwise on the responses' tokens
 * and, on the prompt's, the fp32 sum of the two rows rounded once against the two rows rounded, then summed: apart
 * by three roundings of at most 2^-9 of their values, at most 2^-8 of the rows' magnitudes and the sum's. Every
 * token row is written (outputs prefilled with garbage), and the strict backend gives the CPU's results bit for
 * bit. */
static void rows_checks(const Backend *b) {
    enum { P = 3, NH_ = 4, NKV_ = 2, HD_ = 8 };
    static const int pr[P][3] = {{5, 3, 4}, {1, 1, 6}, {7, 2, 1}}; /* n_prompt, n_chosen, n_rejected */
    int c[2 * P + 1], skip[2 * P], xrow[64], own[64], Nt, Na;
    char kind[64];
    rows_layout(pr, P, c, skip, xrow, own, kind, &Nt, &Na);
    const size_t qs = NH_ * HD_, ks = NKV_ * HD_;
    uint16_t q[64 * qs], k[64 * ks], v[64 * ks], dout[64 * qs], out[64 * qs], g[3][64 * qs];
    float lse[64 * NH_], t[64 * qs];
    fill(t, Nt * qs, -1.5, 1.5), be->to_bf16(q, t, Nt * qs);
    fill(t, Nt * ks, -1.5, 1.5), be->to_bf16(k, t, Nt * ks);
    fill(t, Nt * ks, -1, 1), be->to_bf16(v, t, Nt * ks);
    fill(t, Nt * qs, -1, 1), be->to_bf16(dout, t, Nt * qs);
    memset(out, 0xff, sizeof out), memset(g, 0xff, sizeof g), memset(lse, 0xff, sizeof lse); /* NaN garbage */
    /* on b's memory (the strict backend's is not the host's) */
    const size_t B16 = sizeof(uint16_t);
    int *dc = b->alloc(sizeof c, "cu"), *dx = b->alloc((size_t)Na * sizeof(int), "xrow");
    int *ds = b->alloc(sizeof skip, "skip");
    uint16_t *dq_ = b->alloc(Nt * qs * B16, "q"), *dk_ = b->alloc(Nt * ks * B16, "k");
    uint16_t *dv_ = b->alloc(Nt * ks * B16, "v");
    uint16_t *ddo = b->alloc(Nt * qs * B16, "dout"), *dout_ = b->alloc(Nt * qs * B16, "out");
    uint16_t *dg[3] = {b->alloc(Nt * qs * B16, "dq"), b->alloc(Nt * ks * B16, "dk"), b->alloc(Nt * ks * B16, "dv")};
    float *dl = b->alloc(Nt * NH_ * sizeof(float), "lse");
    b->upload(dc, c, sizeof c), b->upload(dx, xrow, (size_t)Na * sizeof(int)), b->upload(ds, skip, sizeof skip);
    b->upload(dq_, q, Nt * qs * B16), b->upload(dk_, k, Nt * ks * B16), b->upload(dv_, v, Nt * ks * B16);
    b->upload(ddo, dout, Nt * qs * B16), b->upload(dout_, out, Nt * qs * B16), b->upload(dl, lse, Nt * NH_ * 4);
    for (int u = 0; u < 3; u++) b->upload(dg[u], g[u], Nt * (u ? ks : qs) * B16);
    bool done = b->attn_fwd_b16_rows(dout_, dl, dq_, dk_, dv_, (size_t)Nt, dc, 2 * P, dx, ds, NH_, NKV_, HD_, NULL);
    done = b->attn_bwd_b16_rows(dg[0], dg[1], dg[2], ddo, dq_, dk_, dv_, dout_, dl, (size_t)Nt, dc, 2 * P, dx, ds, NH_,
                                NKV_, HD_, NULL) && done;
    CHECK(done, "%s: the rows ops declined", b->name);
    b->download(out, dout_, Nt * qs * B16), b->download(lse, dl, Nt * NH_ * 4);
    for (int u = 0; u < 3; u++) b->download(g[u], dg[u], Nt * (u ? ks : qs) * B16);
    b->free(dc), b->free(dx), b->free(ds), b->free(dq_), b->free(dk_), b->free(dv_), b->free(ddo), b->free(dout_);
    b->free(dl);
    for (int u = 0; u < 3; u++) b->free(dg[u]);
    /* attention's layout by hand, the CPU's ops on it */
    uint16_t xq[64 * qs], xk[64 * ks], xv[64 * ks], xo[64 * qs], xd[64 * qs], xg[3][64 * qs], xo2[64 * qs];
    float xl[64 * NH_], xl2[64 * NH_];
    memset(xd, 0, sizeof xd);
    for (int s_ = 0; s_ < 2 * P; s_++)
        for (int r = c[s_]; r < c[s_ + 1]; r++) {
            const int o = xrow[r];
            memcpy(xq + r * qs, q + o * qs, qs * B16), memcpy(xk + r * ks, k + o * ks, ks * B16);
            memcpy(xv + r * ks, v + o * ks, ks * B16), memcpy(xo + r * qs, out + o * qs, qs * B16);
            memcpy(xl + r * NH_, lse + o * NH_, NH_ * sizeof(float));
            if (r >= c[s_] + skip[s_]) memcpy(xd + r * qs, dout + o * qs, qs * B16);
        }
    const Backend *cb = backend_cpu();
    cb->attn_fwd_b16(xo2, xl2, xq, xk, xv, c, 2 * P, NH_, NKV_, HD_, NULL);
    cb->attn_bwd_b16(xg[0], xg[1], xg[2], xd, xq, xk, xv, xo, xl, c, 2 * P, NH_, NKV_, HD_, NULL);
    int bad = 0;
    for (int s_ = 0; s_ < 2 * P; s_++)
        for (int r = c[s_] + skip[s_]; r < c[s_ + 1]; r++) {
            const int o = xrow[r];
            bad += memcmp(out + o * qs, xo2 + r * qs, qs * B16) != 0;
            bad += memcmp(lse + o * NH_, xl2 + r * NH_, NH_ * sizeof(float)) != 0;
            bad += memcmp(g[0] + o * qs, xg[0] + r * qs, qs * B16) != 0;
            if (kind[o] == 'x')
                bad += (memcmp(g[1] + o * ks, xg[1] + r * ks, ks * B16) != 0) +
                       (memcmp(g[2] + o * ks, xg[2] + r * ks, ks * B16) != 0);
        }
    CHECK(bad == 0, "%s: %d rows of out, lse, dq or the responses' dk, dv not bitwise the gathered run's", b->name,
          bad);
    double worst = 0;
    for (int u = 1; u < 3; u++) {
        float sum[64 * ks], mag[64 * ks];
        memset(sum, 0, sizeof sum), memset(mag, 0, sizeof mag);
        for (int r = 0; r < Na; r++)
            for (size_t e = 0; e < ks; e++) {
                const float x = sd_bf16_to_f32(xg[u][r * ks + e]);
                sum[xrow[r] * ks + e] += x, mag[xrow[r] * ks + e] += fabsf(x);
            }
        /* each rounding errs by at most 2^-9 of its value (round to nearest, 8 significant bits): the gathered run
         * rounds each row, this one the fp32 sum; measured against the rows' magnitudes, since the two may cancel */
        for (int o = 0; o < Nt; o++)
            for (size_t e = 0; e < ks; e++) {
                const double a = sd_bf16_to_f32(g[u][o * ks + e]), w = sum[o * ks + e];
                const double d = fabs(a - w) / fmax(mag[o * ks + e] + fabs(w), 1e-30);
                worst = d > worst || d != d ? d : worst;
            }
    }
    CHECK(worst <= 0x1p-8, "%s: the prompt's dk, dv %.3g (relative) from the gathered run's", b->name, worst);
    printf("%s rows ops: bitwise the gathered run's (prompt dk, dv within %.3g)\n", b->name, worst);
}

/* attn_fwd_rows / attn_bwd_rows (fp32) against the model's gathered path on the CPU backend, bit for bit for every
 * token: out, lse and dq from the token's own row, dk, dv its own row's plus its copy's (the fp32 sum add_rows makes,
 * in that order); the strict backend likewise */
static void rows_checks_f32(const Backend *b) {
    enum { P = 3, NH_ = 4, NKV_ = 2, HD_ = 8 };
    static const int pr[P][3] = {{6, 2, 5}, {1, 4, 1}, {9, 1, 3}}; /* n_prompt, n_chosen, n_rejected */
    int c[2 * P + 1], skip[2 * P], xrow[64], own[64], Nt, Na;
    char kind[64];
    rows_layout(pr, P, c, skip, xrow, own, kind, &Nt, &Na);
    const size_t qs = NH_ * HD_, ks = NKV_ * HD_, F4 = sizeof(float);
    float q[64 * qs], k[64 * ks], v[64 * ks], dout[64 * qs], out[64 * qs], lse[64 * NH_], g[3][64 * qs];
    fill(q, Nt * qs, -1.5, 1.5), fill(k, Nt * ks, -1.5, 1.5), fill(v, Nt * ks, -1, 1), fill(dout, Nt * qs, -1, 1);
    memset(out, 0xff, sizeof out), memset(lse, 0xff, sizeof lse), memset(g, 0xff, sizeof g);
    int *dc = b->alloc(sizeof c, "cu"), *dx = b->alloc((size_t)Na * sizeof(int), "xrow");
    int *ds = b->alloc(sizeof skip, "skip");
    float *d[9];
    const size_t sz[9] = {qs, ks, ks, qs, qs, NH_, qs, ks, ks}; /* q k v dout out lse dq dk dv, per row */
    const float *h[9] = {q, k, v, dout, out, lse, g[0], g[1], g[2]};
    for (int i = 0; i < 9; i++) {
        d[i] = b->alloc(Nt * sz[i] * F4, "rows operand");
        b->upload(d[i], h[i], Nt * sz[i] * F4);
    }
    b->upload(dc, c, sizeof c), b->upload(dx, xrow, (size_t)Na * sizeof(int)), b->upload(ds, skip, sizeof skip);
    bool done = b->attn_fwd_rows(d[4], d[5], d[0], d[1], d[2], (size_t)Nt, dc, 2 * P, dx, ds, NH_, NKV_, HD_, NULL);
    done = b->attn_bwd_rows(d[6], d[7], d[8], d[3], d[0], d[1], d[2], d[4], d[5], (size_t)Nt, dc, 2 * P, dx, ds, NH_,
                            NKV_, HD_, NULL) && done;
    CHECK(done, "%s: the fp32 rows ops declined", b->name);
    b->download(out, d[4], Nt * qs * F4), b->download(lse, d[5], Nt * NH_ * F4);
    for (int u = 0; u < 3; u++) b->download(g[u], d[6 + u], Nt * (u ? ks : qs) * F4);
    for (int i = 0; i < 9; i++) b->free(d[i]);
    b->free(dc), b->free(dx), b->free(ds);
    /* the gathered path: attention's layout, a copy's dout zero, then each token from its own row, dk, dv + copy */
    float xq[64 * qs], xk[64 * ks], xv[64 * ks], xo[64 * qs], xd[64 * qs], xl[64 * NH_], xg[3][64 * qs];
    for (int r = 0; r < Na; r++) {
        memcpy(xq + r * qs, q + xrow[r] * qs, qs * F4), memcpy(xk + r * ks, k + xrow[r] * ks, ks * F4);
        memcpy(xv + r * ks, v + xrow[r] * ks, ks * F4);
    }
    const Backend *cb = backend_cpu();
    cb->attn_fwd(xo, xl, xq, xk, xv, c, 2 * P, NH_, NKV_, HD_, NULL);
    memset(xd, 0, sizeof xd);
    for (int t = 0; t < Nt; t++) memcpy(xd + own[t] * qs, dout + t * qs, qs * F4);
    cb->attn_bwd(xg[0], xg[1], xg[2], xd, xq, xk, xv, xo, xl, c, 2 * P, NH_, NKV_, HD_, NULL);
    int bad = 0;
    for (int t = 0; t < Nt; t++) {
        bad += memcmp(out + t * qs, xo + own[t] * qs, qs * F4) != 0;
        bad += memcmp(lse + t * NH_, xl + own[t] * NH_, NH_ * F4) != 0;
        bad += memcmp(g[0] + t * qs, xg[0] + own[t] * qs, qs * F4) != 0;
    }
    for (int u = 1; u < 3; u++) {
        float want[64 * ks];
        for (int t = 0; t < Nt; t++) memcpy(want + t * ks, xg[u] + own[t] * ks, ks * F4);
        for (int r = 0; r < Na; r++)
            if (own[xrow[r]] != r)
                for (size_t e = 0; e < ks; e++) want[xrow[r] * ks + e] += xg[u][r * ks + e]; /* add_rows */
        bad += memcmp(g[u], want, Nt * ks * F4) != 0;
    }
    CHECK(bad == 0, "%s: the fp32 rows ops differ from the gathered path in %d places", b->name, bad);
    printf("%s fp32 rows ops: bit for bit the gathered path\n", b->name);
}

int main(void) {
    be = backend_cpu();
    static const int cu1[] = {0, 5, 6, 13};
    static const int cu2[] = {0, 17, 20};
    static const int cu3[] = {0, 1, 9, 10, 31};
    run(cu1, 3, 4, 2, 8, 1.0);  /* GQA 2 query heads per kv head */
    run(cu1, 3, 4, 2, 16, 2.0); /* peaked softmax */
    run(cu2, 2, 4, 1, 16, 1.0); /* all query heads share one kv head */
    run(cu3, 4, 2, 2, 8, 1.5);  /* plain multi-head, length-1 sequences */
    /* Gemma 2's options: scales other than 1/sqrt(HD), caps small enough to bend the scores (|s| up to ~amp^2
     * sqrt(HD) scale), windows shorter than the sequences (cu3's 21-token sequence with window 8 as tiny-g2) */
    AttnOpts g2 = {.scale = (float)pow(24.0, -0.5), .softcap = 3.0f, .window = 8};
    AttnOpts capped = {.scale = 0.0f, .softcap = 1.5f, .window = 0};
    AttnOpts win3 = {.scale = 0.3f, .softcap = 0.0f, .window = 3};
    AttnOpts all = {.scale = 0.5f, .softcap = 2.0f, .window = 4};
    run_opt(cu3, 4, 4, 2, 16, 1.5, &g2);
    run_opt(cu1, 3, 4, 2, 8, 2.0, &capped); /* a peaked softmax under a tight cap */
    run_opt(cu2, 2, 4, 1, 16, 1.0, &win3);
    run_opt(cu2, 2, 2, 2, 8, 2.0, &all);
    AttnOpts zero = {0}, w1 = {.window = 1}, wlong = {.softcap = 2.0f, .window = 21}, nowin = {.softcap = 2.0f};
    CHECK(same_results(cu3, 4, 4, 2, 8, NULL, &zero), "all-zero options differ from NULL");
    CHECK(same_results(cu3, 4, 4, 2, 8, &nowin, &wlong), "a window as long as the longest sequence changes results");
    CHECK(!same_results(cu3, 4, 4, 2, 8, &nowin, &g2), "the window and scale change nothing");
    CHECK(attn_opts_is_default(NULL, 8) && attn_opts_is_default(&zero, 8) && !attn_opts_is_default(&g2, 16) &&
          !attn_opts_is_default(&w1, 8) && !attn_opts_is_default(&capped, 8), "attn_opts_is_default");
    AttnOpts s16 = {.scale = 0.25f};
    CHECK(attn_opts_is_default(&s16, 16) && !attn_opts_is_default(&s16, 8), "attn_opts_is_default: the scale");
    {   /* window 1: every query sees only its own key, so out = v of its kv head and lse = its score */
        static const int c2[] = {0, 6};
        float q[6 * 16], k[6 * 8], v[6 * 8], out[6 * 16], lse[12];
        fill(q, 96, -1, 1), fill(k, 48, -1, 1), fill(v, 48, -1, 1);
        be->attn_fwd(out, lse, q, k, v, c2, 1, 2, 1, 8, &w1);
        int ok = 1;
        for (int n = 0; n < 6; n++)
            for (int h = 0; h < 2; h++) ok &= memcmp(out + n * 16 + h * 8, v + n * 8, 32) == 0;
        CHECK(ok, "window 1: out == v");
    }
    strict_checks(&g2);
    strict_checks(&all);
    g_bad = (AttnOpts){.scale = 0.25f, .softcap = -1.0f};
    CHECK(expect_die(strict_bad, NULL, "attn_fwd: options"), "strict: negative cap");
    g_bad = (AttnOpts){.window = -2};
    CHECK(expect_die(strict_bad, NULL, "window -2"), "strict: negative window");
    g_bad = (AttnOpts){.scale = NAN};
    CHECK(expect_die(strict_bad, NULL, "attn_fwd: options"), "strict: NaN scale");
    /* a single sequence of length 1: the output is v itself and lse is the only score */
    {
        static const int c1[] = {0, 1};
        float q[8], k[8], v[8], out[8], lse[1];
        fill(q, 8, -1, 1), fill(k, 8, -1, 1), fill(v, 8, -1, 1);
        be->attn_fwd(out, lse, q, k, v, c1, 1, 1, 1, 8, NULL);
        double s = 0;
        for (int d = 0; d < 8; d++) s += (double)q[d] * k[d];
        CHECK(memcmp(out, v, sizeof v) == 0, "length-1 sequence: out == v");
        CHECK(fabs(lse[0] - s / sqrt(8.0)) < 1e-6, "length-1 sequence: lse == score");
    }
    rows_checks(backend_cpu());
    rows_checks(backend_cpu_strict());
    rows_checks_f32(backend_cpu());
    rows_checks_f32(backend_cpu_strict());
    TEST_END();
}
