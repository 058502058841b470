/* zero.h — ZeRO partitioning of the flat gradient / optimizer buffers across data-parallel ranks.
 *
 * defines: Range, OwnedPiece, ZeroPlan, zero_plan_create, zero_plan_free, ZeroBucketReq, zero_reduce_bucket_start,
 *          zero_reduce_bucket_wait, zero_bucket_req_free, zero_reduce_bucket,
 *          zero_gather_params, zero_range_rects.
 * Layout (Megatron's distributed optimizer): the flat buffer of this model-parallel rank (n elements, padded by
 * the model to n_pad, a multiple of dp) is cut into dp contiguous shards of n_pad / dp elements; DP rank r owns
 * [r * shard, (r + 1) * shard), clipped to n. Shards cut through parameters; the plan lists, once, the pieces of
 * parameters this rank owns, and the AdamW step, weight-decay mask, grad norm and checkpoint writer iterate them.
 *   stage 0: no sharding (own = everything, every DP rank updates its full replica); grads all-reduced (in units,
 *            mpi/grad_allreduce.h, started inside the last backward under parallel.overlap_grad_reduce)
 *   stage 1: AdamW moments for the own shard only; grads all-reduced (as stage 0); updated shards all-gathered
 *   stage 2: as 1, but each rank holds only its shard of the gradient (model.h GradPartition): the backward hands
 *            every bucket (a layer, the head, the embedding) to zero_reduce_bucket as it completes, which
 *            reduce-scatters it and adds the own part into the shard; per micro-batch, as DeepSpeed's stage 2 (with
 *            two bucket buffers started by zero_reduce_bucket_start and finished by zero_reduce_bucket_wait when
 *            the buffer is taken again: parallel.overlap_grad_reduce)
 * Ownership: zero_plan_create allocates the plan and its pieces; zero_plan_free frees both.
 */
#ifndef SD_ZERO_H
#define SD_ZERO_H
#include <stddef.h>
#include <stdint.h>
#include "comm.h"

typedef struct { size_t start, end; } Range;   /* half-open, elements of the flat buffer */

typedef struct {
    int param;        /* index into the caller's parameter list */
    Range flat;       /* the piece in the flat buffer */
    size_t in_param;  /* offset of the piece inside the parameter (elements) */
} OwnedPiece;

typedef struct {
    int stage, dp, dp_rank;
    size_t n, n_pad, shard;
    Range own;                /* this rank's range, clipped to n (may be empty) */
    OwnedPiece *pieces;
    int npieces;
} ZeroPlan;

/* offsets/numels describe the nparams parameters in the flat buffer; n_pad % dp must be 0 (dies otherwise). */
ZeroPlan *zero_plan_create(int stage, int dp, int dp_rank, size_t n, size_t n_pad, const size_t *offsets,
                           const size_t *numels, int nparams);
void zero_plan_free(ZeroPlan *z);
/* Elements of optimizer state this rank keeps: own range (stage >= 1) or n (stage 0). */
size_t zero_state_elems(const ZeroPlan *z);
/* A bucket's reduce-scatter in flight (zero_reduce_bucket_start); zero-initialise before first use, release with
 * zero_bucket_req_free. */
typedef struct {
    int n, cap;           /* pieces in flight; capacity of the arrays */
    CommReq *req;         /* per piece */
    float **sum;          /* where its sum of this rank's part lands (backend memory, inside the bucket buffer) */
    size_t *mine;         /* that part's elements */
    float **acc_at;       /* where it adds into the shard */
} ZeroBucketReq;
/* Stage 2: buf (backend memory, n elements, overwritten) holds the flat range [off, off + n) of this rank's gradient
 * (a bucket); starts the DP group's sum of its part in this rank's shard [dp_rank * shard, (dp_rank + 1) * shard),
 * which zero_reduce_bucket_wait adds into acc, the shard (acc[0] is its first element; backend memory). buf must stay
 * untouched until then. Reduce-scatters with per-rank counts (comm_ireduce_scatterv_f32), in pieces MPI's int
 * counts carry: every rank of the group starts the same ranges in the same order. r must not be in flight. */
void zero_reduce_bucket_start(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc,
                              ZeroBucketReq *r);
/* Completes r's reduce-scatters and adds their sums into the shard, in the order they started; no-op when none. */
void zero_reduce_bucket_wait(ProcessGrid *g, ZeroBucketReq *r);
void zero_bucket_req_free(ZeroBucketReq *r);
/* start, then wait: the same messages, so the same sums bit for bit as a start waited for later */
void zero_reduce_bucket(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc);
/* After each rank updated its own shard: all-gather the parameters (stages >= 1). params has n_pad elements. */
void zero_gather_params(ProcessGrid *g, const ZeroPlan *z, float *params);
/* Rectangles covering the flat range [start, start + len) of a row-major [rows, cols] tensor: a partial first row,
 * whole rows, a partial last row (at most 3). off/cnt are (row, col) pairs; returns the count. */
int zero_range_rects(int64_t rows, int64_t cols, size_t start, size_t len, int64_t off[3][2], int64_t cnt[3][2]);
#endif
