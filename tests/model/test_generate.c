/* test_generate.c — KV-cached decoding (src/generate.c) on the tiny-a fixture model, checked against two
 * computations that use no cache: a plain double-precision forward written here (full logits at every
 * position) and the training forward model_forward_logprobs (summed log-probs of the continuation as the
 * response of a hand-built pair). Also: sampling (exact picks for given draws, frequencies, seeded
 * reproducibility, top-p), stop tokens, the context limit and the errors of a prompt that does not fit. */
#include <math.h>
#include "generate.h"
#include "model.h"
#include "pairs.h"
#include "test_util.h"

/* logits [T, V] of ids[0..T) by plain loops in double, every position at once, no cache (the weights and rope
 * tables of the model, host memory on the CPU backend). */
static double *ref_logits(const Model *m, const int *ids, int T) {
    const int C = m->C, NH = m->NH, NKV = m->NKV, HD = m->HD, FF = m->FF, V = m->V, half = HD / 2;
    const int QD = NH * HD, KD = NKV * HD, group = NH / NKV;
    const double eps = m->mc.rms_norm_eps;
    double *x = calloc((size_t)T * C, sizeof(double)), *ln = calloc((size_t)T * C, sizeof(double));
    double *q = calloc((size_t)T * QD, sizeof(double)), *k = calloc((size_t)T * KD, sizeof(double));
    double *v = calloc((size_t)T * KD, sizeof(double)), *att = calloc((size_t)T * QD, sizeof(double));
    double *hh = calloc((size_t)FF, sizeof(double)), *sc = calloc((size_t)T, sizeof(double));
    double *logits = calloc((size_t)T * V, sizeof(double));
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) x[(size_t)t * C + c] = m->embed[(size_t)ids[t] * C + c];
#define RMSNORM(out, in, w)                                                                   \
    for (int t = 0; t < T; t++) {                                                             \
        double ss = 0;                                                                        \
        for (int c = 0; c < C; c++) ss += in[(size_t)t * C + c] * in[(size_t)t * C + c];      \
        double r = 1.0 / sqrt(ss / C + eps);                                                  \
        for (int c = 0; c < C; c++) out[(size_t)t * C + c] = in[(size_t)t * C + c] * r * (w)[c]; \
    }
#define LINEAR(out, in, W, nin, nout)                                                         \
    for (int t = 0; t < T; t++)                                                               \
        for (int o = 0; o < (nout); o++) {                                                    \
            double s = 0;                                                                     \
            for (int i = 0; i < (nin); i++) s += in[(size_t)t * (nin) + i] * (W)[(size_t)o * (nin) + i]; \
            out[(size_t)t * (nout) + o] = s;                                                  \
        }
    for (int l = 0; l < m->L; l++) {
        const LayerW *w = &m->w[l];
        RMSNORM(ln, x, w->ln1);
        LINEAR(q, ln, w->wq, C, QD);
        LINEAR(k, ln, w->wk, C, KD);
        LINEAR(v, ln, w->wv, C, KD);
        /* rope, rotate_half: (x1, x2) -> (x1 c - x2 s, x2 c + x1 s) */
        for (int t = 0; t < T; t++) {
            const float *cs = m->rope_cos + (size_t)t * half, *sn = m->rope_sin + (size_t)t * half;
            for (int hd = 0; hd < NH + NKV; hd++) {
                double *r = hd < NH ? q + (size_t)t * QD + (size_t)hd * HD
                                    : k + (size_t)t * KD + (size_t)(hd - NH) * HD;
                for (int i = 0; i < half; i++) {
                    double a = r[i], b = r[i + half];
                    r[i] = a * cs[i] - b * sn[i];
                    r[i + half] = b * cs[i] + a * sn[i];
                }
            }
        }
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const double *qi = q + (size_t)t * QD + (size_t)h * HD;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int d = 0; d < HD; d++) s += qi[d] * k[(size_t)j * KD + (size_t)(h / group) * HD + d];
                    sc[j] = s / sqrt((double)HD);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int d = 0; d < HD; d++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) o += sc[j] * v[(size_t)j * KD + (size_t)(h / group) * HD + d];
                    att[(size_t)t * QD + (size_t)h * HD + d] = o / sum;
                }
            }
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int i = 0; i < QD; i++) s += att[(size_t)t * QD + i] * w->wo[(size_t)c * QD + i];
                x[(size_t)t * C + c] += s;
            }
        RMSNORM(ln, x, w->ln2);
        for (int t = 0; t < T; t++) {
            for (int f = 0; f < FF; f++) {
                double g = 0, u = 0;
                for (int c = 0; c < C; c++) {
                    g += ln[(size_t)t * C + c] * w->wg[(size_t)f * C + c];
                    u += ln[(size_t)t * C + c] * w->wu[(size_t)f * C + c];
                }
                hh[f] = g / (1.0 + exp(-g)) * u;
            }
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int f = 0; f < FF; f++) s += hh[f] * w->wd[(size_t)c * FF + f];
                x[(size_t)t * C + c] += s;
            }
        }
    }
    RMSNORM(ln, x, m->norm);
    LINEAR(logits, ln, m->lm_head, C, V);
