/* test_ops_basic.c — CPU backend memory ops, add / scale / sumsq, matmul (every transpose combination,
 * alpha / beta, accumulation) and the vocabulary-sliced embedding, against float64 loops written here; row gather /
 * scatter and row sums by index (add_rows, add_rows_b16) against hand-computed values. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x9e3779b97f4a7c15ULL
#include "ops_common.h"

/* C[M,N] = alpha op(A) op(B) + beta C in double; A stored [M,K] or [K,M], B stored [K,N] or [N,K]. */
static void ref_matmul(double *C, const float *A, const float *B, int M, int N, int K, int tA, int tB, double alpha,
                       double beta, const float *C0) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int p = 0; p < K; p++) {
                double a = tA ? A[(size_t)p * M + i] : A[(size_t)i * K + p];
                double b = tB ? B[(size_t)j * K + p] : B[(size_t)p * N + j];
                s += a * b;
            }
            C[(size_t)i * N + j] = alpha * s + beta * C0[(size_t)i * N + j];
        }
}

static void test_matmul(const Backend *be, int M, int N, int K) {
    float *A = sd_alloc((size_t)M * K * sizeof(float), "A"), *B = sd_alloc((size_t)K * N * sizeof(float), "B");
    float *C = sd_alloc((size_t)M * N * sizeof(float), "C"), *C0 = sd_alloc((size_t)M * N * sizeof(float), "C0");
    double *R = sd_alloc((size_t)M * N * sizeof(double), "R");
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++)
            for (int acc = 0; acc < 2; acc++) {
                fill(A, (size_t)M * K, -1, 1);
                fill(B, (size_t)K * N, -1, 1);
                fill(C0, (size_t)M * N, -1, 1);
                memcpy(C, C0, (size_t)M * N * sizeof(float));
                float alpha = acc ? 0.75f : 1.0f, beta = acc ? 1.0f : 0.0f;
                be->matmul(C, A, B, M, N, K, tA, tB, alpha, beta);
                ref_matmul(R, A, B, M, N, K, tA, tB, alpha, beta, C0);
                double err = 0, mag = 1e-30;
                for (size_t i = 0; i < (size_t)M * N; i++) {
                    err = fmax(err, fabs(C[i] - R[i]));
                    mag = fmax(mag, fabs(R[i]));
                }
                /* fp32 sums of K products of O(1) terms: error ~ K * 2^-24 * |terms|, far below 1e-5 here */
                CHECK(err <= 1e-5 * mag * (1 + K / 100.0),
                      "matmul M=%d N=%d K=%d tA=%d tB=%d acc=%d: err %.3g (max %.3g)", M, N, K, tA, tB, acc, err, mag);
            }
    free(A), free(B), free(C), free(C0), free(R);
}

static void gather_out_of_range(void *arg) {
    const Backend *be = arg;
    float src[15] = {0}, g[6];
    int rows[2] = {0, 5};
    be->gather_rows(g, src, rows, 2, 5, 3);
}

static void add_rows_dst_out_of_range(void *arg) {
    const Backend *be = arg;
    float dst[12] = {0}, src[9] = {0};
    int drows[2] = {0, 4}, srows[2] = {0, 0};
    be->add_rows(dst, drows, src, srows, 2, 4, 3, 3);
}
static void add_rows_b16_src_out_of_range(void *arg) {
    const Backend *be = arg;
    uint16_t dst[12] = {0}, src[9] = {0};
    int drows[1] = {1}, srows[1] = {-1};
    be->add_rows_b16(dst, drows, src, srows, 1, 4, 3, 3);
}

