/* rows.c — gather_rows / scatter_rows / add_rows / add_rows_b16 (backend.h): row copies and sums by index; a row
 * index outside its range dies. */
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

void cpu_add_rows(float *dst, const int *drows, const float *src, const int *srows, size_t M, size_t Nd, size_t Ns,
                  int C) {
    check_rows(drows, M, Nd, "add_rows");
    check_rows(srows, M, Ns, "add_rows");
    for (size_t i = 0; i < M; i++) {
        float *d = dst + (size_t)drows[i] * C;
        const float *s = src + (size_t)srows[i] * C;
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}

void cpu_add_rows_b16(uint16_t *dst, const int *drows, const uint16_t *src, const int *srows, size_t M, size_t Nd,
                      size_t Ns, int C) {
    check_rows(drows, M, Nd, "add_rows_b16");
    check_rows(srows, M, Ns, "add_rows_b16");
    for (size_t i = 0; i < M; i++) {
        uint16_t *d = dst + (size_t)drows[i] * C;
        const uint16_t *s = src + (size_t)srows[i] * C;
        for (int c = 0; c < C; c++) d[c] = sd_f32_to_bf16(sd_bf16_to_f32(d[c]) + sd_bf16_to_f32(s[c]));
    }
}
