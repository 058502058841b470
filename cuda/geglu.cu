/* geglu.cu — Gemma 2's elementwise ops (the formulas of src/cpu/geglu.c): GeGLU out = gelu_tanh(gate) * up with
 * torch's tanh approximation and its gradient; soft-capping cap * tanh(x / cap) and its gradient from the
 * pre-cap input. Grid-stride, IEEE tanhf. */
#include "cuda_common.cuh"

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

template <class T> __global__ void geglu_fwd_k(T *out, const float *gate, const float *up, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = gate[i];
        cu_store(&out[i], 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))) * up[i]);
    }
}
template <class T>
__global__ void geglu_bwd_k(T *dgate, T *dup, const float *dout, const float *gate, const float *up, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = gate[i], dy = dout[i];
        float t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        cu_store(&dgate[i], dy * up[i] * d);
        cu_store(&dup[i], dy * 0.5f * x * (1.0f + t));
    }
}
__global__ void softcap_fwd_k(float *x, size_t n, float cap) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] / cap);
}
__global__ void softcap_bwd_k(float *dx, const float *x_pre, size_t n, float cap) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float t = tanhf(x_pre[i] / cap);
        dx[i] *= 1.0f - t * t;
    }
}

template <class T> static void geglu_fwd(T *out, const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    geglu_fwd_k<T><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(out, gate, up, n);
    CUDA_LAUNCH_CHECK("geglu_fwd");
}
void cuda_geglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    geglu_fwd(out, gate, up, N, FF);
}
void cuda_geglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    geglu_fwd(out, gate, up, N, FF);
}
/* T = float: geglu_bwd; uint16_t: geglu_bwd16 (dgate, dup rounded to bf16 storage) */
template <class T>
static void geglu_bwd(T *dgate, T *dup, const float *dout, const float *gate, const float *up, size_t N, int FF) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    geglu_bwd_k<T><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(dgate, dup, dout, gate, up, n);
    CUDA_LAUNCH_CHECK("geglu_bwd");
}
void cuda_geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                    int FF) {
    geglu_bwd(dgate, dup, dout, gate, up, N, FF);
}
void cuda_geglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF) {
    geglu_bwd(dgate, dup, dout, gate, up, N, FF);
}
void cuda_softcap_fwd(float *x, size_t n, float cap) {
    if (!n) return;
    softcap_fwd_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(x, n, cap);
    CUDA_LAUNCH_CHECK("softcap_fwd");
}
void cuda_softcap_bwd(float *dx, const float *x_pre, size_t n, float cap) {
    if (!n) return;
    softcap_bwd_k<<<cu_grid(n, 256), 256, 0, cu_stream()>>>(dx, x_pre, n, cap);
    CUDA_LAUNCH_CHECK("softcap_bwd");
}
