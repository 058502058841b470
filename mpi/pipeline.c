/* pipeline.c — see pipeline.h. */
#include "pipeline.h"
#include "util.h"

typedef struct {
    PpAction *out;
    int cap, n, pp, rank;
} Emit;

static void emit(Emit *e, PpOp op, int mb) {
    if (e->n >= e->cap) sd_die("pipeline", "schedule needs more than %d actions", e->cap);
    e->out[e->n++] = (PpAction){op, mb};
}
static void forward(Emit *e, int mb) {
    if (e->rank > 0) emit(e, PP_RECV_FWD, mb);
    emit(e, PP_FWD, mb);
    if (e->rank < e->pp - 1) emit(e, PP_SEND_FWD, mb);
}
static void backward(Emit *e, int mb) {
    if (e->rank < e->pp - 1) emit(e, PP_RECV_BWD, mb);
    emit(e, PP_BWD, mb);
    if (e->rank > 0) emit(e, PP_SEND_BWD, mb);
}

int schedule_max_actions(int n_mb) { return 6 * n_mb; }

int schedule_1f1b(PpAction *out, int cap, int n_mb, int pp, int rank) {
    Emit e = {out, cap, 0, pp, rank};
    int warmup = pp - rank - 1 < n_mb ? pp - rank - 1 : n_mb;
    int next_fwd = 0, next_bwd = 0;
    /* warmup: fill the pipeline */
    for (int i = 0; i < warmup; i++) forward(&e, next_fwd++);
    /* steady state: one forward, then the backward of the oldest micro-batch in flight */
    for (int i = 0; i < n_mb - warmup; i++) {
        forward(&e, next_fwd++);
        backward(&e, next_bwd++);
    }
    /* cooldown: drain */
    for (int i = 0; i < warmup; i++) backward(&e, next_bwd++);
    return e.n;
}

int schedule_afab(PpAction *out, int cap, int n_mb, int pp, int rank) {
    Emit e = {out, cap, 0, pp, rank};
    for (int i = 0; i < n_mb; i++) forward(&e, i);
    for (int i = 0; i < n_mb; i++) backward(&e, i);
    return e.n;
}

const char *pp_op_name(PpOp op) {
    static const char *names[] = {"recv_fwd", "fwd", "send_fwd", "recv_bwd", "bwd", "send_bwd"};
    return (unsigned)op < 6 ? names[op] : "?";
}
