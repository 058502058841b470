/* test_generate_g2.c — KV-cached decoding of a Gemma 2 model (src/generate.c's Gemma 2 block) on the tiny-g2
 * fixture (tests/fixtures/tiny-g2: 2 layers, the first sliding with a window of 8, attention and final logit
 * soft-caps, query_pre_attn_scalar 24, tied embeddings).
 *  1. Outside numbers: each fixture pair's chosen and rejected responses, fed one token at a time after the prompt,
 *     give log-probs whose sums equal Hugging Face's float64 ones (expected.json) within 1e-5 relative; the
 *     sequences (up to 23 tokens) run past the sliding window, so a wrong window, cap or scale shows.
 *  2. The training forward (model_forward_logprobs, itself checked against the same fixture): a 40-token greedy
 *     continuation's summed log-prob, and every prefix's (the cumulative sums token by token); the fixture pairs'
 *     logit sums (the metrics' logits/chosen, after the final soft-cap) against the decoder's logits.
 *  3. One prefill of a 150-token prompt (two prefill chunks, far past the window) and the same tokens fed one by
 *     one give the same last logits. */
#include <math.h>
#include <cjson/cJSON.h>
#include "generate.h"
#include "model.h"
#include "pairs.h"
#include "test_util.h"

/* the summed log-prob of resp[0..nr) after prompt[0..np), fed to the decoder token by token; *lsum: the sum of
 * the logits (over the vocabulary) of the rows that predict them */
static double fed_logp(Generator *g, const int *prompt, int np, const int *resp, int nr, int V, double *lsum) {
    gen_reset(g);
    const float *lg = gen_feed(g, prompt, np);
    double sum = 0;
    *lsum = 0;
    for (int i = 0; i < nr; i++) {
        double mx = -INFINITY, se = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, lg[j]), *lsum += lg[j];
        for (int j = 0; j < V; j++) se += exp((double)lg[j] - mx);
        sum += (double)lg[resp[i]] - mx - log(se);
        if (i + 1 < nr) lg = gen_feed(g, &resp[i], 1);
    }
    return sum;
}

/* the training forward's summed log-prob of resp[0..nr) after prompt (the response of a pair, chosen = rejected) */
static double train_logp(Model *m, const int *prompt, int np, const int *resp, int nr) {
    Pair hand = {.prompt = (int *)prompt, .chosen = (int *)resp, .rejected = (int *)resp, .n_prompt = np,
                 .n_chosen = nr, .n_rejected = nr, .line = 1};
    PairSet hps = {.pairs = &hand, .n = 1};
    size_t idx0 = 0;
    MicroBatch *mb = microbatch_pack(&hps, &idx0, 1);
    SeqLogp s[2];
    model_forward_logprobs(m, mb, s);
    microbatch_free(mb);
    return s[0].sum;
}

