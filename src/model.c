/* model.c — Llama / Gemma 2 decoder forward/backward against the Backend interface. See model.h.
 *
 * One transformer block, x -> x2 -> x_out:
 *   ln1 = rmsnorm(x); q,k,v = ln1 Wq^T, ln1 Wk^T, ln1 Wv^T; rope(q, k); att = attention(q, k, v)
 *   x2 = x + att Wo^T; ln2 = rmsnorm(x2); g, u = ln2 Wg^T, ln2 Wu^T; h = silu(g) * u; x_out = x2 + h Wd^T
 * Gemma 2 (m->gemma2) sandwiches both halves between norms and changes the activation and the attention:
 *   x = embed * sqrt(C) (first stage); att = attention(q, k, v; scale query_pre_attn_scalar^-1/2, soft-capped
 *   scores, the sliding window on sliding layers); ao = att Wo^T; x2 = x + rmsnorm_a(ao);
 *   ln2 = rmsnorm(x2) (pre_feedforward); h = gelu_tanh(g) * u; mo = h Wd^T; x_out = x2 + rmsnorm_f(mo);
 *   logits = cap * tanh(logits / cap) before the log-softmax (final_logit_softcapping).
 * Under TP ao and mo are the all-reduced row-parallel outputs, so the two extra norms see whole rows and, like the
 * others, are replicated with identical gradients on every TP rank (their d(out) is the replicated residual
 * gradient): no extra communication.
 * Only positions that predict a response token reach the LM head (lmhead.c: the gathered rows' logits in chunks,
 * reduced to log-probs at once, vocab-parallel), so [tokens x vocab] logits never exist (unless train.lmhead_cache
 * keeps the response rows' logits from the forward for the backward: model_enable_head_cache). The activation slot
 * (Acts) and the matmul helpers both files use are in model_internal.h.
 * With recompute (model_create_ex) a slot saves only the input x of each block that recomputes (all of the
 * stage's, or its first recompute_layers); the backward of such a block first reruns its forward (layer_forward,
 * the very code the forward ran) into the model's one working area: up to h for Llama; for Gemma 2 also the down
 * projection (with its all-reduce under TP) and the stats of its norm, which the norm's backward needs, leaving
 * out only the residual add.
 */
#include "model_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "safetensors.h"
#include "comm.h"
#include "tp.h"
#include "util.h"



size_t model_arena_tokens(size_t max_tokens) {
    size_t n = max_tokens ? max_tokens : 1;
    return n + (16 - n % 16) % 16;
}

size_t model_seqpar_rows(size_t max_tokens, int tp) {
    size_t t = tp > 1 ? (size_t)tp : 1;
    return model_arena_tokens((max_tokens + t - 1) / t);
}

size_t model_stage_rows(const Model *m, size_t Ntok) {
    return m->seqpar ? (Ntok + (size_t)m->tp - 1) / (size_t)m->tp : Ntok;
}

/* ---- parameter table ---- */
static void add_spec(Model *m, int *n, ParamRole role, int layer, const char *name, int64_t d0, int64_t d1,
                     SplitKind split, bool decay) {
    ParamSpec *p = &m->specs[(*n)++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->role = role;
    p->layer = layer;
    p->ndim = d1 ? 2 : 1;
    p->shape[0] = p->shape_loc[0] = d0;
    p->shape[1] = p->shape_loc[1] = d1 ? d1 : 0;
    p->split = split;
    p->decay = decay;
    /* this TP rank's slice: column and vocab splits cut rows, row splits cut columns */
    int dim = split == SPLIT_ROW ? 1 : (split == SPLIT_COL || split == SPLIT_VOCAB) ? 0 : -1;
    if (dim >= 0 && m->tp > 1) {
        p->shape_loc[dim] = p->shape[dim] / m->tp;
        p->off[dim] = (int64_t)m->tp_rank * p->shape_loc[dim];
    }
    p->numel = (size_t)p->shape_loc[0] * (size_t)(d1 ? p->shape_loc[1] : 1);
}

/* stream of the init RNG for a tensor: a hash of its global name, so every stage and slicing draws the same */
static uint64_t name_stream(const char *name) { return sd_fnv1a(SD_FNV_OFFSET, name, strlen(name)); }

static void build_specs(Model *m) {
    int C = m->C, FF = m->FF, V = m->V, QD = m->NH * m->HD, KD = m->NKV * m->HD;
    m->specs = sd_calloc((size_t)m->L_loc * 14 + 4, sizeof(ParamSpec), "parameter table");
    int n = 0;
    char nm[96];
    if (m->first_stage) add_spec(m, &n, P_EMBED, -1, "model.embed_tokens.weight", V, C, SPLIT_VOCAB, true);
    /* the seven projections of a block and their tensor-parallel style, as Megatron / picotron list them */
    for (int l = m->L_off; l < m->L_off + m->L_loc; l++) {
#define LNAME(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s), nm)
        add_spec(m, &n, P_LN1, l, LNAME("input_layernorm.weight"), C, 0, SPLIT_REPL, false);
        add_spec(m, &n, P_WQ, l, LNAME("self_attn.q_proj.weight"), QD, C, SPLIT_COL, true);
        add_spec(m, &n, P_WK, l, LNAME("self_attn.k_proj.weight"), KD, C, SPLIT_COL, true);
        add_spec(m, &n, P_WV, l, LNAME("self_attn.v_proj.weight"), KD, C, SPLIT_COL, true);
        if (m->qkv_bias) { /* after the three weights, which the packed backward reads as one matrix */
            add_spec(m, &n, P_BQ, l, LNAME("self_attn.q_proj.bias"), QD, 0, SPLIT_COL, false);
            add_spec(m, &n, P_BK, l, LNAME("self_attn.k_proj.bias"), KD, 0, SPLIT_COL, false);
            add_spec(m, &n, P_BV, l, LNAME("self_attn.v_proj.bias"), KD, 0, SPLIT_COL, false);
        }
        if (m->qk_norm) { /* one gain of head_dim for every head: whole on every TP rank */
            add_spec(m, &n, P_QN, l, LNAME("self_attn.q_norm.weight"), m->HD, 0, SPLIT_REPL, false);
            add_spec(m, &n, P_KN, l, LNAME("self_attn.k_norm.weight"), m->HD, 0, SPLIT_REPL, false);
        }
        add_spec(m, &n, P_WO, l, LNAME("self_attn.o_proj.weight"), C, QD, SPLIT_ROW, true);
        /* Gemma 2's post_attention_layernorm normalises the attention output; its norm before the MLP is
         * pre_feedforward_layernorm (Llama's post_attention_layernorm) */
        if (m->gemma2) {
            add_spec(m, &n, P_LNA, l, LNAME("post_attention_layernorm.weight"), C, 0, SPLIT_REPL, false);
            add_spec(m, &n, P_LN2, l, LNAME("pre_feedforward_layernorm.weight"), C, 0, SPLIT_REPL, false);
        } else add_spec(m, &n, P_LN2, l, LNAME("post_attention_layernorm.weight"), C, 0, SPLIT_REPL, false);
        add_spec(m, &n, P_WG, l, LNAME("mlp.gate_proj.weight"), FF, C, SPLIT_COL, true);
        add_spec(m, &n, P_WU, l, LNAME("mlp.up_proj.weight"), FF, C, SPLIT_COL, true);
        add_spec(m, &n, P_WD, l, LNAME("mlp.down_proj.weight"), C, FF, SPLIT_ROW, true);
        if (m->gemma2) add_spec(m, &n, P_LNF, l, LNAME("post_feedforward_layernorm.weight"), C, 0, SPLIT_REPL, false);
#undef LNAME
    }
    if (m->last_stage) {
        add_spec(m, &n, P_NORM, -1, "model.norm.weight", C, 0, SPLIT_REPL, false);
        if (!m->mc.tie_word_embeddings) add_spec(m, &n, P_LMHEAD, -1, "lm_head.weight", V, C, SPLIT_VOCAB, true);
        else if (!m->first_stage) {
            /* tied head on a later stage: a mirror of the first stage's embedding, kept identical by summing the
             * two gradients (model_tied_grads); not saved and not counted in the norm */
            add_spec(m, &n, P_LMHEAD, -1, "model.embed_tokens.weight", V, C, SPLIT_VOCAB, true);
            m->specs[n - 1].mirror = true;
        }
    }
    m->nspecs = n;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        m->specs[i].offset = off;
        off += m->specs[i].numel;
    }
    m->nparams = off;
}

/* points the view of parameter p's kind among w (layer views), *embed, *norm, *lm at t */
static void set_view(Model *m, const ParamSpec *p, float *t, LayerW *w, float **embed, float **norm, float **lm) {
    LayerW *lw = p->layer >= 0 ? &w[p->layer - m->L_off] : NULL;
    switch (p->role) {
    case P_EMBED: *embed = t; break;
    case P_NORM: *norm = t; break;
    case P_LMHEAD: *lm = t; break;
    case P_LN1: lw->ln1 = t; break;
    case P_WQ: lw->wq = t; break;
    case P_WK: lw->wk = t; break;
    case P_WV: lw->wv = t; break;
    case P_WO: lw->wo = t; break;
    case P_LN2: lw->ln2 = t; break;
    case P_WG: lw->wg = t; break;
    case P_WU: lw->wu = t; break;
    case P_WD: lw->wd = t; break;
    case P_LNA: lw->lna = t; break;
    case P_LNF: lw->lnf = t; break;
    case P_BQ: lw->bq = t; break;
    case P_BK: lw->bk = t; break;
    case P_BV: lw->bv = t; break;
    case P_QN: lw->qn = t; break;
    case P_KN: lw->kn = t; break;
    }
}

/* views of the flat buffer `base`, which holds flat elements from `from` on (the parameters: 0; the gradients:
 * m->grads_from); a parameter before it gets NULL */
static void point_views(Model *m, float *base, size_t from, LayerW *w, float **embed, float **norm, float **lm) {
    *lm = *embed = *norm = NULL;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        set_view(m, p, p->offset >= from ? base + (p->offset - from) : NULL, w, embed, norm, lm);
    }
    if (!*lm) *lm = *embed; /* tied, one stage */
}

float *model_alloc_shard(Model *m, int shards, int shard, size_t *from, size_t *to, const char *what) {
    if (shards < 2 || shard < 0 || shard >= shards || m->nalloc % (size_t)shards)
        sd_die("model", "%s %d of %d of a %zu-element buffer", what, shard, shards, m->nalloc);
    size_t per = m->nalloc / (size_t)shards;
    *from = (size_t)shard * per;
    *to = *from + per;
    float *b = m->be->alloc(sd_mul_size(per, sizeof(float), what), what);
    m->be->zero(b, per * sizeof(float)); /* the padding stays zero */
    return b;
}

void model_set_param_view(Model *m, int i, float *t) {
    set_view(m, &m->specs[i], t, m->w, &m->embed, &m->norm, &m->lm_head);
}

void model_set_grad_view(Model *m, int i, float *t) {
    set_view(m, &m->specs[i], t, m->dw, &m->dembed, &m->dnorm, &m->dlm_head);
}

/* floats per token of one layer's intermediates besides its input: rstd1/2, ln1/2, q, k, v, att, lse, x2, g, u, h,
 * and for Gemma 2 ao, mo, rstda, rstdm (what recompute drops from every slot and keeps once, in the working area;
 * plan.c restates it) */
/* floats per token of an autocast activation of width w (the q, k, v, gate and up projections' outputs, attention's
 * output): w / 2 in autocast storage (w even) */
static size_t proj_floats(const Model *m, size_t w) { return m->proj16 ? w / 2 : w; }
/* Qwen3's q and k before their norms (bf16 in autocast storage, as q and k) and the norms' rstd per head, floats per
 * token; else 0 */
static size_t qk_norm_token_floats(const Model *m) {
    size_t QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD;
    return m->qk_norm ? proj_floats(m, QD) + proj_floats(m, KD) + (size_t)(m->NH_loc + m->NKV_loc) : 0;
}
/* One layer's intermediates, floats per row: those in the C-wide rows (two rstd, x2, ln1 and ln2 unless norm_rc;
 * Gemma 2's attention and MLP outputs before their norms and their two rstd), which sequence parallelism cuts over
 * TP (m->max_rows of them), and those of the whole micro-batch (q, k, v, att, lse, g, u and h unless act_rc:
 * m->max_tokens). In bf16 storage ln1, ln2, h take half the floats (C, FF even), in autocast storage q, k, v, att,
 * g, u too. */
static size_t layer_work_row_floats(const Model *m) {
    size_t C = (size_t)m->C;
    return 2 + C + (m->norm_rc ? 0 : 2 * act_floats(m, C)) + (m->gemma2 ? C * 2 + 2 : 0);
}
static size_t layer_work_token_floats(const Model *m) {
    size_t QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD, FF = (size_t)m->FF_loc;
    return 2 * proj_floats(m, QD) + 2 * proj_floats(m, KD) + (size_t)m->NH_loc + 2 * proj_floats(m, FF) +
           (m->act_rc ? 0 : act_floats(m, FF)) + qk_norm_token_floats(m);
}
/* floats of one layer's intermediates at the arena's capacity */
static size_t layer_work_floats(const Model *m) {
    return m->max_rows * layer_work_row_floats(m) + m->max_tokens * layer_work_token_floats(m);
}

