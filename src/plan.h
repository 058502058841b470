/* plan.h — what a rank of a given layout should allocate and send, from closed-form formulas (docs/design.md,
 * "Memory and communication per rank"). The trainer prints both next to what it measured (backend allocations,
 * collective byte counters), and tests hold the two equal; the planner of a later issue reuses these formulas.
 *
 * defines: PlanLayout, MemPlan, plan_layout, plan_memory, plan_step_bytes.
 * Units: bytes; element counts as size_t.
 */
#ifndef SD_PLAN_H
#define SD_PLAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "comm.h"
#include "model_config.h"

typedef struct {
    ModelConfig mc;
    int dp, tp, pp, zero;
    int dp_rank, tp_rank, pp_rank;
    size_t max_tokens;      /* tokens per micro-batch the activations are sized for (at most 2 x pairs x max_length;
                             * the trainer's: its data's largest micro-batch, train.c) */
    int n_mb;               /* micro-batches per step on this rank */
    int recompute_layers;   /* train.recompute (model.h model_create_ex): 0 none; n: the stage's first min(n, layers)
                             * keep their input only in a slot, plus one shared layer working area */
    bool bf16;              /* model.dtype bf16: the activations that only feed matmuls (ln1, ln2, h) are bf16
                             * (model.h act16; when the hidden and local MLP widths are even) */
    bool weights16;         /* train.bf16_weight_cache with bf16 (and act16): a bf16 copy of the matmul weights */
    bool lmhead_cache;      /* train.lmhead_cache: the last stage keeps a micro-batch's logits for its backward */
    bool autocast16;        /* model.bf16_storage: autocast (with bf16): the q, k, v, gate and up projections' outputs
                             * and attention's output in bf16 (model.h proj16) */
    bool recompute_act;     /* train.recompute_activation: the MLP's hidden state once per rank, not per layer and
                             * slot (model.h ModelOpts.recompute_act) */
    size_t max_att_tokens;  /* tokens of a micro-batch's sequences attention's rows are sized for (model.h
                             * ModelOpts.max_att_tokens); 0: max_tokens */
    size_t max_lp_rows;     /* log-prob rows of a micro-batch the LM-head logits cache is sized for (model.h
                             * ModelOpts.max_lp_rows); 0: max_tokens */
    bool recompute_norm;    /* train.recompute_norm: the normed inputs ln1, ln2 once per rank, not per layer and slot
                             * (model.h ModelOpts.recompute_norm) */
    size_t lmhead_cache_rows; /* with lmhead_cache: the rows it holds as asked of model_enable_head_cache (0: all
                               * max_lp_rows; else whole LM-head chunks, model.h model_head_cache_rows) */
    bool sparse_embed;      /* train.sparse_embedding_grad: the first stage holds the embedding's gradient for the rows
                             * of a step's tokens only (model.h model_enable_sparse_embed, for n_mb x max_tokens
                             * tokens a step on each of the dp ranks) */
    bool seqpar;            /* parallel.sequence_parallel with tp > 1: the C-wide rows cut over TP (model.h seqpar) */
    bool grad_buffers2;     /* ZeRO >= 2 with parallel.overlap_grad_reduce: two bucket buffers (ModelOpts.grad_buffers) */
    bool zero3_prefetch;    /* ZeRO-3 with parallel.zero3_prefetch: a second layer gather buffer (stages of > 1 layer) */
} PlanLayout;

typedef struct {
    size_t params;          /* parameters held (elements), before padding */
    size_t layer_params;    /* of those, in this stage's transformer layers (elements) */
    size_t rerun_params;    /* of those, in its layers that recompute (elements): what recompute reruns */
    size_t weights, grads, optimizer, activations, other, total; /* bytes */
    size_t weights16;       /* bytes of the bf16 compute weights (model_enable_weights16), in total; 0 without */
    size_t head_cache;      /* bytes of the LM-head logits cache (model_enable_head_cache; 0 without), in act_shared:
                             * it lies over the layers' gradient scratch, so it adds to total only what the head's
                             * region (the cache and the chunk buffers) holds beyond that scratch */
    size_t act_slot;        /* bytes of one activation slot (per micro-batch in flight), in activations */
    size_t act_shared;      /* bytes of the activation scratch all slots share (backward scratch, LM-head chunk on
                             * the last stage), in activations */
    size_t act_work;        /* bytes of the shared recompute working area (0 without recompute), in activations */
    int slots;              /* activation slots (micro-batches in flight) */
    size_t param_rep;       /* sharded master weights (plan_params_sharded): elements of the parameters held whole in
                             * fp32 (the embedding, the RMSNorm gains, Qwen2's biases; model.h prep), in weights; else 0 */
    size_t gather_layer;    /* ZeRO-3 (plan_zero3): bytes one gather of a layer assembles (its bf16 views with their
                             * padding, or without the copy its span of the fp32 weights); else 0 */
    size_t gather_head;     /* ... and of the LM head (last stage; 0 where the head is the embedding, whole) */
    size_t grad_resident;   /* ZeRO-2 (plan_grads_partitioned): elements of the tied embedding's gradient this stage
                             * holds whole for the step (model.h GradPartition), in grads; else 0 */
} MemPlan;

