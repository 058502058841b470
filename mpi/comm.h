/* comm.h — the process grid (dp x pp x tp over MPI_COMM_WORLD) and the collectives every module uses.
 *
 * defines: ProcessGrid, Group, grid_init, grid_free, grid_describe, grid_set_backend, grid_use_nccl,
 *          comm_nccl_built, comm_* collectives (blocking, and non-blocking with CommReq / CommGatherReq), comm_bytes.
 * No globals: a ProcessGrid * is passed to everything that communicates. Every group of size 1 makes the
 * collectives no-ops, so single-rank code and unit tests run the same path without mpirun.
 * Rank placement: TP innermost, then PP, then DP (rank = (dp_rank * pp + pp_rank) * tp + tp_rank), so a TP group
 * stays inside a node.
 * Two kinds of buffers:
 *   - the f32 collectives and point-to-point calls take buffers in the memory of the grid's backend
 *     (grid_set_backend; host memory when none is set). With MPI, a backend whose memory is not host-addressable
 *     (the CUDA backend, the strict CPU backend) is staged through host buffers: download, MPI, upload — so several
 *     ranks can share one GPU. With NCCL (grid_use_nccl; builds with SIMPO_HAVE_NCCL) they go to NCCL directly.
 *   - the f64 and byte collectives and the barrier take host memory and always use MPI (metrics, norms, flags).
 * Byte counters: every collective adds the size in bytes of the whole logical buffer it reduces or assembles
 * (all-reduce: the buffer; reduce-scatter: the full input; all-gather: the full output; broadcast: the buffer, at
 * the root; send: the message) to grid->bytes[kind], on every rank of a group of size > 1, whichever library
 * moves it. The wire traffic of the algorithm (ring: 2 (p-1)/p of that for all-reduce, (p-1)/p for the others) is
 * in docs/design.md. The trainer logs and resets the counters per step.
 * Ownership: grid_init allocates the grid and its communicators; grid_free releases both (and the NCCL ones).
 * Only mpi/ includes <mpi.h> (and <nccl.h>).
 */
#ifndef SD_COMM_H
#define SD_COMM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct Backend;

typedef enum { GROUP_WORLD = 0, GROUP_DP, GROUP_PP, GROUP_TP, GROUP_COUNT } GroupKind;
typedef enum { COLL_ALLREDUCE = 0, COLL_REDUCE_SCATTER, COLL_ALLGATHER, COLL_BCAST, COLL_SENDRECV, COLL_KINDS } CollKind;

typedef struct {
    int size, rank;
    void *comm;              /* MPI_Comm * (opaque outside mpi/) */
} Group;

typedef struct ProcessGrid {
    int world, rank;
    int dp, pp, tp;          /* sizes */
    int dp_rank, pp_rank, tp_rank;
    Group g[GROUP_COUNT];
    uint64_t bytes[COLL_KINDS];
    const struct Backend *be;  /* memory of the f32 buffers (grid_set_backend); NULL: host memory */
    void *nccl;                /* NCCL communicators when grid_use_nccl was called (mpi/comm_nccl.c) */
    float *stage;              /* host staging buffer of the MPI path for a non-host-addressable backend */
    size_t stage_cap;          /* its capacity (floats) */
} ProcessGrid;

/* A request handle of a non-blocking call (comm_isend_f32, comm_iallreduce_sum_f32, comm_ireduce_scatterv_f32);
 * zero-initialise before first use, complete with comm_wait. */
typedef struct {
    unsigned char opaque[64];
    int active;
    float *staged;           /* host copy being sent or reduced (MPI path with a non-host-addressable backend);
                              * owned by the request: comm_wait frees it */
    float *upload_to;        /* a staged non-blocking collective: the backend buffer the sum goes back to at comm_wait */
    size_t upload_n;         /* its length (floats) */
    int *counts;             /* comm_ireduce_scatterv_f32 on MPI: the counts MPI reads until completion (owned) */
    const struct Backend *be;
} CommReq;

