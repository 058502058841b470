/* fixture_common.h — what the tests on the Hugging Face float64 fixture tiny-a (tests/fixtures/README.md) share:
 * test_tiny_a, test_strict_backend and test_train_fixture (tests/model) and test_cuda_model (tests/gpu).
 *   the model side: load tiny-a's model, config, pairs and expected.json; run the 6 pairs as one micro-batch
 *     (forward + backward); check log-probs, the SimPO loss and metrics, the grad norm, every gradient and the other
 *     objectives against the fixture with the README's tolerances (1e-5 relative; gradients 1e-4 of the tensor's
 *     largest magnitude).
 *   the trainer side: the fixture's run.yaml with its checkpoint.dir moved, metrics.jsonl against the expected
 *     steps 1 and 2, a checkpoint's parameters against step1/step2.safetensors (1e-4 absolute except a handful of
 *     elements within 2.5e-3), two checkpoints bit for bit.
 * Static inline helpers (each test uses some of them); failures are CHECKs of test_util.h. */
#ifndef SD_FIXTURE_COMMON_H
#define SD_FIXTURE_COMMON_H
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "config.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"
#include "plan.h"
#include "safetensors.h"
#include "test_util.h"

/* the order of the metrics fixture_loss_and_grads fills: the keys of expected.json's "metrics" */
static const char *const fixture_metric_names[6] = {"rewards/chosen", "rewards/rejected", "rewards/margins",
                                                    "rewards/accuracies", "logps/chosen", "logps/rejected"};

/* the objectives of expected.json's "other_losses" */
typedef struct {
    const char *name;
    LossParams lp;
} FixtureObjective;
static const FixtureObjective fixture_objectives[3] = {
    {"simpo_hinge", {.type = LOSS_SIMPO_HINGE, .beta = 2.0, .gamma = 1.0}},
    {"dpo", {.type = LOSS_DPO, .beta = 0.1}},
    {"simpo_sft", {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0, .sft_weight = 0.5}},
};

static inline double jnum(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble;
}
static inline int rel_ok(double got, double want, double rtol) { return fabs(got - want) <= rtol * fabs(want); }

