/* test_cuda_ops.c — every op of the CUDA backend against the fp32 CPU reference backend (src/cpu/), on random
 * inputs: odd sizes, GQA ratios 1 / 2 / 4, head dims 16 .. 256, packed sequences of lengths 0, 1, 7, 64, 130 and
 * more than 32 sequences at once, vocabulary slices with targets outside them. Also: memory ops and bytes_in_use,
 * "writes" ops must not leak stale output contents, "accumulates" ops must add to what is there, and every op is
 * deterministic (a second GPU run is bitwise identical). Without a CUDA device it prints "SKIPPED: no CUDA device"
 * and exits 77, which ctest reports as skipped.
 *
 * Tolerances (normwise: max|gpu - cpu| / max|cpu| over the tensor; fp32 unit roundoff u = 2^-24 ~ 6e-8). Both
 * sides are fp32 with the same formulas; they differ by summation order, fused multiply-adds and CUDA's expf
 * (<= 2 ulp) vs glibc's, so the bounds are a few u times the number of rounding steps, with ~10x margin:
 *   exact (bitwise): memory ops, gather_rows, scatter_rows, add_rows, add_rows_b16 (one fp32 add, rounded to
 *     nearest even on both sides), bias_add, bias_add_b16 (likewise; section bias), add, scale, embed_fwd,
 *     embed_bwd (same add order), xent_stats max and tgt
 *   bias_grad, bias_grad_b16 (section bias) 2^-22 (|sum dy| + |db|) + (N + 1) 2^-52 sum |dy| per column (double
 *     sums in another order, each rounded once, then one fp32 add; derivation at t_bias)
 *   sumsq 1e-12 relative (double accumulation of exact products, order only)
 *   matmul 1e-5 (1 + K / 1024) (fp32 dot products of length K in different blockings); 2e-3 with
 *     SIMPO_CUDA_TF32=1 (TF32 has a 10-bit mantissa); the bf16 mode (section matmul_bf16, every SIMPO_CUDA_GEMM
 *     path) the same 1e-5 (1 + K / 1024) against the CPU's bf16 emulation (same rounded operands, exact products)
 *   rmsnorm fwd 1e-6, bwd 2e-6; rope 1e-6; swiglu and geglu fwd 1e-6, bwd 2e-6; softcap fwd 1e-6, bwd 2e-6;
 *     xent sumexp 1e-6 (elementwise), xent_bwd 1e-6 (xent_bwd16: within one bf16 step, as the storage ops; the
 *     autocast xent_stats_b16 and xent_bwd_b16 on bf16 logits likewise);
 *     adamw 1e-6 (double math rounded once)
 *   attention fwd out / lse 5e-6 and bwd dq / dk / dv 2e-5: twice the CPU op test's bounds against float64
 *     (2e-6 and 1e-5), since here both sides carry their own rounding
 *   attention on tensor cores (section attn_tc, SIMPO_CUDA_ATTN=tc: bf16 operands) out 2e-2, lse 5e-3, dq / dk /
 *     dv 3e-2 against the fp32 CPU reference (derivation at t_attn_tc); all versions (SIMPO_CUDA_ATTN_TC=1, 2, 3),
 *     and versions 2 and 3 within the same bounds of version 1; version 3's mma.sync / ldmatrix wrappers exactly
 *     against a host matrix product of small integers
 *   attention with Gemma 2's options (section attn_gemma2: scale, soft-capped scores, sliding windows shorter and
 *     longer than a 32-row tile) the fp32 bounds above (tanhf adds a few ulp per score, as expf does); the same with
 *     SIMPO_CUDA_ATTN=tc, which must route such calls to the fp32 kernels (tensor-core errors would be ~1e-3)
 * A perf section at the end prints GPU timings of a Llama-8B-sized layer's matmul and attention (fp32 and tensor
 * cores v1, v2, v3; no checks);
 * SIMPO_GPU_SKIP_PERF=1 skips it. */
#include <stdint.h>
#include "backend.h"
#include "backend_cuda.h"
#include "test_util.h"
#define OPS_SEED 0x2545f4914f6cdd1dULL
#include "ops_common.h"

static const Backend *cpu, *gpu;

/* ---- helpers ---- */
static float *hrand(size_t n, double lo, double hi) {
    float *x = sd_alloc((n ? n : 1) * sizeof(float), "host tensor");
    fill(x, n, lo, hi);
    return x;
}
static float *hconst(size_t n, float v) {
    float *x = sd_alloc((n ? n : 1) * sizeof(float), "host tensor");
    for (size_t i = 0; i < n; i++) x[i] = v;
    return x;
}
static float *hcopy(const float *src, size_t n) {
    float *x = sd_alloc((n ? n : 1) * sizeof(float), "host tensor");
    if (n) memcpy(x, src, n * sizeof(float));
    return x;
}
static void *up(const void *h, size_t bytes) { /* a device copy of a host array */
    void *d = gpu->alloc(bytes, "test tensor");
    gpu->upload(d, h, bytes);
    return d;
}
static float *down(const void *d, size_t n) { /* a host copy of a device float array */
    float *h = sd_alloc((n ? n : 1) * sizeof(float), "host copy");
    gpu->download(h, d, n * sizeof(float));
    return h;
}

/* normwise relative difference max|got - want| / max|want|; fails (naming the worst element) above tol. A NaN or
 * infinity on one side only (or infinities that differ) fails outright. */
static double cmp(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = 0, m = 1e-30;
    size_t at = 0, bad = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) {
            int same = (isnan(got[i]) && isnan(want[i])) || got[i] == want[i];
            if (!same && bad == SIZE_MAX) bad = i;
            continue;
        }
        double d = fabs((double)got[i] - want[i]);
        if (d > e) e = d, at = i;
        m = fmax(m, fabs(want[i]));
    }
    double r = e / m;
    if (bad != SIZE_MAX) r = INFINITY, at = bad;
    CHECK(r <= tol, "%s: normwise diff %.3g > %.3g; worst [%zu] gpu %.9g cpu %.9g (max |cpu| %.3g)", what, r, tol,
          at, n ? got[at] : 0.0, n ? want[at] : 0.0, m);
    return r;
}
static void bitwise(const char *what, const void *a, const void *b, size_t bytes) {
    CHECK(bytes == 0 || memcmp(a, b, bytes) == 0, "%s: not bitwise identical", what);
}

/* ---- memory ---- */
static void t_memory(void) {
    size_t base = gpu->bytes_in_use(), n = 100003;
    float *a = gpu->alloc(n * sizeof(float), "a"), *b = gpu->alloc(n * sizeof(float), "b");
    CHECK(gpu->bytes_in_use() == base + 2 * n * sizeof(float), "bytes_in_use counts allocations: %zu vs %zu",
          gpu->bytes_in_use(), base + 2 * n * sizeof(float));
    float *h = down(a, n);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= h[i] == 0.0f;
    CHECK(zero, "alloc returns zeroed memory");
    float *x = hrand(n, -2, 2);
    gpu->upload(a, x, n * sizeof(float));
    gpu->copy(b, a, n * sizeof(float));
    gpu->download(h, b, n * sizeof(float));
    bitwise("upload -> copy -> download", h, x, n * sizeof(float));
    /* overlapping copies behave like memmove (as the CPU backend) */
    float *ref = hcopy(x, n);
    memmove(ref + 1000, ref + 10, 50000 * sizeof(float));
    gpu->copy(b + 1000, b + 10, 50000 * sizeof(float));
    memmove(ref + 3, ref + 7, 20000 * sizeof(float));
    gpu->copy(b + 3, b + 7, 20000 * sizeof(float));
    gpu->download(h, b, n * sizeof(float));
    bitwise("overlapping copy == memmove", h, ref, n * sizeof(float));
    gpu->zero(b + 5, 100 * sizeof(float));
    gpu->download(h, b, n * sizeof(float));
    zero = 1;
    for (size_t i = 5; i < 105; i++) zero &= h[i] == 0.0f;
    CHECK(zero && h[4] == ref[4] && h[105] == ref[105], "zero clears exactly the range");
    void *z = gpu->alloc(0, "empty");
    CHECK(z != NULL, "alloc(0) is not NULL");
    gpu->free(z);
    gpu->free(NULL);
    gpu->free(a);
    gpu->free(b);
    CHECK(gpu->bytes_in_use() == base, "bytes_in_use back to %zu after free (got %zu)", base, gpu->bytes_in_use());
    free(h), free(x), free(ref);
}

/* ---- add, scale, sumsq ---- */
static void t_elementwise(size_t n) {
    float *y = hrand(n, -1, 1), *x = hrand(n, -3, 3);
    float *dy = up(y, n * 4), *dx = up(x, n * 4);
    cpu->add(y, x, n);
    gpu->add(dy, dx, n);
    float *g = down(dy, n);
    bitwise("add", g, y, n * 4);
    free(g);
    cpu->scale(y, -0.37f, n);
    gpu->scale(dy, -0.37f, n);
    g = down(dy, n);
    bitwise("scale", g, y, n * 4);
    double sc = cpu->sumsq(y, n), sg = gpu->sumsq(dy, n), sg2 = gpu->sumsq(dy, n);
    CHECK(fabs(sg - sc) <= 1e-12 * sc + 1e-300, "sumsq n=%zu: gpu %.17g cpu %.17g", n, sg, sc);
    CHECK(sg == sg2, "sumsq deterministic");
    CHECK(gpu->sumsq(dy, 0) == 0.0, "sumsq of nothing is 0");
    /* sumsq_many: the sums of several tensors (one empty) in one round trip, each bitwise that of sumsq */
    CHECK(gpu->sumsq_many != NULL, "the CUDA backend has sumsq_many");
    const float *xs[4] = {dy, dx, dy + n / 3, dx};
    size_t ns[4] = {n, n, n - n / 3, 0};
    double many[4] = {-1, -1, -1, -1};
    if (gpu->sumsq_many) gpu->sumsq_many(many, xs, ns, 4);
    for (int i = 0; i < 4; i++)
        CHECK(many[i] == gpu->sumsq(xs[i], ns[i]), "sumsq_many tensor %d (n=%zu): %.17g vs sumsq %.17g", i, ns[i],
              many[i], gpu->sumsq(xs[i], ns[i]));
    free(g), free(y), free(x);
    gpu->free(dy), gpu->free(dx);
}

/* ---- matmul ---- */
/* one GPU matmul against the CPU's (in whatever precision both are in): tolerance tol normwise, and a second GPU
 * run bitwise the first; operands and C start off elements past their allocation (alignment) */
static void matmul_case(int M, int N, int K, int tA, int tB, int acc, int off, double tol, const char *label) {
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *A = hrand(na, -1, 1), *B = hrand(nb, -1, 1), *C = hrand(nc, -1, 1);
    float *bA = gpu->alloc((na + off) * 4, "A"), *bB = gpu->alloc((nb + off) * 4, "B");
    float *bC = gpu->alloc((nc + off) * 4, "C"), *bC2 = gpu->alloc((nc + off) * 4, "C2");
    float *dA = bA + off, *dB = bB + off, *dC = bC + off, *dC2 = bC2 + off;
    gpu->upload(dA, A, na * 4), gpu->upload(dB, B, nb * 4);
    gpu->upload(dC, C, nc * 4), gpu->upload(dC2, C, nc * 4);
    float alpha = acc ? 0.75f : 1.0f, beta = acc ? 1.0f : 0.0f;
    cpu->matmul(C, A, B, M, N, K, tA, tB, alpha, beta);
    gpu->matmul(dC, dA, dB, M, N, K, tA, tB, alpha, beta);
    gpu->matmul(dC2, dA, dB, M, N, K, tA, tB, alpha, beta);
    float *g = down(dC, nc), *g2 = down(dC2, nc);
    char what[160];
    snprintf(what, sizeof what, "matmul%s M=%d N=%d K=%d tA=%d tB=%d acc=%d off=%d", label, M, N, K, tA, tB, acc, off);
    cmp(what, g, C, nc, tol);
    bitwise(what, g, g2, nc * 4);
    free(A), free(B), free(C), free(g), free(g2);
    gpu->free(bA), gpu->free(bB), gpu->free(bC), gpu->free(bC2);
}
static void t_matmul(int M, int N, int K) {
    const char *t = getenv("SIMPO_CUDA_TF32");
    double tol = (t && strcmp(t, "1") == 0) ? 2e-3 : 1e-5 * (1 + K / 1024.0);
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++)
            for (int acc = 0; acc < 2; acc++) matmul_case(M, N, K, tA, tB, acc, 0, tol, "");
}
/* bf16 mode (section matmul_bf16): every SIMPO_CUDA_GEMM path (matmul.cu: ex, lt) against the CPU's bf16
 * emulation. Both round each operand element to bf16 (nearest even) and form exact products, so they differ only
 * by fp32 summation order: the fp32 tolerance holds (a TF32 or truncating operand conversion would be off by
 * ~2^-9 relative per product, far above it: cuBLASLt's CUBLAS_COMPUTE_32F_FAST_16BF failed it on an H200 by 2e-3,
 * and that path was removed). Operands and C also start 4 / 8 bytes past an aligned address (the
 * model's views into flat buffers can), which the cuBLASLt paths must pass to the heuristic as their alignment. */
/* the bf16 mode on both backends, with SIMPO_CUDA_GEMM saved (bf16_begin) and restored (bf16_end) around a test
 * that switches GEMM paths */
/* a kernel-path variable's value before a test sets it (env_save: a copy, or NULL when unset), and its restoration
 * (env_restore: set back or unset; frees the copy) */
static char *env_save(const char *name) {
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}
static void env_restore(const char *name, char *saved) {
    if (saved) setenv(name, saved, 1), free(saved);
    else unsetenv(name);
}
static char *bf16_begin(void) {
    gpu->set_matmul_bf16(true);
    cpu->set_matmul_bf16(true);
    return env_save("SIMPO_CUDA_GEMM");
}
static void bf16_end(char *saved) {
    gpu->set_matmul_bf16(false);
    cpu->set_matmul_bf16(false);
    env_restore("SIMPO_CUDA_GEMM", saved);
}
static void t_matmul_bf16(int M, int N, int K, int off) {
    static const char *paths[] = {"ex", "lt", "tune"};
    /* the tune path times each shape's candidates on its first call (ten GEMMs for one under the emulation): not
     * on the emulation's largest shape */
    const bool emu = strstr(cuda_device_name(), "emulation") != NULL;
    int npaths = emu && (double)M * N * K > 2e6 ? 2 : 3;
    char *saved = bf16_begin();
    for (int pi = 0; pi < npaths; pi++) {
        setenv("SIMPO_CUDA_GEMM", paths[pi], 1);
        char label[48];
        snprintf(label, sizeof label, " bf16 SIMPO_CUDA_GEMM=%s", paths[pi]);
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) /* beta = 1 on half of the transposes */
                matmul_case(M, N, K, tA, tB, (tA + tB) % 2, off, 1e-5 * (1 + K / 1024.0), label);
    }
    bf16_end(saved);
}
/* the tune path (section matmul_bf16; matmul.cu lt_tune, SIMPO_CUDA_GEMM=tune): it keeps, of the heuristic's
 * algorithms, the fastest that computes the bits of the heuristic's first choice, so every result is bitwise the lt
 * path's: an in-place accumulation (beta 1) is not timed (the timing runs would add the product again) and gives
 * lt's bits before and after the shape is tuned; a call with beta 0 times it; new data after the choice still
 * gives lt's bits (on a GPU: the bits that matched on the timing call's data match on others); a separate output
 * (matmul16_res) is timed on its first call and leaves R as it was; a small bf16 output (matmul16_out16), whose
 * bits would not show another summation order, keeps the heuristic's choice.
 * Under the emulation, whose heuristic offers four algorithms (tests/gpu/emu/cublasLt.h: the first slow, the
 * second its bits at full speed, the third other bits, the fourth failing to launch), the choice is the second of
 * four, two with the first's bits. */
bool cuda_gemm_tune_choice(int M, int N, int K, bool tA, bool tB, bool c16, int *chosen, int *candidates,
                           int *eligible);
static uint16_t *h16(const float *x, size_t n);
static void t_gemm_tune(void) {
    const bool emu = strstr(cuda_device_name(), "emulation") != NULL;
    const int M = 45, N = 38, K = 72, M2 = 41; /* shapes no other test times */
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N, nc2 = (size_t)M2 * N;
    char *saved = bf16_begin();
    float *A = hrand(na, -1, 1), *A2 = hrand(na, -1, 1), *B = hrand(nb, -1, 1), *C0 = hrand(nc, -1, 1);
    float *dA = up(A, na * 4), *dA2 = up(A2, na * 4), *dB = up(B, nb * 4), *dC = gpu->alloc(nc * 4, "C");
    float *R = hrand(nc2, -1, 1), *dR = up(R, nc2 * 4), *dD = gpu->alloc(nc2 * 4, "D");
    uint16_t *B16 = h16(B, nb), *dB16 = up(B16, nb * 2), *d16 = gpu->alloc(nc2 * 2, "D16");
    /* per path (lt, then tune): accumulated in place, beta 0 (the call that times the shape), accumulated again,
     * beta 0 on new data; matmul16_res (a separate output: timed on its first call); matmul16_out16 */
    float *r[2][6];
    int ch = -1, nca = 0, el = 0;
    for (int path = 0; path < 2; path++) {
        setenv("SIMPO_CUDA_GEMM", path ? "tune" : "lt", 1);
        gpu->upload(dC, C0, nc * 4);
        gpu->matmul(dC, dA, dB, M, N, K, false, true, 1, 1);
        r[path][0] = down(dC, nc);
        if (path)
            CHECK(!cuda_gemm_tune_choice(M, N, K, false, true, false, &ch, &nca, &el),
                  "gemm tune: an in-place accumulation (beta 1) was timed");
        gpu->matmul(dC, dA, dB, M, N, K, false, true, 1, 0);
        r[path][1] = down(dC, nc);
        gpu->upload(dC, C0, nc * 4);
        gpu->matmul(dC, dA, dB, M, N, K, false, true, 1, 1);
        r[path][2] = down(dC, nc);
        gpu->matmul(dC, dA2, dB, M, N, K, false, true, 1, 0);
        r[path][3] = down(dC, nc);
        gpu->matmul16_res(dD, dR, dA, false, dB16, true, M2, N, K, false, true);
        r[path][4] = down(dD, nc2);
        gpu->matmul16_out16(d16, dA, false, dB16, true, M2, N, K, false, true);
        r[path][5] = sd_alloc(nc2 * 2, "out16");
        gpu->download(r[path][5], d16, nc2 * 2);
    }
    bool tuned = cuda_gemm_tune_choice(M, N, K, false, true, false, &ch, &nca, &el);
    CHECK(tuned, "gemm tune: the call with beta 0 did not time the shape");
    if (tuned && emu)
        CHECK(ch == 1 && nca == 4 && el == 2,
              "gemm tune (emulation): chose algorithm %d of %d, %d with the first's bits (expected 1 of 4, 2)", ch, nca,
              el);
    else if (tuned)
        CHECK(ch >= 0 && ch < nca && el >= 1 && el <= nca, "gemm tune: algorithm %d of %d, %d with the first's bits",
              ch, nca, el);
    if (tuned) printf("gemm tune %dx%dx%d: algorithm %d of %d (%d with the heuristic's bits)\n", M, N, K, ch, nca, el);
    CHECK(cuda_gemm_tune_choice(M2, N, K, false, true, false, &ch, &nca, &el),
          "gemm tune: matmul16_res's first call (a separate output) did not time its shape");
    /* a bf16 output this small cannot show another summation order (matmul.cu LT_TUNE_MIN16): not timed */
    CHECK(cuda_gemm_tune_choice(M2, N, K, false, true, true, &ch, &nca, &el) && ch == 0,
          "gemm tune: matmul16_out16 of %d elements: algorithm %d, not the heuristic's", M2 * N, ch);
    static const char *what[6] = {"accumulated in place before the shape was timed", "the timing call (beta 0)",
                                  "accumulated in place after", "beta 0 on new data after", "matmul16_res",
                                  "matmul16_out16"};
    for (int i = 0; i < 6; i++) {
        char lb[96];
        snprintf(lb, sizeof lb, "gemm tune: %s, bitwise lt", what[i]);
        bitwise(lb, r[1][i], r[0][i], i < 4 ? nc * 4 : i == 4 ? nc2 * 4 : nc2 * 2);
        free(r[0][i]), free(r[1][i]);
    }
    float *r_after = down(dR, nc2);
    bitwise("gemm tune: matmul16_res leaves R untouched", r_after, R, nc2 * 4);
    free(r_after), free(R), free(B16), free(A), free(A2), free(B), free(C0);
    gpu->free(dA), gpu->free(dA2), gpu->free(dB), gpu->free(dC), gpu->free(dR), gpu->free(dD), gpu->free(dB16);
    gpu->free(d16);
    bf16_end(saved);
}
/* the tune path's limit (section matmul_bf16; matmul.cu LT_TUNE_MAX): new shapes (M = 1, 2, ...) with a choice
 * (more than one candidate) are timed, one each, until the process has timed the limit's number; shapes after that
 * keep the heuristic's choice untimed, with lt's bits */
int cuda_gemm_tunes(bool reset);
static void t_gemm_tune_limit(void) {
    const int N = 24, K = 40, MMAX = 400;
    char *saved = bf16_begin();
    setenv("SIMPO_CUDA_GEMM", "tune", 1);
    float *A = hrand((size_t)MMAX * K, -1, 1), *B = hrand((size_t)N * K, -1, 1);
    float *dA = up(A, (size_t)MMAX * K * 4), *dB = up(B, (size_t)N * K * 4), *dC = gpu->alloc((size_t)MMAX * N * 4, "C");
    int m = 1, grew = 0, still = 0, ch = -1, nca = 0, el = 0;
    bool order = true; /* the count grows by one per timed shape and never after the first untimed one */
    for (; m <= MMAX && still < 8; m++) { /* until eight new shapes with a choice in a row were not timed */
        int before = cuda_gemm_tunes(false);
        gpu->matmul(dC, dA, dB, m, N, K, false, true, 1, 0);
        int after = cuda_gemm_tunes(false);
        if (!cuda_gemm_tune_choice(m, N, K, false, true, false, &ch, &nca, &el) || nca < 2) continue;
        if (after == before + 1) grew++, order = order && !still;
        else if (after == before) still++;
        else order = false;
    }
    int count = cuda_gemm_tunes(false);
    CHECK(still == 8 && grew > 0 && count >= grew && order, "gemm tune limit: %d new shapes timed, then %d not (%d "
          "timed in all; expected timings up to a limit, then none)", grew, still, count);
    const int M = m - 1; /* the last shape: after the limit */
    bool known = cuda_gemm_tune_choice(M, N, K, false, true, false, &ch, &nca, &el);
    CHECK(known && ch == 0, "gemm tune limit: the shape after it keeps the heuristic's choice (algorithm %d)", ch);
    float *t = down(dC, (size_t)M * N);
    setenv("SIMPO_CUDA_GEMM", "lt", 1);
    gpu->matmul(dC, dA, dB, M, N, K, false, true, 1, 0);
    float *l = down(dC, (size_t)M * N);
    bitwise("gemm tune limit: a shape after it has lt's bits", t, l, (size_t)M * N * 4);
    printf("gemm tune limit: %d shapes timed in this process, then none\n", count);
    cuda_gemm_tunes(true);
    free(A), free(B), free(t), free(l);
    gpu->free(dA), gpu->free(dB), gpu->free(dC);
    bf16_end(saved);
}
/* matmul16_res (section matmul_bf16): D = A B^T + R with bf16 or fp32 A and bf16 B (the residual projections'
 * operands), D and R 4 bytes past an aligned start with off: the CPU's copy-and-accumulate within the fp32 summation
 * tolerance, bitwise on a rerun, R untouched */
