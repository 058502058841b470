/* norm.cu — RMSNorm (HF LlamaRMSNorm), forward and backward, the arithmetic of src/cpu/norm.c.
 *
 * Forward: one block per row; the sum of squares in double (a fixed tree), rounded once to the fp32 mean, then
 * r = 1/sqrtf(mean + eps) with IEEE division and square root: rstd and out are normally bitwise the CPU's. Up to
 * C = 4096 the row is held in registers (rmsnorm_fwd_row_k), wider rows are read twice (rmsnorm_fwd_k).
 * Backward: dx row by row (block per row, the dot product in double); dw[i] += sum_n dy x r is a column
 * reduction done without atomics: per-block double partials, which a second kernel adds in block order. Up to
 * C = 4096 the dx kernel forms them as it reads each row for dx (each thread keeps its columns' sums over the
 * block's rows in registers, or in shared memory above C = 2048; a fixed grid of min(N, 1024) blocks), so dy and x
 * are read from memory once instead of twice (~2 x 4 bytes per element: ~7.7 GB of a 1b step); wider rows take a
 * pass of their own over row chunks (at C = 8192 the fused kernel's row in registers took 255 registers and
 * spilled).
 * Either way the grid depends only on N and C, so results are deterministic. */
#include "cuda_common.cuh"

enum { NORM_THREADS = 256, DW_ROWS_PER_CHUNK = 64, DW_TY = 8, FUSED_BLOCKS = 1024, FUSED_MAX_J = 16 };

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

/* rmsnorm_fwd_k with the row in registers (C <= J NORM_THREADS): its J loads issued together and x read from memory
 * once (rmsnorm_fwd_k reads it twice, one load at a time: 2.4 TB/s on the H200); the same sum of squares in the same
 * order (each thread's columns in ascending order, then the same tree), the same products: bitwise its results */
template <class T, int J>
__global__ void __launch_bounds__(NORM_THREADS) rmsnorm_fwd_row_k(T *out, float *rstd, const float *x,
                                                                  const float *w, size_t N, int C, float eps) {
    __shared__ double sh[NORM_THREADS];
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *xr = x + n * (size_t)C;
        T *o = out + n * (size_t)C;
        float xv[J];
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = threadIdx.x + j * NORM_THREADS;
            xv[j] = i < C ? xr[i] : 0.0f;
        }
        double ss = 0.0;
#pragma unroll
        for (int j = 0; j < J; j++)
            if ((int)threadIdx.x + j * NORM_THREADS < C) ss += (double)xv[j] * xv[j];
        ss = cu_block_sum<NORM_THREADS>(ss, sh);
        float ms = (float)(ss / C);
        float r = 1.0f / sqrtf(ms + eps);
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = threadIdx.x + j * NORM_THREADS;
            if (i < C) cu_store(&o[i], w[i] * (xv[j] * r));
        }
        if (threadIdx.x == 0) rstd[n] = r;
    }
}

template <class T> static void rmsnorm_fwd(T *out, float *rstd, const float *x, const float *w, size_t N, int C,
                                           float eps) {
    if (!N || C <= 0) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    const int J = (C + NORM_THREADS - 1) / NORM_THREADS;
    if (J <= 4) rmsnorm_fwd_row_k<T, 4><<<grid, NORM_THREADS, 0, cu_stream()>>>(out, rstd, x, w, N, C, eps);
    else if (J <= 8) rmsnorm_fwd_row_k<T, 8><<<grid, NORM_THREADS, 0, cu_stream()>>>(out, rstd, x, w, N, C, eps);
    else if (J <= 16) rmsnorm_fwd_row_k<T, 16><<<grid, NORM_THREADS, 0, cu_stream()>>>(out, rstd, x, w, N, C, eps);
    else rmsnorm_fwd_k<T><<<grid, NORM_THREADS, 0, cu_stream()>>>(out, rstd, x, w, N, C, eps);
    CUDA_LAUNCH_CHECK("rmsnorm_fwd");
}
void cuda_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    rmsnorm_fwd(out, rstd, x, w, N, C, eps);
}
void cuda_rmsnorm_fwd16(uint16_t *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
    rmsnorm_fwd(out, rstd, x, w, N, C, eps);
}

