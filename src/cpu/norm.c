/* norm.c — RMSNorm (HF LlamaRMSNorm) and the vocabulary-sliced token embedding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_ops.h"
#include "util.h"
#ifdef _OPENMP
#include <omp.h>
#endif

void cpu_embed_fwd(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc) {
#pragma omp parallel for if (N * (size_t)C > SD_OMP_MIN)
    for (size_t n = 0; n < N; n++) {
        float *o = out + n * (size_t)C;
        int r = ids[n] - V_off;
        if (r >= 0 && r < V_loc) memcpy(o, W + (size_t)r * C, (size_t)C * sizeof(float));
        else memset(o, 0, (size_t)C * sizeof(float));
    }
}

/* Rows of dW can be hit by several tokens, so parallelise over column blocks (no races, deterministic). */
void cpu_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc) {
    const int BLK = 64;
    int nblk = (C + BLK - 1) / BLK;
#pragma omp parallel for if (N * (size_t)C > SD_OMP_MIN)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * BLK, c1 = c0 + BLK < C ? c0 + BLK : C;
        for (size_t n = 0; n < N; n++) {
            int r = ids[n] - V_off;
            if (r < 0 || r >= V_loc) continue;
            float *d = dW + (size_t)r * C;
            const float *g = dout + n * (size_t)C;
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

/* HF: variance = mean(x^2) (fp32), x * rsqrt(variance + eps), then weight * that. The sum of squares is
 * accumulated in double and rounded once, so the mean is the correctly rounded fp32 value. */
void cpu_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, size_t N, int C, float eps) {
#pragma omp parallel for if (N * (size_t)C > SD_OMP_MIN)
    for (size_t n = 0; n < N; n++) {
        const float *xr = x + n * (size_t)C;
        float *o = out + n * (size_t)C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)xr[i] * xr[i];
        float ms = (float)(ss / C);
        float r = 1.0f / sqrtf(ms + eps);
        for (int i = 0; i < C; i++) o[i] = w[i] * (xr[i] * r);
        rstd[n] = r;
    }
}

/* y_i = w_i x_i r with r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / C:
 *   dx_j += r w_j dy_j - (r^3 / C) x_j sum_i dy_i w_i x_i,     dw_i += sum_n dy_i x_i r.
 * dx is row-parallel; dw is summed per thread (in double) and reduced afterwards, so there are no races. */
void cpu_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                     size_t N, int C) {
    int nt = 1;
#ifdef _OPENMP
    if (N * (size_t)C > SD_OMP_MIN) nt = omp_get_max_threads();
#endif
    double *part = sd_calloc((size_t)nt * (size_t)C, sizeof(double), "rmsnorm_bwd scratch");
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        double *pw = part + (size_t)tid * C;
#pragma omp for
        for (size_t n = 0; n < N; n++) {
            const float *xr = x + n * (size_t)C, *dy = dout + n * (size_t)C;
            float *d = dx + n * (size_t)C;
            float r = rstd[n];
            double dot = 0.0;
            for (int i = 0; i < C; i++) dot += (double)dy[i] * w[i] * xr[i];
            float k = (float)(dot * r * r * r / C);
            for (int i = 0; i < C; i++) {
                d[i] += r * w[i] * dy[i] - k * xr[i];
                pw[i] += (double)dy[i] * xr[i] * r;
            }
        }
    }
#pragma omp parallel for if (nt > 1)
    for (int i = 0; i < C; i++) {
        double s = 0.0;
        for (int t = 0; t < nt; t++) s += part[(size_t)t * C + i];
        dw[i] += (float)s;
    }
    free(part);
}
