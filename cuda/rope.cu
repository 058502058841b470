/* rope.cu — rotary position embedding in HF "rotate_half" layout, forward and its transpose, in place (and on bf16
 * storage: rope_fwd_b16, rope_bwd_b16; rope_bwd_pack_b16: the transpose of dq, dk and dv as it is, side by side in
 * one packed tensor, for the q, k, v projections' one backward matmul).
 * One block per row n (its position read once); threads over (head h, pair i < HD/2). Same fp32 arithmetic as
 * src/cpu/rope.c (up to fused multiply-adds). Where HD/2 is a multiple of the vector width and x is 16-byte
 * aligned (HD 64, 128: always), each thread takes W consecutive pairs in 16-byte accesses (W = 4 fp32, 8 bf16:
 * the 2- and 4-byte accesses left bandwidth unused), the same arithmetic per pair. */
#include "cuda_common.cuh"

enum { ROPE_THREADS = 256 };

/* one pair (x1, x2) = (x[i], x[i + HD/2]) rotated, or rotated back (INVERSE: the transpose); every kernel below
 * goes through this one expression (by rope_group), so that rope_bwd_pack_b16's values are rope_bwd_b16's bit for
 * bit */
template <bool INVERSE>
static __device__ __forceinline__ void rope_rotate(float *y1, float *y2, float x1, float x2, float c, float s) {
    if (!INVERSE) *y1 = x1 * c - x2 * s, *y2 = x2 * c + x1 * s; /* (x1, x2) -> (x1 c - x2 s, x2 c + x1 s) */
    else *y1 = x1 * c + x2 * s, *y2 = x2 * c - x1 * s;          /* the transpose */
}

/* W values of x from p in one 16-byte access: 4 fp32, or 8 bf16 widened */
static __device__ __forceinline__ void rope_vload(float *f, const float *p) {
    const float4 v = *(const float4 *)p;
    f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
}
static __device__ __forceinline__ void rope_vload(float *f, const uint16_t *p) { bf16x8_load(f, p); }
static __device__ __forceinline__ void rope_vstore(float *p, const float *f) {
    *(float4 *)p = float4{f[0], f[1], f[2], f[3]};
}
static __device__ __forceinline__ void rope_vstore(uint16_t *p, const float *f) { bf16x8_store(p, f); }

/* pairs i .. i + W - 1 of one head: read from xh (W = 1: one pair; else one 16-byte access per half, W = 4 fp32 or 8
 * bf16, HD/2 a multiple of W, 16-byte aligned), rotated (rope_rotate), written to yh (may be xh: in place) */
template <bool INVERSE, int W, class T>
static __device__ __forceinline__ void rope_group(T *yh, const T *xh, const float *c, const float *s, int i, int half) {
    float x1[W], x2[W], ci[W], si[W], y1[W], y2[W];
    if constexpr (W == 1) {
        x1[0] = cu_load(&xh[i]), x2[0] = cu_load(&xh[i + half]), ci[0] = c[i], si[0] = s[i];
    } else {
        rope_vload(x1, xh + i);
        rope_vload(x2, xh + i + half);
#pragma unroll
        for (int e = 0; e < W; e += 4) {
            rope_vload(ci + e, c + i + e);
            rope_vload(si + e, s + i + e);
        }
    }
#pragma unroll
    for (int e = 0; e < W; e++) rope_rotate<INVERSE>(&y1[e], &y2[e], x1[e], x2[e], ci[e], si[e]);
    if constexpr (W == 1) {
        cu_store(&yh[i], y1[0]), cu_store(&yh[i + half], y2[0]);
    } else {
        rope_vstore(yh + i, y1);
        rope_vstore(yh + i + half, y2);
    }
}

/* T: float, or uint16_t for bf16 storage (rope_fwd_b16: each pair widened, rotated in fp32, rounded) */
template <bool INVERSE, class T>
__global__ void rope_k(T *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    int half = HD / 2, pairs = H * half;
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *c = cos + (size_t)pos[n] * half, *s = sin + (size_t)pos[n] * half;
        for (int j = threadIdx.x; j < pairs; j += ROPE_THREADS) {
            int h = j / half, i = j - h * half;
            T *xh = x + (n * (size_t)H + h) * HD;
            rope_group<INVERSE, 1>(xh, xh, c, s, i, half);
        }
    }
}

/* rope_k with W consecutive pairs per thread (HD/2 a multiple of W, x 16-byte aligned, cos / sin rows 16-byte
 * aligned: W = 16 / sizeof(T)) */
