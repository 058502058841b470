/* attn_launch.cuh — private to cuda/: the host side that the attention files share (attention.cu, the fp32
 * kernels; attention_tc.cu, attention_tc2.cu, attention_tc3.cu, tensor-core versions 1, 2 and 3), kept in one place
 * so that their checks, tile counts and launches cannot drift apart:
 *   attn_tiles       the tile count of a grid from a host copy of cu_seqlens (checked), cu_seqlens[0] and [S]
 *   attn_launch      a launch on the backend's stream after opting the kernel into its dynamic shared memory
 *   attn_bwd_start   what every backward does first: the tile count, the gradients' rows before cu_seqlens[0] zeroed
 *   attn_rowsum      D = rowsum(dout * out) (fp32, one warp per row and head), dout to bf16 in the same pass if asked
 *   AttnTcImpl       a tensor-core version as a table of its kernels (versions 2 and 3: same signatures, pre-passes
 *                    and launches, attn_tc_run_fwd / attn_tc_run_bwd)
 * and the entry points the files call each other by. attention.cu defines the functions of the first block,
 * attention_tc2.cu the runs of versions 2 and 3. attn_launch is a template here, so its launch is in a header:
 * tests/gpu/emu/cu2cpp.py inlines the local headers of a .cu file to convert it with the file's own. */
#ifndef SD_ATTN_LAUNCH_CUH
#define SD_ATTN_LAUNCH_CUH
#include <cuda_bf16.h>
#include "cuda_common.cuh"

/* the number of BM-row tiles over the sequences of cu_seqlens (downloaded: S + 1 ints, synchronous), dying unless
 * it is a non-decreasing offset list and tiles x heads fits a grid dimension (heads = 1 for a 2-D grid of
 * (tiles, heads)); *n0 = cu_seqlens[0], *N = cu_seqlens[S]. op names the call in messages. */
int attn_tiles(const int *d_cu, int S, int BM, int heads, int *n0, int *N, const char *op);

/* opt a kernel into `bytes` of dynamic shared memory, or die naming the device's limit; *opted holds what this
 * kernel was given so far (0 at first), so a kernel whose size grows with the head dim is raised when needed */
void attn_want_smem(const void *kernel, size_t bytes, int *opted, const char *what, int HD);

/* kernel(args) over grid x threads with smem bytes of dynamic shared memory on stream st, after attn_want_smem;
 * `what` names the launch in messages. attn_launch: on cu_stream(). */
template <class... P, class... A>
static void attn_launch_on(cudaStream_t st, void (*kernel)(P...), dim3 grid, int threads, size_t smem, int *opted,
                           const char *what, int HD, A... args) {
    attn_want_smem((const void *)kernel, smem, opted, what, HD);
    kernel<<<grid, threads, smem, st>>>(args...);
    CUDA_LAUNCH_CHECK(what);
}
template <class... P, class... A>
static void attn_launch(void (*kernel)(P...), dim3 grid, int threads, size_t smem, int *opted, const char *what,
                        int HD, A... args) {
    attn_launch_on(cu_stream(), kernel, grid, threads, smem, opted, what, HD, args...);
}

/* attn_tiles(.., "attn_bwd") and the rows of dq, dk, dv (elements of esz bytes: fp32, or bf16 storage) before
 * cu_seqlens[0] set to zeros (the gradients are written for rows [0, N) as on the CPU); 0 tiles: nothing more to do */
int attn_bwd_start(void *dq, void *dk, void *dv, size_t esz, const int *d_cu, int S, int NH, int NKV, int HD, int BM,
                   int heads, int *n0, int *N);

/* D[n, h] = dot(dout[n, h, :], out[n, h, :]) for rows n0 .. N - 1, fp32, one warp per (row, head); with dob, dout's
 * rows are also written to dob as bf16 (round to nearest even). out fp32, or bf16 storage, and then dout too
 * (attn_bwd_b16: the products of bf16 values; no dob, the kernels read dout itself) */
void attn_rowsum(float *D, __nv_bfloat16 *dob, const float *dout, const float *out, int n0, int N, int NH, int HD,
                 const char *what);
void attn_rowsum(float *D, const __nv_bfloat16 *dout, const __nv_bfloat16 *out, int n0, int N, int NH, int HD,
                 const char *what);

/* ---- the tensor-core versions ---- */

/* attention_tc.cu: the tensor-core path (bf16 operands, fp32 accumulation and softmax) for head dims 64 and 128,
 * called by attention.cu with 16-byte aligned q, k, v, out, dout, dq, dk, dv after its checks */