#define TAKE(ptr, cnt) (ptr = c, c += (cnt))
/* points s at nl layers' worth of intermediates carved from *cursor (advanced past them) */
static void take_layer_work(const Model *m, LayerStore *a, float **cursor, size_t nl) {
    size_t N = m->max_tokens, C = (size_t)m->C, QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD,
           FF = (size_t)m->FF_loc, NH = (size_t)m->NH_loc;
    size_t R = m->max_rows; /* the C-wide rows: sequence parallelism's share */
    float *c = *cursor;
    size_t nC = m->norm_rc ? 0 : act_floats(m, C); /* norm_rc: layer_acts points ln1, ln2 at nbuf */
    TAKE(a->rstd1, nl * R); TAKE(a->ln1, nl * R * nC);
    TAKE(a->q, nl * N * proj_floats(m, QD)); TAKE(a->k, nl * N * proj_floats(m, KD));
    TAKE(a->v, nl * N * proj_floats(m, KD)); TAKE(a->att, nl * N * proj_floats(m, QD));
    TAKE(a->lse, nl * N * NH); TAKE(a->x2, nl * R * C);
    TAKE(a->rstd2, nl * R); TAKE(a->ln2, nl * R * nC);
    TAKE(a->g, nl * N * proj_floats(m, FF)); TAKE(a->u, nl * N * proj_floats(m, FF));
    TAKE(a->h, m->act_rc ? 0 : nl * N * act_floats(m, FF)); /* act_rc: layer_acts points h at hbuf */
    if (m->gemma2) {
        TAKE(a->ao, nl * R * C); TAKE(a->rstda, nl * R); TAKE(a->mo, nl * R * C); TAKE(a->rstdm, nl * R);
    } else a->ao = a->rstda = a->mo = a->rstdm = NULL;
    if (m->qk_norm) {
        TAKE(a->qr, nl * N * proj_floats(m, QD)); TAKE(a->kr, nl * N * proj_floats(m, KD));
        TAKE(a->rstdq, nl * N * NH); TAKE(a->rstdk, nl * N * (size_t)m->NKV_loc);
    } else a->qr = a->kr = a->rstdq = a->rstdk = NULL;
    *cursor = c;
}

/* floats of dg, du, dh [N, FF], and of prefix sharing's attention rows laid over them (attention runs while the
 * MLP's gradients are dead): xq, xatt, xdq [Natt, QD], xk, xv, xdk, xdv [Natt, KD] (autocast storage as the layers'
 * copies, and so is xdatt [Natt, QD]), xlse [Natt, NH], for Natt = m->max_att rows: the larger */
static size_t mlp_grad_or_xatt_floats(const Model *m) {
    size_t QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD, FF = (size_t)m->FF_loc;
    size_t mlp = m->max_tokens * (proj_floats(m, FF) + 2 * act_floats(m, FF)),
           xatt = m->max_att * (4 * proj_floats(m, QD) + 4 * proj_floats(m, KD) + m->NH_loc);
    return mlp > xatt ? mlp : xatt;
}
/* floats of the layers' gradient scratch dq, datt [N, QD], dk, dv [N, KD], dg, du, dh [N, FF] (dg, du: bf16 storage
 * under act16, half the floats: they feed only the gate / up projections' matmuls; dq, dk, dv likewise under proj16,
 * written so by attention's backward, and datt and dh, written so by the o and down projections' backward), the last
 * three or prefix sharing's attention rows */
static size_t layer_grad_floats(const Model *m) {
    size_t QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD;
    return m->max_tokens * (2 * proj_floats(m, QD) + 2 * proj_floats(m, KD)) + mlp_grad_or_xatt_floats(m);
}
/* floats of the rank's shared scratch (m->scratch): dtmp [N, C]; the layers' gradient scratch and, overlaid on it,
 * the LM-head chunk buffers (the head runs after the last layer's forward and before the first layer's backward,
 * so the two are never live together): max of the two; on the last stage also xf and dhs [N, C] each (plan.c
 * restates it) */
static size_t grads_or_head_floats(const Model *m) {
    size_t lg = layer_grad_floats(m), hd = model_head_region_floats(m); /* with the logits cache (lmhead.c) */
    return lg > hd ? lg : hd;
}
/* floats of the shared buffer of the MLP's hidden state (act_rc), else 0 */
static size_t hbuf_floats(const Model *m) { return m->act_rc ? m->max_tokens * act_floats(m, (size_t)m->FF_loc) : 0; }
/* floats of the shared buffer of the normed inputs ln1, ln2 (norm_rc), else 0 */
static size_t nbuf_floats(const Model *m) { return m->norm_rc ? m->max_rows * act_floats(m, (size_t)m->C) : 0; }
/* floats of sequence parallelism's all-gathered normed rows [N, C] (bf16 under act16) and a gain's gradient [C] */
static size_t seqpar_floats(const Model *m) {
    return m->seqpar ? m->max_tokens * act_floats(m, (size_t)m->C) + (size_t)m->C : 0;
}
static size_t scratch_floats(const Model *m) {
    size_t N = m->max_tokens, C = (size_t)m->C;
    return N * C + grads_or_head_floats(m) + (m->last_stage ? N * (act_floats(m, C) + C) : 0) + hbuf_floats(m) +
           nbuf_floats(m) + seqpar_floats(m);
}

static void alloc_acts(Model *m, Acts *a) {
    size_t N = m->max_tokens, L = (size_t)m->L_loc, C = (size_t)m->C; /* a->chunk: model_point_shared */
    size_t R = m->max_rows; /* the C-wide rows: sequence parallelism's share */
    size_t kept = L - (size_t)m->recompute_layers; /* layers whose intermediates live in this slot */
    bool last = m->last_stage;
    /* the stage output xL and the stage gradient dx: one buffer on a stage before the last (the gradient arrives
     * after the output has reached the next stage and the output is not read again); two on the last stage, whose
     * final norm's backward reads xL while it writes dx */
    size_t total = L * R * C + kept * layer_work_floats(m) + R * C * (last ? 2 : 1) +
                   (last ? N * (act_floats(m, C) + 1) + R : 0);
    a->base = m->be->alloc(sd_mul_size(total, sizeof(float), "activations"), "activations");
    float *c = a->base;
    TAKE(a->x, L * R * C);
    take_layer_work(m, &a->saved, &c, kept);
    memset(&a->rerun, 0, sizeof a->rerun);
    if (m->work) {
        float *w = m->work; /* every slot's views of the one shared layer */
        take_layer_work(m, &a->rerun, &w, 1);
    }
    TAKE(a->xL, R * C);
    if (last) TAKE(a->dx, R * C);
    else a->dx = a->xL;
    a->rstdf = a->hs = a->lse_row = NULL;
    if (last) { TAKE(a->rstdf, R); TAKE(a->hs, N * act_floats(m, C)); TAKE(a->lse_row, N); }
#undef TAKE
    model_point_shared(m, a);
    a->ids = m->be->alloc(N * sizeof(int), "token ids");
    a->pos = m->be->alloc(N * sizeof(int), "positions");
    a->cu = m->be->alloc((N + 1) * sizeof(int), "cu_seqlens");
    a->xrow = m->be->alloc((N + 4 * m->max_att) * sizeof(int), "prefix-sharing rows");
    a->xfirst = a->xrow + m->max_att, a->dup_tok = a->xfirst + N, a->dup_row = a->dup_tok + m->max_att;
    a->xskip = a->dup_row + m->max_att; /* S <= max_att sequences */
    a->tg = a->rows_dev = a->rows_add = NULL;
    if (last) {
        a->tg = m->be->alloc(N * sizeof(int), "targets");
        a->rows_dev = m->be->alloc(N * sizeof(int), "gathered rows");
        a->rows_add = m->be->alloc(2 * N * sizeof(int), "gathered rows");
    }
}

void model_alloc_scratch(Model *m) {
    m->be->free(m->scratch);
    m->scratch = m->be->alloc(sd_mul_size(scratch_floats(m), sizeof(float), "activation scratch"),
                              "activation scratch");
    for (int i = 0; m->acts && i < m->nslots; i++) model_point_shared(m, &m->acts[i]);
}

/* the slot's views of the rank's shared scratch (m->scratch), the same in every slot; on the last stage the LM
 * head's region (the logits cache, then the chunk buffers: lmhead.c) over the layers' gradient scratch */
void model_point_shared(Model *m, Acts *a) {
    size_t N = m->max_tokens, C = (size_t)m->C, QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD,
           FF = (size_t)m->FF_loc, V = (size_t)m->V_loc, R = model_head_chunk(m);
    bool last = m->last_stage;
    float *c = m->scratch;
    a->chunk = (int)R; /* here, as the logits cache changes it (a whole one: one chunk of all the rows, lmhead.c) */
#define TAKE(p, n) ((p) = c, c += (n))
    TAKE(a->dtmp, N * C);
    float *both = c; /* the layers' gradient scratch, and the LM-head chunk buffers over it */
    TAKE(a->dq, N * proj_floats(m, QD)); TAKE(a->datt, N * proj_floats(m, QD));
    TAKE(a->dk, N * proj_floats(m, KD)); TAKE(a->dv, N * proj_floats(m, KD));
    float *mlp = c; /* dg, du, dh, or prefix sharing's attention rows */
    TAKE(a->dg, N * act_floats(m, FF)); TAKE(a->du, N * act_floats(m, FF)); TAKE(a->dh, N * proj_floats(m, FF));
    c = mlp;
    size_t NA = m->max_att;
    TAKE(a->xq, NA * proj_floats(m, QD)); TAKE(a->xk, NA * proj_floats(m, KD)); TAKE(a->xv, NA * proj_floats(m, KD));
    TAKE(a->xatt, NA * proj_floats(m, QD)); TAKE(a->xlse, NA * (size_t)m->NH_loc); TAKE(a->xdatt, NA * proj_floats(m, QD));
    TAKE(a->xdq, NA * proj_floats(m, QD)); TAKE(a->xdk, NA * proj_floats(m, KD)); TAKE(a->xdv, NA * proj_floats(m, KD));
    a->xf = a->dhs = a->logits = a->mx = a->se = a->tgt = a->gchunk = a->logits_pre = a->dlog16 = NULL;
    if (last) {
        c = both;
        if (m->head_cache_rows) { /* the logits cache first (model_enable_head_cache) */
            m->head_cache = c;
            c += model_head_cache_floats(m);
        }
        /* the chunk's own logits, unless the cache holds every row a micro-batch has (model_head_floats) */
        if (!model_head_cache_full(m) || model_head_capped(m)) TAKE(a->logits, m->head16 ? (R * V + 1) / 2 : R * V);
        TAKE(a->mx, R); TAKE(a->se, R); TAKE(a->tgt, R); TAKE(a->gchunk, R);
        if (model_head_capped(m)) TAKE(a->logits_pre, R * V);
        if (model_head_dlog16(m)) TAKE(a->dlog16, (R * V + 1) / 2);
    }
    c = both + grads_or_head_floats(m);
    if (last) { TAKE(a->xf, N * act_floats(m, C)); TAKE(a->dhs, N * C); }
    a->hbuf = a->nbuf = a->gbuf = NULL;
    if (m->act_rc) TAKE(a->hbuf, hbuf_floats(m));
    if (m->norm_rc) TAKE(a->nbuf, nbuf_floats(m));
    if (m->seqpar) {
        TAKE(a->gbuf, N * act_floats(m, C));
        m->gsum = c; /* the same for every slot */
    }
#undef TAKE
}

static int div_exact(int a, int b, const char *what) {
    if (a % b) sd_die("parallel.tp", "%d tensor-parallel ranks must divide %s (%d)", b, what, a);
    return a / b;
}

void model_stage_layers(int L, int pp, int stage, int *first, int *count) {
    int base = L / pp, extra = L % pp; /* the first L % pp stages take one more layer */
    *count = base + (stage < extra);
    *first = stage * base + (stage < extra ? stage : extra);
}

void model_repoint_grads(Model *m) {
    if (m->partitioned) {
        model_partition_views(m); /* grad_partition.c: the bucket and the resident tied gradient */
        return;
    }
    point_views(m, m->grads, m->grads_from, m->dw, &m->dembed, &m->dnorm, &m->dlm_head);
    if (m->sp.grad) m->dembed = m->sp.grad; /* embed_grad.c: the held rows */
}

/* the model's sizes from its (validated) config */
static void set_dims(Model *m, const ModelConfig *mc) {
    model_config_validate(mc, "model");
    m->mc = *mc;
    m->C = mc->hidden_size;
    m->NH = mc->num_attention_heads;
    m->NKV = mc->num_key_value_heads;
    m->HD = mc->head_dim;
    m->FF = mc->intermediate_size;
    m->V = mc->vocab_size;
    m->L = mc->num_hidden_layers;
    m->gemma2 = mc->arch == ARCH_GEMMA2;
    m->qkv_bias = mc->qkv_bias;
    m->qk_norm = mc->qk_norm;
}

ParamSpec *model_param_table(const ModelConfig *mc, int *n) {
    Model m = {0}; /* one rank: every layer, both ends, whole tensors */
    set_dims(&m, mc);
    m.tp = m.pp = 1;
    m.L_loc = m.L;
    m.first_stage = m.last_stage = true;
    build_specs(&m);
    *n = m.nspecs;
    return m.specs;
}

