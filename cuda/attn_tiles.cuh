/* attn_tiles.cuh — private to cuda/: the device helpers that the three attention kernels (attention.cu,
 * attention_tc.cu, attention_tc2.cu) share, kept in one place so that their tiling cannot drift apart; they differ
 * only in the tile height (BR = 32, TC_BM = 64, T2_BM = 128) and attention_tc2's reversed hand-out. Included from
 * the .cu files, so the CPU emulation (tests/gpu/emu) compiles it with them.
 */
#ifndef SD_ATTN_TILES_CUH
#define SD_ATTN_TILES_CUH
#include "cuda_common.cuh"

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

#endif
