/* comm.h — the process grid (dp x pp x tp over MPI_COMM_WORLD) and the collectives every module uses.
 *
 * defines: ProcessGrid, Group, grid_init, grid_free, grid_describe, comm_* collectives, comm_bytes.
 * No globals: a ProcessGrid * is passed to everything that communicates. Every group of size 1 makes the
 * collectives no-ops, so single-rank code and unit tests run the same path without mpirun.
 * Rank placement: TP innermost, then PP, then DP (rank = (dp_rank * pp + pp_rank) * tp + tp_rank), so a TP group
 * stays inside a node.
 * Byte counters: every collective adds the size in bytes of the whole logical buffer it reduces or assembles
 * (all-reduce: the buffer; reduce-scatter: the full input; all-gather: the full output; broadcast: the buffer, at
 * the root) to grid->bytes[kind], on every rank of a group of size > 1. The wire traffic of the algorithm
 * (ring: 2 (p-1)/p of that for all-reduce, (p-1)/p for the others) is in docs/design.md. The trainer logs and
 * resets the counters per step.
 * Ownership: grid_init allocates the grid and its communicators; grid_free releases both.
 * Only mpi/ includes <mpi.h>.
 */
#ifndef SD_COMM_H
#define SD_COMM_H
#include <stddef.h>
#include <stdint.h>

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
} ProcessGrid;

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

/* In-place sums / max over a group. */
void comm_allreduce_sum_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n);
void comm_allreduce_sum_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n);
void comm_allreduce_max_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n);
void comm_allreduce_max_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n);
/* out[per_rank] = sum over the group of in[rank * per_rank ...]; in has size * per_rank elements. */
void comm_reduce_scatter_f32(ProcessGrid *g, GroupKind k, const float *in, float *out, size_t per_rank);
/* In place: block r of buf (per_rank elements at r * per_rank) comes from group rank r. */
void comm_allgather_f32(ProcessGrid *g, GroupKind k, float *buf, size_t per_rank);
void comm_bcast_bytes(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root);
void comm_barrier(ProcessGrid *g, GroupKind k);
/* Point-to-point (pipeline stages). A request handle for a non-blocking send; zero-initialise before first use. */
typedef struct { unsigned char opaque[64]; int active; } CommReq;
/* Starts sending n floats to group rank peer; buf must stay untouched until comm_wait(req). */
void comm_isend_f32(ProcessGrid *g, GroupKind k, const float *buf, size_t n, int peer, int tag, CommReq *req);
/* Blocks until n floats from group rank peer with this tag arrived in buf. */
void comm_recv_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, int peer, int tag);
/* Completes a send started by comm_isend_f32; no-op on an inactive request. */
void comm_wait(CommReq *req);
/* Exchanges n floats with group rank peer (send from sbuf, receive into rbuf). */
void comm_sendrecv_f32(ProcessGrid *g, GroupKind k, const float *sbuf, float *rbuf, size_t n, int peer);
/* Reads and resets the byte counters. */
void comm_take_bytes(ProcessGrid *g, uint64_t out[COLL_KINDS]);
#endif
