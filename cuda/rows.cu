/* rows.cu — gather_rows / scatter_rows / add_rows / add_rows_b16 (backend.h): one block per listed row, threads
 * stride over its C columns. A row index outside [0, N) (add_rows: drows outside [0, Nd), srows outside [0, Ns))
 * is skipped here (a device kernel cannot stop the job; the CPU backend, which every test also runs, dies on it,
 * and the model only passes positions of the micro-batch). gather_rows / scatter_rows copy 16 bytes at a time
 * where the rows (C a multiple of 4 floats) and both tensors are 16-byte aligned: the same bits. */
#include "cuda_common.cuh"

/* E: float, or float4 (C then counts float4s) */
template <class E> __global__ void gather_rows_k(E *dst, const E *src, const int *rows, size_t N, int C) {
    int r = rows[blockIdx.x];
    if (r < 0 || (size_t)r >= N) return;
    const E *s = src + (size_t)r * C;
    E *d = dst + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}
template <class E> __global__ void scatter_rows_k(E *dst, const E *src, const int *rows, size_t N, int C) {
    int r = rows[blockIdx.x];
    if (r < 0 || (size_t)r >= N) return;
    const E *s = src + (size_t)blockIdx.x * C;
    E *d = dst + (size_t)r * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}
/* dst[drows[i],:] += src[srows[i],:] for fp32 or bf16 storage (T = uint16_t: the sum in fp32, rounded to nearest
 * even by cu_store as the CPU's sd_f32_to_bf16). drows are distinct, so no two blocks write the same row. */
template <class T>
__global__ void add_rows_k(T *dst, const int *drows, const T *src, const int *srows, size_t Nd, size_t Ns, int C) {
    int dr = drows[blockIdx.x], sr = srows[blockIdx.x];
    if (dr < 0 || (size_t)dr >= Nd || sr < 0 || (size_t)sr >= Ns) return;
    const T *s = src + (size_t)sr * C;
    T *d = dst + (size_t)dr * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) cu_store(&d[c], cu_load(&d[c]) + cu_load(&s[c]));
}

/* grids of at most 2^31 - 1 blocks in x: launch in pieces of rows */
/* whether rows of C floats of both tensors go as float4s */
static bool rows_vec4(const float *dst, const float *src, int C) { return C % 4 == 0 && cu_aligned16(dst, src, dst, dst, dst); }
void cuda_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    bool v4 = rows_vec4(dst, src, C);
    for (size_t r0 = 0; r0 < M && C > 0; r0 += 0x7fffffff) {
        size_t m = M - r0 < 0x7fffffff ? M - r0 : 0x7fffffff;
        if (v4)
            gather_rows_k<float4><<<(unsigned)m, 256, 0, cu_stream()>>>((float4 *)(dst + r0 * (size_t)C),
                                                                       (const float4 *)src, rows + r0, N, C / 4);
        else gather_rows_k<float><<<(unsigned)m, 256, 0, cu_stream()>>>(dst + r0 * (size_t)C, src, rows + r0, N, C);
        CUDA_LAUNCH_CHECK("gather_rows");
    }
}
void cuda_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    bool v4 = rows_vec4(dst, src, C);
    for (size_t r0 = 0; r0 < M && C > 0; r0 += 0x7fffffff) {
        size_t m = M - r0 < 0x7fffffff ? M - r0 : 0x7fffffff;
        if (v4)
            scatter_rows_k<float4><<<(unsigned)m, 256, 0, cu_stream()>>>((float4 *)dst,
                                                                        (const float4 *)(src + r0 * (size_t)C),
                                                                        rows + r0, N, C / 4);
        else scatter_rows_k<float><<<(unsigned)m, 256, 0, cu_stream()>>>(dst, src + r0 * (size_t)C, rows + r0, N, C);
        CUDA_LAUNCH_CHECK("scatter_rows");
    }
}
template <class T>
static void add_rows(T *dst, const int *drows, const T *src, const int *srows, size_t M, size_t Nd, size_t Ns, int C,
                     const char *what) {
    for (size_t r0 = 0; r0 < M && C > 0; r0 += 0x7fffffff) {
        size_t m = M - r0 < 0x7fffffff ? M - r0 : 0x7fffffff;
        add_rows_k<T><<<(unsigned)m, 256, 0, cu_stream()>>>(dst, drows + r0, src, srows + r0, Nd, Ns, C);
        CUDA_LAUNCH_CHECK(what);
    }
}
void cuda_add_rows(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd, size_t Ns,
                   int C) {
    add_rows(dst, drows, src, srows, M, Nd, Ns, C, "add_rows");
}
void cuda_add_rows_b16(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M, size_t Nd,
                       size_t Ns, int C) {
    add_rows(dst, drows, src, srows, M, Nd, Ns, C, "add_rows_b16");
}