/* a row's k = (r^3 / C) sum_i dy_i w_i x_i: the block's dot product in double (a fixed tree), rounded once */
static __device__ __forceinline__ float rmsnorm_bwd_k(const float *dy, const float *w, const float *xr, float r, int C,
                                                      double *sh) {
    double dot = 0.0;
    for (int i = threadIdx.x; i < C; i += NORM_THREADS) dot += (double)dy[i] * w[i] * xr[i];
    dot = cu_block_sum<NORM_THREADS>(dot, sh);
    return (float)(dot * r * r * r / C);
}

/* dx_j += r w_j dy_j - (r^3 / C) x_j sum_i dy_i w_i x_i */
__global__ void __launch_bounds__(NORM_THREADS) rmsnorm_bwd_dx_k(float *dx, const float *dout, const float *x,
                                                                 const float *w, const float *rstd, size_t N,
                                                                 int C) {
    __shared__ double sh[NORM_THREADS];
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *xr = x + n * (size_t)C, *dy = dout + n * (size_t)C;
        float *d = dx + n * (size_t)C;
        const float r = rstd[n], k = rmsnorm_bwd_k(dy, w, xr, r, C, sh);
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
__global__ void col_partials_add_k(float *dst, const double *part, int nchunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0.0;
    for (int k = 0; k < nchunks; k++) s += part[(size_t)k * C + c];
    dst[c] += (float)s;
}
void cuda_col_partials_add(float *dst, const double *part, int nchunks, int C, const char *what) {
    col_partials_add_k<<<(unsigned)((C + 255) / 256), 256, 0, cu_stream()>>>(dst, part, nchunks, C);
    CUDA_LAUNCH_CHECK(what);
}

/* rmsnorm_bwd_dx_k's dx, and each block's partial sums of dy x r per column into part[blockIdx.x][C] (columns
 * threadIdx.x + NORM_THREADS j, j < J: C <= J NORM_THREADS); the same dx arithmetic, the same dw terms. Each row's
 * dy and x go into registers once, all J loads issued together, and w once per block: the dot product, dx and the
 * partials read them there (rmsnorm_bwd_k's loop read dy, w and x, and the dx loop read them again, one load at a
 * time: 1.4-1.8 TB/s on the H200). The dot product adds the same terms in the same order as rmsnorm_bwd_k.
 * OUT16 (backend.h rmsnorm_bwd_out16): also each accumulated dx rounded to bf16 into dx16, from the register that
 * dx is stored from, so bitwise to_bf16 of the stored dx. */
template <int J, bool OUT16>
__global__ void __launch_bounds__(NORM_THREADS)
    rmsnorm_bwd_fused_k(float *dx, __nv_bfloat16 *dx16, double *part, const float *dout, const float *x,
                        const float *w, const float *rstd, size_t N, int C) {
    __shared__ double sh[NORM_THREADS];
    /* J > 8 (C > 2048): the column sums in shared memory (J x 2 KB, each thread its own slots) and w read from
     * L1 where used, else 141 registers at J = 16 and one block per SM (so: 74 registers, 3 blocks per SM) */
    constexpr bool BIG = J > 8;
    __shared__ double acc_sh[BIG ? J : 1][NORM_THREADS];
    double acc[BIG ? 1 : J];
    float wr[BIG ? 1 : J];
#pragma unroll
    for (int j = 0; j < J; j++) {
        const int i = threadIdx.x + j * NORM_THREADS;
        if (BIG) acc_sh[j][threadIdx.x] = 0.0;
        else acc[j] = 0.0, wr[j] = i < C ? w[i] : 0.0f;
    }
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *xr = x + n * (size_t)C, *dy = dout + n * (size_t)C;
        float *d = dx + n * (size_t)C;
        float dyr[J], xv[J];
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = threadIdx.x + j * NORM_THREADS;
            dyr[j] = i < C ? dy[i] : 0.0f;
            xv[j] = i < C ? xr[i] : 0.0f;
        }
        const float r = rstd[n];
        double dot = 0.0;
#pragma unroll
        for (int j = 0; j < J; j++)
            if ((int)threadIdx.x + j * NORM_THREADS < C)
                dot += (double)dyr[j] * (BIG ? w[threadIdx.x + j * NORM_THREADS] : wr[j]) * xv[j];
        dot = cu_block_sum<NORM_THREADS>(dot, sh);
        const float k = (float)(dot * r * r * r / C);
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = threadIdx.x + j * NORM_THREADS;
            if (i < C) {
                d[i] += r * (BIG ? w[i] : wr[j]) * dyr[j] - k * xv[j];
                if (OUT16) dx16[n * (size_t)C + i] = __float2bfloat16_rn(d[i]);
                (BIG ? acc_sh[j][threadIdx.x] : acc[j]) += (double)dyr[j] * xv[j] * r;
            }
        }
    }
