/* tp.h — the conjugate pairs of tensor parallelism (Megatron-Core mappings), written out as named functions
 * because the model has no autograd: the backward calls the conjugate of each forward op in mirrored order.
 *
 *   op                     forward                       backward
 *   column-parallel input  identity                      tp_copy_bwd: all-reduce(sum) of dX
 *   row-parallel output    tp_reduce: all-reduce(sum)    identity
 *   vocab-parallel embed   tp_reduce of the rows         identity (each rank updates its own rows)
 *   vocab-parallel logp    tp_vocab_combine (max, then sums of rescaled exp-sums and target logits)
 *
 * Every function is a no-op when g is NULL or the TP group has one rank. The f32 buffers of tp_reduce and
 * tp_copy_bwd are in the grid's backend memory (comm.h stages or hands them to NCCL); tp_vocab_combine works on
 * host doubles. Sizes are element counts.
 */
#ifndef SD_TP_H
#define SD_TP_H
#include <stddef.h>
#include "comm.h"

void tp_reduce(ProcessGrid *g, float *x, size_t n);
void tp_copy_bwd(ProcessGrid *g, float *dx, size_t n);
/* In place over n rows: mx = max over ranks; se = sum over ranks of se_r * exp(mx_r - mx); tgt = sum over ranks
 * (only the rank owning the target contributes a non-zero logit). Afterwards lse = mx + log(se). */
void tp_vocab_combine(ProcessGrid *g, double *mx, double *se, double *tgt, size_t n);
/* Count of TP ranks (1 without a grid). */
int tp_size(const ProcessGrid *g);
int tp_rank(const ProcessGrid *g);
#endif
