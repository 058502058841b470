/* attention.cu — causal grouped-query attention over packed variable-length sequences, fp32, flash-attention
 * style: tiles of queries and keys in shared memory, online softmax, no T x T matrix anywhere.
 *
 * Tiles. Rows are cut into tiles of BR = 32 rows that never cross a sequence boundary; a block handles one tile
 * and one head. Which (sequence, first row) a block's tile is, each block works out from cu_seqlens itself (a
 * warp-wide prefix sum over the sequences' tile counts), so no tile table is built or uploaded. The host needs
 * the number of tiles (and N = cu_seqlens[S]) for the launch: every attention call downloads the S + 1 entries
 * of cu_seqlens (a small synchronous copy; the trainer calls attention twice per layer per micro-batch).
 *
 * Thread layout (all three kernels): 8 warps x 32 lanes. Warp w owns RPW = 4 rows of the block's tile ("outer"
 * rows); the inner tile has BC = 32 rows, one per lane. Score-like products (q.k, dout.v) run over head dims
 * with the outer rows broadcast from shared memory and the lane's inner row read as float4 (rows padded to an
 * odd number of float4s: conflict-free); accumulations (P V, dS K, P^T dO, dS^T Q) keep RPW x HD/32 values per
 * thread in registers, lane = head dim (mod 32), with probabilities passed between lanes by shuffles.
 *
 *   attn_fwd_k    block = (query tile, query head): for key tiles up to the diagonal: S = Q K^T scale, online
 *                 softmax (running max m and sum l per row), O = O alpha + P V; writes out = O / l and
 *                 lse = m + log l.
 *   attn_dq_k     block = (query tile, query head): recomputes P = exp(S - lse) from the forward's lse,
 *                 dP = dO V^T, dS = P (dP - D) scale with D = rowsum(dO * out) (attn_d_k), dQ = dS K.
 *   attn_dkdv_k   block = (key tile, kv head): loops over the query heads of the group and the query tiles at and
 *                 after the key tile: dV += P^T dO, dK += dS^T Q, accumulated in registers and written once.
 * The options of backend.h's AttnOpts (Gemma 2) act in all three: the scale; soft-capping S = cap tanh(S / cap)
 * after the scale (the backward multiplies dS by 1 - tanh^2, before the scale, as the CPU kernel does); a sliding
 * window masks key j of query i unless i - window < j <= i, and the key (query) tile loops start (stop) where the
 * window of the tile's rows begins (ends). Without options the arithmetic is the Llama kernels' unchanged.
 * No atomics: dK / dV of a kv head are summed over its query heads inside one block (in the CPU reference's
 * order: head, then query), dQ in its own pass. Results are deterministic.
 *
 * Limits: HD <= 256 (register accumulators are sized for HD rounded up to 64, 128 or 256); any HD works, an HD
 * that is a multiple of 8 is fastest. Shared memory per block: (BR + 2 BC) or (2 BR + 2 BC) rows of HD + 4
 * floats: 100 / 133 KB at HD = 256, within the opt-in limit of sm_80 and sm_90. NH must be a multiple of NKV.
 *
 * In the bf16 mode (cu_bf16(); SIMPO_CUDA_ATTN=tc|fp32 overrides it) cuda_attn_fwd / cuda_attn_bwd hand HD 64 and
 * 128 to the tensor-core kernels of attention_tc.cu (use_tc, in the host side below); those know Llama's attention
 * only, so a call with options other than the defaults (attn_opts_is_default) always runs the fp32 kernels.
 * The end of this file defines the host side that every version shares (attn_launch.cuh: tile counts, the
 * shared-memory opt-in, the backward's start and D = rowsum(dout * out)). */
#include <stdlib.h>
#include <string.h>
#include "attn_launch.cuh"
#include "attn_tiles.cuh"
#include "cuda_common.cuh"

enum { BR = 32, BC = 32, NWARPS = 8, RPW = BR / NWARPS, NTHREADS = NWARPS * 32, HD_MAX = 256 };

/* padded shared-memory row stride (floats) for head dim HD: a multiple of 4 (float4 rows) whose float4 count is
 * odd, so that 8 lanes reading 8 different rows as float4 hit 8 different bank groups */
static int smem_stride(int HD) {
    int hdp4 = (HD + 3) / 4;
    return 4 * (hdp4 + 1 + (hdp4 & 1));
}

/* rows [r0, r0 + nvalid) of a [rows, row_stride] tensor, columns col_off .. col_off + HD, into sm[BROWS][SD];
 * padding columns and missing rows are zeros */
