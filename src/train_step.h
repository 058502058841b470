/* train_step.h — the forward and backward passes of one optimizer step on this rank: the micro-batches of its
 * data-parallel share run through the pipeline schedule (1F1B, mpi/pipeline.h), action by action. With one stage
 * the schedule is forward then backward per micro-batch.
 *
 * defines: StepWork, step_run_microbatches, step_sync_tied_grads.
 * Activation slot of micro-batch i: i % m->nslots (1F1B keeps at most pp - stage micro-batches in flight, in order).
 */
#ifndef SD_TRAIN_STEP_H
#define SD_TRAIN_STEP_H
#include "comm.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"

typedef struct {
    ProcessGrid *g;
    Model *m;
    const PairSet *data;
    const LossParams *lp;
    const size_t *idx;        /* this DP rank's pairs: n_mb * mbp indices into data */
    int n_mb, mbp;
    long batch_pairs;         /* pairs in the global batch (loss normalisation) */
    long chosen_tokens;       /* chosen response tokens in the global batch (SFT term) */
    bool share_prompt;        /* data.prefix_sharing: micro-batches share each pair's prompt (pairs.h) */
} StepWork;

/* Accumulates gradients into m->grads. acc[0..6] gets, on the last stage, the sums over this rank's pairs of
 * loss, reward_w, reward_l, accuracy, logp_w, logp_l, and the tokens of the chosen and rejected sequences (a shared
 * prompt counted twice, as without sharing; other stages add nothing). */
void step_run_microbatches(const StepWork *w, double acc[8]);
/* Forward only (held-out evaluation, train_eval.h): this rank's n_pairs pairs w->idx[0..n_pairs) in micro-batches
 * of w->mbp (the last one holds the rest; w->n_mb is not read) through the pipeline's stages in order (no
 * backward, so one activation slot: each stage receives, runs and sends one micro-batch after the other). acc as
 * step_run_microbatches' (the losses normalised by w->batch_pairs and w->chosen_tokens); no gradient is touched. */
void step_run_forward_only(const StepWork *w, size_t n_pairs, double acc[8]);
/* A tied LM head on the last stage mirrors the first stage's embedding: sum the two gradients so both stay equal. */
void step_sync_tied_grads(ProcessGrid *g, Model *m);
/* Micro-batches in flight on this stage under 1F1B: min(pp - stage, n_mb). */
int step_slots(int pp, int stage, int n_mb);
#endif
