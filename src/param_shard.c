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
 * ZeRO-3 (model.h zero3, parallel.zero 3) goes one step further, as DeepSpeed's stage 3 and FSDP do: the compute
 * weights too stay in those parts: in bf16 the copy (2 (1 - 1/dp) bytes less per matmul weight: 14 of Llama 3 8B's
 * 16 GB on 8 ranks), in fp32, where the weights are the compute weights, the fp32 shard itself (4 (1 - 1/dp) bytes
 * less, sharded as above without a copy). Each layer's span of them is all-gathered into one layer buffer before the
 * layer's forward and again before its backward (the LM head's into its own buffer, once per weights version).
 * Traffic: twice the stage's matmul weights per micro-batch, where ZeRO-1 / 2 send them once per step.
 */
#include <stdio.h>
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
        if (m->w16_at[i] != SIZE_MAX && p->offset + p->numel > x)
            return m->w16_at[i] + (x > p->offset ? x - p->offset : 0);
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

/* ZeRO-3's layout of the compute weights: spec i's matmul weight starts at position *at (bf16: its view in the copy;
 * fp32: its flat offset); false for a spec no matmul reads through the layout (the fp32-read parameters, and in bf16
 * whatever has no view) */
static bool cw_at(const Model *m, int i, size_t *at) {
    if (m->w16_at) {
        *at = m->w16_at[i];
        return *at != SIZE_MAX;
    }
    *at = m->specs[i].offset;
    return !spec_rep(&m->specs[i]);
}
/* the group of a matmul weight: local layer l, or the LM head at L_loc */
static int cw_group(const Model *m, const ParamSpec *p) { return p->layer >= 0 ? p->layer - m->L_off : m->L_loc; }
/* the position in the layout of flat element x */
static size_t cw_pos(const Model *m, size_t x) { return m->w16_at ? w16_pos(m, x) : x; }
/* points spec i's matmul view (bf16 or fp32) at v */
static void cw_view(Model *m, int i, void *v) {
    if (m->w16_at) model_set_weights16_view(m, i, v);
    else model_set_param_view(m, i, v);
}

void model_shard_weights_init(Model *m) {
    const Backend *be = m->be;
    int dp = m->grid->dp, G = m->L_loc + 1;
    size_t per = m->params_to - m->params_from;
    m->gw_esz = m->w16_at ? sizeof(uint16_t) : sizeof(float);
    m->gw_bounds = sd_alloc(sizeof(size_t) * ((size_t)dp + 1), "compute weight shard bounds");
    for (int r = 0; r <= dp; r++) m->gw_bounds[r] = cw_pos(m, (size_t)r * per);
    if (m->w16_at) { /* the bf16 copy: this rank's part of it (fp32: the shard of m->params is the part) */
        m->w16_lo = w16_pos(m, m->params_from), m->w16_hi = w16_pos(m, m->params_to);
        size_t part = w16_part_elems(m);
        if (m->w16_hi - m->w16_lo > part)
            sd_die("model", "this rank's part of the bf16 copy (%zu elements) exceeds its bound (%zu)",
                   m->w16_hi - m->w16_lo, part);
        m->w16_base = be->alloc(sd_mul_size(part ? part : 1, sizeof(uint16_t), "bf16 weight shard"),
                                "bf16 weight shard");
    }
    /* each group's matmul weights span one range of the layout (a layer's specs are contiguous in the table) */
    m->gw_from = sd_alloc(sizeof(size_t) * 2 * (size_t)G, "gather ranges"), m->gw_to = m->gw_from + G;
    for (int l = 0; l < G; l++) m->gw_from[l] = SIZE_MAX, m->gw_to[l] = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        size_t at;
        if (!cw_at(m, i, &at)) continue;
        int l = cw_group(m, p);
        size_t end = at + (m->w16_at ? (p->numel + 127) / 128 * 128 : p->numel); /* bf16: each view padded */
        if (m->w16_at && m->gw_to[l] && m->gw_to[l] != at)
            sd_die("model", "the bf16 views of '%s''s group are not contiguous", p->name);
        if (m->gw_from[l] == SIZE_MAX) m->gw_from[l] = at;
        m->gw_to[l] = end;
        cw_view(m, i, NULL); /* gathered on demand */
    }
    size_t most = 0;
    for (int l = 0; l < G; l++) {
        if (m->gw_from[l] == SIZE_MAX) m->gw_from[l] = m->gw_to[l] = 0; /* none (a stage without the head) */
        if (l < m->L_loc && m->gw_to[l] - m->gw_from[l] > most) most = m->gw_to[l] - m->gw_from[l];
    }
    size_t head = m->gw_to[m->L_loc] - m->gw_from[m->L_loc];
    if (most) m->gw_layer = be->alloc(sd_mul_size(most, m->gw_esz, "layer gather"), "layer gather");
    if (most && m->gw_prefetch && m->L_loc > 1) { /* one layer: nothing to gather ahead */
        m->gw_spare = be->alloc(sd_mul_size(most, m->gw_esz, "layer gather"), "layer gather");
        m->gw_req = sd_calloc(1, sizeof(CommGatherReq), "layer gather requests");
    }
    m->gw_pre = -1;
    if (head) m->gw_head = be->alloc(sd_mul_size(head, m->gw_esz, "head gather"), "head gather");
    m->gw_cur = -1;
    m->gw_head_cur = false;
}

