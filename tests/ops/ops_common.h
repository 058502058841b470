/* ops_common.h — helpers shared by the op tests: a seeded xorshift generator (each test defines OPS_SEED before
 * including this), uniform fills, and the relative error max|a - b| / max|b| against a float64 reference. */
#ifndef SD_OPS_COMMON_H
#define SD_OPS_COMMON_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

static uint64_t g_rng = OPS_SEED;
static inline double urand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}
static inline void fill(float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
}
static inline double rel_err(const float *a, const double *b, size_t n) {
    double e = 0, m = 1e-300;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }
    return e / m;
}
#endif
