/* embed_grad.c — the sparse embedding gradient (model.h model_enable_sparse_embed) and the gradient buffer's
 * accessors that know about it (model_grad_at, model_grad_range).
 *
 * Why: the input embedding's gradient is dense in its shape ([V_loc, C] fp32: 2.1 GB for Llama 3 8B) but nonzero
 * only in the rows of the step's tokens (at most a few thousand of 128,256). Holding those rows alone saves the
 * dense tensor's memory, its zeroing pass and AdamW's read of its zeros. The arithmetic stays the dense path's:
 * each micro-batch's ids are renamed to their rows in m->sp.grad, rows numbered in ascending id order, so
 * embed_bwd's per-row sums (ascending tokens within a row) are bitwise the dense rows; AdamW reads a held row's
 * gradient or 0.0f for the rest (backend.h GradRows), the same operands as a zero-filled dense gradient.
 */
#include <stdlib.h>
#include <string.h>
#include "comm.h"
#include "model_internal.h"
#include "util.h"

size_t model_sparse_embed_rows(size_t max_step_tokens, int V_loc) {
    size_t r = max_step_tokens < (size_t)V_loc ? max_step_tokens : (size_t)V_loc;
    return r ? r : 1;
}

void model_enable_sparse_embed(Model *m, size_t max_step_tokens) {
    if (!m->first_stage || m->sp.grad) return;
    if (!m->grads) sd_die("model", "a sparse embedding gradient needs a model with gradients");
    if (m->partitioned) sd_die("model", "a sparse embedding gradient and a partitioned gradient (ZeRO-2) exclude each other");
    if (m->mc.tie_word_embeddings)
        sd_die("train.sparse_embedding_grad", "the embedding is tied to the LM head (tie_word_embeddings): its "
               "gradient is the head's, dense in every row");
    const Backend *be = m->be;
    const ParamSpec *e = &m->specs[0]; /* the embedding: the first spec of the first stage, at flat element 0 */
    if (e->role != P_EMBED || e->offset != 0) sd_die("model", "the first stage's first parameter is not the embedding");
    size_t V = (size_t)m->V_loc, C = (size_t)m->C;
    SparseEmbedGrad *sp = &m->sp;
    sp->max_rows = model_sparse_embed_rows(max_step_tokens, m->V_loc);
    /* the flat gradient buffer without the embedding: the views of the other parameters keep their flat offsets
     * less grads_from */
    be->free(m->grads);
    m->grads_from = e->numel;
    size_t rest = m->nalloc - m->grads_from;
    m->grads = be->alloc(sd_mul_size(rest ? rest : 1, sizeof(float), "gradients"), "gradients");
    be->zero(m->grads, rest * sizeof(float));
    sp->grad = be->alloc(sd_mul_size(sp->max_rows, C * sizeof(float), "sparse embedding gradient"),
                         "sparse embedding gradient");
    be->zero(sp->grad, sp->max_rows * C * sizeof(float));
    sp->map = be->alloc(sd_mul_size(V, sizeof(int), "sparse embedding rows"), "sparse embedding rows");
    sp->ids = be->alloc(sd_mul_size((size_t)m->nslots, m->max_tokens * sizeof(int), "sparse embedding ids"),
                        "sparse embedding ids");
    sp->hmap = sd_alloc(V * sizeof(int), "sparse embedding rows");
    sp->rows = sd_alloc(sp->max_rows * sizeof(int), "sparse embedding rows");
    for (size_t r = 0; r < V; r++) sp->hmap[r] = -1;
    be->upload(sp->map, sp->hmap, V * sizeof(int));
    sp->held = 0;
    model_repoint_grads(m);
}