static Model *create(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                     int nslots, bool with_grads, const ModelOpts *o) {
    int recompute_layers = o ? o->recompute_layers : 0;
    Model *m = sd_calloc(1, sizeof *m, "model");
    m->gdone_split = SIZE_MAX; /* no MLP part reported (model_mlp_grads_done) */
    set_dims(m, mc);
    m->be = be;
    /* transformers: hidden_states * torch.tensor(hidden_size ** 0.5, dtype=hidden_states.dtype) (fp32 here) */
    m->embed_scale = m->gemma2 ? (float)sqrt((double)mc->hidden_size) : 1.0f;
    m->grid = grid;
    if (grid) { /* the collectives of the model run on its buffers: the grid must know whose memory they are */
        if (grid->be && grid->be != be)
            sd_die("model", "the process grid moves %s buffers, the model is on the %s backend", grid->be->name,
                   be->name);
        grid_set_backend(grid, be);
    }
    m->tp = tp_size(grid);
    m->tp_rank = tp_rank(grid);
    m->NKV_loc = div_exact(m->NKV, m->tp, "num_key_value_heads");
    m->NH_loc = div_exact(m->NH, m->tp, "num_attention_heads");
    m->FF_loc = div_exact(m->FF, m->tp, "intermediate_size");
    m->V_loc = div_exact(m->V, m->tp, "vocab_size");
    m->V_off = m->tp_rank * m->V_loc;
    m->pp = grid ? grid->pp : 1;
    m->pp_rank = grid ? grid->pp_rank : 0;
    if (m->pp > m->L)
        sd_die("parallel.pp", "%d pipeline stages for %d layers: every stage needs at least one layer", m->pp, m->L);
    model_stage_layers(m->L, m->pp, m->pp_rank, &m->L_off, &m->L_loc);
    m->first_stage = m->pp_rank == 0;
    m->last_stage = m->pp_rank == m->pp - 1;
    m->seqpar = o && o->sequence_parallel && m->tp > 1;
    if (m->seqpar) { /* whole blocks of rows per TP rank: the arena holds tp of them */
        m->max_rows = model_seqpar_rows(max_tokens, m->tp);
        m->max_tokens = m->max_rows * (size_t)m->tp;
    } else m->max_tokens = m->max_rows = model_arena_tokens(max_tokens);
    m->max_att = model_arena_tokens(o && o->max_att_tokens ? o->max_att_tokens : max_tokens);
    m->max_lp = model_arena_tokens(o && o->max_lp_rows ? o->max_lp_rows : max_tokens);
    m->head_cache_slot = -1; /* no logits cache (model_enable_head_cache) */
    build_specs(m);
    size_t align = (size_t)64 * (size_t)(grid ? grid->dp : 1);
    m->nalloc = (m->nparams + align - 1) / align * align;
    size_t bytes = sd_mul_size(m->nalloc, sizeof(float), "parameters");
    /* bf16 activation storage when the model is made in the bf16 mode on a backend that has it (and the widths
     * are even, so a layer's bf16 rows fill whole floats of the arenas) */
    m->act16 = be->matmul16 && be->rmsnorm_fwd16 && be->swiglu_fwd16 && be->geglu_fwd16 && be->swiglu_bwd16 &&
               be->geglu_bwd16 && be->xent_bwd16 && be->matmul_bf16_on &&
               be->matmul_bf16_on() && m->C % 2 == 0 && m->FF_loc % 2 == 0;
    m->grads_to = m->nalloc;
    m->gp.resident_spec = -1;
    m->w = sd_calloc((size_t)m->L_loc + 1, sizeof(LayerW), "layer views");
    m->dw = sd_calloc((size_t)m->L_loc + 1, sizeof(LayerW), "layer views");
    /* sharded fp32 master weights (param_shard.c): the shard, the fp32-read parameters and the bf16 copy the matmuls
     * read (bf16 storage), or under ZeRO-3 without bf16 storage the fp32 weights the matmuls read, gathered */
    if (with_grads && o && o->param_shards > 1 && ((m->act16 && be->to_bf16) || o->shard_weights)) {
        if (!grid || grid->dp != o->param_shards)
            sd_die("model", "master weights sharded %d ways need a grid of as many data-parallel ranks",
                   o->param_shards);
        m->zero3 = o->shard_weights; /* ZeRO-3: the compute weights sharded too (param_shard.c) */
        m->gw_prefetch = o->shard_weights && o->zero3_prefetch;
        model_shard_params_init(m, o->param_shards, o->param_shard);
    } else {
        m->params = be->alloc(bytes, "parameters");
        m->params_to = m->nalloc;
        point_views(m, m->params, 0, m->w, &m->embed, &m->norm, &m->lm_head);
    }
    if (with_grads && o && o->grad_shards > 1) {
        /* ZeRO-2: this rank's shard of the gradient, one bucket, the resident tied gradient (grad_partition.c) */
        if (!grid || grid->dp != o->grad_shards)
            sd_die("model", "gradient partitioning into %d shards needs a grid of as many data-parallel ranks",
                   o->grad_shards);
        model_partition_init(m, o->grad_shards, o->grad_shard, o->grad_buffers > 1 ? 2 : 1);
    } else if (with_grads) {
        m->grads = be->alloc(bytes, "gradients");
        model_repoint_grads(m);
    }
    m->rope_max = mc->max_position_embeddings;
    float *cs, *sn;
    model_config_rope_tables(mc, m->rope_max, &cs, &sn);
    size_t tb = sd_mul_size((size_t)m->rope_max, (size_t)(m->HD / 2) * sizeof(float), "rope table");
    m->rope_cos = be->alloc(tb, "rope cos");
    m->rope_sin = be->alloc(tb, "rope sin");
    be->upload(m->rope_cos, cs, tb);
    be->upload(m->rope_sin, sn, tb);
    free(cs);
    free(sn);
    if (m->qk_norm && m->tp > 1) m->qksum = be->alloc((size_t)m->HD * sizeof(float), "q/k norm gain gradient");
    m->nslots = nslots > 0 ? nslots : 1;
    m->recompute_layers = recompute_layers < 0 ? 0 : recompute_layers < m->L_loc ? recompute_layers : m->L_loc;
    m->recompute = m->recompute_layers > 0;
    m->act_rc = o && o->recompute_act;
    m->norm_rc = o && o->recompute_norm;
    /* autocast storage: asked for, over act16, on a backend that has its ops */
    m->proj16 = o && o->autocast16 && m->act16 && be->matmul16_out16 && be->swiglu_fwd_b16 && be->geglu_fwd_b16 &&
                be->swiglu_bwd_b16 && be->geglu_bwd_b16 && be->rope_fwd_b16 && be->rope_bwd_b16 && be->attn_fwd_b16 &&
                be->attn_bwd_b16 && be->xent_stats_b16 && be->xent_bwd_b16 && m->HD % 2 == 0 &&
                (!m->qk_norm || (be->rmsnorm_fwd_b16 && be->rmsnorm_bwd_b16)); /* Qwen3's norms on bf16 rows */
    m->head16 = m->proj16 && !model_head_capped(m); /* Gemma 2's soft-cap works on fp32 logits */
    /* the q, k, v and the gate, up projections' backward as one matmul each (qkv_packed, glu_packed);
     * SIMPO_BWD_PACK=0: a matmul per projection, as before */
    const char *bp = getenv("SIMPO_BWD_PACK");
    m->bwd_pack = m->proj16 && !(bp && !strcmp(bp, "0"));
    /* the norms' backward writes d/dx in bf16 too over dq's scratch (norm_bwd), which must hold N x C bf16 */
    m->norm_out16 = m->bwd_pack && be->rmsnorm_bwd_out16 && m->tp == 1 && !m->gemma2 &&
                    (size_t)m->NH_loc * m->HD >= (size_t)m->C;
    if (m->recompute) /* before the slots: they point their layer intermediates into it */
        m->work = be->alloc(sd_mul_size(layer_work_floats(m), sizeof(float), "recompute area"),
                            "recompute working area");
    model_alloc_scratch(m);
    m->acts = sd_calloc((size_t)m->nslots, sizeof(Acts), "activation slots");
    for (int i = 0; i < m->nslots; i++) alloc_acts(m, &m->acts[i]);
    return m;
}

Model *model_create(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                    int nslots) {
    return create(mc, be, max_tokens, grid, nslots, true, NULL);
}

Model *model_create_ex(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                       int nslots, int recompute_layers) {
    ModelOpts o = {.recompute_layers = recompute_layers};
    return create(mc, be, max_tokens, grid, nslots, true, &o);
}

Model *model_create_opts(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                         int nslots, const ModelOpts *opts) {
    return create(mc, be, max_tokens, grid, nslots, true, opts);
}

Model *model_create_inference(const ModelConfig *mc, const Backend *be, size_t max_tokens) {
    /* no backward: every layer "recomputes", so the slot keeps only the layers' inputs and one layer's
     * intermediates live at a time; autocast storage in the bf16 mode, as training's default */
    ModelOpts o = {.recompute_layers = MODEL_RECOMPUTE_ALL, .autocast16 = true};
    return create(mc, be, max_tokens, NULL, 1, false, &o);
}

void model_free(Model *m) {
    if (!m) return;
    const Backend *be = m->be;
    for (int i = 0; m->acts && i < m->nslots; i++) {
        Acts *a = &m->acts[i];
        be->free(a->base);
        be->free(a->ids);
        be->free(a->pos);
        be->free(a->tg);
        be->free(a->rows_dev);
        be->free(a->rows_add);
        be->free(a->xrow);
        be->free(a->cu);
    }
    free(m->acts);
    be->free(m->scratch);
    be->free(m->work);
    be->free(m->params);
    be->free(m->grads);
    model_sparse_embed_free(m);
    model_partition_free(m);
    be->free(m->prep);
    be->free(m->rope_cos);
    be->free(m->rope_sin);
    be->free(m->qksum);
    be->free(m->w16_base);
    be->free(m->gw_layer);
    be->free(m->gw_head);
    if (m->gw_spare) be->free(m->gw_spare);
    if (m->gw_req) comm_gather_req_free(m->gw_req);
    free(m->gw_req);
    free(m->w16_at);
    free(m->gw_bounds);
    free(m->gw_from); /* and gw_to: one allocation */
    free(m->w16);
    free(m->w);
    free(m->dw);
    free(m->specs);
    free(m->gfresh);
    free(m);
}

const ParamSpec *model_find_param(const Model *m, const char *name) {
    for (int i = 0; i < m->nspecs; i++)
        if (strcmp(m->specs[i].name, name) == 0) return &m->specs[i];
    return NULL;
}

/* the gradient of the flat range [off, off + n) as it is held (model_grad_range) and, in *held, its elements: n, or
 * the sparse embedding gradient's held rows (the rest are zeros nothing stores) */
static float *grad_held(const Model *m, size_t off, size_t n, size_t *held) {
    GradRows rows;
    const float *g = model_grad_range(m, off, n, &rows);
    *held = rows.map ? rows.held * rows.cols : n;
    return (float *)g;
}
/* spec i's gradient as held, its elements in *held */
static float *grad_of(const Model *m, int i, size_t *held) {
    return grad_held(m, m->specs[i].offset, m->specs[i].numel, held);
}

void model_zero_grads(Model *m) {
    m->be->zero(m->grads, (m->grads_to - m->grads_from) * sizeof(float));
    if (m->sp.grad) m->be->zero(m->sp.grad, m->sp.max_rows * (size_t)m->C * sizeof(float));
    if (m->gp.resident) m->be->zero(m->gp.resident, m->specs[m->gp.resident_spec].numel * sizeof(float));
    if (m->gfresh) memset(m->gfresh, 0, (size_t)m->nspecs * sizeof(bool));
}

void model_grads_begin(Model *m) {
    if (!m->gfresh) m->gfresh = sd_alloc((size_t)(m->nspecs ? m->nspecs : 1) * sizeof(bool), "gradient flags");
    for (int i = 0; i < m->nspecs; i++) m->gfresh[i] = true;
    /* partitioned: the sink adds each bucket's reduced part into this rank's shard */
    if (m->partitioned) m->be->zero(m->grads, (m->grads_to - m->grads_from) * sizeof(float));
}

/* spec i's gradient, when nothing of this step wrote it: zeroed, as the step's gradient of a tensor it never
 * reached */
static void grad_settle(Model *m, int i) {
    if (!m->gfresh || !m->gfresh[i]) return;
    size_t n = m->specs[i].numel;
    float *g = m->partitioned ? m->gp.resident : grad_of(m, i, &n);
    m->be->zero(g, n * sizeof(float));
    m->gfresh[i] = false;
}

void model_grads_end(Model *m) {
    for (int i = 0; i < m->nspecs; i++)
        /* partitioned: the buckets were handed over; only the resident tied gradient is still here */
        if (!m->partitioned || i == m->gp.resident_spec) grad_settle(m, i);
}

void model_set_grad_done(Model *m, GradDone d) {
    m->gdone = d;
    if (!d.done) m->gdone_armed = false;
}
void model_arm_grad_done(Model *m, bool on) { m->gdone_armed = on && m->gdone.done; }

/* the flat range [st, st + n) final: what nothing wrote zeroed, then GradDone */
static void grads_done_range(Model *m, size_t st, size_t n) {
    for (int i = 0; i < m->nspecs; i++)
        if (m->specs[i].offset >= st && m->specs[i].offset < st + n) grad_settle(m, i);
    m->gdone.done(m->gdone.ctx, m, st, n);
}

void model_grads_done(Model *m, int b) {
    size_t st, n, split = m->gdone_split;
    m->gdone_split = SIZE_MAX;
    if (!m->gdone_armed || m->partitioned || !model_grad_bucket_range(m, b, &st, &n)) return;
    if (b >= 0 && split != SIZE_MAX) n = split - st; /* the MLP's part went before */
    grads_done_range(m, st, n);
}

void model_mlp_grads_done(Model *m, int l) {
    size_t st, n;
    m->gdone_split = SIZE_MAX;
    if (!m->gdone_armed || m->partitioned || !model_grad_bucket_range(m, l, &st, &n)) return;
    for (int i = 0; i < m->nspecs; i++)
        if (m->specs[i].role == P_LN2 && m->specs[i].layer == l + m->L_off) {
            m->gdone_split = m->specs[i].offset;
            grads_done_range(m, m->gdone_split, st + n - m->gdone_split);
            return;
        }
    sd_die("model", "layer %d has no second norm", l + m->L_off);
}

