/* test_bf16.c — the bf16 mode (model.dtype: bf16; backend.h set_matmul_bf16) of the CPU backend, the reference of
 * the GPU's bf16 path, against the Hugging Face float64 fixture tiny-a: per-sequence log-probs, the SimPO loss and
 * metrics, the grad norm and every gradient tensor, within bf16 tolerances; plus: the bf16 numbers really differ
 * from fp32 ones (the mode is on), and switching it off restores the fp32 results bit for bit.
 * bf16 activation storage (model.h act16): a model made in the bf16 mode keeps ln1, ln2 and h (and in the backward
 * the gate / up gradients) as bf16 and gives
 * bitwise the results of the model made in fp32 (fp32 storage, the same rounding inside its matmuls), with
 * exactly the planned bytes (plan.c) and the expected saving, with and without recompute; the same on the strict
 * backend (its bf16 ops check their 2-byte arguments); and for Gemma 2 (tiny-g2: GeGLU, sandwich norms).
 * bf16 compute weights (model.h model_enable_weights16): the same results bit for bit, the planned bytes, and a
 * stale copy never read (check_weights16).
 * Autocast storage (model.bf16_storage: autocast, ModelOpts.autocast16: the gate / up projections in bf16 as torch's
 * autocast keeps them): within the same bf16 bounds of the fixture, different from exact storage (the rounding is
 * really applied), bitwise the same with recompute and on the strict backend, the planned bytes and the expected
 * saving over exact storage; Gemma 2 (GeGLU on bf16 inputs) likewise against exact storage.
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

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};

typedef struct {
    Model *m;
    const PairSet *ps;
} RunArg;
static void run_forward(void *p) {
    RunArg *a = p;
    FixtureResult r = fixture_run(a->m, a->ps, SIMPO);
    free(r.grads);
}
/* every parameter of m times s (through the host), without model_weights_changed */
static void scale_params(Model *m, float s) {
    float *h = sd_alloc(m->nparams * sizeof(float), "params");
    m->be->download(h, m->params, m->nparams * sizeof(float));
    for (size_t e = 0; e < m->nparams; e++) h[e] *= s;
    m->be->upload(m->params, h, m->nparams * sizeof(float));
    free(h);
}

/* bf16 compute weights (model.h model_enable_weights16) on the bf16-storage model m, whose results without them
 * are want: exactly the planned bytes; bitwise the same results; after a parameter write announced by
 * model_weights_changed the stale copy is not read (the results are those of a refreshed copy); a write that is not
 * announced is caught by SIMPO_CHECK_WEIGHTS16 */
static void check_weights16(Model *m, const ModelConfig *mc, const PairSet *ps, const FixtureResult *want,
                            bool recompute, const char *what) {
    const Backend *be = m->be;
    size_t before = be->bytes_in_use();
    model_enable_weights16(m);
    size_t held = be->bytes_in_use() - before;
    PlanLayout pl = {*mc, 1, 1, 1, 0, 0, 0, 0, 256, 1, RC_LAYERS(recompute), true, true, false, false, false, 0, 0, 0, 0, false, false, false, false};
    size_t planned = plan_memory(&pl).weights16;
    CHECK(held == planned && held > 0, "%s: the bf16 weights take %zu bytes, planned %zu", what, held, planned);
    CHECK(!m->w16_fresh, "%s: a new bf16 weight copy is not read before its first refresh", what);
    setenv("SIMPO_CHECK_WEIGHTS16", "1", 1);
    model_refresh_weights16(m);
    FixtureResult r = fixture_run(m, ps, SIMPO);
    char lb[128];
    snprintf(lb, sizeof lb, "%s: bf16 compute weights vs rounding in every matmul", what);
    fixture_check_same(&r, want, m->nparams, lb);

    scale_params(m, 0.5f); /* exact in fp32 and bf16 */
    model_weights_changed(m);
    CHECK(!m->w16_fresh, "%s: model_weights_changed marks the copy stale", what);
    FixtureResult stale = fixture_run(m, ps, SIMPO);
    model_refresh_weights16(m);
    FixtureResult fresh = fixture_run(m, ps, SIMPO);
    snprintf(lb, sizeof lb, "%s: after a parameter change, refreshed copy vs none", what);
    fixture_check_same(&fresh, &stale, m->nparams, lb);
    CHECK(fresh.loss != want->loss, "%s: halving the parameters changes the loss", what);

    scale_params(m, 2.0f); /* not announced: the check must see the stale copy */
    RunArg arg = {m, ps};
    CHECK(expect_die(run_forward, &arg, "stale"), "%s: SIMPO_CHECK_WEIGHTS16 catches an unannounced write", what);
    model_weights_changed(m);
    unsetenv("SIMPO_CHECK_WEIGHTS16");
    free(r.grads), free(stale.grads), free(fresh.grads);
}

