/* comm_nccl.c — the f32 collectives over NCCL (built with SIMPO_HAVE_NCCL). See comm_nccl.h.
 * Untested on hardware so far: it compiles and links wherever NCCL is found, and a run selects it only with the
 * CUDA backend (parallel.backend: nccl, or auto with device cuda). */
#include "comm_nccl.h"
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "util.h"

#define NC(x)                                                                                               \
    do {                                                                                                    \
        ncclResult_t r_ = (x);                                                                              \
        if (r_ != ncclSuccess) sd_die("nccl", "%s: %s", #x, ncclGetErrorString(r_));                        \
    } while (0)
#define CU(x)                                                                                               \
    do {                                                                                                    \
        cudaError_t e_ = (x);                                                                               \
        if (e_ != cudaSuccess) sd_die("cuda", "%s: %s", #x, cudaGetErrorString(e_));                        \
    } while (0)

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    int size, rank;
} NComm;

struct NcclGrid {
    const Backend *be;
    NComm c[GROUP_COUNT];   /* one per group of size > 1; for GROUP_PP the messages to the higher rank */
    NComm pp_down;          /* GROUP_PP: the messages to the lower rank */
};

_Static_assert(sizeof(cudaEvent_t) <= 64, "CommReq.opaque holds a cudaEvent_t");

static void ncomm_make(NComm *nc, MPI_Comm mc) {
    MPI_Comm_size(mc, &nc->size);
    MPI_Comm_rank(mc, &nc->rank);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (nc->rank == 0) NC(ncclGetUniqueId(&id));
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, mc);
    NC(ncclCommInitRank(&nc->comm, nc->size, id, nc->rank));
    /* the greatest priority, the backend's main stream's (cuda/backend_cuda.cu): a pipeline send or receive waiting
     * beside the compute gets the SMs as soon as the compute's do, as before the backend took that priority (for
     * its late queue, which has the least) */
    int least = 0, greatest = 0;
    CU(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    CU(cudaStreamCreateWithPriority(&nc->stream, cudaStreamNonBlocking, greatest));
}
static void ncomm_free(NComm *nc) {
    if (!nc->comm) return;
    ncclCommDestroy(nc->comm);
    cudaStreamDestroy(nc->stream);
    nc->comm = NULL;
}

const char *nccl_unusable(ProcessGrid *g, char *why, size_t cap) {
    char key[512] = "", bus[64] = "?";
    int dev = -1;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetPCIBusId(bus, (int)sizeof bus, dev);
    gethostname(key, 256);
    key[255] = 0;
    size_t kl = strlen(key);
    snprintf(key + kl, sizeof key - kl, "/%s", bus);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of host/bus */
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    uint64_t *all = sd_calloc((size_t)g->world, sizeof *all, "device ids");
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int a = -1, b = -1;
    for (int i = 0; i < g->world && a < 0; i++)
        for (int j = i + 1; j < g->world; j++)
            if (all[i] == all[j]) {
                a = i, b = j;
                break;
            }
    free(all);
    int nosync = !g->be || !g->be->sync, any = nosync;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        snprintf(why, cap, "the %s backend has no sync hook (Backend.sync) to order NCCL's streams after its work",
                 g->be ? g->be->name : "host");
        return why;
    }
    if (a >= 0) {
        snprintf(why, cap, "ranks %d and %d drive the same GPU (NCCL needs one GPU per rank; MPI stages through host "
                 "memory and lets ranks share one)", a, b);
        return why;
    }
    return NULL;
}

NcclGrid *nccl_grid_create(ProcessGrid *g) {
    NcclGrid *n = sd_calloc(1, sizeof *n, "nccl communicators");
    n->be = g->be;
    if (!n->be || !n->be->sync)
        sd_die("parallel.backend", "nccl: the %s backend has no sync hook (Backend.sync), so NCCL's streams cannot "
               "be ordered after its work", n->be ? n->be->name : "host");
    /* the same order on every rank; each step pairs only the members of one group */
    for (int k = 0; k < GROUP_COUNT; k++)
        if (g->g[k].size > 1) ncomm_make(&n->c[k], *(MPI_Comm *)g->g[k].comm);
    if (g->g[GROUP_PP].size > 1) ncomm_make(&n->pp_down, *(MPI_Comm *)g->g[GROUP_PP].comm);
    return n;
}

void nccl_grid_free(NcclGrid *n) {
    if (!n) return;
    for (int k = 0; k < GROUP_COUNT; k++) ncomm_free(&n->c[k]);
    ncomm_free(&n->pp_down);
    free(n);
}

static NComm *comm_for(NcclGrid *n, GroupKind k) {
    if (!n->c[k].comm) sd_die("nccl", "no communicator for group %d (one rank?)", (int)k);
    return &n->c[k];
}

/* Work queued on stream s next runs after everything the backend queued: the backend's sync waits for it (only
 * for the backend's own stream, never for a send queued on ours, which may wait for its receiver). */
static void after_backend(NcclGrid *n, cudaStream_t s) {
    (void)s;
    n->be->sync();
}

