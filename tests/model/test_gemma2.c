/* test_gemma2.c — the Gemma 2 architecture (Gemma2ForCausalLM) through the model's one code path:
 *   1. config.json / model.config: the Gemma 2 keys, transformers' defaults, the round trip through
 *      model_config_to_json and the YAML config, and the errors (each names its key).
 *   2. a random-init tiny Gemma 2 (the shapes of scripts/make_gemma2_fixture.py: vocab 384, width 64, 2 layers,
 *      layer 0 sliding with window 8, query_pre_attn_scalar 24, attention cap 3, final cap 4, tied) with random
 *      gains: the gradient of the SimPO loss against central finite differences for parameters of every kind
 *      (embedding, the four norms of each layer, q/k/v/o, gate/up/down, the final norm);
 *   3. the strict backend, train.recompute, train.recompute_activation and train.recompute_norm (one slot, and
 *      slots in flight) give the same log-probs, loss and gradients bit for bit; the bf16 matmuls stay within bf16
 *      bounds of fp32 and differ from it;
 *   4. the window, both caps and the scale really act: turning each off changes the log-probs, while a window no
 *      sequence reaches, or one on no layer, changes nothing;
 *   5. HF export and import: config.json and every tensor round-trip bit for bit, the exported gains are the
 *      model's gains minus 1 (HF stores offsets from 1), no lm_head (tied);
 *   6. memory: the backend allocation equals plan_memory with and without recompute and the final cap;
 *   7. when tests/fixtures/tiny-g2/expected.json exists (the HF float64 fixture of make_gemma2_fixture.py):
 *      log-probs, SimPO loss and metrics, grad norm, every gradient and the other objectives against it with the
 *      tiny-a tolerances, the same through recompute, and the trainer on its run.yaml (metrics of steps 1 and 2,
 *      parameters after each against step1/step2.safetensors). Absent: "tiny-g2 fixture absent: HF comparison
 *      skipped". */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "comm.h"
#include "config.h"
#include "fixture_g2.h"
#include "model.h"
#include "pairs.h"
#include "safetensors.h"
#include "test_util.h"
#include "train.h"

static const char *G2_JSON =
    "{\"architectures\": [\"Gemma2ForCausalLM\"], \"model_type\": \"gemma2\", \"vocab_size\": 384, "
    "\"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
    "\"num_key_value_heads\": 2, \"head_dim\": 16, \"query_pre_attn_scalar\": 24, \"sliding_window\": 8, "
    "\"layer_types\": [\"sliding_attention\", \"full_attention\"], \"attn_logit_softcapping\": 3.0, "
    "\"final_logit_softcapping\": 4.0, \"hidden_activation\": \"gelu_pytorch_tanh\", \"rms_norm_eps\": 1e-6, "
    "\"max_position_embeddings\": 256, \"initializer_range\": 0.2, \"tie_word_embeddings\": true}";

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
static char tmpdir[64];

/* ---- 1. the config ---- */

/* G2_JSON with `from` replaced by `to` must die naming `want` (fixture_g2.h) */
static int bad_variant(const char *from, const char *to, const char *want) {
    return config_variant_dies(G2_JSON, from, to, want);
}

