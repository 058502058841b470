/* plan.c — see plan.h. The formulas restate, independently of the allocation code, what each part of the
 * trainer holds and sends; docs/design.md lists them. */
#include "plan.h"
#include "model.h"
#include "train_step.h" /* ACC_N: the metrics a step all-reduces */

static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t pad128(size_t n) { return div_up(n, 128) * 128; }

static void stage_layers(int L, int pp, int stage, int *first, int *count) {
    *count = L / pp + (stage < L % pp);
    *first = stage * (L / pp) + (stage < L % pp ? stage : L % pp);
}

RecomputeStep plan_recompute_step(int s, bool act, bool norm) {
    RecomputeStep r = {s < 3 ? 0 : s - 2, act || s >= 1, norm || s >= 2};
    return r;
}

int plan_recompute_layers(const PlanLayout *l, int stage) {
    int L0, Ll;
    stage_layers(l->mc.num_hidden_layers, l->pp, stage, &L0, &Ll);
    return l->recompute_layers <= 0 ? 0 : l->recompute_layers < Ll ? l->recompute_layers : Ll;
}

bool plan_grads_partitioned(const PlanLayout *l) { return l->zero >= 2 && l->dp > 1; }

bool plan_embed_in_one_shard(const PlanLayout *l) {
    PlanLayout f = *l;
    f.pp_rank = 0, f.sparse_embed = false; /* the first stage's buffer */
    MemPlan p = plan_memory(&f);
    size_t align = 64 * (size_t)l->dp, n_pad = div_up(p.params, align) * align;
    size_t emb = (size_t)l->mc.vocab_size / (size_t)(l->tp > 0 ? l->tp : 1) * (size_t)l->mc.hidden_size;
    return l->dp == 1 || emb <= n_pad / (size_t)l->dp;
}

/* model.c act16 (forward declared: plan_params_sharded needs it) */
static bool storage_act16(const PlanLayout *l);
/* the bf16 copy exists and stands in for the fp32 weights in the matmuls: ZeRO >= 1 shards the fp32 ones */
static bool copy_shards(const PlanLayout *l) { return l->zero >= 1 && l->dp > 1 && l->weights16 && storage_act16(l); }
bool plan_zero3(const PlanLayout *l) { return l->zero >= 3 && l->dp > 1; }
bool plan_params_sharded(const PlanLayout *l) { return copy_shards(l) || plan_zero3(l); }

bool plan_weights16_sharded(const PlanLayout *l) { return plan_zero3(l) && copy_shards(l); }

/* model.c act16: in bf16 the activations that only feed matmuls in bf16 storage (hidden and local MLP widths even) */
static bool storage_act16(const PlanLayout *l) {
    int tp = l->tp > 0 ? l->tp : 1;
    return l->bf16 && l->mc.hidden_size % 2 == 0 && (l->mc.intermediate_size / tp) % 2 == 0;
}
/* model.c proj16: autocast storage on top of it (head dim even) */
static bool storage_auto16(const PlanLayout *l) {
    return storage_act16(l) && l->autocast16 && l->mc.head_dim % 2 == 0;
}
/* Gemma 2's final logit soft-capping (model.c head_capped) */
static bool logits_capped(const ModelConfig *mc) { return mc->arch == ARCH_GEMMA2 && mc->final_logit_softcapping > 0; }

bool plan_logits16(const PlanLayout *l) { return storage_auto16(l) && !logits_capped(&l->mc); }

