/* backend_profile.c — see backend_profile.h. A table of wrappers, one per timed op of backend.h, each the inner
 * op between begin() and end(); the memory, precision and hold ops are forwarded untimed (they queue no work, or
 * the work lands in the next matmul). */
#include "backend_profile.h"
#include <stdlib.h>
#include <string.h>
#include "util.h"

#define OPS(X)                                                                                                      \
    X(zero) X(copy) X(upload) X(download) X(matmul) X(matmul16) X(to_bf16) X(rmsnorm_fwd16) X(swiglu_fwd16)         \
    X(geglu_fwd16) X(swiglu_bwd16) X(geglu_bwd16) X(xent_bwd16) X(add) X(scale) X(sumsq) X(sumsq_many) X(embed_fwd) \
    X(embed_bwd) X(gather_rows) X(scatter_rows) X(add_rows) X(add_rows_b16) X(rmsnorm_fwd) X(rmsnorm_bwd)           \
    X(rope_fwd) X(rope_bwd) X(attn_fwd) X(attn_bwd) X(swiglu_fwd) X(swiglu_bwd) X(geglu_fwd) X(geglu_bwd)           \
    X(softcap_fwd) X(softcap_bwd) X(xent_stats) X(xent_bwd) X(adamw) X(adamw_sumsq) X(matmul16_res)                 \
    X(matmul16_out16) X(swiglu_fwd_b16) X(geglu_fwd_b16) X(swiglu_bwd_b16) X(geglu_bwd_b16) X(swiglu_bwd_pack_b16)  \
    X(geglu_bwd_pack_b16) X(rope_fwd_b16) X(rope_bwd_b16) X(rope_bwd_pack_b16) X(attn_fwd_b16) X(attn_bwd_b16)      \
    X(xent_stats_b16) X(xent_bwd_b16) X(attn_fwd_b16_rows) X(attn_bwd_b16_rows) X(attn_fwd_rows) X(attn_bwd_rows)      \
    X(rmsnorm_bwd_out16) X(bias_add) X(bias_add_b16) X(bias_grad) X(bias_grad_b16) X(rmsnorm_fwd_b16)         \
    X(rmsnorm_bwd_b16)
#define OP_ENUM(name) OP_##name,
#define OP_NAME(name) #name,
enum { OPS(OP_ENUM) OP_COUNT };
static const char *const op_names[OP_COUNT] = {OPS(OP_NAME)};

typedef struct {
    long calls;
    double s;
    double bytes; /* of memory traffic, by the op's formula (0: not counted, as for matmuls and attention) */
} Tally;
/* a matmul shape: C[M,N] += op(A)[M,K] op(B)[K,N]; a16 / b16: bf16-storage operands (matmul16) */
typedef struct {
    int M, N, K;
    bool tA, tB, a16, b16;
    Tally t;
} Shape;
enum { MAX_SHAPES = 512 };

static const Backend *g_in;
static Backend g_prof;
static Tally g_ops[OP_COUNT];
static Shape g_shapes[MAX_SHAPES];
static int g_nshapes;
static long g_shapes_dropped; /* calls of shapes beyond MAX_SHAPES (timed in g_ops, not per shape) */

/* backend_profile_pause: the tallies as they were when paused, restored on resuming */
static Tally g_saved_ops[OP_COUNT];
static Shape g_saved_shapes[MAX_SHAPES];
static int g_saved_nshapes;
static long g_saved_dropped;
static bool g_paused;

void backend_profile_pause(bool paused) {
    if (paused == g_paused) sd_die("profile", "backend_profile_pause(%d) twice", (int)paused);
    g_paused = paused;
    if (paused) {
        memcpy(g_saved_ops, g_ops, sizeof g_ops);
        memcpy(g_saved_shapes, g_shapes, sizeof g_shapes);
        g_saved_nshapes = g_nshapes, g_saved_dropped = g_shapes_dropped;
    } else {
        memcpy(g_ops, g_saved_ops, sizeof g_ops);
        memcpy(g_shapes, g_saved_shapes, sizeof g_shapes);
        g_nshapes = g_saved_nshapes, g_shapes_dropped = g_saved_dropped;
    }
}

