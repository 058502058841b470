/* model.h — the Llama-family and Gemma 2 decoder: parameter table, weights, forward and backward over a packed
 * batch.
 *
 * defines: SplitKind, ParamSpec, Model, model_create, model_create_ex, model_create_inference, model_free,
 *          model_init_random, model_load_hf, model_export_hf_from, model_param_table, model_forward_logprobs, model_backward, model_param, SeqLogp,
 *          model_attn_opts, model_lmhead_chunk_rows, model_arena_tokens, LayerW16, model_enable_weights16,
 *          model_refresh_weights16, model_weights_changed, model_weights16_at, model_weights16_written,
 *          model_weights_gather, model_weights_gather_reset, model_forward_gathers,
 *          model_enable_head_cache, model_grad_sumsq, model_grad_sumsq_ranges, model_grads_begin,
 *          model_grads_end, MODEL_RECOMPUTE_ALL, SparseEmbedGrad, model_enable_sparse_embed,
 *          model_sparse_embed_rows, model_sparse_embed_begin, model_sparse_embed_allreduce, model_grad_at, model_grad_range, GradSink,
 *          GradPartition, model_set_grad_sink, model_grads_reduce_resident, model_grad_units, GradDone, model_set_grad_done,
 *          model_arm_grad_done, model_param_at, model_param_set,
 *          model_params_set_done, model_param_max_numel, model_params_held, model_params_to_host,
 *          model_params_allgather.
 * One table (ParamSpec, built from the ModelConfig) describes every parameter: HF name, global shape, how it is
 * split under tensor parallelism, whether weight decay applies, and where its local slice lives in the flat
 * buffers. Allocation, init, HF import/export, checkpoints and the optimizer all iterate that table.
 * Ownership: Model owns params, grads (flat, backend memory), the activation slots, the shared activation scratch
 * (which holds the LM-head logits cache, model_enable_head_cache), the recompute working area, the rope tables, the
 * bf16 weight copy (model_enable_weights16), the sparse embedding gradient (model_enable_sparse_embed) and, under
 * ZeRO-2's gradient partitioning, the gradient bucket and the resident tied gradient (GradPartition);
 * model_create allocates all but the bf16 copy and the sparse gradient, and model_free releases them all.
 * Pointers returned by model_param are views.
 * Units: element counts (size_t) unless a name says bytes; shapes are global unless suffixed _loc.
 * Gemma 2 RMSNorm gains: HF stores w and normalises with (1 + w); the model (params, gradients, optimizer state,
 * HDF5 checkpoints) holds the gain g = 1 + w, so the RMSNorm kernels are Llama's. model_load_hf adds 1 and
 * model_export_hf subtracts 1; random init sets g = 1 (HF's w = 0). d/dg = d/dw, so gradients need no change.
 */
#ifndef SD_MODEL_H
#define SD_MODEL_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"
#include "model_config.h"
#include "pairs.h"

struct ProcessGrid;

typedef enum { SPLIT_REPL = 0, SPLIT_COL, SPLIT_ROW, SPLIT_VOCAB } SplitKind;

/* P_LN1: input_layernorm (before attention). P_LN2: the norm before the MLP (Llama's post_attention_layernorm,
 * Gemma 2's pre_feedforward_layernorm). Gemma 2 only: P_LNA its post_attention_layernorm (on the attention output,
 * before the residual add), P_LNF post_feedforward_layernorm (on the MLP output, before the residual add). Qwen2
 * only: P_BQ, P_BK, P_BV the q, k, v projections' biases (1-D, split under tensor parallelism as their weights' rows;
 * no weight decay, as transformers' Trainer excludes biases). Qwen3 only: P_QN, P_KN the gains of q_norm and k_norm
 * (head_dim each, shared by every head: replicated under tensor parallelism, their gradient summed over it). */
typedef enum {
    P_EMBED = 0, P_LN1, P_WQ, P_WK, P_WV, P_WO, P_LN2, P_WG, P_WU, P_WD, P_NORM, P_LMHEAD, P_LNA, P_LNF, P_BQ, P_BK,
    P_BV, P_QN, P_KN
} ParamRole;
/* true for the RMSNorm gains (no weight decay; Gemma 2 stores them as offsets from 1 in HF files) */
static inline bool param_role_is_gain(ParamRole r) {
    return r == P_LN1 || r == P_LN2 || r == P_NORM || r == P_LNA || r == P_LNF || r == P_QN || r == P_KN;
}

typedef struct {
    char name[96];           /* HF name, global layer index */
    ParamRole role;
    int layer;               /* global layer, -1 outside the stack */
    int ndim;
    int64_t shape[2];        /* global */
    int64_t shape_loc[2];    /* this rank's slice */
    int64_t off[2];          /* slice offset in the global tensor */
    SplitKind split;
    bool decay;              /* weight decay applies (not to RMSNorm gains) */
    bool mirror;             /* a copy of a tensor another pipeline stage owns (tied LM head): not saved, not
                              * counted in the grad norm; kept equal by summing gradients */
    size_t numel;            /* local elements */
    size_t offset;           /* in the flat param/grad buffers (elements) */
} ParamSpec;

/* Per-layer weight views into the flat buffers. */
/* lna, lnf: Gemma 2; bq, bk, bv: Qwen2; qn, kn: Qwen3 (NULL otherwise) */
typedef struct { float *ln1, *wq, *wk, *wv, *wo, *ln2, *wg, *wu, *wd, *lna, *lnf, *bq, *bk, *bv, *qn, *kn; } LayerW;
/* Per-layer views of the bf16 compute weights (model_enable_weights16): the matmul weights only. */
typedef struct { uint16_t *wq, *wk, *wv, *wo, *wg, *wu, *wd; } LayerW16;

