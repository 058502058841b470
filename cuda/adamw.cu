/* adamw.cu — one AdamW step (torch semantics) on n elements, evaluated in double and rounded once per element
 * exactly as src/cpu/adamw.c (see there for why double; the clipping scale multiplies g in fp32 first); the state
 * stays fp32; with p16 also the updated weights' bf16 copy. Elementwise, grid-stride: four elements (U x four,
 * SIMPO_CUDA_ADAMW_UNROLL) per thread and step in 16-byte accesses (p, g, m, v; 8 bytes of p16) where the pointers
 * allow it, the rest one by one: the optimizer is the step's largest memory traffic (~30 bytes per parameter), and
 * 4-byte accesses leave part of the bandwidth unused. Both paths run the same arithmetic per element (adamw_one),
 * so the results are the same. adamw_sumsq (gscale 1) also adds up the gradients' squares as it reads them, in two
 * deterministic passes (a fixed grid of partials, adamw_ss_blocks, then elementwise.cu's one-block fixed tree,
 * cu_sum_partials): the gradient norm without a pass of its own when nothing clips. With a GradRows (the sparse
 * embedding gradient) each kernel reads a gradient from its row's held copy or takes zero: the same arithmetic on
 * the same values as a dense zero-filled g, so bitwise its results; a part of the rows (GradRows.part: the held
 * ones, or the free ones, AdamW inside the backward) leaves the others unread and unwritten (gin). */
#include "cuda_common.cuh"

typedef struct {
    float gscale;
    double b1, b2, eps, decay, step, bc2_sqrt;
} AdamwArgs;

/* one element: p, m, v updated in place */
static __device__ __forceinline__ void adamw_one(float &p, float g, float &m, float &v, const AdamwArgs &a) {
    double gi = __fmul_rn(g, a.gscale); /* never contracted into an FMA: the CPU's fp32 product */
    double mi = a.b1 * m + (1.0 - a.b1) * gi;
    double vi = a.b2 * v + (1.0 - a.b2) * gi * gi;
    p = (float)((double)p * a.decay - a.step * mi / (sqrt(vi) / a.bc2_sqrt + a.eps));
    m = (float)mi;
    v = (float)vi;
}

/* Where a kernel reads the gradients (backend.h GradRows): R false: dense, g[i]; R true: by rows, element i's from
 * its row's held copy (map[i / cols] >= 0) or zero. Passed by value; the dense kernels compile as before. */
typedef struct {
    const float *g;
    const int *map; /* R: a held row's index per row of the tensor */
    size_t cols;    /* R: the row length (a multiple of 4 on the 4-wide paths, so no quad crosses a row) */
    int part;       /* R: GradRows.part, the rows updated (the others neither read nor written) */
} GSrc;
/* R: whether element e lies in the rows s.part selects; read before any other load of the element, so that a row
 * left out costs its map entry only (the held rows are a few percent of an embedding's). The same threads take the
 * same elements whatever the part, and a row left out adds nothing to the sums of squares, so a part's partials
 * are bitwise those of all rows (whose rows left out add +0.0). */
template <bool R>
static __device__ __forceinline__ bool gin(const GSrc &s, size_t e) {
    if (!R || s.part == GRAD_ROWS_ALL) return true;
    return (s.map[e / s.cols] >= 0) == (s.part == GRAD_ROWS_HELD);
}
template <bool R>
static __device__ __forceinline__ float gload1(const GSrc &s, size_t i) {
    if (!R) return s.g[i];
    const size_t r = i / s.cols;
    const int h = s.map[r];
    return h < 0 ? 0.0f : s.g[(size_t)h * s.cols + (i - r * s.cols)];
}
/* quad j: elements 4j .. 4j + 3 */
template <bool R>
static __device__ __forceinline__ float4 gload4(const GSrc &s, size_t j) {
    if (!R) return ((const float4 *)s.g)[j];
    const size_t e = 4 * j, r = e / s.cols;
    const int h = s.map[r];
    if (h >= 0) return *(const float4 *)(s.g + (size_t)h * s.cols + (e - r * s.cols));
    float4 z;
    z.x = z.y = z.z = z.w = 0.0f;
    return z;
}

