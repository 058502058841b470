/* rows.cu — gather_rows / scatter_rows (backend.h): one block per listed row, threads stride over its C columns.
 * A row index outside [0, N) is skipped here (a device kernel cannot stop the job; the CPU backend, which every
 * test also runs, dies on it, and the model only passes positions of the micro-batch). */
#include "cuda_common.cuh"

__global__ void gather_rows_k(float *dst, const float *src, const int *rows, size_t N, int C) {
    int r = rows[blockIdx.x];
    if (r < 0 || (size_t)r >= N) return;
    const float *s = src + (size_t)r * C;
    float *d = dst + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}
__global__ void scatter_rows_k(float *dst, const float *src, const int *rows, size_t N, int C) {
    int r = rows[blockIdx.x];
    if (r < 0 || (size_t)r >= N) return;
    const float *s = src + (size_t)blockIdx.x * C;
    float *d = dst + (size_t)r * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}

/* grids of at most 2^31 - 1 blocks in x: launch in pieces of rows */
void cuda_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    for (size_t r0 = 0; r0 < M && C > 0; r0 += 0x7fffffff) {
        size_t m = M - r0 < 0x7fffffff ? M - r0 : 0x7fffffff;
        gather_rows_k<<<(unsigned)m, 256, 0, cu_stream()>>>(dst + r0 * (size_t)C, src, rows + r0, N, C);
        CUDA_LAUNCH_CHECK("gather_rows");
    }
}
void cuda_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    for (size_t r0 = 0; r0 < M && C > 0; r0 += 0x7fffffff) {
        size_t m = M - r0 < 0x7fffffff ? M - r0 : 0x7fffffff;
        scatter_rows_k<<<(unsigned)m, 256, 0, cu_stream()>>>(dst, src + r0 * (size_t)C, rows + r0, N, C);
        CUDA_LAUNCH_CHECK("scatter_rows");
    }
}