/* The sparse embedding gradient (model_enable_sparse_embed): the rows of the input embedding that the step's
 * tokens select, ascending, and their gradients. Backend memory: grad [max_rows, C] (rows 0 .. held - 1 are this
 * step's), map [V_loc] (embedding row -> its row in grad, -1: none; backend.h GradRows' map), ids [nslots,
 * max_tokens] (each slot's micro-batch's ids as rows of grad, -1 outside the vocabulary slice: what embed_bwd
 * scatters by). Host: hmap (map's copy), rows [max_rows] (the embedding rows held, ascending). All owned by the
 * model. */
typedef struct SparseEmbedGrad {
    float *grad;
    int *map, *ids;
    int *hmap, *rows;
    size_t max_rows, held;
} SparseEmbedGrad;

struct Model;
/* Where a partitioned gradient goes (ModelOpts.grad_shards; the trainer's ZeRO-2): reduce(ctx, m, off, buf, n)
 * gets the flat range [off, off + n) of this rank's gradient in buf (backend memory; it may overwrite it) and adds
 * the data-parallel group's sum of that range's part in this rank's shard into m->grads (model_grad_at). With wait
 * set the sum may still be on its way when reduce returns (ModelOpts.grad_buffers 2): wait(ctx, m, buf) completes
 * what reduce started on buf, and the model calls it before it writes buf again; the caller calls it for both
 * buffers (model_grad_buffers) before it reads m->grads. */
typedef struct GradSink {
    void (*reduce)(void *ctx, struct Model *m, size_t off, float *buf, size_t n);
    void (*wait)(void *ctx, struct Model *m, const float *buf);
    void *ctx;
} GradSink;

/* Where a gradient bucket goes the moment the armed backward (model_arm_grad_done) has completed it: the
 * optimizer's update inside the backward (optim.h optim_overlap_begin). done(ctx, m, off, n) gets the flat range
 * [off, off + n) of a bucket (a layer, the final norm with an untied LM head, a dense untied embedding: the
 * GradPartition buckets), or of a layer's MLP part (its second norm and projections, complete when the layer's
 * backward reaches the attention) and then of the rest of that layer, whose gradient is final for the step (what
 * nothing wrote zeroed first) and whose parameters no later op of the step reads. Never called for a partitioned gradient. ctx is the caller's (the
 * model does not own it); {0} (model_set_grad_done) removes the callbacks. */
typedef struct GradDone {
    void (*done)(void *ctx, struct Model *m, size_t off, size_t n);
    void *ctx;
    /* optional: the step's sparse embedding rows are known (model_sparse_embed_begin, before the step's forwards;
     * armed or not): the rows outside them have gradient zero for the step and no op of the step reads them (the
     * embedding is untied), so their update may run from here on */
    void (*rows_known)(void *ctx, struct Model *m);
} GradDone;

/* ZeRO-2's gradient partitioning (ModelOpts.grad_shards > 1; grad_partition.c), as DeepSpeed's stage 2 holds
 * gradients: m->grads holds only this rank's shard of the flat gradient, [grads_from, grads_to). The backward of
 * each micro-batch writes one bucket at a time into `bucket` and hands it to the sink as soon as it is complete: a
 * layer (after its backward), the final norm with an untied LM head (after the head's backward), an untied
 * embedding (after its scatter). A tied embedding's gradient is written by the head and by the embedding's
 * backward, and on two stages the pipeline sums its copies after the step (train_step.h step_sync_tied_grads): it
 * stays whole in `resident` for the step and goes to the sink in model_grads_reduce_resident. Backend memory owned
 * by the model: buf[0] and buf[1] (or NULL) [bucket_cap] (the largest bucket), resident [its spec's numel] (or
 * NULL). */
typedef struct GradPartition {
    float *bucket, *resident;
    float *buf[2];       /* the bucket buffers: buf[1] NULL with one (ModelOpts.grad_buffers); `bucket` is the one
                          * being written, the buckets take them in turn */
    int next;            /* the buffer the next bucket takes */
    size_t bucket_cap;   /* elements */
    size_t bucket_off;   /* the flat element bucket[0] stands for, while a bucket is being written */
    int resident_spec;   /* the spec whose gradient is `resident`; -1: none */
    GradSink sink;
} GradPartition;

