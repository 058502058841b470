#define _POSIX_C_SOURCE 200112L
/* backend_cpu.c — the fp32 CPU reference backend: memory ops, elementwise helpers and the function-pointer
 * table. The kernels themselves live in the other files of src/cpu/ (declared in cpu_ops.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "cpu_ops.h"
#include "util.h"

/* Every block carries a 64-byte header with its size, so the backend can report the bytes it holds (the memory
 * plan is checked against this) and blocks stay 64-byte aligned for vector loads. */
#define HDR 64
static size_t g_in_use = 0, g_peak = 0; /* allocations happen on the main thread only */
static void *cpu_alloc(size_t bytes, const char *what) {
    if (bytes > SIZE_MAX - HDR) sd_die("memory", "cannot allocate %zu bytes for %s", bytes, what);
    void *base = NULL;
    if (posix_memalign(&base, HDR, HDR + bytes) != 0) sd_die("memory", "cannot allocate %zu bytes for %s", bytes, what);
    memset(base, 0, HDR + bytes);
    *(size_t *)base = bytes;
    g_in_use += bytes;
    if (g_in_use > g_peak) g_peak = g_in_use;
    return (char *)base + HDR;
}
static void cpu_free(void *p) {
    if (!p) return;
    char *base = (char *)p - HDR;
    g_in_use -= *(size_t *)base;
    free(base);
}
static size_t cpu_bytes_in_use(void) { return g_in_use; }
static void cpu_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}
/* copy / upload / download are all host memcpy; memmove so that overlapping ranges are harmless. */
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
}

static void cpu_add(float *y, const float *x, size_t n) {
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
static void cpu_scale(float *x, float s, size_t n) {
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
static double cpu_sumsq(const float *x, size_t n) {
    double acc = 0.0;
#pragma omp parallel for reduction(+ : acc) if (n > 65536)
    for (size_t i = 0; i < n; i++) acc += (double)x[i] * (double)x[i];
    return acc;
}

/* the sum of squares first (g is read-only to adamw), so bitwise cpu_sumsq's; with rows the held rows' (the rows
 * left out add nothing; the free rows alone: 0) */
static void cpu_adamw_sumsq(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows, float *m,
                            float *v, size_t n, double lr, double b1, double b2, double eps, double wd, double bc1,
                            double bc2) {
    *sumsq = rows && rows->part == GRAD_ROWS_FREE ? 0.0 : cpu_sumsq(g, rows ? rows->held * rows->cols : n);
    cpu_adamw(p, p16, g, rows, 1.0f, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
}

static const Backend g_cpu = {
    .name = "cpu",
    .host_addressable = true,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .bytes_in_use = cpu_bytes_in_use,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .upload = cpu_copy,
    .download = cpu_copy,
    .matmul = cpu_matmul,
    .set_matmul_bf16 = cpu_set_matmul_bf16,
    .matmul_bf16_on = cpu_matmul_bf16_on,
    .to_bf16 = cpu_to_bf16,
    .rmsnorm_fwd16 = cpu_rmsnorm_fwd16,
    .swiglu_fwd16 = cpu_swiglu_fwd16,
    .geglu_fwd16 = cpu_geglu_fwd16,
    .swiglu_bwd16 = cpu_swiglu_bwd16,
    .geglu_bwd16 = cpu_geglu_bwd16,
    .xent_bwd16 = cpu_xent_bwd16,
    .matmul16 = cpu_matmul16,
    .matmul16_out16 = cpu_matmul16_out16,
    .matmul16_res = cpu_matmul16_res,
    .swiglu_fwd_b16 = cpu_swiglu_fwd_b16,
    .geglu_fwd_b16 = cpu_geglu_fwd_b16,
    .swiglu_bwd_b16 = cpu_swiglu_bwd_b16,
    .geglu_bwd_b16 = cpu_geglu_bwd_b16,
    .swiglu_bwd_pack_b16 = cpu_swiglu_bwd_pack_b16,
    .geglu_bwd_pack_b16 = cpu_geglu_bwd_pack_b16,
    .rope_fwd_b16 = cpu_rope_fwd_b16,
    .rope_bwd_b16 = cpu_rope_bwd_b16,
    .rope_bwd_pack_b16 = cpu_rope_bwd_pack_b16,
    .attn_fwd_b16 = cpu_attn_fwd_b16,
    .attn_bwd_b16 = cpu_attn_bwd_b16,
    .attn_fwd_rows = cpu_attn_fwd_rows,
    .attn_bwd_rows = cpu_attn_bwd_rows,
    .attn_fwd_b16_rows = cpu_attn_fwd_b16_rows,
    .attn_bwd_b16_rows = cpu_attn_bwd_b16_rows,
    .xent_stats_b16 = cpu_xent_stats_b16,
    .xent_bwd_b16 = cpu_xent_bwd_b16,
    .add = cpu_add,
    .scale = cpu_scale,
    .sumsq = cpu_sumsq,
    .gather_rows = cpu_gather_rows,
    .scatter_rows = cpu_scatter_rows,
    .add_rows = cpu_add_rows,
    .add_rows_b16 = cpu_add_rows_b16,
    .rmsnorm_fwd_b16 = cpu_rmsnorm_fwd_b16,
    .rmsnorm_bwd_b16 = cpu_rmsnorm_bwd_b16,
    .bias_add = cpu_bias_add,
    .bias_add_b16 = cpu_bias_add_b16,
    .bias_grad = cpu_bias_grad,
    .bias_grad_b16 = cpu_bias_grad_b16,
    .embed_fwd = cpu_embed_fwd,
    .embed_bwd = cpu_embed_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .rmsnorm_bwd_out16 = cpu_rmsnorm_bwd_out16,
    .rope_fwd = cpu_rope_fwd,
    .rope_bwd = cpu_rope_bwd,
    .attn_fwd = cpu_attn_fwd,
    .attn_bwd = cpu_attn_bwd,
    .swiglu_fwd = cpu_swiglu_fwd,
    .geglu_fwd = cpu_geglu_fwd,
    .geglu_bwd = cpu_geglu_bwd,
    .softcap_fwd = cpu_softcap_fwd,
    .softcap_bwd = cpu_softcap_bwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .xent_stats = cpu_xent_stats,
    .xent_bwd = cpu_xent_bwd,
    .adamw = cpu_adamw,
    .adamw_sumsq = cpu_adamw_sumsq,
};

const Backend *backend_cpu(void) { return &g_cpu; }
