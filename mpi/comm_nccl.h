/* comm_nccl.h — private to mpi/: the NCCL side of the f32 collectives (mpi/comm_nccl.c, built with
 * SIMPO_HAVE_NCCL). comm.c calls these when grid_use_nccl was called; byte counters stay in comm.c.
 *
 * defines: NcclGrid, nccl_grid_create, nccl_grid_free and one call per collective.
 * Buffers are GPU memory of the current device. Each communicator has its own non-blocking CUDA stream; before an
 * operation the backend's queued work is finished (Backend.sync, which the backend must provide: creation dies
 * without it); collectives and receives return when complete, a send when queued (nccl_wait completes it).
 * Point-to-point: the pipeline group has two communicators, one for the messages to the higher group rank and one
 * for those to the lower, so a send waiting for its receiver never holds up a message going the other way.
 */
#ifndef SD_COMM_NCCL_H
#define SD_COMM_NCCL_H
#include <stddef.h>
#include "comm.h"

typedef struct NcclGrid NcclGrid;

/* Collective over the world: NULL when every rank may join NCCL communicators (the backend has a sync hook and no
 * two ranks drive the same GPU, compared by host name and PCI bus id), else why not, in why[cap]. */
const char *nccl_unusable(ProcessGrid *g, char *why, size_t cap);
/* Collective over the world (MPI is used to broadcast the unique ids). */
NcclGrid *nccl_grid_create(ProcessGrid *g);
void nccl_grid_free(NcclGrid *n);
void nccl_allreduce_f32(NcclGrid *n, GroupKind k, float *buf, size_t count, int max);
/* comm.h comm_ireduce_scatterv_f32: one in-place reduce per rank with a block, grouped, queued on the group's
 * stream after the backend's work so far; returns this rank's block; *opaque as nccl_isend_f32's */
float *nccl_ireduce_scatterv_f32(NcclGrid *n, GroupKind k, float *buf, const size_t *counts, void *opaque);
float *nccl_reduce_scatter_f32(NcclGrid *n, GroupKind k, float *buf, size_t per_rank);
void nccl_allgather_f32(NcclGrid *n, GroupKind k, float *buf, size_t per_rank);
void nccl_bcast_bytes(NcclGrid *n, GroupKind k, void *buf, size_t bytes, int root);
/* comm.h comm_iallgatherv: one broadcast per rank's block of counts[r] elements of esz bytes, grouped, queued on the
 * group's stream after the backend's work so far; *opaque as nccl_isend_f32's */
void nccl_ibcasts_bytes(NcclGrid *n, GroupKind k, void *buf, size_t esz, const size_t *counts, void *opaque);
/* Queues the send; *opaque (at least sizeof(void *) bytes) receives what nccl_wait needs. */
void nccl_isend_f32(NcclGrid *n, GroupKind k, const float *buf, size_t count, int peer, void *opaque);
void nccl_wait(void *opaque);
/* Queues the in-place sum of buf on the group's stream after the backend's work so far; *opaque as nccl_isend_f32's
 * (nccl_wait completes it). */
void nccl_iallreduce_f32(NcclGrid *n, GroupKind k, float *buf, size_t count, void *opaque);
void nccl_recv_f32(NcclGrid *n, GroupKind k, float *buf, size_t count, int peer);
void nccl_sendrecv_f32(NcclGrid *n, GroupKind k, const float *sbuf, float *rbuf, size_t count, int peer);
#endif
