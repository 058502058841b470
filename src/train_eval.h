/* train_eval.h — held-out evaluation during training (data.eval, train.eval_every_steps, train.eval_on_start): the
 * loss and the reference trainer's metrics of the current weights over every held-out pair, forward only, under the
 * run's layout (data-parallel ranks split the pairs, the pipeline runs them stage after stage, tensor parallelism
 * as in training), like the reference trainer's evaluation on its test split (`eval_loss`, `eval_rewards/...`).
 *
 * defines: EvalMetrics, eval_due, eval_run, eval_write, eval_log.
 * Split: data-parallel rank r takes the pairs [n r / dp, n (r + 1) / dp) of the n in file order, in micro-batches
 * of train.micro_batch_pairs (the last one the rest). Where n is a multiple of dp x micro_batch_pairs these are the
 * micro-batches a training step on those pairs in that order forms, so the metrics after step k equal those step
 * k + 1 would log on them (the same forward, bit for bit; tests/dist/eval.sh). The loss is the mean over all n pairs
 * (the SFT term's token mean over all their chosen tokens); kto's reference point couples the pairs of each
 * micro-batch, as in training.
 */
#ifndef SD_TRAIN_EVAL_H
#define SD_TRAIN_EVAL_H
#include <stdbool.h>
#include <stdio.h>
#include "comm.h"
#include "config.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"
#include "tfevents.h"

typedef struct {
    long step;                 /* optimizer steps done when evaluated (0: the starting weights) */
    double loss, reward_w, reward_l, margin, accuracy, logp_w, logp_l; /* means over the pairs (train.h's names) */
    double logits_w, logits_l; /* mean logits over the response tokens and the vocabulary (train.h) */
    double nll;                /* token-mean NLL of the chosen responses (train.h) */
    long pairs, tokens;        /* held-out pairs; tokens of their chosen and rejected sequences */
    int64_t tokens_seen;       /* the run's training tokens so far and their model FLOPs (set by the caller: */
    double total_flos;         /* eval_run leaves 0) */
    double seconds;            /* wall time of the evaluation */
} EvalMetrics;

/* Whether the step just completed (step >= 1; 0: before the first) is one to evaluate after: data.eval given and
 * step 0 under train.eval_on_start, a multiple of train.eval_every_steps, or the last (total_steps). */
bool eval_due(const Config *c, long step, long total_steps);
/* Every rank of the job, together: evaluates data (truncated like the training pairs) with the current weights
 * (the bf16 copy made first where stale). Every rank returns the same metrics. The caller discards the collective
 * bytes it counted (they are no step's). */
EvalMetrics eval_run(ProcessGrid *g, Model *m, const PairSet *data, const LossParams *lp, const Config *c, long step);
/* e as one JSON line (eval.jsonl's) to f. */
void eval_write(FILE *f, const EvalMetrics *e);
/* e's scalars as one TensorBoard event (HF Trainer's names: eval/loss, eval/rewards/margins, ...). */
void eval_tf(TfWriter *w, const EvalMetrics *e);
/* Rank 0: appends e as one JSON line to path (eval.jsonl) and, unless quiet, prints a progress line. */
void eval_log(const EvalMetrics *e, const char *path, bool quiet);
#endif
