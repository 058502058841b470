/* test_ops_bias.c — the linear-bias ops (bias_add, bias_add_b16, bias_grad, bias_grad_b16) of the CPU backend
 * against plain float64 loops written here, on row-strided blocks (ld > D: the columns outside [0, D) hold values
 * that must stay as they are and must not enter the sums), N = 0, odd D; bf16 ties planted where nearest even,
 * truncation and half-up differ; a column whose fp32 running sum would lose what its double sum keeps; the strict
 * backend (backend memory sized to exactly (N - 1) ld + D elements) bit for bit the CPU's, and its argument checks. */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0xbb67ae8584caa73bULL
#include "ops_common.h"

/* The references: one fp32 add is exact in double and rounded once to fp32 (53 >= 2 x 24 + 2 bits: no double
 * rounding), so (float)((double)a + b) is bitwise a + b in fp32. The column sums in double in row order; any other
 * order changes the double by ~N 2^-53 relative, far below the fp32 rounding these checks compare. */
static void ref_add(float *y, const float *y0, const float *b, size_t N, int D, int ld) {
    for (size_t n = 0; n < N; n++)
        for (int j = 0; j < D; j++) y[n * ld + j] = (float)((double)y0[n * ld + j] + b[j]);
}
static void ref_add16(uint16_t *y, const uint16_t *y0, const float *b, size_t N, int D, int ld) {
    for (size_t n = 0; n < N; n++)
        for (int j = 0; j < D; j++)
            y[n * ld + j] = sd_f32_to_bf16((float)((double)sd_bf16_to_f32(y0[n * ld + j]) + b[j]));
}
static void ref_grad(float *db, const float *dy, const uint16_t *dy16, size_t N, int D, int ld) {
    for (int j = 0; j < D; j++) {
        double s = 0;
        for (size_t n = 0; n < N; n++) s += dy16 ? sd_bf16_to_f32(dy16[n * ld + j]) : dy[n * ld + j];
        db[j] = (float)((double)db[j] + (float)s);
    }
}

/* the first element of y[n] (n < N, every column of ld) where a and b differ, or -1 */
static long first_diff(const void *a, const void *b, size_t n, size_t esz) {
    for (size_t i = 0; i < n; i++)
        if (memcmp((const char *)a + i * esz, (const char *)b + i * esz, esz)) return (long)i;
    return -1;
}

/* the four ops on the strict backend, y / dy sized to exactly the (N - 1) ld + D elements they span: the results
 * bitwise want_* (the CPU backend's) */
static void strict_same(size_t N, int D, int ld, const float *y0, const uint16_t *y016, const float *b,
                        const float *db0, const float *want_y, const uint16_t *want_y16, const float *want_db,
                        const float *want_db16) {
    const Backend *sb = backend_cpu_strict();
    size_t span = N ? (N - 1) * ld + D : 0, nd = (size_t)D;
    float *y = sb->alloc(span * 4, "y"), *b_ = sb->alloc(nd * 4, "b"), *db = sb->alloc(nd * 4, "db");
    float *db16 = sb->alloc(nd * 4, "db16");
    uint16_t *y16 = sb->alloc(span * 2, "y16");
    sb->upload(y, y0, span * 4), sb->upload(y16, y016, span * 2), sb->upload(b_, b, nd * 4);
    sb->upload(db, db0, nd * 4), sb->upload(db16, db0, nd * 4);
    sb->bias_grad(db, y, N, D, ld); /* of the inputs, before the adds change them */
    sb->bias_grad_b16(db16, y16, N, D, ld);
    sb->bias_add(y, b_, N, D, ld);
    sb->bias_add_b16(y16, b_, N, D, ld);
    float *gy = sd_alloc(span * 4 + 4, "y"), *gdb = sd_alloc(nd * 4 + 4, "db"), *gdb16 = sd_alloc(nd * 4 + 4, "db");
    uint16_t *gy16 = sd_alloc(span * 2 + 2, "y16");
    sb->download(gy, y, span * 4), sb->download(gy16, y16, span * 2);
    sb->download(gdb, db, nd * 4), sb->download(gdb16, db16, nd * 4);
    CHECK(!memcmp(gy, want_y, span * 4) && !memcmp(gy16, want_y16, span * 2) && !memcmp(gdb, want_db, nd * 4) &&
              !memcmp(gdb16, want_db16, nd * 4),
          "strict backend N=%zu D=%d ld=%d: bias_add %d, bias_add_b16 %d, bias_grad %d, bias_grad_b16 %d (1: differs "
          "from the CPU backend)", N, D, ld, !!memcmp(gy, want_y, span * 4), !!memcmp(gy16, want_y16, span * 2),
          !!memcmp(gdb, want_db, nd * 4), !!memcmp(gdb16, want_db16, nd * 4));
    sb->free(y), sb->free(b_), sb->free(db), sb->free(db16), sb->free(y16);
    free(gy), free(gy16), free(gdb), free(gdb16);
}