static void config_checks(const ModelConfig *mc) {
    CHECK(mc->arch == ARCH_GEMMA2 && mc->query_pre_attn_scalar == 24 && mc->attn_logit_softcapping == 3.0 &&
              mc->final_logit_softcapping == 4.0 && mc->sliding_window == 8 && mc->tie_word_embeddings &&
              mc->head_dim == 16,
          "gemma2 keys read");
    CHECK(model_config_layer_sliding(mc, 0) && !model_config_layer_sliding(mc, 1), "layer_types read");
    /* round trip through config.json text */
    char *js = model_config_to_json(mc);
    CHECK(strstr(js, "Gemma2ForCausalLM") && strstr(js, "\"gemma2\"") && strstr(js, "gelu_pytorch_tanh"),
          "config.json names Gemma2ForCausalLM: %s", js);
    ModelConfig back = model_config_from_json(js, "round trip");
    char *js2 = model_config_to_json(&back);
    CHECK(!strcmp(js, js2), "config.json round trip changes it:\n%s\n%s", js, js2);
    CHECK(back.arch == ARCH_GEMMA2 && model_config_layer_sliding(&back, 0) && !model_config_layer_sliding(&back, 1),
          "round trip keeps the architecture and layer types");
    free(js2);
    free(js);
    /* transformers' Gemma2Config defaults for absent keys */
    ModelConfig d = model_config_from_json("{\"model_type\": \"gemma2\", \"vocab_size\": 100, \"hidden_size\": 32, "
                                           "\"intermediate_size\": 64, \"num_hidden_layers\": 3, "
                                           "\"num_attention_heads\": 2}", "defaults");
    CHECK(d.head_dim == 256 && d.query_pre_attn_scalar == 256 && d.attn_logit_softcapping == 50 &&
              d.final_logit_softcapping == 30 && d.sliding_window == 4096 && d.tie_word_embeddings &&
              d.max_position_embeddings == 8192 && d.pad_token_id == 0 && d.eos_token_id == 1 && d.bos_token_id == 2,
          "gemma2 defaults");
    CHECK(model_config_layer_sliding(&d, 0) && !model_config_layer_sliding(&d, 1) && model_config_layer_sliding(&d, 2),
          "default layer_types: even layers slide");
    ModelConfig nul = model_config_from_json("{\"model_type\": \"gemma2\", \"vocab_size\": 100, \"hidden_size\": 32, "
                                             "\"intermediate_size\": 64, \"num_hidden_layers\": 2, "
                                             "\"num_attention_heads\": 2, \"attn_logit_softcapping\": null, "
                                             "\"final_logit_softcapping\": null, \"sliding_window\": null}", "nulls");
    CHECK(nul.attn_logit_softcapping == 0 && nul.final_logit_softcapping == 0 && nul.sliding_window == 0 &&
              !model_config_layer_sliding(&nul, 0),
          "null caps and window: off");
    ModelConfig ll = model_config_from_json("{\"vocab_size\": 100, \"hidden_size\": 32, \"intermediate_size\": 64, "
                                            "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
                                            "\"sliding_window\": 4}", "llama");
    CHECK(ll.arch == ARCH_LLAMA && !model_config_layer_sliding(&ll, 0) && !ll.tie_word_embeddings,
          "a Llama config stays Llama");
    /* the YAML config's model.config, and its resolved form */
    char *yaml = sd_alloc(strlen(G2_JSON) + 256, "yaml");
    sprintf(yaml, "model:\n  config: %s\ndata: {train: p.jsonl}\n", G2_JSON);
    Config *c = config_load_string(yaml, "g2.yaml", ".");
    CHECK(c->model_config.arch == ARCH_GEMMA2 && c->model_config.sliding_window == 8 &&
              model_config_layer_sliding(&c->model_config, 0),
          "model.config in YAML");
    char *ry = config_to_yaml(c);
    Config *c2 = config_load_string(ry, "resolved.yaml", ".");
    CHECK(c2->model_config.arch == ARCH_GEMMA2 && c2->model_config.final_logit_softcapping == 4.0 &&
              !model_config_layer_sliding(&c2->model_config, 1),
          "model.config survives the resolved YAML");
    config_free(c2);
    free(ry);
    config_free(c);
    free(yaml);
    /* errors name their key */
    CHECK(bad_variant("\"sliding_attention\", \"full_attention\"", "\"sliding_attention\"", "key 'layer_types'"),
          "layer_types of the wrong length");
    CHECK(bad_variant("\"full_attention\"]", "\"global\"]", "key 'layer_types[1]'"), "layer_types value");
    CHECK(bad_variant("\"gelu_pytorch_tanh\"", "\"silu\"", "key 'hidden_activation'"), "activation");
    CHECK(bad_variant("\"attn_logit_softcapping\": 3.0", "\"attn_logit_softcapping\": -1",
                      "key 'attn_logit_softcapping'"), "negative cap");
    CHECK(bad_variant("\"final_logit_softcapping\": 4.0", "\"final_logit_softcapping\": 0",
                      "key 'final_logit_softcapping'"), "zero cap");
    CHECK(bad_variant("\"sliding_window\": 8", "\"sliding_window\": 2.5", "key 'sliding_window'"), "window");
    CHECK(bad_variant("\"query_pre_attn_scalar\": 24", "\"query_pre_attn_scalar\": 0", "key 'query_pre_attn_scalar'"),
          "scalar");
    CHECK(bad_variant("\"model_type\": \"gemma2\"", "\"model_type\": \"gemma\"", "only Gemma 2"), "gemma v1 refused");
    CHECK(bad_variant("\"model_type\": \"gemma2\"", "\"model_type\": \"gemma3_text\"", "only Gemma 2"),
          "gemma3 refused");
    CHECK(bad_variant("\"model_type\": \"gemma2\"", "\"model_type\": \"gpt2\"", "not a Llama-family"), "gpt2 refused");
    CHECK(bad_variant("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": true, "
                      "\"use_bidirectional_attention\": true", "use_bidirectional_attention"), "bidirectional");
    CHECK(bad_variant("\"model_type\": \"gemma2\", ", "\"hidden_act\": \"gelu_pytorch_tanh\", ", "key 'hidden_act'"),
          "gelu without gemma2 (llama)");
}

