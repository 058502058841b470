/* adamw.cu — one AdamW step (torch semantics) on n elements, evaluated in double and rounded once per element
 * exactly as src/cpu/adamw.c (see there for why double; the clipping scale multiplies g in fp32 first); the state
 * stays fp32; with p16 also the updated weights' bf16 copy. Elementwise, grid-stride: four elements per thread and
 * step in 16-byte accesses (p, g, m, v; 8 bytes of p16) where the pointers allow it, the rest one by one: the
 * optimizer is the step's largest memory traffic (~30 bytes per parameter), and 4-byte accesses leave part of the
 * bandwidth unused. Both paths run the same arithmetic per element (adamw_one), so the results are the same.
 * adamw_sumsq (gscale 1) also adds up the gradients' squares as it reads them, in the deterministic two passes of
 * elementwise.cu's sumsq (a fixed grid of partials, then one block's fixed tree): the gradient norm without a pass
 * of its own when nothing clips. */
#include "cuda_common.cuh"

typedef struct {
    float gscale;
    double b1, b2, eps, decay, step, bc2_sqrt;
} AdamwArgs;

/* one element: p, m, v updated in place */
static __device__ __forceinline__ void adamw_one(float &p, float g, float &m, float &v, const AdamwArgs &a) {
    double gi = __fmul_rn(g, a.gscale); /* never contracted into an FMA: the CPU's fp32 product */
    double mi = a.b1 * m + (1.0 - a.b1) * gi;
    double vi = a.b2 * v + (1.0 - a.b2) * gi * gi;
    p = (float)((double)p * a.decay - a.step * mi / (sqrt(vi) / a.bc2_sqrt + a.eps));
    m = (float)mi;
    v = (float)vi;
}

/* element i updated in memory (and its bf16 compute weight when p16); returns its gradient */
static __device__ __forceinline__ float adamw_elem(float *p, uint16_t *p16, const float *g, float *m, float *v,
                                                   size_t i, const AdamwArgs &a) {
    const float gi = g[i];
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_one(pi, gi, mi, vi, a);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (p16) cu_store(&p16[i], pi); /* the bf16 compute weight */
    return gi;
}
/* elements 4 i .. 4 i + 3 in 16-byte accesses (p, g, m, v 16-byte aligned, p16 8-byte aligned); returns their
 * gradients */
static __device__ __forceinline__ float4 adamw_quad(float *p, uint16_t *p16, const float *g, float *m, float *v,
                                                    size_t i, const AdamwArgs &a) {
    float4 P = ((const float4 *)p)[i], G = ((const float4 *)g)[i], M = ((const float4 *)m)[i],
           V = ((const float4 *)v)[i];
    adamw_one(P.x, G.x, M.x, V.x, a);
    adamw_one(P.y, G.y, M.y, V.y, a);
    adamw_one(P.z, G.z, M.z, V.z, a);
    adamw_one(P.w, G.w, M.w, V.w, a);
    ((float4 *)p)[i] = P;
    ((float4 *)m)[i] = M;
    ((float4 *)v)[i] = V;
    if (p16) {
        uint16_t b[4];
        cu_store(&b[0], P.x), cu_store(&b[1], P.y), cu_store(&b[2], P.z), cu_store(&b[3], P.w);
        ((uint2 *)p16)[i] = make_uint2((unsigned)b[0] | (unsigned)b[1] << 16, (unsigned)b[2] | (unsigned)b[3] << 16);
    }
    return G;
}

__global__ void adamw_k(float *p, uint16_t *p16, const float *g, float *m, float *v, size_t n, AdamwArgs a) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        adamw_elem(p, p16, g, m, v, i, a);
}

/* n4 groups of 4 elements: p, g, m, v 16-byte aligned, p16 (when not NULL) 8-byte aligned */
__global__ void adamw4_k(float *p, uint16_t *p16, const float *g, float *m, float *v, size_t n4, AdamwArgs a) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x)
        adamw_quad(p, p16, g, m, v, i, a);
}

/* adamw_sumsq's pass: AdamW (gscale 1) with each thread adding its gradients' squares in double as it reads them,
 * the block's sum by a fixed tree to part[blockIdx.x]; a fixed grid (adamw_ss_blocks(n)), so the same n gives the
 * same partials. VEC: the 4-wide body (p, g, m, v 16-byte aligned, p16 8-byte aligned) and the < 4 elements after it
 * one by one; else all one by one. At most 64 registers, so that 4 blocks share an SM as adamw4_k's do (66 without
 * the bound: 3 blocks, and the H200 measured 3.0 TB/s against adamw4_k's 3.65). */