/* one shape: every op against its reference on y [N rows, ld apart], the columns >= D filled with large values
 * (1000 + ...) that would show in a sum or be overwritten if an op ignored ld */
static void check_shape(size_t N, int D, int ld) {
    const Backend *be = backend_cpu();
    size_t ny = N * (size_t)ld, nd = (size_t)D;
    float *y0 = sd_alloc(ny * 4 + 4, "y0"), *y = sd_alloc(ny * 4 + 4, "y"), *want = sd_alloc(ny * 4 + 4, "want");
    float *b = sd_alloc(nd * 4 + 4, "b"), *db0 = sd_alloc(nd * 4 + 4, "db0");
    float *db = sd_alloc(nd * 4 + 4, "db"), *db16 = sd_alloc(nd * 4 + 4, "db16");
    float *wdb = sd_alloc(nd * 4 + 4, "want db"), *wdb16 = sd_alloc(nd * 4 + 4, "want db16");
    uint16_t *y016 = sd_alloc(ny * 2 + 2, "y0 bf16"), *y16 = sd_alloc(ny * 2 + 2, "y bf16");
    uint16_t *want16 = sd_alloc(ny * 2 + 2, "want bf16");
    fill(y0, ny, -2, 2);
    for (size_t n = 0; n < N; n++)
        for (int j = D; j < ld; j++) y0[n * ld + j] = (float)(1000 + 100 * urand());
    fill(b, nd, -1, 1);
    fill(db0, nd, -3, 3); /* accumulating: db starts non-zero */
    for (size_t i = 0; i < ny; i++) y016[i] = sd_f32_to_bf16(y0[i]);
    char what[64];
    snprintf(what, sizeof what, "N=%zu D=%d ld=%d", N, D, ld);

    memcpy(y, y0, ny * 4), memcpy(want, y0, ny * 4);
    be->bias_add(y, b, N, D, ld);
    ref_add(want, y0, b, N, D, ld);
    long at = first_diff(y, want, ny, 4);
    CHECK(at < 0, "bias_add %s: element [%ld] (row %ld col %ld) %.9g, want %.9g", what, at, at / ld, at % ld,
          at < 0 ? 0.0 : y[at], at < 0 ? 0.0 : want[at]);

    memcpy(y16, y016, ny * 2), memcpy(want16, y016, ny * 2);
    be->bias_add_b16(y16, b, N, D, ld);
    ref_add16(want16, y016, b, N, D, ld);
    at = first_diff(y16, want16, ny, 2);
    CHECK(at < 0, "bias_add_b16 %s: element [%ld] (row %ld col %ld) %04x, want %04x", what, at, at / ld, at % ld,
          at < 0 ? 0 : y16[at], at < 0 ? 0 : want16[at]);

    float *yc = sd_alloc(ny * 4 + 4, "y0 copy");
    uint16_t *yc16 = sd_alloc(ny * 2 + 2, "y0 bf16 copy");
    memcpy(yc, y0, ny * 4), memcpy(yc16, y016, ny * 2);
    memcpy(db, db0, nd * 4), memcpy(wdb, db0, nd * 4);
    be->bias_grad(db, y0, N, D, ld);
    ref_grad(wdb, y0, NULL, N, D, ld);
    at = first_diff(db, wdb, nd, 4);
    CHECK(at < 0, "bias_grad %s: db[%ld] %.9g, want %.9g", what, at, at < 0 ? 0.0 : db[at], at < 0 ? 0.0 : wdb[at]);
    memcpy(db16, db0, nd * 4), memcpy(wdb16, db0, nd * 4);
    be->bias_grad_b16(db16, y016, N, D, ld);
    ref_grad(wdb16, NULL, y016, N, D, ld);
    at = first_diff(db16, wdb16, nd, 4);
    CHECK(at < 0, "bias_grad_b16 %s: db[%ld] %.9g, want %.9g", what, at, at < 0 ? 0.0 : db16[at],
          at < 0 ? 0.0 : wdb16[at]);
    CHECK(!memcmp(yc, y0, ny * 4) && !memcmp(yc16, y016, ny * 2), "bias_grad(_b16) %s wrote dy", what);
    if (N == 0)
        CHECK(!memcmp(db, db0, nd * 4) && !memcmp(db16, db0, nd * 4), "bias_grad with N = 0 changes db");

    strict_same(N, D, ld, y0, y016, b, db0, y, y16, db, db16);
    printf("bias ops %s: bitwise the float64 references (CPU, strict)\n", what);
    free(y0), free(y), free(want), free(b), free(db0), free(db), free(db16), free(wdb), free(wdb16), free(y016);
    free(y16), free(want16), free(yc), free(yc16);
}

