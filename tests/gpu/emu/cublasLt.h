/* cublasLt.h (emulation) — the cuBLASLt subset cuda/matmul.cu uses: a handle, matmul descriptors (compute type,
 * TRANSA / TRANSB, EPILOGUE default only), column-major matrix layouts, preferences (workspace bytes, minimum
 * alignments of A / B / C / D), the heuristic query and cublasLtMatmul, with cuBLASLt's documented semantics:
 *   D = alpha op(A) op(B) + beta C, column-major, op from TRANSA / TRANSB; A / B fp32 or bf16, C / D fp32.
 * Checks that stand for the GPU's: layout rows / cols must match op(A) [m,k], op(B) [k,n], C / D [m,n], ld >= rows;
 * bf16 A / B need compute CUBLAS_COMPUTE_32F; fp32 A / B need CUBLAS_COMPUTE_32F_FAST_16BF (emulated as rounding
 * each element to bf16, nearest even, before exact products: the reading of "down-converting inputs to bfloat16"
 * that the GPU test of the bf16 matmul holds the real library to); an algo found for a preference's minimum
 * alignment must be run on pointers at least that aligned, and with the workspace it asked for, or cublasLtMatmul
 * fails with CUBLAS_STATUS_INVALID_VALUE (the real library may instead read misaligned memory).
 * Asked for more than one algorithm (matmul.cu's tune path), the heuristic returns EMU_LT_ALGOS, so that a timing
 * and a check of bits have something to tell apart: the first (the heuristic's choice) slow, at half the
 * emulation's GEMM rate (its clock, emu.cpp: events time GEMMs by a cost model, the same on every run); the second
 * the same sums at the full rate; the third a split-K stand-in, the fastest (twice the rate) but with other bits
 * (the second half of k summed apart and added); the fourth fails to launch (CUBLAS_STATUS_NOT_SUPPORTED). Asked
 * for one, the one algorithm as before. */
#ifndef EMU_CUBLASLT_H
#define EMU_CUBLASLT_H
#include <stddef.h>
#include <stdint.h>
#include "cublas_v2.h"
enum { EMU_LT_ALGOS = 4 };

typedef struct EmuLt *cublasLtHandle_t;
typedef struct EmuLtDesc *cublasLtMatmulDesc_t;
typedef struct EmuLtLayout *cublasLtMatrixLayout_t;
typedef struct EmuLtPref *cublasLtMatmulPreference_t;
typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;
typedef enum { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4, CUBLASLT_MATMUL_DESC_EPILOGUE = 7 }
    cublasLtMatmulDescAttributes_t;
typedef enum { CUBLASLT_EPILOGUE_DEFAULT = 1 } cublasLtEpilogue_t;
typedef enum {
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8
} cublasLtMatmulPreferenceAttributes_t;

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h);
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t bytes);
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l);
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t bytes);
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *returned);
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream);
#endif