/* the inner backend's queued work done, then the clock: an op's time is its own */
static double begin(void) {
    if (g_in->sync) g_in->sync();
    return sd_now();
}
static double end(int op, double t0, double bytes) {
    if (g_in->sync) g_in->sync();
    double dt = sd_now() - t0;
    g_ops[op].calls++;
    g_ops[op].s += dt;
    g_ops[op].bytes += bytes;
    return dt;
}
/* the op `call`, timed; `bytes`: the memory traffic it needs at least (each input read once, each output written
 * once), so that bytes / time says how close a memory-bound op runs to the card's bandwidth */
#define TIMED(op, bytes, call)                                                                                     \
    do {                                                                                                           \
        double t0_ = begin();                                                                                      \
        call;                                                                                                      \
        end(OP_##op, t0_, (double)(bytes));                                                                        \
    } while (0)

static void shape_add(int M, int N, int K, bool tA, bool tB, bool a16, bool b16, double dt) {
    for (int i = 0; i < g_nshapes; i++) {
        Shape *s = &g_shapes[i];
        if (s->M == M && s->N == N && s->K == K && s->tA == tA && s->tB == tB && s->a16 == a16 && s->b16 == b16) {
            s->t.calls++, s->t.s += dt;
            return;
        }
    }
    if (g_nshapes == MAX_SHAPES) {
        g_shapes_dropped++;
        return;
    }
    g_shapes[g_nshapes++] = (Shape){M, N, K, tA, tB, a16, b16, {1, dt, 0}};
}

static void p_zero(void *p, size_t bytes) { TIMED(zero, bytes, g_in->zero(p, bytes)); }
static void p_copy(void *d, const void *s, size_t bytes) { TIMED(copy, 2.0 * bytes, g_in->copy(d, s, bytes)); }
static void p_upload(void *d, const void *s, size_t bytes) { TIMED(upload, bytes, g_in->upload(d, s, bytes)); }
static void p_download(void *d, const void *s, size_t bytes) { TIMED(download, bytes, g_in->download(d, s, bytes)); }
static void p_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool tA, bool tB, float alpha,
                     float beta) {
    double t0 = begin();
    g_in->matmul(C, A, B, M, N, K, tA, tB, alpha, beta);
    shape_add(M, N, K, tA, tB, false, false, end(OP_matmul, t0, 0));
}
static void p_matmul16(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K, bool tA,
                       bool tB, float alpha, float beta) {
    double t0 = begin();
    g_in->matmul16(C, A, a16, B, b16, M, N, K, tA, tB, alpha, beta);
    shape_add(M, N, K, tA, tB, a16, b16, end(OP_matmul16, t0, 0));
}
static void p_matmul16_res(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M, int N,
                           int K, bool tA, bool tB) {
    double t0 = begin();
    g_in->matmul16_res(D, R, A, a16, B, b16, M, N, K, tA, tB);
    shape_add(M, N, K, tA, tB, a16, b16, end(OP_matmul16_res, t0, 0));
}
/* the matmul shapes table counts a bf16-output product like any other (its FLOPs are the same) */
static void p_matmul16_out16(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                             bool tA, bool tB) {
    double t0 = begin();
    g_in->matmul16_out16(C, A, a16, B, b16, M, N, K, tA, tB);
    shape_add(M, N, K, tA, tB, a16, b16, end(OP_matmul16_out16, t0, 0));
}
static void p_swiglu_fwd_b16(uint16_t *out, const uint16_t *g, const uint16_t *u, size_t N, int FF) {
    TIMED(swiglu_fwd_b16, 6.0 * N * FF, g_in->swiglu_fwd_b16(out, g, u, N, FF));
}
static void p_geglu_fwd_b16(uint16_t *out, const uint16_t *g, const uint16_t *u, size_t N, int FF) {
    TIMED(geglu_fwd_b16, 6.0 * N * FF, g_in->geglu_fwd_b16(out, g, u, N, FF));
}
static void p_swiglu_bwd_b16(uint16_t *dg, uint16_t *du, const uint16_t *dout, const uint16_t *g,
                             const uint16_t *u, size_t N, int FF) {
    TIMED(swiglu_bwd_b16, 10.0 * N * FF, g_in->swiglu_bwd_b16(dg, du, dout, g, u, N, FF));
}
static void p_geglu_bwd_b16(uint16_t *dg, uint16_t *du, const uint16_t *dout, const uint16_t *g,
                            const uint16_t *u, size_t N, int FF) {
    TIMED(geglu_bwd_b16, 10.0 * N * FF, g_in->geglu_bwd_b16(dg, du, dout, g, u, N, FF));
}
static void p_to_bf16(uint16_t *y, const float *x, size_t n) { TIMED(to_bf16, 6.0 * n, g_in->to_bf16(y, x, n)); }
static void p_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    TIMED(rmsnorm_fwd16, 6.0 * N * C, g_in->rmsnorm_fwd16(out, rstd, x, w, N, C, eps));
}
static void p_swiglu_fwd16(uint16_t *out, const float *g, const float *u, size_t N, int FF) {
    TIMED(swiglu_fwd16, 10.0 * N * FF, g_in->swiglu_fwd16(out, g, u, N, FF));
}
static void p_geglu_fwd16(uint16_t *out, const float *g, const float *u, size_t N, int FF) {
    TIMED(geglu_fwd16, 10.0 * N * FF, g_in->geglu_fwd16(out, g, u, N, FF));
}
static void p_swiglu_bwd16(uint16_t *dg, uint16_t *du, const float *dout, const float *g, const float *u, size_t N,
                           int FF) {
    TIMED(swiglu_bwd16, 16.0 * N * FF, g_in->swiglu_bwd16(dg, du, dout, g, u, N, FF));
}
static void p_geglu_bwd16(uint16_t *dg, uint16_t *du, const float *dout, const float *g, const float *u, size_t N,
                          int FF) {
    TIMED(geglu_bwd16, 16.0 * N * FF, g_in->geglu_bwd16(dg, du, dout, g, u, N, FF));
}
static void p_xent_bwd16(uint16_t *dl, const float *logits, const float *lse, const float *g, const int *targets,
                         size_t N, int V_loc, int V_off) {
    TIMED(xent_bwd16, 6.0 * N * V_loc, g_in->xent_bwd16(dl, logits, lse, g, targets, N, V_loc, V_off));
}
static void p_add(float *y, const float *x, size_t n) { TIMED(add, 12.0 * n, g_in->add(y, x, n)); }
static void p_scale(float *x, float s, size_t n) { TIMED(scale, 8.0 * n, g_in->scale(x, s, n)); }
static double p_sumsq(const float *x, size_t n) {
    double r;
    TIMED(sumsq, 4.0 * n, r = g_in->sumsq(x, n));
    return r;
}
static void p_sumsq_many(double *out, const float *const *x, const size_t *n, int count) {
    double bytes = 0;
    for (int i = 0; i < count; i++) bytes += 4.0 * n[i];
    TIMED(sumsq_many, bytes, g_in->sumsq_many(out, x, n, count));
}
static void p_embed_fwd(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc) {
    TIMED(embed_fwd, 8.0 * N * C, g_in->embed_fwd(out, ids, W, N, C, V_off, V_loc));
}
static void p_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc) {
    TIMED(embed_bwd, 12.0 * N * C, g_in->embed_bwd(dW, dout, ids, N, C, V_off, V_loc));
}
static void p_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    TIMED(gather_rows, 8.0 * M * C, g_in->gather_rows(dst, src, rows, M, N, C));
}
static void p_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    TIMED(scatter_rows, 8.0 * M * C, g_in->scatter_rows(dst, src, rows, M, N, C));
}
static void p_add_rows(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd,
                       size_t Ns, int C) {
    TIMED(add_rows, 12.0 * M * C, g_in->add_rows(dst, drows, src, srows, M, Nd, Ns, C));
}
static void p_add_rows_b16(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M,
                           size_t Nd, size_t Ns, int C) {
    TIMED(add_rows_b16, 6.0 * M * C, g_in->add_rows_b16(dst, drows, src, srows, M, Nd, Ns, C));
}
static void p_rmsnorm_fwd_b16(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C,
                              float eps) {
    TIMED(rmsnorm_fwd_b16, 4.0 * N * C, g_in->rmsnorm_fwd_b16(out, rstd, x, w, N, C, eps));
}
static void p_rmsnorm_bwd_b16(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                              const float *rstd, size_t N, int C) {
    TIMED(rmsnorm_bwd_b16, 6.0 * N * C, g_in->rmsnorm_bwd_b16(dx, dw, dout, x, w, rstd, N, C));
}
static void p_bias_add(float *y, const float *b, size_t N, int D, int ld) {
    TIMED(bias_add, 8.0 * N * D, g_in->bias_add(y, b, N, D, ld));
}
static void p_bias_add_b16(uint16_t *y, const float *b, size_t N, int D, int ld) {
    TIMED(bias_add_b16, 4.0 * N * D, g_in->bias_add_b16(y, b, N, D, ld));
}
static void p_bias_grad(float *db, const float *dy, size_t N, int D, int ld) {
    TIMED(bias_grad, 4.0 * N * D, g_in->bias_grad(db, dy, N, D, ld));
}
static void p_bias_grad_b16(float *db, const uint16_t *dy, size_t N, int D, int ld) {
    TIMED(bias_grad_b16, 2.0 * N * D, g_in->bias_grad_b16(db, dy, N, D, ld));
}
static void p_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    TIMED(rmsnorm_fwd, 8.0 * N * C, g_in->rmsnorm_fwd(out, rstd, x, w, N, C, eps));
}
static void p_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                          size_t N, int C) {
    TIMED(rmsnorm_bwd, 16.0 * N * C, g_in->rmsnorm_bwd(dx, dw, dout, x, w, rstd, N, C));
}
static void p_rmsnorm_bwd_out16(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x,
                                const float *w, const float *rstd, size_t N, int C) {
    TIMED(rmsnorm_bwd_out16, 18.0 * N * C, g_in->rmsnorm_bwd_out16(dx, dx16, dw, dout, x, w, rstd, N, C));
}
static void p_rope_fwd(float *x, const int *pos, const float *cs, const float *sn, size_t N, int H, int HD) {
    TIMED(rope_fwd, 8.0 * N * H * HD, g_in->rope_fwd(x, pos, cs, sn, N, H, HD));
}
static void p_rope_bwd(float *dx, const int *pos, const float *cs, const float *sn, size_t N, int H, int HD) {
    TIMED(rope_bwd, 8.0 * N * H * HD, g_in->rope_bwd(dx, pos, cs, sn, N, H, HD));
}
static void p_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu, int S,
                       int NH, int NKV, int HD, const AttnOpts *o) {
    TIMED(attn_fwd, 0, g_in->attn_fwd(out, lse, q, k, v, cu, S, NH, NKV, HD, o));
}
static void p_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                       const float *v, const float *out, const float *lse, const int *cu, int S, int NH, int NKV,
                       int HD, const AttnOpts *o) {
    TIMED(attn_bwd, 0, g_in->attn_bwd(dq, dk, dv, dout, q, k, v, out, lse, cu, S, NH, NKV, HD, o));
}
static void p_rope_fwd_b16(uint16_t *x, const int *pos, const float *cs, const float *sn, size_t N, int H, int HD) {
    TIMED(rope_fwd_b16, 4.0 * N * H * HD, g_in->rope_fwd_b16(x, pos, cs, sn, N, H, HD));
}
static void p_rope_bwd_b16(uint16_t *dx, const int *pos, const float *cs, const float *sn, size_t N, int H, int HD) {
    TIMED(rope_bwd_b16, 4.0 * N * H * HD, g_in->rope_bwd_b16(dx, pos, cs, sn, N, H, HD));
}
static void p_swiglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *g, const uint16_t *u, size_t N,
                                  int FF) {
    TIMED(swiglu_bwd_pack_b16, 10.0 * N * FF, g_in->swiglu_bwd_pack_b16(dgu, dout, g, u, N, FF));
}
static void p_geglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *g, const uint16_t *u, size_t N,
                                 int FF) {
    TIMED(geglu_bwd_pack_b16, 10.0 * N * FF, g_in->geglu_bwd_pack_b16(dgu, dout, g, u, N, FF));
}
static void p_rope_bwd_pack_b16(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv,
                                const int *pos, const float *cs, const float *sn, size_t N, int NH, int NKV, int HD) {
    TIMED(rope_bwd_pack_b16, 4.0 * N * (NH + NKV) * HD,
          g_in->rope_bwd_pack_b16(dqkv, dq, dk, dv, pos, cs, sn, N, NH, NKV, HD));
}
static void p_attn_fwd_b16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                           const int *cu, int S, int NH, int NKV, int HD, const AttnOpts *o) {
    TIMED(attn_fwd_b16, 0, g_in->attn_fwd_b16(out, lse, q, k, v, cu, S, NH, NKV, HD, o));
}
static void p_attn_bwd_b16(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse, const int *cu,
                           int S, int NH, int NKV, int HD, const AttnOpts *o) {
    TIMED(attn_bwd_b16, 0, g_in->attn_bwd_b16(dq, dk, dv, dout, q, k, v, out, lse, cu, S, NH, NKV, HD, o));
}
static bool p_attn_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Nt,
                            const int *cu, int S, const int *xr, const int *sk, int NH, int NKV, int HD,
                            const AttnOpts *o) {
    bool done;
    TIMED(attn_fwd_rows, 0, done = g_in->attn_fwd_rows(out, lse, q, k, v, Nt, cu, S, xr, sk, NH, NKV, HD, o));
    return done;
}
static bool p_attn_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                            const float *v, const float *out, const float *lse, size_t Nt, const int *cu, int S,
                            const int *xr, const int *sk, int NH, int NKV, int HD, const AttnOpts *o) {
    bool done;
    TIMED(attn_bwd_rows, 0,
          done = g_in->attn_bwd_rows(dq, dk, dv, dout, q, k, v, out, lse, Nt, cu, S, xr, sk, NH, NKV, HD, o));
    return done;
}
static bool p_attn_fwd_b16_rows(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                size_t Nt, const int *cu, int S, const int *xr, const int *sk, int NH, int NKV, int HD,
                                const AttnOpts *o) {
    bool done;
    TIMED(attn_fwd_b16_rows, 0, done = g_in->attn_fwd_b16_rows(out, lse, q, k, v, Nt, cu, S, xr, sk, NH, NKV, HD, o));
    return done;
}
static bool p_attn_bwd_b16_rows(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                                const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse, size_t Nt,
                                const int *cu, int S, const int *xr, const int *sk, int NH, int NKV, int HD,
                                const AttnOpts *o) {
    bool done;
    TIMED(attn_bwd_b16_rows, 0,
          done = g_in->attn_bwd_b16_rows(dq, dk, dv, dout, q, k, v, out, lse, Nt, cu, S, xr, sk, NH, NKV, HD, o));
    return done;
}
static void p_swiglu_fwd(float *out, const float *g, const float *u, size_t N, int FF) {
    TIMED(swiglu_fwd, 12.0 * N * FF, g_in->swiglu_fwd(out, g, u, N, FF));
}
static void p_swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t N, int FF) {
    TIMED(swiglu_bwd, 20.0 * N * FF, g_in->swiglu_bwd(dg, du, dout, g, u, N, FF));
}
static void p_geglu_fwd(float *out, const float *g, const float *u, size_t N, int FF) {
    TIMED(geglu_fwd, 12.0 * N * FF, g_in->geglu_fwd(out, g, u, N, FF));
}
static void p_geglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t N, int FF) {
    TIMED(geglu_bwd, 20.0 * N * FF, g_in->geglu_bwd(dg, du, dout, g, u, N, FF));
}
static void p_softcap_fwd(float *x, size_t n, float cap) { TIMED(softcap_fwd, 8.0 * n, g_in->softcap_fwd(x, n, cap)); }
static void p_softcap_bwd(float *dx, const float *x_pre, size_t n, float cap) {
    TIMED(softcap_bwd, 12.0 * n, g_in->softcap_bwd(dx, x_pre, n, cap));
}
static void p_xent_stats(float *mx, float *se, float *tgt, float *ls, const float *logits, const int *targets,
                         size_t N, int V_loc, int V_off) {
    TIMED(xent_stats, 4.0 * N * V_loc, g_in->xent_stats(mx, se, tgt, ls, logits, targets, N, V_loc, V_off));
}
static void p_xent_bwd(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                       int V_off) {
    TIMED(xent_bwd, 8.0 * N * V_loc, g_in->xent_bwd(logits, lse, g, targets, N, V_loc, V_off));
}
static void p_xent_stats_b16(float *mx, float *se, float *tgt, float *ls, const uint16_t *logits, const int *targets,
                             size_t N, int V_loc, int V_off) {
    TIMED(xent_stats_b16, 2.0 * N * V_loc, g_in->xent_stats_b16(mx, se, tgt, ls, logits, targets, N, V_loc, V_off));
}
static void p_xent_bwd_b16(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N,
                           int V_loc, int V_off) {
    TIMED(xent_bwd_b16, 4.0 * N * V_loc, g_in->xent_bwd_b16(logits, lse, g, targets, N, V_loc, V_off));
}
static void p_adamw(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m, float *v,
                    size_t n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2) {
    TIMED(adamw, (p16 ? 30.0 : 28.0) * n,
          g_in->adamw(p, p16, g, rows, gscale, m, v, n, lr, b1, b2, eps, wd, bc1, bc2));
}
static void p_adamw_sumsq(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows, float *m,
                          float *v, size_t n, double lr, double b1, double b2, double eps, double wd, double bc1,
                          double bc2) {
    TIMED(adamw_sumsq, (p16 ? 30.0 : 28.0) * n,
          g_in->adamw_sumsq(sumsq, p, p16, g, rows, m, v, n, lr, b1, b2, eps, wd, bc1, bc2));
}

