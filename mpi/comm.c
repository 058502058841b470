/* comm.c — ProcessGrid and collectives over MPI (staged through host buffers for a backend whose memory the host
 * cannot touch), or NCCL for the f32 buffers when grid_use_nccl was called. See comm.h. */
#include "comm.h"
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "util.h"
#ifdef SIMPO_HAVE_NCCL
#include "comm_nccl.h"
#endif

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
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) nccl_grid_free(g->nccl);
#endif
    free(g->stage);
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

void grid_set_backend(ProcessGrid *g, const Backend *be) { g->be = be; }

bool comm_nccl_built(void) {
#ifdef SIMPO_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

const char *comm_nccl_unusable(ProcessGrid *g) {
#ifdef SIMPO_HAVE_NCCL
    static char why[256];
    if (!g->be || g->be->host_addressable) {
        snprintf(why, sizeof why, "NCCL needs GPU buffers; the model is on the %s backend",
                 g->be ? g->be->name : "host");
        return why;
    }
    return nccl_unusable(g, why, sizeof why);
#else
    (void)g;
    return "this build has no NCCL (nccl.h and libnccl were not found when it was configured)";
#endif
}

void grid_use_nccl(ProcessGrid *g) {
#ifdef SIMPO_HAVE_NCCL
    const char *why = comm_nccl_unusable(g);
    if (why) sd_die("parallel.backend", "nccl: %s", why);
    if (!g->nccl) g->nccl = nccl_grid_create(g);
#else
    sd_die("parallel.backend", "nccl: this build has no NCCL (nccl.h and libnccl were not found when it was "
           "configured)");
#endif
}

const char *comm_f32_library(const ProcessGrid *g) { return g->nccl ? "nccl" : "mpi"; }

static MPI_Comm comm_of(ProcessGrid *g, GroupKind k) { return *(MPI_Comm *)g->g[k].comm; }

/* The MPI path with backend memory the host cannot touch goes through host buffers. */
static bool staged(const ProcessGrid *g) { return g->be && !g->be->host_addressable; }
static float *stage_buf(ProcessGrid *g, size_t n) {
    if (n > g->stage_cap) {
        free(g->stage);
        g->stage = sd_alloc(sd_mul_size(n, sizeof(float), "staging buffer"), "staging buffer");
        g->stage_cap = n;
    }
    return g->stage;
}
void comm_copy_f32(ProcessGrid *g, float *dst, const float *src, size_t n) {
    if (g->be) g->be->copy(dst, src, n * sizeof(float));
    else if (n && dst != src) memmove(dst, src, n * sizeof(float));
}

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
/* f32 all-reduce of backend memory: NCCL, MPI in place, or MPI on a host copy */
static void allreduce_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, MPI_Op op) {
    if (g->g[k].size == 1 || n == 0) return;
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        nccl_allreduce_f32(g->nccl, k, buf, n, op == MPI_MAX);
        g->bytes[COLL_ALLREDUCE] += n * sizeof(float);
        return;
    }
#endif
    if (!staged(g)) {
        allreduce(g, k, buf, n, MPI_FLOAT, sizeof(float), op);
        return;
    }
    float *h = stage_buf(g, n);
    g->be->download(h, buf, n * sizeof(float));
    allreduce(g, k, h, n, MPI_FLOAT, sizeof(float), op);
    g->be->upload(buf, h, n * sizeof(float));
}
void comm_allreduce_sum_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n) { allreduce_f32(g, k, buf, n, MPI_SUM); }
void comm_allreduce_max_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n) { allreduce_f32(g, k, buf, n, MPI_MAX); }
void comm_allreduce_sum_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n) {
    allreduce(g, k, buf, n, MPI_DOUBLE, 8, MPI_SUM);
}
void comm_allreduce_max_f64(ProcessGrid *g, GroupKind k, double *buf, size_t n) {
    allreduce(g, k, buf, n, MPI_DOUBLE, 8, MPI_MAX);
}
static int mpi_count(size_t n, const char *what) {
    if (n > (size_t)INT32_MAX) sd_die("comm", "%s of %zu elements per rank is too large", what, n);
    return (int)n;
}
float *comm_ireduce_scatterv_f32(ProcessGrid *g, GroupKind k, float *buf, const size_t *counts, CommReq *req) {
    comm_wait(req);
    int size = g->g[k].size, me = g->g[k].rank;
    if (size == 1) return buf;
    size_t total = 0;
    for (int r = 0; r < size; r++) total += counts[r];
    mpi_count(total, "reduce-scatter");
    g->bytes[COLL_REDUCE_SCATTER] += total * sizeof(float);
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        float *mine = nccl_ireduce_scatterv_f32(g->nccl, k, buf, counts, req->opaque);
        req->active = 2;
        return mine;
    }