MemPlan plan_memory(const PlanLayout *l) {
    const ModelConfig *mc = &l->mc;
    size_t C = (size_t)mc->hidden_size, HD = (size_t)mc->head_dim, tp = (size_t)l->tp;
    size_t NH = (size_t)mc->num_attention_heads / tp, NKV = (size_t)mc->num_key_value_heads / tp;
    size_t FF = (size_t)mc->intermediate_size / tp, V = (size_t)mc->vocab_size / tp, QD = NH * HD, KD = NKV * HD;
    int L0, Ll;
    stage_layers(mc->num_hidden_layers, l->pp, l->pp_rank, &L0, &Ll);
    int first = l->pp_rank == 0, last = l->pp_rank == l->pp - 1;
    MemPlan p = {0};
    bool gemma2 = mc->arch == ARCH_GEMMA2;
    /* parameters: per layer two gains (Gemma 2: four), q/k/v/gate/up rows and o/down columns of this TP rank, and
     * Qwen2's q/k/v biases */
    size_t extra = (mc->qkv_bias ? QD + 2 * KD : 0) + (mc->qk_norm ? 2 * HD : 0); /* Qwen2's biases, Qwen3's gains */
    size_t per_layer = (gemma2 ? 4 : 2) * C + (QD + 2 * KD) * C + C * QD + 3 * FF * C + extra;
    int Lrc = plan_recompute_layers(l, l->pp_rank);
    p.layer_params = (size_t)Ll * per_layer;
    p.rerun_params = (size_t)Lrc * per_layer;
    p.params = p.layer_params;
    if (first) p.params += V * C;                                 /* embedding slice */
    if (last) p.params += C + (!mc->tie_word_embeddings || !first ? V * C : 0); /* norm, head (or its mirror) */
    size_t align = 64 * (size_t)l->dp, n_pad = div_up(p.params, align) * align;
    p.weights = 4 * n_pad;
    p.grads = 4 * n_pad;
    /* the sparse embedding gradient (model.h model_enable_sparse_embed): the dense [V, C] slice leaves the flat
     * gradient buffer for the rows a step can select; its row map [V] and each slot's renamed ids are counted in
     * `other` below */
    size_t sp_rows = l->sparse_embed && first
                         ? model_sparse_embed_rows((size_t)l->dp * (size_t)l->n_mb * l->max_tokens, (int)V)
                         : 0; /* the rows of the DP group's tokens (model_sparse_embed_begin's union) */
    if (sp_rows) p.grads = 4 * (n_pad - V * C) + 4 * sp_rows * C;
    /* ZeRO-2 with dp > 1 (model.h GradPartition): this rank's shard of the flat gradient, one bucket (the largest of
     * a layer, the final norm with an untied head, an untied embedding; two under parallel.overlap_grad_reduce) and a
     * tied embedding's gradient (or its mirror's), whole for the step */
    if (plan_grads_partitioned(l)) {
        size_t res = 0, bucket = per_layer, tied = mc->tie_word_embeddings;
        size_t head = last ? C + (tied ? 0 : V * C) : 0, emb = first && !tied ? V * C : 0;
        if (tied && (first || last)) res = V * C;
        if (head > bucket) bucket = head;
        if (emb > bucket) bucket = emb;
        p.grads = 4 * (n_pad / (size_t)l->dp + (l->grad_buffers2 ? 2 : 1) * bucket + res);
        p.grad_resident = res;
    }
    p.optimizer = 2 * 4 * (l->zero >= 1 ? n_pad / (size_t)l->dp : p.params);
    bool act16 = storage_act16(l); /* bf16 storage (and so the weight copy) */
    /* the bf16 copy of the matmul weights: q, k, v, o, gate, up, down of each layer and the LM head (last stage),
     * each padded to 128 elements (model.c pad128) */
    size_t layer16 = pad128(QD * C) + 2 * pad128(KD * C) + pad128(C * QD) + 3 * pad128(FF * C);
    size_t head16w = last ? pad128(V * C) : 0;
    if (l->weights16 && act16) p.weights16 = 2 * ((size_t)Ll * layer16 + head16w);
    /* ZeRO-3 (model.h zero3): this rank's part of the copy, allocated at its bound (param_shard.c
     * w16_part_elems: its fp32 shard's n_pad / dp elements plus a view's padding for each of the stage's 7 per layer
     * and the head, at most the whole copy), one layer's gather buffer (two with parallel.zero3_prefetch on a stage of
     * more than one layer) and the head's */
    if (plan_weights16_sharded(l)) {
        size_t part = n_pad / (size_t)l->dp + 128 * ((size_t)Ll * 7 + (last ? 1 : 0));
        if (part > p.weights16 / 2) part = p.weights16 / 2;
        p.gather_layer = 2 * layer16, p.gather_head = 2 * head16w;
        p.weights16 = 2 * part + (Ll ? p.gather_layer : 0) * (Ll > 1 && l->zero3_prefetch ? 2 : 1) + p.gather_head;
    }
    /* sharded fp32 master weights (model.h params_sharded: ZeRO >= 1, dp > 1, the bf16 copy): this rank's shard, and
     * whole the parameters an op reads in fp32 (the embedding, the RMSNorm gains, Qwen2's q, k, v biases) */
    if (plan_params_sharded(l)) {
        p.param_rep = (size_t)Ll * ((gemma2 ? 4 : 2) * C + extra) + (first ? V * C : 0) + (last ? C : 0);
        p.weights = 4 * (n_pad / (size_t)l->dp + p.param_rep);
    }
    /* ZeRO-3 without the bf16 copy (param_shard.c): the fp32 weights are the compute weights, gathered from the
     * shards into one layer buffer (a layer's span of the flat buffer from q's weight to down's, the gains and
     * biases between them included) and the head's (the untied head or a tied one's mirror; a tied head on the
     * embedding's stage reads the embedding, whole) */
    if (plan_zero3(l) && !copy_shards(l)) {
        p.gather_layer = 4 * ((QD + 2 * KD) * C + (mc->qkv_bias ? QD + 2 * KD : 0) + (mc->qk_norm ? 2 * HD : 0) +
                              C * QD + (gemma2 ? 2 : 1) * C + 3 * FF * C);
        p.gather_head = last && (!mc->tie_word_embeddings || !first) ? 4 * V * C : 0;
        p.weights += (Ll ? p.gather_layer : 0) * (Ll > 1 && l->zero3_prefetch ? 2 : 1) + p.gather_head;
    }
    /* activations (fp32; in bf16 ln1, ln2, h as noted below). Per slot, what lives from a micro-batch's forward to its backward: every layer's input and
     * (unless it recomputes) its intermediates: norms, q/k/v, attention output and lse, x2, the MLP's gate/up/hidden;
     * the stage output and the stage gradient (what the pipeline sends and receives; one buffer for both on a stage
     * before the last, where the gradient arrives after the output has left); on the last stage the final
     * norm's rstd, the gathered rows and their log-sum-exp; and the int arrays (ids, positions, cu_seqlens; on the
     * last stage targets and gathered rows). Once per rank, shared by the slots: the backward's scratch, and on the
     * last stage the final normed rows, the LM-head chunk of R rows (over the backward's scratch) and the head's row
     * gradients; with recompute the intermediates of one layer, in the working area. */
    size_t N = model_arena_tokens(l->max_tokens);
    /* the C-wide rows a rank holds: all N, or under sequence parallelism its block (model.c max_rows), N then being
     * tp blocks */
    size_t Nr = N;
    if (l->seqpar) Nr = model_seqpar_rows(l->max_tokens, l->tp), N = Nr * tp;
    size_t R = model_lmhead_rows_per_chunk(l->max_lp_rows ? l->max_lp_rows : l->max_tokens, (int)V,
                                           plan_logits16(l)); /* model.c head16's chunks, for the log-prob rows */
    size_t NA = model_arena_tokens(l->max_att_tokens ? l->max_att_tokens : l->max_tokens); /* attention's rows */
    /* one layer's intermediates: in the C-wide rows (Nr of them) two rstd, x2, ln1 and ln2, and Gemma 2's attention
     * and MLP outputs before their norms with their two rstd; of every token (N) q, k, v, att, lse, g, u, h.
     * model.dtype bf16: ln1, ln2 and h in bf16 storage, half their floats (model.c act16); model.bf16_storage
     * autocast: g, u, q, k, v and att in bf16 too (model.c proj16; HD even) */
    bool auto16 = storage_auto16(l);
    size_t C16 = act16 ? C / 2 : C, FF16 = act16 ? FF / 2 : FF;
    size_t QDp = auto16 ? QD / 2 : QD, KDp = auto16 ? KD / 2 : KD, FFp = auto16 ? FF / 2 : FF;
    /* train.recompute_activation: h leaves the layer term for one buffer in the shared scratch (model.c act_rc);
     * train.recompute_norm: ln1 and ln2 leave it for one buffer of one of them (model.c norm_rc) */
    size_t hbuf = l->recompute_act ? N * FF16 : 0, nbuf = l->recompute_norm ? Nr * C16 : 0;
    size_t work = Nr * (2 + C + (l->recompute_norm ? 0 : 2 * C16) + (gemma2 ? 2 * C + 2 : 0)) +
                  N * (2 * QDp + 2 * KDp + NH + 2 * FFp + (l->recompute_act ? 0 : FF16) +
                       (mc->qk_norm ? QDp + KDp + NH + NKV : 0)); /* Qwen3: q, k before their norms, the rstd */
    /* Gemma 2's final logit soft-capping keeps a chunk's pre-cap logits for the backward (last stage) */
    size_t capbuf = last && logits_capped(mc) ? R * V : 0;
    /* one buffer holds a non-last stage's output, then its gradient; the last stage's gathered rows hs (with the
     * final norm's rstd and the rows' log-sum-exp) are bf16 under act16, like the final normed rows xf in the shared
     * part: they feed only the LM head's matmuls */
    size_t floats = (size_t)Ll * Nr * C + (size_t)(Ll - Lrc) * work + (last ? 2 : 1) * Nr * C +
                    (last ? N * (C16 + 1) + Nr : 0);
    /* ids, positions, cu_seqlens, prefix sharing's four row maps and its copied rows per sequence; last stage:
     * targets, gathered rows and the map of their scatter as two row sums */
    size_t ints = 4 * N + 1 + 4 * NA + (last ? 4 * N : 0);
    /* the LM-head chunk buffers lie over the layers' gradient scratch (never live together): the larger of the two.
     * In bf16 storage the gate / up gradients take half their floats (in autocast storage dq, dk, dv too), and the
     * head keeps a bf16 d(logits) chunk unless the final soft-cap's backward follows (model.c head_dlog16); in
     * autocast storage its logits are bf16 and become d(logits) in place (model.c head16) */
    bool head16 = last && plan_logits16(l); /* model.c head16: bf16 logits, d(logits) in place */
    size_t dlog16 = last && act16 && !capbuf && !head16 ? (R * V + 1) / 2 : 0;
    /* dg, du (bf16 under act16), dh (bf16 under autocast), or laid over them prefix sharing's attention rows (q, k,
     * v, att, dq, dk, dv, lse, d(att)); before them dq, d(att), dk, dv (bf16 under autocast) */
    size_t mlp = N * ((auto16 ? FF / 2 : FF) + (act16 ? FF : 2 * FF)), xatt = NA * (4 * QDp + 4 * KDp + NH);
    size_t lgrad = N * (2 * QDp + 2 * KDp) + (mlp > xatt ? mlp : xatt);
    /* the LM-head logits cache on the last stage: [log-prob rows, V], fp32 or (head16) bf16, first in the head's
     * region over the layers' gradient scratch (lmhead.c model_head_region_floats); when it holds every row a
     * micro-batch has (full), the chunk needs no logits buffer of its own, except for the soft-cap's working copy */
    size_t NL = l->lmhead_cache && last
                    ? model_head_cache_rows(l->max_tokens, l->max_lp_rows, (int)V, head16, l->lmhead_cache_rows)
                    : 0;
    bool full = NL && NL >= model_arena_tokens(l->max_lp_rows ? l->max_lp_rows : l->max_tokens);
    size_t cache = head16 ? (NL * V + 1) / 2 : NL * V;
    size_t own = full && !capbuf ? 0 : (head16 ? (R * V + 1) / 2 : R * V);
    /* a whole cache without a buffer of the chunk's own is one chunk of all the rows (lmhead.c model_head_one_chunk):
     * its per-row statistics for all of them */
    size_t Rs = full && !capbuf && !dlog16 ? NL : R;
    size_t head = last ? cache + own + 4 * Rs + capbuf + dlog16 : 0;
    /* sequence parallelism: the all-gathered normed rows the projections read and a gain's gradient (model.c
     * seqpar_floats) */
    size_t spbuf = l->seqpar ? N * C16 + C : 0;
    size_t shared = N * C + (lgrad > head ? lgrad : head) + (last ? N * (C16 + C) : 0) + hbuf + nbuf + spbuf;
    p.slots = l->pp - l->pp_rank < l->n_mb ? l->pp - l->pp_rank : l->n_mb;
    if (p.slots < 1) p.slots = 1;
    p.act_slot = 4 * floats + 4 * ints;
    p.act_shared = 4 * shared;
    p.act_work = Lrc ? 4 * work : 0;
    p.activations = (size_t)p.slots * p.act_slot + p.act_shared + p.act_work;
    /* rope tables */
    p.other = 2 * 4 * (size_t)mc->max_position_embeddings * (HD / 2);
    if (mc->qk_norm && tp > 1) p.other += 4 * HD; /* model.c qksum */
    if (sp_rows) p.other += 4 * V + 4 * (size_t)p.slots * N; /* the sparse embedding gradient's map and ids */
    p.head_cache = 4 * cache; /* within act_shared */
    p.total = p.weights + p.weights16 + p.grads + p.optimizer + p.activations + p.other;
    return p;
}