/* MPI_Init (if needed) and sd_die's abort hook. Safe to call once per process. */
void comm_init(int *argc, char ***argv);
void comm_finalize(void);
int comm_world_rank(void);
int comm_world_size(void);

/* Rank placement, pure: rank = (dp_rank * pp + pp_rank) * tp + tp_rank (TP innermost, then PP, then DP). */
void grid_coords(int rank, int tp, int pp, int *dp_rank, int *pp_rank, int *tp_rank);
int grid_rank(int dp_rank, int pp_rank, int tp_rank, int tp, int pp);
/* Builds the grid; world % (tp*pp) must divide (dies naming parallel.tp/pp and the world size). */
ProcessGrid *grid_init(int tp, int pp);
void grid_free(ProcessGrid *g);
/* "DP(2)-PP(1)-TP(2)-Rank(3)" into buf. */
const char *grid_describe(const ProcessGrid *g, char *buf, size_t cap);
/* The backend whose memory the f32 buffers live in (not owned; NULL: host memory). Set before the first call. */
void grid_set_backend(ProcessGrid *g, const struct Backend *be);
/* Whether this build has the NCCL collectives (SIMPO_HAVE_NCCL). */
bool comm_nccl_built(void);
/* Collective over the world (in an NCCL build): NULL when grid_use_nccl can work — GPU buffers, a backend with a
 * sync hook, one GPU per rank — else the reason (static storage). */
const char *comm_nccl_unusable(ProcessGrid *g);
/* Collective over the world: from now on the f32 collectives and point-to-point calls use NCCL, one communicator
 * per group of the grid (the unique id broadcast over that group's MPI communicator) and, for the pipeline group, a
 * second one so that the two directions of point-to-point traffic never queue behind each other. Needs a build
 * with NCCL, a backend set whose memory is GPU memory with this rank's device current, and comm_nccl_unusable
 * NULL on every rank (dies naming the reason otherwise). */
void grid_use_nccl(ProcessGrid *g);
/* "nccl" or "mpi": what moves the f32 buffers. */
const char *comm_f32_library(const ProcessGrid *g);

/* Backend memory (see above). In-place sums / max over a group. */
void comm_allreduce_sum_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n);
void comm_allreduce_max_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n);
/* Backend memory, in place, non-blocking, blocks of unequal sizes (ZeRO-2's buckets cut through the shards): buf
 * holds the group's blocks in rank order, block r of counts[r] elements (any may be 0; their sum <= INT32_MAX; counts
 * copied). Once comm_wait(req) returns, the sum over the group of this rank's block lies at the returned pointer,
 * inside buf (its start with MPI, the block's own place with NCCL); the rest of buf is undefined, and buf must stay
 * untouched until then. Staging and ordering as comm_iallreduce_sum_f32's (MPI_Ireduce_scatter; a blocking call
 * is this and comm_wait). */
float *comm_ireduce_scatterv_f32(ProcessGrid *g, GroupKind k, float *buf, const size_t *counts, CommReq *req);
/* Backend memory, in place, equal blocks (sequence parallelism's rows): buf holds the group's blocks of per_rank
 * elements in rank order; afterwards the sum over the group of this rank's block lies at the returned pointer, as
 * comm_ireduce_scatterv_f32's does (blocking). */
float *comm_reduce_scatter_f32(ProcessGrid *g, GroupKind k, float *buf, size_t per_rank);
/* Backend memory. In place: block r of buf (per_rank elements at r * per_rank) comes from group rank r. */
void comm_allgather_f32(ProcessGrid *g, GroupKind k, float *buf, size_t per_rank);
/* Backend memory, in place, blocks of unequal sizes (ZeRO's sharded master weights): buf holds the group's blocks in
 * rank order, block r of counts[r] elements of esz bytes; afterwards every rank's buf holds every rank's block (one
 * broadcast per block: no int limit on counts or offsets). Counted as an all-gather of the whole buffer. */
