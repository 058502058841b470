/* generate.c — KV-cached decoding and sampling over a Model on the CPU backend. See generate.h.
 *
 * One block over n new rows at positions p0 .. p0+n-1 (x is the residual stream, updated in place):
 *   ln = rmsnorm(x); q = ln Wq^T; K[p0..) = rope(ln Wk^T); V[p0..) = ln Wv^T   (written straight into the cache)
 *   att = attention(q, K[0 .. p0+i], V[0 .. p0+i]) per row i;  x += att Wo^T
 *   ln = rmsnorm(x); x += (silu(ln Wg^T) * ln Wu^T) Wd^T
 * Gemma 2 (m->gemma2): x starts as embed * sqrt(C); the attention scores are scaled by query_pre_attn_scalar^-1/2,
 * soft-capped (cap tanh(s / cap)) and, on sliding layers, limited to the last sliding_window positions (key j
 * seen by row t when t - window < j); the sandwich norms make the two residual adds x += rmsnorm_a(att Wo^T) and
 * x += rmsnorm_f((gelu_tanh(ln Wg^T) * ln Wu^T) Wd^T); the final logits are soft-capped.
 * The same arithmetic as model.c's forward: the Backend's kernels, except the cached attention (here) and the
 * single-row linears of a decode step (cblas_sgemv).
 */
#include "generate.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

#define GEN_CHUNK 128 /* prefill rows per pass: bounds the scratch at [GEN_CHUNK, FF] whatever the prompt */

struct Generator {
    Model *m;
    int cap, len;                 /* cache capacity and positions held */
    int R;                        /* scratch rows (prefill chunk) */
    size_t QD, KD;                /* NH*HD, NKV*HD */
    float *kc, *vc;               /* [L, cap, KD] post-RoPE keys, values */
    float *x, *ln, *q, *att;      /* [R, C], [R, C], [R, QD], [R, QD] */
    float *gt, *up, *h, *rstd;    /* [R, FF] x3, [R] */
    float *tmp;                   /* Gemma 2: [R, C], a projection before its sandwich norm */
    float *xf, *logits;           /* [C], [V] */
    int *pos;                     /* [R] */
};

Generator *gen_create(Model *m, int cap) {
    if (m->tp != 1 || m->pp != 1)
        sd_die("generate", "decoding runs on one rank: this model is split (tp %d, pp %d)", m->tp, m->pp);
    if (m->be != backend_cpu()) sd_die("generate", "decoding needs the CPU backend, the model is on '%s'", m->be->name);
    if (cap < 1 || cap > m->rope_max)
        sd_die("generate", "KV cache of %d positions: expected 1 .. max_position_embeddings (%d)", cap, m->rope_max);
    Generator *g = sd_calloc(1, sizeof *g, "generator");
    g->m = m;
    g->cap = cap;
    g->R = cap < GEN_CHUNK ? cap : GEN_CHUNK;
    g->QD = (size_t)m->NH * m->HD;
    g->KD = (size_t)m->NKV * m->HD;
    size_t R = (size_t)g->R, C = (size_t)m->C, FF = (size_t)m->FF;
    size_t cache = sd_mul_size(sd_mul_size((size_t)m->L, (size_t)cap, "KV cache"), g->KD * sizeof(float), "KV cache");
    g->kc = sd_alloc(cache, "KV cache (keys)");
    g->vc = sd_alloc(cache, "KV cache (values)");
    g->x = sd_alloc(R * C * sizeof(float), "decoder scratch");
    g->ln = sd_alloc(R * C * sizeof(float), "decoder scratch");
    g->q = sd_alloc(R * g->QD * sizeof(float), "decoder scratch");
    g->att = sd_alloc(R * g->QD * sizeof(float), "decoder scratch");
    g->gt = sd_alloc(R * FF * sizeof(float), "decoder scratch");
    g->up = sd_alloc(R * FF * sizeof(float), "decoder scratch");
    g->h = sd_alloc(R * FF * sizeof(float), "decoder scratch");
    g->rstd = sd_alloc(R * (size_t)m->NH * sizeof(float), "decoder scratch"); /* [R] rows, or Qwen3's [R, NH] heads */
    if (m->gemma2) g->tmp = sd_alloc(R * C * sizeof(float), "decoder scratch");
    g->xf = sd_alloc(C * sizeof(float), "decoder scratch");
    g->logits = sd_alloc((size_t)m->V * sizeof(float), "logits");
    g->pos = sd_alloc(R * sizeof(int), "positions");
    return g;
}

