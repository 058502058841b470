/* attention_tc2.cu — the second version of the tensor-core (bf16 wmma) causal GQA flash attention of
 * attention_tc.cu: the same interface, semantics, precision and determinism, restructured for speed. It runs when
 * SIMPO_CUDA_ATTN_TC is 2 (cuda_attn_tc_version below, read on every call by attention_tc.cu's cuda_attn_tc_fwd /
 * cuda_attn_tc_bwd; 1: the first version; 3, unset or empty: the third, attention_tc3.cu, the default). Its host side (bf16 pre-passes, D, launches: attn_tc_run_fwd / attn_tc_run_bwd, declared in
 * attn_launch.cuh) also runs version 3, whose kernels have the same signatures: each version is a kernel table.
 *
 * Precision: as version 1 (torch's bf16 flash attention): q, k, v, dout rounded to bf16 (nearest even), P and dS
 * rounded to bf16 for their products, nvcuda::wmma bf16 16x16x16 products with fp32 accumulation, scores, softmax
 * statistics (log2 units), lse, D and all outputs fp32. Results differ from version 1 only by fp32 rounding order
 * (and the lazy rescale below), within the bf16 bounds of test_cuda_ops' attn_tc section.
 *
 * What changed, and why (version 1 staged every tile synchronously: global fp32 loads, convert, store, barrier,
 * compute; 64-row tiles of 4 warps; every P V product round-tripped through shared memory):
 *  - bf16 pre-pass. The operands that are re-read many times (k, v in the forward and dq kernel; q, dout, k, v in
 *    the dk/dv kernel) are converted to bf16 once per call into stream-ordered scratch (cu_scratch), with the same
 *    rounding; D = rowsum(dout * out) is computed in the same pass that converts dout. Tiles then come straight
 *    from global bf16 memory by cp.async (16-byte __pipeline_memcpy_async), half the bytes of fp32, no conversion
 *    work in the main loops. Scratch: fwd 4 N NKV HD bytes, bwd 4 N (NH + NKV) HD + 4 N NH bytes (84 MB at
 *    4 x 1024 tokens, NH 32, NKV 8, HD 128).
 *  - Software pipeline. K / V (or Q / dO) tiles are multi-buffered in shared memory: tile t + NS - 1 is issued
 *    while tile t is computed, one __syncthreads per tile (it both publishes tile t and proves every warp is done
 *    with the buffer the next issue overwrites). cp.async groups: one commit per iteration, empty or not, so
 *    __pipeline_wait_prior(NS - 2) always means "tile t has landed" for this thread's copies.
 *  - 128-row tiles, 8 warps (256 threads), warp w owning 16 rows (query rows, or key rows in dk/dv): each staged
 *    K / V (Q / dO) tile serves twice the rows of version 1.
 *  - O stays in accumulator fragments: P V accumulates into them directly (mma C = O). The online softmax's
 *    rescale of O is lazy (conditional): a row keeps its reference max m while the tile max exceeds it
 *    by at most 8 (log2 units, P <= 2^8: harmless in fp32 and bf16, whose relative precision does not depend on
 *    the scale); only when some row of the warp needs a new reference (rare after the first tile; never for the
 *    first tile, where O is still zero) does the warp round-trip O through its shared-memory stage to multiply its
 *    rows by exp2(m_old - m_new). out = O / l and lse = (m + log2 l) ln 2 are exact for any reference m.
 *  - Full tiles (no key of the tile is masked for any row of the warp) skip the mask tests; 16-wide blocks the
 *    mask hides from the whole warp are skipped as in version 1; a warp whose rows all precede a key tile skips it.
 *  - Heavy tiles first: the forward and dq grids visit a sequence's query tiles last to first (the last ones see
 *    the most keys), the dk/dv grid its key tiles first to last; heads (kv heads) vary fastest, so the query heads
 *    of a GQA group read the same K / V tiles at about the same time (L2).
 * Unchanged: nothing depends on wmma's undocumented fragment layout (scores go through a per-warp fp32 stage in
 * shared memory with wmma::store_matrix_sync, plain thread code masks and exponentiates them there, a lane pair
 * per row); no atomics (dq per query tile, dk / dv per key tile over the group's heads), so results are bitwise
 * reproducible; each block finds its tile from cu_seqlens, whose S + 1 entries the host downloads for the count.
 *
 * Kernels (HD 64 or 128; shared memory at HD 128, opt-in; one block of 8 warps per SM; registers at HD 128 / 64:
 * fwd 252 / 172, dq 250 / 168, dkdv 252 / 174, no spills):
 *   attn_tc2_fwd_k   (query tile of 128, head). K / V tiles of 64 keys, 3 stages. Q rounded to bf16 into shared
 *                    memory once (synchronously, overlapping the first tiles' copies) and kept in A fragments.
 *                    Per tile: S = Q K^T -> stage; masked online softmax (lazy rescale) -> P (bf16, stage);
 *                    O += P V in fragments.                                             K/V 102 KB + stages 66 KB
 *   attn_tc2_dq_k    (query tile of 128, head). Q, dO (bf16, cp.async) in A fragments, dQ in accumulators.
 *                    K / V tiles of 64, 3 stages. Per tile: S = Q K^T and dP = dO V^T -> stages; dS = P (dP - D)
 *                    scale with P = exp2(S sl2 - lse2) (bf16); dQ += dS K.               K/V 102 KB + stages 86 KB
 *   attn_tc2_dkdv_k  (key tile of 128, kv head). K, V in shared memory (A operands), dK, dV in accumulators. For
 *                    the group's heads and the query tiles of 64 from the key tile on (2 stages of Q, dO, lse, D):
 *                    S^T = K Q^T -> P^T (bf16); dP^T = V dO^T -> dS^T = P^T (dP^T - D) scale (bf16); dV += P^T dO,
 *                    dK += dS^T Q.                                   K, V 68 KB + Q/dO 68 KB + stages 70 KB
 * Shared-memory rules kept (GPU hazards the CPU emulation cannot show): wmma pointers 32-byte aligned and ldm a
 * multiple of 16 bytes (bf16 rows padded to HD + 8, fp32 stages to 68 / HD + 4, every region a multiple of 128
 * bytes); a warp's stage is private to it and __syncwarp separates every wmma store from the plain reads of it and
 * every plain write from the wmma loads (and wmma loads from later overwrites); __syncthreads guards the shared
 * tiles; cp.async destinations and sources are 16-byte aligned (4-byte for lse / D). */
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <mma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attn_launch.cuh"
#include "attn_tiles.cuh"
#include "attn_wmma.cuh"
#include "cuda_common.cuh"

