/* attn_wmma.cuh — private to cuda/: the nvcuda::wmma pieces that the tensor-core versions 1 and 2 (attention_tc.cu,
 * attention_tc2.cu) share: their fragment types, the strides of their per-warp stages, and the products that both
 * run the same way on 64-row inner tiles of bf16 rows padded to HD + 8 (wmma pointers 32-byte aligned, ldm a
 * multiple of 16 bytes). One warp calls each (wmma is warp-collective); the caller orders the stages with __syncwarp
 * as the files' header comments say. Nothing here depends on wmma's fragment layout. */
#ifndef SD_ATTN_WMMA_CUH
#define SD_ATTN_WMMA_CUH
#include <cuda_bf16.h>
#include <mma.h>
#include "attn_tiles.cuh"

namespace wmma = nvcuda::wmma;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> AttnFragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> AttnFragB;  /* B from row-major X */
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> AttnFragBt; /* X^T, X row-major */
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> AttnFragC;

enum {
    ATTN_LDS = 68, /* fp32 score stage row stride (64 columns + 4) */
    ATTN_LDP = 72, /* bf16 probability row stride (64 columns + 8) */
};

/* the dQ kernels' start: the A fragments qa, doa[HD / 16] of a warp's 16 rows of Q and dO (bf16, row stride HD + 8)
 * and dQ's accumulators acc[HD / 16] at zero */
template <int HD>
static __device__ __forceinline__ void attn_wmma_dq_start(AttnFragA *qa, AttnFragA *doa, AttnFragC *acc,
                                                          const __nv_bfloat16 *Q, const __nv_bfloat16 *dO) {
    constexpr int LDB = HD + 8;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
        wmma::load_matrix_sync(qa[kk], Q + kk * 16, LDB);
        wmma::load_matrix_sync(doa[kk], dO + kk * 16, LDB);
        wmma::fill_fragment(acc[kk], 0.0f);
    }
}

/* stage[16][ATTN_LDS] columns 16 n .. 16 n + 15 = A X^T for the A fragments a[HD / 16] of a 16-row block and the
 * rows 16 n .. 16 n + 15 of a bf16 tile X (S = Q K^T, one key block) */
template <int HD>
static __device__ __forceinline__ void attn_wmma_xt_block(float *stage, const AttnFragA *a, const __nv_bfloat16 *X,
                                                          int n) {
    constexpr int LDB = HD + 8, NF = HD / 16;
    AttnFragC acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
        AttnFragBt x;
        wmma::load_matrix_sync(x, X + n * 16 * LDB + kk * 16, LDB);
        wmma::mma_sync(acc, a[kk], x, acc);
    }
    wmma::store_matrix_sync(stage + n * 16, acc, ATTN_LDS, wmma::mem_row_major);
}

/* the same for two products sharing the loop: st1 = A1 X1^T and st2 = A2 X2^T on block n (S = Q K^T and
 * dP = dO V^T of the dQ kernels) */
template <int HD>
static __device__ __forceinline__ void attn_wmma_xt_block2(float *st1, const AttnFragA *a1, const __nv_bfloat16 *X1,
                                                           float *st2, const AttnFragA *a2, const __nv_bfloat16 *X2,
                                                           int n) {
    constexpr int LDB = HD + 8, NF = HD / 16;
    AttnFragC acc1, acc2;
    wmma::fill_fragment(acc1, 0.0f);
    wmma::fill_fragment(acc2, 0.0f);
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
        AttnFragBt x1, x2;
        wmma::load_matrix_sync(x1, X1 + n * 16 * LDB + kk * 16, LDB);
        wmma::mma_sync(acc1, a1[kk], x1, acc1);
        wmma::load_matrix_sync(x2, X2 + n * 16 * LDB + kk * 16, LDB);
        wmma::mma_sync(acc2, a2[kk], x2, acc2);
    }
    wmma::store_matrix_sync(st1 + n * 16, acc1, ATTN_LDS, wmma::mem_row_major);
    wmma::store_matrix_sync(st2 + n * 16, acc2, ATTN_LDS, wmma::mem_row_major);
}

/* acc[HD / 16] (16 x HD) += W X over the key blocks b0 .. b1 - 1: W a warp's bf16 [16][ATTN_LDP] (P or dS), X a
 * bf16 tile (V or K) */
template <int HD>
static __device__ __forceinline__ void attn_wmma_acc(AttnFragC *acc, const __nv_bfloat16 *W, const __nv_bfloat16 *X,
                                                     int b0, int b1) {
    constexpr int LDB = HD + 8, NF = HD / 16;
    for (int kk = b0; kk < b1; kk++) {
        AttnFragA w;
        wmma::load_matrix_sync(w, W + kk * 16, ATTN_LDP);
#pragma unroll
        for (int n = 0; n < NF; n++) {
            AttnFragB x;
            wmma::load_matrix_sync(x, X + kk * 16 * LDB + n * 16, LDB);
            wmma::mma_sync(acc[n], w, x, acc[n]);
        }
    }
}

/* the same for two products sharing the loop: acc1 += W1 X1, acc2 += W2 X2 (dV += P^T dO, dK += dS^T Q) */
template <int HD>
static __device__ __forceinline__ void attn_wmma_acc2(AttnFragC *acc1, const __nv_bfloat16 *W1,
                                                      const __nv_bfloat16 *X1, AttnFragC *acc2,
                                                      const __nv_bfloat16 *W2, const __nv_bfloat16 *X2, int b0,
                                                      int b1) {
    constexpr int LDB = HD + 8, NF = HD / 16;
    for (int kk = b0; kk < b1; kk++) {
        AttnFragA w1, w2;
        wmma::load_matrix_sync(w1, W1 + kk * 16, ATTN_LDP);
        wmma::load_matrix_sync(w2, W2 + kk * 16, ATTN_LDP);
#pragma unroll
        for (int n = 0; n < NF; n++) {
            AttnFragB x1, x2;
            wmma::load_matrix_sync(x1, X1 + kk * 16 * LDB + n * 16, LDB);
            wmma::mma_sync(acc1[n], w1, x1, acc1[n]);
            wmma::load_matrix_sync(x2, X2 + kk * 16 * LDB + n * 16, LDB);
            wmma::mma_sync(acc2[n], w2, x2, acc2[n]);
        }
    }
}

/* rows row0 .. row0 + nrows - 1 of a warp's accumulators acc[HD / 16] (16 x HD) to global rows of stride `stride`
 * (T float, or bf16 storage: rounded) through the warp's fp32 stage [16][HD + 4] (every lane must be done reading
 * it) */
template <int HD, class T>
static __device__ __forceinline__ void attn_wmma_write_rows(T *g, size_t stride, float *stage,
                                                            const AttnFragC *acc, int row0, int nrows) {
#pragma unroll
    for (int n = 0; n < HD / 16; n++) wmma::store_matrix_sync(stage + n * 16, acc[n], HD + 4, wmma::mem_row_major);
    __syncwarp();
    attn_write_rows<HD>(g, stride, stage, row0, nrows);
}
#endif
