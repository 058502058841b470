/* test_stats.c — src/stats.c against values worked out by hand in the comments: average ranks with ties,
 * Spearman (monotone, reversed, tied examples), Pearson, type-7 quantiles, histogram binning, quantile buckets
 * (edges at data values, so none is empty). */
#include <math.h>
#include "stats.h"
#include "test_util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static void test_ranks(void) {
    /* 3 1 4 1 5: the two 1s share ranks 1 and 2 -> 1.5 each; 3 -> 3, 4 -> 4, 5 -> 5 */
    double x[] = {3, 1, 4, 1, 5}, r[5], want[] = {3, 1.5, 4, 1.5, 5};
    stats_ranks(x, 5, r);
    for (int i = 0; i < 5; i++) CHECK(r[i] == want[i], "rank[%d] = %g, want %g", i, r[i], want[i]);
    /* all equal: every rank is the mean of 1..4 = 2.5 */
    double c[] = {7, 7, 7, 7}, rc[4];
    stats_ranks(c, 4, rc);
    for (int i = 0; i < 4; i++) CHECK(rc[i] == 2.5, "tied rank[%d] = %g", i, rc[i]);
}

static void test_spearman(void) {
    double x[] = {1, 2, 3, 4, 5, 6}, up[6], down[6];
    for (int i = 0; i < 6; i++) {
        up[i] = exp(x[i]);      /* monotone but not linear: Spearman 1, Pearson < 1 */
        down[i] = -x[i] * x[i]; /* strictly decreasing on x > 0 */
    }
    CHECK(near(stats_spearman(x, up, 6), 1.0, 1e-15), "monotone: %.17g", stats_spearman(x, up, 6));
    CHECK(stats_pearson(x, up, 6) < 0.95, "pearson of exp is not 1: %g", stats_pearson(x, up, 6));
    CHECK(near(stats_spearman(x, down, 6), -1.0, 1e-15), "reversed: %.17g", stats_spearman(x, down, 6));

    /* ties on both sides: x = 1 2 2 3 -> ranks 1 2.5 2.5 4; y = 10 20 30 30 -> ranks 1 2 3.5 3.5.
     * Both rank means are 2.5; deviations dx = -1.5 0 0 1.5, dy = -1.5 -0.5 1 1.
     * sum dx dy = 2.25 + 0 + 0 + 1.5 = 3.75; sum dx^2 = 4.5; sum dy^2 = 2.25 + 0.25 + 1 + 1 = 4.5
     * rho = 3.75 / sqrt(4.5 * 4.5) = 5/6 */
    double a[] = {1, 2, 2, 3}, b[] = {10, 20, 30, 30};
    double rho = stats_spearman(a, b, 4);
    CHECK(near(rho, 5.0 / 6.0, 1e-15), "tied example: %.17g, want 5/6", rho);
    /* order does not matter: the same pairs shuffled */
    double a2[] = {2, 3, 1, 2}, b2[] = {30, 30, 10, 20};
    CHECK(near(stats_spearman(a2, b2, 4), 5.0 / 6.0, 1e-15), "shuffled: %.17g", stats_spearman(a2, b2, 4));

    /* x = 1..5, y = 5 6 7 8 7 -> y ranks 1 2 3.5 5 3.5; dx = -2 -1 0 1 2, dy = -2 -1 0.5 2 0.5
     * sum dx dy = 4 + 1 + 0 + 2 + 1 = 8; sum dx^2 = 10; sum dy^2 = 4 + 1 + 0.25 + 4 + 0.25 = 9.5
     * rho = 8 / sqrt(95) = 0.82078268166812329 */
    double c[] = {1, 2, 3, 4, 5}, d[] = {5, 6, 7, 8, 7};
    CHECK(near(stats_spearman(c, d, 5), 8.0 / sqrt(95.0), 1e-15), "second tied example: %.17g",
          stats_spearman(c, d, 5));

    /* undefined: constant input, fewer than two values */
    double k[] = {3, 3, 3};
    CHECK(isnan(stats_spearman(c, k, 3)), "constant y gives NaN");
    CHECK(isnan(stats_spearman(c, d, 1)), "one value gives NaN");
}

static void test_pearson_mean(void) {
    double x[] = {1, 2, 3}, y[] = {2, 4, 6}, z[] = {6, 4, 2};
    CHECK(near(stats_pearson(x, y, 3), 1, 1e-15), "linear: %g", stats_pearson(x, y, 3));
    CHECK(near(stats_pearson(x, z, 3), -1, 1e-15), "anti-linear: %g", stats_pearson(x, z, 3));
    /* x = 1 2 3, w = 1 3 2: dx = -1 0 1, dw = -1 1 0 -> 1 / sqrt(2 * 2) = 0.5 */
    double w[] = {1, 3, 2};
    CHECK(near(stats_pearson(x, w, 3), 0.5, 1e-15), "0.5 example: %g", stats_pearson(x, w, 3));
    CHECK(stats_mean(y, 3) == 4, "mean %g", stats_mean(y, 3));
    CHECK(isnan(stats_mean(y, 0)), "empty mean is NaN");
}

