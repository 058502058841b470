/* cuda_common.cuh — private to cuda/: error checks, the backend's stream and cuBLAS handle, scratch memory,
 * launch helpers, deterministic warp/block reductions, and the cuda_<op> kernels behind backend_cuda().
 *
 * Each cuda_<member> function has exactly the signature and meaning of the Backend member of the same name
 * (see src/backend.h); backend_cuda.cu puts them into the function-pointer table. One concern per file:
 * backend_cuda.cu (memory, device, table), matmul.cu, elementwise.cu (add, scale, sumsq), embed.cu, norm.cu,
 * rows.cu, bias.cu (Qwen2's linear biases), rope.cu, swiglu.cu, geglu.cu (Gemma 2's GeGLU and soft-capping),
 * attention.cu, xent.cu, adamw.cu.
 * Every op enqueues on cu_stream(); see backend_cuda.h for the ordering contract.
 * Reductions are deterministic: fixed trees whose shape depends only on the problem size, never on timing
 * (no float atomics anywhere), so two runs of an op on the same device give bitwise-identical results.
 */
#ifndef SD_CUDA_COMMON_CUH
#define SD_CUDA_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include "backend.h"
#include "util.h"
}

/* the file name without its directory, for error messages */
static inline const char *cu_base(const char *path) {
    const char *b = path;
    for (const char *p = path; *p; p++)
        if (*p == '/') b = p + 1;
    return b;
}
#define CUDA_CHECK(call)                                                                                        \
    do {                                                                                                        \
        cudaError_t e_ = (call);                                                                                \
        if (e_ != cudaSuccess)                                                                                  \
            sd_die("cuda", "%s:%d: %s failed: %s (%s)", cu_base(__FILE__), __LINE__, #call,                  \
                   cudaGetErrorString(e_), cudaGetErrorName(e_));                                               \
    } while (0)
/* after every kernel launch: a bad configuration shows here; faults inside the kernel show at the next sync */
#define CUDA_LAUNCH_CHECK(what)                                                                                 \
    do {                                                                                                        \
        cudaError_t e_ = cudaGetLastError();                                                                    \
        if (e_ != cudaSuccess)                                                                                  \
            sd_die("cuda", "%s:%d: launch of %s failed: %s", cu_base(__FILE__), __LINE__, what,                \
                   cudaGetErrorString(e_));                                                                     \
    } while (0)
#define CUBLAS_CHECK(call)                                                                                      \
    do {                                                                                                        \
        cublasStatus_t s_ = (call);                                                                             \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                        \
            sd_die("cuda", "%s:%d: %s failed: %s", cu_base(__FILE__), __LINE__, #call,                       \
                   cublasGetStatusString(s_));                                                                  \
    } while (0)

/* backend state (backend_cuda.cu); valid once backend_cuda() has run */
cudaStream_t cu_stream(void);
/* whether the ops now go to the late queue (backend.h late_begin): a kernel may then cut its work into shorter
 * blocks (adamw_sumsq) */
bool cu_late(void);
/* a second stream for two independent kernels of one op (attention's dq and dk/dv kernels,
 * SIMPO_CUDA_ATTN_STREAMS=2): cu_fork returns it after making it wait for all that cu_stream() has been given so far;
 * cu_join makes cu_stream() wait for all the second stream has been given so far. An op that forks joins before it
 * returns, so every other op (and the stream-ordered scratch freed on cu_stream() after the join) sees one stream.
 * Created on the first fork, held for the process. */
cudaStream_t cu_fork(void);
void cu_join(void);
/* a kernel-path choice from the environment: the value of `name` (an integer from lo to hi, written plainly), dflt
 * when unset or empty; any other value dies naming the variable and the range */
int cu_env_choice(const char *name, int lo, int hi, int dflt);
cublasHandle_t cu_blas(void);
bool cu_tf32(void);                 /* SIMPO_CUDA_TF32=1 */
bool cu_bf16(void);                 /* the bf16 mode (backend.h set_matmul_bf16): matmul and attention on tensor cores */
int cu_smem_optin(void);            /* max dynamic shared memory per block (bytes) after opt-in */
/* Scratch for one op: stream-ordered (cudaMallocAsync / cudaFreeAsync on cu_stream()), so taking and releasing
 * it inside an op costs no synchronisation. Not counted in bytes_in_use (like the CPU ops' malloc scratch). */
void *cu_scratch(size_t bytes, const char *what);
void cu_scratch_free(void *p);
/* host <-> device copies on the stream, synchronised (used by ops that need host values) */
void cu_download(void *host_dst, const void *src, size_t bytes);
void cu_upload(void *dst, const void *host_src, size_t bytes);

