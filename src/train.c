/* train.c — see train.h. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"
#include "train_data.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "export_hf.h"
#include "tfevents.h"
#include "train_state.h"
#include "train_step.h"
#include "train_eval.h"
#include "backend_profile.h"
#include "plan.h"
#include "run_results.h"
#include "zero.h"
#include "grad_allreduce.h"
#include "comm.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "pairs.h"
#include "util.h"
#ifdef SIMPO_HAVE_CUDA
#include "backend_cuda.h"
#endif

/* Set by SIGTERM / SIGUSR1 (how Slurm and PBS pre-empt): finish the step, checkpoint, exit 0. */
static volatile sig_atomic_t g_stop_signal = 0;
static void on_stop_signal(int sig) { g_stop_signal = sig; }
static void install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

typedef struct {
    const Config *cfg;
    ProcessGrid *grid;
    Model *model;
    Optim *optim;
    ZeroPlan *plan;
    PairSet *data;
    uint64_t data_fp;           /* pairs_fingerprint(data): kept in checkpoints, compared on resume */
    PairSet *eval;              /* data.eval's held-out pairs (NULL: none) */
    LossParams lp;
    long steps_per_epoch, total_steps;
    long epoch, pos;            /* data position of the next unseen pair */
    int64_t tokens_seen;        /* tokens of the steps done (num_input_tokens_seen), kept in checkpoints */
    double total_flos;          /* their model FLOPs (total_flos) */
    size_t *order;              /* current epoch's order */
    long order_epoch;
    char *metrics_path;
    char *eval_path;            /* eval.jsonl beside metrics.jsonl */
    TfWriter *tf;               /* log.tensorboard_dir's event file (rank 0; NULL: none) */
    double loss_sum;            /* the finite losses of the steps this process ran, and how many (train_loss) */
    long loss_steps;
    EvalMetrics final_eval;     /* the evaluation after the last step (eval_results.json), when final_eval.pairs */
    GradAllreduce *gar;         /* ZeRO 0 / 1 over several DP ranks: the gradient's all-reduce in units (NULL: none) */
    ZeroBucketReq zreq[2];      /* ZeRO-2 with two bucket buffers: the reduce-scatter in flight from each */
    long zseq[2], zcount;       /* when each started (zero_sink_flush's order) */
    bool ztrace;                /* SIMPO_TRACE=dp */
} Trainer;

/* GradDone (model.h): a unit's part of the gradient is final (grad_allreduce_ready starts the units it completes) */
static void grad_units_done(void *ctx, Model *m, size_t off, size_t n) {
    (void)m;
    grad_allreduce_ready(ctx, off, n);
}

/* ZeRO >= 1 after the optimizer updated this rank's shard: every rank's weights whole again (the fp32 all-gather,
 * or under sharded master weights the bf16 copy's and the fp32-read parameters') */
static void gather_params(Trainer *t) {
    if (t->model->params_sharded) model_params_allgather(t->model);
    else zero_gather_params(t->grid, t->plan, t->model->params);
}

/* ZeRO-2: where the model hands each complete gradient bucket (model.h GradSink): reduce-scattered over the DP group
 * into this rank's shard; with two bucket buffers (parallel.overlap_grad_reduce) started here and completed in
 * zero_sink_wait, when the model takes the buffer again or the step ends (zero_sink_flush) */
static void zero_sink(void *ctx, Model *m, size_t off, float *buf, size_t n) {
    Trainer *t = ctx;
    float *bufs[2];
    if (model_grad_buffers(m, bufs) == 2 && (buf == bufs[0] || buf == bufs[1])) {
        int k = buf == bufs[1];
        zero_reduce_bucket_start(t->grid, t->plan, buf, off, n, model_grad_at(m, m->grads_from), &t->zreq[k]);
        t->zseq[k] = ++t->zcount;
        if (t->ztrace && t->grid->rank == 0)
            fprintf(stderr, "[dp] reduce-scatter of flat [%zu, %zu) started in the backward\n", off, off + n);
    } else { /* one buffer, or the tied embedding's gradient after the step */
        zero_reduce_bucket(t->grid, t->plan, buf, off, n, model_grad_at(m, m->grads_from));
    }
}
static void zero_sink_wait(void *ctx, Model *m, const float *buf) {
    Trainer *t = ctx;
    float *bufs[2];
    model_grad_buffers(m, bufs);
    zero_reduce_bucket_wait(t->grid, &t->zreq[buf == bufs[1]]);
}
/* the bucket sums still on their way, added into the shard in the order they started (the same bucket's sums of two
 * micro-batches add in the order the blocking path adds them) */
static void zero_sink_flush(Trainer *t) {
    int first = t->zseq[1] < t->zseq[0];
    zero_reduce_bucket_wait(t->grid, &t->zreq[first]);
    zero_reduce_bucket_wait(t->grid, &t->zreq[!first]);
}


/* checkpoint.check_data: the checkpoint at step_dir was written by a run on other training pairs (their count or
 * fingerprint differ; an older checkpoint without them passes): an error naming what changed, or with
 * checkpoint.check_data false a warning. Its data position indexes an epoch order of those pairs. */
static void check_resume_data(const Config *c, const char *step_dir, const PairSet *data, uint64_t fp, bool talk) {
    CkptReader *r = ckpt_open(step_dir);
    const CkptMeta *meta = ckpt_meta(r);
    int64_t pairs = meta->data_pairs;
    uint64_t was = meta->data_fingerprint;
    ckpt_close(r);
    if (!pairs || (pairs == (int64_t)data->n && was == fp)) return;
    char what[256];
    snprintf(what, sizeof what, "the checkpoint's run trained on %lld pairs (fingerprint %016llx), data.train now "
             "gives %zu (fingerprint %016llx)", (long long)pairs, (unsigned long long)was, data->n,
             (unsigned long long)fp);
    if (c->ckpt_check_data)
        sd_die(step_dir, "%s: the training data changed (another file or mixture, a Hub snapshot replaced in the cache: "
               "pin ORG/NAME@REVISION, another data.max_length, ...), and the checkpoint's data position would point "
               "into other pairs. Resume on the data it was trained on, start in another checkpoint.dir, or set "
               "checkpoint.check_data: false to resume anyway", what);
    if (talk)
        fprintf(stderr, "simpo_dist: warning: %s: %s; resuming anyway (checkpoint.check_data: false), its data "
                "position taken into the new pairs' order\n", step_dir, what);
}

static void load_checkpoint(Trainer *t, const char *step_dir) {
    StatePos at;
    state_load(step_dir, t->model, t->optim, &at);
    t->epoch = at.epoch, t->pos = at.pos, t->tokens_seen = at.tokens_seen, t->total_flos = at.total_flos;
    if (at.seed != t->cfg->seed && t->grid->rank == 0)
        fprintf(stderr, "simpo_dist: warning: resuming with train.seed %ld, the checkpoint used %ld\n", t->cfg->seed,
                at.seed);
}

/* checkpoint.export_hf: the newest checkpoint, the final one (step), as a Hugging Face model directory (the one
 * this run just wrote, or that its start verified: not read whole again to verify it) */
static void export_final(const Config *c, long step, bool bf16) {
    char *dir = ckpt_find_latest(c->ckpt_dir);
    if (!dir) sd_die(c->ckpt_dir, "no complete checkpoint to export (checkpoint.export_hf)");
    CkptReader *r = ckpt_open(dir);
    long at = ckpt_meta(r)->step;
    ckpt_close(r);
    if (at != step) sd_die(dir, "the newest checkpoint is of step %ld, not the last step %ld: not exported", at, step);
    export_hf(dir, c->export_hf, &(ExportOpts){.shard_bytes = 5000000000, .bf16 = bf16, .replace = true});
    free(dir);
}

/* Rank 0, once the last step is done: what the SimPO reference code (alignment-handbook's run script) saves at the
 * end, train_results.json, eval_results.json (after a final evaluation) and all_results.json (both), with
 * transformers' names, and trainer_state.json (its log history), into checkpoint.dir (run_results.h). runtime: seconds of this process's steps (steps of them); train_loss the
 * mean of their finite losses. */