typedef struct Model {
    ModelConfig mc;
    const Backend *be;
    int C, NH, NKV, HD, FF, V, L;        /* global sizes */
    struct ProcessGrid *grid;            /* tensor-parallel group (NULL: one rank); not owned */
    int tp, tp_rank;
    int NH_loc, NKV_loc, FF_loc, V_loc, V_off; /* this TP rank's heads, MLP width and vocabulary slice */
    int pp, pp_rank, L_loc, L_off;       /* pipeline stage: layers [L_off, L_off + L_loc) */
    bool first_stage, last_stage;        /* embedding on the first, final norm + LM head on the last */
    ParamSpec *specs;
    int nspecs;
    size_t nparams;                      /* local elements in the flat buffers */
    size_t nalloc;                       /* allocated: nparams padded to a multiple of 64 x DP ranks (ZeRO shards) */
    float *params, *grads;               /* [nalloc] backend memory; the padding stays zero */
    LayerW *w, *dw;                      /* [L_loc] views (local layer index) */
    float *embed, *norm, *lm_head;       /* views (NULL on stages without them); lm_head == embed when tied on
                                          * one stage */
    float *dembed, *dnorm, *dlm_head;
    bool *gfresh;                        /* [nspecs] host, NULL until model_grads_begin: spec i's gradient holds
                                          * nothing of this step yet (the first op that writes it overwrites) */
    float *rope_cos, *rope_sin;          /* [rope_max, HD/2] backend memory */
    int rope_max;
    size_t max_tokens;                   /* activation arena capacity (tokens): model_arena_tokens of the asked
                                          * (under seqpar max_rows x tp) */
    bool seqpar;                         /* sequence parallelism (ModelOpts.sequence_parallel, tp > 1): the layers'
                                          * C-wide rows (inputs, norms, residuals) sharded over the TP group */
    size_t max_rows;                     /* rows of a C-wide activation this rank holds: max_tokens, or under
                                          * seqpar max_tokens / tp (model_seqpar_rows) */
    float *gsum;                         /* seqpar: [C] backend scratch of a norm gain's partial gradient */
    size_t max_att;                      /* rows of attention's layout it holds (pairs.h Natt; ModelOpts
                                          * max_att_tokens, rounded the same way): max_tokens unless asked */
    size_t max_lp;                       /* log-prob rows (pairs.h M) the LM-head logits cache holds (ModelOpts
                                          * max_lp_rows, rounded the same way): max_tokens unless asked */
    int nslots;                          /* activation slots: micro-batches in flight (pipeline 1F1B) */
    struct Acts *acts;                   /* [nslots] activation slots (model.c): each owns one backend allocation
                                          * of what lives from its micro-batch's forward to its backward (layer
                                          * inputs; without recompute the layer intermediates; the stage output
                                          * and gradient the pipeline sends and receives; on the last stage the
                                          * final norm's rstd and the gathered rows with their log-sum-exp) */
    float *scratch;                      /* backend memory, one per rank, shared by every slot: what is live only
                                          * inside one forward or one backward call (the backward's scratch; on the
                                          * last stage the final normed rows and the LM-head chunk, which lies
                                          * over the layers' gradient scratch: never live at the same time) */
    int recompute_layers;                /* train.recompute (train.recompute_layers): this stage's first
                                          * recompute_layers layers (0 .. L_loc) keep only their input in a slot;
                                          * the backward reruns such a layer's forward into `work` first */
    bool recompute;                      /* recompute_layers > 0 */
    bool act_rc;                         /* ModelOpts.recompute_act: h in the shared scratch, remade per backward */
    bool norm_rc;                        /* ModelOpts.recompute_norm: ln1, ln2 in the shared scratch, remade per
                                          * backward */
    float *work;                         /* recompute only (else NULL): one layer's intermediates for max_tokens
                                          * tokens, shared by every slot and layer of this rank; backend memory */
    bool proj16;                         /* autocast storage (ModelOpts.autocast16, needs act16 and an even HD): the
                                          * q, k, v, gate and up projections' outputs and attention's output (q, k,
                                          * v, g, u, att) are bf16 (views of float * type pointing at uint16_t data,
                                          * as for act16) */
    bool act16;                          /* bf16 activation storage (backend.h matmul16): made in the bf16 mode,
                                          * the activations that only feed matmuls (each layer's ln1, ln2 and
                                          * the MLP's hidden state h) are bf16, half the bytes; the views keep
                                          * their float * type and point at uint16_t data */
    uint16_t *w16_base;                  /* bf16 compute weights (model_enable_weights16; else NULL): one backend
                                          * allocation of every matmul weight of this rank as bf16, each view
                                          * padded to 128 elements (256 bytes) */
    size_t w16_elems;                    /* its elements (with the padding) */
    LayerW16 *w16;                       /* [L_loc] views into w16_base (NULL without the copy) */
    uint16_t *lm_head16;                 /* the LM head's view (last stage), else NULL */
    bool w16_fresh;                      /* the copy holds bf16(params): set by model_refresh_weights16 and
                                          * model_weights16_written, cleared by model_weights_changed; the
                                          * matmuls read it only while set */
    float *head_cache;                   /* LM-head logits cache (model_enable_head_cache; last stage, else NULL):
                                          * [head_cache_rows, V_loc], a view of the shared scratch (over the layers'
                                          * gradient scratch), the logits of the gathered rows of the
                                          * last forward, in chunk order: fp32, or bf16 under head16 (a view of
                                          * float * type pointing at uint16_t data, as for act16) */
    bool bwd_pack;                       /* proj16: the q, k, v and the gate, up projections' backward as one
                                          * matmul each where the backend packs their gradients and the layer's
                                          * tensors allow (model.c qkv_packed, glu_packed; SIMPO_BWD_PACK=0
                                          * turns it off) */
    bool norm_out16;                     /* bwd_pack, tp 1, Llama, QD >= C: the norms' backward writes d/dx in
                                          * bf16 too (backend.h rmsnorm_bwd_out16) over dq's scratch, the
                                          * operand of the o and down projections' backward that a conversion
                                          * pass made before (model.c norm_bwd); bitwise the same */
    bool head16;                         /* the LM head in autocast storage (proj16 without Gemma 2's final
                                          * soft-cap): its matmul writes bf16 logits (matmul16_out16), read by
                                          * xent_stats_b16, turned in place into bf16 d(logits) by xent_bwd_b16 */
    int head_cache_slot;                 /* the slot whose logits head_cache holds; -1: none (used, or never made) */
    size_t head_cache_rows;              /* rows head_cache holds (model_head_cache_rows): the logits of the first
                                          * head_cache_rows gathered rows, whole chunks; the rows after them are
                                          * recomputed in the backward. 0 without the cache */
    bool gemma2;                         /* mc.arch == ARCH_GEMMA2 */
    int seq_max;                         /* the longest attention sequence (tokens) of the micro-batch being run
                                          * (forward, backward) or of the decoder's positions (generate.c): Mistral
                                          * v0.1's window passes its options only past it (model_attn_opts) */
    bool qkv_bias;                       /* mc.qkv_bias: q, k, v have biases (Qwen2) */
    bool qk_norm;                        /* mc.qk_norm: q, k normalised per head before RoPE (Qwen3; in autocast
                                          * storage on bf16 rows: backend.h rmsnorm_fwd_b16) */
    float *qksum;                        /* qk_norm with tp > 1: [HD] backend scratch of a q/k norm gain's partial
                                          * gradient (this rank's heads), summed over TP; else NULL */
    float embed_scale;                   /* Gemma 2: the embedding output is multiplied by (float)sqrt(C); else 1 */
    size_t grads_from;                   /* the first flat element m->grads holds (model_grad_at): 0, or under the
                                          * sparse embedding gradient the embedding's numel (it is spec 0, at flat
                                          * element 0 of the first stage): its gradient lives in sp.grad */
    SparseEmbedGrad sp;                  /* model_enable_sparse_embed (embed_grad.c); sp.grad NULL: dense */
    size_t grads_to;                     /* the end of the flat range m->grads holds: nalloc, or under gradient
                                          * partitioning the end of this rank's shard */
    /* Sharded fp32 master weights (ModelOpts.param_shards > 1; param_shard.c), as Megatron's distributed optimizer
     * keeps them: m->params holds only this rank's shard [params_from, params_to) of the flat fp32 parameters (what
     * AdamW updates); the matmuls read the bf16 copy (model_enable_weights16, always made and always fresh), and the
     * parameters an op reads in fp32 (the embedding, the RMSNorm gains) are held whole in `prep`, in table order
     * (their views point there; the matmul weights' fp32 views are NULL). model_params_allgather makes every rank's
     * copy and prep whole again after the optimizer step. */
    bool params_sharded;
    size_t params_from, params_to;
    float *prep;                         /* backend memory, prep_elems floats, owned */
    size_t prep_elems;
    /* ZeRO-3 (ModelOpts.shard_weights; param_shard.c), as DeepSpeed's stage 3 and FSDP keep the compute weights:
     * the matmul weights exist on this rank only as its part of them. In bf16 that is the part of the bf16 copy its
     * fp32 shard rounds to, the positions [w16_lo, w16_hi) of the copy's layout (w16_base[0] is position w16_lo;
     * w16_at gives each view's position); in fp32 the weights are the compute weights and the shard itself is the
     * part (the layout's positions are the flat offsets). Before a layer's forward and again before its backward the
     * data-parallel group all-gathers that layer's span of the layout into gw_layer (model_weights_gather), where
     * its matmul views (m->w16[l], or in fp32 m->w[l]'s) then point; the LM head's into gw_head, once per weights
     * version (until the parameters change). The views of a layer not gathered are NULL. */
    bool zero3;
    size_t gw_esz;                       /* bytes of an element of the layout: 2 (bf16 copy) or 4 (fp32 weights) */
    size_t *w16_at;                      /* [nspecs] position of spec i's bf16 view in the copy's layout (SIZE_MAX:
                                          * none); host memory, owned */
    size_t w16_lo, w16_hi;               /* the bf16 positions this rank holds (elements; zero3 in bf16) */
    size_t *gw_bounds;                   /* [dp + 1] data-parallel rank r holds the layout's positions
                                          * [gw_bounds[r], gw_bounds[r + 1]); host memory, owned */
    size_t *gw_from, *gw_to;             /* [L_loc + 1] local layer l's matmul weights span positions [gw_from[l],
                                          * gw_to[l]) (bf16: their paddings included; fp32: the gains or biases
                                          * between them too); index L_loc: the LM head's (empty where the head
                                          * is the fp32-read embedding) */
    void *gw_layer, *gw_head;            /* gather buffers (backend memory, owned): the widest layer, the head */
    int gw_cur;                          /* the local layer gw_layer holds, -1: none */
    bool gw_prefetch;                    /* ModelOpts.zero3_prefetch: the next layer's gather in flight into gw_spare
                                          * while this one computes (model_weights_prefetch) */
    void *gw_spare;                      /* the second layer buffer (backend memory, owned; NULL without prefetch) */
    int gw_pre;                          /* the local layer on its way into gw_spare, -1: none */
    void *gw_req;                        /* its requests (comm.h CommGatherReq, owned) */
    bool gw_head_cur;                    /* gw_head holds the head of the current weights */
    bool partitioned;                    /* ModelOpts.grad_shards > 1: m->grads is this rank's shard, m->gp */
    GradPartition gp;
    GradDone gdone;                      /* model_set_grad_done; called while gdone_armed */
    bool gdone_armed;
    size_t gdone_split;                  /* the flat element where the layer being differentiated had its MLP's
                                          * part reported (model_mlp_grads_done), or SIZE_MAX */
} Model;

