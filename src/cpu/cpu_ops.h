/* cpu_ops.h — private to src/cpu/: the fp32 CPU kernels behind backend_cpu() (see backend.h for semantics).
 *
 * Each function here has exactly the signature and meaning of the Backend member of the same name
 * (cpu_<member>); backend_cpu.c puts them into the function-pointer table. One concern per file:
 * matmul.c, rows.c (gather, scatter), norm.c (rmsnorm, embedding), rope.c, attention.c, swiglu.c, geglu.c (GeGLU, soft-capping), xent.c, adamw.c.
 */
#ifndef SD_CPU_OPS_H
#define SD_CPU_OPS_H
#include <stdbool.h>
#include <stddef.h>
#include "backend.h" /* AttnOpts */

void cpu_set_matmul_bf16(bool on);
bool cpu_matmul_bf16_on(void);
/* bf16 activation storage (bf16_storage.c) */
/* The smallest work worth an OpenMP team: elements of an elementwise op, multiply-adds of attention. Below it the
 * ops run on the calling thread: a parallel region costs microseconds on an idle machine but milliseconds on a busy
 * one (a thread of the team waits for a core), which made tiny models 30x slower under load. */
#define SD_OMP_MIN ((size_t)65536)
#define SD_OMP_MIN_MACS 4194304.0
void cpu_to_bf16(uint16_t *y, const float *x, size_t n);
void cpu_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps);
void cpu_swiglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF);
void cpu_geglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF);
void cpu_xent_bwd16(uint16_t *dlogits, const float *logits, const float *lse, const float *g, const int *targets,
                    size_t N, int V_loc, int V_off);
void cpu_swiglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF);
void cpu_geglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                     int FF);
void cpu_matmul16(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K, bool transA,
                  bool transB, float alpha, float beta);
/* autocast storage (bf16_storage.c) */
void cpu_matmul16_res(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M, int N,
                      int K, bool transA, bool transB);
void cpu_matmul16_out16(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                        bool transA, bool transB);
void cpu_swiglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF);
void cpu_geglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF);
void cpu_swiglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                        const uint16_t *up, size_t N, int FF);
void cpu_swiglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                             int FF);
void cpu_geglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                            int FF);
void cpu_geglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                       const uint16_t *up, size_t N, int FF);
/* autocast storage of attention (bf16_storage.c) */
void cpu_rope_fwd_b16(uint16_t *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cpu_rope_bwd_b16(uint16_t *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cpu_rope_bwd_pack_b16(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv, const int *pos,
                           const float *cos, const float *sin, size_t N, int NH, int NKV, int HD);
void cpu_attn_fwd_b16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                      const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts);
void cpu_attn_bwd_b16(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                      const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                      const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts);
/* prefix sharing's attention in the layers' rows (backend.h): attention's layout gathered, the fp32 op, each token's
 * gradients summed over its rows (attention_rows.c; the bf16-storage forms: bf16_storage.c); always true */
bool cpu_attn_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                       const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                       const AttnOpts *opts);
bool cpu_attn_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                       const float *v, const float *out, const float *lse, size_t Ntok, const int *cu, int S,
                       const int *xrow, const int *skip, int NH, int NKV, int HD, const AttnOpts *opts);
bool cpu_attn_fwd_b16_rows(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                           size_t Ntok, const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV,
                           int HD, const AttnOpts *opts);
bool cpu_attn_bwd_b16_rows(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse, size_t Ntok,
                           const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                           const AttnOpts *opts);
/* autocast storage of the LM head's logits (bf16_storage.c) */
void cpu_xent_stats_b16(float *maxv, float *sumexp, float *tgt, float *lsum, const uint16_t *logits, const int *targets,
                        size_t N, int V_loc, int V_off);
void cpu_xent_bwd_b16(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                      int V_off);
void cpu_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                float alpha, float beta);

void cpu_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C);
void cpu_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C);
void cpu_add_rows(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd, size_t Ns,
                  int C);
void cpu_add_rows_b16(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M, size_t Nd,
                      size_t Ns, int C);

/* RMSNorm on bf16 rows (bf16_storage.c) */
void cpu_rmsnorm_fwd_b16(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C, float eps);
void cpu_rmsnorm_bwd_b16(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                         const float *rstd, size_t N, int C);
/* linear biases (bias.c) */
void cpu_bias_add(float *y, const float *b, size_t N, int D, int ld);
void cpu_bias_add_b16(uint16_t *y, const float *b, size_t N, int D, int ld);
void cpu_bias_grad(float *db, const float *dy, size_t N, int D, int ld);
void cpu_bias_grad_b16(float *db, const uint16_t *dy, size_t N, int D, int ld);

void cpu_embed_fwd(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc);
void cpu_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc);
void cpu_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps);
void cpu_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                     size_t N, int C);
void cpu_rmsnorm_bwd_out16(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x, const float *w,
                           const float *rstd, size_t N, int C);

void cpu_rope_fwd(float *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cpu_rope_bwd(float *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);

void cpu_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                  int S, int NH, int NKV, int HD, const AttnOpts *opts);
void cpu_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                  const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                  int NKV, int HD, const AttnOpts *opts);

void cpu_geglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF);
void cpu_geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                   int FF);
void cpu_softcap_fwd(float *x, size_t n, float cap);
void cpu_softcap_bwd(float *dx, const float *x_pre, size_t n, float cap);
void cpu_swiglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF);
void cpu_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                    int FF);

void cpu_xent_stats(float *maxv, float *sumexp, float *tgt, float *lsum, const float *logits, const int *targets,
                    size_t N, int V_loc, int V_off);
void cpu_xent_bwd(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                  int V_off);

void cpu_adamw(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m, float *v,
               size_t n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2);
#endif
