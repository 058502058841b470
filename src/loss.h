/* loss.h — preference objectives as pure functions of per-pair statistics.
 *
 * defines: PairStats, LossParams, LossOut, loss_params_from_config, loss_pair, loss_microbatch.
 * A loss never touches the model: it sees summed response log-probs and token counts (plus reference log-probs
 * for objectives that need them) and returns its value and d(loss)/d(summed log-prob) for each sequence.
 * The batch loss is the SUM over the global batch's pairs of LossOut.loss: each pair's term is already divided
 * by the number of pairs in the global batch, and the optional SFT term (token-mean NLL of all chosen response
 * tokens of the global batch) is distributed over the pairs as -sft_weight * sum_w / batch_chosen_tokens.
 * Formulas and citations: docs/losses.md.
 */
#ifndef SD_LOSS_H
#define SD_LOSS_H
#include "config.h"

typedef struct {
    double sum_w, sum_l;      /* summed response log-probs, chosen / rejected */
    int n_w, n_l;             /* response tokens */
    double ref_w, ref_l;      /* reference summed log-probs (dpo) */
} PairStats;

typedef struct {
    LossType type;
    double beta, gamma;       /* gamma = beta * gamma_beta_ratio (simpo family) */
    double label_smoothing;
    double sft_weight;
    double alpha, delta, lambda; /* R-DPO length weight, SLiC margin, NLL / odds-ratio weight (docs/losses.md) */
} LossParams;

typedef struct {
    double loss;              /* this pair's contribution to the batch loss */
    double d_sum_w, d_sum_l;  /* d(contribution)/d(sum_w), d(sum_l) */
    double reward_w, reward_l;/* the objective's implicit rewards (metrics) */
    double logp_w, logp_l;    /* the log-probs the objective compares: averages or sums (docs/losses.md) */
    double pref_loss;         /* the preference term alone, unscaled (for metrics) */
} LossOut;

LossParams loss_params_from_config(const Config *c);
/* batch_pairs: pairs in the global batch; batch_chosen_tokens: chosen response tokens in the global batch
 * (only used with sft_weight > 0). */
void loss_pair(const LossParams *lp, const PairStats *ps, long batch_pairs, long batch_chosen_tokens, LossOut *out);
/* The pairs of one micro-batch: loss_pair for each, except kto, whose reference point couples the pairs of a
 * micro-batch (docs/losses.md). out[P]. */
void loss_microbatch(const LossParams *lp, const PairStats *ps, int P, long batch_pairs, long batch_chosen_tokens,
                     LossOut *out);
/* Whether the objective reads reference log-probs from the data. */
int loss_needs_reference(LossType t);
const char *loss_type_name(LossType t);
#endif
