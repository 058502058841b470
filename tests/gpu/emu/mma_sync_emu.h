/* mma_sync_emu.h (emulation) — what cuda/mma_sync.cuh compiles to under the CPU emulation (g++, no __CUDACC__):
 * mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (mma_bf16) and ldmatrix.sync.aligned.m8n8.x4(.trans)
 * .shared.b16 (ldsm_x4, ldsm_x4_t), with exactly the per-lane fragment layouts the PTX ISA documents (spelled out
 * in mma_sync.cuh; groupID g = lane >> 2, threadID_in_group t = lane % 4).
 *
 * Model. Every call is warp-collective (emu_warp_collective, emu.cpp): all 32 lanes of the warp live and at the
 * same call, or the emulation aborts naming it.
 *  - mma_bf16: each lane scatters its A (4 x .b32), B (2 x .b32) registers into per-warp 16x16 / 16x8 matrices by
 *    the documented lane -> (row, column) maps, the warp meets, and each lane computes its own four D elements
 *    (rows g, g + 8, columns 2t, 2t + 1) as D + sum over k = 0..15 in order of exact products of the bf16 values,
 *    in fp32 (the GPU's tensor cores also multiply exactly; their addition order and rounding may differ).
 *  - ldsm_x4 / ldsm_x4_t: each lane reads the 16-byte row at its own address first (so a row another lane wrote
 *    without a __syncwarp before the ldmatrix reads as what was there before, as it may on the GPU), publishes it,
 *    the warp meets, and each lane assembles its registers from the published rows: without .trans r[j] = row g
 *    of matrix j (rows = lanes 8j .. 8j + 7), columns 2t, 2t + 1; with .trans, rows 2t, 2t + 1 at column g.
 *    Every address must be 16-byte aligned and inside the block's dynamic shared memory (the emulation knows no
 *    other shared memory), or it aborts.
 * The per-warp buffers are double (alternate calls use alternate halves): a lane may start the next call while
 * others still read the last one, never the one after (the next call's barrier stands between). */
#ifndef EMU_MMA_SYNC_EMU_H
#define EMU_MMA_SYNC_EMU_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cuda_bf16.h"
#include "cuda_runtime.h"
#include "mma.h" /* __syncwarp, emu_linear_tid, emu_warp_collective */

static inline float emu_bf16_bits(uint32_t h16) {
    uint32_t u = h16 << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float emu_mmas_a[32][2][16][16], emu_mmas_b[32][2][16][8]; /* per warp, two buffers */
static unsigned emu_mmas_seq[1024];
static inline void mma_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    const int t = emu_linear_tid(), lane = t & 31, w = t / 32, par = (int)(emu_mmas_seq[t]++ & 1);
    const int g = lane >> 2, tg = lane & 3;
    float(*A)[16] = emu_mmas_a[w][par];
    float(*B)[8] = emu_mmas_b[w][par];
    for (int i = 0; i < 8; i++) { /* a_i: row g (i in 0,1,4,5) or g + 8; column 2t + (i & 1) (+ 8 for i >= 4) */
        const int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8, col = tg * 2 + (i & 1) + (i >= 4 ? 8 : 0);
        A[row][col] = emu_bf16_bits(i & 1 ? a[i / 2] >> 16 : a[i / 2] & 0xffffu);
    }
    for (int i = 0; i < 4; i++) { /* b_i: row 2t + (i & 1) (+ 8 for i >= 2), column g */
        const int row = tg * 2 + (i & 1) + (i >= 2 ? 8 : 0);
        B[row][g] = emu_bf16_bits(i & 1 ? b[i / 2] >> 16 : b[i / 2] & 0xffffu);
    }
    emu_warp_collective(0x6d6d6131ULL + (uint64_t)par * 2, "mma.sync m16n8k16 bf16");
    float out[4];
    for (int i = 0; i < 4; i++) { /* c_i: row g (i < 2) or g + 8, column 2t + (i & 1) */
        const int row = i < 2 ? g : g + 8, col = tg * 2 + (i & 1);
        float s = d[i];
        for (int k = 0; k < 16; k++) s += A[row][k] * B[k][col];
        out[i] = s;
    }
    for (int i = 0; i < 4; i++) d[i] = out[i];
}

static uint16_t emu_ldsm_rows[32][2][32][8]; /* per warp, two buffers: the row each lane addressed */
static unsigned emu_ldsm_seq[1024];
static inline void emu_ldsm(uint32_t r[4], const void *p, bool trans) {
    const int t = emu_linear_tid(), lane = t & 31, w = t / 32, par = (int)(emu_ldsm_seq[t]++ & 1);
    const char *what = trans ? "ldmatrix.x4.trans" : "ldmatrix.x4";
    int smem = 0;
    cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
    const char *base = (const char *)emu_dyn_smem(), *c = (const char *)p;
    if ((uintptr_t)p % 16 != 0 || c < base || c + 16 > base + smem) {
        fprintf(stderr, "emu: %s: lane %d (thread %d): row address %p must be 16-byte aligned and in shared memory\n",
                what, lane, t, p);
        abort();
    }
    memcpy(emu_ldsm_rows[w][par][lane], p, 16); /* read first, then meet the warp */
    emu_warp_collective((trans ? 0x6c64746eULL : 0x6c64736dULL) + (uint64_t)par * 2, what);
    const int g = lane >> 2, tg = lane & 3;
    for (int j = 0; j < 4; j++) {
        uint16_t lo, hi;
        if (!trans) { /* matrix j's row g, columns 2t, 2t + 1 */
            lo = emu_ldsm_rows[w][par][8 * j + g][2 * tg];
            hi = emu_ldsm_rows[w][par][8 * j + g][2 * tg + 1];
        } else { /* matrix j's rows 2t, 2t + 1, column g */
            lo = emu_ldsm_rows[w][par][8 * j + 2 * tg][g];
            hi = emu_ldsm_rows[w][par][8 * j + 2 * tg + 1][g];
        }
        r[j] = (uint32_t)lo | (uint32_t)hi << 16;
    }
}
static inline void ldsm_x4(uint32_t r[4], const void *p) { emu_ldsm(r, p, false); }
static inline void ldsm_x4_t(uint32_t r[4], const void *p) { emu_ldsm(r, p, true); }
#endif