/* hand-computed values: bf16 ties and fp32 vs double column sums */
static void check_values(void) {
    const Backend *be = backend_cpu();
    /* bias_add_b16 on y [2, 4] (ld 6: columns 4 and 5 untouched), b = {2^-8, 2^-8, 1.5 2^-8, 1}.
     * bf16 0x3f80 = 1, 0x3f81 = 1 + 2^-7, 0xbf80 = -1. Row 0: 1 + 2^-8 a tie -> 1 (even; half-up gives 0x3f81);
     * 1 + 2^-7 + 2^-8 a tie -> 1 + 2^-6 (0x3f82, even; truncation gives 0x3f81); 1 + 1.5 2^-8 above half ->
     * 0x3f81; 2 + 1 = 3 exactly (0x4040). Row 1: -1 + 2^-8 = -(1 - 2^-8), exact (0xbf7f); -1 - 2^-7 + 2^-8 =
     * -(1 + 2^-8) a tie -> -1 (0xbf80); -1 + 1.5 2^-8 = -(1 - 1.5 2^-8) a tie -> 0xbf7e (even); -1 + 1 = +0. */
    uint16_t y[12] = {0x3f80, 0x3f81, 0x3f80, 0x4000, 0x1234, 0x5678,
                      0xbf80, 0xbf81, 0xbf80, 0xbf80, 0x9abc, 0x0001};
    const uint16_t want[12] = {0x3f80, 0x3f82, 0x3f81, 0x4040, 0x1234, 0x5678,
                               0xbf7f, 0xbf80, 0xbf7e, 0x0000, 0x9abc, 0x0001};
    const float b[4] = {0x1p-8f, 0x1p-8f, 0x1.8p-8f, 1.0f};
    be->bias_add_b16(y, b, 2, 4, 6);
    CHECK(!memcmp(y, want, sizeof want),
          "bias_add_b16 rounds each fp32 sum to bf16 nearest even and keeps the columns past D: got %04x %04x %04x "
          "%04x %04x %04x | %04x %04x %04x %04x %04x %04x", y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7], y[8],
          y[9], y[10], y[11]);
    uint16_t r[12];
    for (int i = 0; i < 12; i++) r[i] = y[i];
    be->bias_add_b16(y, b, 0, 4, 6);
    CHECK(!memcmp(y, r, sizeof r), "bias_add_b16 with N = 0 changes nothing");

    /* bias_grad: column 0 is 1 then four 2^-24: an fp32 running sum stays at 1 (each 1 + 2^-24 a tie to even),
     * the double sum is 1 + 2^-22 exactly; column 1 sums to 0.5, added to db 0.25 -> 0.75; column 2 (ld 3, D 2)
     * holds 1e30, which no sum may read. bias_grad_b16 the same on bf16 copies (2^-24 is 0x3380). */
    const float dy[15] = {1, 0.25f, 1e30f, 0x1p-24f, 0.5f, 1e30f, 0x1p-24f, -0.25f, 1e30f,
                          0x1p-24f, 0, 1e30f, 0x1p-24f, 0, 1e30f};
    float db[2] = {0, 0.25f}, db16[2] = {0, 0.25f};
    uint16_t dy16[15];
    for (int i = 0; i < 15; i++) dy16[i] = sd_f32_to_bf16(dy[i]);
    be->bias_grad(db, dy, 5, 2, 3);
    be->bias_grad_b16(db16, dy16, 5, 2, 3);
    CHECK(db[0] == 1 + 0x1p-22f && db[1] == 0.75f, "bias_grad: db %.9g %.9g, want 1 + 2^-22 and 0.75", db[0], db[1]);
    CHECK(db16[0] == 1 + 0x1p-22f && db16[1] == 0.75f, "bias_grad_b16: db %.9g %.9g, want 1 + 2^-22 and 0.75",
          db16[0], db16[1]);
    /* the sum rounded to fp32 once, then one fp32 add into db: the double sum 1 + 2^-24 is a tie -> 1 in fp32, and
     * db 1 + 2^-23 + 1 = 2 + 2^-23 a tie -> 2 (db + sum all in double would give 2 + 2^-22) */
    const float dz[3] = {1, 0x1p-25f, 0x1p-25f};
    float dbz = 1 + 0x1p-23f;
    be->bias_grad(&dbz, dz, 3, 1, 1);
    CHECK(dbz == 2.0f, "bias_grad: db %.9g, want 2 (the fp32 sum 1 added to 1 + 2^-23, rounded to even)", dbz);
}

