/* test_recompute.c — activation recomputation (train.recompute, model_create_ex) on the tiny-a fixture (2 layers),
 * of every layer and (train.recompute_layers: 1) of the first layer only, the second keeping its intermediates:
 *   1. one micro-batch, one slot: log-probs, loss and every gradient bit for bit those of recompute off, on the
 *      CPU backend and on the strict one (backend_cpu_strict: no host access to backend memory), and within the
 *      fixture README's tolerances of the HF float64 reference.
 *   2. three micro-batches in three slots, every forward before any backward (1F1B's warm-up keeps that many in
 *      flight), so each backward finds the shared working area and activation scratch overwritten by other slots:
 *      bit for bit again, and bit for bit the same micro-batches run one at a time (fixture_one_at_a_time).
 *   3. memory: the model's backend allocation equals plan_memory's weights + gradients + activations + RoPE tables
 *      with recompute on and off, and recompute allocates fewer activation bytes, for the trainer's fixture
 *      config (2 x 2 pairs x 256 tokens per micro-batch) and a 4-slot model.
 *   4. the trainer (train_run on the strict backend, train.recompute: true) on the fixture's run.yaml: the
 *      checkpoint after step 2 equals the CPU backend's run without recompute bit for bit.
 *   5. train.recompute_activation (ModelOpts.recompute_act: the MLP's hidden state remade in the backward): bit for
 *      bit the model that keeps it, in fp32 and in bf16 (autocast storage), without recompute and recomputing the
 *      first layer, three slots in flight, on the CPU and the strict backend; its allocation equals plan_memory's
 *      and is the hidden state of the layers that keep intermediates (and of the working area) smaller, less the
 *      one shared buffer; and the trainer with it (train.recompute_activation: true) on the strict backend: the
 *      checkpoint after step 2 bit for bit the run without. The same for train.recompute_norm (ModelOpts
 *      .recompute_norm: ln1 and ln2 remade in the backward; their two buffers per layer for one shared one) and
 *      for both together. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "comm.h"
#include "config.h"
#include "fixture_common.h"
#include "model.h"
#include "pairs.h"
#include "test_util.h"
#include "train.h"

/* tiny-a's initial weights (as fixture_model) with the activation policy chosen */
static Model *load_model(const ModelConfig *mc, const Backend *be, size_t max_tokens, int nslots, int rc) {
    char *mdir = fixture_path("tiny-a/model");
    Model *m = model_create_ex(mc, be, max_tokens, NULL, nslots, rc);
    model_load_hf(m, mdir);
    free(mdir);
    return m;
}

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};

/* recompute_layers of the runs: every layer, the first only */
static const int RCS[2] = {MODEL_RECOMPUTE_ALL, 1};

/* ---- 1. one micro-batch ---- */
static void one_slot_checks(const cJSON *exp, const ModelConfig *mc, const PairSet *ps, int rc) {
    Model *m0 = load_model(mc, backend_cpu(), 256, 1, 0), *m1 = load_model(mc, backend_cpu(), 256, 1, rc);
    Model *ms = load_model(mc, backend_cpu_strict(), 256, 1, rc);
    CHECK(m1->recompute && m1->work && !m0->work, "the recompute flag and working area");
    CHECK(m1->recompute_layers == (rc < mc->num_hidden_layers ? rc : mc->num_hidden_layers) &&
              m0->recompute_layers == 0, "recompute_layers %d for %d asked", m1->recompute_layers, rc);
    printf("recompute of %d of %d layers\n", m1->recompute_layers, mc->num_hidden_layers);
    FixtureResult r0 = fixture_run(m0, ps, SIMPO), r1 = fixture_run(m1, ps, SIMPO), rs = fixture_run(ms, ps, SIMPO);
    fixture_check_same(&r0, &r1, m0->nparams, "recompute vs saved activations (CPU)");
    fixture_check_same(&r0, &rs, m0->nparams, "recompute on the strict backend vs saved activations (CPU)");
    check_fixture_logprobs(exp, r1.seq, "recompute ");
    check_fixture_grads(m1, r1.grads);
    /* the same model again: the working area holds the last run's layer 0, nothing that leaks into this one */
    FixtureResult r2 = fixture_run(m1, ps, SIMPO);
    fixture_check_same(&r0, &r2, m0->nparams, "recompute, second run");
    free(r0.grads), free(r1.grads), free(r2.grads), free(rs.grads);
    model_free(m0), model_free(m1), model_free(ms);
}