/* bf16 storage: a model made in the bf16 mode (act16) against the fp32-storage model m run in the bf16 mode (want) */
static void check_act16(const ModelConfig *mc, const Backend *be, const PairSet *ps, const FixtureResult *want,
                        size_t fp32_bytes, bool recompute, const char *what) {
    char *mdir = fixture_path("tiny-a/model");
    be->set_matmul_bf16(true);
    size_t before = be->bytes_in_use();
    Model *m = model_create_ex(mc, be, 256, NULL, 1, RC_LAYERS(recompute));
    size_t held = be->bytes_in_use() - before;
    model_load_hf(m, mdir);
    CHECK(m->act16, "%s: a model made in the bf16 mode stores bf16 activations", what);
    FixtureResult r = fixture_run(m, ps, SIMPO);
    char lb[96];
    snprintf(lb, sizeof lb, "%s: bf16 storage vs fp32 storage in the bf16 mode", what);
    fixture_check_same(&r, want, m->nparams, lb);
    size_t planned = fixture_planned_model_bytes(mc, 256, 1, RC_LAYERS(recompute), true, NULL);
    CHECK(held == planned, "%s: allocated %zu bytes, planned %zu", what, held, planned);
    /* ln1, ln2 (C each) and h (FF) at 2 bytes instead of 4, per token of every layer kept (one with recompute);
     * and in the shared scratch, the larger of the backward's layer gradients (dg, du at 2 bytes: 2 FF fewer
     * floats per token) and the LM-head chunk (R rows of logits plus, in bf16, their bf16 gradients); and the
     * final normed rows xf (shared) and the gathered rows hs (in the slot) at 2 bytes: C per token each */
    size_t layers = recompute ? 1 : (size_t)mc->num_hidden_layers;
    size_t C = (size_t)mc->hidden_size, FF = (size_t)mc->intermediate_size, HD = (size_t)mc->head_dim;
    size_t QD = (size_t)mc->num_attention_heads * HD, KD = (size_t)mc->num_key_value_heads * HD;
    size_t V = (size_t)mc->vocab_size, R = model_lmhead_chunk_rows((int)V, false) < 256 ? model_lmhead_chunk_rows((int)V, false) : 256;
    size_t lg32 = 256 * (2 * QD + 2 * KD + 3 * FF), lg16 = lg32 - 256 * FF, hd32 = R * (V + 4),
           hd16 = hd32 + (R * V + 1) / 2;
    size_t saved = layers * 256 * (2 * C + FF) * 2 + 4 * ((lg32 > hd32 ? lg32 : hd32) - (lg16 > hd16 ? lg16 : hd16)) +
                   2 * 256 * C * 2;
    CHECK(fp32_bytes - held == saved, "%s: bf16 storage saves %zu bytes, expected %zu", what, fp32_bytes - held,
          saved);
    check_weights16(m, mc, ps, want, recompute, what);
    be->set_matmul_bf16(false);
    free(r.grads);
    model_free(m);
    free(mdir);
}

/* Gemma 2 (GeGLU's bf16 output feeds the down projection before its sandwich norm): tiny-g2 made in the bf16 mode
 * against tiny-g2 made in fp32 and run in the bf16 mode, bitwise, with and without recompute */
