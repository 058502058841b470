/* model_internal.h — what model.c, lmhead.c, embed_grad.c and grad_partition.c share and nothing else includes: the activation slot (Acts) and
 * the matmul helpers over the backend. Not part of the model's interface (model.h).
 *
 * defines: LayerStore, Acts, Wt, act_floats, model_hold, model_release, model_linear, model_linear_proj,
 *          model_linear_bwd, model_head_capped, model_head_dlog16, model_head_chunk, model_head_one_chunk,
 *          model_head_floats,
 *          model_head_forward, model_head_backward, model_repoint_grads, model_sparse_embed_ids,
 *          model_sparse_embed_free, model_set_grad_view, GRAD_BUCKET_HEAD, GRAD_BUCKET_EMBED, model_partition_init,
 *          model_partition_views, model_partition_offset, model_grad_bucket_begin, model_grad_bucket_end,
 *          model_grad_bucket_range, model_grads_done, model_mlp_grads_done, model_partition_free, model_alloc_shard, model_set_param_view, model_shard_params_init.
 * Ownership: the Model owns every Acts (model.h m->acts) and the memory its views point into.
 */
#ifndef SD_MODEL_INTERNAL_H
#define SD_MODEL_INTERNAL_H
#include "model.h"

/* A layer's intermediates besides its input, [n][...] for n layers: what recompute drops (LayerActs below is
 * one layer's views). ao, rstda, mo, rstdm: Gemma 2 only (else NULL), the attention and MLP outputs before their
 * norms [R,C], the norms' rstd [R]. Under act16 ln1, ln2 and h point at bf16 data. Those of the C-wide rows
 * (rstd1, ln1, x2, rstd2, ln2 and Gemma 2's four) hold R rows per micro-batch (Acts below), the rest N. */
typedef struct LayerStore {
    float *rstd1, *ln1, *q, *k, *v, *att, *lse, *x2, *rstd2, *ln2, *g, *u, *h, *ao, *rstda, *mo, *rstdm;
    float *qr, *kr, *rstdq, *rstdk; /* Qwen3: q, k before their per-head norms, the norms' rstd (NULL otherwise) */
} LayerStore;

/* The activations of one micro-batch (slot) and the views of the rank's shared scratch. Per slot (a->base, one
 * backend allocation per slot, sized for max_tokens; shapes per layer) is only what lives from the micro-batch's
 * forward to its backward, or what the pipeline sends and receives around them: the layer inputs x, the
 * intermediates of the layers that do not recompute (saved, [L_loc - recompute_layers][...]), the stage output
 * xL, the stage gradient dx (one buffer with xL on a stage before the last), the backend index arrays ids/pos/cu,
 * and on the last stage the final norm's rstdf, the gathered rows hs, their log-sum-exp lse_row and the gathered
 * rows' indices (rows, rows_dev, tg). Shared by every slot of the rank (views of m->scratch; and under recompute
 * the recomputing layers' intermediates, one layer deep, views of m->work: rerun): what is live only inside one
 * model_forward or one model_backward_slot call, since a rank runs one of them at a time: dtmp (the forward's
 * row-parallel partial sums and Gemma 2's rerun output too), the backward's layer scratch, and on the last stage
 * the normed final rows xf, the LM-head chunk and dhs. */