void gen_free(Generator *g) {
    if (!g) return;
    free(g->kc);
    free(g->vc);
    free(g->x);
    free(g->ln);
    free(g->q);
    free(g->att);
    free(g->gt);
    free(g->up);
    free(g->h);
    free(g->rstd);
    free(g->tmp);
    free(g->xf);
    free(g->logits);
    free(g->pos);
    free(g);
}

void gen_reset(Generator *g) { g->len = 0; }
int gen_len(const Generator *g) { return g->len; }

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* att[i, h] = softmax_j(f(scale q[i,h] . K[j, h/group])) V[j, h/group] over j = j0 .. p0+i (causal; j0 = 0, or
 * the first position of the sliding window), with K, V the layer's cache rows from position 0 and f the soft cap
 * (identity without one). opts as backend.h's attn_fwd (NULL: Llama). Two passes per (row, head), as the CPU
 * attention kernel does. */
static void cached_attention(Generator *g, const float *K, const float *V, int p0, int n, const AttnOpts *opts) {
    const Model *m = g->m;
    const int NH = m->NH, HD = m->HD, group = m->NH / m->NKV;
    const size_t QD = g->QD, KD = g->KD;
    const float scale = attn_opts_scale(opts, HD), cap = opts ? opts->softcap : 0.0f;
    const int window = opts ? opts->window : 0;
    const long total = (long)n * NH;
#pragma omp parallel
    {
        float *sc = sd_alloc((size_t)(p0 + n) * sizeof(float), "attention scores"); /* [positions] */
#pragma omp for schedule(dynamic, 4)
        for (long idx = 0; idx < total; idx++) {
            int i = (int)(idx / NH), h = (int)(idx % NH), kvh = h / group, t = p0 + i;
            int j0 = window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
            const float *qi = g->q + (size_t)i * QD + (size_t)h * HD;
            float *o = g->att + (size_t)i * QD + (size_t)h * HD;
            float mx = -INFINITY;
            for (int j = j0; j <= t; j++) {
                float s = dot(qi, K + (size_t)j * KD + (size_t)kvh * HD, HD) * scale;
                if (cap > 0.0f) s = cap * tanhf(s / cap);
                sc[j] = s;
                if (s > mx) mx = s;
            }
            double sum = 0.0;
            for (int d = 0; d < HD; d++) o[d] = 0.0f;
            for (int j = j0; j <= t; j++) {
                float p = expf(sc[j] - mx);
                sum += p;
                const float *vj = V + (size_t)j * KD + (size_t)kvh * HD;
                for (int d = 0; d < HD; d++) o[d] += p * vj[d];
            }
            float inv = (float)(1.0 / sum);
            for (int d = 0; d < HD; d++) o[d] *= inv;
        }
        free(sc);
    }
}

/* y[n, out] = x[n, in] W[out, in]^T (+ y when acc): the backend's matmul, or one matrix-vector product for the
 * single row of a decode step (memory-bound: gemv streams W once) */
static void linear(const Backend *be, float *y, const float *x, const float *W, int n, int in, int out, bool acc) {
    if (n == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W, in, x, 1, acc ? 1.0f : 0.0f, y, 1);
    else be->matmul(y, x, W, n, out, in, false, true, 1.0f, acc ? 1.0f : 0.0f);
}

