/* backend_cuda.h — the CUDA backend: fp32 kernels and cuBLAS behind the Backend interface of src/backend.h.
 *
 * defines: backend_cuda, cuda_device_available, cuda_set_device_from_local_rank, cuda_device_name,
 *          cuda_synchronize, cuda_stream.
 * Usable from C11 (no CUDA headers needed). Built only when nvcc is found (the simpo library then defines
 * SIMPO_HAVE_CUDA). The kernels live in the .cu files of cuda/, one concern per file like src/cpu/;
 * docs/gpu.md describes them.
 *
 * Semantics are those of backend.h with every pointer (float and int arrays alike) in device memory.
 * Ordering: every op is enqueued on one CUDA stream (cuda_stream()); download, sumsq and the ops that need host
 * values (attention reads cu_seqlens, embed_bwd reads ids) synchronise it, so "after an op returns, its results
 * are visible to download" holds exactly as on the CPU backend. Code that touches backend memory by other means
 * (NCCL on another stream, CUDA-aware MPI, host reads of managed memory) must call cuda_synchronize() first, or
 * enqueue its work on cuda_stream(). The late queue (backend.h late_begin) is a second stream of the least
 * priority (the main one has the greatest); cuda_synchronize() and free wait for it too, download does not.
 * Ownership: backend_cuda() returns static storage; the stream and cuBLAS handle live until the process ends.
 */
#ifndef SD_BACKEND_CUDA_H
#define SD_BACKEND_CUDA_H
#include <stdbool.h>
#include "backend.h"
#ifdef __cplusplus
extern "C" {
#endif

/* true when the CUDA runtime finds at least one device; false (never a crash) without a GPU or driver. */
bool cuda_device_available(void);
/* Selects the device local_rank % device_count, the local rank read from OMPI_COMM_WORLD_LOCAL_RANK,
 * MPI_LOCALRANKID, SLURM_LOCALID or LOCAL_RANK (first one set; 0 when none is). Call before backend_cuda();
 * dies when there is no device or when backend_cuda() already initialised on another device. */
void cuda_set_device_from_local_rank(void);
/* The CUDA backend on the current device, initialised on first call (stream, cuBLAS handle). Dies with a clear
 * message when no CUDA device is usable. TF32 tensor cores for matmul are off unless SIMPO_CUDA_TF32=1. */
const Backend *backend_cuda(void);
/* "NVIDIA H100 80GB HBM3 (device 0, sm_90)" of the current device; static storage. */
const char *cuda_device_name(void);
/* Waits for every op enqueued so far, the late queue's included. */
void cuda_synchronize(void);
/* Peak device bytes: the high-water mark of the backend's allocations plus that of the op scratch pool (two
 * maxima that may come at different times, so at most a slight overestimate); comparable to torch's
 * max_memory_allocated. 0 before backend_cuda(). */
size_t cuda_peak_bytes(void);
/* The cudaStream_t (as void *) the backend enqueues its work on; valid after backend_cuda(). */
void *cuda_stream(void);

#ifdef __cplusplus
}
#endif
#endif
