/* cmd_plan.c — `simpo_dist plan CONFIG.yaml --gpus N [--gpu-mem GiB] [--link-gbps G] [--node-gpus K]
 * [--nvlink-gbps G] [--tflops T | --rates FILE] [--dtype D] [--recompute B] [--recompute-layers N]
 * [--global-batch-pairs P] [--shared-prompt T | --from-data] [--top K]`:
 * before queueing, every (dp, pp, tp, zero) layout of N ranks that the model and batch allow, with per-rank memory
 * (src/plan.c, the formulas the trainer's own "memory plan" lines are checked against) and a predicted step time,
 * ranked. The time model is either one rate for all matmul FLOPs (--tflops) or the measured rates of a GPU
 * (--rates bench/rates/<gpu>.json: GEMM, attention forward and backward, and an overhead factor that makes the
 * file's own benchmarked step come out at its measured time). Assumptions are printed with the table and
 * documented in docs/running.md; the rates file's fields in bench/rates/README.md. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "config.h"
#include "model.h"
#include "pairs.h"
#include "plan.h"
#include "train_data.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist plan CONFIG.yaml --gpus N [--gpu-mem GiB] [--node-gpus K] [--link-gbps G]\n"
    "                       [--nvlink-gbps G] [--tflops T | --rates FILE] [--dtype fp32|bf16]\n"
    "                       [--recompute true|false|auto] [--recompute-layers N]\n"
    "                       [--bf16-weight-cache true|false|auto]\n"
    "                       [--lmhead-cache true|false|auto] [--bf16-storage exact|autocast]\n"
    "                       [--recompute-activation true|false] [--recompute-norm true|false]\n"
    "                       [--sequence-parallel true|false] [--overlap-grad-reduce true|false]\n"
    "                       [--global-batch-pairs P]\n"
    "                       [--shared-prompt T | --from-data] [--top K]\n"
    "  Lists every layout (dp x pp x tp, zero 0/1/2/3) of N ranks the model and batch allow, ranked by predicted\n"
    "  step time among those whose largest rank fits --gpu-mem (default 80). Memory per rank: src/plan.c (the\n"
    "  formulas the trainer checks its allocations against). Step time: the busiest pipeline stage's compute, plus\n"
    "  the pipeline bubble ((pp - 1) / micro-batches of it), plus communication: tensor-parallel all-reduces over\n"
    "  NVLink (--nvlink-gbps, default 3600 Gbit/s) when tp <= --node-gpus (default 8), data-parallel gradient\n"
    "  traffic and pipeline sends over --link-gbps (default 400 Gbit/s per rank), or over NVLink where their group\n"
    "  lies in a node (pipeline: a block of tp x pp ranks that divides the node; data-parallel: the whole job),\n"
    "  ring volumes. Overlap: only the data-parallel reduction of the gradient (parallel.overlap_grad_reduce):\n"
    "  under zero 0 / 1 (on by default) its units run beside the stage's last backward (two thirds of a\n"
    "  micro-batch's compute), under zero 2 / 3 (with a second bucket buffer in memory: true, or auto where it\n"
    "  fits --gpu-mem after the recompute and the caches, as the trainer on a GPU) every micro-batch's\n"
    "  bucket reduce-scatters beside two thirds of the stage's compute; except, either way, the stage's first\n"
    "  layer and an embedding in the gradient buffer, which complete at the end; and under zero 3 with\n"
    "  parallel.zero3_prefetch (the default; a second layer gather buffer in memory) the layers' all-gathers beside\n"
    "  the stage's compute, all but the first of each forward and backward. The rest of the traffic is timed after\n"
    "  the compute.\n"
    "  Sequences are assumed full length (data.max_length); with --shared-prompt T each pair's prompt is T of those\n"
    "  tokens, which data.prefix_sharing (default on) runs through the layers once: their memory, matmul FLOPs and\n"
    "  collectives count 2 x max_length - T tokens per pair (attention and the LM head all 2 x max_length).\n"
    "  --from-data reads the config's data instead (data.train or data.prepared, truncated as the trainer does):\n"
    "  memory for the largest micro-batch it can form (the trainer's own sizing), time for an average one.\n"
    "  Compute: matmul FLOPs (6 x tokens x (layer parameters + the LM head on the last stage)) plus causal attention (4 x tokens x max_length/2\n"
    "  x heads x head_dim per layer forward, twice that backward), all at --tflops (default 400 per rank); or with\n"
    "  --rates FILE (measured rates, e.g. bench/rates/h200.json; see bench/rates/README.md) the matmuls at the\n"
    "  file's GEMM rate for the model's dtype, the attention forward and backward at its attention rates, times\n"
    "  the overhead factor of the non-matmul work (elementwise ops, optimizer) that makes the file's benchmarked\n"
    "  step (steps.<dtype>, or steps.<dtype>_recompute under recompute when the file has it) come out at its\n"
    "  measured time. A rate or step the file lacks for the dtype is an error naming the file and the key.\n"
    "  train.recompute: true (activation recomputation) plans the smaller activations and adds each layer's forward\n"
    "  again, a third of the layers' matmul FLOPs (2 x tokens x layer parameters) and one more attention forward;\n"
    "  with train.recompute_layers N only for a stage's first N layers. --recompute auto (train.recompute: auto, the\n"
    "  config's default) picks, per layout, as the\n"
    "  trainer does, the cheapest recompute that makes the largest rank fit --gpu-mem: none; the MLP's activation\n"
    "  function (train.recompute_activation); it and the projections' normed inputs (train.recompute_norm); those\n"
    "  and the fewest layers per stage (1, ..., all). It prints the count in a last column (the\n"
    "  train.recompute_layers to run it with; all: train.recompute: true), +act when it also recomputes the\n"
    "  activation (train.recompute_activation: true), +norm the norms (train.recompute_norm: true).\n"
    "  What-if overrides of the config for the plan only: --dtype (model.dtype: which rates of FILE), --recompute\n"
    "  (train.recompute), --recompute-layers (train.recompute: true with train.recompute_layers N),\n"
    "  --bf16-weight-cache (train.bf16_weight_cache: in bf16 a bf16 copy of the matmul weights, 2 bytes each;\n"
    "  auto, the config's default: per layout kept where the plan with it, the config's recompute and the whole\n"
    "  logits cache fits --gpu-mem, else dropped before any recompute, as the trainer does on a GPU; a column\n"
    "  bf16_weights says on or off),\n"
    "  --lmhead-cache (train.lmhead_cache: the last stage's logits, log-prob rows x vocab/tp, fp32, or bf16 in\n"
    "  autocast storage; the rows: max_tokens, 2 x (max_length - T) per pair with --shared-prompt T, the data's\n"
    "  with --from-data; auto, the config's default: per layout for bf16 logits where it fits --gpu-mem after the\n"
    "  recompute, as the trainer does on a GPU, shown in a last column: on, off, or K/NL, the first K of NL rows in\n"
    "  whole LM-head chunks where not all fit), --bf16-storage (model.bf16_storage:\n"
    "  autocast keeps the q, k, v, gate and up projections and attention's output at 2 bytes),\n"
    "  --recompute-activation (train.recompute_activation: the MLP's hidden state once per rank instead of per\n"
    "  layer), --recompute-norm (train.recompute_norm: ln1 and ln2 likewise), --sequence-parallel\n"
    "  (parallel.sequence_parallel: where tp > 1 the hidden-size rows of the layers' inputs, norms and residuals a\n"
    "  1/tp block per rank, the pipeline's messages too; its reduce-scatters and all-gathers over TP timed at\n"
    "  (tp - 1) / tp of their buffers), --overlap-grad-reduce (parallel.overlap_grad_reduce: false times the\n"
    "  whole reduction after the backward, true overlaps zero 2 / 3's too, also where it does not fit),\n"
    "  --global-batch-pairs\n"
    "  (train.global_batch_pairs). The caches, --recompute-activation and --recompute-norm change memory only: the\n"
    "  time model counts neither the conversions the weight copy saves, nor the LM-head GEMM the logits cache\n"
    "  saves, nor the elementwise passes again.\n";

typedef struct {
    int dp, pp, tp, zero;
    int rc;   /* train.recompute_layers of the row (layers per stage; INT_MAX: all) */
    bool act; /* train.recompute_activation of the row */
    bool norm; /* train.recompute_norm of the row */
    /* train.lmhead_cache of the row: the last stage keeps the logits of hc_rows of its hc_full log-prob rows (0: no
     * cache; hc_full: all of them; between: a partial cache under auto, whole chunks) */
    size_t hc_rows, hc_full;
    bool w16; /* train.bf16_weight_cache of the row (auto's choice): the bf16 weight copy kept */
    double mem_gib, t_compute, t_bubble, t_comm, t_step, tokens_per_s;
    MemPlan mem;  /* the plan of its largest stage (mem_gib), for the config's layout's breakdown */
    int mem_stage;
} Row;

