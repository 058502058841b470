/* comm.h — the process grid (dp x pp x tp over MPI_COMM_WORLD) and the collectives every module uses.
 *
 * defines: ProcessGrid, Group, grid_init, grid_free, grid_describe, comm_* collectives, comm_bytes.
 * No globals: a ProcessGrid * is passed to everything that communicates. Every group of size 1 makes the
 * collectives no-ops, so single-rank code and unit tests run the same path without mpirun.
 * Rank placement: TP innermost, then PP, then DP (rank = (dp_rank * pp + pp_rank) * tp + tp_rank), so a TP group
 * stays inside a node.
 * Byte counters: every collective adds the bytes it sends from this rank (payload size; the algorithm's real
 * traffic is documented in docs/design.md) to grid->bytes[kind]; the trainer logs and resets them per step.
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
void comm_bcast_bytes(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root);
void comm_barrier(ProcessGrid *g, GroupKind k);
/* Reads and resets the byte counters. */
void comm_take_bytes(ProcessGrid *g, uint64_t out[COLL_KINDS]);
#endif
