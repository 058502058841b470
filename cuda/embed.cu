/* embed.cu — the vocabulary-sliced token embedding, forward and (deterministic) backward.
 *
 * Forward: one block per row copies W[ids[n] - V_off] or writes zeros when the id lies outside the slice.
 * Backward without atomics: the ids are grouped by embedding row (a sort of (row, token) pairs, so each group
 * lists its tokens in ascending order); one block per touched row then adds that group's dout rows into dW one
 * token after another, exactly the order of the CPU reference, so the result is bitwise the CPU's (fp32 adds, no
 * contraction possible). Up to EMB_SORT_MAX tokens the grouping runs on the device (one block: a bitonic sort of
 * the keys in shared memory, then the groups by a block scan), so the stream never waits for the host; the
 * accumulation grid is sized for N groups and the blocks past the real count return. Longer micro-batches read the
 * ids back and sort them on the host (one device->host and one host->device copy per call). */
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


enum { EMB_SORT_THREADS = 1024, EMB_SORT_MAX = 16384 };

/* The grouping of N ids, as both paths lay it out: pack = [U][rows: N][start: N + 1][tok: N], U touched rows; group
 * u: embedding row rows[u] gets the dout rows tok[start[u] .. start[u + 1]) (ascending token order); start[U] = the
 * tokens inside the slice. */
static size_t embed_pack_ints(size_t N) { return 3 * N + 2; }

/* the grouping on the device, pack as above. One block of EMB_SORT_THREADS; P (a power of two >= N and >=
 * EMB_SORT_THREADS) keys of 8 bytes and 2 x EMB_SORT_THREADS ints of dynamic shared memory. */
__global__ void __launch_bounds__(EMB_SORT_THREADS) embed_group_k(int *pack, const int *ids, int N, int P,
                                                                  int V_off, int V_loc) {
    extern __shared__ __align__(16) unsigned char emb_smem[];
    unsigned long long *key = (unsigned long long *)emb_smem;
    int *cnt = (int *)(key + P), *val = cnt + EMB_SORT_THREADS;
    const int t = threadIdx.x;
    const unsigned long long NONE = ~0ull; /* outside the slice, or padding: sorts last */
    for (int i = t; i < P; i += EMB_SORT_THREADS) {
        unsigned long long k = NONE;
        if (i < N) {
            const int r = ids[i] - V_off;
            if (r >= 0 && r < V_loc) k = (unsigned long long)(unsigned)r << 32 | (unsigned)i;
        }
        key[i] = k;
    }
    __syncthreads();
    for (int size = 2; size <= P; size <<= 1) /* bitonic sort, ascending (the keys are distinct) */
        for (int stride = size / 2; stride > 0; stride >>= 1) {
            for (int i = t; i < P / 2; i += EMB_SORT_THREADS) {
                const int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
                const unsigned long long a = key[lo], b = key[hi];
                if ((a > b) == ((lo & size) == 0)) key[lo] = b, key[hi] = a;
            }
            __syncthreads();
        }
    /* thread t owns keys [t E, t E + E): its group starts and valid keys, then a block scan of the starts */
    const int E = P / EMB_SORT_THREADS, i0 = t * E;
    int c = 0, v = 0;
    for (int i = i0; i < i0 + E; i++)
        if (key[i] != NONE) v++, c += i == 0 || key[i] >> 32 != key[i - 1] >> 32;
    cnt[t] = c, val[t] = v;
    __syncthreads();
    if (t == 0) { /* exclusive prefix sums, in order (1024 adds) */
        int sc = 0, sv = 0;
        for (int j = 0; j < EMB_SORT_THREADS; j++) {
            const int a = cnt[j], b = val[j];
            cnt[j] = sc, val[j] = sv;
            sc += a, sv += b;
        }
        pack[0] = sc;                    /* U */
        pack[1 + N + sc] = sv;           /* start[U] = m */
    }
    __syncthreads();
    int *rows = pack + 1, *start = rows + N, *tok = start + N + 1;
    int u = cnt[t];
    for (int i = i0; i < i0 + E; i++) {
        if (key[i] == NONE) continue;
        if (i == 0 || key[i] >> 32 != key[i - 1] >> 32) rows[u] = (int)(key[i] >> 32), start[u++] = i;
        tok[i] = (int)(key[i] & 0xffffffffu);
    }
}