/* The measured rates of one dtype from a rates file (TFLOP/s), and the overhead factor derived from its step. */
typedef struct {
    double gemm, attn_fwd, attn_bwd;
    double bwd_ratio;       /* attention backward FLOPs per forward FLOP that attn_bwd is quoted at (2.5) */
    double overhead;        /* measured step time / modelled step time (GEMM + attention) of the file's benchmark */
    double step_s, model_s; /* that benchmark step: measured, and modelled before the overhead */
    char step_key[40];      /* steps.<dtype>[_recompute] */
    char gpu[96], date[32];
} Rates;

/* FLOPs of one pipeline stage in one step: matmuls, the attention forward, and the attention forward that the
 * recomputing layers run again. */
typedef struct { double matmul, attn_fwd, attn_rerun; } StageFlops;

/* tokens: of the sequences (attention, the LM head); layer_tokens: what the layers see (fewer under prefix sharing) */
/* att_len: the sequences' length for attention, sum s^2 / sum s (max_length when every sequence is full) */
static StageFlops stage_flops(const ModelConfig *mc, int tp, int layers, int rerun_layers, double tokens,
                              double layer_tokens, double att_len, const MemPlan *mp, bool last) {
    StageFlops f;
    /* causal attention forward: QK^T and PV over half the square, 4 x tokens x (att_len / 2) x NH HD per layer */
    double per_layer = 4.0 * (double)mc->num_attention_heads / tp * mc->head_dim * (att_len / 2.0) * tokens;
    f.attn_fwd = layers * per_layer;
    f.attn_rerun = rerun_layers * per_layer;
    /* 6 x tokens x the stage's layer parameters, plus the LM head's 6 x tokens x V/tp x C on the last stage (an
     * upper bound: the model forms logits on the response rows only); the input embedding is a lookup, no matmul.
     * Recompute reruns each recomputing layer's forward, 1/3 of its matmuls (a slight overestimate: the rerun stops
     * before the down projection) */
    double head = last ? (double)mc->vocab_size / tp * mc->hidden_size : 0;
    f.matmul = 6.0 * (layer_tokens * (double)mp->layer_params + tokens * head) +
               2.0 * layer_tokens * (double)mp->rerun_params;
    return f;
}

/* Seconds of compute of a stage: at --tflops (backward attention 2x forward), or at the measured rates. */
static double stage_seconds(StageFlops f, const Rates *r, double tflops) {
    double fwd = f.attn_fwd + f.attn_rerun;
    if (!r) return (f.matmul + 2.0 * f.attn_fwd + fwd) / (tflops * 1e12);
    return r->overhead * (f.matmul / r->gemm + fwd / r->attn_fwd + r->bwd_ratio * f.attn_fwd / r->attn_bwd) / 1e12;
}

/* The item at a dotted path ("a.b.c") of a rates file, or dies naming the file and the key. */
static const cJSON *jget(const cJSON *root, const char *file, const char *key, const char *why) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", key);
    const cJSON *o = root;
    for (char *s = buf, *dot; o; s = dot + 1) {
        dot = strchr(s, '.');
        if (dot) *dot = 0;
        o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, s) : NULL;
        if (!dot) break;
    }
    if (!o) sd_die(file, "no key '%s' (%s)", key, why);
    if (cJSON_IsNull(o))
        sd_die(file, "key '%s' is null: not measured yet (%s; run the benchmark named in the file's \"source\" and fill "
                     "it in, or plan with --tflops)", key, why);
    return o;
}

static double jrate(const cJSON *root, const char *file, const char *key, const char *why) {
    const cJSON *o = jget(root, file, key, why);
    if (!cJSON_IsNumber(o) || !(o->valuedouble > 0))
        sd_die(file, "key '%s': expected a positive number (%s)", key, why);
    return o->valuedouble;
}

static void jstr(const cJSON *root, const char *key, char *out, size_t n) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key);
    snprintf(out, n, "%s", cJSON_IsString(o) ? o->valuestring : "?");
}

/* Reads the rates of `dtype` from FILE, and derives the overhead factor from the file's measured step of that dtype
 * (steps.<dtype>_recompute when planning with recompute and the file has it, else steps.<dtype>): the step's model
 * shape, planned on one rank with the same FLOP count as the layouts, at the file's rates, against its step_s. */
