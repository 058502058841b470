/* lmhead.c — the LM head over the rows that predict a response token, and their log-probs: Megatron-Core's
 * vocab-parallel cross-entropy in chunks of rows.
 *
 * Only positions that predict a response token reach the LM head: their final normed rows are gathered (under
 * prefix sharing a prompt's last token twice, once per response), the logits are formed in chunks of rows (~1 GiB
 * were they fp32: model_lmhead_chunk_rows) and each chunk is reduced at once to (max, sum exp, target logit, and
 * for the metrics the sum of the row's logits) over this rank's vocabulary slice; tp_vocab_combine joins the slices
 * of the TP group, so the full logits never exist
 * on any rank (bf16 logits, autocast storage: chunks of twice the rows, the same bytes). The backward forms each
 * chunk's logits again (unless the logits cache, train.lmhead_cache, kept them
 * from the forward: all rows, or the first whole chunks), turns them into d(logits) in place and pushes those into
 * the gathered rows and the head weight. A whole cache is one chunk of all the rows (model_head_one_chunk).
 */
#include <math.h>
#include <stdlib.h>
#include "model_internal.h"
#include "tp.h"
#include "util.h"

size_t model_lmhead_chunk_rows(int V_loc, bool logits16) {
    /* ~1 GiB of logits per chunk: thousands of rows at a 128k vocabulary, so each chunk is one efficient GEMM
     * (16 MiB chunks were 32 rows that re-read the whole head weight 384 times per 1b micro-batch); bf16 logits
     * (head16) twice the rows of fp32 ones: the same bytes, and half the chunks, each of which reads and writes the
     * head's fp32 weight gradient once more (dW += dlogits^T hs: 2.1 GB each way on 8b-4l, ~0.6 ms) */
    const char *e = getenv("SIMPO_LMHEAD_CHUNK_ROWS"); /* tests: several chunks on a tiny vocabulary */
    if (e && *e) {
        char *end;
        long r = strtol(e, &end, 10);
        if (*end || r < 1) sd_die("model", "SIMPO_LMHEAD_CHUNK_ROWS=%s: expected a positive integer", e);
        return (size_t)r;
    }
    size_t r = ((size_t)1 << (logits16 ? 29 : 28)) / (size_t)V_loc / 16 * 16; /* whole 16-row blocks: aligned views */
    return r < 16 ? 16 : r;
}

size_t model_lmhead_rows_per_chunk(size_t lp_rows, int V_loc, bool logits16) {
    size_t rows = model_lmhead_chunk_rows(V_loc, logits16), N = model_arena_tokens(lp_rows);
    return rows < N ? rows : N; /* never more rows than a micro-batch has log-probs */
}
/* A whole cache that is the logits' only home (no soft-cap's working copy, no bf16 d(logits) buffer: the logits
 * become d(logits) in place) is one chunk of all the rows: the forward forms them in one GEMM, and the backward
 * pushes them into the head weight in one dW GEMM that writes the fp32 gradient once, where chunks would read and
 * write it again per chunk (2.1 GB each way on 8b-4l, 1.05 GB on 1b). Bitwise the run without the cache in chunks
 * of as many rows (SIMPO_LMHEAD_CHUNK_ROWS). */
bool model_head_one_chunk(const Model *m) {
    return model_head_cache_full(m) && !model_head_capped(m) && !model_head_dlog16(m);
}
size_t model_head_chunk(const Model *m) {
    return model_head_one_chunk(m) ? m->max_lp : model_lmhead_rows_per_chunk(m->max_lp, m->V_loc, m->head16);
}

size_t model_head_cache_rows(size_t max_tokens, size_t lp_rows, int V_loc, bool logits16, size_t want) {
    size_t all = model_arena_tokens(lp_rows ? lp_rows : max_tokens);
    if (!want || want >= all) return all;
    size_t R = model_lmhead_rows_per_chunk(lp_rows ? lp_rows : max_tokens, V_loc, logits16);
    return want / R * R;
}

bool model_head_capped(const Model *m) { return m->gemma2 && m->mc.final_logit_softcapping > 0; }
/* the head's d(logits) in a bf16 buffer of its own (xent_bwd16): act16, unless the soft-cap's backward follows
 * xent_bwd or the logits are bf16 themselves (head16: d(logits) in place) */