/* ---- the model ---- */

/* every RMSNorm gain g <- 1 + an offset in [-0.3, 0.3] (a fixed stream in spec order: models of the same shapes get
 * the same gains), so a missing or doubled "1 +" or a norm applied to the wrong tensor shows */
static void randomise_gains(Model *m) {
    float *h = sd_alloc(m->nparams * sizeof(float), "params");
    m->be->download(h, m->params, m->nparams * sizeof(float));
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        if (!param_role_is_gain(p->role)) continue;
        for (size_t e = 0; e < p->numel; e++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            h[p->offset + e] = 1.0f + (float)(0.6 * ((double)(r >> 11) / 9007199254740992.0 - 0.5));
        }
    }
    m->be->upload(m->params, h, m->nparams * sizeof(float));
    free(h);
}

/* the model with the activation policy o (NULL: none): the same weights whatever the policy */
static Model *g2_model_opts(const ModelConfig *mc, const Backend *be, int nslots, const ModelOpts *o) {
    ModelOpts none = {0};
    Model *m = model_create_opts(mc, be, 256, NULL, nslots, o ? o : &none);
    model_init_random(m, 11);
    randomise_gains(m);
    return m;
}
static Model *g2_model(const ModelConfig *mc, const Backend *be, int nslots, bool recompute) {
    ModelOpts o = {.recompute_layers = RC_LAYERS(recompute)};
    return g2_model_opts(mc, be, nslots, &o);
}

/* the SimPO loss over the 6 pairs as one micro-batch, forward only */
static double loss_only(Model *m, const PairSet *ps, SeqLogp seq[12]) {
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    MicroBatch *mb = microbatch_pack(ps, idx, 6);
    model_forward_logprobs(m, mb, seq);
    long chosen = 0;
    for (int i = 0; i < 6; i++) chosen += seq[2 * i].n;
    double loss = 0;
    for (int i = 0; i < 6; i++) {
        const Pair *p = mb->pairs[i];
        PairStats st = {seq[2 * i].sum, seq[2 * i + 1].sum, seq[2 * i].n, seq[2 * i + 1].n, p->ref_chosen_logp,
                        p->ref_rejected_logp};
        LossOut o;
        loss_pair(&SIMPO, &st, 6, chosen, &o);
        loss += o.loss;
    }
    microbatch_free(mb);
    return loss;
}


