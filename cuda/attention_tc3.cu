/* attention_tc3.cu — the third version of the tensor-core (bf16) causal GQA flash attention: FlashAttention-2's
 * structure, with the scores kept in registers. Same interface, semantics, precision class and determinism as
 * versions 1 and 2 (attention_tc.cu, attention_tc2.cu): causal GQA over packed variable-length sequences given by
 * cu_seqlens, Llama options only (HD 64 or 128), fp32 in and out. The default (SIMPO_CUDA_ATTN_TC unset, empty or 3,
 * read on every call by attention_tc.cu's cuda_attn_tc_fwd / cuda_attn_tc_bwd through cuda_attn_tc_version) since
 * its first GPU session: every attn_tc check passed on an H200 at 1.5x version 2's speed (docs/performance.md).
 *
 * Precision (as versions 1 and 2: torch's bf16 flash attention): q, k, v, dout rounded to bf16 (nearest even), P
 * and dS rounded to bf16 for their products, every product a bf16 tensor-core product with fp32 accumulation;
 * scores, softmax statistics (log2 units), the rescale of O, lse (natural log), D and all outputs fp32. No
 * atomics: dQ per query tile, dK / dV per key tile over the GQA group's heads, so results are bitwise reproducible.
 *
 * What is new against version 2, and why (version 2 stored every score tile with wmma::store_matrix_sync into a
 * per-warp fp32 stage, had plain code mask / exponentiate it there and write P back as bf16 for wmma to load:
 * two shared-memory round trips per score, and wmma's fragment layout is undocumented, so nothing else was
 * possible):
 *  - PTX mma.sync m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix through cuda/mma_sync.cuh, whose fragment
 *    layouts are the documented ones. Each warp owns 16 rows; a lane holds, of every 16 x 8 accumulator tile, the
 *    elements (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1) (g = lane / 4, t = lane % 4).
 *  - Scores stay in registers: the causal mask, the row max and sum (across the 4 lanes of a quad with
 *    __shfl_xor_sync) and exp2 act on the accumulators; P (bf16) feeds P V straight from registers, because the
 *    accumulators of two adjacent n8 tiles, packed to bf16x2 in pairs, are the A fragment of one k16 slice
 *    (mma_sync.cuh). The online softmax rescales O in registers on every tile (no lazy threshold needed: it costs
 *    HD / 2 multiplies per lane). The row sum l is kept per lane and reduced over the quad once at the end.
 *  - Backward likewise: dQ's kernel keeps S, P, dP, dS of a 32-key half tile in registers (dS packed to A
 *    fragments for dQ += dS K); the dK / dV kernel computes the transposed products directly (S^T = K Q^T,
 *    dP^T = V dO^T; P^T, dS^T packed to A fragments for dV += P^T dO and dK += dS^T Q), so no transpose of a
 *    register tile is needed. The only transposes are of operands in shared memory, done by ldmatrix.trans as
 *    they are loaded: the B operand of P V (V), dS K (K), P^T dO (dO) and dS^T Q (Q) is the row-major tile read
 *    column-wise. Nothing of a score ever goes through shared memory.
 *  - Q, dO (dQ kernel) are loaded into A fragments once; K, V (dK/dV kernel) are A operands re-read by ldmatrix
 *    per k16 step (registers: dK and dV accumulators take HD per lane); all B operands by ldmatrix.x4 (two n8
 *    tiles at once).
 *  - Kept from version 2: the bf16 pre-pass (k, v for the forward; D = rowsum(dout * out) and q, dout, k, v for the
 *    backward; attn_tc_run_fwd / attn_tc_run_bwd, shared in attn_launch.cuh), tiles of 128 rows and 8 warps
 *    (each staged K / V or Q / dO tile serves 128 rows), cp.async pipelines of 64-row tiles (one __syncthreads per
 *    tile), heaviest tiles first (attn_find_tile REV), full tiles skip the mask, and blocks of 16 keys (queries)
 *    hidden from a whole warp are skipped.
 * Outputs are written straight from the accumulators (a quad writes 8 consecutive floats of a row).
 *
 * Instructions per score (the sixteenth session; these kernels issue far more instructions than tensor-core
 * ones, so issue slots and each score's dependent chain bind them before the tensor cores do, docs/gpu.md):
 * exp2 is one MUFU.EX2 (mma_sync.cuh exp2_ftz: exp2f
 * added a compare and two multiplies per score for subnormal results); the backward kernels exponentiate every
 * score and drop the masked ones by a select (t3_dq_ds, t3_dkdv_ps: the short-circuit visibility test compiled to
 * a branch and a convergence barrier per score), with a copy of that code for whole tiles that has no mask at all;
 * dK / dV reads each query column's lse and D once for both of a lane's key rows (were read per score) and
 * precomputes -lse log2 e; at HD 64 (scale 2^-3) P ((dP - D) scale) is one FMA and a multiply (T3Scale); whole
 * tiles are copied without a test per row (attn_cp_tile); the dK / dV iteration's head and tile come from a
 * multiply (attn_qiter_rows: was an integer division, twice per iteration); the forward skips O's rescale when no
 * row max of the warp moved. Every change but exp2_ftz keeps every bit (exp2_ftz differs only where P < 2^-126);
 * the CPU emulation's outputs were the same digit for digit. Counted from the SASS (ptxas, sm_90;
 * scripts/sass_mix.sh) of a whole tile's path: dK / dV ~7.8 instructions per score at HD 64 (was ~17, plus a
 * branch per score), dQ ~5.1 (~8.3), the forward ~4.9 (~7.8); the main loop's static size at HD 64 in the layers'
 * rows (both copies of branch-guarded code counted, so an upper bound on a tile's path): dK / dV 2757 -> 1714
 * (1290 for the whole-tile copy alone), dQ 1219 -> 958 (738), the forward 977 -> 1093 (its tile loads now have a
 * second, test-free copy for whole tiles, the path they take).
 *
 * Kernels of version 3 (the bodies t3_fwd, t3_dq, t3_dkdv with W = 8; version 4's attn_tc4_* run them with W = 4,
 * tiles of 64 rows, 2-stage K / V pipelines: registers 229 / 255 / 254 at HD 128, 128 / 153 / 158 at HD 64, two
 * blocks per SM at HD 128; struct T3) (HD 64 or 128; 8 warps of 16 rows; one block per SM, but two for the forward
 * at HD 64; registers and shared memory at HD 128 / 64, from nvcc 13 -arch=sm_90 -Xptxas -v, no spills, no stack
 * frame; opt-in shared memory; dq and dk/dv at HD 64 would spill 16 bytes if held to 128 registers for two blocks
 * per SM):
 *   attn_tc3_fwd_k   (query tile of 128, head). K / V tiles of 64 keys, T3::NS = 3 stages; Q (fp32, rounded while
 *                    staged) to A fragments once. Per tile: S = Q K^T (8 n8 tiles), mask, online softmax, O += P V.
 *                    registers 215 / 128; shared 136 / 72 KB (K/V 3 x 2 x 17 KB + Q 34 KB at HD 128)
 *   attn_tc3_dq_k    (query tile of 128, head). Q, dO A fragments; per K / V tile of 64 (3 stages), per half of 32
 *                    keys: S = Q K^T, dP = dO V^T; dS = P (dP - D) scale, P = exp2(S sl2 - lse2); dQ += dS K.
 *                    registers 234 / 149; shared 170 / 90 KB
 *   attn_tc3_dkdv_k  (key tile of 128, kv head). K, V tiles in shared memory; for the group's heads and the query
 *                    tiles of 64 from the key tile on (T3::NSKV = 2 stages of Q, dO, lse, D), per half of 32
 *                    queries: S^T = K Q^T, dP^T = V dO^T, P^T (bf16), dS^T = P^T (dP^T - D) scale; dV += P^T dO,
 *                    dK += dS^T Q.  registers 244 / 154; shared 137 / 73 KB
 * Version 4 also runs in the layers' rows under prefix sharing (attn_tc4_*_rows_k on bf16 storage or fp32 tensors:
 * backend.h attn_fwd_b16_rows, attn_fwd_rows; the bodies with a row map xr and the copied rows skip, attn_tiles.cuh;
 * registers 231 / 252 / 255 at HD 128, 125 / 157 / 163 at HD 64, no spills; docs/gpu.md "Prefix sharing in the
 * layers' rows").
 * (to refresh: nvcc -arch=sm_90 -Xptxas -v -std=c++17 -I src -I cuda -c cuda/attention_tc3.cu). Shared-memory
 * rules: ldmatrix rows 16-byte aligned (bf16 rows padded to HD + 8 elements: consecutive rows start 4 banks
 * apart, so the 8 rows of an 8x8 matrix hit distinct banks), every region a multiple of 128 bytes; cp.async
 * destinations and sources 16-byte aligned (4 for lse, D). The halves of 32 in the backward kernels keep S and dP
 * (S^T and dP^T) at 16 registers each, which leaves room for Q and dO's fragments and dQ (dK and dV) at HD 128.
 *
 * cuda_attn_tc3_mma_check (extern "C", test_cuda_ops' attn_tc section) runs the wrappers once on one warp against a
 * host matrix product, on the GPU (the real instructions' layouts) and under the CPU emulation (its model).
 */
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <stdint.h>
#include <stdlib.h>
#include "attn_launch.cuh"
#include "attn_tiles.cuh"
#include "cuda_common.cuh"
#include "mma_sync.cuh"