#endif
    req->counts = sd_alloc(sizeof(int) * (size_t)size, "reduce-scatter counts");
    for (int r = 0; r < size; r++) req->counts[r] = (int)counts[r];
    float *h = buf;
    if (staged(g)) { /* the host copy lives until comm_wait, which sends this rank's sum back to buf's start */
        h = req->staged = sd_alloc(sd_mul_size(total ? total : 1, sizeof(float), "reduce-scatter buffer"),
                                   "reduce-scatter buffer");
        g->be->download(h, buf, total * sizeof(float));
        req->upload_to = buf, req->upload_n = counts[me], req->be = g->be;
    }
    /* MPI in place: the input is the whole buffer, this rank's sum lands at its start */
    MPI_Ireduce_scatter(MPI_IN_PLACE, h, req->counts, MPI_FLOAT, MPI_SUM, comm_of(g, k), (MPI_Request *)req->opaque);
    req->active = 1;
    return buf;
}
float *comm_reduce_scatter_f32(ProcessGrid *g, GroupKind k, float *buf, size_t per_rank) {
    int size = g->g[k].size;
    if (size == 1) return buf;
    size_t total = per_rank * (size_t)size;
    float *mine = buf;
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) mine = nccl_reduce_scatter_f32(g->nccl, k, buf, per_rank);
    else
#endif
    if (staged(g)) { /* MPI in place: the input is the whole buffer, this rank's sum lands at its start */
        float *h = stage_buf(g, total);
        g->be->download(h, buf, total * sizeof(float));
        MPI_Reduce_scatter_block(MPI_IN_PLACE, h, mpi_count(per_rank, "reduce-scatter"), MPI_FLOAT, MPI_SUM,
                                 comm_of(g, k));
        g->be->upload(buf, h, per_rank * sizeof(float));
    } else {
        MPI_Reduce_scatter_block(MPI_IN_PLACE, buf, mpi_count(per_rank, "reduce-scatter"), MPI_FLOAT, MPI_SUM,
                                 comm_of(g, k));
    }
    g->bytes[COLL_REDUCE_SCATTER] += total * sizeof(float);
    return mine;
}
void comm_allgather_f32(ProcessGrid *g, GroupKind k, float *buf, size_t per_rank) {
    int size = g->g[k].size;
    if (size == 1) return;
    size_t total = per_rank * (size_t)size;
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) nccl_allgather_f32(g->nccl, k, buf, per_rank);
    else
#endif
    if (staged(g)) {
        float *h = stage_buf(g, total), *mine = h + (size_t)g->g[k].rank * per_rank;
        g->be->download(mine, buf + (size_t)g->g[k].rank * per_rank, per_rank * sizeof(float));
        MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, h, mpi_count(per_rank, "all-gather"), MPI_FLOAT,
                      comm_of(g, k));
        g->be->upload(buf, h, total * sizeof(float));
    } else {
        MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, mpi_count(per_rank, "all-gather"), MPI_FLOAT,
                      comm_of(g, k));
    }
    g->bytes[COLL_ALLGATHER] += total * sizeof(float);
}
static void bcast_host(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root) {
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t c = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, root, comm_of(g, k));
    }
}
void comm_bcast_bytes(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root) {
    if (g->g[k].size == 1 || bytes == 0) return;
    bcast_host(g, k, buf, bytes, root);
    if (g->g[k].rank == root) g->bytes[COLL_BCAST] += bytes;
}
/* bytes of backend memory from the root to every rank of the group; not counted */
static void bcast_backend(ProcessGrid *g, GroupKind k, void *buf, size_t bytes, int root) {
    bool me = g->g[k].rank == root;
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) nccl_bcast_bytes(g->nccl, k, buf, bytes, root);
    else
