/* train_state.c — see train_state.h. */
#include "train_state.h"
#include <stdlib.h>
#include <string.h>
#include "util.h"

/* The rectangles (global offset, count) of owned piece pc, in order; returns how many (<= 3). */
static int piece_rects(const ParamSpec *p, const OwnedPiece *pc, int64_t off[3][2], int64_t cnt[3][2]) {
    size_t len = pc->flat.end - pc->flat.start;
    if (p->ndim == 1) {
        off[0][0] = p->off[0] + (int64_t)pc->in_param;
        cnt[0][0] = (int64_t)len;
        return 1;
    }
    int k = zero_range_rects(p->shape_loc[0], p->shape_loc[1], pc->in_param, len, off, cnt);
    for (int i = 0; i < k; i++) {
        off[i][0] += p->off[0];
        off[i][1] += p->off[1];
    }
    return k;
}

static void fill(CkptTensor *t, const ParamSpec *p, const int64_t *off, const int64_t *cnt) {
    memset(t, 0, sizeof *t);
    t->name = p->name;
    t->ndim = p->ndim;
    for (int d = 0; d < p->ndim; d++) {
        t->global_shape[d] = p->shape[d];
        t->offset[d] = off[d];
        t->local_shape[d] = cnt[d];
    }
}

char *state_save(const char *dir, const CkptMeta *meta, ProcessGrid *g, const Model *m, const Optim *o) {
    const ZeroPlan *z = o->plan;
    if (g->rank == 0) ckpt_prepare(dir, meta->step);
    comm_barrier(g, GROUP_WORLD);
    size_t ns = o->n, np = model_params_held(m), lo = m->params_from;
    /* the weights this rank holds (hp[0]: flat element lo; sharded master weights: its shard, written by pieces
     * below) and the moments of its optimizer shard */
    float *hp = sd_alloc(sd_mul_size(np + 2 * ns, sizeof(float), "checkpoint"), "checkpoint");
    float *hm = hp + np, *hv = hm + ns;
    model_params_to_host(m, hp);
    m->be->download(hm, o->exp_avg, ns * sizeof(float));
    m->be->download(hv, o->exp_avg_sq, ns * sizeof(float));
    CkptTensor *ts = sd_calloc((size_t)m->nspecs + 3 * (size_t)z->npieces + 1, sizeof *ts, "checkpoint list");
    int n = 0;
    if (g->dp_rank == 0 && !m->params_sharded)
        for (int i = 0; i < m->nspecs; i++) {
            const ParamSpec *p = &m->specs[i];
            if (p->mirror || (p->split == SPLIT_REPL && g->tp_rank != 0)) continue;
            fill(&ts[n], p, p->off, p->shape_loc);
            ts[n++].param = hp + p->offset; /* whole weights: lo is 0 */
        }
    if (z->stage >= 1 || g->dp_rank == 0)
        for (int i = 0; i < z->npieces; i++) {
            const OwnedPiece *pc = &z->pieces[i];
            const ParamSpec *p = &m->specs[pc->param];
            if (p->mirror || (p->split == SPLIT_REPL && g->tp_rank != 0)) continue;
            int64_t off[3][2], cnt[3][2];
            int k = piece_rects(p, pc, off, cnt);
            size_t at = pc->flat.start - z->own.start;
            for (int r = 0; r < k; r++) {
                fill(&ts[n], p, off[r], cnt[r]);
                if (m->params_sharded) ts[n].param = hp + (z->own.start + at - lo); /* flat order, as the moments */
                ts[n].exp_avg = hm + at;
                ts[n++].exp_avg_sq = hv + at;
                at += (size_t)cnt[r][0] * (size_t)(p->ndim == 2 ? cnt[r][1] : 1);
            }
        }
    ckpt_write_rank(dir, meta->step, g->rank, ts, n);
    comm_barrier(g, GROUP_WORLD);
    char *path = g->rank == 0 ? ckpt_commit(dir, meta, g->world) : NULL;
    comm_barrier(g, GROUP_WORLD);
    free(ts);
    free(hp);
    return path;
}

void state_load(const char *step_dir, Model *m, Optim *o, long *epoch, long *pos, long *seed) {
    const ZeroPlan *z = o->plan;
    CkptReader *r = ckpt_open(step_dir);
    size_t ns = o->n, np = model_param_max_numel(m);
    /* the weights tensor by tensor (host memory for the largest one), the moments of this rank's shard */
    float *hp = sd_calloc(np + 2 * ns, sizeof(float), "checkpoint");
    float *hm = hp + np, *hv = hm + ns;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        int64_t shape[4];
        int nd = ckpt_shape(r, "param", p->name, shape);
        if (nd != p->ndim || shape[0] != p->shape[0] || (nd == 2 && shape[1] != p->shape[1]))
            sd_die(step_dir, "tensor '%s' does not match the model (missing or another shape)", p->name);
        ckpt_read(r, "param", p->name, p->ndim, p->off, p->shape_loc, hp);
        model_param_set(m, i, hp);
    }
    model_params_set_done(m); /* the bf16 copy stale, or written with a sharded model's weights */
    for (int i = 0; i < z->npieces; i++) {
        const OwnedPiece *pc = &z->pieces[i];
        const ParamSpec *p = &m->specs[pc->param];
        int64_t off[3][2], cnt[3][2];
        int k = piece_rects(p, pc, off, cnt);
        size_t at = pc->flat.start - z->own.start;
        for (int q = 0; q < k; q++) {
            ckpt_read(r, "exp_avg", p->name, p->ndim, off[q], cnt[q], hm + at);
            ckpt_read(r, "exp_avg_sq", p->name, p->ndim, off[q], cnt[q], hv + at);
            at += (size_t)cnt[q][0] * (size_t)(p->ndim == 2 ? cnt[q][1] : 1);
        }
    }
    m->be->upload(o->exp_avg, hm, ns * sizeof(float));
    m->be->upload(o->exp_avg_sq, hv, ns * sizeof(float));
    free(hp);
    const CkptMeta *meta = ckpt_meta(r);
    o->step = meta->step;
    o->skipped = meta->skipped;
    *epoch = meta->data_epoch;
    *pos = meta->data_pos;
    *seed = meta->seed;
    ckpt_close(r);
}
