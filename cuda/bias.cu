/* bias.cu — bias_add / bias_add_b16 / bias_grad / bias_grad_b16 (backend.h): the linear biases of Qwen2's q, k, v
 * projections, the arithmetic of src/cpu/bias.c.
 *
 * All kernels use blocks of 32 columns x BIAS_TY row lanes, so a warp reads 32 consecutive elements of a row (rows
 * lie ld apart: a block of D columns of a wider matrix).
 * bias_add: one fp32 add per element (bf16 storage: widened exactly, rounded to nearest even once by cu_store as
 * the CPU's sd_f32_to_bf16): bitwise the CPU's results.
 * bias_grad: a column reduction without atomics, as rmsnorm_bwd's dw (norm.cu): each block sums its chunk of rows
 * per column in double (fixed lanes, then a fixed order over them) into part[chunk][D], and a second kernel adds a
 * column's partials in chunk order, in double, rounding once to fp32 before adding into db. The grid depends only
 * on N and D, so the bits are the same every run; against the CPU's sequential double sum only the order differs
 * (both round the same double-precision value, so they differ only where it lies within ~N 2^-53 of a rounding
 * boundary of fp32). */
#include "cuda_common.cuh"

enum { BIAS_TY = 8, BIAS_ROWS_PER_CHUNK = 128, BIAS_ADD_MAX_GY = 4096 };

/* y[n, j] += b[j]: each thread one column, rows n = blockIdx.y BIAS_TY + threadIdx.y, stepping over the grid */
template <class T> __global__ void bias_add_k(T *y, const float *b, size_t N, int D, int ld) {
    const int j = blockIdx.x * 32 + threadIdx.x;
    if (j >= D) return;
    const float bj = b[j];
    for (size_t n = (size_t)blockIdx.y * BIAS_TY + threadIdx.y; n < N; n += (size_t)gridDim.y * BIAS_TY) {
        T *p = y + n * (size_t)ld + j;
        cu_store(p, cu_load(p) + bj);
    }
}

/* part[chunk, j] = sum over the chunk's rows of dy[n, j] in double; block (32 columns) x (BIAS_TY row lanes) */
template <class T>
__global__ void bias_grad_partial_k(double *part, const T *dy, size_t N, int D, int ld, size_t rows_per_chunk) {
    __shared__ double sh[BIAS_TY][32];
    const int j = blockIdx.x * 32 + threadIdx.x;
    const size_t r0 = blockIdx.y * rows_per_chunk, r1 = r0 + rows_per_chunk < N ? r0 + rows_per_chunk : N;
    double acc = 0.0;
    if (j < D)
        for (size_t n = r0 + threadIdx.y; n < r1; n += BIAS_TY) acc += (double)cu_load(dy + n * (size_t)ld + j);
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < D) {
        double s = 0.0;
        for (int t = 0; t < BIAS_TY; t++) s += sh[t][threadIdx.x];
        part[(size_t)blockIdx.y * D + j] = s;
    }
}

template <class T> static void bias_add(T *y, const float *b, size_t N, int D, int ld, const char *what) {
    if (!N || D <= 0) return;
    const size_t lanes = (N + BIAS_TY - 1) / BIAS_TY, cap = BIAS_ADD_MAX_GY, gy = lanes < cap ? lanes : cap;
    dim3 grid((unsigned)((D + 31) / 32), (unsigned)gy), block(32, BIAS_TY);
    bias_add_k<T><<<grid, block, 0, cu_stream()>>>(y, b, N, D, ld);
    CUDA_LAUNCH_CHECK(what);
}
template <class T> static void bias_grad(float *db, const T *dy, size_t N, int D, int ld, const char *what) {
    if (D <= 0) return;
    size_t rpc = BIAS_ROWS_PER_CHUNK, nch = cu_row_chunks(N, &rpc);
    double *part = NULL;
    if (nch) {
        part = (double *)cu_scratch(nch * (size_t)D * sizeof(double), "bias_grad partials");
        dim3 pg((unsigned)((D + 31) / 32), (unsigned)nch), pb(32, BIAS_TY);
        bias_grad_partial_k<T><<<pg, pb, 0, cu_stream()>>>(part, dy, N, D, ld, rpc);
        CUDA_LAUNCH_CHECK(what);
    }
    cuda_col_partials_add(db, part, (int)nch, D, what); /* nch 0: db += 0, as the CPU's empty sum (-0 becomes +0) */
    cu_scratch_free(part);
}

void cuda_bias_add(float *y, const float *b, size_t N, int D, int ld) { bias_add(y, b, N, D, ld, "bias_add"); }
void cuda_bias_add_b16(uint16_t *y, const float *b, size_t N, int D, int ld) {
    bias_add(y, b, N, D, ld, "bias_add_b16");
}
void cuda_bias_grad(float *db, const float *dy, size_t N, int D, int ld) {
    bias_grad(db, dy, N, D, ld, "bias_grad");
}
void cuda_bias_grad_b16(float *db, const uint16_t *dy, size_t N, int D, int ld) {
    bias_grad(db, dy, N, D, ld, "bias_grad_b16");
}