/* element i updated in memory (and its bf16 compute weight when p16); returns its gradient */
template <bool R>
static __device__ __forceinline__ float adamw_elem(float *p, uint16_t *p16, const GSrc &g, float *m, float *v,
                                                   size_t i, const AdamwArgs &a) {
    if (!gin<R>(g, i)) return 0.0f;
    const float gi = gload1<R>(g, i);
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_one(pi, gi, mi, vi, a);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (p16) cu_store(&p16[i], pi); /* the bf16 compute weight */
    return gi;
}
/* U groups of 4 elements, quads i, i + stride, ..., i + (U - 1) stride: all 4 U loads issued before the first
 * update, so that each thread has U x 64 bytes in flight instead of 64 (the pointers may alias as far as the compiler
 * knows, so it cannot hoist the next iteration's loads above this one's stores itself). The squares of the
 * gradients are added to *s in the order of the quads, the order of U = 1's grid-stride loop over the same
 * quads, so the partial sums are bitwise U = 1's. */
template <int U, bool R>
static __device__ __forceinline__ void adamw_quads(float *p, uint16_t *p16, const GSrc &g, float *m, float *v,
                                                   size_t i, size_t stride, const AdamwArgs &a, double *s) {
    float4 P[U], G[U], M[U], V[U];
    bool in[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
        const size_t j = i + u * stride;
        in[u] = gin<R>(g, 4 * j);
        if (!in[u]) continue;
        P[u] = ((const float4 *)p)[j], G[u] = gload4<R>(g, j);
        M[u] = ((const float4 *)m)[j], V[u] = ((const float4 *)v)[j];
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
        const size_t j = i + u * stride;
        if (!in[u]) continue;
        adamw_one(P[u].x, G[u].x, M[u].x, V[u].x, a);
        adamw_one(P[u].y, G[u].y, M[u].y, V[u].y, a);
        adamw_one(P[u].z, G[u].z, M[u].z, V[u].z, a);
        adamw_one(P[u].w, G[u].w, M[u].w, V[u].w, a);
        ((float4 *)p)[j] = P[u];
        ((float4 *)m)[j] = M[u];
        ((float4 *)v)[j] = V[u];
        if (p16) {
            uint16_t b[4];
            cu_store(&b[0], P[u].x), cu_store(&b[1], P[u].y), cu_store(&b[2], P[u].z), cu_store(&b[3], P[u].w);
            ((uint2 *)p16)[j] =
                make_uint2((unsigned)b[0] | (unsigned)b[1] << 16, (unsigned)b[2] | (unsigned)b[3] << 16);
        }
        if (s) *s += (double)G[u].x * G[u].x + (double)G[u].y * G[u].y + (double)G[u].z * G[u].z +
                     (double)G[u].w * G[u].w;
    }
}
/* the grid-stride loop over n4 quads from quad t0, U quads per step, then the < U left one by one */
template <int U, bool R>
static __device__ __forceinline__ void adamw_quad_loop(float *p, uint16_t *p16, const GSrc &g, float *m, float *v,
                                                       size_t n4, size_t t0, size_t stride, const AdamwArgs &a,
                                                       double *s) {
    size_t i = t0;
    for (; i + (U - 1) * stride < n4; i += U * stride) adamw_quads<U, R>(p, p16, g, m, v, i, stride, a, s);
    for (; i < n4; i += stride) adamw_quads<1, R>(p, p16, g, m, v, i, stride, a, s);
}