/* the blocks of layer group l's span [gw_from[l], gw_to[l]) each rank holds, into cnt[dp]; this rank's copied into
 * buf (the span's first position at buf[0]) */
static void gather_blocks(Model *m, int l, char *buf, size_t *cnt) {
    size_t from = m->gw_from[l], to = m->gw_to[l], esz = m->gw_esz;
    ProcessGrid *g = m->grid;
    for (int r = 0; r < g->dp; r++) { /* rank r's block: its part of the layout within [from, to) */
        size_t a = m->gw_bounds[r] > from ? m->gw_bounds[r] : from;
        size_t b = m->gw_bounds[r + 1] < to ? m->gw_bounds[r + 1] : to;
        cnt[r] = b > a ? b - a : 0;
        if (r != g->dp_rank || b <= a) continue;
        /* this rank's part: in its bf16 shard from position w16_lo, or in its fp32 shard (positions = offsets) */
        const void *src = m->w16_at ? (const void *)(m->w16_base + (a - m->w16_lo))
                                    : (const void *)model_param_at(m, a);
        m->be->copy(buf + (a - from) * esz, src, (b - a) * esz);
    }
}

/* layer group l's views into buf, which holds its span */
static void point_group(Model *m, int l, char *buf) {
    for (int i = 0; i < m->nspecs; i++) {
        size_t at;
        if (cw_at(m, i, &at) && cw_group(m, &m->specs[i]) == l) cw_view(m, i, buf + (at - m->gw_from[l]) * m->gw_esz);
    }
}

/* the prefetch in flight, completed and no longer pending (its layer is then in gw_spare) */
static void prefetch_finish(Model *m) {
    if (m->gw_pre >= 0) comm_gather_wait(m->gw_req);
    m->gw_pre = -1;
}

void model_weights_prefetch(Model *m, int l) {
    if (!m->zero3 || !m->gw_spare || l < 0 || l >= m->L_loc || l == m->gw_cur || l == m->gw_pre) return;
    if (m->w16_base && !m->w16_fresh) return; /* stale shards: model_weights_gather says so */
    prefetch_finish(m); /* another layer's: not read (the pass asked for another order); its traffic is spent */
    size_t *cnt = sd_alloc(sizeof(size_t) * (size_t)m->grid->dp, "all-gather blocks");
    gather_blocks(m, l, m->gw_spare, cnt);
    if (m->gw_to[l] > m->gw_from[l]) comm_iallgatherv(m->grid, GROUP_DP, m->gw_spare, m->gw_esz, cnt, m->gw_req);
    free(cnt);
    m->gw_pre = l;
}

