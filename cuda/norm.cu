/* norm.cu — RMSNorm (HF LlamaRMSNorm), forward and backward, the arithmetic of src/cpu/norm.c.
 *
 * Forward: one block per row; the sum of squares in double (a fixed tree), rounded once to the fp32 mean, then
 * r = 1/sqrtf(mean + eps) with IEEE division and square root: rstd and out are normally bitwise the CPU's.
 * Backward: dx row by row (block per row, the dot product in double); dw[i] += sum_n dy x r is a column
 * reduction done without atomics: a fixed grid of row chunks writes per-chunk double partials, and a second
 * kernel adds them in chunk order. The chunking depends only on N, so results are deterministic. */
#include "cuda_common.cuh"

enum { NORM_THREADS = 256, DW_ROWS_PER_CHUNK = 64, DW_TY = 8 };

template <class T>
__global__ void __launch_bounds__(NORM_THREADS) rmsnorm_fwd_k(T *out, float *rstd, const float *x, const float *w,
                                                              size_t N, int C, float eps) {
    __shared__ double sh[NORM_THREADS];
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *xr = x + n * (size_t)C;
        T *o = out + n * (size_t)C;
        double ss = 0.0;
        for (int i = threadIdx.x; i < C; i += NORM_THREADS) ss += (double)xr[i] * xr[i];
        ss = cu_block_sum<NORM_THREADS>(ss, sh);
        float ms = (float)(ss / C);
        float r = 1.0f / sqrtf(ms + eps);
        for (int i = threadIdx.x; i < C; i += NORM_THREADS) cu_store(&o[i], w[i] * (xr[i] * r));
        if (threadIdx.x == 0) rstd[n] = r;
    }
}

template <class T> static void rmsnorm_fwd(T *out, float *rstd, const float *x, const float *w, size_t N, int C,
                                           float eps) {
    if (!N || C <= 0) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    rmsnorm_fwd_k<T><<<grid, NORM_THREADS, 0, cu_stream()>>>(out, rstd, x, w, N, C, eps);
    CUDA_LAUNCH_CHECK("rmsnorm_fwd");
}
void cuda_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    rmsnorm_fwd(out, rstd, x, w, N, C, eps);
}
void cuda_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    rmsnorm_fwd(out, rstd, x, w, N, C, eps);
}

/* dx_j += r w_j dy_j - (r^3 / C) x_j sum_i dy_i w_i x_i */
__global__ void __launch_bounds__(NORM_THREADS) rmsnorm_bwd_dx_k(float *dx, const float *dout, const float *x,
                                                                 const float *w, const float *rstd, size_t N,
                                                                 int C) {
    __shared__ double sh[NORM_THREADS];
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *xr = x + n * (size_t)C, *dy = dout + n * (size_t)C;
        float *d = dx + n * (size_t)C;
        float r = rstd[n];
        double dot = 0.0;
        for (int i = threadIdx.x; i < C; i += NORM_THREADS) dot += (double)dy[i] * w[i] * xr[i];
        dot = cu_block_sum<NORM_THREADS>(dot, sh);
        float k = (float)(dot * r * r * r / C);
        for (int i = threadIdx.x; i < C; i += NORM_THREADS) d[i] += r * w[i] * dy[i] - k * xr[i];
    }
}

/* part[chunk, c] = sum over the chunk's rows of dy x r (double); block (32 columns) x (DW_TY row lanes) */
__global__ void rmsnorm_bwd_dw_partial_k(double *part, const float *dout, const float *x, const float *rstd,
                                         size_t N, int C, size_t rows_per_chunk) {
    __shared__ double sh[DW_TY][32];
    int c = blockIdx.x * 32 + threadIdx.x;
    size_t r0 = blockIdx.y * rows_per_chunk, r1 = r0 + rows_per_chunk < N ? r0 + rows_per_chunk : N;
    double acc = 0.0;
    if (c < C)
        for (size_t n = r0 + threadIdx.y; n < r1; n += DW_TY)
            acc += (double)dout[n * (size_t)C + c] * x[n * (size_t)C + c] * rstd[n];
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double s = 0.0;
        for (int t = 0; t < DW_TY; t++) s += sh[t][threadIdx.x];
        part[(size_t)blockIdx.y * C + c] = s;
    }
}
__global__ void rmsnorm_bwd_dw_final_k(float *dw, const double *part, int nchunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0.0;
    for (int k = 0; k < nchunks; k++) s += part[(size_t)k * C + c];
    dw[c] += (float)s;
}

void cuda_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      size_t N, int C) {
    if (!N || C <= 0) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    rmsnorm_bwd_dx_k<<<grid, NORM_THREADS, 0, cu_stream()>>>(dx, dout, x, w, rstd, N, C);
    CUDA_LAUNCH_CHECK("rmsnorm_bwd (dx)");
    size_t rpc = DW_ROWS_PER_CHUNK, nch = (N + rpc - 1) / rpc;
    if (nch > 65535) { /* grid.y limit: longer chunks */
        rpc = (N + 65534) / 65535;
        nch = (N + rpc - 1) / rpc;
    }
    double *part = (double *)cu_scratch(nch * (size_t)C * sizeof(double), "rmsnorm_bwd partials");
    dim3 pg((unsigned)((C + 31) / 32), (unsigned)nch), pb(32, DW_TY);
    rmsnorm_bwd_dw_partial_k<<<pg, pb, 0, cu_stream()>>>(part, dout, x, rstd, N, C, rpc);
    CUDA_LAUNCH_CHECK("rmsnorm_bwd (dw partials)");
    rmsnorm_bwd_dw_final_k<<<(unsigned)((C + 255) / 256), 256, 0, cu_stream()>>>(dw, part, (int)nch, C);
    CUDA_LAUNCH_CHECK("rmsnorm_bwd (dw)");
    cu_scratch_free(part);
}
