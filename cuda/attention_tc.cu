/* attention_tc.cu — causal grouped-query attention over packed sequences on tensor cores (the bf16 mode):
 * the same interface, semantics and determinism as the fp32 kernels of attention.cu, which dispatches here
 * (cu_bf16(), or SIMPO_CUDA_ATTN=tc) for head dims 64 and 128.
 *
 * Precision (that of torch's bf16 flash attention): q, k, v, dout are rounded to bf16 when a tile is staged
 * into shared memory, the probabilities P and dS are rounded to bf16 for their products; every product runs
 * on tensor cores (nvcuda::wmma, bf16 16x16x16 fragments) with fp32 accumulation. Scores, the softmax
 * statistics (running max m, sum l, in log2 units), the running rescale of O, lse, D = rowsum(dout * out) and
 * all outputs are fp32. Inputs and outputs are the fp32 arrays of backend.h; no T x T matrix in global memory.
 *
 * Tiles. As in attention.cu, rows are cut into tiles that never cross a sequence boundary, here of 64 rows;
 * each block finds its tile from cu_seqlens (attn_find_tile) and the host downloads cu_seqlens for the tile
 * count. A block is 4 warps; warp w owns 16 rows (w*16 ..) of the block's 64-row tile. Tensor-core work goes
 * through shared memory only: operands are wmma-loaded from bf16 tiles, results wmma-stored to a per-warp fp32
 * stage, and everything elementwise (mask, softmax, rescale, dS) is plain thread code on that stage, a lane
 * pair per row (lane 2r + half owns row r and the column pairs 4c + 2 half, + 1). Nothing depends on how
 * wmma spreads a fragment over the lanes. The stages are private to their warp: __syncwarp orders the wmma
 * stores before the plain reads and the plain writes before the wmma loads; __syncthreads guards the shared
 * K / V (or Q / dO) tiles.
 *
 *   attn_tc_fwd_k   block = (query tile, query head); Q fragments stay in registers. Per key tile (up to the
 *                   diagonal): S = Q K^T -> stage; online softmax on the stage (P in bf16); P V -> stage;
 *                   O = O alpha + P V in registers (fp32, the lane pair's row). Writes out = O / l, lse.
 *   attn_tc_dq_k    block = (query tile, query head); Q, dO fragments in registers. Per key tile:
 *                   S = Q K^T, dP = dO V^T -> stage; dS = P (dP - D) scale with P = exp(S scale - lse)
 *                   (bf16); dQ += dS K in accumulator fragments; written once.
 *   attn_tc_dkdv_k  block = (key tile, kv head). For the group's query heads in order and the query tiles at and
 *                   after the key tile: S^T = K Q^T -> stage -> P^T (bf16); dP^T = V dO^T -> stage ->
 *                   dS^T = P^T (dP^T - D) scale (bf16); dV += P^T dO, dK += dS^T Q in accumulator fragments,
 *                   written once. No atomics anywhere: results are deterministic (bitwise, run to run).
 * Key (or query) blocks of 16 that the causal mask hides from a whole warp are skipped (diagonal tiles).
 *
 * Shared memory (bytes; bf16 tile rows padded to HD + 8, fp32 stage rows to 64 + 4 or HD + 4, so 16-row wmma
 * tiles start 32-byte aligned and ldm is a multiple of 16 bytes, as wmma requires):
 *   fwd  K, V tiles + 4 x (16 x (HD + 4) fp32 stage + 16 x 72 bf16 P)            44 KB (HD 64) / 76 KB (HD 128)
 *   dq   K, V tiles + 4 x (2 x 16 x 68 fp32 stages + 16 x 72 bf16 dS)           61 KB / 77 KB
 *   dkdv K, V, Q, dO tiles + 4 x (16 x 68 stage + 2 x 16 x 72 bf16) + lse, D     71 KB / 103.5 KB
 * all opt-in above 48 KB; two blocks (8 warps) per SM at HD 128 (registers: 166 fwd, 250 dq, 246 dkdv, no
 * spills). Needs sm_80+ (bf16 wmma). Measured on an H200 (test_cuda_ops perf: 4 x 1024 tokens, NH 32, NKV 8,
 * HD 128): fwd 0.84 ms = 41 TFLOP/s, bwd 2.07 ms = 41 TFLOP/s at 2.5x the forward's flops; the fp32 kernels take
 * 2.77 / 8.93 ms. Tile staging is synchronous (global loads, convert, store, __syncthreads, compute), which
 * dominates: overlapping it with compute (cp.async double buffering) is the next step. */