/* the spec whose gradient starts at dW (a view model.c made: it is one) */
static int grad_spec(const Model *m, const float *dW) {
    if (m->sp.grad && dW == m->sp.grad) return 0; /* the sparse embedding gradient: spec 0 (embed_grad.c) */
    size_t off = m->partitioned ? model_partition_offset(m, dW) : (size_t)(dW - m->grads) + m->grads_from;
    int lo = 0, hi = m->nspecs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (m->specs[mid].offset <= off) lo = mid;
        else hi = mid - 1;
    }
    if (m->specs[lo].offset != off) sd_die("model", "gradient view at element %zu starts no parameter", off);
    return lo;
}
/* beta of the matmul that adds into the gradient dW: 0 the first time after model_grads_begin (it overwrites what
 * the last step left), else 1 */
static float grad_beta(Model *m, const float *dW) {
    if (!m->gfresh) return 1.0f;
    int i = grad_spec(m, dW);
    if (!m->gfresh[i]) return 1.0f;
    m->gfresh[i] = false;
    return 0.0f;
}
/* dW for an op that only adds into it (rmsnorm_bwd's gain, embed_bwd's scatter): zeroed first when fresh */
static float *grad_acc(Model *m, float *dW) {
    if (m->gfresh && grad_beta(m, dW) == 0.0f) {
        int i = grad_spec(m, dW);
        size_t n = m->specs[i].numel; /* as written: the sparse embedding gradient's held rows */
        if (!m->partitioned) grad_of(m, i, &n);
        m->be->zero(dW, n * sizeof(float));
    }
    return dW;
}

/* dW, a tensor that one matmul writes together with `with` (the tensor before it in the flat buffer): marked
 * written as with's grad_beta marks it, in the same state (the matmul writes both with with's beta) */
static void grad_beta_consume(Model *m, const float *dW, const float *with) {
    if (!m->gfresh) return;
    int i = grad_spec(m, dW), j = grad_spec(m, with);
    if (m->gfresh[i] != m->gfresh[j])
        sd_die("model", "gradients of '%s' and '%s' in different states in one matmul", m->specs[i].name,
               m->specs[j].name);
    m->gfresh[i] = false;
}

/* ---- bf16 compute weights (model.h model_enable_weights16) ---- */

/* where spec p's bf16 copy goes: its field in m->w16 (the layers' matmul weights) or m->lm_head16 (the LM head: its
 * own tensor, the mirror of a tied one, or the embedding when tied on one stage); NULL for the rest */
static uint16_t **w16_view(Model *m, const ParamSpec *p) {
    LayerW16 *lw = p->layer >= 0 ? &m->w16[p->layer - m->L_off] : NULL;
    switch (p->role) {
    case P_WQ: return &lw->wq;
    case P_WK: return &lw->wk;
    case P_WV: return &lw->wv;
    case P_WO: return &lw->wo;
    case P_WG: return &lw->wg;
    case P_WU: return &lw->wu;
    case P_WD: return &lw->wd;
    case P_LMHEAD: return &m->lm_head16;
    case P_EMBED: return m->last_stage && m->lm_head == m->embed ? &m->lm_head16 : NULL;
    default: return NULL;
    }
}
/* elements of a view: padded to 128 so that every view starts 256-byte aligned, as the bf16 scratch of an operand
 * cast does (cudaMalloc's alignment): the GEMMs see the same operand alignment either way, so cuBLAS picks the same
 * kernels (plan.c restates it) */
static size_t pad128(size_t n) { return (n + 127) / 128 * 128; }

void model_enable_weights16(Model *m) {
    if (m->w16_base) return;
    if (!m->act16 || !m->be->to_bf16)
        sd_die("model", "bf16 compute weights need a model made in the bf16 mode (model.dtype: bf16) on a backend "
               "with bf16 storage");
    m->w16 = sd_calloc((size_t)m->L_loc + 1, sizeof(LayerW16), "bf16 weight views");
    m->w16_at = sd_alloc(sizeof(size_t) * (size_t)m->nspecs, "bf16 weight positions");
    size_t n = 0; /* the copy's layout: the views in table order, each padded */
    for (int i = 0; i < m->nspecs; i++) {
        m->w16_at[i] = w16_view(m, &m->specs[i]) ? n : SIZE_MAX;
        if (m->w16_at[i] != SIZE_MAX) n += pad128(m->specs[i].numel);
    }
    m->w16_elems = n;
    m->w16_fresh = false;
    if (m->zero3) { /* ZeRO-3: this rank's part and the gather buffers (param_shard.c) */
        model_shard_weights_init(m);
        return;
    }
    m->w16_base = m->be->alloc(sd_mul_size(n ? n : 1, sizeof(uint16_t), "bf16 weights"), "bf16 weights");
    for (int i = 0; i < m->nspecs; i++)
        if (m->w16_at[i] != SIZE_MAX) *w16_view(m, &m->specs[i]) = m->w16_base + m->w16_at[i];
}

void model_set_weights16_view(Model *m, int i, uint16_t *v) {
    uint16_t **slot = w16_view(m, &m->specs[i]);
    if (slot) *slot = v;
}

void model_refresh_weights16(Model *m) {
    if (!m->w16_base) return;
    if (m->params_sharded) /* no whole fp32 weights to round: the optimizer and the all-gather keep it fresh */
        sd_die("model", "the bf16 weights of a model with sharded master weights cannot be made again from them");
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        uint16_t **v = w16_view(m, p);
        if (v) m->be->to_bf16(*v, m->params + p->offset, p->numel);
    }
    m->w16_fresh = true;
}

void model_weights_changed(Model *m) {
    m->w16_fresh = false;
    model_weights_gather_reset(m, true);
}

uint16_t *model_weights16_at(Model *m, int i, size_t k) {
    if (!m->w16_base || m->w16_at[i] == SIZE_MAX) return NULL;
    size_t pos = m->w16_at[i] + k;
    if (!m->zero3) return m->w16_base + pos;
    if (pos < m->w16_lo || pos >= m->w16_hi)
        sd_die("model", "element %zu of the bf16 copy of '%s' is not held on this rank (ZeRO-3: its part [%zu, %zu) "
               "of the copy)", k, m->specs[i].name, m->w16_lo, m->w16_hi);
    return m->w16_base + (pos - m->w16_lo);
}

void model_weights16_written(Model *m) {
    if (!m->w16_base) return;
    m->w16_fresh = true;
    model_weights_gather_reset(m, true); /* gathered views hold the weights before */
}

/* SIMPO_CHECK_WEIGHTS16=1: dies unless the fresh copy is bf16 of the current parameters (a caller wrote them
 * without model_weights_changed) */
static void check_weights16(Model *m) {
    const char *e = getenv("SIMPO_CHECK_WEIGHTS16");
    if (!m->w16_fresh || !e || strcmp(e, "1") != 0) return;
    size_t lo = m->params_from, held = model_params_held(m);
    /* the copy as this rank holds it: whole, or (ZeRO-3) its part from position w16_lo */
    size_t base = m->zero3 ? m->w16_lo : 0, nb = m->zero3 ? m->w16_hi - m->w16_lo : m->w16_elems;
    float *p = sd_alloc(sd_mul_size(held ? held : 1, sizeof(float), "weights check"), "weights check");
    uint16_t *b = sd_alloc(sd_mul_size(nb ? nb : 1, sizeof(uint16_t), "weights check"), "weights check");
    model_params_to_host(m, p); /* sharded master weights: this rank's shard, which the check covers */
    m->be->download(b, m->w16_base, nb * sizeof(uint16_t));
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *s = &m->specs[i];
        if (m->w16_at[i] == SIZE_MAX) continue;
        for (size_t j = 0; j < s->numel; j++) {
            if (s->offset + j < lo || s->offset + j >= lo + held) continue;
            if (b[m->w16_at[i] + j - base] != sd_f32_to_bf16(p[s->offset + j - lo]))
                sd_die("model", "the bf16 copy of %s is stale at element %zu: the parameters were written without "
                       "model_weights_changed", s->name, j);
        }
    }
    free(p);
    free(b);
}

double model_grad_sumsq_ranges(const Model *m, const size_t *start, const size_t *len, int count, double *each) {
    const float **x = sd_alloc(sizeof(*x) * (size_t)(count + 1), "gradient ranges");
    double *ss = each ? each : sd_alloc(sizeof(*ss) * (size_t)(count + 1), "gradient ranges");
    size_t *n = sd_alloc(sizeof(*n) * (size_t)(count + 1), "gradient ranges");
    for (int i = 0; i < count; i++) x[i] = grad_held(m, start[i], len[i], &n[i]); /* sparse: the held rows */
    backend_sumsq_many(m->be, ss, x, n, count);
    free(n);
    double s = 0.0;
    for (int i = 0; i < count; i++) s += ss[i];
    free(x);
    if (!each) free(ss);
    return s;
}

double model_grad_sumsq(const Model *m) {
    size_t *st = sd_alloc(sizeof(*st) * 2 * (size_t)(m->nspecs + 1), "gradient ranges"), *n = st + m->nspecs + 1;
    int k = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        if (p->mirror || (p->split == SPLIT_REPL && m->tp_rank != 0)) continue; /* counted elsewhere */
        st[k] = p->offset;
        n[k++] = p->numel;
    }
    double s = model_grad_sumsq_ranges(m, st, n, k, NULL);
    free(st);
    return s;
}

void model_init_random(Model *m, long seed) {
    /* tensor by tensor: host memory for the largest one only */
    float *t = sd_alloc(sd_mul_size(model_param_max_numel(m), sizeof(float), "init"), "init");
    double std = m->mc.initializer_range;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        bool gain = param_role_is_gain(p->role); /* 1: Llama's gain, Gemma 2's 1 + 0 */
        int64_t cols = p->ndim == 2 ? p->shape[1] : 1, cols_loc = p->ndim == 2 ? p->shape_loc[1] : 1;
        /* element by element from its global index, so threads change nothing (an 8B model: minutes alone) */
#pragma omp parallel for schedule(static)
        for (size_t e = 0; e < p->numel; e++) {
            /* global element index of local element e, so any slicing sees the same numbers */
            uint64_t r = (uint64_t)(p->off[0] + (int64_t)(e / (size_t)cols_loc));
            uint64_t c = (uint64_t)((p->ndim == 2 ? p->off[1] : 0) + (int64_t)(e % (size_t)cols_loc));
            t[e] = gain ? 1.0f : (float)(std * sd_normal((uint64_t)seed, name_stream(p->name), r * (uint64_t)cols + c));
        }
        model_param_set(m, i, t);
    }
    model_params_set_done(m);
    free(t);
}

void model_load_hf(Model *m, const char *hf_dir) {
    StDir *d = st_open_dir(hf_dir);
    /* tensor by tensor: host memory for the largest one only (and, for a TP slice, its whole tensor) */
    float *host = sd_alloc(sd_mul_size(model_param_max_numel(m), sizeof(float), "weights"), "weights");
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        const StTensor *t = st_find(d, p->name);
        if (!t) sd_die(hf_dir, "tensor '%s' is missing from the checkpoint", p->name);
        bool ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] && (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!ok)
            sd_die(hf_dir, "tensor '%s': expected shape [%lld%s%lld], found ndim %d [%lld, %lld]", p->name,
                   (long long)p->shape[0], p->ndim == 2 ? ", " : "", p->ndim == 2 ? (long long)p->shape[1] : 0LL,
                   t->ndim, (long long)t->shape[0], t->ndim > 1 ? (long long)t->shape[1] : 0LL);
        if (p->numel == t->numel) st_read_f32(d, t, host);
        else { /* a TP slice: read the whole tensor, keep this rank's rectangle */
            float *full = sd_alloc(sd_mul_size(t->numel, sizeof(float), p->name), p->name);
            st_read_f32(d, t, full);
            size_t cols = p->ndim == 2 ? (size_t)p->shape[1] : 1, lc = p->ndim == 2 ? (size_t)p->shape_loc[1] : 1;
            for (int64_t r = 0; r < p->shape_loc[0]; r++)
                memcpy(host + (size_t)r * lc, full + (size_t)(p->off[0] + r) * cols + (size_t)p->off[1],
                       lc * sizeof(float));
            free(full);
        }
        if (m->gemma2 && param_role_is_gain(p->role)) /* HF's offset w -> the gain 1 + w (model.h) */
            for (size_t e = 0; e < p->numel; e++) host[e] += 1.0f;
        model_param_set(m, i, host);
    }
    model_params_set_done(m);
    free(host);
    st_close(d);
}

/* model_export_hf_from's tensors: each read when the file reaches it, Gemma 2's gains turned into HF's offsets */
typedef struct {
    const ModelConfig *mc;
    const ParamSpec *specs;
    void (*read)(void *ctx, const ParamSpec *p, float *out);
    void *ctx;
} ExportSrc;
static void export_fill(void *ctx, int i, float *out) {
    const ExportSrc *x = ctx;
    const ParamSpec *p = &x->specs[i];
    x->read(x->ctx, p, out);
    if (x->mc->arch == ARCH_GEMMA2 && param_role_is_gain(p->role)) /* the gain 1 + w -> HF's offset w (model.h) */
        for (size_t e = 0; e < p->numel; e++) out[e] -= 1.0f;
}

void model_export_hf_from(const ModelConfig *mc, const ParamSpec *specs, int n,
                          void (*read)(void *ctx, const ParamSpec *p, float *out), void *ctx, const char *out_dir,
                          size_t shard_bytes, bool bf16) {
    sd_mkdirs(out_dir);
    ExportSrc src = {mc, specs, read, ctx};
    StOut *outs = sd_calloc((size_t)(n ? n : 1), sizeof *outs, "export list");
    for (int i = 0; i < n; i++) {
        const ParamSpec *p = &specs[i];
        outs[i] = (StOut){.name = p->name, .ndim = p->ndim, .shape = {p->shape[0], p->shape[1]}, .fill = export_fill,
                          .ctx = &src};
    }
    st_write_model(out_dir, outs, n, shard_bytes, bf16);
    char *json = model_config_to_json_as(mc, bf16 ? "bfloat16" : "float32");
    char *path = sd_path_join(out_dir, "config.json");
    sd_write_file_atomic(path, json, strlen(json));
    free(path);
    free(json);
    free(outs);
}

