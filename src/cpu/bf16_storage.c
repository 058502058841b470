/* bf16_storage.c — the bf16 storage ops of backend.h (to_bf16, rmsnorm_fwd16, swiglu_fwd16, geglu_fwd16,
 * swiglu_bwd16, geglu_bwd16, xent_bwd16, matmul16): the fp32 op, then its output rounded to bfloat16 (nearest
 * even); a matmul whose bf16 operands are widened back to fp32 (exactly) for cpu_matmul, which in the bf16 mode
 * rounds them again (a no-op on bf16 values). So every result is bitwise the one of fp32 storage, which is what
 * makes them the reference of the CUDA ones. The autocast ops (matmul16_out16, *_fwd_b16, *_bwd_b16) are defined
 * the same way: bf16 inputs widened exactly, the fp32 op, its outputs rounded. */
#include <stdlib.h>
#include <string.h>
#include "cpu_ops.h"
#include "util.h"

/* backend.h rmsnorm_bwd_out16: the two ops it stands for */
void cpu_rmsnorm_bwd_out16(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x, const float *w,
                           const float *rstd, size_t N, int C) {
    cpu_rmsnorm_bwd(dx, dw, dout, x, w, rstd, N, C);
    cpu_to_bf16(dx16, dx, N * (size_t)C);
}
/* backend.h to_bf16: y[n] = bf16(x[n]) */
void cpu_to_bf16(uint16_t *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = sd_f32_to_bf16(x[i]);
}
static float *tmp_floats(size_t n, const char *what) {
    return sd_alloc(sd_mul_size(n ? n : 1, sizeof(float), what), what);
}
/* y[i] = the fp32 value of bf16 b[i] (exact), n elements */
static void widen_into(float *y, const uint16_t *b, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = sd_bf16_to_f32(b[i]);
}
/* the fp32 values of n bf16 elements, in a new array */
static float *widen(const void *x, size_t n) {
    float *y = tmp_floats(n, "bf16 operand");
    widen_into(y, x, n);
    return y;
}

void cpu_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    size_t n = N * (size_t)(C > 0 ? C : 0);
    float *t = tmp_floats(n, "rmsnorm_fwd16");
    cpu_rmsnorm_fwd(t, rstd, x, w, N, C, eps);
    cpu_to_bf16(out, t, n);
    free(t);
}
/* backend.h rmsnorm_fwd_b16 / rmsnorm_bwd_b16: the fp32 ops on the widened rows, the outputs rounded */
void cpu_rmsnorm_fwd_b16(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C, float eps) {
    size_t n = N * (size_t)(C > 0 ? C : 0);
    float *xf = widen(x, n);
    cpu_rmsnorm_fwd16(out, rstd, xf, w, N, C, eps);
    free(xf);
}
void cpu_rmsnorm_bwd_b16(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                         const float *rstd, size_t N, int C) {
    size_t n = N * (size_t)(C > 0 ? C : 0);
    float *dyf = widen(dout, n), *xf = widen(x, n), *dxf = tmp_floats(n, "rmsnorm_bwd_b16");
    memset(dxf, 0, n * sizeof(float));
    cpu_rmsnorm_bwd(dxf, dw, dyf, xf, w, rstd, N, C);
    cpu_to_bf16(dx, dxf, n);
    free(dyf), free(xf), free(dxf);
}
/* a gated activation (SwiGLU or GeGLU) in fp32, then rounded */
static void glu16(void (*glu)(float *, const float *, const float *, size_t, int), uint16_t *out, const float *gate,
                  const float *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    float *t = tmp_floats(n, "glu_fwd16");
    glu(t, gate, up, N, FF);
    cpu_to_bf16(out, t, n);
    free(t);
}
void cpu_swiglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    glu16(cpu_swiglu_fwd, out, gate, up, N, FF);
}
void cpu_geglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    glu16(cpu_geglu_fwd, out, gate, up, N, FF);
}
/* a gated activation's backward in fp32, then its two gradients rounded */
static void glu_bwd16(void (*bwd)(float *, float *, const float *, const float *, const float *, size_t, int),
                      uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    float *t = tmp_floats(2 * n, "glu_bwd16");
    bwd(t, t + n, dout, gate, up, N, FF);
    cpu_to_bf16(dgate, t, n);
    cpu_to_bf16(dup, t + n, n);
    free(t);
}
void cpu_swiglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF) {
    glu_bwd16(cpu_swiglu_bwd, dgate, dup, dout, gate, up, N, FF);
}
void cpu_geglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                     int FF) {
    glu_bwd16(cpu_geglu_bwd, dgate, dup, dout, gate, up, N, FF);
}