static Rates rates_load(const char *file, const char *dtype, bool recompute) {
    char *text = sd_read_file(file, NULL);
    if (!text) sd_die(file, "cannot read the rates file (--rates; e.g. bench/rates/h200.json)");
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        sd_die(file, "invalid JSON (expected a rates object, bench/rates/README.md)");
    }
    sd_cleanup_push((void (*)(void *))cJSON_Delete, root);
    Rates r;
    memset(&r, 0, sizeof r);
    char key[96], why[96];
    snprintf(why, sizeof why, "the GEMM rate the plan needs for model.dtype %s", dtype);
    snprintf(key, sizeof key, "matmul_tflops.%s", dtype);
    r.gemm = jrate(root, file, key, why);
    snprintf(why, sizeof why, "the attention rates the plan needs for model.dtype %s", dtype);
    snprintf(key, sizeof key, "attention_tflops.%s.fwd", dtype);
    r.attn_fwd = jrate(root, file, key, why);
    snprintf(key, sizeof key, "attention_tflops.%s.bwd", dtype);
    r.attn_bwd = jrate(root, file, key, why);
    r.bwd_ratio = jrate(root, file, "attention_bwd_flops_per_fwd", "how many forward FLOPs the backward rates count");
    /* the measured whole step */
    char rc_name[32];
    snprintf(rc_name, sizeof rc_name, "%s_recompute", dtype);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    const cJSON *rc = cJSON_IsObject(steps) ? cJSON_GetObjectItemCaseSensitive(steps, rc_name) : NULL;
    snprintf(r.step_key, sizeof r.step_key, "steps.%s", recompute && cJSON_IsObject(rc) ? rc_name : dtype);
    snprintf(why, sizeof why, "the measured %s step the overhead factor comes from", dtype);
    const cJSON *st = jget(root, file, r.step_key, why);
    if (!cJSON_IsObject(st)) sd_die(file, "key '%s': expected an object (%s)", r.step_key, why);
    snprintf(key, sizeof key, "%s.model", r.step_key);
    const cJSON *m = jget(root, file, key, "the benchmarked model's shape, config.json keys");
    char *mtext = cJSON_PrintUnformatted(m);
    if (!mtext) sd_die(file, "cannot serialise '%s'", key);
    sd_cleanup_push(free, mtext);
    char where[256];
    snprintf(where, sizeof where, "%s: %s.model", file, r.step_key);
    ModelConfig mc = model_config_from_json(mtext, where);
    sd_cleanup_pop();
    free(mtext);
    snprintf(key, sizeof key, "%s.pairs_per_step", r.step_key);
    double pairs = jrate(root, file, key, "pairs of the benchmarked step");
    snprintf(key, sizeof key, "%s.seq_len", r.step_key);
    double seq = jrate(root, file, key, "tokens per sequence of the benchmarked step");
    snprintf(key, sizeof key, "%s.step_s", r.step_key);
    r.step_s = jrate(root, file, key, "the measured step time");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(st, "recompute");
    if (src && !cJSON_IsBool(src)) sd_die(file, "key '%s.recompute': expected true or false", r.step_key);
    bool step_rc = cJSON_IsTrue(src);
    if (step_rc != (strstr(r.step_key, "_recompute") != NULL))
        sd_die(file, "key '%s.recompute' is %s: steps.<dtype> is measured without train.recompute, "
                     "steps.<dtype>_recompute with it", r.step_key, step_rc ? "true" : "false");
    /* the prompt tokens each pair of the benchmark shared under prefix sharing (optional; 0: none) */
    snprintf(key, sizeof key, "%s.shared_prompt", r.step_key);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(st, "shared_prompt");
    if (sp && (!cJSON_IsNumber(sp) || sp->valuedouble < 0 || sp->valuedouble >= seq))
        sd_die(file, "key '%s': expected the prompt tokens each pair shared, 0 .. %g", key, seq - 1);
    double shared = sp ? sp->valuedouble : 0;
    size_t tokens = (size_t)(2 * pairs * seq), layer_tokens = (size_t)(pairs * (2 * seq - shared));
    PlanLayout pl = {mc, 1, 1, 1, 0, 0, 0, 0, layer_tokens, 1, step_rc ? INT_MAX : 0, strcmp(dtype, "bf16") == 0,
                     false, false, false, false, tokens, 0, 0, 0, false, false, false, false};
    MemPlan mp = plan_memory(&pl);
    StageFlops f = stage_flops(&mc, 1, mc.num_hidden_layers, plan_recompute_layers(&pl, 0), (double)tokens,
                               (double)layer_tokens, seq, &mp, true);
    r.overhead = 1.0;
    r.model_s = stage_seconds(f, &r, 0);
    r.overhead = r.step_s / r.model_s;
    jstr(root, "gpu", r.gpu, sizeof r.gpu);
    jstr(root, "date", r.date, sizeof r.date);
    sd_cleanup_pop();
    cJSON_Delete(root);
    if (r.overhead < 1.0)
        fprintf(stderr, "simpo_dist: %s: note: %s runs faster (%.3f s) than its GEMMs and attention at the file's "
                        "rates (%.3f s): check the rates\n", file, r.step_key, r.step_s, r.model_s);
    return r;
}

/* What every layout of one plan shares: the config, the model, the speed model, the links. */
typedef struct {
    const Config *c;
    const ModelConfig *mc;
    const char *dtype;
    const Rates *rt, *rt_rc; /* the rates file's rates without and with recompute; or both NULL: tflops */
    double tflops, node, nvlink, link;
    /* memory: the largest micro-batch, tokens of its sequences and in the layers' layout (fewer under prefix sharing:
     * --shared-prompt, or the data's prompts with --from-data) */
    size_t max_tokens, layer_max;
    size_t lp_max; /* log-prob rows of the largest micro-batch (the LM-head logits cache); 0: max_tokens */
    double budget; /* --gpu-mem in bytes: what train.lmhead_cache: auto fits the cache into */
    /* time: a micro-batch on average, the same two counts and its response tokens; attention's sequence length */
    double tok_mb, layer_tok_mb, resp_mb, att_len;
    /* train.micro_batch_tokens with --from-data: the data and the held-out pairs (NULL: none; their cuts by tokens
     * are replayed per dp), the run's steps */
    PairSet *data, *eval;
    long steps;
} PlanCtx;

/* train.micro_batch_tokens: x as the trainer cuts the micro-batches on dp ranks: the largest one (memory), how many a
 * rank holds at most (*n_mb: the slots) and on average (*n_avg: the time), and their mean sizes. With --from-data the
 * run's own cuts (src/train_data.h train_token_sizes); on the planner's full-length pairs, all alike, as many pairs a
 * micro-batch as the budget holds (at least one), the rank's pairs spread evenly over the fewest micro-batches. */
