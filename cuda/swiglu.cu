/* swiglu.cu — out = silu(gate) * up with silu(x) = x / (1 + exp(-x)) (the formula of src/cpu/swiglu.c), and its
 * gradient d silu(g)/dg = sig(g) (1 + g (1 - sig(g))). Elementwise, grid-stride (glu_launch.cuh), IEEE expf and
 * division. */
#include "cuda_common.cuh"
#include "glu_launch.cuh"

struct SwiGLU {
    static __device__ __forceinline__ float fwd(float g, float up) { return g / (1.0f + expf(-g)) * up; }
    static __device__ __forceinline__ void bwd(float dy, float g, float up, float &dgate, float &dup) {
        float sig = 1.0f / (1.0f + expf(-g));
        float silu = g / (1.0f + expf(-g));
        dgate = dy * up * sig * (1.0f + g * (1.0f - sig));
        dup = dy * silu;
    }
};

void cuda_swiglu_fwd(float *out, const float *gate, const float *up, size_t N, int FF) {
    glu_fwd<SwiGLU>(out, gate, up, N, FF, "swiglu_fwd");
}
void cuda_swiglu_fwd16(uint16_t *out, const float *gate, const float *up, size_t N, int FF) {
    glu_fwd<SwiGLU>(out, gate, up, N, FF, "swiglu_fwd");
}
void cuda_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                     int FF) {
    glu_bwd<SwiGLU>(dgate, dup, dout, gate, up, N, FF, "swiglu_bwd");
}
void cuda_swiglu_bwd16(uint16_t *dgate, uint16_t *dup, const float *dout, const float *gate, const float *up,
                       size_t N, int FF) {
    glu_bwd<SwiGLU>(dgate, dup, dout, gate, up, N, FF, "swiglu_bwd");
}
void cuda_swiglu_fwd_b16(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t N, int FF) {
    glu_fwd<SwiGLU>(out, gate, up, N, FF, "swiglu_fwd");
}
void cuda_swiglu_bwd_b16(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                         const uint16_t *up, size_t N, int FF) {
    glu_bwd<SwiGLU>(dgate, dup, dout, gate, up, N, FF, "swiglu_bwd");
}
void cuda_swiglu_bwd_pack_b16(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                              int FF) {
    glu_bwd_pack<SwiGLU>(dgu, dout, gate, up, N, FF, "swiglu_bwd_pack_b16");
}
