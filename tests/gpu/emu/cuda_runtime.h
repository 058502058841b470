/* cuda_runtime.h (emulation) — the subset of the CUDA runtime and device intrinsics that the .cu files of cuda/
 * use, for compiling the backend's kernels with g++ and running them on the CPU (docs/gpu.md, "Without a GPU"). Not the real
 * header: it shadows it only in the emulation build (tests/gpu/emu/run.sh). Device memory is host memory;
 * a kernel launch runs its blocks one after another, the threads of a block as cooperative coroutines that
 * switch at __syncthreads and at every warp collective, so barriers and shuffles behave as on a GPU. */
#ifndef EMU_CUDA_RUNTIME_H
#define EMU_CUDA_RUNTIME_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct uint2 {
    unsigned x, y;
};
static inline uint2 make_uint2(unsigned x, unsigned y) {
    uint2 r = {x, y};
    return r;
}
struct uint4 {
    unsigned x, y, z, w;
};
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
    uint4 r = {x, y, z, w};
    return r;
}
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorNoDevice = 100,
} cudaError_t;
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
typedef void *cudaMemPool_t;
typedef enum {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
} cudaMemcpyKind;
enum { cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2 };
typedef enum { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 } cudaDeviceAttr;
typedef enum { cudaMemPoolAttrReleaseThreshold = 4, cudaMemPoolAttrUsedMemHigh = 8 } cudaMemPoolAttr;
typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
struct cudaDeviceProp {
    char name[256];
    int major, minor;
};

const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
/* priorities: least 0, greatest -5 (an H100's range); a stream made with the least is lazy (emu_lazy) */
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest);
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int priority);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize(void);
/* events: an eager stream's work is done when it is queued; waiting for an event recorded on a lazy stream runs
 * that stream's queue up to the record */
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
/* timing: an event holds the emulation's clock (emu.cpp: only the GEMMs advance it, by a cost model) when its
 * stream's work up to the record was done (an eager stream's at the record); cudaEventSynchronize runs a lazy
 * stream's queue up to it */
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
/* pools: the emulation allocates every block on its own (cudaMalloc), whatever the pool */
typedef enum { cudaMemAllocationTypePinned = 1 } cudaMemAllocationType;
typedef enum { cudaMemLocationTypeDevice = 1 } cudaMemLocationType;
typedef struct {
    cudaMemLocationType type;
    int id;
} cudaMemLocation;
typedef struct {
    cudaMemAllocationType allocType;
    int handleTypes;
    cudaMemLocation location;
    void *win32SecurityAttributes;
    size_t maxSize;
    unsigned short usage;
    unsigned char reserved[54];
} cudaMemPoolProps;
cudaError_t cudaMemPoolCreate(cudaMemPool_t *p, const cudaMemPoolProps *props);
cudaError_t cudaMallocFromPoolAsync(void **p, size_t bytes, cudaMemPool_t pool, cudaStream_t s);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *p, int d);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t p, cudaMemPoolAttr a, void *v);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t p, cudaMemPoolAttr a, void *v); /* UsedMemHigh: 0 */
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t bytes, cudaMemcpyKind k, cudaStream_t st);
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
cudaError_t cudaFuncSetAttribute(const void *f, cudaFuncAttribute a, int v);

/* ---- device side ---- */
void __syncthreads(void);
uint64_t emu_warp_exchange(uint64_t v, int src_lane); /* value of lane src_lane (all lanes call) */
unsigned emu_warp_ballot(int pred);
static inline int emu_lane(void) {
    return (int)((threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31);
}
template <class T> static inline uint64_t emu_bits(T v) {
    uint64_t u = 0;
    __builtin_memcpy(&u, &v, sizeof v);
    return u;
}
template <class T> static inline T emu_from(uint64_t u) {
    T v;
    __builtin_memcpy(&v, &u, sizeof v);
    return v;
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src) {
    return emu_from<T>(emu_warp_exchange(emu_bits(v), src & 31));
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int m) {
    return emu_from<T>(emu_warp_exchange(emu_bits(v), emu_lane() ^ m));
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned d) {
    int l = emu_lane(), s = l - (int)d;
    return emu_from<T>(emu_warp_exchange(emu_bits(v), s < 0 ? l : s));
}
static inline unsigned __ballot_sync(unsigned mask, int pred) { return emu_warp_ballot(pred); }
static inline float __fmul_rn(float a, float b) { return a * b; } /* a lone product: never contracted here */
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); } /* one rounding, as FFMA */
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

/* kernel launches: cu2cpp.py turns k<<<g, b, smem, s>>>(args) into emu_launch(emu_cfg(g, b, smem, s), lambda) */
struct EmuCfg {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};
static inline EmuCfg emu_cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = 0) {
    EmuCfg c = {g, b, smem, s};
    return c;
}
void emu_run(EmuCfg c, void (*invoke)(void *), void *arg);
/* a stream of the least priority (cudaStreamCreateWithPriority) is lazy: its work waits in a queue until an event
 * recorded after it is waited for, or the stream or device is synchronised; every other stream runs each launch at
 * once. So a missing join (a read of the late work's results before waiting for it) reads the values from before
 * it, as the worst timing on a GPU would */
bool emu_lazy(cudaStream_t s);
void emu_defer(cudaStream_t s, std::function<void()> fn);
template <class F> static inline void emu_launch(EmuCfg c, F f) {
    if (emu_lazy(c.stream)) {
        emu_defer(c.stream, [c, f]() mutable { emu_run(c, [](void *a) { (*(F *)a)(); }, &f); });
        return;
    }
    emu_run(c, [](void *a) { (*(F *)a)(); }, &f);
}
void *emu_dyn_smem(void);
#endif