typedef struct Acts {
    float *base;                                /* the slot's allocation; the views below that are per slot */
    float *x;                                   /* [L][R,C] layer inputs: what a recompute reruns a layer from. R
                                                 * (here and below): the micro-batch's rows of a C-wide activation
                                                 * on this rank, N, or ceil(N / tp) under sequence parallelism
                                                 * (model_stage_rows); N: its tokens */
    LayerStore saved;                           /* per slot: layers recompute_layers .. L_loc - 1 */
    LayerStore rerun;                           /* shared (m->work): the layer being recomputed; NULL views without */
    float *xL, *dx;                             /* per slot: stage output [R,C]; d(loss)/d(residual) [R,C], what the
                                                 * pipeline receives before and sends after the backward; the same
                                                 * buffer on a stage before the last (model.h, model_stage_grad) */
    float *rstdf, *hs, *lse_row;                /* per slot, last stage (else NULL): the final norm's rstd [R], the
                                                 * gathered rows [M,C], their log-sum-exp [M] */
    float *xf;                                  /* shared, last stage: the final normed rows [N,C] (forward only) */
    float *logits, *mx, *se, *tgt, *gchunk;     /* shared, last stage: LM head chunk [R,V], [R] x4 */
    float *logits_pre;                          /* shared, final logit soft-capping (last stage): the chunk's logits
                                                 * before the cap [R,V], for the backward; else NULL */
    float *dlog16;                              /* shared, last stage, act16 without soft-capping: the chunk's
                                                 * d(logits) as bf16 [R,V] (xent_bwd16); else NULL */
    float *dtmp, *dq, *dk, *dv, *datt, *dg, *du, *dh; /* shared: backward scratch (dtmp also the forward's) */
    float *dhs;                                 /* shared, last stage: d/d(gathered rows) [M,C] */
    float *hbuf;                                /* shared, train.recompute_activation (act_rc): the MLP's hidden
                                                 * state of the layer being run [N,FF] (bf16 under act16); else
                                                 * NULL */
    float *nbuf;                                /* shared, train.recompute_norm (norm_rc): ln1, then ln2, of the
                                                 * layer being run [R,C] (bf16 under act16); else NULL */
    float *gbuf;                                /* shared, sequence parallelism (m->seqpar): the all-gathered
                                                 * rows of ln1 or ln2 (or of the final norm) the projections read
                                                 * [N,C] (bf16 under act16); else NULL */
    /* shared, over dg, du, dh: attention's rows under prefix sharing while attention runs, forward or backward
     * (pairs.h MicroBatch: Natt rows; q, k, v, att, dq, dk, dv in autocast storage like the layers' copies; xlse
     * [Natt,NH]; xdatt as datt: bf16 under proj16) */
    float *xq, *xk, *xv, *xatt, *xlse, *xdatt, *xdq, *xdk, *xdv;
    int *ids, *pos, *cu;                        /* per slot: backend copies of the batch's index arrays */
    int *xrow, *xfirst, *dup_tok, *dup_row;     /* per slot: backend copies of the batch's prefix-sharing maps */
    int *xskip;                                 /* (and its skip), one allocation from xrow */
    int *tg;                                    /* per slot, last stage: the gathered rows' targets (backend) */
    int *rows_dev;                              /* per slot, last stage: the token of each gathered row (gather_rows /
                                                 * scatter_rows) */
    int *rows_add;                              /* per slot, last stage, a row gathered twice (prefix sharing):
                                                 * backend [2N]: the rows' positions (those first seen, then the
                                                 * repeats), then their indices among the gathered rows: the
                                                 * backward's scatter as two add_rows */
    size_t M;                                   /* gathered rows of the current micro-batch */
    int chunk;                                  /* LM-head rows per chunk */
} Acts;

/* floats per token of a matmul-only activation of width w (ln1, ln2: C; h: FF): w / 2 in bf16 storage */
static inline size_t act_floats(const Model *m, size_t w) { return m->act16 ? w / 2 : w; }

/* backend.h matmul_hold / matmul_release where the backend has them: x[n] is not written until the release, so a
 * bf16 backend converts it once for all the matmuls between */
static inline void model_hold(const Backend *be, const float *x, size_t n) {
    if (be->matmul_hold) be->matmul_hold(x, n);
}
static inline void model_release(const Backend *be, const float *x) {
    if (be->matmul_release) be->matmul_release(x);
}

/* A weight as the matmuls read it: the fp32 parameter f, and its bf16 compute copy b while that is fresh (model.h
 * model_enable_weights16; else NULL: the matmul rounds f itself, to the same values). */
typedef struct { const float *f; const uint16_t *b; } Wt;

/* model.c. y[N,out] = x[N,in] W[out,in]^T (+ y when acc); x16: x is bf16 storage (backend.h matmul16), else fp32 */
void model_linear(const Backend *be, float *y, const void *x, bool x16, Wt W, size_t N, int in, int out, bool acc);
/* the projections whose outputs feed elementwise ops or attention (q, k, v, gate, up) and the LM head's logits,
 * y[N,out] = x W^T: into bf16 storage under proj16 (matmul16_out16), else model_linear */
void model_linear_proj(const Model *m, float *y, const void *x, bool x16, Wt W, size_t N, int in, int out);
/* backward of y = x W^T: dx (+ dx when acc_dx) = dy W, dW += dy^T x (the first time in a step dW = dy^T x); x16 as
 * in model_linear, dy16: dy is bf16 storage too */
void model_linear_bwd(Model *m, float *dx, float *dW, const void *dy, bool dy16, const void *x, bool x16, Wt W,
                      size_t N, int in, int out, bool acc_dx);

/* lmhead.c: the LM head and the log-probs of the response tokens (vocab-parallel, in chunks of rows). */
/* Gemma 2's final logit soft-cap: the head works on fp32 logits */
bool model_head_capped(const Model *m);
/* the head's d(logits) in a bf16 buffer of its own (xent_bwd16) */
bool model_head_dlog16(const Model *m);
/* rows per chunk of m (model_lmhead_rows_per_chunk of its sizes), or all of them (m->max_lp) when a whole logits
 * cache holds them and the chunk has no buffer of its own (model_head_one_chunk) */