/* Whether the first stage's embedding (flat elements [0, V/tp x C) of its buffer) lies inside DP rank 0's ZeRO shard
 * under l's dp and tp (always with dp 1): config_sparse_embed's condition under data parallelism. */
bool plan_embed_in_one_shard(const PlanLayout *l);
/* ZeRO-2 with data parallelism: each rank holds its shard of the gradient and one bucket (model.h GradPartition) */
bool plan_grads_partitioned(const PlanLayout *l);
/* ZeRO >= 1 with data parallelism in the bf16 mode with the bf16 weight copy, or ZeRO-3 with data parallelism: each
 * rank holds its shard of the fp32 master weights (model.h params_sharded) */
bool plan_params_sharded(const PlanLayout *l);
/* ZeRO-3 (parallel.zero 3, dp > 1): the compute weights sharded too (model.h zero3), each layer's gathered */
bool plan_zero3(const PlanLayout *l);
/* ... and they are the bf16 copy (bf16 with the copy and bf16 storage; else the fp32 weights themselves) */
bool plan_weights16_sharded(const PlanLayout *l);

MemPlan plan_memory(const PlanLayout *l);
/* Whether the layout's LM head keeps its logits in bf16 (model.h head16: autocast storage in the bf16 mode, even
 * widths, no final logit soft-cap): the logits cache at 2 bytes per logit. */
bool plan_logits16(const PlanLayout *l);
/* train.lmhead_cache: auto's size on layout l (its recompute chosen; lmhead_cache and lmhead_cache_rows are ignored):
 * the most rows of bf16 logits, all or whole LM-head chunks, whose plan fits `budget` bytes. Returns the rows to ask
 * model_enable_head_cache for (all of them, model_head_cache_rows(..., 0), is the whole cache; whole chunks short
 * of it a partial one), or 0: not the last stage, fp32 logits (auto keeps bf16 ones only), or not one chunk fits.
 * train.c pick_head_cache and simpo_dist plan use it. */
size_t plan_head_cache_fit(PlanLayout l, double budget);
/* train.bf16_weight_cache: auto's choice on layout l (its recompute as the config asks, before train.recompute: auto
 * chooses; lmhead_cache_rows ignored): keep the bf16 weight copy (true) when the plan with it and, where
 * `whole_cache` (train.lmhead_cache auto or true), the whole logits cache of the last stage (bf16 logits only, as
 * auto keeps; true: fp32 too) fits `budget` bytes, else drop it: the copy is the cheapest memory to give up (by the
 * H200 measurement, docs/performance.md: ~0.3 ms of an 8b-4l step for ~3 GiB, where the logits cache saves ~6 ms per
 * GiB and recompute costs ~3), so it goes before any recompute and before the cache. true where the layout has no
 * copy to drop (fp32, or widths without bf16 storage). train.c pick_weight_cache and simpo_dist plan use it. */
bool plan_weights16_fit(PlanLayout l, double budget, bool whole_cache);
/* Step s (0, 1, ...) of train.recompute: auto's ladder, cheapest first (train.c pick_recompute, simpo_dist plan
 * --recompute auto): 0 nothing beyond what the config asks (act, norm); 1 the MLP's activation function too; 2 it
 * and the projections' normed inputs; s > 2 those and s - 2 layers per stage. */
typedef struct {
    int layers;
    bool act, norm;
} RecomputeStep;
RecomputeStep plan_recompute_step(int s, bool act, bool norm);
/* The layers of pipeline stage `stage` that recompute under l (0 .. its layer count) */
int plan_recompute_layers(const PlanLayout *l, int stage);
/* Bytes this rank's collectives count in one step (comm.h's convention) for micro-batches with tokens[i] packed
 * tokens and resp[i] response (log-prob) tokens, i < l->n_mb; sparse_rows: under the sparse embedding gradient with
 * dp > 1, the rows the step's DP group held (model.h m->sp.held), or 0 for the most it can (the memory plan's). */
/* tp_out (NULL: not wanted): of those, what the TP group's collectives count (tensor parallelism's, and sequence
 * parallelism's) */
void plan_step_bytes(const PlanLayout *l, const size_t *tokens, const size_t *resp, size_t sparse_rows,
                     uint64_t out[COLL_KINDS], uint64_t *tp_out);
#endif
