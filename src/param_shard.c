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
 * ZeRO-3 (model.h w16_sharded, parallel.zero 3) goes one step further, as DeepSpeed's stage 3 and FSDP do: the bf16
 * copy too stays in those parts (2 (1 - 1/dp) bytes less per matmul weight: 14 of Llama 3 8B's 16 GB on 8 ranks),
 * and each layer's part of it is all-gathered into one layer buffer before the layer's forward and again before its
 * backward (the LM head's into its own buffer, once per optimizer step). Traffic: twice the stage's matmul weights in
 * bf16 per micro-batch, where ZeRO-1 / 2 send them once per step.
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

/* the position in the bf16 copy's layout of flat element x (the same rule; the copy's views are padded, model.c) */
static size_t w16_pos(const Model *m, size_t x) {
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        if (m->w16_at[i] != SIZE_MAX && p->offset + p->numel > x) return m->w16_at[i] + (x > p->offset ? x - p->offset : 0);
    }
    return m->w16_elems;
}

/* The elements of this rank's part of the bf16 copy under ZeRO-3, as allocated: at most the S elements of its fp32
 * shard plus the padding of each view they end in (plan.c states the same bound), at most the whole copy. Every rank
 * of the group allocates the same. */
static size_t w16_part_elems(const Model *m) {
    size_t views = 0;
    for (int i = 0; i < m->nspecs; i++) views += m->w16_at[i] != SIZE_MAX;
    size_t n = (m->params_to - m->params_from) + 128 * views;
    return n < m->w16_elems ? n : m->w16_elems;
}

/* the group (local layer l, or the LM head at l == L_loc) a spec with a bf16 view belongs to */
static int w16_group(const Model *m, const ParamSpec *p) { return p->layer >= 0 ? p->layer - m->L_off : m->L_loc; }

void model_shard_weights16_init(Model *m) {
    const Backend *be = m->be;
    int dp = m->grid->dp, G = m->L_loc + 1;
    size_t per = m->params_to - m->params_from;
    m->w16_bounds = sd_alloc(sizeof(size_t) * ((size_t)dp + 1), "bf16 shard bounds");
    for (int r = 0; r <= dp; r++) m->w16_bounds[r] = w16_pos(m, (size_t)r * per);
    m->w16_lo = w16_pos(m, m->params_from), m->w16_hi = w16_pos(m, m->params_to);
    size_t part = w16_part_elems(m);
    if (m->w16_hi - m->w16_lo > part)
        sd_die("model", "this rank's part of the bf16 copy (%zu elements) exceeds its bound (%zu)", m->w16_hi - m->w16_lo,
               part);
    m->w16_base = be->alloc(sd_mul_size(part ? part : 1, sizeof(uint16_t), "bf16 weight shard"), "bf16 weight shard");
    /* each group's views lie together in the layout (a layer's specs are contiguous in the table) */
    m->g16_from = sd_alloc(sizeof(size_t) * 2 * (size_t)G, "bf16 gather ranges"), m->g16_to = m->g16_from + G;
    for (int l = 0; l < G; l++) m->g16_from[l] = SIZE_MAX, m->g16_to[l] = 0;
    size_t views = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        if (m->w16_at[i] == SIZE_MAX) continue;
        int l = w16_group(m, p);
        if (m->g16_to[l] && m->g16_to[l] != m->w16_at[i])
            sd_die("model", "the bf16 views of '%s''s group are not contiguous", p->name);
        if (m->g16_from[l] == SIZE_MAX) m->g16_from[l] = m->w16_at[i];
        m->g16_to[l] = m->w16_at[i] + (p->numel + 127) / 128 * 128;
        views++;
    }
    size_t most = 0;
    for (int l = 0; l < G; l++) {
        if (m->g16_from[l] == SIZE_MAX) m->g16_from[l] = m->g16_to[l] = 0; /* no views (a stage without the head) */
        if (l < m->L_loc && m->g16_to[l] - m->g16_from[l] > most) most = m->g16_to[l] - m->g16_from[l];
    }
    size_t head = m->g16_to[m->L_loc] - m->g16_from[m->L_loc];
    if (most) m->g16_layer = be->alloc(sd_mul_size(most, sizeof(uint16_t), "bf16 layer gather"), "bf16 layer gather");
    if (head) m->g16_head = be->alloc(sd_mul_size(head, sizeof(uint16_t), "bf16 head gather"), "bf16 head gather");
    m->g16_cur = -1;
    m->g16_head_cur = false;
    (void)views;
}