typedef __nv_bfloat16 bf16;

enum { T3_BN = 64 }; /* rows of the inner tiles a block loops over (keys; queries in dk/dv) */

/* A block of W warps: version 3 W = 8 (tiles of 128 rows, one block per SM at HD 128: registers and shared memory
 * allow no second), version 4 W = 4 (tiles of 64 rows, 2-stage pipelines, so that two blocks share an SM at HD 128
 * and three or four at HD 64: while one waits at its barrier the other computes, as FlashAttention-2 runs; each
 * staged K / V or Q / dO tile serves half the rows). Warp w owns rows 16 w .. 16 w + 15 of the block's tile. */
template <int HD, int W> struct T3 {
    static constexpr int BM = 16 * W, THREADS = 32 * W;
    static constexpr int NS = W == 8 ? 3 : 2; /* pipeline stages of K / V tiles (forward, dq) */
    static constexpr int NSKV = 2;            /* pipeline stages of Q / dO tiles (dk/dv) */
    static constexpr int LDB = HD + 8;        /* bf16 tile row stride (elements) */
    static constexpr int TILE = T3_BN * LDB;  /* elements of a 64-row tile */
    static constexpr size_t SMEM_F = ((size_t)2 * NS * TILE + (size_t)BM * LDB) * 2;
    static constexpr size_t SMEM_Q = ((size_t)2 * NS * TILE + (size_t)2 * BM * LDB) * 2;
    static constexpr size_t SMEM_K =
        ((size_t)2 * BM * LDB + (size_t)2 * NSKV * TILE) * 2 + (size_t)2 * NSKV * T3_BN * 4;
    static_assert(HD % 16 == 0 && HD >= 64, "head dims 64, 128");
    static_assert((TILE * 2) % 128 == 0 && (BM * LDB * 2) % 128 == 0, "regions stay 128-byte aligned");
};
template <int HD> using T3v3 = T3<HD, 8>;
template <int HD> using T3v4 = T3<HD, 4>;

/* ---- fragments from shared bf16 tiles (row stride LD elements), one warp ---- */

/* the A fragment of rows r0 .. r0 + 15, columns c0 .. c0 + 15 */
template <int LD>
static __device__ __forceinline__ void t3_ld_a(uint32_t a[4], const bf16 *tile, int r0, int c0) {
    const int lane = threadIdx.x & 31;
    ldsm_x4(a, tile + (r0 + (lane & 15)) * LD + c0 + (lane >> 4) * 8);
}
/* B fragments of X^T for X stored by rows [n][k]: n = rows n0 .. n0 + 15, k = columns c0 .. c0 + 15; b[0], b[1]
 * the n8 tile n0 .., b[2], b[3] the n8 tile n0 + 8 .. */
template <int LD>
static __device__ __forceinline__ void t3_ld_bt(uint32_t b[4], const bf16 *tile, int n0, int c0) {
    const int lane = threadIdx.x & 31;
    ldsm_x4(b, tile + (n0 + (lane & 7) + (lane >> 4) * 8) * LD + c0 + ((lane >> 3) & 1) * 8);
}
/* B fragments of X stored by rows [k][n]: k = rows k0 .. k0 + 15, n = columns n0 .. n0 + 15 (ldmatrix.trans);
 * b[0], b[1] the n8 tile n0 .., b[2], b[3] the n8 tile n0 + 8 .. */