#pragma unroll
    for (int j = 0; j < J; j++) {
        const int i = threadIdx.x + j * NORM_THREADS;
        if (i < C) part[(size_t)blockIdx.x * C + i] = BIG ? acc_sh[j][threadIdx.x] : acc[j];
    }
}

template <int J>
static void rmsnorm_bwd_fused(float *dx, uint16_t *dx16, double *part, const float *dout, const float *x,
                              const float *w, const float *rstd, size_t N, int C, unsigned grid) {
    if (dx16)
        rmsnorm_bwd_fused_k<J, true><<<grid, NORM_THREADS, 0, cu_stream()>>>(dx, (__nv_bfloat16 *)dx16, part, dout, x,
                                                                             w, rstd, N, C);
    else
        rmsnorm_bwd_fused_k<J, false><<<grid, NORM_THREADS, 0, cu_stream()>>>(dx, nullptr, part, dout, x, w, rstd, N,
                                                                              C);
    CUDA_LAUNCH_CHECK("rmsnorm_bwd (dx and dw partials)");
}

/* rmsnorm_bwd, and with dx16 (rmsnorm_bwd_out16) the bf16 dx: in the fused kernel, or a to_bf16 pass after the
 * others (C beyond the fused kernel's rows) */
static void rmsnorm_bwd_any(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x, const float *w,
                            const float *rstd, size_t N, int C) {
    if (!N || C <= 0) return;
    const int J = (C + NORM_THREADS - 1) / NORM_THREADS;
    if (J <= FUSED_MAX_J) { /* dx and the dw partials in one pass over dy and x */
        const unsigned grid = N < FUSED_BLOCKS ? (unsigned)N : (unsigned)FUSED_BLOCKS;
        double *part = (double *)cu_scratch((size_t)grid * (size_t)C * sizeof(double), "rmsnorm_bwd partials");
        if (J <= 1) rmsnorm_bwd_fused<1>(dx, dx16, part, dout, x, w, rstd, N, C, grid);
        else if (J <= 2) rmsnorm_bwd_fused<2>(dx, dx16, part, dout, x, w, rstd, N, C, grid);
        else if (J <= 4) rmsnorm_bwd_fused<4>(dx, dx16, part, dout, x, w, rstd, N, C, grid);
        else if (J <= 8) rmsnorm_bwd_fused<8>(dx, dx16, part, dout, x, w, rstd, N, C, grid);
        else rmsnorm_bwd_fused<FUSED_MAX_J>(dx, dx16, part, dout, x, w, rstd, N, C, grid);
        cuda_col_partials_add(dw, part, (int)grid, C, "rmsnorm_bwd (dw)");
        cu_scratch_free(part);
        return;
    }
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    rmsnorm_bwd_dx_k<<<grid, NORM_THREADS, 0, cu_stream()>>>(dx, dout, x, w, rstd, N, C);
    CUDA_LAUNCH_CHECK("rmsnorm_bwd (dx)");
    size_t rpc = DW_ROWS_PER_CHUNK, nch = cu_row_chunks(N, &rpc);
    double *part = (double *)cu_scratch(nch * (size_t)C * sizeof(double), "rmsnorm_bwd partials");
    dim3 pg((unsigned)((C + 31) / 32), (unsigned)nch), pb(32, DW_TY);
    rmsnorm_bwd_dw_partial_k<<<pg, pb, 0, cu_stream()>>>(part, dout, x, rstd, N, C, rpc);
    CUDA_LAUNCH_CHECK("rmsnorm_bwd (dw partials)");
    cuda_col_partials_add(dw, part, (int)nch, C, "rmsnorm_bwd (dw)");
    cu_scratch_free(part);
    if (dx16) cuda_to_bf16(dx16, dx, N * (size_t)C);
}

