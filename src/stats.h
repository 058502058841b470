/* stats.h — small descriptive statistics for the analyses (simpo_dist analyze): means, quantiles, ranks,
 * Pearson and Spearman correlation, histogram binning, quantile buckets.
 *
 * defines: stats_mean, stats_quantile, stats_ranks, stats_pearson, stats_spearman, stats_histogram,
 *          stats_quantile_edges, stats_bucket_of.
 * Conventions: inputs are never modified; every function that needs an order sorts a private copy.
 * Non-finite inputs are the caller's business except where a function says it skips them.
 * Undefined results (empty input, zero variance) are NaN.
 */
#ifndef SD_STATS_H
#define SD_STATS_H
#include <stddef.h>

/* Arithmetic mean of x[0..n); NaN when n == 0. */
double stats_mean(const double *x, size_t n);
/* The q-quantile (0 <= q <= 1) with linear interpolation between order statistics (numpy's default, Hyndman
 * and Fan type 7): position h = (n - 1) q in the sorted values. NaN when n == 0. */
double stats_quantile(const double *x, size_t n, double q);
/* rank[i] = 1-based rank of x[i] in ascending order; tied values get the average of the ranks they span. */
void stats_ranks(const double *x, size_t n, double *rank);
/* Pearson correlation of x and y; NaN when n < 2 or either has zero variance. */
double stats_pearson(const double *x, const double *y, size_t n);
/* Spearman rank correlation: Pearson correlation of the average ranks (so ties are handled exactly). */
double stats_spearman(const double *x, const double *y, size_t n);
/* Counts x into nbins equal-width bins over [lo, hi]: bin i is [lo + i w, lo + (i+1) w), the last bin also takes
 * hi. Values outside [lo, hi] and non-finite values are skipped. counts[nbins] is overwritten; returns how many
 * values were counted. Requires nbins >= 1 and lo < hi. */
size_t stats_histogram(const double *x, size_t n, double lo, double hi, int nbins, size_t *counts);
/* Quantile bucket edges of x, into edges[nb+1]: with s the sorted values, edge k (k < nb) is s[floor(k n / nb)]
 * and edge nb is s[n-1], repeated edges removed. Edges are data values, so with stats_bucket_of every bucket holds
 * at least one value, tied values share a bucket, and the buckets hold about n / nb values each.
 * Returns the number of distinct edges (1 when every value is equal, 0 when n == 0). */
int stats_quantile_edges(const double *x, size_t n, int nb, double *edges);
/* Bucket of v among nedges distinct ascending edges: bucket j is [edges[j], edges[j+1]), the last bucket is
 * closed; with one edge there is one bucket. Returns -1 when v lies outside [edges[0], edges[nedges-1]].
 * The number of buckets is max(1, nedges - 1). */
int stats_bucket_of(const double *edges, int nedges, double v);
#endif