/* ---- 2. finite differences ---- */

/* central differences of the loss for a few elements of every parameter tensor: the 3 largest gradients of the
 * tensor and 3 random elements; each within tol of the tensor's largest gradient */
static void fd_checks(Model *m, const PairSet *ps) {
    FixtureResult r = fixture_run(m, ps, SIMPO);
    float *p = m->params; /* the CPU backend: host memory */
    uint64_t rng = 0x1234567ULL;
    double worst = 0;
    const char *worst_name = "";
    int kinds[P_LNF + 1] = {0};
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *s = &m->specs[i];
        const float *g = r.grads + s->offset;
        size_t pick[6];
        double gmax = 0;
        for (int k = 0; k < 3; k++) {
            size_t best = 0;
            double bv = -1;
            for (size_t e = 0; e < s->numel; e++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= pick[j] == e;
                if (!taken && fabs(g[e]) > bv) bv = fabs(g[e]), best = e;
            }
            pick[k] = best;
            if (k == 0) gmax = bv;
        }
        for (int k = 3; k < 6; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            pick[k] = (size_t)(rng % s->numel);
        }
        double err = 0;
        for (int k = 0; k < 6; k++) {
            size_t e = s->offset + pick[k];
            float x0 = p[e];
            /* h = 2e-2 of the parameter's scale (gains ~1, weights ~0.2): the fp32 forward's rounding of the loss
             * (~1e-7 relative) divided by 2h and the truncation error h^2 f'''/6 both stay near 4e-4 of the
             * largest gradient (measured; 1.1e-3 at h = 1e-2, where rounding dominates), 5x under the bound */
            float h = 2e-2f * (param_role_is_gain(s->role) ? 1.0f : 0.2f);
            SeqLogp seq[12];
            p[e] = x0 + h;
            double lp = loss_only(m, ps, seq);
            p[e] = x0 - h;
            double lm = loss_only(m, ps, seq);
            p[e] = x0;
            double fd = (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));
            err = fmax(err, fabs(fd - g[pick[k]]) / fmax(gmax, 1e-12));
        }
        if (err > worst) worst = err, worst_name = s->name;
        CHECK(gmax > 0, "%s: zero gradient", s->name);
        CHECK(err < 2e-3, "%s: gradient vs central differences off by %.3g of its largest (%.3g)", s->name, err, gmax);
        kinds[s->role]++;
    }
    printf("finite differences: worst %.3g of the tensor's largest gradient (%s)\n", worst, worst_name);
    ParamRole want[] = {P_EMBED, P_LN1, P_WQ, P_WK, P_WV, P_WO, P_LNA, P_LN2, P_WG, P_WU, P_WD, P_LNF, P_NORM};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        CHECK(kinds[want[k]] >= 1, "no parameter of role %d checked", (int)want[k]);
    CHECK(kinds[P_LNA] == 2 && kinds[P_LNF] == 2 && kinds[P_LMHEAD] == 0, "four norms per layer, tied head");
    free(r.grads);
}

/* ---- 3. strict backend, recompute, bf16 ---- */


