/* tp.c — see tp.h. */
#include "tp.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "util.h"

int tp_size(const ProcessGrid *g) { return g ? g->tp : 1; }
int tp_rank(const ProcessGrid *g) { return g ? g->tp_rank : 0; }

void tp_reduce(ProcessGrid *g, float *x, size_t n) {
    if (tp_size(g) > 1) comm_allreduce_sum_f32(g, GROUP_TP, x, n);
}
void tp_copy_bwd(ProcessGrid *g, float *dx, size_t n) {
    if (tp_size(g) > 1) comm_allreduce_sum_f32(g, GROUP_TP, dx, n);
}

float *tp_sp_gather(ProcessGrid *g, float *full, const float *src, size_t rows, size_t w) {
    float *mine = full + (size_t)tp_rank(g) * rows * w;
    if (mine != src) comm_copy_f32(g, mine, src, rows * w);
    if (tp_size(g) > 1) comm_allgather_f32(g, GROUP_TP, full, rows * w);
    return full;
}

const float *tp_sp_reduce_scatter(ProcessGrid *g, float *part, size_t n, size_t rows, size_t w) {
    int tp = tp_size(g);
    size_t all = rows * (size_t)tp;
    if (all > n) { /* the rows past n: zeros, whatever the buffer held */
        if (g->be) g->be->zero(part + n * w, (all - n) * w * sizeof(float));
        else memset(part + n * w, 0, (all - n) * w * sizeof(float));
    }
    return comm_reduce_scatter_f32(g, GROUP_TP, part, rows * w);
}

void tp_vocab_combine(ProcessGrid *g, double *mx, double *se, double *tgt, double *ls, size_t n) {
    if (tp_size(g) == 1 || n == 0) return;
    double *gmx = sd_alloc(n * sizeof(double), "vocab max"), *sums = sd_alloc(3 * n * sizeof(double), "vocab sums");
    for (size_t i = 0; i < n; i++) gmx[i] = mx[i];
    comm_allreduce_max_f64(g, GROUP_TP, gmx, n);
    for (size_t i = 0; i < n; i++) {
        sums[i] = se[i] * exp(mx[i] - gmx[i]);
        sums[n + i] = tgt[i];
        sums[2 * n + i] = ls[i];
    }
    comm_allreduce_sum_f64(g, GROUP_TP, sums, 3 * n);
    for (size_t i = 0; i < n; i++) {
        mx[i] = gmx[i];
        se[i] = sums[i];
        tgt[i] = sums[n + i];
        ls[i] = sums[2 * n + i];
    }
    free(gmx);
    free(sums);
}