void cpu_xent_bwd16(uint16_t *dlogits, const float *logits, const float *lse, const float *g, const int *targets,
                    size_t N, int V_loc, int V_off) {
    size_t n = N * (size_t)(V_loc > 0 ? V_loc : 0);
    float *t = tmp_floats(n, "xent_bwd16");
    memcpy(t, logits, n * sizeof(float));
    cpu_xent_bwd(t, lse, g, targets, N, V_loc, V_off);
    cpu_to_bf16(dlogits, t, n);
    free(t);
}

/* the autocast LM head: bf16 logits widened exactly, the fp32 op; the gradient rounded back over the logits */
void cpu_xent_stats_b16(float *maxv, float *sumexp, float *tgt, float *lsum, const uint16_t *logits, const int *targets,
                        size_t N, int V_loc, int V_off) {
    float *t = widen(logits, N * (size_t)(V_loc > 0 ? V_loc : 0));
    cpu_xent_stats(maxv, sumexp, tgt, lsum, t, targets, N, V_loc, V_off);
    free(t);
}
void cpu_xent_bwd_b16(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                      int V_off) {
    size_t n = N * (size_t)(V_loc > 0 ? V_loc : 0);
    float *t = widen(logits, n);
    cpu_xent_bwd(t, lse, g, targets, N, V_loc, V_off);
    cpu_to_bf16(logits, t, n);
    free(t);
}

void cpu_matmul16(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K, bool transA,
                  bool transB, float alpha, float beta) {
    if (!cpu_matmul_bf16_on()) sd_die("backend", "matmul16 needs the bf16 mode (model.dtype: bf16)");
    size_t na = M > 0 && K > 0 ? (size_t)M * (size_t)K : 0, nb = K > 0 && N > 0 ? (size_t)K * (size_t)N : 0;
    float *a = a16 ? widen(A, na) : NULL, *b = b16 ? widen(B, nb) : NULL;
    cpu_matmul(C, a ? a : A, b ? b : B, M, N, K, transA, transB, alpha, beta);
    free(a);
    free(b);
}

/* ---- autocast storage ---- */

