/* attn_tiles.cuh — private to cuda/: the device helpers that the attention kernels (attention.cu,
 * attention_tc.cu, attention_tc2.cu, attention_tc3.cu) share, kept in one place so that their tiling cannot drift
 * apart; they differ only in the tile height (BR = 32, TC_BM = 64, T2_BM = T3_BM = 128) and the reversed hand-out
 * of versions 2 and 3. Also the bf16 tile loaders that the tensor-core versions 2 and 3 share. The host side they
 * share is attn_launch.cuh. Included from the .cu files, so the CPU emulation (tests/gpu/emu) compiles it with them.
 */
#ifndef SD_ATTN_TILES_CUH
#define SD_ATTN_TILES_CUH
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include "cuda_common.cuh"

/* the tensor-core versions keep softmax statistics in log2 units: scores times log2(e), lse back times ln(2) */
#define ATTN_LOG2E 1.4426950408889634f
#define ATTN_LN2 0.6931471805599453f

/* The tile this block handles: tiles of BM rows that never cross a sequence boundary, numbered sequence by
 * sequence (a warp scan of the sequences' tile counts over cu[0..S]); with REV a sequence's tiles are handed out
 * last to first. st, en = the sequence's rows, r0 = the tile's first row; en == st when the index is out of range
 * (cannot happen with the host's count). All threads of the block call it (two __syncthreads). */
template <int BM, bool REV = false>
static __device__ void attn_find_tile(const int *cu, int S, int tile, int *st, int *en, int *r0) {
    __shared__ int info[3];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) info[0] = info[1] = info[2] = 0;
    __syncthreads();
    if (warp == 0) {
        int base = 0; /* tiles in the sequences before this chunk of 32 */
        for (int s0 = 0; s0 < S; s0 += 32) {
            int s = s0 + lane, a = 0, b = 0, nt = 0;
            if (s < S) {
                a = cu[s];
                b = cu[s + 1];
                nt = b > a ? (b - a + BM - 1) / BM : 0;
            }
            int inc = nt;
            for (int o = 1; o < 32; o <<= 1) {
                int y = __shfl_up_sync(CU_FULL_MASK, inc, o);
                if (lane >= o) inc += y;
            }
            int exc = inc - nt;
            bool mine = s < S && tile >= base + exc && tile < base + inc;
            unsigned bal = __ballot_sync(CU_FULL_MASK, mine);
            if (bal) { /* warp-uniform */
                if (mine) {
                    info[0] = a;
                    info[1] = b;
                    const int j = tile - base - exc;
                    info[2] = a + (REV ? nt - 1 - j : j) * BM;
                }
                break;
            }
            base += __shfl_sync(CU_FULL_MASK, inc, 31);
        }
    }
    __syncthreads();
    *st = info[0];
    *en = info[1];
    *r0 = info[2];
}

/* rows 0 .. nrows - 1 (nrows <= 16) of a warp's fp32 stage [16][HD + 4] to global rows row0 .. of stride `stride`
 * (float4, coalesced); one warp (attention_tc.cu, attention_tc2.cu) */
template <int HD>
static __device__ __forceinline__ void attn_write_rows(float *g, size_t stride, const float *stage, int row0,
                                                       int nrows) {
    constexpr int LDO = HD + 4, C4 = HD / 4;
    const int lane = threadIdx.x & 31;
    for (int idx = lane; idx < nrows * C4; idx += 32) {
        const int rr = idx / C4, c = (idx % C4) * 4;
        *(float4 *)(g + (size_t)(row0 + rr) * stride + c) = *(const float4 *)(stage + rr * LDO + c);
    }
}

/* cp.async of rows [r0, r0 + nvalid) of a row-major bf16 tensor (row stride `stride` elements, g at the head's
 * first column) into dst[ROWS][HD + 8]; rows past nvalid are zeros (plain stores: they meet P = 0 or a mask and
 * must not be NaN). All THREADS threads of the block take part; the caller commits the group. */