/* a JSON file of the fixtures (rel: below SIMPO_FIXTURES), parsed; exits when it cannot be read */
static inline cJSON *load_json(const char *rel) {
    char *p = fixture_path(rel);
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

/* removes dir, a test's mkdtemp, when every check passed (it stays for a look when one failed) */
static inline void fixture_remove_tmpdir(const char *dir) {
    if (t_fail == 0) t_remove_tree(dir);
}

/* the largest |got - want| of n elements (INFINITY where it is NaN), the first element that has it in *at, and the
 * largest |want| in *maxwant */
static inline double fixture_max_diff(const float *got, const float *want, size_t n, double *maxwant, size_t *at) {
    double maxdiff = 0;
    *maxwant = 0;
    *at = 0;
    for (size_t e = 0; e < n; e++) {
        *maxwant = fmax(*maxwant, fabs(want[e]));
        double d = fabs((double)got[e] - want[e]);
        if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d, *at = e;
    }
    return maxdiff;
}

/* ---- the model side ---- */

static inline ModelConfig fixture_model_config(void) {
    char *mdir = fixture_path("tiny-a/model");
    ModelConfig mc = model_config_load(mdir);
    free(mdir);
    return mc;
}

/* tiny-a's initial weights on backend be (256 tokens, one rank, one activation slot) */
static inline Model *fixture_model(const ModelConfig *mc, const Backend *be) {
    char *mdir = fixture_path("tiny-a/model");
    Model *m = model_create(mc, be, 256, NULL, 1);
    model_load_hf(m, mdir);
    free(mdir);
    return m;
}
/* the same in autocast storage (model.h ModelOpts; made in the bf16 mode, else it is the exact model) */
static inline Model *fixture_model_autocast(const ModelConfig *mc, const Backend *be) {
    char *mdir = fixture_path("tiny-a/model");
    ModelOpts o = {.autocast16 = true};
    Model *m = model_create_opts(mc, be, 256, NULL, 1, &o);
    model_load_hf(m, mdir);
    free(mdir);
    return m;
}

static inline PairSet *fixture_pairs(const ModelConfig *mc) {
    char *p = fixture_path("tiny-a/pairs.jsonl");
    PairSet *ps = pairs_load_jsonl(p, mc->vocab_size);
    free(p);
    return ps;
}

/* The loss over all 6 pairs in one micro-batch, forward + backward: fills seq (chosen, rejected of each pair) and
 * met (in the order of fixture_metric_names), leaves the gradients in m->grads; returns the loss. share: each pair's
 * prompt shared by its two sequences (pairs.h, prefix sharing). */
static inline double fixture_loss_and_grads_ex(Model *m, const PairSet *ps, LossParams lp, SeqLogp seq[12],
                                               double met[6], bool share) {
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    MicroBatch *mb = microbatch_pack_opts(ps, idx, 6, share);
    model_zero_grads(m);
    model_forward_logprobs(m, mb, seq);
    long chosen = 0;
    for (int i = 0; i < 6; i++) chosen += seq[2 * i].n;
    double dsum[12], loss = 0;
    for (int k = 0; k < 6; k++) met[k] = 0;
    for (int i = 0; i < 6; i++) {
        const Pair *p = mb->pairs[i];
        PairStats st = {seq[2 * i].sum, seq[2 * i + 1].sum, seq[2 * i].n, seq[2 * i + 1].n, p->ref_chosen_logp,
                        p->ref_rejected_logp};
        LossOut o;
        loss_pair(&lp, &st, 6, chosen, &o);
        loss += o.loss;
        dsum[2 * i] = o.d_sum_w;
        dsum[2 * i + 1] = o.d_sum_l;
        met[0] += o.reward_w / 6;
        met[1] += o.reward_l / 6;
        met[2] += (o.reward_w - o.reward_l) / 6;
        met[3] += (o.reward_w > o.reward_l) / 6.0;
        met[4] += o.logp_w / 6;
        met[5] += o.logp_l / 6;
    }
    model_backward(m, mb, dsum);
    microbatch_free(mb);
    return loss;
}
static inline double fixture_loss_and_grads(Model *m, const PairSet *ps, LossParams lp, SeqLogp seq[12],
                                            double met[6]) {
    return fixture_loss_and_grads_ex(m, ps, lp, seq, met, false);
}

/* per-pair log-probs (1e-5 relative) and response token counts against expected.json's "pairs"; prints the worst
 * relative error after tag */
static inline void check_fixture_logprobs(const cJSON *exp, const SeqLogp seq[12], const char *tag) {
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        const cJSON *e = cJSON_GetArrayItem(pj, i);
        double w = jnum(e, "chosen_logp"), l = jnum(e, "rejected_logp");
        worst = fmax(worst, fmax(fabs(seq[2 * i].sum - w) / fabs(w), fabs(seq[2 * i + 1].sum - l) / fabs(l)));
        CHECK(seq[2 * i].n == (int)jnum(e, "chosen_tokens"), "pair %d chosen tokens %d", i, seq[2 * i].n);
        CHECK(seq[2 * i + 1].n == (int)jnum(e, "rejected_tokens"), "pair %d rejected tokens", i);
    }
    printf("%slog-probs: worst relative error %.3g\n", tag, worst);
    CHECK(worst <= 1e-5, "log-probs off by %.3g relative", worst);
}

/* the SimPO loss, metrics (fixture_metric_names) and grad norm at the initial weights against expected.json's step 1
 * and "metrics": 1e-5 relative */
static inline void check_fixture_step1(const cJSON *exp, double loss, const double met[6], double gnorm) {
    const cJSON *st1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(exp, "steps"), 0);
    CHECK(rel_ok(loss, jnum(st1, "loss"), 1e-5), "simpo loss %.10g vs fixture %.10g", loss, jnum(st1, "loss"));
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics");
    for (int k = 0; k < 6; k++)
        CHECK(rel_ok(met[k], jnum(em, fixture_metric_names[k]), 1e-5), "%s %.10g vs fixture %.10g",
              fixture_metric_names[k], met[k], jnum(em, fixture_metric_names[k]));
    CHECK(rel_ok(gnorm, jnum(st1, "grad_norm"), 1e-5), "grad norm %.10g vs fixture %.10g", gnorm,
          jnum(st1, "grad_norm"));
}

