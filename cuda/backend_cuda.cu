/* backend_cuda.cu — device selection, the backend's stream and cuBLAS handle, memory ops (alloc zeroed, free,
 * bytes_in_use, zero, copy, upload, download), op scratch and the function-pointer table.
 *
 * Memory: every block is a cudaMalloc of its own, zeroed before alloc returns; a host-side table remembers its
 * size so bytes_in_use reports exactly what the caller holds (the memory plan is checked against it). Op scratch
 * comes from CUDA's stream-ordered pool instead (cu_scratch) and is not counted, like the CPU ops' malloc scratch.
 * Ordering: see backend_cuda.h. upload and download synchronise the stream (the host buffer is free to reuse, the
 * downloaded bytes are final); zero and copy are enqueued and ordered before every later op. Between late_begin
 * and late_end (backend.h) every op, zero, copy and op scratch included, goes to the late stream instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend_cuda.h"
#include "cuda_common.cuh"

typedef struct {
    void *p;
    size_t bytes;
} Block;

static struct {
    bool ready;
    int device;
    cudaStream_t stream;
    cudaStream_t side;             /* cu_fork's second stream (NULL until the first fork) */
    cudaEvent_t forked, joined;    /* its fork and join points */
    /* the late queue (backend.h late_begin): a stream of the least priority, so that the block scheduler gives the
     * main stream's blocks the SMs first and the late work fills what they leave (a GEMM's last wave, the gaps
     * between kernels); cur is the stream the ops enqueue on (cu_stream()): stream, or late between late_begin and
     * late_end; late_pending: late work not yet joined */
    cudaStream_t late, cur;
    cudaEvent_t late_from, late_done;
    bool late_pending;
    /* the late queue's op scratch: a pool of its own, so that no allocation on the main stream takes a block the
     * late stream freed (the default pool would make the main stream wait for the late work to reuse it:
     * cudaMemPoolReuseAllowInternalDependencies) */
    cudaMemPool_t late_pool;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS's workspace (cublasSetWorkspace), blas_ws_bytes; held for the process */
    size_t blas_ws_bytes;
    bool tf32;
    bool bf16; /* set_matmul_bf16 */
    int smem_optin;
    char name[320];
    size_t in_use;
    size_t peak_in_use; /* high-water mark of in_use */
    Block *blocks; /* live allocations (host table) */
    size_t nblocks, cap;
} g;

cudaStream_t cu_stream(void) { return g.cur; }
int cu_env_choice(const char *name, int lo, int hi, int dflt) {
    const char *e = getenv(name);
    if (!e || !*e) return dflt;
    char *end = NULL, canon[24];
    long v = strtol(e, &end, 10);
    snprintf(canon, sizeof canon, "%ld", v); /* the value exactly as written: no sign, spaces or leading zeros */
    if (*end || strcmp(canon, e) != 0 || v < lo || v > hi)
        sd_die("cuda", "%s=%s: expected an integer from %d to %d", name, e, lo, hi);
    return (int)v;
}
/* a non-blocking stream of the greatest priority (the main stream's) or of the least (the late queue's), and the
 * two events of its fork and join */
static void stream_make(cudaStream_t *s, bool least, cudaEvent_t *from, cudaEvent_t *to) {
    int lo = 0, hi = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
    CUDA_CHECK(cudaStreamCreateWithPriority(s, cudaStreamNonBlocking, least ? lo : hi));
    if (from) CUDA_CHECK(cudaEventCreateWithFlags(from, cudaEventDisableTiming));
    if (to) CUDA_CHECK(cudaEventCreateWithFlags(to, cudaEventDisableTiming));
}
cudaStream_t cu_fork(void) {
    /* the main stream's priority: the two kernels of one op share the SMs as equals */
    if (!g.side) stream_make(&g.side, false, &g.forked, &g.joined);
    CUDA_CHECK(cudaEventRecord(g.forked, g.stream));
    CUDA_CHECK(cudaStreamWaitEvent(g.side, g.forked, 0));
    return g.side;
}
void cu_join(void) {
    CUDA_CHECK(cudaEventRecord(g.joined, g.side));
    CUDA_CHECK(cudaStreamWaitEvent(g.stream, g.joined, 0));
}
static void cuda_late_begin(void) {
    if (g.cur != g.stream) sd_die("cuda", "late_begin twice without late_end");
    if (!g.late) {
        stream_make(&g.late, true, &g.late_from, &g.late_done);
        cudaMemPoolProps props;
        memset(&props, 0, sizeof props);
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = g.device;
        CUDA_CHECK(cudaMemPoolCreate(&g.late_pool, &props));
        uint64_t keep = UINT64_MAX;
        CUDA_CHECK(cudaMemPoolSetAttribute(g.late_pool, cudaMemPoolAttrReleaseThreshold, &keep));
    }
    CUDA_CHECK(cudaEventRecord(g.late_from, g.stream));
    CUDA_CHECK(cudaStreamWaitEvent(g.late, g.late_from, 0));
    g.cur = g.late;
    g.late_pending = true;
}
bool cu_late(void) { return g.late && g.cur == g.late; }
static void cuda_late_end(void) {
    if (g.cur != g.late) sd_die("cuda", "late_end without late_begin");
    g.cur = g.stream;
}
static void cuda_late_join(void) {
    if (g.cur != g.stream) sd_die("cuda", "late_join between late_begin and late_end");
    if (!g.late_pending) return;
    CUDA_CHECK(cudaEventRecord(g.late_done, g.late));
    CUDA_CHECK(cudaStreamWaitEvent(g.stream, g.late_done, 0));
    g.late_pending = false;
}
cublasHandle_t cu_blas(void) { return g.blas; }
bool cu_tf32(void) { return g.tf32; }
bool cu_bf16(void) { return g.bf16; }
static void cuda_set_matmul_bf16(bool on) { g.bf16 = on; }
int cu_smem_optin(void) { return g.smem_optin; }