static void test_quantiles(void) {
    /* sorted 1 2 3 4, h = 3q: q .5 -> h 1.5 -> 2.5; q .25 -> h .75 -> 1 + .75 = 1.75; q .9 -> h 2.7 -> 3.7 */
    double x[] = {4, 1, 3, 2};
    CHECK(stats_quantile(x, 4, 0.5) == 2.5, "median %g", stats_quantile(x, 4, 0.5));
    CHECK(near(stats_quantile(x, 4, 0.25), 1.75, 1e-15), "q25 %g", stats_quantile(x, 4, 0.25));
    CHECK(near(stats_quantile(x, 4, 0.9), 3.7, 1e-12), "q90 %g", stats_quantile(x, 4, 0.9));
    CHECK(stats_quantile(x, 4, 0) == 1 && stats_quantile(x, 4, 1) == 4, "extremes");
    CHECK(x[0] == 4 && x[1] == 1, "input not reordered");
    double one = 7;
    CHECK(stats_quantile(&one, 1, 0.3) == 7, "single value");
    CHECK(isnan(stats_quantile(x, 0, 0.5)), "empty is NaN");
}

static void test_histogram(void) {
    /* [0, 2] in 4 bins of 0.5: 0 -> 0, 0.5 -> 1, 1 -> 2, 1.5 -> 3, 2 and 2 -> 3 (last bin closed), 0.49 -> 0;
     * -1, 3, NaN and inf are skipped */
    double x[] = {0, 0.5, 1, 1.5, 2, 2, 0.49, -1, 3, NAN, INFINITY};
    size_t c[4], want[] = {2, 1, 1, 3};
    size_t n = stats_histogram(x, N(x), 0, 2, 4, c);
    CHECK(n == 7, "counted %zu", n);
    for (int b = 0; b < 4; b++) CHECK(c[b] == want[b], "bin %d: %zu, want %zu", b, c[b], want[b]);
    size_t one[1];
    CHECK(stats_histogram(x, N(x), 0, 2, 1, one) == 7 && one[0] == 7, "one bin takes all in range");
    CHECK(stats_histogram(x, N(x), 1, 1, 1, one) == 0 && one[0] == 0, "empty range counts nothing");
}

static void test_buckets(void) {
    /* sorted -2 -1 0 0 0 1 5 (n 7, 4 buckets): edge k = s[floor(7k/4)] -> s[0] s[1] s[3] s[5] = -2 -1 0 1, and
     * s[6] = 5: buckets [-2,-1) {-2}, [-1,0) {-1}, [0,1) {0 0 0}, [1,5] {1 5} */
    double x[] = {0, 5, -1, 0, 1, -2, 0}, e[5], want[] = {-2, -1, 0, 1, 5};
    int ne = stats_quantile_edges(x, N(x), 4, e);
    CHECK(ne == 5, "edges %d", ne);
    for (int i = 0; i < ne && i < 5; i++) CHECK(e[i] == want[i], "edge %d: %g want %g", i, e[i], want[i]);
    int per[4] = {0, 0, 0, 0}, wantper[] = {1, 1, 3, 2};
    for (size_t i = 0; i < N(x); i++) {
        int b = stats_bucket_of(e, ne, x[i]);
        if (b >= 0 && b < 4) per[b]++;
    }
    for (int b = 0; b < 4; b++) CHECK(per[b] == wantper[b], "bucket %d holds %d, want %d", b, per[b], wantper[b]);
    CHECK(stats_bucket_of(e, ne, -1.5) == 0 && stats_bucket_of(e, ne, 0.5) == 2, "between edges");
    CHECK(stats_bucket_of(e, ne, 1) == 3 && stats_bucket_of(e, ne, 5) == 3, "last bucket closed");
    CHECK(stats_bucket_of(e, ne, 5.1) == -1 && stats_bucket_of(e, ne, -3) == -1, "outside");
    CHECK(stats_bucket_of(e, ne, NAN) == -1, "NaN outside");
    /* repeated quantiles collapse: 1 1 1 1 2 in 4 buckets -> edges 1 (q 0..0.75) and 2 */
    double r[] = {1, 1, 1, 1, 2}, er[5];
    ne = stats_quantile_edges(r, 5, 4, er);
    CHECK(ne == 2 && er[0] == 1 && er[1] == 2, "collapsed edges: %d", ne);
    /* all equal: one edge, one bucket */
    double k[] = {3, 3, 3}, ek[3];
    ne = stats_quantile_edges(k, 3, 2, ek);
    CHECK(ne == 1 && ek[0] == 3, "constant: %d edges", ne);
    CHECK(stats_bucket_of(ek, ne, 3) == 0 && stats_bucket_of(ek, ne, 4) == -1, "one bucket");
    CHECK(stats_quantile_edges(k, 0, 2, ek) == 0, "empty input: no edges");
}

int main(void) {
    test_ranks();
    test_spearman();
    test_pearson_mean();
    test_quantiles();
    test_histogram();
    test_buckets();
    TEST_END();
}
