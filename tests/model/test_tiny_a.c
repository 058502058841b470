/* test_tiny_a.c — the whole model against the Hugging Face float64 fixture tiny-a (tests/fixtures/README.md):
 * per-pair log-probs, SimPO loss and metrics at the initial weights, every parameter gradient, and the loss and
 * grad norm of simpo_hinge, dpo and simpo_sft. Tolerances are the fixture README's: log-probs and losses 1e-5
 * relative; gradients 1e-4 of the tensor's largest magnitude. */
#include <cjson/cJSON.h>
#include <math.h>
#include "config.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "pairs.h"
#include "safetensors.h"
#include "test_util.h"

static cJSON *load_expected(void) {
    char *p = fixture_path("tiny-a/expected.json");
    char *text = sd_read_file(p, NULL);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", p);
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    free(p);
    return j;
}
static double jnum(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }
static double grad_norm(const Model *m) { return sqrt(model_grad_sumsq(m)); } /* one rank: every slice is whole */
static int rel_ok(double got, double want, double rtol) { return fabs(got - want) <= rtol * fabs(want); }

typedef struct {
    Model *m;
    PairSet *ps;
    SeqLogp seq[12];
} Setup;

static void setup(Setup *s) {
    char *mdir = fixture_path("tiny-a/model"), *pairs = fixture_path("tiny-a/pairs.jsonl");
    ModelConfig mc = model_config_load(mdir);
    s->ps = pairs_load_jsonl(pairs, mc.vocab_size);
    s->m = model_create(&mc, backend_cpu(), 256, NULL, 1);
    model_load_hf(s->m, mdir);
    free(mdir);
    free(pairs);
}

/* loss over all 6 pairs in one micro-batch; forward + backward; returns the loss, grads in m->grads */
static double loss_and_grads(Setup *s, LossParams lp, double *metrics) {
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    MicroBatch *mb = microbatch_pack(s->ps, idx, 6);
    model_zero_grads(s->m);
    model_forward_logprobs(s->m, mb, s->seq);
    long chosen = 0;
    for (int i = 0; i < 6; i++) chosen += s->seq[2 * i].n;
    double dsum[12], loss = 0;
    for (int k = 0; k < 6; k++) metrics[k] = 0;
    for (int i = 0; i < 6; i++) {
        const Pair *p = mb->pairs[i];
        PairStats ps = {s->seq[2 * i].sum, s->seq[2 * i + 1].sum, s->seq[2 * i].n, s->seq[2 * i + 1].n,
                        p->ref_chosen_logp, p->ref_rejected_logp};
        LossOut o;
        loss_pair(&lp, &ps, 6, chosen, &o);
        loss += o.loss;
        dsum[2 * i] = o.d_sum_w;
        dsum[2 * i + 1] = o.d_sum_l;
        metrics[0] += o.reward_w / 6;
        metrics[1] += o.reward_l / 6;
        metrics[2] += (o.reward_w - o.reward_l) / 6;
        metrics[3] += (o.reward_w > o.reward_l) / 6.0;
        metrics[4] += o.logp_w / 6;
        metrics[5] += o.logp_l / 6;
    }
    model_backward(s->m, mb, dsum);
    microbatch_free(mb);
    return loss;
}

int main(void) {
    cJSON *exp = load_expected();
    Setup s;
    setup(&s);
    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    double met[6];
    double loss = loss_and_grads(&s, simpo, met);

    /* per-pair log-probs */
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        const cJSON *e = cJSON_GetArrayItem(pairs, i);
        double w = jnum(e, "chosen_logp"), l = jnum(e, "rejected_logp");
        worst = fmax(worst, fmax(fabs(s.seq[2 * i].sum - w) / fabs(w), fabs(s.seq[2 * i + 1].sum - l) / fabs(l)));
        CHECK(s.seq[2 * i].n == (int)jnum(e, "chosen_tokens"), "pair %d chosen tokens %d", i, s.seq[2 * i].n);
        CHECK(s.seq[2 * i + 1].n == (int)jnum(e, "rejected_tokens"), "pair %d rejected tokens", i);
    }
    printf("log-probs: worst relative error %.3g\n", worst);
    CHECK(worst <= 1e-5, "log-probs off by %.3g relative", worst);

    /* SimPO loss and metrics at step 1 */
    const cJSON *st1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(exp, "steps"), 0);
    CHECK(rel_ok(loss, jnum(st1, "loss"), 1e-5), "simpo loss %.10g vs %.10g", loss, jnum(st1, "loss"));
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics");
    const char *names[6] = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                            "logps/chosen", "logps/rejected"};
    for (int k = 0; k < 6; k++)
        CHECK(rel_ok(met[k], jnum(em, names[k]), 1e-5), "%s %.10g vs %.10g", names[k], met[k], jnum(em, names[k]));
    double gn = grad_norm(s.m);
    CHECK(rel_ok(gn, jnum(st1, "grad_norm"), 1e-5), "grad norm %.10g vs %.10g", gn, jnum(st1, "grad_norm"));

    /* every gradient tensor */
    char *gp = fixture_path("tiny-a/grads.safetensors");
    StDir *gd = st_open_file(gp);
    free(gp);
    int seen = 0;
    for (int i = 0; i < s.m->nspecs; i++) {
        const ParamSpec *p = &s.m->specs[i];
        const StTensor *t = st_find(gd, p->name);
        CHECK(t != NULL, "gradient %s missing from fixture", p->name);
        if (!t) continue;
        float *ref = sd_alloc(t->numel * sizeof(float), "ref");
        st_read_f32(gd, t, ref);
        double maxref = 0, maxdiff = 0;
        size_t at = 0;
        for (size_t e = 0; e < p->numel; e++) {
            maxref = fmax(maxref, fabs(ref[e]));
            double d = fabs(s.m->grads[p->offset + e] - ref[e]);
            if (d > maxdiff) maxdiff = d, at = e;
        }
        CHECK(maxdiff <= 1e-4 * maxref, "grad %s: element %zu got %.8g want %.8g (max |ref| %.3g)", p->name, at,
              s.m->grads[p->offset + at], ref[at], maxref);
        free(ref);
        seen++;
    }
    CHECK(seen == gd->ntensors, "fixture has %d gradient tensors, model %d", gd->ntensors, seen);
    st_close(gd);

    /* other objectives: loss and grad norm at the initial weights */
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(exp, "other_losses");
    struct { const char *name; LossParams lp; } objs[3] = {
        {"simpo_hinge", {.type = LOSS_SIMPO_HINGE, .beta = 2.0, .gamma = 1.0}},
        {"dpo", {.type = LOSS_DPO, .beta = 0.1}},
        {"simpo_sft", {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0, .sft_weight = 0.5}},
    };
    for (int k = 0; k < 3; k++) {
        double l = loss_and_grads(&s, objs[k].lp, met), g = grad_norm(s.m);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(other, objs[k].name);
        CHECK(rel_ok(l, jnum(e, "loss"), 1e-5), "%s loss %.10g vs %.10g", objs[k].name, l, jnum(e, "loss"));
        CHECK(rel_ok(g, jnum(e, "grad_norm"), 1e-5), "%s grad norm %.10g vs %.10g", objs[k].name, g,
              jnum(e, "grad_norm"));
    }
    model_free(s.m);
    pairs_free(s.ps);
    cJSON_Delete(exp);
    TEST_END();
}