/* The blocks over rows ids[0..n) at positions len .. len+n-1 (n <= R); leaves the final residual in g->x. */
static void forward_chunk(Generator *g, const int *ids, int n) {
    Model *m = g->m;
    const Backend *be = m->be;
    const int C = m->C, FF = m->FF, QD = (int)g->QD, KD = (int)g->KD;
    const int p0 = g->len;
    const float eps = (float)m->mc.rms_norm_eps;
    for (int i = 0; i < n; i++) g->pos[i] = p0 + i;
    be->embed_fwd(g->x, ids, m->embed, (size_t)n, C, 0, m->V);
    if (m->gemma2) be->scale(g->x, m->embed_scale, (size_t)n * C);
    for (int l = 0; l < m->L; l++) {
        const LayerW *w = &m->w[l];
        AttnOpts opts;
        const AttnOpts *aopt = model_attn_opts(m, l, &opts); /* one rank: local layer l is global */
        float *K = g->kc + (size_t)l * g->cap * g->KD, *V = g->vc + (size_t)l * g->cap * g->KD; /* position 0 */
        float *Kn = K + (size_t)p0 * g->KD, *Vn = V + (size_t)p0 * g->KD;                     /* the new rows */
        be->rmsnorm_fwd(g->ln, g->rstd, g->x, w->ln1, (size_t)n, C, eps);
        linear(be, g->q, g->ln, w->wq, n, C, QD, false);
        linear(be, Kn, g->ln, w->wk, n, C, KD, false);
        linear(be, Vn, g->ln, w->wv, n, C, KD, false);
        if (m->qkv_bias) { /* Qwen2 */
            be->bias_add(g->q, w->bq, (size_t)n, QD, QD);
            be->bias_add(Kn, w->bk, (size_t)n, KD, KD);
            be->bias_add(Vn, w->bv, (size_t)n, KD, KD);
        }
        if (m->qk_norm) { /* Qwen3: each head of q and k RMS-normalised, in place (a row is read before written) */
            be->rmsnorm_fwd(g->q, g->rstd, g->q, w->qn, (size_t)n * m->NH, m->HD, eps);
            be->rmsnorm_fwd(Kn, g->rstd, Kn, w->kn, (size_t)n * m->NKV, m->HD, eps);
        }
        be->rope_fwd(g->q, g->pos, m->rope_cos, m->rope_sin, (size_t)n, m->NH, m->HD);
        be->rope_fwd(Kn, g->pos, m->rope_cos, m->rope_sin, (size_t)n, m->NKV, m->HD);
        cached_attention(g, K, V, p0, n, aopt);
        if (m->gemma2) { /* x += rmsnorm_a(att Wo^T) */
            linear(be, g->tmp, g->att, w->wo, n, QD, C, false);
            be->rmsnorm_fwd(g->ln, g->rstd, g->tmp, w->lna, (size_t)n, C, eps);
            be->add(g->x, g->ln, (size_t)n * C);
        } else linear(be, g->x, g->att, w->wo, n, QD, C, true); /* x += att Wo^T */
        be->rmsnorm_fwd(g->ln, g->rstd, g->x, w->ln2, (size_t)n, C, eps);
        linear(be, g->gt, g->ln, w->wg, n, C, FF, false);
        linear(be, g->up, g->ln, w->wu, n, C, FF, false);
        if (m->gemma2) { /* x += rmsnorm_f(h Wd^T) */
            be->geglu_fwd(g->h, g->gt, g->up, (size_t)n, FF);
            linear(be, g->tmp, g->h, w->wd, n, FF, C, false);
            be->rmsnorm_fwd(g->ln, g->rstd, g->tmp, w->lnf, (size_t)n, C, eps);
            be->add(g->x, g->ln, (size_t)n * C);
        } else {
            be->swiglu_fwd(g->h, g->gt, g->up, (size_t)n, FF);
            linear(be, g->x, g->h, w->wd, n, FF, C, true); /* x += h Wd^T */
        }
    }
    g->len += n;
}

const float *gen_feed(Generator *g, const int *ids, int n) {
    Model *m = g->m;
    if (n < 1) sd_die("generate", "nothing to feed");
    if (n > g->cap - g->len)
        sd_die("generate", "the KV cache holds %d positions: %d more do not fit after %d", g->cap, n, g->len);
    m->seq_max = g->len + n; /* Mistral v0.1's window (model.c model_attn_opts): the positions after this feed */
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->V)
            sd_die("generate", "token %d is outside the vocabulary [0, %d)", ids[i], m->V);
    int last = 0;
    for (int c = 0; c < n; c += g->R) {
        last = n - c < g->R ? n - c : g->R;
        forward_chunk(g, ids + c, last);
    }
    /* final norm and LM head for the last row only */
    m->be->rmsnorm_fwd(g->xf, g->rstd, g->x + (size_t)(last - 1) * m->C, m->norm, 1, m->C, (float)m->mc.rms_norm_eps);
    linear(m->be, g->logits, g->xf, m->lm_head, 1, m->C, m->V, false);
    if (m->gemma2 && m->mc.final_logit_softcapping > 0)
        m->be->softcap_fwd(g->logits, (size_t)m->V, (float)m->mc.final_logit_softcapping);
    return g->logits;
}

/* ---- sampling ---- */

double gen_uniform(uint64_t seed, uint64_t stream, uint64_t step) {
    return (double)(sd_hash64(seed, stream, step) >> 11) * 0x1.0p-53;
}

typedef struct {
    double p;
    int id;
} Cand;