/* every gradient tensor of m (grads: a host copy of its [nparams] gradients) against the fixture's
 * grads.safetensors: each within 1e-4 of the tensor's largest magnitude (a NaN fails), and no tensor left over */
static inline void check_fixture_grads(const Model *m, const float *grads) {
    char *gp = fixture_path("tiny-a/grads.safetensors");
    StDir *gd = st_open_file(gp);
    free(gp);
    int seen = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        const StTensor *t = st_find(gd, p->name);
        CHECK(t != NULL, "gradient %s missing from the fixture", p->name);
        if (!t) continue;
        const float *g = grads + p->offset;
        float *ref = sd_alloc(t->numel * sizeof(float), "ref");
        st_read_f32(gd, t, ref);
        double maxref;
        size_t at;
        double maxdiff = fixture_max_diff(g, ref, p->numel, &maxref, &at);
        CHECK(maxdiff <= 1e-4 * maxref, "grad %s vs fixture: element %zu got %.8g want %.8g (max |ref| %.3g)",
              p->name, at, g[at], ref[at], maxref);
        free(ref);
        seen++;
    }
    CHECK(seen == gd->ntensors, "fixture has %d gradient tensors, model %d", gd->ntensors, seen);
    st_close(gd);
}

/* the loss and grad norm of objective name against expected.json's "other_losses": 1e-5 relative */
static inline void check_fixture_other(const cJSON *exp, const char *name, double loss, double gnorm) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(exp, "other_losses"), name);
    CHECK(rel_ok(loss, jnum(e, "loss"), 1e-5), "%s loss %.10g vs fixture %.10g", name, loss, jnum(e, "loss"));
    CHECK(rel_ok(gnorm, jnum(e, "grad_norm"), 1e-5), "%s grad norm %.10g vs fixture %.10g", name, gnorm,
          jnum(e, "grad_norm"));
}

/* The fixture's 6 pairs as 3 micro-batches of 2 in activation slots 0..2 (m needs 3 slots): three forwards, then
 * the backwards in reverse order (slot 2 first: its layers were the last a shared working area saw, slot 0's the
 * first it lost), with a fixed d(loss)/d(sum) per sequence. Fills seq (12 log-probs), leaves the gradients in
 * m->grads and returns the sum of the log-probs (a stand-in loss: any change in a log-prob shows). flags:
 * FX_GRADS_BEGIN over whatever m->grads holds, as the trainer runs a step (model_grads_begin / model_grads_end), not
 * zeroed first; FX_SHARE each pair's prompt shared by its two sequences (prefix sharing); FX_FWD_ORDER the backwards
 * in the forwards' order (0, 1, 2: the first backward runs while the last forward's logits are the cached ones). */
enum { FX_GRADS_BEGIN = 1, FX_SHARE = 2, FX_FWD_ORDER = 4 };
static inline double fixture_three_in_flight_ex(Model *m, const PairSet *ps, SeqLogp seq[12], unsigned flags) {
    MicroBatch *mb[3];
    bool grads_begin = flags & FX_GRADS_BEGIN;
    if (grads_begin) model_grads_begin(m); /* no zeroing pass (model.h) */
    else model_zero_grads(m);
    for (int i = 0; i < 3; i++) {
        size_t idx[2] = {(size_t)2 * i, (size_t)2 * i + 1};
        mb[i] = microbatch_pack_opts(ps, idx, 2, flags & FX_SHARE);
        model_forward(m, mb[i], i, seq + 4 * i);
    }
    for (int k = 0; k < 3; k++) {
        int i = flags & FX_FWD_ORDER ? k : 2 - k;
        double dsum[4];
        for (int s = 0; s < 4; s++) dsum[s] = (s % 2 ? -0.25 : 0.5) / (1 + i + s);
        model_backward_slot(m, mb[i], i, dsum);
        microbatch_free(mb[i]);
    }
    if (grads_begin) model_grads_end(m);
    double sum = 0;
    for (int s = 0; s < 12; s++) sum += seq[s].sum;
    return sum;
}

static inline double fixture_three_in_flight(Model *m, const PairSet *ps, SeqLogp seq[12]) {
    return fixture_three_in_flight_ex(m, ps, seq, 0);
}