/* the strict backend's checks, in a child process each */
static void strict_short_y(void *arg) {
    (void)arg;
    const Backend *sb = backend_cpu_strict();
    float *y = sb->alloc((2 * 7 + 5 - 1) * 4, "y"), *b = sb->alloc(5 * 4, "b"); /* one element short */
    sb->bias_add(y, b, 3, 5, 7);
}
static void strict_short_dy16(void *arg) {
    (void)arg;
    const Backend *sb = backend_cpu_strict();
    uint16_t *dy = sb->alloc((4 * 9 + 3 - 1) * 2, "dy");
    float *db = sb->alloc(3 * 4, "db");
    sb->bias_grad_b16(db, dy, 5, 3, 9);
}
static void strict_short_db(void *arg) {
    (void)arg;
    const Backend *sb = backend_cpu_strict();
    float *dy = sb->alloc(4 * 8 * 4, "dy"), *db = sb->alloc(4 * 4, "db");
    sb->bias_grad(db, dy, 4, 5, 8);
}
static void strict_ld_below_d(void *arg) {
    (void)arg;
    const Backend *sb = backend_cpu_strict();
    uint16_t *y = sb->alloc(64 * 2, "y");
    float *b = sb->alloc(8 * 4, "b");
    sb->bias_add_b16(y, b, 2, 8, 6);
}

int main(void) {
    check_values();
    check_shape(7, 5, 9);
    check_shape(1, 1, 1);
    check_shape(0, 3, 4);      /* no rows: nothing changes */
    check_shape(33, 13, 13);   /* ld = D */
    check_shape(64, 31, 40);
    check_shape(130, 257, 300);
    check_shape(5, 0, 4);      /* no columns */
    CHECK(expect_die(strict_short_y, NULL, "bias_add: argument 'y' needs 76 bytes"),
          "strict bias_add: y one element short of (N - 1) ld + D is an error");
    CHECK(expect_die(strict_short_dy16, NULL, "bias_grad_b16: argument 'dy' needs 78 bytes"),
          "strict bias_grad_b16: dy one element short is an error");
    CHECK(expect_die(strict_short_db, NULL, "bias_grad: argument 'db' needs 20 bytes"),
          "strict bias_grad: db shorter than D is an error");
    CHECK(expect_die(strict_ld_below_d, NULL, "bias_add_b16: D 8, ld 6"), "strict bias_add_b16: ld < D is an error");
    TEST_END();
}