int main(void) {
    const Backend *be = backend_cpu();
    CHECK(be && be->name && strcmp(be->name, "cpu") == 0, "backend_cpu() names itself cpu");

    /* memory: alloc is zeroed; copy / upload / download move bytes; zero clears */
    size_t n = 1000;
    float *a = be->alloc(n * sizeof(float), "a"), *b = be->alloc(n * sizeof(float), "b");
    int zeroed = 1;
    for (size_t i = 0; i < n; i++) zeroed &= a[i] == 0.0f;
    CHECK(zeroed, "alloc returns zeroed memory");
    float *h = sd_alloc(n * sizeof(float), "host");
    fill(h, n, -2, 2);
    be->upload(a, h, n * sizeof(float));
    be->copy(b, a, n * sizeof(float));
    float *h2 = sd_calloc(n, sizeof(float), "host2");
    be->download(h2, b, n * sizeof(float));
    CHECK(memcmp(h, h2, n * sizeof(float)) == 0, "upload -> copy -> download round trip");
    be->zero(b, n * sizeof(float));
    be->download(h2, b, n * sizeof(float));
    zeroed = 1;
    for (size_t i = 0; i < n; i++) zeroed &= h2[i] == 0.0f;
    CHECK(zeroed, "zero clears");

    /* add, scale, sumsq */
    fill(b, n, -1, 1);
    memcpy(h2, b, n * sizeof(float));
    be->add(a, b, n); /* a = h + b */
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= a[i] == h[i] + h2[i];
    CHECK(ok, "add: y += x");
    be->scale(a, -0.5f, n);
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= a[i] == (h[i] + h2[i]) * -0.5f;
    CHECK(ok, "scale: x *= s");
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)a[i] * a[i];
    CHECK(fabs(be->sumsq(a, n) - ss) <= 1e-12 * ss, "sumsq in double: %.17g vs %.17g", be->sumsq(a, n), ss);
    size_t big = 300000; /* large enough to take the OpenMP path */
    float *c = sd_alloc(big * sizeof(float), "c");
    fill(c, big, -1, 1);
    ss = 0;
    for (size_t i = 0; i < big; i++) ss += (double)c[i] * c[i];
    CHECK(fabs(be->sumsq(c, big) - ss) <= 1e-12 * ss, "sumsq (parallel) %.17g vs %.17g", be->sumsq(c, big), ss);
    { /* sumsq_many (backend_sumsq_many: the loop over sumsq here): each tensor's sum bitwise, an empty one 0 */
        const float *xs[3] = {a, c, c + 7};
        size_t ns[3] = {n, big, 0};
        double out[3] = {-1, -1, -1};
        backend_sumsq_many(be, out, xs, ns, 3);
        CHECK(out[0] == be->sumsq(a, n) && out[1] == be->sumsq(c, big) && out[2] == 0.0,
              "sumsq_many: %.17g %.17g %.17g", out[0], out[1], out[2]);
    }
    free(c);
    be->free(a);
    be->free(b);
    free(h), free(h2);

    /* matmul: odd sizes, and one large enough for OpenBLAS's blocked kernels */
    test_matmul(be, 7, 5, 9);
    test_matmul(be, 1, 3, 1);
    test_matmul(be, 65, 48, 130);
    /* the linear-layer usage of backend.h: y = x W^T with W[out,in] */
    {
        float x[2 * 3] = {1, 2, 3, 4, 5, 6}, W[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, y[2 * 4];
        be->matmul(y, x, W, 2, 4, 3, false, true, 1, 0);
        float want[8] = {1, 2, 3, 6, 4, 5, 6, 15};
        CHECK(memcmp(y, want, sizeof want) == 0, "linear layer y = x W^T");
    }
    /* K = 0: C = beta C */
    {
        float Cz[4] = {1, 2, 3, 4};
        be->matmul(Cz, NULL, NULL, 2, 2, 0, false, false, 1, 0);
        CHECK(Cz[0] == 0 && Cz[3] == 0, "K=0 with beta=0 writes zeros");
    }

    /* embedding of a vocabulary slice [V_off, V_off + V_loc) of a V=10 vocabulary */
    {
        const int C = 6, V_off = 3, V_loc = 4, N = 8;
        int ids[8] = {0, 3, 6, 7, 4, 9, 3, 2}; /* in slice: 3, 6, 4, 3 (twice 3) */
        float W[4 * 6], out[8 * 6], dW[4 * 6], dW0[4 * 6], dout[8 * 6];
        fill(W, sizeof W / sizeof *W, -1, 1);
        for (size_t i = 0; i < sizeof out / sizeof *out; i++) out[i] = 99.0f;
        be->embed_fwd(out, ids, W, N, C, V_off, V_loc);
        ok = 1;
        for (int r = 0; r < N; r++)
            for (int j = 0; j < C; j++) {
                int in = ids[r] >= V_off && ids[r] < V_off + V_loc;
                ok &= out[r * C + j] == (in ? W[(ids[r] - V_off) * C + j] : 0.0f);
            }
        CHECK(ok, "embed_fwd: rows of the slice, zeros elsewhere");
        fill(dout, sizeof dout / sizeof *dout, -1, 1);
        fill(dW0, sizeof dW0 / sizeof *dW0, -1, 1);
        memcpy(dW, dW0, sizeof dW);
        be->embed_bwd(dW, dout, ids, N, C, V_off, V_loc);
        double err = 0;
        for (int v = 0; v < V_loc; v++)
            for (int j = 0; j < C; j++) {
                double want = dW0[v * C + j];
                for (int r = 0; r < N; r++)
                    if (ids[r] - V_off == v) want += dout[r * C + j];
                err = fmax(err, fabs(dW[v * C + j] - want));
            }
        CHECK(err < 1e-6, "embed_bwd accumulates (duplicates summed, out-of-slice ids ignored): err %.3g", err);
    }
    { /* gather_rows / scatter_rows: rows 4, 0, 2 of a 5 x 3 matrix, and back into a matrix of 7s */
        float src[15], g[9], s[15];
        int rows[3] = {4, 0, 2};
        fill(src, 15, -1, 1);
        be->gather_rows(g, src, rows, 3, 5, 3);
        int ok = 1;
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 3; j++) ok &= g[r * 3 + j] == src[rows[r] * 3 + j];
        CHECK(ok, "gather_rows copies the listed rows in order");
        for (int i = 0; i < 15; i++) s[i] = 7.0f;
        be->scatter_rows(s, g, rows, 3, 5, 3);
        ok = 1;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++) ok &= s[i * 3 + j] == (i == 1 || i == 3 ? 7.0f : src[i * 3 + j]);
        CHECK(ok, "scatter_rows writes the listed rows back and leaves the others");
        CHECK(expect_die(gather_out_of_range, (void *)be, "gather_rows: row 1 is index 5, outside [0, 5)"),
              "a row index outside the matrix is an error");
    }
    { /* add_rows: dst[4,3] += src[3,3] on dst rows 2, 0, 3 from src rows 1, 1 (repeated), 0; dst row 1 and src
       * row 2 untouched. Small binary fractions: every sum is exact. */
        float dst[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        float src[9] = {0.5f, -1, 2, 100, 200, 300, -7, -7, -7}, src0[9];
        memcpy(src0, src, sizeof src);
        int drows[3] = {2, 0, 3}, srows[3] = {1, 1, 0};
        const float want[12] = {101, 202, 303, 4, 5, 6, 107, 208, 309, 10.5f, 10, 14};
        be->add_rows(dst, drows, src, srows, 3, 4, 3, 3);
        CHECK(memcmp(dst, want, sizeof want) == 0 && memcmp(src, src0, sizeof src) == 0,
              "add_rows adds the listed src rows to the listed dst rows and leaves the others");
        be->add_rows(dst, drows, src, srows, 0, 4, 3, 3);
        CHECK(memcmp(dst, want, sizeof want) == 0, "add_rows with M = 0 changes nothing");
        CHECK(expect_die(add_rows_dst_out_of_range, (void *)be, "add_rows: row 1 is index 4, outside [0, 4)"),
              "add_rows: a dst row index outside dst is an error");
    }
    { /* add_rows_b16: dst[3,4] += src[2,4] on dst rows 2, 0 from src row 1 twice; sums in fp32 rounded to bf16
       * nearest even. bf16 0x3f80 = 1, 0x3f81 = 1 + 2^-7, 0x3b80 = 2^-8, 0x3bc0 = 1.5 * 2^-8, 0x4000 = 2.
       * Row 2: 1 + 2^-8 is a tie -> 1 (even; half-up would give 0x3f81); 1 + 2^-7 + 2^-8 is a tie -> 1 + 2^-6
       * (0x3f82, even; truncation would give 0x3f81); 1 + 1.5 * 2^-8 is above half -> 0x3f81; 2 + 1 = 3 exactly
       * (0x4040). Row 0: -1 + 2^-8 = -(1 - 2^-8), exact (0xbf7f); the rest as row 2's. Row 1 untouched. */
        uint16_t dst[12] = {0xbf80, 0x3f81, 0x3f80, 0x4000, 0x1234, 0x5678, 0x9abc, 0x0001,
                            0x3f80, 0x3f81, 0x3f80, 0x4000};
        const uint16_t src[8] = {0x4000, 0x4000, 0x4000, 0x4000, 0x3b80, 0x3b80, 0x3bc0, 0x3f80};
        int drows[2] = {2, 0}, srows[2] = {1, 1};
        const uint16_t want[12] = {0xbf7f, 0x3f82, 0x3f81, 0x4040, 0x1234, 0x5678, 0x9abc, 0x0001,
                                   0x3f80, 0x3f82, 0x3f81, 0x4040};
        be->add_rows_b16(dst, drows, src, srows, 2, 3, 2, 4);
        int ok = memcmp(dst, want, sizeof want) == 0;
        CHECK(ok, "add_rows_b16 rounds each fp32 sum to bf16 nearest even and leaves the other rows: got "
                  "%04x %04x %04x %04x | %04x %04x %04x %04x | %04x %04x %04x %04x",
              dst[0], dst[1], dst[2], dst[3], dst[4], dst[5], dst[6], dst[7], dst[8], dst[9], dst[10], dst[11]);
        be->add_rows_b16(dst, drows, src, srows, 0, 3, 2, 4);
        CHECK(memcmp(dst, want, sizeof want) == 0, "add_rows_b16 with M = 0 changes nothing");
        CHECK(expect_die(add_rows_b16_src_out_of_range, (void *)be, "add_rows_b16: row 0 is index -1, outside [0, 3)"),
              "add_rows_b16: a src row index outside src is an error");
    }
    TEST_END();
}