typedef __nv_bfloat16 bf16;
typedef AttnFragA T2FragA;
typedef AttnFragB T2FragB;
typedef AttnFragBt T2FragBt;
typedef AttnFragC T2FragC;

enum {
    T2_BM = 128,     /* rows of a block's tile (queries; keys in dk/dv) */
    T2_BN = 64,      /* rows of the inner tile it loops over */
    T2_WARPS = 8,    /* warp w owns rows 16 w .. 16 w + 15 of the block's tile */
    T2_THREADS = 256,
    T2_LDS = ATTN_LDS, /* fp32 score stage row stride (64 columns + 4) */
    T2_LDP = ATTN_LDP, /* bf16 probability row stride (64 columns + 8) */
    T2_NS_FWD = 3,   /* pipeline stages of K / V tiles (forward, dq) */
    T2_NS_KV = 2,    /* pipeline stages of Q / dO tiles (dk/dv) */
};
#define T2_RESCALE 8.0f /* lazy rescale: keep the reference max while the row max exceeds it by <= 8 (log2) */

static constexpr int t2_max(int a, int b) { return a > b ? a : b; }
/* sizes (bytes unless said otherwise), shared by the kernels and the host */
template <int HD> struct T2 {
    static constexpr int LDB = HD + 8;                  /* bf16 tile row stride (elements) */
    static constexpr int LDO = HD + 4;                  /* fp32 output stage row stride (elements) */
    static constexpr int TILE = T2_BN * LDB;            /* elements of a 64-row bf16 tile */
    static constexpr int WST_F = t2_max(16 * T2_LDS * 4 + 16 * T2_LDP * 2, 16 * LDO * 4); /* fwd: S + P | O */
    static constexpr int WST_Q = 2 * 16 * T2_LDS * 4 + 16 * T2_LDP * 2;                   /* dq: S, dP, dS */
    static constexpr int WST_K = 16 * T2_LDS * 4 + 2 * 16 * T2_LDP * 2;                   /* dkdv: S^T, P^T, dS^T */
    static constexpr size_t SMEM_F = (size_t)2 * T2_NS_FWD * TILE * 2 + (size_t)T2_WARPS * WST_F;
    static constexpr size_t SMEM_Q = (size_t)2 * T2_NS_FWD * TILE * 2 + (size_t)T2_WARPS * WST_Q;
    static constexpr size_t SMEM_K = (size_t)2 * T2_BM * LDB * 2 + (size_t)2 * T2_NS_KV * TILE * 2 +
                                     (size_t)2 * T2_NS_KV * T2_BN * 4 + (size_t)T2_WARPS * WST_K;
    static_assert(HD % 16 == 0 && HD >= 64, "head dims 64, 128");
    static_assert(WST_F % 128 == 0 && WST_Q % 128 == 0 && WST_K % 128 == 0 && (TILE * 2) % 128 == 0,
                  "regions stay 128-byte aligned");
    static_assert(T2_WARPS * WST_F >= T2_BM * LDB * 2, "the Q tile fits in the forward's warp stages");
    static_assert(T2_WARPS * WST_Q >= 2 * T2_BM * LDB * 2, "the Q and dO tiles fit in dq's warp stages");
    static_assert(2 * 16 * T2_LDS * 4 >= 16 * LDO * 4 && WST_K >= 16 * LDO * 4, "output stages fit");
};

/* ---- forward ---- */

/* the warp's O (accumulators oacc[HD / 16]) to its fp32 stage Ow [16][HD + 4], then the lane pair's part of row r
 * (columns 8 c + 4 hf .. + 3) times f */
template <int HD>
static __device__ __forceinline__ void t2_stage_o(float *Ow, const T2FragC *oacc, int r, int hf, float f) {
    constexpr int LDO = HD + 4;
#pragma unroll
    for (int n = 0; n < HD / 16; n++) wmma::store_matrix_sync(Ow + n * 16, oacc[n], LDO, wmma::mem_row_major);
    __syncwarp();
#pragma unroll
    for (int c = 0; c < HD / 8; c++) {
        float4 *p = (float4 *)(Ow + r * LDO + 8 * c + 4 * hf);
        float4 x = *p;
        x.x *= f, x.y *= f, x.z *= f, x.w *= f;
        *p = x;
    }
}

