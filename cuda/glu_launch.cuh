/* glu_launch.cuh — private to cuda/: the kernels and launchers that the gated activations of swiglu.cu and
 * geglu.cu share. An activation A is a struct of two device functions, its formulas (src/cpu/swiglu.c, geglu.c):
 *   static float fwd(float gate, float up)                                  out = act(gate) * up
 *   static void bwd(float dout, float gate, float up, float &dgate, float &dup)
 * glu_fwd<A> / glu_bwd<A> apply them elementwise over N rows of FF (nothing when N or FF is 0 or less), grid-stride,
 * from gate and up (and in the backward dout) in fp32 or bf16 storage (cu_load: the *_b16 ops) to out, or dgate
 * and dup, in fp32 or bf16 storage (cu_store: the *_fwd16 / *_bwd16 ops). The launches are in this header: tests/gpu/emu/cu2cpp.py inlines
 * a .cu file's local headers to convert them. */
#ifndef SD_GLU_LAUNCH_CUH
#define SD_GLU_LAUNCH_CUH
#include "cuda_common.cuh"

template <class A, class T, class I> __global__ void glu_fwd_k(T *out, const I *gate, const I *up, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        cu_store(&out[i], A::fwd(cu_load(&gate[i]), cu_load(&up[i])));
}
template <class A, class T, class I>
__global__ void glu_bwd_k(T *dgate, T *dup, const I *dout, const I *gate, const I *up, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float dg, du;
        A::bwd(cu_load(&dout[i]), cu_load(&gate[i]), cu_load(&up[i]), dg, du);
        cu_store(&dgate[i], dg);
        cu_store(&dup[i], du);
    }
}

/* `what` names the op in messages */
template <class A, class T, class I>
static void glu_fwd(T *out, const I *gate, const I *up, size_t N, int FF, const char *what) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    glu_fwd_k<A, T, I><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(out, gate, up, n);
    CUDA_LAUNCH_CHECK(what);
}
template <class A, class T, class I>
static void glu_bwd(T *dgate, T *dup, const I *dout, const I *gate, const I *up, size_t N, int FF,
                    const char *what) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    glu_bwd_k<A, T, I><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(dgate, dup, dout, gate, up, n);
    CUDA_LAUNCH_CHECK(what);
}
#endif
