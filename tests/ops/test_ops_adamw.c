/* test_ops_adamw.c — AdamW (torch semantics) against a float64 reimplementation over 3 steps, with wd = 0 and
 * wd > 0, a large learning rate (so the update and the decay are far above fp32 rounding) and tiny gradients
 * (so eps matters); with a clipping scale the gradient is g * gscale rounded to fp32, as after torch's in-place
 * clip_grad_norm_, and g itself is left untouched; with p16 the updated weights' bf16 copy is written (and only
 * then). */
#include <stdint.h>
#include "backend.h"
#include "test_util.h"
#define OPS_SEED 0x3c6ef372fe94f82bULL
#include "ops_common.h"


static void run(size_t n, float lr, float wd, float b1, float b2, float eps, float gscale) {
    float *p = sd_alloc(n * 4, "p"), *g = sd_alloc(n * 4, "g"), *m = sd_calloc(n, 4, "m"), *v = sd_calloc(n, 4, "v");
    uint16_t *p16 = sd_alloc(n * 2, "p16");
    memset(p16, 0xff, n * 2);
    double *P = sd_alloc(n * 8, "P"), *Mm = sd_calloc(n, 8, "M"), *Vv = sd_calloc(n, 8, "V");
    double *Am = sd_calloc(n, 8, "|M|"); /* the m recursion on |g|: the scale m's rounding errors are relative to */
    for (size_t i = 0; i < n; i++) P[i] = p[i] = (float)(urand() * 4 - 2);
    for (int t = 1; t <= 3; t++) {
        for (size_t i = 0; i < n; i++) {
            double sc = i % 10 == 0 ? 1e-9 : 1.0; /* every tenth gradient is tiny: eps dominates the denominator */
            g[i] = (float)((urand() * 2 - 1) * sc);
        }
        double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
        float g0 = g[0];
        /* steps 2 and 3 also write the bf16 copy of the updated weights (p16) */
        backend_cpu()->adamw(p, t > 1 ? p16 : NULL, g, NULL, gscale, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
        CHECK(g[0] == g0, "adamw leaves the gradient as it was");
        size_t bad16 = 0;
        for (size_t i = 0; i < n; i++) bad16 += p16[i] != (t > 1 ? sd_f32_to_bf16(p[i]) : 0xffff);
        CHECK(bad16 == 0, "adamw step %d: %zu p16 elements are not bf16 of p (or written without p16)", t, bad16);
        for (size_t i = 0; i < n; i++) g[i] = g[i] * gscale; /* what clipping in place would leave */
        for (size_t i = 0; i < n; i++) {
            P[i] -= (double)lr * wd * P[i];
            Mm[i] = (double)b1 * Mm[i] + (1 - (double)b1) * g[i];
            Am[i] = (double)b1 * Am[i] + (1 - (double)b1) * fabs(g[i]);
            Vv[i] = (double)b2 * Vv[i] + (1 - (double)b2) * (double)g[i] * g[i];
            P[i] -= (double)lr / bc1 * Mm[i] / (sqrt(Vv[i]) / sqrt(bc2) + eps);
        }
        double ep = 0, em = 0, ev = 0;
        for (size_t i = 0; i < n; i++) {
            ep = fmax(ep, fabs(p[i] - P[i]) / fmax(1.0, fabs(P[i])));
            em = fmax(em, fabs(m[i] - Mm[i]) / Am[i]); /* m may cancel to ~0: compare with its terms */
            ev = fmax(ev, fabs(v[i] - Vv[i]) / Vv[i]);
        }
        /* fp32: each state element goes through a handful of roundings per step (2^-24 ~ 6e-8 each), so after 3
         * steps p, m, v stay within ~5e-7 relative of float64; a wrong bias correction, a missing decay or eps
         * in the wrong place changes p by >= lr * 1e-2 ~ 1e-4. */
        CHECK(ep < 1e-6, "adamw step %d lr=%g wd=%g: p rel err %.3g", t, lr, wd, ep);
        CHECK(em < 1e-6, "adamw step %d: m rel err %.3g", t, em);
        CHECK(ev < 1e-6, "adamw step %d: v rel err %.3g", t, ev);
        printf("adamw n=%zu lr=%g wd=%g gscale=%g step %d: p %.2g m %.2g v %.2g\n", n, lr, wd, gscale, t, ep, em, ev);
    }
    free(p), free(p16), free(g), free(m), free(v), free(P), free(Mm), free(Vv), free(Am);
}

/* A gradient held by rows (backend.h GradRows: the sparse embedding gradient): adamw and adamw_sumsq over a
 * [rows, cols] tensor whose gradient holds every third row (in reverse order in g) are bitwise the same as over the
 * dense gradient with the other rows zero: p, m, v and p16; the sum of squares of the held rows within double
 * rounding of the dense one. */
static void run_rows(size_t rows, size_t cols, float gscale) {
    size_t n = rows * cols, held = 0;
    int *map = sd_alloc(rows * sizeof(int), "map");
    for (size_t r = 0; r < rows; r++) map[r] = r % 3 == 1 ? (int)held++ : -1;
    for (size_t r = 0; r < rows; r++) /* the held rows numbered in reverse: the map, not the order, places them */
        if (map[r] >= 0) map[r] = (int)held - 1 - map[r];
    float *g = sd_alloc(held * cols * 4 + 4, "g"), *dense = sd_calloc(n, 4, "dense g");
    for (size_t i = 0; i < held * cols; i++) g[i] = (float)((urand() * 2 - 1) * 1e-2);
    for (size_t r = 0; r < rows; r++)
        if (map[r] >= 0) memcpy(dense + r * cols, g + (size_t)map[r] * cols, cols * 4);
    float *st[2][3];
    uint16_t *p16[2];
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 3; j++) st[k][j] = sd_alloc(n * 4, "state");
        p16[k] = sd_alloc(n * 2, "p16");
    }
    for (size_t i = 0; i < n; i++) {
        st[0][0][i] = st[1][0][i] = (float)(urand() * 2 - 1);
        st[0][1][i] = st[1][1][i] = (float)((urand() * 2 - 1) * 1e-3);
        st[0][2][i] = st[1][2][i] = (float)(urand() * 1e-5);
    }
    GradRows gr = {map, cols, held, GRAD_ROWS_ALL};
    const Backend *be = backend_cpu();
    double ss[2];
    for (int step = 0; step < 2; step++) { /* adamw (clipped), then adamw_sumsq */
        if (!step) {
            be->adamw(st[0][0], p16[0], g, &gr, gscale, st[0][1], st[0][2], n, 1e-2, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001);
            be->adamw(st[1][0], p16[1], dense, NULL, gscale, st[1][1], st[1][2], n, 1e-2, 0.9, 0.999, 1e-8, 0.1, 0.1,
                      0.001);
        } else {
            be->adamw_sumsq(&ss[0], st[0][0], p16[0], g, &gr, st[0][1], st[0][2], n, 1e-2, 0.9, 0.999, 1e-8, 0.1,
                            0.19, 0.002);
            be->adamw_sumsq(&ss[1], st[1][0], p16[1], dense, NULL, st[1][1], st[1][2], n, 1e-2, 0.9, 0.999, 1e-8, 0.1,
                            0.19, 0.002);
        }
        const char *nm[3] = {"p", "m", "v"};
        for (int j = 0; j < 3; j++)
            CHECK(memcmp(st[0][j], st[1][j], n * 4) == 0, "adamw by rows %zux%zu step %d: %s differs from the dense "
                  "zero-filled gradient's", rows, cols, step, nm[j]);
        CHECK(memcmp(p16[0], p16[1], n * 2) == 0, "adamw by rows %zux%zu step %d: p16 differs", rows, cols, step);
    }
    /* the held rows summed in their order in g (reversed here; the model numbers them ascending, the dense order,
     * and its sums are bitwise: tests/cli/fixture_run.sh), so within double rounding of the dense sum */
    CHECK(fabs(ss[0] - ss[1]) <= 1e-14 * ss[1] && ss[0] > 0, "adamw_sumsq by rows %zux%zu: sum of squares %.17g, "
          "dense %.17g", rows, cols, ss[0], ss[1]);
    printf("adamw by rows %zux%zu (%zu held) gscale %g: bitwise the dense update, sumsq %.6g\n", rows, cols, held,
           gscale, ss[0]);
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 3; j++) free(st[k][j]);
        free(p16[k]);
    }
    free(map), free(g), free(dense);
}