void cuda_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      size_t N, int C) {
    rmsnorm_bwd_any(dx, NULL, dw, dout, x, w, rstd, N, C);
}
void cuda_rmsnorm_bwd_out16(float *dx, uint16_t *dx16, float *dw, const float *dout, const float *x, const float *w,
                            const float *rstd, size_t N, int C) {
    rmsnorm_bwd_any(dx, dx16, dw, dout, x, w, rstd, N, C);
}

/* RMSNorm on bf16 rows (backend.h rmsnorm_fwd_b16 / rmsnorm_bwd_b16: Qwen3's q / k norms in autocast storage, rows
 * of head_dim). Up to 256 columns a warp takes a row, its elements in registers (one 2-byte read of x, dy and one
 * write of the output: what a bf16 op needs, where widening copies would move 12 bytes an element); the arithmetic
 * of the fp32 ops (src/cpu/norm.c: sums in double, rounded once; each dx from zero), so within one bf16 rounding of
 * the CPU's. The gains' gradient: each block's double partials per column (its warps in order), then summed over the
 * blocks in order (cuda_col_partials_add): the same bits every run. Wider rows: the fp32 kernels on widened copies. */
enum { RB16_WARPS = 8, RB16_MAX_J = 8, RB16_BLOCKS = 1024 };

template <int J>
__global__ void __launch_bounds__(32 * RB16_WARPS) rmsnorm_fwd_b16_k(uint16_t *out, float *rstd, const uint16_t *x,
                                                                      const float *w, size_t N, int C, float eps) {
    const int lane = threadIdx.x & 31;
    for (size_t n = blockIdx.x * (size_t)RB16_WARPS + threadIdx.x / 32; n < N; n += (size_t)gridDim.x * RB16_WARPS) {
        const uint16_t *xr = x + n * (size_t)C;
        float v[J];
        double ss = 0.0;
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = lane + 32 * j;
            v[j] = i < C ? cu_load(xr + i) : 0.0f;
            ss += (double)v[j] * v[j];
        }
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(CU_FULL_MASK, ss, o);
        const float ms = (float)(ss / C), r = 1.0f / sqrtf(ms + eps);
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = lane + 32 * j;
            if (i < C) cu_store(out + n * (size_t)C + i, w[i] * (v[j] * r));
        }
        if (lane == 0) rstd[n] = r;
    }
}

template <int J>
__global__ void __launch_bounds__(32 * RB16_WARPS)
    rmsnorm_bwd_b16_k(uint16_t *dx, double *part, const uint16_t *dout, const uint16_t *x, const float *w,
                      const float *rstd, size_t N, int C) {
    __shared__ double sh[RB16_WARPS][32 * J];
    const int lane = threadIdx.x & 31, wp = threadIdx.x / 32;
    double pw[J];
#pragma unroll
    for (int j = 0; j < J; j++) pw[j] = 0.0;
    for (size_t n = blockIdx.x * (size_t)RB16_WARPS + wp; n < N; n += (size_t)gridDim.x * RB16_WARPS) {
        const uint16_t *xr = x + n * (size_t)C, *dy = dout + n * (size_t)C;
        float xv[J], dv[J];
        double dot = 0.0;
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = lane + 32 * j;
            xv[j] = i < C ? cu_load(xr + i) : 0.0f;
            dv[j] = i < C ? cu_load(dy + i) : 0.0f;
            if (i < C) dot += (double)dv[j] * w[i] * xv[j];
        }
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(CU_FULL_MASK, dot, o);
        const float r = rstd[n], k = (float)(dot * r * r * r / C);
#pragma unroll
        for (int j = 0; j < J; j++) {
            const int i = lane + 32 * j;
            if (i >= C) continue;
            cu_store(dx + n * (size_t)C + i, 0.0f + (r * w[i] * dv[j] - k * xv[j])); /* from zero, as the CPU's += */
            pw[j] += (double)dv[j] * xv[j] * r;
        }
    }
