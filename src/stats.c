/* stats.c — descriptive statistics (stats.h). */
#include "stats.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

double stats_mean(const double *x, size_t n) {
    if (n == 0) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double *sorted_copy(const double *x, size_t n) {
    double *s = sd_alloc(sd_mul_size(n ? n : 1, sizeof(double), "stats"), "stats");
    if (n) memcpy(s, x, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    return s;
}

/* type 7 on already sorted values */
static double quantile_sorted(const double *s, size_t n, double q) {
    if (q <= 0) return s[0];
    if (q >= 1) return s[n - 1];
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) return s[n - 1];
    return s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]);
}

double stats_quantile(const double *x, size_t n, double q) {
    if (n == 0) return NAN;
    double *s = sorted_copy(x, n);
    double v = quantile_sorted(s, n, q);
    free(s);
    return v;
}

typedef struct { double v; size_t i; } Keyed;
static int cmp_keyed(const void *a, const void *b) {
    const Keyed *x = a, *y = b;
    if (x->v != y->v) return (x->v > y->v) - (x->v < y->v);
    return (x->i > y->i) - (x->i < y->i); /* equal values keep input order */
}

void stats_ranks(const double *x, size_t n, double *rank) {
    if (n == 0) return;
    Keyed *k = sd_alloc(sd_mul_size(n, sizeof(Keyed), "stats"), "stats");
    for (size_t i = 0; i < n; i++) k[i] = (Keyed){x[i], i};
    qsort(k, n, sizeof(Keyed), cmp_keyed);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && k[j].v == k[i].v) j++;
        double avg = 0.5 * (double)(i + 1 + j); /* mean of the ranks i+1 .. j */
        for (size_t m = i; m < j; m++) rank[k[m].i] = avg;
        i = j;
    }
    free(k);
}

double stats_pearson(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN;
    double mx = stats_mean(x, n), my = stats_mean(y, n), sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx <= 0 || syy <= 0) return NAN;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

double stats_spearman(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN;
    double *rx = sd_alloc(sd_mul_size(2 * n, sizeof(double), "stats"), "stats"), *ry = rx + n;
    stats_ranks(x, n, rx);
    stats_ranks(y, n, ry);
    double r = stats_pearson(rx, ry, n);
    free(rx);
    return r;
}

size_t stats_histogram(const double *x, size_t n, double lo, double hi, int nbins, size_t *counts) {
    for (int b = 0; b < nbins; b++) counts[b] = 0;
    if (nbins < 1 || !(lo < hi)) return 0;
    double w = (hi - lo) / nbins;
    size_t counted = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (!isfinite(v) || v < lo || v > hi) continue;
        int b = (int)floor((v - lo) / w);
        if (b >= nbins) b = nbins - 1;
        if (b < 0) b = 0;
        counts[b]++;
        counted++;
    }
    return counted;
}

int stats_quantile_edges(const double *x, size_t n, int nb, double *edges) {
    if (n == 0 || nb < 1) return 0;
    double *s = sorted_copy(x, n);
    int ne = 0;
    for (int k = 0; k <= nb; k++) {
        size_t at = k == nb ? n - 1 : (size_t)((double)k * (double)n / nb);
        double e = s[at < n ? at : n - 1];
        if (ne == 0 || e > edges[ne - 1]) edges[ne++] = e;
    }
    free(s);
    return ne;
}

int stats_bucket_of(const double *edges, int nedges, double v) {
    if (nedges < 1 || !(v >= edges[0]) || !(v <= edges[nedges - 1])) return -1;
    int nb = nedges > 1 ? nedges - 1 : 1;
    for (int j = 0; j < nb - 1; j++)
        if (v < edges[j + 1]) return j;
    return nb - 1;
}
