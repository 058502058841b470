/* grad_allreduce.c — see grad_allreduce.h. */
#include "grad_allreduce.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

#define PIECE ((size_t)1 << 30) /* elements per request: MPI's int counts */

typedef struct {
    size_t off, n;     /* flat range */
    size_t left;       /* elements not yet final this step */
    bool started;
    int nreq;          /* ceil(n / PIECE) */
    CommReq *req;      /* one per piece */
} Unit;

struct GradAllreduce {
    ProcessGrid *g;
    float *grads;
    size_t from, to;
    int nunits;
    Unit *u;
    bool trace;
};

GradAllreduce *grad_allreduce_create(ProcessGrid *g, float *grads, size_t from, const size_t *off, const size_t *n,
                                     int nunits) {
    GradAllreduce *r = sd_calloc(1, sizeof *r, "gradient all-reduce");
    r->g = g, r->grads = grads, r->from = from, r->to = from, r->nunits = nunits;
    r->u = sd_calloc((size_t)(nunits ? nunits : 1), sizeof(Unit), "gradient all-reduce units");
    for (int i = 0; i < nunits; i++) {
        if (off[i] != r->to || n[i] == 0)
            sd_die("zero", "gradient unit %d at [%zu, %zu) does not follow the one before (which ends at %zu)", i,
                   off[i], off[i] + n[i], r->to);
        Unit *u = &r->u[i];
        u->off = off[i], u->n = u->left = n[i];
        u->nreq = (int)((n[i] + PIECE - 1) / PIECE);
        u->req = sd_calloc((size_t)u->nreq, sizeof(CommReq), "gradient all-reduce requests");
        r->to += n[i];
    }
    const char *t = getenv("SIMPO_TRACE");
    r->trace = t && strstr(t, "dp");
    return r;
}

void grad_allreduce_free(GradAllreduce *r) {
    if (!r) return;
    for (int i = 0; i < r->nunits; i++) {
        for (int q = 0; q < r->u[i].nreq; q++) comm_wait(&r->u[i].req[q]);
        free(r->u[i].req);
    }
    free(r->u);
    free(r);
}

static void start(GradAllreduce *r, Unit *u, bool early) {
    for (int q = 0; q < u->nreq; q++) {
        size_t at = (size_t)q * PIECE, c = u->n - at < PIECE ? u->n - at : PIECE;
        comm_iallreduce_sum_f32(r->g, GROUP_DP, r->grads + (u->off - r->from) + at, c, &u->req[q]);
    }
    u->started = true;
    if (r->trace && r->g->rank == 0)
        fprintf(stderr, "[dp] all-reduce of flat [%zu, %zu) started %s\n", u->off, u->off + u->n,
                early ? "in the backward" : "after the backward");
}

void grad_allreduce_ready(GradAllreduce *r, size_t off, size_t n) {
    size_t s = off > r->from ? off : r->from, e = off + n < r->to ? off + n : r->to;
    for (int i = 0; i < r->nunits && s < e; i++) {
        Unit *u = &r->u[i];
        size_t a = s > u->off ? s : u->off, b = e < u->off + u->n ? e : u->off + u->n;
        if (a >= b) continue;
        if (b - a > u->left || u->started)
            sd_die("zero", "the gradient of flat [%zu, %zu) was final twice in one step", a, b);
        u->left -= b - a;
        if (!u->left) start(r, u, true);
    }
    for (int i = 0; i < r->nunits; i++) /* progress for the ones on their way */
        for (int q = 0; r->u[i].started && q < r->u[i].nreq; q++) comm_test(&r->u[i].req[q]);
}

void grad_allreduce_finish(GradAllreduce *r) {
    for (int i = 0; i < r->nunits; i++)
        if (!r->u[i].started) start(r, &r->u[i], false);
    for (int i = 0; i < r->nunits; i++) {
        Unit *u = &r->u[i];
        for (int q = 0; q < u->nreq; q++) comm_wait(&u->req[q]);
        u->left = u->n, u->started = false;
    }
}