/* Builds the parameter table and allocates params, grads (zeroed) and activations for micro-batches of up to
 * max_tokens packed tokens in each of nslots activation slots, plus the scratch the slots share. With a grid whose
 * TP group has tp > 1 ranks, this rank holds the Megatron-style slices: column-parallel q/k/v/gate/up (rows),
 * row-parallel o/down (columns), vocab-parallel embedding and LM head (rows); tp must divide the KV heads, the MLP
 * width and the vocabulary (dies naming them). Weights are uninitialised until model_init_random or model_load_hf. */
Model *model_create(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                    int nslots);
/* model_create with the activation policy chosen. recompute_layers (train.recompute, Megatron's "full"
 * granularity per transformer layer; train.recompute_layers, Megatron's "block" method with recompute_num_layers):
 * 0: none; n > 0: the first min(n, L_loc) layers of this stage (MODEL_RECOMPUTE_ALL: every layer). For those
 * layers each slot saves only the input residual stream [max_tokens, C]; the backward of such a layer first reruns
 * its forward (up to the MLP's hidden state, the same ops in the same order, so the results are bitwise those of
 * recompute off) into one working area shared by all slots and layers. The price: those layers' forward again
 * (without the down projection), and under tensor parallelism the o projection's all-reduce again, per
 * micro-batch. */