#undef RMSNORM
#undef LINEAR
    free(x); free(ln); free(q); free(k); free(v); free(att); free(hh); free(sc);
    return logits;
}

static int argmax_d(const double *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}
static double log_softmax_at(const double *x, int n, int i) {
    double mx = x[argmax_d(x, n)], s = 0;
    for (int j = 0; j < n; j++) s += exp(x[j] - mx);
    return x[i] - mx - log(s);
}
static GenParams greedy(int max_new) {
    GenParams p = {.max_new_tokens = max_new, .temperature = 0.0, .top_p = 1.0};
    return p;
}
static int same_ids(const GenResult *a, const GenResult *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->ids[i] != b->ids[i]) return 0;
    return 1;
}

typedef struct {
    Generator *g;
    int *prompt;
    int n;
} DieArg;
static void gen_die(void *arg) {
    DieArg *d = arg;
    GenParams p = greedy(4);
    gen_generate(d->g, d->prompt, d->n, &p, "prompts.jsonl:7");
}

static void test_sample(void) {
    float l3[3] = {(float)log(0.5), (float)log(0.3), (float)log(0.2)};
    float tie[4] = {1.0f, 5.0f, 5.0f, 2.0f};
    CHECK(gen_sample(tie, 4, 0.0, 1.0, 0.99) == 1, "greedy ties pick the lowest id");
    CHECK(gen_sample(tie, 4, 1.0, 1e-9, 0.99) == 1, "tiny top_p keeps the argmax (lowest id on ties)");
    /* cumulative mass in id order 0.5, 0.8, 1.0 */
    CHECK(gen_sample(l3, 3, 1.0, 1.0, 0.49) == 0, "u 0.49 -> 0");
    CHECK(gen_sample(l3, 3, 1.0, 1.0, 0.51) == 1, "u 0.51 -> 1");
    CHECK(gen_sample(l3, 3, 1.0, 1.0, 0.95) == 2, "u 0.95 -> 2");
    /* top_p 0.6: nucleus {0, 1} (0.5 < 0.6 <= 0.8), renormalised 0.625 / 0.375 */
    CHECK(gen_sample(l3, 3, 1.0, 0.6, 0.6) == 0, "nucleus u 0.6 -> 0");
    CHECK(gen_sample(l3, 3, 1.0, 0.6, 0.7) == 1, "nucleus u 0.7 -> 1");
    CHECK(gen_sample(l3, 3, 1.0, 0.6, 0.999) == 1, "nucleus excludes 2");
    CHECK(gen_sample(l3, 3, 1.0, 0.45, 0.999) == 0, "top_p 0.45: the first token alone");
    /* frequencies over seeded draws, plain and with temperature 2 (p ~ sqrt of the probabilities) */
    int cnt[3] = {0}, cnt2[3] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++) {
        cnt[gen_sample(l3, 3, 1.0, 1.0, gen_uniform(11, 0, (uint64_t)i))]++;
        cnt2[gen_sample(l3, 3, 2.0, 1.0, gen_uniform(11, 1, (uint64_t)i))]++;
    }
    double z = sqrt(0.5) + sqrt(0.3) + sqrt(0.2);
    double want[3] = {0.5, 0.3, 0.2}, want2[3] = {sqrt(0.5) / z, sqrt(0.3) / z, sqrt(0.2) / z};
    for (int i = 0; i < 3; i++) {
        CHECK(fabs(cnt[i] / (double)n - want[i]) < 0.01, "T=1 frequency of %d: %g, want %g", i, cnt[i] / (double)n,
              want[i]);
        CHECK(fabs(cnt2[i] / (double)n - want2[i]) < 0.01, "T=2 frequency of %d: %g, want %g", i,
              cnt2[i] / (double)n, want2[i]);
    }
    double u0 = gen_uniform(1, 2, 3);
    CHECK(u0 >= 0.0 && u0 < 1.0 && u0 == gen_uniform(1, 2, 3) && u0 != gen_uniform(1, 2, 4), "gen_uniform");
}