static void write_results(const Trainer *t, double runtime, long steps) {
    const char *dir = t->cfg->ckpt_dir;
    double epoch = (double)t->optim->step / (double)t->steps_per_epoch, rt = runtime > 0 ? runtime : 1e-9;
    cJSON *tr = cJSON_CreateObject(), *all = cJSON_CreateObject();
    cJSON_AddNumberToObject(tr, "epoch", epoch);
    cJSON_AddNumberToObject(tr, "total_flos", t->total_flos);
    cJSON_AddNumberToObject(tr, "train_loss", t->loss_steps ? t->loss_sum / (double)t->loss_steps : NAN);
    cJSON_AddNumberToObject(tr, "train_runtime", runtime);
    cJSON_AddNumberToObject(tr, "train_samples", (double)t->data->n);
    cJSON_AddNumberToObject(tr, "train_samples_per_second",
                            (double)steps * (double)t->cfg->global_batch_pairs / rt);
    cJSON_AddNumberToObject(tr, "train_steps_per_second", (double)steps / rt);
    cJSON_AddNumberToObject(tr, "num_input_tokens_seen", (double)t->tokens_seen);
    for (cJSON *f = tr->child; f; f = f->next) cJSON_AddItemToObject(all, f->string, cJSON_Duplicate(f, 1));
    free(results_write_json(tr, dir, "train_results.json"));
    if (t->final_eval.pairs) { /* eval.jsonl's line of the last evaluation, without its step, with epoch and size */
        char *line = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&line, &n);
        if (!m) sd_die(dir, "eval_results.json: out of memory");
        eval_write(m, &t->final_eval);
        fclose(m);
        cJSON *ev = cJSON_Parse(line);
        free(line);
        if (!ev) sd_die(dir, "eval_results.json: the evaluation's line does not parse");
        cJSON_DeleteItemFromObject(ev, "step");
        cJSON_DeleteItemFromObject(ev, "eval_pairs");
        cJSON_AddNumberToObject(ev, "epoch", epoch);
        cJSON_AddNumberToObject(ev, "eval_samples", (double)t->final_eval.pairs);
        for (cJSON *f = ev->child; f; f = f->next)
            if (!cJSON_GetObjectItemCaseSensitive(all, f->string))
                cJSON_AddItemToObject(all, f->string, cJSON_Duplicate(f, 1));
        free(results_write_json(ev, dir, "eval_results.json"));
        cJSON_Delete(ev);
    }
    free(results_write_json(all, dir, "all_results.json"));
    const Config *c = t->cfg;
    TrainerStateInfo si = {.global_step = t->optim->step, .max_steps = t->total_steps,
                           .logging_steps = c->log_every_steps, .eval_steps = c->eval_every_steps,
                           .save_steps = c->ckpt_every_steps, .train_batch_size = c->micro_batch_pairs,
                           .epoch = epoch, .num_train_epochs = ceil((double)t->total_steps / (double)t->steps_per_epoch),
                           .total_flos = t->total_flos, .tokens_seen = (long long)t->tokens_seen, .final = tr};
    trainer_state_write(dir, &si);
    cJSON_Delete(tr);
    cJSON_Delete(all);
}

/* data.eval: the held-out pairs' metrics with the weights after step (0: the starting ones), into eval.jsonl.
 * Returns its wall seconds; under SIMPO_PROFILE (profiling) its ops are no step's: dropped from the profile. */
static double evaluate(Trainer *t, long step, bool quiet, bool profiling) {
    if (profiling) backend_profile_pause(true);
    EvalMetrics e = eval_run(t->grid, t->model, t->eval, &t->lp, t->cfg, step);
    e.tokens_seen = t->tokens_seen, e.total_flos = t->total_flos;
    if (step == t->total_steps) t->final_eval = e;
    if (profiling) backend_profile_pause(false);
    if (t->grid->rank == 0) {
        eval_log(&e, t->eval_path, quiet);
        if (t->tf) eval_tf(t->tf, &e);
    }
    comm_take_bytes(t->grid, (uint64_t[COLL_KINDS]){0}); /* no step's traffic */
    return e.seconds;
}

static void save_checkpoint(Trainer *t) {
    ProcessGrid *g = t->grid;
    const Config *c = t->cfg;
    char *cfg_yaml = config_to_yaml(c), *mc_json = model_config_to_json(&t->model->mc), layout[64];
    snprintf(layout, sizeof layout, "dp%d-pp%d-tp%d-zero%d", g->dp, g->pp, g->tp, c->zero);
    CkptMeta meta = {t->optim->step, t->epoch,   t->pos,           c->seed,        cfg_yaml,
                     mc_json,        layout,     t->optim->skipped, t->tokens_seen, t->total_flos,
                     (int64_t)t->data->n, t->data_fp};
    char *path = state_save(c->ckpt_dir, &meta, g, t->model, t->optim);
    if (path) {
        fprintf(stderr, "simpo_dist: checkpoint %s\n", path);
        ckpt_prune(c->ckpt_dir, c->ckpt_keep);
    }
    free(path);
    free(cfg_yaml);
    free(mc_json);
}

/* The global batch of step: fills idx[global_batch_pairs] and advances the data position. */
static void next_global_batch(Trainer *t, size_t *idx) {
    const size_t *b = train_batch_next(t->cfg, t->data->n, &t->epoch, &t->pos, t->order, &t->order_epoch);
    memcpy(idx, b, (size_t)t->cfg->global_batch_pairs * sizeof(size_t));
}

/* Keeps only metrics lines of steps <= upto (a resumed run rewrites what the interrupted one logged after its
 * last checkpoint). */
static void trim_metrics(const char *path, long upto) {
    size_t len;
    char *text = sd_read_file(path, &len);
    if (!text) return;
    char *out = sd_alloc(len + 1, "metrics");
    size_t o = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
        long s = -1;
        if (sscanf(line, "{\"step\": %ld", &s) == 1 && s <= upto) {
            memcpy(out + o, line, n);
            o += n;
        }
        line += n;
    }
    sd_write_file_atomic(path, out, o);
    free(out);
    free(text);
}

static void log_step(Trainer *t, const StepMetrics *sm, double elapsed, long steps_done_this_run, int quiet) {
    if (t->grid->rank != 0) return;
    double peak = t->cfg->peak_tflops;
    char mfu[48] = "", mfu_line[32] = ""; /* log.peak_tflops: the model FLOPs utilisation */
    if (peak > 0) {
        snprintf(mfu, sizeof mfu, ", \"mfu\": %.6g", sm->tflops / peak);
        snprintf(mfu_line, sizeof mfu_line, " | MFU %.1f%%", 100.0 * sm->tflops / peak);
    }
    double epoch = (double)sm->step / (double)t->steps_per_epoch;
    FILE *f = fopen(t->metrics_path, "a");
    if (!f) sd_die(t->metrics_path, "cannot append metrics");
    fprintf(f,
            "{\"step\": %ld, \"skipped_steps\": %ld, \"epoch\": %.6g, \"loss\": %.17g, \"rewards/chosen\": %.17g, "
            "\"rewards/rejected\": %.17g, \"rewards/margins\": %.17g, \"rewards/accuracies\": %.17g, "
            "\"logps/chosen\": %.17g, \"logps/rejected\": %.17g, \"logits/chosen\": %.17g, \"logits/rejected\": %.17g, "
            "\"nll_loss\": %.17g, \"grad_norm\": %.17g, \"lr\": %.17g, \"tokens\": %ld, \"tokens_per_s\": %.6g, "
            "\"comm/allreduce_bytes\": %llu, \"comm/reduce_scatter_bytes\": %llu, \"comm/allgather_bytes\": %llu, "
            "\"comm/p2p_bytes\": %llu, \"tflops_per_rank\": %.6g%s, \"num_input_tokens_seen\": %lld, "
            "\"total_flos\": %.17g}\n",
            sm->step, t->optim->skipped, epoch, sm->loss, sm->reward_w, sm->reward_l, sm->margin, sm->accuracy,
            sm->logp_w, sm->logp_l, sm->logits_w, sm->logits_l, sm->nll, sm->grad_norm, sm->lr, sm->tokens,
            sm->tokens_per_s,
            (unsigned long long)sm->comm[COLL_ALLREDUCE], (unsigned long long)sm->comm[COLL_REDUCE_SCATTER],
            (unsigned long long)sm->comm[COLL_ALLGATHER], (unsigned long long)sm->comm[COLL_SENDRECV], sm->tflops,
            mfu, (long long)sm->tokens_seen, sm->total_flos);
    fclose(f);
    if (t->tf) { /* log.tensorboard_dir: the same numbers under HF Trainer's TensorBoard names */
        const char *tags[] = {"train/loss", "train/rewards/chosen", "train/rewards/rejected", "train/rewards/margins",
                              "train/rewards/accuracies", "train/logps/chosen", "train/logps/rejected",
                              "train/logits/chosen", "train/logits/rejected", "train/nll_loss", "train/grad_norm",
                              "train/learning_rate", "train/epoch", "train/tokens_per_s", "train/num_input_tokens_seen",
                              "train/total_flos", "train/tflops_per_rank", "train/mfu"};
        const double v[] = {sm->loss,     sm->reward_w,   sm->reward_l,     sm->margin,   sm->accuracy,
                            sm->logp_w,   sm->logp_l,     sm->logits_w,     sm->logits_l, sm->nll,
                            sm->grad_norm, sm->lr,        epoch,            sm->tokens_per_s, (double)sm->tokens_seen,
                            sm->total_flos, sm->tflops,   peak > 0 ? sm->tflops / peak : 0.0};
        _Static_assert(sizeof tags / sizeof *tags == sizeof v / sizeof *v, "one value per tag");
        tf_scalars(t->tf, sm->step, sd_wall_time(), tags, v, (int)(sizeof v / sizeof *v) - (peak > 0 ? 0 : 1));
    }
    if (quiet) return;
    double per_step = elapsed / (double)(steps_done_this_run > 0 ? steps_done_this_run : 1);
    long eta = (long)(per_step * (double)(t->total_steps - sm->step));
    fprintf(stderr,
            "step %ld/%ld | loss %.4f | margin %.4f | acc %.3f | grad_norm %.3f | lr %.3e | %.0f tok/s%s | ETA "
            "%ld:%02ld:%02ld\n",
            sm->step, t->total_steps, sm->loss, sm->margin, sm->accuracy, sm->grad_norm, sm->lr, sm->tokens_per_s,
            mfu_line, eta / 3600, (eta / 60) % 60, eta % 60);
}