#define MODEL_RECOMPUTE_ALL INT_MAX
Model *model_create_ex(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                       int nslots, int recompute_layers);
/* The activation policy of model_create_opts. */
typedef struct ModelOpts {
    int recompute_layers; /* as model_create_ex's */
    bool autocast16;      /* model.bf16_storage: autocast: in the bf16 mode (with act16) the q, k, v, gate and up
                           * projections write bf16 (backend.h matmul16_out16), RoPE, attention and the gated
                           * activation read them (rope_fwd_b16, attn_fwd_b16, swiglu_fwd_b16 ...) and attention
                           * writes its output in bf16, as torch's autocast keeps them: half their memory, results
                           * within bf16 rounding of the default (exact) storage. Ignored outside the bf16 mode. */
    bool recompute_act;   /* train.recompute_activation: the MLP's hidden state h (the gated activation's output) is
                           * not kept per layer: the forward writes it into one shared buffer (as the down projection
                           * reads it) and the backward of each layer remakes it there from the g and u it keeps
                           * before the down projection's dW needs it (the same op on the same values: bitwise the
                           * results without) */
    size_t max_att_tokens;  /* tokens of the sequences of a micro-batch (pairs.h Natt) the model takes; 0: max_tokens.
                             * Under prefix sharing the layers see fewer tokens (max_tokens) than attention's two
                             * sequences per pair have: their rows live in the shared scratch (model.c) */
    size_t max_lp_rows;     /* the most log-prob rows (pairs.h M: response tokens) a micro-batch may have: the LM
                             * head's chunks and logits cache (model_enable_head_cache) are sized for them, and the
                             * forward dies on a micro-batch with more; 0: max_tokens */
    bool recompute_norm;    /* train.recompute_norm: the normed inputs of the projections (ln1, ln2) are not kept per
                             * layer: the forward writes each into one shared buffer (the q, k, v or gate / up
                             * projections read it there) and the backward of each layer remakes ln2 and then ln1 there
                             * from the layer input and x2 it keeps, before the projections' dW need them (Megatron-
                             * Core's recompute of the layernorm module; the same op on the same values: bitwise the
                             * results without) */
    int param_shards, param_shard; /* sharded fp32 master weights (model.h params_sharded) when param_shards > 1 and
                                    * the model is made in the bf16 mode with bf16 storage (act16; else ignored):
                                    * this model keeps shard param_shard of param_shards (the data-parallel rank;
                                    * param_shards must be the grid's dp) of the flat fp32 parameters, cut as the
                                    * gradient shards are (ZeRO >= 1's optimizer shards) */
    bool sequence_parallel; /* parallel.sequence_parallel (Megatron-Core's sequence parallelism; ignored without a
                             * grid of tp > 1): the rows of the residual stream, the norms and the stage input and
                             * output are cut over the TP group, block r of ceil(N / tp) rows on TP rank r (the last
                             * rows past N zeros); an all-gather over TP makes the whole rows before the column-parallel
                             * projections and the LM head, a reduce-scatter replaces the row-parallel projections'
                             * all-reduce; the norms' gain gradients are summed over TP (model.c) */
    bool zero3_prefetch;   /* with shard_weights: parallel.zero3_prefetch, a second layer buffer into which the next
                            * layer's all-gather runs while the current layer computes (model_weights_prefetch) */
    bool shard_weights;    /* parallel.zero 3 (model.h zero3), with param_shards > 1: the compute weights too
                            * sharded, each layer's all-gathered over the data-parallel group before its forward and
                            * its backward; in the bf16 mode (act16) the bf16 copy (model_enable_weights16), else
                            * the fp32 weights, which are then sharded without a copy */
    int grad_shards, grad_shard; /* ZeRO-2 gradient partitioning (GradPartition) when grad_shards > 1: the flat
                                  * gradient buffer (nalloc elements, a multiple of 64 x grad_shards) is cut into
                                  * grad_shards equal shards and this model keeps shard grad_shard of them (the
                                  * data-parallel rank; grad_shards must be the grid's dp). Set the sink
                                  * (model_set_grad_sink) before the first backward. 0 or 1: the whole buffer */
    int grad_buffers;    /* with grad_shards > 1: bucket buffers, 1 (0: 1) or 2, so that a bucket's sum may travel
                          * while the backward writes the next (the sink's wait; parallel.overlap_grad_reduce) */
} ModelOpts;
Model *model_create_opts(const ModelConfig *mc, const Backend *be, size_t max_tokens, struct ProcessGrid *grid,
                         int nslots, const ModelOpts *opts);
/* One rank, one activation slot and no gradient buffer (half the weight memory of model_create): for score,
 * analyze, generate and export. Forward only: model_backward, model_zero_grads and model_grad_sumsq must not be
 * called on it (m->grads is NULL). Its slot keeps only each layer's input (as under MODEL_RECOMPUTE_ALL: one
 * layer's intermediates in the working area at a time), and made in the bf16 mode it keeps autocast storage. */
Model *model_create_inference(const ModelConfig *mc, const Backend *be, size_t max_tokens);
/* The attention options of this stage's local layer l (Gemma 2: scale, soft-cap, the sliding window of the layer's
 * type), filled into *o and returned; NULL for Llama (the kernels' defaults). */
const AttnOpts *model_attn_opts(const Model *m, int l, AttnOpts *o);
/* Rows of the LM head's chunks (the logits of a chunk are [rows, V_loc], fp32, or bf16 when logits16: the model's
 * head16, autocast storage): about 1 GiB of logits, a multiple of 16 rows, at least 16; SIMPO_LMHEAD_CHUNK_ROWS=n
 * sets n in either precision (tests run several chunks on a tiny vocabulary). plan.c uses it too. */
size_t model_lmhead_chunk_rows(int V_loc, bool logits16);
/* The rows of the LM-head chunks of a model sized for micro-batches of up to lp_rows log-prob rows (the rows the head
 * runs on: m->max_lp, ModelOpts.max_lp_rows or else max_tokens): model_lmhead_chunk_rows, at most
 * model_arena_tokens(lp_rows), so that the chunk buffer is no larger than the most rows a chunk can take (on 8b-4l
 * 6,144 response rows of 7,168 tokens: 0.25 GiB less than sizing it for the tokens). */
