/* matmul.cu — C = alpha op(A) op(B) + beta C (row-major, backend.h) through cuBLAS / cuBLASLt, in fp32 or in the
 * bf16 mode.
 *
 * cuBLAS is column-major: a row-major [M,N] matrix is the column-major [N,M] matrix of its transpose, so
 * C^T = op(B)^T op(A)^T is one column-major GEMM with the operands swapped: (opB, opA, N, M, K, B, A).
 * fp32 mode: cublasGemmEx with compute type CUBLAS_COMPUTE_32F (true fp32 multiply-adds, results within fp32
 * rounding of the CPU reference); SIMPO_CUDA_TF32=1 switches to CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores,
 * ~1e-3 relative). cuBLAS GEMMs are deterministic run to run on one device with one stream (no atomics mode is set).
 *
 * bf16 mode (cu_bf16(), backend.h set_matmul_bf16): every element of A and B rounded to bf16 (nearest even), exact
 * products, fp32 accumulation and an fp32 C: the precision of torch's bf16 autocast; the CPU backend's bf16 mode is
 * its reference. SIMPO_CUDA_GEMM picks how (read on every call, so tests can switch):
 *   ex (default, unset or empty): A and B rounded into bf16 op scratch (one memory-bound pass each, or the copy of
 *        a held operand, below), then cublasGemmEx on tensor cores, with the handle's workspace set to NVIDIA's
 *        recommended size (backend_cuda.cu). The path measured on an H200 (docs/performance.md; before holds and
 *        the workspace).
 *   lt:   the same casts, then cublasLtMatmul with an algorithm from cuBLASLt's heuristic (cached per shape and
 *        operand alignment) and 32 MiB of workspace, which lets it pick split-K / stream-K kernels.
 *   tune: lt, but of the heuristic's first LT_CANDIDATES algorithms for a shape the fastest that computes the
 *        heuristic's first choice's bits (lt_tune, below): timed on the first call of each shape that writes its
 *        output without reading it (beta 0, or a separate output), once per process, for the first LT_TUNE_MAX
 *        shapes; the results are bitwise lt's, and runs stay bitwise reproducible whichever algorithm the timing
 *        picks. SIMPO_TRACE=gemm prints each choice. Unmeasured (scripts/gpu_session.sh's single run
 *        SIMPO_CUDA_GEMM=tune, and the perf section of test_cuda_ops: the benchmark's GEMM shapes under ex and
 *        tune).
 *   Measured on an H200 (2026-11-27, docs/performance.md): lt as fast as ex on both benchmark shapes (within 0.4%),
 *   so ex stays the default. (A third path, cuBLASLt's CUBLAS_COMPUTE_32F_FAST_16BF on fp32 operands, was removed:
 *   on the H200 its operand conversion is not round-to-nearest bf16 (normwise 2e-3 from the CPU's bf16 reference
 *   where the cast paths agree to fp32 summation order), and with held operands and the bf16 weight copy it had
 *   no conversion passes left to save.) When cuBLASLt offers no algorithm for a shape, the call takes the ex path
 *   (said once on stderr).
 * Epilogues: Llama's linears have no bias and the residual adds are already fused as beta = 1 (the o and down
 * projections accumulate into the residual stream), so no cuBLASLt epilogue applies to the fp32-activation model;
 * they would pay with bf16 activations (bf16 D output) or biased layers. */
#include <cuda_bf16.h>
#include <cublasLt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* backend.h to_bf16 (the model's bf16 compute weights): the same conversion as every operand cast, into y */
void cuda_to_bf16(uint16_t *y, const float *x, size_t n) {
    if (!n) return;
    size_t threads = (n + 3) / 4;
    to_bf16_kernel<<<(unsigned)((threads + 255) / 256), 256, 0, cu_stream()>>>((__nv_bfloat16 *)y, x, n,
                                                                              ((uintptr_t)x & 15) == 0);
    CUDA_LAUNCH_CHECK("to_bf16");
}

/* a bf16 copy of x[n] in op scratch (the caller frees it with cu_scratch_free) */
static __nv_bfloat16 *to_bf16(const float *x, size_t n, const char *what) {
    __nv_bfloat16 *y = (__nv_bfloat16 *)cu_scratch(n * sizeof(__nv_bfloat16), what);
    cuda_to_bf16((uint16_t *)y, x, n);
    return y;
}