static void read_from_model(void *ctx, const ParamSpec *p, float *out) {
    const Model *m = ctx;
    m->be->download(out, model_param_at(m, p->offset), p->numel * sizeof(float));
}

void model_export_hf(const Model *m, const char *out_dir, size_t shard_bytes) {
    if (m->tp > 1) sd_die("export", "exports go through a model without tensor parallelism (read the checkpoint)");
    if (m->params_sharded) sd_die("export", "exports go through a model with whole weights (read the checkpoint)");
    model_export_hf_from(&m->mc, m->specs, m->nspecs, read_from_model, (void *)m, out_dir, shard_bytes, false);
}

/* ---- forward ---- */

/* layer l's weight `field` (model_internal.h Wt) */
#define LW(m, l, field) ((Wt){(m)->w[l].field, (m)->w16_fresh ? (m)->w16[l].field : NULL})
/* what a matmul reads of W: its bf16 copy when there is one (then a bf16 operand), else the fp32 weights */
static const void *wt_data(Wt W) { return W.b ? (const void *)W.b : (const void *)W.f; }

void model_linear(const Backend *be, float *y, const void *x, bool x16, Wt W, size_t N, int in, int out, bool acc) {
    if (x16 || W.b)
        be->matmul16(y, x, x16, wt_data(W), W.b != NULL, (int)N, out, in, false, true, 1.0f, acc ? 1.0f : 0.0f);
    else be->matmul(y, (const float *)x, W.f, (int)N, out, in, false, true, 1.0f, acc ? 1.0f : 0.0f);
}
void model_linear_proj(const Model *m, float *y, const void *x, bool x16, Wt W, size_t N, int in, int out) {
    if (m->proj16)
        m->be->matmul16_out16((uint16_t *)y, x, x16, wt_data(W), W.b != NULL, (int)N, out, in, false, true);
    else model_linear(m->be, y, x, x16, W, N, in, out, false);
}
/* backward of y = x W^T: dx (+)= dy W, dW += dy^T x (the first time in a step dW = dy^T x: grad_beta; x16 as in
 * linear; dy16: dy is bf16 storage too; dx16: dx written in bf16, the autocast storage of a gradient that feeds only
 * bf16 ops, not with acc_dx). linear_bwd: dx fp32. */
static void linear_bwd_ex(Model *m, float *dx, bool dx16, float *dW, const void *dy, bool dy16, const void *x, bool x16,
                          Wt W, size_t N, int in, int out, bool acc_dx) {
    const Backend *be = m->be;
    float bw = grad_beta(m, dW);
    if (!dy16) model_hold(be, dy, N * (size_t)out);
    if (dx16)
        be->matmul16_out16((uint16_t *)dx, dy, dy16, wt_data(W), W.b != NULL, (int)N, in, out, false, false);
    else if (dy16 || W.b)
        be->matmul16(dx, dy, dy16, wt_data(W), W.b != NULL, (int)N, in, out, false, false, 1.0f,
                     acc_dx ? 1.0f : 0.0f);
    else be->matmul(dx, dy, W.f, (int)N, in, out, false, false, 1.0f, acc_dx ? 1.0f : 0.0f);
    if (dy16 || x16) be->matmul16(dW, dy, dy16, x, x16, out, in, (int)N, true, false, 1.0f, bw);
    else be->matmul(dW, dy, (const float *)x, out, in, (int)N, true, false, 1.0f, bw);
    if (!dy16) model_release(be, dy);
}
void model_linear_bwd(Model *m, float *dx, float *dW, const void *dy, bool dy16, const void *x, bool x16, Wt W,
                       size_t N, int in, int out, bool acc_dx) {
    linear_bwd_ex(m, dx, false, dW, dy, dy16, x, x16, W, N, in, out, acc_dx);
}
/* the activations that only feed matmuls (normed inputs, the MLP's hidden state): bf16 storage when m->act16 */
static void norm_act(const Model *m, float *out, float *rstd, const float *x, const float *w, size_t N) {
    float eps = (float)m->mc.rms_norm_eps;
    if (m->act16) m->be->rmsnorm_fwd16((uint16_t *)out, rstd, x, w, N, m->C, eps);
    else m->be->rmsnorm_fwd(out, rstd, x, w, N, m->C, eps);
}
static void glu_act(const Model *m, float *h, const float *g, const float *u, size_t N) {
    const Backend *be = m->be;
    if (m->proj16) { /* g, u and h all bf16 */
        const uint16_t *g16 = (const uint16_t *)g, *u16 = (const uint16_t *)u;
        if (m->gemma2) be->geglu_fwd_b16((uint16_t *)h, g16, u16, N, m->FF_loc);
        else be->swiglu_fwd_b16((uint16_t *)h, g16, u16, N, m->FF_loc);
        return;
    }
    if (m->gemma2) {
        if (m->act16) be->geglu_fwd16((uint16_t *)h, g, u, N, m->FF_loc);
        else be->geglu_fwd(h, g, u, N, m->FF_loc);
    } else if (m->act16) be->swiglu_fwd16((uint16_t *)h, g, u, N, m->FF_loc);
    else be->swiglu_fwd(h, g, u, N, m->FF_loc);
}
/* the gated activation's backward: d/dg, d/du into dg, du (bf16 storage under act16: they feed only the gate / up
 * projections' matmuls) from d/dh in dh (bf16 under proj16, as torch's autocast keeps the gradient of a bf16 h) */
static void glu_bwd(const Model *m, float *dg, float *du, const float *dh, const float *g, const float *u, size_t N) {
    const Backend *be = m->be;
    if (m->proj16) { /* g, u bf16 (and, as under act16, dg, du) */
        const uint16_t *g16 = (const uint16_t *)g, *u16 = (const uint16_t *)u;
        const uint16_t *dh16 = (const uint16_t *)dh;
        if (m->gemma2) be->geglu_bwd_b16((uint16_t *)dg, (uint16_t *)du, dh16, g16, u16, N, m->FF_loc);
        else be->swiglu_bwd_b16((uint16_t *)dg, (uint16_t *)du, dh16, g16, u16, N, m->FF_loc);
        return;
    }
    if (m->gemma2) {
        if (m->act16) be->geglu_bwd16((uint16_t *)dg, (uint16_t *)du, dh, g, u, N, m->FF_loc);
        else be->geglu_bwd(dg, du, dh, g, u, N, m->FF_loc);
    } else if (m->act16) be->swiglu_bwd16((uint16_t *)dg, (uint16_t *)du, dh, g, u, N, m->FF_loc);
    else be->swiglu_bwd(dg, du, dh, g, u, N, m->FF_loc);
}
/* hold of such an activation over the matmuls that read it (nothing to convert when it is bf16 storage) */
static void hold_act(const Model *m, const float *x, size_t n) {
    if (!m->act16) model_hold(m->be, x, n);
}
static void release_act(const Model *m, const float *x) {
    if (!m->act16) model_release(m->be, x);
}
/* ---- sequence parallelism (m->seqpar; Megatron-Core's sequence_parallel) ----
 * The C-wide rows of a micro-batch of N tokens (layer inputs, norms, residual sums, the stage's input and output)
 * are cut over the TP group: rank r holds rows [r R, (r + 1) R) of R = ceil(N / tp); rows past N are zeros and
 * stay zeros (every op on them is linear or a norm of zeros). The column-parallel projections and the LM head read
 * the whole rows (sp_gather: all-gather, whose backward is a reduce-scatter); the row-parallel projections'
 * partial sums are reduce-scattered instead of all-reduced (sp_reduce_scatter, whose backward is an all-gather).
 * The same traffic as tensor parallelism's all-reduce in the forward (an all-reduce is a reduce-scatter and an
 * all-gather); the backward gathers the normed rows again for the weight gradients, as Megatron does, rather than
 * keep them whole. A norm's gain gradient is the sum over every row: each rank's rows give part of it (norm_gain_bwd
 * sums them over TP). The matmuls, attention and the gated activation run on the N real rows. */

/* the whole rows [R tp, w] in full from this rank's block src [R, w] (mpi/tp.h); without seqpar, src */
static const float *sp_gather(const Model *m, float *full, const float *src, size_t R, size_t w) {
    return m->seqpar ? tp_sp_gather(m->grid, full, src, R, w) : src;
}
/* this rank's block [R, C] of the sum over TP of the partial rows part, its first N rows written (mpi/tp.h) */
static const float *sp_reduce_scatter(const Model *m, float *part, size_t N, size_t R) {
    return tp_sp_reduce_scatter(m->grid, part, N, R, (size_t)m->C);
}
/* rmsnorm's backward over R rows: dx += d/dx, the gain's gradient dw += its part; under sequence parallelism the
 * rows are this rank's block, whose part of dw is summed over TP first (m->gsum) */
static void norm_gain_bwd(Model *m, float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, size_t R) {
    const Backend *be = m->be;
    if (!m->seqpar) {
        be->rmsnorm_bwd(dx, dw, dy, x, w, rstd, R, m->C);
        return;
    }
    be->zero(m->gsum, (size_t)m->C * sizeof(float));
    be->rmsnorm_bwd(dx, m->gsum, dy, x, w, rstd, R, m->C);
    tp_reduce(m->grid, m->gsum, (size_t)m->C);
    be->add(dw, m->gsum, (size_t)m->C);
}

/* out = residual + x W^T for a row-parallel W[C, in_loc]: each TP rank holds a partial sum (tp_reduce; under
 * sequence parallelism its block of the sum, sp_reduce_scatter, over R rows of out and residual) */
static void row_parallel_residual(Model *m, Acts *a, float *out, const float *residual, const void *x, bool x16,
                                  Wt W, size_t N, int in_loc) {
    const Backend *be = m->be;
    size_t n = N * (size_t)m->C;
    if (m->seqpar) {
        size_t R = model_stage_rows(m, N), nr = R * (size_t)m->C;
        model_linear(be, a->dtmp, x, x16, W, N, in_loc, m->C, false);
        const float *blk = sp_reduce_scatter(m, a->dtmp, N, R);
        be->copy(out, residual, nr * sizeof(float));
        be->add(out, blk, nr);
        return;
    }
    if (m->tp == 1) {
        if ((x16 || W.b) && be->matmul16_res) /* the residual read by the GEMM itself: no copy into out first */
            be->matmul16_res(out, residual, x, x16, wt_data(W), W.b != NULL, (int)N, m->C, in_loc, false, true);
        else {
            be->copy(out, residual, n * sizeof(float));
            model_linear(be, out, x, x16, W, N, in_loc, m->C, true);
        }
        return;
    }
    float *part = a->dtmp; /* free during the forward */
    model_linear(be, part, x, x16, W, N, in_loc, m->C, false);
    tp_reduce(m->grid, part, n);
    be->copy(out, residual, n * sizeof(float));
    be->add(out, part, n);
}

/* Gemma 2's sandwich half: pre = x W^T for a row-parallel W[C, in_loc] (all-reduced over TP, saved), normed =
 * rmsnorm(pre) with gain and its rstd (saved); the caller adds the residual to normed. Under sequence parallelism
 * pre, rstd and normed are this rank's block of R rows (the sum reduce-scattered in a->dtmp; normed may be
 * a->dtmp). */
static void row_parallel_norm(Model *m, Acts *a, float *pre, float *rstd, float *normed, const void *x, bool x16,
                              Wt W, const float *gain, size_t N, int in_loc) {
    const Backend *be = m->be;
    size_t R = N;
    if (m->seqpar) {
        R = model_stage_rows(m, N);
        model_linear(be, a->dtmp, x, x16, W, N, in_loc, m->C, false);
        be->copy(pre, sp_reduce_scatter(m, a->dtmp, N, R), R * (size_t)m->C * sizeof(float));
    } else {
        model_linear(be, pre, x, x16, W, N, in_loc, m->C, false);
        tp_reduce(m->grid, pre, N * (size_t)m->C);
    }
    be->rmsnorm_fwd(normed, rstd, pre, gain, R, m->C, (float)m->mc.rms_norm_eps);
}

const AttnOpts *model_attn_opts(const Model *m, int l, AttnOpts *o) {
    if (!m->gemma2) {
        /* Mistral v0.1's window on every layer; it masks nothing where no sequence is longer than it, and there the
         * default options leave the call to the fastest kernels (the tensor cores') */
        if (m->mc.sliding_window <= 0 || m->seq_max <= m->mc.sliding_window) return NULL;
        *o = (AttnOpts){0.0f, 0.0f, m->mc.sliding_window}; /* scale 0: 1/sqrt(HD), as without options */
        return o;
    }
    o->scale = (float)pow(m->mc.query_pre_attn_scalar, -0.5); /* transformers: query_pre_attn_scalar**-0.5 */
    o->softcap = (float)m->mc.attn_logit_softcapping;
    o->window = model_config_layer_sliding(&m->mc, m->L_off + l) ? m->mc.sliding_window : 0;
    return o;
}

/* the longest sequence of a micro-batch in attention's layout (tokens) */
static int microbatch_seq_max(const MicroBatch *mb) {
    int most = 0;
    for (int s = 0; s < mb->S; s++)
        if (mb->cu_seqlens[s + 1] - mb->cu_seqlens[s] > most) most = mb->cu_seqlens[s + 1] - mb->cu_seqlens[s];
    return most;
}

/* whether the backward reruns local layer l's forward: Megatron's "block" method, the stage's first layers */
static bool layer_recomputes(const Model *m, int l) { return l < m->recompute_layers; }

/* Views of layer l's activations in slot a for a micro-batch of N tokens: its input in the slot, and its
 * intermediates in the slot (saved) or, when it recomputes, in the shared working area (rerun, one layer deep). */