static PlanCtx token_ctx(const PlanCtx *x, int dp, int *n_mb, double *n_avg) {
    const Config *c = x->c;
    PlanCtx y = *x;
    long B_loc = c->global_batch_pairs / dp;
    if (x->data) {
        TokenSizes ts = train_token_sizes(c, x->data, 0, 0, x->steps, dp);
        y.layer_max = ts.tok, y.max_tokens = ts.att, y.lp_max = ts.lp;
        if (x->eval) train_eval_token_sizes(c, x->eval, dp, &y.layer_max, &y.max_tokens, &y.lp_max);
        *n_mb = ts.kmax > 0 ? ts.kmax : 1, *n_avg = ts.kmean > 0 ? ts.kmean : 1;
        y.tok_mb = ts.att_step / *n_avg, y.layer_tok_mb = ts.tok_step / *n_avg, y.resp_mb = ts.lp_step / *n_avg;
        return y;
    }
    size_t mbp = (size_t)c->micro_batch_pairs, per = x->layer_max / mbp; /* one pair's tokens in the layers */
    long q = (long)((size_t)c->micro_batch_tokens / (per ? per : 1)), k, g;
    q = q < 1 ? 1 : q > B_loc ? B_loc : q;
    k = (B_loc + q - 1) / q, g = (B_loc + k - 1) / k; /* micro-batches, and the pairs of the largest */
    y.layer_max = (size_t)g * per, y.max_tokens = (size_t)g * (x->max_tokens / mbp);
    y.lp_max = (size_t)g * (x->lp_max / mbp);
    double pairs = (double)B_loc / (double)k; /* a micro-batch's pairs on average */
    y.tok_mb = x->tok_mb / (double)mbp * pairs, y.layer_tok_mb = x->layer_tok_mb / (double)mbp * pairs;
    y.resp_mb = x->resp_mb / (double)mbp * pairs;
    *n_mb = (int)k, *n_avg = (double)k;
    return y;
}

/* memory and step time of the layout (dp, pp, tp, zero) recomputing rl layers per stage (0: none; INT_MAX: all), and
 * the MLP's activation when act, the normed inputs when norm, with the LM-head logits cache as hc (LMHEAD_CACHE_*;
 * auto: as train.c pick_head_cache, the last stage's bf16 logits, all or the whole chunks that fit x->budget; so a
 * stage fits with it exactly when it fits without it) (memory only, all three: the time model counts neither the
 * elementwise passes again nor the GEMM the cache saves) */
