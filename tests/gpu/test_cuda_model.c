/* test_cuda_model.c — the whole model on the CUDA backend against the CPU backend and the Hugging Face float64
 * fixture tiny-a (tests/fixtures/README.md; the CPU path is tests/model/test_tiny_a.c): per-sequence log-probs,
 * SimPO loss and metrics, every parameter gradient and the grad norm, the loss and grad norm of simpo_hinge, dpo
 * and simpo_sft; then determinism (a second GPU forward + backward is bitwise identical) and no leaked device
 * memory after model_free. Without a CUDA device it prints "SKIPPED: no CUDA device" and exits 77.
 *
 * Tolerances: against the CPU backend, log-probs, losses, metrics and grad norms 1e-5 relative and each gradient
 * tensor 2e-5 of its largest magnitude (both are fp32 runs of the same formulas; per-op differences are ~1e-7
 * relative, see test_cuda_ops.c, and a 2-layer model compounds a few of them). Against the fixture, the fixture
 * README's bounds, as in test_tiny_a.c: 1e-5 relative for log-probs and losses, 1e-4 of the tensor's largest
 * magnitude for gradients. */
#include <cjson/cJSON.h>
#include <math.h>
#include "backend_cuda.h"
#include "config.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"
#include "safetensors.h"
#include "test_util.h"

static double jnum(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }
static int rel_ok(double got, double want, double rtol) { return fabs(got - want) <= rtol * fabs(want); }

typedef struct {
    SeqLogp seq[12];
    double loss, gnorm, met[6];
    float *grads; /* host copy [nparams] */
} Run;

/* loss over all 6 pairs in one micro-batch, forward + backward; fills r (grads downloaded to the host) */
static void run(Model *m, const PairSet *ps, LossParams lp, Run *r) {
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    MicroBatch *mb = microbatch_pack(ps, idx, 6);
    model_zero_grads(m);
    model_forward_logprobs(m, mb, r->seq);
    long chosen = 0;
    for (int i = 0; i < 6; i++) chosen += r->seq[2 * i].n;
    double dsum[12];
    r->loss = 0;
    for (int k = 0; k < 6; k++) r->met[k] = 0;
    for (int i = 0; i < 6; i++) {
        const Pair *p = mb->pairs[i];
        PairStats st = {r->seq[2 * i].sum, r->seq[2 * i + 1].sum, r->seq[2 * i].n, r->seq[2 * i + 1].n,
                        p->ref_chosen_logp, p->ref_rejected_logp};
        LossOut o;
        loss_pair(&lp, &st, 6, chosen, &o);
        r->loss += o.loss;
        dsum[2 * i] = o.d_sum_w;
        dsum[2 * i + 1] = o.d_sum_l;
        r->met[0] += o.reward_w / 6;
        r->met[1] += o.reward_l / 6;
        r->met[2] += (o.reward_w - o.reward_l) / 6;
        r->met[3] += (o.reward_w > o.reward_l) / 6.0;
        r->met[4] += o.logp_w / 6;
        r->met[5] += o.logp_l / 6;
    }
    model_backward(m, mb, dsum);
    microbatch_free(mb);
    r->gnorm = sqrt(model_grad_sumsq(m));
    if (!r->grads) r->grads = sd_alloc(m->nparams * sizeof(float), "host grads");
    m->be->download(r->grads, m->grads, m->nparams * sizeof(float));
}

static Model *load_model(const ModelConfig *mc, const Backend *be, const char *mdir) {
    Model *m = model_create(mc, be, 256, NULL, 1);
    model_load_hf(m, mdir);
    return m;
}