template <bool INVERSE, class T>
__global__ void rope_vec_k(T *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    constexpr int W = 16 / sizeof(T);
    const int half = HD / 2, groups = half / W, total = H * groups;
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *c = cos + (size_t)pos[n] * half, *s = sin + (size_t)pos[n] * half;
        for (int j = threadIdx.x; j < total; j += ROPE_THREADS) {
            const int h = j / groups, i = (j - h * groups) * W;
            T *xh = x + (n * (size_t)H + h) * HD;
            rope_group<INVERSE, W>(xh, xh, c, s, i, half);
        }
    }
}

/* rope_k (or rope_vec_k where it applies) over N rows on the backend's stream; `what` names the op in messages */
template <bool INVERSE, class T>
static void rope_launch(T *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD,
                        const char *what) {
    if (!N || H <= 0 || HD < 2) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    constexpr int W = 16 / sizeof(T);
    if ((HD / 2) % W == 0 && HD % 2 == 0 && cu_aligned16(x, cos, sin, x, x))
        rope_vec_k<INVERSE, T><<<grid, ROPE_THREADS, 0, cu_stream()>>>(x, pos, cos, sin, N, H, HD);
    else rope_k<INVERSE, T><<<grid, ROPE_THREADS, 0, cu_stream()>>>(x, pos, cos, sin, N, H, HD);
    CUDA_LAUNCH_CHECK(what);
}

/* rope_bwd_pack_b16 (backend.h): one block per row; its work items are the q and k heads' groups of W pairs,
 * rotated back (rope_rotate<true>: rope_bwd_b16's values) from dq, dk into the packed row, and its v in chunks of W
 * copied as they are. W = 8: 16-byte accesses (HD / 2 a multiple of 8, every pointer 16-byte aligned); W = 1. */
template <int W>
__global__ void rope_pack_k(uint16_t *y, const uint16_t *q, const uint16_t *k, const uint16_t *v, const int *pos,
                            const float *cos, const float *sin, size_t N, int NH, int NKV, int HD) {
    const int half = HD / 2, groups = half / W, tq = NH * groups, tk = tq + NKV * groups, tv = tk + NKV * HD / W;
    const size_t qd = (size_t)NH * HD, kd = (size_t)NKV * HD, ld = qd + 2 * kd;
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *c = cos + (size_t)pos[n] * half, *s = sin + (size_t)pos[n] * half;
        uint16_t *yr = y + n * ld;
        for (int j = threadIdx.x; j < tv; j += ROPE_THREADS) {
            if (j >= tk) { /* v's elements e .. e + W - 1 */
                const size_t e = (size_t)(j - tk) * W;
                if constexpr (W == 8) *(uint4 *)(yr + qd + kd + e) = *(const uint4 *)(v + n * kd + e);
                else yr[qd + kd + e] = v[n * kd + e];
                continue;
            }
            const bool isq = j < tq;
            const int jj = isq ? j : j - tq, h = jj / groups, i = (jj - h * groups) * W;
            const uint16_t *xh = (isq ? q + n * qd : k + n * kd) + (size_t)h * HD;
            rope_group<true, W>(yr + (isq ? 0 : qd) + (size_t)h * HD, xh, c, s, i, half);
        }
    }
}
void cuda_rope_bwd_pack_b16(uint16_t *dqkv, const uint16_t *dq, const uint16_t *dk, const uint16_t *dv,
                            const int *pos, const float *cos, const float *sin, size_t N, int NH, int NKV, int HD) {
    if (!N || NH <= 0 || NKV < 0 || HD < 2 || HD % 2) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    if ((HD / 2) % 8 == 0 && cu_aligned16(dqkv, dq, dk, dv, cos) && cu_aligned16(sin, sin, sin, sin, sin))
        rope_pack_k<8><<<grid, ROPE_THREADS, 0, cu_stream()>>>(dqkv, dq, dk, dv, pos, cos, sin, N, NH, NKV, HD);
    else rope_pack_k<1><<<grid, ROPE_THREADS, 0, cu_stream()>>>(dqkv, dq, dk, dv, pos, cos, sin, N, NH, NKV, HD);
    CUDA_LAUNCH_CHECK("rope_bwd_pack_b16");
}

void cuda_rope_fwd(float *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    rope_launch<false>(x, pos, cos, sin, N, H, HD, "rope_fwd");
}
void cuda_rope_bwd(float *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    rope_launch<true>(dx, pos, cos, sin, N, H, HD, "rope_bwd");
}
void cuda_rope_fwd_b16(uint16_t *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    rope_launch<false>(x, pos, cos, sin, N, H, HD, "rope_fwd_b16");
}
void cuda_rope_bwd_b16(uint16_t *dx, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    rope_launch<true>(dx, pos, cos, sin, N, H, HD, "rope_bwd_b16");
}