static void path_checks(const ModelConfig *mc, const PairSet *ps, const FixtureResult *base) {
    Model *ms = g2_model(mc, backend_cpu_strict(), 1, false), *mr = g2_model(mc, backend_cpu(), 1, true);
    Model *mrs = g2_model(mc, backend_cpu_strict(), 1, true);
    FixtureResult rs = fixture_run(ms, ps, SIMPO), rr = fixture_run(mr, ps, SIMPO);
    FixtureResult rrs = fixture_run(mrs, ps, SIMPO);
    fixture_check_same(base, &rs, ms->nparams, "strict backend vs CPU");
    fixture_check_same(base, &rr, mr->nparams, "recompute vs saved activations");
    fixture_check_same(base, &rrs, mrs->nparams, "recompute on the strict backend vs CPU");
    FixtureResult again = fixture_run(mr, ps, SIMPO);
    fixture_check_same(base, &again, mr->nparams, "recompute, second run");
    free(rs.grads), free(rr.grads), free(rrs.grads), free(again.grads);
    model_free(ms), model_free(mr), model_free(mrs);

    Model *m3 = g2_model(mc, backend_cpu(), 3, false), *m3r = g2_model(mc, backend_cpu(), 3, true);
    FixtureResult a = fixture_run_three_in_flight(m3, ps), b = fixture_run_three_in_flight(m3r, ps);
    fixture_check_same(&a, &b, m3->nparams, "3 slots in flight: recompute vs saved activations");
    /* against the same micro-batches one at a time: the slots' shared scratch (the soft-capped LM head's too) holds
     * nothing a backward needs */
    FixtureResult qa = fixture_run_one_at_a_time(m3, ps), qb = fixture_run_one_at_a_time(m3r, ps);
    fixture_check_same(&qa, &a, m3->nparams, "3 slots in flight vs one at a time (saved activations)");
    fixture_check_same(&qb, &b, m3r->nparams, "3 slots in flight vs one at a time (recompute)");
    /* train.recompute_activation: the GeGLU output remade in each layer's backward (before the down projection and
     * its post-feedforward norm), bit for bit, on the CPU and the strict backend */
    ModelOpts ra = {.recompute_act = true};
    Model *m3a = g2_model_opts(mc, backend_cpu(), 3, &ra), *m3as = g2_model_opts(mc, backend_cpu_strict(), 3, &ra);
    FixtureResult c = fixture_run_three_in_flight(m3a, ps), cs = fixture_run_three_in_flight(m3as, ps);
    fixture_check_same(&a, &c, m3->nparams, "3 slots in flight: recompute_activation vs saved activations");
    fixture_check_same(&a, &cs, m3->nparams, "3 slots in flight: recompute_activation (strict) vs saved activations");
    free(c.grads), free(cs.grads);
    model_free(m3a), model_free(m3as);
    /* train.recompute_norm: the input and pre-feedforward norms' outputs remade in each layer's backward, with and
     * without the activation's, and recomputing layers too */
    ModelOpts rn[3] = {{.recompute_norm = true}, {.recompute_act = true, .recompute_norm = true},
                       {.recompute_layers = 1, .recompute_act = true, .recompute_norm = true}};
    for (int i = 0; i < 3; i++) {
        Model *mn = g2_model_opts(mc, backend_cpu(), 3, &rn[i]);
        Model *mns = g2_model_opts(mc, backend_cpu_strict(), 3, &rn[i]);
        FixtureResult d = fixture_run_three_in_flight(mn, ps), ds = fixture_run_three_in_flight(mns, ps);
        char what[128];
        snprintf(what, sizeof what, "3 slots in flight: recompute_norm%s%s vs saved activations",
                 rn[i].recompute_act ? " and the activation" : "", rn[i].recompute_layers ? ", first layer rerun" : "");
        fixture_check_same(&a, &d, m3->nparams, what);
        fixture_check_same(&a, &ds, m3->nparams, what);
        free(d.grads), free(ds.grads);
        model_free(mn), model_free(mns);
    }
    free(a.grads), free(b.grads), free(qa.grads), free(qb.grads);
    model_free(m3), model_free(m3r);

    /* bf16 matmuls (the CPU emulation of the GPU path): within 4u of fp32 (fixture_bf16.h's log-prob bound) */
    const Backend *be = backend_cpu();
    Model *mb = g2_model(mc, be, 1, false);
    be->set_matmul_bf16(true);
    FixtureResult r16 = fixture_run(mb, ps, SIMPO);
    be->set_matmul_bf16(false);
    double worst = 0;
    for (int s = 0; s < 12; s++) worst = fmax(worst, fabs(r16.seq[s].sum - base->seq[s].sum) / fabs(base->seq[s].sum));
    int finite = 1;
    for (size_t e = 0; e < mb->nparams; e++) finite &= isfinite(r16.grads[e]);
    printf("bf16 log-probs vs fp32: worst relative difference %.3g\n", worst);
    CHECK(worst > 0 && worst <= 4.0 / 512, "bf16 log-probs differ from fp32 by %.3g relative", worst);
    CHECK(finite && isfinite(r16.loss), "bf16 gradients finite");
    FixtureResult r32 = fixture_run(mb, ps, SIMPO);
    fixture_check_same(base, &r32, mb->nparams, "fp32 again after bf16");
    free(r16.grads), free(r32.grads);
    model_free(mb);
}