size_t model_lmhead_rows_per_chunk(size_t lp_rows, int V_loc, bool logits16);
/* The tokens a model made for micro-batches of up to max_tokens tokens sizes its activations for (m->max_tokens):
 * max_tokens (at least 1) rounded up to a multiple of 16, so that every view of its arenas starts at least 16-byte
 * aligned whatever the widths (the tensor-core attention's cp.async tiles and the bf16 views need 16-byte aligned
 * rows, else attention takes its slow path; cuBLASLt picks its fastest kernels on aligned operands). plan.c sizes
 * its plans the same way. */
size_t model_arena_tokens(size_t max_tokens);
/* bf16 compute weights (mixed precision's "bf16 weights, fp32 master weights"; a model made in the bf16 mode only,
 * m->act16, else dies): allocates a bf16 copy of every weight a matmul reads (each layer's q, k, v, o, gate, up,
 * down projections and, on the last stage, the LM head): 2 bytes per element, backend memory owned by the model
 * (model_free frees it). model_refresh_weights16 fills it from the fp32 parameters (one conversion pass); while it
 * is fresh the forward and backward hand it to the matmuls instead of the fp32 weights, which they would round to
 * the very same bf16 values (results bitwise the same), so the weights are converted once per optimizer step
 * instead of before every matmul of every micro-batch. Anything that writes the parameters must call
 * model_weights_changed (model_init_random, model_load_hf, the optimizer and checkpoint loads do); a stale copy is
 * never read. SIMPO_CHECK_WEIGHTS16=1 makes every forward that reads the copy check it against the parameters
 * (tests: dies on a stale copy). The trainer enables it with train.bf16_weight_cache; the optimizer writes it along
 * with the weights when it updates all of them (model_weights16_written), else the trainer refreshes it at the
 * start of the next step. */
void model_enable_weights16(Model *m);
void model_refresh_weights16(Model *m); /* no-op without the copy */
void model_weights_changed(Model *m);
/* Element k of parameter spec i's bf16 copy as this rank holds it: in the whole copy, or under ZeRO-3 (zero3)
 * in this rank's part, where it must lie (dies otherwise: an element of another rank's shard); NULL: no copy, or not
 * a matmul weight. What the optimizer writes as it updates the weights (backend.h adamw's p16), before it calls
 * model_weights16_written. */
uint16_t *model_weights16_at(Model *m, int i, size_t k);
/* ZeRO-3 (zero3; no-op otherwise): all-gathers local layer l's matmul weights (bf16 views, or fp32 weights) over the
 * data-parallel group into the layer buffer and points the layer's views there (l == m->L_loc: the LM head's, into
 * the head buffer, which stays valid for the weights' version), unless the buffer holds them already. A collective:
 * every rank of the group calls it with the same l in the same order (the forward and the backward do, layer by
 * layer). */
void model_weights_gather(Model *m, int l);
/* ZeRO-3: forgets the gathered layer (with head, the head too) and sets their views NULL; the forward and the
 * backward begin with it, so every one of them gathers each of its layers once (the counts docs/design.md gives). */
void model_weights_gather_reset(Model *m, bool head);
/* ZeRO-3: the gathers of one forward without its computation (no-op otherwise): a data-parallel rank with fewer
 * evaluation micro-batches than the others runs them in place of the missing ones, so that every rank makes the
 * same collectives. */
void model_forward_gathers(Model *m);
/* ZeRO-3 with zero3_prefetch: starts the all-gather of local layer l into the spare layer buffer, unless l is out of
 * range, the current layer or already on its way (then nothing); model_weights_gather(m, l) completes it. The forward
 * prefetches each next layer, the backward each previous one, so every rank starts the same gathers in the same
 * order, and each pass gathers each layer once, as without it. */
void model_weights_prefetch(Model *m, int l);
/* Every matmul weight's copy was written with the parameters (the optimizer updated them all on this rank): fresh
 * again without a refresh pass. No-op without the copy. */
void model_weights16_written(Model *m);
/* LM-head logits cache (train.lmhead_cache): on the last stage, makes room for [rows, V_loc] (rows:
 * model_head_cache_rows of m's sizes and `rows`; 0 asks for all m->max_lp rows) of fp32, or of bf16 under m->head16,
 * in the shared scratch (remade larger where needed): over the layers' gradient scratch with the LM-head chunk
 * buffers, since the logits live only from a slot's head forward to its head backward, which run back to back on
 * the last stage with no layer between; a cache of all the rows also spares the chunk its own logits buffer. The
 * forward leaves there the logits of every chunk that lies wholly in the first rows; the backward of the same slot,
 * when no other forward or backward came between, reads them instead of recomputing them (one of the
 * head's four GEMMs fewer per cached row; the results are bitwise the same: the very values the recompute would
 * give), and recomputes the chunks after them (a partial cache: train.lmhead_cache: auto where only some chunks fit
 * the memory budget). The last stage runs each micro-batch's backward right after its forward (pipeline.h), so in
 * training every backward finds its logits. No-op on other stages, or when rows round down to no chunk. */
void model_enable_head_cache(Model *m, size_t rows);
/* The rows a logits cache asked for `want` rows holds, for a model sized for micro-batches of max_tokens tokens (in
 * the layers' layout) with lp_rows log-prob rows (0: max_tokens) and a vocabulary slice of V_loc: all of
 * model_arena_tokens(lp_rows) when want is 0 or at least that, else want rounded down to whole LM-head chunks
 * (model_lmhead_chunk_rows of logits16, at most the arena's tokens), possibly 0. model_enable_head_cache and plan.c
 * use it. */