int main(void) {
    test_sample();
    char *mdir = fixture_path("tiny-a/model"), *pairs = fixture_path("tiny-a/pairs.jsonl");
    ModelConfig mc = model_config_load(mdir);
    PairSet *ps = pairs_load_jsonl(pairs, mc.vocab_size);
    Model *m = model_create(&mc, backend_cpu(), 256, NULL, 1);
    model_load_hf(m, mdir);
    const int V = m->V, max_pos = mc.max_position_embeddings;
    Generator *g = gen_create(m, max_pos);
    const Pair *pr = &ps->pairs[0];
    const int np = pr->n_prompt, NEW = 12;

    /* greedy, 12 tokens, no stop tokens: each is the argmax of the uncached forward at its position */
    GenParams gp = greedy(NEW);
    GenResult r = gen_generate(g, pr->prompt, np, &gp, "test");
    CHECK(r.n == NEW && r.stop == GEN_STOP_LENGTH, "greedy: %d tokens, stop %s", r.n, gen_stop_name(r.stop));
    int T = np + r.n;
    int *seq = malloc((size_t)T * sizeof(int));
    memcpy(seq, pr->prompt, (size_t)np * sizeof(int));
    memcpy(seq + np, r.ids, (size_t)r.n * sizeof(int));
    double *ref = ref_logits(m, seq, T);
    double gen_sum = 0;
    for (int i = 0; i < r.n; i++) {
        const double *row = ref + (size_t)(np - 1 + i) * V;
        int want = argmax_d(row, V);
        double lp = log_softmax_at(row, V, r.ids[i]);
        gen_sum += r.logp[i];
        CHECK(r.ids[i] == want || row[r.ids[i]] >= row[want] - 1e-5, "token %d: generated %d, uncached argmax %d",
              i, r.ids[i], want);
        CHECK(fabs(r.logp[i] - lp) <= 1e-4 * (1 + fabs(lp)), "token %d: log-prob %.9g, uncached %.9g", i, r.logp[i],
              lp);
    }
    printf("greedy continuation:");
    for (int i = 0; i < r.n; i++) printf(" %d", r.ids[i]);
    printf("  (sum log-prob %.6f)\n", gen_sum);

    /* the training forward: the continuation as the response of a pair (chosen = rejected) */
    Pair hand = {.prompt = pr->prompt, .chosen = r.ids, .rejected = r.ids, .n_prompt = np, .n_chosen = r.n,
                 .n_rejected = r.n, .line = 1};
    PairSet hps = {.pairs = &hand, .n = 1};
    size_t idx0 = 0;
    MicroBatch *mb = microbatch_pack(&hps, &idx0, 1);
    SeqLogp s[2];
    model_forward_logprobs(m, mb, s);
    CHECK(s[0].n == r.n && s[1].n == r.n, "response tokens %d", s[0].n);
    CHECK(fabs(s[0].sum - gen_sum) <= 1e-4 * fabs(s[0].sum), "summed log-prob: training forward %.9g, generator %.9g",
          s[0].sum, gen_sum);
    /* the metrics' logit sums (logits/chosen): the response rows' logits over the whole vocabulary, summed, against
     * the uncached double forward's rows that predict the continuation */
    double lref = 0, lnext = 0;
    for (int i = 0; i < r.n; i++)
        for (int j = 0; j < V; j++) lref += ref[(size_t)(np - 1 + i) * V + j], lnext += ref[(size_t)(np + i) * V + j];
    printf("mean logit of the continuation: %.9g (training forward), %.9g (uncached), one row later %.9g\n",
           s[0].logit_sum / ((double)r.n * V), lref / ((double)r.n * V), lnext / ((double)r.n * V));
    CHECK(fabs(s[0].logit_sum - lref) <= 1e-6 * r.n * V && s[1].logit_sum == s[0].logit_sum,
          "logit sum: training forward %.9g, uncached %.9g", s[0].logit_sum, lref);
    microbatch_free(mb);

    /* logits of one prefill, of token-by-token feeding, and of the uncached forward agree */
    gen_reset(g);
    float *pre = malloc((size_t)V * sizeof(float));
    memcpy(pre, gen_feed(g, seq, T), (size_t)V * sizeof(float));
    CHECK(gen_len(g) == T, "cache length %d", gen_len(g));
    gen_reset(g);
    const float *step = NULL;
    for (int t = 0; t < T; t++) step = gen_feed(g, seq + t, 1);
    double dstep = 0, dref = 0;
    for (int i = 0; i < V; i++) {
        dstep = fmax(dstep, fabs(step[i] - pre[i]));
        dref = fmax(dref, fabs(pre[i] - ref[(size_t)(T - 1) * V + i]));
    }
    CHECK(dstep < 1e-4, "prefill vs one-by-one logits differ by %g", dstep);
    CHECK(dref < 1e-4, "prefill vs uncached logits differ by %g", dref);

    /* a prompt longer than one prefill chunk (128 rows) */
    {
        int L = 150;
        int *lp = malloc((size_t)L * sizeof(int));
        for (int t = 0; t < L; t++) lp[t] = (t * 37 + 5) % V;
        gen_reset(g);
        const float *lg = gen_feed(g, lp, L);
        double *lr = ref_logits(m, lp, L), d = 0;
        for (int i = 0; i < V; i++) d = fmax(d, fabs(lg[i] - lr[(size_t)(L - 1) * V + i]));
        CHECK(d < 1e-4, "150-token prefill vs uncached logits differ by %g", d);
        free(lr);
        free(lp);
    }

    /* sampling: reproducible per (seed, stream); another seed gives another continuation; tiny top_p = greedy */
    GenParams sp = {.max_new_tokens = NEW, .temperature = 1.0, .top_p = 1.0, .seed = 7};
    GenResult a = gen_generate(g, pr->prompt, np, &sp, "test"), b = gen_generate(g, pr->prompt, np, &sp, "test");
    CHECK(same_ids(&a, &b), "same seed, same continuation");
    sp.seed = 8;
    GenResult c = gen_generate(g, pr->prompt, np, &sp, "test");
    CHECK(!same_ids(&a, &c), "seeds 7 and 8 gave the same continuation");
    sp.seed = 7;
    sp.stream = 1;
    GenResult c2 = gen_generate(g, pr->prompt, np, &sp, "test");
    CHECK(!same_ids(&a, &c2), "streams 0 and 1 gave the same continuation");
    sp.stream = 0;
    sp.top_p = 1e-9;
    GenResult d = gen_generate(g, pr->prompt, np, &sp, "test");
    CHECK(same_ids(&d, &r), "top_p 1e-9 at temperature 1 is greedy");
    sp.top_p = 0.9;
    sp.temperature = 0.7;
    GenResult e = gen_generate(g, pr->prompt, np, &sp, "test"), e2 = gen_generate(g, pr->prompt, np, &sp, "test");
    CHECK(e.n == NEW && same_ids(&e, &e2), "top_p 0.9, T 0.7: reproducible");
    for (int i = 0; i < a.n; i++) {
        /* the reported log-prob is the model's (temperature 1), whatever the sampling settings */
        CHECK(a.logp[i] <= 0 && e.logp[i] <= 0, "log-probs <= 0");
    }

    /* stop tokens end generation and are included */
    int stop = r.ids[5], first = 0;
    while (r.ids[first] != stop) first++;
    GenParams st = greedy(NEW);
    st.stop_ids = &stop;
    st.n_stop = 1;
    GenResult f = gen_generate(g, pr->prompt, np, &st, "test");
    CHECK(f.n == first + 1 && f.stop == GEN_STOP_EOS && f.ids[f.n - 1] == stop, "stop token: %d tokens, stop %s",
          f.n, gen_stop_name(f.stop));
    GenParams zero = greedy(0);
    GenResult z = gen_generate(g, pr->prompt, np, &zero, "test");
    CHECK(z.n == 0 && z.stop == GEN_STOP_LENGTH, "max_new_tokens 0");

    /* the context: prompt + output stop at max_position_embeddings */
    int *longp = malloc((size_t)(max_pos + 1) * sizeof(int));
    for (int t = 0; t <= max_pos; t++) longp[t] = (t * 11 + 1) % V;
    GenParams big = greedy(100);
    GenResult h = gen_generate(g, longp, max_pos - 6, &big, "test");
    CHECK(h.n == 6 && h.stop == GEN_STOP_CONTEXT, "context limit: %d tokens, stop %s", h.n, gen_stop_name(h.stop));
    GenResult h1 = gen_generate(g, longp, max_pos - 1, &big, "test");
    CHECK(h1.n == 1 && h1.stop == GEN_STOP_CONTEXT, "prompt of max_pos - 1: %d tokens", h1.n);

    /* errors: a prompt that leaves no room, an empty prompt, an id outside the vocabulary */
    DieArg da = {g, longp, max_pos};
    CHECK(expect_die(gen_die, &da, "prompts.jsonl:7: prompt of 256 tokens does not fit the context: "
                                   "max_position_embeddings is 256"),
          "prompt of max_position_embeddings tokens");
    da.n = max_pos + 1;
    CHECK(expect_die(gen_die, &da, "prompt of 257 tokens"), "prompt longer than the context");
    da.n = 0;
    CHECK(expect_die(gen_die, &da, "empty prompt"), "empty prompt");
    int badp[2] = {1, V};
    da.prompt = badp;
    da.n = 2;
    CHECK(expect_die(gen_die, &da, "outside the vocabulary"), "id outside the vocabulary");

    GenResult *all[] = {&r, &a, &b, &c, &c2, &d, &e, &e2, &f, &z, &h, &h1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) gen_result_free(all[i]);
    free(longp);
    free(pre);
    free(ref);
    free(seq);
    gen_free(g);
    model_free(m);
    pairs_free(ps);
    free(mdir);
    free(pairs);
    TEST_END();
}