static void check_act16_gemma2(const Backend *be) {
    char *mdir = fixture_path("tiny-g2/model"), *pp = fixture_path("tiny-g2/pairs.jsonl");
    ModelConfig mc = model_config_load(mdir);
    PairSet *ps = pairs_load_jsonl(pp, mc.vocab_size);
    for (int rc = 0; rc < 2; rc++) {
        Model *m32 = model_create_ex(&mc, be, 256, NULL, 1, RC_LAYERS(rc));
        model_load_hf(m32, mdir);
        be->set_matmul_bf16(true);
        Model *m16 = model_create_ex(&mc, be, 256, NULL, 1, RC_LAYERS(rc));
        model_load_hf(m16, mdir);
        CHECK(m16->act16 && !m32->act16, "Gemma 2: bf16 storage only in the model made in the bf16 mode");
        FixtureResult a = fixture_run(m32, ps, SIMPO), b = fixture_run(m16, ps, SIMPO);
        fixture_check_same(&b, &a, m16->nparams, rc ? "Gemma 2, recompute: bf16 vs fp32 storage"
                                                    : "Gemma 2: bf16 vs fp32 storage");
        model_enable_weights16(m16);
        model_refresh_weights16(m16);
        FixtureResult c = fixture_run(m16, ps, SIMPO);
        fixture_check_same(&c, &a, m16->nparams, "Gemma 2: bf16 compute weights");
        free(c.grads);
        be->set_matmul_bf16(false);
        free(a.grads), free(b.grads);
        model_free(m32), model_free(m16);
    }
    pairs_free(ps);
    free(mdir), free(pp);
}

/* autocast storage on tiny-a (be: the CPU or the strict backend): the fixture within bf16 bounds, and the other
 * properties of the header; exact: the exact-storage bf16 run on the same data; *out: this run (caller frees) */
