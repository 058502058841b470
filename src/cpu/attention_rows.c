/* attention_rows.c — prefix sharing's attention in the layers' rows (backend.h attn_fwd_rows / attn_bwd_rows; the
 * bf16-storage forms in bf16_storage.c): the definition the CUDA kernels are held to. Attention's layout is gathered
 * here (row r from token xrow[r]), the fp32 ops run on it (attention.c), each token takes its own row's out and lse
 * (the copies' are dropped), and the backward gives the copies a zero dout and sums each token's gradients over its
 * rows in fp32, in attention's order (its own row first), which is what the model's gathered path computes. */
#include <stdlib.h>
#include <string.h>
#include "cpu_ops.h"
#include "util.h"

/* attention's rows of an fp32 tensor of w elements per row (row r from row xrow[r]); with skip, the copies' rows
 * (the first skip[s] of sequence s) zeros instead. Caller frees. */
static float *gather(const float *x, const int *xrow, size_t Natt, size_t w, const int *cu, const int *skip, int S) {
    float *y = sd_alloc(sd_mul_size(Natt ? Natt : 1, w * sizeof(float), "attention rows"), "attention rows");
    for (size_t r = 0; r < Natt; r++) memcpy(y + r * w, x + (size_t)xrow[r] * w, w * sizeof(float));
    if (skip)
        for (int s = 0; s < S; s++) memset(y + (size_t)cu[s] * w, 0, (size_t)skip[s] * w * sizeof(float));
    return y;
}

/* dies unless attention's layout starts at row 0 and every sequence's copied rows fit it and the sequence before */
static size_t rows_check(const int *cu, int S, const int *skip, const char *op) {
    if (cu[0] != 0) sd_die(op, "cu_seqlens[0] = %d: the layers' rows need attention's layout from row 0", cu[0]);
    for (int s = 0; s < S; s++)
        if (skip[s] < 0 || skip[s] > cu[s + 1] - cu[s] || (skip[s] && (s == 0 || skip[s] > cu[s] - cu[s - 1])))
            sd_die(op, "sequence %d: %d copied rows do not fit it or the sequence before it", s, skip[s]);
    return (size_t)cu[S];
}

bool cpu_attn_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                       const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                       const AttnOpts *opts) {
    (void)Ntok;
    if (S <= 0) return true;
    const size_t Natt = rows_check(cu, S, skip, "attn_fwd_rows"), qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    float *qa = gather(q, xrow, Natt, qs, cu, NULL, S), *ka = gather(k, xrow, Natt, ks, cu, NULL, S);
    float *va = gather(v, xrow, Natt, ks, cu, NULL, S);
    float *oa = sd_alloc(sd_mul_size(Natt ? Natt : 1, (qs + NH) * sizeof(float), "attn_fwd_rows"), "attn_fwd_rows");
    float *la = oa + Natt * qs;
    cpu_attn_fwd(oa, la, qa, ka, va, cu, S, NH, NKV, HD, opts);
    for (int s = 0; s < S; s++)
        for (int r = cu[s] + skip[s]; r < cu[s + 1]; r++) {
            memcpy(out + (size_t)xrow[r] * qs, oa + (size_t)r * qs, qs * sizeof(float));
            memcpy(lse + (size_t)xrow[r] * NH, la + (size_t)r * NH, (size_t)NH * sizeof(float));
        }
    free(qa), free(ka), free(va), free(oa);
    return true;
}

bool cpu_attn_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                       const float *v, const float *out, const float *lse, size_t Ntok, const int *cu, int S,
                       const int *xrow, const int *skip, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return true;
    const size_t Natt = rows_check(cu, S, skip, "attn_bwd_rows"), qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    const size_t nq = Natt * qs, nk = Natt * ks;
    float *qa = gather(q, xrow, Natt, qs, cu, NULL, S), *ka = gather(k, xrow, Natt, ks, cu, NULL, S);
    float *va = gather(v, xrow, Natt, ks, cu, NULL, S), *oa = gather(out, xrow, Natt, qs, cu, NULL, S);
    float *da = gather(dout, xrow, Natt, qs, cu, skip, S), *la = gather(lse, xrow, Natt, (size_t)NH, cu, NULL, S);
    float *g = sd_alloc(sd_mul_size(nq + 2 * nk ? nq + 2 * nk : 1, sizeof(float), "attn_bwd_rows"), "attn_bwd_rows");
    cpu_attn_bwd(g, g + nq, g + nq + nk, da, qa, ka, va, oa, la, cu, S, NH, NKV, HD, opts);
    /* each token's gradients: the fp32 sum over its rows in attention's order (its own row first) */
    memset(dq, 0, Ntok * qs * sizeof(float));
    memset(dk, 0, Ntok * ks * sizeof(float));
    memset(dv, 0, Ntok * ks * sizeof(float));
    for (size_t r = 0; r < Natt; r++) {
        const size_t o = (size_t)xrow[r];
        for (size_t i = 0; i < qs; i++) dq[o * qs + i] += g[r * qs + i];
        for (size_t i = 0; i < ks; i++) {
            dk[o * ks + i] += g[nq + r * ks + i];
            dv[o * ks + i] += g[nq + nk + r * ks + i];
        }
    }
    free(qa), free(ka), free(va), free(oa), free(da), free(la), free(g);
    return true;
}
