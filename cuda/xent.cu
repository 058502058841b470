/* xent.cu — log-softmax statistics and the cross-entropy gradient over a vocabulary slice [N, V_loc].
 *
 * xent_stats: one block per row, one pass over it (a row of a 128k vocabulary is 0.5 MB: the blocks in flight hold
 * more than L2, so a second pass would come from memory again): each thread keeps the max m of its elements and
 * the sum of expf(l_j - m) in double, rescaled by expf(m_old - m_new) when its max grows (online softmax); then the
 * block's max (exact, order-free) and the sum of each thread's sum times expf(m - max) by a fixed tree
 * (deterministic), rounded once. The CPU reference sums expf(l_j - max) directly: the two differ by the rounding
 * of the rescale factors (~1e-7 relative). tgt = l[target - V_off] inside the slice, else 0. lsum, the plain sum
 * of the row (the metrics' mean logit), rides along: each thread's sum in double, the same fixed tree, rounded once
 * (the CPU sums in order: the two differ by double rounding, invisible in the float). An empty slice gives
 * max = -inf, sumexp = 0, lsum = 0 (as the CPU reference).
 * xent_bwd: elementwise in place, dlogits = g ([j + V_off == target] - exp(l - lse)); blocks over (column chunk,
 * row).
 * The autocast LM head (xent_stats_b16, xent_bwd_b16) runs the same kernels on bf16 logits, each element widened
 * exactly as it is read (cu_load), the gradient rounded as it is written (cu_store), in place; where V_loc is a
 * multiple of 8 and the logits 16-byte aligned (a 128k vocabulary: every row), 8 elements per 16-byte access
 * (cuda_common.cuh bf16x8_load): xent_bwd_b16 bitwise as the 2-byte kernel, xent_stats_b16 with each thread's
 * elements taken 8 at a time (its online sum in another order, in double: the float statistics the same but for a
 * rare last bit). */
#include "cuda_common.cuh"

enum { XS_THREADS = 512, XB_THREADS = 256 };

/* L = float: xent_stats; uint16_t: xent_stats_b16 (bf16 logits). W = 1: one element per access; W = 8 (bf16, V_loc a
 * multiple of 8, rows 16-byte aligned): 8 per 16-byte access (bf16x8_load), each thread's elements in runs of 8 */
template <class L, int W>
__global__ void __launch_bounds__(XS_THREADS) xent_stats_k(float *maxv, float *sumexp, float *tgt, float *lsum,
                                                           const L *logits, const int *targets, size_t N, int V_loc,
                                                           int V_off) {
    __shared__ double shd[XS_THREADS];
    __shared__ float shf[XS_THREADS];
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const L *l = logits + n * (size_t)V_loc;
        float m = -INFINITY; /* this thread's max so far, and its sum of expf(l_j - m) */
        double s = 0.0, ls = 0.0; /* ls: the plain sum of its elements */
        for (int j = W * threadIdx.x; j < V_loc; j += W * XS_THREADS) {
            float xw[W];
            if (W == 8) bf16x8_load(xw, (const uint16_t *)(l + j));
            else xw[0] = cu_load(&l[j]);
#pragma unroll
            for (int e = 0; e < W; e++) {
                const float x = xw[e];
                if (x > m) s *= (double)expf(m - x), m = x; /* the first finite element: expf(-inf) = 0, s was 0 */
                if (m != -INFINITY) s += (double)expf(x - m); /* -inf elements before any finite one add nothing */
                ls += (double)x;
            }
        }
        const float mx = cu_block_max<XS_THREADS>(m, shf);
        const double se = cu_block_sum<XS_THREADS>(m == -INFINITY ? 0.0 : s * (double)expf(m - mx), shd);
        const double lt = cu_block_sum<XS_THREADS>(ls, shd);
        if (threadIdx.x == 0) {
            int t = targets[n] - V_off;
            maxv[n] = mx;
            sumexp[n] = (float)se;
            lsum[n] = (float)lt;
            tgt[n] = (t >= 0 && t < V_loc) ? cu_load(&l[t]) : 0.0f;
        }
    }
}

/* whether a bf16 [N, V_loc] tensor takes the 16-byte kernels: every row starts 16-byte aligned */
static bool rows_vec8(const void *p, int V_loc) { return V_loc % 8 == 0 && cu_aligned16(p, p, p, p, p); }