int main(void) {
    char *mdir = fixture_path("tiny-g2/model"), *pairs = fixture_path("tiny-g2/pairs.jsonl");
    char *expf = fixture_path("tiny-g2/expected.json");
    ModelConfig mc = model_config_load(mdir);
    CHECK(mc.arch == ARCH_GEMMA2, "tiny-g2 is a Gemma 2 model");
    PairSet *ps = pairs_load_jsonl(pairs, mc.vocab_size);
    char *text = sd_read_file(expf, NULL);
    cJSON *exp = cJSON_Parse(text);
    CHECK(exp != NULL, "expected.json parses");
    Model *m = model_create(&mc, backend_cpu(), 256, NULL, 1);
    model_load_hf(m, mdir);
    const int V = m->V;
    Generator *g = gen_create(m, mc.max_position_embeddings);

    /* 1. Hugging Face's float64 log-probs of the fixture's responses */
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst = 0, worst_ls = 0;
    int longest = 0;
    for (int i = 0; i < (int)ps->n && i < cJSON_GetArraySize(pj); i++) {
        const Pair *p = &ps->pairs[i];
        const cJSON *e = cJSON_GetArrayItem(pj, i);
        double want_w = cJSON_GetObjectItemCaseSensitive(e, "chosen_logp")->valuedouble;
        double want_l = cJSON_GetObjectItemCaseSensitive(e, "rejected_logp")->valuedouble;
        double ls_w, ls_l;
        double got_w = fed_logp(g, p->prompt, p->n_prompt, p->chosen, p->n_chosen, V, &ls_w);
        double got_l = fed_logp(g, p->prompt, p->n_prompt, p->rejected, p->n_rejected, V, &ls_l);
        worst = fmax(worst, fmax(fabs(got_w - want_w) / fabs(want_w), fabs(got_l - want_l) / fabs(want_l)));
        /* the training forward's logit sums of the pair (prefix sharing, as training packs it): per logit of the
         * rows, the mean difference */
        PairSet one = {.pairs = (Pair *)p, .n = 1};
        size_t i0 = 0;
        MicroBatch *mb = microbatch_pack_opts(&one, &i0, 1, true);
        SeqLogp s[2];
        model_forward_logprobs(m, mb, s);
        microbatch_free(mb);
        worst_ls = fmax(worst_ls, fmax(fabs(s[0].logit_sum - ls_w) / ((double)p->n_chosen * V),
                                       fabs(s[1].logit_sum - ls_l) / ((double)p->n_rejected * V)));
        int len = p->n_prompt + (p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected);
        if (len > longest) longest = len;
    }
    printf("decoder vs HF float64 log-probs: worst relative error %.3g (sequences up to %d tokens, window %d)\n",
           worst, longest, mc.sliding_window);
    CHECK(longest > mc.sliding_window, "the fixture's sequences reach past the sliding window");
    CHECK(worst <= 1e-5, "decoder log-probs off HF's by %.3g relative", worst);
    printf("training forward's logit sums vs the decoder's: worst mean difference per logit %.3g\n", worst_ls);
    CHECK(worst_ls <= 1e-6, "logit sums of the training forward off the decoder's by %.3g per logit", worst_ls);

    /* 2. a greedy continuation against the training forward, prefix by prefix */
    const Pair *p0 = &ps->pairs[0];
    const int NEW = 40;
    GenParams gp = {.max_new_tokens = NEW, .temperature = 0.0, .top_p = 1.0};
    GenResult r = gen_generate(g, p0->prompt, p0->n_prompt, &gp, "test");
    CHECK(r.n == NEW, "greedy: %d tokens", r.n);
    double cum = 0, worst_p = 0;
    for (int i = 0; i < r.n; i++) {
        cum += r.logp[i];
        double t = train_logp(m, p0->prompt, p0->n_prompt, r.ids, i + 1);
        worst_p = fmax(worst_p, fabs(t - cum) / fmax(1.0, fabs(t)));
    }
    printf("greedy continuation of %d tokens: sum log-prob %.6f; worst prefix difference vs the training forward "
           "%.3g\n", r.n, cum, worst_p);
    CHECK(worst_p <= 1e-5, "prefix log-probs differ from the training forward by %.3g", worst_p);
    gen_result_free(&r);

    /* 3. prefill in chunks vs one token at a time, past two chunks and many windows */
    {
        const int L = 150;
        int *ids = malloc((size_t)L * sizeof(int));
        for (int t = 0; t < L; t++) ids[t] = (t * 37 + 5) % V;
        gen_reset(g);
        float *pre = malloc((size_t)V * sizeof(float));
        memcpy(pre, gen_feed(g, ids, L), (size_t)V * sizeof(float));
        gen_reset(g);
        const float *step = NULL;
        for (int t = 0; t < L; t++) step = gen_feed(g, ids + t, 1);
        double d = 0;
        for (int i = 0; i < V; i++) d = fmax(d, fabs(step[i] - pre[i]));
        CHECK(d < 1e-4, "150-token prefill vs one-by-one logits differ by %g", d);
        CHECK(fabs(pre[0]) <= mc.final_logit_softcapping, "logits are soft-capped (|%g| <= %g)", pre[0],
              mc.final_logit_softcapping);
        free(pre);
        free(ids);
    }

    gen_free(g);
    model_free(m);
    pairs_free(ps);
    cJSON_Delete(exp);
    free(text);
    free(mdir);
    free(pairs);
    free(expf);
    TEST_END();
}