_Static_assert(COLL_KINDS == 5, "StepMetrics.comm has one entry per collective kind");

/* Rank 0, once, when there are several ranks: which rank holds which layers, attention heads, vocabulary slice and
 * share of each global batch (a collective: every rank sends its row). */
static void print_grid(ProcessGrid *g, const Model *m, long pairs_per_rank) {
    enum { F = 10 };
    if (g->world == 1) return;
    double *rows = sd_calloc((size_t)g->world * F, sizeof(double), "grid table");
    double *r = rows + (size_t)g->rank * F;
    r[0] = g->dp_rank, r[1] = g->pp_rank, r[2] = g->tp_rank, r[3] = m->L_off, r[4] = m->L_loc;
    r[5] = (double)g->tp_rank * m->NH_loc, r[6] = m->NH_loc, r[7] = (double)g->tp_rank * m->NKV_loc, r[8] = m->V_off;
    r[9] = m->V_loc;
    comm_allreduce_sum_f64(g, GROUP_WORLD, rows, (size_t)g->world * F);
    comm_take_bytes(g, (uint64_t[COLL_KINDS]){0}); /* start-up traffic is no step's */
    if (g->rank == 0) {
        fprintf(stderr, "simpo_dist: grid (rank: dp pp tp | layers | query heads | kv heads | vocabulary rows | pairs "
                        "of each global batch)\n");
        for (int k = 0; k < g->world; k++) {
            const double *q = rows + (size_t)k * F;
            long dp = (long)q[0];
            fprintf(stderr, "  rank %d: dp %ld pp %ld tp %ld | layers %ld-%ld | heads %ld-%ld | kv %ld-%ld | vocab %ld-%ld "
                            "| pairs %ld-%ld\n", k, dp, (long)q[1], (long)q[2], (long)q[3], (long)(q[3] + q[4] - 1),
                    (long)q[5], (long)(q[5] + q[6] - 1), (long)q[7], (long)(q[7] + m->NKV_loc - 1), (long)q[8],
                    (long)(q[8] + q[9] - 1), dp * pairs_per_rank, (dp + 1) * pairs_per_rank - 1);
        }
    }
    free(rows);
}

/* Every rank: the memory its layout should take by the formulas of plan.c next to what its backend allocated. */
static void print_memory_plan(ProcessGrid *g, const PlanLayout *pl, const Backend *be) {
    MemPlan mp = plan_memory(pl);
    const double MiB = 1048576.0;
    fprintf(stderr,
            "simpo_dist: memory plan rank %d (dp %d pp %d tp %d): weights %.1f MiB, gradients %.1f MiB, optimizer "
            "%.1f MiB, activations %.1f MiB (%d slots of %zu tokens, %zu in attention's sequences), other %.1f MiB, "
            "bf16 weights %.1f MiB, logits cache %.1f MiB (in the activations); planned %zu bytes, allocated %zu bytes\n",
            g->rank, g->dp_rank, g->pp_rank, g->tp_rank, mp.weights / MiB, mp.grads / MiB, mp.optimizer / MiB,
            mp.activations / MiB, mp.slots, pl->max_tokens, pl->max_att_tokens, mp.other / MiB, mp.weights16 / MiB,
            mp.head_cache / MiB, mp.total, be->bytes_in_use());
}

/* Every rank, first step of a run: the bytes its collectives counted against the formulas of plan.c. */
static void check_comm_plan(ProcessGrid *g, const PlanLayout *pl, const StepWork *w, size_t sparse_rows,
                            const uint64_t used[COLL_KINDS]) {
    const PairSet *ps = w->data;
    const size_t *idx = w->idx;
    bool share_prompt = w->share_prompt;
    size_t *tok = sd_calloc((size_t)pl->n_mb * 2, sizeof(size_t), "plan"), *resp = tok + pl->n_mb;
    for (int i = 0; i < pl->n_mb; i++) {
        for (size_t p = step_mb_first(w, i); p < step_mb_first(w, i + 1); p++) {
            const Pair *pr = &ps->pairs[idx[p]];
            tok[i] += pair_tokens(pr, share_prompt); /* the layers' layout (pairs.h) */
            resp[i] += pair_logprob_rows(pr);
        }
    }
    uint64_t want[COLL_KINDS];
    plan_step_bytes(pl, tok, resp, sparse_rows, want, NULL);
    fprintf(stderr,
            "simpo_dist: comm bytes rank %d step 1: allreduce %llu/%llu reduce_scatter %llu/%llu allgather %llu/%llu "
            "p2p %llu/%llu (measured/planned)\n",
            g->rank, (unsigned long long)used[COLL_ALLREDUCE], (unsigned long long)want[COLL_ALLREDUCE],
            (unsigned long long)used[COLL_REDUCE_SCATTER], (unsigned long long)want[COLL_REDUCE_SCATTER],
            (unsigned long long)used[COLL_ALLGATHER], (unsigned long long)want[COLL_ALLGATHER],
            (unsigned long long)used[COLL_SENDRECV], (unsigned long long)want[COLL_SENDRECV]);
    free(tok);
}

/* train.nonfinite: stop. Names the step and the first tensor (in this layout's order, lowest rank first) with a
 * non-finite gradient; nothing is written. A piece holds a non-finite value exactly when its sum of squares (in
 * double, so finite fp32 values never overflow it) is not finite: the backend answers, the host reads nothing. */
static void stop_nonfinite(Trainer *t, long step, double loss, double gn) {
    ProcessGrid *g = t->grid;
    Model *m = t->model;
    const ZeroPlan *z = t->plan;
    const char *bad = NULL;
    size_t *st = sd_alloc(sizeof(*st) * 2 * (size_t)(z->npieces + 1), "pieces"), *n = st + z->npieces + 1;
    double *ss = sd_alloc(sizeof(*ss) * (size_t)(z->npieces + 1), "pieces");
    for (int i = 0; i < z->npieces; i++) {
        st[i] = z->pieces[i].flat.start;
        n[i] = z->pieces[i].flat.end - z->pieces[i].flat.start;
    }
    model_grad_sumsq_ranges(m, st, n, z->npieces, ss);
    for (int i = 0; i < z->npieces && !bad; i++)
        if (!isfinite(ss[i])) bad = m->specs[z->pieces[i].param].name;
    free(st), free(ss);
    double first = bad ? -(double)g->rank : -1e18; /* max of -rank: the lowest rank that found one */
    comm_allreduce_max_f64(g, GROUP_WORLD, &first, 1);
    if (bad && -first == (double)g->rank)
        sd_die("train.nonfinite", "step %ld: non-finite gradient norm (%g), loss %g; first non-finite gradient in "
               "tensor '%s' (rank %d); stopping without writing (set train.nonfinite: skip to skip such steps)",
               step, gn, loss, bad, g->rank);
    if (!bad && first < -1e17 && g->rank == 0)
        sd_die("train.nonfinite", "step %ld: non-finite loss %g (gradient norm %g); stopping without writing", step,
               loss, gn);
    sleep(30); /* the rank that reported aborts the job */
    exit(1);
}

/* The backend of this rank: SIMPO_BACKEND (tests: cpu | cpu_strict) overrides the device key; device: cuda needs a
 * CUDA build and a visible device, auto takes cuda when both hold. Every rank must end up on the same kind. */