/* ---- held operands (backend.h matmul_hold / matmul_release) ----
 * A held x keeps one bf16 copy, made by the first matmul that reads it and freed at the last release; matmuls
 * whose A or B is exactly (x, n) use it instead of converting x again. SIMPO_CUDA_CHECK_HOLDS=1 (set by the CPU
 * emulation's run.sh) converts x again at the release and dies unless the copy still matches bitwise: a caller
 * that wrote a held operand. */
enum { HOLDS = 8 };
typedef struct {
    const float *x;
    size_t n;
    int count;
    __nv_bfloat16 *b; /* NULL until a bf16 matmul reads x */
} Hold;
static Hold g_holds[HOLDS];

void cuda_matmul_hold(const float *x, size_t n) {
    Hold *f = NULL;
    for (int i = 0; i < HOLDS; i++) {
        if (g_holds[i].count && g_holds[i].x == x) {
            if (g_holds[i].n != n)
                sd_die("cuda", "matmul_hold: %p held with %zu elements, held again with %zu", (const void *)x,
                       g_holds[i].n, n);
            g_holds[i].count++;
            return;
        }
        if (!g_holds[i].count && !f) f = &g_holds[i];
    }
    if (!f) sd_die("cuda", "matmul_hold: more than %d operands held at once", HOLDS);
    f->x = x, f->n = n, f->count = 1, f->b = NULL;
}

static void check_hold(const Hold *h) {
    const char *e = getenv("SIMPO_CUDA_CHECK_HOLDS");
    if (!h->b || !e || strcmp(e, "1") != 0) return;
    __nv_bfloat16 *again = to_bf16(h->x, h->n, "held operand check");
    size_t bytes = h->n * sizeof(__nv_bfloat16);
    unsigned char *p = (unsigned char *)sd_alloc(2 * bytes, "held operand check");
    cu_download(p, h->b, bytes);
    cu_download(p + bytes, again, bytes);
    if (memcmp(p, p + bytes, bytes) != 0)
        sd_die("cuda", "matmul_release: the held operand %p (%zu elements) was written while held",
               (const void *)h->x, h->n);
    free(p);
    cu_scratch_free(again);
}

void cuda_matmul_release(const float *x) {
    for (int i = 0; i < HOLDS; i++) {
        Hold *h = &g_holds[i];
        if (!h->count || h->x != x) continue;
        if (--h->count) return;
        check_hold(h);
        if (h->b) cu_scratch_free(h->b);
        memset(h, 0, sizeof *h);
        return;
    }
    sd_die("cuda", "matmul_release: %p is not held", (const void *)x);
}

/* the bf16 operand x[n]: the held copy (*own false) or a new one in op scratch (*own true: the caller frees it) */
static __nv_bfloat16 *operand_bf16(const float *x, size_t n, const char *what, bool *own) {
    for (int i = 0; i < HOLDS; i++) {
        Hold *h = &g_holds[i];
        if (h->count && h->x == x && h->n == n) {
            if (!h->b) h->b = to_bf16(x, n, "held bf16 operand");
            *own = false;
            return h->b;
        }
    }
    *own = true;
    return to_bf16(x, n, what);
}

/* ---- the bf16 mode's GEMM paths (SIMPO_CUDA_GEMM, header) ---- */
typedef enum { GEMM_EX, GEMM_LT, GEMM_TUNE } GemmPath;
static GemmPath gemm_path(void) {
    const char *e = getenv("SIMPO_CUDA_GEMM");
    if (!e || !*e || strcmp(e, "ex") == 0) return GEMM_EX;
    if (strcmp(e, "lt") == 0) return GEMM_LT;
    if (strcmp(e, "tune") == 0) return GEMM_TUNE;
    sd_die("cuda", "SIMPO_CUDA_GEMM=%s: expected ex, lt or tune", e);
    return GEMM_EX;
}