/* Column sums without atomics (rmsnorm_bwd's gain, bias_grad): a kernel writes double partials part[chunk][C] of
 * row chunks, then cuda_col_partials_add sums each column's partials in chunk order and adds it, rounded once, into
 * dst[C] (norm.cu; nchunks 0 adds 0). cu_row_chunks: chunks of N rows for a grid's y dimension (at most 65535),
 * rows_per_chunk rows each unless that would need more, the chunk count returned (0 for no rows). */
void cuda_col_partials_add(float *dst, const double *part, int nchunks, int C, const char *what);
static inline size_t cu_row_chunks(size_t N, size_t *rows_per_chunk) {
    size_t nch = (N + *rows_per_chunk - 1) / *rows_per_chunk;
    if (nch > 65535) { /* grid.y limit: longer chunks */
        *rows_per_chunk = (N + 65534) / 65535;
        nch = (N + *rows_per_chunk - 1) / *rows_per_chunk;
    }
    return nch;
}

/* blocks for a grid-stride loop over n elements: enough to fill the device, capped */
static inline unsigned cu_grid(size_t n, int threads) {
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    if (b > 65536) b = 65536;
    return b ? (unsigned)b : 1u;
}

/* the store of an op's output: fp32, or bf16 storage (backend.h *_fwd16: the fp32 value rounded to nearest even) */
__device__ __forceinline__ void cu_store(float *p, float v) { *p = v; }
__device__ __forceinline__ void cu_store(uint16_t *p, float v) { *p = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
/* an element of fp32 or bf16 storage, as float (bf16 widened exactly) */
__device__ __forceinline__ float cu_load(const float *p) { return *p; }
__device__ __forceinline__ float cu_load(const uint16_t *p) { return __bfloat162float(__ushort_as_bfloat16(*p)); }
/* 8 elements of bf16 storage in one 16-byte access: an elementwise kernel's 2-byte accesses leave a good part of the
 * memory bandwidth unused; the values are those of cu_load / cu_store, element by element */
/* 8 bf16 values at p (16-byte aligned) in one access, widened exactly (element 0 in the low half of the first word) */
__device__ __forceinline__ void bf16x8_load(float f[8], const uint16_t *p) {
    const uint4 w = *(const uint4 *)p;
    const unsigned u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint16_t lo = (uint16_t)(u[i] & 0xffffu), hi = (uint16_t)(u[i] >> 16);
        f[2 * i] = cu_load(&lo);
        f[2 * i + 1] = cu_load(&hi);
    }
}
/* f[0..8) rounded to bf16 (nearest even, as cu_store) and written to p (16-byte aligned) in one access */
__device__ __forceinline__ void bf16x8_store(uint16_t *p, const float f[8]) {
    unsigned u[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        uint16_t lo, hi;
        cu_store(&lo, f[2 * i]);
        cu_store(&hi, f[2 * i + 1]);
        u[i] = (unsigned)lo | (unsigned)hi << 16;
    }
    *(uint4 *)p = make_uint4(u[0], u[1], u[2], u[3]);
}
/* whether every pointer is 16-byte aligned (the 16-byte accesses above) */
static inline bool cu_aligned16(const void *a, const void *b, const void *c, const void *d, const void *e) {
    return (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e) & 15) == 0;
}

/* ---- deterministic reductions (fixed shapes) ---- */
#define CU_FULL_MASK 0xffffffffu
__device__ __forceinline__ float cu_warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(CU_FULL_MASK, x, o));
    return x;
}
__device__ __forceinline__ float cu_warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(CU_FULL_MASK, x, o);
    return x;
}
/* Sum over the block of one double per thread, a fixed binary tree in shared memory; every thread gets the
 * result. THREADS is blockDim.x, a power of two; sh holds THREADS doubles. */
template <int THREADS>
__device__ __forceinline__ double cu_block_sum(double v, double *sh) {
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}
template <int THREADS>
__device__ __forceinline__ float cu_block_max(float v, float *sh) {
    int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] = fmaxf(sh[t], sh[t + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

/* ---- the ops (one file each) ---- */
void cuda_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                 float alpha, float beta);
void cuda_matmul16(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K, bool transA,
                   bool transB, float alpha, float beta);
void cuda_to_bf16(uint16_t *y, const float *x, size_t n);
void cuda_widen_bf16(float *y, const uint16_t *x, size_t n); /* elementwise.cu */
void cuda_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps);
void cuda_swiglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF);
void cuda_geglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF);
void cuda_xent_bwd16(uint16_t *dlogits, const float *logits, const float *lse, const float *g, const int *targets,
                     size_t N, int V_loc, int V_off);
void cuda_swiglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up,
                       size_t N, int FF);