/* Parts of the rows (GradRows.part; AdamW inside the backward updates the free rows of the sparse embedding before
 * the backward and the held ones after it): FREE then HELD, and HELD then FREE, bitwise one call over all rows (p,
 * m, v, p16), with adamw_sumsq's sum over HELD bitwise ALL's and 0 over FREE; each part leaves the other's rows as
 * they were. */
static void run_parts(size_t rows, size_t cols) {
    size_t n = rows * cols, held = 0;
    int *map = sd_alloc(rows * sizeof(int), "map");
    for (size_t r = 0; r < rows; r++) map[r] = r % 4 == 2 ? (int)held++ : -1;
    float *g = sd_alloc(held * cols * 4 + 4, "g");
    for (size_t i = 0; i < held * cols; i++) g[i] = (float)((urand() * 2 - 1) * 1e-2);
    float *st[3][3];
    uint16_t *p16[3];
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 3; j++) st[k][j] = sd_alloc(n * 4, "state");
        p16[k] = sd_calloc(n, 2, "p16");
    }
    for (size_t i = 0; i < n; i++) {
        float p = (float)(urand() * 2 - 1), m = (float)((urand() * 2 - 1) * 1e-3), v = (float)(urand() * 1e-5);
        for (int k = 0; k < 3; k++) st[k][0][i] = p, st[k][1][i] = m, st[k][2][i] = v;
    }
    const Backend *be = backend_cpu();
    GradRows all = {map, cols, held, GRAD_ROWS_ALL}, hr = all, fr = all;
    hr.part = GRAD_ROWS_HELD, fr.part = GRAD_ROWS_FREE;
    double ss[4];