static Row eval_layout(const PlanCtx *x, int dp, int pp, int tp, int zero, int rl, bool act, bool norm, int hc) {
    const Config *c = x->c;
    const ModelConfig *mc = x->mc;
    int L = mc->num_hidden_layers, n_mb = c->global_batch_pairs / dp / c->micro_batch_pairs;
    double n_avg = n_mb; /* micro-batches a rank runs on average (the time); n_mb: at most (the slots) */
    PlanCtx tx;
    if (c->micro_batch_tokens > 0) tx = token_ctx(x, dp, &n_mb, &n_avg), x = &tx;
    size_t max_tokens = x->max_tokens;
    Row r = {dp, pp, tp, zero, rl, act, norm, 0, 0, true, 0, 0, 0, 0, 0, 0, {0}, 0};
    double t_max = 0, comm_max = 0;
    bool bf16 = strcmp(x->dtype, "bf16") == 0, no_copy = false;
    for (int stage = 0; stage < pp; stage++) {
        PlanLayout pl = {*mc, dp, tp, pp, zero, 0, 0, stage, x->layer_max, n_mb, rl, bf16,
                         bf16 && c->bf16_weight_cache != WEIGHT_CACHE_OFF, hc == LMHEAD_CACHE_ON,
                         bf16 && !strcmp(c->bf16_storage, "autocast"), act, max_tokens, x->lp_max, norm, 0,
                         false, c->sequence_parallel && tp > 1,
                         zero >= 2 && dp > 1 && c->overlap_grad_reduce == OVERLAP_GRAD_ON, c->zero3_prefetch};
        pl.sparse_embed = config_sparse_embed(c, mc->tie_word_embeddings, dp, plan_embed_in_one_shard(&pl)); /* as
                                                                                                  * the trainer */
        if (zero >= 3 && dp > 1) { /* ZeRO-3 keeps the copy (as train.c) and shards it, or the fp32 weights */
            pl.weights16 = bf16;
            if (bf16 && c->bf16_weight_cache == WEIGHT_CACHE_OFF) no_copy = true; /* the trainer refuses it */
        } else if (bf16 && c->bf16_weight_cache == WEIGHT_CACHE_AUTO) { /* as train.c pick_weight_cache: the config's
                                                                  * recompute, before auto's */
            PlanLayout wl = pl;
            wl.recompute_layers = c->recompute == RECOMPUTE_ON ? config_recompute_layers(c) : 0;
            wl.recompute_act = c->recompute_activation, wl.recompute_norm = c->recompute_norm;
            pl.weights16 = plan_weights16_fit(wl, x->budget, hc != LMHEAD_CACHE_OFF);
            r.w16 = r.w16 && pl.weights16;
        }
        if (stage == pp - 1) {
            r.hc_full = model_head_cache_rows(x->layer_max, x->lp_max, (int)(mc->vocab_size / tp), true, 0);
            if (hc == LMHEAD_CACHE_AUTO) {
                pl.lmhead_cache_rows = plan_head_cache_fit(pl, x->budget);
                pl.lmhead_cache = pl.lmhead_cache_rows > 0;
            }
            r.hc_rows = !pl.lmhead_cache ? 0 : pl.lmhead_cache_rows ? pl.lmhead_cache_rows : r.hc_full;
        }
        if (zero >= 2 && dp > 1 && c->overlap_grad_reduce == OVERLAP_GRAD_AUTO) { /* as train.c pick_grad_buffers */
            PlanLayout bl = pl;
            bl.grad_buffers2 = true;
            pl.grad_buffers2 = (double)plan_memory(&bl).total <= x->budget;
        }
        MemPlan mp = plan_memory(&pl);
        if ((double)mp.total / 1073741824.0 >= r.mem_gib) r.mem = mp, r.mem_stage = stage;
        r.mem_gib = fmax(r.mem_gib, (double)mp.total / 1073741824.0);
        double tokens = x->tok_mb * n_avg;
        int count = L / pp + (stage < L % pp);
        StageFlops f = stage_flops(mc, tp, count, plan_recompute_layers(&pl, stage), tokens, x->layer_tok_mb * n_avg,
                                   x->att_len, &mp, stage == pp - 1);
        /* measured rates: the overhead factor of the file's step without recompute, moved towards that of its step
         * with recompute by the share of this stage's layers that recompute */
        Rates mix;
        const Rates *rt = x->rt;
        if (rt && count > 0) {
            mix = *x->rt;
            mix.overhead += (x->rt_rc->overhead - x->rt->overhead) * plan_recompute_layers(&pl, stage) / count;
            rt = &mix;
        }
        double t_stage = stage_seconds(f, rt, x->tflops);
        t_max = fmax(t_max, t_stage);
        PlanLayout bl = pl; /* the traffic of the average count of average micro-batches */
        bl.n_mb = n_avg > 1 ? (int)lround(n_avg) : 1;
        size_t *tok = sd_alloc(sizeof(size_t) * 2 * (size_t)bl.n_mb, "tokens"), *resp = tok + bl.n_mb;
        for (int i = 0; i < bl.n_mb; i++) tok[i] = (size_t)x->layer_tok_mb, resp[i] = (size_t)x->resp_mb;
        uint64_t bytes[COLL_KINDS], tpb[COLL_KINDS]; /* tpb: the TP group's part */
        plan_step_bytes(&bl, tok, resp, 0, bytes, tpb);
        /* A group's traffic goes over NVLink when the group lies inside a node, else over the inter-node link.
         * Ranks are placed TP innermost, then PP, then DP (mpi/comm.c grid_rank): a TP group is tp consecutive
         * ranks, a PP group lies in a block of tp x pp consecutive ranks (inside a node when the block divides
         * it), a DP group spans the whole job. Ring: all-reduce moves 2(p-1)/p of its buffer per rank, the others
         * (p-1)/p. */
        int node = (int)x->node, block = pp * tp;
        double tp_bw = (tp <= x->node ? x->nvlink : x->link) * 1e9 / 8;
        double dp_bw = (dp * block <= node ? x->nvlink : x->link) * 1e9 / 8;
        double pp_bw = (dp * block <= node || (block <= node && node % block == 0) ? x->nvlink : x->link) * 1e9 / 8;
        double grads = 4.0 * (double)mp.params;
        /* ZeRO-0: one all-reduce of the gradient; ZeRO-1: that and an all-gather of the parameters (fp32, or under
         * sharded master weights the bf16 copy and the fp32-read parameters); ZeRO-2: a reduce-scatter of every
         * micro-batch's gradient buckets (model.h GradPartition; overlapped only with two bucket buffers) and the
         * all-gather; ZeRO-3: those, and the all-gathers of the layers' compute weights (twice per micro-batch) */
        /* the TP group's reduce-scatters and all-gathers (sequence parallelism) are not the data-parallel ones */
        double dp_gathered = (double)(bytes[COLL_ALLGATHER] - tpb[COLL_ALLGATHER]);
        double gather = zero >= 1 ? (plan_params_sharded(&pl) ? dp_gathered : grads) : 0;
        double reduce = zero >= 2 ? (double)(bytes[COLL_REDUCE_SCATTER] - tpb[COLL_REDUCE_SCATTER]) : 2.0 * grads;
        double t_reduce = dp > 1 ? reduce * (dp - 1.0) / dp / dp_bw : 0;
        if (dp > 1 && (zero <= 1 ? c->overlap_grad_reduce != OVERLAP_GRAD_OFF : pl.grad_buffers2)) {
            /* parallel.overlap_grad_reduce: under zero 0 / 1 (mpi/grad_allreduce.h) the units the stage's last
             * backward completes run beside the rest of it (two thirds of a micro-batch's compute); under zero 2 / 3
             * each micro-batch's buckets beside the rest of its backward and the next micro-batches' work (two
             * thirds of the stage's compute). What completes at the end (the stage's first layer, then an embedding
             * whose gradient is in the flat buffer: a dense one, or a tied one, which the pipeline sums after the
             * step, the last stage's mirror too; under zero 2 / 3 the last micro-batch's) runs after it. */
            double emb = (double)(mc->vocab_size / tp) * mc->hidden_size;
            bool tied = mc->tie_word_embeddings;
            double tail = (count ? (double)mp.layer_params / count : 0) +
                          (stage == 0 && (tied || !pl.sparse_embed) ? emb : 0) +
                          (stage == pp - 1 && pp > 1 && tied ? emb : 0);
            double per = zero <= 1 ? 1.0 : n_avg; /* the gradients the reduction carries, in the stage's */
            double t_tail = t_reduce * fmin(1.0, tail / ((double)mp.params * per));
            t_reduce = fmax(t_tail, t_reduce - t_stage * 2.0 / 3.0 / (zero <= 1 ? n_avg : 1.0));
        }
        double t_gather = dp > 1 ? gather * (dp - 1.0) / dp / dp_bw : 0;
        if (plan_zero3(&pl) && pl.zero3_prefetch && count > 1) {
            /* parallel.zero3_prefetch: each layer's gather runs beside the layer before's compute, all but the
             * first of each forward and backward (two per micro-batch); at most the stage's compute hides them */
            double t_layers = 2.0 * n_avg * count * (double)mp.gather_layer * (dp - 1.0) / dp / dp_bw;
            t_gather -= t_layers - fmax(t_layers / count, t_layers - t_stage);
        }
        double t_dp = t_reduce + t_gather;
        /* the TP group's own bytes (the step's all-reduces over DP, whatever their form, are not its: the sparse
         * embedding's is not 4 x params); sequence parallelism's reduce-scatters and all-gathers move (p-1)/p of
         * their buffers */
        double t_tp = tp > 1 ? (2.0 * (double)tpb[COLL_ALLREDUCE] + (double)tpb[COLL_REDUCE_SCATTER] +
                                (double)tpb[COLL_ALLGATHER]) * (tp - 1.0) / tp / tp_bw
                             : 0;
        double t_pp = pp > 1 ? (double)bytes[COLL_SENDRECV] / pp_bw : 0;
        free(tok);
        comm_max = fmax(comm_max, t_dp + t_tp + t_pp);
    }
    if (no_copy) r.mem_gib = INFINITY; /* the trainer refuses zero 3 there (bf16 without the copy): never listed */
    r.t_compute = t_max;
    r.t_bubble = r.t_compute * (pp - 1.0) / n_avg;
    r.t_comm = comm_max;
    r.t_step = r.t_compute + r.t_bubble + r.t_comm;
    r.tokens_per_s = x->tok_mb * n_avg * dp / r.t_step;
    return r;
}