static const Backend *pick_backend(const Config *c, ProcessGrid *g, bool *gpu) {
    const Backend *be = NULL;
    *gpu = false;
    const char *env = getenv("SIMPO_BACKEND");
    if (env && *env) {
        if (!strcmp(env, "cpu")) be = backend_cpu();
        else if (!strcmp(env, "cpu_strict")) be = backend_cpu_strict();
        else sd_die("SIMPO_BACKEND", "unknown backend '%s' (cpu or cpu_strict; leave it unset to follow the device "
                    "key)", env);
    } else if (!strcmp(c->device, "cpu")) {
        be = backend_cpu();
    } else {
#ifdef SIMPO_HAVE_CUDA
        bool avail = cuda_device_available();
        if (!avail && !strcmp(c->device, "cuda"))
            sd_die(c->source, "device: cuda, but rank %d sees no CUDA device (use device: cpu or auto)", g->rank);
        if (avail) {
            cuda_set_device_from_local_rank();
            be = backend_cuda();
            *gpu = true;
        } else {
            be = backend_cpu();
        }
#else
        if (!strcmp(c->device, "cuda"))
            sd_die(c->source, "device: cuda needs a build with the CUDA backend; this one has none (nvcc was not "
                   "found when it was configured). Use device: cpu or auto");
        be = backend_cpu();
#endif
    }
    /* ranks on different kinds of backend cannot share collectives (names may carry the device: compare kinds) */
    double kind = *gpu ? 2 : be == backend_cpu() ? 0 : 1, lo = -kind, hi = kind;
    comm_allreduce_max_f64(g, GROUP_WORLD, &lo, 1);
    comm_allreduce_max_f64(g, GROUP_WORLD, &hi, 1);
    if (-lo != hi)
        sd_die("device", "the ranks picked different backends (rank %d: %s); every rank needs the same device",
               g->rank, be->name);
    comm_take_bytes(g, (uint64_t[COLL_KINDS]){0}); /* start-up traffic is no step's */
    return be;
}

/* parallel.backend: what moves the backend's buffers. nccl needs GPU buffers, an NCCL build and one GPU per rank;
 * auto takes nccl when all hold and there is more than one rank, else MPI (staged through host memory for GPU
 * buffers). */
static void pick_collectives(const Config *c, ProcessGrid *g, bool gpu) {
#ifdef SIMPO_HAVE_CUDA
    const char *why = "the model is on the CPU (use device: cuda, or mpi or auto)";
#else
    const char *why = "this build has no CUDA backend (use mpi or auto)";
#endif
    if (!strcmp(c->comm_backend, "nccl")) {
        if (!gpu) sd_die(c->source, "parallel.backend: nccl needs GPU buffers, and %s", why);
        if (!comm_nccl_built())
            sd_die(c->source, "parallel.backend: nccl, but this build has no NCCL (nccl.h / libnccl were not found "
                   "when it was configured; use mpi or auto)");
        grid_use_nccl(g);
    } else if (!strcmp(c->comm_backend, "auto") && gpu && comm_nccl_built() && g->world > 1) {
        const char *no = comm_nccl_unusable(g); /* collective; the same answer on every rank */
        if (!no) grid_use_nccl(g);
        else if (g->rank == 0)
            fprintf(stderr, "simpo_dist: parallel.backend auto: MPI staged through host memory, not NCCL: %s\n", no);
    }
}

/* model.dtype: bf16 switches the backend's matmuls (and the CUDA attention) to bf16 operands with fp32 sums; the
 * weights, gradients, optimizer state and every other op stay fp32 (the master weights of mixed precision). */
static void pick_precision(const Config *c, ProcessGrid *g, const Backend *be, bool gpu) {
    bool bf16 = !strcmp(c->model_dtype, "bf16");
    if (!be->set_matmul_bf16) {
        if (bf16) sd_die(c->source, "model.dtype: bf16, but the %s backend has fp32 matmuls only", be->name);
        return;
    }
    be->set_matmul_bf16(bf16);
    if (bf16 && !gpu && g->rank == 0)
        fprintf(stderr, "simpo_dist: model.dtype: bf16 on the %s backend emulates the GPU's bf16 matmuls (operands "
                "rounded to bf16, fp32 sums): the reference of the GPU path, slower than fp32\n", be->name);
}

static double memory_budget(const Backend *be, bool *from_env) {
    const char *env = getenv("SIMPO_DEVICE_MEMORY_GIB");
    *from_env = env != NULL;
    if (env) {
        char *end;
        double budget = strtod(env, &end) * 1073741824.0;
        if (*end || !(budget > 0))
            sd_die("SIMPO_DEVICE_MEMORY_GIB", "expected a positive number of GiB, found '%s'", env);
        return budget;
    }
    return be->mem_free ? (double)be->mem_free() * 0.95 - 1073741824.0 : -1;
}
static void budget_why(char *why, size_t n, double budget, bool env, const Backend *be) {
    if (budget < 0) snprintf(why, n, "no memory limit known on the %s backend", be->name);
    else snprintf(why, n, "budget %.2f GiB%s", budget / 1073741824.0,
                  env ? " (SIMPO_DEVICE_MEMORY_GIB)" : " (the device's free memory less 5% and 1 GiB)");
}

/* train.bf16_weight_cache: auto (plan_weights16_fit). Where no budget is known (host memory), or the layout has no
 * copy to drop: kept, silently. Every rank of a TP group takes the group's choice (dropped when any drops). pl: this
 * rank's layout with the config's recompute (train.recompute: auto not yet chosen: none). Returns whether the copy
 * is kept. */
static bool pick_weight_cache(ProcessGrid *g, const Backend *be, PlanLayout pl, bool whole_cache) {
    bool env;
    double budget = memory_budget(be, &env);
    if (budget < 0 || !pl.bf16) return true;
    double drop = plan_weights16_fit(pl, budget, whole_cache) ? 0 : 1;
    comm_allreduce_max_f64(g, GROUP_TP, &drop, 1);
    if (g->dp_rank == 0 && g->tp_rank == 0) {
        char why[96];
        budget_why(why, sizeof why, budget, env, be);
        pl.weights16 = true;
        double with = (double)plan_memory(&pl).total / 1073741824.0;
        pl.weights16 = false;
        double without = (double)plan_memory(&pl).total / 1073741824.0;
        if (drop > 0)
            fprintf(stderr, "simpo_dist: train.bf16_weight_cache auto: stage %d off, the cheapest memory to give up "
                    "(planned %.2f GiB with the copy, %.2f without, before recompute and the logits cache; %s)\n",
                    g->pp_rank, with, without, why);
        else
            fprintf(stderr, "simpo_dist: train.bf16_weight_cache auto: stage %d on (planned %.2f GiB with the copy "
                    "and no recompute beyond the config's; %s)\n", g->pp_rank, with, why);
    }
    return drop == 0;
}

/* train.recompute: auto. The cheapest recompute that makes the memory plan (plan.c, the formulas the run's
 * allocations equal) fit the budget (memory_budget: SIMPO_DEVICE_MEMORY_GIB when set, else the device's free memory
 * at start less 5% and 1 GiB (op scratch, cuBLAS, the CUDA context: ~1-1.6 GiB measured on an H200,
 * docs/performance.md), else (host memory) no limit: none). In order of cost: nothing; the MLP's activation function
 * alone (train.recompute_activation: one elementwise pass per layer, when the config does not ask for it already);
 * then with it the normed inputs of the projections (train.recompute_norm: two norm passes per layer); then with both
 * the fewest of this stage's layers (each a forward again). Every rank of a TP group takes the largest choice of the
 * group (their collectives depend on it); stage by stage the choices may differ (1F1B keeps more micro-batches in
 * flight on earlier stages). pl: this rank's layout, its recompute_layers, recompute_act and recompute_norm the
 * things varied; *act, *norm: in, the config's train.recompute_activation and train.recompute_norm; out, whether
 * they recompute. Returns the layers. */