static void t_matmul16_res(int M, int N, int K, int off) {
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    char *saved = bf16_begin();
    for (int a16 = 0; a16 < 2; a16++) {
        float *A = hrand(na, -1, 1), *B = hrand(nb, -1, 1), *R = hrand(nc, -1, 1), *D = hconst(nc, 5.0f);
        uint16_t *A16 = h16(A, na), *B16 = h16(B, nb);
        float *dAf = up(A, na * 4), *bR = gpu->alloc((nc + off) * 4, "R"), *bD = gpu->alloc((nc + off) * 4, "D");
        float *bD2 = gpu->alloc((nc + off) * 4, "D2");
        uint16_t *dA16 = gpu->alloc(na * 2, "A16"), *dB16 = gpu->alloc(nb * 2, "B16");
        gpu->upload(dA16, A16, na * 2), gpu->upload(dB16, B16, nb * 2);
        gpu->upload(bR + off, R, nc * 4);
        const void *ga = a16 ? (const void *)dA16 : (const void *)dAf, *ca = a16 ? (const void *)A16 : (const void *)A;
        cpu->matmul16_res(D, R, ca, a16, B16, true, M, N, K, false, true);
        gpu->matmul16_res(bD + off, bR + off, ga, a16, dB16, true, M, N, K, false, true);
        gpu->matmul16_res(bD2 + off, bR + off, ga, a16, dB16, true, M, N, K, false, true);
        float *g = down(bD + off, nc), *g2 = down(bD2 + off, nc), *gr = down(bR + off, nc);
        char what[128];
        snprintf(what, sizeof what, "matmul16_res M=%d N=%d K=%d A %s off=%d", M, N, K, a16 ? "bf16" : "fp32", off);
        cmp(what, g, D, nc, 1e-5 * (1 + K / 1024.0));
        bitwise(what, g, g2, nc * 4);
        snprintf(what, sizeof what, "matmul16_res M=%d N=%d K=%d: R untouched", M, N, K);
        bitwise(what, gr, R, nc * 4);
        free(A), free(B), free(R), free(D), free(A16), free(B16), free(g), free(g2), free(gr);
        gpu->free(dAf), gpu->free(bR), gpu->free(bD), gpu->free(bD2), gpu->free(dA16), gpu->free(dB16);
    }
    bf16_end(saved);
}
/* held operands (backend.h matmul_hold / matmul_release, section matmul_bf16): a held operand is converted once and
 * the copy reused, so (i) results with holds are bitwise those without, nested holds included, and (ii) a matmul
 * after the held x was overwritten (which the contract forbids) still sees the old x: proof that the copy is
 * reused rather than made again. After the release the new x is used. */
static void t_matmul_holds(void) {
    const int M = 33, N = 40, K = 24;
    float *A = hrand((size_t)M * K, -1, 1), *A2 = hrand((size_t)M * K, -1, 1), *B = hrand((size_t)K * N, -1, 1);
    float *dA = up(A, (size_t)M * K * 4), *dB = up(B, (size_t)K * N * 4);
    float *dC = gpu->alloc((size_t)M * N * 4, "C"), *dH = gpu->alloc((size_t)M * N * 4, "C held");
    gpu->set_matmul_bf16(true);
    gpu->matmul(dC, dA, dB, M, N, K, false, false, 1, 0);
    float *plain = down(dC, (size_t)M * N);
    gpu->matmul_hold(dA, (size_t)M * K);
    gpu->matmul_hold(dB, (size_t)K * N);
    gpu->matmul_hold(dA, (size_t)M * K); /* nested */
    gpu->matmul(dH, dA, dB, M, N, K, false, false, 1, 0);
    float *held = down(dH, (size_t)M * N);
    bitwise("matmul with held operands equals without", held, plain, (size_t)M * N * 4);
    /* SIMPO_CUDA_CHECK_HOLDS=1 (the emulation's setting) would rightly stop the broken contract at the release */
    char *saved_chk = env_save("SIMPO_CUDA_CHECK_HOLDS");
    unsetenv("SIMPO_CUDA_CHECK_HOLDS");
    gpu->upload(dA, A2, (size_t)M * K * 4); /* breaks the contract on purpose */
    gpu->matmul_release(dA);                /* still held once */
    gpu->matmul(dH, dA, dB, M, N, K, false, false, 1, 0);
    float *stale = down(dH, (size_t)M * N);
    bitwise("a held operand's bf16 copy is reused (the overwritten x is not read)", stale, plain, (size_t)M * N * 4);
    gpu->matmul_release(dA);
    env_restore("SIMPO_CUDA_CHECK_HOLDS", saved_chk);
    gpu->matmul_release(dB);
    gpu->matmul(dH, dA, dB, M, N, K, false, false, 1, 0);
    float *fresh = down(dH, (size_t)M * N);
    CHECK(memcmp(fresh, plain, (size_t)M * N * 4) != 0, "after the release the new operand is read");
    gpu->set_matmul_bf16(false);
    free(A), free(A2), free(B), free(plain), free(held), free(stale), free(fresh);
    gpu->free(dA), gpu->free(dB), gpu->free(dC), gpu->free(dH);
}
/* bf16 activation storage (section matmul_bf16; backend.h rmsnorm_fwd16 / swiglu_fwd16 / geglu_fwd16 / swiglu_bwd16 /
 * geglu_bwd16 / matmul16):
 * the ops' fp32 values are the fp32 ops' (within their bounds above), rounded to bf16 on both sides, so at least
 * 99% of the elements agree bitwise and none by more than one bf16 step: an fp32 value a rounding error away from a
 * halfway point rounds to the bf16 neighbour on one side (one step is 2^-8 to 2^-7 of the value, by where its
 * significand lies in its binade; the H200 showed up to 0.0077); matmul16 with every mix of bf16 and fp32 operands
 * equals the CPU's to fp32 summation order. */
static long bf16_order(uint16_t b) { return (b & 0x8000) ? -(long)(b & 0x7fff) : (long)(b & 0x7fff); }
static void storage16_cmp(const char *what, const uint16_t *g, const uint16_t *c, size_t n) {
    size_t diff = 0;
    long worst = 0; /* in bf16 steps: adjacent bf16 values of one sign are adjacent integers */
    for (size_t i = 0; i < n; i++) {
        if (g[i] == c[i]) continue;
        diff++;
        long d = labs(bf16_order(g[i]) - bf16_order(c[i]));
        if (d > worst) worst = d;
    }
    CHECK(diff * 100 <= n && worst <= 1, "%s: %zu of %zu bf16 elements differ, worst by %ld bf16 steps", what, diff,
          n, worst);
}
/* matmul16_out16's bf16 outputs: both sides sum the same K products in fp32, in different orders, then round to
 * bf16. Two fp32 sums of the same K terms differ by at most 2 gamma_K sum_k |a_k b_k| (gamma_K = K u / (1 - K u),
 * u = 2^-24: Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 3.1), which for an element
 * whose terms cancel is many bf16 steps of its small value (the H200 showed 32 steps on 6 of 103200 elements at
 * K 128, where storage16_cmp's one step assumed no cancellation). So each element may differ by one bf16 step of
 * the larger of the two values plus that bound (absdot[i] = sum_k |a_k b_k| of element i, from the operands as
 * given, 1% added for the fp32 operand's rounding to bf16), and at most 1% of the elements may differ at all. */