template <class L>
static void xent_stats(float *maxv, float *sumexp, float *tgt, float *lsum, const L *logits, const int *targets,
                       size_t N, int V_loc, int V_off) {
    if (!N) return;
    if (V_loc < 0) V_loc = 0;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    if (sizeof(L) == 2 && rows_vec8(logits, V_loc))
        xent_stats_k<L, 8><<<grid, XS_THREADS, 0, cu_stream()>>>(maxv, sumexp, tgt, lsum, logits, targets, N, V_loc,
                                                                 V_off);
    else
        xent_stats_k<L, 1><<<grid, XS_THREADS, 0, cu_stream()>>>(maxv, sumexp, tgt, lsum, logits, targets, N, V_loc,
                                                                 V_off);
    CUDA_LAUNCH_CHECK("xent_stats");
}
void cuda_xent_stats(float *maxv, float *sumexp, float *tgt, float *lsum, const float *logits, const int *targets,
                     size_t N, int V_loc, int V_off) {
    xent_stats(maxv, sumexp, tgt, lsum, logits, targets, N, V_loc, V_off);
}
void cuda_xent_stats_b16(float *maxv, float *sumexp, float *tgt, float *lsum, const uint16_t *logits,
                         const int *targets, size_t N, int V_loc, int V_off) {
    xent_stats(maxv, sumexp, tgt, lsum, logits, targets, N, V_loc, V_off);
}

/* out may be logits itself (in place: each element is read before the same thread writes it) */
template <class T, class L>
__global__ void xent_bwd_k(T *out, const L *logits, const float *lse, const float *g, const int *targets,
                           size_t N, int V_loc, int V_off) {
    for (size_t n = blockIdx.y; n < N; n += gridDim.y) {
        const L *l = logits + n * (size_t)V_loc;
        T *o = out + n * (size_t)V_loc;
        float gn = g[n], ln = lse[n];
        int t = targets[n] - V_off; /* may lie outside [0, V_loc): then no one-hot term on this slice */
        for (int j = blockIdx.x * XB_THREADS + threadIdx.x; j < V_loc; j += gridDim.x * XB_THREADS)
            cu_store(&o[j], gn * ((j == t ? 1.0f : 0.0f) - expf(cu_load(&l[j]) - ln)));
    }
}

/* in place on bf16 logits, 8 columns per thread and step (V_loc a multiple of 8, rows 16-byte aligned) */
__global__ void xent_bwd8_k(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N,
                            int V_loc, int V_off) {
    for (size_t n = blockIdx.y; n < N; n += gridDim.y) {
        uint16_t *l = logits + n * (size_t)V_loc;
        float gn = g[n], ln = lse[n];
        int t = targets[n] - V_off;
        for (int j = 8 * (blockIdx.x * XB_THREADS + threadIdx.x); j < V_loc; j += 8 * gridDim.x * XB_THREADS) {
            float x[8];
            bf16x8_load(x, l + j);
#pragma unroll
            for (int e = 0; e < 8; e++) x[e] = gn * ((j + e == t ? 1.0f : 0.0f) - expf(x[e] - ln));
            bf16x8_store(l + j, x);
        }
    }
}

/* T, L = float, float: xent_bwd (out == logits); uint16_t, float: xent_bwd16 (bf16 storage); uint16_t, uint16_t:
 * xent_bwd_b16 (out == logits) */
template <class T, class L>
static void xent_bwd(T *out, const L *logits, const float *lse, const float *g, const int *targets, size_t N,
                     int V_loc, int V_off) {
    if (!N || V_loc <= 0) return;
    unsigned gx = (unsigned)((V_loc + XB_THREADS * 4 - 1) / (XB_THREADS * 4)); /* ~4 columns per thread */
    unsigned gy = N < 65535 ? (unsigned)N : 65535u;
    xent_bwd_k<T, L><<<dim3(gx, gy), XB_THREADS, 0, cu_stream()>>>(out, logits, lse, g, targets, N, V_loc, V_off);
    CUDA_LAUNCH_CHECK("xent_bwd");
}
void cuda_xent_bwd(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                   int V_off) {
    xent_bwd(logits, logits, lse, g, targets, N, V_loc, V_off);
}
void cuda_xent_bwd16(uint16_t *dlogits, const float *logits, const float *lse, const float *g, const int *targets,
                     size_t N, int V_loc, int V_off) {
    xent_bwd(dlogits, logits, lse, g, targets, N, V_loc, V_off);
}
void cuda_xent_bwd_b16(uint16_t *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                       int V_off) {
    if (N && V_loc > 0 && rows_vec8(logits, V_loc)) {
        unsigned gx = (unsigned)((V_loc + XB_THREADS * 8 - 1) / (XB_THREADS * 8)); /* 8 columns per thread */
        unsigned gy = N < 65535 ? (unsigned)N : 65535u;
        xent_bwd8_k<<<dim3(gx, gy), XB_THREADS, 0, cu_stream()>>>(logits, lse, g, targets, N, V_loc, V_off);
        CUDA_LAUNCH_CHECK("xent_bwd_b16");
        return;
    }
    xent_bwd(logits, logits, lse, g, targets, N, V_loc, V_off);
}