template <int BROWS>
__device__ __forceinline__ void load_rows(float *sm, const float *g, size_t row_stride, size_t col_off, int r0,
                                          int nvalid, int HD, int SD) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int r = warp; r < BROWS; r += NWARPS) {
        const float *src = g + (size_t)(r0 + (r < nvalid ? r : 0)) * row_stride + col_off;
        for (int d = lane; d < SD; d += 32) sm[r * SD + d] = (r < nvalid && d < HD) ? src[d] : 0.0f;
    }
}

/* acc[r] += dot(rows (w RPW + r) of A, row `lane` of B) over the padded head dims (float4 steps) */
__device__ __forceinline__ void dot_rows(float (&acc)[RPW], const float *A, const float *B, int SD, int n4) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float4 *b4 = (const float4 *)(B + lane * SD);
    for (int d4 = 0; d4 < n4; d4++) {
        float4 bb = b4[d4];
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            float4 aa = ((const float4 *)(A + (warp * RPW + r) * SD))[d4];
            acc[r] += aa.x * bb.x;
            acc[r] += aa.y * bb.y;
            acc[r] += aa.z * bb.z;
            acc[r] += aa.w * bb.w;
        }
    }
}
/* two products sharing the loop: acc1 += A1 . B1[lane], acc2 += A2 . B2[lane] */
__device__ __forceinline__ void dot_rows2(float (&acc1)[RPW], float (&acc2)[RPW], const float *A1, const float *B1,
                                          const float *A2, const float *B2, int SD, int n4) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float4 *b1 = (const float4 *)(B1 + lane * SD), *b2 = (const float4 *)(B2 + lane * SD);
    for (int d4 = 0; d4 < n4; d4++) {
        float4 x1 = b1[d4], x2 = b2[d4];
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            float4 a1 = ((const float4 *)(A1 + (warp * RPW + r) * SD))[d4];
            float4 a2 = ((const float4 *)(A2 + (warp * RPW + r) * SD))[d4];
            acc1[r] += a1.x * x1.x;
            acc1[r] += a1.y * x1.y;
            acc1[r] += a1.z * x1.z;
            acc1[r] += a1.w * x1.w;
            acc2[r] += a2.x * x2.x;
            acc2[r] += a2.y * x2.y;
            acc2[r] += a2.z * x2.z;
            acc2[r] += a2.w * x2.w;
        }
    }
}

/* acc[r][c] += sum over j < jmax of p_j X[j][lane + 32 c] for the warp's rows r, p_j = lane j's s[r] (a
 * probability-like row spread one column per lane, passed by shuffles) */
template <int NC>
__device__ __forceinline__ void acc_rows(float (&acc)[RPW][NC], const float (&s)[RPW], const float *X, int jmax, int HD,
                                         int SD) {
    const int lane = threadIdx.x & 31;
    for (int jj = 0; jj < jmax; jj++) {
        float x[NC];
#pragma unroll
        for (int c = 0; c < NC; c++) x[c] = lane + 32 * c < HD ? X[jj * SD + lane + 32 * c] : 0.0f;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            float pj = __shfl_sync(CU_FULL_MASK, s[r], jj);
#pragma unroll
            for (int c = 0; c < NC; c++) acc[r][c] += pj * x[c];
        }
    }
}

/* ---- forward ---- */

template <int NC> /* NC = head dims per lane = HD_max / 32 */
__global__ void __launch_bounds__(NTHREADS) attn_fwd_k(float *out, float *lse, const float *q, const float *k,
                                                       const float *v, const int *cu, int S, int NH, int NKV, int HD,
                                                       int SD, float scale, float cap, int window) {
    extern __shared__ float4 smem4[];
    float *Qs = (float *)smem4, *Ks = Qs + BR * SD, *Vs = Ks + BC * SD;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n4 = (HD + 3) / 4;
    const int h = blockIdx.y, kvh = h / (NH / NKV);
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    int st, en, q0;
    attn_find_tile<BR>(cu, S, blockIdx.x, &st, &en, &q0);
    if (en <= st) return;
    const int nq = min(BR, en - q0), qlast = q0 + nq - 1;
    load_rows<BR>(Qs, q, qs, (size_t)h * HD, q0, nq, HD, SD);

    float m[RPW], l[RPW], acc[RPW][NC];
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; c++) acc[r][c] = 0.0f;
    }
    const int kfirst = window > 0 ? max(st, q0 - window + 1) : st; /* the first key the tile's rows see */
    for (int k0 = kfirst; k0 <= qlast; k0 += BC) {
        const int nk = min(BC, en - k0), jmax = min(nk, qlast - k0 + 1);
        __syncthreads(); /* the previous tile's readers are done (and Qs is loaded, first time) */
        load_rows<BC>(Ks, k, ks, (size_t)kvh * HD, k0, nk, HD, SD);
        load_rows<BC>(Vs, v, ks, (size_t)kvh * HD, k0, nk, HD, SD);
        __syncthreads();
        float s[RPW];
#pragma unroll
        for (int r = 0; r < RPW; r++) s[r] = 0.0f;
        dot_rows(s, Qs, Ks, SD, n4);
        const int j = k0 + lane;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            int i = min(q0 + warp * RPW + r, qlast); /* rows past the sequence mirror its last row (never written) */
            float x = -INFINITY;
            if (lane < nk && j <= i && (window <= 0 || j > i - window)) {
                x = s[r] * scale;
                if (cap > 0.0f) x = cap * tanhf(x / cap);
            }
            float mn = fmaxf(m[r], cu_warp_max(x));
            float p = x == -INFINITY ? 0.0f : expf(x - mn);
            float alpha = m[r] == -INFINITY ? 0.0f : expf(m[r] - mn);
            l[r] = l[r] * alpha + cu_warp_sum(p);
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < NC; c++) acc[r][c] *= alpha;
            s[r] = p;
        }
        acc_rows<NC>(acc, s, Vs, jmax, HD, SD); /* O += P V */
    }
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        int row = q0 + warp * RPW + r;
        if (row > qlast) continue;
        float inv = 1.0f / l[r];
        float *o = out + (size_t)row * qs + (size_t)h * HD;
