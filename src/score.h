/* score.h — per-pair response log-probs of a Hugging Face model (score, analyze), on the CPU or a GPU.
 * defines: ScoreOpts, score_opts, score_pairs.
 * Ownership: out[2 * ps->n] is the caller's: out[2i] the chosen, out[2i+1] the rejected sequence of pair i. */
#ifndef SD_SCORE_H
#define SD_SCORE_H
#include <stdbool.h>
#include "model.h"
#include "pairs.h"

typedef struct {
    const char *device; /* "cpu", "cuda" or "auto" (cuda when built and present), as the config key device */
    bool bf16;          /* model.dtype bf16: tensor-core matmuls over bf16 weights (the CPU emulates them) */
} ScoreOpts;

/* The options of --device and --dtype (score, analyze): checks dtype (fp32 | bf16), dies naming the command; the
 * device is checked where it is used (score_pairs). */
ScoreOpts score_opts(const char *cmd, const char *device, const char *dtype);
/* Loads model_dir (config already parsed into mc) and scores every pair, one at a time, untruncated, each pair's
 * prompt through the layers once (prefix sharing). o NULL: the CPU in fp32. Dies naming the option when the device
 * or the dtype cannot be had. */
void score_pairs(const char *model_dir, const ModelConfig *mc, const PairSet *ps, SeqLogp *out, const ScoreOpts *o);
#endif
