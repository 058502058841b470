/* geglu.cu — Gemma 2's elementwise ops (the formulas of src/cpu/geglu.c): GeGLU out = gelu_tanh(gate) * up with
 * torch's tanh approximation and its gradient; soft-capping cap * tanh(x / cap) and its gradient from the
 * pre-cap input. Grid-stride (GeGLU's launches: glu_launch.cuh), IEEE tanhf. */
#include "cuda_common.cuh"
#include "glu_launch.cuh"

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

struct GeGLU {
    static __device__ __forceinline__ float fwd(float x, float up) {
        return 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x))) * up;
    }
    static __device__ __forceinline__ void bwd(float dy, float x, float up, float &dgate, float &dup) {
        float t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        dgate = dy * up * d;
        dup = dy * 0.5f * x * (1.0f + t);
    }
};

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

void cuda_geglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    glu_fwd<GeGLU>(out, gate, up, N, FF, "geglu_fwd");
}
void cuda_geglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    glu_fwd<GeGLU>(out, gate, up, N, FF, "geglu_fwd");
}
void cuda_geglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                    int FF) {
    glu_bwd<GeGLU>(dgate, dup, dout, gate, up, N, FF, "geglu_bwd");
}
void cuda_geglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up, size_t N,
                      int FF) {
    glu_bwd<GeGLU>(dgate, dup, dout, gate, up, N, FF, "geglu_bwd");
}
void cuda_geglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    glu_fwd<GeGLU>(out, gate, up, N, FF, "geglu_fwd");
}
void cuda_geglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                        const uint16_t *up, size_t N, int FF) {
    glu_bwd<GeGLU>(dgate, dup, dout, gate, up, N, FF, "geglu_bwd");
}
void cuda_geglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                             int FF) {
    glu_bwd_pack<GeGLU>(dgu, dout, gate, up, N, FF, "geglu_bwd_pack_b16");
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
