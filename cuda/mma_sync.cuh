/* mma_sync.cuh — private to cuda/: the warp-level tensor-core instructions attention_tc3.cu uses, with the
 * fragment layouts the PTX ISA documents (nothing here depends on an undocumented layout, unlike nvcuda::wmma):
 *
 *  mma_bf16(d, a, b): mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, D = A B + D for A 16x16 (row), B 16x8
 *    (col), D 16x8 fp32 ("Matrix Fragments for mma.m16n8k16 with floating point type"). With g = lane >> 2
 *    (groupID) and t = lane % 4 (threadID_in_group), a lane holds
 *      a[0] = A[g][2t, 2t+1]    a[1] = A[g+8][2t, 2t+1]    a[2] = A[g][2t+8, 2t+9]    a[3] = A[g+8][2t+8, 2t+9]
 *      b[0] = B[2t, 2t+1][g]    b[1] = B[2t+8, 2t+9][g]
 *      d[0], d[1] = D[g][2t, 2t+1]                          d[2], d[3] = D[g+8][2t, 2t+1]
 *    each .b32 register two bf16, the lower column (or row, for B) in the low half. So the D fragments of two
 *    adjacent n8 tiles, rounded and packed in pairs (bf16x2(d[0], d[1]), bf16x2(d[2], d[3]) of the left tile, then
 *    of the right), are the A fragment of the 16x16 matrix they form: scores become P V's operand in registers.
 *  ldsm_x4(r, p) / ldsm_x4_t(r, p): ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16. Lane l gives the address p
 *    of row l % 8 of 8x8 matrix l / 8 (16 bytes, 16-byte aligned, shared memory); r[j] gets of matrix j, without
 *    .trans, its row g, columns 2t, 2t+1; with .trans, its column g, rows 2t, 2t+1 (the transpose's row g).
 *  pack_bf16x2(lo, hi): two floats rounded to bf16 (nearest even) in one .b32, lo in the low half.
 *  exp2_ftz(x): 2^x, results below 2^-126 flushed to zero (below).
 *
 * Compiled by nvcc: inline PTX (sm_80+). Compiled by the CPU emulation (tests/gpu/emu, g++): mma_sync_emu.h
 * there implements the same per-lane layouts as warp collectives (exact bf16 products, fp32 accumulation), and
 * aborts on misuse (a lane missing, misaligned or non-shared ldmatrix rows). */
#ifndef SD_MMA_SYNC_CUH
#define SD_MMA_SYNC_CUH
#include <cuda_bf16.h>
#include <stdint.h>
#include <string.h>
#ifndef __CUDACC__
#include <float.h>
#include <math.h>
#endif

#ifdef __CUDACC__
static __device__ __forceinline__ void mma_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
static __device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
static __device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const void *p) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}
#else
#include <mma_sync_emu.h> /* tests/gpu/emu */
#endif

static __device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}
/* 2^x as the attention kernels exponentiate scores: ex2.approx.ftz.f32, one MUFU.EX2. For results of 2^-126 and
 * more it is exp2f's value on the GPU bit for bit (exp2f is that instruction plus a fix-up for subnormal results:
 * a compare and two multiplies per element, ~30% of the backward kernels' per-score work); smaller results are 0
 * (a probability below 2^-126 that exp2f would keep as a subnormal). The CPU emulation: exp2f, flushed likewise. */
#ifdef __CUDACC__
static __device__ __forceinline__ float exp2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
#else
static inline float exp2_ftz(float x) {
    const float y = exp2f(x);
    return y < FLT_MIN ? 0.0f : y; /* NaN stays NaN */
}
#endif
/* the low / high bf16 of a packed pair, as float */
static __device__ __forceinline__ float bf16x2_lo(uint32_t u) {
    const uint32_t x = u << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}
static __device__ __forceinline__ float bf16x2_hi(uint32_t u) {
    const uint32_t x = u & 0xffff0000u;
    float f;
    memcpy(&f, &x, 4);
    return f;
}
#endif