void model_weights_gather_reset(Model *m, bool head) {
    if (!m->zero3) return;
    prefetch_finish(m); /* a layer on its way is forgotten too */
    for (int i = 0; i < m->nspecs; i++) {
        size_t at;
        if (!cw_at(m, i, &at)) continue;
        int l = cw_group(m, &m->specs[i]);
        if ((l == m->gw_cur && l < m->L_loc) || (head && l == m->L_loc)) cw_view(m, i, NULL);
    }
    m->gw_cur = -1;
    if (head) m->gw_head_cur = false;
}

void model_weights_gather(Model *m, int l) {
    if (!m->zero3) return;
    if (m->w16_base && !m->w16_fresh)
        sd_die("model", "ZeRO-3: the bf16 weight shards are stale (model_params_allgather after the optimizer step)");
    bool head = l == m->L_loc;
    if (head ? m->gw_head_cur : m->gw_cur == l) return;
    if (!head && m->gw_pre == l) { /* gathered ahead: the spare buffer becomes the layer's */
        int pre = m->gw_pre;
        prefetch_finish(m);
        model_weights_gather_reset(m, false);
        void *t = m->gw_layer;
        m->gw_layer = m->gw_spare, m->gw_spare = t;
        point_group(m, pre, m->gw_layer);
        m->gw_cur = pre;
        const char *tr = getenv("SIMPO_TRACE");
        if (tr && strstr(tr, "dp") && m->grid->rank == 0) fprintf(stderr, "[dp] layer %d gathered ahead\n", pre + m->L_off);
        return;
    }
    if (!head) model_weights_gather_reset(m, false); /* also completes a prefetch of another layer, unread */
    char *buf = head ? m->gw_head : m->gw_layer;
    size_t *cnt = sd_alloc(sizeof(size_t) * (size_t)m->grid->dp, "all-gather blocks");
    gather_blocks(m, l, buf, cnt);
    if (m->gw_to[l] > m->gw_from[l]) comm_allgatherv(m->grid, GROUP_DP, buf, m->gw_esz, cnt);
    free(cnt);
    point_group(m, l, buf);
    if (head) m->gw_head_cur = true;
    else m->gw_cur = l;
}

void model_forward_gathers(Model *m) {
    if (!m->zero3) return;
    model_weights_gather_reset(m, false);
    for (int l = 0; l < m->L_loc; l++) { /* the forward's calls, prefetches included: MPI matches a non-blocking
                                          * collective only with a non-blocking one */
        model_weights_gather(m, l);
        model_weights_prefetch(m, l + 1);
    }
    if (m->last_stage) model_weights_gather(m, m->L_loc);
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
    /* the bf16 copy the matmuls read (under ZeRO-3 its part); without bf16 storage only ZeRO-3 shards the weights,
     * which the matmuls then read gathered in fp32 */
    if (m->act16 && m->be->to_bf16) model_enable_weights16(m);
    else model_shard_weights_init(m);
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
    if (m->zero3) {
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
    if (m->params_sharded) {
        model_weights16_written(m); /* the copy was written with the weights */
        model_weights_gather_reset(m, true); /* ZeRO-3: what the buffers hold is the weights before */
    } else model_weights_changed(m);
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
        wc[r] = m->w16_at ? w16_pos(m, b) - w16_pos(m, a) : 0;
    }
    comm_allgatherv(g, GROUP_DP, m->prep, sizeof(float), rc);
    /* ZeRO-3: the copy stays in parts, gathered layer by layer as the forward and backward need them */
    if (!m->zero3) comm_allgatherv(g, GROUP_DP, m->w16_base, sizeof(uint16_t), wc);
    free(rc);
    model_weights16_written(m);
}
