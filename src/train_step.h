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
    const size_t *idx;        /* this DP rank's pairs: n_mb * mbp indices into data (or mb_start[n_mb]) */
    int n_mb, mbp;
    const int *mb_start;      /* train.micro_batch_tokens: micro-batch i is idx[mb_start[i] .. mb_start[i + 1]) and
                               * mbp the most pairs one holds; NULL: micro-batch i is idx[i mbp .. (i + 1) mbp) */
    long batch_pairs;         /* pairs in the global batch (loss normalisation) */
    long chosen_tokens;       /* chosen response tokens in the global batch (SFT term) */
    bool share_prompt;        /* data.prefix_sharing: micro-batches share each pair's prompt (pairs.h) */
} StepWork;

/* The sums a step (or an evaluation) accumulates over this rank's pairs, on the last stage (other stages add
 * nothing), then over PP and DP: acc[ACC_N], indexed by these. */
enum {
    ACC_LOSS,     /* the loss (each pair's share of the batch mean) */
    ACC_REWARD_W, /* rewards of the chosen and rejected responses */
    ACC_REWARD_L,
    ACC_CORRECT,  /* pairs whose chosen reward exceeds the rejected one */
    ACC_LOGP_W,   /* the log-probs the objective compares (loss.h LossOut.logp_w, logp_l) */
    ACC_LOGP_L,
    ACC_TOKENS,   /* tokens of the chosen and rejected sequences (a shared prompt counted twice, as without sharing) */
    ACC_FLOPS,    /* model FLOPs (model_config_flops) */
    ACC_LOGITS_W, /* sums of the logits over the vocabulary and the response tokens of the chosen, rejected sequences */
    ACC_LOGITS_L,
    ACC_RESP_W,   /* response tokens of the chosen, rejected sequences */
    ACC_RESP_L,
    ACC_SUM_W,    /* summed log-probs of the chosen responses (nll_loss) */
    ACC_N
};
/* logits/chosen or logits/rejected from those sums: the mean logit over the response tokens and the vocabulary (TRL's
 * mean_chosen_logits, weighted by tokens over the whole batch) */
double step_mean_logit(const double *acc, bool chosen, int vocab_size);
/* nll_loss: the token-mean negative log-likelihood of the chosen responses (TRL CPOTrainer's nll_loss; the SFT term
 * that loss.sft_weight weighs), whatever the objective */
double step_nll(const double *acc);

/* w's micro-batches: the k of the cut start[0..k] (train.micro_batch_tokens; borrowed), mbp the most pairs of one. */
void step_use_cut(StepWork *w, int k, const int *start);
/* The first pair (index into w->idx) of micro-batch i, i <= w->n_mb: the cut's, or i x mbp. */
size_t step_mb_first(const StepWork *w, int i);

/* Accumulates gradients into m->grads and the step's sums into acc[ACC_N] (above). */
void step_run_microbatches(const StepWork *w, double *acc);
/* Forward only (held-out evaluation, train_eval.h): this rank's n_pairs pairs w->idx[0..n_pairs) in micro-batches
 * of w->mbp (the last one holds the rest; w->n_mb is not read), or with w->mb_start its w->n_mb micro-batches (w->mbp
 * the most pairs of one), through the pipeline's stages in order (no
 * backward, so one activation slot: each stage receives, runs and sends one micro-batch after the other). acc as
 * step_run_microbatches' (the losses normalised by w->batch_pairs and w->chosen_tokens); no gradient is touched. */
void step_run_forward_only(const StepWork *w, size_t n_pairs, double *acc);
/* A tied LM head on the last stage mirrors the first stage's embedding: sum the two gradients so both stay equal. */
void step_sync_tied_grads(ProcessGrid *g, Model *m);
/* Micro-batches in flight on this stage under 1F1B: min(pp - stage, n_mb). */
int step_slots(int pp, int stage, int n_mb);
#endif