#include <cuda_bf16.h>
#include <mma.h>
#include <stdlib.h>
#include "attn_launch.cuh"
#include "attn_tiles.cuh"
#include "attn_wmma.cuh"
#include "cuda_common.cuh"

typedef __nv_bfloat16 bf16;
typedef AttnFragA FragA;
typedef AttnFragB FragB;
typedef AttnFragBt FragBt;
typedef AttnFragC FragC;

enum {
    TC_BM = 64,      /* rows of a block's tile (queries, or keys in dkdv) */
    TC_BN = 64,      /* rows of the inner tile it loops over */
    TC_WARPS = 4,    /* warp w owns rows 16 w .. 16 w + 15 of the block's tile */
    TC_THREADS = 128,
    TC_LDS = ATTN_LDS, /* fp32 score stage row stride (64 columns + 4) */
    TC_LDP = ATTN_LDP, /* bf16 probability row stride (64 columns + 8) */
};

/* rows [r0, r0 + nvalid) of a row-major fp32 tensor (row stride `stride`, g at the head's first column) into
 * dst[64][HD + 8] as bf16 (round to nearest even); rows past nvalid are zeros (they meet P = 0 or a mask, and
 * must not be NaN). float4 loads: g and stride keep 16-byte alignment (checked by the dispatcher). */
template <int HD>
static __device__ __forceinline__ void tc_stage(bf16 *dst, const float *g, size_t stride, int r0, int nvalid) {
    constexpr int LDB = HD + 8, C4 = HD / 4;
#pragma unroll 4
    for (int idx = threadIdx.x; idx < TC_BM * C4; idx += TC_THREADS) {
        const int r = idx / C4, c = (idx % C4) * 4;
        float4 x = {0.0f, 0.0f, 0.0f, 0.0f};
        if (r < nvalid) x = *(const float4 *)(g + (size_t)(r0 + r) * stride + c);
        __nv_bfloat162 *d = (__nv_bfloat162 *)(dst + r * LDB + c);
        d[0] = __floats2bfloat162_rn(x.x, x.y);
        d[1] = __floats2bfloat162_rn(x.z, x.w);
    }
}