/* --from-data: the config's data (data.train or data.prepared, and data.eval, truncated as the trainer does): the memory of the
 * largest micro-batch the trainer would size for (pairs.h pairs_largest_microbatch), the time of an average one */
static void plan_from_data(PlanCtx *x, const ModelConfig *mc) {
    const Config *c = x->c;
    PairSet *ps = train_data_load(c, mc->vocab_size);
    pairs_truncate(ps, c->max_length, c->max_prompt_length);
    int mbp = c->micro_batch_pairs;
    PairSet *ev = train_eval_data_load(c, mc->vocab_size); /* data.eval's pairs run through the same activations */
    train_data_sizes(c, ps, ev, &x->layer_max, &x->max_tokens, &x->lp_max);
    if (ev && c->micro_batch_tokens > 0) x->eval = ev; /* token_ctx cuts it per dp */
    else if (ev) pairs_free(ev);
    double tok = 0, layer = 0, resp = 0, s1 = 0, s2 = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const Pair *p = &ps->pairs[i];
        tok += (double)pair_tokens(p, false);
        layer += (double)pair_tokens(p, c->prefix_sharing);
        resp += (double)pair_logprob_rows(p);
        for (int r = 0; r < 2; r++) {
            double len = p->n_prompt + (r ? p->n_rejected : p->n_chosen);
            s1 += len, s2 += len * len;
        }
    }
    double per_mb = (double)mbp / (double)ps->n;
    x->tok_mb = tok * per_mb, x->layer_tok_mb = layer * per_mb, x->resp_mb = resp * per_mb;
    x->att_len = s1 > 0 ? s2 / s1 : 0;
    if (c->micro_batch_tokens > 0) { /* kept: each layout's dp replays its cuts (token_ctx) */
        x->steps = train_total_steps(c, ps->n, NULL);
        x->data = ps;
    } else pairs_free(ps);
}

static int cmp_rows(const void *a, const void *b) {
    const Row *x = a, *y = b;
    return x->t_step < y->t_step ? -1 : x->t_step > y->t_step;
}