bool model_head_dlog16(const Model *m) { return m->act16 && !model_head_capped(m) && !m->head16; }
/* the logits cache holds every row a micro-batch of the model's sizes can have (m->max_lp): every chunk's logits go
 * to the cache, so (without the soft-cap's working copy) the chunk needs no logits buffer of its own */
bool model_head_cache_full(const Model *m) { return m->head_cache_rows && m->head_cache_rows >= m->max_lp; }
/* floats of the logits cache: head_cache_rows x V_loc, fp32 or bf16 (head16: half the floats, rounded up) */
size_t model_head_cache_floats(const Model *m) {
    size_t n = m->head_cache_rows * (size_t)m->V_loc;
    return m->head16 ? (n + 1) / 2 : n;
}
/* floats of the LM head's chunk buffers (last stage): logits [R, V] (bf16 under head16: half the floats, rounded
 * up; none under a full cache without the soft-cap), mx, se, tgt, gchunk [R], and Gemma 2's pre-cap logits [R, V] or
 * the bf16 d(logits) [R, V] */
size_t model_head_floats(const Model *m) {
    size_t V = (size_t)m->V_loc, R = model_head_chunk(m);
    bool own = !model_head_cache_full(m) || model_head_capped(m);
    return m->last_stage ? (own ? (m->head16 ? (R * V + 1) / 2 : R * V) : 0) + 4 * R +
                               (model_head_capped(m) ? R * V : 0) + (model_head_dlog16(m) ? (R * V + 1) / 2 : 0)
                         : 0;
}
/* floats of the LM head's region of the shared scratch, laid over the layers' gradient scratch: the logits cache,
 * then the chunk buffers. The cache lives only from a slot's head forward to its head backward, when no layer runs
 * (the last stage runs each micro-batch's backward right after its forward), so it shares the layers' scratch as
 * the chunk buffers do: up to that scratch's size it costs no memory. */
size_t model_head_region_floats(const Model *m) {
    return m->last_stage ? model_head_cache_floats(m) + model_head_floats(m) : 0;
}

void model_enable_head_cache(Model *m, size_t rows) {
    if (!m->last_stage || m->head_cache) return;
    /* m->max_tokens and m->max_lp are arena counts already, which model_arena_tokens keeps */
    rows = model_head_cache_rows(m->max_tokens, m->max_lp, m->V_loc, m->head16, rows);
    if (!rows) return;
    m->head_cache_rows = rows;
    m->head_cache_slot = -1;
    model_alloc_scratch(m); /* the shared scratch again, with the cache's region (model_point_shared sets it) */
}

/* the LM head's weight as its matmuls read it */
static Wt head_wt(const Model *m) { return (Wt){m->lm_head, m->w16_fresh ? m->lm_head16 : NULL}; }