static int pick_recompute(ProcessGrid *g, const Backend *be, PlanLayout pl, int layers, bool *act, bool *norm) {
    bool env;
    double budget = memory_budget(be, &env);
    int n = 0;
    bool asked = *act, asked_n = *norm, a = asked, nr = asked_n;
    for (int s = 0; budget >= 0; s++) {
        RecomputeStep st = plan_recompute_step(s, asked, asked_n);
        n = st.layers, a = st.act, nr = st.norm;
        pl.recompute_layers = n, pl.recompute_act = a, pl.recompute_norm = nr;
        /* n == layers: even recomputing every layer does not fit, the allocation will say so */
        if ((double)plan_memory(&pl).total <= budget || n >= layers) break;
    }
    double nd[3] = {n, a, nr};
    comm_allreduce_max_f64(g, GROUP_TP, nd, 3);
    n = (int)nd[0], a = nd[1] > 0, nr = nd[2] > 0;
    *act = a, *norm = nr;
    pl.recompute_layers = n, pl.recompute_act = a, pl.recompute_norm = nr;
    size_t planned = plan_memory(&pl).total;
    if (budget >= 0 && g->dp_rank == 0 && g->tp_rank == 0) { /* no budget known (host memory): nothing to say */
        char why[96];
        budget_why(why, sizeof why, budget, env, be);
        fprintf(stderr, "simpo_dist: train.recompute auto: stage %d recomputes %d of its %d layers (planned %.2f GiB, "
                "%s)%s%s\n", g->pp_rank, n, layers, (double)planned / 1073741824.0, why,
                a && !asked ? ", and the MLP's activation function (as train.recompute_activation: true)" : "",
                nr && !asked_n ? ", and the normed inputs (as train.recompute_norm: true)" : "");
        if ((double)planned > budget)
            fprintf(stderr, "simpo_dist: warning: stage %d does not fit its budget even recomputing every layer: "
                    "more pipeline or tensor-parallel ranks, train.bf16_weight_cache: false or a smaller "
                    "train.micro_batch_pairs would (simpo_dist plan lists the layouts that fit)\n", g->pp_rank);
    }
    return n;
}

/* train.lmhead_cache: auto. The cache only on the last stage, only for bf16 logits (autocast storage: the LM head
 * never holds fp32 [tokens x vocab] logits unless asked to, with true), and only where the memory budget (as
 * pick_recompute's) is known: all the rows where the plan with them, after the recompute choice (pl), fits it, else
 * the most whole LM-head chunks that fit (plan_head_cache_fit): it saves time at no cost in recompute, so it takes
 * only memory nothing else needs. With no limit known (host memory) it stays off: the trainer does not size host
 * memory. Every rank of a TP group takes the group's smallest choice (the same on all is tidier; the results are
 * bitwise the same either way). Returns the rows to ask model_enable_head_cache for, 0: none. */
static size_t pick_head_cache(ProcessGrid *g, const Backend *be, PlanLayout pl) {
    bool env;
    double budget = memory_budget(be, &env);
    bool last = g->pp_rank == g->pp - 1, b16 = plan_logits16(&pl);
    size_t rows = budget >= 0 ? plan_head_cache_fit(pl, budget) : 0;
    double neg = -(double)rows; /* the group's smallest: the max of the negated */
    comm_allreduce_max_f64(g, GROUP_TP, &neg, 1);
    rows = (size_t)-neg;
    /* all of them: the whole cache (a partial one is whole chunks short of it) */
    size_t full = model_head_cache_rows(pl.max_tokens, pl.max_lp_rows, (int)(pl.mc.vocab_size / pl.tp), b16, 0);
    bool all = rows == full;
    if (budget >= 0 && last && g->dp_rank == 0 && g->tp_rank == 0) {
        char why[96];
        budget_why(why, sizeof why, budget, env, be);
        pl.lmhead_cache = true, pl.lmhead_cache_rows = 0;
        double with = (double)plan_memory(&pl).total / 1073741824.0;
        if (!b16)
            fprintf(stderr, "simpo_dist: train.lmhead_cache auto: off (fp32 logits: the cache keeps bf16 ones only, "
                    "those of model.dtype bf16 with model.bf16_storage: autocast)\n");
        else if (all)
            fprintf(stderr, "simpo_dist: train.lmhead_cache auto: on, all %zu rows (planned %.2f GiB with it, %s)\n",
                    full, with, why);
        else if (!rows)
            fprintf(stderr, "simpo_dist: train.lmhead_cache auto: off (planned %.2f GiB with it, %s)\n", with, why);
        else {
            pl.lmhead_cache_rows = rows;
            fprintf(stderr, "simpo_dist: train.lmhead_cache auto: partial, the logits of the first %zu of %zu rows "
                    "(planned %.2f GiB with them, %.2f GiB with all, %s)\n", rows, full,
                    (double)plan_memory(&pl).total / 1073741824.0, with, why);
        }
    }
    return rows;
}

/* parallel.overlap_grad_reduce: auto under ZeRO 2 / 3: the second gradient bucket buffer where the plan with it,
 * after the recompute and the caches (pl), fits the memory budget (as pick_recompute's): it saves time at no cost in
 * recompute, so it takes only memory nothing else needs. With no limit known (host memory): one buffer. The choice
 * is each rank's own (the collectives are the same either way: one buffer waits for each start at once). */
static bool pick_grad_buffers(ProcessGrid *g, const Backend *be, PlanLayout pl) {
    bool env;
    double budget = memory_budget(be, &env);
    pl.grad_buffers2 = true;
    double with = (double)plan_memory(&pl).total;
    bool two = budget >= 0 && with <= budget;
    if (budget >= 0 && g->dp_rank == 0 && g->tp_rank == 0) {
        char why[96];
        budget_why(why, sizeof why, budget, env, be);
        fprintf(stderr, "simpo_dist: parallel.overlap_grad_reduce auto: stage %d %s (planned %.2f GiB with two "
                "gradient bucket buffers, %s)\n", g->pp_rank, two ? "two buffers" : "one buffer",
                with / 1073741824.0, why);
    }
    return two;
}