bool cuda_attn_tc_supports(int HD);
void cuda_attn_tc_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                      const int *cu_seqlens, int S, int NH, int NKV, int HD);
void cuda_attn_tc_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                      const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                      int NKV, int HD);
/* the same on bf16 storage (attn_fwd_b16 / attn_bwd_b16: q, k, v, out bf16) where the version has kernels for it
 * (2 and 3: their q and out read and written in bf16, the bf16 pre-passes of q, k, v skipped); false, nothing
 * done: version 1, which has none */
bool cuda_attn_tc_fwd16(__nv_bfloat16 *out, float *lse, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                        const __nv_bfloat16 *v, const int *cu_seqlens, int S, int NH, int NKV, int HD);
bool cuda_attn_tc_bwd16(__nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv, const __nv_bfloat16 *dout,
                        const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v, const __nv_bfloat16 *out, const float *lse,
                        const int *cu_seqlens, int S, int NH, int NKV, int HD);
/* SIMPO_CUDA_ATTN_TC = 1, 2, 3 or 4 (attention_tc2.cu; read on every call) */
int cuda_attn_tc_version(void);
/* SIMPO_CUDA_ATTN_STREAMS = 1 or 2: the backward's dq kernel on a second stream beside dk / dv (attention_tc2.cu) */
int attn_bwd_streams(void);
/* rows [n0, N) of up to three (cnt) row-major fp32 tensors (W_i floats per row) to bf16 copies of the same layout
 * (round to nearest even; attention_tc2.cu): the tensor-core versions' pre-pass */
void attn_bf16_copies(int n0, int N, int cnt, const float *const *src, __nv_bfloat16 *const *dst, const size_t *W);
/* version 4 in the layers' rows (attention_tc3.cu; backend.h attn_fwd_b16_rows / attn_bwd_b16_rows: prefix sharing
 * on bf16 storage, and attn_fwd_rows / attn_bwd_rows on fp32 q, k, v, out and gradients with the bf16 pre-passes over
 * the Ntok rows; HD 64 or 128, 16-byte aligned rows, cu_seqlens[0] = 0, after attention.cu's checks) */
void attn_tc4_run_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                           const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV, int HD);
void attn_tc4_run_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const float *out, const float *lse, size_t Ntok, const int *cu_seqlens,
                           int S, const int *xrow, const int *skip, int NH, int NKV, int HD);
void attn_tc4_run_fwd16_rows(__nv_bfloat16 *out, float *lse, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                             const __nv_bfloat16 *v, const int *cu_seqlens, int S, const int *xrow, const int *skip,
                             int NH, int NKV, int HD);
void attn_tc4_run_bwd16_rows(__nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv, const __nv_bfloat16 *dout,
                             const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v,
                             const __nv_bfloat16 *out, const float *lse, size_t Ntok, const int *cu_seqlens, int S,
                             const int *xrow, const int *skip, int NH, int NKV, int HD);

/* the element type of a kernel's q and out (forward) or dq, dk, dv (backward): fp32 (attn_fwd, attn_bwd) or bf16
 * storage (attn_fwd_b16, attn_bwd_b16) */
template <bool B16> struct AttnIo { typedef float T; };
template <> struct AttnIo<true> { typedef __nv_bfloat16 T; };

/* versions 2 and 3 share their kernels' signatures, pre-passes and launches: a version is a table of its kernels */
typedef void (*AttnTcFwdK)(float *out, float *lse, const float *q, const __nv_bfloat16 *kb, const __nv_bfloat16 *vb,
                           const int *cu, int S, int NH, int NKV, float sl2);
typedef void (*AttnTcFwd16K)(__nv_bfloat16 *out, float *lse, const __nv_bfloat16 *q, const __nv_bfloat16 *kb,
                             const __nv_bfloat16 *vb, const int *cu, int S, int NH, int NKV, float sl2);
typedef void (*AttnTcDqK)(float *dq, const __nv_bfloat16 *qb, const __nv_bfloat16 *dob, const __nv_bfloat16 *kb,
                          const __nv_bfloat16 *vb, const float *lse, const float *D, const int *cu, int S, int NH,
                          int NKV, float sl2, float scale);
typedef void (*AttnTcDkdvK)(float *dk, float *dv, const __nv_bfloat16 *qb, const __nv_bfloat16 *dob,
                            const __nv_bfloat16 *kb, const __nv_bfloat16 *vb, const float *lse, const float *D,
                            const int *cu, int S, int NH, int NKV, float sl2, float scale);
