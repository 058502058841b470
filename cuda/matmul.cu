/* matmul.cu — C = alpha op(A) op(B) + beta C (row-major, backend.h) through cuBLAS in fp32.
 *
 * cuBLAS is column-major: a row-major [M,N] matrix is the column-major [N,M] matrix of its transpose, so
 * C^T = op(B)^T op(A)^T is one column-major GEMM with the operands swapped: (opB, opA, N, M, K, B, A).
 * Compute type CUBLAS_COMPUTE_32F (true fp32 multiply-adds, results within fp32 rounding of the CPU
 * reference); SIMPO_CUDA_TF32=1 switches to CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, ~1e-3 relative).
 * cuBLAS GEMMs are deterministic run to run on one device with one stream (no atomics mode is set). */
#include "cuda_common.cuh"

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
    cublasComputeType_t ct = cu_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasGemmEx(cu_blas(), opB, opA, N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta,
                              C, CUDA_R_32F, N, ct, CUBLAS_GEMM_DEFAULT));
}
