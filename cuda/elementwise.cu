/* elementwise.cu — y += x, x *= s, C = beta C (matmul with K = 0), and the sum of squares in double.
 *
 * sumsq is a deterministic two-pass reduction: a fixed grid (its size depends only on n) of blocks each sums a
 * grid-stride slice in double and reduces it with a fixed tree; one block then adds the per-block partials in
 * a fixed tree. Same n, same device: bitwise the same result. sumsq_many queues those passes for many tensors
 * and reads all their sums back at once (sumsq is sumsq_many of one). */
#include "cuda_common.cuh"

__global__ void add_k(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}
__global__ void scale_k(float *x, float s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}
__global__ void beta_scale_k(float *x, float beta, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = beta == 0.0f ? 0.0f : beta * x[i];
}

void cuda_add(float *y, const float *x, size_t n) {
    if (!n) return;
    add_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(y, x, n);
    CUDA_LAUNCH_CHECK("add");
}
void cuda_scale(float *x, float s, size_t n) {
    if (!n) return;
    scale_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(x, s, n);
    CUDA_LAUNCH_CHECK("scale");
}
void cuda_beta_scale(float *x, float beta, size_t n) {
    if (!n) return;
    beta_scale_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(x, beta, n);
    CUDA_LAUNCH_CHECK("matmul (K = 0)");
}

enum { SS_THREADS = CU_SS_THREADS, SS_MAX_BLOCKS = 1024 };

__global__ void __launch_bounds__(SS_THREADS) sumsq_partial_k(double *part, const float *x, size_t n) {
    __shared__ double sh[SS_THREADS];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)SS_THREADS + threadIdx.x; i < n; i += (size_t)gridDim.x * SS_THREADS)
        s += (double)x[i] * (double)x[i];
    s = cu_block_sum<SS_THREADS>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
__global__ void __launch_bounds__(SS_THREADS) sumsq_final_k(double *out, const double *part, int nb) {
    __shared__ double sh[SS_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += SS_THREADS) s += part[i];
    s = cu_block_sum<SS_THREADS>(s, sh);
    if (threadIdx.x == 0) *out = s;
}

/* blocks of the first pass for n elements: a function of n only (>= 8 elements per thread, at most 1024) */
size_t cu_sumsq_blocks(size_t n) {
    size_t nb = (n + (size_t)SS_THREADS * 8 - 1) / ((size_t)SS_THREADS * 8);
    return nb > (size_t)SS_MAX_BLOCKS ? (size_t)SS_MAX_BLOCKS : nb;
}
void cu_sum_partials(double *out, const double *part, size_t nb) {
    sumsq_final_k<<<1, SS_THREADS, 0, cu_stream()>>>(out, part, (int)nb);
    CUDA_LAUNCH_CHECK("sumsq (final)");
}
/* enqueues the two passes over x[0 .. n) (n > 0): nb partials into part, their sum into *out (device) */
static void sumsq_enqueue(double *out, double *part, const float *x, size_t n, size_t nb) {
    sumsq_partial_k<<<(unsigned)nb, SS_THREADS, 0, cu_stream()>>>(part, x, n);
    CUDA_LAUNCH_CHECK("sumsq");
    cu_sum_partials(out, part, nb);
}

double cuda_sumsq(const float *x, size_t n) {
    double r = 0.0;
    cuda_sumsq_many(&r, &x, &n, 1);
    return r;
}

/* every tensor's two passes queued, then one download of all the sums (one synchronisation, not one per tensor) */
void cuda_sumsq_many(double *out, const float *const *x, const size_t *n, int count) {
    if (count <= 0) return;
    size_t parts = 0;
    for (int i = 0; i < count; i++) parts += n[i] ? cu_sumsq_blocks(n[i]) : 0;
    double *d = (double *)cu_scratch(((size_t)count + parts) * sizeof(double), "sumsq partials");
    double *part = d + count;
    for (int i = 0; i < count; i++) {
        if (!n[i]) continue;
        size_t nb = cu_sumsq_blocks(n[i]);
        sumsq_enqueue(d + i, part, x[i], n[i], nb);
        part += nb;
    }
    cu_download(out, d, (size_t)count * sizeof(double));
    cu_scratch_free(d);
    for (int i = 0; i < count; i++)
        if (!n[i]) out[i] = 0.0; /* nothing queued for it (its slot of d is uninitialised scratch) */
}

/* y[i] = x[i] widened exactly (bf16 storage to fp32), n elements: the b16 entries that run an fp32 kernel on copies
 * (attention's fallback, the RMSNorm of bf16 rows) */
__global__ void widen_bf16_k(float *y, const uint16_t *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = cu_load(&x[i]);
}
void cuda_widen_bf16(float *y, const uint16_t *x, size_t n) {
    if (!n) return;
    widen_bf16_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(y, x, n);
    CUDA_LAUNCH_CHECK("widen_bf16");
}
