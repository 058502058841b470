/* tp.h — the conjugate pairs of tensor parallelism (Megatron-Core mappings), written out as named functions
 * because the model has no autograd: the backward calls the conjugate of each forward op in mirrored order.
 *
 *   op                     forward                       backward
 *   column-parallel input  identity                      tp_copy_bwd: all-reduce(sum) of dX
 *   row-parallel output    tp_reduce: all-reduce(sum)    identity
 *   vocab-parallel embed   tp_reduce of the rows         identity (each rank updates its own rows)
 *   vocab-parallel logp    tp_vocab_combine (max, then sums of rescaled exp-sums, target logits, logit sums)
 * and sequence parallelism's (Megatron-Core's gather_from / reduce_scatter_to_sequence_parallel_region): rows cut
 * over TP, rank r holding block r of `rows` rows
 *   before column-parallel tp_sp_gather: all-gather          tp_sp_reduce_scatter of dX
 *   after row-parallel     tp_sp_reduce_scatter              tp_sp_gather of dY
 *
 * The tensor-parallel ones are no-ops when g is NULL or the TP group has one rank; the sequence-parallel ones need
 * a grid (one TP rank: a copy and the padding's zeros). The f32 buffers of tp_reduce, tp_copy_bwd and tp_sp_* are in
 * the grid's backend memory (comm.h stages or hands them to NCCL); tp_vocab_combine works on host doubles. Sizes are
 * element counts.
 */
#ifndef SD_TP_H
#define SD_TP_H
#include <stddef.h>
#include "comm.h"

void tp_reduce(ProcessGrid *g, float *x, size_t n);
void tp_copy_bwd(ProcessGrid *g, float *dx, size_t n);
/* In place over n rows: mx = max over ranks; se = sum over ranks of se_r * exp(mx_r - mx); tgt = sum over ranks
 * (only the rank owning the target contributes a non-zero logit); ls (the rows' logit sums) = sum over ranks.
 * Afterwards lse = mx + log(se). */
void tp_vocab_combine(ProcessGrid *g, double *mx, double *se, double *tgt, double *ls, size_t n);
/* Count of TP ranks (1 without a grid). */
/* Sequence parallelism, backend memory, w floats a row: the whole rows full [rows x tp, w] from this rank's block
 * src [rows, w] (copied to its place in full unless it is there; bf16 rows travel as floats). Returns full. */
float *tp_sp_gather(ProcessGrid *g, float *full, const float *src, size_t rows, size_t w);
/* This rank's block [rows, w] of the sum over TP of part [rows x tp, w], whose first n rows hold this rank's partial
 * sums: the rows past n are zeroed first (padding: a micro-batch's tokens need not divide by tp), then the
 * reduce-scatter. Returns where the block lies, inside part (comm.h comm_reduce_scatter_f32). */
const float *tp_sp_reduce_scatter(ProcessGrid *g, float *part, size_t n, size_t rows, size_t w);
int tp_size(const ProcessGrid *g);
int tp_rank(const ProcessGrid *g);
#endif