#pragma unroll
        for (int c = 0; c < NC; c++)
            if (lane + 32 * c < HD) o[lane + 32 * c] = acc[r][c] * inv;
        if (lane == 0) lse[(size_t)row * NH + h] = m[r] + logf(l[r]);
    }
}

/* ---- backward ---- */

template <int NC>
__global__ void __launch_bounds__(NTHREADS) attn_dq_k(float *dq, const float *dout, const float *q, const float *k,
                                                      const float *v, const float *lse, const float *D,
                                                      const int *cu, int S, int NH, int NKV, int HD, int SD,
                                                      float scale, float cap, int window) {
    extern __shared__ float4 smem4[];
    float *Qs = (float *)smem4, *dOs = Qs + BR * SD, *Ks = dOs + BR * SD, *Vs = Ks + BC * SD;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n4 = (HD + 3) / 4;
    const int h = blockIdx.y, kvh = h / (NH / NKV);
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    int st, en, q0;
    attn_find_tile<BR>(cu, S, blockIdx.x, &st, &en, &q0);
    if (en <= st) return;
    const int nq = min(BR, en - q0), qlast = q0 + nq - 1;
    load_rows<BR>(Qs, q, qs, (size_t)h * HD, q0, nq, HD, SD);
    load_rows<BR>(dOs, dout, qs, (size_t)h * HD, q0, nq, HD, SD);
    float lr[RPW], Dr[RPW], acc[RPW][NC];
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        int i = q0 + warp * RPW + r;
        lr[r] = i <= qlast ? lse[(size_t)i * NH + h] : 0.0f;
        Dr[r] = i <= qlast ? D[(size_t)i * NH + h] : 0.0f;
#pragma unroll
        for (int c = 0; c < NC; c++) acc[r][c] = 0.0f;
    }
    const int kfirst = window > 0 ? max(st, q0 - window + 1) : st;
    for (int k0 = kfirst; k0 <= qlast; k0 += BC) {
        const int nk = min(BC, en - k0), jmax = min(nk, qlast - k0 + 1);
        __syncthreads();
        load_rows<BC>(Ks, k, ks, (size_t)kvh * HD, k0, nk, HD, SD);
        load_rows<BC>(Vs, v, ks, (size_t)kvh * HD, k0, nk, HD, SD);
        __syncthreads();
        float s[RPW], dp[RPW];
#pragma unroll
        for (int r = 0; r < RPW; r++) s[r] = dp[r] = 0.0f;
        dot_rows2(s, dp, Qs, Ks, dOs, Vs, SD, n4);
        const int j = k0 + lane;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            int i = q0 + warp * RPW + r;
            bool ok = i <= qlast && lane < nk && j <= i && (window <= 0 || j > i - window);
            float x = s[r] * scale, t = 0.0f;
            if (cap > 0.0f) {
                t = tanhf(x / cap);
                x = cap * t;
            }
            float p = ok ? expf(x - lr[r]) : 0.0f;
            float ds = p * (dp[r] - Dr[r]);
            if (cap > 0.0f) ds *= 1.0f - t * t;
            s[r] = ds * scale; /* dS */
        }
        acc_rows<NC>(acc, s, Ks, jmax, HD, SD); /* dQ += dS K */
    }
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        int row = q0 + warp * RPW + r;
        if (row > qlast) continue;
        float *o = dq + (size_t)row * qs + (size_t)h * HD;
#pragma unroll
        for (int c = 0; c < NC; c++)
            if (lane + 32 * c < HD) o[lane + 32 * c] = acc[r][c];
    }
}