/* the TP group's part of plan_step_bytes */
static void step_tp_bytes(const PlanLayout *l, const size_t *tokens, const size_t *resp, uint64_t out[COLL_KINDS]) {
    const ModelConfig *mc = &l->mc;
    for (int k = 0; k < COLL_KINDS; k++) out[k] = 0;
    if (l->tp <= 1) return;
    size_t C = (size_t)mc->hidden_size, tp = (size_t)l->tp, C16 = storage_act16(l) ? C / 2 : C;
    int L0, Ll;
    stage_layers(mc->num_hidden_layers, l->pp, l->pp_rank, &L0, &Ll);
    int first = l->pp_rank == 0, last = l->pp_rank == l->pp - 1;
    int Lrc = plan_recompute_layers(l, l->pp_rank), g2 = mc->arch == ARCH_GEMMA2;
    for (int i = 0; i < l->n_mb; i++) {
        size_t nc = 4 * tokens[i] * C;
        /* vocab-parallel log-probs: max, then (sum exp, target logit, logit sum), in double; the head's input grad
         * (under sequence parallelism a reduce-scatter of the rows, below) */
        if (last) out[COLL_ALLREDUCE] += 8 * resp[i] * 4 + (l->seqpar ? 0 : 4 * resp[i] * C);
        /* Qwen3: the q and k norm gains' gradients, each rank's heads' parts (model.c qk_norm_bwd) */
        if (mc->qk_norm) out[COLL_ALLREDUCE] += (size_t)Ll * 2 * 4 * (size_t)mc->head_dim;
        if (!l->seqpar) {
            /* forward: embedding reduce, o and down reduces; backward: q/k/v and gate/up input grads, and under
             * recompute the o projection's reduce again (the rerun stops before the down projection; Gemma 2's
             * rerun includes it, for its norm's statistics: the down projection's reduce again too) */
            out[COLL_ALLREDUCE] += (first ? nc : 0) + ((size_t)Ll * 4 + (size_t)Lrc * (g2 ? 2 : 1)) * nc;
            continue;
        }
        /* sequence parallelism (model.c): tp blocks of ceil(tokens / tp) rows. A layer's forward gathers ln1 and ln2
         * (bf16 rows under act16) and reduce-scatters the o and down projections' sums; its backward gathers d/dx
         * (Gemma 2: the gradients before its output norms) for the o and down projections, ln1 and ln2 again, and
         * reduce-scatters the q/k/v and gate/up input gradients; a rerun (recompute) gathers ln1, ln2 and
         * reduce-scatters o's sum (Gemma 2: down's too). The embedding's sum is reduce-scattered and its gradient
         * gathered; the final norm's rows gathered for the LM head and their gradient reduce-scattered; each norm's
         * gain gradient all-reduced. */
        size_t rows = div_up(tokens[i], tp) * tp, fc = 4 * rows * C, f16 = 4 * rows * C16;
        out[COLL_ALLGATHER] += (size_t)Ll * (2 * f16 + 2 * fc + 2 * f16) + (size_t)Lrc * 2 * f16 +
                               (first ? fc : 0) + (last ? f16 : 0);
        out[COLL_REDUCE_SCATTER] += (size_t)Ll * 4 * fc + (size_t)Lrc * (g2 ? 2 : 1) * fc + (first ? fc : 0) +
                                    (last ? fc : 0);
        out[COLL_ALLREDUCE] += 4 * C * ((size_t)Ll * (g2 ? 4 : 2) + (size_t)last);
    }
}

