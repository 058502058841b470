/* train.h — the training loop: batches, gradient accumulation, loss, optimizer, metrics, checkpoints, resume.
 *
 * defines: TrainOptions, train_run, StepMetrics.
 * Data order: epoch e uses pairs_epoch_order(n, shuffle, train.seed, e); step k takes the next
 * global_batch_pairs pairs of that order (an incomplete tail is dropped, the next epoch starts); data parallel
 * rank r takes the r-th contiguous block of the global batch, in micro-batches of micro_batch_pairs.
 * Every rank of the job calls train_run; rank 0 logs and writes metrics.
 */
#ifndef SD_TRAIN_H
#define SD_TRAIN_H
#include <stdint.h>
#include "config.h"

typedef struct {
    long stop_at_step;   /* >0: stop (with a checkpoint) after this step, as if pre-empted (tests, --stop-at-step) */
    int quiet;           /* no progress lines */
    int eval_only;       /* --eval-only: evaluate data.eval with the newest checkpoint's weights (else the starting
                          * ones), print the metrics on stdout and stop: no step, nothing written (train_eval.h) */
} TrainOptions;

/* Batch means over the pairs of a global batch, with the reference trainer's metric names. */
typedef struct {
    long step;
    double loss, reward_w, reward_l, margin, accuracy, logp_w, logp_l, grad_norm, lr, tokens_per_s;
    long tokens;
    double logits_w, logits_l; /* the mean logit over the chosen (rejected) response tokens and the vocabulary */
    double nll;                /* token-mean NLL of the chosen responses (train_step.h step_nll) */
    double tflops;       /* the step's model FLOPs (model_config.h model_config_flops) per second and rank, in 1e12 */
    uint64_t comm[5];    /* this rank's collective bytes in the step, by CollKind (mpi/comm.h) */
    int64_t tokens_seen; /* tokens of all the steps so far, this one included (HF's num_input_tokens_seen) */
    double total_flos;   /* their model FLOPs (HF's total_flos, counted as tflops is) */
} StepMetrics;

/* Returns 0 on success. */
int train_run(const Config *c, const TrainOptions *opt);
#endif
