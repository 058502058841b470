/* test_tiny_a.c — the whole model against the Hugging Face float64 fixture tiny-a (tests/fixtures/README.md):
 * per-pair log-probs, SimPO loss and metrics at the initial weights, every parameter gradient, and the loss and
 * grad norm of simpo_hinge, dpo and simpo_sft. Tolerances are the fixture README's: log-probs and losses 1e-5
 * relative; gradients 1e-4 of the tensor's largest magnitude (the checks are fixture_common.h's). Then the same
 * with each pair's prompt shared by its two sequences (prefix sharing), and with the sparse embedding gradient
 * (bitwise the dense model). */
#include <cjson/cJSON.h>
#include <math.h>
#include "fixture_common.h"
#include "model.h"
#include "pairs.h"
#include "test_util.h"

static double grad_norm(const Model *m) { return sqrt(model_grad_sumsq(m)); } /* one rank: every slice is whole */

/* model_grads_begin / model_grads_end (no zeroing pass) over stale gradients (NaN): three micro-batches in
 * flight accumulate the gradients fixture_three_in_flight (zeroed first) gives, bit for bit up to a zero's sign */
static void check_grads_begin(Model *m, const PairSet *ps) {
    SeqLogp seq[12];
    fixture_three_in_flight(m, ps, seq);
    float *want = fixture_host_grads(m);
    for (size_t i = 0; i < m->nparams; i++) m->grads[i] = NAN;
    fixture_three_in_flight_ex(m, ps, seq, FX_GRADS_BEGIN);
    size_t differ = 0;
    for (size_t i = 0; i < m->nparams; i++) differ += !(m->grads[i] == want[i]);
    CHECK(differ == 0, "model_grads_begin over NaN gradients: %zu of %zu differ from the zeroed run", differ,
          m->nparams);
    free(want);
}

int main(void) {
    cJSON *exp = load_json("tiny-a/expected.json");
    ModelConfig mc = fixture_model_config();
    Model *m = fixture_model(&mc, backend_cpu());
    PairSet *ps = fixture_pairs(&mc);
    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    SeqLogp seq[12];
    double met[6];
    double loss = fixture_loss_and_grads(m, ps, simpo, seq, met);

    check_fixture_logprobs(exp, seq, "");             /* per-pair log-probs */
    check_fixture_step1(exp, loss, met, grad_norm(m)); /* SimPO loss, metrics and grad norm at step 1 */
    check_fixture_grads(m, m->grads);                  /* every gradient tensor */

    /* other objectives: loss and grad norm at the initial weights */
    for (int k = 0; k < 3; k++) {
        double l = fixture_loss_and_grads(m, ps, fixture_objectives[k].lp, seq, met);
        check_fixture_other(exp, fixture_objectives[k].name, l, grad_norm(m));
    }
    /* prefix sharing (pairs.h): each pair's prompt through the layers once, the same numbers within the fixture's
     * tolerances; fewer tokens in the layers' layout */
    loss = fixture_loss_and_grads_ex(m, ps, simpo, seq, met, true);
    check_fixture_logprobs(exp, seq, "prefix sharing: ");
    check_fixture_step1(exp, loss, met, grad_norm(m));
    check_fixture_grads(m, m->grads);
    double l = fixture_loss_and_grads_ex(m, ps, fixture_objectives[1].lp, seq, met, true);
    check_fixture_other(exp, fixture_objectives[1].name, l, grad_norm(m));
    model_free(m);
    /* three slots in flight: a model with three */
    ModelOpts o = {.autocast16 = true};
    m = model_create_opts(&mc, backend_cpu(), 256, NULL, 3, &o);
    char *mdir = fixture_path("tiny-a/model");
    model_load_hf(m, mdir);
    free(mdir);
    check_grads_begin(m, ps);
    model_free(m);
    /* the sparse embedding gradient (model_enable_sparse_embed): the embedding's gradient held for the micro-batch's
     * rows only, with and without prefix sharing, on the CPU and the strict backend (which checks every access to
     * the held rows and the renamed ids): the log-probs, loss and every gradient bitwise the dense model's, the
     * gradient norm within double rounding of it (the held rows' squares summed in their order) */
    const Backend *bes[2] = {backend_cpu(), backend_cpu_strict()};
    for (int b = 0; b < 2; b++)
        for (int share = 0; share < 2; share++) {
            Model *d = fixture_model(&mc, bes[b]), *sp = fixture_model(&mc, bes[b]);
            fixture_sparse_embed(sp, ps, share);
            CHECK(sp->sp.grad && sp->grads_from == sp->specs[0].numel && sp->sp.held > 0 &&
                      sp->sp.held < (size_t)mc.vocab_size,
                  "sparse embedding gradient: %zu of %d rows held", sp->sp.held, mc.vocab_size);
            FixtureResult rd = share ? fixture_run_shared(d, ps, simpo) : fixture_run(d, ps, simpo),
                          rs = share ? fixture_run_shared(sp, ps, simpo) : fixture_run(sp, ps, simpo);
            char what[96];
            snprintf(what, sizeof what, "%s, %s: sparse embedding gradient vs dense", bes[b]->name,
                     share ? "prefix sharing" : "no sharing");
            fixture_check_same(&rs, &rd, d->nparams, what);
            double nd = grad_norm(d), ns = grad_norm(sp);
            CHECK(fabs(nd - ns) <= 1e-13 * nd, "%s: gradient norm %.17g vs %.17g", what, ns, nd);
            free(rd.grads), free(rs.grads);
            model_free(d), model_free(sp);
        }
    pairs_free(ps);
    cJSON_Delete(exp);
    TEST_END();
}