int train_run(const Config *c, const TrainOptions *opt) {
    Trainer T = {0}, *t = &T;
    t->cfg = c;
    t->grid = grid_init(c->tp, c->pp);
    ProcessGrid *g = t->grid;
    if (c->micro_batch_tokens > 0 && c->global_batch_pairs % g->dp != 0) /* micro-batches by tokens */
        sd_die(c->source, "train.global_batch_pairs (%d) must be a multiple of data-parallel ranks (%d)",
               c->global_batch_pairs, g->dp);
    if (c->micro_batch_tokens == 0 && c->global_batch_pairs % (g->dp * c->micro_batch_pairs) != 0)
        sd_die(c->source, "train.global_batch_pairs (%d) must be a multiple of data-parallel ranks (%d) x "
               "train.micro_batch_pairs (%d)", c->global_batch_pairs, g->dp, c->micro_batch_pairs);

    const bool eval_only = opt && opt->eval_only;
    if (eval_only && !c->data_eval)
        sd_die(c->source, "--eval-only evaluates the held-out pairs of data.eval, which this config does not name");
    ModelConfig mc = train_model_config(c);
    t->data = train_data_load_truncated(c, mc.vocab_size);
    if (g->rank == 0 && t->data->note)
        fprintf(stderr, "simpo_dist: data.train: a mixture of %zu pairs: %s\n", t->data->n, t->data->note);
    if (g->rank == 0 && t->data->n_truncated)
        fprintf(stderr, "simpo_dist: %zu of %zu pairs truncated to max_length %d / max_prompt_length %d\n",
                t->data->n_truncated, t->data->n, c->max_length, c->max_prompt_length);
    t->eval = train_eval_data_load(c, mc.vocab_size);
    if (t->eval && t->eval->note && g->rank == 0)
        fprintf(stderr, "simpo_dist: data.eval: a mixture: %s\n", t->eval->note);
    if (t->eval && g->rank == 0) {
        char every[64] = "";
        if (c->eval_every_steps > 0) snprintf(every, sizeof every, "every %ld steps and ", c->eval_every_steps);
        if (eval_only)
            fprintf(stderr, "simpo_dist: data.eval: %zu held-out pairs (%zu truncated), evaluated once (--eval-only)\n",
                    t->eval->n, t->eval->n_truncated);
        else
            fprintf(stderr, "simpo_dist: data.eval: %zu held-out pairs (%zu truncated), evaluated %s%safter the last "
                    "step (eval.jsonl)\n", t->eval->n, t->eval->n_truncated,
                    c->eval_on_start ? "before the first step, " : "", every);
    }
    /* rank 0 verifies and picks the newest sound checkpoint; every rank loads the one it names */
    char *latest = NULL;
    {
        char pick[4096] = "";
        if (g->rank == 0) {
            latest = ckpt_find_latest_valid(c->ckpt_dir);
            if (latest) snprintf(pick, sizeof pick, "%s", latest);
            free(latest);
        }
        comm_bcast_bytes(g, GROUP_WORLD, pick, sizeof pick, 0);
        latest = pick[0] ? sd_strdup(pick) : NULL;
    }
    t->data_fp = pairs_fingerprint(t->data);
    if (latest && !eval_only) /* (an evaluation of the checkpoint takes no step: its data position is not used) */
        check_resume_data(c, latest, t->data, t->data_fp, g->rank == 0);
    /* activations for the largest micro-batch this data (and the held-out pairs) can form (not 2 x pairs x
     * max_length: most pairs are far shorter), in the layers' layout and as attention's sequences (pairs.h) */
    size_t max_tokens, max_att, max_lp; /* the last: the logits cache's rows */
    t->total_steps = train_total_steps(c, t->data->n, &t->steps_per_epoch);
    train_data_sizes(c, t->data, t->eval, &max_tokens, &max_att, &max_lp);
    int n_mb = c->global_batch_pairs / g->dp / c->micro_batch_pairs;
    if (c->micro_batch_tokens > 0) { /* the run's cuts instead, and the held-out pairs' */
        max_tokens = max_att = max_lp = 0;
        if (t->eval) train_eval_token_sizes(c, t->eval, g->dp, &max_tokens, &max_att, &max_lp);
        /* a resumed run's cuts from its checkpoint's data position and step on (the checkpoint loads whole below) */
        long from_epoch = 0, from_pos = 0, from_step = 0;
        if (latest) {
            CkptReader *r = ckpt_open(latest);
            const CkptMeta *meta = ckpt_meta(r);
            from_epoch = meta->data_epoch, from_pos = meta->data_pos, from_step = meta->step;
            ckpt_close(r);
        }
        long left = t->total_steps > from_step ? t->total_steps - from_step : 0;
        TokenSizes ts = train_token_sizes(c, t->data, from_epoch, from_pos, left, g->dp);
        max_tokens = ts.tok > max_tokens ? ts.tok : max_tokens, max_att = ts.att > max_att ? ts.att : max_att;
        max_lp = ts.lp > max_lp ? ts.lp : max_lp, n_mb = ts.kmax > 0 ? ts.kmax : 1;
        if (g->rank == 0)
            fprintf(stderr, "simpo_dist: train.micro_batch_tokens %d: up to %d micro-batches a rank and step, the "
                    "largest %zu tokens (%zu in attention's sequences, %zu log-prob rows)\n", c->micro_batch_tokens,
                    n_mb, max_tokens, max_att, max_lp);
    }
    bool gpu;
    const Backend *be = pick_backend(c, g, &gpu);
    const char *prof = getenv("SIMPO_PROFILE"); /* backend_profile.h: where the steps' time goes */
    bool profiling = prof && !strcmp(prof, "1");
    if (profiling) be = backend_profiled(be);
    grid_set_backend(g, be);
    pick_precision(c, g, be, gpu);
    pick_collectives(c, g, gpu);
    /* parallel.zero 2: each DP rank holds its shard of the gradient only (model.h GradPartition); with
     * parallel.overlap_grad_reduce: true (or auto where it fits, pick_grad_buffers) two bucket buffers, a bucket's
     * reduce-scatter travelling while the backward writes the next */
    bool partition = c->zero >= 2 && g->dp > 1, buffers2 = partition && c->overlap_grad_reduce == OVERLAP_GRAD_ON;
    ModelOpts mo = {.recompute_layers = config_recompute_layers(c), .autocast16 = !strcmp(c->bf16_storage, "autocast"),
                    .recompute_act = c->recompute_activation, .max_att_tokens = max_att, .max_lp_rows = max_lp,
                    .recompute_norm = c->recompute_norm, .grad_shards = partition ? g->dp : 1,
                    .grad_shard = g->dp_rank, .param_shard = g->dp_rank, .grad_buffers = buffers2 ? 2 : 1,
                    .sequence_parallel = c->sequence_parallel};
    /* the plan of the model about to be made (plan.c derives the bf16 storage from the widths as model.c does): what
     * train.recompute: auto and train.lmhead_cache: auto size against, the recompute first (the cache only where
     * it fits after that) */
    bool bf16 = be->matmul_bf16_on && be->matmul_bf16_on();
    PlanLayout apl = {mc, g->dp, g->tp, g->pp, c->zero, g->dp_rank, g->tp_rank, g->pp_rank, max_tokens, n_mb,
                      mo.recompute_layers, bf16, bf16 && c->bf16_weight_cache != WEIGHT_CACHE_OFF,
                      c->lmhead_cache == LMHEAD_CACHE_ON, bf16 && mo.autocast16, mo.recompute_act, max_att, max_lp,
                      mo.recompute_norm, 0, false, c->sequence_parallel && g->tp > 1, buffers2,
                      c->zero >= 3 && c->zero3_prefetch};
    /* train.sparse_embedding_grad: where the embedding is untied and, under data parallelism, ZeRO 0 / 1 update it
     * whole on one rank (config.h config_sparse_embed) */
    bool sparse = config_sparse_embed(c, mc.tie_word_embeddings, g->dp, plan_embed_in_one_shard(&apl));
    if (c->sparse_embed_grad == SPARSE_EMBED_ON && !sparse)
        sd_die(c->source, "train.sparse_embedding_grad: true needs untied embeddings (tie_word_embeddings false) and "
               "dp 1, or under data parallelism parallel.zero 0 or 1 with the embedding inside one DP shard; this "
               "run has %s, dp %d, zero %d%s (auto uses it where it can)",
               mc.tie_word_embeddings ? "tied embeddings" : "untied embeddings", g->dp, c->zero,
               g->dp > 1 && c->zero < 2 && !plan_embed_in_one_shard(&apl) ? ", the embedding across shards" : "");
    apl.sparse_embed = sparse;
    /* train.bf16_weight_cache: auto first (the cheapest memory to give up), with the config's recompute (none
     * under auto yet) */
    bool weights16 = c->bf16_weight_cache != WEIGHT_CACHE_OFF;
    bool zero3 = c->zero >= 3 && g->dp > 1; /* the compute weights sharded too (model.h zero3) */
    if (zero3 && bf16 && !weights16) /* its gathers would send the fp32 weights that the copy's would send in bf16 */
        sd_die(c->source, "parallel.zero 3 in bf16 shards the bf16 weight copy: set train.bf16_weight_cache true or "
               "auto (this run: false)");
    if (c->bf16_weight_cache == WEIGHT_CACHE_AUTO && !zero3) { /* under zero 3 the copy is a shard: kept */
        PlanLayout wl = apl;
        if (c->recompute == RECOMPUTE_AUTO) wl.recompute_layers = 0;
        weights16 = pick_weight_cache(g, be, wl, c->lmhead_cache != LMHEAD_CACHE_OFF);
        apl.weights16 = bf16 && weights16;
    }
    if (c->recompute == RECOMPUTE_AUTO) {
        int first, layers;
        model_stage_layers(mc.num_hidden_layers, g->pp, g->pp_rank, &first, &layers);
        apl.recompute_layers = 0;
        mo.recompute_layers = pick_recompute(g, be, apl, layers, &mo.recompute_act, &mo.recompute_norm);
        apl.recompute_layers = mo.recompute_layers, apl.recompute_act = mo.recompute_act;
        apl.recompute_norm = mo.recompute_norm;
    }
    /* train.lmhead_cache: rows of the logits cache (0: all of them, with true), or none */
    bool head_cache = c->lmhead_cache == LMHEAD_CACHE_ON;
    size_t head_rows = 0;
    if (c->lmhead_cache == LMHEAD_CACHE_AUTO) head_rows = pick_head_cache(g, be, apl), head_cache = head_rows > 0;
    if (partition && c->overlap_grad_reduce == OVERLAP_GRAD_AUTO) { /* last: only memory nothing else needs */
        PlanLayout bl = apl;
        bl.lmhead_cache = head_cache, bl.lmhead_cache_rows = head_rows;
        buffers2 = pick_grad_buffers(g, be, bl);
        mo.grad_buffers = buffers2 ? 2 : 1, apl.grad_buffers2 = buffers2;
    }
    /* ZeRO >= 1 in the bf16 mode with the bf16 weight copy, or ZeRO-3: the fp32 master weights sharded like the
     * optimizer's state (model.h params_sharded; below ZeRO-3 the model keeps them whole without bf16 storage) */
    mo.param_shards = (c->zero >= 1 && g->dp > 1 && apl.weights16) || zero3 ? g->dp : 1;
    mo.shard_weights = zero3; /* ZeRO-3: the bf16 copy in parts, or (fp32) the weights without a copy */
    mo.zero3_prefetch = zero3 && c->zero3_prefetch; /* the next layer's gather ahead, into a second buffer */
    t->model = model_create_opts(&mc, be, max_tokens, g, step_slots(g->pp, g->pp_rank, n_mb), &mo);
    Model *m = t->model;
    if (sparse) model_enable_sparse_embed(m, (size_t)g->dp * n_mb * max_tokens); /* before the first backward */
    if (m->sp.grad && g->tp_rank == 0)
        fprintf(stderr, "simpo_dist: train.sparse_embedding_grad: on, the embedding's gradient for at most %zu rows a "
                "step (%.1f MiB) instead of all %d (%.1f MiB)\n", m->sp.max_rows,
                (double)m->sp.max_rows * m->C * 4 / 1048576.0, m->V_loc, (double)m->V_loc * m->C * 4 / 1048576.0);
    if (g->dp > 1 && g->rank == 0)
        fprintf(stderr, "simpo_dist: fp32 master weights: %s\n",
                m->zero3 && m->w16_base ? "sharded over the data-parallel ranks, and the bf16 weight copy too (ZeRO-3: "
                                          "each layer's bf16 weights all-gathered before its forward and its backward)"
                : m->zero3 ? "sharded over the data-parallel ranks (ZeRO-3: they are the compute weights, each layer's "
                             "all-gathered before its forward and its backward)"
                : m->params_sharded ? "sharded over the data-parallel ranks (ZeRO >= 1 with the bf16 weight copy: the "
                                      "matmuls read the copy, the optimizer its shard)"
                : c->zero == 0 ? "whole on every rank (parallel.zero 0)"
                               : "whole on every rank (they are the compute weights: model.dtype fp32, or no bf16 "
                                 "weight copy)");
    /* bf16 compute weights: written by the optimizer with the weights (else refreshed at a step's start), read by
     * every matmul of the step */
    if (m->act16 && weights16) model_enable_weights16(m);
    if (head_cache) model_enable_head_cache(m, head_rows); /* the last stage's logits from forward to backward */
    if (c->model_init) model_load_hf(m, c->model_init);
    else model_init_random(m, c->model_seed);

    size_t *offs = sd_alloc(sizeof(size_t) * 2 * (size_t)m->nspecs, "zero plan"), *nums = offs + m->nspecs;
    for (int i = 0; i < m->nspecs; i++) offs[i] = m->specs[i].offset, nums[i] = m->specs[i].numel;
    t->plan = zero_plan_create(c->zero, g->dp, g->dp_rank, m->nparams, m->nalloc, offs, nums, m->nspecs);
    free(offs);
    if (m->partitioned) model_set_grad_sink(m, (GradSink){zero_sink, m->gp.buf[1] ? zero_sink_wait : NULL, t});
    const char *trace = getenv("SIMPO_TRACE");
    t->ztrace = trace && strstr(trace, "dp");
    t->optim = optim_create(c, m, t->plan, t->total_steps);
    t->lp = loss_params_from_config(c);
    t->order = sd_alloc(t->data->n * sizeof(size_t), "epoch order");
    t->order_epoch = -1;

    if (!eval_only) sd_mkdirs(c->ckpt_dir); /* --eval-only writes nothing */
    t->metrics_path = sd_path_join(c->ckpt_dir, "metrics.jsonl");
    t->eval_path = sd_path_join(c->ckpt_dir, "eval.jsonl");
    if (c->tensorboard_dir && !eval_only && g->rank == 0) t->tf = tf_open(c->tensorboard_dir);
    if (latest) {
        load_checkpoint(t, latest);
        if (g->rank == 0 && eval_only) {
            fprintf(stderr, "simpo_dist: --eval-only: the weights of %s (step %ld)\n", latest, t->optim->step);
        } else if (g->rank == 0) {
            fprintf(stderr, "simpo_dist: resuming from %s (step %ld)\n", latest, t->optim->step);
            trim_metrics(t->metrics_path, t->optim->step);
            trim_metrics(t->eval_path, t->optim->step);
        }
        free(latest);
    } else if (g->rank == 0 && eval_only) {
        fprintf(stderr, "simpo_dist: --eval-only: no checkpoint in %s, the starting weights\n", c->ckpt_dir);
    } else if (g->rank == 0) {
        remove(t->metrics_path);
        remove(t->eval_path);
    }
    if (g->rank == 0) {
        char desc[96];
        fprintf(stderr, "simpo_dist: %s | %d layers, %zu parameters | %zu pairs, %ld steps/epoch, %ld steps | loss %s "
                "| backend %s %s, collectives %s\n",
                grid_describe(g, desc, sizeof desc), m->L, m->nparams, t->data->n, t->steps_per_epoch,
                t->total_steps, loss_type_name(c->loss_type), m->be->name, c->model_dtype, comm_f32_library(g));
    }

    PlanLayout pl = {mc, g->dp, g->tp, g->pp, c->zero, g->dp_rank, g->tp_rank, g->pp_rank, max_tokens, n_mb,
                     m->recompute_layers, m->act16, m->w16_base != NULL, head_cache, m->proj16, m->act_rc,
                     max_att, max_lp, m->norm_rc, head_rows, sparse, m->seqpar, m->gp.buf[1] != NULL,
                     m->gw_prefetch};
    print_grid(g, m, c->global_batch_pairs / g->dp);
    print_memory_plan(g, &pl, m->be);
    sd_set_startup_phase(false); /* from here on an error may be one rank's own: every rank prints its own */
    install_stop_handlers();
    const char *inj = getenv("SIMPO_INJECT_NONFINITE"); /* tests: a NaN gradient on rank 0 at this step */
    long inject_step = inj ? atol(inj) : 0;
    /* AdamW inside the backward (optim.h optim_overlap_begin): asked for by SIMPO_ADAMW_OVERLAP=1 */
    bool overlap = false;
    if (optim_overlap_env()) {
        const char *why = inj ? "SIMPO_INJECT_NONFINITE: its NaN comes after the backward, which the update read"
                              : optim_overlap_why_not(t->optim, m, c->nonfinite_skip, g->dp);
        overlap = !why;
        if (g->rank == 0)
            fprintf(stderr, "simpo_dist: AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1): %s%s\n",
                    why ? "off, " : "on", why ? why : "");
    }
    /* ZeRO 0 / 1 over several data-parallel ranks: the gradient's all-reduce in units (mpi/grad_allreduce.h), each
     * started inside the step's last backward the moment it completes the unit (parallel.overlap_grad_reduce), or
     * all after the backward: the same units, so the same numbers */
    if (g->dp > 1 && !m->partitioned) {
        size_t *uoff, *un;
        int nu = model_grad_units(m, &uoff, &un);
        t->gar = grad_allreduce_create(g, m->grads, m->grads_from, uoff, un, nu);
        free(uoff);
        const char *why = c->overlap_grad_reduce == OVERLAP_GRAD_OFF ? "parallel.overlap_grad_reduce: false"
                          : inj ? "SIMPO_INJECT_NONFINITE: its NaN comes after the backward"
                                : NULL;
        if (!why) model_set_grad_done(m, (GradDone){grad_units_done, t->gar, NULL});
        if (g->rank == 0)
            fprintf(stderr, "simpo_dist: gradient all-reduce over %d data-parallel ranks in %d units, %s%s\n", g->dp,
                    nu, why ? "after the backward: " : "each started as the step's last backward completes it",
                    why ? why : "");
    }
    if (m->partitioned && g->rank == 0)
        fprintf(stderr, "simpo_dist: gradient reduce-scatter per bucket and micro-batch, %s\n",
                m->gp.buf[1] ? "two bucket buffers: each bucket's sum travels while the backward writes the next "
                               "(parallel.overlap_grad_reduce: true)"
                             : "one bucket buffer: each bucket's sum before the next (parallel.overlap_grad_reduce: "
                               "true overlaps them for one bucket more memory)");
    long B = c->global_batch_pairs, B_loc = B / g->dp, mbp = c->micro_batch_pairs;
    size_t *idx = sd_alloc((size_t)B * sizeof(size_t), "batch");
    int *cut = c->micro_batch_tokens > 0 ? sd_alloc(((size_t)B_loc + 1) * sizeof(int), "micro-batch cut") : NULL;
    double t_start = sd_now();
    long start_step = t->optim->step;
    double t_prof = t_start; /* the profile's steps: all but the first of the run (warm-up), when there are more */
    long prof_from = start_step;
    if (eval_only) { /* the metrics on stdout, and no step: the loop below does not run */
        EvalMetrics e = eval_run(g, m, t->eval, &t->lp, c, t->optim->step);
        e.tokens_seen = t->tokens_seen, e.total_flos = t->total_flos;
        if (g->rank == 0) {
            eval_write(stdout, &e);
            fflush(stdout);
        }
        t->total_steps = t->optim->step;
    } else if (start_step == 0 && eval_due(c, 0, t->total_steps)) evaluate(t, 0, opt && opt->quiet, profiling);
    while (t->optim->step < t->total_steps) {
        double t0 = sd_now();
        next_global_batch(t, idx);
        long chosen_tokens = 0;
        for (long i = 0; i < B; i++) chosen_tokens += t->data->pairs[idx[i]].n_chosen;
        model_grads_begin(m); /* no zeroing pass: the first write of each gradient overwrites it */
        double lr = optim_lr_at(t->optim, t->optim->step), gn;
        const long step_no = t->optim->step + 1;
        if (overlap) optim_overlap_begin(t->optim, m, lr); /* the update begins in the last backward */
        /* the parameters are fixed from here to the optimizer step; the bf16 copy is fresh when the optimizer wrote
         * it along with them (it updated every parameter on this rank) */
        if (!m->w16_fresh) model_refresh_weights16(m);
        double acc[ACC_N] = {0}; /* sums over this rank's pairs (train_step.h) */
        StepWork work = {.g = g, .m = m, .data = t->data, .lp = &t->lp, .idx = idx + (size_t)g->dp_rank * (size_t)B_loc,
                         .n_mb = (int)(B_loc / mbp), .mbp = (int)mbp, .batch_pairs = B, .chosen_tokens = chosen_tokens,
                         .share_prompt = c->prefix_sharing};
        if (cut) step_use_cut(&work, train_token_cut(c, t->data, idx, g->dp, g->dp_rank, cut), cut); /* by tokens */
        step_run_microbatches(&work, acc);
        zero_sink_flush(t); /* ZeRO-2 with two bucket buffers: the last buckets' sums into the shard */
        model_grads_end(m);
        if (inject_step == step_no && g->rank == 0) { /* tests */
            float nan = NAN;
            size_t end = m->grads_to < m->nparams ? m->grads_to : m->nparams; /* the held elements, not padding */
            m->be->upload(model_grad_at(m, m->grads_from + (end - m->grads_from) / 2), &nan, sizeof nan);
        }
        step_sync_tied_grads(g, m);
        model_grads_reduce_resident(m); /* ZeRO-2: the tied embedding's gradient, whole for the step */
        if (t->gar) grad_allreduce_finish(t->gar); /* ZeRO 0 / 1: what the backward did not start, then all */
        model_sparse_embed_allreduce(m); /* the held embedding rows (the flat buffer starts after them) */
        comm_allreduce_sum_f64(g, GROUP_PP, acc, ACC_N); /* the last stage computed them */
        comm_allreduce_sum_f64(g, GROUP_DP, acc, ACC_N);
        if (overlap || (optim_fuses_norm(t->optim, m) && !c->nonfinite_skip && isfinite(acc[ACC_LOSS]))) {
            /* nothing clips, so the norm need not come before the update, and a non-finite one stops the run
             * without writing anything: formed as AdamW reads the gradients, one pass over them fewer (the peer's
             * torch.optim.AdamW without clipping forms none); begun inside the backward, the rest of it */
            gn = optim_step_norm(t->optim, m, lr);
            if (!isfinite(gn) || !isfinite(acc[ACC_LOSS])) stop_nonfinite(t, step_no, acc[ACC_LOSS], gn);
            gather_params(t);
        } else {
            gn = optim_grad_norm(m, t->plan);
            if (isfinite(gn) && isfinite(acc[ACC_LOSS])) {
                optim_step(t->optim, m, gn, lr);
                gather_params(t);
            } else if (c->nonfinite_skip) {
                optim_skip(t->optim);
                if (g->rank == 0)
                    fprintf(stderr, "simpo_dist: step %ld: non-finite loss (%g) or gradient norm (%g): update skipped "
                            "(train.nonfinite: skip; %ld skipped so far)\n", t->optim->step, acc[ACC_LOSS], gn,
                            t->optim->skipped);
            } else stop_nonfinite(t, step_no, acc[ACC_LOSS], gn);
        }
        double sig = g_stop_signal; /* every rank must agree: a signal may reach the ranks at different steps */
        comm_allreduce_max_f64(g, GROUP_WORLD, &sig, 1);
        double dt = sd_now() - t0;
        t->tokens_seen += (int64_t)acc[ACC_TOKENS]; /* a skipped step's tokens too: the run saw them */
        t->total_flos += acc[ACC_FLOPS];
        if (isfinite(acc[ACC_LOSS])) t->loss_sum += acc[ACC_LOSS], t->loss_steps++;
        StepMetrics sm = {.step = t->optim->step, .loss = acc[ACC_LOSS], .reward_w = acc[ACC_REWARD_W] / B,
                          .reward_l = acc[ACC_REWARD_L] / B, .margin = (acc[ACC_REWARD_W] - acc[ACC_REWARD_L]) / B,
                          .accuracy = acc[ACC_CORRECT] / B, .logp_w = acc[ACC_LOGP_W] / B,
                          .logp_l = acc[ACC_LOGP_L] / B, .grad_norm = gn, .lr = lr,
                          .tokens_per_s = acc[ACC_TOKENS] / dt, .tokens = (long)acc[ACC_TOKENS],
                          .logits_w = step_mean_logit(acc, true, m->V), .logits_l = step_mean_logit(acc, false, m->V),
                          .nll = step_nll(acc),
                          .tflops = acc[ACC_FLOPS] / dt / g->world / 1e12, .tokens_seen = t->tokens_seen,
                          .total_flos = t->total_flos};
        comm_take_bytes(g, sm.comm);
        if (c->log_every_steps > 0 && (sm.step % c->log_every_steps == 0 || sm.step == t->total_steps))
            log_step(t, &sm, sd_now() - t_start, sm.step - start_step, opt && opt->quiet);
        bool last = t->optim->step == t->total_steps;
        bool stop = (opt && opt->stop_at_step > 0 && t->optim->step >= opt->stop_at_step) || sig > 0;
        if (sig > 0 && g->rank == 0)
            fprintf(stderr, "simpo_dist: signal %d: checkpointing after step %ld and stopping (rerun to resume)\n",
                    (int)sig, t->optim->step);
        if (profiling && t->optim->step == start_step + 1 && t->total_steps > t->optim->step) {
            backend_profile_reset();
            t_prof = sd_now(), prof_from = t->optim->step;
        }
        if (t->optim->step == start_step + 1) {
            PlanLayout sl = pl;
            sl.n_mb = work.n_mb; /* this step's micro-batches (train.micro_batch_tokens: its cut) */
            check_comm_plan(g, &sl, &work, m->sp.held, sm.comm);
        }
        if (eval_due(c, t->optim->step, t->total_steps)) /* not in the profile's wall time either */
            t_prof += evaluate(t, t->optim->step, opt && opt->quiet, profiling);
        if ((last && c->ckpt_final) || (stop && !last) || (c->ckpt_every_steps > 0 && t->optim->step % c->ckpt_every_steps == 0))
            save_checkpoint(t);
        comm_take_bytes(g, (uint64_t[COLL_KINDS]){0}); /* evaluation and checkpoint traffic are not the step's */
        if (stop && !last) {
            if (g->rank == 0) fprintf(stderr, "simpo_dist: stopped after step %ld\n", t->optim->step);
            break;
        }
    }
    double t_train = sd_now() - t_start; /* as transformers' train_runtime: the steps, evaluations and checkpoints */
    if (profiling && t->optim->step > prof_from) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "simpo_dist: profile rank %d: ", g->rank);
        backend_profile_report(stderr, prefix, sd_now() - t_prof, t->optim->step - prof_from);
    }