void model_head_forward(Model *m, Acts *a, const MicroBatch *mb, int slot, SeqLogp *out) {
    const Backend *be = m->be;
    size_t N = mb->Ntok;
    int C = m->C, V = m->V_loc;
    bool s16 = m->act16; /* the final normed rows and the gathered ones in bf16 storage */
    size_t C16 = act_floats(m, (size_t)C);
    /* gather the rows that predict a response token (pairs.h: under prefix sharing a prompt's last token twice) */
    size_t M = mb->M;
    if (M > m->max_lp) /* the chunks and the logits cache are sized for at most that many */
        sd_die("model", "micro-batch has %zu log-prob rows, more than the %zu the LM head was sized for "
               "(ModelOpts.max_lp_rows)", M, m->max_lp);
    for (size_t r = 0; r < M; r++)
        if (mb->lp_tgt[r] >= m->V) sd_die("model", "target token %d is outside the vocabulary (%d)", mb->lp_tgt[r], m->V);
    a->M = M;
    be->upload(a->tg, mb->lp_tgt, M * sizeof(int));
    be->upload(a->rows_dev, mb->lp_tok, M * sizeof(int));
    if (mb->nlp_dup) { /* the backward's scatter as two add_rows of distinct rows: those first seen, then repeats */
        int *ra = sd_alloc(2 * M * sizeof(int), "gathered rows");
        size_t nu = 0, nd = M - (size_t)mb->nlp_dup;
        for (size_t r = 0, j = 0; r < M; r++) {
            bool rep = j < (size_t)mb->nlp_dup && (size_t)mb->lp_dup[j] == r;
            size_t at = rep ? nd++ : nu++;
            j += rep;
            ra[at] = mb->lp_tok[r];
            ra[M + at] = (int)r;
        }
        be->upload(a->rows_add, ra, 2 * M * sizeof(int));
        free(ra);
    }
    be->gather_rows(a->hs, a->xf, a->rows_dev, M, N, (int)act_floats(m, (size_t)C)); /* bf16 rows as floats */

    /* vocab-parallel log-probs: each rank's slice gives (max, sum exp, target logit, logit sum); tp_vocab_combine
     * joins them. The logit sums go to a->gchunk, which the backward alone uses (for the chunk's d(loss)/d(logp)). */
    size_t R = (size_t)a->chunk, M1 = M ? M : 1;
    float *hf = sd_alloc(R * 4 * sizeof(float), "lm head stats");
    double *mx = sd_alloc(M1 * 4 * sizeof(double), "lm head stats"), *se = mx + M1, *tgt = se + M1, *ls = tgt + M1;
    Wt head = head_wt(m);
    if (!head.b) model_hold(be, m->lm_head, (size_t)V * C); /* one bf16 copy for all chunks (when there is none) */
    for (size_t r0 = 0; r0 < M; r0 += R) {
        size_t n = M - r0 < R ? M - r0 : R;
        /* the chunk's logits: into the cache (model_enable_head_cache) for the backward when the chunk lies in its
         * rows, or the chunk buffer */
        bool keep = m->head_cache && r0 + n <= m->head_cache_rows;
        if (!keep && !a->logits) sd_die("model", "LM-head chunk at row %zu outside the full logits cache", r0);
        if (m->head16) { /* bf16 logits (autocast storage) */
            uint16_t *lg16 = keep ? (uint16_t *)m->head_cache + r0 * (size_t)V : (uint16_t *)a->logits;
            model_linear_proj(m, (float *)lg16, a->hs + r0 * C16, s16, head, n, C, V);
            be->xent_stats_b16(a->mx, a->se, a->tgt, a->gchunk, lg16, a->tg + r0, n, V, m->V_off);
        } else {
            float *lg = keep ? m->head_cache + r0 * (size_t)V : a->logits;
            model_linear(be, lg, a->hs + r0 * C16, s16, head, n, C, V, false);
            if (a->logits_pre) { /* soft-capped logits for the statistics; the cache keeps them before the cap */
                if (lg != a->logits) be->copy(a->logits, lg, n * (size_t)V * sizeof(float));
                be->softcap_fwd(a->logits, n * (size_t)V, (float)m->mc.final_logit_softcapping);
                lg = a->logits;
            }
            be->xent_stats(a->mx, a->se, a->tgt, a->gchunk, lg, a->tg + r0, n, V, m->V_off);
        }
        be->download(hf, a->mx, n * sizeof(float));
        be->download(hf + R, a->se, n * sizeof(float));
        be->download(hf + 2 * R, a->tgt, n * sizeof(float));
        be->download(hf + 3 * R, a->gchunk, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            mx[r0 + i] = hf[i];
            se[r0 + i] = hf[R + i];
            tgt[r0 + i] = hf[2 * R + i];
            ls[r0 + i] = hf[3 * R + i];
        }
    }
    if (!head.b) model_release(be, m->lm_head);
    if (m->head_cache) m->head_cache_slot = slot;
    tp_vocab_combine(m->grid, mx, se, tgt, ls, M);
    for (int s = 0; s < mb->S; s++) {
        out[s].sum = out[s].logit_sum = 0.0;
        out[s].n = 0;
    }
    float *lse_host = sd_alloc((M ? M : 1) * sizeof(float), "lse");
    for (size_t r = 0; r < M; r++) {
        double lse = mx[r] + log(se[r]);
        lse_host[r] = (float)lse;
        int s = mb->lp_seq[r];
        out[s].sum += tgt[r] - lse;
        out[s].logit_sum += ls[r];
        out[s].n++;
    }
    be->upload(a->lse_row, lse_host, M * sizeof(float));
    free(lse_host);
    free(mx);
    free(hf);
}