/* ---- forward ---- */
template <int HD>
__global__ void __launch_bounds__(TC_THREADS) attn_tc_fwd_k(float *out, float *lse, const float *q, const float *k,
                                                           const float *v, const int *cu, int S, int NH, int NKV,
                                                           float sl2 /* log2(e) / sqrt(HD) */) {
    constexpr int LDB = HD + 8, LDO = HD + 4, NF = HD / 16;
    static_assert(HD % 16 == 0 && HD >= 64, "the score stage [16][68] fits in the output stage [16][HD + 4]");
    extern __shared__ __align__(128) unsigned char tc_smem[];
    bf16 *Ks = (bf16 *)tc_smem, *Vs = Ks + TC_BN * LDB;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 1, half = lane & 1;
    float *St = (float *)(Vs + TC_BN * LDB) + warp * 16 * LDO; /* scores [16][68], then P V [16][HD + 4] */
    bf16 *Pw = (bf16 *)((float *)(Vs + TC_BN * LDB) + TC_WARPS * 16 * LDO) + warp * 16 * TC_LDP;
    const int h = blockIdx.y, kvh = h / (NH / NKV);
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    int st, en, q0;
    attn_find_tile<TC_BM>(cu, S, blockIdx.x, &st, &en, &q0);
    if (en <= st) return;
    const int nq = min(TC_BM, en - q0), qlast = q0 + nq - 1;
    const bool active = warp * 16 < nq;                 /* the warp has rows in the sequence (warp-uniform) */
    const int wlast = min(q0 + warp * 16 + 15, qlast);  /* its last one */
    const int i = min(q0 + warp * 16 + r, qlast);       /* the lane pair's row; rows past the end mirror the last */

    tc_stage<HD>(Ks, q + (size_t)h * HD, qs, q0, nq); /* Q through the K tile's space */
    __syncthreads();
    FragA qa[NF];
#pragma unroll
    for (int kk = 0; kk < NF; kk++) wmma::load_matrix_sync(qa[kk], Ks + warp * 16 * LDB + kk * 16, LDB);

    float m = -INFINITY, l = 0.0f, o[HD / 2]; /* o[c]: column 4 (c / 2) + 2 half + c % 2 of row i */
#pragma unroll
    for (int c = 0; c < HD / 2; c++) o[c] = 0.0f;
    for (int k0 = st; k0 <= qlast; k0 += TC_BN) {
        const int nk = min(TC_BN, en - k0);
        __syncthreads(); /* the last tile's readers are done (and Q's fragments loaded) */
        tc_stage<HD>(Ks, k + (size_t)kvh * HD, ks, k0, nk);
        tc_stage<HD>(Vs, v + (size_t)kvh * HD, ks, k0, nk);
        __syncthreads();
        if (!active) continue;
        /* key blocks of 16 holding a key <= the warp's last row (and < nk): the rest is masked out */
        const int ncb = min((wlast - k0) / 16 + 1, (nk + 15) / 16);
        for (int n = 0; n < ncb; n++) attn_wmma_xt_block<HD>(St, qa, Ks, n);
        __syncwarp();
        /* online softmax of row i over this tile, in log2 units; masked entries (and blocks not computed) never
         * read the stage */
        float mt = -INFINITY;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const int col = 4 * (c >> 1) + 2 * half + (c & 1);
            if (col < nk && k0 + col <= i) mt = fmaxf(mt, St[r * TC_LDS + col]);
        }
        mt = fmaxf(mt, __shfl_xor_sync(CU_FULL_MASK, mt, 1));
        const float mn = fmaxf(m, mt * sl2); /* finite: key st <= i is in the first tile */
        const float alpha = m == -INFINITY ? 0.0f : exp2f(m - mn);
        float ls = 0.0f;
#pragma unroll
        for (int c2 = 0; c2 < 16; c2++) {
            const int col = 4 * c2 + 2 * half;
            float p0 = 0.0f, p1 = 0.0f;
            if (col < nk && k0 + col <= i) p0 = exp2f(St[r * TC_LDS + col] * sl2 - mn);
            if (col + 1 < nk && k0 + col + 1 <= i) p1 = exp2f(St[r * TC_LDS + col + 1] * sl2 - mn);
            ls += p0 + p1;
            *(__nv_bfloat162 *)(Pw + r * TC_LDP + col) = __floats2bfloat162_rn(p0, p1);
        }
        ls += __shfl_xor_sync(CU_FULL_MASK, ls, 1);
        l = l * alpha + ls;
        m = mn;
        __syncwarp(); /* the scores are read (P V overwrites them) and P is written */
        for (int n = 0; n < NF; n++) {
            FragC oacc;
            wmma::fill_fragment(oacc, 0.0f);
            for (int kk = 0; kk < ncb; kk++) {
                FragA pa;
                FragB vb;
                wmma::load_matrix_sync(pa, Pw + kk * 16, TC_LDP);
                wmma::load_matrix_sync(vb, Vs + kk * 16 * LDB + n * 16, LDB);
                wmma::mma_sync(oacc, pa, vb, oacc);
            }
            wmma::store_matrix_sync(St + n * 16, oacc, LDO, wmma::mem_row_major);
        }
        __syncwarp();
#pragma unroll
        for (int c = 0; c < HD / 2; c++) o[c] = o[c] * alpha + St[r * LDO + 4 * (c >> 1) + 2 * half + (c & 1)];
    }
    if (!active) return;
    const float inv = 1.0f / l;
    __syncwarp(); /* every lane has read its P V row */
#pragma unroll
    for (int c = 0; c < HD / 2; c++) St[r * LDO + 4 * (c >> 1) + 2 * half + (c & 1)] = o[c] * inv;
    __syncwarp();
    attn_write_rows<HD>(out + (size_t)h * HD, qs, St, q0 + warp * 16, wlast - (q0 + warp * 16) + 1);
    if (half == 0 && q0 + warp * 16 + r <= qlast) lse[(size_t)i * NH + h] = (m + log2f(l)) * ATTN_LN2;
}

/* ---- backward ---- */