typedef struct { float *x, *rstd1, *ln1, *q, *k, *v, *att, *lse, *x2, *rstd2, *ln2, *g, *u, *h, *ao, *rstda, *mo,
                 *rstdm, *qr, *kr, *rstdq, *rstdk; } LayerActs;

static LayerActs layer_acts(const Model *m, const Acts *a, int l, size_t N) {
    size_t C = (size_t)m->C, QD = (size_t)m->NH_loc * m->HD, KD = (size_t)m->NKV_loc * m->HD,
           FF = (size_t)m->FF_loc, NH = (size_t)m->NH_loc;
    bool rc = layer_recomputes(m, l);
    const LayerStore *s = rc ? &a->rerun : &a->saved;
    size_t i = rc ? 0 : (size_t)(l - m->recompute_layers);
    size_t R = model_stage_rows(m, N); /* the C-wide rows (sequence parallelism: this rank's block) */
    size_t C16 = act_floats(m, C), FF16 = act_floats(m, FF); /* ln1, ln2, h: bf16 storage under act16 */
    size_t FFp = proj_floats(m, FF), QDp = proj_floats(m, QD), KDp = proj_floats(m, KD); /* bf16 under proj16 */
    LayerActs t = {a->x + (size_t)l * R * C, s->rstd1 + i * R, m->norm_rc ? a->nbuf : s->ln1 + i * R * C16,
                   s->q + i * N * QDp, s->k + i * N * KDp, s->v + i * N * KDp, s->att + i * N * QDp,
                   s->lse + i * N * NH, s->x2 + i * R * C, s->rstd2 + i * R,
                   m->norm_rc ? a->nbuf : s->ln2 + i * R * C16, s->g + i * N * FFp,
                   s->u + i * N * FFp, m->act_rc ? a->hbuf : s->h + i * N * FF16, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL};
    if (m->gemma2) {
        t.ao = s->ao + i * R * C;
        t.rstda = s->rstda + i * R;
        t.mo = s->mo + i * R * C;
        t.rstdm = s->rstdm + i * R;
    }
    if (m->qk_norm) {
        t.qr = s->qr + i * N * QDp;
        t.kr = s->kr + i * N * KDp;
        t.rstdq = s->rstdq + i * N * NH;
        t.rstdk = s->rstdk + i * N * (size_t)m->NKV_loc;
    }
    return t;
}

/* prefix sharing (pairs.h MicroBatch): rows of width w (floats; autocast storage: w / 2, bf16 rows copied as
 * floats) from the layers' layout into attention's (every attention row from its token) */
static void to_att_rows(const Model *m, const Acts *a, const MicroBatch *mb, float *dst, const float *src, size_t w) {
    m->be->gather_rows(dst, src, a->xrow, mb->Natt, mb->Ntok, (int)w);
}
/* and back: each token from its own attention row */
static void from_att_rows(const Model *m, const Acts *a, const MicroBatch *mb, float *dst, const float *src,
                          size_t w) {
    m->be->gather_rows(dst, src, a->xfirst, mb->Ntok, mb->Natt, (int)w);
}

/* RoPE on the N rows of q and k in place (bwd: its backward, on their gradients), bf16 under proj16 */
static void rope_qk(const Model *m, const Acts *a, float *q, float *k, size_t N, bool bwd) {
    const Backend *be = m->be;
    int NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD;
    if (m->proj16) {
        void (*rope)(uint16_t *, const int *, const float *, const float *, size_t, int, int) =
            bwd ? be->rope_bwd_b16 : be->rope_fwd_b16;
        rope((uint16_t *)q, a->pos, m->rope_cos, m->rope_sin, N, NH, HD);
        rope((uint16_t *)k, a->pos, m->rope_cos, m->rope_sin, N, NKV, HD);
    } else {
        void (*rope)(float *, const int *, const float *, const float *, size_t, int, int) =
            bwd ? be->rope_bwd : be->rope_fwd;
        rope(q, a->pos, m->rope_cos, m->rope_sin, N, NH, HD);
        rope(k, a->pos, m->rope_cos, m->rope_sin, N, NKV, HD);
    }
}

/* prefix sharing: q, k, v (t's, after RoPE) into attention's layout, a->xq, xk, xv */
static void qkv_to_att_rows(const Model *m, const Acts *a, const MicroBatch *mb, const LayerActs *t) {
    size_t QDf = proj_floats(m, (size_t)m->NH_loc * m->HD), KDf = proj_floats(m, (size_t)m->NKV_loc * m->HD);
    to_att_rows(m, a, mb, a->xq, t->q, QDf);
    to_att_rows(m, a, mb, a->xk, t->k, KDf);
    to_att_rows(m, a, mb, a->xv, t->v, KDf);
}

/* prefix sharing: attention in the layers' rows (backend.h attn_fwd_rows, attn_fwd_b16_rows under proj16), t's q,
 * k (after RoPE), v into t's att and lse; false when the backend has no such op or declines (nothing done) */
static bool attn_rows_fwd(const Model *m, const Acts *a, const MicroBatch *mb, const LayerActs *t,
                          const AttnOpts *aopt) {
    const Backend *be = m->be;
    size_t N = mb->Ntok;
    int NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD;
    if (m->proj16)
        return be->attn_fwd_b16_rows &&
               be->attn_fwd_b16_rows((uint16_t *)t->att, t->lse, (const uint16_t *)t->q, (const uint16_t *)t->k,
                                     (const uint16_t *)t->v, N, a->cu, mb->S, a->xrow, a->xskip, NH, NKV, HD, aopt);
    return be->attn_fwd_rows && be->attn_fwd_rows(t->att, t->lse, t->q, t->k, t->v, N, a->cu, mb->S, a->xrow,
                                                  a->xskip, NH, NKV, HD, aopt);
}
/* and its backward from a->datt into a->dq, dk, dv (before RoPE's backward) */
static bool attn_rows_bwd(const Model *m, const Acts *a, const MicroBatch *mb, const LayerActs *t,
                          const AttnOpts *aopt) {
    const Backend *be = m->be;
    size_t N = mb->Ntok;
    int NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD;
    if (m->proj16)
        return be->attn_bwd_b16_rows &&
               be->attn_bwd_b16_rows((uint16_t *)a->dq, (uint16_t *)a->dk, (uint16_t *)a->dv,
                                     (const uint16_t *)a->datt, (const uint16_t *)t->q, (const uint16_t *)t->k,
                                     (const uint16_t *)t->v, (const uint16_t *)t->att, t->lse, N, a->cu, mb->S,
                                     a->xrow, a->xskip, NH, NKV, HD, aopt);
    return be->attn_bwd_rows && be->attn_bwd_rows(a->dq, a->dk, a->dv, a->datt, t->q, t->k, t->v, t->att, t->lse, N,
                                                  a->cu, mb->S, a->xrow, a->xskip, NH, NKV, HD, aopt);
}

/* RoPE on q and k, then attention: on bf16 q, k, v, att under proj16 (autocast storage). Under prefix sharing
 * attention runs in the layers' rows where the backend can (attn_rows_fwd), else on copies in its own layout
 * (a->xq ...), each token taking its own row of the output. */
static void attention_fwd(const Model *m, const Acts *a, const MicroBatch *mb, const LayerActs *t,
                          const AttnOpts *aopt) {
    const Backend *be = m->be;
    size_t N = mb->Ntok;
    int NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD;
    size_t QDf = proj_floats(m, (size_t)NH * HD);
    rope_qk(m, a, t->q, t->k, N, false);
    if (mb->shared && attn_rows_fwd(m, a, mb, t, aopt)) return; /* in the layers' rows: nothing gathered */
    const float *q = t->q, *k = t->k, *v = t->v;
    float *att = t->att, *lse = t->lse;
    if (mb->shared) {
        qkv_to_att_rows(m, a, mb, t);
        q = a->xq, k = a->xk, v = a->xv, att = a->xatt, lse = a->xlse;
    }
    if (m->proj16)
        be->attn_fwd_b16((uint16_t *)att, lse, (const uint16_t *)q, (const uint16_t *)k, (const uint16_t *)v, a->cu,
                         mb->S, NH, NKV, HD, aopt);
    else be->attn_fwd(att, lse, q, k, v, a->cu, mb->S, NH, NKV, HD, aopt);
    if (mb->shared) {
        from_att_rows(m, a, mb, t->att, att, QDf);
        from_att_rows(m, a, mb, t->lse, lse, (size_t)NH);
    }
}

/* attention's backward from d/d(att) in a->datt, then RoPE's: d/dq, d/dk, d/dv into a->dq, dk, dv (bf16 under
 * proj16). Under prefix sharing it runs in the layers' rows where the backend can (attn_rows_bwd), else in
 * attention's layout: d(att) goes to each token's own row and is zero on a prompt's second copy (whose output no one
 * read), so that copy's dq is zero and its dk, dv (what the rejected response's queries send to the prompt's keys)
 * are added to the token's. */
static void attention_bwd(const Model *m, const Acts *a, const MicroBatch *mb, const LayerActs *t,
                          const AttnOpts *aopt, bool rope) {
    const Backend *be = m->be;
    size_t N = mb->Ntok;
    int NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD;
    size_t QD = (size_t)NH * HD, KD = (size_t)NKV * HD, QDf = proj_floats(m, QD), KDf = proj_floats(m, KD);
    const float *q = t->q, *k = t->k, *v = t->v, *att = t->att, *lse = t->lse, *datt = a->datt;
    float *dq = a->dq, *dk = a->dk, *dv = a->dv;
    if (mb->shared && attn_rows_bwd(m, a, mb, t, aopt)) { /* in the layers' rows: nothing gathered */
        if (rope) rope_qk(m, a, a->dq, a->dk, N, true);
        return;
    }
    if (mb->shared) {
        qkv_to_att_rows(m, a, mb, t);
        to_att_rows(m, a, mb, a->xatt, att, QDf);
        to_att_rows(m, a, mb, a->xlse, lse, (size_t)NH);
        be->zero(a->xdatt, mb->Natt * QDf * sizeof(float)); /* bf16 zeros too */
        be->scatter_rows(a->xdatt, a->datt, a->xfirst, N, mb->Natt, (int)QDf);
        q = a->xq, k = a->xk, v = a->xv, att = a->xatt, lse = a->xlse, datt = a->xdatt;
        dq = a->xdq, dk = a->xdk, dv = a->xdv;
    }
    if (m->proj16)
        be->attn_bwd_b16((uint16_t *)dq, (uint16_t *)dk, (uint16_t *)dv, (const uint16_t *)datt, (const uint16_t *)q,
                         (const uint16_t *)k, (const uint16_t *)v, (const uint16_t *)att, lse, a->cu, mb->S, NH, NKV,
                         HD, aopt);
    else be->attn_bwd(dq, dk, dv, datt, q, k, v, att, lse, a->cu, mb->S, NH, NKV, HD, aopt);
    if (mb->shared) {
        from_att_rows(m, a, mb, a->dq, dq, QDf);
        from_att_rows(m, a, mb, a->dk, dk, KDf);
        from_att_rows(m, a, mb, a->dv, dv, KDf);
        size_t nd = (size_t)mb->ndup;
        if (m->proj16) {
            be->add_rows_b16((uint16_t *)a->dk, a->dup_tok, (const uint16_t *)dk, a->dup_row, nd, N, mb->Natt, (int)KD);
            be->add_rows_b16((uint16_t *)a->dv, a->dup_tok, (const uint16_t *)dv, a->dup_row, nd, N, mb->Natt, (int)KD);
        } else {
            be->add_rows(a->dk, a->dup_tok, dk, a->dup_row, nd, N, mb->Natt, (int)KD);
            be->add_rows(a->dv, a->dup_tok, dv, a->dup_row, nd, N, mb->Natt, (int)KD);
        }
    }
    if (rope) rope_qk(m, a, a->dq, a->dk, N, true);
}

/* Qwen2's biases of the q, k, v projections, added to their outputs before RoPE (bf16 storage under proj16: the
 * matmul's bf16 output plus the bias, rounded again, where torch's autocast adds the bias in the GEMM's epilogue and
 * rounds once; within the bf16 mode's bounds, docs/design.md) */
static void qkv_bias_add(const Model *m, const LayerActs *t, const LayerW *w, size_t N) {
    const Backend *be = m->be;
    int QD = m->NH_loc * m->HD, KD = m->NKV_loc * m->HD;
    if (m->proj16) {
        be->bias_add_b16((uint16_t *)t->q, w->bq, N, QD, QD);
        be->bias_add_b16((uint16_t *)t->k, w->bk, N, KD, KD);
        be->bias_add_b16((uint16_t *)t->v, w->bv, N, KD, KD);
    } else {
        be->bias_add(t->q, w->bq, N, QD, QD);
        be->bias_add(t->k, w->bk, N, KD, KD);
        be->bias_add(t->v, w->bv, N, KD, KD);
    }
}
/* and their gradients, the column sums of the gradients before RoPE (after RoPE's backward): dq, dk, dv [N rows, ld_q
 * / ld_kv apart] (bf16 when b16: what the weights' matmuls read too) */
static void qkv_bias_grad(Model *m, const LayerW *dw, const void *dq, const void *dk, const void *dv, int ld_q,
                          int ld_kv, bool b16, size_t N) {
    const Backend *be = m->be;
    const void *d[3] = {dq, dk, dv};
    float *db[3] = {dw->bq, dw->bk, dw->bv};
    int QD = m->NH_loc * m->HD, KD = m->NKV_loc * m->HD, D[3] = {QD, KD, KD}, ld[3] = {ld_q, ld_kv, ld_kv};
    for (int i = 0; i < 3; i++) {
        float *g = grad_acc(m, db[i]);
        if (b16) be->bias_grad_b16(g, (const uint16_t *)d[i], N, D[i], ld[i]);
        else be->bias_grad(g, (const float *)d[i], N, D[i], ld[i]);
    }
}