/* the copy and the accumulation it stands for (backend.h) */
void cpu_matmul16_res(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M, int N,
                      int K, bool transA, bool transB) {
    if (M > 0 && N > 0) memcpy(D, R, (size_t)M * (size_t)N * sizeof(float));
    cpu_matmul16(D, A, a16, B, b16, M, N, K, transA, transB, 1.0f, 1.0f);
}
void cpu_matmul16_out16(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                        bool transA, bool transB) {
    size_t n = M > 0 && N > 0 ? (size_t)M * (size_t)N : 0;
    float *t = tmp_floats(n, "matmul16_out16");
    cpu_matmul16(t, A, a16, B, b16, M, N, K, transA, transB, 1.0f, 0.0f);
    cpu_to_bf16(C, t, n);
    free(t);
}
/* a gated activation on bf16 gate and up: the fp32 op on their widened values, its output rounded */
static void glu_b16(void (*glu)(float *, const float *, const float *, size_t, int), uint16_t *out,
                    const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    float *g = widen(gate, n), *u = widen(up, n);
    glu16(glu, out, g, u, N, FF);
    free(g);
    free(u);
}
void cpu_swiglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    glu_b16(cpu_swiglu_fwd, out, gate, up, N, FF);
}
void cpu_geglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    glu_b16(cpu_geglu_fwd, out, gate, up, N, FF);
}
static void glu_bwd_b16(void (*bwd)(float *, float *, const float *, const float *, const float *, size_t, int),
                        uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                        const uint16_t *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    float *g = widen(gate, n), *u = widen(up, n), *d = widen(dout, n);
    glu_bwd16(bwd, dgate, dup, d, g, u, N, FF);
    free(g);
    free(u);
    free(d);
}
void cpu_swiglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                        const uint16_t *up, size_t N, int FF) {
    glu_bwd_b16(cpu_swiglu_bwd, dgate, dup, dout, gate, up, N, FF);
}
void cpu_geglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                       const uint16_t *up, size_t N, int FF) {
    glu_bwd_b16(cpu_geglu_bwd, dgate, dup, dout, gate, up, N, FF);
}
/* the packed forms' definition: the op's two outputs, then each row's two parts side by side */
static void glu_bwd_pack_b16(void (*bwd)(float *, float *, const float *, const float *, const float *, size_t, int),
                             uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                             int FF) {
    size_t ff = (size_t)(FF > 0 ? FF : 0), n = N * ff;
    uint16_t *t = sd_alloc(2 * (n ? n : 1) * sizeof *t, "glu_bwd_pack_b16");
    glu_bwd_b16(bwd, t, t + n, dout, gate, up, N, FF);
    for (size_t r = 0; r < N; r++) {
        memcpy(dgu + r * 2 * ff, t + r * ff, ff * sizeof *t);
        memcpy(dgu + r * 2 * ff + ff, t + n + r * ff, ff * sizeof *t);
    }
    free(t);
}
void cpu_swiglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                             int FF) {
    glu_bwd_pack_b16(cpu_swiglu_bwd, dgu, dout, gate, up, N, FF);
}
void cpu_geglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                            int FF) {
    glu_bwd_pack_b16(cpu_geglu_bwd, dgu, dout, gate, up, N, FF);
}

/* ---- autocast storage of attention ---- */

/* rows [n0, n1) of a bf16 tensor of w elements per row, widened into a zeroed fp32 array of n1 rows */
static float *widen_rows(const uint16_t *x, int n0, int n1, size_t w) {
    size_t all = (size_t)n1 * w, off = (size_t)n0 * w;
    float *y = tmp_floats(all, "bf16 attention operand");
    memset(y, 0, off * sizeof(float));
    widen_into(y + off, x + off, all - off);
    return y;
}

/* rope_fwd or rope_bwd on bf16 x: widened, rotated in fp32, rounded */
static void rope_b16(void (*rope)(float *, const int *, const float *, const float *, size_t, int, int), uint16_t *x,
                     const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    size_t n = N * (size_t)(H > 0 ? H : 0) * (size_t)(HD > 0 ? HD : 0);
    float *t = widen(x, n);
    rope(t, pos, cos, sin, N, H, HD);
    cpu_to_bf16(x, t, n);
    free(t);
}
void cpu_rope_fwd_b16(uint16_t *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    rope_b16(cpu_rope_fwd, x, pos, cos, sin, N, H, HD);
}
void cpu_rope_bwd_b16(uint16_t *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    rope_b16(cpu_rope_bwd, dx, pos, cos, sin, N, H, HD);
}
/* the definition: dq and dk widened, rotated back in fp32 and rounded (rope_bwd_b16's arithmetic), then each row's
 * three parts side by side */
void cpu_rope_bwd_pack_b16(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv, const int *pos,
                           const float *cos, const float *sin, size_t N, int NH, int NKV, int HD) {
    const size_t qd = (size_t)(NH > 0 ? NH : 0) * (size_t)(HD > 0 ? HD : 0),
                 kd = (size_t)(NKV > 0 ? NKV : 0) * (size_t)(HD > 0 ? HD : 0), ld = qd + 2 * kd;
    float *q = widen(dq, N * qd), *k = widen(dk, N * kd);
    cpu_rope_bwd(q, pos, cos, sin, N, NH, HD);
    cpu_rope_bwd(k, pos, cos, sin, N, NKV, HD);
    for (size_t n = 0; n < N; n++) {
        uint16_t *row = dqkv + n * ld;
        cpu_to_bf16(row, q + n * qd, qd);
        cpu_to_bf16(row + qd, k + n * kd, kd);
        memcpy(row + qd + kd, dv + n * kd, kd * sizeof *row);
    }
    free(q);
    free(k);
}