void model_sparse_embed_begin(Model *m, MicroBatch *const *mbs, int n) {
    SparseEmbedGrad *sp = &m->sp;
    if (!sp->grad) return;
    int V = m->V_loc, V_off = m->V_off;
    for (size_t k = 0; k < sp->held; k++) sp->hmap[sp->rows[k]] = -1; /* the last step's rows */
    for (int i = 0; i < n; i++)
        for (size_t t = 0; t < mbs[i]->Ntok; t++) {
            int r = mbs[i]->ids[t] - V_off;
            if (r >= 0 && r < V) sp->hmap[r] = 0; /* marked; numbered below */
        }
    if (m->grid && m->grid->dp > 1) { /* the rows of the whole DP group: every rank holds and reduces the same */
        double *mark = sd_alloc((size_t)V * sizeof(double), "sparse embedding rows");
        for (int r = 0; r < V; r++) mark[r] = sp->hmap[r] >= 0;
        comm_allreduce_max_f64(m->grid, GROUP_DP, mark, (size_t)V);
        for (int r = 0; r < V; r++) sp->hmap[r] = mark[r] > 0 ? 0 : -1;
        free(mark);
    }
    size_t k = 0;
    for (int r = 0; r < V; r++)
        if (sp->hmap[r] >= 0) {
            if (k == sp->max_rows)
                sd_die("model", "the step's micro-batches hold more than the %zu distinct tokens the sparse embedding "
                       "gradient was sized for", sp->max_rows);
            sp->hmap[r] = (int)k;
            sp->rows[k++] = r;
        }
    sp->held = k;
    m->be->upload(sp->map, sp->hmap, (size_t)V * sizeof(int));
    if (m->gdone.rows_known && !m->mc.tie_word_embeddings) m->gdone.rows_known(m->gdone.ctx, m);
}

/* the slot's ids as rows of sp.grad (model_forward, with the ids' own upload) */
void model_sparse_embed_ids(Model *m, const MicroBatch *mb, int slot) {
    SparseEmbedGrad *sp = &m->sp;
    if (!sp->grad) return;
    int *h = sd_alloc((mb->Ntok ? mb->Ntok : 1) * sizeof(int), "sparse embedding ids");
    for (size_t t = 0; t < mb->Ntok; t++) {
        int r = mb->ids[t] - m->V_off;
        h[t] = r >= 0 && r < m->V_loc ? sp->hmap[r] : -1;
        if (r >= 0 && r < m->V_loc && h[t] < 0)
            sd_die("model", "token %d of a micro-batch is not among the step's embedding rows (model_sparse_embed_begin "
                   "was not given this micro-batch)", mb->ids[t]);
    }
    m->be->upload(sp->ids + (size_t)slot * m->max_tokens, h, mb->Ntok * sizeof(int));
    free(h);
}

float *model_grad_at(const Model *m, size_t off) {
    if (off < m->grads_from && m->sp.grad)
        sd_die("model", "gradient element %zu lies in the sparse embedding gradient (held by rows)", off);
    if (off < m->grads_from || off > m->grads_to)
        sd_die("model", "gradient element %zu is not held on this rank (its shard: [%zu, %zu))", off, m->grads_from,
               m->grads_to);
    return m->grads + (off - m->grads_from);
}

const float *model_grad_range(const Model *m, size_t off, size_t n, GradRows *rows) {
    memset(rows, 0, sizeof *rows);
    if (off + n > m->grads_to)
        sd_die("model", "gradient range [%zu, %zu) is not held on this rank (its shard: [%zu, %zu))", off, off + n,
               m->grads_from, m->grads_to);
    if (!m->sp.grad || off >= m->grads_from) return model_grad_at(m, off);
    if (off != 0 || n != m->grads_from)
        sd_die("model", "gradient range [%zu, %zu) cuts the sparse embedding gradient (only the whole is held)", off,
               off + n);
    rows->map = m->sp.map, rows->cols = (size_t)m->C, rows->held = m->sp.held;
    return m->sp.grad;
}

void model_sparse_embed_allreduce(Model *m) {
    if (!m->sp.grad || !m->grid || m->grid->dp == 1) return;
    comm_allreduce_sum_f32(m->grid, GROUP_DP, m->sp.grad, m->sp.held * (size_t)m->C);
}

void model_sparse_embed_free(Model *m) {
    SparseEmbedGrad *sp = &m->sp;
    if (!sp->grad) return;
    m->be->free(sp->grad);
    m->be->free(sp->map);
    m->be->free(sp->ids);
    free(sp->hmap);
    free(sp->rows);
    memset(sp, 0, sizeof *sp);
}