/* ---- 2. three slots in flight ---- */
static void three_slot_checks(const ModelConfig *mc, const PairSet *ps, int rc) {
    Model *m0 = load_model(mc, backend_cpu(), 256, 3, 0), *m1 = load_model(mc, backend_cpu(), 256, 3, rc);
    Model *ms = load_model(mc, backend_cpu_strict(), 256, 3, rc);
    FixtureResult r0 = fixture_run_three_in_flight(m0, ps), r1 = fixture_run_three_in_flight(m1, ps);
    FixtureResult rs = fixture_run_three_in_flight(ms, ps);
    fixture_check_same(&r0, &r1, m0->nparams, "3 slots in flight: recompute vs saved activations");
    fixture_check_same(&r0, &rs, m0->nparams, "3 slots in flight: recompute (strict) vs saved activations");
    /* against the same micro-batches one at a time: the slots' shared scratch holds nothing a backward needs */
    FixtureResult q0 = fixture_run_one_at_a_time(m0, ps), q1 = fixture_run_one_at_a_time(m1, ps);
    fixture_check_same(&q0, &r0, m0->nparams, "3 slots in flight vs one at a time (saved activations)");
    fixture_check_same(&q1, &r1, m1->nparams, "3 slots in flight vs one at a time (recompute)");
    fixture_check_same(&q0, &q1, m0->nparams, "one at a time: recompute vs saved activations");
    free(r0.grads), free(r1.grads), free(rs.grads), free(q0.grads), free(q1.grads);
    /* the same under prefix sharing: attention's rows in the shared scratch (over dg, du, dh), the maps per slot */
    r0 = fixture_run_three_in_flight_ex(m0, ps, FX_SHARE), r1 = fixture_run_three_in_flight_ex(m1, ps, FX_SHARE);
    rs = fixture_run_three_in_flight_ex(ms, ps, FX_SHARE);
    q0 = fixture_run_one_at_a_time_ex(m0, ps, true);
    fixture_check_same(&r0, &r1, m0->nparams, "prefix sharing, 3 slots in flight: recompute vs saved activations");
    fixture_check_same(&r0, &rs, m0->nparams, "prefix sharing, 3 slots in flight: strict recompute vs saved");
    fixture_check_same(&q0, &r0, m0->nparams, "prefix sharing: 3 slots in flight vs one at a time");
    free(r0.grads), free(r1.grads), free(rs.grads), free(q0.grads);
    model_free(m0), model_free(m1), model_free(ms);
}

/* ---- 3. memory ---- */

/* backend bytes a model of nslots slots for max_tokens tokens holds, against plan_memory with n_mb micro-batches
 * (one stage: slots = min(1, n_mb), so n_mb = 1 plans the 1-slot model); returns the activation bytes planned */
static size_t check_alloc(const ModelConfig *mc, size_t max_tokens, int recompute) {
    size_t held = fixture_model_bytes(mc, backend_cpu_strict(), max_tokens, recompute, NULL);
    MemPlan mp;
    size_t want = fixture_planned_model_bytes(mc, max_tokens, 3, recompute, false, &mp);
    CHECK(held == want, "recompute_layers %d, %zu tokens: allocated %zu bytes, planned %zu", recompute, max_tokens,
          held, want);
    CHECK(mp.slots == 1, "one stage plans one slot (%d)", mp.slots);
    CHECK(recompute ? mp.act_work > 0 : mp.act_work == 0, "working area planned only with recompute");
    return mp.activations;
}