bool cuda_device_available(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return false;
    }
    return n > 0;
}

static int device_count_or_die(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        sd_die("cuda", "no usable CUDA device: %s (is the NVIDIA driver installed and a GPU visible? check "
                       "nvidia-smi and CUDA_VISIBLE_DEVICES)", cudaGetErrorString(e));
    if (n == 0) sd_die("cuda", "no CUDA device visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    return n;
}

void cuda_set_device_from_local_rank(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"};
    long lr = 0;
    const char *from = NULL;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !from; i++) {
        const char *s = getenv(vars[i]);
        if (!s || !*s) continue;
        char *end = NULL;
        lr = strtol(s, &end, 10);
        if (*end || lr < 0) sd_die("cuda", "%s=%s is not a local rank (a non-negative integer)", vars[i], s);
        from = vars[i];
    }
    int n = device_count_or_die();
    int dev = (int)(lr % n);
    if (g.ready && g.device != dev)
        sd_die("cuda", "cuda_set_device_from_local_rank: the backend is already initialised on device %d, local "
                       "rank %ld (%s) asks for device %d; select the device before backend_cuda()",
               g.device, lr, from ? from : "unset", dev);
    CUDA_CHECK(cudaSetDevice(dev));
}

static void init_once(void) {
    if (g.ready) return;
    device_count_or_die();
    CUDA_CHECK(cudaGetDevice(&g.device));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, g.device));
    snprintf(g.name, sizeof g.name, "%s (device %d, sm_%d%d)", prop.name, g.device, prop.major, prop.minor);
    if (prop.major < 7)
        sd_die("cuda", "%s: compute capability %d.%d is too old (the backend is built for sm_80 / sm_90)", g.name,
               prop.major, prop.minor);
    CUDA_CHECK(cudaDeviceGetAttribute(&g.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, g.device));
    /* the greatest priority: the late queue's blocks (least) wait for the SMs this stream's blocks leave */
    stream_make(&g.stream, false, NULL, NULL);
    g.cur = g.stream;
    CUBLAS_CHECK(cublasCreate(&g.blas));
    CUBLAS_CHECK(cublasSetStream(g.blas, g.stream));
    /* cuBLAS's workspace at the size NVIDIA recommends (cublasSetWorkspace: 32 MiB from Hopper on, 4 MiB before), as
     * torch gives its handles, so cublasGemmEx may choose the kernels that need it (split-K, stream-K); a fixed size,
     * so the choice, and the results, stay the same run to run. Outside the backend's accounting, like the pool
     * cuBLAS would otherwise keep itself. */
    g.blas_ws_bytes = (size_t)(prop.major >= 9 ? 32 : 4) << 20;
    CUDA_CHECK(cudaMalloc(&g.blas_ws, g.blas_ws_bytes));
    CUBLAS_CHECK(cublasSetWorkspace(g.blas, g.blas_ws, g.blas_ws_bytes));
    g.tf32 = cu_env_choice("SIMPO_CUDA_TF32", 0, 1, 0) == 1;
    /* fp32 math unless TF32 is asked for (matmul.cu also picks the compute type) */
    CUBLAS_CHECK(cublasSetMathMode(g.blas, g.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    /* keep op scratch in the pool between ops instead of returning it to the driver at every sync */
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, g.device));
    uint64_t keep = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    g.ready = true;
}