static void check_autocast(const cJSON *exp, const ModelConfig *mc, const Backend *be, const PairSet *ps,
                           const FixtureResult *exact, const FixtureResult *f32, FixtureResult *out, const char *what) {
    char *mdir = fixture_path("tiny-a/model");
    be->set_matmul_bf16(true);
    FixtureResult r[2];
    size_t held[2], nparams = 0;
    for (int rc = 0; rc < 2; rc++) {
        ModelOpts o = {.recompute_layers = RC_LAYERS(rc), .autocast16 = true};
        size_t before = be->bytes_in_use();
        Model *m = model_create_opts(mc, be, 256, NULL, 1, &o);
        held[rc] = be->bytes_in_use() - before;
        model_load_hf(m, mdir);
        CHECK(m->proj16 && m->act16, "%s: autocast storage on", what);
        r[rc] = fixture_run(m, ps, SIMPO);
        nparams = m->nparams;
        /* the norms' backward writing d/dx in bf16 too (model.h norm_out16, backend.h rmsnorm_bwd_out16), the o and
         * down projections' backward reading it, instead of their conversion of the fp32 d/dx: bitwise the run
         * without it, with and without recompute and prefix sharing */
        CHECK(m->norm_out16, "%s: the norms' backward writes the bf16 d/dx", what);
        for (int shared = 0; shared < 2; shared++) {
            FixtureResult on = shared ? fixture_run_shared(m, ps, SIMPO) : r[rc], off;
            m->norm_out16 = false;
            off = shared ? fixture_run_shared(m, ps, SIMPO) : fixture_run(m, ps, SIMPO);
            m->norm_out16 = true;
            char lb[160];
            snprintf(lb, sizeof lb, "%s, recompute %d%s: the norms' bf16 d/dx vs converting it", what, rc,
                     shared ? ", prefix sharing" : "");
            fixture_check_same(&on, &off, m->nparams, lb);
            if (shared) free(on.grads);
            free(off.grads);
        }
        PlanLayout pl = {*mc, 1, 1, 1, 0, 0, 0, 0, 256, 1, RC_LAYERS(rc), true, false, false, true, false, 0, 0, 0, 0, false, false, false, false};
        MemPlan p = plan_memory(&pl);
        size_t planned = p.weights + p.grads + p.activations + p.other;
        CHECK(held[rc] == planned, "%s, recompute %d: autocast allocated %zu bytes, planned %zu", what, rc, held[rc],
              planned);
        if (!rc) {
            check_fixture_bf16(exp, m, r[0].seq, r[0].loss, r[0].met, sqrt(model_grad_sumsq(m)), r[0].grads,
                               f32->seq, "autocast ");
            /* prefix sharing in autocast storage: the prompts' dk, dv sums rounded to bf16 (add_rows_b16) */
            FixtureResult sh = fixture_run_shared(m, ps, SIMPO);
            check_fixture_bf16(exp, m, sh.seq, sh.loss, sh.met, sqrt(model_grad_sumsq(m)), sh.grads, f32->seq,
                               "autocast, prefix sharing ");
            free(sh.grads);
            /* the q, k, v and the gate, up projections' backward unpacked (model.h bwd_pack off: three matmuls
             * and two, with RoPE's backward in place and the gated activation's two outputs) instead of one
             * matmul each over the packed gradients (backend.h rope_bwd_pack_b16, swiglu_bwd_pack_b16): the same
             * log-probs and loss; the gradients the same sums in other orders, so the fp32 d/dx of the residual
             * stream differs in its last bits, and where that moves a value across a rounding boundary of its
             * bf16 copy (the o and down projections' backward read d/dx as a bf16 operand) the gradients after it
             * move by up to one bf16 step (2^-8) of a term: the bound is that step of the largest gradient */
            CHECK(m->bwd_pack, "%s: the projections' backward packed where the backend can", what);
            m->bwd_pack = false;
            FixtureResult three = fixture_run(m, ps, SIMPO);
            m->bwd_pack = true;
            int same_seq = 1;
            for (int i = 0; i < 12; i++) same_seq &= three.seq[i].sum == r[0].seq[i].sum;
            double gmax = 0, gdiff = 0;
            size_t ndiff = 0;
            for (size_t e = 0; e < m->nparams; e++) {
                gmax = fmax(gmax, fabs(three.grads[e]));
                gdiff = fmax(gdiff, fabs((double)three.grads[e] - r[0].grads[e]));
                ndiff += three.grads[e] != r[0].grads[e];
            }
            printf("%s: projections' backward packed vs unpacked: %zu gradients differ, by %.3g of the largest\n",
                   what, ndiff, gdiff / gmax);
            CHECK(same_seq && three.loss == r[0].loss, "%s: packing the projections' backward changed the forward",
                  what);
            CHECK(ndiff > 0 && gdiff <= 0x1p-8 * gmax,
                  "%s: packed projections' backward: %zu gradients differ, by %.3g of the largest", what, ndiff,
                  gdiff / gmax);
            free(three.grads);
            /* g, u (FF each), q, att (NH HD each), k, v (NKV HD each) at 2 bytes instead of 4: 4 (FF + QD + KD)
             * bytes per token of each layer; and the shared scratch: the larger of the layers' gradient scratch
             * (dq, datt, dk, dv, then dg, du (bf16), dh or attention's rows laid over them: q, k, v, att, dq, dk,
             * dv, lse, d(att); autocast: all but lse bf16) and the LM head's chunk of 256 rows
             * (exact: fp32 logits and a bf16 d(logits); autocast: bf16 logits turned into d(logits) in place),
             * plus four floats per row in both */
            size_t exact_bytes = fixture_planned_model_bytes(mc, 256, 1, 0, true, NULL);
            size_t qd = (size_t)mc->num_attention_heads * (size_t)mc->head_dim,
                   kd = (size_t)mc->num_key_value_heads * (size_t)mc->head_dim;
            size_t N = 256, ff = (size_t)mc->intermediate_size, nh = (size_t)mc->num_attention_heads,
                   V = (size_t)mc->vocab_size;
            size_t want = (size_t)mc->num_hidden_layers * N * 4 * (ff + qd + kd);
            size_t xatt_e = N * (4 * qd + 4 * kd + nh), xatt_a = N * (qd / 2 * 4 + kd / 2 * 4 + nh);
            size_t mlp_e = 2 * ff * N, mlp_a = ff / 2 * 3 * N; /* dg, du at 2 bytes; dh at 4, or 2 in autocast */
            size_t lg_e = N * (2 * qd + 2 * kd) + (mlp_e > xatt_e ? mlp_e : xatt_e),
                   lg_a = N * (qd + kd) + (mlp_a > xatt_a ? mlp_a : xatt_a);
            size_t hd_e = N * V + N * V / 2 + 4 * N, hd_a = N * V / 2 + 4 * N;
            want += 4 * ((lg_e > hd_e ? lg_e : hd_e) - (lg_a > hd_a ? lg_a : hd_a));
            CHECK(exact_bytes - held[0] == want, "%s: autocast saves %zu bytes over exact storage, expected %zu", what,
                  exact_bytes - held[0], want);
        }
        model_free(m);
    }
    fixture_check_same(&r[1], &r[0], nparams, "autocast: recompute vs saved activations");
    int differ = 0;
    for (int i = 0; i < 12; i++) differ += r[0].seq[i].sum != exact->seq[i].sum;
    CHECK(differ > 0, "%s: autocast storage gives the log-probs of exact storage: is the rounding applied?", what);
    be->set_matmul_bf16(false);
    free(r[1].grads);
    *out = r[0];
    free(mdir);
}