static void memory_checks(const ModelConfig *mc) {
    /* the trainer's fixture config: 2 pairs per micro-batch x 2 sequences x max_length 256 */
    size_t N = 2 * 2 * 256;
    size_t off = check_alloc(mc, N, 0), on = check_alloc(mc, N, MODEL_RECOMPUTE_ALL), half = check_alloc(mc, N, 1);
    printf("fixture config (%zu tokens, 1 slot): activations %zu bytes saved, %zu with recompute (%.1f%%), %zu "
           "recomputing the first layer\n", N, off, on, 100.0 * (double)on / (double)off, half);
    CHECK(on < off, "recompute allocates %zu activation bytes, %zu without", on, off);
    /* two layers, one slot: recomputing one drops one layer's intermediates from the slot and adds the working
     * area, one layer's intermediates: the same bytes as no recompute (more slots below make the difference) */
    CHECK(half == off, "recomputing 1 of 2 layers with one slot: %zu activation bytes, none: %zu", half, off);
    CHECK(check_alloc(mc, N, 5) == on, "recompute_layers beyond the layer count recomputes them all");
    /* a token count that is no multiple of 16: the model sizes for the next one (model_arena_tokens: aligned
     * views), and so does the plan */
    CHECK(model_arena_tokens(1021) == 1024 && model_arena_tokens(1024) == 1024 && model_arena_tokens(0) == 16,
          "model_arena_tokens rounds up to a multiple of 16");
    CHECK(check_alloc(mc, 1021, 0) == off && check_alloc(mc, 1021, 1) == half,
          "1021 tokens: the activations of 1024");

    /* more slots: the saved inputs grow with them, the working area does not */
    const Backend *be = backend_cpu_strict();
    size_t b0 = be->bytes_in_use();
    Model *m0 = model_create_ex(mc, be, N, NULL, 4, 0);
    size_t off4 = be->bytes_in_use() - b0;
    Model *m1 = model_create_ex(mc, be, N, NULL, 4, MODEL_RECOMPUTE_ALL);
    size_t on4 = be->bytes_in_use() - b0 - off4;
    Model *mh = model_create_ex(mc, be, N, NULL, 4, 1);
    size_t half4 = be->bytes_in_use() - b0 - off4 - on4;
    model_free(m0), model_free(m1), model_free(mh);
    PlanLayout pl = {*mc, 1, 1, 1, 0, 0, 0, 0, N, 3, MODEL_RECOMPUTE_ALL, false, false, false, false, false, 0, 0, 0, 0, false, false, false, false};
    MemPlan mp = plan_memory(&pl);
    /* 4 slots save 3 more than one: each slot without the per-layer intermediates, the working area once */
    CHECK(off4 - on4 == 4 * (off - on) + 3 * mp.act_work, "4 slots: %zu bytes without, %zu with recompute", off4, on4);
    /* recomputing one of two layers: each slot keeps one layer's intermediates (one working area's worth) more */
    CHECK(half4 == on4 + 4 * mp.act_work, "4 slots, 1 of 2 layers recomputed: %zu bytes, all: %zu, one layer %zu",
          half4, on4, mp.act_work);
    CHECK(half4 < off4, "4 slots: recomputing 1 of 2 layers saves memory (%zu vs %zu)", half4, off4);
    printf("4 slots: %zu bytes allocated without recompute, %zu with, %zu recomputing the first layer\n", off4, on4,
           half4);
}