/* The micro-batches and d(loss)/d(log-prob) of fixture_three_in_flight one at a time in slot 0 (forward, then
 * backward, micro-batch 2 first, so the gradients accumulate in the same order): the reference the three slots in
 * flight must equal bit for bit. A buffer several slots share that a slot's backward still needed after another
 * slot's forward ran would make them differ. */
static inline double fixture_one_at_a_time_ex(Model *m, const PairSet *ps, SeqLogp seq[12], bool share) {
    model_zero_grads(m);
    for (int i = 2; i >= 0; i--) {
        size_t idx[2] = {(size_t)2 * i, (size_t)2 * i + 1};
        MicroBatch *mb = microbatch_pack_opts(ps, idx, 2, share);
        model_forward(m, mb, 0, seq + 4 * i);
        double dsum[4];
        for (int s = 0; s < 4; s++) dsum[s] = (s % 2 ? -0.25 : 0.5) / (1 + i + s);
        model_backward_slot(m, mb, 0, dsum);
        microbatch_free(mb);
    }
    double sum = 0;
    for (int s = 0; s < 12; s++) sum += seq[s].sum;
    return sum;
}
static inline double fixture_one_at_a_time(Model *m, const PairSet *ps, SeqLogp seq[12]) {
    return fixture_one_at_a_time_ex(m, ps, seq, false);
}

/* ---- comparing runs bit for bit ---- */

/* what a run leaves to compare: per-sequence log-probs, the loss (and metrics where the run has them) and every
 * gradient (grads: a host copy of m->nparams floats; the caller frees it) */
typedef struct {
    SeqLogp seq[12];
    double loss, met[6];
    float *grads;
} FixtureResult;

/* a host copy of m's gradients (through the backend: fine on the strict and GPU backends), [nparams] in the flat
 * layout; under the sparse embedding gradient (model_enable_sparse_embed) the embedding's held rows at their rows and
 * zeros in the rest, as the dense gradient holds them. The caller frees it. */
static inline float *fixture_host_grads(const Model *m) {
    float *g = sd_calloc(m->nparams, sizeof(float), "host grads");
    size_t from = m->grads_from, C = (size_t)m->C, k = m->sp.held;
    m->be->download(g + from, m->grads, (m->nparams - from) * sizeof(float));
    if (m->sp.grad && k) {
        float *rows = sd_alloc(k * C * sizeof(float), "host grads");
        m->be->download(rows, m->sp.grad, k * C * sizeof(float));
        for (size_t j = 0; j < k; j++) memcpy(g + (size_t)m->sp.rows[j] * C, rows + j * C, C * sizeof(float));
        free(rows);
    }
    return g;
}
/* m with the sparse embedding gradient for the fixture's six pairs in one micro-batch (fixture_loss_and_grads_ex's),
 * its rows those of that micro-batch (model_sparse_embed_begin) */
