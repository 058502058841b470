/* glu_launch.cuh — private to cuda/: the kernels and launchers that the gated activations of swiglu.cu and
 * geglu.cu share. An activation A is a struct of two device functions, its formulas (src/cpu/swiglu.c, geglu.c):
 *   static float fwd(float gate, float up)                                  out = act(gate) * up
 *   static void bwd(float dout, float gate, float up, float &dgate, float &dup)
 * glu_fwd<A> / glu_bwd<A> apply them elementwise over N rows of FF (nothing when N or FF is 0 or less), grid-stride,
 * from gate and up (and in the backward dout) in fp32 or bf16 storage (cu_load: the *_b16 ops) to out, or dgate
 * and dup, in fp32 or bf16 storage (cu_store: the *_fwd16 / *_bwd16 ops). The all-bf16 ops (*_b16: autocast
 * storage, the ones the bf16 training step runs) take 8 elements per 16-byte access where every pointer is 16-byte
 * aligned and the count a multiple of 8 (glu_fwd8_k, glu_bwd8_k: 2-byte accesses leave a good part of the memory
 * bandwidth unused), the same formulas on the same values, so bitwise the scalar kernels' results. The launches are
 * in this header: tests/gpu/emu/cu2cpp.py inlines a .cu file's local headers to convert them. */
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

/* the all-bf16 kernels, n8 groups of 8 elements (cuda_common.cuh bf16x8_load / bf16x8_store) */
template <class A> __global__ void glu_fwd8_k(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t n8) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += (size_t)gridDim.x * blockDim.x) {
        float g[8], u[8], o[8];
        bf16x8_load(g, gate + 8 * i);
        bf16x8_load(u, up + 8 * i);
#pragma unroll
        for (int e = 0; e < 8; e++) o[e] = A::fwd(g[e], u[e]);
        bf16x8_store(out + 8 * i, o);
    }
}
template <class A>
__global__ void glu_bwd8_k(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate,
                           const uint16_t *up, size_t n8) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += (size_t)gridDim.x * blockDim.x) {
        float d[8], g[8], u[8], dg[8], du[8];
        bf16x8_load(d, dout + 8 * i);
        bf16x8_load(g, gate + 8 * i);
        bf16x8_load(u, up + 8 * i);
#pragma unroll
        for (int e = 0; e < 8; e++) A::bwd(d[e], g[e], u[e], dg[e], du[e]);
        bf16x8_store(dgate + 8 * i, dg);
        bf16x8_store(dup + 8 * i, du);
    }
}
/* the 16-byte path where it applies: all-bf16 (the overloads taking uint16_t), aligned, n a multiple of 8; else
 * false (nothing launched) */
template <class A, class T, class I> static bool glu_fwd8(T *, const I *, const I *, size_t) { return false; }
template <class A> static bool glu_fwd8(uint16_t *out, const uint16_t *gate, const uint16_t *up, size_t n) {
    if (n % 8 || !cu_aligned16(out, gate, up, up, up)) return false;
    glu_fwd8_k<A><<<cu_grid(n / 8, 256), 256, 0, cu_stream()>>>(out, gate, up, n / 8);
    return true;
}
template <class A, class T, class I> static bool glu_bwd8(T *, T *, const I *, const I *, const I *, size_t) {
    return false;
}
template <class A>
static bool glu_bwd8(uint16_t *dgate, uint16_t *dup, const uint16_t *dout, const uint16_t *gate, const uint16_t *up,
                     size_t n) {
    if (n % 8 || !cu_aligned16(dgate, dup, dout, gate, up)) return false;
    glu_bwd8_k<A><<<cu_grid(n / 8, 256), 256, 0, cu_stream()>>>(dgate, dup, dout, gate, up, n / 8);
    return true;
}

/* `what` names the op in messages */
template <class A, class T, class I>
static void glu_fwd(T *out, const I *gate, const I *up, size_t N, int FF, const char *what) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    if (!glu_fwd8<A>(out, gate, up, n))
        glu_fwd_k<A, T, I><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(out, gate, up, n);
    CUDA_LAUNCH_CHECK(what);
}
template <class A, class T, class I>
static void glu_bwd(T *dgate, T *dup, const I *dout, const I *gate, const I *up, size_t N, int FF,
                    const char *what) {
    size_t n = N * (size_t)(FF > 0 ? FF : 0);
    if (!n) return;
    if (!glu_bwd8<A>(dgate, dup, dout, gate, up, n))
        glu_bwd_k<A, T, I><<<cu_grid(n, 256), 256, 0, cu_stream()>>>(dgate, dup, dout, gate, up, n);
    CUDA_LAUNCH_CHECK(what);
}

/* the packed backward (backend.h swiglu_bwd_pack_b16, geglu_bwd_pack_b16): row r's d/dgate and d/dup side by side in
 * dgu [N, 2 FF] (columns c and FF + c), the same formulas on the same widened values and the same rounding as
 * glu_bwd8_k / glu_bwd_k, so bitwise their outputs. Rows over y (grid-stride), W columns a thread over x: W = 8
 * (16-byte accesses: FF a multiple of 8, every pointer 16-byte aligned) or 1. */
template <class A, int W>
__global__ void glu_bwd_pack_k(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                               int FF) {
    for (size_t r = blockIdx.y; r < N; r += gridDim.y) {
        const size_t ri = r * (size_t)FF;
        uint16_t *dg = dgu + 2 * ri, *du = dg + FF;
        for (int c = W * (blockIdx.x * blockDim.x + threadIdx.x); c < FF; c += W * gridDim.x * blockDim.x) {
            if constexpr (W == 8) {
                float d[8], g[8], u[8], a[8], b[8];
                bf16x8_load(d, dout + ri + c);
                bf16x8_load(g, gate + ri + c);
                bf16x8_load(u, up + ri + c);
#pragma unroll
                for (int e = 0; e < 8; e++) A::bwd(d[e], g[e], u[e], a[e], b[e]);
                bf16x8_store(dg + c, a);
                bf16x8_store(du + c, b);
            } else {
                float a, b;
                A::bwd(cu_load(&dout[ri + c]), cu_load(&gate[ri + c]), cu_load(&up[ri + c]), a, b);
                cu_store(&dg[c], a);
                cu_store(&du[c], b);
            }
        }
    }
}
template <class A>
static void glu_bwd_pack(uint16_t *dgu, const uint16_t *dout, const uint16_t *gate, const uint16_t *up, size_t N,
                         int FF, const char *what) {
    if (!N || FF <= 0) return;
    const unsigned gy = N < 65535 ? (unsigned)N : 65535u;
    if (FF % 8 == 0 && cu_aligned16(dgu, dout, gate, up, up))
        glu_bwd_pack_k<A, 8><<<dim3((unsigned)((FF / 8 + 255) / 256), gy), 256, 0, cu_stream()>>>(dgu, dout, gate, up,
                                                                                                 N, FF);
    else
        glu_bwd_pack_k<A, 1><<<dim3((unsigned)((FF + 255) / 256), gy), 256, 0, cu_stream()>>>(dgu, dout, gate, up,
                                                                                               N, FF);
    CUDA_LAUNCH_CHECK(what);
}
#endif