/* ---- 5. train.recompute_activation ---- */
static Model *load_opts(const ModelConfig *mc, const Backend *be, int nslots, const ModelOpts *o) {
    char *mdir = fixture_path("tiny-a/model");
    Model *m = model_create_opts(mc, be, 256, NULL, nslots, o);
    model_load_hf(m, mdir);
    free(mdir);
    return m;
}
/* backend bytes of a one-slot model for 256 tokens with options o on the strict backend, checked against the plan */
static size_t act_rc_bytes(const ModelConfig *mc, const ModelOpts *o, bool bf16) {
    const Backend *be = backend_cpu_strict();
    size_t before = be->bytes_in_use();
    Model *m = model_create_opts(mc, be, 256, NULL, 1, o);
    size_t held = be->bytes_in_use() - before;
    model_free(m);
    PlanLayout pl = {*mc, 1, 1, 1, 0, 0, 0, 0, 256, 1, o->recompute_layers, bf16, false, false, bf16 && o->autocast16,
                     o->recompute_act, 0, 0, o->recompute_norm, 0, false, false, false, false};
    MemPlan p = plan_memory(&pl);
    size_t planned = p.weights + p.grads + p.activations + p.other;
    CHECK(held == planned, "recompute_act %d, recompute_norm %d, recompute_layers %d, bf16 %d: allocated %zu bytes, "
          "planned %zu", o->recompute_act, o->recompute_norm, o->recompute_layers, bf16, held, planned);
    return held;
}
static void act_rc_checks(const ModelConfig *mc, const PairSet *ps) {
    const Backend *cpu = backend_cpu(), *strict = backend_cpu_strict();
    const size_t L = (size_t)mc->num_hidden_layers, FF = (size_t)mc->intermediate_size, C = (size_t)mc->hidden_size;
    static const char *const kinds[4] = {"", "recompute_activation", "recompute_norm", "recompute_activation+norm"};
    for (int kind = 1; kind < 4; kind++) /* bit 1: the activation, bit 2: the norms */
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int rc = 0; rc < 2; rc++) {
            cpu->set_matmul_bf16(bf16), strict->set_matmul_bf16(bf16);
            bool act = kind & 1, norm = kind & 2;
            ModelOpts keep = {.recompute_layers = rc, .autocast16 = true},
                      drop = {.recompute_layers = rc, .autocast16 = true, .recompute_act = act, .recompute_norm = norm};
            Model *m0 = load_opts(mc, cpu, 3, &keep), *m1 = load_opts(mc, cpu, 3, &drop);
            Model *ms = load_opts(mc, strict, 3, &drop);
            CHECK(m1->act_rc == act && m1->norm_rc == norm && !m0->act_rc && !m0->norm_rc &&
                      m1->act16 == (bool)bf16 && m1->proj16 == (bool)bf16,
                  "the model flags (bf16 %d)", bf16);
            char what[128];
            snprintf(what, sizeof what, "%s (%s, recompute_layers %d)", kinds[kind], bf16 ? "bf16" : "fp32", rc);
            FixtureResult r0 = fixture_run_three_in_flight(m0, ps), r1 = fixture_run_three_in_flight(m1, ps);
            FixtureResult rs = fixture_run_three_in_flight(ms, ps);
            fixture_check_same(&r0, &r1, m0->nparams, what);
            fixture_check_same(&r0, &rs, m0->nparams, what);
            free(r0.grads), free(r1.grads), free(rs.grads);
            model_free(m0), model_free(m1), model_free(ms);
            /* memory: h (FF floats per token, FF / 2 in bf16) of each layer keeping intermediates and of the working
             * area, less the shared buffer of one; ln1 and ln2 (C floats per token each, C / 2 in bf16) likewise,
             * less the one shared buffer of one of them */
            size_t with = act_rc_bytes(mc, &keep, bf16), without = act_rc_bytes(mc, &drop, bf16);
            size_t h = 256 * (bf16 ? FF / 2 : FF) * sizeof(float), ln = 256 * (bf16 ? C / 2 : C) * sizeof(float);
            size_t layers = L - (size_t)rc + (rc ? 1 : 0);
            size_t want = (act ? (layers - 1) * h : 0) + (norm ? (2 * layers - 1) * ln : 0);
            CHECK(with - without == want, "%s: %zu bytes keeping everything, %zu without (expected %zu less)", what,
                  with, without, want);
            printf("%s: bitwise the run that keeps them; %zu bytes allocated, %zu keeping them\n", what, without,
                   with);
        }
    cpu->set_matmul_bf16(false), strict->set_matmul_bf16(false);
}

/* ---- 4. the trainer ---- */
static char tmpdir[64];