static int cand_cmp(const void *a, const void *b) { /* descending probability, then ascending id */
    const Cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int gen_sample(const float *logits, int V, double temperature, double top_p, double u) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature <= 0.0) return best;
    Cand *c = sd_alloc((size_t)V * sizeof(Cand), "sampling");
    double mx = logits[best], sum = 0.0;
    for (int i = 0; i < V; i++) {
        c[i].p = exp(((double)logits[i] - mx) / temperature);
        c[i].id = i;
        sum += c[i].p;
    }
    int k = V; /* candidates kept: the nucleus */
    if (top_p < 1.0) {
        qsort(c, (size_t)V, sizeof *c, cand_cmp);
        double cum = 0.0;
        for (k = 0; k < V;) {
            cum += c[k++].p;
            if (cum >= top_p * sum) break;
        }
        sum = cum;
    }
    double target = u * sum, cum = 0.0;
    int pick = c[0].id;
    for (int i = 0; i < k; i++) {
        if (c[i].p <= 0.0) continue;
        pick = c[i].id; /* the last candidate with mass, should rounding leave cum <= target */
        cum += c[i].p;
        if (cum > target) break;
    }
    free(c);
    return pick;
}

/* ---- generation ---- */

void gen_check_prompt(const int *ids, int n, int V, int max_pos, const char *where) {
    if (n < 1) sd_die(where, "empty prompt: generation needs at least one token");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            sd_die(where, "prompt token %d (index %d) is outside the vocabulary [0, %d)", ids[i], i, V);
    if (n >= max_pos)
        sd_die(where, "prompt of %d tokens does not fit the context: max_position_embeddings is %d and at least "
               "one new token must fit", n, max_pos);
}

const char *gen_stop_name(GenStop s) {
    return s == GEN_STOP_EOS ? "stop" : s == GEN_STOP_CONTEXT ? "context" : "length";
}

GenResult gen_generate(Generator *g, const int *prompt, int n_prompt, const GenParams *p, const char *where) {
    Model *m = g->m;
    const int V = m->V, max_pos = m->rope_max;
    gen_check_prompt(prompt, n_prompt, V, max_pos, where);
    if (p->max_new_tokens < 0) sd_die("generate", "max_new_tokens %d: expected >= 0", p->max_new_tokens);
    if (!(p->temperature >= 0.0) || !isfinite(p->temperature))
        sd_die("generate", "temperature %g: expected a finite number >= 0", p->temperature);
    if (!(p->top_p > 0.0 && p->top_p <= 1.0)) sd_die("generate", "top_p %g: expected 0 < top_p <= 1", p->top_p);
    int budget = p->max_new_tokens < max_pos - n_prompt ? p->max_new_tokens : max_pos - n_prompt;
    if (n_prompt + budget - 1 > g->cap) /* positions fed: the prompt and every output token but the last */
        sd_die("generate", "KV cache of %d positions for a prompt of %d tokens and %d new ones", g->cap, n_prompt,
               budget);
    GenResult r = {0};
    r.ids = sd_alloc((size_t)(budget > 0 ? budget : 1) * sizeof(int), "generated ids");
    r.logp = sd_alloc((size_t)(budget > 0 ? budget : 1) * sizeof(double), "generated log-probs");
    r.stop = GEN_STOP_LENGTH;
    if (budget == 0) return r;
    gen_reset(g);
    const float *logits = gen_feed(g, prompt, n_prompt);
    for (int step = 0;; step++) {
        double mx = -INFINITY;
        for (int i = 0; i < V; i++) {
            if (!isfinite(logits[i]))
                sd_die(where, "non-finite logit for token %d at position %d (weights with NaN or Inf?)", i,
                       n_prompt + step - 1);
            if (logits[i] > mx) mx = logits[i];
        }
        double u = p->temperature > 0.0 ? gen_uniform(p->seed, p->stream, (uint64_t)step) : 0.0;
        int tok = gen_sample(logits, V, p->temperature, p->top_p, u);
        double se = 0.0;
        for (int i = 0; i < V; i++) se += exp((double)logits[i] - mx);
        r.ids[r.n] = tok;
        r.logp[r.n] = (double)logits[tok] - mx - log(se);
        r.n++;
        bool is_stop = false;
        for (int s = 0; s < p->n_stop && !is_stop; s++) is_stop = p->stop_ids[s] == tok;
        if (is_stop) {
            r.stop = GEN_STOP_EOS;
            break;
        }
        if (r.n == p->max_new_tokens) break; /* GEN_STOP_LENGTH */
        if (n_prompt + r.n == max_pos) {
            r.stop = GEN_STOP_CONTEXT;
            break;
        }
        logits = gen_feed(g, &tok, 1);
    }
    return r;
}

void gen_result_free(GenResult *r) {
    free(r->ids);
    free(r->logp);
    r->ids = NULL;
    r->logp = NULL;
    r->n = 0;
}
