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

/* starts one reduce-scatter of the flat range [off, off + n) held in buf (piece k of r): its part in this rank's
 * shard to be added into acc */
static void reduce_range(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc,
                         size_t *cnt, ZeroBucketReq *r) {
    for (int q = 0; q < z->dp; q++) { /* the range's part in rank q's shard (unclipped: the padding is zero) */
        size_t a = (size_t)q * z->shard, b = a + z->shard;
        size_t s = off > a ? off : a, e = off + n < b ? off + n : b;
        cnt[q] = s < e ? e - s : 0;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 4;
        r->req = sd_realloc(r->req, sizeof(CommReq) * (size_t)cap, "bucket requests");
        memset(r->req + r->cap, 0, sizeof(CommReq) * (size_t)(cap - r->cap));
        r->sum = sd_realloc(r->sum, sizeof(float *) * (size_t)cap, "bucket requests");
        r->acc_at = sd_realloc(r->acc_at, sizeof(float *) * (size_t)cap, "bucket requests");
        r->mine = sd_realloc(r->mine, sizeof(size_t) * (size_t)cap, "bucket requests");
        r->cap = cap;
    }
    int k = r->n++;
    size_t at = off > (size_t)z->dp_rank * z->shard ? off - (size_t)z->dp_rank * z->shard : 0;
    r->mine[k] = cnt[z->dp_rank], r->acc_at[k] = acc + at;
    r->sum[k] = comm_ireduce_scatterv_f32(g, GROUP_DP, buf, cnt, &r->req[k]);
}

void zero_reduce_bucket_start(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc,
                              ZeroBucketReq *r) {
    if (g->dp == 1) sd_die("zero", "a gradient bucket to reduce without data parallelism");
    if (r->n) sd_die("zero", "a bucket's reduce-scatter started while its request is in flight");
    size_t *cnt = sd_alloc(sizeof(size_t) * (size_t)z->dp, "bucket counts");
    /* in pieces MPI's int counts can carry (a 405B layer on one rank is 3.2e9 elements); SIMPO_ZERO_PIECE=n
     * (elements) makes them smaller, for tests */
    const char *e = getenv("SIMPO_ZERO_PIECE");
    size_t piece = e && atol(e) > 0 ? (size_t)atol(e) : (size_t)1 << 30;
    for (size_t at = 0; at < n; at += piece)
        reduce_range(g, z, buf + at, off + at, n - at < piece ? n - at : piece, acc, cnt, r);
    free(cnt);
}

void zero_reduce_bucket_wait(ProcessGrid *g, ZeroBucketReq *r) {
    for (int k = 0; k < r->n; k++) {
        comm_wait(&r->req[k]);
        size_t mine = r->mine[k];
        if (mine && g->be) g->be->add(r->acc_at[k], r->sum[k], mine);
        for (size_t i = 0; mine && !g->be && i < mine; i++) r->acc_at[k][i] += r->sum[k][i]; /* host buffers */
    }
    r->n = 0;
}

void zero_bucket_req_free(ZeroBucketReq *r) {
    for (int k = 0; k < r->n; k++) comm_wait(&r->req[k]);
    free(r->req), free(r->sum), free(r->mine), free(r->acc_at);
    memset(r, 0, sizeof *r);
}

void zero_reduce_bucket(ProcessGrid *g, const ZeroPlan *z, float *buf, size_t off, size_t n, float *acc) {
    ZeroBucketReq r = {0};
    zero_reduce_bucket_start(g, z, buf, off, n, acc, &r);
    zero_reduce_bucket_wait(g, &r);
    zero_bucket_req_free(&r);
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