typedef void (*AttnTcDq16K)(__nv_bfloat16 *dq, const __nv_bfloat16 *qb, const __nv_bfloat16 *dob,
                            const __nv_bfloat16 *kb, const __nv_bfloat16 *vb, const float *lse, const float *D,
                            const int *cu, int S, int NH, int NKV, float sl2, float scale);
typedef void (*AttnTcDkdv16K)(__nv_bfloat16 *dk, __nv_bfloat16 *dv, const __nv_bfloat16 *qb,
                              const __nv_bfloat16 *dob, const __nv_bfloat16 *kb, const __nv_bfloat16 *vb,
                              const float *lse, const float *D, const int *cu, int S, int NH, int NKV, float sl2,
                              float scale);
struct AttnTcImpl {
    const char *name;        /* "v2", "v3", "v4": for messages */
    int BM, threads;         /* rows of every grid's tiles (queries; keys for dk/dv); threads per block */
    AttnTcFwdK fwd[2];       /* [0]: HD 64, [1]: HD 128 */
    AttnTcDqK dq[2];
    AttnTcDkdvK dkdv[2];
    AttnTcFwd16K fwd16[2];   /* the same on bf16 storage (attn_fwd_b16, attn_bwd_b16): q, out; dq; dk, dv */
    AttnTcDq16K dq16[2];
    AttnTcDkdv16K dkdv16[2];
    size_t smem[3][2];       /* dynamic shared memory of fwd, dq, dkdv per head dim (their bf16 forms alike) */
    int opted[2][3][2];      /* attn_want_smem's record per kernel: [bf16 storage][fwd, dq, dkdv][head dim] */
};
/* the table of a version from its kernel templates FWD<HD, B16>, DQ<HD, B16>, DKDV<HD, B16> and its sizes
 * Z<HD>::SMEM_F, SMEM_Q, SMEM_K (fwd, dq, dkdv) */
#define ATTN_TC_IMPL(NAME, BM, THREADS, FWD, DQ, DKDV, Z)                                                       \
    {NAME, BM, THREADS, {FWD<64, false>, FWD<128, false>}, {DQ<64, false>, DQ<128, false>},                    \
     {DKDV<64, false>, DKDV<128, false>}, {FWD<64, true>, FWD<128, true>}, {DQ<64, true>, DQ<128, true>},       \
     {DKDV<64, true>, DKDV<128, true>},                                                                         \
     {{Z<64>::SMEM_F, Z<128>::SMEM_F}, {Z<64>::SMEM_Q, Z<128>::SMEM_Q}, {Z<64>::SMEM_K, Z<128>::SMEM_K}},        \
     {{{0, 0}, {0, 0}, {0, 0}}, {{0, 0}, {0, 0}, {0, 0}}}}
extern AttnTcImpl attn_tc2_impl, attn_tc3_impl, attn_tc4_impl; /* attention_tc2.cu, attention_tc3.cu (3 and 4) */

/* the forward: a bf16 pre-pass of k, v (rows [cu_seqlens[0], cu_seqlens[S]), stream-ordered scratch), then
 * fwd(out, lse, q, kb, vb, cu, S, NH, NKV, log2(e) / sqrt(HD)) over tiles x NH blocks (a tile's heads adjacent) */
void attn_tc_run_fwd(AttnTcImpl *impl, float *out, float *lse, const float *q, const float *k, const float *v,
                     const int *cu_seqlens, int S, int NH, int NKV, int HD);
/* the backward: attn_bwd_start; D = rowsum(dout * out) (attn_rowsum) and bf16 copies of q, dout, k, v in one
 * scratch block; then dq (tiles x NH blocks) and dkdv (tiles x NKV blocks) with sl2 = log2(e) / sqrt(HD),
 * scale = 1 / sqrt(HD) */
void attn_tc_run_bwd(AttnTcImpl *impl, float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse, const int *cu_seqlens, int S,
                     int NH, int NKV, int HD);
/* the same on bf16 storage: the forward launches fwd16 on q, k, v as they are (no pre-pass); the backward's pre-pass
 * makes D (from out's and dout's bf16 values) only, and dq16 / dkdv16 write bf16 gradients */
void attn_tc_run_fwd16(AttnTcImpl *impl, __nv_bfloat16 *out, float *lse, const __nv_bfloat16 *q,
                       const __nv_bfloat16 *k, const __nv_bfloat16 *v, const int *cu_seqlens, int S, int NH, int NKV,
                       int HD);
void attn_tc_run_bwd16(AttnTcImpl *impl, __nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv,
                       const __nv_bfloat16 *dout, const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v, const __nv_bfloat16 *out, const float *lse,
                       const int *cu_seqlens, int S, int NH, int NKV, int HD);

#endif