size_t model_head_chunk(const Model *m);
bool model_head_one_chunk(const Model *m);
/* floats of the head's chunk buffers in the shared scratch (last stage; else 0), as alloc_acts carves them */
size_t model_head_floats(const Model *m);
/* After the final norm wrote the normed rows a->xf: gathers the rows that predict a response token into a->hs, forms
 * their logits chunk by chunk (into the logits cache where it holds them), reduces them to log-probs over the
 * vocabulary slices of the TP group, writes out[s] (sum and count per sequence) and keeps each row's log-sum-exp
 * (a->lse_row) for the backward. */
void model_head_forward(Model *m, Acts *a, const MicroBatch *mb, int slot, SeqLogp *out);
/* d(loss)/d(gathered rows) into a->dhs (reduced over the TP group, whose vocabulary slices all read them) and the
 * head's weight gradient, from dsum[s] = d(loss)/d(sum of sequence s's log-probs); each chunk's logits from the
 * cache (model_enable_head_cache) where its forward left them, else recomputed. */
void model_head_backward(Model *m, Acts *a, const MicroBatch *mb, int slot, const double *dsum);
/* The shared scratch (m->scratch) made again for the model's current sizes (its contents are dead between calls) and
 * every slot's views of it: model.c at creation, lmhead.c when the logits cache joins it. */
void model_alloc_scratch(Model *m);
void model_point_shared(Model *m, Acts *a);
/* lmhead.c: the logits cache's place in the shared scratch (model_head_region_floats) */
bool model_head_cache_full(const Model *m);
size_t model_head_cache_floats(const Model *m);
size_t model_head_region_floats(const Model *m);
/* embed_grad.c's parts of the model's life: the gradient views again after m->grads moved (model.c), the slot's ids
 * as the step's rows (model_forward), and freeing (model_free) */
void model_repoint_grads(Model *m);
void model_sparse_embed_ids(Model *m, const MicroBatch *mb, int slot);
void model_sparse_embed_free(Model *m);
/* model.c: the gradient view of spec i (its field among m->dw, dembed, dnorm, dlm_head) to t */
void model_set_grad_view(Model *m, int i, float *t);
/* grad_partition.c (model.h GradPartition). The buckets besides the layers (0 .. L_loc - 1, local): the final norm
 * with an untied LM head, and an untied embedding. */
enum { GRAD_BUCKET_HEAD = -1, GRAD_BUCKET_EMBED = -2 };
/* at model creation: this rank's shard of the gradient (m->grads), the bucket, the resident tied gradient, views */
void model_partition_init(Model *m, int shards, int shard, int buffers);
void model_partition_views(Model *m);
/* the flat element a gradient view into the bucket (as it stands now) or the resident gradient stands for */
size_t model_partition_offset(const Model *m, const float *dW);
/* around the backward's writes of bucket b (a layer, GRAD_BUCKET_HEAD or GRAD_BUCKET_EMBED): begin points the bucket
 * at it (its first writes overwrite); end zeroes what nothing wrote and hands it to the sink. No-ops unless
 * partitioned, or when this stage has no such bucket. */
void model_grad_bucket_begin(Model *m, int b);
void model_grad_bucket_end(Model *m, int b);
/* the flat range [*start, *start + *n) of bucket b; false when this stage has no such bucket */
bool model_grad_bucket_range(const Model *m, int b, size_t *start, size_t *n);
/* model.c: unpartitioned, after the backward's writes of bucket b: what nothing wrote zeroed, then GradDone, when
 * armed (no-op otherwise); for a layer whose MLP part went before (model_mlp_grads_done), the rest of it */
void model_grads_done(Model *m, int b);
/* model.c: layer l's MLP part (its range from the second norm to the layer's end: ln2, the gate, up and down
 * projections, Gemma 2's post-feedforward norm) once the layer's backward is past it; the same conditions */
void model_mlp_grads_done(Model *m, int l);
void model_partition_free(Model *m);
/* model.c: shard `shard` of `shards` of the flat buffers (nalloc elements, a multiple of shards): its flat range
 * [*from, *to) and a zeroed backend allocation of its floats (the caller owns it); dies on a bad cut */
float *model_alloc_shard(Model *m, int shards, int shard, size_t *from, size_t *to, const char *what);
/* model.c: the fp32 parameter view of spec i (its field among m->w, embed, norm, lm_head) to t */
void model_set_param_view(Model *m, int i, float *t);
/* param_shard.c (model.h params_sharded), at model creation after act16 is known: this rank's shard of the fp32
 * parameters, the fp32-read parameters whole (prep), their views, the bf16 copy */
void model_shard_params_init(Model *m, int shards, int shard);
/* param_shard.c, from model_enable_weights16 under ZeRO-3 (zero3, the positions w16_at made): this rank's part
 * of the bf16 copy, the layers' and the head's ranges, the gather buffers */
void model_shard_weights_init(Model *m);
/* model.c: the bf16 view of spec i (its field among m->w16, lm_head16) to v (no-op for a spec without one) */
void model_set_weights16_view(Model *m, int i, uint16_t *v);
#endif