/* elements i0 .. n - 1 one by one */
template <bool R>
__global__ void adamw_k(float *p, uint16_t *p16, GSrc g, float *m, float *v, size_t i0, size_t n, AdamwArgs a) {
    for (size_t i = i0 + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        adamw_elem<R>(p, p16, g, m, v, i, a);
}

/* n4 groups of 4 elements: p, g, m, v 16-byte aligned, p16 (when not NULL) 8-byte aligned; U quads per step (at
 * U = 2 at most 80 registers, 3 blocks per SM: 768 threads with 128 bytes each in flight against U = 1's 1024 with
 * 64; 88 registers unbounded would leave 2 blocks, no more bytes in flight than U = 1) */
template <int U, bool R>
__global__ void __launch_bounds__(256, U == 1 ? 4 : 3) adamw4_k(float *p, uint16_t *p16, GSrc g, float *m, float *v,
                                                                size_t n4, AdamwArgs a) {
    adamw_quad_loop<U, R>(p, p16, g, m, v, n4, blockIdx.x * (size_t)blockDim.x + threadIdx.x,
                          (size_t)gridDim.x * blockDim.x, a, NULL);
}

/* adamw_sumsq's pass: AdamW (gscale 1) with each thread adding its gradients' squares in double as it reads them,
 * the block's sum by a fixed tree to part[blockIdx.x]; a fixed grid (adamw_ss_blocks(n)), so the same n gives the
 * same partials. VEC: the 4-wide body (p, g, m, v 16-byte aligned, p16 8-byte aligned) and the < 4 elements after it
 * one by one; else all one by one. At most 64 registers, so that 4 blocks share an SM as adamw4_k's do (66 without
 * the bound: 3 blocks, and the H200 measured 3.0 TB/s against adamw4_k's 3.65). R: the gradients by rows, the
 * rows left out read as zeros, so the partials are bitwise those of a dense zero-filled g. */
/* PH, phases (the late queue, ADAMW_LATE_ITERS): a launch takes iterations [k0, k1) of each thread's loop (quads
 * under VEC, then in the last phase the elements after them; else elements), the thread's running sum carried in
 * carry[thread] from one launch to the next, and only the last (`last`) forms the block's sum. Each thread adds the
 * same squares in the same order whatever the phases, so the partials are bitwise one launch's. Without PH (the
 * main stream) the kernel ignores k0, k1, last and carry: their arithmetic would cost the 64-register bound a
 * spill. */
static __device__ __forceinline__ size_t ss_limit(size_t end, size_t t0, size_t k1, size_t stride) {
    return k1 >= (end - (t0 < end ? t0 : end)) / stride + 1 ? end : min(end, t0 + k1 * stride);
}
template <bool VEC, int U, bool R, bool PH>
__global__ void __launch_bounds__(CU_SS_THREADS, U == 1 ? 4 : 3) adamw_ss_k(double *part, double *carry, float *p,
                                                                           uint16_t *p16, GSrc g, float *m, float *v,
                                                                           size_t n, AdamwArgs a, size_t k0,
                                                                           size_t k1, bool last) {
    __shared__ double sh[CU_SS_THREADS];
    const size_t t0 = blockIdx.x * (size_t)CU_SS_THREADS + threadIdx.x, stride = (size_t)gridDim.x * CU_SS_THREADS;
    double s = PH && k0 ? carry[t0] : 0.0;
    if (VEC) {
        const size_t n4 = n / 4;
        if (PH) adamw_quad_loop<U, R>(p, p16, g, m, v, ss_limit(n4, t0, k1, stride), t0 + k0 * stride, stride, a, &s);
        else adamw_quad_loop<U, R>(p, p16, g, m, v, n4, t0, stride, a, &s);
        if (!PH || last)
            for (size_t i = n4 * 4 + t0; i < n; i += stride) {
                const float gi = adamw_elem<R>(p, p16, g, m, v, i, a);
                s += (double)gi * gi;
            }
    } else {
        const size_t e = PH ? ss_limit(n, t0, k1, stride) : n;
        for (size_t i = t0 + (PH ? k0 * stride : 0); i < e; i += stride) {
            const float gi = adamw_elem<R>(p, p16, g, m, v, i, a);
            s += (double)gi * gi;
        }
    }
    if (PH && !last) { /* the whole block alike: last is the launch's */
        carry[t0] = s;
        return;
    }
    s = cu_block_sum<CU_SS_THREADS>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* SIMPO_CUDA_ADAMW_UNROLL: unset, empty or 1 = one quad of elements per thread and loop step (measured: adamw at
 * 3.65 TB/s on an H200); 2 = two, their loads issued together (unmeasured; results bitwise 1's). Read per call. */
static int adamw_unroll(void) { return cu_env_choice("SIMPO_CUDA_ADAMW_UNROLL", 1, 2, 1); }

/* adamw_ss_k's grid for n elements, a function of n only (the partials, so the sum, the same on every run): at least
 * 16 quads per thread, at most 8192 blocks. Not sumsq's cap of 1024 blocks: on a 132-SM device, at 3 blocks per SM
 * (the 66 registers before) those ran in 3 waves of 396, the last 59% full; 8192 blocks at 4 per SM are 15.5 waves
 * of 528, so the last one's idle SMs cost ~3% instead. The second pass adds the up to 8192 partials in one block. */
static size_t adamw_ss_blocks(size_t n) {
    const size_t per = (size_t)CU_SS_THREADS * 64, nb = (n + per - 1) / per;
    return nb > 8192 ? 8192 : nb;
}

/* the kernels' view of g (rows: backend.h GradRows) and whether the 4-wide paths may read it: 16-byte aligned, and
 * by rows only in whole quads of a row */
static GSrc gsrc(const float *g, const GradRows *rows) {
    GSrc s = {g, rows ? rows->map : NULL, rows ? rows->cols : 0, rows ? rows->part : GRAD_ROWS_ALL};
    return s;
}
static bool vec_ok(const float *p, uint16_t *p16, const float *g, const GradRows *rows, const float *m,
                   const float *v) {
    return cu_aligned16(p, g, m, v, p) && ((uintptr_t)p16 & 7) == 0 && (!rows || rows->cols % 4 == 0);
}

/* Iterations of each thread's loop per launch on the late queue (backend.h late_begin): a block once started keeps
 * its SM until it ends, so a late block resident when one of the main stream's kernels launches holds that SM back
 * from it for the rest of its time; in one launch a block takes 16 to ~64 quads per thread (~20-70 us at the
 * bandwidth one SM gets), in phases of 4 a quarter of that or less. The main stream's AdamW (nothing beside it) runs
 * in one launch; adamw (no sum: the sparse embedding's free rows) on the late queue takes the same phases. */
static const size_t ADAMW_LATE_ITERS = 4;

template <bool R, bool PH>
static void adamw_sumsq_launch(double *part, double *carry, size_t nb, float *p, uint16_t *p16, const GSrc &g,
                               bool vec, float *m, float *v, size_t n, const AdamwArgs &a, size_t k0, size_t k1,
                               bool last) {
    if (!vec)
        adamw_ss_k<false, 1, R, PH><<<(unsigned)nb, CU_SS_THREADS, 0, cu_stream()>>>(part, carry, p, p16, g, m, v, n,
                                                                                      a, k0, k1, last);
    else if (adamw_unroll() == 2)
        adamw_ss_k<true, 2, R, PH><<<(unsigned)nb, CU_SS_THREADS, 0, cu_stream()>>>(part, carry, p, p16, g, m, v, n,
                                                                                     a, k0, k1, last);
    else
        adamw_ss_k<true, 1, R, PH><<<(unsigned)nb, CU_SS_THREADS, 0, cu_stream()>>>(part, carry, p, p16, g, m, v, n,
                                                                                     a, k0, k1, last);
    CUDA_LAUNCH_CHECK("adamw_sumsq");
}

/* adamw_ss_k over n elements: in one launch, or on the late queue in phases of ADAMW_LATE_ITERS; with sumsq the
 * gradients' sum of squares into *sumsq (cu_sum_partials), without it (adamw on the late queue: the same updates as
 * adamw4_k's, each element's arithmetic the same whichever thread takes it) the partials are left unread */
static void adamw_ss_run(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows, float *m,
                         float *v, size_t n, const AdamwArgs &a) {
    const size_t nb = adamw_ss_blocks(n), stride = nb * CU_SS_THREADS;
    const GSrc gs = gsrc(g, rows);
    const bool vec = vec_ok(p, p16, g, rows, m, v);
    /* each thread's loop: its iterations over quads (vec, the tail in the last phase) or elements */
    const size_t iters = ((vec ? n / 4 : n) + stride - 1) / stride, per = cu_late() ? ADAMW_LATE_ITERS : iters;
    double *part = (double *)cu_scratch(nb * sizeof(double), "adamw_sumsq partials");
    double *carry = per < iters ? (double *)cu_scratch(stride * sizeof(double), "adamw_sumsq running sums") : NULL;
    for (size_t k0 = 0;; k0 += per) {
        const size_t k1 = k0 + per < iters ? k0 + per : iters;
        const bool last = k1 >= iters;
        if (carry && rows) adamw_sumsq_launch<true, true>(part, carry, nb, p, p16, gs, vec, m, v, n, a, k0, k1, last);
        else if (carry) adamw_sumsq_launch<false, true>(part, carry, nb, p, p16, gs, vec, m, v, n, a, k0, k1, last);
        else if (rows) adamw_sumsq_launch<true, false>(part, NULL, nb, p, p16, gs, vec, m, v, n, a, 0, iters, true);
        else adamw_sumsq_launch<false, false>(part, NULL, nb, p, p16, gs, vec, m, v, n, a, 0, iters, true);
        if (last) break;
    }
    if (sumsq) cu_sum_partials(sumsq, part, nb);
    cu_scratch_free(carry);
    cu_scratch_free(part);
}

void cuda_adamw_sumsq(double *sumsq, float *p, uint16_t *p16, const float *g, const GradRows *rows, float *m,
                      float *v, size_t n, double lr, double b1, double b2, double eps, double wd, double bc1,
                      double bc2) {
    if (!n) {
        CUDA_CHECK(cudaMemsetAsync(sumsq, 0, sizeof(double), cu_stream()));
        return;
    }
    const AdamwArgs a = {1.0f, b1, b2, eps, 1.0 - lr * wd, lr / bc1, sqrt(bc2)};
    adamw_ss_run(sumsq, p, p16, g, rows, m, v, n, a);
}

template <bool R>
static void adamw_launch(float *p, uint16_t *p16, const GSrc &g, float *m, float *v, size_t body, size_t n,
                         const AdamwArgs &a) {
    if (body) {
        if (adamw_unroll() == 2)
            adamw4_k<2, R><<<cu_grid(body / 8, 256), 256, 0, cu_stream()>>>(p, p16, g, m, v, body / 4, a);
        else adamw4_k<1, R><<<cu_grid(body / 4, 256), 256, 0, cu_stream()>>>(p, p16, g, m, v, body / 4, a);
        CUDA_LAUNCH_CHECK("adamw");
    }
    if (body < n) {
        adamw_k<R><<<cu_grid(n - body, 256), 256, 0, cu_stream()>>>(p, p16, g, m, v, body, n, a);
        CUDA_LAUNCH_CHECK("adamw");
    }
}

void cuda_adamw(float *p, uint16_t *p16, const float *g, const GradRows *rows, float gscale, float *m, float *v,
                size_t n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2) {
    if (!n) return;
    const AdamwArgs a = {gscale, b1, b2, eps, 1.0 - lr * wd, lr / bc1, sqrt(bc2)};
    if (cu_late()) { /* adamw_sumsq's fixed grid in phases: blocks as short as its (adamw4_k's took up to 8 quads) */
        adamw_ss_run(NULL, p, p16, g, rows, m, v, n, a);
        return;
    }
    const size_t body = vec_ok(p, p16, g, rows, m, v) ? n / 4 * 4 : 0; /* elements the 4-wide kernel takes */
    if (rows) adamw_launch<true>(p, p16, gsrc(g, rows), m, v, body, n, a);
    else adamw_launch<false>(p, p16, gsrc(g, rows), m, v, body, n, a);
}