#pragma unroll
    for (int j = 0; j < J; j++) sh[wp][lane + 32 * j] = pw[j];
    __syncthreads();
    for (int i = threadIdx.x; i < C; i += 32 * RB16_WARPS) {
        double s = 0.0;
        for (int t = 0; t < RB16_WARPS; t++) s += sh[t][i];
        part[(size_t)blockIdx.x * C + i] = s;
    }
}

static unsigned rb16_blocks(size_t N) {
    const size_t b = (N + RB16_WARPS - 1) / RB16_WARPS;
    return (unsigned)(b < (size_t)RB16_BLOCKS ? (b ? b : 1) : (size_t)RB16_BLOCKS);
}
#define RB16_DISPATCH(J_NEEDED, CALL)                                                                                  \
    switch (J_NEEDED) {                                                                                                \
    case 1: CALL(1); break;                                                                                            \
    case 2: CALL(2); break;                                                                                            \
    case 3: case 4: CALL(4); break;                                                                                    \
    default: CALL(8); break;                                                                                           \
    }

void cuda_rmsnorm_fwd_b16(uint16_t *out, float *rstd, const uint16_t *x, const float *w, size_t N, int C, float eps) {
    const size_t n = N * (size_t)(C > 0 ? C : 0);
    if (!n) return;
    const int J = (C + 31) / 32;
    if (J <= RB16_MAX_J) {
#define RB16_FWD(JJ) rmsnorm_fwd_b16_k<JJ><<<rb16_blocks(N), 32 * RB16_WARPS, 0, cu_stream()>>>(out, rstd, x, w, N, C, eps)
        RB16_DISPATCH(J, RB16_FWD)
#undef RB16_FWD
        CUDA_LAUNCH_CHECK("rmsnorm_fwd_b16");
        return;
    }
    float *xf = (float *)cu_scratch(n * sizeof(float), "rmsnorm_fwd_b16 rows");
    cuda_widen_bf16(xf, x, n);
    cuda_rmsnorm_fwd16(out, rstd, xf, w, N, C, eps);
    cu_scratch_free(xf);
}
void cuda_rmsnorm_bwd_b16(uint16_t *dx, float *dw, const uint16_t *dout, const uint16_t *x, const float *w,
                          const float *rstd, size_t N, int C) {
    const size_t n = N * (size_t)(C > 0 ? C : 0);
    if (!n) return;
    const int J = (C + 31) / 32;
    if (J <= RB16_MAX_J) {
        const unsigned nb = rb16_blocks(N);
        double *part = (double *)cu_scratch((size_t)nb * C * sizeof(double), "rmsnorm_bwd_b16 partials");
#define RB16_BWD(JJ)                                                                                                   \
    rmsnorm_bwd_b16_k<JJ><<<nb, 32 * RB16_WARPS, 0, cu_stream()>>>(dx, part, dout, x, w, rstd, N, C)
        RB16_DISPATCH(J, RB16_BWD)
#undef RB16_BWD
        CUDA_LAUNCH_CHECK("rmsnorm_bwd_b16");
        cuda_col_partials_add(dw, part, (int)nb, C, "rmsnorm_bwd_b16 dw");
        cu_scratch_free(part);
        return;
    }
    float *f = (float *)cu_scratch(3 * n * sizeof(float), "rmsnorm_bwd_b16 rows");
    float *dyf = f, *xf = f + n, *dxf = f + 2 * n;
    cuda_widen_bf16(dyf, dout, n);
    cuda_widen_bf16(xf, x, n);
    CUDA_CHECK(cudaMemsetAsync(dxf, 0, n * sizeof(float), cu_stream()));
    cuda_rmsnorm_bwd_out16(dxf, dx, dw, dyf, xf, w, rstd, N, C); /* dx = bf16 of the fp32 d/dx from zero */
    cu_scratch_free(f);
}
