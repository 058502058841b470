/* comm.c — ProcessGrid and collectives over MPI. See comm.h. */
#include "comm.h"
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

static void abort_job(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void comm_init(int *argc, char ***argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(argc, argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    /* errors inside MPI end the job with MPI's message rather than returning codes we would ignore */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    sd_set_abort_hook(world > 1 ? abort_job : NULL, rank, world);
}
void comm_finalize(void) {
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Finalize();
}
int comm_world_rank(void) {
    int r = 0, inited = 0;
    MPI_Initialized(&inited);
    if (inited) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}
int comm_world_size(void) {
    int s = 1, inited = 0;
    MPI_Initialized(&inited);
    if (inited) MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

static void group_make(Group *grp, int color, int key) {
    MPI_Comm *c = sd_alloc(sizeof *c, "communicator");
    MPI_Comm_split(MPI_COMM_WORLD, color, key, c);
    MPI_Comm_size(*c, &grp->size);
    MPI_Comm_rank(*c, &grp->rank);
    grp->comm = c;
}

void grid_coords(int rank, int tp, int pp, int *dp_rank, int *pp_rank, int *tp_rank) {
    *tp_rank = rank % tp;
    *pp_rank = (rank / tp) % pp;
    *dp_rank = rank / (tp * pp);
}
int grid_rank(int dp_rank, int pp_rank, int tp_rank, int tp, int pp) { return (dp_rank * pp + pp_rank) * tp + tp_rank; }

ProcessGrid *grid_init(int tp, int pp) {
    ProcessGrid *g = sd_calloc(1, sizeof *g, "process grid");
    g->world = comm_world_size();
    g->rank = comm_world_rank();
    if (tp < 1 || pp < 1 || g->world % (tp * pp) != 0)
        sd_die("parallel", "tp (%d) x pp (%d) must divide the number of ranks (%d)", tp, pp, g->world);
    g->tp = tp;
    g->pp = pp;
    g->dp = g->world / (tp * pp);
    grid_coords(g->rank, tp, pp, &g->dp_rank, &g->pp_rank, &g->tp_rank);
    group_make(&g->g[GROUP_WORLD], 0, g->rank);
    /* ranks sharing (pp, tp) form a DP group, and so on */
    group_make(&g->g[GROUP_DP], g->pp_rank * tp + g->tp_rank, g->dp_rank);
    group_make(&g->g[GROUP_PP], g->dp_rank * tp + g->tp_rank, g->pp_rank);
    group_make(&g->g[GROUP_TP], g->dp_rank * pp + g->pp_rank, g->tp_rank);
    return g;
}
void grid_free(ProcessGrid *g) {
    if (!g) return;
    for (int k = 0; k < GROUP_COUNT; k++) {
        MPI_Comm *c = g->g[k].comm;
        if (c) {
            MPI_Comm_free(c);
            free(c);
        }
    }
    free(g);
}
const char *grid_describe(const ProcessGrid *g, char *buf, size_t cap) {
    snprintf(buf, cap, "DP(%d)-PP(%d)-TP(%d)-Rank(%d)", g->dp, g->pp, g->tp, g->rank);
    return buf;
}

static MPI_Comm comm_of(ProcessGrid *g, GroupKind k) { return *(MPI_Comm *)g->g[k].comm; }

/* MPI counts are int: split large buffers into chunks */
#define CHUNK ((size_t)1 << 30)
static void allreduce(ProcessGrid *g, GroupKind k, void *buf, size_t n, MPI_Datatype t, size_t esz, MPI_Op op) {
    if (g->g[k].size == 1 || n == 0) return;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t c = n - off < CHUNK ? n - off : CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esz, (int)c, t, op, comm_of(g, k));
    }
    g->bytes[COLL_ALLREDUCE] += n * esz;
}
void comm_allreduce_sum_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n) {
    allreduce(g, k, buf, n, MPI_FLOAT, 4, MPI_SUM);
}
void comm_allreduce_sum_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n) {
    allreduce(g, k, buf, n, MPI_DOUBLE, 8, MPI_SUM);
}
void comm_allreduce_max_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n) {
    allreduce(g, k, buf, n, MPI_FLOAT, 4, MPI_MAX);
}
void comm_allreduce_max_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n) {
    allreduce(g, k, buf, n, MPI_DOUBLE, 8, MPI_MAX);
}
void comm_reduce_scatter_f32(ProcessGrid *g, GroupKind k, const float *in, float *out, size_t per_rank) {
    if (g->g[k].size == 1) {
        memcpy(out, in, per_rank * sizeof(float));
        return;
    }
    if (per_rank > (size_t)INT32_MAX) sd_die("comm", "reduce-scatter of %zu elements per rank is too large", per_rank);
    MPI_Reduce_scatter_block(in, out, (int)per_rank, MPI_FLOAT, MPI_SUM, comm_of(g, k));
    g->bytes[COLL_REDUCE_SCATTER] += per_rank * (size_t)g->g[k].size * sizeof(float);
}
void comm_allgather_f32(ProcessGrid *g, GroupKind k, float *buf, size_t per_rank) {
    if (g->g[k].size == 1) return;
    if (per_rank > (size_t)INT32_MAX) sd_die("comm", "all-gather of %zu elements per rank is too large", per_rank);
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, (int)per_rank, MPI_FLOAT, comm_of(g, k));
    g->bytes[COLL_ALLGATHER] += per_rank * (size_t)g->g[k].size * sizeof(float);
}
void comm_bcast_bytes(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root) {
    if (g->g[k].size == 1 || bytes == 0) return;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t c = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, root, comm_of(g, k));
    }
    if (g->g[k].rank == root) g->bytes[COLL_BCAST] += bytes;
}
void comm_barrier(ProcessGrid *g, GroupKind k) {
    if (g->g[k].size > 1) MPI_Barrier(comm_of(g, k));
}
_Static_assert(sizeof(MPI_Request) <= sizeof(((CommReq *)0)->opaque), "CommReq too small for MPI_Request");