template <int LD>
static __device__ __forceinline__ void t3_ld_b(uint32_t b[4], const bf16 *tile, int k0, int n0) {
    const int lane = threadIdx.x & 31;
    ldsm_x4_t(b, tile + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + n0 + (lane >> 4) * 8);
}
/* the A fragment (16 x 16) that two adjacent 16 x 8 accumulator tiles x, y form, rounded to bf16 */
static __device__ __forceinline__ void t3_pack_a(uint32_t a[4], const float x[4], const float y[4]) {
    a[0] = pack_bf16x2(x[0], x[1]);
    a[1] = pack_bf16x2(x[2], x[3]);
    a[2] = pack_bf16x2(y[0], y[1]);
    a[3] = pack_bf16x2(y[2], y[3]);
}
/* s0, s1 (two n8 tiles) += A X^T over columns c0 .. c0 + 15, for rows n0 .. n0 + 15 of a tile X [n][k] */
template <int LD>
static __device__ __forceinline__ void t3_mma_xt(float s0[4], float s1[4], const uint32_t a[4], const bf16 *tile,
                                                 int n0, int c0) {
    uint32_t b[4];
    t3_ld_bt<LD>(b, tile, n0, c0);
    mma_bf16(s0, a, b);
    mma_bf16(s1, a, b + 2);
}
/* acc (16 x HD, HD / 8 n8 tiles) += A X for the rows k0 .. k0 + 15 of a tile X [k][HD] */
template <int HD, int LD>
static __device__ __forceinline__ void t3_mma_rows(float (*acc)[4], const uint32_t a[4], const bf16 *tile, int k0) {
#pragma unroll
    for (int d = 0; d < HD / 16; d++) {
        uint32_t b[4];
        t3_ld_b<LD>(b, tile, k0, 16 * d);
        mma_bf16(acc[2 * d], a, b);
        mma_bf16(acc[2 * d + 1], a, b + 2);
    }
}
/* two adjacent floats of a row (8-byte aligned) */
static __device__ __forceinline__ void t3_put2(float *p, float a, float b) {
#ifdef __CUDACC__
    *(float2 *)p = make_float2(a, b);
#else
    p[0] = a, p[1] = b;
#endif
}
/* the same to bf16 storage (4-byte aligned), each rounded to nearest even */
static __device__ __forceinline__ void t3_put2(bf16 *p, float a, float b) {
    *(__nv_bfloat162 *)p = __floats2bfloat162_rn(a, b);
}
/* rows row0 + g and row0 + g + 8 (those below `rows` tile rows from row0) of a warp's 16 x HD accumulators to a
 * row-major fp32 (T float) or bf16 (T bf16) tensor (row stride `stride`, g at the head's first column), times mul[0]
 * / mul[1] */
template <int HD, class T>
static __device__ __forceinline__ void t3_write_rows(T *g, size_t stride, const float (*acc)[4], int row0,
                                                     int rows, float mula, float mulb, const int *xr = nullptr) {
    const int lane = threadIdx.x & 31, r = lane >> 2, c = 2 * (lane & 3);
    T *ga = g + (size_t)attn_row(xr, r < rows ? row0 + r : row0) * stride + c; /* rows mapped by xr (attn_row) */
    T *gb = g + (size_t)attn_row(xr, r + 8 < rows ? row0 + r + 8 : row0) * stride + c;
#pragma unroll
    for (int n = 0; n < HD / 8; n++) {
        if (r < rows) t3_put2(ga + 8 * n, acc[n][0] * mula, acc[n][1] * mula);
        if (r + 8 < rows) t3_put2(gb + 8 * n, acc[n][2] * mulb, acc[n][3] * mulb);
    }
}

/* ---- forward ---- */
/* the body of the forward kernels (below) for blocks of W warps; B16: q and out bf16 storage (attn_fwd_b16), else
 * fp32 */