static inline void fixture_sparse_embed(Model *m, const PairSet *ps, bool share) {
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    MicroBatch *mb = microbatch_pack_opts(ps, idx, 6, share);
    model_enable_sparse_embed(m, mb->Ntok);
    model_sparse_embed_begin(m, &mb, 1);
    microbatch_free(mb);
}
/* fixture_loss_and_grads with loss lp, the gradients copied to the host */
static inline FixtureResult fixture_run(Model *m, const PairSet *ps, LossParams lp) {
    FixtureResult r = {0};
    r.loss = fixture_loss_and_grads(m, ps, lp, r.seq, r.met);
    r.grads = fixture_host_grads(m);
    return r;
}
/* fixture_run with each pair's prompt shared by its two sequences (prefix sharing) */
static inline FixtureResult fixture_run_shared(Model *m, const PairSet *ps, LossParams lp) {
    FixtureResult r = {0};
    r.loss = fixture_loss_and_grads_ex(m, ps, lp, r.seq, r.met, true);
    r.grads = fixture_host_grads(m);
    return r;
}
/* fixture_three_in_flight / fixture_one_at_a_time with the gradients copied to the host */
static inline FixtureResult fixture_run_three_in_flight_ex(Model *m, const PairSet *ps, unsigned flags) {
    FixtureResult r = {0};
    r.loss = fixture_three_in_flight_ex(m, ps, r.seq, flags);
    r.grads = fixture_host_grads(m);
    return r;
}
static inline FixtureResult fixture_run_three_in_flight(Model *m, const PairSet *ps) {
    return fixture_run_three_in_flight_ex(m, ps, 0);
}
static inline FixtureResult fixture_run_one_at_a_time_ex(Model *m, const PairSet *ps, bool share) {
    FixtureResult r = {0};
    r.loss = fixture_one_at_a_time_ex(m, ps, r.seq, share);
    r.grads = fixture_host_grads(m);
    return r;
}
static inline FixtureResult fixture_run_one_at_a_time(Model *m, const PairSet *ps) {
    return fixture_run_one_at_a_time_ex(m, ps, false);
}
/* bitwise equality of two runs' log-probs, loss and gradients (n parameters) */
static inline void fixture_check_same(const FixtureResult *a, const FixtureResult *b, size_t n, const char *what) {
    int seq_same = 1;
    for (int s = 0; s < 12; s++)
        seq_same &= memcmp(&a->seq[s].sum, &b->seq[s].sum, sizeof(double)) == 0 && a->seq[s].n == b->seq[s].n;
    CHECK(seq_same, "%s: log-probs differ", what);
    CHECK(memcmp(&a->loss, &b->loss, sizeof(double)) == 0, "%s: loss %.17g vs %.17g", what, a->loss, b->loss);
    size_t at = n;
    for (size_t e = 0; e < n && at == n; e++)
        if (memcmp(&a->grads[e], &b->grads[e], sizeof(float))) at = e;
    CHECK(at == n, "%s: gradients differ first at element %zu (%.9g vs %.9g)", what, at, at < n ? a->grads[at] : 0,
          at < n ? b->grads[at] : 0);
}

/* ---- model memory against plan.c ---- */

/* recompute_layers of model_create_ex for a test's "recompute on / off" */
#define RC_LAYERS(on) ((on) ? MODEL_RECOMPUTE_ALL : 0)

/* bytes a fresh model of one slot for max_tokens tokens holds on backend be (made in the backend's current
 * precision: in the bf16 mode with bf16 activation storage); *act16 (may be NULL) says whether it stores them */
static inline size_t fixture_model_bytes(const ModelConfig *mc, const Backend *be, size_t max_tokens,
                                         int recompute_layers, bool *act16) {
    size_t before = be->bytes_in_use();
    Model *m = model_create_ex(mc, be, max_tokens, NULL, 1, recompute_layers);
    size_t held = be->bytes_in_use() - before;
    if (act16) *act16 = m->act16;
    model_free(m);
    return held;
}
/* what plan_memory plans for that model on one rank with n_mb micro-batches per step (one stage: one slot):
 * weights, gradients, activations and the RoPE tables (other, without ZeRO-2), not the optimizer's state, which
 * is not the model's; the whole plan in *mp (may be NULL) */
static inline size_t fixture_planned_model_bytes(const ModelConfig *mc, size_t max_tokens, int n_mb,
                                                 int recompute_layers, bool bf16, MemPlan *mp) {
    PlanLayout pl = {*mc, 1, 1, 1, 0, 0, 0, 0, max_tokens, n_mb, recompute_layers, bf16, false, false, false,
                     false, 0, 0, 0, 0, false, false, false, false};
    MemPlan p = plan_memory(&pl);
    if (mp) *mp = p;
    return p.weights + p.grads + p.activations + p.other;
}

/* ---- the trainer side ---- */

/* the fixture's run.yaml, its checkpoint.dir moved to dir/ckpt_sub */
static inline Config *fixture_config(const char *dir, const char *ckpt_sub) {
    char *p = fixture_path("tiny-a/run.yaml");
    Config *c = config_load(p);
    free(p);
    free(c->ckpt_dir);
    c->ckpt_dir = sd_path_join(dir, ckpt_sub);
    return c;
}

/* a checkpoint.dir's metrics.jsonl, a JSON array of its lines */
static inline cJSON *read_metrics(const char *ckpt_dir) {
    char *p = sd_path_join(ckpt_dir, "metrics.jsonl");
    char *text = sd_read_file(p, NULL);
    cJSON *arr = cJSON_CreateArray();
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        cJSON_AddItemToArray(arr, cJSON_Parse(line));
    free(text);
    free(p);
    return arr;
}