/* LT_PLANS: more than the distinct GEMM keys of a model step (shapes x transposes x alignments), so that a tuned
 * plan is not evicted and timed again; LT_CANDIDATES: the heuristic's algorithms the tune path times;
 * LT_TUNE_MIN16: the fewest elements of a bf16 output whose bits tell summation orders apart (lt_tune);
 * LT_TUNE_MAX: the most shapes a process times (data whose micro-batches vary in length makes a new shape of
 * every token count: past that many, a new one keeps the heuristic's choice, so the timing stays a start-up cost) */
enum { LT_PLANS = 256, LT_CANDIDATES = 8, LT_TUNE_REPS = 3, LT_TUNE_MIN16 = 1 << 22, LT_TUNE_MAX = 128 };
static int g_tunes; /* shapes timed so far (lt_tune) */
static const size_t LT_WORKSPACE = (size_t)32 << 20; /* bytes: what cuBLAS recommends on Hopper */
/* One cached cuBLASLt plan: the key (shape, transposes, operand type, output type, alignments) and what the
 * heuristic chose.
 * ok false: cuBLASLt offered nothing for this key (the caller falls back to cublasGemmEx). */
typedef struct {
    int M, N, K;
    bool tA, tB, c16, used; /* c16: C and D bf16 (matmul16_out16), else fp32 */
    bool tune;              /* the tune path's plan (its candidates), else lt's */
    unsigned align[4]; /* bytes: the Lt operands A (our B), B (our A), C, D */
    bool ok;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    size_t ws; /* workspace bytes the algorithm needs */
    /* the tune path: the heuristic's algorithms in its order (cand[0] its choice), and once timed (tuned) the index
     * chosen and how many computed cand[0]'s bits */
    int ncand, chosen, eligible;
    bool tuned;
    cublasLtMatmulAlgo_t cand[LT_CANDIDATES];
    size_t cand_ws[LT_CANDIDATES];
} LtPlan;
static LtPlan g_plans[LT_PLANS];
static int g_plan_next; /* round-robin eviction once all slots are used */
static cublasLtHandle_t g_lt;

/* the largest power of two (<= 256) dividing the address: the alignment cuBLASLt may assume */
static unsigned align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && a % al) al >>= 1;
    return al;
}
static void lt_plan_release(LtPlan *p) {
    if (p->used && p->ok) {
        cublasLtMatmulDescDestroy(p->desc);
        cublasLtMatrixLayoutDestroy(p->la);
        cublasLtMatrixLayoutDestroy(p->lb);
        cublasLtMatrixLayoutDestroy(p->lc);
    }
    memset(p, 0, sizeof *p);
}
/* Builds the descriptors of C^T = op(B)^T op(A)^T (column-major, operands swapped as in cublasGemmEx) and asks the
 * heuristic for one algorithm. */
