/* mma.h (emulation) — the nvcuda::wmma subset the .cu files of cuda/ use (attention_tc.cu): 16x16x16 fragments
 * of __nv_bfloat16 (matrix_a, matrix_b; row_major or col_major) and float accumulators; load_matrix_sync,
 * store_matrix_sync, mma_sync, fill_fragment. Also __syncwarp, which only wmma code needs so far.
 *
 * Model. As on the GPU, a fragment is spread over the warp's 32 lanes: lane L holds the 8 elements
 * e = L + 32 i (i = 0..7) of the fragment's 16x16 matrix, element e at (row e / 16, column e % 16). (The GPU's
 * mapping is different and undocumented; code must not depend on it, so num_elements and x[] are left out: a
 * kernel that uses them does not compile here.) load_matrix_sync reads the lane's own elements, store writes
 * them, mma_sync publishes the operands' elements to a per-warp buffer and computes the lane's elements of
 * D = A B + C with exact products of the bf16 values and fp32 accumulation (k in order).
 * Every call is warp-collective: all 32 lanes of the warp must be live and make the same call (same operation,
 * pointer, ldm and layout) at the same time, or the emulation aborts naming it (emu_warp_collective, emu.cpp).
 * The warp barrier sits where it makes missing synchronisation visible: a load reads first and then waits, a
 * store waits and then writes, so plain code that writes a tile and wmma-loads it without __syncwarp in between,
 * or reads what a wmma store wrote without __syncwarp, sees another lane's elements not yet written (the lanes
 * run one after another between barriers). Pointers must be 32-byte aligned and ldm a multiple of 16 bytes,
 * as the GPU requires; violations abort. */
#ifndef EMU_MMA_H
#define EMU_MMA_H
#include <stdio.h>
#include <stdlib.h>
#include "cuda_bf16.h"
#include "cuda_runtime.h"

/* emu.cpp: the warp barrier of a warp-collective operation; aborts unless all 32 lanes make it with the same tag */
void emu_warp_collective(uint64_t tag, const char *what);

static inline int emu_linear_tid(void) {
    return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
}
/* __syncwarp() (full mask only): a barrier of the warp's 32 lanes */
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) {
        fprintf(stderr, "emu: __syncwarp with a partial mask is not emulated\n");
        abort();
    }
    emu_warp_collective(0x53796e63ULL, "__syncwarp");
}

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class T> struct emu_is_bf16 { static const bool value = false; };
template <class T> struct emu_is_float { static const bool value = false; };
template <> struct emu_is_float<float> { static const bool value = true; };
template <> struct emu_is_bf16<__nv_bfloat16> { static const bool value = true; };
template <class U> struct emu_use_id;
template <> struct emu_use_id<matrix_a> { static const int value = 1; };
template <> struct emu_use_id<matrix_b> { static const int value = 2; };
template <> struct emu_use_id<accumulator> { static const int value = 3; };
template <class L> struct emu_layout_id { static const int value = 0; };
template <> struct emu_layout_id<col_major> { static const int value = 1; };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "emulated wmma: 16x16x16 fragments only");
    static_assert(emu_use_id<Use>::value == 3 ? emu_is_float<T>::value : emu_is_bf16<T>::value,
                  "emulated wmma: matrix_a / matrix_b of __nv_bfloat16, accumulator of float");
    float emu_v[8]; /* this lane's elements (bf16 values held exactly as floats) */
};

static inline uint64_t emu_tag(int op, const void *p, unsigned ldm, int layout) {
    uint64_t h = (uint64_t)op * 0x9e3779b97f4a7c15ULL;
    h = (h ^ (uint64_t)(uintptr_t)p) * 0xff51afd7ed558ccdULL;
    h = (h ^ ldm) * 0xc4ceb9fe1a85ec53ULL;
    h ^= (uint64_t)layout << 7;
    return h | 1;
}
static inline void emu_check_ptr(const void *p, unsigned ldm, size_t esize, const char *what) {
    if ((uintptr_t)p % 32 != 0 || (ldm * esize) % 16 != 0 || ldm < 16) {
        fprintf(stderr, "emu: %s: pointer %p must be 32-byte aligned and ldm %u a multiple of 16 bytes (>= 16 elements)\n",
                what, p, ldm);
        abort();
    }
}
/* the offset of element e of the lane's share, for a row-major (col_major = false) or column-major matrix */
static inline size_t emu_off(int e, unsigned ldm, bool col_major) {
    int r = e / 16, c = e % 16;
    return col_major ? (size_t)c * ldm + r : (size_t)r * ldm + c;
}

template <class Use, class Layout>
static inline void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout> &f, const __nv_bfloat16 *p,
                                    unsigned ldm) {
    static_assert(emu_use_id<Use>::value != 3, "emulated wmma: bf16 accumulators are not supported");
    emu_check_ptr(p, ldm, 2, "wmma::load_matrix_sync");
    int lane = emu_lane();
    bool cm = emu_layout_id<Layout>::value == 1;
    for (int i = 0; i < 8; i++) f.emu_v[i] = __bfloat162float(p[emu_off(lane + 32 * i, ldm, cm)]);
    emu_warp_collective(emu_tag(emu_use_id<Use>::value, p, ldm, cm), "wmma::load_matrix_sync");
}
static inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm,
                                    layout_t layout) {
    emu_check_ptr(p, ldm, 4, "wmma::load_matrix_sync (accumulator)");
    int lane = emu_lane();
    for (int i = 0; i < 8; i++) f.emu_v[i] = p[emu_off(lane + 32 * i, ldm, layout == mem_col_major)];
    emu_warp_collective(emu_tag(3, p, ldm, layout), "wmma::load_matrix_sync (accumulator)");
}
static inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                                     layout_t layout) {
    emu_check_ptr(p, ldm, 4, "wmma::store_matrix_sync");
    emu_warp_collective(emu_tag(4, p, ldm, layout), "wmma::store_matrix_sync");
    int lane = emu_lane();
    for (int i = 0; i < 8; i++) p[emu_off(lane + 32 * i, ldm, layout == mem_col_major)] = f.emu_v[i];
}
template <class Use, class T, class Layout>
static inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout> &f, float v) {
    if (emu_use_id<Use>::value != 3) v = __bfloat162float(__float2bfloat16_rn(v));
    for (int i = 0; i < 8; i++) f.emu_v[i] = v;
}

/* per warp, two buffers (used alternately: a lane can start the next mma while others still read the last) of
 * the A and B operands */
static float emu_mma_ab[32][2][2][256];
static unsigned emu_mma_seq[1024];
template <class LA, class LB>
static inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                            const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                            const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                            const fragment<accumulator, 16, 16, 16, float> &c) {
    int t = emu_linear_tid(), lane = t & 31, par = (int)(emu_mma_seq[t]++ & 1);
    float *A = emu_mma_ab[t / 32][par][0], *B = emu_mma_ab[t / 32][par][1];
    for (int i = 0; i < 8; i++) {
        A[lane + 32 * i] = a.emu_v[i];
        B[lane + 32 * i] = b.emu_v[i];
    }
    emu_warp_collective(emu_tag(5, NULL, 0, par), "wmma::mma_sync");
    float out[8];
    for (int i = 0; i < 8; i++) {
        int e = lane + 32 * i, r = e / 16, col = e % 16;
        float s = c.emu_v[i];
        for (int k = 0; k < 16; k++) s += A[r * 16 + k] * B[k * 16 + col];
        out[i] = s;
    }
    for (int i = 0; i < 8; i++) d.emu_v[i] = out[i];
}
} // namespace wmma
} // namespace nvcuda
#endif