static float bf16_val(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void gemm16_cmp(const char *what, const uint16_t *g, const uint16_t *c, const double *absdot, int K,
                       size_t n) {
    const double u = 0x1p-24, gammaK = K * u / (1 - K * u);
    size_t diff = 0, over = 0;
    double worst = 0; /* the largest |difference| / allowance */
    for (size_t i = 0; i < n; i++) {
        if (g[i] == c[i]) continue;
        diff++;
        double a = bf16_val(g[i]), b = bf16_val(c[i]), m = fmax(fabs(a), fabs(b));
        int e;
        frexp(m, &e);
        double allow = ldexp(1.0, e - 8) + 2 * gammaK * absdot[i] * 1.01, r = fabs(a - b) / allow;
        if (r > 1) over++;
        if (r > worst) worst = r;
    }
    CHECK(diff * 100 <= n && over == 0,
          "%s: %zu of %zu bf16 elements differ, %zu by more than one bf16 step plus the fp32 order bound (worst at "
          "%.3g of its allowance)", what, diff, n, over, worst);
}
/* to_bf16 (section matmul_bf16; the model's bf16 compute weights): round to nearest even on both sides, so
 * bitwise the CPU's, ties, infinities and the smallest normals included, from an aligned and an unaligned start
 * (the kernel's float4 and scalar paths) */
static void t_to_bf16(size_t n) {
    float *x = hrand(n + 1, -3, 3);
    const float special[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -1.0f - 0x1p-8f, INFINITY, -INFINITY, 0x1p-126f,
                             -0.0f, 65504.0f, 3.0e38f};
    for (size_t i = 0; i < sizeof special / sizeof *special && i < n; i++) x[i * 3 % n] = special[i];
    float *dx = up(x, (n + 1) * 4);
    uint16_t *c16 = sd_alloc(n * 2 + 2, "cpu bf16"), *g16 = sd_alloc(n * 2 + 2, "gpu bf16");
    uint16_t *d16 = gpu->alloc(n * 2 + 2, "bf16 out");
    for (int off = 0; off < 2; off++) {
        cpu->to_bf16(c16, x + off, n - (size_t)off);
        gpu->to_bf16(d16, dx + off, n - (size_t)off);
        gpu->download(g16, d16, (n - (size_t)off) * 2);
        CHECK(memcmp(g16, c16, (n - (size_t)off) * 2) == 0, "to_bf16 n=%zu from element %d: not bitwise the CPU's",
              n - (size_t)off, off);
    }
    free(x), free(c16), free(g16);
    gpu->free(dx), gpu->free(d16);
}
static void t_storage16(size_t N, int C, int FF) {
    size_t nc = N * (size_t)C, nf = N * (size_t)FF;
    float *x = hrand(nc, -2, 2), *w = hrand((size_t)C, 0.5, 1.5), *g = hrand(nf, -4, 4), *u = hrand(nf, -2, 2);
    float *dx = up(x, nc * 4), *dw = up(w, (size_t)C * 4), *dg = up(g, nf * 4), *du = up(u, nf * 4);
    uint16_t *c16 = sd_alloc(nf * 2 + nc * 2 + 2, "cpu bf16"), *g16 = sd_alloc(nf * 2 + nc * 2 + 2, "gpu bf16");
    float *rstd_c = sd_alloc(N * 4 + 4, "rstd"), *d_rstd = gpu->alloc(N * 4 + 4, "rstd");
    uint16_t *d16 = gpu->alloc(nf * 2 + nc * 2 + 2, "bf16 out");
    cpu->rmsnorm_fwd16(c16, rstd_c, x, w, N, C, 1e-5f);
    gpu->rmsnorm_fwd16(d16, d_rstd, dx, dw, N, C, 1e-5f);
    gpu->download(g16, d16, nc * 2);
    char what[96];
    snprintf(what, sizeof what, "rmsnorm_fwd16 N=%zu C=%d", N, C);
    storage16_cmp(what, g16, c16, nc);
    cpu->swiglu_fwd16(c16, g, u, N, FF);
    gpu->swiglu_fwd16(d16, dg, du, N, FF);
    gpu->download(g16, d16, nf * 2);
    snprintf(what, sizeof what, "swiglu_fwd16 N=%zu FF=%d", N, FF);
    storage16_cmp(what, g16, c16, nf);
    cpu->geglu_fwd16(c16, g, u, N, FF);
    gpu->geglu_fwd16(d16, dg, du, N, FF);
    gpu->download(g16, d16, nf * 2);
    snprintf(what, sizeof what, "geglu_fwd16 N=%zu FF=%d", N, FF);
    storage16_cmp(what, g16, c16, nf);
    /* the gated activations' backward with bf16 gradients (swiglu_bwd16, geglu_bwd16): d/dgate then d/dup */
    {
        float *dh = hrand(nf, -1, 1), *d_dh = up(dh, nf * 4);
        uint16_t *c2 = sd_alloc(nf * 4 + 4, "cpu bf16 grads"), *g2 = sd_alloc(nf * 4 + 4, "gpu bf16 grads");
        uint16_t *d2 = gpu->alloc(nf * 4 + 4, "bf16 grads");
        for (int gemma = 0; gemma < 2; gemma++) {
            const Backend *bs[2] = {cpu, gpu};
            for (int k = 0; k < 2; k++) {
                const Backend *b = bs[k];
                uint16_t *o = k ? d2 : c2;
                const float *hh = k ? d_dh : dh, *gg = k ? dg : g, *uu = k ? du : u;
                if (gemma) b->geglu_bwd16(o, o + nf, hh, gg, uu, N, FF);
                else b->swiglu_bwd16(o, o + nf, hh, gg, uu, N, FF);
            }
            gpu->download(g2, d2, nf * 4);
            for (int part = 0; part < 2; part++) {
                snprintf(what, sizeof what, "%s_bwd16 d%s N=%zu FF=%d", gemma ? "geglu" : "swiglu",
                         part ? "up" : "gate", N, FF);
                storage16_cmp(what, g2 + part * nf, c2 + part * nf, nf);
            }
        }
        free(dh), free(c2), free(g2);
        gpu->free(d_dh), gpu->free(d2);
    }
    /* matmul16: y[N,FF] = h16[N,C] W^T (A bf16), dW[FF,C] += dy^T h16 (B bf16), and both bf16 */
    gpu->set_matmul_bf16(true);
    cpu->set_matmul_bf16(true);
    cpu->rmsnorm_fwd16(c16, rstd_c, x, w, N, C, 1e-5f); /* the same bf16 operand on both sides */
    gpu->upload(d16, c16, nc * 2);
    float *W = hrand(nf > 0 ? (size_t)FF * C : 1, -1, 1), *dW0 = hrand((size_t)FF * C, -1, 1);
    float *dWd = up(W, (size_t)FF * C * 4), *dy = hrand(nf, -1, 1), *d_dy = up(dy, nf * 4);
    float *y = hrand(nf, 0, 0), *d_y = up(y, nf * 4), *acc = hcopy(dW0, (size_t)FF * C);
    float *d_acc = up(dW0, (size_t)FF * C * 4);
    for (int combo = 0; combo < 3; combo++) {
        const char *label = combo == 0 ? "A bf16" : combo == 1 ? "B bf16" : "A and B bf16";
        float *yc, *yg;
        size_t ny;
        if (combo == 0) { /* y = x16 W^T */
            cpu->matmul16(y, c16, true, W, false, (int)N, FF, C, false, true, 1.0f, 0.0f);
            gpu->matmul16(d_y, d16, true, dWd, false, (int)N, FF, C, false, true, 1.0f, 0.0f);
            yc = y, ny = nf, yg = down(d_y, nf);
        } else if (combo == 1) { /* dW += dy^T x16 */
            cpu->matmul16(acc, dy, false, c16, true, FF, C, (int)N, true, false, 1.0f, 1.0f);
            gpu->matmul16(d_acc, d_dy, false, d16, true, FF, C, (int)N, true, false, 1.0f, 1.0f);
            yc = acc, ny = (size_t)FF * C, yg = down(d_acc, ny);
        } else { /* x16^T x16 [C,C] */
            float *cc = hrand((size_t)C * C, 0, 0), *d_cc = up(cc, (size_t)C * C * 4);
            cpu->matmul16(cc, c16, true, c16, true, C, C, (int)N, true, false, 0.5f, 0.0f);
            gpu->matmul16(d_cc, d16, true, d16, true, C, C, (int)N, true, false, 0.5f, 0.0f);
            yg = down(d_cc, (size_t)C * C);
            snprintf(what, sizeof what, "matmul16 %s N=%zu C=%d", label, N, C);
            cmp(what, yg, cc, (size_t)C * C, 1e-5 * (1 + N / 1024.0));
            free(yg), free(cc), gpu->free(d_cc);
            continue;
        }
        snprintf(what, sizeof what, "matmul16 %s N=%zu C=%d FF=%d", label, N, C, FF);
        cmp(what, yg, yc, ny, 1e-5 * (1 + (combo == 0 ? C : (int)N) / 1024.0));
        free(yg);
    }
    gpu->set_matmul_bf16(false);
    cpu->set_matmul_bf16(false);
    free(x), free(w), free(g), free(u), free(c16), free(g16), free(rstd_c), free(W), free(dW0), free(dy), free(y);
    free(acc);
    gpu->free(dx), gpu->free(dw), gpu->free(dg), gpu->free(du), gpu->free(d_rstd), gpu->free(d16), gpu->free(dWd);
    gpu->free(d_dy), gpu->free(d_y), gpu->free(d_acc);
}
/* autocast storage (section matmul_bf16; backend.h matmul16_out16, swiglu_fwd_b16, geglu_fwd_b16, swiglu_bwd_b16,
 * geglu_bwd_b16): the same comparison as storage16_cmp's, on bf16 inputs (the backward's dout too); matmul16_out16 on the GEMM
 * paths that apply (ex, lt) with a bf16 A and an fp32 or bf16 B: fp32 sums that differ only in order, rounded on
 * both sides (gemm16_cmp: one step plus the order bound) */
static void t_autocast16(size_t N, int C, int FF) {
    size_t nf = N * (size_t)FF, nc = N * (size_t)C, nw = (size_t)FF * C;
    float *g = hrand(nf, -4, 4), *u = hrand(nf, -2, 2), *dh = hrand(nf, -1, 1), *x = hrand(nc, -2, 2);
    float *W = hrand(nw, -1, 1);
    uint16_t *g16 = sd_alloc(nf * 2 + 2, "g16"), *u16 = sd_alloc(nf * 2 + 2, "u16"), *x16 = sd_alloc(nc * 2 + 2, "x16");
    uint16_t *w16 = sd_alloc(nw * 2 + 2, "w16");
    cpu->to_bf16(g16, g, nf), cpu->to_bf16(u16, u, nf), cpu->to_bf16(x16, x, nc), cpu->to_bf16(w16, W, nw);
    uint16_t *d_g16 = gpu->alloc(nf * 2 + 2, "g16"), *d_u16 = gpu->alloc(nf * 2 + 2, "u16");
    uint16_t *d_x16 = gpu->alloc(nc * 2 + 2, "x16"), *d_w16 = gpu->alloc(nw * 2 + 2, "w16");
    gpu->upload(d_g16, g16, nf * 2), gpu->upload(d_u16, u16, nf * 2), gpu->upload(d_x16, x16, nc * 2);
    gpu->upload(d_w16, w16, nw * 2);
    uint16_t *dh16 = sd_alloc(nf * 2 + 2, "dh16"), *d_dh16 = gpu->alloc(nf * 2 + 2, "dh16");
    cpu->to_bf16(dh16, dh, nf);
    gpu->upload(d_dh16, dh16, nf * 2);
    float *d_W = up(W, nw * 4), *d_x = up(x, nc * 4);
    uint16_t *c2 = sd_alloc(nf * 4 + 4, "cpu out"), *g2 = sd_alloc(nf * 4 + 4, "gpu out");
    uint16_t *d2 = gpu->alloc(nf * 4 + 4, "out");
    char what[96];
    for (int gemma = 0; gemma < 2; gemma++) {
        const char *act = gemma ? "geglu" : "swiglu";
        (gemma ? cpu->geglu_fwd_b16 : cpu->swiglu_fwd_b16)(c2, g16, u16, N, FF);
        (gemma ? gpu->geglu_fwd_b16 : gpu->swiglu_fwd_b16)(d2, d_g16, d_u16, N, FF);
        gpu->download(g2, d2, nf * 2);
        snprintf(what, sizeof what, "%s_fwd_b16 N=%zu FF=%d", act, N, FF);
        storage16_cmp(what, g2, c2, nf);
        (gemma ? cpu->geglu_bwd_b16 : cpu->swiglu_bwd_b16)(c2, c2 + nf, dh16, g16, u16, N, FF);
        (gemma ? gpu->geglu_bwd_b16 : gpu->swiglu_bwd_b16)(d2, d2 + nf, d_dh16, d_g16, d_u16, N, FF);
        gpu->download(g2, d2, nf * 4);
        for (int part = 0; part < 2; part++) {
            snprintf(what, sizeof what, "%s_bwd_b16 d%s N=%zu FF=%d", act, part ? "up" : "gate", N, FF);
            storage16_cmp(what, g2 + part * nf, c2 + part * nf, nf);
        }
        /* the packed form (swiglu_bwd_pack_b16, geglu_bwd_pack_b16): the GPU's own unpacked outputs above, row by row
         * side by side, bit for bit */
        uint16_t *pk = sd_alloc(nf * 4 + 4, "packed"), *d_pk = gpu->alloc(nf * 4 + 4, "packed");
        (gemma ? gpu->geglu_bwd_pack_b16 : gpu->swiglu_bwd_pack_b16)(d_pk, d_dh16, d_g16, d_u16, N, FF);
        gpu->download(pk, d_pk, nf * 4);
        size_t bad = 0;
        for (size_t r = 0; r < N; r++)
            for (int c = 0; c < FF; c++)
                bad += pk[r * 2 * FF + c] != g2[r * FF + c] || pk[r * 2 * FF + FF + c] != g2[nf + r * FF + c];
        CHECK(bad == 0, "%s_bwd_pack_b16 N=%zu FF=%d: %zu of %zu positions differ from the unpacked op's", act, N, FF,
              bad, nf);
        free(pk), gpu->free(d_pk);
    }
    /* y16[N,FF] = bf16(x16 W^T): the gate / up projections; sum_k |x16[i,k] W[j,k]| and, for dX below,
     * sum_k |x[i,k] W[k*FF+j]| (W's buffer read as B [C,FF]), for gemm16_cmp's bound */
    double *ad_y = sd_alloc(nf * sizeof(double), "absdot y"), *ad_dx = sd_alloc(nf * sizeof(double), "absdot dx");
    for (size_t i = 0; i < N; i++)
        for (int j = 0; j < FF; j++) {
            double sy = 0, sdx = 0;
            for (int k = 0; k < C; k++) {
                sy += fabs((double)bf16_val(x16[i * C + k]) * W[(size_t)j * C + k]);
                sdx += fabs((double)x[i * C + k] * W[(size_t)k * FF + j]);
            }
            ad_y[i * FF + j] = sy, ad_dx[i * FF + j] = sdx;
        }
    static const char *paths[] = {"ex", "lt"};
    char *saved = bf16_begin();
    for (int pi = 0; pi < 2; pi++) {
        setenv("SIMPO_CUDA_GEMM", paths[pi], 1);
        for (int wb = 0; wb < 2; wb++) {
            const void *wc = wb ? (const void *)w16 : (const void *)W;
            const void *wg = wb ? (const void *)d_w16 : (const void *)d_W;
            cpu->matmul16_out16(c2, x16, true, wc, wb, (int)N, FF, C, false, true);
            gpu->matmul16_out16(d2, d_x16, true, wg, wb, (int)N, FF, C, false, true);
            gpu->download(g2, d2, nf * 2);
            snprintf(what, sizeof what, "matmul16_out16 (%s, W %s) N=%zu C=%d FF=%d", paths[pi], wb ? "bf16" : "fp32",
                     N, C, FF);
            gemm16_cmp(what, g2, c2, ad_y, C, nf);
            /* dx16[N,FF] = bf16(dy B), dy fp32 [N,C] and B [C,FF] not transposed (W's buffer read so): the o and
             * down projections' input gradients in autocast storage */
            cpu->matmul16_out16(c2, x, false, wc, wb, (int)N, FF, C, false, false);
            gpu->matmul16_out16(d2, d_x, false, wg, wb, (int)N, FF, C, false, false);
            gpu->download(g2, d2, nf * 2);
            snprintf(what, sizeof what, "matmul16_out16 dX (%s, fp32 dy, B %s) N=%zu C=%d FF=%d", paths[pi],
                     wb ? "bf16" : "fp32", N, C, FF);
            gemm16_cmp(what, g2, c2, ad_dx, C, nf);
        }
    }
    memset(g2, 0xff, 8);
    gpu->upload(d2, g2, 8);
    gpu->matmul16_out16(d2, d_x16, true, d_W, false, 2, 2, 0, false, true); /* K = 0: zeros */
    gpu->download(g2, d2, 8);
    CHECK(g2[0] == 0 && g2[1] == 0 && g2[2] == 0 && g2[3] == 0, "matmul16_out16 K=0 writes zeros");
    bf16_end(saved);
    free(g), free(u), free(dh), free(dh16), free(x), free(W), free(g16), free(u16), free(x16), free(w16);
    free(c2), free(g2), free(ad_y), free(ad_dx);
    gpu->free(d_g16), gpu->free(d_u16), gpu->free(d_x16), gpu->free(d_w16), gpu->free(d_dh16), gpu->free(d_W);
    gpu->free(d2), gpu->free(d_x);
}
static void t_matmul_k0(void) {
    float C[6] = {1, 2, 3, 4, 5, 6}, *dC = up(C, sizeof C), g[6];
    gpu->matmul(dC, NULL, NULL, 2, 3, 0, false, false, 1.0f, 0.5f);
    gpu->download(g, dC, sizeof g);
    CHECK(g[0] == 0.5f && g[5] == 3.0f, "matmul K=0 beta=0.5: C = beta C");
    gpu->matmul(dC, NULL, NULL, 2, 3, 0, false, true, 1.0f, 0.0f);
    gpu->download(g, dC, sizeof g);
    CHECK(g[0] == 0.0f && g[5] == 0.0f, "matmul K=0 beta=0 writes zeros");
    /* the linear-layer convention of backend.h: y = x W^T with W[out,in] */
    float x[6] = {1, 2, 3, 4, 5, 6}, W[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, y[8];
    float *dx = up(x, sizeof x), *dW = up(W, sizeof W), *dy = gpu->alloc(sizeof y, "y");
    gpu->matmul(dy, dx, dW, 2, 4, 3, false, true, 1, 0);
    gpu->download(y, dy, sizeof y);
    float want[8] = {1, 2, 3, 6, 4, 5, 6, 15};
    bitwise("linear layer y = x W^T", y, want, sizeof want);
    gpu->free(dC), gpu->free(dx), gpu->free(dW), gpu->free(dy);
}

/* ---- embedding ---- */
static void t_embed(size_t N, int C, int V, int V_off, int V_loc, int id_range) {
    int *ids = sd_alloc(N * sizeof(int), "ids");
    for (size_t n = 0; n < N; n++) ids[n] = (int)(urand() * id_range) % V;
    if (N > 3) ids[1] = ids[2] = ids[N - 1]; /* repeats */
    size_t nw = (size_t)V_loc * C, no = N * (size_t)C;
    float *W = hrand(nw, -1, 1), *out = hconst(no, 9.0f), *dout = hrand(no, -1, 1), *dW = hrand(nw, -1, 1);
    int *dids = up(ids, N * sizeof(int));
    float *dWt = up(W, nw * 4), *dout_d = up(dout, no * 4), *dout_g = up(out, no * 4), *ddW = up(dW, nw * 4);
    float *ddW2 = up(dW, nw * 4);
    cpu->embed_fwd(out, ids, W, N, C, V_off, V_loc);
    gpu->embed_fwd(dout_g, dids, dWt, N, C, V_off, V_loc);
    float *g = down(dout_g, no);
    char what[96];
    snprintf(what, sizeof what, "embed_fwd N=%zu C=%d V_off=%d V_loc=%d", N, C, V_off, V_loc);
    bitwise(what, g, out, no * 4);
    free(g);
    cpu->embed_bwd(dW, dout, ids, N, C, V_off, V_loc);
    gpu->embed_bwd(ddW, dout_d, dids, N, C, V_off, V_loc);
    gpu->embed_bwd(ddW2, dout_d, dids, N, C, V_off, V_loc);
    g = down(ddW, nw);
    float *g2 = down(ddW2, nw);
    snprintf(what, sizeof what, "embed_bwd N=%zu C=%d V_off=%d V_loc=%d (accumulates, CPU order)", N, C, V_off,
             V_loc);
    bitwise(what, g, dW, nw * 4);
    bitwise("embed_bwd deterministic", g, g2, nw * 4);
    free(g), free(g2), free(ids), free(W), free(out), free(dout), free(dW);
    gpu->free(dids), gpu->free(dWt), gpu->free(dout_d), gpu->free(dout_g), gpu->free(ddW), gpu->free(ddW2);
}

/* ---- RMSNorm ---- */
static void t_rmsnorm(size_t N, int C, float eps, double xamp) {
    size_t nx = N * (size_t)C;
    float *x = hrand(nx, -xamp, xamp), *w = hrand((size_t)C, 0.5, 1.5);
    float *out = hconst(nx, 5.0f), *rstd = hconst(N, 5.0f);
    float *dout = hrand(nx, -1, 1), *dx = hrand(nx, -1, 1), *dw = hrand((size_t)C, -1, 1);
    float *d_x = up(x, nx * 4), *d_w = up(w, (size_t)C * 4), *d_out = up(out, nx * 4), *d_rstd = up(rstd, N * 4);
    float *d_dout = up(dout, nx * 4), *d_dx = up(dx, nx * 4), *d_dw = up(dw, (size_t)C * 4);
    float *d_dx2 = up(dx, nx * 4), *d_dw2 = up(dw, (size_t)C * 4);
    cpu->rmsnorm_fwd(out, rstd, x, w, N, C, eps);
    gpu->rmsnorm_fwd(d_out, d_rstd, d_x, d_w, N, C, eps);
    float *go = down(d_out, nx), *gr = down(d_rstd, N);
    char what[96];
    snprintf(what, sizeof what, "rmsnorm_fwd out N=%zu C=%d", N, C);
    cmp(what, go, out, nx, 1e-6);
    cmp("rmsnorm_fwd rstd", gr, rstd, N, 1e-6);
    /* backward from the CPU forward's rstd on both sides (the op under test is the backward) */
    gpu->upload(d_rstd, rstd, N * 4);
    cpu->rmsnorm_bwd(dx, dw, dout, x, w, rstd, N, C);
    gpu->rmsnorm_bwd(d_dx, d_dw, d_dout, d_x, d_w, d_rstd, N, C);
    gpu->rmsnorm_bwd(d_dx2, d_dw2, d_dout, d_x, d_w, d_rstd, N, C);
    float *gdx = down(d_dx, nx), *gdw = down(d_dw, (size_t)C), *gdx2 = down(d_dx2, nx), *gdw2 = down(d_dw2, (size_t)C);
    snprintf(what, sizeof what, "rmsnorm_bwd dx N=%zu C=%d (accumulates)", N, C);
    cmp(what, gdx, dx, nx, 2e-6);
    snprintf(what, sizeof what, "rmsnorm_bwd dw N=%zu C=%d (accumulates)", N, C);
    cmp(what, gdw, dw, (size_t)C, 2e-6);
    bitwise("rmsnorm_bwd dx deterministic", gdx, gdx2, nx * 4);
    bitwise("rmsnorm_bwd dw deterministic", gdw, gdw2, (size_t)C * 4);
    /* rmsnorm_bwd_out16 (the norms' backward in autocast storage): the same dx and dw bit for bit, and dx16 the
     * bf16 (nearest even) of that dx, whether the fused kernel writes it or a conversion after the wide pass */
    float *h0 = hrand(nx, -1, 1), *hw0 = hrand((size_t)C, -1, 1);
    gpu->upload(d_dx2, h0, nx * 4), gpu->upload(d_dw2, hw0, (size_t)C * 4);
    gpu->upload(d_dx, h0, nx * 4), gpu->upload(d_dw, hw0, (size_t)C * 4);
    uint16_t *d16 = gpu->alloc(nx * 2, "dx16");
    gpu->rmsnorm_bwd(d_dx, d_dw, d_dout, d_x, d_w, d_rstd, N, C);
    gpu->rmsnorm_bwd_out16(d_dx2, d16, d_dw2, d_dout, d_x, d_w, d_rstd, N, C);
    float *p1 = down(d_dx, nx), *p2 = down(d_dx2, nx), *w1 = down(d_dw, (size_t)C), *w2 = down(d_dw2, (size_t)C);
    uint16_t *g16 = sd_alloc(nx * 2, "dx16"), *want16 = h16(p1, nx);
    gpu->download(g16, d16, nx * 2);
    snprintf(what, sizeof what, "rmsnorm_bwd_out16 N=%zu C=%d: dx, dw bitwise rmsnorm_bwd's", N, C);
    bitwise(what, p2, p1, nx * 4);
    bitwise(what, w2, w1, (size_t)C * 4);
    snprintf(what, sizeof what, "rmsnorm_bwd_out16 N=%zu C=%d: dx16 bitwise bf16(dx)", N, C);
    bitwise(what, g16, want16, nx * 2);
    free(h0), free(hw0), free(p1), free(p2), free(w1), free(w2), free(g16), free(want16);
    gpu->free(d16);
    /* rmsnorm_fwd_b16 / rmsnorm_bwd_b16 (bf16 rows: Qwen3's q / k norms in autocast storage) against the CPU's: the
     * GPU's fp32 values above round to the same bf16 but where they straddle a rounding boundary (one bf16 step) */
    uint16_t *x16 = h16(x, nx), *dy16 = h16(dout, nx);
    uint16_t *e_out = sd_alloc(nx * 2, "out16"), *e_dx = sd_alloc(nx * 2, "dx16");
    float *e_r = sd_alloc(N * 4, "rstd"), *e_dw = hrand((size_t)C, -1, 1);
    uint16_t *g_x = up(x16, nx * 2), *g_dy = up(dy16, nx * 2), *g_out = gpu->alloc(nx * 2, "out16");
    uint16_t *g_dx = gpu->alloc(nx * 2, "dx16");
    float *g_r = gpu->alloc(N * 4, "rstd"), *g_dw = up(e_dw, (size_t)C * 4);
    cpu->rmsnorm_fwd_b16(e_out, e_r, x16, w, N, C, eps);
    cpu->rmsnorm_bwd_b16(e_dx, e_dw, dy16, x16, w, e_r, N, C);
    gpu->rmsnorm_fwd_b16(g_out, g_r, g_x, d_w, N, C, eps);
    gpu->upload(g_r, e_r, N * 4); /* the backward from the CPU's rstd, as above */
    gpu->rmsnorm_bwd_b16(g_dx, g_dw, g_dy, g_x, d_w, g_r, N, C);
    uint16_t *o16 = sd_alloc(nx * 2, "out16"), *d16b = sd_alloc(nx * 2, "dx16");
    gpu->download(o16, g_out, nx * 2), gpu->download(d16b, g_dx, nx * 2);
    float *gw16 = down(g_dw, (size_t)C);
    size_t far = 0;
    for (size_t i = 0; i < nx; i++) {
        int a = (int)(int16_t)o16[i] - (int)(int16_t)e_out[i], b = (int)(int16_t)d16b[i] - (int)(int16_t)e_dx[i];
        far += abs(a) > 1 || abs(b) > 1;
    }
    snprintf(what, sizeof what, "rmsnorm_b16 N=%zu C=%d: outputs and dx within one bf16 step of the CPU's", N, C);
    CHECK(far == 0, "%s (%zu farther)", what, far);
    snprintf(what, sizeof what, "rmsnorm_bwd_b16 dw N=%zu C=%d (accumulates)", N, C);
    cmp(what, gw16, e_dw, (size_t)C, 2e-6);
    free(x16), free(dy16), free(e_out), free(e_dx), free(e_r), free(e_dw), free(o16), free(d16b), free(gw16);
    gpu->free(g_x), gpu->free(g_dy), gpu->free(g_out), gpu->free(g_dx), gpu->free(g_r), gpu->free(g_dw);
    free(x), free(w), free(out), free(rstd), free(dout), free(dx), free(dw), free(go), free(gr);
    free(gdx), free(gdw), free(gdx2), free(gdw2);
    gpu->free(d_x), gpu->free(d_w), gpu->free(d_out), gpu->free(d_rstd), gpu->free(d_dout), gpu->free(d_dx);
    gpu->free(d_dw), gpu->free(d_dx2), gpu->free(d_dw2);
}

/* ---- RoPE ---- */
static void t_rope(size_t N, int H, int HD, int max_pos) {
    int half = HD / 2, *pos = sd_alloc(N * sizeof(int), "pos");
    for (size_t n = 0; n < N; n++) pos[n] = (int)(urand() * max_pos);
    pos[0] = 0, pos[N - 1] = max_pos - 1;
    size_t nt = (size_t)max_pos * half, nx = N * (size_t)H * HD;
    float *cs = sd_alloc(nt * 4, "cos"), *sn = sd_alloc(nt * 4, "sin");
    for (size_t i = 0; i < nt; i++) { /* a real rotation table: cos^2 + sin^2 = 1 */
        double a = urand() * 6.283185307179586;
        cs[i] = (float)cos(a), sn[i] = (float)sin(a);
    }
    float *x = hrand(nx, -2, 2);
    int *d_pos = up(pos, N * sizeof(int));
    float *d_cs = up(cs, nt * 4), *d_sn = up(sn, nt * 4), *d_x = up(x, nx * 4);
    cpu->rope_fwd(x, pos, cs, sn, N, H, HD);
    gpu->rope_fwd(d_x, d_pos, d_cs, d_sn, N, H, HD);
    float *g = down(d_x, nx);
    char what[96];
    snprintf(what, sizeof what, "rope_fwd N=%zu H=%d HD=%d", N, H, HD);
    cmp(what, g, x, nx, 1e-6);
    gpu->upload(d_x, x, nx * 4); /* the backward from identical inputs */
    cpu->rope_bwd(x, pos, cs, sn, N, H, HD);
    gpu->rope_bwd(d_x, d_pos, d_cs, d_sn, N, H, HD);
    free(g);
    g = down(d_x, nx);
    snprintf(what, sizeof what, "rope_bwd N=%zu H=%d HD=%d", N, H, HD);
    cmp(what, g, x, nx, 1e-6);
    /* rope_fwd_b16, rope_bwd_b16 (autocast storage): in place on bf16, the same fp32 rotations rounded on both
     * sides */
    uint16_t *x16 = sd_alloc(nx * 2, "x16"), *g16 = sd_alloc(nx * 2, "g16"), *d_x16 = gpu->alloc(nx * 2, "x16");
    cpu->to_bf16(x16, x, nx);
    gpu->upload(d_x16, x16, nx * 2);
    cpu->rope_fwd_b16(x16, pos, cs, sn, N, H, HD);
    gpu->rope_fwd_b16(d_x16, d_pos, d_cs, d_sn, N, H, HD);
    gpu->download(g16, d_x16, nx * 2);
    snprintf(what, sizeof what, "rope_fwd_b16 N=%zu H=%d HD=%d", N, H, HD);
    storage16_cmp(what, g16, x16, nx);
    gpu->upload(d_x16, x16, nx * 2); /* rope_bwd_b16 from identical inputs */
    cpu->rope_bwd_b16(x16, pos, cs, sn, N, H, HD);
    gpu->rope_bwd_b16(d_x16, d_pos, d_cs, d_sn, N, H, HD);
    gpu->download(g16, d_x16, nx * 2);
    snprintf(what, sizeof what, "rope_bwd_b16 N=%zu H=%d HD=%d", N, H, HD);
    storage16_cmp(what, g16, x16, nx);
    /* rope_bwd_pack_b16 (dq: x16's H heads, dk and dv NKV heads): the GPU's packed rows bit for bit its own
     * rope_bwd_b16 in place and the copies, and as near the CPU's as rope_bwd_b16's */
    {
        const int NKV = (H + 1) / 2;
        const size_t kd = (size_t)NKV * HD, qd = (size_t)H * HD, ld = qd + 2 * kd, nk = N * kd, np = N * ld;
        float *kf = hrand(2 * nk, -2, 2);
        uint16_t *kv16 = sd_alloc(2 * nk * 2, "dk dv"), *want = sd_alloc(np * 2, "want"),
                 *got = sd_alloc(np * 2, "got"), *cpu_p = sd_alloc(np * 2, "cpu packed"), *rq = sd_alloc(nx * 2, "rq"),
                 *rk = sd_alloc(nk * 2, "rk");
        cpu->to_bf16(kv16, kf, 2 * nk);
        uint16_t *d_q = up(x16, nx * 2), *d_k = up(kv16, nk * 2), *d_v = up(kv16 + nk, nk * 2),
                 *d_y = gpu->alloc(np * 2, "packed");
        gpu->rope_bwd_pack_b16(d_y, d_q, d_k, d_v, d_pos, d_cs, d_sn, N, H, NKV, HD);
        gpu->download(got, d_y, np * 2);
        gpu->rope_bwd_b16(d_q, d_pos, d_cs, d_sn, N, H, HD);
        gpu->rope_bwd_b16(d_k, d_pos, d_cs, d_sn, N, NKV, HD);
        gpu->download(rq, d_q, nx * 2);
        gpu->download(rk, d_k, nk * 2);
        for (size_t n = 0; n < N; n++) {
            memcpy(want + n * ld, rq + n * qd, qd * 2);
            memcpy(want + n * ld + qd, rk + n * kd, kd * 2);
            memcpy(want + n * ld + qd + kd, kv16 + nk + n * kd, kd * 2);
        }
        snprintf(what, sizeof what, "rope_bwd_pack_b16 N=%zu NH=%d NKV=%d HD=%d", N, H, NKV, HD);
        CHECK(memcmp(got, want, np * 2) == 0, "%s: not bitwise rope_bwd_b16 in place and copies", what);
        cpu->rope_bwd_pack_b16(cpu_p, x16, kv16, kv16 + nk, pos, cs, sn, N, H, NKV, HD);
        storage16_cmp(what, got, cpu_p, np);
        free(kf), free(kv16), free(want), free(got), free(cpu_p), free(rq), free(rk);
        gpu->free(d_q), gpu->free(d_k), gpu->free(d_v), gpu->free(d_y);
    }
    free(g), free(pos), free(cs), free(sn), free(x), free(x16), free(g16);
    gpu->free(d_pos), gpu->free(d_cs), gpu->free(d_sn), gpu->free(d_x), gpu->free(d_x16);
}

/* ---- row gather / scatter (exact) ---- */
static void t_rows(size_t N, size_t M, int C) {
    float *src = hrand(N * (size_t)C, -1, 1), *g = hconst(M * (size_t)C, 3.0f), *s = hconst(N * (size_t)C, 5.0f);
    int *rows = malloc(sizeof(int) * (M ? M : 1));
    for (size_t r = 0; r < M; r++) rows[r] = (int)((r * 7919 + 3) % N); /* distinct while M <= N and N prime-ish */
    float *d_src = up(src, N * (size_t)C * 4), *d_g = up(g, M * (size_t)C * 4), *d_s = up(s, N * (size_t)C * 4);
    int *d_rows = (int *)up(rows, M * sizeof(int));
    cpu->gather_rows(g, src, rows, M, N, C);
    gpu->gather_rows(d_g, d_src, d_rows, M, N, C);
    cpu->scatter_rows(s, g, rows, M, N, C);
    gpu->scatter_rows(d_s, d_g, d_rows, M, N, C);
    float *gg = down(d_g, M * (size_t)C), *gs = down(d_s, N * (size_t)C);
    char what[96];
    snprintf(what, sizeof what, "gather_rows N=%zu M=%zu C=%d", N, M, C);
    bitwise(what, gg, g, M * (size_t)C * sizeof(float));
    snprintf(what, sizeof what, "scatter_rows N=%zu M=%zu C=%d", N, M, C);
    bitwise(what, gs, s, N * (size_t)C * sizeof(float));
    free(src), free(g), free(s), free(rows), free(gg), free(gs);
    gpu->free(d_src), gpu->free(d_g), gpu->free(d_s), gpu->free(d_rows);
}

/* ---- row sums by index: add_rows, add_rows_b16 (exact) ---- */
/* dst[Nd,C] += src[Ns,C] on M distinct random dst rows (the others must stay as they are) from random src rows,
 * repeats included; fp32 and bf16 storage bitwise the CPU's (one fp32 add per element on both sides, bf16 rounded
 * to nearest even on both; ties planted in the first listed row). Row indices outside their range (skipped on the
 * GPU, fatal on the CPU) are not tried here. */
static void t_add_rows(size_t Nd, size_t Ns, size_t M, int C) {
    size_t nd = Nd * (size_t)C, ns = Ns * (size_t)C;
    float *dst = hrand(nd, -2, 2), *src = hrand(ns, -2, 2);
    int *perm = sd_alloc(Nd * sizeof(int), "perm"), *srows = sd_alloc((M ? M : 1) * sizeof(int), "srows");
    for (size_t i = 0; i < Nd; i++) perm[i] = (int)i;
    for (size_t i = Nd; i > 1; i--) { /* Fisher-Yates: the first M are distinct dst rows in random order */
        size_t j = (size_t)(urand() * i) % i;
        int t = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = t;
    }
    for (size_t i = 0; i < M; i++) srows[i] = (int)((size_t)(urand() * Ns) % Ns);
    if (M > 2) srows[M - 1] = srows[1] = srows[0]; /* repeated source rows */
    int *d_drows = up(perm, Nd * sizeof(int)), *d_srows = up(srows, (M ? M : 1) * sizeof(int));
    float *d_dst = up(dst, nd * 4), *d_src = up(src, ns * 4);
    cpu->add_rows(dst, perm, src, srows, M, Nd, Ns, C);
    gpu->add_rows(d_dst, d_drows, d_src, d_srows, M, Nd, Ns, C);
    float *g = down(d_dst, nd), *gs = down(d_src, ns);
    char what[112];
    snprintf(what, sizeof what, "add_rows Nd=%zu Ns=%zu M=%zu C=%d", Nd, Ns, M, C);
    bitwise(what, g, dst, nd * 4);
    snprintf(what, sizeof what, "add_rows Nd=%zu Ns=%zu M=%zu C=%d leaves src", Nd, Ns, M, C);
    bitwise(what, gs, src, ns * 4);
    /* bf16 storage: bf16 of the fp32 data; in the first listed row dst 1, 1 + 2^-7, -1, 1 plus src 2^-8 are ties
     * (to even: 1, 1 + 2^-6, -1) and 1 + 2^-8 * 1.5 rounds up */
    uint16_t *d16 = sd_alloc(nd * 2 + 2, "dst16"), *s16 = sd_alloc(ns * 2 + 2, "src16");
    uint16_t *g16 = sd_alloc(nd * 2 + 2, "gpu dst16");
    cpu->to_bf16(d16, dst, nd);
    cpu->to_bf16(s16, src, ns);
    static const uint16_t dtie[4] = {0x3f80, 0x3f81, 0xbf80, 0x3f80}, stie[4] = {0x3b80, 0x3b80, 0xbb80, 0x3bc0};
    for (int c = 0; M > 0 && c < 4 && c < C; c++) {
        d16[(size_t)perm[0] * C + c] = dtie[c];
        s16[(size_t)srows[0] * C + c] = stie[c];
    }
    uint16_t *dd16 = up(d16, nd * 2 + 2), *ds16 = up(s16, ns * 2 + 2);
    cpu->add_rows_b16(d16, perm, s16, srows, M, Nd, Ns, C);
    gpu->add_rows_b16(dd16, d_drows, ds16, d_srows, M, Nd, Ns, C);
    gpu->download(g16, dd16, nd * 2);
    snprintf(what, sizeof what, "add_rows_b16 Nd=%zu Ns=%zu M=%zu C=%d", Nd, Ns, M, C);
    bitwise(what, g16, d16, nd * 2);
    if (M > 0 && C >= 4) { /* the ties rounded to even on the CPU too (test_ops_basic has the semantics) */
        const uint16_t *r = d16 + (size_t)perm[0] * C;
        CHECK(r[0] == 0x3f80 && r[1] == 0x3f82 && r[2] == 0xbf80 && r[3] == 0x3f81,
              "add_rows_b16 planted ties: %04x %04x %04x %04x", r[0], r[1], r[2], r[3]);
    }
    free(dst), free(src), free(perm), free(srows), free(g), free(gs), free(d16), free(s16), free(g16);
    gpu->free(d_drows), gpu->free(d_srows), gpu->free(d_dst), gpu->free(d_src), gpu->free(dd16), gpu->free(ds16);
}

/* ---- linear biases (section bias): bias_add, bias_add_b16 (exact), bias_grad, bias_grad_b16 ---- */
/* y [N rows, ld apart]: the columns past D hold large values that must stay as they are (checked bitwise with the
 * rest) and stay out of the sums. bias_add(_b16): one fp32 add per element on both sides (bf16 rounded to nearest
 * even on both; ties planted in row 0), so bitwise. bias_grad(_b16): both sides sum each column in double, in
 * different orders (the two double sums S, S' differ by at most (N - 1) 2^-52 sum_n |dy[n, j]|), round once to
 * fp32 (at most 2^-24 |S| each) and add into db (non-zero: accumulates; 2^-24 |db| each). Bound per column, with
 * a margin of about 2 on the rounding terms: 2^-22 (|S| + |db cpu|) + (N + 1) 2^-52 sum |dy|; far tighter than 2 ulp
 * of sum |dy| where the column cancels (column 1: alternating +-1e4 plus small parts, which a sum in fp32 anywhere
 * would lose). The GPU's bits the same on a second run. N = 3000 spans many of the reduction's 128-row chunks,
 * N = 40000 more rows than bias_add's grid covers in one pass. */
static void t_bias(size_t N, int D, int ld) {
    size_t ny = N * (size_t)ld, nd = (size_t)D;
    float *y = hrand(ny, -2, 2), *b = hrand(nd, -1, 1), *db0 = hrand(nd, -3, 3);
    for (size_t n = 0; n < N; n++) { /* the columns past D; column 1 cancels (fp32 sums would lose its small parts) */
        for (int j = D; j < ld; j++) y[n * ld + j] = (float)(1000 + 100 * urand());
        if (D > 1) y[n * ld + 1] = (float)((n % 2 ? 1e4 : -1e4) + 2 * urand() - 1);
    }
    uint16_t *y16 = sd_alloc(ny * 2 + 2, "y16"), *g16 = sd_alloc(ny * 2 + 2, "gpu y16");
    cpu->to_bf16(y16, y, ny);
    /* row 0: 1 + 2^-8, (1 + 2^-7) + 2^-8 and -1 + 1.5 2^-8 are ties (to even: 1, 1 + 2^-6, 0xbf7e); 2 + 1 exact */
    static const uint16_t ytie[4] = {0x3f80, 0x3f81, 0xbf80, 0x4000};
    static const float btie[4] = {0x1p-8f, 0x1p-8f, 0x1.8p-8f, 1.0f};
    for (int c = 0; N > 0 && c < 4 && c < D; c++) y16[c] = ytie[c], b[c] = btie[c];
    float *d_y = up(y, ny * 4), *d_b = up(b, nd * 4), *d_db = up(db0, nd * 4), *d_db16 = up(db0, nd * 4);
    float *d_db2 = up(db0, nd * 4);
    uint16_t *d_y16 = up(y16, ny * 2);
    char what[96];

    /* the gradients of the inputs first (the adds change them) */
    float *db = hcopy(db0, nd), *db16 = hcopy(db0, nd);
    cpu->bias_grad(db, y, N, D, ld);
    gpu->bias_grad(d_db, d_y, N, D, ld);
    cpu->bias_grad_b16(db16, y16, N, D, ld);
    gpu->bias_grad_b16(d_db16, d_y16, N, D, ld);
    gpu->bias_grad(d_db2, d_y, N, D, ld);
    float *gdb = down(d_db, nd), *gdb16 = down(d_db16, nd), *gdb2 = down(d_db2, nd);
    for (int k = 0; k < 2; k++) {
        const float *g = k ? gdb16 : gdb, *c = k ? db16 : db;
        double worst = 0;
        int at = -1;
        for (int j = 0; j < D; j++) {
            double sum = 0, mag = 0;
            for (size_t n = 0; n < N; n++) {
                double v = k ? sd_bf16_to_f32(y16[n * ld + j]) : y[n * ld + j];
                sum += v, mag += fabs(v);
            }
            double tol = 0x1p-22 * (fabs(sum) + fabs(c[j])) + (double)(N + 1) * 0x1p-52 * mag;
            double r = fabs((double)g[j] - c[j]) / fmax(tol, 1e-300);
            if (isnan(r) || r > worst) worst = isnan(r) ? INFINITY : r, at = j; /* a NaN fails */
        }
        snprintf(what, sizeof what, "%s N=%zu D=%d ld=%d", k ? "bias_grad_b16" : "bias_grad", N, D, ld);
        CHECK(at < 0 || worst <= 1, "%s: db[%d] gpu %.9g cpu %.9g: %.3g times the bound", what, at,
              at < 0 ? 0.0 : g[at], at < 0 ? 0.0 : c[at], worst);
    }
    snprintf(what, sizeof what, "bias_grad N=%zu D=%d ld=%d: a second run", N, D, ld);
    bitwise(what, gdb2, gdb, nd * 4);

    cpu->bias_add(y, b, N, D, ld);
    gpu->bias_add(d_y, d_b, N, D, ld);
    float *gy = down(d_y, ny);
    snprintf(what, sizeof what, "bias_add N=%zu D=%d ld=%d", N, D, ld);
    bitwise(what, gy, y, ny * 4);
    cpu->bias_add_b16(y16, b, N, D, ld);
    gpu->bias_add_b16(d_y16, d_b, N, D, ld);
    gpu->download(g16, d_y16, ny * 2);
    snprintf(what, sizeof what, "bias_add_b16 N=%zu D=%d ld=%d", N, D, ld);
    bitwise(what, g16, y16, ny * 2);
    if (N > 0 && D >= 4) /* the ties rounded to even on the CPU too (test_ops_bias has the semantics) */
        CHECK(y16[0] == 0x3f80 && y16[1] == 0x3f82 && y16[2] == 0xbf7e && y16[3] == 0x4040,
              "bias_add_b16 planted ties: %04x %04x %04x %04x", y16[0], y16[1], y16[2], y16[3]);
    free(y), free(b), free(db0), free(y16), free(g16), free(db), free(db16), free(gdb), free(gdb16), free(gdb2);
    free(gy);
    gpu->free(d_y), gpu->free(d_b), gpu->free(d_db), gpu->free(d_db16), gpu->free(d_db2), gpu->free(d_y16);
}

/* ---- gated MLP activations (SwiGLU, Gemma 2's GeGLU) and soft-capping ---- */
typedef void (*GluFwd)(float *out, const float *gate, const float *up, size_t N, int FF);
typedef void (*GluBwd)(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t N,
                       int FF);
/* one gated activation, GPU against CPU: forward and both gradients */
static void t_glu(const char *name, GluFwd cf, GluFwd gf, GluBwd cb, GluBwd gb, size_t N, int FF) {
    size_t n = N * (size_t)FF;
    float *gate = hrand(n, -8, 8), *upv = hrand(n, -2, 2), *dout = hrand(n, -1, 1);
    float *out = hconst(n, 3.0f), *dg = hconst(n, 3.0f), *du = hconst(n, 3.0f);
    float *d_gate = up(gate, n * 4), *d_up = up(upv, n * 4), *d_dout = up(dout, n * 4), *d_out = up(out, n * 4);
    float *d_dg = up(dg, n * 4), *d_du = up(du, n * 4);
    cf(out, gate, upv, N, FF);
    gf(d_out, d_gate, d_up, N, FF);
    cb(dg, du, dout, gate, upv, N, FF);
    gb(d_dg, d_du, d_dout, d_gate, d_up, N, FF);
    float *go = down(d_out, n), *gg = down(d_dg, n), *gu = down(d_du, n);
    char what[96];
    snprintf(what, sizeof what, "%s_fwd N=%zu FF=%d", name, N, FF);
    cmp(what, go, out, n, 1e-6);
    snprintf(what, sizeof what, "%s_bwd dgate", name);
    cmp(what, gg, dg, n, 2e-6);
    snprintf(what, sizeof what, "%s_bwd dup", name);
    cmp(what, gu, du, n, 2e-6);
    free(gate), free(upv), free(dout), free(out), free(dg), free(du), free(go), free(gg), free(gu);
    gpu->free(d_gate), gpu->free(d_up), gpu->free(d_dout), gpu->free(d_out), gpu->free(d_dg), gpu->free(d_du);
}
static void t_swiglu(size_t N, int FF) {
    t_glu("swiglu", cpu->swiglu_fwd, gpu->swiglu_fwd, cpu->swiglu_bwd, gpu->swiglu_bwd, N, FF);
}
/* GeGLU, then soft-capping on n = N x FF values of |x| <= 8 (tanh saturates for small caps) */
static void t_geglu_softcap(size_t N, int FF, float cap) {
    t_glu("geglu", cpu->geglu_fwd, gpu->geglu_fwd, cpu->geglu_bwd, gpu->geglu_bwd, N, FF);
    size_t n = N * (size_t)FF;
    float *x = hrand(n, -8, 8), *dx = hrand(n, -1, 1), *pre = hrand(n, -8, 8);
    float *d_x = up(x, n * 4), *d_dx = up(dx, n * 4), *d_pre = up(pre, n * 4);
    cpu->softcap_fwd(x, n, cap);
    gpu->softcap_fwd(d_x, n, cap);
    cpu->softcap_bwd(dx, pre, n, cap);
    gpu->softcap_bwd(d_dx, d_pre, n, cap);
    float *gx = down(d_x, n), *gdx = down(d_dx, n);
    cmp("softcap_fwd", gx, x, n, 1e-6);
    cmp("softcap_bwd", gdx, dx, n, 2e-6);
    free(x), free(dx), free(pre), free(gx), free(gdx);
    gpu->free(d_x), gpu->free(d_dx), gpu->free(d_pre);
}

/* ---- cross-entropy over a vocabulary slice ---- */
static void t_xent(size_t N, int V_loc, int V_off, int V, double amp) {
    size_t nl = N * (size_t)V_loc;
    float *lg = hrand(nl, -amp, amp);
    if (V_loc > 0)
        for (int j = 0; j < V_loc; j++) lg[j] += 60.0f; /* row 0 shifted: max subtraction must keep exp finite */
    int *tg = sd_alloc(N * sizeof(int), "targets");
    for (size_t n = 0; n < N; n++) tg[n] = (int)(urand() * V) % V; /* often outside the slice */
    if (N > 2) tg[0] = V_off, tg[1] = V_off + V_loc - 1;       /* slice edges */
    float *mx = hconst(N, 7), *se = hconst(N, 7), *tt = hconst(N, 7), *ls = hconst(N, 7);
    int *d_tg = up(tg, N * sizeof(int));
    float *d_lg = up(lg, (nl ? nl : 1) * 4), *d_mx = up(mx, N * 4), *d_se = up(se, N * 4), *d_tt = up(tt, N * 4);
    float *d_ls = up(ls, N * 4);
    cpu->xent_stats(mx, se, tt, ls, lg, tg, N, V_loc, V_off);
    gpu->xent_stats(d_mx, d_se, d_tt, d_ls, d_lg, d_tg, N, V_loc, V_off);
    float *gm = down(d_mx, N), *gs = down(d_se, N), *gt = down(d_tt, N), *gl0 = down(d_ls, N);
    char what[96];
    snprintf(what, sizeof what, "xent_stats N=%zu V_loc=%d V_off=%d", N, V_loc, V_off);
    bitwise("xent_stats maxv", gm, mx, N * 4);
    bitwise("xent_stats tgt", gt, tt, N * 4);
    double worst = 0;
    for (size_t n = 0; n < N; n++)
        worst = fmax(worst, se[n] == 0 ? fabs(gs[n]) : fabs(gs[n] - se[n]) / se[n]);
    CHECK(worst <= 1e-6, "%s: sumexp rel diff %.3g", what, worst);
    /* lsum: both sides a double sum of the same floats in another order, each rounded once: within 2^-23 of the
     * row's magnitudes (a wrong element, a missed one or a lost thread's part is a whole element off) */
    for (size_t n = 0; n < N; n++) {
        double a = 0;
        for (int j = 0; j < V_loc; j++) a += fabs(lg[n * (size_t)V_loc + j]);
        CHECK(fabs(gl0[n] - ls[n]) <= 0x1p-23 * a, "%s: lsum row %zu: %.9g vs %.9g", what, n, gl0[n], ls[n]);
    }
    gpu->xent_stats(d_mx, d_se, d_tt, d_ls, d_lg, d_tg, N, V_loc, V_off);
    float *gs2 = down(d_se, N);
    bitwise("xent_stats deterministic", gs, gs2, N * 4);
    if (V_loc > 0) { /* backward with the slice's own lse (a stand-in for the full-vocabulary one) and random g */
        float *lse = sd_alloc(N * 4, "lse"), *g = hrand(N, -1, 1);
        for (size_t n = 0; n < N; n++) lse[n] = mx[n] + logf(se[n]);
        float *d_lse = up(lse, N * 4), *d_g = up(g, N * 4);
        /* xent_bwd16 (bf16 gradients, logits untouched): within one bf16 step of the CPU's, as the storage ops */
        uint16_t *c16 = sd_alloc(nl * 2, "cpu bf16"), *d16 = gpu->alloc(nl * 2, "bf16 dlogits");
        cpu->xent_bwd16(c16, lg, lse, g, tg, N, V_loc, V_off);
        gpu->xent_bwd16(d16, d_lg, d_lse, d_g, d_tg, N, V_loc, V_off);
        uint16_t *g16 = sd_alloc(nl * 2, "gpu bf16");
        gpu->download(g16, d16, nl * 2);
        snprintf(what, sizeof what, "xent_bwd16 N=%zu V_loc=%d V_off=%d", N, V_loc, V_off);
        storage16_cmp(what, g16, c16, nl);
        float *same = down(d_lg, nl);
        bitwise("xent_bwd16 leaves the logits", same, lg, nl * 4);
        /* the autocast head: bf16 logits; stats as the fp32 op's (max, tgt bitwise: the same widened values), the
         * gradient in place within one bf16 step */
        for (size_t i = 0; i < nl; i++) c16[i] = sd_f32_to_bf16(lg[i]);
        gpu->upload(d16, c16, nl * 2);
        float *bm = hconst(N, 7), *bs = hconst(N, 7), *bt = hconst(N, 7), *bl = hconst(N, 7);
        cpu->xent_stats_b16(bm, bs, bt, bl, c16, tg, N, V_loc, V_off);
        gpu->xent_stats_b16(d_mx, d_se, d_tt, d_ls, d16, d_tg, N, V_loc, V_off);
        float *bgm = down(d_mx, N), *bgs = down(d_se, N), *bgt = down(d_tt, N), *bgl = down(d_ls, N);
        bitwise("xent_stats_b16 maxv", bgm, bm, N * 4);
        bitwise("xent_stats_b16 tgt", bgt, bt, N * 4);
        double bw = 0;
        for (size_t n = 0; n < N; n++) bw = fmax(bw, bs[n] == 0 ? fabs(bgs[n]) : fabs(bgs[n] - bs[n]) / bs[n]);
        snprintf(what, sizeof what, "xent_stats_b16 N=%zu V_loc=%d V_off=%d", N, V_loc, V_off);
        CHECK(bw <= 1e-6, "%s: sumexp rel diff %.3g", what, bw);
        for (size_t n = 0; n < N; n++) { /* the 16-byte kernel's sums in runs of 8: lsum as above */
            double a = 0;
            for (int j = 0; j < V_loc; j++) a += fabs(sd_bf16_to_f32(c16[n * (size_t)V_loc + j]));
            CHECK(fabs(bgl[n] - bl[n]) <= 0x1p-23 * a, "%s: lsum row %zu: %.9g vs %.9g", what, n, bgl[n], bl[n]);
        }
        free(bl), free(bgl);
        cpu->xent_bwd_b16(c16, lse, g, tg, N, V_loc, V_off);
        gpu->xent_bwd_b16(d16, d_lse, d_g, d_tg, N, V_loc, V_off);
        gpu->download(g16, d16, nl * 2);
        snprintf(what, sizeof what, "xent_bwd_b16 N=%zu V_loc=%d V_off=%d", N, V_loc, V_off);
        storage16_cmp(what, g16, c16, nl);
        free(bm), free(bs), free(bt), free(bgm), free(bgs), free(bgt);
        free(c16), free(g16), free(same);
        gpu->free(d16);
        cpu->xent_bwd(lg, lse, g, tg, N, V_loc, V_off);
        gpu->xent_bwd(d_lg, d_lse, d_g, d_tg, N, V_loc, V_off);
        float *gl = down(d_lg, nl);
        snprintf(what, sizeof what, "xent_bwd N=%zu V_loc=%d V_off=%d", N, V_loc, V_off);
        cmp(what, gl, lg, nl, 1e-6);
        free(lse), free(g), free(gl);
        gpu->free(d_lse), gpu->free(d_g);
    }
    free(lg), free(tg), free(mx), free(se), free(tt), free(ls), free(gm), free(gs), free(gt), free(gl0), free(gs2);
    gpu->free(d_tg), gpu->free(d_lg), gpu->free(d_mx), gpu->free(d_se), gpu->free(d_tt), gpu->free(d_ls);
}

/* ---- AdamW ---- */
static void t_adamw(size_t n, long t, double wd, float gscale) {
    float *p = hrand(n, -1, 1), *g = hrand(n, -1e-2, 1e-2), *m = hrand(n, -1e-3, 1e-3), *v = hrand(n, 0, 1e-5);
    g[0] = 0.0f; /* a zero gradient: the update is -lr m / (sqrt(v) + eps) */
    float *d_p = up(p, n * 4), *d_g = up(g, n * 4), *d_m = up(m, n * 4), *d_v = up(v, n * 4);
    double b1 = 0.9, b2 = 0.999, bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
    /* with the bf16 copy of the updated weights (p16): bitwise bf16 of the GPU's own p */
    uint16_t *d16 = gpu->alloc(n * 2, "p16"), *g16 = sd_alloc(n * 2, "p16"), *want16 = sd_alloc(n * 2, "p16");
    cpu->adamw(p, NULL, g, NULL, gscale, m, v, n, 3e-4, b1, b2, 1e-8, wd, bc1, bc2);
    gpu->adamw(d_p, d16, d_g, NULL, gscale, d_m, d_v, n, 3e-4, b1, b2, 1e-8, wd, bc1, bc2);
    float *gp = down(d_p, n), *gm = down(d_m, n), *gv = down(d_v, n);
    cmp("adamw p", gp, p, n, 1e-6);
    cmp("adamw m", gm, m, n, 1e-6);
    cmp("adamw v", gv, v, n, 1e-6);
    gpu->download(g16, d16, n * 2);
    cpu->to_bf16(want16, gp, n);
    CHECK(memcmp(g16, want16, n * 2) == 0, "adamw p16 n=%zu: not bf16 of the updated p", n);
    free(p), free(g), free(m), free(v), free(gp), free(gm), free(gv), free(g16), free(want16);
    gpu->free(d_p), gpu->free(d_g), gpu->free(d_m), gpu->free(d_v), gpu->free(d16);
}
/* adamw_sumsq (the norm formed as AdamW reads g; no clipping): p, m, v and the bf16 copy bitwise adamw's with gscale
 * 1 (the same adamw_one per element), from an aligned start (the 4-wide body and its tail) and one element in (all
 * one by one); the sum of squares within 1e-12 relative of the CPU's (double sums in another order), bitwise the
 * same on a rerun (a fixed grid and tree) */
static void t_adamw_sumsq(size_t n) {
    for (int off = 0; off < 2; off++) {
        const size_t nn = n - (size_t)off;
        float *p = hrand(n, -1, 1), *g = hrand(n, -1e-2, 1e-2), *m = hrand(n, -1e-3, 1e-3), *v = hrand(n, 0, 1e-5);
        float *d_p[2], *d_m[2], *d_v[2];
        uint16_t *d16[2];
        for (int k = 0; k < 2; k++) {
            d_p[k] = up(p, n * 4), d_m[k] = up(m, n * 4), d_v[k] = up(v, n * 4);
            d16[k] = gpu->alloc(n * 2, "p16");
        }
        float *d_g = up(g, n * 4);
        double *d_ss = gpu->alloc(2 * sizeof(double), "sumsq");
        gpu->adamw(d_p[0] + off, d16[0] + off, d_g + off, NULL, 1.0f, d_m[0] + off, d_v[0] + off, nn, 3e-4, 0.9, 0.999,
                   1e-8, 0.1, 0.1, 0.001);
        gpu->adamw_sumsq(d_ss, d_p[1] + off, d16[1] + off, d_g + off, NULL, d_m[1] + off, d_v[1] + off, nn, 3e-4, 0.9,
                         0.999, 1e-8, 0.1, 0.1, 0.001);
        char lb[96];
        const char *names[4] = {"p", "m", "v", "p16"};
        for (int t = 0; t < 4; t++) {
            size_t bytes = t == 3 ? n * 2 : n * 4;
            void *a = sd_alloc(bytes, "adamw result"), *b = sd_alloc(bytes, "adamw result");
            const void *da = t == 0 ? (void *)d_p[0] : t == 1 ? (void *)d_m[0] : t == 2 ? (void *)d_v[0] : (void *)d16[0];
            const void *db = t == 0 ? (void *)d_p[1] : t == 1 ? (void *)d_m[1] : t == 2 ? (void *)d_v[1] : (void *)d16[1];
            gpu->download(a, da, bytes);
            gpu->download(b, db, bytes);
            snprintf(lb, sizeof lb, "adamw_sumsq n=%zu from element %d: %s bitwise adamw's", nn, off, names[t]);
            if (t == 3) bitwise(lb, (char *)b + off * 2, (char *)a + off * 2, nn * 2);
            else bitwise(lb, (char *)b + off * 4, (char *)a + off * 4, nn * 4);
            free(a), free(b);
        }
        double ss[2], want = cpu->sumsq(g + off, nn);
        gpu->download(ss, d_ss, sizeof(double));
        gpu->adamw_sumsq(d_ss + 1, d_p[1] + off, d16[1] + off, d_g + off, NULL, d_m[1] + off, d_v[1] + off, nn, 3e-4, 0.9,
                         0.999, 1e-8, 0.1, 0.1, 0.001); /* a second step on other moments: the same g */
        gpu->download(ss + 1, d_ss + 1, sizeof(double));
        CHECK(fabs(ss[0] - want) <= 1e-12 * want, "adamw_sumsq n=%zu from element %d: sum of squares %.17g, CPU %.17g",
              nn, off, ss[0], want);
        CHECK(ss[1] == ss[0], "adamw_sumsq n=%zu: the sum of the same g differs on a rerun (%.17g, %.17g)", nn, ss[0],
              ss[1]);
        free(p), free(g), free(m), free(v);
        for (int k = 0; k < 2; k++) gpu->free(d_p[k]), gpu->free(d_m[k]), gpu->free(d_v[k]), gpu->free(d16[k]);
        gpu->free(d_g), gpu->free(d_ss);
    }
}

/* The late queue (backend.h late_begin; AdamW inside the backward): adamw_sumsq and adamw queued late, then work on
 * the main queue (a copy) beside them, give after late_join (and, a second time, after sync) the results of the same
 * ops queued in order, bitwise, sum of squares included (its partials' scratch taken and freed on the late stream).
 * Under the CPU emulation, whose least-priority stream runs its work only when waited for, the values read before
 * the join are the old ones: what a read that forgets the join would get at the worst timing on a GPU (the check
 * that the emulation's trainer test, tests/gpu/emu/run.sh, can see a missing join). */
static void t_late(size_t n) {
    CHECK(gpu->late_begin && gpu->late_end && gpu->late_join, "the CUDA backend has a late queue");
    float *p = hrand(n, -1, 1), *g = hrand(n, -1e-2, 1e-2), *m = hrand(n, -1e-3, 1e-3), *v = hrand(n, 0, 1e-5);
    const bool emu = strstr(cuda_device_name(), "emulation") != NULL;
    float *d_g = up(g, n * 4);
    for (int how = 0; how < 2; how++) { /* joined by late_join, by sync; from element o: 0, the 4-wide path, and 1,
                                         * one by one (both in phases of the late queue where n is large) */
        const size_t o = (size_t)how, nn = n - o;
        float *d_p[2], *d_m[2], *d_v[2], *d_c = up(g, n * 4), *d_c2 = gpu->alloc(n * 4, "copy");
        uint16_t *d16[2];
        double *d_ss = gpu->alloc(4 * sizeof(double), "sumsq");
        for (int k = 0; k < 2; k++) d_p[k] = up(p, n * 4), d_m[k] = up(m, n * 4), d_v[k] = up(v, n * 4),
                                    d16[k] = gpu->alloc(n * 2, "p16");
        /* in order, on the main queue */
        gpu->adamw_sumsq(d_ss, d_p[0] + o, d16[0] + o, d_g + o, NULL, d_m[0] + o, d_v[0] + o, nn, 3e-4, 0.9, 0.999,
                         1e-8, 0.1, 0.1, 0.001);
        gpu->adamw(d_p[0] + o, d16[0] + o, d_g + o, NULL, 0.5f, d_m[0] + o, d_v[0] + o, nn, 3e-4, 0.9, 0.999, 1e-8,
                   0.1, 0.19, 0.002);
        /* late, a copy on the main queue beside them */
        gpu->late_begin();
        gpu->adamw_sumsq(d_ss + 1, d_p[1] + o, d16[1] + o, d_g + o, NULL, d_m[1] + o, d_v[1] + o, nn, 3e-4, 0.9,
                         0.999, 1e-8, 0.1, 0.1, 0.001);
        if (how == 1) gpu->sync(); /* between late ops, as the op profile (SIMPO_PROFILE=1) does around each */
        gpu->adamw(d_p[1] + o, d16[1] + o, d_g + o, NULL, 0.5f, d_m[1] + o, d_v[1] + o, nn, 3e-4, 0.9, 0.999, 1e-8,
                   0.1, 0.19, 0.002);
        gpu->late_end();
        gpu->copy(d_c2, d_c, n * 4);
        float *early = down(d_p[1], n), *cp = down(d_c2, n);
        bitwise("late: the main queue's copy beside the late work", cp, g, n * 4);
        if (emu && how == 0) bitwise("late (emulation): before the join, the old values", early, p, n * 4);
        if (how == 0) gpu->late_join();
        else gpu->sync();
        char lb[96];
        const char *names[4] = {"p", "m", "v", "p16"};
        for (int t = 0; t < 4; t++) {
            size_t bytes = t == 3 ? n * 2 : n * 4;
            void *a = sd_alloc(bytes, "late result"), *b = sd_alloc(bytes, "late result");
            gpu->download(a, t == 0 ? (void *)d_p[0] : t == 1 ? (void *)d_m[0] : t == 2 ? (void *)d_v[0] : (void *)d16[0], bytes);
            gpu->download(b, t == 0 ? (void *)d_p[1] : t == 1 ? (void *)d_m[1] : t == 2 ? (void *)d_v[1] : (void *)d16[1], bytes);
            snprintf(lb, sizeof lb, "late n=%zu (%s): %s bitwise the in-order update's", n, how ? "sync" : "late_join",
                     names[t]);
            bitwise(lb, b, a, bytes);
            free(a), free(b);
        }
        double ss[2];
        gpu->download(ss, d_ss, 2 * sizeof(double));
        CHECK(ss[0] == ss[1] && ss[0] > 0, "late n=%zu: sum of squares %.17g, in order %.17g", n, ss[1], ss[0]);
        free(early), free(cp);
        for (int k = 0; k < 2; k++) gpu->free(d_p[k]), gpu->free(d_m[k]), gpu->free(d_v[k]), gpu->free(d16[k]);
        gpu->free(d_ss), gpu->free(d_c), gpu->free(d_c2);
    }
    gpu->late_join(); /* nothing pending: a no-op */
    free(p), free(g), free(m), free(v);
    gpu->free(d_g);
}

/* A gradient held by rows (backend.h GradRows, the sparse embedding gradient) over a [rows, cols] tensor: adamw
 * (clipped) and adamw_sumsq bitwise the GPU's own update with the dense zero-filled gradient (p, m, v, p16 and, on
 * the same kernel path, the sum of squares: the same elements in the same order, the rows left out read as zeros),
 * and adamw within the op
 * tolerance of the CPU's by rows. cols % 4 == 0 takes the 4-wide kernels, else the one-by-one ones; every third
 * row held, numbered in reverse (the map places them). */
static void t_adamw_rows(size_t rows, size_t cols) {
    size_t n = rows * cols, held = 0;
    int *map = sd_alloc(rows * sizeof(int), "map");
    for (size_t r = 0; r < rows; r++) map[r] = r % 3 == 1 ? (int)held++ : -1;
    for (size_t r = 0; r < rows; r++)
        if (map[r] >= 0) map[r] = (int)held - 1 - map[r];
    float *g = hrand(held * cols, -1e-2, 1e-2), *dense = hconst(n, 0.0f);
    for (size_t r = 0; r < rows; r++)
        if (map[r] >= 0) memcpy(dense + r * cols, g + (size_t)map[r] * cols, cols * 4);
    float *p = hrand(n, -1, 1), *m = hrand(n, -1e-3, 1e-3), *v = hrand(n, 0, 1e-5);
    float *d_g = up(g, held * cols * 4), *d_dense = up(dense, n * 4);
    int *d_map = up(map, rows * sizeof(int));
    GradRows gr = {d_map, cols, held, GRAD_ROWS_ALL}, hr = {map, cols, held, GRAD_ROWS_ALL};
    for (int fused = 0; fused < 2; fused++) {
        float *d[2][3];
        uint16_t *d16[2];
        double *d_ss = gpu->alloc(2 * sizeof(double), "sumsq");
        for (int k = 0; k < 2; k++) {
            d[k][0] = up(p, n * 4), d[k][1] = up(m, n * 4), d[k][2] = up(v, n * 4);
            d16[k] = gpu->alloc(n * 2, "p16");
        }
        if (fused) {
            gpu->adamw_sumsq(d_ss, d[0][0], d16[0], d_g, &gr, d[0][1], d[0][2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1,
                             0.001);
            gpu->adamw_sumsq(d_ss + 1, d[1][0], d16[1], d_dense, NULL, d[1][1], d[1][2], n, 3e-4, 0.9, 0.999, 1e-8,
                             0.1, 0.1, 0.001);
        } else {
            gpu->adamw(d[0][0], d16[0], d_g, &gr, 0.37f, d[0][1], d[0][2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
            gpu->adamw(d[1][0], d16[1], d_dense, NULL, 0.37f, d[1][1], d[1][2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1,
                       0.001);
        }
        char lb[96];
        const char *nm[3] = {"p", "m", "v"};
        float *got[3];
        for (int j = 0; j < 3; j++) {
            got[j] = down(d[0][j], n);
            float *b = down(d[1][j], n);
            snprintf(lb, sizeof lb, "%s by rows %zux%zu: %s bitwise the dense update", fused ? "adamw_sumsq" : "adamw",
                     rows, cols, nm[j]);
            bitwise(lb, got[j], b, n * 4);
            free(b);
        }
        uint16_t *a16 = sd_alloc(n * 2, "p16"), *b16 = sd_alloc(n * 2, "p16");
        gpu->download(a16, d16[0], n * 2);
        gpu->download(b16, d16[1], n * 2);
        snprintf(lb, sizeof lb, "%s by rows %zux%zu: p16", fused ? "adamw_sumsq" : "adamw", rows, cols);
        bitwise(lb, a16, b16, n * 2);
        if (fused) {
            double ss[2];
            gpu->download(ss, d_ss, sizeof ss);
            /* bitwise where both take the 4-wide kernel; with cols % 4 != 0 the rows go one by one while the dense
             * gradient still runs 4-wide: the same squares added in another order */
            double tol = cols % 4 == 0 ? 0.0 : 1e-12 * ss[1];
            CHECK(fabs(ss[0] - ss[1]) <= tol && ss[0] > 0, "adamw_sumsq by rows %zux%zu: sum of squares %.17g, dense "
                  "%.17g", rows, cols, ss[0], ss[1]);
        } else { /* the CPU by rows (host map) */
            float *cp = hcopy(p, n), *cm = hcopy(m, n), *cv = hcopy(v, n);
            cpu->adamw(cp, NULL, g, &hr, 0.37f, cm, cv, n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
            cmp("adamw by rows p", got[0], cp, n, 1e-6);
            cmp("adamw by rows m", got[1], cm, n, 1e-6);
            cmp("adamw by rows v", got[2], cv, n, 1e-6);
            free(cp), free(cm), free(cv);
        }
        for (int j = 0; j < 3; j++) free(got[j]);
        free(a16), free(b16);
        for (int k = 0; k < 2; k++) gpu->free(d[k][0]), gpu->free(d[k][1]), gpu->free(d[k][2]), gpu->free(d16[k]);
        gpu->free(d_ss);
    }
    free(map), free(g), free(dense), free(p), free(m), free(v);
    gpu->free(d_g), gpu->free(d_dense), gpu->free(d_map);
}

/* SIMPO_CUDA_ADAMW_UNROLL=2 (two quads per thread and loop step, their loads issued together): adamw (clipped
 * gscale) and adamw_sumsq bitwise the default's, p, m, v, the bf16 copy and the sum of squares (the same quads in
 * the same order per thread); n = 100003 leaves threads with an odd number of quads (the single-quad tail) and 3
 * elements after the 4-wide body */
static void adamw_run(size_t n, const float *p, const float *g, const float *m, const float *v, float **out,
                      double *ss) { /* out[0..7]: adamw's p m v p16, then adamw_sumsq's */
    float *d_g = up(g, n * 4), *d[8];
    double *d_ss = gpu->alloc(sizeof(double), "sumsq");
    for (int k = 0; k < 2; k++) {
        d[4 * k] = up(p, n * 4), d[4 * k + 1] = up(m, n * 4), d[4 * k + 2] = up(v, n * 4);
        d[4 * k + 3] = gpu->alloc(n * 2, "p16");
    }
    gpu->adamw(d[0], (uint16_t *)d[3], d_g, NULL, 0.37f, d[1], d[2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
    gpu->adamw_sumsq(d_ss, d[4], (uint16_t *)d[7], d_g, NULL, d[5], d[6], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
    for (int t = 0; t < 8; t++) {
        out[t] = sd_alloc(n * 4, "adamw result");
        gpu->download(out[t], d[t], (t & 3) == 3 ? n * 2 : n * 4);
        gpu->free(d[t]);
    }
    gpu->download(ss, d_ss, sizeof(double));
    gpu->free(d_g), gpu->free(d_ss);
}
static void t_adamw_unroll(size_t n) {
    char *saved = env_save("SIMPO_CUDA_ADAMW_UNROLL");
    float *p = hrand(n, -1, 1), *g = hrand(n, -1e-2, 1e-2), *m = hrand(n, -1e-3, 1e-3), *v = hrand(n, 0, 1e-5);
    float *r[2][8];
    double ss[2];
    for (int u = 0; u < 2; u++) {
        setenv("SIMPO_CUDA_ADAMW_UNROLL", u ? "2" : "1", 1);
        adamw_run(n, p, g, m, v, r[u], &ss[u]);
    }
    free(p), free(g), free(m), free(v);
    const char *names[8] = {"p", "m", "v", "p16", "p", "m", "v", "p16"};
    char lb[96];
    for (int t = 0; t < 8; t++) {
        snprintf(lb, sizeof lb, "%s n=%zu unrolled x2: %s bitwise the default's", t < 4 ? "adamw" : "adamw_sumsq", n,
                 names[t]);
        bitwise(lb, r[1][t], r[0][t], (t & 3) == 3 ? n * 2 : n * 4);
    }
    CHECK(ss[1] == ss[0], "adamw_sumsq n=%zu unrolled x2: sum of squares %.17g, default %.17g", n, ss[1], ss[0]);
    for (int u = 0; u < 2; u++)
        for (int t = 0; t < 8; t++) free(r[u][t]);
    env_restore("SIMPO_CUDA_ADAMW_UNROLL", saved);
}

/* ---- attention ---- */
/* One attention case: packed sequences of lens[S] from row n0, random inputs (host and device), and the CPU's
 * results under options o: out, lse, dq, dk, dv (rows before cu[0] are written by neither side: prefilled). klate > 0:
 * keys from a sequence's 65th on of amplitude klate (row maxima jump at the second key tile). */
typedef struct {
    int S, N, NH, NKV, HD;
    size_t n[5];                 /* elements of out, lse, dq, dk, dv */
    int *cu, *d_cu;
    float *q, *k, *v, *dout;     /* host inputs */
    float *d_q, *d_k, *d_v, *d_dout;
    float *cpu[5];               /* the CPU's out, lse, dq, dk, dv */
} AttnCase;
static const float attn_prefill[5] = {7, 7, 1234, -777, -777}; /* written outputs: stale values must not leak */

static void attn_case_init(AttnCase *c, const int *lens, int S, int n0, int NH, int NKV, int HD, double amp,
                           double klate, const AttnOpts *o) {
    c->S = S, c->NH = NH, c->NKV = NKV, c->HD = HD;
    c->cu = sd_alloc(((size_t)S + 1) * sizeof(int), "cu");
    c->cu[0] = n0;
    for (int s = 0; s < S; s++) c->cu[s + 1] = c->cu[s] + lens[s];
    c->N = c->cu[S];
    size_t nq = (size_t)c->N * NH * HD, nk = (size_t)c->N * NKV * HD, nl = (size_t)c->N * NH;
    c->n[0] = nq, c->n[1] = nl, c->n[2] = nq, c->n[3] = nk, c->n[4] = nk;
    c->q = hrand(nq, -amp, amp), c->k = hrand(nk, -amp, amp), c->v = hrand(nk, -1, 1), c->dout = hrand(nq, -1, 1);
    if (klate > 0)
        for (int s = 0; s < S; s++)
            for (int j = c->cu[s] + 64; j < c->cu[s + 1]; j++)
                fill(c->k + (size_t)j * NKV * HD, (size_t)NKV * HD, -klate, klate);
    c->d_cu = up(c->cu, ((size_t)S + 1) * sizeof(int));
    c->d_q = up(c->q, nq * 4), c->d_k = up(c->k, nk * 4), c->d_v = up(c->v, nk * 4);
    c->d_dout = up(c->dout, nq * 4);
    for (int t = 0; t < 5; t++) c->cpu[t] = hconst(c->n[t], attn_prefill[t]);
    cpu->attn_fwd(c->cpu[0], c->cpu[1], c->q, c->k, c->v, c->cu, S, NH, NKV, HD, o);
    cpu->attn_bwd(c->cpu[2], c->cpu[3], c->cpu[4], c->dout, c->q, c->k, c->v, c->cpu[0], c->cpu[1], c->cu, S, NH,
                  NKV, HD, o);
}
/* the GPU's forward and backward (each from its own forward) into freshly prefilled buffers: host copies res[5] */
static void attn_gpu_run(const AttnCase *c, const AttnOpts *o, float *res[5]) {
    float *d[5];
    for (int t = 0; t < 5; t++) {
        float *h = hconst(c->n[t], attn_prefill[t]);
        d[t] = up(h, c->n[t] * 4);
        free(h);
    }
    gpu->attn_fwd(d[0], d[1], c->d_q, c->d_k, c->d_v, c->d_cu, c->S, c->NH, c->NKV, c->HD, o);
    gpu->attn_bwd(d[2], d[3], d[4], c->d_dout, c->d_q, c->d_k, c->d_v, d[0], d[1], c->d_cu, c->S, c->NH, c->NKV,
                  c->HD, o);
    for (int t = 0; t < 5; t++) res[t] = down(d[t], c->n[t]), gpu->free(d[t]);
}
/* res[5] against want[5] with bounds tol[5] (out, lse, dq, dk, dv); labels "<pre> <name><post>", the first one the
 * case's whole name; prints the five errors and returns them in err */
static void attn_cmp(const char *what, const char *pre, const char *post, float *const res[5],
                     float *const want[5], const size_t n[5], const double tol[5], double err[5]) {
    static const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    for (int t = 0; t < 5; t++) {
        char lb[200];
        if (t == 0) snprintf(lb, sizeof lb, "%s%s", what, post);
        else snprintf(lb, sizeof lb, "  %s%s%s", pre, names[t], post);
        err[t] = cmp(lb, res[t], want[t], n[t], tol[t]);
    }
    printf("%s%s: out %.2g lse %.2g dq %.2g dk %.2g dv %.2g\n", what, post, err[0], err[1], err[2], err[3], err[4]);
}
/* a second run bitwise the first (label "  <pre><name> deterministic") */
static void attn_bitwise(const char *pre, float *const a[5], float *const b[5], const size_t n[5]) {
    static const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    for (int t = 0; t < 5; t++) {
        char lb[96];
        snprintf(lb, sizeof lb, "  %s%s deterministic", pre, names[t]);
        bitwise(lb, a[t], b[t], n[t] * 4);
    }
}
static void attn_free5(float *x[5]) {
    for (int t = 0; t < 5; t++) free(x[t]), x[t] = NULL;
}
static void attn_case_free(AttnCase *c) {
    free(c->cu), free(c->q), free(c->k), free(c->v), free(c->dout);
    attn_free5(c->cpu);
    gpu->free(c->d_cu), gpu->free(c->d_q), gpu->free(c->d_k), gpu->free(c->d_v), gpu->free(c->d_dout);
}

/* GPU vs CPU forward and backward under options o (NULL: Llama's attention), and a second GPU run bitwise */
static void t_attn_o(const int *lens, int S, int n0, int NH, int NKV, int HD, double amp, const AttnOpts *o) {
    AttnCase c;
    attn_case_init(&c, lens, S, n0, NH, NKV, HD, amp, 0.0, o);
    char what[200];
    int wl = snprintf(what, sizeof what, "attn S=%d N=%d n0=%d NH=%d NKV=%d HD=%d amp=%g", S, c.N, n0, NH, NKV, HD,
                      amp);
    if (o) snprintf(what + wl, sizeof what - (size_t)wl, " scale=%g cap=%g window=%d", (double)o->scale,
                    (double)o->softcap, o->window);
    static const double tol[5] = {5e-6, 5e-6, 2e-5, 2e-5, 2e-5};
    float *g[5], *g2[5];
    double err[5];
    attn_gpu_run(&c, o, g);
    attn_cmp(what, "", "", g, c.cpu, c.n, tol, err);
    attn_gpu_run(&c, o, g2);
    attn_bitwise("attn ", g, g2, c.n);
    attn_free5(g), attn_free5(g2);
    attn_case_free(&c);
}
static void t_attn(const int *lens, int S, int n0, int NH, int NKV, int HD, double amp) {
    t_attn_o(lens, S, n0, NH, NKV, HD, amp, NULL);
}

/* Gemma 2's options on the fp32 kernels: the tiny-g2 fixture's (scale 24^-1/2, cap 3, window 8), gemma-2-9b's
 * (HD 256, scale 224^-1/2, cap 50) with windows inside one tile, across tile boundaries and over many tiles,
 * window 2, a window past every sequence, rows before cu[0]. (Window 1 would make dq and dk zero on the CPU,
 * dS = P (dP - D) with out = v, so a normwise comparison is ill-posed; the CPU op test checks it.) tc: the same under
 * SIMPO_CUDA_ATTN=tc, where the dispatch must still take the fp32 kernels (their tight bounds prove it). */
static void t_attn_gemma2(bool tc) {
    char *saved = env_save("SIMPO_CUDA_ATTN");
    if (tc) setenv("SIMPO_CUDA_ATTN", "tc", 1);
    AttnOpts fx = {.scale = (float)pow(24.0, -0.5), .softcap = 3.0f, .window = 8};
    AttnOpts g9 = {.scale = (float)pow(224.0, -0.5), .softcap = 50.0f, .window = 40};
    AttnOpts tight = {.scale = 0.0f, .softcap = 2.0f, .window = 33}, w2 = {.window = 2};
    AttnOpts far = {.scale = 0.1f, .softcap = 0.0f, .window = 100000}, many = {.softcap = 5.0f, .window = 100};
    static const int a[] = {1, 7, 64, 130};
    t_attn_o(a, 4, 0, 4, 2, 64, 1.0, &fx);
    t_attn_o(a, 4, 0, 4, 2, 256, 0.7, &g9);     /* HD 256, window across tile boundaries */
    t_attn_o(a, 4, 0, 8, 2, 128, 2.0, &tight);  /* peaked scores under a tight cap, window 33 */
    t_attn_o(a, 4, 0, 4, 4, 64, 1.0, &w2);      /* the diagonal and one key before it */
    t_attn_o(a, 4, 0, 4, 2, 64, 1.0, &far);     /* a window no sequence reaches, a scale of its own */
    static const int b[] = {5, 0, 33, 1};
    t_attn_o(b, 4, 3, 4, 2, 64, 1.0, &fx);      /* an empty sequence; rows before cu[0] */
    static const int d[] = {1000, 24};
    t_attn_o(d, 2, 0, 4, 2, 128, 1.0, &many);   /* many tiles, each query's window over 4-5 of them */
    static const int c[] = {200};
    t_attn_o(c, 1, 0, 3, 1, 20, 1.0, &fx);      /* odd head dim */
    env_restore("SIMPO_CUDA_ATTN", saved); /* unchanged unless tc set it */
}

/* a single length-1 sequence: out == v exactly and lse is the only score */
static void t_attn_len1(void) {
    int cu[2] = {0, 1};
    float q[64], k[64], v[64], out[64], lse[1];
    fill(q, 64, -1, 1), fill(k, 64, -1, 1), fill(v, 64, -1, 1);
    int *d_cu = up(cu, sizeof cu);
    float *d_q = up(q, sizeof q), *d_k = up(k, sizeof k), *d_v = up(v, sizeof v);
    float *d_o = gpu->alloc(sizeof out, "out"), *d_l = gpu->alloc(sizeof lse, "lse");
    gpu->attn_fwd(d_o, d_l, d_q, d_k, d_v, d_cu, 1, 1, 1, 64, NULL);
    gpu->download(out, d_o, sizeof out);
    gpu->download(lse, d_l, sizeof lse);
    double s = 0;
    for (int d = 0; d < 64; d++) s += (double)q[d] * k[d];
    CHECK(memcmp(out, v, sizeof v) == 0, "attention over one token: out == v");
    CHECK(fabs(lse[0] - s / 8.0) < 1e-5, "attention over one token: lse == score (%g vs %g)", lse[0], s / 8.0);
    gpu->free(d_cu), gpu->free(d_q), gpu->free(d_k), gpu->free(d_v), gpu->free(d_o), gpu->free(d_l);
}

/* attention_tc3.cu: its mma.sync / ldmatrix wrappers against a host matrix product; the number of wrong elements */
int cuda_attn_tc3_mma_check(void);

/* ---- attention on tensor cores (attention_tc.cu, the bf16 mode's kernels), forced by SIMPO_CUDA_ATTN=tc ----
 * Against the fp32 CPU reference, so the error is the kernel's bf16 rounding: q, k, v, dout rounded to bf16
 * (unit roundoff 2^-9 = 2e-3), P and dS rounded to bf16 for their products, fp32 accumulation and softmax.
 * Normwise (max|gpu - cpu| / max|cpu| per tensor). Expected sizes: out of a sequence's first row is bf16(v), an
 * error of up to 2^-9 max|v|, and every row carries that plus the probabilities' perturbation (score errors of
 * ~2^-9 |q||k| / sqrt(HD), larger for the peaked amp-2 case); lse sees only the score errors against
 * max|lse| >= 1; dq, dk, dv add dS = P (dP - D) with dP from bf16 operands and dS rounded once more. Seen under
 * the emulation (which rounds to bf16 exactly as the GPU does; only fp32 summation order and exp2f differ):
 * out <= 6.1e-3, lse <= 1.0e-3, dq / dk / dv <= 7.1e-3; on an H200 5.0e-3, 9.2e-4, 5.4e-3. Bounds, 3-5x that: out 2e-2 (10 u_bf16), lse 5e-3,
 * dq / dk / dv 3e-2 (15 u_bf16). They still catch real bugs, each tried once by breaking the kernel: a causal mask
 * that lets row i see key i + 1 (out off by 0.7-0.9, dq 0.7-1.0), a backward mask that drops the diagonal (dq,
 * dk, dv 0.36-0.79), a forward that never rescales O by exp(m_old - m_new) (out 0.096-0.94: every row past the
 * first key tile), the wrong query head in dK / dV (0.4-23); anything that reads unwritten shared memory is NaN.
 * The errors must also exceed 1e-5: fp32-sized errors (1e-7) would mean the dispatch took the fp32 kernel.
 * And a second run is bitwise identical (no atomics). */
static void t_attn_tc_k(const int *lens, int S, int n0, int NH, int NKV, int HD, double amp, double klate, int v3) {
    char *saved = env_save("SIMPO_CUDA_ATTN"), *saved_v = env_save("SIMPO_CUDA_ATTN_TC");
    setenv("SIMPO_CUDA_ATTN", "tc", 1);
    setenv("SIMPO_CUDA_ATTN_TC", "1", 1); /* the first version (attention_tc.cu); the second one below */
    AttnCase c;
    attn_case_init(&c, lens, S, n0, NH, NKV, HD, amp, klate, NULL);
    static const double tol[5] = {2e-2, 5e-3, 3e-2, 3e-2, 3e-2};
    char what[160];
    int wl = snprintf(what, sizeof what, "attn_tc S=%d N=%d n0=%d NH=%d NKV=%d HD=%d amp=%g", S, c.N, n0, NH, NKV,
                      HD, amp);
    if (klate > 0) snprintf(what + wl, sizeof what - (size_t)wl, " klate=%g", klate);
    float *g1[5], *g1b[5];
    double err[5];
    attn_gpu_run(&c, NULL, g1);
    attn_cmp(what, "", "", g1, c.cpu, c.n, tol, err);
    CHECK(err[0] > 1e-5 && err[2] > 1e-5, "%s: errors %.2g / %.2g look like fp32: the tensor-core path did not run",
          what, err[0], err[2]);
    /* determinism: a second forward and backward into fresh buffers */
    attn_gpu_run(&c, NULL, g1b);
    attn_bitwise("attn_tc ", g1, g1b, c.n);
    attn_free5(g1b);
    /* The second, third and fourth versions (attention_tc2.cu, attention_tc3.cu; SIMPO_CUDA_ATTN_TC=2, 3, 4; the
     * fourth is the third's kernels in blocks of 4 warps, 64-row tiles and 2-stage pipelines): the same bounds
     * against the CPU; against the first version the same bounds again (two bf16 computations of the same formulas
     * with the same operand rounding; seen under the emulation: out <= 2.2e-3, lse 2e-7, dq / dk / dv <= 4.7e-3);
     * deterministic (two runs into fresh buffers bitwise equal; the CPU emulation, whose runs are sequential and
     * slow, skips the second run of the long shapes); and not bitwise the first version's out when a sequence spans
     * several key tiles (they sum them in another fp32 order with another softmax reference: proof that the version
     * ran). Versions 3 and 4 only on the shapes `v3` says (the emulation's time; on a GPU every shape). */
    const int rerun = c.N < 1000 || !strstr(cuda_device_name(), "CPU emulation");
    int longest = 0;
    for (int s = 0; s < S; s++) longest = lens[s] > longest ? lens[s] : longest;
    float *r3[5] = {NULL, NULL, NULL, NULL, NULL}; /* version 3's, for version 4's bitwise check */
    static const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
    for (int ver = 2; ver <= 4; ver++) {
        if (ver >= 3 && !v3 && strstr(cuda_device_name(), "CPU emulation")) continue;
        char vs[4];
        snprintf(vs, sizeof vs, "%d", ver);
        setenv("SIMPO_CUDA_ATTN_TC", vs, 1);
        float *r[5], *rb[5] = {NULL, NULL, NULL, NULL, NULL};
        attn_gpu_run(&c, NULL, r);
        if (rerun) attn_gpu_run(&c, NULL, rb);
        char what2[176], pre[16];
        snprintf(what2, sizeof what2, "attn_tc%d%s", ver, what + 7); /* "attn_tc2 S=..." */
        snprintf(pre, sizeof pre, "attn_tc%d ", ver); /* every label names the version */
        double e2[5], x2[5];
        attn_cmp(what2, pre, "", r, c.cpu, c.n, tol, e2);
        attn_cmp(what2, pre, " vs v1", r, g1, c.n, tol, x2);
        CHECK(e2[0] > 1e-5 && e2[2] > 1e-5, "%s: errors %.2g / %.2g look like fp32: the tensor-core path did not run",
              what2, e2[0], e2[2]);
        if (rerun) attn_bitwise(pre, r, rb, c.n);
        if (longest > 64)
            CHECK(memcmp(r[0], g1[0], c.n[0] * 4) != 0,
                  "%s: out is bitwise the first version's: version %d did not run", what2, ver);
        /* version 4 runs version 3's per-warp arithmetic (each warp's 16 rows, the same 64-row inner tiles from the
         * sequence start, in the same order), only fewer warps per block: every output bitwise version 3's */
        if (ver == 4 && r3[0]) {
            for (int t = 0; t < 5; t++) {
                char lb[200];
                snprintf(lb, sizeof lb, "%s: %s bitwise version 3's", what2, names[t]);
                bitwise(lb, r[t], r3[t], c.n[t] * 4);
            }
        }
        /* SIMPO_CUDA_ATTN_STREAMS=2: the backward's dq kernel on a second stream beside dk/dv; their outputs are
         * disjoint, so every output bitwise the one-stream run's (on a GPU, a missing fork or join would show here
         * as a race) */
        if (ver == 4) {
            float *r2[5];
            char *saved_s = env_save("SIMPO_CUDA_ATTN_STREAMS");
            setenv("SIMPO_CUDA_ATTN_STREAMS", "2", 1);
            attn_gpu_run(&c, NULL, r2);
            env_restore("SIMPO_CUDA_ATTN_STREAMS", saved_s);
            for (int t = 0; t < 5; t++) {
                char lb[256];
                snprintf(lb, sizeof lb, "%s: %s with two streams bitwise one stream's", what2, names[t]);
                bitwise(lb, r2[t], r[t], c.n[t] * 4);
            }
            attn_free5(r2);
        }
        attn_free5(rb);
        if (ver == 3) memcpy(r3, r, sizeof r);
        else attn_free5(r);
    }
    if (r3[0]) attn_free5(r3);
    attn_free5(g1);
    attn_case_free(&c);
    env_restore("SIMPO_CUDA_ATTN", saved), env_restore("SIMPO_CUDA_ATTN_TC", saved_v);
}
static void t_attn_tc(const int *lens, int S, int n0, int NH, int NKV, int HD, double amp) {
    t_attn_tc_k(lens, S, n0, NH, NKV, HD, amp, 0.0, 1);
}

/* ---- autocast storage of attention (section attn_b16; backend.h attn_fwd_b16 / attn_bwd_b16) ----
 * Each op is the fp32 op on its widened bf16 inputs with its outputs (out; dq, dk, dv) rounded, so on the GPU it must
 * equal, bitwise, the GPU's own fp32 entry run on the widened values (its outputs rounded to bf16; the backward given
 * the widened bf16 out and dout), whichever path runs: the tensor cores of versions 2 and 3 reading and writing the bf16 tensors directly (the same bf16 operands
 * the fp32 entry rounds its inputs to), version 1 and the fp32 kernels on widened copies. Rows before cu[0] keep
 * their old values (out) or become zeros (dq, dk, dv) as in the fp32 entry. Against the CPU's b16 ops (its backward
 * given the GPU's out and lse) within the bounds of the path (t_attn_tc's on tensor cores, t_attn's otherwise plus
 * one bf16 rounding for the bf16 outputs). cuda_attn_b16_direct_calls (attention.cu) shows which path ran: the results cannot. */
long cuda_attn_b16_direct_calls(void);
long cuda_attn_rows_calls(void); /* calls the prefix-sharing rows ops took (attention.cu) */
static uint16_t *h16(const float *x, size_t n) { /* bf16 of a host array */
    uint16_t *y = sd_alloc((n ? n : 1) * 2, "bf16 host copy");
    cpu->to_bf16(y, x, n);
    return y;
}
static float *hwide(const uint16_t *x, size_t n) { /* the fp32 values of a bf16 host array */
    float *y = sd_alloc((n ? n : 1) * sizeof(float), "widened host copy");
    for (size_t i = 0; i < n; i++) y[i] = sd_bf16_to_f32(x[i]);
    return y;
}
/* a device copy of n floats, as bf16 (b16) or fp32; and back as floats (bf16 widened) */
static void *gup(const float *x, size_t n, bool b16) {
    if (!b16) return up(x, n * 4);
    uint16_t *h = h16(x, n);
    void *d = up(h, n * 2);
    free(h);
    return d;
}
static float *gdown(const void *d, size_t n, bool b16) {
    if (!b16) return down(d, n);
    uint16_t *h = sd_alloc((n ? n : 1) * 2, "bf16 host copy");
    gpu->download(h, d, n * 2);
    float *y = hwide(h, n);
    free(h);
    return y;
}
static void t_attn_b16(const int *lens, int S, int n0, int NH, int NKV, int HD, const AttnOpts *o, const char *path,
                       int ver) {
    char *saved = env_save("SIMPO_CUDA_ATTN"), *saved_v = env_save("SIMPO_CUDA_ATTN_TC");
    char vs[8];
    snprintf(vs, sizeof vs, "%d", ver);
    setenv("SIMPO_CUDA_ATTN", path, 1);
    setenv("SIMPO_CUDA_ATTN_TC", vs, 1);
    int *cu = sd_alloc(((size_t)S + 1) * sizeof(int), "cu");
    cu[0] = n0;
    for (int s = 0; s < S; s++) cu[s + 1] = cu[s] + lens[s];
    const int N = cu[S];
    const size_t nq = (size_t)N * NH * HD, nk = (size_t)N * NKV * HD, nl = (size_t)N * NH, skip = (size_t)n0 * NH * HD;
    float *q = hrand(nq, -1, 1), *k = hrand(nk, -1, 1), *v = hrand(nk, -1, 1), *dout = hrand(nq, -1, 1);
    uint16_t *q16 = h16(q, nq), *k16 = h16(k, nk), *v16 = h16(v, nk), *do16 = h16(dout, nq);
    float *qw = hwide(q16, nq), *kw = hwide(k16, nk), *vw = hwide(v16, nk), *dow = hwide(do16, nq);
    float *pre = hconst(nq, 7.0f), *prel = hconst(nl, 7.0f);
    uint16_t *pre16 = h16(pre, nq);
    int *d_cu = up(cu, ((size_t)S + 1) * sizeof(int));
    uint16_t *d_q16 = up(q16, nq * 2), *d_k16 = up(k16, nk * 2), *d_v16 = up(v16, nk * 2), *d_o16 = up(pre16, nq * 2);
    float *d_qw = up(qw, nq * 4), *d_kw = up(kw, nk * 4), *d_vw = up(vw, nk * 4), *d_dout = up(dow, nq * 4);
    uint16_t *d_do16 = up(do16, nq * 2);
    float *d_l16 = up(prel, nl * 4), *d_of = up(pre, nq * 4), *d_lf = up(prel, nl * 4);
    uint16_t *d_g[3];
    float *d_gf[3];
    for (int t = 0; t < 3; t++) {
        size_t n = t ? nk : nq;
        float *h = hconst(n, -777.0f);
        uint16_t *h2 = h16(h, n);
        d_g[t] = up(h2, n * 2), d_gf[t] = up(h, n * 4);
        free(h), free(h2);
    }
    char what[200];
    int wl = snprintf(what, sizeof what, "attn_b16 (%s, v%d) S=%d N=%d n0=%d NH=%d NKV=%d HD=%d", path, ver, S, N,
                      n0, NH, NKV, HD);
    if (o) snprintf(what + wl, sizeof what - (size_t)wl, " scale=%g cap=%g window=%d", (double)o->scale,
                    (double)o->softcap, o->window);
    /* the bf16 entries */
    const long direct0 = cuda_attn_b16_direct_calls();
    gpu->attn_fwd_b16(d_o16, d_l16, d_q16, d_k16, d_v16, d_cu, S, NH, NKV, HD, o);
    gpu->attn_bwd_b16(d_g[0], d_g[1], d_g[2], d_do16, d_q16, d_k16, d_v16, d_o16, d_l16, d_cu, S, NH, NKV, HD, o);
    const long direct = cuda_attn_b16_direct_calls() - direct0;
    /* the tensor cores run Llama's attention at head dims 64 and 128 (use_tc in attention.cu) */
    const bool tc = strcmp(path, "tc") == 0 && attn_opts_is_default(o, HD) && (HD == 64 || HD == 128);
    const bool want_direct = tc && ver >= 2;
    CHECK(direct == (want_direct ? 2 : 0), "%s: %ld of 2 calls ran on the bf16 tensors directly, expected %d", what,
          direct, want_direct ? 2 : 0);
    uint16_t *o16 = sd_alloc(nq * 2, "out16");
    gpu->download(o16, d_o16, nq * 2);
    float *l16 = down(d_l16, nl);
    uint16_t *g[3];
    for (int t = 0; t < 3; t++) {
        g[t] = sd_alloc((t ? nk : nq) * 2, "gradient16");
        gpu->download(g[t], d_g[t], (t ? nk : nq) * 2);
    }
    /* the fp32 entry on the widened values */
    gpu->attn_fwd(d_of, d_lf, d_qw, d_kw, d_vw, d_cu, S, NH, NKV, HD, o);
    float *of = down(d_of, nq), *lf = down(d_lf, nl), *ow = hwide(o16, nq);
    uint16_t *of16 = h16(of, nq);
    float *d_ow = up(ow, nq * 4);
    gpu->attn_bwd(d_gf[0], d_gf[1], d_gf[2], d_dout, d_qw, d_kw, d_vw, d_ow, d_l16, d_cu, S, NH, NKV, HD, o);
    float *gf[3] = {down(d_gf[0], nq), down(d_gf[1], nk), down(d_gf[2], nk)};
    char lb[240];
    snprintf(lb, sizeof lb, "%s: out = bf16(the fp32 entry's out)", what);
    bitwise(lb, o16, of16, nq * 2);
    snprintf(lb, sizeof lb, "%s: rows before cu[0] of out untouched", what);
    bitwise(lb, o16, pre16, skip * 2);
    snprintf(lb, sizeof lb, "%s: lse = the fp32 entry's", what);
    bitwise(lb, l16, lf, nl * 4);
    static const char *gn[3] = {"dq", "dk", "dv"};
    for (int t = 0; t < 3; t++) {
        uint16_t *r = h16(gf[t], t ? nk : nq);
        snprintf(lb, sizeof lb, "%s: %s = bf16(the fp32 entry's)", what, gn[t]);
        bitwise(lb, g[t], r, (t ? nk : nq) * 2);
        free(r);
    }
    /* against the CPU */
    uint16_t *c16 = h16(pre, nq), *cg[3];
    float *cl = hconst(nl, 7.0f);
    for (int t = 0; t < 3; t++) cg[t] = sd_alloc((t ? nk : nq) * 2, "cpu gradient16");
    cpu->attn_fwd_b16(c16, cl, q16, k16, v16, cu, S, NH, NKV, HD, o);
    cpu->attn_bwd_b16(cg[0], cg[1], cg[2], do16, q16, k16, v16, o16, l16, cu, S, NH, NKV, HD, o);
    float *cw = hwide(c16, nq);
    double tol[5] = {2e-2, 5e-3, 3e-2, 3e-2, 3e-2};
    if (!tc) /* the fp32 kernels */
        tol[0] = 0x1p-8 + 5e-6, tol[1] = 5e-6, tol[2] = tol[3] = tol[4] = 0x1p-8 + 2e-5;
    snprintf(lb, sizeof lb, "%s vs cpu: out", what);
    cmp(lb, ow, cw, nq, tol[0]);
    snprintf(lb, sizeof lb, "%s vs cpu: lse", what);
    cmp(lb, l16, cl, nl, tol[1]);
    for (int t = 0; t < 3; t++) {
        float *gw = hwide(g[t], t ? nk : nq), *cgw = hwide(cg[t], t ? nk : nq);
        snprintf(lb, sizeof lb, "%s vs cpu: %s", what, gn[t]);
        cmp(lb, gw, cgw, t ? nk : nq, tol[2 + t]);
        free(gw), free(cgw);
    }
    printf("%s: bitwise the fp32 entry's; %s\n", what, want_direct ? "tensor cores on the bf16 tensors" : "widened");
    free(cu), free(q), free(k), free(v), free(dout), free(q16), free(k16), free(v16), free(qw), free(kw), free(vw);
    free(pre), free(prel), free(pre16), free(o16), free(l16), free(of), free(lf), free(ow), free(of16), free(c16);
    free(cl), free(cw), free(do16), free(dow);
    for (int t = 0; t < 3; t++) free(g[t]), free(gf[t]), free(cg[t]), gpu->free(d_g[t]), gpu->free(d_gf[t]);
    gpu->free(d_cu), gpu->free(d_q16), gpu->free(d_k16), gpu->free(d_v16), gpu->free(d_o16), gpu->free(d_qw);
    gpu->free(d_kw), gpu->free(d_vw), gpu->free(d_dout), gpu->free(d_l16), gpu->free(d_of), gpu->free(d_lf);
    gpu->free(d_ow), gpu->free(d_do16);
    env_restore("SIMPO_CUDA_ATTN", saved), env_restore("SIMPO_CUDA_ATTN_TC", saved_v);
}

/* ---- prefix sharing in the layers' rows (section attn_rows; backend.h attn_fwd_b16_rows / attn_bwd_b16_rows on
 * bf16 storage, attn_fwd_rows / attn_bwd_rows on fp32 tensors) ----
 * Pairs laid out as data/pairs.c lays them under prefix sharing ([prompt | chosen | rejected] per pair; sequence 2i
 * = prompt + chosen, 2i + 1 = prompt + rejected, its first n_prompt rows copies), q, k, v, dout random in the layers'
 * rows (bf16 values in both forms, so both see the same operands), every output prefilled with garbage (every token
 * row must be written). On version 4 (the only version with kernels for it; the op must report done):
 *  - against the CPU's rows ops (the definition: attention's layout gathered, the fp32 op, each token's gradients
 *    summed over its rows in fp32; its backward given the GPU's out and lse) within the tensor-core bounds;
 *  - against the GPU's own attn_fwd(_b16) / attn_bwd(_b16) on attention's layout gathered on the host (what model.c
 *    runs where the rows ops are missing): bitwise for out, lse and dq of every token (each query row meets the same
 *    key tiles in the same order) and for dk, dv of the chosen responses' tokens (the same key tiles, meeting the
 *    same query tiles; the rejected sequence's query tiles only add exact zeros past the prompt), and of the rejected
 *    responses' too where n_prompt is a multiple of 64 (then its key and query tiles fall where the gathered run's
 *    do); the prompt's dk, dv within the bounds (bf16: one rounding instead of two; fp32: one sum instead of two);
 *  - a second run bitwise the first. With SIMPO_CUDA_ATTN_TC=3 the ops must decline (false, nothing written). */
static void t_attn_rows(const int (*pr)[3], int P, int NH, int NKV, int HD, bool b16) {
    char *saved = env_save("SIMPO_CUDA_ATTN"), *saved_v = env_save("SIMPO_CUDA_ATTN_TC");
    setenv("SIMPO_CUDA_ATTN", "tc", 1);
    setenv("SIMPO_CUDA_ATTN_TC", "4", 1);
    const int S = 2 * P;
    int *cu = sd_alloc(((size_t)S + 1) * sizeof(int), "cu"), *skip = sd_alloc((size_t)S * sizeof(int), "skip");
    int Nt = 0, Na = 0;
    for (int i = 0; i < P; i++) Nt += pr[i][0] + pr[i][1] + pr[i][2], Na += 2 * pr[i][0] + pr[i][1] + pr[i][2];
    int *xrow = sd_alloc((size_t)Na * sizeof(int), "xrow");
    char *kind = sd_alloc((size_t)Nt, "token kind"); /* 'p' prompt, 'c' chosen, 'r' rejected response */
    int *np_of = sd_alloc((size_t)Nt * sizeof(int), "prompt lengths"); /* each token's pair's n_prompt */
    int t = 0, a = 0;
    cu[0] = 0;
    for (int i = 0; i < P; i++) {
        const int np = pr[i][0], tp = t;
        for (int r = 0; r < 2; r++) {
            const int s = 2 * i + r, nr = pr[i][1 + r];
            skip[s] = r ? np : 0;
            for (int j = 0; j < np + nr; j++) {
                if (j < np) {
                    xrow[a++] = tp + j;
                    if (!r) np_of[t] = np, kind[t++] = 'p';
                } else {
                    xrow[a++] = t;
                    np_of[t] = np, kind[t++] = r ? 'r' : 'c';
                }
            }
            cu[s + 1] = a;
        }
    }
    const size_t qs = (size_t)NH * HD, ks = (size_t)NKV * HD, E = b16 ? 2 : 4; /* bytes per element */
    const size_t nq = (size_t)Nt * qs, nk = (size_t)Nt * ks, nl = (size_t)Nt * NH;
    const size_t aq = (size_t)Na * qs, ak = (size_t)Na * ks, al = (size_t)Na * NH;
    /* operands: bf16 values, uploaded as bf16 or as their fp32 widening */
    float *hx[4];
    const size_t hn[4] = {nq, nk, nk, nq}; /* q, k, v, dout */
    uint16_t *h16s[4];
    for (int u = 0; u < 4; u++) {
        float *r = hrand(hn[u], -1, 1);
        h16s[u] = h16(r, hn[u]);
        hx[u] = hwide(h16s[u], hn[u]);
        free(r);
    }
    void *d_in[4];
    for (int u = 0; u < 4; u++) d_in[u] = b16 ? up(h16s[u], hn[u] * 2) : up(hx[u], hn[u] * 4);
    float *junk = hconst(nq, -777.0f);
    uint16_t *junk16 = h16(junk, nq);
    const void *jh = b16 ? (const void *)junk16 : (const void *)junk;
    int *d_cu = up(cu, ((size_t)S + 1) * sizeof(int)), *d_skip = up(skip, (size_t)S * sizeof(int));
    int *d_xrow = up(xrow, (size_t)Na * sizeof(int));
    void *d_o = up(jh, nq * E), *d_g[3] = {up(jh, nq * E), up(jh, nk * E), up(jh, nk * E)};
    float *d_l = up(junk, nl * 4);
    char what[160];
    snprintf(what, sizeof what, "attn_rows (v4, %s) P=%d Ntok=%d Natt=%d NH=%d NKV=%d HD=%d", b16 ? "bf16" : "fp32", P,
             Nt, Na, NH, NKV, HD);
    /* the ops under test, as many times as asked (a rerun must give the same bits) */
#define ROWS_FWD(o)                                                                                                   \
    (b16 ? gpu->attn_fwd_b16_rows((uint16_t *)(o), d_l, d_in[0], d_in[1], d_in[2], (size_t)Nt, d_cu, S, d_xrow,     \
                                  d_skip, NH, NKV, HD, NULL)                                                         \
         : gpu->attn_fwd_rows((float *)(o), d_l, d_in[0], d_in[1], d_in[2], (size_t)Nt, d_cu, S, d_xrow, d_skip, NH, \
                              NKV, HD, NULL))
#define ROWS_BWD()                                                                                                    \
    (b16 ? gpu->attn_bwd_b16_rows(d_g[0], d_g[1], d_g[2], d_in[3], d_in[0], d_in[1], d_in[2], d_o, d_l, (size_t)Nt,  \
                                  d_cu, S, d_xrow, d_skip, NH, NKV, HD, NULL)                                        \
         : gpu->attn_bwd_rows(d_g[0], d_g[1], d_g[2], d_in[3], d_in[0], d_in[1], d_in[2], d_o, d_l, (size_t)Nt, d_cu, \
                              S, d_xrow, d_skip, NH, NKV, HD, NULL))
    const long calls0 = cuda_attn_rows_calls();
    bool done = ROWS_FWD(d_o);
    done = ROWS_BWD() && done;
    CHECK(done && cuda_attn_rows_calls() - calls0 == 2, "%s: the ops declined or did not run", what);
    /* outputs as floats (bf16 widened) */
    float *o = gdown(d_o, nq, b16), *l = down(d_l, nl), *g[3];
    for (int u = 0; u < 3; u++) g[u] = gdown(d_g[u], u ? nk : nq, b16);
    ROWS_FWD(d_o);
    ROWS_BWD();
    char lb[240];
    float *o2 = gdown(d_o, nq, b16);
    snprintf(lb, sizeof lb, "%s: rerun out", what);
    bitwise(lb, o2, o, nq * 4);
    free(o2);
    static const char *gn[3] = {"dq", "dk", "dv"};
    for (int u = 0; u < 3; u++) {
        float *g2 = gdown(d_g[u], u ? nk : nq, b16);
        snprintf(lb, sizeof lb, "%s: rerun %s", what, gn[u]);
        bitwise(lb, g2, g[u], (u ? nk : nq) * 4);
        free(g2);
    }
    /* against the CPU's rows ops (fp32: the definition; on the GPU's out and lse for the backward) */
    float *co = hconst(nq, -777.0f), *cl = hconst(nl, -777.0f), *cg[3];
    for (int u = 0; u < 3; u++) cg[u] = hconst(u ? nk : nq, -777.0f);
    cpu->attn_fwd_rows(co, cl, hx[0], hx[1], hx[2], (size_t)Nt, cu, S, xrow, skip, NH, NKV, HD, NULL);
    cpu->attn_bwd_rows(cg[0], cg[1], cg[2], hx[3], hx[0], hx[1], hx[2], o, l, (size_t)Nt, cu, S, xrow, skip, NH, NKV,
                       HD, NULL);
    const double tol[5] = {2e-2, 5e-3, 3e-2, 3e-2, 3e-2}; /* t_attn_tc's */
    snprintf(lb, sizeof lb, "%s vs cpu: out", what);
    cmp(lb, o, co, nq, tol[0]);
    snprintf(lb, sizeof lb, "%s vs cpu: lse", what);
    cmp(lb, l, cl, nl, tol[1]);
    for (int u = 0; u < 3; u++) {
        snprintf(lb, sizeof lb, "%s vs cpu: %s", what, gn[u]);
        cmp(lb, g[u], cg[u], u ? nk : nq, tol[2 + u]);
    }
    /* against the GPU's ops on attention's layout, gathered here as model.c gathers it */
    float *xin[4];
    const size_t xw[4] = {qs, ks, ks, qs};
    for (int u = 0; u < 4; u++) xin[u] = sd_alloc((u == 1 || u == 2 ? ak : aq) * 4, "gathered operand");
    float *xo = sd_alloc(aq * 4, "xo"), *xl = sd_alloc(al * 4, "xlse");
    for (int s = 0; s < S; s++)
        for (int r = cu[s]; r < cu[s + 1]; r++) {
            const size_t w = (size_t)xrow[r];
            for (int u = 0; u < 3; u++) memcpy(xin[u] + r * xw[u], hx[u] + w * xw[u], xw[u] * 4);
            memcpy(xo + r * qs, o + w * qs, qs * 4);
            memcpy(xl + r * NH, l + w * NH, (size_t)NH * 4);
            if (r >= cu[s] + skip[s]) memcpy(xin[3] + r * qs, hx[3] + w * qs, qs * 4);
            else memset(xin[3] + r * qs, 0, qs * 4); /* a copy's dout: zero */
        }
    void *d_x[4], *d_xo = gup(xo, aq, b16), *d_xo2 = gup(xo, aq, b16), *d_xg[3];
    for (int u = 0; u < 4; u++) d_x[u] = gup(xin[u], u == 1 || u == 2 ? ak : aq, b16);
    for (int u = 0; u < 3; u++) d_xg[u] = gup(xin[u], u ? ak : aq, b16);
    float *d_xl = up(xl, al * 4), *d_xl2 = up(xl, al * 4);
    if (b16) {
        gpu->attn_fwd_b16(d_xo2, d_xl2, d_x[0], d_x[1], d_x[2], d_cu, S, NH, NKV, HD, NULL);
        gpu->attn_bwd_b16(d_xg[0], d_xg[1], d_xg[2], d_x[3], d_x[0], d_x[1], d_x[2], d_xo, d_xl, d_cu, S, NH, NKV, HD,
                          NULL);
    } else {
        gpu->attn_fwd(d_xo2, d_xl2, d_x[0], d_x[1], d_x[2], d_cu, S, NH, NKV, HD, NULL);
        gpu->attn_bwd(d_xg[0], d_xg[1], d_xg[2], d_x[3], d_x[0], d_x[1], d_x[2], d_xo, d_xl, d_cu, S, NH, NKV, HD, NULL);
    }
    float *go = gdown(d_xo2, aq, b16), *gl = down(d_xl2, al), *gg[3];
    for (int u = 0; u < 3; u++) gg[u] = gdown(d_xg[u], u ? ak : aq, b16);
    long bad[5] = {0, 0, 0, 0, 0};
    for (int s = 0; s < S; s++)
        for (int r = cu[s] + skip[s]; r < cu[s + 1]; r++) { /* each token's own row */
            const size_t w = (size_t)xrow[r];
            bad[0] += memcmp(o + w * qs, go + r * qs, qs * 4) != 0;
            bad[1] += memcmp(l + w * NH, gl + r * NH, (size_t)NH * 4) != 0;
            bad[2] += memcmp(g[0] + w * qs, gg[0] + r * qs, qs * 4) != 0;
            if (kind[w] == 'c' || (kind[w] == 'r' && np_of[w] % 64 == 0)) {
                bad[3] += memcmp(g[1] + w * ks, gg[1] + r * ks, ks * 4) != 0;
                bad[4] += memcmp(g[2] + w * ks, gg[2] + r * ks, ks * 4) != 0;
            }
        }
    static const char *bn[5] = {"out", "lse", "dq", "dk (responses)", "dv (responses)"};
    for (int u = 0; u < 5; u++)
        CHECK(bad[u] == 0, "%s: %s of %ld token rows not bitwise the gathered run's", what, bn[u], bad[u]);
    /* the prompt's dk, dv: the gathered run's two rows summed (bf16: each rounded, then summed and rounded) */
    for (int u = 1; u < 3; u++) {
        float *sum = sd_calloc(nk, 4, "summed");
        for (int r = 0; r < Na; r++)
            for (size_t e = 0; e < ks; e++) sum[(size_t)xrow[r] * ks + e] += gg[u][(size_t)r * ks + e];
        snprintf(lb, sizeof lb, "%s vs gathered: %s", what, gn[u]);
        cmp(lb, g[u], sum, nk, tol[2 + u]);
        free(sum);
    }
    /* another version declines, writing nothing */
    setenv("SIMPO_CUDA_ATTN_TC", "3", 1);
    void *d_j = up(jh, nq * E);
    const bool took = ROWS_FWD(d_j);
    float *jo = gdown(d_j, nq, b16), *jw = b16 ? hwide(junk16, nq) : hconst(nq, -777.0f);
    CHECK(!took, "%s: version 3 took the rows op", what);
    snprintf(lb, sizeof lb, "%s: version 3 wrote nothing", what);
    bitwise(lb, jo, jw, nq * 4);
#undef ROWS_FWD
#undef ROWS_BWD
    printf("%s: matches the CPU and the gathered run\n", what);
    free(cu), free(skip), free(xrow), free(kind), free(np_of), free(junk), free(junk16), free(o), free(l), free(co);
    free(cl), free(xo), free(xl), free(go), free(gl), free(jo), free(jw);
    for (int u = 0; u < 4; u++) free(hx[u]), free(h16s[u]), free(xin[u]), gpu->free(d_in[u]), gpu->free(d_x[u]);
    for (int u = 0; u < 3; u++) free(g[u]), free(cg[u]), free(gg[u]), gpu->free(d_g[u]), gpu->free(d_xg[u]);
    gpu->free(d_cu), gpu->free(d_skip), gpu->free(d_xrow), gpu->free(d_o), gpu->free(d_l), gpu->free(d_xo);
    gpu->free(d_xo2), gpu->free(d_xl), gpu->free(d_xl2), gpu->free(d_j);
    env_restore("SIMPO_CUDA_ATTN", saved), env_restore("SIMPO_CUDA_ATTN_TC", saved_v);
}

/* ---- GPU timings at training sizes (informational) ---- */
/* perf: the benchmark's GEMM shapes (bench/simpo_bench.sh, bf16 operands, one micro-batch of 7168 rows on
 * 8b-4l and 14336 on 1b under prefix sharing; the LM head on 8b-4l's 6144 log-prob rows, one chunk with the
 * whole logits cache) on the default path (ex) and the tune path, which keeps, per shape,
 * the fastest of the heuristic's algorithms that compute its first choice's bits (matmul.cu lt_tune): how much
 * of the step's GEMM time tuning could take (docs/performance.md). Each: a warm-up call (the tune path's timing),
 * then 5 timed calls. */
typedef struct {
    const char *name;
    int M, N, K;
    bool tA, tB, out16;
} GemmShape;
static void perf_gemm(void) {
    static const GemmShape sh[] = {
        {"8b-4l q, o fwd", 7168, 4096, 4096, false, true, true},
        {"8b-4l k, v fwd", 7168, 1024, 4096, false, true, true},
        {"8b-4l gate, up fwd", 7168, 14336, 4096, false, true, true},
        {"8b-4l down fwd", 7168, 4096, 14336, false, true, false},
        {"8b-4l q, k, v dX", 7168, 4096, 6144, false, false, false},
        {"8b-4l q, k, v dW", 6144, 4096, 7168, true, false, false},
        {"8b-4l gate, up dX", 7168, 4096, 28672, false, false, false},
        {"8b-4l gate, up dW", 28672, 4096, 7168, true, false, false},
        {"8b-4l down dX", 7168, 14336, 4096, false, false, true},
        {"8b-4l down dW", 4096, 14336, 7168, true, false, false},
        {"8b-4l LM head fwd (one chunk)", 6144, 128256, 4096, false, true, true},
        {"8b-4l LM head dX", 6144, 4096, 128256, false, false, false},
        {"8b-4l LM head dW", 128256, 4096, 6144, true, false, false},
        {"1b q, o fwd", 14336, 2048, 2048, false, true, true},
        {"1b k, v fwd", 14336, 512, 2048, false, true, true},
        {"1b gate, up fwd", 14336, 8192, 2048, false, true, true},
        {"1b gate, up dX", 14336, 2048, 16384, false, false, false},
        {"1b down dW", 2048, 8192, 14336, true, false, false},
    };
    const int ns = (int)(sizeof sh / sizeof sh[0]);
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < ns; i++) {
        size_t a = (size_t)sh[i].M * sh[i].K, b = (size_t)sh[i].K * sh[i].N, c = (size_t)sh[i].M * sh[i].N;
        maxa = a > maxa ? a : maxa, maxb = b > maxb ? b : maxb, maxc = c > maxc ? c : maxc;
    }
    const size_t blk = (size_t)1 << 20; /* random bf16 block repeated over the operands (zeros would draw less power) */
    float *hx = hrand(blk, -1, 1);
    uint16_t *hb = h16(hx, blk), *dA = gpu->alloc(maxa * 2, "perf A"), *dB = gpu->alloc(maxb * 2, "perf B");
    float *dC = gpu->alloc(maxc * 4, "perf C");
    for (size_t o = 0; o < maxa; o += blk) gpu->upload(dA + o, hb, (maxa - o < blk ? maxa - o : blk) * 2);
    for (size_t o = 0; o < maxb; o += blk) gpu->upload(dB + o, hb, (maxb - o < blk ? maxb - o : blk) * 2);
    char *saved = bf16_begin();
    double tot[2] = {0, 0};
    for (int i = 0; i < ns; i++) {
        const GemmShape *g = &sh[i];
        double t[2];
        for (int path = 0; path < 2; path++) {
            setenv("SIMPO_CUDA_GEMM", path ? "tune" : "ex", 1);
            for (int r = 0; r < 6; r++) {
                if (r == 1) cuda_synchronize(), t[path] = sd_now();
                if (g->out16) gpu->matmul16_out16((uint16_t *)dC, dA, true, dB, true, g->M, g->N, g->K, g->tA, g->tB);
                else gpu->matmul16(dC, dA, true, dB, true, g->M, g->N, g->K, g->tA, g->tB, 1, 0);
            }
            cuda_synchronize();
            t[path] = (sd_now() - t[path]) / 5;
            tot[path] += t[path];
        }
        int ch = 0, nca = 1, el = 1;
        cuda_gemm_tune_choice(g->M, g->N, g->K, g->tA, g->tB, g->out16, &ch, &nca, &el);
        double fl = 2.0 * g->M * g->N * g->K;
        printf("perf: gemm %s %dx%dx%d %c%c %s out: ex %.3f ms (%.1f TFLOP/s), tune %.3f ms (%.1f TFLOP/s, "
               "algorithm %d of %d, %d with the heuristic's bits)\n",
               g->name, g->M, g->N, g->K, g->tA ? 'T' : 'N', g->tB ? 'T' : 'N', g->out16 ? "bf16" : "fp32",
               t[0] * 1e3, fl / t[0] / 1e12, t[1] * 1e3, fl / t[1] / 1e12, ch, nca, el);
    }
    printf("perf: gemm shapes above, one call each: ex %.3f ms, tune %.3f ms (tune %.3fx as fast)\n", tot[0] * 1e3,
           tot[1] * 1e3, tot[0] / tot[1]);
    bf16_end(saved);
    free(hx), free(hb);
    gpu->free(dA), gpu->free(dB), gpu->free(dC);
}
static void perf(void) {
    perf_gemm();
    int N = 4096, C = 4096, NH = 32, NKV = 8, HD = 128, S = 4;
    int cu[5] = {0, 1024, 2048, 3072, 4096};
    size_t nq = (size_t)N * NH * HD, nk = (size_t)N * NKV * HD;
    float *d_x = gpu->alloc((size_t)N * C * 4, "x"), *d_w = gpu->alloc((size_t)C * C * 4, "w");
    float *d_y = gpu->alloc((size_t)N * C * 4, "y");
    float *hx = hrand((size_t)N * C, -1, 1);
    gpu->upload(d_x, hx, (size_t)N * C * 4);
    gpu->upload(d_w, hx, (size_t)C * C * 4);
    gpu->matmul(d_y, d_x, d_w, N, C, C, false, true, 1, 0); /* warm-up */
    cuda_synchronize();
    double t0 = sd_now();
    for (int i = 0; i < 5; i++) gpu->matmul(d_y, d_x, d_w, N, C, C, false, true, 1, 0);
    cuda_synchronize();
    double tm = (sd_now() - t0) / 5;
    printf("perf: matmul %dx%dx%d fp32: %.2f ms, %.1f TFLOP/s\n", N, C, C, tm * 1e3, 2.0 * N * C * C / tm / 1e12);
    int *d_cu = up(cu, sizeof cu);
    float *d_q = gpu->alloc(nq * 4, "q"), *d_k = gpu->alloc(nk * 4, "k"), *d_v = gpu->alloc(nk * 4, "v");
    float *d_o = gpu->alloc(nq * 4, "o"), *d_l = gpu->alloc((size_t)N * NH * 4, "lse");
    float *d_dq = gpu->alloc(nq * 4, "dq"), *d_dk = gpu->alloc(nk * 4, "dk"), *d_dv = gpu->alloc(nk * 4, "dv");
    gpu->copy(d_q, d_x, nq * 4);
    gpu->copy(d_k, d_x, nk * 4);
    gpu->copy(d_v, d_y, nk * 4);
    gpu->scale(d_q, 0.1f, nq);
    /* the fp32 kernel, then the tensor-core ones (the bf16 mode's), forced by SIMPO_CUDA_ATTN and
     * SIMPO_CUDA_ATTN_TC; each timed over 5 calls after a warm-up call (each call includes its bf16 pre-passes and
     * the download of cu_seqlens) */
    char *saved = env_save("SIMPO_CUDA_ATTN"), *saved_v = env_save("SIMPO_CUDA_ATTN_TC");
    static const char *ver[5] = {"1", "1", "2", "3", "4"};
    static const char *label[5] = {"", " (tensor cores, bf16)", " (tensor cores v2, bf16)", " (tensor cores v3, bf16)",
                                   " (tensor cores v4, bf16)"};
    for (int tc = 0; tc < 5; tc++) { /* fp32, tensor cores v1 .. v4 (attention_tc.cu, attention_tc2.cu, _tc3.cu) */
        setenv("SIMPO_CUDA_ATTN", tc ? "tc" : "fp32", 1);
        setenv("SIMPO_CUDA_ATTN_TC", ver[tc], 1);
        gpu->attn_fwd(d_o, d_l, d_q, d_k, d_v, d_cu, S, NH, NKV, HD, NULL); /* warm-up */
        cuda_synchronize();
        t0 = sd_now();
        for (int i = 0; i < 5; i++) gpu->attn_fwd(d_o, d_l, d_q, d_k, d_v, d_cu, S, NH, NKV, HD, NULL);
        cuda_synchronize();
        double tf = (sd_now() - t0) / 5;
        gpu->attn_bwd(d_dq, d_dk, d_dv, d_o, d_q, d_k, d_v, d_o, d_l, d_cu, S, NH, NKV, HD, NULL); /* warm-up */
        cuda_synchronize();
        t0 = sd_now();
        for (int i = 0; i < 5; i++)
            gpu->attn_bwd(d_dq, d_dk, d_dv, d_o, d_q, d_k, d_v, d_o, d_l, d_cu, S, NH, NKV, HD, NULL);
        cuda_synchronize();
        double tb = (sd_now() - t0) / 5;
        double flop = 4.0 * S * (1024.0 * 1024.0 / 2) * NH * HD; /* causal: QK^T and PV over half the square */
        printf("perf: attention%s %d x %d tokens NH=%d NKV=%d HD=%d: fwd %.2f ms (%.1f TFLOP/s), bwd %.2f ms "
               "(%.1f TFLOP/s at 2.5x fwd flops; mean of 5 calls)\n",
               label[tc], S, 1024, NH, NKV, HD, tf * 1e3, flop / tf / 1e12, tb * 1e3, 2.5 * flop / tb / 1e12);
    }
    /* the bf16-storage entries (model.bf16_storage: autocast, the model's default) on versions 2, 3 and 4, at HD 128
     * and at the 1b benchmark's HD 64 (the same tokens and heads): no bf16 pre-passes of q, k, v */
    uint16_t *b[8]; /* q, k, v, out, dq, dk, dv, dout */
    const size_t bn[8] = {nq, nk, nk, nq, nq, nk, nk, nq};
    for (int t = 0; t < 8; t++) b[t] = gpu->alloc(bn[t] * 2, "bf16 attention tensor");
    gpu->to_bf16(b[0], d_q, nq), gpu->to_bf16(b[1], d_k, nk), gpu->to_bf16(b[2], d_v, nk);
    gpu->to_bf16(b[7], d_o, nq);
    setenv("SIMPO_CUDA_ATTN", "tc", 1);
    char *saved_s = env_save("SIMPO_CUDA_ATTN_STREAMS");
    for (int hd = 128; hd >= 64; hd /= 2)
        for (int v = 2; v <= 4; v++) {
            char vs[4];
            snprintf(vs, sizeof vs, "%d", v);
            setenv("SIMPO_CUDA_ATTN_TC", vs, 1);
            gpu->attn_fwd_b16(b[3], d_l, b[0], b[1], b[2], d_cu, S, NH, NKV, hd, NULL); /* warm-up */
            cuda_synchronize();
            t0 = sd_now();
            for (int i = 0; i < 5; i++) gpu->attn_fwd_b16(b[3], d_l, b[0], b[1], b[2], d_cu, S, NH, NKV, hd, NULL);
            cuda_synchronize();
            double tf = (sd_now() - t0) / 5;
            /* version 4 also with the backward's dq kernel on a second stream (SIMPO_CUDA_ATTN_STREAMS=2) */
            for (int st = 1; st <= (v == 4 ? 2 : 1); st++) {
                setenv("SIMPO_CUDA_ATTN_STREAMS", st == 2 ? "2" : "1", 1);
                gpu->attn_bwd_b16(b[4], b[5], b[6], b[7], b[0], b[1], b[2], b[3], d_l, d_cu, S, NH, NKV, hd, NULL);
                cuda_synchronize();
                t0 = sd_now();
                for (int i = 0; i < 5; i++)
                    gpu->attn_bwd_b16(b[4], b[5], b[6], b[7], b[0], b[1], b[2], b[3], d_l, d_cu, S, NH, NKV, hd,
                                      NULL);
                cuda_synchronize();
                double tb = (sd_now() - t0) / 5;
                double flop = 4.0 * S * (1024.0 * 1024.0 / 2) * NH * hd;
                printf("perf: attention (tensor cores v%d, bf16 storage%s) %d x %d tokens NH=%d NKV=%d HD=%d: fwd "
                       "%.2f ms (%.1f TFLOP/s), bwd %.2f ms (%.1f TFLOP/s at 2.5x fwd flops; mean of 5 calls)\n",
                       v, st == 2 ? ", two streams" : "", S, 1024, NH, NKV, hd, tf * 1e3, flop / tf / 1e12, tb * 1e3,
                       2.5 * flop / tb / 1e12);
            }
        }
    env_restore("SIMPO_CUDA_ATTN_STREAMS", saved_s);
    for (int t = 0; t < 8; t++) gpu->free(b[t]);
    env_restore("SIMPO_CUDA_ATTN", saved), env_restore("SIMPO_CUDA_ATTN_TC", saved_v);
    /* AdamW over 2^28 parameters with the bf16 copy (30 bytes each: p, g, m, v read, p, m, v, p16 written), plain and
     * with the sum of squares, one and two quads per thread and step (SIMPO_CUDA_ADAMW_UNROLL) */
    {
        const size_t n = (size_t)1 << 28;
        float *d_p = gpu->alloc(n * 4, "p"), *d_g = gpu->alloc(n * 4, "g"), *d_m = gpu->alloc(n * 4, "m");
        float *d_vv = gpu->alloc(n * 4, "v");
        uint16_t *d_16 = gpu->alloc(n * 2, "p16");
        double *d_ss = gpu->alloc(sizeof(double), "sumsq");
        gpu->zero(d_p, n * 4), gpu->zero(d_g, n * 4), gpu->zero(d_m, n * 4), gpu->zero(d_vv, n * 4);
        char *saved_u = env_save("SIMPO_CUDA_ADAMW_UNROLL");
        for (int u = 1; u <= 2; u++)
            for (int fused = 0; fused < 2; fused++) {
                setenv("SIMPO_CUDA_ADAMW_UNROLL", u == 2 ? "2" : "1", 1);
                double ta = 0;
                for (int it = 0; it < 4; it++) {
                    if (it == 1) cuda_synchronize(), ta = sd_now();
                    if (fused)
                        gpu->adamw_sumsq(d_ss, d_p, d_16, d_g, NULL, d_m, d_vv, n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
                    else gpu->adamw(d_p, d_16, d_g, NULL, 1.0f, d_m, d_vv, n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
                }
                cuda_synchronize();
                ta = (sd_now() - ta) / 3;
                printf("perf: %s (unroll %d) %zu parameters: %.2f ms, %.2f TB/s (30 bytes each)\n",
                       fused ? "adamw_sumsq" : "adamw", u, n, ta * 1e3, 30.0 * n / ta / 1e12);
            }
        env_restore("SIMPO_CUDA_ADAMW_UNROLL", saved_u);
        gpu->free(d_p), gpu->free(d_g), gpu->free(d_m), gpu->free(d_vv), gpu->free(d_16), gpu->free(d_ss);
    }
    free(hx);
    gpu->free(d_x), gpu->free(d_w), gpu->free(d_y), gpu->free(d_cu), gpu->free(d_q), gpu->free(d_k);
    gpu->free(d_v), gpu->free(d_o), gpu->free(d_l), gpu->free(d_dq), gpu->free(d_dk), gpu->free(d_dv);
}

/* Parts of the rows (GradRows.part; AdamW inside the backward): the free rows by adamw (gscale 1), then the held ones
 * by adamw_sumsq, bitwise one adamw_sumsq over all rows (p, m, v, p16, and the sum of squares: the same threads
 * take the same elements, the rows left out add nothing); the free part alone leaves the held rows as they were.
 * late: the free rows' adamw on the late queue (as the trainer runs it beside the forwards), adamw_sumsq's grid in
 * phases instead of adamw4_k's: the same updates. */
static void t_adamw_parts(size_t rows, size_t cols, bool late) {
    size_t n = rows * cols, held = 0;
    int *map = sd_alloc(rows * sizeof(int), "map");
    for (size_t r = 0; r < rows; r++) map[r] = r % 4 == 2 ? (int)held++ : -1;
    float *g = hrand(held * cols, -1e-2, 1e-2), *p = hrand(n, -1, 1), *m = hrand(n, -1e-3, 1e-3), *v = hrand(n, 0, 1e-5);
    float *d_g = up(g, held * cols * 4), *d[2][3];
    int *d_map = up(map, rows * sizeof(int));
    uint16_t *d16[2];
    double *d_ss = gpu->alloc(2 * sizeof(double), "sumsq");
    for (int k = 0; k < 2; k++) {
        d[k][0] = up(p, n * 4), d[k][1] = up(m, n * 4), d[k][2] = up(v, n * 4);
        d16[k] = gpu->alloc(n * 2, "p16");
    }
    GradRows all = {d_map, cols, held, GRAD_ROWS_ALL}, hr = all, fr = all;
    hr.part = GRAD_ROWS_HELD, fr.part = GRAD_ROWS_FREE;
    gpu->adamw_sumsq(d_ss, d[0][0], d16[0], d_g, &all, d[0][1], d[0][2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
    if (late) gpu->late_begin(); /* the free rows beside the forwards (AdamW inside the backward): in phases */
    gpu->adamw(d[1][0], d16[1], d_g, &fr, 1.0f, d[1][1], d[1][2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
    if (late) gpu->late_end(), gpu->late_join();
    float *mid = down(d[1][0], n);
    float *ref = down(d[0][0], n); /* all rows updated */
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += memcmp(&mid[i], map[i / cols] >= 0 ? &p[i] : &ref[i], 4) != 0;
    CHECK(wrong == 0, "adamw part FREE %zux%zu%s: %zu elements not the free rows' update or the held rows' old value",
          rows, cols, late ? " (late)" : "", wrong);
    free(ref);
    gpu->adamw_sumsq(d_ss + 1, d[1][0], d16[1], d_g, &hr, d[1][1], d[1][2], n, 3e-4, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
    char lb[96];
    const char *nm[4] = {"p", "m", "v", "p16"};
    for (int j = 0; j < 4; j++) {
        size_t bytes = j == 3 ? n * 2 : n * 4;
        void *a = sd_alloc(bytes, "part"), *b = sd_alloc(bytes, "part");
        gpu->download(a, j == 3 ? (void *)d16[0] : (void *)d[0][j], bytes);
        gpu->download(b, j == 3 ? (void *)d16[1] : (void *)d[1][j], bytes);
        snprintf(lb, sizeof lb, "adamw parts %zux%zu (free%s, then held): %s bitwise all rows at once", rows, cols,
                 late ? " late" : "", nm[j]);
        bitwise(lb, b, a, bytes);
        free(a), free(b);
    }
    double ss[2];
    gpu->download(ss, d_ss, sizeof ss);
    CHECK(ss[0] == ss[1] && ss[0] > 0, "adamw_sumsq part HELD %zux%zu: sum of squares %.17g, all rows %.17g", rows,
          cols, ss[1], ss[0]);
    free(mid), free(map), free(g), free(p), free(m), free(v);
    for (int k = 0; k < 2; k++) gpu->free(d[k][0]), gpu->free(d[k][1]), gpu->free(d[k][2]), gpu->free(d16[k]);
    gpu->free(d_g), gpu->free(d_map), gpu->free(d_ss);
}

static const char *g_only; /* argv[1]: run only the sections whose name contains it */
static int want(const char *section) { return !g_only || strstr(section, g_only) != NULL; }

int main(int argc, char **argv) {
    g_only = argc > 1 ? argv[1] : NULL;
    if (!cuda_device_available()) {
        printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    cuda_set_device_from_local_rank();
    cpu = backend_cpu();
    gpu = backend_cuda();
    CHECK(gpu && gpu->name && strcmp(gpu->name, "cuda") == 0, "backend_cuda() names itself cuda");
    printf("device: %s\n", cuda_device_name());

    if (want("memory")) t_memory();
    if (want("elementwise")) {
        t_elementwise(1);
        t_elementwise(1000);
        t_elementwise(3000001);
    }
    if (want("matmul")) {
        t_matmul_k0();
        t_matmul(7, 5, 9);
        t_matmul(1, 3, 1);
        t_matmul(65, 48, 130);
        t_matmul(1, 257, 64);
        t_matmul(513, 1031, 769);
    }
    if (want("matmul_bf16")) {
        t_matmul_bf16(7, 5, 9, 0);
        t_matmul_bf16(64, 48, 128, 0);
        t_matmul_bf16(65, 48, 130, 1);
        t_matmul_bf16(96, 160, 64, 2);
        t_matmul_bf16(513, 1031, 769, 0);
        t_matmul_holds();
        t_gemm_tune();
        t_gemm_tune_limit();
        t_matmul16_res(37, 64, 160, 0);
        t_matmul16_res(300, 128, 344, 1);
        t_storage16(37, 64, 160);
        t_to_bf16(13);
        t_to_bf16(100003);
        t_storage16(300, 128, 344);
        t_autocast16(37, 64, 160);  /* N x FF a multiple of 8: the gated activations' 16-byte path */
        t_autocast16(300, 128, 344);
        t_autocast16(7, 64, 13);    /* 91 elements: their 2-byte path */
    }
    if (want("embed")) {
        t_embed(37, 200, 500, 100, 300, 500);  /* ids inside and outside the slice */
        t_embed(512, 4096, 128, 0, 128, 128);  /* whole vocabulary, many repeats */
        t_embed(300, 64, 1000, 0, 1000, 3);    /* three distinct ids: long groups */
        t_embed(5, 33, 50, 25, 25, 20);        /* no id inside the slice */
        t_embed(1500, 16, 700, 100, 400, 700); /* 2048 keys in the device sort: two per thread */
        t_embed(16385, 4, 300, 0, 300, 300);   /* past the device grouping's 16384: the host's sort */
    }
    if (want("rmsnorm")) {
        t_rmsnorm(1, 64, 1e-5f, 1.0);
        t_rmsnorm(37, 200, 1e-6f, 3.0);
        t_rmsnorm(130, 4096, 1e-5f, 1.0);
        t_rmsnorm(2000, 33, 1e-5f, 0.01); /* many row chunks in the dw reduction; small x: eps matters */
        t_rmsnorm(1500, 1000, 1e-5f, 1.0); /* more rows than the fused dw's 1024 blocks; 4 columns per thread */
        t_rmsnorm(1030, 2048, 1e-5f, 1.0); /* the fused kernel's widest with its column sums in registers (8 per
                                             * thread), blocks of two rows */
        t_rmsnorm(40, 3000, 1e-5f, 1.0);   /* column sums in shared memory (12 of 16 slots per thread in use) */
        t_rmsnorm(9, 6000, 1e-5f, 1.0);    /* wider than the fused kernel's 4096: the pass of its own */
        t_rmsnorm(9, 8200, 1e-5f, 1.0);    /* wider than 8192 too */
    }
    if (want("rope")) {
        t_rope(130, 4, 64, 300);
        t_rope(37, 8, 128, 64);
        t_rope(5, 3, 16, 8);
        t_rope(7, 2, 20, 16); /* HD / 2 = 10: no 4- or 8-wide groups, the one-pair-per-thread kernel */
    }
    if (want("rows")) {
        t_rows(1, 1, 1);
        t_rows(101, 40, 257);   /* 7919 r + 3 mod 101: distinct rows */
        t_rows(4099, 4000, 64);
    }
    if (want("add_rows")) {
        t_add_rows(1, 1, 1, 1);
        t_add_rows(50, 7, 30, 257);   /* C past one block of 256 threads; 7 source rows for 30: repeats */
        t_add_rows(300, 300, 0, 64);  /* M = 0: nothing changes */
        t_add_rows(1031, 517, 700, 96);
    }
    if (want("bias")) {
        t_bias(1, 1, 1);
        t_bias(0, 13, 16);       /* no rows: db unchanged, y too */
        t_bias(37, 5, 9);        /* odd D, ld > D */
        t_bias(9, 64, 64);       /* ld = D */
        t_bias(3000, 200, 448);  /* 24 row chunks in the reduction; D not a multiple of 32 */
        t_bias(700, 896, 1152);  /* Qwen2-0.5B's q bias in its packed q, k, v gradient rows */
        t_bias(40000, 3, 5);     /* past bias_add's 32768 rows per pass */
    }
    if (want("swiglu")) {
        t_swiglu(1, 1);
        t_swiglu(37, 1001);
        t_swiglu(256, 11008);
    }
    if (want("geglu")) {
        t_geglu_softcap(1, 1, 3.0f);
        t_geglu_softcap(37, 1001, 30.0f);
        t_geglu_softcap(64, 14336, 4.0f);
    }
    if (want("xent")) {
        t_xent(33, 1000, 0, 1000, 8);      /* whole vocabulary */
        t_xent(33, 500, 500, 1000, 8);     /* second half: targets often outside */
        t_xent(7, 1, 3, 10, 4);            /* one column */
        t_xent(5, 0, 0, 10, 4);            /* empty slice: max -inf, sumexp 0 */
        t_xent(4, 128256, 0, 128256, 30);  /* Llama-3 vocabulary rows */
    }
    if (want("adamw")) {
        t_adamw(1, 1, 0.1, 1.0f);
        t_adamw(100003, 1, 0.1, 1.0f);
        t_adamw(100003, 10, 0.0, 1.0f);
        t_adamw(100003, 3, 0.1, 0.37f); /* clipped: g * gscale in fp32 first, as the CPU */
        t_adamw_sumsq(100003);
        t_adamw_sumsq(5);
        t_adamw_unroll(100003);
        t_late(100003);
        t_late(7);
        t_adamw_rows(1001, 64);  /* 4-wide */
        char *unroll = env_save("SIMPO_CUDA_ADAMW_UNROLL");
        for (int u = 1; u <= 2; u++) { /* both unrolls of the 4-wide kernels (SIMPO_CUDA_ADAMW_UNROLL) */
            setenv("SIMPO_CUDA_ADAMW_UNROLL", u == 2 ? "2" : "1", 1);
            t_adamw_parts(1001, 64, false); /* 4-wide */
            t_adamw_parts(301, 37, false);  /* one by one */
            t_adamw_parts(1001, 64, true);  /* the free rows on the late queue: adamw_sumsq's grid, 4 phases */
            t_adamw_parts(301, 37, true);
        }
        env_restore("SIMPO_CUDA_ADAMW_UNROLL", unroll);
        t_adamw_rows(301, 7);    /* one by one */
    }
    if (want("attn")) {
        t_attn_len1();
        {
            static const int a[] = {1, 7, 64, 130};
            t_attn(a, 4, 0, 4, 4, 64, 1.0);   /* plain multi-head */
            t_attn(a, 4, 0, 4, 2, 64, 1.0);   /* GQA 2 */
            t_attn(a, 4, 0, 8, 2, 128, 1.0);  /* GQA 4, HD 128 */
            t_attn(a, 4, 0, 8, 8, 128, 2.0);  /* peaked softmax */
            t_attn(a, 4, 0, 2, 1, 256, 0.7);  /* HD 256 */
            static const int b[] = {5, 0, 33, 1}; /* an empty sequence; rows before cu[0] */
            t_attn(b, 4, 3, 4, 2, 64, 1.0);
            static const int c[] = {200};
            t_attn(c, 1, 0, 4, 1, 16, 1.0);   /* tiny head dim, one kv head */
            t_attn(c, 1, 0, 2, 2, 72, 1.0);   /* head dim not a multiple of 8 */
            t_attn(c, 1, 0, 3, 1, 20, 1.0);   /* odd float4 count, 3 query heads */
            static const int d[] = {1000, 24};
            t_attn(d, 2, 0, 4, 2, 128, 1.0);  /* many tiles per sequence */
            int e[70];
            for (int i = 0; i < 70; i++) e[i] = 1 + (int)(urand() * 40); /* more sequences than a warp scans at once */
            t_attn(e, 70, 0, 4, 2, 64, 1.0);
        }
    }
    if (want("attn_tc")) { /* the shapes of "attn" with HD 64 or 128, and one sequence longer than 1024 */
        /* version 3's mma.sync / ldmatrix wrappers (cuda/mma_sync.cuh) on one warp against a host product of small
         * integers (exact): on a GPU the instructions' documented layouts, under the emulation its model of them */
        const int mma_bad = cuda_attn_tc3_mma_check();
        printf("attn_tc3 mma.sync / ldmatrix check: %d of 768 elements wrong\n", mma_bad);
        CHECK(mma_bad == 0, "attn_tc3 mma.sync / ldmatrix wrappers: %d of 768 elements differ from the host product",
              mma_bad);
        static const int a[] = {1, 7, 64, 130};
        t_attn_tc(a, 4, 0, 4, 4, 64, 1.0);   /* plain multi-head */
        t_attn_tc(a, 4, 0, 4, 2, 64, 1.0);   /* GQA 2 */
        t_attn_tc(a, 4, 0, 8, 2, 128, 1.0);  /* GQA 4, HD 128 */
        t_attn_tc(a, 4, 0, 8, 8, 128, 2.0);  /* peaked softmax */
        static const int b[] = {5, 0, 33, 1}; /* an empty sequence; rows before cu[0] */
        t_attn_tc(b, 4, 3, 4, 2, 64, 1.0);
        static const int d[] = {1000, 24};
        t_attn_tc(d, 2, 0, 4, 2, 128, 1.0);  /* many tiles per sequence */
        static const int f[] = {1100};
        t_attn_tc(f, 1, 0, 4, 1, 64, 1.0);   /* one sequence of 1100 (18 tiles), GQA 4 */
        int e[70];
        for (int i = 0; i < 70; i++) e[i] = 1 + (int)(urand() * 40); /* more sequences than a warp scans at once */
        t_attn_tc(e, 70, 0, 4, 2, 64, 1.0);
        /* keys past a sequence's 64th 6x larger: row maxima jump by more than 2^8 (log2 units) at the second key
         * tile, so version 2's lazy rescale of O runs (otherwise it rarely does) */
        static const int g[] = {256, 100};
        t_attn_tc_k(g, 2, 0, 4, 1, 128, 1.0, 6.0, 1);
        t_attn_tc_k(g, 2, 0, 2, 1, 64, 1.0, 6.0, 1);
    }
    if (want("attn_b16")) {
        static const int a[] = {1, 7, 64, 130}, b[] = {5, 0, 33, 1}, c[] = {200};
        AttnOpts fx = {.scale = (float)pow(24.0, -0.5), .softcap = 3.0f, .window = 8};
        for (int ver = 1; ver <= 4; ver++) {
            t_attn_b16(a, 4, 0, 4, 2, 64, NULL, "tc", ver);
            t_attn_b16(b, 4, 3, 8, 2, 128, NULL, "tc", ver);
        }
        t_attn_b16(a, 4, 0, 4, 2, 64, &fx, "tc", 2); /* Gemma 2's options: the fp32 kernels on widened copies */
        t_attn_b16(b, 4, 3, 4, 2, 64, NULL, "fp32", 2);
        t_attn_b16(c, 1, 0, 3, 1, 20, NULL, "tc", 3); /* a head dim the tensor cores lack */
    }
    if (want("attn_rows")) {
        /* {n_prompt, n_chosen, n_rejected}: prompts inside a tile, across tiles, a multiple of 64 (the responses'
         * tiles where the gathered run's are), of one token; a one-token response; more sequences than a warp scans */
        static const int a[][3] = {{70, 30, 100}, {5, 1, 1}, {64, 64, 70}, {1, 130, 20}};
        static const int l[][3] = {{300, 500, 200}, {130, 64, 400}}; /* many key tiles and rejected query tiles */
        int e[20][3];
        for (int i = 0; i < 20; i++)
            for (int j = 0; j < 3; j++) e[i][j] = 1 + (int)(urand() * 24);
        for (int b16 = 1; b16 >= 0; b16--) { /* bf16 storage (autocast), then fp32 tensors (exact storage) */
            t_attn_rows(a, 4, 4, 2, 64, b16);
            t_attn_rows(a, 4, 8, 2, 128, b16);
            if (b16) t_attn_rows(l, 2, 4, 1, 128, b16);
            t_attn_rows((const int (*)[3])e, 20, 2, 1, 64, b16);
        }
    }
    if (want("attn_gemma2")) {
        t_attn_gemma2(false);
        t_attn_gemma2(true); /* SIMPO_CUDA_ATTN=tc: options still take the fp32 kernels */
    }
    if (want("perf") && !getenv("SIMPO_GPU_SKIP_PERF")) perf(); /* the CPU emulation (tests/gpu/emu) skips it */
    TEST_END();
}