const Backend *backend_profiled(const Backend *inner) {
    if (g_in == inner) return &g_prof;
    if (g_in) sd_die("profile", "one profiled backend per process (%s already is)", g_in->name);
    g_in = inner;
    g_prof = *inner; /* the untimed members as they are, NULL where inner has none */
    /* a timed op only where inner has it (NULL stays NULL: the callers test for it) */
#define WRAP(name) if (inner->name) g_prof.name = p_##name;
    OPS(WRAP)
#undef WRAP
    return &g_prof;
}

void backend_profile_reset(void) {
    memset(g_ops, 0, sizeof g_ops);
    g_nshapes = 0;
    g_shapes_dropped = 0;
}

static int by_time_desc(const void *a, const void *b) {
    double x = ((const Shape *)a)->t.s, y = ((const Shape *)b)->t.s;
    return x < y ? 1 : x > y ? -1 : 0;
}

void backend_profile_report(FILE *f, const char *prefix, double wall_s, long steps) {
    if (steps <= 0) {
        fprintf(f, "%sno step ran since the profile started: nothing to report\n", prefix);
        return;
    }
    double per = 1.0 / (double)steps, total = 0;
    for (int i = 0; i < OP_COUNT; i++) total += g_ops[i].s;
    fprintf(f, "%sops (SIMPO_PROFILE=1, each op synchronised and timed) over %ld steps: %.2f ms/step of ops in "
               "%.2f ms/step of wall time (%.1f%%; the rest: host work, collectives, launches)\n",
            prefix, steps, 1e3 * total * per, 1e3 * wall_s * per, wall_s > 0 ? 100.0 * total / wall_s : 0.0);
    fprintf(f, "%s  %-14s %10s %10s %7s %8s\n", prefix, "op", "calls/step", "ms/step", "share", "GB/s");
    int order[OP_COUNT];
    for (int i = 0; i < OP_COUNT; i++) order[i] = i;
    for (int i = 1; i < OP_COUNT; i++) /* insertion sort by time, largest first */
        for (int j = i; j > 0 && g_ops[order[j]].s > g_ops[order[j - 1]].s; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    for (int i = 0; i < OP_COUNT; i++) {
        const Tally *t = &g_ops[order[i]];
        if (!t->calls) continue;
        char gbs[32] = ""; /* the op's least memory traffic over its time, where the op has a byte count */
        if (t->bytes > 0 && t->s > 0) snprintf(gbs, sizeof gbs, "%.1f", t->bytes / t->s / 1e9);
        fprintf(f, "%s  %-14s %10.1f %10.3f %6.1f%% %8s\n", prefix, op_names[order[i]], (double)t->calls * per,
                1e3 * t->s * per, total > 0 ? 100.0 * t->s / total : 0.0, gbs);
    }
    qsort(g_shapes, (size_t)g_nshapes, sizeof(Shape), by_time_desc);
    fprintf(f, "%smatmul shapes by time (C[M,N] = op(A)[M,K] op(B)[K,N]; T: transposed; 16: bf16 storage):\n", prefix);
    fprintf(f, "%s  %-26s %10s %10s %9s\n", prefix, "M x N x K  A B", "calls/step", "ms/step", "TFLOP/s");
    for (int i = 0; i < g_nshapes && i < 16; i++) {
        const Shape *s = &g_shapes[i];
        char name[64];
        snprintf(name, sizeof name, "%dx%dx%d %s%s %s%s", s->M, s->N, s->K, s->tA ? "T" : "N", s->a16 ? "16" : "",
                 s->tB ? "T" : "N", s->b16 ? "16" : "");
        double flops = 2.0 * s->M * (double)s->N * s->K * (double)s->t.calls;
        fprintf(f, "%s  %-26s %10.1f %10.3f %9.1f\n", prefix, name, (double)s->t.calls * per, 1e3 * s->t.s * per,
                s->t.s > 0 ? flops / s->t.s / 1e12 : 0.0);
    }
    if (g_nshapes > 16) fprintf(f, "%s  (%d more shapes)\n", prefix, g_nshapes - 16);
    if (g_shapes_dropped) fprintf(f, "%s  (%ld calls of shapes beyond %d not listed)\n", prefix, g_shapes_dropped,
                                  MAX_SHAPES);
}