/* ---- 4. the options act ---- */

static ModelConfig variant(const char *from, const char *to) {
    const char *at = strstr(G2_JSON, from);
    if (!at) {
        fprintf(stderr, "variant: '%s' not in the config\n", from);
        exit(1);
    }
    char buf[2048];
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - G2_JSON), G2_JSON, to, at + strlen(from));
    return model_config_from_json(buf, "variant");
}

/* the largest relative change of a log-prob between the base model and one built from mc (same weights) */
static double logp_change(const ModelConfig *mc, const PairSet *ps, const FixtureResult *base, int *bitwise_same) {
    Model *m = g2_model(mc, backend_cpu(), 1, false);
    SeqLogp seq[12];
    loss_only(m, ps, seq);
    double worst = 0;
    *bitwise_same = 1;
    for (int s = 0; s < 12; s++) {
        worst = fmax(worst, fabs(seq[s].sum - base->seq[s].sum) / fabs(base->seq[s].sum));
        *bitwise_same &= memcmp(&seq[s].sum, &base->seq[s].sum, sizeof(double)) == 0;
    }
    model_free(m);
    return worst;
}

static void option_checks(const PairSet *ps, const FixtureResult *base) {
    struct {
        const char *what, *from, *to;
        int changes; /* 1: must change the log-probs; 0: must leave them bit for bit */
    } v[] = {
        {"no sliding window (every layer full)", "\"sliding_attention\", \"full_attention\"",
         "\"full_attention\", \"full_attention\"", 1},
        {"sliding_window null", "\"sliding_window\": 8", "\"sliding_window\": null", 1},
        {"no attention cap", "\"attn_logit_softcapping\": 3.0", "\"attn_logit_softcapping\": null", 1},
        {"no final cap", "\"final_logit_softcapping\": 4.0", "\"final_logit_softcapping\": null", 1},
        {"query_pre_attn_scalar = head_dim", "\"query_pre_attn_scalar\": 24", "\"query_pre_attn_scalar\": 16", 1},
        {"a window of 9 (one more key on layer 0)", "\"sliding_window\": 8", "\"sliding_window\": 9", 1},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ModelConfig mc = variant(v[i].from, v[i].to);
        int same;
        double d = logp_change(&mc, ps, base, &same);
        printf("%s: log-probs change by %.3g relative\n", v[i].what, d);
        if (v[i].changes) CHECK(d > 1e-4, "%s leaves the log-probs (change %.3g)", v[i].what, d);
        else CHECK(same, "%s changes the log-probs (%.3g)", v[i].what, d);
    }
    /* no window at all three ways, bit for bit: every layer full, sliding_window null, a window no sequence reaches */
    ModelConfig c[3] = {variant("\"sliding_attention\", \"full_attention\"", "\"full_attention\", \"full_attention\""),
                        variant("\"sliding_window\": 8", "\"sliding_window\": null"),
                        variant("\"sliding_window\": 8", "\"sliding_window\": 200")};
    SeqLogp sq[3][12];
    for (int k = 0; k < 3; k++) {
        Model *mk = g2_model(&c[k], backend_cpu(), 1, false);
        loss_only(mk, ps, sq[k]);
        model_free(mk);
    }
    int same = 1;
    for (int k = 1; k < 3; k++)
        for (int s = 0; s < 12; s++) same &= memcmp(&sq[0][s].sum, &sq[k][s].sum, sizeof(double)) == 0;
    CHECK(same, "every layer full, sliding_window null and a window of 200 differ");
}

