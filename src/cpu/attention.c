/* attention.c — causal grouped-query attention over packed sequences (fp32, no T x T matrix), with the options of
 * backend.h's AttnOpts (Gemma 2): the scale, soft-capping of the scaled scores, a sliding window.
 *
 * Forward: one (query row, head) at a time with a per-thread scratch row of scores of length <= the longest
 * sequence. Backward: flash-style recomputation from lse, P = exp(s - lse), parallel over (sequence, kv head)
 * so that the query heads sharing a kv head accumulate dk / dv inside one task (no data races).
 * Without options (NULL) the arithmetic is exactly that of the Llama-only kernel it extends. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_ops.h"
#include "util.h"

/* index s of the sequence holding row n: cu[s] <= n < cu[s+1] */
static int seq_of(const int *cu, int S, int n) {
    int lo = 0, hi = S - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (cu[mid] <= n) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* first key row query row n of a sequence starting at st sees: st, or n - window + 1 under a sliding window */
static int first_key(int st, int n, int window) {
    return window > 0 && n - window + 1 > st ? n - window + 1 : st;
}

void cpu_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                  int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    int maxT = 0;
    for (int s = 0; s < S; s++)
        if (cu_seqlens[s + 1] - cu_seqlens[s] > maxT) maxT = cu_seqlens[s + 1] - cu_seqlens[s];
    const int n0 = cu_seqlens[0], n1 = cu_seqlens[S];
    const int group = NH / NKV;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD; /* row strides */
    const float scale = attn_opts_scale(opts, HD);
    const float cap = opts && opts->softcap > 0.0f ? opts->softcap : 0.0f;
    const int window = opts ? opts->window : 0;
    const long total = (long)(n1 - n0) * NH;
#pragma omp parallel if ((double)total * maxT * HD > SD_OMP_MIN_MACS)
    {
        float *sc = sd_alloc((size_t)(maxT > 0 ? maxT : 1) * sizeof(float), "attention scores");
        float *acc = sd_alloc((size_t)HD * sizeof(float), "attention accumulator");
#pragma omp for schedule(dynamic, 16)
        for (long idx = 0; idx < total; idx++) {
            int n = n0 + (int)(idx / NH), h = (int)(idx % NH), kvh = h / group;
            int st = first_key(cu_seqlens[seq_of(cu_seqlens, S, n)], n, window);
            const float *qi = q + (size_t)n * qs + (size_t)h * HD;
            float mx = -INFINITY;
            for (int j = st; j <= n; j++) {
                float x = dot(qi, k + (size_t)j * ks + (size_t)kvh * HD, HD) * scale;
                if (cap > 0.0f) x = cap * tanhf(x / cap);
                sc[j - st] = x;
                if (x > mx) mx = x;
            }
            double sum = 0.0;
            for (int d = 0; d < HD; d++) acc[d] = 0.0f;
            for (int j = st; j <= n; j++) {
                float p = expf(sc[j - st] - mx);
                sum += p;
                const float *vj = v + (size_t)j * ks + (size_t)kvh * HD;
                for (int d = 0; d < HD; d++) acc[d] += p * vj[d];
            }
            float inv = (float)(1.0 / sum);
            float *o = out + (size_t)n * qs + (size_t)h * HD;
            for (int d = 0; d < HD; d++) o[d] = acc[d] * inv;
            lse[(size_t)n * NH + h] = mx + (float)log(sum);
        }
        free(acc);
        free(sc);
    }
}

/* For query row i, key j <= i (same sequence; j > i - window under a window), query head h, kv head h / group,
 * the scale c (1/sqrt(HD) by default), raw score r_ij = c q_i.k_j and s_ij = r_ij, or cap tanh(r_ij / cap):
 *   P_ij = exp(s_ij - lse_i), dP_ij = dout_i.v_j, D_i = dout_i.out_i, dS_ij = P_ij (dP_ij - D_i)
 *   [cap: dS_ij *= 1 - tanh(r_ij / cap)^2]
 *   dq_i = c sum_j dS_ij k_j,  dk_j += c sum_i dS_ij q_i,  dv_j += sum_i P_ij dout_i. */
void cpu_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                  const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                  int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    const int N = cu_seqlens[S];
    const int group = NH / NKV;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    const float scale = attn_opts_scale(opts, HD);
    const float cap = opts && opts->softcap > 0.0f ? opts->softcap : 0.0f;
    const int window = opts ? opts->window : 0;
    memset(dq, 0, (size_t)N * qs * sizeof(float));
    memset(dk, 0, (size_t)N * ks * sizeof(float));
    memset(dv, 0, (size_t)N * ks * sizeof(float));
    double macs = 0; /* the causal score products of every sequence, a measure of the work */
    for (int s = 0; s < S; s++) macs += 0.5 * (double)(cu_seqlens[s + 1] - cu_seqlens[s]) * (cu_seqlens[s + 1] - cu_seqlens[s]);
    macs *= (double)NH * HD;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (macs > SD_OMP_MIN_MACS)
    for (int s = 0; s < S; s++) {
        for (int kvh = 0; kvh < NKV; kvh++) {
            int st = cu_seqlens[s], en = cu_seqlens[s + 1];
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int i = st; i < en; i++) {
                    const float *qi = q + (size_t)i * qs + (size_t)h * HD;
                    const float *doi = dout + (size_t)i * qs + (size_t)h * HD;
                    float *dqi = dq + (size_t)i * qs + (size_t)h * HD;
                    float Di = dot(doi, out + (size_t)i * qs + (size_t)h * HD, HD);
                    float li = lse[(size_t)i * NH + h];
                    for (int j = first_key(st, i, window); j <= i; j++) {
                        size_t kvo = (size_t)j * ks + (size_t)kvh * HD;
                        const float *kj = k + kvo, *vj = v + kvo;
                        float x = dot(qi, kj, HD) * scale, t = 0.0f;
                        if (cap > 0.0f) {
                            t = tanhf(x / cap);
                            x = cap * t;
                        }
                        float p = expf(x - li);
                        float ds = p * (dot(doi, vj, HD) - Di);
                        if (cap > 0.0f) ds *= 1.0f - t * t;
                        ds *= scale;
                        float *dkj = dk + kvo, *dvj = dv + kvo;
                        for (int d = 0; d < HD; d++) {
                            dqi[d] += ds * kj[d];
                            dkj[d] += ds * qi[d];
                            dvj[d] += p * doi[d];
                        }
                    }
                }
            }
        }
    }
}