/* metrics (read_metrics) of a run of run.yaml: 2 lines, their loss and grad norm those of expected.json's
 * "steps", 1e-5 relative */
static inline void check_fixture_steps(const cJSON *met, const cJSON *exp) {
    CHECK(cJSON_GetArraySize(met) == 2, "metrics.jsonl has %d lines", cJSON_GetArraySize(met));
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(exp, "steps");
    for (int k = 0; k < 2 && k < cJSON_GetArraySize(met); k++) {
        const cJSON *g = cJSON_GetArrayItem(met, k), *e = cJSON_GetArrayItem(steps, k);
        for (int q = 0; q < 2; q++) {
            const char *key = q ? "grad_norm" : "loss";
            double got = jnum(g, key), want = jnum(e, key);
            CHECK(fabs(got - want) <= 1e-5 * fabs(want), "step %d %s %.10g vs %.10g", k + 1, key, got, want);
        }
    }
}

/* the parameters of a checkpoint (step_dir) against a safetensors file of the fixture (ref_rel): 1e-4 absolute,
 * except at most 1 in 2000 elements (at least 5) within 2.5e-3; prints the worst after tag. offset (NULL: none)
 * gives, per tensor name, what the checkpoint's values carry beyond the reference's (Gemma 2's gains: 1). */
static inline void compare_params_offset(const char *step_dir, const char *ref_rel, const char *tag,
                                         double (*offset)(const char *name)) {
    char *rp = fixture_path(ref_rel);
    StDir *ref = st_open_file(rp);
    CkptReader *r = ckpt_open(step_dir);
    double worst = 0;
    size_t beyond = 0, total = 0;
    for (int i = 0; i < ref->ntensors; i++) {
        const StTensor *t = &ref->tensors[i];
        float *want = sd_alloc(t->numel * 4, "ref"), *got = sd_alloc(t->numel * 4, "got");
        st_read_f32(ref, t, want);
        int64_t off[2] = {0, 0}, cnt[2] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0};
        ckpt_read(r, "param", t->name, t->ndim, off, cnt, got);
        double o = offset ? offset(t->name) : 0.0;
        for (size_t e = 0; e < t->numel; e++) {
            double d = fabs((double)got[e] - o - want[e]);
            worst = fmax(worst, d);
            total++;
            if (d > 1e-4) {
                beyond++;
                CHECK(d <= 2.5e-3, "%s: %s[%zu] off by %.3g", ref_rel, t->name, e, d);
            }
        }
        free(want);
        free(got);
    }
    size_t allowed = total / 2000 > 5 ? total / 2000 : 5;
    printf("%s%s: max abs diff %.3g, %zu of %zu elements beyond 1e-4\n", tag, ref_rel, worst, beyond, total);
    CHECK(beyond <= allowed, "%s: %zu elements beyond 1e-4 (allowed %zu)", ref_rel, beyond, allowed);
    ckpt_close(r);
    st_close(ref);
    free(rp);
}
static inline void compare_params(const char *step_dir, const char *ref_rel, const char *tag) {
    compare_params_offset(step_dir, ref_rel, tag, NULL);
}

/* bitwise equality of every dataset (param, exp_avg, exp_avg_sq) of two checkpoints of m's model; names what
 * differs on stderr */
static inline int same_checkpoint(const char *a, const char *b, const Model *m) {
    CkptReader *ra = ckpt_open(a), *rb = ckpt_open(b);
    const char *groups[3] = {"param", "exp_avg", "exp_avg_sq"};
    int same = 1;
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < m->nspecs; i++) {
            const ParamSpec *p = &m->specs[i];
            float *x = sd_alloc(p->numel * 4, "a"), *y = sd_alloc(p->numel * 4, "b");
            ckpt_read(ra, groups[g], p->name, p->ndim, p->off, p->shape_loc, x);
            ckpt_read(rb, groups[g], p->name, p->ndim, p->off, p->shape_loc, y);
            if (memcmp(x, y, p->numel * 4)) {
                fprintf(stderr, "  %s/%s differs\n", groups[g], p->name);
                same = 0;
            }
            free(x);
            free(y);
        }
    ckpt_close(ra);
    ckpt_close(rb);
    return same;
}
#endif