/* Qwen3: the backward of the per-head norms of q and k, from d/dq, d/dk after RoPE's backward (a->dq, a->dk) to
 * the gradients of the projections' outputs: d/dq into a->datt (dead after attention's backward), then d/dk into
 * a->dq (dead once read: QD >= KD); fp32, or bf16 in autocast storage (rmsnorm_bwd_b16 writes d/dx). A gain's
 * gradient is a sum over every head of every token: each TP rank holds its heads' part, summed over the TP group
 * (m->qksum) */
static void qk_norm_bwd(Model *m, Acts *a, const LayerActs *t, const LayerW *w, LayerW *dw, size_t N) {
    const Backend *be = m->be;
    int HD = m->HD;
    size_t QD = (size_t)m->NH_loc * HD, KD = (size_t)m->NKV_loc * HD;
    struct { float *dx, *dw; const float *dy, *x, *w, *rstd; size_t rows, n; } s[2] = {
        {a->datt, dw->qn, a->dq, t->qr, w->qn, t->rstdq, N * (size_t)m->NH_loc, QD},
        {a->dq, dw->kn, a->dk, t->kr, w->kn, t->rstdk, N * (size_t)m->NKV_loc, KD}};
    for (int i = 0; i < 2; i++) {
        float *g = grad_acc(m, s[i].dw), *gw = g;
        if (m->qksum) {
            gw = m->qksum;
            be->zero(gw, (size_t)HD * sizeof(float));
        }
        if (m->proj16)
            be->rmsnorm_bwd_b16((uint16_t *)s[i].dx, gw, (const uint16_t *)s[i].dy, (const uint16_t *)s[i].x, s[i].w,
                                s[i].rstd, s[i].rows, HD);
        else {
            be->zero(s[i].dx, N * s[i].n * sizeof(float));
            be->rmsnorm_bwd(s[i].dx, gw, s[i].dy, s[i].x, s[i].w, s[i].rstd, s[i].rows, HD);
        }
        if (m->qksum) {
            tp_reduce(m->grid, m->qksum, (size_t)HD);
            be->add(g, m->qksum, (size_t)HD);
        }
    }
}

/* whether layer l's q, k, v projections run their backward as one matmul (m->bwd_pack): the three weights, their
 * gradients and the bf16 copies the matmuls read lie one after the other (so [Wq; Wk; Wv] is one [QD + 2 KD, C]
 * matrix, and its gradient one), and the packed gradient rows fit in the MLP's gradient scratch (a->dg on: dead
 * from the gate / up projections' backward to the next layer's MLP backward; prefix sharing's gathered rows overlay
 * it too, but attention's backward is done with them when RoPE's packs) */
static bool qkv_packed(const Model *m, int l, size_t N) {
    if (!m->bwd_pack || !m->be->rope_bwd_pack_b16 || m->qk_norm) return false; /* Qwen3: its norms come between */
    size_t C = (size_t)m->C, QC = (size_t)m->NH_loc * m->HD * C, KC = (size_t)m->NKV_loc * m->HD * C;
    const LayerW *w = &m->w[l], *dw = &m->dw[l];
    const bool w16 = m->w16_fresh && m->w16;
    if (w16 ? !(m->w16[l].wk == m->w16[l].wq + QC && m->w16[l].wv == m->w16[l].wk + KC)
            : !(w->wk == w->wq + QC && w->wv == w->wk + KC))
        return false;
    if (!(dw->wk == dw->wq + QC && dw->wv == dw->wk + KC)) return false;
    size_t need = N * ((QC + 2 * KC) / C); /* bf16 elements of the packed rows */
    return (need + 1) / 2 <= mlp_grad_or_xatt_floats(m);
}

/* whether layer l's gate and up projections run their backward as one matmul (m->bwd_pack): the gated activation's
 * backward writes d/dgate and d/dup side by side (backend.h swiglu_bwd_pack_b16) over dg and du's scratch (one after
 * the other, before dh, which it reads), and the two weights, their gradients and bf16 copies lie one after the
 * other */
static bool glu_packed(const Model *m, const Acts *a, int l, size_t N) {
    if (!m->bwd_pack || !(m->gemma2 ? m->be->geglu_bwd_pack_b16 : m->be->swiglu_bwd_pack_b16)) return false;
    size_t FC = (size_t)m->FF_loc * m->C;
    const LayerW *w = &m->w[l], *dw = &m->dw[l];
    if (m->w16_fresh && m->w16 ? m->w16[l].wu != m->w16[l].wg + FC : w->wu != w->wg + FC) return false;
    return dw->wu == dw->wg + FC &&
           (size_t)((const uint16_t *)a->dh - (const uint16_t *)a->dg) >= 2 * N * (size_t)m->FF_loc;
}

/* Layer l's forward from its input t->x: everything its backward reads, and with xo its output xo. The forward
 * (xo: the next layer's input) and the recompute (xo NULL) both run this, so the two agree bit for bit. Without
 * xo it stops where the backward's needs end: at the MLP's hidden state t->h (Llama), or after the down projection
 * and its norm's statistics t->mo, t->rstdm (Gemma 2; the normalised rows go to the scratch dtmp). */
static void layer_forward(Model *m, Acts *a, const MicroBatch *mb, int l, const LayerActs *t, float *xo) {
    const Backend *be = m->be;
    const LayerW *w = &m->w[l];
    size_t N = mb->Ntok, NC = N * (size_t)m->C;
    int C = m->C, NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD, FF = m->FF_loc;
    int QD = NH * HD, KD = NKV * HD;
    AttnOpts opts;
    const AttnOpts *aopt = model_attn_opts(m, l, &opts);
    bool s16 = m->act16; /* ln1, ln2, h in bf16 storage */
    size_t R = model_stage_rows(m, N), RC = R * (size_t)C, C16 = act_floats(m, (size_t)C); /* the C-wide rows */
    norm_act(m, t->ln1, t->rstd1, t->x, w->ln1, R);
    const float *in = sp_gather(m, a->gbuf, t->ln1, R, C16); /* the whole rows (sequence parallelism) */
    hold_act(m, in, NC);
    bool p16 = m->proj16; /* q, k, v, att in autocast storage */
    model_linear_proj(m, m->qk_norm ? t->qr : t->q, in, s16, LW(m, l, wq), N, C, QD); /* Qwen3: normed below */
    model_linear_proj(m, m->qk_norm ? t->kr : t->k, in, s16, LW(m, l, wk), N, C, KD);
    model_linear_proj(m, t->v, in, s16, LW(m, l, wv), N, C, KD);
    release_act(m, in);
    if (m->qkv_bias) qkv_bias_add(m, t, w, N);
    if (m->qk_norm) { /* Qwen3: each head of q and k RMS-normalised (rows of HD), before RoPE */
        float eps = (float)m->mc.rms_norm_eps;
        if (p16) {
            be->rmsnorm_fwd_b16((uint16_t *)t->q, t->rstdq, (const uint16_t *)t->qr, w->qn, N * (size_t)NH, HD, eps);
            be->rmsnorm_fwd_b16((uint16_t *)t->k, t->rstdk, (const uint16_t *)t->kr, w->kn, N * (size_t)NKV, HD, eps);
        } else {
            be->rmsnorm_fwd(t->q, t->rstdq, t->qr, w->qn, N * (size_t)NH, HD, eps);
            be->rmsnorm_fwd(t->k, t->rstdk, t->kr, w->kn, N * (size_t)NKV, HD, eps);
        }
    }
    attention_fwd(m, a, mb, t, aopt);
    if (m->gemma2) { /* x2 = x + rmsnorm_a(att Wo^T) */
        row_parallel_norm(m, a, t->ao, t->rstda, t->x2, t->att, p16, LW(m, l, wo), w->lna, N, QD);
        be->add(t->x2, t->x, RC);
    } else row_parallel_residual(m, a, t->x2, t->x, t->att, p16, LW(m, l, wo), N, QD);
    norm_act(m, t->ln2, t->rstd2, t->x2, w->ln2, R);
    in = sp_gather(m, a->gbuf, t->ln2, R, C16);
    hold_act(m, in, NC);
    model_linear_proj(m, t->g, in, s16, LW(m, l, wg), N, C, FF);
    model_linear_proj(m, t->u, in, s16, LW(m, l, wu), N, C, FF);
    release_act(m, in);
    if (m->gemma2) { /* x_out = x2 + rmsnorm_f(h Wd^T) */
        glu_act(m, t->h, t->g, t->u, N);
        row_parallel_norm(m, a, t->mo, t->rstdm, xo ? xo : a->dtmp, t->h, s16, LW(m, l, wd), w->lnf, N, FF);
        if (xo) be->add(xo, t->x2, RC);
    } else {
        glu_act(m, t->h, t->g, t->u, N);
        if (xo) row_parallel_residual(m, a, xo, t->x2, t->h, s16, LW(m, l, wd), N, FF);
    }
}

float *model_stage_input(Model *m, int slot) { return m->acts[slot].x; }
float *model_stage_output(Model *m, int slot) { return m->acts[slot].xL; }
float *model_stage_grad(Model *m, int slot) { return m->acts[slot].dx; }

void model_forward_logprobs(Model *m, const MicroBatch *mb, SeqLogp *out) { model_forward(m, mb, 0, out); }
void model_backward(Model *m, const MicroBatch *mb, const double *dsum) { model_backward_slot(m, mb, 0, dsum); }

static void forward(Model *m, const MicroBatch *mb, int slot, SeqLogp *out, bool for_backward);
void model_forward(Model *m, const MicroBatch *mb, int slot, SeqLogp *out) { forward(m, mb, slot, out, true); }
void model_forward_only(Model *m, const MicroBatch *mb, int slot, SeqLogp *out) { forward(m, mb, slot, out, false); }

static void forward(Model *m, const MicroBatch *mb, int slot, SeqLogp *out, bool for_backward) {
    const Backend *be = m->be;
    Acts *a = &m->acts[slot];
    size_t N = mb->Ntok;
    if (m->params_sharded && m->w16_base && !m->w16_fresh) /* the matmul weights exist only as the copy */
        sd_die("model", "the bf16 weights of a model with sharded master weights are stale (model_params_allgather "
               "after the optimizer step, model_params_set_done after a load)");
    if (N > m->max_tokens)
        sd_die("model", "micro-batch has %zu tokens, more than the %zu the activations were sized for", N,
               m->max_tokens);
    if (mb->Natt > m->max_att)
        sd_die("model", "micro-batch has %zu tokens in its sequences, more than the %zu attention's rows were sized "
               "for", mb->Natt, m->max_att);
    if (m->act16 && !be->matmul_bf16_on())
        sd_die("model", "the model keeps bf16 activations (made in the bf16 mode), but the bf16 mode is off");
    check_weights16(m);
    /* the layers below write over the logits cache's region of the scratch (lmhead.c): no cached logits survive */
    m->head_cache_slot = -1;
    m->seq_max = microbatch_seq_max(mb); /* also what Mistral v0.1's window reads (model_attn_opts) */
    if (m->seq_max > m->rope_max)
        sd_die("model", "a sequence of %d tokens exceeds max_position_embeddings (%d)", m->seq_max, m->rope_max);
    int C = m->C, V = m->V_loc;
    be->upload(a->ids, mb->ids, N * sizeof(int));
    be->upload(a->pos, mb->pos, N * sizeof(int));
    be->upload(a->cu, mb->cu_seqlens, (size_t)(mb->S + 1) * sizeof(int));
    if (m->first_stage && for_backward) model_sparse_embed_ids(m, mb, slot); /* no-op with a dense gradient */
    if (mb->shared) {
        be->upload(a->xrow, mb->xrow, mb->Natt * sizeof(int));
        be->upload(a->xfirst, mb->xfirst, N * sizeof(int));
        be->upload(a->dup_tok, mb->dup_tok, (size_t)mb->ndup * sizeof(int));
        be->upload(a->dup_row, mb->dup_row, (size_t)mb->ndup * sizeof(int));
        be->upload(a->xskip, mb->skip, (size_t)mb->S * sizeof(int));
    }
    float *x = a->x; /* layer 0 input */
    size_t R = model_stage_rows(m, N), RC = R * (size_t)C; /* the C-wide rows (sequence parallelism: a block) */
    if (m->first_stage) {
        if (m->seqpar) { /* vocab-parallel embedding rows: this rank's block of their sum */
            be->embed_fwd(a->dtmp, a->ids, m->embed, N, C, m->V_off, V);
            be->copy(x, sp_reduce_scatter(m, a->dtmp, N, R), RC * sizeof(float));
        } else {
            be->embed_fwd(x, a->ids, m->embed, N, C, m->V_off, V);
            tp_reduce(m->grid, x, N * (size_t)C);
        }
        if (m->gemma2) be->scale(x, m->embed_scale, RC);
    } /* else: the previous stage's output was received into x */
    model_weights_gather_reset(m, false); /* ZeRO-3: every layer gathered again, in order (param_shard.c) */
    for (int l = 0; l < m->L_loc; l++) {
        LayerActs t = layer_acts(m, a, l, N);
        model_weights_gather(m, l);
        model_weights_prefetch(m, l + 1); /* ZeRO-3: the next layer's gather beside this one's compute */
        layer_forward(m, a, mb, l, &t, l + 1 < m->L_loc ? a->x + (size_t)(l + 1) * RC : a->xL);
    }
    if (m->L_loc == 0) be->copy(a->xL, x, RC * sizeof(float));
    if (!m->last_stage) return; /* the output xL goes to the next stage */
    /* bf16 under act16: it feeds only the LM head's matmuls, which read the whole rows */
    size_t C16 = act_floats(m, (size_t)C);
    float *xf = m->seqpar ? a->xf + (size_t)m->tp_rank * R * C16 : a->xf; /* this rank's block of the rows */
    norm_act(m, xf, a->rstdf, a->xL, m->norm, R);
    sp_gather(m, a->xf, xf, R, C16);

    model_weights_gather(m, m->L_loc); /* ZeRO-3: the head, once per weights version */
    model_head_forward(m, a, mb, slot, out); /* lmhead.c: the log-probs of the response tokens */
}

