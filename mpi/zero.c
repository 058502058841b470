/* zero.c — see zero.h. */
#include "zero.h"
#include "backend.h"
#include <stdlib.h>
#include <string.h>
#include "util.h"

ZeroPlan *zero_plan_create(int stage, int dp, int dp_rank, size_t n, size_t n_pad, const size_t *offsets,
                           const size_t *numels, int nparams) {
    if (n_pad % (size_t)dp || n_pad < n)
        sd_die("zero", "flat buffer of %zu elements (padded %zu) cannot be cut into %d shards", n, n_pad, dp);
    ZeroPlan *z = sd_calloc(1, sizeof *z, "zero plan");
    z->stage = stage;
    z->dp = dp;
    z->dp_rank = dp_rank;
    z->n = n;
    z->n_pad = n_pad;
    z->shard = n_pad / (size_t)dp;
    if (stage == 0) {
        z->own = (Range){0, n};
    } else {
        size_t a = (size_t)dp_rank * z->shard, b = a + z->shard;
        z->own = (Range){a < n ? a : n, b < n ? b : n};
    }
    z->pieces = sd_calloc((size_t)(nparams ? nparams : 1), sizeof(OwnedPiece), "zero pieces");
    for (int i = 0; i < nparams; i++) {
        size_t a = offsets[i], b = offsets[i] + numels[i];
        size_t s = a > z->own.start ? a : z->own.start, e = b < z->own.end ? b : z->own.end;
        if (s >= e) continue;
        z->pieces[z->npieces++] = (OwnedPiece){i, {s, e}, s - a};
    }
    return z;
}

void zero_plan_free(ZeroPlan *z) {
    if (!z) return;
    free(z->pieces);
    free(z);
}

size_t zero_state_elems(const ZeroPlan *z) { return z->stage == 0 ? z->n : z->shard; }

/* one reduce-scatter of the flat range [off, off + n) held in buf: its part in this rank's shard added into acc */
static void reduce_range(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc,
                         size_t *cnt) {
    for (int r = 0; r < z->dp; r++) { /* the range's part in rank r's shard (unclipped: the padding is zero) */
        size_t a = (size_t)r * z->shard, b = a + z->shard;
        size_t s = off > a ? off : a, e = off + n < b ? off + n : b;
        cnt[r] = s < e ? e - s : 0;
    }
    size_t mine = cnt[z->dp_rank], at = off > (size_t)z->dp_rank * z->shard ? off - (size_t)z->dp_rank * z->shard : 0;
    const float *sum = comm_reduce_scatterv_f32(g, GROUP_DP, buf, cnt);
    if (mine && g->be) g->be->add(acc + at, sum, mine);
    for (size_t i = 0; mine && !g->be && i < mine; i++) acc[at + i] += sum[i]; /* host buffers, no backend */
}

void zero_reduce_bucket(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc) {
    if (g->dp == 1) sd_die("zero", "a gradient bucket to reduce without data parallelism");
    size_t *cnt = sd_alloc(sizeof(size_t) * (size_t)z->dp, "bucket counts");
    /* in pieces MPI's int counts can carry (a 405B layer on one rank is 3.2e9 elements); SIMPO_ZERO_PIECE=n
     * (elements) makes them smaller, for tests */
    const char *e = getenv("SIMPO_ZERO_PIECE");
    size_t piece = e && atol(e) > 0 ? (size_t)atol(e) : (size_t)1 << 30;
    for (size_t at = 0; at < n; at += piece)
        reduce_range(g, z, buf + at, off + at, n - at < piece ? n - at : piece, acc, cnt);
    free(cnt);
}

void zero_gather_params(ProcessGrid *g, const ZeroPlan *z, float *params) {
    if (g->dp == 1 || z->stage == 0) return;
    comm_allgather_f32(g, GROUP_DP, params, z->shard);
}

int zero_range_rects(int64_t rows, int64_t cols, size_t start, size_t len, int64_t off[3][2], int64_t cnt[3][2]) {
    (void)rows;
    int k = 0;
    size_t c = (size_t)cols, pos = start, end = start + len;
    if (len == 0) return 0;
    if (pos % c) { /* partial first row */
        size_t take = c - pos % c < end - pos ? c - pos % c : end - pos;
        off[k][0] = (int64_t)(pos / c), off[k][1] = (int64_t)(pos % c), cnt[k][0] = 1, cnt[k][1] = (int64_t)take;
        k++;
        pos += take;
    }
    if (end - pos >= c) { /* whole rows */
        size_t nr = (end - pos) / c;
        off[k][0] = (int64_t)(pos / c), off[k][1] = 0, cnt[k][0] = (int64_t)nr, cnt[k][1] = cols;
        k++;
        pos += nr * c;
    }
    if (pos < end) { /* partial last row */
        off[k][0] = (int64_t)(pos / c), off[k][1] = 0, cnt[k][0] = 1, cnt[k][1] = (int64_t)(end - pos);
        k++;
    }
    return k;
}
