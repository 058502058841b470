/* tp.c — see tp.h. */
#include "tp.h"
#include <math.h>
#include <stdlib.h>
#include "util.h"

int tp_size(const ProcessGrid *g) { return g ? g->tp : 1; }
int tp_rank(const ProcessGrid *g) { return g ? g->tp_rank : 0; }

void tp_reduce(ProcessGrid *g, float *x, size_t n) {
    if (tp_size(g) > 1) comm_allreduce_sum_f32(g, GROUP_TP, x, n);
}
void tp_copy_bwd(ProcessGrid *g, float *dx, size_t n) {
    if (tp_size(g) > 1) comm_allreduce_sum_f32(g, GROUP_TP, dx, n);
}

void tp_vocab_combine(ProcessGrid *g, double *mx, double *se, double *tgt, size_t n) {
    if (tp_size(g) == 1 || n == 0) return;
    double *gmx = sd_alloc(n * sizeof(double), "vocab max"), *sums = sd_alloc(2 * n * sizeof(double), "vocab sums");
    for (size_t i = 0; i < n; i++) gmx[i] = mx[i];
    comm_allreduce_max_f64(g, GROUP_TP, gmx, n);
    for (size_t i = 0; i < n; i++) {
        sums[i] = se[i] * exp(mx[i] - gmx[i]);
        sums[n + i] = tgt[i];
    }
    comm_allreduce_sum_f64(g, GROUP_TP, sums, 2 * n);
    for (size_t i = 0; i < n; i++) {
        mx[i] = gmx[i];
        se[i] = sums[i];
        tgt[i] = sums[n + i];
    }
    free(gmx);
    free(sums);
}
