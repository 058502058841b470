/* emu.cpp — the CPU emulation of the CUDA runtime subset in cuda_runtime.h / cublas_v2.h / cublasLt.h (this directory).
 *
 * A launch runs the grid's blocks one after another. The threads of a block are coroutines on one OS thread
 * (a hand-written x86-64 context switch: no syscalls), resumed round-robin; a thread runs until it waits at a
 * barrier. __syncthreads waits for every live thread of the block; a warp collective (shuffle, ballot) is
 * "write my value, wait for the warp, read, wait for the warp". Threads that return count as arrived, as on
 * sm_70+. A round in which every live thread only re-checks an unreleased barrier is a deadlock (a barrier
 * under divergent control flow) and aborts. Dynamic shared memory is filled with NaNs before every block, so a
 * read before the block wrote it shows in the results. Launch configurations are checked against sm_90 limits.
 * Device memory is guarded: every cudaMalloc is its own mapping, kept PROT_NONE except while an emulated device
 * operation (kernel, memcpy, memset, GEMM) runs, so host code that dereferences a device pointer (a model that is
 * not backend-clean, a test reading device memory) dies with SIGSEGV, as it would on a GPU. EMU_GUARD=0 turns
 * the guard off. wmma (mma.h) and __syncwarp are warp collectives checked by emu_warp_collective: all 32 lanes
 * live, the same call with the same arguments, or abort. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <vector>
#include "cublasLt.h"
#include "cublas_v2.h"
#include "cuda_runtime.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* ---- coroutines ---- */
extern "C" void emu_ctx_switch(void **save_sp, void *new_sp);
asm(R"(
.text
.globl emu_ctx_switch
.type emu_ctx_switch,@function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
)");

enum { MAX_THREADS = 1024, STACK = 128 * 1024, SMEM_OPTIN = 232448 };
struct Co {
    void *sp;
    bool done;
    uint3 tid;
};
struct Bar {
    int arrived, live;
    unsigned gen;
};
static Co g_co[MAX_THREADS];
static char *g_stacks;
static int g_n, g_cur;
static void *g_sched_sp;
static void (*g_invoke)(void *);
static void *g_arg;
static Bar g_block, g_warp[MAX_THREADS / 32];
static uint64_t g_slot[MAX_THREADS];
static long g_stall;
static char *g_smem;
static cudaError_t g_last = cudaSuccess;

static void dev_open(void);
static void dev_close(void);
static void yield(void) { emu_ctx_switch(&g_co[g_cur].sp, g_sched_sp); }

static void release(Bar *b) {
    b->arrived = 0;
    b->gen++;
    g_stall = 0;
}
static void wait_at(Bar *b) {
    unsigned gen = b->gen;
    if (++b->arrived == b->live) {
        release(b);
        return;
    }
    while (b->gen == gen) {
        if (++g_stall > 4L * g_n + 64) {
            fprintf(stderr, "emu: deadlock: block (%u,%u,%u) thread %d waits at a barrier no other thread reaches\n",
                    blockIdx.x, blockIdx.y, blockIdx.z, g_cur);
            abort();
        }
        yield();
    }
}
static int linear_tid(void) { return g_cur; }

static void trampoline(void) {
    g_invoke(g_arg);
    g_co[g_cur].done = true;
    g_stall = 0;
    Bar *w = &g_warp[linear_tid() / 32];
    g_block.live--;
    w->live--;
    if (g_block.arrived && g_block.arrived == g_block.live) release(&g_block);
    if (w->arrived && w->arrived == w->live) release(w);
    yield();
    abort(); /* never resumed */
}

void __syncthreads(void) { wait_at(&g_block); }
uint64_t emu_warp_exchange(uint64_t v, int src) {
    int t = linear_tid(), w0 = t & ~31;
    Bar *w = &g_warp[t / 32];
    g_slot[t] = v;
    wait_at(w);
    uint64_t r = g_slot[w0 + src];
    wait_at(w);
    return r;
}
unsigned emu_warp_ballot(int pred) {
    int t = linear_tid(), w0 = t & ~31;
    Bar *w = &g_warp[t / 32];
    g_slot[t] = pred != 0;
    wait_at(w);
    unsigned r = 0;
    for (int l = 0; l < 32 && w0 + l < g_n; l++)
        if (g_slot[w0 + l]) r |= 1u << l;
    wait_at(w);
    return r;
}
/* The barrier of a warp-collective operation (wmma, __syncwarp: mma.h): every one of the warp's 32 lanes must
 * be live and make it with the same tag (the operation and its arguments). The last lane to arrive, while all the
 * others wait, compares the tags and consumes them; a lane released by a barrier that was not this operation's
 * (lanes of the warp at different collectives) finds its tag unconsumed. Either way: abort, naming it. */