template <int NC>
__global__ void __launch_bounds__(NTHREADS) attn_dkdv_k(float *dk, float *dv, const float *dout, const float *q,
                                                        const float *k, const float *v, const float *lse,
                                                        const float *D, const int *cu, int S, int NH, int NKV,
                                                        int HD, int SD, float scale, float cap, int window) {
    extern __shared__ float4 smem4[];
    float *Ks = (float *)smem4, *Vs = Ks + BR * SD, *Qs = Vs + BR * SD, *dOs = Qs + BC * SD;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n4 = (HD + 3) / 4;
    const int kvh = blockIdx.y, group = NH / NKV;
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    int st, en, k0;
    attn_find_tile<BR>(cu, S, blockIdx.x, &st, &en, &k0);
    if (en <= st) return;
    const int nk = min(BR, en - k0);
    load_rows<BR>(Ks, k, ks, (size_t)kvh * HD, k0, nk, HD, SD);
    load_rows<BR>(Vs, v, ks, (size_t)kvh * HD, k0, nk, HD, SD);
    float ak[RPW][NC], av[RPW][NC];
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int c = 0; c < NC; c++) ak[r][c] = av[r][c] = 0.0f;
    /* the last query that sees one of the tile's keys: k0 + nk - 1 + window - 1 under a window */
    const long long qe = (long long)k0 + nk - 1 + window;
    const int qend = window > 0 && qe < en ? (int)qe : en;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int q0 = k0; q0 < qend; q0 += BC) {
            const int nq = min(BC, en - q0), iq = q0 + lane;
            __syncthreads();
            load_rows<BC>(Qs, q, qs, (size_t)h * HD, q0, nq, HD, SD);
            load_rows<BC>(dOs, dout, qs, (size_t)h * HD, q0, nq, HD, SD);
            const float lq = lane < nq ? lse[(size_t)iq * NH + h] : 0.0f;
            const float Dq = lane < nq ? D[(size_t)iq * NH + h] : 0.0f;
            __syncthreads();
            float s[RPW], dp[RPW];
#pragma unroll
            for (int r = 0; r < RPW; r++) s[r] = dp[r] = 0.0f;
            dot_rows2(s, dp, Ks, Qs, Vs, dOs, SD, n4); /* s = k_r . q_lane, dp = v_r . dout_lane */
            float p[RPW];
#pragma unroll
            for (int r = 0; r < RPW; r++) {
                int kr = k0 + warp * RPW + r;
                bool ok = warp * RPW + r < nk && lane < nq && kr <= iq && (window <= 0 || kr > iq - window);
                float x = s[r] * scale, t = 0.0f;
                if (cap > 0.0f) {
                    t = tanhf(x / cap);
                    x = cap * t;
                }
                p[r] = ok ? expf(x - lq) : 0.0f;
                float ds = p[r] * (dp[r] - Dq);
                if (cap > 0.0f) ds *= 1.0f - t * t;
                s[r] = ds * scale; /* dS */
            }
            for (int jj = 0; jj < nq; jj++) {
                float o[NC], qv[NC];
#pragma unroll
                for (int c = 0; c < NC; c++) {
                    bool in = lane + 32 * c < HD;
                    o[c] = in ? dOs[jj * SD + lane + 32 * c] : 0.0f;
                    qv[c] = in ? Qs[jj * SD + lane + 32 * c] : 0.0f;
                }
#pragma unroll
                for (int r = 0; r < RPW; r++) {
                    float pj = __shfl_sync(CU_FULL_MASK, p[r], jj), dsj = __shfl_sync(CU_FULL_MASK, s[r], jj);
#pragma unroll
                    for (int c = 0; c < NC; c++) {
                        av[r][c] += pj * o[c];
                        ak[r][c] += dsj * qv[c];
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        int row = k0 + warp * RPW + r;
        if (row - k0 >= nk) continue;
        float *ok_ = dk + (size_t)row * ks + (size_t)kvh * HD, *ov = dv + (size_t)row * ks + (size_t)kvh * HD;
#pragma unroll
        for (int c = 0; c < NC; c++)
            if (lane + 32 * c < HD) {
                ok_[lane + 32 * c] = ak[r][c];
                ov[lane + 32 * c] = av[r][c];
            }
    }
}

/* ---- host side ---- */

/* the kernels per register width ([0]: HD <= 64, [1]: <= 128, [2]: <= 256, NC = 2, 4, 8 head dims per lane) and
 * what attn_want_smem gave each */
static decltype(&attn_fwd_k<2>) const fwd_k[3] = {attn_fwd_k<2>, attn_fwd_k<4>, attn_fwd_k<8>};
static decltype(&attn_dq_k<2>) const dq_k[3] = {attn_dq_k<2>, attn_dq_k<4>, attn_dq_k<8>};
static decltype(&attn_dkdv_k<2>) const dkdv_k[3] = {attn_dkdv_k<2>, attn_dkdv_k<4>, attn_dkdv_k<8>};
static int opted[3][3]; /* [fwd, dq, dkdv][width] */
static int width_of(int HD) { return HD <= 64 ? 0 : HD <= 128 ? 1 : 2; }

/* the options as the kernels take them: the scale, the soft-cap (0: none), the window (0: none) */
struct KOpts {
    float scale, cap;
    int window;
};

/* the checks every call makes (op: attn_fwd, attn_bwd): shapes and options */
static KOpts check_args(int NH, int NKV, int HD, const AttnOpts *opts, const char *op) {
    if (NH <= 0 || NKV <= 0 || NH % NKV)
        sd_die("cuda", "%s: %d query heads are not a multiple of %d kv heads", op, NH, NKV);
    if (HD <= 0 || HD > HD_MAX) sd_die("cuda", "%s: head dim %d is outside 1..%d", op, HD, HD_MAX);
    if (NH > 65535 || NKV > 65535) sd_die("cuda", "%s: %d heads exceed the grid limit", op, NH);
    if (opts && (!isfinite(opts->scale) || !(opts->softcap >= 0.0f) || opts->window < 0))
        sd_die("cuda", "%s: options scale %g, softcap %g, window %d", op, (double)opts->scale, (double)opts->softcap,
               opts->window);
    return KOpts{attn_opts_scale(opts, HD), opts && opts->softcap > 0.0f ? opts->softcap : 0.0f,
                 opts ? opts->window : 0};
}

/* Tensor cores in the bf16 mode (cu_bf16()) or when SIMPO_CUDA_ATTN=tc (SIMPO_CUDA_ATTN=fp32: never; tests
 * force either path), for Llama's attention (no options: attention_tc.cu has no scale, cap or window), the head
 * dims they support and 16-byte aligned row tensors (float4 staging); else the fp32 kernels above. The variable
 * is read on every call. */
static bool use_tc(int HD, const AttnOpts *opts, const void *const *rows, int n) {
    const char *e = getenv("SIMPO_CUDA_ATTN");
    bool want = cu_bf16();
    if (e && *e) {
        if (strcmp(e, "tc") == 0) want = true;
        else if (strcmp(e, "fp32") == 0) want = false;
        else sd_die("cuda", "SIMPO_CUDA_ATTN=%s: expected fp32 or tc", e);
    }
    if (!want || !attn_opts_is_default(opts, HD) || !cuda_attn_tc_supports(HD)) return false;
    for (int i = 0; i < n; i++)
        if ((uintptr_t)rows[i] % 16) return false;
    return true;
}

void cuda_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int *cu_seqlens,
                   int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    const KOpts o = check_args(NH, NKV, HD, opts, "attn_fwd");
    const void *rows[] = {out, q, k, v};
    if (use_tc(HD, opts, rows, 4)) {
        cuda_attn_tc_fwd(out, lse, q, k, v, cu_seqlens, S, NH, NKV, HD);
        return;
    }
    int n0, N;
    const int tiles = attn_tiles(cu_seqlens, S, BR, 1, &n0, &N, "attn_fwd");
    if (!tiles) return;
    const int w = width_of(HD), SD = smem_stride(HD);
    attn_launch(fwd_k[w], dim3((unsigned)tiles, (unsigned)NH), NTHREADS, (size_t)(BR + 2 * BC) * SD * sizeof(float),
                &opted[0][w], "attn_fwd", HD, out, lse, q, k, v, cu_seqlens, S, NH, NKV, HD, SD, o.scale, o.cap,
                o.window);
}

void cuda_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                   const float *v, const float *out, const float *lse, const int *cu_seqlens, int S, int NH,
                   int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    const KOpts o = check_args(NH, NKV, HD, opts, "attn_bwd");
    const void *rows[] = {dq, dk, dv, dout, q, k, v};
    if (use_tc(HD, opts, rows, 7)) {
        cuda_attn_tc_bwd(dq, dk, dv, dout, q, k, v, out, lse, cu_seqlens, S, NH, NKV, HD);
        return;
    }
    int n0, N;
    const int tiles = attn_bwd_start(dq, dk, dv, sizeof(float), cu_seqlens, S, NH, NKV, HD, BR, 1, &n0, &N);
    if (!tiles) return;
    float *D = (float *)cu_scratch((size_t)N * NH * sizeof(float), "attn_bwd rowsum(dout * out)");
    attn_rowsum(D, NULL, dout, out, n0, N, NH, HD, "attn_bwd (D)");
    const int w = width_of(HD), SD = smem_stride(HD);
    const size_t smem = (size_t)(2 * BR + 2 * BC) * SD * sizeof(float);
    attn_launch(dq_k[w], dim3((unsigned)tiles, (unsigned)NH), NTHREADS, smem, &opted[1][w], "attn_bwd (dq)", HD, dq,
                dout, q, k, v, lse, D, cu_seqlens, S, NH, NKV, HD, SD, o.scale, o.cap, o.window);
    attn_launch(dkdv_k[w], dim3((unsigned)tiles, (unsigned)NKV), NTHREADS, smem, &opted[2][w], "attn_bwd (dk, dv)", HD,
                dk, dv, dout, q, k, v, lse, D, cu_seqlens, S, NH, NKV, HD, SD, o.scale, o.cap, o.window);
    cu_scratch_free(D);
}

