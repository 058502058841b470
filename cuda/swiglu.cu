/* swiglu.cu — out = silu(gate) * up with silu(x) = x / (1 + exp(-x)) (the formula of src/cpu/swiglu.c), and its
 * gradient d silu(g)/dg = sig(g) (1 + g (1 - sig(g))). Elementwise, grid-stride, IEEE expf and division. */
#include "cuda_common.cuh"

template <class T> __global__ void swiglu_fwd_k(T *out, const float *gate, const float *up, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        cu_store(&out[i], g / (1.0f + expf(-g)) * up[i]);
    }
}
template <class T>
__global__ void swiglu_bwd_k(T *dgate, T *dup, const float *dout, const float *gate, const float *up, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i], dy = dout[i];
        float sig = 1.0f / (1.0f + expf(-g));
        float silu = g / (1.0f + expf(-g));
        cu_store(&dgate[i], dy * up[i] * sig * (1.0f + g * (1.0f - sig)));
        cu_store(&dup[i], dy * silu);
    }
}

template <class T> static void swiglu_fwd(T *out, const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    swiglu_fwd_k<T><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(out, gate, up, n);
    CUDA_LAUNCH_CHECK("swiglu_fwd");
}
void cuda_swiglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    swiglu_fwd(out, gate, up, N, FF);
}
void cuda_swiglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    swiglu_fwd(out, gate, up, N, FF);
}
/* T = float: swiglu_bwd; uint16_t: swiglu_bwd16 (dgate, dup rounded to bf16 storage) */
template <class T>
static void swiglu_bwd(T *dgate, T *dup, const float *dout, const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    swiglu_bwd_k<T><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(dgate, dup, dout, gate, up, n);
    CUDA_LAUNCH_CHECK("swiglu_bwd");
}
void cuda_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                     int FF) {
    swiglu_bwd(dgate, dup, dout, gate, up, N, FF);
}
void cuda_swiglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up,
                       size_t N, int FF) {
    swiglu_bwd(dgate, dup, dout, gate, up, N, FF);
}