void cpu_attn_fwd_b16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                      const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    const int n0 = cu_seqlens[0], n1 = cu_seqlens[S];
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    float *qf = widen_rows(q, n0, n1, qs), *kf = widen_rows(k, n0, n1, ks), *vf = widen_rows(v, n0, n1, ks);
    float *of = tmp_floats((size_t)n1 * qs, "attn_fwd_b16 out");
    cpu_attn_fwd(of, lse, qf, kf, vf, cu_seqlens, S, NH, NKV, HD, opts);
    /* the rows the fp32 op writes: those of the sequences (rows before cu_seqlens[0] are left as they are) */
    cpu_to_bf16(out + (size_t)n0 * qs, of + (size_t)n0 * qs, (size_t)(n1 - n0) * qs);
    free(qf), free(kf), free(vf), free(of);
}

void cpu_attn_bwd_b16(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                      const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                      const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    const int n0 = cu_seqlens[0], n1 = cu_seqlens[S];
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD, nq = (size_t)n1 * qs, nk = (size_t)n1 * ks;
    float *qf = widen_rows(q, n0, n1, qs), *kf = widen_rows(k, n0, n1, ks), *vf = widen_rows(v, n0, n1, ks);
    float *of = widen_rows(out, n0, n1, qs), *df = widen_rows(dout, n0, n1, qs);
    float *g = tmp_floats(nq + 2 * nk, "attn_bwd_b16 gradients");
    cpu_attn_bwd(g, g + nq, g + nq + nk, df, qf, kf, vf, of, lse, cu_seqlens, S, NH, NKV, HD, opts);
    /* every row, as the fp32 op writes them (those before cu_seqlens[0] zeros) */
    cpu_to_bf16(dq, g, nq);
    cpu_to_bf16(dk, g + nq, nk);
    cpu_to_bf16(dv, g + nq + nk, nk);
    free(qf), free(kf), free(vf), free(of), free(df), free(g);
}

/* ---- prefix sharing's attention in the layers' rows on bf16 storage (backend.h attn_fwd_b16_rows /
 * attn_bwd_b16_rows): the fp32 ops (attention_rows.c) on the widened tensors, their outputs rounded ---- */

bool cpu_attn_fwd_b16_rows(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                           size_t Ntok, const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV,
                           int HD, const AttnOpts *opts) {
    if (S <= 0) return true; /* nothing written, as the fp32 op */
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    float *qf = widen(q, Ntok * qs), *kf = widen(k, Ntok * ks), *vf = widen(v, Ntok * ks);
    float *of = tmp_floats(Ntok * qs, "attn_fwd_b16_rows out");
    memset(of, 0, Ntok * qs * sizeof(float));
    cpu_attn_fwd_rows(of, lse, qf, kf, vf, Ntok, cu, S, xrow, skip, NH, NKV, HD, opts);
    cpu_to_bf16(out, of, Ntok * qs);
    free(qf), free(kf), free(vf), free(of);
    return true;
}

bool cpu_attn_bwd_b16_rows(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse, size_t Ntok,
                           const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                           const AttnOpts *opts) {
    if (S <= 0) return true;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    float *qf = widen(q, Ntok * qs), *kf = widen(k, Ntok * ks), *vf = widen(v, Ntok * ks);
    float *of = widen(out, Ntok * qs), *df = widen(dout, Ntok * qs);
    float *g = tmp_floats(Ntok * (qs + 2 * ks), "attn_bwd_b16_rows gradients");
    cpu_attn_bwd_rows(g, g + Ntok * qs, g + Ntok * (qs + ks), df, qf, kf, vf, of, lse, Ntok, cu, S, xrow, skip, NH,
                      NKV, HD, opts);
    cpu_to_bf16(dq, g, Ntok * qs);
    cpu_to_bf16(dk, g + Ntok * qs, Ntok * ks);
    cpu_to_bf16(dv, g + Ntok * (qs + ks), Ntok * ks);
    free(qf), free(kf), free(vf), free(of), free(df), free(g);
    return true;
}