template <int HD, bool B16> /* B16: q and out bf16 storage (attn_fwd_b16), else fp32 */
__global__ void __launch_bounds__(T2_THREADS, 1)
    attn_tc2_fwd_k(typename AttnIo<B16>::T *out, float *lse, const typename AttnIo<B16>::T *q, const bf16 *kb,
                   const bf16 *vb, const int *cu, int S, int NH, int NKV, float sl2 /* log2(e) / sqrt(HD) */) {
    typedef T2<HD> Z;
    constexpr int LDB = Z::LDB, LDO = Z::LDO, NF = HD / 16, NS = T2_NS_FWD, TILE = Z::TILE;
    extern __shared__ __align__(128) unsigned char t2_smem[];
    bf16 *Kb = (bf16 *)t2_smem, *Vb = Kb + NS * TILE;
    unsigned char *wbase = (unsigned char *)(Vb + NS * TILE);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 1, hf = lane & 1;
    float *St = (float *)(wbase + warp * Z::WST_F);                              /* S [16][68] */
    bf16 *Pw = (bf16 *)(wbase + warp * Z::WST_F + 16 * T2_LDS * 4);              /* P [16][72] */
    float *Ow = St;                                                              /* O [16][HD + 4] (both) */
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    AttnQTile z;
    if (!attn_query_tile<T2_BM, T2_BN>(z, cu, S, NH, NKV)) return;
    const int i = min(z.wfirst + r, z.qlast); /* the lane pair's row; rows past the end mirror the last */
    const bf16 *kg = kb + (size_t)z.kvh * HD, *vg = vb + (size_t)z.kvh * HD;

#pragma unroll
    for (int s = 0; s < NS - 1; s++) attn_cp_kv<HD, T2_BN, T2_THREADS, NS>(Kb, Vb, kg, vg, ks, z, s);
    /* Q through the warp stages' space */
    attn_stage_q<HD, T2_BM, T2_THREADS>((bf16 *)wbase, q + (size_t)z.h * HD, qs, z.q0, z.nq);
    __syncthreads();
    T2FragA qa[NF];
#pragma unroll
    for (int kk = 0; kk < NF; kk++) wmma::load_matrix_sync(qa[kk], (bf16 *)wbase + warp * 16 * LDB + kk * 16, LDB);
    T2FragC oacc[NF];
#pragma unroll
    for (int n = 0; n < NF; n++) wmma::fill_fragment(oacc[n], 0.0f);
    float m = -INFINITY, l = 0.0f; /* the row's reference max (log2 units) and sum of exp2(s sl2 - m) */

    for (int t = 0; t < z.nt; t++) {
        __pipeline_wait_prior(NS - 2); /* this thread's copies of tile t have landed */
        __syncthreads();               /* everyone's have; everyone is done with tile t - 1 (and Q's fragments) */
        attn_cp_kv<HD, T2_BN, T2_THREADS, NS>(Kb, Vb, kg, vg, ks, z, t + NS - 1);
        int k0, nk, ncb; /* key blocks of 16 holding a key <= the warp's last row (and < nk): the rest is masked out */
        bool full;       /* no key masked for any row of the warp */
        if (!attn_key_tile<T2_BN>(z, t, &k0, &nk, &ncb, &full)) continue;
        const bf16 *Ks = Kb + (t % NS) * TILE, *Vs = Vb + (t % NS) * TILE;
        if (ncb == T2_BN / 16) { /* the common case: four independent accumulator chains (tensor-core latency) */
            T2FragC sacc[T2_BN / 16];
#pragma unroll
            for (int n = 0; n < T2_BN / 16; n++) wmma::fill_fragment(sacc[n], 0.0f);
#pragma unroll
            for (int kk = 0; kk < NF; kk++) {
#pragma unroll
                for (int n = 0; n < T2_BN / 16; n++) {
                    T2FragBt kf;
                    wmma::load_matrix_sync(kf, Ks + n * 16 * LDB + kk * 16, LDB);
                    wmma::mma_sync(sacc[n], qa[kk], kf, sacc[n]);
                }
            }
#pragma unroll
            for (int n = 0; n < T2_BN / 16; n++)
                wmma::store_matrix_sync(St + n * 16, sacc[n], T2_LDS, wmma::mem_row_major);
        } else { /* a diagonal tile: the key blocks that hold a visible key */
            for (int n = 0; n < ncb; n++) attn_wmma_xt_block<HD>(St, qa, Ks, n);
        }
        __syncwarp();
        /* the lane pair's row r: lane half hf owns columns 8 c + 4 hf + (0..3), c = 0..7; masked scores (and blocks
         * not computed, all masked) become -inf */
        float s[32];
#pragma unroll
        for (int c = 0; c < 8; c++) {
            const float4 x = *(const float4 *)(St + r * T2_LDS + 8 * c + 4 * hf);
            s[4 * c] = x.x, s[4 * c + 1] = x.y, s[4 * c + 2] = x.z, s[4 * c + 3] = x.w;
        }
        if (!full) {
            const int lim = min(nk - 1, i - k0); /* the last visible column */
#pragma unroll
            for (int e = 0; e < 32; e++)
                if (8 * (e >> 2) + 4 * hf + (e & 3) > lim) s[e] = -INFINITY;
        }
        float mx = s[0];
#pragma unroll
        for (int e = 1; e < 32; e++) mx = fmaxf(mx, s[e]);
        mx = fmaxf(mx, __shfl_xor_sync(CU_FULL_MASK, mx, 1));
        const float mt = mx * sl2;                    /* -inf for a row with no visible key in the tile */
        const bool need = mt > m + T2_RESCALE;        /* a new reference max (always for the first finite one) */
        const float mn = need ? mt : m;
        const float alpha = need ? (m == -INFINITY ? 0.0f : exp2f(m - mn)) : 1.0f;
        if (__ballot_sync(CU_FULL_MASK, need && m != -INFINITY)) { /* rescale O (warp-uniform; rare) */
            __syncwarp(); /* every lane has read its scores: O overwrites the stage */
            t2_stage_o<HD>(Ow, oacc, r, hf, alpha);
            __syncwarp();
#pragma unroll
            for (int n = 0; n < NF; n++) wmma::load_matrix_sync(oacc[n], Ow + n * 16, LDO, wmma::mem_row_major);
            __syncwarp(); /* O is reloaded before P overwrites the stage */
        }
        m = mn;
        const float mu = m == -INFINITY ? 0.0f : m; /* (no row reaches here without a visible key: key st) */
        float ls = 0.0f;
#pragma unroll
        for (int c = 0; c < 8; c++) {
            float p[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                p[u] = exp2f(s[4 * c + u] * sl2 - mu);
                ls += p[u];
            }
            attn_put4(Pw + r * T2_LDP + 8 * c + 4 * hf, p[0], p[1], p[2], p[3]);
        }
        ls += __shfl_xor_sync(CU_FULL_MASK, ls, 1);
        l = l * alpha + ls;
        __syncwarp(); /* P is written */
        attn_wmma_acc<HD>(oacc, Pw, Vs, 0, ncb); /* O += P V */
    }
    if (!z.active) return;
    const float inv = 1.0f / l;
    __syncwarp(); /* every lane's P loads are done: O overwrites the stage */
    t2_stage_o<HD>(Ow, oacc, r, hf, inv);
    __syncwarp();
    attn_write_rows<HD>(out + (size_t)z.h * HD, qs, Ow, z.wfirst, z.wlast - z.wfirst + 1);
    if (hf == 0 && z.wfirst + r <= z.qlast) lse[(size_t)i * NH + z.h] = (m + log2f(l)) * ATTN_LN2;
}