void plan_step_bytes(const PlanLayout *l, const size_t *tokens, const size_t *resp, size_t sparse_rows,
                     uint64_t out[COLL_KINDS], uint64_t *tp_out) {
    const ModelConfig *mc = &l->mc;
    step_tp_bytes(l, tokens, resp, out);
    if (tp_out)
        for (int k = 0; k < COLL_KINDS; k++) tp_out[k] = out[k];
    MemPlan mp = plan_memory(l);
    size_t C = (size_t)mc->hidden_size, align = 64 * (size_t)l->dp, n_pad = div_up(mp.params, align) * align;
    int first = l->pp_rank == 0, last = l->pp_rank == l->pp - 1, world = l->dp * l->tp * l->pp;
    size_t tp = l->seqpar ? (size_t)l->tp : 1; /* sequence parallelism: a stage sends its block of the rows */
    for (int i = 0; i < l->n_mb; i++) {
        size_t nc = 4 * div_up(tokens[i], tp) * C;
        if (l->pp > 1) out[COLL_SENDRECV] += (last ? 0 : nc) + (first ? 0 : nc);
    }
    if (l->pp > 1 && mc->tie_word_embeddings && (first || last))
        out[COLL_SENDRECV] += 4 * (size_t)mc->vocab_size / (size_t)l->tp * C; /* tied head mirror */
    if (l->dp > 1) {
        /* ZeRO-2: every micro-batch's buckets, the tied gradient once a step (the padding is never sent) */
        if (plan_grads_partitioned(l))
            out[COLL_REDUCE_SCATTER] += 4 * ((size_t)l->n_mb * (mp.params - mp.grad_resident) + mp.grad_resident);
        else if (l->sparse_embed && first) {
            /* the sparse embedding gradient: the union of the ranks' rows (a double per vocabulary row), the rest of
             * the flat buffer, the rows held */
            size_t V = (size_t)mc->vocab_size / (size_t)l->tp, rows = sparse_rows;
            if (!rows) rows = model_sparse_embed_rows((size_t)l->dp * (size_t)l->n_mb * l->max_tokens, (int)V);
            out[COLL_ALLREDUCE] += 8 * V + 4 * (n_pad - V * C) + 4 * rows * C;
        } else out[COLL_ALLREDUCE] += 4 * n_pad;
        /* the fp32 weights, or under sharded master weights the bf16 copy (with its padding) and the fp32-read
         * parameters */
        if (plan_zero3(l)) {
            /* ZeRO-3: every layer's compute weights before its forward and before its backward, per micro-batch,
             * the head's once a step (param_shard.c); after the step the fp32-read parameters */
            int L0, Ll;
            stage_layers(mc->num_hidden_layers, l->pp, l->pp_rank, &L0, &Ll);
            out[COLL_ALLGATHER] +=
                (size_t)l->n_mb * 2 * (size_t)Ll * mp.gather_layer + mp.gather_head + 4 * mp.param_rep;
        } else if (plan_params_sharded(l)) out[COLL_ALLGATHER] += mp.weights16 + 4 * mp.param_rep;
        else if (l->zero >= 1) out[COLL_ALLGATHER] += 4 * n_pad;
    }
    /* scalars: metrics (train_step.h's ACC_N doubles) over PP and DP; grad norm over DP (sharded), TP, PP; the stop
     * flag */
    out[COLL_ALLREDUCE] += 8 * ACC_N * ((l->pp > 1) + (l->dp > 1));
    out[COLL_ALLREDUCE] += 8 * ((l->zero >= 1 && l->dp > 1) + (l->tp > 1) + (l->pp > 1));
    out[COLL_ALLREDUCE] += 8 * (world > 1);
}