/* ---- autocast storage (backend.h attn_fwd_b16, attn_bwd_b16): bf16 q, k, v and out ----
 * On the tensor cores of versions 2 and 3 the kernels read and write the bf16 tensors directly (no pre-pass of q, k,
 * v; the same bf16 operands the fp32 entry rounds them to, so the same results). Everywhere else (Gemma 2's options,
 * other head dims, the fp32 mode, version 1, unaligned rows) the fp32 entry runs on widened copies and out is
 * rounded: backend.h's definition, on any path. */

typedef __nv_bfloat16 bf16;

/* calls of attn_fwd_b16 / attn_bwd_b16 that ran the tensor-core kernels on the bf16 tensors directly; for
 * test_cuda_ops, which cannot tell the two paths apart by their results (they are the same by design) */
static long g_b16_direct;
extern "C" long cuda_attn_b16_direct_calls(void) { return g_b16_direct; }

/* rows [n0, N) of a bf16 tensor of w elements per row widened into fp32 scratch of N rows (rows before n0 unset: no
 * kernel reads them); the caller frees it (cu_scratch_free) */
static float *attn_widen(const uint16_t *x, int n0, int N, size_t w, const char *what) {
    float *y = (float *)cu_scratch((size_t)N * w * sizeof(float), what);
    const size_t off = (size_t)n0 * w;
    cuda_widen_bf16(y + off, x + off, (size_t)(N - n0) * w);
    return y;
}
/* the fallback's inputs: the rows [n0, N) of cu_seqlens (downloaded) and fp32 copies of q, k, v (row widths qs, ks) */
struct AttnWide {
    int n0, N;
    size_t qs, ks;
    float *q, *k, *v;
};
static AttnWide attn_widen_qkv(const uint16_t *q, const uint16_t *k, const uint16_t *v, const int *cu_seqlens, int S,
                               int NH, int NKV, int HD, const char *op) {
    AttnWide w;
    attn_tiles(cu_seqlens, S, 1, 1, &w.n0, &w.N, op);
    w.qs = (size_t)NH * HD, w.ks = (size_t)NKV * HD;
    w.q = attn_widen(q, w.n0, w.N, w.qs, op);
    w.k = attn_widen(k, w.n0, w.N, w.ks, op);
    w.v = attn_widen(v, w.n0, w.N, w.ks, op);
    return w;
}
static void attn_wide_free(AttnWide *w) { cu_scratch_free(w->q), cu_scratch_free(w->k), cu_scratch_free(w->v); }

