/* grad_partition.c — ZeRO-2's gradient partitioning (model.h GradPartition, ModelOpts.grad_shards).
 *
 * Why: ZeRO-1 shards the optimizer state, but every data-parallel rank still holds the whole fp32 gradient (4 bytes
 * per parameter: 30 GiB for Llama 3 8B on one stage). Stage 2 keeps only the rank's shard: the backward writes one
 * bucket at a time (a layer, the final norm with an untied head, an untied embedding) and hands it to the sink as
 * soon as the bucket is complete, which reduce-scatters it over the data-parallel group and adds the rank's part
 * into its shard (mpi/zero.h zero_reduce_bucket). Memory: the shard, one bucket (the largest) and, with tied
 * embeddings, the tied tensor, which two writers (the head, the embedding's scatter; on two stages the pipeline's
 * sum of its copies) fill over the whole step, so it is reduced once after the step. The price is a reduction
 * per micro-batch instead of per step (DeepSpeed's stage 2 pays the same): with one micro-batch per rank and step
 * the same bytes as ZeRO-1's all-reduce halves.
 * The buckets are the parameter table's own groups, so each is one contiguous flat range (build_specs lists a
 * layer's parameters together, the final norm right before the LM head).
 */
#include <stdint.h>
#include <string.h>
#include "model_internal.h"
#include "util.h"

#define GRAD_RESIDENT (-3)

/* the bucket of spec i: its local layer, GRAD_BUCKET_HEAD, GRAD_BUCKET_EMBED, or GRAD_RESIDENT (a tied embedding,
 * or its mirror on the last stage) */
static int bucket_of(const Model *m, int i) {
    const ParamSpec *p = &m->specs[i];
    if (p->layer >= 0) return p->layer - m->L_off;
    if (p->role == P_EMBED) return m->mc.tie_word_embeddings ? GRAD_RESIDENT : GRAD_BUCKET_EMBED;
    if (p->role == P_LMHEAD && p->mirror) return GRAD_RESIDENT;
    return GRAD_BUCKET_HEAD; /* the final norm, an untied LM head */
}

bool model_grad_bucket_range(const Model *m, int b, size_t *start, size_t *n) {
    size_t s = SIZE_MAX, e = 0, sum = 0;
    for (int i = 0; i < m->nspecs; i++) {
        if (bucket_of(m, i) != b) continue;
        const ParamSpec *p = &m->specs[i];
        if (p->offset < s) s = p->offset;
        if (p->offset + p->numel > e) e = p->offset + p->numel;
        sum += p->numel;
    }
    if (!sum) return false;
    if (e - s != sum) sd_die("model", "gradient bucket %d is not one flat range", b);
    *start = s, *n = sum;
    return true;
}

int model_grad_units(const Model *m, size_t **off_out, size_t **n_out) {
    int cap = 2 * (m->L_loc + 3) + 1, k = 0;
    size_t *off = sd_alloc(sizeof(size_t) * 2 * (size_t)cap, "gradient units"), *n = off + cap;
    size_t lo = m->grads_from, hi = m->grads_to, at = lo;
    /* the buckets lie in increasing flat order for increasing b (embedding, layers, head; build_specs), so a pass in
     * that order meets them sorted; a gap before one (a tied embedding) becomes a unit of its own */
    for (int j = 0; j < m->L_loc + 2; j++) {
        int b = j == 0 ? GRAD_BUCKET_EMBED : j > m->L_loc ? GRAD_BUCKET_HEAD : j - 1;
        size_t st, c;
        if (!model_grad_bucket_range(m, b, &st, &c)) continue;
        size_t s = st > lo ? st : lo, e = st + c < hi ? st + c : hi;
        if (s >= e) continue;
        if (s < at) sd_die("model", "gradient bucket %d at flat %zu lies before the one ahead of it", b, s);
        if (s > at) off[k] = at, n[k++] = s - at;
        off[k] = s, n[k++] = e - s;
        at = e;
    }
    if (at < hi) off[k] = at, n[k++] = hi - at;
    *off_out = off, *n_out = n;
    return k;
}