void model_head_backward(Model *m, Acts *a, const MicroBatch *mb, int slot, const double *dsum) {
    const Backend *be = m->be;
    bool s16 = m->act16; /* the gathered rows hs in bf16 storage */
    size_t C16 = act_floats(m, (size_t)m->C), M = a->M, R = (size_t)a->chunk;
    int C = m->C, V = m->V_loc;
    /* LM head: each chunk's logits (recomputed, or from the logits cache), turned into d(logits), pushed into hs
     * and the head weight */
    float *gh = sd_alloc(R * sizeof(float), "lm head grads");
    bool slot_cached = m->head_cache && m->head_cache_slot == slot; /* this slot's logits, from its forward */
    Wt head = head_wt(m);
    if (!head.b) model_hold(be, m->lm_head, (size_t)V * C);
    for (size_t r0 = 0; r0 < M; r0 += R) {
        size_t n = M - r0 < R ? M - r0 : R;
        for (size_t i = 0; i < n; i++) gh[i] = (float)dsum[mb->lp_seq[r0 + i]];
        be->upload(a->gchunk, gh, n * sizeof(float));
        /* the chunk's logits (before any soft-cap): cached by the forward (the chunks in the cache's rows), or
         * recomputed */
        bool cached = slot_cached && r0 + n <= m->head_cache_rows;
        /* a chunk recomputed: into its rows of the cache where it has them (free now: the cache holds another
         * slot's logits or none, and is invalidated below), else the chunk buffer */
        bool home = m->head_cache && r0 + n <= m->head_cache_rows;
        if (!home && !a->logits) sd_die("model", "LM-head chunk at row %zu outside the full logits cache", r0);
        bool in_cache = cached || (home && !a->logits); /* where the chunk's logits are, or go */
        const void *dlog; /* d(logits): fp32 in place, bf16 in place (head16), or bf16 storage in dlog16 */
        bool dlog_b16 = m->head16 || a->dlog16;
        if (m->head16) { /* bf16 logits, turned into bf16 d(logits) in place */
            uint16_t *lg16 = in_cache ? (uint16_t *)m->head_cache + r0 * (size_t)V : (uint16_t *)a->logits;
            if (!cached) model_linear_proj(m, (float *)lg16, a->hs + r0 * C16, s16, head, n, C, V);
            be->xent_bwd_b16(lg16, a->lse_row + r0, a->gchunk, a->tg + r0, n, V, m->V_off);
            dlog = lg16;
        } else {
            float *lg = in_cache ? m->head_cache + r0 * (size_t)V : a->logits;
            if (!cached) model_linear(be, lg, a->hs + r0 * C16, s16, head, n, C, V, false);
            dlog = lg;
            if (a->logits_pre) { /* final soft-capping: the gradient through cap * tanh(logits / cap) */
                float cap = (float)m->mc.final_logit_softcapping;
                const float *pre = cached ? lg : a->logits_pre; /* the logits before the cap */
                if (!cached) be->copy(a->logits_pre, lg, n * (size_t)V * sizeof(float));
                else be->copy(a->logits, lg, n * (size_t)V * sizeof(float));
                be->softcap_fwd(a->logits, n * (size_t)V, cap);
                be->xent_bwd(a->logits, a->lse_row + r0, a->gchunk, a->tg + r0, n, V, m->V_off);
                be->softcap_bwd(a->logits, pre, n * (size_t)V, cap);
                dlog = a->logits;
            } else if (a->dlog16) {
                be->xent_bwd16((uint16_t *)a->dlog16, lg, a->lse_row + r0, a->gchunk, a->tg + r0, n, V, m->V_off);
                dlog = a->dlog16;
            } else be->xent_bwd(lg, a->lse_row + r0, a->gchunk, a->tg + r0, n, V, m->V_off);
        }
        model_linear_bwd(m, a->dhs + r0 * C, m->dlm_head, dlog, dlog_b16, a->hs + r0 * C16, s16, head, n, C, V, false);
    }
    if (!head.b) model_release(be, m->lm_head);
    /* used (and overwritten in place, except under soft-capping), or overwritten by a recompute; and the layers'
     * backward that follows writes over the cache's region (model_head_region_floats) */
    m->head_cache_slot = -1;
    free(gh);
    /* hs fed every rank's vocab slice: the sum over TP (under sequence parallelism the caller reduce-scatters the
     * rows instead, model.c: the all-gather's backward) */
    if (!m->seqpar) tp_copy_bwd(m->grid, a->dhs, M * (size_t)C);
}
