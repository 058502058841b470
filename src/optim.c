/* optim.c — see optim.h. */
#include "optim.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    o->decay_steps = c->decay_steps > 0 ? c->decay_steps : (long)ceil(c->decay_ratio * (double)total_steps);
    o->decay_type = c->decay_type;
    if (o->schedule == SCHED_WSD && o->warmup_steps + o->decay_steps > total_steps)
        sd_die(c->source, "optim.schedule wsd: %ld warmup and %ld decay steps do not fit the run's %ld steps",
               o->warmup_steps, o->decay_steps, total_steps);
    return o;
}
void optim_free(Optim *o, const Backend *be) {
    if (!o) return;
    be->free(o->exp_avg);
    be->free(o->exp_avg_sq);
    if (o->ss) be->free(o->ss);
    free(o->ov_done);
    free(o);
}

/* transformers' _get_wsd_scheduler_lambda (linear warmup, from the floor min_lr_ratio) */
static double wsd_factor(const Optim *o, long s) {
    long W = o->warmup_steps, D = o->decay_steps, S = o->total_steps - W - D;
    double lo = o->min_lr_ratio, f;
    if (s < W) f = (double)s / (double)(W > 1 ? W : 1);
    else if (s < W + S) return 1.0;
    else if (s < W + S + D) {
        double p = (double)(s - W - S) / (double)(D > 1 ? D : 1);
        f = o->decay_type == DECAY_LINEAR ? 1.0 - p : o->decay_type == DECAY_1_SQRT ? 1.0 - sqrt(p)
                                                                                      : 0.5 * (1.0 + cos(M_PI * p));
    } else return lo;
    return fmax(0.0, f * (1.0 - lo) + lo);
}

