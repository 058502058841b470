/* train_state.h — the trainer's state (parameters, AdamW moments, position) to and from HDF5 checkpoints.
 *
 * defines: state_save, state_load.
 * Each rank writes what it owns, keyed by global tensor name and offset, so a checkpoint loads under any
 * (dp, pp, tp, zero): parameters come from DP rank 0 (its TP slices; replicated RMSNorm gains from TP rank 0
 * only); AdamW moments from every DP rank's ZeRO pieces (stage >= 1) or from DP rank 0 (stage 0), a piece that cuts
 * through a 2-D tensor being written as up to three rectangles. Loading reads exactly this rank's parameter slices
 * and moment pieces through the checkpoint's index.
 */
#ifndef SD_TRAIN_STATE_H
#define SD_TRAIN_STATE_H
#include "checkpoint.h"
#include "comm.h"
#include "model.h"
#include "optim.h"
#include "zero.h"

/* Collective over the job: rank 0 prepares and commits; meta->step names the directory. Returns the committed
 * path on rank 0 (caller frees), NULL elsewhere. */
char *state_save(const char *dir, const CkptMeta *meta, ProcessGrid *g, const Model *m, const Optim *o);
/* Where a checkpoint left the run, beside the weights and the optimizer (checkpoint.h CkptMeta's numbers). */
typedef struct {
    long epoch, pos;      /* data position of the next unseen pair */
    long seed;            /* train.seed of the run that saved it */
    int64_t tokens_seen;  /* tokens trained on so far */
    double total_flos;    /* their model FLOPs */
} StatePos;
/* Loads this rank's parameter slices and moment pieces into m and o (with o->step, o->skipped), and where the run
 * was (*at). */
void state_load(const char *step_dir, Model *m, Optim *o, StatePos *at);
#endif
