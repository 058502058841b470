/* adamw.cu — one AdamW step (torch semantics) on n elements, evaluated in double and rounded once per element
 * exactly as src/cpu/adamw.c (see there for why double; the clipping scale multiplies g in fp32 first); the state
 * stays fp32; with p16 also the updated weights' bf16 copy. Elementwise, grid-stride. */
#include "cuda_common.cuh"

__global__ void adamw_k(float *p, uint16_t *p16, const float *g, float gscale, float *m, float *v, size_t n,
                        double b1, double b2, double eps, double decay, double step, double bc2_sqrt) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        double gi = __fmul_rn(g[i], gscale); /* never contracted into an FMA: the CPU's fp32 product */
        double mi = b1 * m[i] + (1.0 - b1) * gi;
        double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
        float pi = (float)((double)p[i] * decay - step * mi / (sqrt(vi) / bc2_sqrt + eps));
        p[i] = pi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        if (p16) cu_store(&p16[i], pi); /* the bf16 compute weight */
    }
}

void cuda_adamw(float *p, uint16_t *p16, const float *g, float gscale, float *m, float *v, size_t n, double lr,
                double b1, double b2, double eps, double wd, double bc1, double bc2) {
    if (!n) return;
    const double decay = 1.0 - lr * wd, step = lr / bc1, bc2_sqrt = sqrt(bc2);
    adamw_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(p, p16, g, gscale, m, v, n, b1, b2, eps, decay, step,
                                                      bc2_sqrt);
    CUDA_LAUNCH_CHECK("adamw");
}