/* ---- 5. HF export and import ---- */

static void hf_checks(Model *m) {
    char *dir = sd_path_join(tmpdir, "hf");
    model_export_hf(m, dir, (size_t)1 << 30);
    ModelConfig mc2 = model_config_load(dir);
    char *j1 = model_config_to_json(&m->mc), *j2 = model_config_to_json(&mc2);
    CHECK(!strcmp(j1, j2), "exported config.json reads back differently");
    free(j1), free(j2);
    StDir *d = st_open_dir(dir);
    CHECK(st_find(d, "lm_head.weight") == NULL, "a tied model exported lm_head.weight");
    CHECK(d->ntensors == m->nspecs, "%d tensors exported, %d parameters", d->ntensors, m->nspecs);
    int gains_ok = 1, rest_ok = 1, ngains = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        const StTensor *t = st_find(d, p->name);
        CHECK(t && t->numel == p->numel, "%s missing from the export", p->name);
        if (!t || t->numel != p->numel) continue;
        float *x = sd_alloc(t->numel * 4, "x");
        st_read_f32(d, t, x);
        const float *g = m->params + p->offset;
        if (param_role_is_gain(p->role)) {
            ngains++;
            CHECK(g2_is_gain_name(p->name), "%s: a gain the fixture helpers do not know by name", p->name);
            for (size_t e = 0; e < p->numel; e++) gains_ok &= x[e] == g[e] - 1.0f;
        } else rest_ok &= memcmp(x, g, p->numel * 4) == 0;
        free(x);
    }
    st_close(d);
    CHECK(ngains == 4 * m->L + 1, "%d gains", ngains);
    CHECK(gains_ok, "exported gains are not the model's gains - 1");
    CHECK(rest_ok, "exported weights differ from the model's");
    Model *m2 = model_create(&mc2, backend_cpu(), 1, NULL, 1);
    model_load_hf(m2, dir);
    CHECK(memcmp(m2->params, m->params, m->nparams * 4) == 0, "export then import changes the parameters");
    model_free(m2);
    free(dir);
}

/* ---- 6. memory ---- */

static void check_alloc(const ModelConfig *mc, size_t max_tokens, bool recompute, const char *what) {
    size_t held = fixture_model_bytes(mc, backend_cpu_strict(), max_tokens, RC_LAYERS(recompute), NULL);
    size_t want = fixture_planned_model_bytes(mc, max_tokens, 3, RC_LAYERS(recompute), false, NULL);
    CHECK(held == want, "%s, recompute %d: allocated %zu bytes, planned %zu", what, recompute, held, want);
}

/* ---- 7. the HF fixture ---- */

