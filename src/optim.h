/* optim.h — AdamW over the flat parameter buffer, learning-rate schedules, global grad-norm clipping.
 *
 * defines: Optim, optim_create, optim_free, optim_lr_at, optim_total_steps, optim_grad_norm, optim_step,
 * optim_fuses_norm, optim_step_norm, optim_overlap_env, optim_overlap_why_not, optim_overlap_begin.
 * Ownership: Optim owns exp_avg / exp_avg_sq ([nparams] each, backend memory, zeroed at creation), ss and ov_done.
 * Semantics follow torch.optim.AdamW and the Hugging Face schedulers (docs/optim.md):
 *   lr(s) for 0-based step s with W warmup steps and T total steps:
 *     s < W: lr * s / max(1, W)
 *     constant: lr;  linear: lr * max(0, (T - s) / max(1, T - W));
 *     cosine: lr * max(0, 0.5 * (1 + cos(pi * (s - W) / max(1, T - W))))
 *   and with min_lr_ratio r > 0 the decaying part is r + (1 - r) * factor.
 *   Clipping as torch.nn.utils.clip_grad_norm_: when the global L2 norm exceeds max_grad_norm, every gradient
 *   is multiplied by max_grad_norm / (norm + 1e-6).
 */
#ifndef SD_OPTIM_H
#define SD_OPTIM_H
#include "config.h"
#include "model.h"
#include "zero.h"

typedef struct {
    float *exp_avg, *exp_avg_sq;   /* [zero_state_elems(plan)] backend memory: the moments of plan->own */
    const ZeroPlan *plan;          /* which part of the flat buffers this rank updates (not owned) */
    size_t n;
    long step;                     /* training steps done (updates and skipped steps) */
    long skipped;                  /* steps whose update was skipped (non-finite values); AdamW's t = step - skipped */
    double lr, beta1, beta2, eps, weight_decay, max_grad_norm, min_lr_ratio;
    double *ss;                    /* [npieces] backend memory: optim_step_norm's per-piece sums (made at first use) */
    /* the update inside the backward (optim_overlap_begin) while it runs: its lr and bias corrections (fixed when it
     * began), and ov_done[i]: piece i updated already (host, [npieces], made at first use) */
    bool ov_on;
    double ov_lr, ov_bc1, ov_bc2;
    bool *ov_done;
    int ov_free;                   /* the piece whose free rows (GradRows) were updated before the backward, or -1 */
    LrSchedule schedule;
    long warmup_steps, total_steps;
    long decay_steps;              /* wsd: the decay phase's steps (the stable phase: total - warmup - decay) */
    int decay_type;                /* wsd: LrDecay */
} Optim;

Optim *optim_create(const Config *c, const Model *m, const ZeroPlan *plan, long total_steps);
void optim_free(Optim *o, const Backend *be);
/* Learning rate for 0-based step s. */
double optim_lr_at(const Optim *o, long s);
/* Counts a step without an update (train.nonfinite: skip). */
void optim_skip(Optim *o);
/* Global L2 norm of the gradients (double accumulation) over the pieces each rank owns, summed over the DP group
 * when the plan shards (stage >= 1) and over the TP group, replicated tensors counted once. Collective. */
double optim_grad_norm(const Model *m, const ZeroPlan *plan);
/* Clips the owned gradients (with the given norm), then one AdamW step at lr on the owned pieces; weight decay
 * only where spec->decay. The caller all-gathers the parameters afterwards (zero_gather_params). */
void optim_step(Optim *o, Model *m, double grad_norm, double lr);
/* Whether optim_step_norm applies: no clipping (optim.max_grad_norm 0, so the norm need not come first) and a
 * backend with adamw_sumsq. */
bool optim_fuses_norm(const Optim *o, const Model *m);
/* optim_step without clipping that forms the gradient norm as AdamW reads the gradients (backend adamw_sumsq)
 * instead of in a pass of its own before it, and returns it (optim_grad_norm's value: bitwise on the CPU, within
 * double rounding on a GPU). The update is made whatever the norm; a caller that must not update on a non-finite
 * norm (train.nonfinite: skip) uses optim_grad_norm and optim_step. */
double optim_step_norm(Optim *o, Model *m, double lr);

/* AdamW inside the backward (SIMPO_ADAMW_OVERLAP=1; docs/design.md "AdamW inside the backward"): each gradient
 * bucket's update (a layer, the final norm with an untied LM head, a dense untied embedding) runs as soon as the
 * step's last backward has completed that bucket, on the backend's late queue (backend.h late_begin: on a GPU a
 * low-priority stream beside the rest of the backward), instead of all after the backward; a sparse embedding
 * gradient's free rows (GradRows, GRAD_ROWS_FREE) as soon as the step's rows are known, beside the forwards, its
 * held rows after the backward. The same update: each piece's AdamW reads only its own gradient, final by then,
 * and the norm is summed in piece order at the end, so the parameters, moments and norm are bitwise those of
 * optim_step_norm.
 * optim_overlap_env: whether SIMPO_ADAMW_OVERLAP asks for it (0 or unset: no, 1: yes; anything else dies).
 * optim_overlap_why_not: NULL where this run may (optim_step_norm's conditions, train.nonfinite: stop, one
 * data-parallel rank, an unpartitioned gradient), else why not, for the startup line.
 * optim_overlap_begin: before the step's micro-batches, arms the model (model_arm_grad_done) for them; the caller
 * arms it around the last backward only, and optim_step_norm then updates the remaining pieces, joins the late
 * queue and returns the norm. */
bool optim_overlap_env(void);
const char *optim_overlap_why_not(const Optim *o, const Model *m, bool nonfinite_skip, int dp);
void optim_overlap_begin(Optim *o, Model *m, double lr);
#endif