static int p2p_count(size_t n) {
    if (n > (size_t)INT32_MAX) sd_die("comm", "point-to-point message of %zu elements is too large", n);
    return (int)n;
}
void comm_isend_f32(ProcessGrid *g, GroupKind k, const float *buf, size_t n, int peer, int tag, CommReq *req) {
    comm_wait(req);
    MPI_Isend(buf, p2p_count(n), MPI_FLOAT, peer, tag, comm_of(g, k), (MPI_Request *)req->opaque);
    req->active = 1;
    g->bytes[COLL_SENDRECV] += n * sizeof(float);
}
void comm_recv_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, int peer, int tag) {
    MPI_Recv(buf, p2p_count(n), MPI_FLOAT, peer, tag, comm_of(g, k), MPI_STATUS_IGNORE);
}
void comm_wait(CommReq *req) {
    if (!req->active) return;
    MPI_Wait((MPI_Request *)req->opaque, MPI_STATUS_IGNORE);
    req->active = 0;
}
void comm_sendrecv_f32(ProcessGrid *g, GroupKind k, const float *sbuf, float *rbuf, size_t n, int peer) {
    MPI_Sendrecv(sbuf, p2p_count(n), MPI_FLOAT, peer, 7, rbuf, p2p_count(n), MPI_FLOAT, peer, 7, comm_of(g, k),
                 MPI_STATUS_IGNORE);
    g->bytes[COLL_SENDRECV] += n * sizeof(float);
}

void comm_take_bytes(ProcessGrid *g, uint64_t out[COLL_KINDS]) {
    for (int i = 0; i < COLL_KINDS; i++) {
        out[i] = g->bytes[i];
        g->bytes[i] = 0;
    }
}