/* block (u, column block): group u of pack added into its row of dW; blocks past U return (the device grouping's
 * grid is sized for N groups) */
__global__ void embed_bwd_k(float *dW, const float *dout, const int *pack, int N, int C) {
    const int u = blockIdx.x, c = blockIdx.y * EMB_THREADS + threadIdx.x;
    if (u >= pack[0] || c >= C) return;
    const int *rows = pack + 1, *start = rows + N, *tok = start + N + 1;
    float *d = dW + (size_t)rows[u] * C + c;
    float acc = *d;
    for (int t = start[u]; t < start[u + 1]; t++) acc += dout[(size_t)tok[t] * C + c];
    *d = acc;
}

/* embed_bwd_k over `groups` blocks of groups (U, or N when only the device knows U) */
static void embed_bwd_launch(float *dW, const float *dout, const int *pack, size_t groups, size_t N, int C) {
    dim3 grid((unsigned)groups, (unsigned)((C + EMB_THREADS - 1) / EMB_THREADS));
    embed_bwd_k<<<grid, EMB_THREADS, 0, cu_stream()>>>(dW, dout, pack, (int)N, C);
    CUDA_LAUNCH_CHECK("embed_bwd");
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void cuda_embed_bwd(float *dW, const float *dout, const int *ids, size_t N, int C, int V_off, int V_loc) {
    if (!N || C <= 0 || V_loc <= 0) return;
    if (N > (size_t)INT32_MAX) sd_die("cuda", "embed_bwd: %zu rows exceed the 2^31 this kernel indexes", N);
    if (N <= EMB_SORT_MAX) { /* the grouping on the device: no wait for the host */
        int P = EMB_SORT_THREADS;
        while ((size_t)P < N) P *= 2;
        const size_t smem = (size_t)P * 8 + 2 * EMB_SORT_THREADS * sizeof(int);
        static size_t opted;
        if (smem > opted) {
            CUDA_CHECK(cudaFuncSetAttribute((const void *)embed_group_k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            (int)smem));
            opted = smem;
        }
        int *pack = (int *)cu_scratch(embed_pack_ints(N) * sizeof(int), "embed_bwd groups");
        embed_group_k<<<1, EMB_SORT_THREADS, smem, cu_stream()>>>(pack, ids, (int)N, P, V_off, V_loc);
        CUDA_LAUNCH_CHECK("embed_bwd (grouping)");
        embed_bwd_launch(dW, dout, pack, N, N, C);
        cu_scratch_free(pack);
        return;
    }
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
    /* the same layout as the device grouping's, U known here */
    int *pack = (int *)sd_alloc(embed_pack_ints(N) * sizeof(int), "embed_bwd groups");
    int *rows = pack + 1, *start = rows + N, *tok = start + N + 1;
    size_t U = 0; /* touched rows */
    for (size_t i = 0; i < m; i++) {
        if (i == 0 || (key[i] >> 32) != (key[i - 1] >> 32)) {
            rows[U] = (int)(key[i] >> 32);
            start[U++] = (int)i;
        }
        tok[i] = (int)(key[i] & 0xffffffffu);
    }
    pack[0] = (int)U;
    start[U] = (int)m;
    free(key);
    int *d_pack = (int *)cu_scratch(embed_pack_ints(N) * sizeof(int), "embed_bwd groups");
    cu_upload(d_pack, pack, embed_pack_ints(N) * sizeof(int));
    free(pack);
    embed_bwd_launch(dW, dout, d_pack, U, N, C);
    cu_scratch_free(d_pack);
}