template <bool VEC>
__global__ void __launch_bounds__(CU_SS_THREADS, 4) adamw_ss_k(double *part, float *p, uint16_t *p16, const float *g,
                                                            float *m, float *v, size_t n, AdamwArgs a) {
    __shared__ double sh[CU_SS_THREADS];
    const size_t t0 = blockIdx.x * (size_t)CU_SS_THREADS + threadIdx.x, stride = (size_t)gridDim.x * CU_SS_THREADS;
    double s = 0.0;
    size_t done = 0;
    if (VEC) {
        const size_t n4 = n / 4;
        for (size_t i = t0; i < n4; i += stride) {
            const float4 G = adamw_quad(p, p16, g, m, v, i, a);
            s += (double)G.x * G.x + (double)G.y * G.y + (double)G.z * G.z + (double)G.w * G.w;
        }
        done = n4 * 4;
    }
    for (size_t i = done + t0; i < n; i += stride) {
        const float gi = adamw_elem(p, p16, g, m, v, i, a);
        s += (double)gi * gi;
    }
    s = cu_block_sum<CU_SS_THREADS>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* adamw_ss_k's grid for n elements, a function of n only (the partials, so the sum, the same on every run): at least
 * 16 quads per thread, at most 8192 blocks. Not sumsq's cap of 1024 blocks: on a 132-SM device, at 3 blocks per SM
 * (the 66 registers before) those ran in 3 waves of 396, the last 59% full; 8192 blocks at 4 per SM are 15.5 waves
 * of 528, so the last one's idle SMs cost ~3% instead. The second pass adds the up to 8192 partials in one block. */
static size_t adamw_ss_blocks(size_t n) {
    const size_t per = (size_t)CU_SS_THREADS * 64, nb = (n + per - 1) / per;
    return nb > 8192 ? 8192 : nb;
}

void cuda_adamw_sumsq(double *sumsq, float *p, uint16_t *p16, const float *g, float *m, float *v, size_t n,
                      double lr, double b1, double b2, double eps, double wd, double bc1, double bc2) {
    if (!n) {
        CUDA_CHECK(cudaMemsetAsync(sumsq, 0, sizeof(double), cu_stream()));
        return;
    }
    const AdamwArgs a = {1.0f, b1, b2, eps, 1.0 - lr * wd, lr / bc1, sqrt(bc2)};
    const size_t nb = adamw_ss_blocks(n);
    double *part = (double *)cu_scratch(nb * sizeof(double), "adamw_sumsq partials");
    if (cu_aligned16(p, g, m, v, p) && ((uintptr_t)p16 & 7) == 0)
        adamw_ss_k<true><<<(unsigned)nb, CU_SS_THREADS, 0, cu_stream()>>>(part, p, p16, g, m, v, n, a);
    else adamw_ss_k<false><<<(unsigned)nb, CU_SS_THREADS, 0, cu_stream()>>>(part, p, p16, g, m, v, n, a);
    CUDA_LAUNCH_CHECK("adamw_sumsq");
    cu_sum_partials(sumsq, part, nb);
    cu_scratch_free(part);
}

void cuda_adamw(float *p, uint16_t *p16, const float *g, float gscale, float *m, float *v, size_t n, double lr,
                double b1, double b2, double eps, double wd, double bc1, double bc2) {
    if (!n) return;
    const AdamwArgs a = {gscale, b1, b2, eps, 1.0 - lr * wd, lr / bc1, sqrt(bc2)};
    size_t body = 0; /* elements the 4-wide kernel takes */
    if (cu_aligned16(p, g, m, v, p) && ((uintptr_t)p16 & 7) == 0) body = n / 4 * 4;
    if (body) {
        adamw4_k<<<cu_grid(body / 4, 256), 256, 0, cu_stream()>>>(p, p16, g, m, v, body / 4, a);
        CUDA_LAUNCH_CHECK("adamw");
    }
    if (body < n) {
        adamw_k<<<cu_grid(n - body, 256), 256, 0, cu_stream()>>>(p + body, p16 ? p16 + body : NULL, g + body, m + body,
                                                                  v + body, n - body, a);
        CUDA_LAUNCH_CHECK("adamw");
    }
}