void model_weights16_gather_reset(Model *m, bool head) {
    if (!m->w16_sharded) return;
    for (int i = 0; i < m->nspecs; i++) {
        if (m->w16_at[i] == SIZE_MAX) continue;
        int l = w16_group(m, &m->specs[i]);
        if ((l == m->g16_cur && l < m->L_loc) || (head && l == m->L_loc)) model_set_weights16_view(m, i, NULL);
    }
    m->g16_cur = -1;
    if (head) m->g16_head_cur = false;
}

void model_weights16_gather(Model *m, int l) {
    if (!m->w16_sharded) return;
    if (!m->w16_fresh)
        sd_die("model", "ZeRO-3: the bf16 weight shards are stale (model_params_allgather after the optimizer step)");
    bool head = l == m->L_loc;
    if (head ? m->g16_head_cur : m->g16_cur == l) return;
    if (!head) model_weights16_gather_reset(m, false);
    uint16_t *buf = head ? m->g16_head : m->g16_layer;
    size_t from = m->g16_from[l], to = m->g16_to[l];
    ProcessGrid *g = m->grid;
    int dp = g->dp;
    size_t *cnt = sd_alloc(sizeof(size_t) * (size_t)dp, "all-gather blocks");
    for (int r = 0; r < dp; r++) { /* rank r's block: its part of the copy within [from, to) */
        size_t a = m->w16_bounds[r] > from ? m->w16_bounds[r] : from;
        size_t b = m->w16_bounds[r + 1] < to ? m->w16_bounds[r + 1] : to;
        cnt[r] = b > a ? b - a : 0;
        if (r == g->dp_rank && b > a) m->be->copy(buf + (a - from), m->w16_base + (a - m->w16_lo), (b - a) * sizeof(uint16_t));
    }
    if (to > from) comm_allgatherv(g, GROUP_DP, buf, sizeof(uint16_t), cnt);
    free(cnt);
    for (int i = 0; i < m->nspecs; i++)
        if (m->w16_at[i] != SIZE_MAX && w16_group(m, &m->specs[i]) == l)
            model_set_weights16_view(m, i, buf + (m->w16_at[i] - from));
    if (head) m->g16_head_cur = true;
    else m->g16_cur = l;
}

void model_forward_gathers(Model *m) {
    if (!m->w16_sharded) return;
    model_weights16_gather_reset(m, false);
    for (int l = 0; l < m->L_loc; l++) model_weights16_gather(m, l);
    if (m->last_stage) model_weights16_gather(m, m->L_loc);
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
    if (!m->w16_base || m->w16_at[i] == SIZE_MAX) return;
    /* the bf16 copy: whole, or under ZeRO-3 this rank's part (its shard's elements) */
    size_t from = 0, to = p->numel;
    if (m->w16_sharded) {
        if (!own_part(m, p->offset, p->offset + p->numel, &s, &e)) return;
        from = s - p->offset, to = e - p->offset;
    }
    uint16_t *v = model_weights16_at(m, i, from);
    enum { CHUNK = 1 << 22 };
    uint16_t *b = sd_alloc(CHUNK * sizeof(uint16_t), "bf16 weights");
    for (size_t at = from; at < to; at += CHUNK) { /* rounded as the backend's to_bf16 rounds */
        size_t n = to - at < CHUNK ? to - at : CHUNK;
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < n; j++) b[j] = sd_f32_to_bf16(data[at + j]);
        be->upload(v + (at - from), b, n * sizeof(uint16_t));
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
    /* ZeRO-3: the copy stays in parts, gathered layer by layer as the forward and backward need them */
    if (!m->w16_sharded) comm_allgatherv(g, GROUP_DP, m->w16_base, sizeof(uint16_t), wc);
    free(rc);
    model_weights16_written(m);
}
