/* matmul.c — C = alpha op(A) op(B) + beta C through OpenBLAS cblas_sgemm (row-major). */
#include <cblas.h>
#include "cpu_ops.h"

void cpu_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty inner dimension: C = beta C (BLAS would reject lda = 0) */
        for (size_t i = 0; i < (size_t)M * (size_t)N; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
        return;
    }
    int lda = transA ? M : K; /* A stored [K,M] when transposed, else [M,K] */
    int ldb = transB ? K : N; /* B stored [N,K] when transposed, else [K,N] */
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, N);
}