template <int HD>
__global__ void __launch_bounds__(TC_THREADS) attn_tc_dq_k(float *dq, const float *dout, const float *q,
                                                          const float *k, const float *v, const float *lse,
                                                          const float *D, const int *cu, int S, int NH, int NKV,
                                                          float sl2, float scale) {
    constexpr int LDB = HD + 8, LDO = HD + 4, NF = HD / 16, SW = 2 * 16 * TC_LDS;
    static_assert(SW >= 16 * LDO, "the dQ stage fits in the S and dP stages");
    extern __shared__ __align__(128) unsigned char tc_smem[];
    bf16 *Ks = (bf16 *)tc_smem, *Vs = Ks + TC_BN * LDB;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 1, half = lane & 1;
    float *Sst = (float *)(Vs + TC_BN * LDB) + warp * SW, *dPst = Sst + 16 * TC_LDS; /* and dQ [16][HD + 4] */
    bf16 *dSw = (bf16 *)((float *)(Vs + TC_BN * LDB) + TC_WARPS * SW) + warp * 16 * TC_LDP;
    const int h = blockIdx.y, kvh = h / (NH / NKV);
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    int st, en, q0;
    attn_find_tile<TC_BM>(cu, S, blockIdx.x, &st, &en, &q0);
    if (en <= st) return;
    const int nq = min(TC_BM, en - q0), qlast = q0 + nq - 1;
    const bool active = warp * 16 < nq;
    const int wlast = min(q0 + warp * 16 + 15, qlast);
    const int i = min(q0 + warp * 16 + r, qlast);
    const float lse2 = lse[(size_t)i * NH + h] * ATTN_LOG2E, Di = D[(size_t)i * NH + h];

    tc_stage<HD>(Ks, q + (size_t)h * HD, qs, q0, nq);
    tc_stage<HD>(Vs, dout + (size_t)h * HD, qs, q0, nq);
    __syncthreads();
    FragA qa[NF], doa[NF];
    FragC acc[NF];
    attn_wmma_dq_start<HD>(qa, doa, acc, Ks + warp * 16 * LDB, Vs + warp * 16 * LDB);
    for (int k0 = st; k0 <= qlast; k0 += TC_BN) {
        const int nk = min(TC_BN, en - k0);
        __syncthreads();
        tc_stage<HD>(Ks, k + (size_t)kvh * HD, ks, k0, nk);
        tc_stage<HD>(Vs, v + (size_t)kvh * HD, ks, k0, nk);
        __syncthreads();
        if (!active) continue;
        const int ncb = min((wlast - k0) / 16 + 1, (nk + 15) / 16);
        for (int n = 0; n < ncb; n++) attn_wmma_xt_block2<HD>(Sst, qa, Ks, dPst, doa, Vs, n);
        __syncwarp();
#pragma unroll
        for (int c2 = 0; c2 < 16; c2++) {
            const int col = 4 * c2 + 2 * half;
            float d0 = 0.0f, d1 = 0.0f;
            if (col < nk && k0 + col <= i) {
                float p = exp2f(Sst[r * TC_LDS + col] * sl2 - lse2);
                d0 = p * (dPst[r * TC_LDS + col] - Di) * scale;
            }
            if (col + 1 < nk && k0 + col + 1 <= i) {
                float p = exp2f(Sst[r * TC_LDS + col + 1] * sl2 - lse2);
                d1 = p * (dPst[r * TC_LDS + col + 1] - Di) * scale;
            }
            *(__nv_bfloat162 *)(dSw + r * TC_LDP + col) = __floats2bfloat162_rn(d0, d1);
        }
        __syncwarp();
        attn_wmma_acc<HD>(acc, dSw, Ks, 0, ncb); /* dQ += dS K */
    }
    if (!active) return;
    __syncwarp(); /* every lane has read the stages */
    attn_wmma_write_rows<HD>(dq + (size_t)h * HD, qs, Sst, acc, q0 + warp * 16, wlast - (q0 + warp * 16) + 1);
}

/* stage[16][68] columns 16 nb0 .. 16 nqb - 1 = A X^T for a warp's 16-row bf16 block A (row stride HD + 8) and the
 * rows 16 nb0 .. 16 nqb - 1 of a bf16 tile X (same stride), one block at a time */
