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

/* ckpt_write_rank_from's copy out of the backend's memory */
static void from_backend(void *ctx, float *dst, const float *src, size_t n) {
    ((const Backend *)ctx)->download(dst, src, n * sizeof(float));
}

char *state_save(const char *dir, const CkptMeta *meta, ProcessGrid *g, const Model *m, const Optim *o) {
    const ZeroPlan *z = o->plan;
    if (g->rank == 0) ckpt_prepare(dir, meta->step);
    comm_barrier(g, GROUP_WORLD);
    /* the weights this rank holds (whole, or its shard of sharded master weights: by pieces below) and the moments
     * of its optimizer shard, written slice by slice from the backend's memory (one slice in host memory at a time) */
    CkptTensor *ts = sd_calloc((size_t)m->nspecs + 3 * (size_t)z->npieces + 1, sizeof *ts, "checkpoint list");
    int n = 0;
    if (g->dp_rank == 0 && !m->params_sharded)
        for (int i = 0; i < m->nspecs; i++) {
            const ParamSpec *p = &m->specs[i];
            if (p->mirror || (p->split == SPLIT_REPL && g->tp_rank != 0)) continue;
            fill(&ts[n], p, p->off, p->shape_loc);
            ts[n++].param = model_param_at(m, p->offset); /* whole weights */
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
                if (m->params_sharded) ts[n].param = model_param_at(m, z->own.start + at); /* flat order */
                ts[n].exp_avg = o->exp_avg + at;
                ts[n++].exp_avg_sq = o->exp_avg_sq + at;
                at += (size_t)cnt[r][0] * (size_t)(p->ndim == 2 ? cnt[r][1] : 1);
            }
        }
    ckpt_write_rank_from(dir, meta->step, g->rank, ts, n, from_backend, (void *)m->be);
    comm_barrier(g, GROUP_WORLD);
    char *path = g->rank == 0 ? ckpt_commit(dir, meta, g->world) : NULL;
    comm_barrier(g, GROUP_WORLD);
    free(ts);
    return path;
}

void state_load(const char *step_dir, Model *m, Optim *o, StatePos *at) {
    const ZeroPlan *z = o->plan;
    CkptReader *r = ckpt_open(step_dir);
    size_t np = model_param_max_numel(m);
    /* the weights tensor by tensor, the moments of this rank's shard slice by slice (host memory for the largest
     * tensor) */
    float *hp = sd_calloc(np ? np : 1, sizeof(float), "checkpoint");
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
            const size_t len = (size_t)cnt[q][0] * (size_t)(p->ndim == 2 ? cnt[q][1] : 1); /* <= the spec's numel */
            ckpt_read(r, "exp_avg", p->name, p->ndim, off[q], cnt[q], hp);
            m->be->upload(o->exp_avg + at, hp, len * sizeof(float));
            ckpt_read(r, "exp_avg_sq", p->name, p->ndim, off[q], cnt[q], hp);
            m->be->upload(o->exp_avg_sq + at, hp, len * sizeof(float));
            at += len;
        }
    }
    free(hp);
    const CkptMeta *meta = ckpt_meta(r);
    o->step = meta->step;
    o->skipped = meta->skipped;
    *at = (StatePos){.epoch = meta->data_epoch, .pos = meta->data_pos, .seed = meta->seed,
                     .tokens_seen = meta->tokens_seen, .total_flos = meta->total_flos};
    ckpt_close(r);
}