template <int HD, bool B16, int W>
static __device__ __forceinline__ void t3_fwd(typename AttnIo<B16>::T *out, float *lse,
                                              const typename AttnIo<B16>::T *q, const bf16 *kb, const bf16 *vb,
                                              const int *cu, int S, int NH, int NKV,
                                              float sl2 /* log2(e) / sqrt(HD) */, const int *xr = nullptr,
                                              const int *skip = nullptr) {
    typedef T3<HD, W> Z;
    constexpr int LDB = Z::LDB, NF = HD / 16, NS = Z::NS, TILE = Z::TILE, BM = Z::BM, THREADS = Z::THREADS;
    extern __shared__ __align__(128) unsigned char t3_smem[];
    bf16 *Kb = (bf16 *)t3_smem, *Vb = Kb + NS * TILE, *Qs = Vb + NS * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    AttnQTile z;
    if (!attn_query_tile<BM, T3_BN>(z, cu, S, NH, NKV, xr, skip)) return;
    const bf16 *kg = kb + (size_t)z.kvh * HD, *vg = vb + (size_t)z.kvh * HD;

#pragma unroll
    for (int s = 0; s < NS - 1; s++) attn_cp_kv<HD, T3_BN, THREADS, NS>(Kb, Vb, kg, vg, ks, z, s);
    attn_stage_q<HD, BM, THREADS>(Qs, q + (size_t)z.h * HD, qs, z.q0, z.nq, xr);
    __syncthreads();
    uint32_t qa[NF][4];
#pragma unroll
    for (int kk = 0; kk < NF; kk++) t3_ld_a<LDB>(qa[kk], Qs, warp * 16, kk * 16);
    float o[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}; /* row max (log2 units), the lane's part of the sum */

    for (int t = 0; t < z.nt; t++) {
        __pipeline_wait_prior(NS - 2); /* this thread's copies of tile t have landed */
        __syncthreads();               /* everyone's have; everyone is done with tile t - 1 */
        attn_cp_kv<HD, T3_BN, THREADS, NS>(Kb, Vb, kg, vg, ks, z, t + NS - 1);
        int k0, nk, ncb;
        bool full;
        if (!attn_key_tile<T3_BN>(z, t, &k0, &nk, &ncb, &full)) continue;
        const bf16 *Ks = Kb + (t % NS) * TILE, *Vs = Vb + (t % NS) * TILE;
        float s[T3_BN / 8][4];
#pragma unroll
        for (int n = 0; n < T3_BN / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < NF; kk++) {
#pragma unroll
            for (int j = 0; j < T3_BN / 16; j++) {
                if (j < ncb) t3_mma_xt<LDB>(s[2 * j], s[2 * j + 1], qa[kk], Ks, 16 * j, 16 * kk);
            }
        }
        /* the mask: key k0 + col visible to row r when k0 + col <= r (and col < nk); -inf otherwise (blocks not
         * computed included) */
        if (!full) {
#pragma unroll
            for (int n = 0; n < T3_BN / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = 8 * n + 2 * tg + (e & 1);
                    if (k0 + col > z.row[e >> 1] || col >= nk) s[n][e] = -INFINITY;
                }
        }
        float mu[2], alpha[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = s[0][2 * r];
#pragma unroll
            for (int n = 0; n < T3_BN / 8; n++) mx = fmaxf(mx, fmaxf(s[n][2 * r], s[n][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(CU_FULL_MASK, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(CU_FULL_MASK, mx, 2));
            const float mn = fmaxf(m[r], mx * sl2); /* the quad's row max so far (finite: key st is visible) */
            alpha[r] = m[r] == -INFINITY ? 0.0f : exp2_ftz(m[r] - mn);
            m[r] = mn;
            mu[r] = mn == -INFINITY ? 0.0f : mn;
            l[r] *= alpha[r];
        }
        /* the rescale of O (HD / 2 multiplies a lane) only when some row's max moved: in a long row's later tiles
         * it rarely does, and a product with 1 changes nothing, so skipping it keeps every bit */
        if (__ballot_sync(CU_FULL_MASK, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
            for (int n = 0; n < HD / 8; n++) {
                o[n][0] *= alpha[0], o[n][1] *= alpha[0];
                o[n][2] *= alpha[1], o[n][3] *= alpha[1];
            }
        }
#pragma unroll
        for (int j = 0; j < T3_BN / 16; j++) {
            if (j < ncb) {
                float p[2][4];
#pragma unroll
                for (int u = 0; u < 2; u++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        p[u][e] = exp2_ftz(s[2 * j + u][e] * sl2 - mu[e >> 1]);
                        l[e >> 1] += p[u][e];
                    }
                uint32_t pa[4];
                t3_pack_a(pa, p[0], p[1]);
                t3_mma_rows<HD, LDB>(o, pa, Vs, 16 * j);
            }
        }
    }
    if (!z.active) return;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(CU_FULL_MASK, l[r], 1);
        l[r] += __shfl_xor_sync(CU_FULL_MASK, l[r], 2);
    }
    t3_write_rows<HD>(out + (size_t)z.h * HD, qs, o, z.wfirst, z.wlast - z.wfirst + 1, 1.0f / l[0], 1.0f / l[1],
                      xr);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = z.wfirst + g + 8 * r;
        if (tg == 0 && i <= z.qlast) lse[(size_t)attn_row(xr, i) * NH + z.h] = (m[r] + log2f(l[r])) * ATTN_LN2;
    }
}
/* version 3: 8 warps, at HD 64 two blocks per SM (127 registers, 2 x 72 KB of shared memory); version 4: 4 warps,
 * two blocks per SM at HD 128, four at HD 64 */
#define T3_FWD_ARGS                                                                                               \
    typename AttnIo<B16>::T *out, float *lse, const typename AttnIo<B16>::T *q, const bf16 *kb, const bf16 *vb, \
        const int *cu, int S, int NH, int NKV, float sl2
template <int HD, bool B16>
__global__ void __launch_bounds__(256, HD == 64 ? 2 : 1) attn_tc3_fwd_k(T3_FWD_ARGS) {
    t3_fwd<HD, B16, 8>(out, lse, q, kb, vb, cu, S, NH, NKV, sl2);
}
template <int HD, bool B16>
__global__ void __launch_bounds__(128, HD == 64 ? 4 : 2) attn_tc4_fwd_k(T3_FWD_ARGS) {
    t3_fwd<HD, B16, 4>(out, lse, q, kb, vb, cu, S, NH, NKV, sl2);
}
/* version 4 in the layers' rows (prefix sharing, bf16 storage: backend.h attn_fwd_b16_rows): xr, skip */
template <int HD, bool B16>
__global__ void __launch_bounds__(128, HD == 64 ? 4 : 2) attn_tc4_fwd_rows_k(T3_FWD_ARGS, const int *xr, const int *skip) {
    t3_fwd<HD, B16, 4>(out, lse, q, kb, vb, cu, S, NH, NKV, sl2, xr, skip);
}

/* ---- backward: dQ ---- */
/* Why a power-of-two scale matters: 1/sqrt(HD) is 2^-3 at HD 64, and a product with a power of two is exact (short
 * of the subnormal range) and commutes with rounding, so P ((dP - D) scale) computed as P fma(dP, scale, -D scale)
 * is bit for bit (P (dP - D)) scale in one instruction fewer per score. At HD 128 (scale 2^-3.5) the products keep
 * their order. */
template <int HD> struct T3Scale {
    static constexpr bool POW2 = HD == 64;
};
/* dS of a block of 16 keys (two n8 tiles of S and dP) for the lane's two rows, times scale: P (dP - D) with
 * P = 2^(S sl2 - lse2), as fp32 (rounded to bf16 when packed for dQ += dS K). MASK (a tile with masked keys): the
 * tile's key columns from c0 + 8 u + 2 t on, those at lim[r] or past zero. Every score is exponentiated and the
 * masked ones dropped by a select, so no lane branches per score. Dsc: D scale (T3Scale). */
template <int HD, bool MASK>
static __device__ __forceinline__ void t3_dq_ds(float ds[2][4], const float (*s)[4], const float (*dp)[4], int c0,
                                                const int lim[2], const float lse2[2], const float Dr[2],
                                                const float Dsc[2], float sl2, float scale) {
    const int tg = threadIdx.x & 3;
#pragma unroll
    for (int u = 0; u < 2; u++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int r = e >> 1;
            const float p = exp2_ftz(s[u][e] * sl2 - lse2[r]);
            const float v = T3Scale<HD>::POW2 ? p * __fmaf_rn(dp[u][e], scale, -Dsc[r])
                                              : p * (dp[u][e] - Dr[r]) * scale;
            ds[u][e] = MASK && c0 + 8 * u + 2 * tg + (e & 1) >= lim[r] ? 0.0f : v;
        }
}
/* P^T (bf16, packed as the A fragment of dV += P^T dO) and dS^T = P^T (dP^T - D) scale (P^T as rounded; packed for
 * dK += dS^T Q) of a block of 16 queries (two n8 tiles of S^T, dP^T: the lane's key rows g, g + 8 by the query
 * columns col0 + 8 u + 2 t, + 1). Ls, Ds: the query tile's lse and D (shared memory), each column's read once for
 * both key rows. MASK: the row r sees the columns lo[r] .. hi - 1 only; every score is exponentiated and the masked
 * ones dropped by a select, so no lane branches per score. */
template <int HD, bool MASK>
static __device__ __forceinline__ void t3_dkdv_ps(uint32_t pa[4], uint32_t dsa[4], const float (*s)[4],
                                                  const float (*dp)[4], int col0, const float *Ls, const float *Ds,
                                                  const int lo[2], int hi, float sl2, float scale) {
    const int tg = threadIdx.x & 3;
#pragma unroll
    for (int u = 0; u < 2; u++) {
        const int col = col0 + 8 * u + 2 * tg; /* query columns col, col + 1 of the tile */
        const float2 lq = *(const float2 *)(Ls + col), dq2 = *(const float2 *)(Ds + col);
        const float nl[2] = {lq.x * -ATTN_LOG2E, lq.y * -ATTN_LOG2E};
        const float dd[2] = {T3Scale<HD>::POW2 ? dq2.x * scale : dq2.x, T3Scale<HD>::POW2 ? dq2.y * scale : dq2.y};
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float p[2], d[2];
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float x = exp2_ftz(s[u][2 * r + e] * sl2 + nl[e]);
                p[e] = !MASK || (col + e >= lo[r] && col + e < hi) ? x : 0.0f;
            }
            const uint32_t pp = pack_bf16x2(p[0], p[1]);
            const float pr[2] = {bf16x2_lo(pp), bf16x2_hi(pp)};
#pragma unroll
            for (int e = 0; e < 2; e++)
                d[e] = T3Scale<HD>::POW2 ? pr[e] * __fmaf_rn(dp[u][2 * r + e], scale, -dd[e])
                                         : pr[e] * (dp[u][2 * r + e] - dd[e]) * scale;
            pa[2 * u + r] = pp;
            dsa[2 * u + r] = pack_bf16x2(d[0], d[1]);
        }
    }
}
template <int HD, bool B16, int W> /* B16: dq bf16 storage (attn_bwd_b16), else fp32 */
static __device__ __forceinline__ void t3_dq(typename AttnIo<B16>::T *dq, const bf16 *qb, const bf16 *dob,
                                             const bf16 *kb, const bf16 *vb, const float *lse, const float *D,
                                             const int *cu, int S, int NH, int NKV, float sl2, float scale,
                                             const int *xr = nullptr, const int *skip = nullptr) {
    typedef T3<HD, W> Z;
    constexpr int LDB = Z::LDB, NF = HD / 16, NS = Z::NS, TILE = Z::TILE, BM = Z::BM, THREADS = Z::THREADS;
    extern __shared__ __align__(128) unsigned char t3_smem[];
    bf16 *Kb = (bf16 *)t3_smem, *Vb = Kb + NS * TILE, *Qs = Vb + NS * TILE, *dOs = Qs + BM * LDB;
    const int warp = threadIdx.x >> 5;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    AttnQTile z;
    if (!attn_query_tile<BM, T3_BN>(z, cu, S, NH, NKV, xr, skip)) return;
    const size_t r0 = (size_t)attn_row(xr, z.row[0]) * NH + z.h, r1 = (size_t)attn_row(xr, z.row[1]) * NH + z.h;
    const float lse2[2] = {lse[r0] * ATTN_LOG2E, lse[r1] * ATTN_LOG2E};
    const float Dr[2] = {D[r0], D[r1]}, Dsc[2] = {Dr[0] * scale, Dr[1] * scale}; /* Dsc: T3Scale */
    const bf16 *kg = kb + (size_t)z.kvh * HD, *vg = vb + (size_t)z.kvh * HD;

    attn_cp_tile<HD, BM, THREADS>(Qs, qb + (size_t)z.h * HD, qs, z.q0, z.nq, xr);
    attn_cp_tile<HD, BM, THREADS>(dOs, dob + (size_t)z.h * HD, qs, z.q0, z.nq, xr);
    __pipeline_commit();
#pragma unroll
    for (int s = 0; s < NS - 1; s++) attn_cp_kv<HD, T3_BN, THREADS, NS>(Kb, Vb, kg, vg, ks, z, s);
    __pipeline_wait_prior(NS - 1); /* Q, dO landed */
    __syncthreads();
    uint32_t qa[NF][4], da[NF][4];
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
        t3_ld_a<LDB>(qa[kk], Qs, warp * 16, kk * 16);
        t3_ld_a<LDB>(da[kk], dOs, warp * 16, kk * 16);
    }
    float acc[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

    for (int t = 0; t < z.nt; t++) {
        __pipeline_wait_prior(NS - 2);
        __syncthreads(); /* tile t visible; tile t - 1 done by everyone */
        attn_cp_kv<HD, T3_BN, THREADS, NS>(Kb, Vb, kg, vg, ks, z, t + NS - 1);
        int k0, nk, ncb;
        bool full;
        if (!attn_key_tile<T3_BN>(z, t, &k0, &nk, &ncb, &full)) continue;
        const bf16 *Ks = Kb + (t % NS) * TILE, *Vs = Vb + (t % NS) * TILE;
        /* the lane's rows see the tile's keys 0 .. lim - 1 (causal: key k0 + col <= row; and col < nk) */
        const int lim[2] = {min(z.row[0] - k0 + 1, nk), min(z.row[1] - k0 + 1, nk)};
#pragma unroll
        for (int hh = 0; hh < T3_BN / 32; hh++) { /* halves of 32 keys: blocks j = 2 hh, 2 hh + 1 */
            if (2 * hh >= ncb) break;
            float s[4][4], dp[4][4];
#pragma unroll
            for (int n = 0; n < 4; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < NF; kk++) {
#pragma unroll
                for (int jj = 0; jj < 2; jj++) {
                    if (2 * hh + jj < ncb) {
                        t3_mma_xt<LDB>(s[2 * jj], s[2 * jj + 1], qa[kk], Ks, 16 * (2 * hh + jj), 16 * kk);
                        t3_mma_xt<LDB>(dp[2 * jj], dp[2 * jj + 1], da[kk], Vs, 16 * (2 * hh + jj), 16 * kk);
                    }
                }
            }
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                const int j = 2 * hh + jj;
                if (j < ncb) {
                    float ds[2][4];
                    if (full) t3_dq_ds<HD, false>(ds, s + 2 * jj, dp + 2 * jj, 0, lim, lse2, Dr, Dsc, sl2, scale);
                    else t3_dq_ds<HD, true>(ds, s + 2 * jj, dp + 2 * jj, 16 * j, lim, lse2, Dr, Dsc, sl2, scale);
                    uint32_t a[4];
                    t3_pack_a(a, ds[0], ds[1]);
                    t3_mma_rows<HD, LDB>(acc, a, Ks, 16 * j);
                }
            }
        }
    }
    if (!z.active) return;
    t3_write_rows<HD>(dq + (size_t)z.h * HD, qs, acc, z.wfirst, z.wlast - z.wfirst + 1, 1.0f, 1.0f, xr);
}
#define T3_DQ_ARGS                                                                                                \
    typename AttnIo<B16>::T *dq, const bf16 *qb, const bf16 *dob, const bf16 *kb, const bf16 *vb, const float *lse, \
        const float *D, const int *cu, int S, int NH, int NKV, float sl2, float scale