void comm_allgatherv(ProcessGrid *g, GroupKind k, void *buf, size_t esz, const size_t *counts);
/* A comm_iallgatherv in flight: zero-initialise before first use, release with comm_gather_req_free. */
typedef struct {
    int n, cap;              /* requests in flight (a block's broadcast, in pieces MPI's int counts carry) */
    CommReq *req;
    unsigned char *staged;   /* the MPI path with a non-host-addressable backend: the blocks on the host (owned) */
    void *upload_to;         /* ... and where they go back at comm_gather_wait */
    size_t bytes;
    const struct Backend *be;
} CommGatherReq;
/* comm_allgatherv, non-blocking: buf (backend memory) holds every rank's block once comm_gather_wait(r) returns, and
 * must stay untouched until then (this rank's block is read now). Every rank of the group starts it in the same
 * order as its other collectives on the group. MPI_Ibcast per block; staged through a host copy for a
 * non-host-addressable backend (uploaded whole at the wait); NCCL: queued on the group's stream after the backend's
 * work so far. Counted as comm_allgatherv. r must not be in flight. */
void comm_iallgatherv(ProcessGrid *g, GroupKind k, void *buf, size_t esz, const size_t *counts, CommGatherReq *r);
void comm_gather_wait(CommGatherReq *r);
void comm_gather_req_free(CommGatherReq *r);
/* Host memory, MPI. */
void comm_allreduce_sum_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n);
void comm_allreduce_max_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n);
void comm_bcast_bytes(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root);
void comm_barrier(ProcessGrid *g, GroupKind k);
/* Point-to-point (pipeline stages), backend memory (CommReq above). Messages between two ranks arrive in the order
 * they were sent (NCCL has no tags: the tag only checks the MPI path). */
/* Starts sending n floats to group rank peer; buf must stay untouched until comm_wait(req). */
void comm_isend_f32(ProcessGrid *g, GroupKind k, const float *buf, size_t n, int peer, int tag, CommReq *req);
/* Blocks until n floats from group rank peer with this tag arrived in buf. */
void comm_recv_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, int peer, int tag);
/* Completes a send started by comm_isend_f32 or a collective started by comm_iallreduce_sum_f32 or
 * comm_ireduce_scatterv_f32; no-op on an inactive request. */
void comm_wait(CommReq *req);
/* Backend memory, in place: starts the group's sum of buf's n floats (n <= INT32_MAX), which buf holds once
 * comm_wait(req) returns; buf must stay untouched until then. Every rank of the group starts the group's
 * non-blocking all-reduces in the same order. With MPI the library's non-blocking algorithm runs (MPI_Iallreduce:
 * not the blocking call's, whose summation order may differ at more than two ranks); on a non-host-addressable
 * backend buf is copied to a host buffer now and the sum copied back at comm_wait; with NCCL the reduction is
 * queued on the group's stream after the backend's work so far. Counted as comm_allreduce_sum_f32. */
void comm_iallreduce_sum_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, CommReq *req);
/* Lets the MPI library move a started request on (Open MPI progresses non-blocking collectives only inside MPI
 * calls); it stays active until comm_wait. No-op on an inactive or NCCL request. */
void comm_test(CommReq *req);
/* Exchanges n floats with group rank peer (send from sbuf, receive into rbuf). */
void comm_sendrecv_f32(ProcessGrid *g, GroupKind k, const float *sbuf, float *rbuf, size_t n, int peer);
/* Copies n floats within the grid's backend memory (memcpy for host memory). */
void comm_copy_f32(ProcessGrid *g, float *dst, const float *src, size_t n);
/* Reads and resets the byte counters. */
void comm_take_bytes(ProcessGrid *g, uint64_t out[COLL_KINDS]);
#endif
