/* test_qwen.c — Qwen2 (Qwen2ForCausalLM: Llama's blocks with biases on the q, k and v projections) and Qwen3
 * (Qwen3ForCausalLM: an RMSNorm over each head of q and k before RoPE, head_dim apart from hidden / heads) through the
 * model's one code path, against tests/fixtures/tiny-q2 and tiny-q3 (float64 numbers of scripts/make_qwen_fixture.py,
 * whose torch transcription it checks against transformers' tiny-a before writing; tests/fixtures/README.md):
 *   1. config.json: Qwen2.5-7B-Instruct's and Qwen3-0.6B's (their keys as the Hub has them) read with biases / q-k
 *      norms; transformers' defaults; the round trip through model_config_to_json and the YAML config; the errors,
 *      each naming its key.
 *   2. the parameter table: Qwen2's three biases after the three weights (the packed backward reads those as one
 *      matrix), 1-D, split under tensor parallelism as their weights' rows; Qwen3's two gains of head_dim,
 *      replicated; neither decays; the planner counts them (allocation = plan).
 *   3. each fixture: log-probs, SimPO loss and metrics, grad norm, every gradient and the other objectives, with and
 *      without recompute and prefix sharing; the trainer on its run.yaml (metrics of steps 1 and 2, parameters after
 *      each against step1/step2.safetensors).
 *   4. the strict backend, recompute and three micro-batches in flight give the same numbers bit for bit.
 *   5. what Qwen adds acts: Qwen2 with zero biases is the Llama model of the same weights bit for bit, and the
 *      fixture's biases move the log-probs; Qwen3's norm gains move them.
 *   6. bf16: Qwen2 in autocast storage (the biases added to bf16 q, k, v; their gradients summed from the bf16
 *      gradients), packed and unpacked backward, prefix sharing; Qwen3 in autocast storage (its norms on bf16 rows)
 *      and exact storage; within the bf16 bounds of the fixture (fixture_bf16.h), strict bitwise the CPU.
 *   7. HF export and import: config.json and every tensor round-trip bit for bit.
 *   8. KV-cached decoding (src/generate.c): the fixture's responses fed token by token give its log-probs.
 * And tiny-m1 from the same script, a Mistral v0.1 (Llama with a sliding window of 8 positions on every layer, which
 * its sequences of 19-24 tokens pass): 3, 4, 6, 7 and 8, so the window acts as transformers' MistralForCausalLM
 * applies it in the trainer's forward and backward, in bf16 and in the decoder. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "comm.h"
#include "config.h"
#include "fixture_bf16.h"
#include "fixture_g2.h"
#include "generate.h"
#include "model.h"
#include "pairs.h"
#include "plan.h"
#include "safetensors.h"
#include "test_util.h"
#include "train.h"

/* Qwen2.5-7B-Instruct's config.json, as the Hub has it */
static const char *Q25_JSON =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 151643, "
    "\"eos_token_id\": 151645, \"hidden_act\": \"silu\", \"hidden_size\": 3584, \"initializer_range\": 0.02, "
    "\"intermediate_size\": 18944, \"max_position_embeddings\": 32768, \"max_window_layers\": 28, "
    "\"model_type\": \"qwen2\", \"num_attention_heads\": 28, \"num_hidden_layers\": 28, \"num_key_value_heads\": 4, "
    "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 131072, \"tie_word_embeddings\": false, "
    "\"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.43.1\", \"use_cache\": true, "
    "\"use_sliding_window\": false, \"vocab_size\": 152064}";