double optim_lr_at(const Optim *o, long s) {
    if (o->schedule == SCHED_WSD) return o->lr * wsd_factor(o, s);
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

/* whether piece i counts in the norm: a replicated parameter's gradient is the same on every TP rank (counted on
 * TP rank 0), and a tied LM head's mirror on the last stage holds the first stage's embedding gradient (summed by
 * step_sync_tied_grads; counted there) */
static bool norm_counts(const Model *m, const OwnedPiece *pc) {
    const ParamSpec *p = &m->specs[pc->param];
    return !p->mirror && !(p->split == SPLIT_REPL && m->tp_rank != 0);
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

/* t (AdamW's update count, this update's) and the bias corrections of the update about to be made */
static void update_begin(Optim *o, double *bc1, double *bc2) {
    o->step++;
    double t = (double)(o->step - o->skipped);
    *bc1 = 1.0 - pow(o->beta1, t), *bc2 = 1.0 - pow(o->beta2, t);
}

/* AdamW on piece i of the pieces this rank owns, with its gradient times gscale; with ss (backend memory, a double
 * per piece, gscale 1) the piece's gradient sum of squares formed as AdamW reads it (adamw_sumsq), into ss[i] */
static void update_piece_part(Optim *o, Model *m, int i, double lr, double bc1, double bc2, float gscale, double *ss,
                              int part) {
    const Backend *be = m->be;
    const ZeroPlan *z = o->plan;
    const OwnedPiece *pc = &z->pieces[i];
    size_t off = pc->flat.start, st = off - z->own.start, n = pc->flat.end - pc->flat.start;
    /* the piece's bf16 compute weights, written along (under ZeRO-3 in this rank's part of the copy) */
    uint16_t *p16 = model_weights16_at(m, pc->param, pc->in_param);
    GradRows rows; /* the sparse embedding gradient's held rows (model.h), else dense */
    const float *g = model_grad_range(m, off, n, &rows);
    const GradRows *gr = rows.map ? &rows : NULL;
    rows.part = part;
    if (!gr && part != GRAD_ROWS_ALL)
        sd_die("optim", "a part of the rows of a dense gradient ('%s')", m->specs[pc->param].name);
    float *p = model_param_at(m, off), *ma = o->exp_avg + st, *va = o->exp_avg_sq + st;
    double wd = m->specs[pc->param].decay ? o->weight_decay : 0.0;
    if (ss) be->adamw_sumsq(ss + i, p, p16, g, gr, ma, va, n, lr, o->beta1, o->beta2, o->eps, wd, bc1, bc2);
    else be->adamw(p, p16, g, gr, gscale, ma, va, n, lr, o->beta1, o->beta2, o->eps, wd, bc1, bc2);
}

static void update_piece(Optim *o, Model *m, int i, double lr, double bc1, double bc2, float gscale, double *ss) {
    update_piece_part(o, m, i, lr, bc1, bc2, gscale, ss, GRAD_ROWS_ALL);
}

/* after every piece's update: the bf16 compute weights are all written when this rank updated every parameter;
 * under ZeRO (stage >= 1, dp > 1) the other ranks' shards arrive by the all-gather, so the copy is stale until the
 * next step's refresh */
static void update_end(Optim *o, Model *m) {
    const ZeroPlan *z = o->plan;
    if (z->stage == 0 || z->dp == 1) model_weights16_written(m);
    else model_weights_changed(m); /* fresh after the all-gather (sharded master weights) or the next refresh */
}

void optim_step(Optim *o, Model *m, double grad_norm, double lr) {
    /* clipping: AdamW multiplies each gradient by the scale as it reads it (torch scales the gradients in place
     * first; the fp32 products are the same, one pass over the gradients fewer) */
    float gscale = 1.0f;
    if (o->max_grad_norm > 0 && grad_norm > o->max_grad_norm) gscale = (float)(o->max_grad_norm / (grad_norm + 1e-6));
    double bc1, bc2;
    update_begin(o, &bc1, &bc2);
    for (int i = 0; i < o->plan->npieces; i++) update_piece(o, m, i, lr, bc1, bc2, gscale, NULL);
    update_end(o, m);
}

bool optim_fuses_norm(const Optim *o, const Model *m) { return o->max_grad_norm <= 0 && m->be->adamw_sumsq; }

/* o->ss, made at first use */
static double *norm_slots(Optim *o, const Backend *be) {
    if (!o->ss) o->ss = be->alloc(sizeof(double) * (size_t)(o->plan->npieces + 1), "gradient norm partial sums");
    return o->ss;
}
/* the late queue around one optimizer call (backend.h late_begin; a backend without one runs the ops in place) */
static void late_on(const Backend *be) {
    if (be->late_begin) be->late_begin();
}
static void late_off(const Backend *be) {
    if (be->late_end) be->late_end();
}

double optim_step_norm(Optim *o, Model *m, double lr) {
    const Backend *be = m->be;
    const ZeroPlan *z = o->plan;
    if (!optim_fuses_norm(o, m)) sd_die("optim", "optim_step_norm: clipping is on or the backend cannot fuse the norm");
    norm_slots(o, be);
    if (o->ov_on) { /* begun inside the backward: the rest of the pieces, late too, then everything joined */
        model_set_grad_done(m, (GradDone){0});
        late_on(be);
        for (int i = 0; i < z->npieces; i++) /* the held rows only where the free ones went before the backward */
            if (!o->ov_done[i])
                update_piece_part(o, m, i, o->ov_lr, o->ov_bc1, o->ov_bc2, 1.0f, o->ss,
                                  i == o->ov_free ? GRAD_ROWS_HELD : GRAD_ROWS_ALL);
        late_off(be);
        if (be->late_join) be->late_join();
        o->ov_on = false;
    } else {
        double bc1, bc2;
        update_begin(o, &bc1, &bc2);
        for (int i = 0; i < z->npieces; i++) update_piece(o, m, i, lr, bc1, bc2, 1.0f, o->ss);
    }
    update_end(o, m);
    /* every piece's sum at once (one round trip to a GPU), added in piece order as optim_grad_norm adds them */
    double *ss = sd_alloc(sizeof(double) * (size_t)(z->npieces + 1), "gradient norm");
    be->download(ss, o->ss, sizeof(double) * (size_t)z->npieces);
    double s = 0.0;
    for (int i = 0; i < z->npieces; i++)
        if (norm_counts(m, &z->pieces[i])) s += ss[i];
    free(ss);
    return norm_reduce(m, z, s);
}

bool optim_overlap_env(void) {
    const char *e = getenv("SIMPO_ADAMW_OVERLAP");
    if (!e || !*e || strcmp(e, "0") == 0) return false;
    if (strcmp(e, "1") != 0) sd_die("SIMPO_ADAMW_OVERLAP", "expected 0 or 1, found \"%s\"", e);
    return true;
}

const char *optim_overlap_why_not(const Optim *o, const Model *m, bool nonfinite_skip, int dp) {
    if (o->max_grad_norm > 0) return "optim.max_grad_norm > 0: clipping needs the norm before any update";
    if (!m->be->adamw_sumsq) return "the backend forms no gradient norm inside AdamW";
    if (nonfinite_skip) return "train.nonfinite: skip needs the norm before any update";
    if (dp > 1 || m->partitioned) return "more than one data-parallel rank: the gradients are reduced after the step";
    return NULL;
}

/* SIMPO_TRACE=adamw: a line per update made inside the step (docs/cli.md) */
static bool tracing(void) {
    const char *t = getenv("SIMPO_TRACE");
    return t && strstr(t, "adamw");
}

/* GradDone (model.h): the flat range [off, off + n) has its final gradient; its pieces' updates, late */
static void bucket_done(void *ctx, Model *m, size_t off, size_t n) {
    Optim *o = ctx;
    const ZeroPlan *z = o->plan;
    late_on(m->be);
    int done = 0;
    for (int i = 0; i < z->npieces; i++) {
        const OwnedPiece *pc = &z->pieces[i];
        if (pc->flat.end <= off || pc->flat.start >= off + n) continue;
        if (pc->flat.start < off || pc->flat.end > off + n)
            sd_die("optim", "piece of '%s' straddles a gradient bucket's end", m->specs[pc->param].name);
        if (o->ov_done[i])
            sd_die("optim", "the gradient of '%s' completed twice in one step", m->specs[pc->param].name);
        update_piece(o, m, i, o->ov_lr, o->ov_bc1, o->ov_bc2, 1.0f, o->ss);
        o->ov_done[i] = true;
        done++;
    }
    late_off(m->be);
    if (tracing())
        fprintf(stderr, "[adamw] step %ld: %d pieces of flat [%zu, %zu) updated in the backward\n", o->step, done, off,
                off + n);
}

/* GradDone.rows_known: the sparse embedding's free rows, late (no gradient: adamw, not adamw_sumsq, so that the
 * piece's slot of the norm is the held rows' alone, written after the backward) */
static void rows_known(void *ctx, Model *m) {
    Optim *o = ctx;
    const ZeroPlan *z = o->plan;
    for (int i = 0; i < z->npieces; i++) {
        GradRows rows;
        model_grad_range(m, z->pieces[i].flat.start, z->pieces[i].flat.end - z->pieces[i].flat.start, &rows);
        if (!rows.map) continue;
        late_on(m->be);
        update_piece_part(o, m, i, o->ov_lr, o->ov_bc1, o->ov_bc2, 1.0f, NULL, GRAD_ROWS_FREE);
        late_off(m->be);
        o->ov_free = i;
        if (tracing())
            fprintf(stderr, "[adamw] step %ld: the free rows of '%s' (%zu of %zu held) updated before the forward\n",
                    o->step, m->specs[z->pieces[i].param].name, rows.held,
                    (z->pieces[i].flat.end - z->pieces[i].flat.start) / rows.cols);
    }
}

void optim_overlap_begin(Optim *o, Model *m, double lr) {
    const ZeroPlan *z = o->plan;
    const char *why = optim_overlap_why_not(o, m, false, z->dp);
    if (why) sd_die("optim", "optim_overlap_begin: %s", why);
    norm_slots(o, m->be);
    if (!o->ov_done) o->ov_done = sd_alloc(sizeof(bool) * (size_t)(z->npieces + 1), "overlapped pieces");
    memset(o->ov_done, 0, sizeof(bool) * (size_t)(z->npieces + 1));
    update_begin(o, &o->ov_bc1, &o->ov_bc2);
    o->ov_lr = lr;
    o->ov_on = true;
    o->ov_free = -1;
    model_set_grad_done(m, (GradDone){bucket_done, o, rows_known});
}
