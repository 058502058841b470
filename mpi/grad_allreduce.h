/* grad_allreduce.h — the data-parallel all-reduce of the gradient under ZeRO 0 and 1, in units, each started the
 * moment the step's last backward has completed it (Megatron-Core's overlap_grad_reduce, DeepSpeed's overlap_comm).
 *
 * defines: GradAllreduce, grad_allreduce_create, grad_allreduce_free, grad_allreduce_ready, grad_allreduce_finish.
 * Why units: a non-blocking all-reduce of a layer's gradient can run beside the backward of the layers before it,
 * instead of one all-reduce of the whole gradient after the backward. The summation order of an element depends on
 * the message it travels in (MPI's and NCCL's algorithms cut a buffer by its size), so the units are the same
 * whether or not they start inside the backward: a step reduced after the backward (ready never called) and one
 * reduced inside it give the same numbers bit for bit.
 * Units: flat ranges of the rank's gradient, in increasing order and without gaps, covering [from, to) (the caller
 * cuts them: the model's gradient buckets, src/grad_partition.c model_grad_units). Units past 2^30 elements go in
 * pieces MPI's int counts carry.
 * Ownership: grad_allreduce_create copies the unit list; the gradient buffer stays the caller's (backend memory,
 * holding flat elements [from, to)) and must outlive the object; grad_allreduce_free releases the rest.
 */
#ifndef SD_GRAD_ALLREDUCE_H
#define SD_GRAD_ALLREDUCE_H
#include <stdbool.h>
#include <stddef.h>
#include "comm.h"

typedef struct GradAllreduce GradAllreduce;

/* grads: backend memory of flat elements [from, from + sum of n); off[i], n[i]: unit i (off[0] == from, each
 * unit starting where the one before ends). */
GradAllreduce *grad_allreduce_create(ProcessGrid *g, float *grads, size_t from, const size_t *off, const size_t *n,
                                     int nunits);
void grad_allreduce_free(GradAllreduce *r);
/* The flat range [off, off + n) has its final gradient for the step: starts the all-reduce of every unit this
 * completes (every DP rank calls it with the same ranges in the same order), and lets the started ones progress.
 * Parts outside [from, to) are ignored; a part marked twice in one step is an error. */
void grad_allreduce_ready(GradAllreduce *r, size_t off, size_t n);
/* Starts the units not started yet, in order, and waits for all of them: the group's sum of the gradient is in
 * grads afterwards, and the next step may begin. */
void grad_allreduce_finish(GradAllreduce *r);
#endif