template <int HD, int ROWS, int THREADS>
static __device__ __forceinline__ void attn_cp_tile(__nv_bfloat16 *dst, const __nv_bfloat16 *g, size_t stride,
                                                    int r0, int nvalid) {
    constexpr int LDB = HD + 8, C8 = HD / 8, PER = ROWS * C8 / THREADS;
    static_assert(ROWS * C8 % THREADS == 0, "whole rounds");
#pragma unroll
    for (int it = 0; it < PER; it++) {
        const int idx = threadIdx.x + it * THREADS, r = idx / C8, c = (idx % C8) * 8;
        __nv_bfloat16 *d = dst + r * LDB + c;
        if (r < nvalid) __pipeline_memcpy_async(d, g + (size_t)(r0 + r) * stride + c, 16);
        else *(float4 *)d = float4{0.0f, 0.0f, 0.0f, 0.0f};
    }
}

/* the dK / dV kernels' query tiles (versions 2 and 3): iteration `it` of the key tile at row k0 of kv head kvh
 * (`group` query heads per kv head, nqt query tiles of BN rows from k0 on, the sequence ending at row en) is head
 * kvh group + it / nqt, query tile k0 + BN (it % nqt): its rows of q and dout (bf16 [BN][HD + 8]) and of lse and D
 * (fp32 [BN]) by cp.async; rows past the sequence are zeros. All THREADS threads; the caller commits. */
template <int HD, int BN, int THREADS>
static __device__ __forceinline__ void attn_cp_qtile(__nv_bfloat16 *Qd, __nv_bfloat16 *dOd, float *Ld, float *Dd,
                                                     const __nv_bfloat16 *qb, const __nv_bfloat16 *dob,
                                                     const float *lse, const float *D, int NH, int kvh, int group,
                                                     int nqt, int k0, int en, int it) {
    static_assert(THREADS >= 2 * BN && (BN & (BN - 1)) == 0, "one thread per lse / D row");
    const int hh = kvh * group + it / nqt, q0 = k0 + (it % nqt) * BN, nq = min(BN, en - q0);
    const size_t qs = (size_t)NH * HD;
    attn_cp_tile<HD, BN, THREADS>(Qd, qb + (size_t)hh * HD, qs, q0, nq);
    attn_cp_tile<HD, BN, THREADS>(dOd, dob + (size_t)hh * HD, qs, q0, nq);
    const int tt = threadIdx.x & (BN - 1);
    if (threadIdx.x < 2 * BN) {
        float *dst = (threadIdx.x < BN ? Ld : Dd) + tt;
        if (tt < nq) __pipeline_memcpy_async(dst, (threadIdx.x < BN ? lse : D) + (size_t)(q0 + tt) * NH + hh, 4);
        else *dst = 0.0f;
    }
}

/* four bf16 (round to nearest even) to dst[0..3] (8-byte aligned) */
static __device__ __forceinline__ void attn_put4(__nv_bfloat16 *dst, float a, float b, float c, float d) {
    __nv_bfloat162 *p = (__nv_bfloat162 *)dst;
    p[0] = __floats2bfloat162_rn(a, b);
    p[1] = __floats2bfloat162_rn(c, d);
}

/* rows [r0, r0 + nvalid) of a row-major fp32 tensor into dst[ROWS][HD + 8] as bf16 (round to nearest even), rows
 * past nvalid zeros; synchronous (a forward's Q, read once per block). Eight float4 loads in flight per thread. */
template <int HD, int ROWS, int THREADS>
static __device__ __forceinline__ void attn_stage_bf16(__nv_bfloat16 *dst, const float *g, size_t stride, int r0,
                                                       int nvalid) {
    constexpr int LDB = HD + 8, C4 = HD / 4, PER = ROWS * C4 / THREADS, BATCH = 8;
    static_assert(PER % BATCH == 0, "whole batches");
#pragma unroll 1
    for (int b = 0; b < PER; b += BATCH) {
        float4 x[BATCH];
#pragma unroll
        for (int u = 0; u < BATCH; u++) {
            const int idx = threadIdx.x + (b + u) * THREADS, r = idx / C4, c = (idx % C4) * 4;
            x[u] = float4{0.0f, 0.0f, 0.0f, 0.0f};
            if (r < nvalid) x[u] = *(const float4 *)(g + (size_t)(r0 + r) * stride + c);
        }
#pragma unroll
        for (int u = 0; u < BATCH; u++) {
            const int idx = threadIdx.x + (b + u) * THREADS, r = idx / C4, c = (idx % C4) * 4;
            attn_put4(dst + r * LDB + c, x[u].x, x[u].y, x[u].z, x[u].w);
        }
    }
}

#endif
