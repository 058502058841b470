/* cmd_plan.c — `simpo_dist plan CONFIG.yaml --gpus N [--gpu-mem GiB] [--link-gbps G] [--node-gpus K]
 * [--nvlink-gbps G] [--tflops T]`: before queueing, every (dp, pp, tp, zero) layout of N ranks that the model and
 * batch allow, with per-rank memory (src/plan.c, the formulas the trainer's own "memory plan" lines are checked
 * against) and a predicted step time, ranked. Assumptions of the time model are printed with the table and
 * documented in docs/running.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "config.h"
#include "plan.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist plan CONFIG.yaml --gpus N [--gpu-mem GiB] [--node-gpus K] [--link-gbps G]\n"
    "                       [--nvlink-gbps G] [--tflops T] [--top K]\n"
    "  Lists every layout (dp x pp x tp, zero 0/1/2) of N ranks the model and batch allow, ranked by predicted step\n"
    "  time among those whose largest rank fits --gpu-mem (default 80). Memory per rank: src/plan.c (the formulas\n"
    "  the trainer checks its allocations against). Step time: matmul FLOPs / (--tflops, default 400 per rank)\n"
    "  plus the pipeline bubble, plus communication: tensor-parallel all-reduces over NVLink (--nvlink-gbps, default\n"
    "  3600 Gbit/s) when tp <= --node-gpus (default 8), data-parallel gradient traffic over --link-gbps (default\n"
    "  400 Gbit/s per rank), ring volumes. Sequences are assumed full length (data.max_length).\n"
    "  train.recompute: true (activation recomputation) plans the smaller activations and adds each layer's forward\n"
    "  again, a third of the layers' matmul FLOPs (2 x tokens x layer parameters + a third of the attention).\n";

typedef struct {
    int dp, pp, tp, zero;
    double mem_gib, t_compute, t_bubble, t_comm, t_step, tokens_per_s;
} Row;

static int cmp_rows(const void *a, const void *b) {
    const Row *x = a, *y = b;
    return x->t_step < y->t_step ? -1 : x->t_step > y->t_step;
}

int cmd_plan(int argc, char **argv) {
    const char *cfg_path = NULL;
    double gpus = 0, mem = 80, node = 8, link = 400, nvlink = 3600, tflops = 400, top = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        double *dst = !strcmp(argv[i], "--gpus") ? &gpus : !strcmp(argv[i], "--gpu-mem") ? &mem
                    : !strcmp(argv[i], "--node-gpus") ? &node : !strcmp(argv[i], "--link-gbps") ? &link
                    : !strcmp(argv[i], "--nvlink-gbps") ? &nvlink : !strcmp(argv[i], "--tflops") ? &tflops
                    : !strcmp(argv[i], "--top") ? &top : NULL;
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
    Config *c = config_load(cfg_path);
    ModelConfig mc = c->model_init ? model_config_load(c->model_init) : c->model_config;
    int N = (int)gpus, L = mc.num_hidden_layers;
    size_t max_tokens = (size_t)2 * (size_t)c->micro_batch_pairs * (size_t)c->max_length;
    Row *rows = sd_alloc(sizeof(Row) * 3 * (size_t)N * (size_t)N, "plan rows");
    int nr = 0;
    for (int tp = 1; tp <= N; tp++)
        for (int pp = 1; pp <= N / tp; pp++) {
            if (N % (tp * pp) || mc.num_key_value_heads % tp || mc.intermediate_size % tp || mc.vocab_size % tp ||
                pp > L)
                continue;
            int dp = N / (tp * pp);
            if (c->global_batch_pairs % (dp * c->micro_batch_pairs)) continue;
            int n_mb = c->global_batch_pairs / dp / c->micro_batch_pairs;
            for (int zero = 0; zero <= 2; zero++) {
                if (dp == 1 && zero > 0) continue;
                Row r = {dp, pp, tp, zero, 0, 0, 0, 0, 0, 0};
                double flops_max = 0, comm_max = 0;
                for (int stage = 0; stage < pp; stage++) {
                    PlanLayout pl = {mc, dp, tp, pp, zero, 0, 0, stage, max_tokens, n_mb, c->recompute};
                    MemPlan mp = plan_memory(&pl);
                    r.mem_gib = fmax(r.mem_gib, (double)mp.total / 1073741824.0);
                    /* matmul FLOPs of the stage: 6 x tokens x (its parameters, head included) + attention */
                    double tokens = (double)max_tokens * n_mb, ctx = c->max_length / 2.0;
                    int count = L / pp + (stage < L % pp);
                    double attn = 12.0 * count * (double)mc.num_attention_heads / tp * mc.head_dim * ctx * tokens;
                    double fl = 6.0 * tokens * (double)mp.params + attn;
                    /* recompute reruns each layer's forward: 1/3 of the layers' 6 x tokens x params and of attention
                     * (a slight overestimate: the rerun stops before the down projection) */
                    if (c->recompute) fl += 2.0 * tokens * (double)mp.layer_params + attn / 3.0;
                    flops_max = fmax(flops_max, fl);
                    size_t *tok = sd_alloc(sizeof(size_t) * 2 * (size_t)n_mb, "tokens"), *resp = tok + n_mb;
                    for (int i = 0; i < n_mb; i++) tok[i] = max_tokens, resp[i] = max_tokens / 2;
                    uint64_t bytes[COLL_KINDS];
                    plan_step_bytes(&pl, tok, resp, bytes);
                    free(tok);
                    /* TP all-reduces over NVLink inside a node; DP (and PP) traffic over the inter-node link.
                     * Ring: all-reduce moves 2(p-1)/p of its buffer per rank, the others (p-1)/p. */
                    double tp_bw = (tp <= node ? nvlink : link) * 1e9 / 8, dp_bw = link * 1e9 / 8;
                    double grads = 4.0 * (double)mp.params;
                    double t_dp = dp > 1 ? (zero == 2 ? 2.0 : zero == 1 ? 3.0 : 2.0) * (dp - 1.0) / dp * grads / dp_bw : 0;
                    double t_tp = tp > 1 ? 2.0 * (tp - 1.0) / tp * ((double)bytes[COLL_ALLREDUCE] - (dp > 1 && zero < 2 ? grads : 0)) / tp_bw : 0;
                    double t_pp = pp > 1 ? (double)bytes[COLL_SENDRECV] / dp_bw : 0;
                    comm_max = fmax(comm_max, t_dp + t_tp + t_pp);
                }
                r.t_compute = flops_max / (tflops * 1e12);
                r.t_bubble = r.t_compute * (pp - 1.0) / n_mb;
                r.t_comm = comm_max;
                r.t_step = r.t_compute + r.t_bubble + r.t_comm;
                r.tokens_per_s = (double)max_tokens * n_mb * dp / r.t_step;
                if (r.mem_gib <= mem) rows[nr++] = r;
                else if (getenv("SIMPO_PLAN_ALL")) { r.t_step = INFINITY; rows[nr++] = r; }
            }
        }
    qsort(rows, (size_t)nr, sizeof(Row), cmp_rows);
    printf("# %d ranks, %.0f GiB each, %d layers, %d pairs/step, micro-batch %d pairs x %d tokens%s; "
           "%.0f TFLOP/s per rank, NVLink %.0f Gbit/s (tp <= %d), link %.0f Gbit/s\n",
           N, mem, L, c->global_batch_pairs, c->micro_batch_pairs, c->max_length,
           c->recompute ? ", recompute" : "", tflops, nvlink, (int)node, link);
    printf("%-4s %-4s %-4s %-5s %12s %12s %10s %10s %10s %14s\n", "dp", "pp", "tp", "zero", "mem_GiB", "step_s",
           "compute_s", "bubble_s", "comm_s", "tokens/s/rank");
    for (int i = 0; i < nr && i < (int)top; i++)
        printf("%-4d %-4d %-4d %-5d %12.3f %12.4f %10.4f %10.4f %10.4f %14.0f\n", rows[i].dp, rows[i].pp, rows[i].tp,
               rows[i].zero, rows[i].mem_gib, rows[i].t_step, rows[i].t_compute, rows[i].t_bubble, rows[i].t_comm,
               rows[i].tokens_per_s / N);
    if (nr == 0) printf("# no layout fits %.0f GiB per rank\n", mem);
    free(rows);
    config_free(c);
    return nr ? 0 : 1;
}
