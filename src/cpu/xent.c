/* xent.c — log-softmax statistics and the cross-entropy gradient over a vocabulary slice. */
#include <math.h>
#include "cpu_ops.h"

/* maxv = max_j l_j, sumexp = sum_j exp(l_j - maxv) (summed in double, rounded once), tgt = l[target] if the
 * target is in [V_off, V_off + V_loc), else 0, lsum = sum_j l_j (in double, rounded once). An empty slice gives
 * maxv = -inf, sumexp = 0, lsum = 0. */
void cpu_xent_stats(float *maxv, float *sumexp, float *tgt, float *lsum, const float *logits, const int *targets,
                    size_t N, int V_loc, int V_off) {
#pragma omp parallel for if (N * (size_t)V_loc > SD_OMP_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *l = logits + n * (size_t)V_loc;
        float mx = -INFINITY;
        for (int j = 0; j < V_loc; j++)
            if (l[j] > mx) mx = l[j];
        double se = 0.0, ls = 0.0;
        for (int j = 0; j < V_loc; j++) {
            se += expf(l[j] - mx);
            ls += l[j];
        }
        int t = targets[n] - V_off;
        maxv[n] = mx;
        sumexp[n] = (float)se;
        lsum[n] = (float)ls;
        tgt[n] = (t >= 0 && t < V_loc) ? l[t] : 0.0f;
    }
}

/* dlogits[n,j] = g[n] ([j + V_off == target] - exp(l[n,j] - lse[n])), in place. */
void cpu_xent_bwd(float *logits, const float *lse, const float *g, const int *targets, size_t N, int V_loc,
                  int V_off) {
#pragma omp parallel for if (N * (size_t)V_loc > SD_OMP_MIN)
    for (size_t n = 0; n < N; n++) {
        float *l = logits + n * (size_t)V_loc;
        float gn = g[n], ln = lse[n];
        int t = targets[n] - V_off; /* may lie outside [0, V_loc): then no one-hot term on this slice */
        for (int j = 0; j < V_loc; j++) l[j] = gn * ((j == t ? 1.0f : 0.0f) - expf(l[j] - ln));
    }
}