static void trainer_checks(const ModelConfig *mc) {
    TrainOptions opt = {.quiet = 1};
    setenv("SIMPO_BACKEND", "cpu_strict", 1);
    Config *c = fixture_config(tmpdir, "recompute");
    c->recompute = RECOMPUTE_ON;
    CHECK(train_run(c, &opt) == 0, "train_run with recompute on the strict backend failed");
    CHECK(backend_cpu_strict()->bytes_in_use() == 0, "strict backend memory left after train_run");
    Config *c1 = fixture_config(tmpdir, "recompute1");
    c1->recompute = RECOMPUTE_ON, c1->recompute_layers = 1;
    CHECK(config_recompute_layers(c1) == 1 && config_recompute_layers(c) == INT_MAX, "config_recompute_layers");
    CHECK(train_run(c1, &opt) == 0, "train_run recomputing one layer on the strict backend failed");
    Config *c2 = fixture_config(tmpdir, "recompute_act");
    CHECK(!c2->recompute_activation, "train.recompute_activation defaults to false");
    c2->recompute_activation = true;
    CHECK(train_run(c2, &opt) == 0, "train_run with train.recompute_activation on the strict backend failed");
    Config *c3 = fixture_config(tmpdir, "recompute_norm");
    CHECK(!c3->recompute_norm, "train.recompute_norm defaults to false");
    c3->recompute_norm = true;
    CHECK(train_run(c3, &opt) == 0, "train_run with train.recompute_norm on the strict backend failed");
    setenv("SIMPO_BACKEND", "cpu", 1);
    Config *cc = fixture_config(tmpdir, "saved");
    CHECK(cc->recompute == RECOMPUTE_AUTO, "train.recompute defaults to auto");
    cc->recompute = RECOMPUTE_OFF; /* the reference: every layer's activations kept */
    CHECK(train_run(cc, &opt) == 0, "train_run without recompute failed");
    unsetenv("SIMPO_BACKEND");
    char *a = sd_path_join(c->ckpt_dir, "step-00000002"), *b = sd_path_join(cc->ckpt_dir, "step-00000002");
    char *a1 = sd_path_join(c1->ckpt_dir, "step-00000002");
    Model *m = model_create(mc, backend_cpu(), 1, NULL, 1); /* the layout same_checkpoint reads */
    CHECK(same_checkpoint(a, b, m), "the recompute run's checkpoint differs from the saved-activations run's");
    CHECK(same_checkpoint(a1, b, m), "the run recomputing one layer differs from the saved-activations run");
    char *a2 = sd_path_join(c2->ckpt_dir, "step-00000002");
    CHECK(same_checkpoint(a2, b, m), "the run with train.recompute_activation differs from the run without");
    free(a2);
    char *a3 = sd_path_join(c3->ckpt_dir, "step-00000002");
    CHECK(same_checkpoint(a3, b, m), "the run with train.recompute_norm differs from the run without");
    free(a3);
    config_free(c3);
    compare_params(a, "tiny-a/step2.safetensors", "recompute ");
    model_free(m);
    free(a);
    free(a1);
    free(b);
    config_free(c1);
    config_free(c2);
    config_free(c);
    config_free(cc);
}

int main(int argc, char **argv) {
    cJSON *exp = load_json("tiny-a/expected.json");
    ModelConfig mc = fixture_model_config();
    CHECK(mc.num_hidden_layers >= 2, "tiny-a has %d layers: recompute needs >= 2 to matter", mc.num_hidden_layers);
    PairSet *ps = fixture_pairs(&mc);
    for (int i = 0; i < 2; i++) {
        one_slot_checks(exp, &mc, ps, RCS[i]);
        three_slot_checks(&mc, ps, RCS[i]);
    }
    memory_checks(&mc);
    act_rc_checks(&mc, ps);
    comm_init(&argc, &argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sd_recompute_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    trainer_checks(&mc);
    fixture_remove_tmpdir(tmpdir);
    comm_finalize();
    pairs_free(ps);
    cJSON_Delete(exp);
    TEST_END();
}
