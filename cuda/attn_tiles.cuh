/* attn_tiles.cuh — private to cuda/: the device helpers that the attention kernels (attention.cu,
 * attention_tc.cu, attention_tc2.cu, attention_tc3.cu) share, kept in one place so that their tiling cannot drift
 * apart; they differ only in the tile height (BR = 32, TC_BM = 64, T2_BM = 128, T3::BM = 128 in version 3 and 64
 * in version 4) and the reversed hand-out of versions 2 to 4. Also the bf16 tile loaders that the tensor-core
 * versions 2 to 4 share. The host side they
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

/* Attention's row r in the tensors' own rows: row xr[r] (prefix sharing in the layers' rows: backend.h
 * attn_fwd_b16_rows), or r itself when xr is NULL (every other call; the NULL is a constant there, so the compiler
 * drops the test). */
static __device__ __forceinline__ int attn_row(const int *xr, int r) { return xr ? xr[r] : r; }

/* The tile this block handles: tiles of BM rows that never cross a sequence boundary, numbered sequence by
 * sequence (a warp scan of the sequences' tile counts over cu[0..S]); with REV a sequence's tiles are handed out
 * last to first. st, en = the sequence's rows, r0 = the tile's first row; en == st when the index is out of range
 * (the host's count may exceed the tiles: see skip). With skip (prefix sharing in the layers' rows), sequence s's
 * tiles cover its rows from st + skip[s] on only (the first skip[s] are copies of the sequence before's); seq, when
 * given, is the sequence's index. All threads of the block call it (two __syncthreads). */
