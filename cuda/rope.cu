/* rope.cu — rotary position embedding in HF "rotate_half" layout, forward and its transpose, in place (and on bf16
 * storage: rope_fwd_b16, rope_bwd_b16).
 * One block per row n (its position read once); threads over (head h, pair i < HD/2). Same fp32 arithmetic as
 * src/cpu/rope.c (up to fused multiply-adds). Where HD/2 is a multiple of the vector width and x is 16-byte
 * aligned (HD 64, 128: always), each thread takes W consecutive pairs in 16-byte accesses (W = 4 fp32, 8 bf16:
 * the 2- and 4-byte accesses left bandwidth unused), the same arithmetic per pair. */
#include "cuda_common.cuh"

enum { ROPE_THREADS = 256 };

/* T: float, or uint16_t for bf16 storage (rope_fwd_b16: each pair widened, rotated in fp32, rounded) */
template <bool INVERSE, class T>
__global__ void rope_k(T *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD) {
    int half = HD / 2, pairs = H * half;
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *c = cos + (size_t)pos[n] * half, *s = sin + (size_t)pos[n] * half;
        for (int j = threadIdx.x; j < pairs; j += ROPE_THREADS) {
            int h = j / half, i = j - h * half;
            T *xh = x + (n * (size_t)H + h) * HD;
            float x1 = cu_load(&xh[i]), x2 = cu_load(&xh[i + half]), ci = c[i], si = s[i];
            if (!INVERSE) { /* (x1, x2) -> (x1 c - x2 s, x2 c + x1 s) */
                cu_store(&xh[i], x1 * ci - x2 * si);
                cu_store(&xh[i + half], x2 * ci + x1 * si);
            } else { /* the transpose: (g1, g2) -> (g1 c + g2 s, g2 c - g1 s) */
                cu_store(&xh[i], x1 * ci + x2 * si);
                cu_store(&xh[i + half], x2 * ci - x1 * si);
            }
        }
    }
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
            float x1[W], x2[W], ci[W], si[W], y1[W], y2[W];
            rope_vload(x1, xh + i);
            rope_vload(x2, xh + i + half);
#pragma unroll
            for (int e = 0; e < W; e += 4) {
                rope_vload(ci + e, c + i + e);
                rope_vload(si + e, s + i + e);
            }
#pragma unroll
            for (int e = 0; e < W; e++) {
                if (!INVERSE) y1[e] = x1[e] * ci[e] - x2[e] * si[e], y2[e] = x2[e] * ci[e] + x1[e] * si[e];
                else y1[e] = x1[e] * ci[e] + x2[e] * si[e], y2[e] = x2[e] * ci[e] - x1[e] * si[e];
            }
            rope_vstore(xh + i, y1);
            rope_vstore(xh + i + half, y2);
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