bool plan_weights16_fit(PlanLayout l, double budget, bool whole_cache) {
    if (!storage_act16(&l)) return true; /* no copy to keep or drop */
    l.weights16 = true;
    l.lmhead_cache_rows = 0;
    if (whole_cache && l.pp_rank == l.pp - 1 && (l.lmhead_cache || plan_logits16(&l))) l.lmhead_cache = true;
    return (double)plan_memory(&l).total <= budget;
}

size_t plan_head_cache_fit(PlanLayout l, double budget) {
    if (l.pp_rank != l.pp - 1 || !plan_logits16(&l)) return 0;
    int V = (int)(l.mc.vocab_size / l.tp);
    size_t full = model_head_cache_rows(l.max_tokens, l.max_lp_rows, V, true, 0);
    size_t R = model_lmhead_rows_per_chunk(l.max_lp_rows ? l.max_lp_rows : l.max_tokens, V, true); /* bf16 logits
                                                                                                  * (plan_logits16) */
    l.lmhead_cache = true;
    l.lmhead_cache_rows = 0;
    if ((double)plan_memory(&l).total <= budget) return full;
    for (size_t k = (full - 1) / R; k >= 1; k--) { /* whole chunks short of all rows (k R < full), the most first */
        l.lmhead_cache_rows = k * R;
        if ((double)plan_memory(&l).total <= budget) return k * R;
    }
    return 0;
}