/* Qwen3-0.6B's config.json, as the Hub has it */
static const char *Q3_JSON =
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0, "
    "\"bos_token_id\": 151643, \"eos_token_id\": 151645, \"head_dim\": 128, \"hidden_act\": \"silu\", "
    "\"hidden_size\": 1024, \"initializer_range\": 0.02, \"intermediate_size\": 3072, "
    "\"max_position_embeddings\": 40960, \"max_window_layers\": 28, \"model_type\": \"qwen3\", "
    "\"num_attention_heads\": 16, \"num_hidden_layers\": 28, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-06, "
    "\"rope_scaling\": null, \"rope_theta\": 1000000, \"sliding_window\": null, \"tie_word_embeddings\": true, "
    "\"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.51.0\", \"use_cache\": true, "
    "\"use_sliding_window\": false, \"vocab_size\": 151936}";

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
static const char *FIX; /* the fixture being checked: "tiny-q2" or "tiny-q3" */
/* FIX's file rel ("grads.safetensors", ...) as a path below SIMPO_FIXTURES, in a static buffer */
static const char *fx(const char *rel) {
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", FIX, rel);
    return buf[k];
}
static char tmpdir[64];

/* ---- 1. the config ---- */

/* Q25_JSON with `from` replaced by `to` must die naming `want` (fixture_g2.h) */
static int bad_variant(const char *from, const char *to, const char *want) {
    return config_variant_dies(Q25_JSON, from, to, want);
}