static void fixture_checks(int *argc, char ***argv) {
    const char *name = "tiny-g2";
    cJSON *exp = load_json("tiny-g2/expected.json");
    ModelConfig mc = g2_fixture_model_config(name);
    CHECK(mc.arch == ARCH_GEMMA2, "tiny-g2 is not read as gemma2");
    PairSet *ps = g2_fixture_pairs(name, &mc);
    for (int rc = 0; rc < 2; rc++) {
        Model *m = g2_fixture_model(name, &mc, backend_cpu(), rc);
        SeqLogp seq[12];
        double met[6];
        double loss = fixture_loss_and_grads(m, ps, SIMPO, seq, met);
        const char *tag = rc ? "tiny-g2 recompute " : "tiny-g2 ";
        check_fixture_logprobs(exp, seq, tag);
        check_fixture_step1(exp, loss, met, sqrt(model_grad_sumsq(m)));
        g2_check_grads(m, m->grads, "tiny-g2/grads.safetensors");
        if (!rc)
            for (int k = 0; k < 3; k++) {
                double l = fixture_loss_and_grads(m, ps, fixture_objectives[k].lp, seq, met);
                check_fixture_other(exp, fixture_objectives[k].name, l, sqrt(model_grad_sumsq(m)));
            }
        /* prefix sharing: the sliding window and the soft-caps see the same sequences */
        loss = fixture_loss_and_grads_ex(m, ps, SIMPO, seq, met, true);
        const char *stag = rc ? "tiny-g2 recompute, prefix sharing " : "tiny-g2 prefix sharing ";
        check_fixture_logprobs(exp, seq, stag);
        check_fixture_step1(exp, loss, met, sqrt(model_grad_sumsq(m)));
        g2_check_grads(m, m->grads, "tiny-g2/grads.safetensors");
        model_free(m);
    }
    /* the trainer on the fixture's run.yaml: steps 1 and 2 */
    comm_init(argc, argv);
    Config *c = g2_fixture_config(name, tmpdir, "run");
    c->ckpt_every_steps = 1;
    TrainOptions opt = {.quiet = 1};
    CHECK(train_run(c, &opt) == 0, "train_run on tiny-g2 failed");
    cJSON *met = read_metrics(c->ckpt_dir);
    check_fixture_steps(met, exp);
    cJSON_Delete(met);
    char *s1 = sd_path_join(c->ckpt_dir, "step-00000001"), *s2 = sd_path_join(c->ckpt_dir, "step-00000002");
    g2_compare_params(s1, "tiny-g2/step1.safetensors", "tiny-g2 ");
    g2_compare_params(s2, "tiny-g2/step2.safetensors", "tiny-g2 ");
    free(s1), free(s2);
    config_free(c);
    comm_finalize();
    pairs_free(ps);
    cJSON_Delete(exp);
}

int main(int argc, char **argv) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sd_gemma2_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    ModelConfig mc = model_config_from_json(G2_JSON, "tiny gemma2");
    config_checks(&mc);

    char *pp = fixture_path("tiny-a/pairs.jsonl"); /* token ids < 384, sequences of up to 22 tokens: past window 8 */
    PairSet *ps = pairs_load_jsonl(pp, mc.vocab_size);
    free(pp);
    Model *m = g2_model(&mc, backend_cpu(), 1, false);
    CHECK(m->gemma2 && m->nspecs == 1 + 2 * 11 + 1, "gemma2 parameter table: %d tensors", m->nspecs);
    CHECK(model_find_param(m, "model.layers.1.pre_feedforward_layernorm.weight") &&
              model_find_param(m, "model.layers.1.post_feedforward_layernorm.weight") &&
              model_find_param(m, "model.layers.0.post_attention_layernorm.weight")->role == P_LNA,
          "gemma2 tensor names");
    FixtureResult base = fixture_run(m, ps, SIMPO);
    printf("tiny gemma2: SimPO loss %.8g\n", base.loss);
    fd_checks(m, ps);
    path_checks(&mc, ps, &base);
    option_checks(ps, &base);
    hf_checks(m);
    check_alloc(&mc, 2 * 2 * 256, false, "gemma2");
    check_alloc(&mc, 2 * 2 * 256, true, "gemma2");
    ModelConfig nocap = variant("\"final_logit_softcapping\": 4.0", "\"final_logit_softcapping\": null");
    check_alloc(&nocap, 2 * 2 * 256, false, "gemma2 without the final cap");
    free(base.grads);
    model_free(m);
    pairs_free(ps);

    if (g2_fixture_present("tiny-g2")) fixture_checks(&argc, &argv);
    else printf("tiny-g2 fixture absent: HF comparison skipped\n");
    fixture_remove_tmpdir(tmpdir);
    TEST_END();
}