#ifdef SIMPO_HAVE_CUDA
    if (!strcmp(m->be->name, "cuda"))
        fprintf(stderr, "simpo_dist: rank %d peak device memory %.2f GiB\n", g->rank,
                (double)cuda_peak_bytes() / 1073741824.0);
#endif
    /* checkpoint.export_hf: the final checkpoint as a Hugging Face model, once the trainer's memory is free (a rerun
     * of a finished run exports again: nothing to train, the same checkpoint) */
    bool export = c->export_hf && !eval_only && t->optim->step == t->total_steps && g->rank == 0;
    /* the run's results, where this process trained its last step */
    if (g->rank == 0 && !eval_only && t->optim->step == t->total_steps && t->optim->step > start_step)
        write_results(t, t_train, t->optim->step - start_step);
    free(idx);
    free(cut);
    free(t->order);
    free(t->metrics_path);
    free(t->eval_path);
    tf_close(t->tf);
    pairs_free(t->data);
    if (t->eval) pairs_free(t->eval);
    optim_free(t->optim, m->be);
    grad_allreduce_free(t->gar);
    zero_bucket_req_free(&t->zreq[0]);
    zero_bucket_req_free(&t->zreq[1]);
    zero_plan_free(t->plan);
    model_free(m);
    if (export)
        export_final(c, t->total_steps, c->export_dtype == EXPORT_DTYPE_BF16 ||
                                            (c->export_dtype == EXPORT_DTYPE_AUTO && !strcmp(c->model_dtype, "bf16")));
    grid_free(g);
    return 0;
}
