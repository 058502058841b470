/* param_shard.c — sharded fp32 master weights (model.h params_sharded, ModelOpts.param_shards).
 *
 * Why: in the bf16 mode every matmul reads the bf16 copy of its weight (model_enable_weights16), so the fp32
 * weights are needed whole only by the optimizer, which under ZeRO >= 1 updates just this rank's shard. Keeping
 * only that shard saves 4 (1 - 1/dp) bytes per parameter on every rank (Megatron's distributed optimizer shards its
 * fp32 main parameters the same way). What an op reads in fp32 (the embedding's lookup, the RMSNorm gains, Qwen2's
 * biases) stays
 * whole in m->prep: on 8 data-parallel ranks Llama 3 8B keeps 3.7 + 2 GiB of its 30. After the optimizer step the
 * ranks exchange their updated shards as the copy (2 bytes a weight, half the fp32 all-gather) and as prep's values.
 * Positions: the shard of rank r is the flat range [r S, (r + 1) S) (S = nalloc / dp, the ZeRO shards); its part of
 * prep and of the bf16 copy is one contiguous range of each (both keep table order), so the all-gathers take one
 * block per rank.
 */
#include <stdlib.h>
#include <string.h>
#include "comm.h"
#include "model_internal.h"
#include "util.h"

/* parameters an op reads in fp32: the embedding (its lookup), the RMSNorm gains and Qwen2's q, k, v biases */
static bool spec_rep(const ParamSpec *p) {
    return p->role == P_EMBED || param_role_is_gain(p->role) || p->role == P_BQ || p->role == P_BK || p->role == P_BV;
}

/* the position in prep of flat element x (a block boundary: the first fp32-read element at or after it) */
static size_t rep_pos(const Model *m, size_t x) {
    size_t at = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        if (!spec_rep(p)) continue;
        if (p->offset + p->numel > x) return at + (x > p->offset ? x - p->offset : 0);
        at += p->numel;
    }
    return at;
}

/* the position in the bf16 copy of flat element x (the same rule; the copy's views are padded, model.c) */
static size_t w16_pos(Model *m, size_t x) {
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        uint16_t *v = model_weights16_view(m, i);
        if (v && p->offset + p->numel > x) return (size_t)(v - m->w16_base) + (x > p->offset ? x - p->offset : 0);
    }
    return m->w16_elems;
}

void model_shard_params_init(Model *m, int shards, int shard) {
    const Backend *be = m->be;
    m->params_sharded = true;
    m->params = model_alloc_shard(m, shards, shard, &m->params_from, &m->params_to, "parameter shard");
    m->prep_elems = rep_pos(m, m->nparams);
    m->prep = be->alloc(sd_mul_size(m->prep_elems ? m->prep_elems : 1, sizeof(float), "fp32-read parameters"),
                        "fp32-read parameters");
    for (int i = 0; i < m->nspecs; i++) /* fp32 views of the fp32-read parameters only */
        model_set_param_view(m, i, spec_rep(&m->specs[i]) ? m->prep + rep_pos(m, m->specs[i].offset) : NULL);
    if (m->mc.tie_word_embeddings && m->first_stage && m->last_stage) m->lm_head = m->embed; /* tied, one stage */
    model_enable_weights16(m);
}

float *model_param_at(const Model *m, size_t off) {
    if (off < m->params_from || off > m->params_to)
        sd_die("model", "parameter element %zu is not held on this rank (its shard: [%zu, %zu))", off, m->params_from,
               m->params_to);
    return m->params + (off - m->params_from);
}

/* [*s, *e): the part of flat range [a, b) in this rank's shard and below nparams; false when empty */
static bool own_part(const Model *m, size_t a, size_t b, size_t *s, size_t *e) {
    size_t hi = m->params_to < m->nparams ? m->params_to : m->nparams;
    *s = a > m->params_from ? a : m->params_from;
    *e = b < hi ? b : hi;
    return *s < *e;
}

void model_param_set(Model *m, int i, const float *data) {
    const Backend *be = m->be;
    const ParamSpec *p = &m->specs[i];
    if (!m->params_sharded) {
        be->upload(m->params + p->offset, data, p->numel * sizeof(float));
        return;
    }
    size_t s, e;
    if (own_part(m, p->offset, p->offset + p->numel, &s, &e))
        be->upload(model_param_at(m, s), data + (s - p->offset), (e - s) * sizeof(float));
    if (spec_rep(p)) be->upload(m->prep + rep_pos(m, p->offset), data, p->numel * sizeof(float));
    uint16_t *v = model_weights16_view(m, i);
    if (!v) return;
    enum { CHUNK = 1 << 22 };
    uint16_t *b = sd_alloc(CHUNK * sizeof(uint16_t), "bf16 weights");
    for (size_t at = 0; at < p->numel; at += CHUNK) { /* rounded as the backend's to_bf16 rounds */
        size_t n = p->numel - at < CHUNK ? p->numel - at : CHUNK;
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < n; j++) b[j] = sd_f32_to_bf16(data[at + j]);
        be->upload(v + at, b, n * sizeof(uint16_t));
    }
    free(b);
}

void model_params_set_done(Model *m) {
    if (m->params_sharded) model_weights16_written(m); /* the copy was written with the weights */
    else model_weights_changed(m);
}

size_t model_param_max_numel(const Model *m) {
    size_t n = 1;
    for (int i = 0; i < m->nspecs; i++)
        if (m->specs[i].numel > n) n = m->specs[i].numel;
    return n;
}

size_t model_params_held(const Model *m) {
    size_t s, e;
    return own_part(m, 0, m->nparams, &s, &e) ? e - s : 0;
}

void model_params_to_host(const Model *m, float *host) {
    size_t s, e;
    if (own_part(m, 0, m->nparams, &s, &e)) m->be->download(host, model_param_at(m, s), (e - s) * sizeof(float));
}

void model_params_allgather(Model *m) {
    if (!m->params_sharded) return;
    const Backend *be = m->be;
    ProcessGrid *g = m->grid;
    /* this rank's updated fp32-read parameters into its block of prep (the optimizer wrote its block of the copy) */
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        size_t s, e;
        if (spec_rep(p) && own_part(m, p->offset, p->offset + p->numel, &s, &e))
            be->copy(m->prep + rep_pos(m, s), model_param_at(m, s), (e - s) * sizeof(float));
    }
    int dp = g->dp;
    size_t per = m->params_to - m->params_from;
    size_t *rc = sd_alloc(sizeof(size_t) * 2 * (size_t)dp, "all-gather blocks"), *wc = rc + dp;
    for (int r = 0; r < dp; r++) {
        size_t a = (size_t)r * per, b = a + per;
        rc[r] = rep_pos(m, b) - rep_pos(m, a);
        wc[r] = w16_pos(m, b) - w16_pos(m, a);
    }
    comm_allgatherv(g, GROUP_DP, m->prep, sizeof(float), rc);
    comm_allgatherv(g, GROUP_DP, m->w16_base, sizeof(uint16_t), wc);
    free(rc);
    model_weights16_written(m);
}