static uint64_t g_tag[MAX_THREADS];
void emu_warp_collective(uint64_t tag, const char *what) {
    int t = linear_tid(), w0 = t & ~31;
    Bar *w = &g_warp[t / 32];
    if (g_n - w0 < 32 || w->live != 32) {
        fprintf(stderr, "emu: %s: block (%u,%u,%u) thread %d: the warp has %d live lanes; all 32 must take part\n",
                what, blockIdx.x, blockIdx.y, blockIdx.z, t, g_n - w0 < 32 ? g_n - w0 : w->live);
        abort();
    }
    g_tag[t] = tag;
    if (w->arrived + 1 == w->live) {
        for (int l = 0; l < 32; l++)
            if (g_tag[w0 + l] != tag) {
                fprintf(stderr, "emu: %s: block (%u,%u,%u) warp %d: lane-divergent warp-wide operation (lane %d is "
                        "not at this call, or at it with other arguments)\n", what, blockIdx.x, blockIdx.y, blockIdx.z,
                        t / 32, l);
                abort();
            }
        for (int l = 0; l < 32; l++) g_tag[w0 + l] = 0;
    }
    wait_at(w);
    if (g_tag[t] != 0) {
        fprintf(stderr, "emu: %s: block (%u,%u,%u) thread %d: lane-divergent warp-wide operation (the warp's other "
                "lanes were released from a different barrier)\n", what, blockIdx.x, blockIdx.y, blockIdx.z, t);
        abort();
    }
}
void *emu_dyn_smem(void) { return g_smem; }
/* the number of blocks started so far (cuda_pipeline.h drops copies left pending by an earlier block) */
static unsigned long g_block_serial;
unsigned long emu_block_serial(void) { return g_block_serial; }

void emu_run(EmuCfg c, void (*invoke)(void *), void *arg) {
    unsigned nt = c.block.x * c.block.y * c.block.z;
    if (nt == 0 || nt > MAX_THREADS || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
        c.grid.x > 2147483647u || c.grid.y > 65535 || c.grid.z > 65535 || c.smem > SMEM_OPTIN) {
        fprintf(stderr, "emu: invalid launch: grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", c.grid.x, c.grid.y,
                c.grid.z, c.block.x, c.block.y, c.block.z, c.smem);
        g_last = cudaErrorInvalidConfiguration;
        return;
    }
    if (!g_stacks) g_stacks = (char *)malloc((size_t)MAX_THREADS * STACK);
    if (!g_smem) g_smem = (char *)aligned_alloc(1024, SMEM_OPTIN); /* wmma needs 32 bytes; kernels declare it __align__(128) */
    dev_open();
    g_invoke = invoke;
    g_arg = arg;
    blockDim = c.block;
    gridDim = c.grid;
    g_n = (int)nt;
    for (unsigned bz = 0; bz < c.grid.z; bz++)
        for (unsigned by = 0; by < c.grid.y; by++)
            for (unsigned bx = 0; bx < c.grid.x; bx++) {
                blockIdx.x = bx, blockIdx.y = by, blockIdx.z = bz;
                g_block_serial++;
                float nan = __builtin_nanf("");
                for (size_t i = 0; i < c.smem / 4; i++) memcpy(g_smem + 4 * i, &nan, 4);
                g_block.arrived = 0, g_block.live = g_n, g_block.gen = 0;
                for (int w = 0; w < (g_n + 31) / 32; w++)
                    g_warp[w].arrived = 0, g_warp[w].live = g_n - 32 * w < 32 ? g_n - 32 * w : 32, g_warp[w].gen = 0;
                for (int t = 0; t < g_n; t++) {
                    Co *co = &g_co[t];
                    co->done = false;
                    co->tid.x = t % c.block.x;
                    co->tid.y = (t / c.block.x) % c.block.y;
                    co->tid.z = t / (c.block.x * c.block.y);
                    uintptr_t top = ((uintptr_t)(g_stacks + (size_t)(t + 1) * STACK)) & ~(uintptr_t)15;
                    void **sp = (void **)top;
                    *--sp = 0;                      /* fake return address of trampoline */
                    *--sp = (void *)trampoline;     /* popped by ret */
                    for (int r = 0; r < 6; r++) *--sp = 0; /* rbp rbx r12-r15 */
                    co->sp = sp;
                }
                g_stall = 0;
                for (int left = g_n; left > 0;) {
                    left = 0;
                    for (g_cur = 0; g_cur < g_n; g_cur++) {
                        if (g_co[g_cur].done) continue;
                        threadIdx = g_co[g_cur].tid;
                        emu_ctx_switch(&g_sched_sp, g_co[g_cur].sp);
                        left += !g_co[g_cur].done;
                    }
                }
            }
    dev_close();
}