#endif
    if (staged(g)) {
        char *h = (char *)stage_buf(g, (bytes + sizeof(float) - 1) / sizeof(float));
        if (me) g->be->download(h, buf, bytes);
        bcast_host(g, k, h, bytes, root);
        if (!me) g->be->upload(buf, h, bytes);
    } else {
        bcast_host(g, k, buf, bytes, root);
    }
}
void comm_allgatherv(ProcessGrid *g, GroupKind k, void *buf, size_t esz, const size_t *counts) {
    int size = g->g[k].size;
    if (size == 1) return;
    size_t at = 0;
    for (int r = 0; r < size; r++) { /* one broadcast per block: byte counts and offsets past MPI's int */
        if (counts[r]) bcast_backend(g, k, (char *)buf + at * esz, counts[r] * esz, r);
        at += counts[r];
    }
    g->bytes[COLL_ALLGATHER] += at * esz;
}
static CommReq *gather_slot(CommGatherReq *r) {
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 8;
        r->req = sd_realloc(r->req, sizeof(CommReq) * (size_t)cap, "all-gather requests");
        memset(r->req + r->cap, 0, sizeof(CommReq) * (size_t)(cap - r->cap));
        r->cap = cap;
    }
    return &r->req[r->n++];
}
void comm_iallgatherv(ProcessGrid *g, GroupKind k, void *buf, size_t esz, const size_t *counts, CommGatherReq *r) {
    int size = g->g[k].size, me = g->g[k].rank;
    if (r->n) sd_die("comm", "an all-gather started while its request is in flight");
    if (size == 1) return;
    size_t total = 0;
    for (int q = 0; q < size; q++) total += counts[q];
    g->bytes[COLL_ALLGATHER] += total * esz;
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        CommReq *q = gather_slot(r);
        nccl_ibcasts_bytes(g->nccl, k, buf, esz, counts, q->opaque);
        q->active = 2;
        return;
    }
#endif
    unsigned char *h = buf;
    if (staged(g)) { /* the blocks meet on the host; this rank's goes there first, all go back at the wait */
        size_t at = 0;
        for (int q = 0; q < me; q++) at += counts[q];
        h = r->staged = sd_alloc(total > 0 ? total * esz : 1, "all-gather buffer");
        if (counts[me]) g->be->download(h + at * esz, (unsigned char *)buf + at * esz, counts[me] * esz);
        r->upload_to = buf, r->bytes = total * esz, r->be = g->be;
    }
    size_t at = 0;
    for (int q = 0; q < size; q++) { /* one broadcast per block, in pieces of at most CHUNK bytes */
        size_t b = counts[q] * esz;
        for (size_t off = 0; off < b; off += CHUNK) {
            size_t c = b - off < CHUNK ? b - off : CHUNK;
            CommReq *rq = gather_slot(r);
            MPI_Ibcast(h + at + off, (int)c, MPI_BYTE, q, comm_of(g, k), (MPI_Request *)rq->opaque);
            rq->active = 1;
        }
        at += b;
    }
}
void comm_gather_wait(CommGatherReq *r) {
    for (int q = 0; q < r->n; q++) comm_wait(&r->req[q]);
    r->n = 0;
    if (r->upload_to) r->be->upload(r->upload_to, r->staged, r->bytes);
    free(r->staged);
    r->staged = NULL, r->upload_to = NULL;
}
void comm_gather_req_free(CommGatherReq *r) {
    comm_gather_wait(r);
    free(r->req);
    memset(r, 0, sizeof *r);
}
void comm_barrier(ProcessGrid *g, GroupKind k) {
    if (g->g[k].size > 1) MPI_Barrier(comm_of(g, k));
}
_Static_assert(sizeof(MPI_Request) <= sizeof(((CommReq *)0)->opaque), "CommReq too small for MPI_Request");

static int p2p_count(size_t n) {
    if (n > (size_t)INT32_MAX) sd_die("comm", "point-to-point message of %zu elements is too large", n);
    return (int)n;
}
/* CommReq.active: 1 an MPI request, 2 a queued NCCL operation */
void comm_isend_f32(ProcessGrid *g, GroupKind k, const float *buf, size_t n, int peer, int tag, CommReq *req) {
    comm_wait(req);
    g->bytes[COLL_SENDRECV] += n * sizeof(float);
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        nccl_isend_f32(g->nccl, k, buf, n, peer, req->opaque);
        req->active = 2;
        return;
    }
