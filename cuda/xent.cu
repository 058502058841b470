/* xent.cu — log-softmax statistics and the cross-entropy gradient over a vocabulary slice [N, V_loc].
 *
 * xent_stats: one block per row: the row max (exact, order-free), then sum_j expf(l_j - max) in double with a
 * fixed tree (deterministic), rounded once; tgt = l[target - V_off] inside the slice, else 0. An empty slice
 * gives max = -inf, sumexp = 0 (as the CPU reference).
 * xent_bwd: elementwise in place, dlogits = g ([j + V_off == target] - exp(l - lse)); blocks over (column chunk,
 * row). */
#include "cuda_common.cuh"

enum { XS_THREADS = 512, XB_THREADS = 256 };

__global__ void __launch_bounds__(XS_THREADS) xent_stats_k(float *maxv, float *sumexp, float *tgt,
                                                           const float *logits, const int *targets, size_t N,
                                                           int V_loc, int V_off) {
    __shared__ double shd[XS_THREADS];
    __shared__ float shf[XS_THREADS];
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *l = logits + n * (size_t)V_loc;
        float mx = -INFINITY;
        for (int j = threadIdx.x; j < V_loc; j += XS_THREADS) mx = fmaxf(mx, l[j]);
        mx = cu_block_max<XS_THREADS>(mx, shf);
        double se = 0.0;
        for (int j = threadIdx.x; j < V_loc; j += XS_THREADS) se += (double)expf(l[j] - mx);
        se = cu_block_sum<XS_THREADS>(se, shd);
        if (threadIdx.x == 0) {
            int t = targets[n] - V_off;
            maxv[n] = mx;
            sumexp[n] = (float)se;
            tgt[n] = (t >= 0 && t < V_loc) ? l[t] : 0.0f;
        }
    }
}

void cuda_xent_stats(float *maxv, float *sumexp, float *tgt, const float *logits, const int *targets, size_t N,
                     int V_loc, int V_off) {
    if (!N) return;
    if (V_loc < 0) V_loc = 0;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    xent_stats_k<<<grid, XS_THREADS, 0, cu_stream()>>>(maxv, sumexp, tgt, logits, targets, N, V_loc, V_off);
    CUDA_LAUNCH_CHECK("xent_stats");
}

/* out may be logits itself (in place, fp32: each element is read before the same thread writes it) */
template <class T>
__global__ void xent_bwd_k(T *out, const float *logits, const float *lse, const float *g, const int *targets,
                           size_t N, int V_loc, int V_off) {
    for (size_t n = blockIdx.y; n < N; n += gridDim.y) {
        const float *l = logits + n * (size_t)V_loc;
        T *o = out + n * (size_t)V_loc;
        float gn = g[n], ln = lse[n];
        int t = targets[n] - V_off; /* may lie outside [0, V_loc): then no one-hot term on this slice */
        for (int j = blockIdx.x * XB_THREADS + threadIdx.x; j < V_loc; j += gridDim.x * XB_THREADS)
            cu_store(&o[j], gn * ((j == t ? 1.0f : 0.0f) - expf(l[j] - ln)));
    }
}

/* T = float: xent_bwd (out == logits); uint16_t: xent_bwd16 (bf16 storage) */
template <class T>
static void xent_bwd(T *out, const float *logits, const float *lse, const float *g, const int *targets, size_t N,
                     int V_loc, int V_off) {
    if (!N || V_loc <= 0) return;
    unsigned gx = (unsigned)((V_loc + XB_THREADS * 4 - 1) / (XB_THREADS * 4)); /* ~4 columns per thread */
    unsigned gy = N < 65535 ? (unsigned)N : 65535u;
    xent_bwd_k<T><<<dim3(gx, gy), XB_THREADS, 0, cu_stream()>>>(out, logits, lse, g, targets, N, V_loc, V_off);
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