/* ---- guarded device memory ---- */
struct Mapping {
    void *p;
    size_t len;
};
static Mapping *g_maps;
static size_t g_nmaps, g_capmaps;
static int g_guard = -1, g_open = 0;
static bool guard_on(void) {
    if (g_guard < 0) {
        const char *e = getenv("EMU_GUARD");
        g_guard = !(e && strcmp(e, "0") == 0);
    }
    return g_guard;
}
static void protect_all(int prot) {
    for (size_t i = 0; i < g_nmaps; i++)
        if (mprotect(g_maps[i].p, g_maps[i].len, prot) != 0) {
            perror("emu: mprotect");
            abort();
        }
}
/* device memory readable and writable while a device operation runs (calls nest) */
static void dev_open(void) {
    if (guard_on() && g_open++ == 0) protect_all(PROT_READ | PROT_WRITE);
}
static void dev_close(void) {
    if (guard_on() && --g_open == 0) protect_all(PROT_NONE);
}
static void *dev_map(size_t bytes) {
    size_t len = (bytes + 4095) / 4096 * 4096;
    void *p = mmap(NULL, len ? len : 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    memset(p, 0xA5, bytes); /* fresh device memory is garbage, not zeros: alloc's own zeroing is then tested */
    if (guard_on() && !g_open) mprotect(p, len ? len : 4096, PROT_NONE);
    if (g_nmaps == g_capmaps) {
        g_capmaps = g_capmaps ? 2 * g_capmaps : 256;
        g_maps = (Mapping *)realloc(g_maps, g_capmaps * sizeof *g_maps);
    }
    g_maps[g_nmaps].p = p;
    g_maps[g_nmaps].len = len ? len : 4096;
    g_nmaps++;
    return p;
}
static int dev_unmap(void *p) {
    for (size_t i = 0; i < g_nmaps; i++)
        if (g_maps[i].p == p) {
            munmap(p, g_maps[i].len);
            g_maps[i] = g_maps[--g_nmaps];
            return 0;
        }
    return -1;
}

/* ---- runtime API ---- */
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated CUDA error"; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    memset(p, 0, sizeof *p);
    strcpy(p->name, "CPU emulation of CUDA");
    p->major = 9, p->minor = 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
    *v = SMEM_OPTIN;
    return cudaSuccess;
}
/* streams (cuda_runtime.h emu_lazy): an eager one runs its work when queued; a lazy one (the least priority) keeps
 * it, in order, until something waits for it. Streams and events live until the process ends. */
struct EmuStream {
    bool lazy;
    std::vector<std::function<void()>> q; /* queued work; q[done - base..] not run yet */
    size_t enq, done;                     /* work items queued / run so far */
};
struct EmuEvent {
    EmuStream *s; /* the lazy stream it was recorded on, or NULL (an eager stream's work is done) */
    size_t upto;  /* that stream's enq at the record */
    double t;     /* seconds, host clock: when the work before the record was done */
};
/* the clock events read (cuda_runtime.h): seconds that only the emulated GEMMs advance, by a cost model, so that
 * timings (matmul.cu's tune path) come out the same on every run and machine */