void cuda_attn_fwd_b16(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                       const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    check_args(NH, NKV, HD, opts, "attn_fwd_b16");
    const void *rows[] = {out, q, k, v};
    if (use_tc(HD, opts, rows, 4) &&
        cuda_attn_tc_fwd16((bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, cu_seqlens, S, NH,
                           NKV, HD)) {
        g_b16_direct++;
        return;
    }
    AttnWide w = attn_widen_qkv(q, k, v, cu_seqlens, S, NH, NKV, HD, "attn_fwd_b16");
    float *of = (float *)cu_scratch((size_t)w.N * w.qs * sizeof(float), "attn_fwd_b16 out");
    cuda_attn_fwd(of, lse, w.q, w.k, w.v, cu_seqlens, S, NH, NKV, HD, opts);
    const size_t off = (size_t)w.n0 * w.qs;
    cuda_to_bf16(out + off, of + off, (size_t)(w.N - w.n0) * w.qs);
    attn_wide_free(&w), cu_scratch_free(of);
}

void cuda_attn_bwd_b16(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                       const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse,
                       const int *cu_seqlens, int S, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return;
    check_args(NH, NKV, HD, opts, "attn_bwd_b16");
    const void *rows[] = {dq, dk, dv, dout, q, k, v, out};
    if (use_tc(HD, opts, rows, 8) &&
        cuda_attn_tc_bwd16((bf16 *)dq, (bf16 *)dk, (bf16 *)dv, (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k,
                           (const bf16 *)v, (const bf16 *)out, lse, cu_seqlens, S, NH, NKV, HD)) {
        g_b16_direct++;
        return;
    }
    AttnWide w = attn_widen_qkv(q, k, v, cu_seqlens, S, NH, NKV, HD, "attn_bwd_b16");
    const size_t nq = (size_t)w.N * w.qs, nk = (size_t)w.N * w.ks;
    float *of = attn_widen(out, w.n0, w.N, w.qs, "attn_bwd_b16 out");
    float *df = attn_widen(dout, w.n0, w.N, w.qs, "attn_bwd_b16 dout");
    float *g = (float *)cu_scratch((nq + 2 * nk) * sizeof(float), "attn_bwd_b16 gradients");
    cuda_attn_bwd(g, g + nq, g + nq + nk, df, w.q, w.k, w.v, of, lse, cu_seqlens, S, NH, NKV, HD, opts);
    /* every row, as the fp32 entry writes them (those before cu_seqlens[0] zeros) */
    cuda_to_bf16(dq, g, nq);
    cuda_to_bf16(dk, g + nq, nk);
    cuda_to_bf16(dv, g + nq + nk, nk);
    attn_wide_free(&w), cu_scratch_free(of), cu_scratch_free(df), cu_scratch_free(g);
}

/* ---- prefix sharing in the layers' rows (backend.h attn_fwd_b16_rows / attn_bwd_b16_rows on bf16 storage,
 * attn_fwd_rows / attn_bwd_rows on fp32 tensors) ----
 * Version 4's kernels take attention's rows through xrow and skip the copies (attention_tc3.cu); any other path
 * (another version, Gemma 2's options, other head dims, unaligned rows, the fp32 attention kernels outside the bf16
 * mode) returns false and the model gathers attention's layout instead. SIMPO_CUDA_ATTN_ROWS=0 turns it off. */
static long g_rows_calls; /* calls the rows ops took (test_cuda_model: the model used them) */
extern "C" long cuda_attn_rows_calls(void) { return g_rows_calls; }
static bool rows_ok(int HD, const AttnOpts *opts, const void *const *rows, int n) {
    return cu_env_choice("SIMPO_CUDA_ATTN_ROWS", 0, 1, 1) == 1 && cuda_attn_tc_version() == 4 &&
           use_tc(HD, opts, rows, n);
}

bool cuda_attn_fwd_b16_rows(uint16_t *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                            size_t Ntok, const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH,
                            int NKV, int HD, const AttnOpts *opts) {
    (void)Ntok;
    if (S <= 0) return true;
    check_args(NH, NKV, HD, opts, "attn_fwd_b16_rows");
    const void *rows[] = {out, q, k, v};
    if (!rows_ok(HD, opts, rows, 4)) return false;
    attn_tc4_run_fwd16_rows((bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, cu_seqlens, S, xrow,
                            skip, NH, NKV, HD);
    g_b16_direct++, g_rows_calls++;
    return true;
}

bool cuda_attn_bwd_b16_rows(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                            const uint16_t *k, const uint16_t *v, const uint16_t *out, const float *lse, size_t Ntok,
                            const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                            const AttnOpts *opts) {
    if (S <= 0) return true;
    check_args(NH, NKV, HD, opts, "attn_bwd_b16_rows");
    const void *rows[] = {dq, dk, dv, dout, q, k, v, out};
    if (!rows_ok(HD, opts, rows, 8)) return false;
    attn_tc4_run_bwd16_rows((bf16 *)dq, (bf16 *)dk, (bf16 *)dv, (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k,
                            (const bf16 *)v, (const bf16 *)out, lse, Ntok, cu_seqlens, S, xrow, skip, NH, NKV, HD);
    g_b16_direct++, g_rows_calls++;
    return true;
}

bool cuda_attn_fwd_rows(float *out, float *lse, const float *q, const float *k, const float *v, size_t Ntok,
                        const int *cu_seqlens, int S, const int *xrow, const int *skip, int NH, int NKV, int HD,
                        const AttnOpts *opts) {
    if (S <= 0) return true;
    check_args(NH, NKV, HD, opts, "attn_fwd_rows");
    const void *rows[] = {out, q, k, v};
    if (!rows_ok(HD, opts, rows, 4)) return false;
    attn_tc4_run_fwd_rows(out, lse, q, k, v, Ntok, cu_seqlens, S, xrow, skip, NH, NKV, HD);
    g_rows_calls++;
    return true;
}

bool cuda_attn_bwd_rows(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, size_t Ntok, const int *cu_seqlens, int S,
                        const int *xrow, const int *skip, int NH, int NKV, int HD, const AttnOpts *opts) {
    if (S <= 0) return true;
    check_args(NH, NKV, HD, opts, "attn_bwd_rows");
    const void *rows[] = {dq, dk, dv, dout, q, k, v, out};
    if (!rows_ok(HD, opts, rows, 8)) return false;
    attn_tc4_run_bwd_rows(dq, dk, dv, dout, q, k, v, out, lse, Ntok, cu_seqlens, S, xrow, skip, NH, NKV, HD);
    g_rows_calls++;
    return true;
}

/* ---- host side shared by every attention version (attn_launch.cuh) ---- */

int attn_tiles(const int *d_cu, int S, int BM, int heads, int *n0, int *N, const char *op) {
    int *cu = (int *)sd_alloc(((size_t)S + 1) * sizeof(int), "cu_seqlens (host copy)");
    cu_download(cu, d_cu, ((size_t)S + 1) * sizeof(int));
    long tiles = 0;
    for (int s = 0; s < S; s++) {
        int T = cu[s + 1] - cu[s];
        if (T < 0 || cu[s] < 0)
            sd_die("cuda", "%s: cu_seqlens is not a non-decreasing offset list (cu[%d] = %d, cu[%d] = %d)", op, s,
                   cu[s], s + 1, cu[s + 1]);
        tiles += (T + BM - 1) / BM;
    }
    if (tiles * heads > INT32_MAX) {
        if (heads == 1) sd_die("cuda", "%s: %ld row tiles exceed the grid limit", op, tiles);
        sd_die("cuda", "%s: %ld row tiles x %d heads exceed the grid limit", op, tiles, heads);
    }
    *n0 = cu[0];
    *N = cu[S];
    free(cu);
    return (int)tiles;
}

void attn_want_smem(const void *kernel, size_t bytes, int *opted, const char *what, int HD) {
    if ((int)bytes <= *opted) return;
    if ((int)bytes > cu_smem_optin())
        sd_die("cuda", "%s: head dim %d needs %zu bytes of shared memory per block, the device allows %d", what, HD,
               bytes, cu_smem_optin());
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    *opted = (int)bytes;
}

int attn_bwd_start(void *dq, void *dk, void *dv, size_t esz, const int *d_cu, int S, int NH, int NKV, int HD, int BM,
                   int heads, int *n0, int *N) {
    const int tiles = attn_tiles(d_cu, S, BM, heads, n0, N, "attn_bwd");
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD;
    if (*n0 > 0) {
        CUDA_CHECK(cudaMemsetAsync(dq, 0, (size_t)*n0 * qs * esz, cu_stream()));
        CUDA_CHECK(cudaMemsetAsync(dk, 0, (size_t)*n0 * ks * esz, cu_stream()));
        CUDA_CHECK(cudaMemsetAsync(dv, 0, (size_t)*n0 * ks * esz, cu_stream()));
    }
    return tiles;
}

/* an element of out as float: fp32, or bf16 storage widened */
static __device__ __forceinline__ float attn_ld(const float *p) { return *p; }
static __device__ __forceinline__ float attn_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

/* attn_rowsum's kernel; BF16: dout's row to dob as well; DO, O: dout's and out's element types */
template <bool BF16, class DO, class O>
__global__ void attn_d_k(float *D, __nv_bfloat16 *dob, const DO *dout, const O *out, int n0, int N, int NH,
                         int HD) {
    const int lane = threadIdx.x & 31;
    const size_t total = (size_t)(N - n0) * NH;
    for (size_t w = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5; w < total;
         w += ((size_t)gridDim.x * blockDim.x) >> 5) {
        size_t n = n0 + w / NH, h = w % NH, o = n * NH * HD + h * HD;
        const DO *a = dout + o;
        const O *b = out + o;
        float s = 0.0f;
        for (int d = lane; d < HD; d += 32) {
            const float x = attn_ld(&a[d]);
            s += x * attn_ld(&b[d]);
            if (BF16) dob[o + d] = __float2bfloat16_rn(x);
        }
        s = cu_warp_sum(s);
        if (lane == 0) D[n * NH + h] = s;
    }
}

template <class DO, class O>
static void rowsum(float *D, __nv_bfloat16 *dob, const DO *dout, const O *out, int n0, int N, int NH, int HD,
                   const char *what) {
    const unsigned blocks = cu_grid((size_t)(N - n0) * NH * 32, 256);
    if (dob) attn_d_k<true, DO, O><<<blocks, 256, 0, cu_stream()>>>(D, dob, dout, out, n0, N, NH, HD);
    else attn_d_k<false, DO, O><<<blocks, 256, 0, cu_stream()>>>(D, dob, dout, out, n0, N, NH, HD);
    CUDA_LAUNCH_CHECK(what);
}
void attn_rowsum(float *D, __nv_bfloat16 *dob, const float *dout, const float *out, int n0, int N, int NH, int HD,
                 const char *what) {
    rowsum(D, dob, dout, out, n0, N, NH, HD, what);
}
void attn_rowsum(float *D, const __nv_bfloat16 *dout, const __nv_bfloat16 *out, int n0, int N, int NH, int HD,
                 const char *what) {
    rowsum(D, (__nv_bfloat16 *)NULL, dout, out, n0, N, NH, HD, what);
}