/* a completion event of the work queued on c's stream so far into *opaque (nccl_wait waits for it) */
static void record(NComm *c, void *opaque) {
    cudaEvent_t ev;
    CU(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    CU(cudaEventRecord(ev, c->stream));
    memcpy(opaque, &ev, sizeof ev);
}

void nccl_allreduce_f32(NcclGrid *n, GroupKind k, float *buf, size_t count, int max) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    NC(ncclAllReduce(buf, buf, count, ncclFloat32, max ? ncclMax : ncclSum, c->comm, c->stream));
    CU(cudaStreamSynchronize(c->stream));
}

float *nccl_ireduce_scatterv_f32(NcclGrid *n, GroupKind k, float *buf, const size_t *counts, void *opaque) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    float *mine = buf;
    size_t off = 0;
    NC(ncclGroupStart());
    for (int r = 0; r < c->size; r++) {
        if (r == c->rank) mine = buf + off;
        if (counts[r]) NC(ncclReduce(buf + off, buf + off, counts[r], ncclFloat32, ncclSum, r, c->comm, c->stream));
        off += counts[r];
    }
    NC(ncclGroupEnd());
    record(c, opaque);
    return mine;
}

/* in place at the block's own place (recvbuff == sendbuff + rank * recvcount) */
float *nccl_reduce_scatter_f32(NcclGrid *n, GroupKind k, float *buf, size_t per_rank) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    float *mine = buf + (size_t)c->rank * per_rank;
    NC(ncclReduceScatter(buf, mine, per_rank, ncclFloat32, ncclSum, c->comm, c->stream));
    CU(cudaStreamSynchronize(c->stream));
    return mine;
}

void nccl_allgather_f32(NcclGrid *n, GroupKind k, float *buf, size_t per_rank) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    NC(ncclAllGather(buf + (size_t)c->rank * per_rank, buf, per_rank, ncclFloat32, c->comm, c->stream));
    CU(cudaStreamSynchronize(c->stream));
}

void nccl_bcast_bytes(NcclGrid *n, GroupKind k, void *buf, size_t bytes, int root) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    NC(ncclBroadcast(buf, buf, bytes, ncclUint8, root, c->comm, c->stream));
    CU(cudaStreamSynchronize(c->stream));
}

void nccl_ibcasts_bytes(NcclGrid *n, GroupKind k, void *buf, size_t esz, const size_t *counts, void *opaque) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    size_t at = 0;
    NC(ncclGroupStart());
    for (int r = 0; r < c->size; r++) {
        char *p = (char *)buf + at * esz;
        if (counts[r]) NC(ncclBroadcast(p, p, counts[r] * esz, ncclUint8, r, c->comm, c->stream));
        at += counts[r];
    }
    NC(ncclGroupEnd());
    record(c, opaque);
}

/* The communicator carrying messages from group rank `from` to group rank `to`: on the pipeline group one per
 * direction (see comm_nccl.h), elsewhere the group's own. */
static NComm *p2p_comm(NcclGrid *n, GroupKind k, int from, int to) {
    NComm *c = comm_for(n, k);
    if (k == GROUP_PP && to < from) return &n->pp_down;
    return c;
}

void nccl_isend_f32(NcclGrid *n, GroupKind k, const float *buf, size_t count, int peer, void *opaque) {
    int me = comm_for(n, k)->rank;
    NComm *c = p2p_comm(n, k, me, peer);
    after_backend(n, c->stream);
    NC(ncclSend(buf, count, ncclFloat32, peer, c->comm, c->stream));
    record(c, opaque);
}

void nccl_iallreduce_f32(NcclGrid *n, GroupKind k, float *buf, size_t count, void *opaque) {
    NComm *c = comm_for(n, k);
    after_backend(n, c->stream);
    NC(ncclAllReduce(buf, buf, count, ncclFloat32, ncclSum, c->comm, c->stream));
    record(c, opaque);
}

void nccl_wait(void *opaque) {
    cudaEvent_t ev;
    memcpy(&ev, opaque, sizeof ev);
    CU(cudaEventSynchronize(ev));
    CU(cudaEventDestroy(ev));
}

void nccl_recv_f32(NcclGrid *n, GroupKind k, float *buf, size_t count, int peer) {
    int me = comm_for(n, k)->rank;
    NComm *c = p2p_comm(n, k, peer, me);
    after_backend(n, c->stream);
    NC(ncclRecv(buf, count, ncclFloat32, peer, c->comm, c->stream));
    CU(cudaStreamSynchronize(c->stream));
}

void nccl_sendrecv_f32(NcclGrid *n, GroupKind k, const float *sbuf, float *rbuf, size_t count, int peer) {
    int me = comm_for(n, k)->rank;
    NComm *cs = p2p_comm(n, k, me, peer), *cr = p2p_comm(n, k, peer, me);
    after_backend(n, cs->stream);
    if (cr != cs) after_backend(n, cr->stream);
    NC(ncclGroupStart());
    NC(ncclSend(sbuf, count, ncclFloat32, peer, cs->comm, cs->stream));
    NC(ncclRecv(rbuf, count, ncclFloat32, peer, cr->comm, cr->stream));
    NC(ncclGroupEnd());
    CU(cudaStreamSynchronize(cs->stream));
    if (cr != cs) CU(cudaStreamSynchronize(cr->stream));
}