#endif
    const void *src = buf;
    if (staged(g)) { /* the host copy lives until comm_wait */
        req->staged = sd_alloc(sd_mul_size(n, sizeof(float), "send buffer"), "send buffer");
        g->be->download(req->staged, buf, n * sizeof(float));
        src = req->staged;
    }
    MPI_Isend(src, p2p_count(n), MPI_FLOAT, peer, tag, comm_of(g, k), (MPI_Request *)req->opaque);
    req->active = 1;
}
void comm_recv_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, int peer, int tag) {
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        nccl_recv_f32(g->nccl, k, buf, n, peer);
        return;
    }
#endif
    float *dst = staged(g) ? stage_buf(g, n) : buf;
    MPI_Recv(dst, p2p_count(n), MPI_FLOAT, peer, tag, comm_of(g, k), MPI_STATUS_IGNORE);
    if (dst != buf) g->be->upload(buf, dst, n * sizeof(float));
}
void comm_wait(CommReq *req) {
    if (!req->active) return;
#ifdef SIMPO_HAVE_NCCL
    if (req->active == 2) nccl_wait(req->opaque);
    else
#endif
    MPI_Wait((MPI_Request *)req->opaque, MPI_STATUS_IGNORE);
    req->active = 0;
    if (req->upload_to) req->be->upload(req->upload_to, req->staged, req->upload_n * sizeof(float));
    req->upload_to = NULL;
    free(req->staged);
    req->staged = NULL;
    free(req->counts);
    req->counts = NULL;
}
void comm_iallreduce_sum_f32(ProcessGrid *g, GroupKind k, float *buf, size_t n, CommReq *req) {
    comm_wait(req);
    if (g->g[k].size == 1 || n == 0) return;
    if (n > (size_t)INT32_MAX) sd_die("comm", "non-blocking all-reduce of %zu elements is too large", n);
    g->bytes[COLL_ALLREDUCE] += n * sizeof(float);
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        nccl_iallreduce_f32(g->nccl, k, buf, n, req->opaque);
        req->active = 2;
        return;
    }
#endif
    float *h = buf;
    if (staged(g)) { /* the host copy lives until comm_wait, which sends the sum back */
        h = req->staged = sd_alloc(sd_mul_size(n, sizeof(float), "all-reduce buffer"), "all-reduce buffer");
        g->be->download(h, buf, n * sizeof(float));
        req->upload_to = buf, req->upload_n = n, req->be = g->be;
    }
    MPI_Iallreduce(MPI_IN_PLACE, h, (int)n, MPI_FLOAT, MPI_SUM, comm_of(g, k), (MPI_Request *)req->opaque);
    req->active = 1;
}
void comm_test(CommReq *req) {
    if (req->active != 1) return;
    int done = 0; /* a completed request becomes MPI_REQUEST_NULL, which comm_wait's MPI_Wait returns at once */
    MPI_Test((MPI_Request *)req->opaque, &done, MPI_STATUS_IGNORE);
}
void comm_sendrecv_f32(ProcessGrid *g, GroupKind k, const float *sbuf, float *rbuf, size_t n, int peer) {
    g->bytes[COLL_SENDRECV] += n * sizeof(float);
#ifdef SIMPO_HAVE_NCCL
    if (g->nccl) {
        nccl_sendrecv_f32(g->nccl, k, sbuf, rbuf, n, peer);
        return;
    }
#endif
    if (!staged(g)) {
        MPI_Sendrecv(sbuf, p2p_count(n), MPI_FLOAT, peer, 7, rbuf, p2p_count(n), MPI_FLOAT, peer, 7, comm_of(g, k),
                     MPI_STATUS_IGNORE);
        return;
    }
    float *h = stage_buf(g, sd_mul_size(n, 2, "sendrecv"));
    g->be->download(h, sbuf, n * sizeof(float));
    MPI_Sendrecv(h, p2p_count(n), MPI_FLOAT, peer, 7, h + n, p2p_count(n), MPI_FLOAT, peer, 7, comm_of(g, k),
                 MPI_STATUS_IGNORE);
    g->be->upload(rbuf, h + n, n * sizeof(float));
}

void comm_take_bytes(ProcessGrid *g, uint64_t out[COLL_KINDS]) {
    for (int i = 0; i < COLL_KINDS; i++) {
        out[i] = g->bytes[i];
        g->bytes[i] = 0;
    }
}