static double g_emu_clock;
static double emu_now(void) { return g_emu_clock; }
static std::vector<EmuStream *> g_lazy;
static void stream_run(EmuStream *s, size_t upto) {
    while (s->done < upto) {
        std::function<void()> fn = std::move(s->q[s->done - (s->enq - s->q.size())]);
        s->done++;
        fn();
    }
    if (s->done == s->enq) s->q.clear();
}
bool emu_lazy(cudaStream_t s) { return s && ((EmuStream *)s)->lazy; }
void emu_defer(cudaStream_t st, std::function<void()> fn) {
    EmuStream *s = (EmuStream *)st;
    s->q.push_back(std::move(fn));
    s->enq++;
}
static cudaStream_t stream_new(bool lazy) {
    EmuStream *s = new EmuStream();
    s->lazy = lazy;
    if (lazy) g_lazy.push_back(s);
    return s;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    *s = stream_new(false);
    return cudaSuccess;
}
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
    *least = 0, *greatest = -5;
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int priority) {
    if (priority > 0 || priority < -5) return cudaErrorInvalidValue;
    *s = stream_new(priority == 0);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (emu_lazy(s)) stream_run((EmuStream *)s, ((EmuStream *)s)->enq);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    for (EmuStream *s : g_lazy) stream_run(s, s->enq);
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    *e = new EmuEvent();
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete (EmuEvent *)e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    EmuEvent *ev = (EmuEvent *)e;
    ev->s = emu_lazy(s) ? (EmuStream *)s : NULL;
    ev->t = emu_now();
    if (ev->s) emu_defer(s, [ev]() { ev->t = emu_now(); }); /* timed when the lazy queue gets there */
    ev->upto = ev->s ? ev->s->enq : 0;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    EmuEvent *ev = (EmuEvent *)e;
    if (ev->s) stream_run(ev->s, ev->upto);
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    *ms = (float)((((EmuEvent *)end)->t - ((EmuEvent *)start)->t) * 1e3);
    return cudaSuccess;
}
/* a lazy stream waiting for an eager one's event has nothing to wait for (that work is done); any stream waiting
 * for a lazy one's runs the lazy queue up to the record (the waiting stream's later work comes after it) */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    EmuEvent *ev = (EmuEvent *)e;
    if (ev->s) stream_run(ev->s, ev->upto);
    return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *p, int d) {
    *p = (void *)1;
    return cudaSuccess;
}
cudaError_t cudaMemPoolCreate(cudaMemPool_t *p, const cudaMemPoolProps *props) {
    if (props->allocType != cudaMemAllocationTypePinned || props->location.type != cudaMemLocationTypeDevice ||
        props->location.id != 0)
        return cudaErrorInvalidValue;
    *p = (void *)2;
    return cudaSuccess;
}
cudaError_t cudaMallocFromPoolAsync(void **p, size_t bytes, cudaMemPool_t pool, cudaStream_t s) {
    return cudaMallocAsync(p, bytes, s);
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t p, cudaMemPoolAttr a, void *v) { return cudaSuccess; }
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t p, cudaMemPoolAttr a, void *v) {
    *(uint64_t *)v = 0; /* the emulation keeps no pool statistics */
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = dev_map(bytes);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    return dev_unmap(p) == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    *fr = *tot = (size_t)80 << 30;
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s) {
    if (emu_lazy(s)) {
        emu_defer(s, [=]() { cudaMemsetAsync(p, v, bytes, 0); });
        return cudaSuccess;
    }
    dev_open();
    memset(p, v, bytes);
    dev_close();
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t bytes, cudaMemcpyKind k, cudaStream_t st) {
    if (emu_lazy(st)) {
        emu_defer(st, [=]() { cudaMemcpyAsync(d, s, bytes, k, 0); });
        return cudaSuccess;
    }
    const char *a = (const char *)d, *b = (const char *)s;
    if (a < b + bytes && b < a + bytes && d != s) {
        fprintf(stderr, "emu: cudaMemcpyAsync with overlapping ranges (undefined in CUDA)\n");
        abort();
    }
    dev_open();
    memcpy(d, s, bytes);
    dev_close();
    return cudaSuccess;
}
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t s) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
    if (emu_lazy(s)) {
        emu_defer(s, [=]() { cudaFree(p); });
        return cudaSuccess;
    }
    return cudaFree(p);
}
cudaError_t cudaFuncSetAttribute(const void *f, cudaFuncAttribute a, int v) {
    return v <= SMEM_OPTIN ? cudaSuccess : cudaErrorInvalidValue;
}

/* ---- cuBLAS ---- */
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (void *)1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) { return CUBLAS_STATUS_SUCCESS; }
/* the workspace must be device memory of at least `bytes` (cuBLAS wants 256-byte alignment); the emulated GEMM
 * needs none */
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *workspace, size_t bytes) {
    if (!h || (bytes && !workspace) || (uintptr_t)workspace % 256) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) { return s ? "CUBLAS_STATUS_INVALID_VALUE" : "success"; }