static void lt_plan_build(LtPlan *p) {
    const cudaDataType_t t = CUDA_R_16BF;
    const cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    int32_t opa = p->tB ? CUBLAS_OP_T : CUBLAS_OP_N, opb = p->tA ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    /* Lt A = our B: stored [K,N] row-major = column-major [N,K] (ld N), or [N,K] = column-major [K,N] (ld K) */
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, t, p->tB ? p->K : p->N, p->tB ? p->N : p->K, p->tB ? p->K : p->N));
    /* Lt B = our A: stored [M,K] = column-major [K,M] (ld K), or [K,M] = column-major [M,K] (ld M) */
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, t, p->tA ? p->M : p->K, p->tA ? p->K : p->M, p->tA ? p->M : p->K));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, p->c16 ? CUDA_R_16BF : CUDA_R_32F, p->N, p->M, p->N));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = LT_WORKSPACE;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    static const cublasLtMatmulPreferenceAttributes_t al_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, al_attr[i], &p->align[i], sizeof p->align[i]));
    cublasLtMatmulHeuristicResult_t r[LT_CANDIDATES];
    int n = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(g_lt, p->desc, p->la, p->lb, p->lc, p->lc, pref,
                                                      p->tune ? LT_CANDIDATES : 1, r, &n);
    cublasLtMatmulPreferenceDestroy(pref);
    p->ncand = 0;
    for (int i = 0; s == CUBLAS_STATUS_SUCCESS && i < n; i++)
        if (r[i].state == CUBLAS_STATUS_SUCCESS && r[i].workspaceSize <= LT_WORKSPACE) {
            p->cand[p->ncand] = r[i].algo;
            p->cand_ws[p->ncand++] = r[i].workspaceSize;
        }
    p->ok = p->ncand > 0;
    if (p->ok) {
        p->algo = p->cand[0];
        p->ws = p->cand_ws[0];
        /* nothing to choose from, or a bf16 output too small to show another summation order (lt_tune) */
        p->tuned = p->ncand == 1 || (p->c16 && (double)p->M * p->N < LT_TUNE_MIN16);
        p->chosen = 0, p->eligible = 1;
    } else {
        cublasLtMatmulDescDestroy(p->desc);
        cublasLtMatrixLayoutDestroy(p->la);
        cublasLtMatrixLayoutDestroy(p->lb);
        cublasLtMatrixLayoutDestroy(p->lc);
        static bool said;
        if (!said)
            fprintf(stderr, "simpo_dist: cuBLASLt offers no algorithm for a bf16 GEMM M=%d N=%d K=%d (%s); "
                            "using cublasGemmEx for such shapes\n",
                    p->M, p->N, p->K, cublasGetStatusString(s));
        said = true;
    }
}
/* D = alpha op(A) op(B) + beta C of p's layouts with the algorithm `algo` and ws_bytes of workspace ws */
static cublasStatus_t lt_run(const LtPlan *p, const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, void *D,
                             const void *C, const void *A, const void *B, float alpha, float beta) {
    return cublasLtMatmul(g_lt, p->desc, &alpha, B, p->la, A, p->lb, &beta, C, p->lc, D, p->lc, algo, ws, ws_bytes,
                          cu_stream());
}

/* ---- the tune path's choice (SIMPO_CUDA_GEMM=tune) ----
 * A fingerprint of a GEMM's output: the XOR over its 16-bit words of a 64-bit mix of (index, word), so any
 * changed bit changes it (but for a 2^-64 chance) and the order of the reduction does not matter. Each block's
 * XOR goes to part[block]; the host XORs the parts (no atomics, as everywhere in this backend). */