const char *cuda_device_name(void) {
    init_once();
    return g.name;
}
void cuda_synchronize(void) {
    if (!g.ready) return;
    if (g.late) CUDA_CHECK(cudaStreamSynchronize(g.late)); /* the late queue's work too (also between late_begin
                                                            * and late_end: the op profile times each late op) */
    CUDA_CHECK(cudaStreamSynchronize(g.stream));
    if (g.cur == g.stream) g.late_pending = false;
}
void *cuda_stream(void) {
    init_once();
    return (void *)g.stream;
}

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes, const char *what) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        sd_die("cuda", "cannot allocate %zu bytes for %s on %s (%zu of %zu MiB free, this backend holds %zu "
                       "MiB): %s", bytes, what, g.name, fr >> 20, tot >> 20, g.in_use >> 20, cudaGetErrorString(e));
    }
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, g.stream));
    CUDA_CHECK(cudaStreamSynchronize(g.stream)); /* zeroed for whoever touches it next, on any stream */
    if (g.nblocks == g.cap) {
        g.cap = g.cap ? 2 * g.cap : 64;
        g.blocks = (Block *)sd_realloc(g.blocks, g.cap * sizeof(Block), "cuda allocation table");
    }
    g.blocks[g.nblocks].p = p;
    g.blocks[g.nblocks].bytes = bytes;
    g.nblocks++;
    g.in_use += bytes;
    if (g.in_use > g.peak_in_use) g.peak_in_use = g.in_use;
    return p;
}

static void cuda_free(void *p) {
    if (!p) return;
    size_t i = g.nblocks;
    while (i > 0 && g.blocks[i - 1].p != p) i--; /* recent blocks are freed first: search from the end */
    if (i == 0) sd_die("cuda", "free of %p, which the CUDA backend did not allocate (or freed already)", p);
    g.in_use -= g.blocks[i - 1].bytes;
    g.blocks[i - 1] = g.blocks[g.nblocks - 1];
    g.nblocks--;
    cuda_synchronize(); /* enqueued ops, late ones too, may still use p */
    CUDA_CHECK(cudaFree(p));
}

static size_t cuda_bytes_in_use(void) { return g.in_use; }
static size_t cuda_mem_free(void) {
    init_once();
    size_t fr = 0, tot = 0;
    CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    return fr;
}

static void cuda_zero(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, g.cur));
}

/* backend -> backend; overlapping ranges behave like memmove (through a scratch copy) */
static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d < s + bytes && s < d + bytes) {
        void *tmp = cu_scratch(bytes, "overlapping copy");
        CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, g.cur));
        CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, g.cur));
        cu_scratch_free(tmp);
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g.cur));
}

void cu_upload(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, g.stream));
    CUDA_CHECK(cudaStreamSynchronize(g.stream));
}
void cu_download(void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, g.stream));
    CUDA_CHECK(cudaStreamSynchronize(g.stream));
}

void *cu_scratch(size_t bytes, const char *what) {
    void *p = NULL;
    /* freed on the same stream; the late queue's from its own pool */
    cudaError_t e = g.cur == g.late ? cudaMallocFromPoolAsync(&p, bytes ? bytes : 1, g.late_pool, g.late)
                                    : cudaMallocAsync(&p, bytes ? bytes : 1, g.cur);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        sd_die("cuda", "cannot take %zu bytes of scratch for %s on %s (%zu of %zu MiB free): %s", bytes, what,
               g.name, fr >> 20, tot >> 20, cudaGetErrorString(e));
    }
    return p;
}
size_t cuda_peak_bytes(void) {
    if (!g.ready) return 0;
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, g.device));
    uint64_t high = 0, late = 0;
    CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high));
    if (g.late_pool) CUDA_CHECK(cudaMemPoolGetAttribute(g.late_pool, cudaMemPoolAttrUsedMemHigh, &late));
    return g.peak_in_use + (size_t)high + (size_t)late;
}
void cu_scratch_free(void *p) {
    if (p) CUDA_CHECK(cudaFreeAsync(p, g.cur));
}

/* ---- the table ---- */

static Backend g_cuda;