template <int HD>
static __device__ __forceinline__ void tc_rowblock_xt(float *stage, const bf16 *A, const bf16 *X, int nb0, int nqb) {
    constexpr int LDB = HD + 8, NF = HD / 16;
    for (int n = nb0; n < nqb; n++) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
            FragA a;
            FragBt x;
            wmma::load_matrix_sync(a, A + kk * 16, LDB);
            wmma::load_matrix_sync(x, X + n * 16 * LDB + kk * 16, LDB);
            wmma::mma_sync(acc, a, x, acc);
        }
        wmma::store_matrix_sync(stage + n * 16, acc, TC_LDS, wmma::mem_row_major);
    }
}

template <int HD>
__global__ void __launch_bounds__(TC_THREADS) attn_tc_dkdv_k(float *dk, float *dv, const float *dout,
                                                            const float *q, const float *k, const float *v,
                                                            const float *lse, const float *D, const int *cu, int S,
                                                            int NH, int NKV, float sl2, float scale) {
    constexpr int LDB = HD + 8, LDO = HD + 4, NF = HD / 16;
    extern __shared__ __align__(128) unsigned char tc_smem[];
    bf16 *Ks = (bf16 *)tc_smem, *Vs = Ks + TC_BM * LDB, *Qs = Vs + TC_BM * LDB, *dOs = Qs + TC_BN * LDB;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 1, half = lane & 1;
    float *stage_all = (float *)(dOs + TC_BN * LDB);
    bf16 *P_all = (bf16 *)(stage_all + TC_WARPS * 16 * TC_LDS), *dS_all = P_all + TC_WARPS * 16 * TC_LDP;
    float *lse2s = (float *)(dS_all + TC_WARPS * 16 * TC_LDP), *Ds = lse2s + TC_BN; /* lse (log2 units), D */
    float *St = stage_all + warp * 16 * TC_LDS; /* S^T, then dP^T [16][68] */
    bf16 *Pt = P_all + warp * 16 * TC_LDP, *dSt = dS_all + warp * 16 * TC_LDP;
    const int kvh = blockIdx.y, group = NH / NKV;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    int st, en, k0;
    attn_find_tile<TC_BM>(cu, S, blockIdx.x, &st, &en, &k0);
    if (en <= st) return;
    const int nk = min(TC_BM, en - k0);
    const bool active = warp * 16 < nk;
    const int jr = warp * 16 + r, j = k0 + jr; /* the lane pair's key row (tile row, sequence row) */

    tc_stage<HD>(Ks, k + (size_t)kvh * HD, ks, k0, nk);
    tc_stage<HD>(Vs, v + (size_t)kvh * HD, ks, k0, nk);
    FragC dka[NF], dva[NF];
#pragma unroll
    for (int n = 0; n < NF; n++) {
        wmma::fill_fragment(dka[n], 0.0f);
        wmma::fill_fragment(dva[n], 0.0f);
    }
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int q0 = k0; q0 < en; q0 += TC_BN) {
            const int nq = min(TC_BN, en - q0);
            __syncthreads(); /* the last query tile's readers are done (first time: K, V staged) */
            tc_stage<HD>(Qs, q + (size_t)h * HD, qs, q0, nq);
            tc_stage<HD>(dOs, dout + (size_t)h * HD, qs, q0, nq);
            for (int t = threadIdx.x; t < TC_BN; t += TC_THREADS) {
                lse2s[t] = t < nq ? lse[(size_t)(q0 + t) * NH + h] * ATTN_LOG2E : 0.0f;
                Ds[t] = t < nq ? D[(size_t)(q0 + t) * NH + h] : 0.0f;
            }
            __syncthreads();
            /* query blocks of 16 wholly before the warp's first key are masked out (diagonal tile) */
            const int nb0 = max(0, (k0 + warp * 16 - q0) / 16), nqb = (nq + 15) / 16;
            if (!active || nb0 >= nqb) continue;
            tc_rowblock_xt<HD>(St, Ks + warp * 16 * LDB, Qs, nb0, nqb); /* S^T = K Q^T */
            __syncwarp();
#pragma unroll
            for (int c2 = 0; c2 < 16; c2++) { /* P^T[j][i] = exp(S scale - lse_i), i >= j */
                const int col = 4 * c2 + 2 * half;
                float p0 = 0.0f, p1 = 0.0f;
                if (jr < nk && col < nq && q0 + col >= j) p0 = exp2f(St[r * TC_LDS + col] * sl2 - lse2s[col]);
                if (jr < nk && col + 1 < nq && q0 + col + 1 >= j)
                    p1 = exp2f(St[r * TC_LDS + col + 1] * sl2 - lse2s[col + 1]);
                *(__nv_bfloat162 *)(Pt + r * TC_LDP + col) = __floats2bfloat162_rn(p0, p1);
            }
            __syncwarp(); /* S^T is read: dP^T overwrites it */
            tc_rowblock_xt<HD>(St, Vs + warp * 16 * LDB, dOs, nb0, nqb); /* dP^T = V dO^T */
            __syncwarp();
#pragma unroll
            for (int c2 = 0; c2 < 16; c2++) { /* dS^T = P^T (dP^T - D_i) scale; P^T as rounded (own entries) */
                const int col = 4 * c2 + 2 * half;
                float d0 = 0.0f, d1 = 0.0f;
                if (jr < nk && col < nq && q0 + col >= j)
                    d0 = __bfloat162float(Pt[r * TC_LDP + col]) * (St[r * TC_LDS + col] - Ds[col]) * scale;
                if (jr < nk && col + 1 < nq && q0 + col + 1 >= j)
                    d1 = __bfloat162float(Pt[r * TC_LDP + col + 1]) * (St[r * TC_LDS + col + 1] - Ds[col + 1]) *
                         scale;
                *(__nv_bfloat162 *)(dSt + r * TC_LDP + col) = __floats2bfloat162_rn(d0, d1);
            }
            __syncwarp();
            attn_wmma_acc2<HD>(dva, Pt, dOs, dka, dSt, Qs, nb0, nqb); /* dV += P^T dO, dK += dS^T Q */
        }
    }
    __syncthreads(); /* Q, dO tiles free: they become the output stages, [16][HD + 4] fp32 per warp */
    if (!active) return;
    float *Ow = (float *)Qs + warp * 16 * LDO;
    const int rows = min(16, nk - warp * 16);
    attn_wmma_write_rows<HD>(dk + (size_t)kvh * HD, ks, Ow, dka, k0 + warp * 16, rows);
    __syncwarp();
    attn_wmma_write_rows<HD>(dv + (size_t)kvh * HD, ks, Ow, dva, k0 + warp * 16, rows);
}