static __device__ __forceinline__ unsigned long long mix64(unsigned long long z) { /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
__global__ void fingerprint_k(unsigned long long *part, const uint16_t *w, size_t n) {
    __shared__ unsigned long long red[256];
    unsigned long long h = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        h ^= mix64(((unsigned long long)i << 16) | w[i]);
    red[threadIdx.x] = h;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) red[threadIdx.x] ^= red[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = red[0];
}
static unsigned long long fingerprint(const void *d, size_t bytes) {
    size_t n = bytes / 2; /* fp32 and bf16 outputs alike: whole 16-bit words */
    unsigned blocks = (unsigned)((n + 255) / 256 < 1024 ? (n + 255) / 256 : 1024);
    unsigned long long *part = (unsigned long long *)cu_scratch(blocks * sizeof *part, "GEMM fingerprint");
    fingerprint_k<<<blocks, 256, 0, cu_stream()>>>(part, (const uint16_t *)d, n);
    CUDA_LAUNCH_CHECK("fingerprint");
    unsigned long long h[1024], x = 0;
    cu_download(h, part, blocks * sizeof *part);
    cu_scratch_free(part);
    for (unsigned b = 0; b < blocks; b++) x ^= h[b];
    return x;
}

/* Times p's candidates on this call's operands and keeps the fastest of those whose output has the bits of the
 * heuristic's first choice (cand[0]), so the choice never changes a result: algorithms that sum in another order
 * (split-K, stream-K) drop out by their bits, and one that fails to launch drops out by its status. An fp32 output
 * shows another order in nearly every element; a bf16 one only where the fp32 sums' difference (a few units in
 * their last place, ~2^-22 of the value) moves a rounding across a bf16 halfway point, ~1 element in 2^14-2^16,
 * so a bf16 output is timed only from LT_TUNE_MIN16 elements (~64 such crossings expected: a miss ~e^-64); a
 * smaller one keeps the heuristic's choice untimed (lt_plan_build). Each is run once (its output fingerprinted),
 * then LT_TUNE_REPS times between two events. The caller has checked that the call writes D without reading it
 * (beta 0, or D != C), so the runs leave D as the call itself will. The process stops (host syncs) once per
 * tuned shape: the first steps of a run. */
static void lt_tune(LtPlan *p, void *D, const void *C, const void *A, const void *B, float alpha, float beta) {
    size_t wsmax = 0, bytes = (size_t)p->M * (size_t)p->N * (p->c16 ? 2 : 4);
    for (int i = 0; i < p->ncand; i++) wsmax = p->cand_ws[i] > wsmax ? p->cand_ws[i] : wsmax;
    void *ws = wsmax ? cu_scratch(wsmax, "cuBLASLt workspace (tuning)") : NULL;
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    unsigned long long h0 = 0;
    int best = 0, eligible = 0;
    float t_best = 0, t0 = 0;
    for (int i = 0; i < p->ncand; i++) {
        const cublasLtMatmulAlgo_t *a = &p->cand[i];
        cublasStatus_t s = lt_run(p, a, ws, p->cand_ws[i], D, C, A, B, alpha, beta);
        if (i == 0) CUBLAS_CHECK(s); /* the heuristic's own choice: as the lt path, which would stop here too */
        else if (s != CUBLAS_STATUS_SUCCESS) continue;
        unsigned long long h = fingerprint(D, bytes);
        if (i == 0) h0 = h;
        else if (h != h0) continue;
        eligible++;
        CUDA_CHECK(cudaEventRecord(e0, cu_stream()));
        for (int r = 0; r < LT_TUNE_REPS; r++)
            CUBLAS_CHECK(lt_run(p, a, ws, p->cand_ws[i], D, C, A, B, alpha, beta));
        CUDA_CHECK(cudaEventRecord(e1, cu_stream()));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        float us = ms * 1000.0f / LT_TUNE_REPS;
        if (i == 0) t0 = us;
        if (i == 0 || us < t_best) t_best = us, best = i;
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    if (ws) cu_scratch_free(ws);
    p->algo = p->cand[best];
    p->ws = p->cand_ws[best];
    p->chosen = best, p->eligible = eligible;
    p->tuned = true;
    g_tunes++;
    const char *t = getenv("SIMPO_TRACE");
    if (t && strstr(t, "gemm"))
        fprintf(stderr, "[gemm] M=%d N=%d K=%d %c%c %s, aligned %u/%u/%u/%u: algorithm %d of %d (%d with the "
                        "heuristic's bits), %.1f us against the heuristic's %.1f us (%.3fx)%s\n",
                p->M, p->N, p->K, p->tA ? 'T' : 'N', p->tB ? 'T' : 'N', p->c16 ? "bf16 out" : "fp32 out",
                p->align[1], p->align[0], p->align[2], p->align[3], best, p->ncand, eligible, t_best, t0,
                t_best > 0 ? t0 / t_best : 1.0,
                g_tunes == LT_TUNE_MAX ? "; the last shape timed, later ones keep the heuristic's choice" : "");
}

/* D = alpha op(A) op(B) + beta C through cuBLASLt: A, B bf16; C and D fp32, or bf16 when c16 (D == C: in place,
 * else D a separate output of C's layout); tune: the tune path's plan. false when cuBLASLt has no algorithm for
 * it (nothing was done). */
static bool lt_matmul(void *D, const void *C, const void *A, const void *B, int M, int N, int K, bool tA, bool tB,
                      float alpha, float beta, bool c16, bool tune) {
    if (!g_lt) CUBLAS_CHECK(cublasLtCreate(&g_lt));
    unsigned al[4] = {align_of(B), align_of(A), align_of(C), align_of(D)};
    LtPlan *p = NULL;
    for (int i = 0; i < LT_PLANS && !p; i++) {
        LtPlan *q = &g_plans[i];
        if (q->used && q->M == M && q->N == N && q->K == K && q->tA == tA && q->tB == tB &&
            q->c16 == c16 && q->tune == tune && memcmp(q->align, al, sizeof al) == 0)
            p = q;
    }
    if (!p) {
        p = &g_plans[g_plan_next];
        g_plan_next = (g_plan_next + 1) % LT_PLANS;
        lt_plan_release(p);
        p->M = M, p->N = N, p->K = K, p->tA = tA, p->tB = tB, p->c16 = c16, p->tune = tune;
        memcpy(p->align, al, sizeof al);
        p->used = true;
        lt_plan_build(p);
    }
    if (!p->ok) return false;
    if (!p->tuned && (D != C || beta == 0.0f)) {
        if (g_tunes < LT_TUNE_MAX) lt_tune(p, D, C, A, B, alpha, beta);
        else p->tuned = true; /* the heuristic's choice (cand[0]) */
    }
    void *ws = p->ws ? cu_scratch(p->ws, "cuBLASLt workspace") : NULL;
    CUBLAS_CHECK(lt_run(p, &p->algo, ws, p->ws, D, C, A, B, alpha, beta));
    if (ws) cu_scratch_free(ws);
    return true;
}

/* D = alpha op(A) op(B) + beta C on bf16 operands a16, b16 (the cast paths: cublasGemmEx, or cuBLASLt unless
 * path is ex); C and D fp32, or bf16 when c16 (the fp32 sums rounded by the GEMM's epilogue). D == C: in place;
 * else (a separate output, matmul16_res) cuBLASLt whatever the path (the ex path through lt's plan), the only one
 * that reads C and writes another D, and where it offers no algorithm C copied into D and the in-place product */
static void gemm_bf16(void *D, const void *C, bool c16, const __nv_bfloat16 *a16, const __nv_bfloat16 *b16, int M,
                      int N, int K, bool transA, bool transB, float alpha, float beta, GemmPath path) {
    int lda = transA ? M : K; /* A stored [K,M] when transposed, else [M,K] */
    int ldb = transB ? K : N; /* B stored [N,K] when transposed, else [K,N] */
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    if ((path != GEMM_EX || D != C) &&
        lt_matmul(D, C, a16, b16, M, N, K, transA, transB, alpha, beta, c16, path == GEMM_TUNE))
        return;
    if (D != C)
        CUDA_CHECK(cudaMemcpyAsync(D, C, (size_t)M * (size_t)N * (c16 ? 2 : 4), cudaMemcpyDeviceToDevice,
                                   cu_stream()));
    CUBLAS_CHECK(cublasGemmEx(cu_blas(), opB, opA, N, M, K, &alpha, b16, CUDA_R_16BF, ldb, a16, CUDA_R_16BF, lda, &beta,
                              D, c16 ? CUDA_R_16BF : CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* true (after C = beta C) when the product is empty */
static bool empty_product(float *C, int M, int N, int K, float beta) {
    if (M <= 0 || N <= 0) return true;
    if (K <= 0) { /* empty inner dimension: C = beta C, zeros when beta = 0 (as BLAS) */
        cuda_beta_scale(C, beta, (size_t)M * (size_t)N);
        return true;
    }
    return false;
}

void cuda_matmul(float *C, const float *A, const float *B, int M, int N, int K, bool transA, bool transB,
                 float alpha, float beta) {
    if (empty_product(C, M, N, K, beta)) return;
    if (cu_bf16()) {
        GemmPath path = gemm_path();
        bool own_a, own_b;
        __nv_bfloat16 *a16 = operand_bf16(A, (size_t)M * (size_t)K, "bf16 matmul A", &own_a);
        __nv_bfloat16 *b16 = operand_bf16(B, (size_t)K * (size_t)N, "bf16 matmul B", &own_b);
        gemm_bf16(C, C, false, a16, b16, M, N, K, transA, transB, alpha, beta, path);
        if (own_a) cu_scratch_free(a16);
        if (own_b) cu_scratch_free(b16);
        return;
    }
    int lda = transA ? M : K, ldb = transB ? K : N;
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasComputeType_t ct = cu_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasGemmEx(cu_blas(), opB, opA, N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta,
                              C, CUDA_R_32F, N, ct, CUBLAS_GEMM_DEFAULT));
}

/* D (fp32, or bf16 when c16) = alpha op(A) op(B) + beta C (gemm_bf16) for operands in bf16 storage (a16, b16) or
 * fp32 (converted into op scratch, or a held copy) on the cast paths */
static void gemm_mixed(void *D, const void *C, bool c16, const void *A, bool a16, const void *B, bool b16, int M,
                       int N, int K, bool transA, bool transB, float alpha, float beta) {
    bool own_a = false, own_b = false;
    const __nv_bfloat16 *a = a16 ? (const __nv_bfloat16 *)A
                                 : operand_bf16((const float *)A, (size_t)M * (size_t)K, "bf16 matmul A", &own_a);
    const __nv_bfloat16 *b = b16 ? (const __nv_bfloat16 *)B
                                 : operand_bf16((const float *)B, (size_t)K * (size_t)N, "bf16 matmul B", &own_b);
    gemm_bf16(D, C, c16, a, b, M, N, K, transA, transB, alpha, beta, gemm_path());
    if (own_a) cu_scratch_free((void *)a);
    if (own_b) cu_scratch_free((void *)b);
}

/* backend.h matmul16: bf16-storage operands go to the GEMM as they are; an fp32 one is converted (or its held
 * copy used). */
void cuda_matmul16(float *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K, bool transA,
                   bool transB, float alpha, float beta) {
    if (!cu_bf16()) sd_die("cuda", "matmul16 needs the bf16 mode (model.dtype: bf16)");
    if (!a16 && !b16) {
        cuda_matmul(C, (const float *)A, (const float *)B, M, N, K, transA, transB, alpha, beta);
        return;
    }
    if (empty_product(C, M, N, K, beta)) return;
    gemm_mixed(C, C, false, A, a16, B, b16, M, N, K, transA, transB, alpha, beta);
}

/* backend.h matmul16_res: D = op(A) op(B) + R, operands as matmul16's, through gemm_mixed's separate output */
void cuda_matmul16_res(float *D, const float *R, const void *A, bool a16, const void *B, bool b16, int M, int N,
                       int K, bool transA, bool transB) {
    if (!cu_bf16()) sd_die("cuda", "matmul16_res needs the bf16 mode (model.dtype: bf16)");
    if (M <= 0 || N <= 0) return;
    if (K <= 0) /* D = R */
        CUDA_CHECK(cudaMemcpyAsync(D, R, (size_t)M * (size_t)N * sizeof(float), cudaMemcpyDeviceToDevice, cu_stream()));
    else gemm_mixed(D, R, false, A, a16, B, b16, M, N, K, transA, transB, 1.0f, 1.0f);
}

/* backend.h matmul16_out16: matmul16 (alpha 1, beta 0) with C written as bf16 by the GEMM itself; a bf16 operand
 * goes as it is and an fp32 one is converted (or held) */
void cuda_matmul16_out16(uint16_t *C, const void *A, bool a16, const void *B, bool b16, int M, int N, int K,
                         bool transA, bool transB) {
    if (!cu_bf16()) sd_die("cuda", "matmul16_out16 needs the bf16 mode (model.dtype: bf16)");
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty inner dimension: zeros (bf16 0 is all-zero bits) */
        CUDA_CHECK(cudaMemsetAsync(C, 0, (size_t)M * (size_t)N * sizeof(uint16_t), cu_stream()));
        return;
    }
    gemm_mixed(C, C, true, A, a16, B, b16, M, N, K, transA, transB, 1.0f, 0.0f);
}

/* The tune path's choice for a key (test_cuda_ops): false when no plan of the tune path has been timed for
 * (M, N, K, transposes, bf16 output) on any alignment; else the chosen index, the heuristic's candidates and how
 * many computed its first choice's bits. */
extern "C" bool cuda_gemm_tune_choice(int M, int N, int K, bool tA, bool tB, bool c16, int *chosen, int *candidates,
                                      int *eligible) {
    for (int i = 0; i < LT_PLANS; i++) {
        const LtPlan *q = &g_plans[i];
        if (q->used && q->ok && q->tune && q->tuned && q->M == M && q->N == N && q->K == K && q->tA == tA &&
            q->tB == tB && q->c16 == c16) {
            *chosen = q->chosen, *candidates = q->ncand, *eligible = q->eligible;
            return true;
        }
    }
    return false;
}

/* How many shapes the tune path has timed in this process (LT_TUNE_MAX stops it); reset: count from 0 again, so a
 * test of the limit leaves later tests their timings (test_cuda_ops) */
extern "C" int cuda_gemm_tunes(bool reset) {
    int n = g_tunes;
    if (reset) g_tunes = 0;
    return n;
}
