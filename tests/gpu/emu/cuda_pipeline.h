/* cuda_pipeline.h (emulation) — the cp.async primitives attention_tc2.cu uses: __pipeline_memcpy_async (4, 8 or
 * 16 bytes, global to shared, optional zero fill of the last zfill bytes), __pipeline_commit, __pipeline_wait_prior.
 *
 * Model: as late as the GPU allows. At issue the destination is filled with 0xff bytes (NaN as bf16 and as fp32) and
 * the copy is queued on the issuing thread; it lands (the source is read then) only when that thread waits for its
 * group: __pipeline_wait_prior(n) completes every committed group but the newest n, in order. So code that reads a
 * destination before its copy was waited for (by the issuer) and published (__syncthreads), or that issues a copy
 * into a buffer other threads still read (reuse without a barrier), reads NaN or stale data whenever the emulation's
 * fixed thread order puts the read after the issue. Sizes other than 4 / 8 / 16, pointers not aligned to the size
 * and zfill > size abort, as does a queue longer than EMU_CP_MAX copies per thread. Copies a thread never waited
 * for are dropped when a new block starts (emu_block_serial, emu.cpp). */
#ifndef EMU_CUDA_PIPELINE_H
#define EMU_CUDA_PIPELINE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cuda_runtime.h"

unsigned long emu_block_serial(void); /* emu.cpp: the number of blocks started so far */

struct EmuCp {
    void *dst;
    const void *src;
    unsigned size, zfill;
    unsigned long group; /* the commit count when issued: the group it belongs to */
};
enum { EMU_CP_THREADS = 1024, EMU_CP_MAX = 256 };
static EmuCp emu_cp_q[EMU_CP_THREADS][EMU_CP_MAX];
static unsigned emu_cp_n[EMU_CP_THREADS];
static unsigned long emu_cp_commits[EMU_CP_THREADS], emu_cp_block[EMU_CP_THREADS];

/* this thread's queue, emptied if it belongs to an earlier block */
static inline int emu_cp_thread(void) {
    int t = (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    unsigned long b = emu_block_serial();
    if (emu_cp_block[t] != b) {
        emu_cp_block[t] = b;
        emu_cp_n[t] = 0;
        emu_cp_commits[t] = 0;
    }
    return t;
}

static inline void __pipeline_memcpy_async(void *dst, const void *src, size_t size, size_t zfill = 0) {
    if ((size != 4 && size != 8 && size != 16) || zfill > size || (uintptr_t)dst % size || (uintptr_t)src % size) {
        fprintf(stderr, "emu: __pipeline_memcpy_async(%p, %p, %zu, %zu): size must be 4, 8 or 16, both pointers "
                "aligned to it, zfill <= size\n", dst, src, size, zfill);
        abort();
    }
    int t = emu_cp_thread();
    if (emu_cp_n[t] == EMU_CP_MAX) {
        fprintf(stderr, "emu: __pipeline_memcpy_async: more than %d copies pending in one thread\n", EMU_CP_MAX);
        abort();
    }
    EmuCp c = {dst, src, (unsigned)size, (unsigned)zfill, emu_cp_commits[t]};
    emu_cp_q[t][emu_cp_n[t]++] = c;
    memset(dst, 0xff, size); /* in flight: garbage until waited for */
}
static inline void __pipeline_commit(void) { emu_cp_commits[emu_cp_thread()]++; }
static inline void __pipeline_wait_prior(size_t prior) {
    int t = emu_cp_thread();
    unsigned keep = 0;
    for (unsigned i = 0; i < emu_cp_n[t]; i++) {
        EmuCp c = emu_cp_q[t][i];
        if (c.group + prior < emu_cp_commits[t]) { /* committed, and not among the newest `prior` groups */
            memcpy(c.dst, c.src, c.size - c.zfill);
            memset((char *)c.dst + (c.size - c.zfill), 0, c.zfill);
        } else {
            emu_cp_q[t][keep++] = c;
        }
    }
    emu_cp_n[t] = keep;
}
#endif