/* ---- host side ---- */

bool cuda_attn_tc_supports(int HD) { return HD == 64 || HD == 128; }

template <int HD> static size_t tc_smem_fwd(void) {
    return (size_t)2 * TC_BN * (HD + 8) * 2 + (size_t)TC_WARPS * 16 * ((HD + 4) * 4 + TC_LDP * 2);
}
template <int HD> static size_t tc_smem_dq(void) {
    return (size_t)2 * TC_BN * (HD + 8) * 2 + (size_t)TC_WARPS * (2 * 16 * TC_LDS * 4 + 16 * TC_LDP * 2);
}
template <int HD> static size_t tc_smem_dkdv(void) {
    return (size_t)4 * TC_BN * (HD + 8) * 2 + (size_t)TC_WARPS * 16 * (TC_LDS * 4 + 2 * TC_LDP * 2) +
           (size_t)2 * TC_BN * 4;
}
static int tc_opted[3][2]; /* attn_want_smem's record: [fwd, dq, dkdv][HD 64, 128] */

template <int HD>
static void tc_launch_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu,
                          int S, int NH, int NKV, int tiles) {
    attn_launch(attn_tc_fwd_k<HD>, dim3((unsigned)tiles, (unsigned)NH), TC_THREADS, tc_smem_fwd<HD>(),
                &tc_opted[0][HD == 128], "attn_fwd (tensor cores)", HD, out, lse, q, k, v, cu, S, NH, NKV,
                ATTN_LOG2E / sqrtf((float)HD));
}

template <int HD>
static void tc_launch_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                          const float *v, const float *lse, const float *D, const int *cu, int S, int NH, int NKV,
                          int tiles) {
    const float scale = 1.0f / sqrtf((float)HD);
    attn_launch(attn_tc_dq_k<HD>, dim3((unsigned)tiles, (unsigned)NH), TC_THREADS, tc_smem_dq<HD>(),
                &tc_opted[1][HD == 128], "attn_bwd (tensor cores, dq)", HD, dq, dout, q, k, v, lse, D, cu, S, NH,
                NKV, scale * ATTN_LOG2E, scale);
    attn_launch(attn_tc_dkdv_k<HD>, dim3((unsigned)tiles, (unsigned)NKV), TC_THREADS, tc_smem_dkdv<HD>(),
                &tc_opted[2][HD == 128], "attn_bwd (tensor cores, dk, dv)", HD, dk, dv, dout, q, k, v, lse, D, cu,
                S, NH, NKV, scale * ATTN_LOG2E, scale);
}