void model_partition_init(Model *m, int shards, int shard, int buffers) {
    const Backend *be = m->be;
    m->partitioned = true;
    m->grads = model_alloc_shard(m, shards, shard, &m->grads_from, &m->grads_to, "gradient shard");
    GradPartition *gp = &m->gp;
    size_t st, n;
    for (int b = GRAD_BUCKET_EMBED; b < m->L_loc; b++)
        if (model_grad_bucket_range(m, b, &st, &n) && n > gp->bucket_cap) gp->bucket_cap = n;
    if (buffers < 1 || buffers > 2) sd_die("model", "%d gradient bucket buffers (1 or 2)", buffers);
    for (int k = 0; k < buffers; k++)
        gp->buf[k] = be->alloc(sd_mul_size(gp->bucket_cap ? gp->bucket_cap : 1, sizeof(float), "gradient bucket"),
                               "gradient bucket");
    gp->bucket = gp->buf[0];
    gp->resident_spec = -1;
    for (int i = 0; i < m->nspecs; i++)
        if (bucket_of(m, i) == GRAD_RESIDENT) gp->resident_spec = i;
    if (gp->resident_spec >= 0) {
        size_t rn = m->specs[gp->resident_spec].numel;
        gp->resident = be->alloc(sd_mul_size(rn, sizeof(float), "tied gradient"), "tied gradient");
        be->zero(gp->resident, rn * sizeof(float));
    }
    /* every bucket's first write overwrites (model_grad_bucket_begin marks them); the resident one accumulates
     * unless model_grads_begin marks it */
    m->gfresh = sd_calloc((size_t)(m->nspecs ? m->nspecs : 1), sizeof(bool), "gradient flags");
    model_partition_views(m);
}

void model_partition_views(Model *m) {
    m->dembed = m->dnorm = m->dlm_head = NULL;
    for (int i = 0; i < m->nspecs; i++) {
        int b = bucket_of(m, i);
        size_t st = 0, n;
        if (b != GRAD_RESIDENT) model_grad_bucket_range(m, b, &st, &n);
        /* every layer's views share the bucket: one layer's backward runs at a time */
        model_set_grad_view(m, i, b == GRAD_RESIDENT ? m->gp.resident : m->gp.bucket + (m->specs[i].offset - st));
    }
    if (!m->dlm_head) m->dlm_head = m->dembed; /* tied, one stage */
}

size_t model_partition_offset(const Model *m, const float *dW) {
    const GradPartition *gp = &m->gp;
    if (gp->resident && dW == gp->resident) return m->specs[gp->resident_spec].offset;
    if (dW >= gp->bucket && dW < gp->bucket + gp->bucket_cap) return gp->bucket_off + (size_t)(dW - gp->bucket);
    sd_die("model", "a gradient view outside the partitioned gradient's buffers");
}

void model_grad_bucket_begin(Model *m, int b) {
    size_t st, n;
    if (!m->partitioned || !model_grad_bucket_range(m, b, &st, &n)) return;
    GradPartition *gp = &m->gp;
    if (gp->buf[1]) { /* two buffers: this bucket takes the one the bucket before the last wrote, once its sum left */
        float *buf = gp->buf[gp->next];
        gp->next ^= 1;
        if (gp->sink.wait) gp->sink.wait(gp->sink.ctx, m, buf);
        gp->bucket = buf; /* the bucket's views into it (they may point into the other) */
        for (int i = 0; i < m->nspecs; i++)
            if (bucket_of(m, i) == b) model_set_grad_view(m, i, buf + (m->specs[i].offset - st));
    }
    gp->bucket_off = st;
    for (int i = 0; i < m->nspecs; i++)
        if (bucket_of(m, i) == b) m->gfresh[i] = true; /* the bucket holds another's: the first write overwrites */
}

int model_grad_buffers(const Model *m, float *buf[2]) {
    buf[0] = m->gp.buf[0], buf[1] = m->gp.buf[1];
    return buf[1] ? 2 : 1;
}

void model_grad_bucket_end(Model *m, int b) {
    size_t st, n;
    if (!m->partitioned) {
        model_grads_done(m, b); /* the update inside the backward, when armed */
        return;
    }
    if (!model_grad_bucket_range(m, b, &st, &n)) return;
    GradPartition *gp = &m->gp;
    for (int i = 0; i < m->nspecs; i++)
        if (bucket_of(m, i) == b && m->gfresh[i]) { /* nothing wrote it this micro-batch */
            m->be->zero(gp->bucket + (m->specs[i].offset - st), m->specs[i].numel * sizeof(float));
            m->gfresh[i] = false;
        }
    if (!gp->sink.reduce) sd_die("model", "a partitioned gradient without a sink (model_set_grad_sink)");
    gp->sink.reduce(gp->sink.ctx, m, st, gp->bucket, n);
}

void model_set_grad_sink(Model *m, GradSink sink) { m->gp.sink = sink; }

void model_grads_reduce_resident(Model *m) {
    GradPartition *gp = &m->gp;
    if (!m->partitioned || !gp->resident) return;
    if (!gp->sink.reduce) sd_die("model", "a partitioned gradient without a sink (model_set_grad_sink)");
    const ParamSpec *p = &m->specs[gp->resident_spec];
    gp->sink.reduce(gp->sink.ctx, m, p->offset, gp->resident, p->numel);
}

void model_partition_free(Model *m) {
    m->be->free(m->gp.buf[0]);
    if (m->gp.buf[1]) m->be->free(m->gp.buf[1]);
    m->be->free(m->gp.resident);
    memset(&m->gp, 0, sizeof m->gp);
}