size_t model_head_cache_rows(size_t max_tokens, size_t lp_rows, int V_loc, bool logits16, size_t want);
/* Sparse embedding gradient (train.sparse_embedding_grad; embed_grad.c): on the first stage of a model with untied
 * embeddings, replaces the embedding's dense fp32 gradient ([V_loc, C] of m->grads: the buffer shrinks by it, so
 * m->grads then starts at flat element m->grads_from) with the gradients of the rows the step's tokens select,
 * at most model_sparse_embed_rows(max_step_tokens, V_loc) of them (m->sp; backend memory owned by the model), as
 * PyTorch's nn.Embedding(sparse=True) does. The embedding's backward scatters into those rows in the order of
 * the dense path (bitwise the same rows); the optimizer reads them through backend.h GradRows and zeros for the rest
 * (bitwise the dense update); the gradient norm sums the held rows. max_step_tokens: the most tokens (in the layers'
 * layout) the micro-batches of one step hold on this rank, times dp (under data parallelism every rank holds the
 * rows of the whole group's tokens, model_sparse_embed_begin, and model_sparse_embed_allreduce sums them). Call
 * right after model creation, before any backward: the gradient buffer is reallocated (zeroed). Not with ZeRO-2's
 * partitioned gradient (its buckets are dense ranges; dies), nor a tied embedding (its gradient is the LM head's,
 * dense; dies); under ZeRO-1 the caller keeps the embedding inside one rank's shard (config_sparse_embed), which
 * updates it whole. No-op on a stage without the embedding. */
void model_enable_sparse_embed(Model *m, size_t max_step_tokens);
/* Data parallelism: the DP group's sum of the held rows, in place (each rank holds the same rows). No-op without
 * the sparse gradient or with dp 1. */
void model_sparse_embed_allreduce(Model *m);
/* The rows the sparse embedding gradient holds for steps of up to max_step_tokens tokens: min(V_loc,
 * max_step_tokens), at least 1. plan.c uses it. */
size_t model_sparse_embed_rows(size_t max_step_tokens, int V_loc);
/* A step's rows (sparse embedding gradient; no-op without it): every id of the n micro-batches in this rank's
 * vocabulary slice, under data parallelism of every DP rank's (a collective over the DP group: an all-reduce of a
 * mark per vocabulary row), ascending, to m->sp.rows / map; call before the step's first forward, with every
 * micro-batch of the step. Dies when they hold more distinct ids than m->sp.max_rows. */
void model_sparse_embed_begin(Model *m, MicroBatch *const *mbs, int n);
/* The gradient of flat element off (off >= m->grads_from: not inside a sparse embedding gradient; dies otherwise). */
float *model_grad_at(const Model *m, size_t off);
/* The gradient of the flat range [off, off + n) as the optimizer reads it: a pointer into m->grads with rows->map
 * NULL; or, for the embedding under the sparse gradient (the range must be the whole embedding), m->sp.grad with
 * *rows describing its held rows (pass rows to adamw). */
const float *model_grad_range(const Model *m, size_t off, size_t n, GradRows *rows);
/* The fp32 parameter of flat element off as the optimizer updates it (under sharded master weights off must lie in
 * this rank's shard; dies otherwise). */
float *model_param_at(const Model *m, size_t off);
/* Parameter spec i's values from host (its numel floats, this rank's slice): uploaded to its place; under sharded
 * master weights its part of this rank's shard, the fp32-read copy (prep) and the bf16 copy. After setting every
 * spec (a load, tensor by tensor, so that no host buffer holds more than the largest), model_params_set_done: the
 * bf16 copy is then stale, except under sharded master weights, where it was written with them. */
void model_param_set(Model *m, int i, const float *data);
void model_params_set_done(Model *m);
/* The elements of the largest parameter spec (at least 1): the host buffer a tensor-by-tensor load needs. */
size_t model_param_max_numel(const Model *m);
/* The fp32 parameters this rank holds, flat elements [params_from, params_from + model_params_held): all nparams,
 * or under sharded master weights its shard (without the padding); model_params_to_host downloads them to host
 * (host[0] is flat element params_from). */
size_t model_params_held(const Model *m);
void model_params_to_host(const Model *m, float *host);
/* Sharded master weights, after the optimizer updated this rank's shard (and wrote its part of the bf16 copy): the
 * data-parallel group's all-gather of the bf16 copy and of the fp32-read parameters; the copy is fresh again.
 * No-op otherwise. */
void model_params_allgather(Model *m);
/* The callback of completed gradient buckets (GradDone; {0}: none), and whether the backwards from now on call it
 * (the trainer arms it around a step's last backward: earlier ones leave the gradients incomplete). */
void model_set_grad_done(Model *m, GradDone d);
void model_arm_grad_done(Model *m, bool on);
/* The sink of a partitioned gradient (GradPartition): required before the first backward of such a model. */
void model_set_grad_sink(Model *m, GradSink sink);
/* After the step's last backward and model_grads_end (and the pipeline's tied-gradient sum): hands the resident
 * tied gradient to the sink. No-op unless the gradient is partitioned and this stage holds a tied embedding. */
void model_grads_reduce_resident(Model *m);
/* The units of the data-parallel all-reduce of an unpartitioned gradient (mpi/grad_allreduce.h): the flat ranges of
 * the gradient buckets GradDone hands over (a layer, the final norm with an untied LM head, a dense untied
 * embedding) inside [m->grads_from, m->grads_to), and the ranges between and after them (a tied embedding, the
 * padding), in increasing order and without gaps. Returns their count; *off and *n are allocated (the caller frees
 * both with free(*off): one allocation). */
int model_grad_units(const Model *m, size_t **off, size_t **n);
/* Partitioned: the bucket buffers (backend memory, not owned), for the sink's wait; returns their count (1 or 2). */
int model_grad_buffers(const Model *m, float *buf[2]);
/* Layers of pipeline stage `stage`: the first L % pp stages take one extra layer (picotron distribute_layers). */
void model_stage_layers(int L, int pp, int stage, int *first, int *count);
void model_free(Model *m);
/* HF Llama init: linears and embedding ~ N(0, initializer_range), RMSNorm gains 1 (Gemma 2 too: its HF offsets
 * 0); element e of parameter p is sd_normal(seed, p, global index of e), so any slicing of the model gets the same
 * numbers. */