template <int HD, bool B16>
__global__ void __launch_bounds__(256, 1) attn_tc3_dq_k(T3_DQ_ARGS) {
    t3_dq<HD, B16, 8>(dq, qb, dob, kb, vb, lse, D, cu, S, NH, NKV, sl2, scale);
}
template <int HD, bool B16>
__global__ void __launch_bounds__(128, HD == 64 ? 3 : 2) attn_tc4_dq_k(T3_DQ_ARGS) {
    t3_dq<HD, B16, 4>(dq, qb, dob, kb, vb, lse, D, cu, S, NH, NKV, sl2, scale);
}
template <int HD, bool B16>
__global__ void __launch_bounds__(128, HD == 64 ? 3 : 2) attn_tc4_dq_rows_k(T3_DQ_ARGS, const int *xr, const int *skip) {
    t3_dq<HD, B16, 4>(dq, qb, dob, kb, vb, lse, D, cu, S, NH, NKV, sl2, scale, xr, skip);
}

/* ---- backward: dK, dV ---- */
template <int HD, bool B16, int W> /* B16: dk, dv bf16 storage (attn_bwd_b16), else fp32 */
static __device__ __forceinline__ void t3_dkdv(typename AttnIo<B16>::T *dk, typename AttnIo<B16>::T *dv,
                                               const bf16 *qb, const bf16 *dob, const bf16 *kb, const bf16 *vb,
                                               const float *lse, const float *D, const int *cu, int S, int NH,
                                               int NKV, float sl2, float scale, const int *xr = nullptr,
                                               const int *skip = nullptr) {
    typedef T3<HD, W> Z;
    constexpr int LDB = Z::LDB, NF = HD / 16, NS = Z::NSKV, TILE = Z::TILE, BM = Z::BM, THREADS = Z::THREADS;
    extern __shared__ __align__(128) unsigned char t3_smem[];
    bf16 *Ks = (bf16 *)t3_smem, *Vs = Ks + BM * LDB, *Qb = Vs + BM * LDB, *dOb = Qb + NS * TILE;
    float *Lb = (float *)(dOb + NS * TILE), *Db = Lb + NS * T3_BN; /* lse, D of the query tile [NS][64] */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
    const size_t ks = (size_t)NKV * HD;
    AttnKTile z;
    if (!attn_kv_tile<BM, T3_BN>(z, cu, S, NH, NKV, xr, skip)) return;
    /* the lane's key rows j0 + g, j0 + g + 8; a row past the tile's end sees nothing (INT_MAX: every query masked) */
    const int key[2] = {warp * 16 + g < z.nk ? z.j0 + g : 0x7fffffff,
                        warp * 16 + g + 8 < z.nk ? z.j0 + g + 8 : 0x7fffffff};

    attn_cp_tile<HD, BM, THREADS>(Ks, kb + (size_t)z.kvh * HD, ks, z.k0, z.nk, xr);
    attn_cp_tile<HD, BM, THREADS>(Vs, vb + (size_t)z.kvh * HD, ks, z.k0, z.nk, xr);
    __pipeline_commit();
#pragma unroll
    for (int s = 0; s < NS - 1; s++)
        attn_cp_qiter<HD, T3_BN, THREADS, NS>(Qb, dOb, Lb, Db, qb, dob, lse, D, NH, z, s);
    float dka[HD / 8][4], dva[HD / 8][4];
#pragma unroll
    for (int n = 0; n < HD / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dka[n][e] = dva[n][e] = 0.0f;
    for (int it = 0; it < z.nit; it++) {
        __pipeline_wait_prior(NS - 2); /* K, V and query tile it have landed (this thread's copies) */
        __syncthreads();               /* everyone's; iteration it - 1 done by everyone */
        attn_cp_qiter<HD, T3_BN, THREADS, NS>(Qb, dOb, Lb, Db, qb, dob, lse, D, NH, z, it + NS - 1);
        int q0, nq, nb0, nqb; /* query blocks of 16 from nb0 on: those before the warp's first key are masked out */
        bool full, other;     /* nothing masked; the next sequence's queries (prefix sharing) */
        if (!attn_query_iter<T3_BN>(z, it, &q0, &nq, &nb0, &nqb, &full, &other)) continue;
        /* the lane's key row r sees the tile's query columns lo[r] .. hi - 1: causal, query q0 + col >= key; the
         * next sequence's queries (other) see the prompt's keys, those before plim, whatever their row, and no
         * other; every column when nothing is masked (full), else those below nq. (A key row past the tile's end
         * has key INT_MAX: no column.) */
        int lo[2], hi = full ? T3_BN : nq;
#pragma unroll
        for (int r = 0; r < 2; r++)
            lo[r] = full ? 0 : other ? (key[r] < z.plim ? 0 : 0x7fffffff) : max(key[r] - q0, 0);
        const int b = it % NS;
        const bf16 *Qs = Qb + b * TILE, *dOs = dOb + b * TILE;
        const float *Ls = Lb + b * T3_BN, *Ds = Db + b * T3_BN;
#pragma unroll
        for (int hh = 0; hh < T3_BN / 32; hh++) { /* halves of 32 queries: blocks j = 2 hh, 2 hh + 1 */
            if (2 * hh + 1 < nb0 || 2 * hh >= nqb) continue;
            float s[4][4], dp[4][4]; /* S^T, dP^T: 16 keys x 32 queries */
#pragma unroll
            for (int n = 0; n < 4; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < NF; kk++) {
                uint32_t ka[4], va[4];
                t3_ld_a<LDB>(ka, Ks, warp * 16, 16 * kk);
                t3_ld_a<LDB>(va, Vs, warp * 16, 16 * kk);
#pragma unroll
                for (int jj = 0; jj < 2; jj++) {
                    const int j = 2 * hh + jj;
                    if (j >= nb0 && j < nqb) {
                        t3_mma_xt<LDB>(s[2 * jj], s[2 * jj + 1], ka, Qs, 16 * j, 16 * kk);
                        t3_mma_xt<LDB>(dp[2 * jj], dp[2 * jj + 1], va, dOs, 16 * j, 16 * kk);
                    }
                }
            }
#pragma unroll
            for (int jj = 0; jj < 2; jj++) {
                const int j = 2 * hh + jj;
                if (j >= nb0 && j < nqb) {
                    /* P^T[key][query] = exp2(S sl2 - lse_q log2 e) for the visible queries (lo, hi), rounded to
                     * bf16; dS^T = P^T (dP^T - D_q) scale with P^T as rounded */
                    uint32_t pa[4], dsa[4];
                    /* (a second copy of the block for whole tiles costs the rows kernel at HD 128 a spill:
                     * there the whole tiles take the masked copy, whose lo, hi then mask nothing) */
                    if (full && (HD == 64 || !xr))
                        t3_dkdv_ps<HD, false>(pa, dsa, s + 2 * jj, dp + 2 * jj, 16 * j, Ls, Ds, lo, hi, sl2, scale);
                    else t3_dkdv_ps<HD, true>(pa, dsa, s + 2 * jj, dp + 2 * jj, 16 * j, Ls, Ds, lo, hi, sl2, scale);
                    t3_mma_rows<HD, LDB>(dva, pa, dOs, 16 * j);
                    t3_mma_rows<HD, LDB>(dka, dsa, Qs, 16 * j);
                }
            }
        }
    }
    if (!z.active) return;
    const int rows = min(16, z.nk - warp * 16);
    t3_write_rows<HD>(dk + (size_t)z.kvh * HD, ks, dka, z.j0, rows, 1.0f, 1.0f, xr);
    t3_write_rows<HD>(dv + (size_t)z.kvh * HD, ks, dva, z.j0, rows, 1.0f, 1.0f, xr);
}
#define T3_DKDV_ARGS                                                                                              \
    typename AttnIo<B16>::T *dk, typename AttnIo<B16>::T *dv, const bf16 *qb, const bf16 *dob, const bf16 *kb,     \
        const bf16 *vb, const float *lse, const float *D, const int *cu, int S, int NH, int NKV, float sl2,        \
        float scale
template <int HD, bool B16>
__global__ void __launch_bounds__(256, 1) attn_tc3_dkdv_k(T3_DKDV_ARGS) {
    t3_dkdv<HD, B16, 8>(dk, dv, qb, dob, kb, vb, lse, D, cu, S, NH, NKV, sl2, scale);
}
template <int HD, bool B16>
__global__ void __launch_bounds__(128, HD == 64 ? 3 : 2) attn_tc4_dkdv_k(T3_DKDV_ARGS) {
    t3_dkdv<HD, B16, 4>(dk, dv, qb, dob, kb, vb, lse, D, cu, S, NH, NKV, sl2, scale);
}
template <int HD, bool B16>
__global__ void __launch_bounds__(128, HD == 64 ? 3 : 2)
    attn_tc4_dkdv_rows_k(T3_DKDV_ARGS, const int *xr, const int *skip) {
    t3_dkdv<HD, B16, 4>(dk, dv, qb, dob, kb, vb, lse, D, cu, S, NH, NKV, sl2, scale, xr, skip);
}

/* ---- version 4 in the layers' rows (prefix sharing on bf16 storage) ---- */

/* attn_tiles' count over attention's whole layout bounds the tiles (copied rows start none): the blocks past the
 * last tile find none and return */
static int t4_rows_tiles(const int *cu, int S, int heads, const char *op) {
    int n0, N;
    const int tiles = attn_tiles(cu, S, T3v4<64>::BM, heads, &n0, &N, op);
    if (tiles && n0 != 0) sd_die("cuda", "%s: cu_seqlens[0] = %d, expected 0 (attention's layout from row 0)", op, n0);
    return tiles;
}
static int t4_rows_opted[2][3][2]; /* attn_want_smem's record: [bf16 storage][fwd, dq, dkdv][HD 64, 128] */

/* the forward's launch on fp32 (B16 false: q fp32, rounded as staged; out fp32) or bf16 storage, k and v bf16 */
template <bool B16>
static void t4_rows_fwd(typename AttnIo<B16>::T *out, float *lse, const typename AttnIo<B16>::T *q, const bf16 *kb,
                        const bf16 *vb, const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV,
                        int HD, int tiles) {
    const int hi = HD == 128;
    attn_launch(hi ? attn_tc4_fwd_rows_k<128, B16> : attn_tc4_fwd_rows_k<64, B16>,
                dim3((unsigned)tiles * (unsigned)NH), T3v4<64>::THREADS, hi ? T3v4<128>::SMEM_F : T3v4<64>::SMEM_F,
                &t4_rows_opted[B16][0][hi], B16 ? "attn_fwd (tensor cores, v4, bf16, layers' rows)"
                                                : "attn_fwd (tensor cores, v4, layers' rows)",
                HD, out, lse, q, kb, vb, cu, S, NH, NKV, ATTN_LOG2E / sqrtf((float)HD), xrow, skip);
}
/* the backward's dq and dk / dv launches from bf16 q, dout, k, v and fp32 lse, D, writing fp32 or bf16 gradients */
template <bool B16>
static void t4_rows_bwd(typename AttnIo<B16>::T *dq, typename AttnIo<B16>::T *dk, typename AttnIo<B16>::T *dv,
                        const bf16 *qb, const bf16 *dob, const bf16 *kb, const bf16 *vb, const float *lse,
                        const float *D, const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV,
                        int HD, int tiles) {
    const int hi = HD == 128;
    const float scale = 1.0f / sqrtf((float)HD);
    const bool two = attn_bwd_streams() == 2;
    attn_launch_on(two ? cu_fork() : cu_stream(), hi ? attn_tc4_dq_rows_k<128, B16> : attn_tc4_dq_rows_k<64, B16>,
                   dim3((unsigned)tiles * (unsigned)NH), T3v4<64>::THREADS, hi ? T3v4<128>::SMEM_Q : T3v4<64>::SMEM_Q,
                   &t4_rows_opted[B16][1][hi], "attn_bwd (tensor cores, v4, layers' rows, dq)", HD, dq, qb, dob, kb,
                   vb, lse, D, cu, S, NH, NKV, scale * ATTN_LOG2E, scale, xrow, skip);
    attn_launch(hi ? attn_tc4_dkdv_rows_k<128, B16> : attn_tc4_dkdv_rows_k<64, B16>,
                dim3((unsigned)tiles * (unsigned)NKV), T3v4<64>::THREADS, hi ? T3v4<128>::SMEM_K : T3v4<64>::SMEM_K,
                &t4_rows_opted[B16][2][hi], "attn_bwd (tensor cores, v4, layers' rows, dk, dv)", HD, dk, dv, qb, dob,
                kb, vb, lse, D, cu, S, NH, NKV, scale * ATTN_LOG2E, scale, xrow, skip);
    if (two) cu_join();
}

void attn_tc4_run_fwd16_rows(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const int *cu,
                             int S, const int *xrow, const int *skip, int NH, int NKV, int HD) {
    const int tiles = t4_rows_tiles(cu, S, NH, "attn_fwd_b16_rows");
    if (tiles) t4_rows_fwd<true>(out, lse, q, k, v, cu, S, xrow, skip, NH, NKV, HD, tiles);
}

void attn_tc4_run_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                           const int *cu, int S, const int *xrow, const int *skip, int NH, int NKV, int HD) {
    const int tiles = t4_rows_tiles(cu, S, NH, "attn_fwd_rows");
    if (!tiles) return;
    /* k, v to bf16 over the layers' rows (q is rounded as each tile is staged) */
    const size_t ks = (size_t)NKV * HD;
    bf16 *kb = (bf16 *)cu_scratch(2 * Ntok * ks * sizeof(bf16), "attn_fwd_rows bf16 k, v"), *vb = kb + Ntok * ks;
    const float *src[2] = {k, v};
    bf16 *const dst[2] = {kb, vb};
    const size_t W[2] = {ks, ks};
    attn_bf16_copies(0, (int)Ntok, 2, src, dst, W);
    t4_rows_fwd<false>(out, lse, q, kb, vb, cu, S, xrow, skip, NH, NKV, HD, tiles);
    cu_scratch_free(kb);
}

