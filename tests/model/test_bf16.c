/* test_bf16.c — the bf16 mode (model.dtype: bf16; backend.h set_matmul_bf16) of the CPU backend, the reference of
 * the GPU's bf16 path, against the Hugging Face float64 fixture tiny-a: per-sequence log-probs, the SimPO loss and
 * metrics, the grad norm and every gradient tensor, within bf16 tolerances; plus: the bf16 numbers really differ
 * from fp32 ones (the mode is on), and switching it off restores the fp32 results bit for bit.
 *
 * Tolerances and their reasons: fixture_bf16.h (and docs/gpu.md).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "fixture_bf16.h"
#include "model.h"
#include "pairs.h"
#include "test_util.h"

typedef struct {
    SeqLogp seq[12];
    double loss, met[6], gnorm;
    float *grads;
} Run;

static void run(Model *m, const PairSet *ps, Run *r) {
    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    r->loss = fixture_loss_and_grads(m, ps, simpo, r->seq, r->met);
    r->gnorm = sqrt(model_grad_sumsq(m));
    r->grads = sd_alloc(m->nparams * sizeof(float), "grads");
    memcpy(r->grads, m->grads, m->nparams * sizeof(float));
}

int main(void) {
    const Backend *be = backend_cpu();
    cJSON *exp = load_json("tiny-a/expected.json");
    ModelConfig mc = fixture_model_config();
    Model *m = fixture_model(&mc, be);
    PairSet *ps = fixture_pairs(&mc);
    Run f32, b16, f32b;
    run(m, ps, &f32);
    be->set_matmul_bf16(true);
    run(m, ps, &b16);
    be->set_matmul_bf16(false);
    run(m, ps, &f32b);

    check_fixture_bf16(exp, m, b16.seq, b16.loss, b16.met, b16.gnorm, b16.grads, f32.seq, "");

    /* off again: fp32 bit for bit */
    int same = f32b.loss == f32.loss;
    for (int s = 0; s < 12; s++) same &= f32b.seq[s].sum == f32.seq[s].sum;
    CHECK(same && memcmp(f32b.grads, f32.grads, m->nparams * sizeof(float)) == 0,
          "set_matmul_bf16(false) restores the fp32 results bit for bit");

    free(f32.grads), free(b16.grads), free(f32b.grads);
    model_free(m);
    pairs_free(ps);
    cJSON_Delete(exp);
    TEST_END();
}