int main(void) {
    if (!cuda_device_available()) {
        printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    cuda_set_device_from_local_rank();
    const Backend *gpu = backend_cuda();
    printf("device: %s\n", cuda_device_name());
    size_t base = gpu->bytes_in_use();

    char *mdir = fixture_path("tiny-a/model"), *pairs = fixture_path("tiny-a/pairs.jsonl");
    char *ep = fixture_path("tiny-a/expected.json");
    char *text = sd_read_file(ep, NULL);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", ep);
        return 1;
    }
    cJSON *exp = cJSON_Parse(text);
    free(text);
    free(ep);
    ModelConfig mc = model_config_load(mdir);
    PairSet *ps = pairs_load_jsonl(pairs, mc.vocab_size);
    Model *mc_cpu = load_model(&mc, backend_cpu(), mdir), *mg = load_model(&mc, gpu, mdir);

    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    Run rc = {0}, rg = {0}, rg2 = {0};
    run(mc_cpu, ps, simpo, &rc);
    run(mg, ps, simpo, &rg);

    /* per-sequence log-probs: GPU vs CPU and vs the fixture */
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst_cpu = 0, worst_fix = 0;
    for (int s = 0; s < 12; s++) {
        const cJSON *e = cJSON_GetArrayItem(pj, s / 2);
        double want = jnum(e, s % 2 ? "rejected_logp" : "chosen_logp");
        CHECK(rg.seq[s].n == rc.seq[s].n, "sequence %d: %d response tokens on the GPU, %d on the CPU", s,
              rg.seq[s].n, rc.seq[s].n);
        worst_cpu = fmax(worst_cpu, fabs(rg.seq[s].sum - rc.seq[s].sum) / fabs(rc.seq[s].sum));
        worst_fix = fmax(worst_fix, fabs(rg.seq[s].sum - want) / fabs(want));
    }
    printf("log-probs: worst relative difference %.3g vs CPU, %.3g vs fixture\n", worst_cpu, worst_fix);
    CHECK(worst_cpu <= 1e-5, "log-probs differ from the CPU backend by %.3g relative", worst_cpu);
    CHECK(worst_fix <= 1e-5, "log-probs differ from the fixture by %.3g relative", worst_fix);

    /* loss, metrics, grad norm */
    const cJSON *st1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(exp, "steps"), 0);
    CHECK(rel_ok(rg.loss, rc.loss, 1e-5), "simpo loss %.10g vs CPU %.10g", rg.loss, rc.loss);
    CHECK(rel_ok(rg.loss, jnum(st1, "loss"), 1e-5), "simpo loss %.10g vs fixture %.10g", rg.loss, jnum(st1, "loss"));
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics");
    const char *names[6] = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                            "logps/chosen", "logps/rejected"};
    for (int k = 0; k < 6; k++) {
        CHECK(rel_ok(rg.met[k], rc.met[k], 1e-5), "%s %.10g vs CPU %.10g", names[k], rg.met[k], rc.met[k]);
        CHECK(rel_ok(rg.met[k], jnum(em, names[k]), 1e-5), "%s %.10g vs fixture %.10g", names[k], rg.met[k],
              jnum(em, names[k]));
    }
    CHECK(rel_ok(rg.gnorm, rc.gnorm, 1e-5), "grad norm %.10g vs CPU %.10g", rg.gnorm, rc.gnorm);
    CHECK(rel_ok(rg.gnorm, jnum(st1, "grad_norm"), 1e-5), "grad norm %.10g vs fixture %.10g", rg.gnorm,
          jnum(st1, "grad_norm"));

    /* every gradient tensor, vs CPU and vs the fixture */
    char *gp = fixture_path("tiny-a/grads.safetensors");
    StDir *gd = st_open_file(gp);
    free(gp);
    double worst_rel = 0;
    for (int i = 0; i < mg->nspecs; i++) {
        const ParamSpec *p = &mg->specs[i];
        const float *g = rg.grads + p->offset, *c = rc.grads + p->offset;
        double maxc = 0, dc = 0;
        size_t atc = 0;
        for (size_t e = 0; e < p->numel; e++) {
            maxc = fmax(maxc, fabs(c[e]));
            double d = fabs((double)g[e] - c[e]);
            if (d > dc || isnan(d)) dc = isnan(d) ? INFINITY : d, atc = e;
        }
        worst_rel = fmax(worst_rel, dc / fmax(maxc, 1e-30));
        CHECK(dc <= 2e-5 * maxc, "grad %s vs CPU: element %zu gpu %.8g cpu %.8g (max |cpu| %.3g)", p->name, atc,
              g[atc], c[atc], maxc);
        const StTensor *t = st_find(gd, p->name);
        CHECK(t != NULL, "gradient %s missing from the fixture", p->name);
        if (!t) continue;
        float *ref = sd_alloc(t->numel * sizeof(float), "ref");
        st_read_f32(gd, t, ref);
        double maxr = 0, dr = 0;
        size_t atr = 0;
        for (size_t e = 0; e < p->numel; e++) {
            maxr = fmax(maxr, fabs(ref[e]));
            double d = fabs((double)g[e] - ref[e]);
            if (d > dr || isnan(d)) dr = isnan(d) ? INFINITY : d, atr = e;
        }
        CHECK(dr <= 1e-4 * maxr, "grad %s vs fixture: element %zu gpu %.8g want %.8g (max |ref| %.3g)", p->name, atr,
              g[atr], ref[atr], maxr);
        free(ref);
    }
    printf("gradients: worst per-tensor difference vs CPU %.3g of the tensor's max\n", worst_rel);
    st_close(gd);

    /* determinism: the same forward + backward again, bitwise */
    run(mg, ps, simpo, &rg2);
    int same = 1;
    for (int s = 0; s < 12; s++) same &= rg2.seq[s].sum == rg.seq[s].sum;
    CHECK(same, "log-probs of a second GPU run are bitwise identical");
    CHECK(memcmp(rg2.grads, rg.grads, mg->nparams * sizeof(float)) == 0,
          "gradients of a second GPU run are bitwise identical");

    /* other objectives: loss and grad norm vs CPU and fixture */
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(exp, "other_losses");
    struct {
        const char *name;
        LossParams lp;
    } objs[3] = {
        {"simpo_hinge", {.type = LOSS_SIMPO_HINGE, .beta = 2.0, .gamma = 1.0}},
        {"dpo", {.type = LOSS_DPO, .beta = 0.1}},
        {"simpo_sft", {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0, .sft_weight = 0.5}},
    };
    for (int k = 0; k < 3; k++) {
        run(mc_cpu, ps, objs[k].lp, &rc);
        run(mg, ps, objs[k].lp, &rg);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(other, objs[k].name);
        CHECK(rel_ok(rg.loss, rc.loss, 1e-5), "%s loss %.10g vs CPU %.10g", objs[k].name, rg.loss, rc.loss);
        CHECK(rel_ok(rg.gnorm, rc.gnorm, 1e-5), "%s grad norm %.10g vs CPU %.10g", objs[k].name, rg.gnorm,
              rc.gnorm);
        CHECK(rel_ok(rg.loss, jnum(e, "loss"), 1e-5), "%s loss %.10g vs fixture %.10g", objs[k].name, rg.loss,
              jnum(e, "loss"));
        CHECK(rel_ok(rg.gnorm, jnum(e, "grad_norm"), 1e-5), "%s grad norm %.10g vs fixture %.10g", objs[k].name,
              rg.gnorm, jnum(e, "grad_norm"));
    }

    model_free(mg);
    model_free(mc_cpu);
    CHECK(gpu->bytes_in_use() == base, "device memory after model_free: %zu bytes held (expected %zu)",
          gpu->bytes_in_use(), base);
    free(rc.grads), free(rg.grads), free(rg2.grads);
    pairs_free(ps);
    cJSON_Delete(exp);
    free(mdir);
    free(pairs);
    TEST_END();
}