const Backend *backend_cuda(void) {
    init_once();
    if (!g_cuda.name) {
        Backend b;
        memset(&b, 0, sizeof b);
        b.name = "cuda";
        b.alloc = cuda_alloc;
        b.free = cuda_free;
        b.bytes_in_use = cuda_bytes_in_use;
        b.mem_free = cuda_mem_free;
        b.zero = cuda_zero;
        b.copy = cuda_copy;
        b.upload = cu_upload;
        b.download = cu_download;
        b.matmul = cuda_matmul;
        b.set_matmul_bf16 = cuda_set_matmul_bf16;
        b.matmul_bf16_on = cu_bf16;
        b.matmul16 = cuda_matmul16;
        b.to_bf16 = cuda_to_bf16;
        b.rmsnorm_fwd16 = cuda_rmsnorm_fwd16;
        b.swiglu_fwd16 = cuda_swiglu_fwd16;
        b.geglu_fwd16 = cuda_geglu_fwd16;
        b.swiglu_bwd16 = cuda_swiglu_bwd16;
        b.geglu_bwd16 = cuda_geglu_bwd16;
        b.xent_bwd16 = cuda_xent_bwd16;
        b.matmul16_out16 = cuda_matmul16_out16;
        b.matmul16_res = cuda_matmul16_res;
        b.swiglu_fwd_b16 = cuda_swiglu_fwd_b16;
        b.geglu_fwd_b16 = cuda_geglu_fwd_b16;
        b.swiglu_bwd_b16 = cuda_swiglu_bwd_b16;
        b.geglu_bwd_b16 = cuda_geglu_bwd_b16;
        b.swiglu_bwd_pack_b16 = cuda_swiglu_bwd_pack_b16;
        b.geglu_bwd_pack_b16 = cuda_geglu_bwd_pack_b16;
        b.rope_fwd_b16 = cuda_rope_fwd_b16;
        b.rope_bwd_b16 = cuda_rope_bwd_b16;
        b.rope_bwd_pack_b16 = cuda_rope_bwd_pack_b16;
        b.attn_fwd_b16 = cuda_attn_fwd_b16;
        b.attn_bwd_b16 = cuda_attn_bwd_b16;
        b.attn_fwd_b16_rows = cuda_attn_fwd_b16_rows;
        b.attn_bwd_b16_rows = cuda_attn_bwd_b16_rows;
        b.xent_stats_b16 = cuda_xent_stats_b16;
        b.xent_bwd_b16 = cuda_xent_bwd_b16;
        b.matmul_hold = cuda_matmul_hold;
        b.matmul_release = cuda_matmul_release;
        b.add = cuda_add;
        b.scale = cuda_scale;
        b.sumsq = cuda_sumsq;
        b.sumsq_many = cuda_sumsq_many;
        b.embed_fwd = cuda_embed_fwd;
        b.embed_bwd = cuda_embed_bwd;
        b.rmsnorm_fwd = cuda_rmsnorm_fwd;
        b.rmsnorm_bwd = cuda_rmsnorm_bwd;
        b.rmsnorm_bwd_out16 = cuda_rmsnorm_bwd_out16;
        b.rmsnorm_fwd_b16 = cuda_rmsnorm_fwd_b16;
        b.rmsnorm_bwd_b16 = cuda_rmsnorm_bwd_b16;
        b.rope_fwd = cuda_rope_fwd;
        b.rope_bwd = cuda_rope_bwd;
        b.attn_fwd = cuda_attn_fwd;
        b.attn_bwd = cuda_attn_bwd;
        b.attn_fwd_rows = cuda_attn_fwd_rows;
        b.attn_bwd_rows = cuda_attn_bwd_rows;
        b.gather_rows = cuda_gather_rows;
        b.scatter_rows = cuda_scatter_rows;
        b.add_rows = cuda_add_rows;
        b.add_rows_b16 = cuda_add_rows_b16;
        b.bias_add = cuda_bias_add;
        b.bias_add_b16 = cuda_bias_add_b16;
        b.bias_grad = cuda_bias_grad;
        b.bias_grad_b16 = cuda_bias_grad_b16;
        b.swiglu_fwd = cuda_swiglu_fwd;
        b.geglu_fwd = cuda_geglu_fwd;
        b.geglu_bwd = cuda_geglu_bwd;
        b.softcap_fwd = cuda_softcap_fwd;
        b.softcap_bwd = cuda_softcap_bwd;
        b.swiglu_bwd = cuda_swiglu_bwd;
        b.xent_stats = cuda_xent_stats;
        b.xent_bwd = cuda_xent_bwd;
        b.adamw = cuda_adamw;
        b.adamw_sumsq = cuda_adamw_sumsq;
        b.host_addressable = false; /* collectives stage through host (MPI) or go to NCCL on this stream */
        b.sync = cuda_synchronize;  /* NCCL orders its streams after the backend's work through this */
        b.late_begin = cuda_late_begin;
        b.late_end = cuda_late_end;
        b.late_join = cuda_late_join;
        g_cuda = b;
    }
    return &g_cuda;
}