/* The second version (attention_tc2.cu: bf16 pre-pass, cp.async pipelining, 128-row tiles of 8 warps, O kept in
 * fragments), the third (attention_tc3.cu: mma.sync with scores in registers), the default, and the fourth (the
 * third's kernels in blocks of 4 warps) run from their kernel tables (attn_tc_run_fwd / _bwd); SIMPO_CUDA_ATTN_TC =
 * 1, 2, 3 or 4 picks one (cuda_attn_tc_version, attention_tc2.cu; read on every call). NULL: this version. */
static AttnTcImpl *tc_impl(void) {
    const int ver = cuda_attn_tc_version();
    return ver == 4 ? &attn_tc4_impl : ver == 3 ? &attn_tc3_impl : ver == 2 ? &attn_tc2_impl : NULL;
}

/* cuda_attn_fwd / cuda_attn_bwd on tensor cores: called by attention.cu for HD in {64, 128} with 16-byte
 * aligned q, k, v, out, dout, dq, dk, dv, after its shape checks (NH a multiple of NKV, S > 0) */
void cuda_attn_tc_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                      const int *cu_seqlens, int S, int NH, int NKV, int HD) {
    if (AttnTcImpl *impl = tc_impl()) {
        attn_tc_run_fwd(impl, out, lse, q, k, v, cu_seqlens, S, NH, NKV, HD);
        return;
    }
    int n0, N;
    const int tiles = attn_tiles(cu_seqlens, S, TC_BM, 1, &n0, &N, "attn_fwd");
    if (!tiles) return;
    if (HD == 64) tc_launch_fwd<64>(out, lse, q, k, v, cu_seqlens, S, NH, NKV, tiles);
    else tc_launch_fwd<128>(out, lse, q, k, v, cu_seqlens, S, NH, NKV, tiles);
}

bool cuda_attn_tc_fwd16(__nv_bfloat16 *out, float *lse, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                        const __nv_bfloat16 *v, const int *cu_seqlens, int S, int NH, int NKV, int HD) {
    AttnTcImpl *impl = tc_impl();
    if (impl) attn_tc_run_fwd16(impl, out, lse, q, k, v, cu_seqlens, S, NH, NKV, HD);
    return impl != NULL;
}

bool cuda_attn_tc_bwd16(__nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv, const __nv_bfloat16 *dout,
                        const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v, const __nv_bfloat16 *out, const float *lse,
                        const int *cu_seqlens, int S, int NH, int NKV, int HD) {
    AttnTcImpl *impl = tc_impl();
    if (impl) attn_tc_run_bwd16(impl, dq, dk, dv, dout, q, k, v, out, lse, cu_seqlens, S, NH, NKV, HD);
    return impl != NULL;
}

void cuda_attn_tc_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                      const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                      int NKV, int HD) {
    if (AttnTcImpl *impl = tc_impl()) {
        attn_tc_run_bwd(impl, dq, dk, dv, dout, q, k, v, out, lse, cu_seqlens, S, NH, NKV, HD);
        return;
    }
    int n0, N;
    const int tiles = attn_bwd_start(dq, dk, dv, sizeof(float), cu_seqlens, S, NH, NKV, HD, TC_BM, 1, &n0, &N);
    if (!tiles) return;
    float *D = (float *)cu_scratch((size_t)N * NH * sizeof(float), "attn_bwd rowsum(dout * out)");
    attn_rowsum(D, NULL, dout, out, n0, N, NH, HD, "attn_bwd (tensor cores, D)");
    if (HD == 64) tc_launch_bwd<64>(dq, dk, dv, dout, q, k, v, lse, D, cu_seqlens, S, NH, NKV, tiles);
    else tc_launch_bwd<128>(dq, dk, dv, dout, q, k, v, lse, D, cu_seqlens, S, NH, NKV, tiles);
    cu_scratch_free(D);
}
