/* matmul.cu — C = alpha op(A) op(B) + beta C (row-major, backend.h) through cuBLAS, in fp32 or in the bf16 mode.
 *
 * cuBLAS is column-major: a row-major [M,N] matrix is the column-major [N,M] matrix of its transpose, so
 * C^T = op(B)^T op(A)^T is one column-major GEMM with the operands swapped: (opB, opA, N, M, K, B, A).
 * Compute type CUBLAS_COMPUTE_32F (true fp32 multiply-adds, results within fp32 rounding of the CPU
 * reference); SIMPO_CUDA_TF32=1 switches to CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, ~1e-3 relative).
 * cuBLAS GEMMs are deterministic run to run on one device with one stream (no atomics mode is set).
 * bf16 mode (cu_bf16(), backend.h set_matmul_bf16): A and B are rounded to bf16 into op scratch (one pass each,
 * memory-bound, a few percent of the GEMM at model sizes) and multiplied on tensor cores with fp32 accumulation
 * and an fp32 C, the precision of torch's bf16 autocast; the CPU backend's bf16 mode is its reference. */
#include <cuda_bf16.h>
#include "cuda_common.cuh"

/* y[i] = bf16(x[i]), round to nearest even; four elements per thread (float4 loads when x is 16-byte aligned) */
__global__ void to_bf16_kernel(__nv_bfloat16 *y, const float *x, size_t n, bool aligned) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (aligned && i + 3 < n) {
        float4 v = *(const float4 *)(x + i);
        y[i] = __float2bfloat16_rn(v.x);
        y[i + 1] = __float2bfloat16_rn(v.y);
        y[i + 2] = __float2bfloat16_rn(v.z);
        y[i + 3] = __float2bfloat16_rn(v.w);
    } else {
        for (size_t e = i; e < i + 4 && e < n; e++) y[e] = __float2bfloat16_rn(x[e]);
    }
}

/* a bf16 copy of x[n] in op scratch (the caller frees it with cu_scratch_free) */
static __nv_bfloat16 *to_bf16(const float *x, size_t n, const char *what) {
    __nv_bfloat16 *y = (__nv_bfloat16 *)cu_scratch(n * sizeof(__nv_bfloat16), what);
    size_t threads = (n + 3) / 4;
    to_bf16_kernel<<<(unsigned)((threads + 255) / 256), 256, 0, cu_stream()>>>(y, x, n, ((uintptr_t)x & 15) == 0);
    CUDA_LAUNCH_CHECK("to_bf16");
    return y;
}

void cuda_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                 float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty inner dimension: C = beta C, zeros when beta = 0 (as BLAS) */
        cuda_beta_scale(C, beta, (size_t)M * (size_t)N);
        return;
    }
    int lda = transA ? M : K; /* A stored [K,M] when transposed, else [M,K] */
    int ldb = transB ? K : N; /* B stored [N,K] when transposed, else [K,N] */
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (cu_bf16()) {
        __nv_bfloat16 *a16 = to_bf16(A, (size_t)M * (size_t)K, "bf16 matmul A");
        __nv_bfloat16 *b16 = to_bf16(B, (size_t)K * (size_t)N, "bf16 matmul B");
        CUBLAS_CHECK(cublasGemmEx(cu_blas(), opB, opA, N, M, K, &alpha, b16, CUDA_R_16BF, ldb, a16, CUDA_R_16BF, lda,
                                  &beta, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        cu_scratch_free(a16);
        cu_scratch_free(b16);
        return;
    }
    cublasComputeType_t ct = cu_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasGemmEx(cu_blas(), opB, opA, N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta,
                              C, CUDA_R_32F, N, ct, CUBLAS_GEMM_DEFAULT));
}
