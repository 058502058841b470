/* rope.cu — rotary position embedding in HF "rotate_half" layout, forward and its transpose, in place (and on bf16
 * storage: rope_fwd_b16, rope_bwd_b16).
 * One block per row n (its position read once); threads over (head h, pair i < HD/2). Same fp32 arithmetic as
 * src/cpu/rope.c (up to fused multiply-adds). */
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

/* rope_k over N rows on the backend's stream; `what` names the op in messages */
template <bool INVERSE, class T>
static void rope_launch(T *x, const int *pos, const float *cos, const float *sin, size_t N, int H, int HD,
                        const char *what) {
    if (!N || H <= 0 || HD < 2) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    rope_k<INVERSE, T><<<grid, ROPE_THREADS, 0, cu_stream()>>>(x, pos, cos, sin, N, H, HD);
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