void attn_tc4_run_bwd16_rows(bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q, const bf16 *k,
                             const bf16 *v, const bf16 *out, const float *lse, size_t Ntok, const int *cu, int S,
                             const int *xrow, const int *skip, int NH, int NKV, int HD) {
    const int tiles = t4_rows_tiles(cu, S, NH, "attn_bwd_b16_rows");
    if (!tiles) return;
    /* D [Ntok][NH] in the layers' rows: a copy's row would be zero (its dout is), and no kernel reads one */
    float *D = (float *)cu_scratch(Ntok * (size_t)NH * sizeof(float), "attn_bwd_b16_rows D");
    attn_rowsum(D, dout, out, 0, (int)Ntok, NH, HD, "attn_bwd_b16_rows (tensor cores: D)");
    t4_rows_bwd<true>(dq, dk, dv, q, dout, k, v, lse, D, cu, S, xrow, skip, NH, NKV, HD, tiles);
    cu_scratch_free(D);
}

void attn_tc4_run_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const float *out, const float *lse, size_t Ntok, const int *cu, int S,
                           const int *xrow, const int *skip, int NH, int NKV, int HD) {
    const int tiles = t4_rows_tiles(cu, S, NH, "attn_bwd_rows");
    if (!tiles) return;
    /* one scratch block over the layers' rows: D [Ntok][NH] fp32, then bf16 q, dout [Ntok][NH][HD], k, v */
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    const size_t dbytes = (Ntok * (size_t)NH * sizeof(float) + 255) / 256 * 256;
    unsigned char *scr = (unsigned char *)cu_scratch(dbytes + 2 * Ntok * (qs + ks) * sizeof(bf16),
                                                     "attn_bwd_rows D and bf16 q, dout, k, v");
    float *D = (float *)scr;
    bf16 *qb = (bf16 *)(scr + dbytes), *dob = qb + Ntok * qs, *kb = dob + Ntok * qs, *vb = kb + Ntok * ks;
    attn_rowsum(D, dob, dout, out, 0, (int)Ntok, NH, HD, "attn_bwd_rows (tensor cores: D)");
    const float *src[3] = {q, k, v};
    bf16 *const dst[3] = {qb, kb, vb};
    const size_t W[3] = {qs, ks, ks};
    attn_bf16_copies(0, (int)Ntok, 3, src, dst, W);
    t4_rows_bwd<false>(dq, dk, dv, qb, dob, kb, vb, lse, D, cu, S, xrow, skip, NH, NKV, HD, tiles);
    cu_scratch_free(scr);
}

