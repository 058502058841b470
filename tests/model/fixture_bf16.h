/* fixture_bf16.h — the bf16 checks on the tiny-a fixture that test_bf16 (the CPU emulation, tests/model) and
 * test_cuda_model (the GPU, tests/gpu) share: log-probs, SimPO loss, metrics, grad norm and every gradient tensor of
 * a bf16 run against the Hugging Face float64 reference, within bf16 tolerances, and a check that they are further
 * from it than the fp32 run (so bf16 was really on).
 *
 * Tolerances (also in docs/gpu.md): bf16 keeps 8 significant bits, so rounding an operand moves it by at most u =
 * 2^-9 = 1.95e-3 relative. Each matmul output then moves by at most 2u relative to the sum of the magnitudes of its
 * terms, in practice far less (independent rounding errors partly cancel). Log-probs pass through ~16 rounded
 * matmuls in this 2-layer model (q, k, v, o, gate, up, down per layer, the LM head), so they get a bound of 4u =
 * 7.8e-3 relative (measured: 1.2e-3). A weight gradient dW = dY^T X is a sum over the tokens of products of two
 * factors that each went through up to ~8 rounded matmuls (dY through the backward ones), so it gets 2 x 8u =
 * 3.1e-2 of the tensor's largest element (measured: 1.6e-2). An RMSNorm gain's gradient is one sum over every token
 * of dy * x_hat, whose terms cancel (the sum is much smaller than its terms), so the same absolute error is a
 * larger share of it: 32u = 6.3e-2 (measured: 2.4e-2). The fp32 path meets 1e-5 / 1e-4 on the same data
 * (test_tiny_a), so a bf16 result that passes here is neither fp32 in disguise (checked below) nor broken: a wrong
 * transpose or a skipped layer misses these bounds by orders of magnitude. */
#ifndef SD_FIXTURE_BF16_H
#define SD_FIXTURE_BF16_H
#include "fixture_common.h"

#define U_BF16 (1.0 / 512.0) /* bf16 unit roundoff, 2^-9 */

/* b16: a bf16 run's log-probs, loss, metrics, grad norm and host gradients of model m; f32_seq: the fp32 run's
 * log-probs on the same weights; tag prefixes the printed worst errors; grads_rel: the
 * fixture's gradient file below SIMPO_FIXTURES */
static inline void check_fixture_bf16_at(const cJSON *exp, const Model *m, const SeqLogp b16_seq[12], double loss,
                                         const double met[6], double gnorm, const float *grads,
                                         const SeqLogp f32_seq[12], const char *tag, const char *grads_rel) {
    /* log-probs against the fixture */
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst = 0, worst32 = 0;
    for (int i = 0; i < 6; i++) {
        const cJSON *e = cJSON_GetArrayItem(pj, i);
        double want[2] = {jnum(e, "chosen_logp"), jnum(e, "rejected_logp")};
        for (int s = 0; s < 2; s++) {
            worst = fmax(worst, fabs(b16_seq[2 * i + s].sum - want[s]) / fabs(want[s]));
            worst32 = fmax(worst32, fabs(f32_seq[2 * i + s].sum - want[s]) / fabs(want[s]));
        }
    }
    printf("%sbf16 log-probs: worst relative error %.3g (fp32: %.3g; bound %.3g)\n", tag, worst, worst32, 4 * U_BF16);
    CHECK(worst <= 4 * U_BF16, "bf16 log-probs off by %.3g relative", worst);
    CHECK(worst > 10 * worst32, "bf16 log-probs (%.3g) no further from the fixture than fp32 (%.3g): is bf16 on?",
          worst, worst32);

    /* loss, metrics (the accuracy is a count: it must agree exactly) and grad norm */
    const cJSON *st1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(exp, "steps"), 0);
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics");
    printf("%sbf16 loss %.8g (fixture %.8g), grad norm %.8g (fixture %.8g)\n", tag, loss, jnum(st1, "loss"), gnorm,
           jnum(st1, "grad_norm"));
    CHECK(rel_ok(loss, jnum(st1, "loss"), 4 * U_BF16), "bf16 loss %.10g vs %.10g", loss, jnum(st1, "loss"));
    CHECK(rel_ok(gnorm, jnum(st1, "grad_norm"), 8 * U_BF16), "bf16 grad norm %.10g", gnorm);
    for (int k = 0; k < 6; k++) {
        double want = jnum(em, fixture_metric_names[k]);
        /* each reward within 4u of its own size; the margin is their difference, so its error is bounded by the
         * sizes of both terms, not by its own (which cancellation can make small: tiny-q3's -0.028 of two ~-7) */
        double scale = k == 2 ? fabs(jnum(em, "rewards/chosen")) + fabs(jnum(em, "rewards/rejected")) : fabs(want);
        CHECK(fabs(met[k] - want) <= 4 * U_BF16 * fmax(scale, 1e-3), "bf16 %s %.10g vs %.10g",
              fixture_metric_names[k], met[k], want);
    }

    /* every gradient tensor */
    char *gp = fixture_path(grads_rel);
    StDir *gd = st_open_file(gp);
    free(gp);
    double gworst = 0, gworst_gain = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        const StTensor *t = st_find(gd, p->name);
        CHECK(t != NULL, "gradient %s missing from the fixture", p->name);
        if (!t) continue;
        float *ref = sd_alloc(t->numel * sizeof(float), "ref");
        st_read_f32(gd, t, ref);
        double maxref;
        size_t at;
        double d = fixture_max_diff(grads + p->offset, ref, p->numel, &maxref, &at);
        bool gain = p->ndim == 1; /* RMSNorm gains, Qwen2's biases: a sum over every token, with cancellation */
        double bound = (gain ? 32 : 16) * U_BF16;
        if (gain) gworst_gain = fmax(gworst_gain, d / maxref);
        else gworst = fmax(gworst, d / maxref);
        CHECK(d <= bound * maxref, "bf16 grad %s: element %zu got %.8g want %.8g (max |ref| %.3g)", p->name, at,
              grads[p->offset + at], ref[at], maxref);
        free(ref);
    }
    st_close(gd);
    printf("%sbf16 gradients: worst per-tensor error %.3g of the tensor's max (bound %.3g); RMSNorm gains %.3g (bound "
           "%.3g)\n", tag, gworst, 16 * U_BF16, gworst_gain, 32 * U_BF16);

}
/* the same against tiny-a's gradients */
static inline void check_fixture_bf16(const cJSON *exp, const Model *m, const SeqLogp b16_seq[12], double loss,
                                      const double met[6], double gnorm, const float *grads,
                                      const SeqLogp f32_seq[12], const char *tag) {
    check_fixture_bf16_at(exp, m, b16_seq, loss, met, gnorm, grads, f32_seq, tag, "tiny-a/grads.safetensors");
}
#endif