/* ---- pre-passes ---- */

/* up to three fp32 ranges to bf16 (round to nearest even), float4 at a time */
struct T2Cvt {
    const float *src[3];
    bf16 *dst[3];
    size_t n4[3]; /* float4 counts */
};
__global__ void attn_tc2_cvt_k(T2Cvt a) {
    const size_t total = a.n4[0] + a.n4[1] + a.n4[2];
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < total; x += (size_t)gridDim.x * blockDim.x) {
        int seg = 0;
        size_t j = x;
        if (j >= a.n4[0]) {
            j -= a.n4[0];
            seg = 1;
            if (j >= a.n4[1]) {
                j -= a.n4[1];
                seg = 2;
            }
        }
        const float *src = seg == 0 ? a.src[0] : seg == 1 ? a.src[1] : a.src[2]; /* (no local-memory indexing) */
        bf16 *dst = seg == 0 ? a.dst[0] : seg == 1 ? a.dst[1] : a.dst[2];
        const float4 v = ((const float4 *)src)[j];
        attn_put4(dst + 4 * j, v.x, v.y, v.z, v.w);
    }
}

/* ---- backward: dQ ---- */
template <int HD, bool B16> /* B16: dq bf16 storage (attn_bwd_b16), else fp32 */
__global__ void __launch_bounds__(T2_THREADS, 1)
    attn_tc2_dq_k(typename AttnIo<B16>::T *dq, const bf16 *qb, const bf16 *dob, const bf16 *kb, const bf16 *vb, const float *lse,
                  const float *D, const int *cu, int S, int NH, int NKV, float sl2, float scale) {
    typedef T2<HD> Z;
    constexpr int LDB = Z::LDB, NF = HD / 16, NS = T2_NS_FWD, TILE = Z::TILE;
    extern __shared__ __align__(128) unsigned char t2_smem[];
    bf16 *Kb = (bf16 *)t2_smem, *Vb = Kb + NS * TILE;
    unsigned char *wbase = (unsigned char *)(Vb + NS * TILE);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 1, hf = lane & 1;
    float *Sst = (float *)(wbase + warp * Z::WST_Q), *dPst = Sst + 16 * T2_LDS; /* [16][68] each; dQ [16][HD + 4] */
    bf16 *dSw = (bf16 *)(dPst + 16 * T2_LDS);                                    /* [16][72] */
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    AttnQTile z;
    if (!attn_query_tile<T2_BM, T2_BN>(z, cu, S, NH, NKV)) return;
    const int i = min(z.wfirst + r, z.qlast);
    const float lse2 = lse[(size_t)i * NH + z.h] * ATTN_LOG2E, Di = D[(size_t)i * NH + z.h];
    const bf16 *kg = kb + (size_t)z.kvh * HD, *vg = vb + (size_t)z.kvh * HD;

    bf16 *Qs = (bf16 *)wbase, *dOs = Qs + T2_BM * LDB; /* through the warp stages' space */
    attn_cp_tile<HD, T2_BM, T2_THREADS>(Qs, qb + (size_t)z.h * HD, qs, z.q0, z.nq);
    attn_cp_tile<HD, T2_BM, T2_THREADS>(dOs, dob + (size_t)z.h * HD, qs, z.q0, z.nq);
    __pipeline_commit();
#pragma unroll
    for (int s = 0; s < NS - 1; s++) attn_cp_kv<HD, T2_BN, T2_THREADS, NS>(Kb, Vb, kg, vg, ks, z, s);
    __pipeline_wait_prior(NS - 1); /* Q, dO landed */
    __syncthreads();
    T2FragA qa[NF], doa[NF];
    T2FragC acc[NF];
    attn_wmma_dq_start<HD>(qa, doa, acc, Qs + warp * 16 * LDB, dOs + warp * 16 * LDB);
    for (int t = 0; t < z.nt; t++) {
        __pipeline_wait_prior(NS - 2);
        __syncthreads(); /* tile t visible; tile t - 1 (and Q, dO's fragments) done by everyone */
        attn_cp_kv<HD, T2_BN, T2_THREADS, NS>(Kb, Vb, kg, vg, ks, z, t + NS - 1);
        int k0, nk, ncb;
        bool full;
        if (!attn_key_tile<T2_BN>(z, t, &k0, &nk, &ncb, &full)) continue;
        const bf16 *Ks = Kb + (t % NS) * TILE, *Vs = Vb + (t % NS) * TILE;
#pragma unroll
        for (int n = 0; n < T2_BN / 16; n++)
            if (n < ncb) attn_wmma_xt_block2<HD>(Sst, qa, Ks, dPst, doa, Vs, n); /* S = Q K^T, dP = dO V^T */
        __syncwarp();
        const int lim = full ? T2_BN - 1 : min(nk - 1, i - k0); /* the last visible column */
#pragma unroll
        for (int c = 0; c < 8; c++) {
            const int col = 8 * c + 4 * hf;
            const float4 sv = *(const float4 *)(Sst + r * T2_LDS + col);
            const float4 pv = *(const float4 *)(dPst + r * T2_LDS + col);
            const float sa[4] = {sv.x, sv.y, sv.z, sv.w}, pa[4] = {pv.x, pv.y, pv.z, pv.w};
            float d[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
                d[u] = col + u <= lim ? exp2f(sa[u] * sl2 - lse2) * (pa[u] - Di) * scale : 0.0f;
            attn_put4(dSw + r * T2_LDP + col, d[0], d[1], d[2], d[3]);
        }
        __syncwarp();
        attn_wmma_acc<HD>(acc, dSw, Ks, 0, ncb); /* dQ += dS K */
    }
    if (!z.active) return;
    __syncwarp(); /* every lane is done with the stages */
    attn_wmma_write_rows<HD>(dq + (size_t)z.h * HD, qs, Sst, acc, z.wfirst, z.wlast - z.wfirst + 1);
}

/* ---- backward: dK, dV ---- */

/* stage[16][68] columns 16 nb0 .. 16 nqb - 1 = A X^T for a 16-row bf16 block A (row stride HD + 8) and the rows
 * 16 nb0 .. 16 nqb - 1 of a bf16 tile X (same stride): two query blocks at a time, so that A's fragments are loaded
 * twice per product rather than once per block while only two accumulators are live */
template <int HD>
static __device__ __forceinline__ void t2_rowblock_x_tile(float *stage, const bf16 *A, const bf16 *X, int nb0,
                                                          int nqb) {
    constexpr int LDB = HD + 8, NF = HD / 16;
#pragma unroll
    for (int n0 = 0; n0 < T2_BN / 16; n0 += 2) {
        if (n0 + 1 < nb0 || n0 >= nqb) continue;
        T2FragC acc[2];
        wmma::fill_fragment(acc[0], 0.0f);
        wmma::fill_fragment(acc[1], 0.0f);
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
            T2FragA a;
            wmma::load_matrix_sync(a, A + kk * 16, LDB);
#pragma unroll
            for (int u = 0; u < 2; u++) {
                if (n0 + u >= nb0 && n0 + u < nqb) {
                    T2FragBt x;
                    wmma::load_matrix_sync(x, X + (n0 + u) * 16 * LDB + kk * 16, LDB);
                    wmma::mma_sync(acc[u], a, x, acc[u]);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < 2; u++)
            if (n0 + u >= nb0 && n0 + u < nqb)
                wmma::store_matrix_sync(stage + (n0 + u) * 16, acc[u], T2_LDS, wmma::mem_row_major);
    }
}

template <int HD, bool B16> /* B16: dk, dv bf16 storage (attn_bwd_b16), else fp32 */
__global__ void __launch_bounds__(T2_THREADS, 1)
    attn_tc2_dkdv_k(typename AttnIo<B16>::T *dk, typename AttnIo<B16>::T *dv, const bf16 *qb, const bf16 *dob, const bf16 *kb, const bf16 *vb,
                    const float *lse, const float *D, const int *cu, int S, int NH, int NKV, float sl2,
                    float scale) {
    typedef T2<HD> Z;
    constexpr int LDB = Z::LDB, NF = HD / 16, NS = T2_NS_KV, TILE = Z::TILE;
    extern __shared__ __align__(128) unsigned char t2_smem[];
    bf16 *Ks = (bf16 *)t2_smem, *Vs = Ks + T2_BM * LDB, *Qb = Vs + T2_BM * LDB, *dOb = Qb + NS * TILE;
    float *Lb = (float *)(dOb + NS * TILE), *Db = Lb + NS * T2_BN; /* lse, D of the query tile [NS][64] */
    unsigned char *wbase = (unsigned char *)(Db + NS * T2_BN);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r = lane >> 1, hf = lane & 1;
    float *St = (float *)(wbase + warp * Z::WST_K);   /* S^T, then dP^T [16][68]; dK, dV [16][HD + 4] (all) */
    bf16 *Pt = (bf16 *)(St + 16 * T2_LDS), *dSt = Pt + 16 * T2_LDP; /* [16][72] each */
    const size_t ks = (size_t)NKV * HD;
    AttnKTile z;
    if (!attn_kv_tile<T2_BM, T2_BN>(z, cu, S, NH, NKV)) return;
    const int jr = warp * 16 + r, j = z.k0 + jr; /* the lane pair's key row (tile row, sequence row) */

    attn_cp_tile<HD, T2_BM, T2_THREADS>(Ks, kb + (size_t)z.kvh * HD, ks, z.k0, z.nk);
    attn_cp_tile<HD, T2_BM, T2_THREADS>(Vs, vb + (size_t)z.kvh * HD, ks, z.k0, z.nk);
    __pipeline_commit();
#pragma unroll
    for (int s = 0; s < NS - 1; s++)
        attn_cp_qiter<HD, T2_BN, T2_THREADS, NS>(Qb, dOb, Lb, Db, qb, dob, lse, D, NH, z, s);
    T2FragC dka[NF], dva[NF];
#pragma unroll
    for (int n = 0; n < NF; n++) {
        wmma::fill_fragment(dka[n], 0.0f);
        wmma::fill_fragment(dva[n], 0.0f);
    }
    for (int it = 0; it < z.nit; it++) {
        __pipeline_wait_prior(NS - 2); /* K, V and query tile it have landed (this thread's copies) */
        __syncthreads();               /* everyone's; iteration it - 1 done by everyone */
        attn_cp_qiter<HD, T2_BN, T2_THREADS, NS>(Qb, dOb, Lb, Db, qb, dob, lse, D, NH, z, it + NS - 1);
        int q0, nq, nb0, nqb; /* query blocks of 16 from nb0 on: those before the warp's first key are masked out */
        bool full;            /* nothing masked */
        if (!attn_query_iter<T2_BN>(z, it, &q0, &nq, &nb0, &nqb, &full)) continue;
        const int b = it % NS;
        const bf16 *Qs = Qb + b * TILE, *dOs = dOb + b * TILE;
        const float *Ls = Lb + b * T2_BN, *Ds = Db + b * T2_BN;
        t2_rowblock_x_tile<HD>(St, Ks + warp * 16 * LDB, Qs, nb0, nqb); /* S^T = K Q^T */
        __syncwarp();
        /* visible: query column col with q0 + col >= j, col < nq, and the key row inside the tile */
        const int lo = full ? 0 : (jr < z.nk ? j - q0 : T2_BN), hi = full ? T2_BN - 1 : nq - 1;
#pragma unroll
        for (int c = 0; c < 8; c++) { /* P^T[j][i] = exp2(S sl2 - lse_i log2 e), i >= j */
            const int col = 8 * c + 4 * hf;
            const float4 sv = *(const float4 *)(St + r * T2_LDS + col);
            const float4 lv = *(const float4 *)(Ls + col);
            const float sa[4] = {sv.x, sv.y, sv.z, sv.w}, la[4] = {lv.x, lv.y, lv.z, lv.w};
            float p[4];
#pragma unroll
            for (int u = 0; u < 4; u++)
                p[u] = col + u >= lo && col + u <= hi ? exp2f(sa[u] * sl2 - la[u] * ATTN_LOG2E) : 0.0f;
            attn_put4(Pt + r * T2_LDP + col, p[0], p[1], p[2], p[3]);
        }
        __syncwarp(); /* S^T is read: dP^T overwrites it */
        t2_rowblock_x_tile<HD>(St, Vs + warp * 16 * LDB, dOs, nb0, nqb); /* dP^T = V dO^T */
        __syncwarp();
#pragma unroll
        for (int c = 0; c < 8; c++) { /* dS^T = P^T (dP^T - D_i) scale, P^T as rounded (the lane's own entries) */
            const int col = 8 * c + 4 * hf;
            const float4 dv4 = *(const float4 *)(St + r * T2_LDS + col);
            const float4 d4 = *(const float4 *)(Ds + col);
            const __nv_bfloat162 *pp = (const __nv_bfloat162 *)(Pt + r * T2_LDP + col);
            const __nv_bfloat162 p01 = pp[0], p23 = pp[1];
            const float pa[4] = {__bfloat162float(p01.x), __bfloat162float(p01.y), __bfloat162float(p23.x),
                                 __bfloat162float(p23.y)};
            const float da[4] = {dv4.x, dv4.y, dv4.z, dv4.w}, Da[4] = {d4.x, d4.y, d4.z, d4.w};
            float d[4];
#pragma unroll
            for (int u = 0; u < 4; u++) d[u] = col + u >= lo && col + u <= hi ? pa[u] * (da[u] - Da[u]) * scale : 0.0f;
            attn_put4(dSt + r * T2_LDP + col, d[0], d[1], d[2], d[3]);
        }
        __syncwarp();
        attn_wmma_acc2<HD>(dva, Pt, dOs, dka, dSt, Qs, nb0, nqb); /* dV += P^T dO, dK += dS^T Q */
    }
    if (!z.active) return;
    const int rows = min(16, z.nk - warp * 16);
    __syncwarp(); /* every lane is done with the stages */
    attn_wmma_write_rows<HD>(dk + (size_t)z.kvh * HD, ks, St, dka, z.j0, rows);
    __syncwarp();
    attn_wmma_write_rows<HD>(dv + (size_t)z.kvh * HD, ks, St, dva, z.j0, rows);
}

/* ---- host side ---- */

/* SIMPO_CUDA_ATTN_TC: unset, empty or 4 = the fourth version (attention_tc3.cu's kernels in blocks of 4 warps, two
 * or more blocks per SM), the default since its first GPU session (H200, twelfth session): bitwise version 3's
 * outputs over whole training steps and every op check, backward 0.53 against 0.71 ms at HD 64 (0.96 against
 * 1.00 at HD 128), 3% off a 1b training step (docs/performance.md); 3 = the third version (mma.sync with scores in
 * registers, 8 warps; the default before); 2 = this version; 1 = the first (attention_tc.cu). Read on every call. */
int cuda_attn_tc_version(void) { return cu_env_choice("SIMPO_CUDA_ATTN_TC", 1, 4, 4); }

/* SIMPO_CUDA_ATTN_STREAMS: unset, empty or 1 = the tensor-core backward's dq and dk/dv kernels one after the other
 * on the backend's stream; 2 = dq on a second stream (cu_fork / cu_join) beside dk/dv (unmeasured; outputs bitwise
 * the same: disjoint, each written by one block). Read per call. */
int attn_bwd_streams(void) { return cu_env_choice("SIMPO_CUDA_ATTN_STREAMS", 1, 2, 1); }

/* ---- host: pre-passes and launches, shared with version 3 (attn_launch.cuh) ---- */

void attn_bf16_copies(int n0, int N, int cnt, const float *const *src, bf16 *const *dst, const size_t *W) {
    T2Cvt a;
    size_t total = 0;
    for (int s = 0; s < 3; s++) {
        a.src[s] = s < cnt ? src[s] + (size_t)n0 * W[s] : NULL;
        a.dst[s] = s < cnt ? dst[s] + (size_t)n0 * W[s] : NULL;
        a.n4[s] = s < cnt ? (size_t)(N - n0) * W[s] / 4 : 0;
        total += a.n4[s];
    }
    if (!total) return;
    attn_tc2_cvt_k<<<cu_grid(total, 256), 256, 0, cu_stream()>>>(a);
    CUDA_LAUNCH_CHECK("attn (tensor cores: bf16 copies)");
}

/* the forward's launch over tiles x NH blocks (kernel: impl's fwd or fwd16 for HD; opted: its record) */
template <class K, class O, class Q>
static void tc_fwd_launch(AttnTcImpl *impl, K kernel, int *opted, O *out, float *lse, const Q *q, const bf16 *kb,
                          const bf16 *vb, const int *cu_seqlens, int S, int NH, int NKV, int HD, int tiles) {
    char what[64];
    snprintf(what, sizeof what, "attn_fwd (tensor cores, %s%s)", impl->name, sizeof(Q) == 2 ? ", bf16" : "");
    attn_launch(kernel, dim3((unsigned)tiles * (unsigned)NH), impl->threads, impl->smem[0][HD == 128], opted, what,
                HD, out, lse, q, kb, vb, cu_seqlens, S, NH, NKV, ATTN_LOG2E / sqrtf((float)HD));
}

void attn_tc_run_fwd(AttnTcImpl *impl, float *out, float *lse, const float *q, const float *k, const float *v,
                     const int *cu_seqlens, int S, int NH, int NKV, int HD) {
    int n0, N;
    const int tiles = attn_tiles(cu_seqlens, S, impl->BM, NH, &n0, &N, "attn_fwd");
    if (!tiles) return;
    const size_t ks = (size_t)NKV * HD;
    bf16 *kb = (bf16 *)cu_scratch((size_t)2 * N * ks * sizeof(bf16), "attn_fwd bf16 k, v");
    bf16 *vb = kb + (size_t)N * ks;
    const float *src[2] = {k, v};
    bf16 *const dst[2] = {kb, vb};
    const size_t W[2] = {ks, ks};
    attn_bf16_copies(n0, N, 2, src, dst, W);
    const int hi = HD == 128;
    tc_fwd_launch(impl, impl->fwd[hi], &impl->opted[0][0][hi], out, lse, q, kb, vb, cu_seqlens, S, NH, NKV, HD,
                  tiles);
    cu_scratch_free(kb);
}

void attn_tc_run_fwd16(AttnTcImpl *impl, bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                       const int *cu_seqlens, int S, int NH, int NKV, int HD) {
    int n0, N;
    const int tiles = attn_tiles(cu_seqlens, S, impl->BM, NH, &n0, &N, "attn_fwd_b16");
    if (!tiles) return;
    const int hi = HD == 128;
    tc_fwd_launch(impl, impl->fwd16[hi], &impl->opted[1][0][hi], out, lse, q, k, v, cu_seqlens, S, NH, NKV, HD,
                  tiles);
}

/* the backward's dq (tiles x NH blocks) and dk / dv (tiles x NKV blocks) from bf16 q, dout, k, v and fp32 lse, D:
 * impl's dq / dkdv writing fp32 gradients (G float) or dq16 / dkdv16 writing bf16 ones (G bf16) */
template <class G, class KQ, class KKV>
static void tc_bwd_launch(AttnTcImpl *impl, KQ kq, KKV kkv, G *dq, G *dk, G *dv, const bf16 *qb, const bf16 *dob,
                          const bf16 *kb, const bf16 *vb, const float *lse, const float *D, const int *cu_seqlens,
                          int S, int NH, int NKV, int HD, int tiles) {
    const int hi = HD == 128, b16 = sizeof(G) == 2;
    const float scale = 1.0f / sqrtf((float)HD);
    /* the two kernels read the same inputs and write disjoint outputs: with two streams they run side by side
     * (each one's last partial wave filled by the other's blocks) */
    const bool two = attn_bwd_streams() == 2;
    char what[64];
    snprintf(what, sizeof what, "attn_bwd (tensor cores, %s%s, dq)", impl->name, b16 ? ", bf16" : "");
    attn_launch_on(two ? cu_fork() : cu_stream(), kq, dim3((unsigned)tiles * (unsigned)NH), impl->threads,
                   impl->smem[1][hi], &impl->opted[b16][1][hi], what, HD, dq, qb, dob, kb, vb, lse, D, cu_seqlens, S,
                   NH, NKV, scale * ATTN_LOG2E, scale);
    snprintf(what, sizeof what, "attn_bwd (tensor cores, %s%s, dk, dv)", impl->name, b16 ? ", bf16" : "");
    attn_launch(kkv, dim3((unsigned)tiles * (unsigned)NKV), impl->threads, impl->smem[2][hi],
                &impl->opted[b16][2][hi], what, HD, dk, dv, qb, dob, kb, vb, lse, D, cu_seqlens, S, NH, NKV,
                scale * ATTN_LOG2E, scale);
    if (two) cu_join();
}

/* bytes of D [N][NH] fp32 at the start of a backward's scratch block, rounded up so that what follows is aligned */
static size_t tc_d_bytes(int N, int NH) { return ((size_t)N * NH * sizeof(float) + 255) / 256 * 256; }

void attn_tc_run_bwd(AttnTcImpl *impl, float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse, const int *cu_seqlens, int S,
                     int NH, int NKV, int HD) {
    int n0, N;
    const int tiles = attn_bwd_start(dq, dk, dv, sizeof(float), cu_seqlens, S, NH, NKV, HD, impl->BM, NH, &n0, &N);
    if (!tiles) return;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    /* one scratch block: D [N][NH] fp32, then bf16 q, dout [N][NH][HD] and k, v [N][NKV][HD] */
    const size_t dbytes = tc_d_bytes(N, NH);
    unsigned char *scr = (unsigned char *)cu_scratch(dbytes + (size_t)2 * N * (qs + ks) * sizeof(bf16),
                                                     "attn_bwd D and bf16 q, dout, k, v");
    float *D = (float *)scr;
    bf16 *qb = (bf16 *)(scr + dbytes), *dob = qb + (size_t)N * qs, *kb = dob + (size_t)N * qs,
         *vb = kb + (size_t)N * ks;
    attn_rowsum(D, dob, dout, out, n0, N, NH, HD, "attn_bwd (tensor cores: D)");
    const float *src[3] = {q, k, v};
    bf16 *const dst[3] = {qb, kb, vb};
    const size_t W[3] = {qs, ks, ks};
    attn_bf16_copies(n0, N, 3, src, dst, W);
    const int hi = HD == 128;
    tc_bwd_launch(impl, impl->dq[hi], impl->dkdv[hi], dq, dk, dv, qb, dob, kb, vb, lse, D, cu_seqlens, S, NH, NKV,
                  HD, tiles);
    cu_scratch_free(scr);
}

void attn_tc_run_bwd16(AttnTcImpl *impl, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q,
                       const bf16 *k, const bf16 *v, const bf16 *out, const float *lse, const int *cu_seqlens, int S,
                       int NH, int NKV, int HD) {
    int n0, N;
    const int tiles = attn_bwd_start(dq, dk, dv, sizeof(bf16), cu_seqlens, S, NH, NKV, HD, impl->BM, NH, &n0, &N);
    if (!tiles) return;
    /* D [N][NH] fp32 only: the kernels read the bf16 dout itself */
    float *D = (float *)cu_scratch(tc_d_bytes(N, NH), "attn_bwd_b16 D");
    attn_rowsum(D, dout, out, n0, N, NH, HD, "attn_bwd_b16 (tensor cores: D)");
    const int hi = HD == 128;
    tc_bwd_launch(impl, impl->dq16[hi], impl->dkdv16[hi], dq, dk, dv, q, dout, k, v, lse, D, cu_seqlens, S, NH, NKV,
                  HD, tiles);
    cu_scratch_free(D);
}

/* ---- version 2: its kernel table; attention_tc.cu's cuda_attn_tc_fwd / cuda_attn_tc_bwd run it when
 * cuda_attn_tc_version() is 2 ---- */

AttnTcImpl attn_tc2_impl = ATTN_TC_IMPL("v2", T2_BM, T2_THREADS, attn_tc2_fwd_k, attn_tc2_dq_k, attn_tc2_dkdv_k, T2);
