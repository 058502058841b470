/* matmul.c — C = alpha op(A) op(B) + beta C through OpenBLAS cblas_sgemm (row-major), in fp32 or, with the bf16
 * mode on (backend.h set_matmul_bf16), on copies of A and B rounded to bfloat16: the product of two bf16 values is
 * exact in fp32, so sgemm on the rounded copies is what a tensor core computes (up to the summation order), which
 * makes this the CPU reference of the CUDA backend's bf16 GEMMs. */
#include <cblas.h>
#include <stdlib.h>
#include "cpu_ops.h"
#include "util.h"

static bool g_bf16;

void cpu_set_matmul_bf16(bool on) { g_bf16 = on; }

/* a copy of n floats rounded to the nearest bfloat16 (kept as floats) */
static float *bf16_copy(const float *x, size_t n) {
    float *y = sd_alloc(sd_mul_size(n, sizeof(float), "bf16 matmul operand"), "bf16 matmul operand");
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = sd_bf16_to_f32(sd_f32_to_bf16(x[i]));
    return y;
}

void cpu_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty inner dimension: C = beta C (BLAS would reject lda = 0) */
        for (size_t i = 0; i < (size_t)M * (size_t)N; i++) C[i] = beta == 0.0f ? 0.0f : beta * C[i];
        return;
    }
    int lda = transA ? M : K; /* A stored [K,M] when transposed, else [M,K] */
    int ldb = transB ? K : N; /* B stored [N,K] when transposed, else [K,N] */
    float *a16 = g_bf16 ? bf16_copy(A, (size_t)M * (size_t)K) : NULL;
    float *b16 = g_bf16 ? bf16_copy(B, (size_t)K * (size_t)N) : NULL;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, a16 ? a16 : A, lda, b16 ? b16 : B, ldb, beta, C, N);
    free(a16);
    free(b16);
}

bool cpu_matmul_bf16_on(void) { return g_bf16; }