/* ---- backward ---- */

/* The backward of a norm whose input gradient the residual stream accumulates in a->dx, and (norm_out16: to16)
 * its bf16 copy into a->dq's scratch, which is dead from q, k, v's backward to the next attention's backward: the
 * dy of the o or down projection's backward that follows (linear_bwd_ex), bitwise the conversion that backward
 * made of the fp32 dx. Returns the bf16 copy, or NULL. */
static const uint16_t *norm_bwd(Model *m, Acts *a, bool to16, float *dw, const float *dy, const float *x,
                                const float *w, const float *rstd, size_t N) {
    if (!(to16 && m->norm_out16)) { /* N: the C-wide rows (sequence parallelism: this rank's block) */
        norm_gain_bwd(m, a->dx, dw, dy, x, w, rstd, N);
        return NULL;
    }
    m->be->rmsnorm_bwd_out16(a->dx, (uint16_t *)a->dq, dw, dy, x, w, rstd, N, m->C);
    return (const uint16_t *)a->dq;
}

void model_backward_slot(Model *m, const MicroBatch *mb, int slot, const double *dsum) {
    const Backend *be = m->be;
    Acts *a = &m->acts[slot];
    bool s16 = m->act16, p16 = m->proj16; /* ln1, ln2, h in bf16 storage; q, k, v, att in autocast storage */
    size_t N = mb->Ntok, M = a->M;
    int C = m->C, NH = m->NH_loc, NKV = m->NKV_loc, HD = m->HD, FF = m->FF_loc, V = m->V_loc;
    size_t QD = (size_t)NH * HD, KD = (size_t)NKV * HD, NC = N * (size_t)C;
    /* the C-wide rows: R of them from row R0 (sequence parallelism: this rank's block; else all N) */
    size_t R = model_stage_rows(m, N), RC = R * (size_t)C, R0 = m->seqpar ? (size_t)m->tp_rank * R : 0;
    size_t C16 = act_floats(m, (size_t)C);
    const uint16_t *dx16 = NULL; /* bf16(dx) from the last norm's backward (norm_bwd), or NULL */
    m->seq_max = microbatch_seq_max(mb); /* as the forward saw them (model_attn_opts) */

    model_weights_gather_reset(m, false); /* ZeRO-3: every layer gathered again, in order (param_shard.c) */
    if (m->last_stage) {
        model_weights_gather(m, m->L_loc);
        model_weights_prefetch(m, m->L_loc - 1); /* ZeRO-3: the last layer's gather beside the head's backward */
        model_grad_bucket_begin(m, GRAD_BUCKET_HEAD); /* ZeRO-2 (grad_partition.c): buckets as they complete */
        model_head_backward(m, a, mb, slot, dsum); /* lmhead.c: d/d(gathered rows) into dhs */
        /* scatter the gathered rows' gradient back to token positions (summed over TP already; under sequence
         * parallelism each rank's part, whose sum over TP each rank takes for its block by a reduce-scatter) */
        be->zero(a->dtmp, NC * sizeof(float)); /* (sequence parallelism: the reduce-scatter zeroes the rows past N) */
        if (!mb->nlp_dup) be->scatter_rows(a->dtmp, a->dhs, a->rows_dev, M, N, C);
        else { /* a row gathered twice gets both gradients (forward: rows_add) */
            size_t nd = (size_t)mb->nlp_dup, nu = M - nd;
            be->add_rows(a->dtmp, a->rows_add, a->dhs, a->rows_add + M, nu, N, M, C);
            be->add_rows(a->dtmp, a->rows_add + nu, a->dhs, a->rows_add + M + nu, nd, N, M, C);
        }
        be->zero(a->dx, RC * sizeof(float));
        const float *dxf = m->seqpar ? sp_reduce_scatter(m, a->dtmp, N, R) : a->dtmp;
        dx16 = norm_bwd(m, a, m->L_loc > 0, grad_acc(m, m->dnorm), dxf, a->xL, m->norm, a->rstdf, R);
        model_grad_bucket_end(m, GRAD_BUCKET_HEAD);
    } /* else: the next stage's d(loss)/d(output) was received into dx (fp32 only) */
    for (int l = m->L_loc - 1; l >= 0; l--) {
        const LayerW *w = &m->w[l];
        LayerW *dw = &m->dw[l];
        model_grad_bucket_begin(m, l);
        model_weights_gather(m, l); /* ZeRO-3: also what the recompute below reads */
        model_weights_prefetch(m, l - 1); /* ZeRO-3: the layer before's gather beside this one's backward */
        LayerActs t = layer_acts(m, a, l, N);
        /* recompute: the working area holds whichever layer ran last (another slot's, or layer l + 1); dx and
         * the slot's x are not touched, and dtmp (row_parallel_residual's scratch) is free between layers */
        if (layer_recomputes(m, l)) layer_forward(m, a, mb, l, &t, NULL); /* leaves h, and ln2 in nbuf, remade */
        else {
            if (m->act_rc) glu_act(m, t.h, t.g, t.u, N); /* the hidden state, for the down projection's dW */
            /* ln2, for the gate / up projections' dW (its rstd written again with the same values) */
            if (m->norm_rc) norm_act(m, t.ln2, t.rstd2, t.x2, w->ln2, R);
        }
        AttnOpts opts;
        const AttnOpts *aopt = model_attn_opts(m, l, &opts);
        /* MLP: x_out = x2 + h Wd^T (row-parallel: identity backward; under sequence parallelism the reduce-scatter's
         * backward, an all-gather of dx's rows into dtmp, free here); dx becomes d/dx2 */
        if (m->gemma2) { /* x_out = x2 + rmsnorm_f(mo), mo = h Wd^T: d/dmo into dtmp (free here) */
            be->zero(a->dtmp + R0 * C, RC * sizeof(float));
            norm_gain_bwd(m, a->dtmp + R0 * C, grad_acc(m, dw->lnf), a->dx, t.mo, w->lnf, t.rstdm, R);
            const float *dmo = sp_gather(m, a->dtmp, a->dtmp + R0 * C, R, (size_t)C);
            linear_bwd_ex(m, a->dh, p16, dw->wd, dmo, false, t.h, s16, LW(m, l, wd), N, FF, C, false);
        } else {
            const void *dy = dx16 ? (const void *)dx16 : sp_gather(m, a->dtmp, a->dx, R, (size_t)C);
            linear_bwd_ex(m, a->dh, p16, dw->wd, dy, dx16 != NULL, t.h, s16, LW(m, l, wd), N, FF, C, false);
        }
        /* the whole rows of ln2 for the gate / up projections' dW (sequence parallelism: gathered again) */
        const float *in = sp_gather(m, a->gbuf, t.ln2, R, C16);
        if (glu_packed(m, a, l, N)) { /* d/dgate, d/dup side by side: one dX and one dW matmul over [Wg; Wu] */
            uint16_t *dgu = (uint16_t *)a->dg;
            (m->gemma2 ? be->geglu_bwd_pack_b16 : be->swiglu_bwd_pack_b16)(
                dgu, (const uint16_t *)a->dh, (const uint16_t *)t.g, (const uint16_t *)t.u, N, FF);
            hold_act(m, in, NC);
            grad_beta_consume(m, dw->wu, dw->wg);
            model_linear_bwd(m, a->dtmp, dw->wg, dgu, true, in, s16, LW(m, l, wg), N, C, 2 * FF, false);
        } else {
            glu_bwd(m, a->dg, a->du, a->dh, t.g, t.u, N);
            hold_act(m, in, NC);
            model_linear_bwd(m, a->dtmp, dw->wg, a->dg, s16, in, s16, LW(m, l, wg), N, C, FF, false);
            model_linear_bwd(m, a->dtmp, dw->wu, a->du, s16, in, s16, LW(m, l, wu), N, C, FF, true);
        }
        release_act(m, in);
        /* column-parallel gate/up share their input: the sum of their d/dx over TP (sequence parallelism: this
         * rank's block of it) */
        const float *dln = a->dtmp;
        if (m->seqpar) dln = sp_reduce_scatter(m, a->dtmp, N, R);
        else tp_copy_bwd(m->grid, a->dtmp, NC);
        dx16 = norm_bwd(m, a, true, grad_acc(m, dw->ln2), dln, t.x2, w->ln2, t.rstd2, R);
        model_mlp_grads_done(m, l); /* the optimizer's update of the MLP part beside the attention's backward */
        /* attention: x2 = x + att Wo^T (Gemma 2: x + rmsnorm_a(ao), ao = att Wo^T); dx becomes d/dx */
        if (m->gemma2) {
            be->zero(a->dtmp + R0 * C, RC * sizeof(float));
            norm_gain_bwd(m, a->dtmp + R0 * C, grad_acc(m, dw->lna), a->dx, t.ao, w->lna, t.rstda, R);
            const float *dao = sp_gather(m, a->dtmp, a->dtmp + R0 * C, R, (size_t)C);
            linear_bwd_ex(m, a->datt, p16, dw->wo, dao, false, t.att, p16, LW(m, l, wo), N, (int)QD, C, false);
        } else linear_bwd_ex(m, a->datt, p16, dw->wo,
                             dx16 ? (const void *)dx16 : sp_gather(m, a->dtmp, a->dx, R, (size_t)C), dx16 != NULL,
                             t.att, p16, LW(m, l, wo), N, (int)QD, C, false);
        const bool packed = qkv_packed(m, l, N);
        attention_bwd(m, a, mb, &t, aopt, !packed);
        if (m->norm_rc) norm_act(m, t.ln1, t.rstd1, t.x, w->ln1, R); /* ln1 over ln2 in nbuf, for q, k, v's dW */
        in = sp_gather(m, a->gbuf, t.ln1, R, C16);
        hold_act(m, in, NC);
        if (packed) { /* RoPE's backward writes the three gradients side by side: one dX and one dW matmul */
            uint16_t *dqkv = (uint16_t *)a->dg; /* the MLP's gradient scratch, dead here (qkv_packed) */
            be->rope_bwd_pack_b16(dqkv, (const uint16_t *)a->dq, (const uint16_t *)a->dk, (const uint16_t *)a->dv,
                                  a->pos, m->rope_cos, m->rope_sin, N, NH, NKV, HD);
            grad_beta_consume(m, dw->wk, dw->wq);
            grad_beta_consume(m, dw->wv, dw->wq);
            model_linear_bwd(m, a->dtmp, dw->wq, dqkv, true, in, s16, LW(m, l, wq), N, C, (int)(QD + 2 * KD), false);
            if (m->qkv_bias)
                qkv_bias_grad(m, dw, dqkv, dqkv + QD, dqkv + QD + KD, (int)(QD + 2 * KD), (int)(QD + 2 * KD), true, N);
        } else if (m->qk_norm) { /* Qwen3: through the q / k norms first (d/dq, d/dk before them over datt, dq) */
            qk_norm_bwd(m, a, &t, w, dw, N);
            model_linear_bwd(m, a->dtmp, dw->wq, a->datt, p16, in, s16, LW(m, l, wq), N, C, (int)QD, false);
            model_linear_bwd(m, a->dtmp, dw->wk, a->dq, p16, in, s16, LW(m, l, wk), N, C, (int)KD, true);
            model_linear_bwd(m, a->dtmp, dw->wv, a->dv, p16, in, s16, LW(m, l, wv), N, C, (int)KD, true);
        } else {
            if (m->qkv_bias) qkv_bias_grad(m, dw, a->dq, a->dk, a->dv, (int)QD, (int)KD, p16, N);
            model_linear_bwd(m, a->dtmp, dw->wq, a->dq, p16, in, s16, LW(m, l, wq), N, C, (int)QD, false);
            model_linear_bwd(m, a->dtmp, dw->wk, a->dk, p16, in, s16, LW(m, l, wk), N, C, (int)KD, true);
            model_linear_bwd(m, a->dtmp, dw->wv, a->dv, p16, in, s16, LW(m, l, wv), N, C, (int)KD, true);
        }
        release_act(m, in);
        /* column-parallel q/k/v share their input (as gate / up above) */
        dln = a->dtmp;
        if (m->seqpar) dln = sp_reduce_scatter(m, a->dtmp, N, R);
        else tp_copy_bwd(m->grid, a->dtmp, NC);
        /* layer 0's d/dx goes to the embedding (or the previous stage) in fp32 only */
        dx16 = norm_bwd(m, a, l > 0, grad_acc(m, dw->ln1), dln, t.x, w->ln1, t.rstd1, R);
        model_grad_bucket_end(m, l);
    }
    if (!m->first_stage) return;
    /* Gemma 2's x = embed * sqrt(C): d/d(embed) = sqrt(C) d/dx (dx is not needed after this on the first stage) */
    if (m->gemma2) be->scale(a->dx, m->embed_scale, RC);
    /* every token's row (sequence parallelism: the reduce-scatter's backward, an all-gather into dtmp) */
    const float *demb = sp_gather(m, a->dtmp, a->dx, R, (size_t)C);
    if (m->sp.grad) /* embed_grad.c: the ids renamed to the step's rows, in the same order */
        be->embed_bwd(grad_acc(m, m->dembed), demb, m->sp.ids + (size_t)slot * m->max_tokens, N, C, 0,
                      (int)m->sp.held);
    else {
        model_grad_bucket_begin(m, GRAD_BUCKET_EMBED); /* untied (a tied one stays whole for the step) */
        be->embed_bwd(grad_acc(m, m->dembed), demb, a->ids, N, C, m->V_off, V);
        model_grad_bucket_end(m, GRAD_BUCKET_EMBED);
    }
}
