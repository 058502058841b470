/* score.h — per-pair response log-probs of a Hugging Face model on the CPU backend (score, analyze).
 * defines: score_pairs.
 * Ownership: out[2 * ps->n] is the caller's: out[2i] the chosen, out[2i+1] the rejected sequence of pair i. */
#ifndef SD_SCORE_H
#define SD_SCORE_H
#include "model.h"
#include "pairs.h"

/* Loads model_dir (config already parsed into mc) and scores every pair, one at a time, untruncated. */
void score_pairs(const char *model_dir, const ModelConfig *mc, const PairSet *ps, SeqLogp *out);
#endif