int cmd_plan(int argc, char **argv) {
    const char *cfg_path = NULL, *rates_path = NULL, *dtype_arg = NULL, *recompute_arg = NULL, *w16_arg = NULL,
               *hc_arg = NULL, *bs_arg = NULL, *ra_arg = NULL, *rn_arg = NULL, *sp_arg = NULL,
               *og_arg = NULL;
    double gpus = 0, mem = 80, node = 8, link = 400, nvlink = 3600, tflops = 0, top = 20, batch = 0, rl_arg = 0,
           shared = 0;
    bool from_data = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        const char **sdst = !strcmp(argv[i], "--rates") ? &rates_path : !strcmp(argv[i], "--dtype") ? &dtype_arg
                          : !strcmp(argv[i], "--recompute") ? &recompute_arg
                          : !strcmp(argv[i], "--bf16-weight-cache") ? &w16_arg
                          : !strcmp(argv[i], "--lmhead-cache") ? &hc_arg
                          : !strcmp(argv[i], "--bf16-storage") ? &bs_arg
                          : !strcmp(argv[i], "--recompute-activation") ? &ra_arg
                          : !strcmp(argv[i], "--recompute-norm") ? &rn_arg
                          : !strcmp(argv[i], "--sequence-parallel") ? &sp_arg
                          : !strcmp(argv[i], "--overlap-grad-reduce") ? &og_arg : NULL;
        if (sdst) {
            if (i + 1 >= argc) sd_die("plan", "%s needs a value", argv[i]);
            *sdst = argv[++i];
            continue;
        }
        double *dst = !strcmp(argv[i], "--gpus") ? &gpus : !strcmp(argv[i], "--gpu-mem") ? &mem
                    : !strcmp(argv[i], "--node-gpus") ? &node : !strcmp(argv[i], "--link-gbps") ? &link
                    : !strcmp(argv[i], "--nvlink-gbps") ? &nvlink : !strcmp(argv[i], "--tflops") ? &tflops
                    : !strcmp(argv[i], "--top") ? &top : !strcmp(argv[i], "--global-batch-pairs") ? &batch
                    : !strcmp(argv[i], "--recompute-layers") ? &rl_arg
                    : !strcmp(argv[i], "--shared-prompt") ? &shared : NULL;
        if (!dst && !strcmp(argv[i], "--from-data")) {
            from_data = true;
            continue;
        }
        if (!dst) {
            if (argv[i][0] == '-' || cfg_path) sd_die("plan", "unknown argument '%s' (see simpo_dist plan --help)", argv[i]);
            cfg_path = argv[i];
            continue;
        }
        char *end;
        if (i + 1 >= argc) sd_die("plan", "%s needs a value", argv[i]);
        *dst = strtod(argv[++i], &end);
        if (*end || !(*dst > 0)) sd_die("plan", "%s: expected a positive number, found '%s'", argv[i - 1], argv[i]);
    }
    if (!cfg_path || gpus < 1 || gpus != floor(gpus)) sd_die("plan", "CONFIG.yaml and --gpus N are required (see --help)");
    if (rates_path && tflops > 0) sd_die("plan", "--tflops and --rates exclude each other (the rates file gives the speed)");
    if (tflops == 0) tflops = 400;
    if (dtype_arg && strcmp(dtype_arg, "fp32") && strcmp(dtype_arg, "bf16"))
        sd_die("plan", "--dtype: expected fp32 or bf16, found '%s'", dtype_arg);
    /* --recompute auto: per layout the fewest layers per stage whose recompute fits --gpu-mem */
    bool rc_auto = recompute_arg && !strcmp(recompute_arg, "auto"); /* or the config's train.recompute: auto, below */
    if (rc_auto && rl_arg) sd_die("plan", "--recompute auto chooses the layers itself: leave out --recompute-layers");
    const char *bools[7][2] = {{"--recompute", rc_auto ? NULL : recompute_arg}, {"--bf16-weight-cache", w16_arg},
                               {"--lmhead-cache", hc_arg}, {"--recompute-activation", ra_arg},
                               {"--recompute-norm", rn_arg}, {"--sequence-parallel", sp_arg},
                               {"--overlap-grad-reduce", og_arg}};
    for (int b = 0; b < 7; b++)
        if (bools[b][1] && strcmp(bools[b][1], "true") && strcmp(bools[b][1], "false") &&
            (b > 2 || b == 0 || strcmp(bools[b][1], "auto")))
            sd_die("plan", "%s: expected true or false%s, found '%s'", bools[b][0], b <= 2 ? " (or auto)" : "",
                   bools[b][1]);
    if (batch && batch != floor(batch)) sd_die("plan", "--global-batch-pairs: expected a whole number");
    if (rl_arg && (rl_arg != floor(rl_arg) || rl_arg > INT_MAX))
        sd_die("plan", "--recompute-layers: expected a whole number of layers");
    if (rl_arg && recompute_arg && !strcmp(recompute_arg, "false"))
        sd_die("plan", "--recompute-layers and --recompute false exclude each other");
    Config *c = config_load(cfg_path);
    if (!recompute_arg && !rl_arg && c->recompute == RECOMPUTE_AUTO) rc_auto = true;
    if (recompute_arg)
        c->recompute = !strcmp(recompute_arg, "true") ? RECOMPUTE_ON : rc_auto ? RECOMPUTE_AUTO : RECOMPUTE_OFF;
    if (rl_arg) c->recompute = RECOMPUTE_ON, c->recompute_layers = (int)rl_arg;
    if (c->recompute != RECOMPUTE_ON) c->recompute_layers = 0; /* --recompute false overrides the config's count */
    if (w16_arg)
        c->bf16_weight_cache = !strcmp(w16_arg, "true")   ? WEIGHT_CACHE_ON
                               : !strcmp(w16_arg, "auto") ? WEIGHT_CACHE_AUTO
                                                          : WEIGHT_CACHE_OFF;
    const char *dt = dtype_arg ? dtype_arg : c->model_dtype ? c->model_dtype : "fp32";
    bool w16_auto = c->bf16_weight_cache == WEIGHT_CACHE_AUTO && !strcmp(dt, "bf16"); /* its column */
    if (hc_arg)
        c->lmhead_cache = !strcmp(hc_arg, "true") ? LMHEAD_CACHE_ON : !strcmp(hc_arg, "auto") ? LMHEAD_CACHE_AUTO
                                                                                            : LMHEAD_CACHE_OFF;
    bool hc_auto = c->lmhead_cache == LMHEAD_CACHE_AUTO;
    if (ra_arg) c->recompute_activation = !strcmp(ra_arg, "true");
    if (rn_arg) c->recompute_norm = !strcmp(rn_arg, "true");
    if (sp_arg) c->sequence_parallel = !strcmp(sp_arg, "true");
    if (og_arg) c->overlap_grad_reduce = !strcmp(og_arg, "true") ? OVERLAP_GRAD_ON : OVERLAP_GRAD_OFF;
    if (bs_arg && strcmp(bs_arg, "exact") && strcmp(bs_arg, "autocast"))
        sd_die("plan", "--bf16-storage: expected exact or autocast, found '%s'", bs_arg);
    if (bs_arg) free(c->bf16_storage), c->bf16_storage = sd_strdup(bs_arg);
    if (batch) c->global_batch_pairs = (int)batch;
    if (c->global_batch_pairs % c->micro_batch_pairs)
        sd_die("plan", "--global-batch-pairs %d: train.micro_batch_pairs (%d) must divide it", c->global_batch_pairs,
               c->micro_batch_pairs);
    const char *dtype = dtype_arg ? dtype_arg : c->model_dtype ? c->model_dtype : "fp32";
    /* measured rates: the file's step without recompute and with it (its recompute step where it has one), the
     * overhead factor of a stage taken between the two by its share of recomputed layers (eval_layout); rt: the
     * one of the plan's setting, for the header */
    Rates rates0, rates1, *rt = NULL;
    if (rates_path) {
        rates0 = rates_load(rates_path, dtype, false);
        rates1 = rates_load(rates_path, dtype, true);
        rt = c->recompute == RECOMPUTE_ON ? &rates1 : &rates0;
    }
    ModelConfig mc = c->model_init ? model_config_load(c->model_init) : c->model_config;
    int N = (int)gpus, L = mc.num_hidden_layers;
    size_t max_tokens = (size_t)2 * (size_t)c->micro_batch_pairs * (size_t)c->max_length;
    if (shared < 0 || shared >= c->max_length || shared != floor(shared))
        sd_die("plan", "--shared-prompt %g: expected the prompt tokens of each pair, 0 .. data.max_length - 1 (%d)",
               shared, c->max_length - 1);
    /* prefix sharing: each pair's prompt once in the layers (data.prefix_sharing; without it --shared-prompt is moot) */
    size_t layer_tokens = max_tokens - (c->prefix_sharing ? (size_t)c->micro_batch_pairs * (size_t)shared : 0);
    Row *rows = sd_alloc(sizeof(Row) * 3 * (size_t)N * (size_t)N, "plan rows");
    /* with --shared-prompt T the responses are max_length - T tokens each: the log-prob rows; else at most
     * max_tokens */
    size_t lp_max = shared > 0 ? (size_t)2 * (size_t)c->micro_batch_pairs * (size_t)(c->max_length - shared) : 0;
    PlanCtx px = {c, &mc, dtype, rt ? &rates0 : NULL, rt ? &rates1 : NULL, tflops, node, nvlink, link, max_tokens,
                  layer_tokens, lp_max, mem * 1073741824.0, (double)max_tokens, (double)layer_tokens,
                  (double)max_tokens / 2, c->max_length, NULL, NULL, 0};
    char sizes[160];
    snprintf(sizes, sizeof sizes, "micro-batch %d pairs x %d tokens", c->micro_batch_pairs, c->max_length);
    if (c->micro_batch_tokens > 0)
        snprintf(sizes, sizeof sizes, "micro-batches of up to %d tokens of pairs of %d", c->micro_batch_tokens,
                 c->max_length);
    if (from_data) {
        if (shared > 0) sd_die("plan", "--shared-prompt and --from-data exclude each other (the data has its prompts)");
        plan_from_data(&px, &mc);
        snprintf(sizes, sizeof sizes, "micro-batch %d pairs of the data: at most %zu tokens (%zu in the layers), "
                 "%.0f on average", c->micro_batch_pairs, px.max_tokens, px.layer_max, px.tok_mb);
        if (c->micro_batch_tokens > 0)
            snprintf(sizes, sizeof sizes, "micro-batches of up to %d tokens of the data's pairs, cut as the run's "
                     "steps cut them", c->micro_batch_tokens);
    }
    int nr = 0;
    for (int tp = 1; tp <= N; tp++)
        for (int pp = 1; pp <= N / tp; pp++) {
            if (N % (tp * pp) || mc.num_key_value_heads % tp || mc.intermediate_size % tp || mc.vocab_size % tp ||
                pp > L)
                continue;
            int dp = N / (tp * pp);
            if (c->global_batch_pairs % (dp * (c->micro_batch_tokens > 0 ? 1 : c->micro_batch_pairs))) continue;
            for (int zero = 0; zero <= 3; zero++) {
                if (dp == 1 && zero > 0) continue;
                Row r;
                if (rc_auto) { /* as train.c pick_recompute (plan_recompute_step's ladder): the first step that fits,
                                * or all layers (the row may not fit) */
                    int most = L / pp + (L % pp > 0);
                    for (int s = 0;; s++) {
                        RecomputeStep st = plan_recompute_step(s, c->recompute_activation, c->recompute_norm);
                        r = eval_layout(&px, dp, pp, tp, zero, st.layers == most ? INT_MAX : st.layers, st.act,
                                        st.norm, c->lmhead_cache);
                        if (r.mem_gib <= mem || st.layers >= most) break;
                    }
                } else
                    r = eval_layout(&px, dp, pp, tp, zero, config_recompute_layers(c), c->recompute_activation,
                                    c->recompute_norm, c->lmhead_cache);
                if (r.mem_gib <= mem) rows[nr++] = r;
                else if (getenv("SIMPO_PLAN_ALL")) { r.t_step = INFINITY; rows[nr++] = r; }
            }
        }
    qsort(rows, (size_t)nr, sizeof(Row), cmp_rows);
    char speed[512];
    if (rt)
        snprintf(speed, sizeof speed, "%s rates of %s (%s, %s): GEMM %.1f, attention fwd %.1f / bwd %.1f TFLOP/s, "
                 "overhead x%.3f", dtype, rates_path, rt->gpu, rt->date, rt->gemm, rt->attn_fwd, rt->attn_bwd,
                 rt->overhead);
    else snprintf(speed, sizeof speed, "%.0f TFLOP/s per rank", tflops);
    char rc_note[96] = "";
    if (rc_auto) snprintf(rc_note, sizeof rc_note, ", recompute auto (the fewest layers per stage that fit)");
    else if (c->recompute == RECOMPUTE_ON && c->recompute_layers > 0)
        snprintf(rc_note, sizeof rc_note, ", recompute (%d layers per stage)", c->recompute_layers);
    else if (c->recompute == RECOMPUTE_ON) snprintf(rc_note, sizeof rc_note, ", recompute");
    if (c->sequence_parallel) /* appended: the note has room for both */
        snprintf(rc_note + strlen(rc_note), sizeof rc_note - strlen(rc_note), ", sequence parallel");
    printf("# %d ranks, %g GiB each, %d layers, %d pairs/step, %s%s; %s, NVLink %.0f Gbit/s (tp <= %d), link %.0f "
           "Gbit/s\n", N, mem, L, c->global_batch_pairs, sizes, rc_note, speed, nvlink, (int)node, link);
    if (rt)
        printf("# overhead = %s.step_s %.3f s measured / %.3f s of its GEMMs and attention at these rates\n",
               rt->step_key, rt->step_s, rt->model_s);
    printf("%-4s %-4s %-4s %-5s %12s %12s %10s %10s %10s %14s%s%s%s\n", "dp", "pp", "tp", "zero", "mem_GiB",
           "step_s", "compute_s", "bubble_s", "comm_s", "tokens/s/rank", rc_auto ? "  recompute_layers" : "",
           hc_auto ? "  lmhead_cache" : "", w16_auto ? "  bf16_weights" : "");
    for (int i = 0; i < nr && i < (int)top; i++) {
        char rcs[32] = "";
        /* auto's choice of the activation and the norms */
        const char *act = rows[i].act && !c->recompute_activation ? "+act" : "",
                   *nrm = rows[i].norm && !c->recompute_norm ? "+norm" : "";
        if (rc_auto && rows[i].rc == INT_MAX) snprintf(rcs, sizeof rcs, "  all%s%s", act, nrm);
        else if (rc_auto) snprintf(rcs, sizeof rcs, "  %d%s%s", rows[i].rc, act, nrm);
        char hcs[48] = "";
        if (hc_auto && rows[i].hc_rows && rows[i].hc_rows < rows[i].hc_full)
            snprintf(hcs, sizeof hcs, "  %zu/%zu", rows[i].hc_rows, rows[i].hc_full);
        else if (hc_auto) snprintf(hcs, sizeof hcs, "  %s", rows[i].hc_rows ? "on" : "off");
        printf("%-4d %-4d %-4d %-5d %12.3f %12.4f %10.4f %10.4f %10.4f %14.0f%s%s%s\n", rows[i].dp, rows[i].pp,
               rows[i].tp, rows[i].zero, rows[i].mem_gib, rows[i].t_step, rows[i].t_compute, rows[i].t_bubble,
               rows[i].t_comm, rows[i].tokens_per_s / N, rcs, hcs, w16_auto ? (rows[i].w16 ? "  on" : "  off") : "");
    }
    if (nr == 0) printf("# no layout fits %g GiB per rank\n", mem);
    /* the layout the config asks for (its parallel section), wherever it ranks */
    int want_dp = N % (c->tp * c->pp) == 0 ? N / (c->tp * c->pp) : 0, at = -1;
    for (int i = 0; i < nr && at < 0; i++)
        if (rows[i].dp == want_dp && rows[i].pp == c->pp && rows[i].tp == c->tp && rows[i].zero == c->zero) at = i;
    if (at >= 0) {
        const MemPlan *p = &rows[at].mem;
        const double G = 1073741824.0;
        printf("# the config's layout (dp %d pp %d tp %d zero %d): rank %d of %d, %.3f GiB, %.4f s/step\n", want_dp,
               c->pp, c->tp, c->zero, at + 1, nr, rows[at].mem_gib, rows[at].t_step);
        /* where a rank's memory goes (plan.c's terms; the trainer prints the same per rank at start) */
        printf("#   stage %d, its largest: weights %.3f, gradients %.3f, optimizer %.3f, bf16 weights %.3f, "
               "activations %.3f (of them the logits cache %.3f), other %.3f GiB\n", rows[at].mem_stage, p->weights / G,
               p->grads / G, p->optimizer / G, p->weights16 / G, p->activations / G, p->head_cache / G, p->other / G);
    } else
        printf("# the config's layout (tp %d pp %d zero %d on %d ranks) does not divide them, is not allowed by the "
               "model and batch, or does not fit %g GiB\n", c->tp, c->pp, c->zero, N, mem);
    free(rows);
    if (px.data) pairs_free(px.data);
    if (px.eval) pairs_free(px.eval);
    config_free(c);
    return nr ? 0 : 1;
}