/* column-major D[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C (D may be C): the product of cublasGemmEx and
 * cublasLtMatmul. bf16 operands are widened exactly; round_in rounds fp32 operands to bf16 first (nearest even), so
 * every product is exact in fp32; sums in k order. The caller has opened device memory (dev_open). */
static void emu_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float al, const void *A_,
                     cudaDataType at, long lda, const void *B_, cudaDataType bt, long ldb, float be, const void *C,
                     long ldc, void *D, long ldd, bool round_in, cudaDataType ct = CUDA_R_32F, bool split = false) {
    auto el = [round_in](const void *M, cudaDataType t, size_t p) {
        if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)M)[p]);
        float x = ((const float *)M)[p];
        return round_in ? __bfloat162float(__float2bfloat16_rn(x)) : x;
    };
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f, s2 = 0.0f; /* split: the second half of k summed apart (a split-K kernel's order) */
            for (int p = 0; p < k; p++) {
                float a = el(A_, at, ta == CUBLAS_OP_N ? i + (size_t)p * lda : p + (size_t)i * lda);
                float b = el(B_, bt, tb == CUBLAS_OP_N ? p + (size_t)j * ldb : j + (size_t)p * ldb);
                if (split && p >= k / 2) s2 += a * b;
                else s += a * b;
            }
            if (split) s += s2;
            /* C and D of type ct: fp32, or bf16 read widened and written rounded to nearest even */
            size_t ci = i + (size_t)j * ldc;
            float c = be == 0.0f ? 0.0f
                      : ct == CUDA_R_16BF ? __bfloat162float(((const __nv_bfloat16 *)C)[ci]) : ((const float *)C)[ci];
            float d = be == 0.0f ? al * s : al * s + be * c;
            if (ct == CUDA_R_16BF) ((__nv_bfloat16 *)D)[i + (size_t)j * ldd] = __float2bfloat16_rn(d);
            else ((float *)D)[i + (size_t)j * ldd] = d;
        }
}
/* column-major C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C, with cuBLAS's argument checks */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A_, cudaDataType at, int lda, const void *B_,
                            cudaDataType bt, int ldb, const void *beta, void *C_, cudaDataType ct, int ldc,
                            cublasComputeType_t comp, cublasGemmAlgo_t algo) {
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) ||
        ldb < (tb == CUBLAS_OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    /* the combinations matmul.cu uses: fp32 in, fp32 out; bf16 in, fp32 or bf16 out */
    if ((at != CUDA_R_32F && at != CUDA_R_16BF) || bt != at || (ct != CUDA_R_32F && ct != CUDA_R_16BF) ||
        (ct == CUDA_R_16BF && at != CUDA_R_16BF))
        return CUBLAS_STATUS_INVALID_VALUE;
    dev_open();
    emu_gemm(ta, tb, m, n, k, *(const float *)alpha, A_, at, lda, B_, bt, ldb, *(const float *)beta, C_, ldc, C_, ldc,
             false, ct);
    dev_close();
    g_emu_clock += (double)m * n * k / 1e12;
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- cuBLASLt (cublasLt.h) ---- */
struct EmuLt {
    int unused;
};
struct EmuLtDesc {
    cublasComputeType_t compute;
    int ta, tb;
};
struct EmuLtLayout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};
struct EmuLtPref {
    uint64_t ws;
    uint32_t align[4]; /* A, B, C, D */
};
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    static EmuLt lt;
    *h = &lt;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale) {
    if (scale != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
    *d = new EmuLtDesc{compute, CUBLAS_OP_N, CUBLAS_OP_N};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t bytes) {
    if (!buf || bytes != 4) return CUBLAS_STATUS_INVALID_VALUE; /* TRANSA / TRANSB int32, EPILOGUE uint32 */
    int32_t v;
    memcpy(&v, buf, 4);
    if (attr == CUBLASLT_MATMUL_DESC_TRANSA) d->ta = v;
    else if (attr == CUBLASLT_MATMUL_DESC_TRANSB) d->tb = v;
    else if (attr == CUBLASLT_MATMUL_DESC_EPILOGUE) { if (v != CUBLASLT_EPILOGUE_DEFAULT) return CUBLAS_STATUS_NOT_SUPPORTED; }
    else return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if (ld < (int64_t)(rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new EmuLtLayout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new EmuLtPref{0, {256, 256, 256, 256}}; /* the library's defaults */
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t bytes) {
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        if (!buf || bytes != 8) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&p->ws, buf, 8);
    } else if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
        if (!buf || bytes != 4) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, 4);
    } else
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
/* the operation the descriptors describe, or NOT_SUPPORTED: shapes must chain, types must be a supported set */
static cublasStatus_t emu_lt_check(cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                   cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dl) {
    uint64_t m = d->ta == CUBLAS_OP_N ? a->rows : a->cols, k = d->ta == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t kb = d->tb == CUBLAS_OP_N ? b->rows : b->cols, n = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
    if (k != kb || c->rows != m || c->cols != n || dl->rows != m || dl->cols != n || c->ld != dl->ld)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (c->type != dl->type || a->type != b->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (c->type == CUDA_R_16BF) /* bf16 C / D: bf16 operands only */
        return a->type == CUDA_R_16BF && d->compute == CUBLAS_COMPUTE_32F ? CUBLAS_STATUS_SUCCESS
                                                                           : CUBLAS_STATUS_NOT_SUPPORTED;
    if (c->type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (a->type == CUDA_R_16BF && d->compute == CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_SUCCESS;
    if (a->type == CUDA_R_32F && d->compute == CUBLAS_COMPUTE_32F_FAST_16BF) return CUBLAS_STATUS_SUCCESS;
    return CUBLAS_STATUS_NOT_SUPPORTED;
}
/* One algorithm; it needs min(1 MiB, the workspace allowed) of workspace and keeps the preference's alignments. */
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *returned) {
    if (requested < 1 || !results || !returned) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s = emu_lt_check(d, a, b, c, dl);
    *returned = 0;
    if (s != CUBLAS_STATUS_SUCCESS) return s == CUBLAS_STATUS_NOT_SUPPORTED ? CUBLAS_STATUS_NOT_SUPPORTED : s;
    int nr = requested < EMU_LT_ALGOS ? requested : EMU_LT_ALGOS; /* one unless asked for more (cublasLt.h) */
    for (int r = 0; r < nr; r++) {
        memset(&results[r], 0, sizeof results[r]);
        results[r].workspaceSize = p->ws < (1u << 20) ? (size_t)p->ws : (size_t)1 << 20;
        results[r].algo.data[0] = 0x4c74;
        for (int i = 0; i < 4; i++) results[r].algo.data[1 + i] = p->align[i];
        results[r].algo.data[5] = results[r].workspaceSize;
        results[r].algo.data[6] = nr > 1 ? (uint64_t)r + 1 : 0; /* which of the tune path's four, or 0 */
        results[r].state = CUBLAS_STATUS_SUCCESS;
        results[r].wavesCount = 1.0f;
    }
    *returned = nr;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
    cublasStatus_t s = emu_lt_check(d, a, b, c, dl);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (!algo || algo->data[0] != 0x4c74) return CUBLAS_STATUS_INVALID_VALUE; /* NULL algo: not emulated */
    const void *ptr[4] = {A, B, C, D};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)ptr[i] % algo->data[1 + i] != 0) {
            fprintf(stderr, "emu: cublasLtMatmul: operand %c at %p is not %llu-byte aligned as its algo assumes\n",
                    "ABCD"[i], ptr[i], (unsigned long long)algo->data[1 + i]);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    if (workspace_bytes < algo->data[5] || (algo->data[5] && !workspace)) return CUBLAS_STATUS_INVALID_VALUE;
    int m = (int)c->rows, n = (int)c->cols, k = (int)(d->ta == CUBLAS_OP_N ? a->cols : a->rows);
    uint64_t which = algo->data[6]; /* 0: the single algorithm; 1-4: the tune path's four (cublasLt.h) */
    if (which == 4) return CUBLAS_STATUS_NOT_SUPPORTED;
    dev_open();
    emu_gemm((cublasOperation_t)d->ta, (cublasOperation_t)d->tb, m, n, k, *(const float *)alpha, A, a->type, a->ld,
             B, b->type, b->ld, *(const float *)beta, C, c->ld, D, dl->ld, d->compute == CUBLAS_COMPUTE_32F_FAST_16BF,
             c->type, which == 3);
    dev_close();
    /* 1e12 multiply-adds a second; the tune path's first at half that, its split-K stand-in at twice (cublasLt.h) */
    g_emu_clock += (double)m * n * k * (which == 1 ? 2 : which == 3 ? 0.5 : 1) / 1e12;
    return CUBLAS_STATUS_SUCCESS;
}
