/* optim.c — see optim.h. */
#include "optim.h"
#include <math.h>
#include <stdlib.h>
#include "comm.h"
#include "util.h"

Optim *optim_create(const Config *c, const Model *m, const ZeroPlan *plan, long total_steps) {
    Optim *o = sd_calloc(1, sizeof *o, "optimizer");
    o->plan = plan;
    o->n = zero_state_elems(plan);
    size_t bytes = sd_mul_size(o->n, sizeof(float), "optimizer state");
    o->exp_avg = m->be->alloc(bytes, "AdamW exp_avg");
    o->exp_avg_sq = m->be->alloc(bytes, "AdamW exp_avg_sq");
    o->lr = c->lr;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->eps;
    o->weight_decay = c->weight_decay;
    o->max_grad_norm = c->max_grad_norm;
    o->min_lr_ratio = c->min_lr_ratio;
    o->schedule = c->schedule;
    o->total_steps = total_steps;
    o->warmup_steps = c->warmup_steps > 0 ? c->warmup_steps : (long)ceil(c->warmup_ratio * (double)total_steps);
    return o;
}
void optim_free(Optim *o, const Backend *be) {
    if (!o) return;
    be->free(o->exp_avg);
    be->free(o->exp_avg_sq);
    if (o->ss) be->free(o->ss);
    free(o);
}

double optim_lr_at(const Optim *o, long s) {
    long W = o->warmup_steps, T = o->total_steps;
    if (s < W) return o->lr * (double)s / (double)(W > 1 ? W : 1);
    double f = 1.0, span = (double)(T - W > 1 ? T - W : 1);
    if (o->schedule == SCHED_LINEAR) f = fmax(0.0, (double)(T - s) / span);
    else if (o->schedule == SCHED_COSINE) f = fmax(0.0, 0.5 * (1.0 + cos(M_PI * (double)(s - W) / span)));
    if (o->schedule != SCHED_CONSTANT && o->min_lr_ratio > 0) f = o->min_lr_ratio + (1.0 - o->min_lr_ratio) * f;
    return o->lr * f;
}

void optim_skip(Optim *o) {
    o->step++;
    o->skipped++;
}

/* whether piece i counts in the norm: a replicated parameter's gradient is the same on every TP rank */
static bool norm_counts(const Model *m, const OwnedPiece *pc) {
    return !(m->specs[pc->param].split == SPLIT_REPL && m->tp_rank != 0);
}
/* the global norm from this rank's sum of squares over the pieces it counts */
static double norm_reduce(const Model *m, const ZeroPlan *plan, double s) {
    if (m->grid && plan->stage >= 1) comm_allreduce_sum_f64(m->grid, GROUP_DP, &s, 1); /* shards partition */
    if (m->grid) comm_allreduce_sum_f64(m->grid, GROUP_TP, &s, 1);
    if (m->grid) comm_allreduce_sum_f64(m->grid, GROUP_PP, &s, 1); /* each stage its own layers */
    return sqrt(s);
}

double optim_grad_norm(const Model *m, const ZeroPlan *plan) {
    /* every piece's sum of squares in one backend call (one round trip to a GPU), added in piece order */
    size_t *st = sd_alloc(sizeof(*st) * 2 * (size_t)(plan->npieces + 1), "grad norm"), *n = st + plan->npieces + 1;
    int k = 0;
    for (int i = 0; i < plan->npieces; i++) {
        const OwnedPiece *pc = &plan->pieces[i];
        if (!norm_counts(m, pc)) continue;
        st[k] = pc->flat.start;
        n[k++] = pc->flat.end - pc->flat.start;
    }
    double s = model_grad_sumsq_ranges(m, st, n, k, NULL);
    free(st);
    return norm_reduce(m, plan, s);
}

/* One AdamW update over the pieces this rank owns, with the gradients times gscale; with ss (backend memory, a
 * double per piece, gscale 1) each piece's gradient sum of squares formed as AdamW reads it (adamw_sumsq). Then the
 * bf16 compute weights: all written when this rank updated every parameter; under ZeRO (stage >= 1, dp > 1) the
 * other ranks' shards arrive by the all-gather, so the copy is stale until the next step's refresh. */
static void step_pieces(Optim *o, Model *m, double lr, float gscale, double *ss) {
    const Backend *be = m->be;
    const ZeroPlan *z = o->plan;
    o->step++;
    double t = (double)(o->step - o->skipped); /* AdamW's update count */
    double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
    for (int i = 0; i < z->npieces; i++) {
        const OwnedPiece *pc = &z->pieces[i];
        size_t off = pc->flat.start, st = off - z->own.start, n = pc->flat.end - pc->flat.start;
        uint16_t *w16 = model_weights16_view(m, pc->param); /* the piece's bf16 compute weights, written along */
        GradRows rows; /* the sparse embedding gradient's held rows (model.h), else dense */
        const float *g = model_grad_range(m, off, n, &rows);
        const GradRows *gr = rows.map ? &rows : NULL;
        float *p = model_param_at(m, off), *ma = o->exp_avg + st, *va = o->exp_avg_sq + st;
        uint16_t *p16 = w16 ? w16 + pc->in_param : NULL;
        double wd = m->specs[pc->param].decay ? o->weight_decay : 0.0;
        if (ss) be->adamw_sumsq(ss + i, p, p16, g, gr, ma, va, n, lr, o->beta1, o->beta2, o->eps, wd, bc1, bc2);
        else be->adamw(p, p16, g, gr, gscale, ma, va, n, lr, o->beta1, o->beta2, o->eps, wd, bc1, bc2);
    }
    if (z->stage == 0 || z->dp == 1) model_weights16_written(m);
    else model_weights_changed(m); /* fresh after the all-gather (sharded master weights) or the next refresh */
}

void optim_step(Optim *o, Model *m, double grad_norm, double lr) {
    /* clipping: AdamW multiplies each gradient by the scale as it reads it (torch scales the gradients in place
     * first; the fp32 products are the same, one pass over the gradients fewer) */
    float gscale = 1.0f;
    if (o->max_grad_norm > 0 && grad_norm > o->max_grad_norm) gscale = (float)(o->max_grad_norm / (grad_norm + 1e-6));
    step_pieces(o, m, lr, gscale, NULL);
}

bool optim_fuses_norm(const Optim *o, const Model *m) { return o->max_grad_norm <= 0 && m->be->adamw_sumsq; }

double optim_step_norm(Optim *o, Model *m, double lr) {
    const Backend *be = m->be;
    const ZeroPlan *z = o->plan;
    if (!optim_fuses_norm(o, m)) sd_die("optim", "optim_step_norm: clipping is on or the backend cannot fuse the norm");
    if (!o->ss) o->ss = be->alloc(sizeof(double) * (size_t)(z->npieces + 1), "gradient norm partial sums");
    step_pieces(o, m, lr, 1.0f, o->ss);
    /* every piece's sum at once (one round trip to a GPU), added in piece order as optim_grad_norm adds them */
    double *ss = sd_alloc(sizeof(double) * (size_t)(z->npieces + 1), "gradient norm");
    be->download(ss, o->ss, sizeof(double) * (size_t)z->npieces);
    double s = 0.0;
    for (int i = 0; i < z->npieces; i++)
        if (norm_counts(m, &z->pieces[i])) s += ss[i];
    free(ss);
    return norm_reduce(m, z, s);
}