void model_init_random(Model *m, long seed);
/* Loads every parameter from an HF directory (config.json already parsed into m->mc). Dies naming the tensor and
 * both shapes on a mismatch, or a missing tensor. lm_head may be absent when tied. Gemma 2 gains: 1 + w. */
void model_load_hf(Model *m, const char *hf_dir);
/* Writes config.json + safetensors (sharded above shard_bytes) with HF names; a model without TP. Gemma 2 gains
 * are written as g - 1 (HF's offsets). One tensor in host memory at a time. */
void model_export_hf(const Model *m, const char *out_dir, size_t shard_bytes);
/* The same from any source of the parameters: read(ctx, p, out) writes spec p's p->numel fp32 values (the whole
 * tensor, as the model holds it) into out; specs [n] a one-rank table (model_param_table). For `simpo_dist export`,
 * which reads a checkpoint tensor by tensor, so that no model of the checkpoint's size is ever in memory. bf16:
 * the tensors rounded to bf16 (nearest even) and config.json's torch_dtype "bfloat16", else fp32 and "float32". */
void model_export_hf_from(const ModelConfig *mc, const ParamSpec *specs, int n,
                          void (*read)(void *ctx, const ParamSpec *p, float *out), void *ctx, const char *out_dir,
                          size_t shard_bytes, bool bf16);
/* The parameter table of a model of mc on one rank (no tensor or pipeline parallelism; offsets as model_create
 * lays them), nothing else made: specs [*n], the caller frees them (free). Dies as model_create on a bad config. */
ParamSpec *model_param_table(const ModelConfig *mc, int *n);
/* Finds a spec by HF name, NULL when absent. */
const ParamSpec *model_find_param(const Model *m, const char *name);

/* Per-sequence response log-probs of a micro-batch. */
typedef struct {
    double sum;       /* sum of log p(response token) */
    double logit_sum; /* sum over the response tokens' rows of the sum of their logits over the full vocabulary
                       * (after any final soft-cap): the metrics' logits/chosen is its mean per token and vocabulary
                       * entry */
    int n;            /* response tokens */
} SeqLogp;

/* Forward of this stage over the packed micro-batch in activation slot `slot`. The first stage embeds mb->ids;
 * later stages read their input from model_stage_input(m, slot), placed there by the caller. The last stage
 * fills out[mb->S]; earlier stages leave their output in model_stage_output(m, slot). */
void model_forward(Model *m, const MicroBatch *mb, int slot, SeqLogp *out);
/* The same forward with no backward to follow (held-out evaluation, train_eval.h): it prepares nothing of the
 * step's backward (the sparse embedding gradient's row ids, which hold only the step's tokens), so it may run
 * between steps on pairs the step never saw; it overwrites the slot's activations (and the logits cache). */
void model_forward_only(Model *m, const MicroBatch *mb, int slot, SeqLogp *out);
/* Backward of this stage, accumulating into m->grads: the last stage starts from dsum[s] = d(loss)/d(sum of
 * log-probs of sequence s); earlier stages from d(loss)/d(output) placed in model_stage_grad(m, slot). Afterwards
 * model_stage_grad(m, slot) holds d(loss)/d(input) (what a non-first stage sends back). Must follow
 * model_forward of the same micro-batch in the same slot; forwards and backwards of other slots may run in between
 * (each slot keeps what its backward reads; the shared scratch is dead between calls). The three stage buffers
 * below belong to the slot: they stay valid across other slots' calls (a send may still read them). On a stage
 * before the last, model_stage_grad and model_stage_output are one buffer: the gradient received for the backward
 * overwrites the output (complete its send first), and the next forward in the slot overwrites the gradient the
 * backward left (complete that send first). */
void model_backward_slot(Model *m, const MicroBatch *mb, int slot, const double *dsum);
float *model_stage_input(Model *m, int slot);   /* [model_stage_rows(m, Ntok), C] */
float *model_stage_output(Model *m, int slot);  /* [model_stage_rows(m, Ntok), C] */
float *model_stage_grad(Model *m, int slot);    /* [model_stage_rows(m, Ntok), C] */
/* Rows of a micro-batch of Ntok tokens this rank holds of a C-wide activation (the stage input, output and
 * gradient the pipeline moves): Ntok, or under sequence parallelism ceil(Ntok / tp). */
size_t model_stage_rows(const Model *m, size_t Ntok);
/* Sequence parallelism's rows per TP rank for an arena of max_tokens tokens: model_arena_tokens(ceil(max_tokens /
 * tp)) (the arena holds tp times as many; plan.c restates the sizes) */
size_t model_seqpar_rows(size_t max_tokens, int tp);
/* One stage, slot 0. */
void model_forward_logprobs(Model *m, const MicroBatch *mb, SeqLogp *out);
void model_backward(Model *m, const MicroBatch *mb, const double *dsum);
void model_zero_grads(Model *m);
/* A step's gradients without zeroing them first (model_zero_grads is a pass over every gradient, and each
 * gradient matmul then reads what it adds to): after model_grads_begin the first matmul into a weight's gradient
 * overwrites it (beta 0), and the ops that only add (RMSNorm gains, the embedding's scatter) zero theirs first;
 * model_grads_end, after the step's last backward, zeroes the gradients nothing wrote. The same numbers as
 * model_zero_grads before the backwards, up to the sign of a zero. */
void model_grads_begin(Model *m);
void model_grads_end(Model *m);
/* Sum of squared gradients this rank contributes to the global norm: its slices of split parameters, and
 * replicated parameters (RMSNorm gains) on TP rank 0 only, so the TP all-reduce counts them once. */
double model_grad_sumsq(const Model *m);
/* The sums of squares of count ranges [start[i], start[i] + len[i]) of m->grads (element offsets), in one backend
 * call (backend.h sumsq_many: one round trip to a GPU); each[i] (may be NULL) gets range i's, bitwise what sumsq
 * gives; returns their sum, added in range order. */
double model_grad_sumsq_ranges(const Model *m, const size_t *start, const size_t *len, int count, double *each);
#endif