/* ---- the wrappers' self-check (one warp): D = A B through both B loads, and E = bf16(D) B through the
 * accumulator -> A fragment packing, on small integers (every product and sum exact in fp32 and bf16) ---- */
__global__ void attn_tc3_mma_check_k(float *res, const float *A, const float *B) {
    extern __shared__ __align__(128) unsigned char t3_smem[]; /* dynamic: the emulated ldmatrix knows only that */
    /* A [16][16], B^T [n][k], B [k][n], row stride 24 */
    bf16 *sm = (bf16 *)t3_smem, *As = sm, *Bn = sm + 16 * 24, *Bk = sm + 2 * 16 * 24;
    const int lane = threadIdx.x & 31;
    for (int i = lane; i < 256; i += 32) {
        const int r = i / 16, c = i % 16;
        As[r * 24 + c] = __float2bfloat16_rn(A[i]);
        Bn[c * 24 + r] = __float2bfloat16_rn(B[i]); /* B[r][c] = B^T[c][r] */
        Bk[r * 24 + c] = __float2bfloat16_rn(B[i]);
    }
    __syncwarp();
    uint32_t a[4], b1[4], b2[4];
    t3_ld_a<24>(a, As, 0, 0);
    t3_ld_bt<24>(b1, Bn, 0, 0);
    t3_ld_b<24>(b2, Bk, 0, 0);
    float d[2][2][4] = {}; /* [which B load][n8 tile] */
    mma_bf16(d[0][0], a, b1);
    mma_bf16(d[0][1], a, b1 + 2);
    mma_bf16(d[1][0], a, b2);
    mma_bf16(d[1][1], a, b2 + 2);
    uint32_t pa[4];
    t3_pack_a(pa, d[0][0], d[0][1]);
    float e[2][4] = {};
    mma_bf16(e[0], pa, b2);
    mma_bf16(e[1], pa, b2 + 2);
    const int g = lane >> 2, c = 2 * (lane & 3);
    for (int u = 0; u < 2; u++)
        for (int i = 0; i < 4; i++) {
            const int r = i < 2 ? g : g + 8, col = 8 * u + c + (i & 1);
            res[r * 16 + col] = d[0][u][i];
            res[256 + r * 16 + col] = d[1][u][i];
            res[512 + r * 16 + col] = e[u][i];
        }
}