static void config_checks(void) {
    ModelConfig mc = model_config_from_json(Q25_JSON, "Qwen2.5-7B-Instruct");
    CHECK(mc.arch == ARCH_QWEN2 && mc.qkv_bias && mc.head_dim == 128 && mc.num_key_value_heads == 4 &&
              mc.rope_theta == 1e6 && mc.rope_type == ROPE_DEFAULT && !mc.tie_word_embeddings &&
              mc.bos_token_id == 151643 && mc.eos_token_id == 151645 && mc.rms_norm_eps == 1e-6,
          "Qwen2.5's config read");
    CHECK(!model_config_layer_sliding(&mc, 0), "use_sliding_window false: no layer slides");
    char *js = model_config_to_json(&mc);
    CHECK(strstr(js, "Qwen2ForCausalLM") && strstr(js, "\"qwen2\"") && strstr(js, "\"use_sliding_window\":\tfalse"),
          "config.json names Qwen2ForCausalLM without a sliding window: %s", js);
    ModelConfig back = model_config_from_json(js, "round trip");
    char *js2 = model_config_to_json(&back);
    CHECK(!strcmp(js, js2) && back.arch == ARCH_QWEN2 && back.qkv_bias, "config.json round trip changes it:\n%s\n%s",
          js, js2);
    free(js2);
    free(js);
    /* transformers' Qwen2Config defaults for absent keys */
    ModelConfig d = model_config_from_json("{\"model_type\": \"qwen2\", \"vocab_size\": 100, \"hidden_size\": 32, "
                                           "\"intermediate_size\": 64, \"num_hidden_layers\": 2, "
                                           "\"num_attention_heads\": 4}", "defaults");
    CHECK(d.qkv_bias && d.max_position_embeddings == 32768 && d.num_key_value_heads == 4 && d.head_dim == 8 &&
              !d.tie_word_embeddings && d.rope_theta == 10000.0,
          "qwen2 defaults");
    /* Llama and Mistral stay without biases */
    ModelConfig ll = model_config_from_json("{\"model_type\": \"mistral\", \"vocab_size\": 100, \"hidden_size\": 32, "
                                            "\"intermediate_size\": 64, \"num_hidden_layers\": 2, "
                                            "\"num_attention_heads\": 4}", "mistral");
    CHECK(ll.arch == ARCH_LLAMA && !ll.qkv_bias, "a Mistral config has no biases");
    /* the YAML config's model.config, and its resolved form */
    char *yaml = sd_alloc(strlen(Q25_JSON) + 256, "yaml");
    sprintf(yaml, "model:\n  config: %s\ndata: {train: p.jsonl}\n", Q25_JSON);
    Config *c = config_load_string(yaml, "q2.yaml", ".");
    CHECK(c->model_config.arch == ARCH_QWEN2 && c->model_config.qkv_bias, "model.config in YAML");
    char *ry = config_to_yaml(c);
    Config *c2 = config_load_string(ry, "resolved.yaml", ".");
    CHECK(c2->model_config.arch == ARCH_QWEN2 && c2->model_config.qkv_bias && c2->model_config.rope_theta == 1e6,
          "model.config survives the resolved YAML");
    config_free(c2);
    free(ry);
    config_free(c);
    free(yaml);
    /* errors name their key */
    CHECK(bad_variant("\"use_sliding_window\": false", "\"use_sliding_window\": true", "key 'use_sliding_window'"),
          "use_sliding_window true refused");
    CHECK(bad_variant("\"use_sliding_window\": false", "\"use_sliding_window\": 0", "key 'use_sliding_window'"),
          "use_sliding_window not a bool");
    CHECK(bad_variant("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "key 'hidden_act'"), "activation");
    CHECK(bad_variant("\"model_type\": \"qwen2\"", "\"model_type\": \"qwen2_moe\"", "qwen2"), "qwen2_moe refused");
    CHECK(bad_variant("\"model_type\": \"qwen2\"", "\"model_type\": \"qwen3_moe\"", "not a Llama-family"),
          "qwen3_moe refused");
    /* Qwen3-0.6B: q/k norms, head_dim 128 apart from hidden / heads (64), tied */
    ModelConfig q3 = model_config_from_json(Q3_JSON, "Qwen3-0.6B");
    CHECK(q3.arch == ARCH_QWEN3 && q3.qk_norm && !q3.qkv_bias && q3.head_dim == 128 && q3.tie_word_embeddings &&
              q3.max_position_embeddings == 40960 && q3.rope_theta == 1e6,
          "Qwen3-0.6B's config read");
    js = model_config_to_json(&q3);
    back = model_config_from_json(js, "round trip");
    js2 = model_config_to_json(&back);
    CHECK(!strcmp(js, js2) && strstr(js, "Qwen3ForCausalLM") && back.qk_norm && back.head_dim == 128,
          "qwen3 config.json round trip:\n%s\n%s", js, js2);
    free(js), free(js2);
    ModelConfig d3 = model_config_from_json("{\"model_type\": \"qwen3\", \"vocab_size\": 100, \"hidden_size\": 32, "
                                            "\"intermediate_size\": 64, \"num_hidden_layers\": 2, "
                                            "\"num_attention_heads\": 4}", "qwen3 defaults");
    CHECK(d3.qk_norm && d3.head_dim == 128 && d3.max_position_embeddings == 32768 && !d3.tie_word_embeddings,
          "qwen3 defaults");
    CHECK(config_variant_dies(Q3_JSON, "\"attention_bias\": false", "\"attention_bias\": true", "key 'attention_bias'"),
          "qwen3 attention_bias refused");
    CHECK(config_variant_dies(Q3_JSON, "\"use_sliding_window\": false", "\"use_sliding_window\": true",
                              "key 'use_sliding_window'"),
          "qwen3 use_sliding_window refused");
}

/* ---- 2. the parameter table and the plan ---- */

static void table_checks(const ModelConfig *mc) {
    int n = 0;
    ParamSpec *t = model_param_table(mc, &n);
    bool q2 = mc->qkv_bias;
    CHECK(n == 1 + 2 * (q2 ? 12 : 11) + (mc->tie_word_embeddings ? 1 : 2), "%s parameter table: %d tensors", FIX, n);
    int extra = 0;
    for (int i = 0; i < n; i++) {
        const ParamSpec *p = &t[i];
        if (p->role == P_QN || p->role == P_KN) { /* right after the v projection */
            extra++;
            const ParamSpec *w = &t[i - (p->role == P_QN ? 1 : 2)];
            CHECK(w->role == P_WV && w->layer == p->layer, "%s does not follow the v projection", p->name);
            CHECK(p->ndim == 1 && p->shape[0] == mc->head_dim && p->split == SPLIT_REPL && !p->decay &&
                      param_role_is_gain(p->role) && strstr(p->name, "_norm.weight"),
                  "%s: a replicated gain of head_dim, no decay", p->name);
        }
        if (p->role != P_BQ && p->role != P_BK && p->role != P_BV) continue;
        extra++;
        /* right after the weights: q, k, v weights, then q, k, v biases */
        ParamRole want_w = p->role == P_BQ ? P_WQ : p->role == P_BK ? P_WK : P_WV;
        const ParamSpec *w = &t[i - 3];
        CHECK(w->role == want_w && w->layer == p->layer, "%s does not follow its weight (%s)", p->name, w->name);
        CHECK(p->ndim == 1 && p->shape[0] == w->shape[0] && p->split == SPLIT_COL && !p->decay,
              "%s: 1-D of its weight's rows, column-split, no decay", p->name);
        const char *suffix = strstr(p->name, "_proj.bias");
        CHECK(suffix && !strcmp(suffix, "_proj.bias") && !strncmp(p->name, w->name, (size_t)(suffix - p->name)),
              "%s: HF name beside %s", p->name, w->name);
    }
    CHECK(extra == (q2 ? 6 : 4), "%d biases / q-k norms in 2-layer %s", extra, FIX);
    free(t);
    /* the plan counts them: allocation = plan, with and without recompute */
    for (int rc = 0; rc < 2; rc++) {
        size_t held = fixture_model_bytes(mc, backend_cpu_strict(), 2 * 2 * 256, RC_LAYERS(rc), NULL);
        size_t want = fixture_planned_model_bytes(mc, 2 * 2 * 256, 3, RC_LAYERS(rc), false, NULL);
        CHECK(held == want, "%s, recompute %d: allocated %zu bytes, planned %zu", FIX, rc, held, want);
    }
}

/* ---- 3. the fixture ---- */

static void fixture_checks(const cJSON *exp, const ModelConfig *mc, const PairSet *ps) {
    for (int rc = 0; rc < 2; rc++) {
        Model *m = g2_fixture_model(FIX, mc, backend_cpu(), rc);
        SeqLogp seq[12];
        double met[6];
        for (int share = 0; share < 2; share++) {
            double loss = fixture_loss_and_grads_ex(m, ps, SIMPO, seq, met, share);
            char tag[64];
            snprintf(tag, sizeof tag, "%s%s%s ", FIX, rc ? " recompute" : "", share ? " prefix sharing" : "");
            check_fixture_logprobs(exp, seq, tag);
            check_fixture_step1(exp, loss, met, sqrt(model_grad_sumsq(m)));
            g2_check_grads(m, m->grads, fx("grads.safetensors"));
        }
        if (!rc)
            for (int k = 0; k < 3; k++) {
                double l = fixture_loss_and_grads(m, ps, fixture_objectives[k].lp, seq, met);
                check_fixture_other(exp, fixture_objectives[k].name, l, sqrt(model_grad_sumsq(m)));
            }
        model_free(m);
    }
    /* the trainer on the fixture's run.yaml: steps 1 and 2 (weight decay on neither gains nor biases) */
    Config *c = g2_fixture_config(FIX, tmpdir, FIX);
    c->ckpt_every_steps = 1;
    TrainOptions opt = {.quiet = 1};
    CHECK(train_run(c, &opt) == 0, "train_run on %s failed", FIX);
    cJSON *met = read_metrics(c->ckpt_dir);
    check_fixture_steps(met, exp);
    cJSON_Delete(met);
    char *s1 = sd_path_join(c->ckpt_dir, "step-00000001"), *s2 = sd_path_join(c->ckpt_dir, "step-00000002");
    compare_params(s1, fx("step1.safetensors"), fx(""));
    compare_params(s2, fx("step2.safetensors"), fx(""));
    free(s1), free(s2);
    config_free(c);
}

/* ---- 4. strict backend, recompute, slots in flight ---- */

static void path_checks(const ModelConfig *mc, const PairSet *ps, const FixtureResult *base) {
    Model *ms = g2_fixture_model(FIX, mc, backend_cpu_strict(), false);
    Model *mr = g2_fixture_model(FIX, mc, backend_cpu(), true);
    FixtureResult rs = fixture_run(ms, ps, SIMPO), rr = fixture_run(mr, ps, SIMPO);
    fixture_check_same(base, &rs, ms->nparams, "strict backend vs CPU");
    fixture_check_same(base, &rr, mr->nparams, "recompute vs saved activations");
    free(rs.grads), free(rr.grads);
    model_free(ms), model_free(mr);
    char *mdir = fixture_path(fx("model"));
    Model *m3 = model_create_ex(mc, backend_cpu(), 256, NULL, 3, 0);
    model_load_hf(m3, mdir);
    FixtureResult a = fixture_run_three_in_flight(m3, ps), b = fixture_run_one_at_a_time(m3, ps);
    fixture_check_same(&a, &b, m3->nparams, "3 slots in flight vs one at a time");
    free(a.grads), free(b.grads);
    model_free(m3);
    free(mdir);
}

/* ---- 5. the biases act ---- */

static void bias_checks(const ModelConfig *mc, const PairSet *ps, const FixtureResult *base) {
    Model *q = g2_fixture_model(FIX, mc, backend_cpu(), false);
    ModelConfig lc = *mc;
    lc.arch = ARCH_LLAMA;
    lc.qkv_bias = false;
    Model *l = model_create(&lc, backend_cpu(), 256, NULL, 1);
    CHECK(l->nspecs == q->nspecs - 6, "the Llama model of the same shapes has 6 tensors fewer");
    /* the Llama model gets every weight of the Qwen2 one; the Qwen2 model's biases become zero */
    for (int i = 0; i < l->nspecs; i++) {
        const ParamSpec *p = model_find_param(q, l->specs[i].name);
        CHECK(p && p->numel == l->specs[i].numel, "%s in both", l->specs[i].name);
        if (p) memcpy(l->params + l->specs[i].offset, q->params + p->offset, p->numel * sizeof(float));
    }
    model_params_set_done(l);
    int nb = 0;
    for (int i = 0; i < q->nspecs; i++)
        if (q->specs[i].role == P_BQ || q->specs[i].role == P_BK || q->specs[i].role == P_BV) {
            memset(q->params + q->specs[i].offset, 0, q->specs[i].numel * sizeof(float));
            nb++;
        }
    model_params_set_done(q);
    FixtureResult rq = fixture_run(q, ps, SIMPO), rl = fixture_run(l, ps, SIMPO);
    int same = 1, grads_same = 1;
    double moved = 0;
    for (int s = 0; s < 12; s++) {
        same &= memcmp(&rq.seq[s].sum, &rl.seq[s].sum, sizeof(double)) == 0;
        moved = fmax(moved, fabs(rq.seq[s].sum - base->seq[s].sum) / fabs(base->seq[s].sum));
    }
    for (int i = 0; i < l->nspecs; i++) {
        const ParamSpec *p = model_find_param(q, l->specs[i].name);
        if (p) grads_same &= memcmp(rq.grads + p->offset, rl.grads + l->specs[i].offset, p->numel * 4) == 0;
    }
    printf("qwen2 with zero biases vs Llama: log-probs %s; the fixture's biases move them by %.3g relative\n",
           same ? "bitwise equal" : "DIFFER", moved);
    CHECK(nb == 6 && same && rq.loss == rl.loss, "qwen2 with zero biases differs from Llama with the same weights");
    CHECK(grads_same, "qwen2 with zero biases: the weights' gradients differ from Llama's");
    CHECK(moved > 1e-3, "the fixture's biases hardly change the log-probs (%.3g): are they applied?", moved);
    free(rq.grads), free(rl.grads);
    model_free(q), model_free(l);
}

/* Qwen3: each layer's q and k norm gains scaled by 1.5 move the log-probs (the norms are applied, with their gains) */
static void qk_norm_checks(const ModelConfig *mc, const PairSet *ps, const FixtureResult *base) {
    Model *q = g2_fixture_model(FIX, mc, backend_cpu(), false);
    for (int i = 0; i < q->nspecs; i++)
        if (q->specs[i].role == P_QN || q->specs[i].role == P_KN)
            for (size_t e = 0; e < q->specs[i].numel; e++) q->params[q->specs[i].offset + e] *= 1.5f;
    model_params_set_done(q);
    FixtureResult r = fixture_run(q, ps, SIMPO);
    double moved = 0;
    for (int s = 0; s < 12; s++) moved = fmax(moved, fabs(r.seq[s].sum - base->seq[s].sum) / fabs(base->seq[s].sum));
    printf("qwen3: the q / k norm gains x 1.5 move the log-probs by %.3g relative\n", moved);
    CHECK(moved > 1e-3, "qwen3: scaling the q / k norm gains hardly changes the log-probs (%.3g)", moved);
    free(r.grads);
    model_free(q);
}

/* ---- 6. bf16 ---- */

static void bf16_checks(const cJSON *exp, const ModelConfig *mc, const PairSet *ps, const FixtureResult *f32) {
    char *mdir = fixture_path(fx("model"));
    FixtureResult r[2];
    size_t nparams = 0;
    const Backend *bes[2] = {backend_cpu(), backend_cpu_strict()};
    for (int k = 0; k < 2; k++) {
        const Backend *be = bes[k];
        be->set_matmul_bf16(true);
        ModelOpts o = {.autocast16 = true};
        Model *m = model_create_opts(mc, be, 256, NULL, 1, &o);
        model_load_hf(m, mdir);
        bool q2 = mc->qkv_bias;
        CHECK(m->proj16 && m->bwd_pack, "%s: autocast storage, the projections' backward packed where it can", FIX);
        nparams = m->nparams;
        r[k] = fixture_run(m, ps, SIMPO);
        char tag[3][64]; /* Qwen3 (its norms on bf16 rows: rmsnorm_fwd_b16 / _bwd_b16; q, k, v unpacked) or Mistral */
        snprintf(tag[0], sizeof tag[0], "%s autocast ", FIX);
        snprintf(tag[1], sizeof tag[1], "%s autocast, prefix sharing ", FIX);
        snprintf(tag[2], sizeof tag[2], "%s exact bf16 ", FIX);
        if (k == 0 && !q2) {
            check_fixture_bf16_at(exp, m, r[0].seq, r[0].loss, r[0].met, sqrt(model_grad_sumsq(m)), r[0].grads,
                                  f32->seq, tag[0], fx("grads.safetensors"));
            FixtureResult sh = fixture_run_shared(m, ps, SIMPO);
            check_fixture_bf16_at(exp, m, sh.seq, sh.loss, sh.met, sqrt(model_grad_sumsq(m)), sh.grads, f32->seq,
                                  tag[1], fx("grads.safetensors"));
            free(sh.grads);
            /* and in exact bf16 storage: the norms on fp32 rows */
            ModelOpts ex = {0};
            Model *me = model_create_opts(mc, be, 256, NULL, 1, &ex);
            model_load_hf(me, mdir);
            CHECK(!me->proj16 && me->act16, "%s: exact bf16 storage when autocast is not asked for", FIX);
            FixtureResult re = fixture_run(me, ps, SIMPO);
            check_fixture_bf16_at(exp, me, re.seq, re.loss, re.met, sqrt(model_grad_sumsq(me)), re.grads, f32->seq,
                                  tag[2], fx("grads.safetensors"));
            int differ = 0;
            for (int i = 0; i < 12; i++) differ += re.seq[i].sum != r[0].seq[i].sum;
            CHECK(differ > 0, "%s: autocast storage gives exact storage's log-probs: are q, k rounded?", FIX);
            free(re.grads);
            model_free(me);
        }
        if (k == 0 && q2) {
            check_fixture_bf16_at(exp, m, r[0].seq, r[0].loss, r[0].met, sqrt(model_grad_sumsq(m)), r[0].grads,
                                  f32->seq, "qwen2 autocast ", fx("grads.safetensors"));
            FixtureResult sh = fixture_run_shared(m, ps, SIMPO);
            check_fixture_bf16_at(exp, m, sh.seq, sh.loss, sh.met, sqrt(model_grad_sumsq(m)), sh.grads, f32->seq,
                                  "qwen2 autocast, prefix sharing ", fx("grads.safetensors"));
            free(sh.grads);
            /* unpacked: the biases' gradients from dq, dk, dv apart instead of the packed rows, the same sums */
            m->bwd_pack = false;
            FixtureResult three = fixture_run(m, ps, SIMPO);
            m->bwd_pack = true;
            check_fixture_bf16_at(exp, m, three.seq, three.loss, three.met, sqrt(model_grad_sumsq(m)), three.grads,
                                  f32->seq, "qwen2 autocast, unpacked ", fx("grads.safetensors"));
            double bmax = 0, bdiff = 0;
            for (int i = 0; i < m->nspecs; i++) {
                const ParamSpec *p = &m->specs[i];
                if (p->role != P_BQ && p->role != P_BK && p->role != P_BV) continue;
                for (size_t e = p->offset; e < p->offset + p->numel; e++) {
                    bmax = fmax(bmax, fabs(r[0].grads[e]));
                    bdiff = fmax(bdiff, fabs((double)three.grads[e] - r[0].grads[e]));
                }
            }
            printf("qwen2 autocast: the biases' gradients packed vs unpacked differ by %.3g of the largest\n",
                   bdiff / bmax);
            CHECK(bdiff <= 0x1p-8 * bmax, "qwen2 autocast: the biases' gradients packed vs unpacked: %.3g", bdiff / bmax);
            free(three.grads);
        }
        be->set_matmul_bf16(false);
        model_free(m);
    }
    fixture_check_same(&r[1], &r[0], nparams, "bf16: strict vs CPU");
    free(r[0].grads), free(r[1].grads);
    free(mdir);
}

/* ---- 7. HF export and import ---- */

static void hf_checks(Model *m) {
    char *dir = sd_path_join(tmpdir, "hf");
    model_export_hf(m, dir, (size_t)1 << 30);
    ModelConfig mc2 = model_config_load(dir);
    char *j1 = model_config_to_json(&m->mc), *j2 = model_config_to_json(&mc2);
    bool q2 = m->qkv_bias, q3 = m->qk_norm;
    CHECK(!strcmp(j1, j2) && strstr(j2, q2 ? "Qwen2ForCausalLM" : q3 ? "Qwen3ForCausalLM" : "MistralForCausalLM"),
          "exported config.json reads back differently");
    free(j1), free(j2);
    StDir *d = st_open_dir(dir);
    const char *own = q2 ? "model.layers.1.self_attn.v_proj.bias"
                      : q3 ? "model.layers.1.self_attn.k_norm.weight" : "model.layers.1.self_attn.o_proj.weight";
    CHECK(d->ntensors == m->nspecs && st_find(d, own), "%d tensors exported, %d parameters", d->ntensors, m->nspecs);
    st_close(d);
    Model *m2 = model_create(&mc2, backend_cpu(), 1, NULL, 1);
    model_load_hf(m2, dir);
    CHECK(m2->nparams == m->nparams && memcmp(m2->params, m->params, m->nparams * 4) == 0,
          "export then import changes the parameters");
    model_free(m2);
    free(dir);
}

/* ---- 8. KV-cached decoding ---- */

static double fed_logp(Generator *g, const int *prompt, int np, const int *resp, int nr, int V) {
    gen_reset(g);
    const float *lg = gen_feed(g, prompt, np);
    double sum = 0;
    for (int i = 0; i < nr; i++) {
        double mx = -INFINITY, se = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, lg[j]);
        for (int j = 0; j < V; j++) se += exp((double)lg[j] - mx);
        sum += (double)lg[resp[i]] - mx - log(se);
        if (i + 1 < nr) lg = gen_feed(g, &resp[i], 1);
    }
    return sum;
}

static void generate_checks(const cJSON *exp, Model *m, const PairSet *ps) {
    Generator *g = gen_create(m, 256);
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst = 0;
    for (int i = 0; i < (int)ps->n; i++) {
        const Pair *p = &ps->pairs[i];
        const cJSON *e = cJSON_GetArrayItem(pj, i);
        double w = fed_logp(g, p->prompt, p->n_prompt, p->chosen, p->n_chosen, m->V);
        double l = fed_logp(g, p->prompt, p->n_prompt, p->rejected, p->n_rejected, m->V);
        worst = fmax(worst, fmax(fabs(w - jnum(e, "chosen_logp")) / fabs(jnum(e, "chosen_logp")),
                                 fabs(l - jnum(e, "rejected_logp")) / fabs(jnum(e, "rejected_logp"))));
    }
    printf("%s decoder (KV cache) vs the fixture's log-probs: worst relative error %.3g\n", FIX, worst);
    CHECK(worst <= 1e-5, "%s decoder log-probs off the fixture's by %.3g relative", FIX, worst);
    gen_free(g);
}

int main(int argc, char **argv) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sd_qwen_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    config_checks();
    comm_init(&argc, &argv); /* the trainer's runs (fixture_checks) */
    /* tiny-m1, a Mistral v0.1 (Llama with a sliding window of 8 on every layer, which its sequences pass), comes
     * from the same script: its numbers through every path below but the Qwen-only ones */
    const char *fixtures[3] = {"tiny-q2", "tiny-q3", "tiny-m1"};
    for (int f = 0; f < 3; f++) {
        FIX = fixtures[f];
        printf("---- %s\n", FIX);
        cJSON *exp = load_json(fx("expected.json"));
        ModelConfig mc = g2_fixture_model_config(FIX);
        CHECK(f == 0   ? mc.arch == ARCH_QWEN2 && mc.qkv_bias && !mc.qk_norm
              : f == 1 ? mc.arch == ARCH_QWEN3 && mc.qk_norm && !mc.qkv_bias &&
                             mc.head_dim * mc.num_attention_heads != mc.hidden_size
                       : mc.arch == ARCH_LLAMA && mc.sliding_window == 8 && !mc.qk_norm && !mc.qkv_bias,
              "%s is read as %s", FIX,
              f == 0 ? "qwen2" : f == 1 ? "qwen3 (head_dim apart from hidden / heads)" : "mistral (a window of 8)");
        if (f < 2) table_checks(&mc);
        PairSet *ps = g2_fixture_pairs(FIX, &mc);
        Model *m = g2_fixture_model(FIX, &mc, backend_cpu(), false);
        FixtureResult base = fixture_run(m, ps, SIMPO);
        path_checks(&mc, ps, &base);
        if (f == 0) bias_checks(&mc, ps, &base);
        else if (f == 1) qk_norm_checks(&mc, ps, &base);
        bf16_checks(exp, &mc, ps, &base);
        hf_checks(m);
        generate_checks(exp, m, ps);
        fixture_checks(exp, &mc, ps);
        free(base.grads);
        model_free(m);
        pairs_free(ps);
        cJSON_Delete(exp);
    }
    comm_finalize();
    fixture_remove_tmpdir(tmpdir);
    TEST_END();
}
