/* optim.c — see optim.h. */
#include "optim.h"
#include <math.h>
#include <stdlib.h>
#include "comm.h"
#include "util.h"

Optim *optim_create(const Config *c, const Model *m, long total_steps) {
    Optim *o = sd_calloc(1, sizeof *o, "optimizer");
    o->n = m->nparams;
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

double optim_grad_norm(const Model *m) {
    double s = model_grad_sumsq(m);
    if (m->grid) comm_allreduce_sum_f64(m->grid, GROUP_TP, &s, 1); /* slices of TP ranks; replicas counted once */
    return sqrt(s);
}

void optim_step(Optim *o, Model *m, double grad_norm, double lr) {
    const Backend *be = m->be;
    if (o->max_grad_norm > 0 && grad_norm > o->max_grad_norm)
        be->scale(m->grads, (float)(o->max_grad_norm / (grad_norm + 1e-6)), m->nparams);
    o->step++;
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        size_t off = p->offset;
        be->adamw(m->params + off, m->grads + off, o->exp_avg + off, o->exp_avg_sq + off, p->numel, lr, o->beta1,
                  o->beta2, o->eps, p->decay ? o->weight_decay : 0.0, bc1, bc2);
    }
}
