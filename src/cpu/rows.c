/* rows.c — gather_rows / scatter_rows (backend.h): row copies by index, a row index outside [0, N) dies. */
#include <string.h>
#include "cpu_ops.h"
#include "util.h"

static void check_rows(const int *rows, size_t M, size_t N, const char *op) {
    for (size_t r = 0; r < M; r++)
        if (rows[r] < 0 || (size_t)rows[r] >= N) sd_die(op, "row %zu is index %d, outside [0, %zu)", r, rows[r], N);
}

void cpu_gather_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    check_rows(rows, M, N, "gather_rows");
    for (size_t r = 0; r < M; r++) memcpy(dst + r * (size_t)C, src + (size_t)rows[r] * C, (size_t)C * sizeof(float));
}

void cpu_scatter_rows(float *dst, const float *src, const int *rows, size_t M, size_t N, int C) {
    check_rows(rows, M, N, "scatter_rows");
    for (size_t r = 0; r < M; r++) memcpy(dst + (size_t)rows[r] * C, src + r * (size_t)C, (size_t)C * sizeof(float));
}