/* Gemma 2's GeGLU on bf16 gate / up: tiny-g2 in autocast storage within bf16 bounds of its exact-storage run
 * (log-probs 4u relative), and bitwise the same on the strict backend */
static void check_autocast_gemma2(void) {
    char *mdir = fixture_path("tiny-g2/model"), *pp = fixture_path("tiny-g2/pairs.jsonl");
    ModelConfig mc = model_config_load(mdir);
    PairSet *ps = pairs_load_jsonl(pp, mc.vocab_size);
    FixtureResult r[3];
    size_t nparams = 0;
    const Backend *bes[3] = {backend_cpu(), backend_cpu(), backend_cpu_strict()};
    for (int i = 0; i < 3; i++) {
        bes[i]->set_matmul_bf16(true);
        ModelOpts o = {.autocast16 = i > 0};
        Model *m = model_create_opts(&mc, bes[i], 256, NULL, 1, &o);
        model_load_hf(m, mdir);
        CHECK(m->proj16 == (i > 0), "Gemma 2: autocast storage as asked");
        r[i] = fixture_run(m, ps, SIMPO);
        nparams = m->nparams;
        bes[i]->set_matmul_bf16(false);
        model_free(m);
    }
    double worst = 0;
    for (int s = 0; s < 12; s++) worst = fmax(worst, fabs(r[1].seq[s].sum - r[0].seq[s].sum) / fabs(r[0].seq[s].sum));
    printf("Gemma 2 autocast vs exact bf16 storage: worst log-prob difference %.3g relative\n", worst);
    CHECK(worst > 0 && worst <= 4 * U_BF16, "Gemma 2 autocast log-probs differ by %.3g relative", worst);
    fixture_check_same(&r[2], &r[1], nparams, "Gemma 2 autocast: strict vs CPU");
    for (int i = 0; i < 3; i++) free(r[i].grads);
    pairs_free(ps);
    free(mdir), free(pp);
}

static size_t fp32_model_bytes(const ModelConfig *mc, const Backend *be, bool recompute) {
    bool act16;
    size_t held = fixture_model_bytes(mc, be, 256, RC_LAYERS(recompute), &act16);
    CHECK(!act16, "a model made in fp32 keeps fp32 activations");
    return held;
}

int main(void) {
    const Backend *be = backend_cpu();
    cJSON *exp = load_json("tiny-a/expected.json");
    ModelConfig mc = fixture_model_config();
    Model *m = fixture_model(&mc, be);
    PairSet *ps = fixture_pairs(&mc);
    FixtureResult f32 = fixture_run(m, ps, SIMPO);
    be->set_matmul_bf16(true);
    FixtureResult b16 = fixture_run(m, ps, SIMPO);
    double b16_gnorm = sqrt(model_grad_sumsq(m));
    be->set_matmul_bf16(false);
    FixtureResult f32b = fixture_run(m, ps, SIMPO);

    check_fixture_bf16(exp, m, b16.seq, b16.loss, b16.met, b16_gnorm, b16.grads, f32.seq, "");

    /* bf16 activation storage, on the CPU and the strict backend, with and without recompute */
    for (int rc = 0; rc < 2; rc++) {
        check_act16(&mc, be, ps, &b16, fp32_model_bytes(&mc, be, rc), rc, rc ? "cpu, recompute" : "cpu");
        const Backend *st = backend_cpu_strict();
        check_act16(&mc, st, ps, &b16, fp32_model_bytes(&mc, st, rc), rc,
                    rc ? "strict, recompute" : "strict");
    }
    check_act16_gemma2(be);

    /* autocast storage, on the CPU and the strict backend (bitwise the same) */
    FixtureResult ac, acs;
    check_autocast(exp, &mc, be, ps, &b16, &f32, &ac, "cpu");
    check_autocast(exp, &mc, backend_cpu_strict(), ps, &b16, &f32, &acs, "strict");
    fixture_check_same(&acs, &ac, m->nparams, "autocast: strict vs CPU");
    free(ac.grads), free(acs.grads);
    check_autocast_gemma2();

    /* off again: fp32 bit for bit */
    fixture_check_same(&f32b, &f32, m->nparams, "set_matmul_bf16(false) restores the fp32 results");

    free(f32.grads), free(b16.grads), free(f32b.grads);
    model_free(m);
    pairs_free(ps);
    cJSON_Delete(exp);
    TEST_END();
}
