/* embed.cu — the vocabulary-sliced token embedding, forward and (deterministic) backward.
 *
 * Forward: one block per row copies W[ids[n] - V_off] or writes zeros when the id lies outside the slice.
 * Backward without atomics: the ids are read back to the host and grouped by embedding row (a sort of
 * (row, token) pairs, so each group lists its tokens in ascending order); one block per touched row then adds
 * that group's dout rows into dW one token after another, exactly the order of the CPU reference, so the
 * result is bitwise the CPU's (fp32 adds, no contraction possible). Costs one device->host copy of N ids and
 * one host->device copy of the grouping per call (once per micro-batch). */
#include <stdlib.h>
#include "cuda_common.cuh"

enum { EMB_THREADS = 256 };

__global__ void embed_fwd_k(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        float *o = out + n * (size_t)C;
        int r = ids[n] - V_off;
        if (r >= 0 && r < V_loc) {
            const float *w = W + (size_t)r * C;
            for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = w[c];
        } else {
            for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = 0.0f;
        }
    }
}

void cuda_embed_fwd(float *out, const int *ids, const float *W, size_t N, int C, int V_off, int V_loc) {
    if (!N || C <= 0) return;
    unsigned grid = N < 65536 ? (unsigned)N : 65536u;
    embed_fwd_k<<<grid, EMB_THREADS, 0, cu_stream()>>>(out, ids, W, N, C, V_off, V_loc);
    CUDA_LAUNCH_CHECK("embed_fwd");
}

/* group u: embedding row rows[u] gets the dout rows tok[start[u] .. start[u+1]) (ascending token order) */
__global__ void embed_bwd_k(float *dW, const float *dout, const int *rows, const int *start, const int *tok,
                            int C) {
    int u = blockIdx.x, c = blockIdx.y * EMB_THREADS + threadIdx.x;
    if (c >= C) return;
    float *d = dW + (size_t)rows[u] * C + c;
    float acc = *d;
    for (int t = start[u]; t < start[u + 1]; t++) acc += dout[(size_t)tok[t] * C + c];
    *d = acc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void cuda_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc) {
    if (!N || C <= 0 || V_loc <= 0) return;
    if (N > (size_t)INT32_MAX) sd_die("cuda", "embed_bwd: %zu rows exceed the 2^31 this kernel indexes", N);
    int *h_ids = (int *)sd_alloc(N * sizeof(int), "embed_bwd ids");
    cu_download(h_ids, ids, N * sizeof(int));
    uint64_t *key = (uint64_t *)sd_alloc(N * sizeof(uint64_t), "embed_bwd keys");
    size_t m = 0;
    for (size_t n = 0; n < N; n++) {
        int r = h_ids[n] - V_off;
        if (r >= 0 && r < V_loc) key[m++] = ((uint64_t)(uint32_t)r << 32) | (uint64_t)n;
    }
    free(h_ids);
    if (!m) {
        free(key);
        return;
    }
    qsort(key, m, sizeof *key, cmp_u64);
    size_t U = 0; /* touched rows */
    for (size_t i = 0; i < m; i++) U += i == 0 || (key[i] >> 32) != (key[i - 1] >> 32);
    /* one upload: rows[U], start[U + 1], tok[m] */
    size_t words = 2 * U + 1 + m;
    int *pack = (int *)sd_alloc(words * sizeof(int), "embed_bwd groups");
    int *rows = pack, *start = pack + U, *tok = pack + 2 * U + 1;
    for (size_t i = 0, u = 0; i < m; i++) {
        if (i == 0 || (key[i] >> 32) != (key[i - 1] >> 32)) {
            rows[u] = (int)(key[i] >> 32);
            start[u++] = (int)i;
        }
        tok[i] = (int)(key[i] & 0xffffffffu);
    }
    start[U] = (int)m;
    free(key);
    int *d_pack = (int *)cu_scratch(words * sizeof(int), "embed_bwd groups");
    cu_upload(d_pack, pack, words * sizeof(int));
    free(pack);
    dim3 grid((unsigned)U, (unsigned)((C + EMB_THREADS - 1) / EMB_THREADS));
    embed_bwd_k<<<grid, EMB_THREADS, 0, cu_stream()>>>(dW, dout, d_pack, d_pack + U, d_pack + 2 * U + 1, C);
    CUDA_LAUNCH_CHECK("embed_bwd");
    cu_scratch_free(d_pack);
}