#define STEP(k, gr, s) be->adamw_sumsq(s, st[k][0], p16[k], g, gr, st[k][1], st[k][2], n, 1e-2, 0.9, 0.999, 1e-8, 0.1, \
                                       0.19, 0.002)
    float *p0 = sd_alloc(n * 4, "p0");
    memcpy(p0, st[0][0], n * 4);
    STEP(0, &all, &ss[0]);
    /* after one part: its rows all rows' update, the others' their old values, bitwise */
#define PART_ONLY(k, held_part, what)                                                                              \
    do {                                                                                                           \
        size_t wrong = 0;                                                                                          \
        for (size_t i = 0; i < n; i++)                                                                             \
            wrong += memcmp(&st[k][0][i], (map[i / cols] >= 0) == (held_part) ? &st[0][0][i] : &p0[i], 4) != 0;    \
        CHECK(wrong == 0, "adamw part %s %zux%zu: %zu elements not their part's update or their old value", what,   \
              rows, cols, wrong);                                                                                  \
    } while (0)
    STEP(1, &fr, &ss[1]);
    PART_ONLY(1, false, "FREE");
    CHECK(ss[1] == 0.0, "adamw_sumsq part FREE: sum of squares %g, want 0", ss[1]);
    STEP(1, &hr, &ss[1]);
    STEP(2, &hr, &ss[2]);
    PART_ONLY(2, true, "HELD");
    STEP(2, &fr, &ss[3]);
#undef PART_ONLY
#undef STEP
    const char *nm[3] = {"p", "m", "v"};
    for (int k = 1; k < 3; k++) {
        for (int j = 0; j < 3; j++)
            CHECK(memcmp(st[k][j], st[0][j], n * 4) == 0, "adamw parts %s %zux%zu: %s differs from all rows at once",
                  k == 1 ? "FREE, HELD" : "HELD, FREE", rows, cols, nm[j]);
        CHECK(memcmp(p16[k], p16[0], n * 2) == 0, "adamw parts %zux%zu: p16 differs", rows, cols);
    }
    CHECK(ss[1] == ss[0] && ss[2] == ss[0] && ss[0] > 0, "adamw_sumsq part HELD: %.17g, %.17g; all rows %.17g", ss[1],
          ss[2], ss[0]);
    printf("adamw by parts of the rows %zux%zu (%zu held): bitwise all rows at once\n", rows, cols, held);
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 3; j++) free(st[k][j]);
        free(p16[k]);
    }
    free(map), free(g), free(p0);
}

int main(void) {
    run(1000, 1e-2f, 0.0f, 0.9f, 0.999f, 1e-8f, 1.0f);
    run(1000, 1e-2f, 0.1f, 0.9f, 0.999f, 1e-8f, 1.0f);
    run(1000, 1e-2f, 0.1f, 0.9f, 0.999f, 1e-8f, 0.37f); /* clipped */
    run(300000, 3e-2f, 0.5f, 0.8f, 0.95f, 1e-6f, 0.8f); /* large enough for the OpenMP path */
    run_rows(97, 64, 0.37f);
    run_rows(50, 7, 1.0f);
    run_parts(97, 64);
    run_parts(300, 257); /* past the OpenMP threshold */
    TEST_END();
}