void cuda_matmul16_out16(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                         bool transA, bool transB);
void cuda_matmul16_res(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M, int N,
                       int K, bool transA, bool transB);
void cuda_swiglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF);
void cuda_geglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF);
void cuda_swiglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                         const uint16_t *up, size_t N, int FF);
void cuda_geglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                        const uint16_t *up, size_t N, int FF);
void cuda_swiglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                              int FF);
void cuda_geglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                             int FF);
void cuda_geglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF);
void cuda_matmul_hold(const float *x, size_t n);
void cuda_matmul_release(const float *x);
void cuda_add(float *y, const float *x, size_t n);
void cuda_scale(float *x, float s, size_t n);
double cuda_sumsq(const float *x, size_t n);
void cuda_sumsq_many(double *out, const float *const *x, const size_t *n, int count);
/* the deterministic sum of squares' two passes, for kernels that form their own partials (adamw_sumsq): the block
 * count of the first pass for n elements (a function of n only: >= 8 elements per thread, at most 1024 blocks of
 * CU_SS_THREADS), and the second pass (*out = the partials' sum by a fixed tree, enqueued on the stream) */
enum { CU_SS_THREADS = 256 };
size_t cu_sumsq_blocks(size_t n);
void cu_sum_partials(double *out, const double *part, size_t nb);
/* x = beta == 0 ? 0 : beta * x (matmul with K = 0) */
void cuda_beta_scale(float *x, float beta, size_t n);

void cuda_embed_fwd(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc);
void cuda_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc);
void cuda_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps);
void cuda_rmsnorm_fwd_b16(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C, float eps);
void cuda_rmsnorm_bwd_b16(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                          const float *rstd, size_t N, int C);
void cuda_rmsnorm_bwd_out16(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x, const float *w,
                            const float *rstd, size_t N, int C);
void cuda_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      size_t N, int C);
void cuda_rope_fwd(float *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cuda_rope_bwd(float *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cuda_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                   int S, int NH, int NKV, int HD, const AttnOpts *opts);
void cuda_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                   const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                   int NKV, int HD, const AttnOpts *opts);
/* autocast storage of attention (rope.cu, attention.cu) */
void cuda_rope_fwd_b16(uint16_t *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cuda_rope_bwd_b16(uint16_t *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD);
void cuda_rope_bwd_pack_b16(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv,
                            const int *pos, const float *cos, const float *sin, size_t N, int NH, int NKV, int HD);
void cuda_attn_fwd_b16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                       const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts);
void cuda_attn_bwd_b16(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                       const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                       const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts);
bool cuda_attn_fwd_b16_rows(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                            size_t Ntok, const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH,
                            int NKV, int HD, const AttnOpts *opts);
bool cuda_attn_bwd_b16_rows(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                            const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse, size_t Ntok,
                            const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                            const AttnOpts *opts);
bool cuda_attn_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                        const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                        const AttnOpts *opts);
bool cuda_attn_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, size_t Ntok, const int *cu_seqlens, int S,
                        const int *xrow, const int *skip, int NH, int NKV, int HD, const AttnOpts *opts);
void cuda_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C);
void cuda_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C);
void cuda_add_rows(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd, size_t Ns,
                   int C);
void cuda_add_rows_b16(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M, size_t Nd,
                       size_t Ns, int C);
void cuda_bias_add(float *y, const float *b, size_t N, int D, int ld);
void cuda_bias_add_b16(uint16_t *y, const float *b, size_t N, int D, int ld);
void cuda_bias_grad(float *db, const float *dy, size_t N, int D, int ld);
void cuda_bias_grad_b16(float *db, const uint16_t *dy, size_t N, int D, int ld);
void cuda_geglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF);
void cuda_geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                    int FF);
void cuda_softcap_fwd(float *x, size_t n, float cap);
void cuda_softcap_bwd(float *dx, const float *x_pre, size_t n, float cap);
void cuda_swiglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF);
void cuda_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                     int FF);
void cuda_xent_stats(float *maxv, float *sumexp, float *tgt, float *lsum, const float *logits, const int *targets,
                     size_t N, int V_loc, int V_off);
void cuda_xent_bwd(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                   int V_off);
void cuda_xent_stats_b16(float *maxv, float *sumexp, float *tgt, float *lsum, const uint16_t *logits,
                         const int *targets, size_t N, int V_loc, int V_off);
void cuda_xent_bwd_b16(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                       int V_off);
void cuda_adamw(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m, float *v,
                size_t n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2);
void cuda_adamw_sumsq(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows, float *m,
                      float *v, size_t n, double lr, double b1, double b2, double eps, double wd, double bc1,
                      double bc2);
#endif