/* the number of wrong elements (0: the wrappers compute what mma_sync.cuh says) */
extern "C" int cuda_attn_tc3_mma_check(void) {
    float A[256], B[256], R[768];
    for (int i = 0; i < 256; i++) {
        A[i] = (float)((i * 7 + 3) % 9 - 4) * 0.5f; /* -2 .. 2 in halves */
        B[i] = (float)((i * 5 + 1) % 7 - 3);        /* -3 .. 3 */
    }
    float *d = (float *)cu_scratch((256 + 256 + 768) * sizeof(float), "mma check");
    cu_upload(d, A, sizeof A);
    cu_upload(d + 256, B, sizeof B);
    attn_tc3_mma_check_k<<<1, 32, 3 * 16 * 24 * sizeof(bf16), cu_stream()>>>(d + 512, d, d + 256);
    CUDA_LAUNCH_CHECK("mma.sync / ldmatrix check");
    cu_download(R, d + 512, sizeof R);
    cu_scratch_free(d);
    int bad = 0;
    float C[256];
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            double s = 0;
            for (int k = 0; k < 16; k++) s += (double)A[r * 16 + k] * B[k * 16 + c];
            C[r * 16 + c] = (float)s; /* |s| <= 96: an integer or half, exact in bf16 */
            bad += R[r * 16 + c] != (float)s;
            bad += R[256 + r * 16 + c] != (float)s;
        }
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            double s = 0;
            for (int k = 0; k < 16; k++) s += (double)C[r * 16 + k] * B[k * 16 + c];
            bad += R[512 + r * 16 + c] != (float)s;
        }
    return bad;
}

/* ---- host side: attention_tc2.cu's pre-passes and launches (attn_tc_run_fwd / _bwd) run this table when
 * cuda_attn_tc_version() is 3 (attention_tc.cu's cuda_attn_tc_fwd / cuda_attn_tc_bwd) ---- */

AttnTcImpl attn_tc3_impl = ATTN_TC_IMPL("v3", T3v3<64>::BM, T3v3<64>::THREADS, attn_tc3_fwd_k, attn_tc3_dq_k,
                                        attn_tc3_dkdv_k, T3v3);
/* version 4 (SIMPO_CUDA_ATTN_TC=4): the same kernels in blocks of 4 warps (T3 above) */
AttnTcImpl attn_tc4_impl = ATTN_TC_IMPL("v4", T3v4<64>::BM, T3v4<64>::THREADS, attn_tc4_fwd_k, attn_tc4_dq_k,
                                        attn_tc4_dkdv_k, T3v4);