template <int BM, bool REV = false>
static __device__ void attn_find_tile(const int *cu, int S, int tile, int *st, int *en, int *r0,
                                      const int *skip = nullptr, int *seq = nullptr) {
    __shared__ int info[4];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) info[0] = info[1] = info[2] = info[3] = 0;
    __syncthreads();
    if (warp == 0) {
        int base = 0; /* tiles in the sequences before this chunk of 32 */
        for (int s0 = 0; s0 < S; s0 += 32) {
            int s = s0 + lane, a = 0, b = 0, nt = 0, a1 = 0;
            if (s < S) {
                a = cu[s];
                b = cu[s + 1];
                a1 = a + (skip ? skip[s] : 0);
                nt = b > a1 ? (b - a1 + BM - 1) / BM : 0;
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
                    info[2] = a1 + (REV ? nt - 1 - j : j) * BM;
                    info[3] = s;
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
    if (seq) *seq = info[3];
}

/* cp.async of rows [r0, r0 + nvalid) of a row-major bf16 tensor (row stride `stride` elements, g at the head's
 * first column; rows mapped by xr, attn_row) into dst[ROWS][HD + 8]; rows past nvalid are zeros (plain stores: they
 * meet P = 0 or a mask and must not be NaN). All THREADS threads of the block take part; the caller commits. */
template <int HD, int ROWS, int THREADS>
static __device__ __forceinline__ void attn_cp_tile(__nv_bfloat16 *dst, const __nv_bfloat16 *g, size_t stride,
                                                    int r0, int nvalid, const int *xr = nullptr) {
    constexpr int LDB = HD + 8, C8 = HD / 8, PER = ROWS * C8 / THREADS;
    static_assert(ROWS * C8 % THREADS == 0, "whole rounds");
    if (nvalid >= ROWS) { /* a whole tile (all but a sequence's last): no test, no branch per copy; each round
                           * keeps the thread's column and moves its row by RS */
        constexpr int RS = THREADS / C8;
        static_assert(THREADS % C8 == 0, "a thread keeps its column");
        const int r = threadIdx.x / C8, c = (threadIdx.x % C8) * 8;
        __nv_bfloat16 *d = dst + r * LDB + c;
        if (!xr) { /* rows in order: one address, advanced by RS rows a round */
            const __nv_bfloat16 *src = g + (size_t)(r0 + r) * stride + c;
#pragma unroll
            for (int it = 0; it < PER; it++) __pipeline_memcpy_async(d + it * RS * LDB, src + it * RS * stride, 16);
        } else {
#pragma unroll
            for (int it = 0; it < PER; it++)
                __pipeline_memcpy_async(d + it * RS * LDB, g + (size_t)xr[r0 + r + it * RS] * stride + c, 16);
        }
        return;
    }
#pragma unroll
    for (int it = 0; it < PER; it++) {
        const int idx = threadIdx.x + it * THREADS, r = idx / C8, c = (idx % C8) * 8;
        __nv_bfloat16 *d = dst + r * LDB + c;
        if (r < nvalid) __pipeline_memcpy_async(d, g + (size_t)attn_row(xr, r0 + r) * stride + c, 16);
        else *(float4 *)d = float4{0.0f, 0.0f, 0.0f, 0.0f};
    }
}

/* the dK / dV kernels' query tiles (versions 2 to 4): query head hh's rows [q0, q0 + nq) of q and dout (bf16
 * [BN][HD + 8]) and of lse and D (fp32 [BN]) by cp.async, rows mapped by xr (attn_row); rows past nq are zeros. All
 * THREADS threads; the caller commits. */
template <int HD, int BN, int THREADS>
static __device__ __forceinline__ void attn_cp_qtile(__nv_bfloat16 *Qd, __nv_bfloat16 *dOd, float *Ld, float *Dd,
                                                     const __nv_bfloat16 *qb, const __nv_bfloat16 *dob,
                                                     const float *lse, const float *D, int NH, int hh, int q0, int nq,
                                                     const int *xr) {
    static_assert(THREADS >= 2 * BN && (BN & (BN - 1)) == 0, "one thread per lse / D row");
    const size_t qs = (size_t)NH * HD;
    attn_cp_tile<HD, BN, THREADS>(Qd, qb + (size_t)hh * HD, qs, q0, nq, xr);
    attn_cp_tile<HD, BN, THREADS>(dOd, dob + (size_t)hh * HD, qs, q0, nq, xr);
    const int tt = threadIdx.x & (BN - 1);
    if (threadIdx.x < 2 * BN) {
        float *dst = (threadIdx.x < BN ? Ld : Dd) + tt;
        if (tt < nq)
            __pipeline_memcpy_async(dst, (threadIdx.x < BN ? lse : D) + (size_t)attn_row(xr, q0 + tt) * NH + hh, 4);
        else *dst = 0.0f;
    }
}

/* ---- versions 2 and 3: the blocks' tiles, their pipelines of 64-row inner tiles ---- */

/* a forward or dQ block's query tile (attn_find_tile, heaviest first; block b: head b % NH of tile b / NH), the
 * warp's rows in it (warp w: rows 16 w .. 16 w + 15) and its key tiles of BN rows */
struct AttnQTile {
    const int *xr;            /* attention's rows in the tensors' (attn_row; NULL: the same) */
    int h, kvh;               /* query head, its kv head */
    int st, en, q0, nq;       /* the sequence's rows [st, en), the tile's first row and row count */
    int qlast, wfirst, wlast; /* the tile's last row; the warp's first and last rows (wlast <= qlast) */
    int row[2];               /* the rows of an mma.sync fragment's lane (version 3): wfirst + g, wfirst + g + 8
                               * (g = lane / 4), those past qlast as qlast */
    int nt;                   /* key tiles of BN from st up to the diagonal */
    bool active;              /* the warp has rows in the sequence (warp-uniform) */
};
/* false: no tile (the block returns). xr, skip: prefix sharing in the layers' rows (attn_row; attn_find_tile: the
 * query tiles of a sequence start past its skip[s] copied rows, its keys at its start) */
template <int BM, int BN>
static __device__ __forceinline__ bool attn_query_tile(AttnQTile &z, const int *cu, int S, int NH, int NKV,
                                                       const int *xr = nullptr, const int *skip = nullptr) {
    const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2;
    z.xr = xr;
    z.h = blockIdx.x % NH, z.kvh = z.h / (NH / NKV);
    attn_find_tile<BM, true>(cu, S, blockIdx.x / NH, &z.st, &z.en, &z.q0, skip);
    if (z.en <= z.st) return false;
    z.nq = min(BM, z.en - z.q0), z.qlast = z.q0 + z.nq - 1;
    z.active = warp * 16 < z.nq;
    z.wfirst = z.q0 + warp * 16, z.wlast = min(z.wfirst + 15, z.qlast);
    z.row[0] = min(z.wfirst + g, z.qlast), z.row[1] = min(z.wfirst + g + 8, z.qlast);
    z.nt = (z.qlast - z.st) / BN + 1;
    return true;
}
/* key tile t of a query tile, as the warp sees it: false when the warp skips it (no rows, or all before its keys);
 * else its first key k0, key count nk, blocks of 16 keys holding a key <= the warp's last row (ncb; the rest is
 * masked out), and whether no key of it is masked for any row of the warp (full) */
template <int BN>
static __device__ __forceinline__ bool attn_key_tile(const AttnQTile &z, int t, int *k0, int *nk, int *ncb,
                                                     bool *full) {
    *k0 = z.st + t * BN, *nk = min(BN, z.en - *k0);
    if (!z.active || *k0 > z.wlast) return false; /* warp-uniform */
    *ncb = min((z.wlast - *k0) / 16 + 1, (*nk + 15) / 16);
    *full = *nk == BN && *k0 + BN - 1 <= z.wfirst;
    return true;
}
/* the forward's and dQ's K / V pipeline: cp.async of key tile t (rows st + BN t ..) into buffer t % NS when t < nt,
 * then one commit, empty or not (so __pipeline_wait_prior(NS - 2) always means "the oldest tile has landed") */
template <int HD, int BN, int THREADS, int NS>
static __device__ __forceinline__ void attn_cp_kv(__nv_bfloat16 *Kb, __nv_bfloat16 *Vb, const __nv_bfloat16 *kg,
                                                  const __nv_bfloat16 *vg, size_t ks, const AttnQTile &z, int t) {
    constexpr int TILE = BN * (HD + 8);
    if (t < z.nt) {
        const int k0 = z.st + t * BN, b = t % NS;
        attn_cp_tile<HD, BN, THREADS>(Kb + b * TILE, kg, ks, k0, min(BN, z.en - k0), z.xr);
        attn_cp_tile<HD, BN, THREADS>(Vb + b * TILE, vg, ks, k0, min(BN, z.en - k0), z.xr);
    }
    __pipeline_commit();
}

/* a dK / dV block's key tile (attn_find_tile, first to last; block b: kv head b % NKV of tile b / NKV), the warp's
 * keys in it and the (head, query tile) iterations over the group's heads and the query tiles of BN rows from k0 on.
 * Prefix sharing in the layers' rows (skip): a sequence's key tiles start past its copied rows, and a key tile of
 * the shared prompt (rows before plim) also takes, per head, the next sequence's query tiles from b0 (its rows
 * past the copies: the rejected response), which see the prompt's keys (rows < plim) and nothing else here. */
struct AttnKTile {
    const int *xr;      /* attention's rows in the tensors' (attn_row; NULL: the same) */
    int kvh, group;     /* kv head, query heads per kv head */
    int st, en, k0, nk; /* the sequence's rows [st, en), the tile's first row and row count */
    int j0;             /* the warp's first key */
    int nqt, nit;       /* query tiles per head from k0 on; iterations (group x (nqt + nqt2)) */
    unsigned pinv;      /* ceil(2^32 / (nqt + nqt2)), 0 for 1: it / (nqt + nqt2) as a multiply (attn_qiter_rows) */
    int nqt2, b0, ben, plim; /* prefix sharing: the next sequence's query tiles per head, its rows [b0, ben), and
                              * the end of the prompt's keys; 0 tiles otherwise */
    bool active;        /* the warp has keys in the sequence (warp-uniform) */
};
/* false: no tile (the block returns) */
template <int BM, int BN>
static __device__ __forceinline__ bool attn_kv_tile(AttnKTile &z, const int *cu, int S, int NH, int NKV,
                                                    const int *xr = nullptr, const int *skip = nullptr) {
    const int warp = threadIdx.x >> 5;
    int s = 0;
    z.xr = xr;
    z.kvh = blockIdx.x % NKV, z.group = NH / NKV;
    attn_find_tile<BM, false>(cu, S, blockIdx.x / NKV, &z.st, &z.en, &z.k0, skip, &s);
    if (z.en <= z.st) return false;
    z.nk = min(BM, z.en - z.k0);
    z.active = warp * 16 < z.nk;
    z.j0 = z.k0 + warp * 16;
    z.nqt = (z.en - z.k0 + BN - 1) / BN;
    z.nqt2 = z.b0 = z.ben = z.plim = 0;
    if (skip && s + 1 < S && skip[s + 1] > 0 && z.k0 < z.st + skip[s + 1]) {
        z.plim = z.st + skip[s + 1];
        z.b0 = cu[s + 1] + skip[s + 1], z.ben = cu[s + 2];
        z.nqt2 = (z.ben - z.b0 + BN - 1) / BN;
    }
    z.nit = z.group * (z.nqt + z.nqt2);
    z.pinv = z.nqt + z.nqt2 > 1 ? 0xffffffffu / (unsigned)(z.nqt + z.nqt2) + 1 : 0u;
    return true;
}
/* iteration it's query head hh and rows [q0, q0 + nq): tile j = it % (nqt + nqt2) of head kvh group + it /
 * (nqt + nqt2), the own sequence's from k0 (j < nqt) or the next sequence's from b0; true for the latter. The
 * quotient by the multiply with pinv (an integer division is ~20 instructions, twice per iteration): exact while
 * it (nqt + nqt2) < 2^32, for it < nit = group (nqt + nqt2) up to group (nqt + nqt2)^2 < 2^32, sequences far past
 * any context (2^16 query tiles of 64 rows per head: 4 M tokens). */
template <int BN>
static __device__ __forceinline__ bool attn_qiter_rows(const AttnKTile &z, int it, int *hh, int *q0, int *nq) {
    const int per = z.nqt + z.nqt2, i = z.pinv ? (int)__umulhi((unsigned)it, z.pinv) : it, j = it - i * per;
    const bool other = z.nqt2 > 0 && j >= z.nqt; /* constant false without skip */
    *hh = z.kvh * z.group + i;
    *q0 = other ? z.b0 + (j - z.nqt) * BN : z.k0 + j * BN;
    *nq = min(BN, (other ? z.ben : z.en) - *q0);
    return other;
}
/* iteration it as the warp sees it: its query tile's first row q0 and row count nq; false when the warp skips it;
 * else the query blocks of 16 from nb0 on (those wholly before the warp's first key are masked out: diagonal
 * tiles) up to nqb, and whether nothing is masked (full). other (optional): the tile is the next sequence's (prefix
 * sharing): every query sees the warp's keys before plim and none after, so nb0 = 0 and the warp skips it when all
 * its keys lie past plim. */
template <int BN>
static __device__ __forceinline__ bool attn_query_iter(const AttnKTile &z, int it, int *q0, int *nq, int *nb0,
                                                       int *nqb, bool *full, bool *other = nullptr) {
    const int warp = threadIdx.x >> 5;
    int hh;
    const bool oth = attn_qiter_rows<BN>(z, it, &hh, q0, nq);
    if (other) *other = oth;
    *nqb = (*nq + 15) / 16;
    if (oth) {
        *nb0 = 0;
        if (!z.active || z.j0 >= z.plim) return false;
        *full = *nq == BN && z.j0 + 15 < z.plim && warp * 16 + 16 <= z.nk;
        return true;
    }
    *nb0 = max(0, (z.j0 - *q0) / 16);
    if (!z.active || *nb0 >= *nqb) return false;
    *full = *nq == BN && *q0 >= z.j0 + 15 && warp * 16 + 16 <= z.nk;
    return true;
}
/* the dK / dV kernels' query pipeline: iteration it's rows of q, dout, lse and D (attn_cp_qtile) into buffer
 * it % NS of Qb, dOb (bf16 [BN][HD + 8] each), Lb, Db (fp32 [BN]) when it < nit, then one commit, empty or not */
template <int HD, int BN, int THREADS, int NS>
static __device__ __forceinline__ void attn_cp_qiter(__nv_bfloat16 *Qb, __nv_bfloat16 *dOb, float *Lb, float *Db,
                                                     const __nv_bfloat16 *qb, const __nv_bfloat16 *dob,
                                                     const float *lse, const float *D, int NH, const AttnKTile &z,
                                                     int it) {
    constexpr int TILE = BN * (HD + 8);
    if (it < z.nit) {
        const int b = it % NS;
        int hh, q0, nq;
        attn_qiter_rows<BN>(z, it, &hh, &q0, &nq);
        attn_cp_qtile<HD, BN, THREADS>(Qb + b * TILE, dOb + b * TILE, Lb + b * BN, Db + b * BN, qb, dob, lse, D, NH,
                                       hh, q0, nq, z.xr);
    }
    __pipeline_commit();
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
                                                       int nvalid, const int *xr = nullptr) {
    constexpr int LDB = HD + 8, C4 = HD / 4, PER = ROWS * C4 / THREADS, BATCH = 8;
    static_assert(PER % BATCH == 0, "whole batches");
#pragma unroll 1
    for (int b = 0; b < PER; b += BATCH) {
        float4 x[BATCH];
#pragma unroll
        for (int u = 0; u < BATCH; u++) {
            const int idx = threadIdx.x + (b + u) * THREADS, r = idx / C4, c = (idx % C4) * 4;
            x[u] = float4{0.0f, 0.0f, 0.0f, 0.0f};
            if (r < nvalid) x[u] = *(const float4 *)(g + (size_t)attn_row(xr, r0 + r) * stride + c);
        }
#pragma unroll
        for (int u = 0; u < BATCH; u++) {
            const int idx = threadIdx.x + (b + u) * THREADS, r = idx / C4, c = (idx % C4) * 4;
            attn_put4(dst + r * LDB + c, x[u].x, x[u].y, x[u].z, x[u].w);
        }
    }
}

/* The forward's Q tile in dst[ROWS][HD + 8]: rows [r0, r0 + nvalid) of fp32 q rounded to bf16 (attn_stage_bf16), or
 * of bf16 storage (attn_fwd_b16) copied as they are by cp.async and waited for here (with every group this thread
 * committed before: a block's first K / V tiles, needed next anyway). Rows past nvalid are zeros. Either way the
 * tile is in place when the call returns; the caller's __syncthreads makes it visible. */
template <int HD, int ROWS, int THREADS>
static __device__ __forceinline__ void attn_stage_q(__nv_bfloat16 *dst, const float *g, size_t stride, int r0,
                                                    int nvalid, const int *xr = nullptr) {
    attn_stage_bf16<HD, ROWS, THREADS>(dst, g, stride, r0, nvalid, xr);
}
template <int HD, int ROWS, int THREADS>
static __device__ __forceinline__ void attn_stage_q(__nv_bfloat16 *dst, const __nv_bfloat16 *g, size_t stride,
                                                    int r0, int nvalid, const int *xr = nullptr) {
    attn_cp_tile<HD, ROWS, THREADS>(dst, g, stride, r0, nvalid, xr);
    __pipeline_commit();
    __pipeline_wait_prior(0);
}

/* four floats to dst[0..3] (16-byte aligned) */
static __device__ __forceinline__ void attn_put4(float *dst, float a, float b, float c, float d) {
    *(float4 *)dst = float4{a, b, c, d};
}

/* rows 0 .. nrows - 1 (nrows <= 16) of a warp's fp32 stage [16][HD + 4] to global rows row0 .. of stride `stride`:
 * T float (float4 stores, coalesced), or bf16 storage (attn_fwd_b16's out, attn_bwd_b16's gradients: each value
 * rounded to nearest even); one warp (attention_tc.cu, attention_tc2.cu) */
template <int HD, class T>
static __device__ __forceinline__ void attn_write_rows(T *g, size_t stride, const float *stage, int row0, int nrows) {
    constexpr int LDO = HD + 4, C4 = HD / 4;
    const int lane = threadIdx.x & 31;
    for (int idx = lane; idx < nrows * C4; idx += 32) {
        const int rr = idx / C4, c = (idx % C4) * 4;
        const float4 x = *(const float4 *)(stage + rr * LDO + c);
        attn_put4(g + (size_t)(row0 + rr) * stride + c, x.x, x.y, x.z, x.w);
    }
}

#endif
