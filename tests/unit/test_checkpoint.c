/* test_checkpoint.c — HDF5 checkpoints: single-rank round trip, simulated multi-rank commit with ZeRO-style
 * partial-row slices, relocation of a step directory (VDS relative sources), error paths and atomicity. */
#define _XOPEN_SOURCE 700
#include "checkpoint.h"
#include "test_util.h"

#include <ftw.h>
#include <hdf5.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_root[256];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}
static void rm_tree(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static char *path2(const char *a, const char *b) { return sd_path_join(a, b); }

static void touch(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* deterministic, distinct, non-trivial fp32 values */
static float val(int tag, size_t i) { return (float)tag * 1000.0f + (float)i * 0.37f - 1.0f / (float)(i + 3); }
static float *make(int tag, size_t n) {
    float *p = sd_alloc(n * sizeof(float), "test");
    for (size_t i = 0; i < n; i++) p[i] = val(tag, i);
    return p;
}

static CkptTensor tensor(const char *name, int ndim, const int64_t *gshape, const int64_t *off, const int64_t *lshape,
                         const float *p, const float *m, const float *v) {
    CkptTensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        t.global_shape[d] = gshape[d];
        t.offset[d] = off[d];
        t.local_shape[d] = lshape[d];
    }
    t.param = p;
    t.exp_avg = m;
    t.exp_avg_sq = v;
    return t;
}

/* ---------------------------------------------------------------- single rank */

static void check_single_reads(const char *step_dir, const float *emb, const float *emb_m, const float *emb_v,
                               const float *norm, const float *norm_m, const float *norm_v, const float *head) {
    CkptReader *r = ckpt_open(step_dir);
    float buf[64];
    int64_t shape[4] = {0}, z[2] = {0, 0}, es[2] = {6, 4}, ns[1] = {4};
    CHECK(ckpt_shape(r, "param", "model.embed_tokens.weight", shape) == 2 && shape[0] == 6 && shape[1] == 4,
          "embed shape");
    CHECK(ckpt_shape(r, "param", "no.such.tensor", shape) == -1, "absent tensor shape -1");
    CHECK(ckpt_shape(r, "exp_avg", "lm_head.weight", shape) == -1, "NULL exp_avg not saved");
    CHECK(ckpt_shape(r, "param", "lm_head.weight", shape) == 2, "lm_head present");
    CHECK(ckpt_shape(r, "param", "empty.weight", shape) == 2 && shape[0] == 0 && shape[1] == 3, "empty tensor");
    int64_t e0[2] = {0, 0}, ec[2] = {0, 3};
    ckpt_read(r, "param", "empty.weight", 2, e0, ec, buf);
    ckpt_read(r, "param", "model.embed_tokens.weight", 2, z, es, buf);
    CHECK(memcmp(buf, emb, 24 * sizeof(float)) == 0, "embed param bit-exact");
    ckpt_read(r, "exp_avg", "model.embed_tokens.weight", 2, z, es, buf);
    CHECK(memcmp(buf, emb_m, 24 * sizeof(float)) == 0, "embed exp_avg bit-exact");
    ckpt_read(r, "exp_avg_sq", "model.embed_tokens.weight", 2, z, es, buf);
    CHECK(memcmp(buf, emb_v, 24 * sizeof(float)) == 0, "embed exp_avg_sq bit-exact");
    ckpt_read(r, "param", "model.norm.weight", 1, z, ns, buf);
    CHECK(memcmp(buf, norm, 4 * sizeof(float)) == 0, "norm param bit-exact");
    ckpt_read(r, "exp_avg", "model.norm.weight", 1, z, ns, buf);
    CHECK(memcmp(buf, norm_m, 4 * sizeof(float)) == 0, "norm exp_avg bit-exact");
    ckpt_read(r, "exp_avg_sq", "model.norm.weight", 1, z, ns, buf);
    CHECK(memcmp(buf, norm_v, 4 * sizeof(float)) == 0, "norm exp_avg_sq bit-exact");
    ckpt_read(r, "param", "lm_head.weight", 2, z, es, buf);
    CHECK(memcmp(buf, head, 24 * sizeof(float)) == 0, "lm_head bit-exact");
    /* sub-slice rows 1..3, cols 1..2 */
    int64_t so[2] = {1, 1}, sc[2] = {3, 2};
    ckpt_read(r, "param", "model.embed_tokens.weight", 2, so, sc, buf);
    int ok = 1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) ok &= memcmp(&buf[i * 2 + j], &emb[(1 + i) * 4 + 1 + j], sizeof(float)) == 0;
    CHECK(ok, "sub-slice bit-exact");
    int64_t o1[1] = {2}, c1[1] = {2};
    ckpt_read(r, "param", "model.norm.weight", 1, o1, c1, buf);
    CHECK(memcmp(buf, norm + 2, 2 * sizeof(float)) == 0, "1-D sub-slice bit-exact");
    int64_t c0[2] = {0, 4};
    ckpt_read(r, "param", "model.norm.weight", 1, o1, c0, buf);  /* empty read is fine */
    ckpt_close(r);
}

static void test_single(void) {
    char *dir = path2(g_root, "single");
    float *emb = make(1, 24), *emb_m = make(2, 24), *emb_v = make(3, 24);
    float *norm = make(4, 4), *norm_m = make(5, 4), *norm_v = make(6, 4), *head = make(7, 24);
    int64_t g2[2] = {6, 4}, z[2] = {0, 0}, g1[1] = {4};
    int64_t g0[2] = {0, 3};
    CkptTensor ts[4] = {
        tensor("model.embed_tokens.weight", 2, g2, z, g2, emb, emb_m, emb_v),
        tensor("model.norm.weight", 1, g1, z, g1, norm, norm_m, norm_v),
        tensor("lm_head.weight", 2, g2, z, g2, head, NULL, NULL),
        tensor("empty.weight", 2, g0, z, g0, norm, NULL, NULL),  /* a zero-element tensor */
    };
    /* a config bigger than HDF5's 64 KiB compact-attribute limit */
    size_t big = 100000;
    char *yaml = sd_alloc(big + 1, "yaml");
    for (size_t i = 0; i < big; i++) yaml[i] = (char)('a' + i % 26);
    yaml[big] = 0;
    CkptMeta meta = {5,    2, 17, 1234, yaml, "{\"hidden_size\": 4, \"name\": \"t\\u00e9st\"}", NULL, 0,
                     123456789012LL, 1.5e22 /* past int64: a double */, 60917, 0xfedcba9876543210ULL};
    char *path = ckpt_save(dir, &meta, ts, 4);
    char *want = path2(dir, "step-00000005");
    CHECK(strcmp(path, want) == 0, "save returns %s", path);
    char *latest = ckpt_find_latest(dir);
    CHECK(latest && strcmp(latest, want) == 0, "find_latest(root) = %s", latest ? latest : "NULL");
    free(latest);
    latest = ckpt_find_latest(want);
    CHECK(latest && strcmp(latest, want) == 0, "find_latest(step dir)");
    free(latest);
    char *idx = path2(want, "index.h5");
    latest = ckpt_find_latest(idx);
    CHECK(latest && strcmp(latest, want) == 0, "find_latest(index.h5)");
    free(latest);
    free(idx);
    char *nx = path2(g_root, "does-not-exist");
    CHECK(ckpt_find_latest(nx) == NULL, "find_latest(missing) NULL");
    free(nx);
    char *lf = path2(dir, "latest");
    size_t len;
    char *txt = sd_read_file(lf, &len);
    CHECK(txt && strcmp(txt, "step-00000005\n") == 0, "latest file content");
    free(txt);
    free(lf);

    CkptReader *r = ckpt_open(path);
    const CkptMeta *m = ckpt_meta(r);
    CHECK(m->step == 5 && m->data_epoch == 2 && m->data_pos == 17 && m->seed == 1234, "meta numbers");
    CHECK(m->tokens_seen == 123456789012LL && m->total_flos == 1.5e22, "meta tokens_seen %lld, total_flos %g",
          (long long)m->tokens_seen, m->total_flos);
    CHECK(strcmp(m->config_yaml, yaml) == 0, "meta config_yaml (100 kB) round-trips");
    CHECK(m->data_pairs == 60917 && m->data_fingerprint == 0xfedcba9876543210ULL, "meta data_pairs %lld, fingerprint "
          "%016llx (all 64 bits)", (long long)m->data_pairs, (unsigned long long)m->data_fingerprint);
    CHECK(strcmp(m->model_config_json, meta.model_config_json) == 0, "meta model_config_json");
    CHECK(m->layout && strcmp(m->layout, "") == 0, "NULL layout stored as empty string");
    ckpt_close(r);
    check_single_reads(path, emb, emb_m, emb_v, norm, norm_m, norm_v, head);

    /* the step directory and the whole root can move: VDS sources are relative to index.h5 */
    char *moved_root = path2(g_root, "single-moved");
    CHECK(rename(dir, moved_root) == 0, "rename root");
    char *moved = ckpt_find_latest(moved_root);
    char *want2 = path2(moved_root, "step-00000005");
    CHECK(moved && strcmp(moved, want2) == 0, "find_latest after move");
    check_single_reads(want2, emb, emb_m, emb_v, norm, norm_m, norm_v, head);
    char *renamed = path2(g_root, "renamed-step");
    CHECK(rename(want2, renamed) == 0, "rename step dir");
    /* run from elsewhere so nothing resolves relative to the working directory */
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    CHECK(chdir("/") == 0, "chdir /");
    check_single_reads(renamed, emb, emb_m, emb_v, norm, norm_m, norm_v, head);
    CHECK(chdir(cwd) == 0, "chdir back");

    free(renamed);
    free(want2);
    free(moved);
    free(moved_root);
    free(path);
    free(want);
    free(yaml);
    free(emb), free(emb_m), free(emb_v), free(norm), free(norm_m), free(norm_v), free(head);
    free(dir);
}

/* ---------------------------------------------------------------- multi rank (simulated) */

/* copies rectangle [r0, r0+nr) x [c0, c0+nc) of a row-major [rows, cols] array */
static float *rect(const float *a, int64_t cols, int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
    float *o = sd_alloc((size_t)(nr * nc) * sizeof(float) + 1, "rect");
    for (int64_t i = 0; i < nr; i++)
        for (int64_t j = 0; j < nc; j++) o[i * nc + j] = a[(r0 + i) * cols + c0 + j];
    return o;
}

typedef struct {
    int rank;
    int64_t r0, c0, nr, nc;
} Rect;

static void test_multi(void) {
    char *dir = path2(g_root, "multi");
    const long step = 12;
    ckpt_prepare(dir, step);
    /* A: [6,3], rows split 2/2/2 across ranks, with optimizer state */
    const char *A = "model.layers.0.mlp.up_proj.weight";
    float *a = make(10, 18), *am = make(11, 18), *av = make(12, 18);
    /* B: [4,5] flattened and cut at elements 7 and 19 (ZeRO): rank 0 holds 0..6 (2 rectangles), rank 1 holds
     * 7..18 (3 rectangles: row 1 cols 2-4, row 2, row 3 cols 0-3), rank 2 holds element 19 */
    const char *B = "model.layers.0.self_attn.o_proj.weight";
    float *b = make(20, 20), *bm = make(21, 20), *bv = make(22, 20);
    Rect br[6] = {{0, 0, 0, 1, 5}, {0, 1, 0, 1, 2}, {1, 1, 2, 1, 3}, {1, 2, 0, 1, 5}, {1, 3, 0, 1, 4}, {2, 3, 4, 1, 1}};
    /* C: [5], only on rank 2, param only */
    const char *C = "model.norm.weight";
    float *c = make(30, 5);
    int64_t ga[2] = {6, 3}, gb[2] = {4, 5}, gc[1] = {5};
    for (int rank = 0; rank < 3; rank++) {
        CkptTensor ts[8];
        float *bufs[24];
        int n = 0, nb = 0;
        int64_t off[2] = {2 * rank, 0}, ls[2] = {2, 3};
        float *p = rect(a, 3, 2 * rank, 0, 2, 3), *m = rect(am, 3, 2 * rank, 0, 2, 3), *v = rect(av, 3, 2 * rank, 0, 2, 3);
        bufs[nb++] = p, bufs[nb++] = m, bufs[nb++] = v;
        ts[n++] = tensor(A, 2, ga, off, ls, p, m, v);
        for (int k = 0; k < 6; k++) {
            if (br[k].rank != rank) continue;
            int64_t o2[2] = {br[k].r0, br[k].c0}, l2[2] = {br[k].nr, br[k].nc};
            float *bp = rect(b, 5, br[k].r0, br[k].c0, br[k].nr, br[k].nc);
            float *bmm = rect(bm, 5, br[k].r0, br[k].c0, br[k].nr, br[k].nc);
            float *bvv = rect(bv, 5, br[k].r0, br[k].c0, br[k].nr, br[k].nc);
            bufs[nb++] = bp, bufs[nb++] = bmm, bufs[nb++] = bvv;
            ts[n++] = tensor(B, 2, gb, o2, l2, bp, bmm, bvv);
        }
        if (rank == 2) {
            int64_t z[1] = {0};
            ts[n++] = tensor(C, 1, gc, z, gc, c, NULL, NULL);
            /* an empty slice (a ZeRO piece of zero elements) is harmless */
            int64_t e[2] = {0, 3}, eo[2] = {6, 0};
            ts[n++] = tensor(A, 2, ga, eo, e, p, NULL, NULL);
        }
        ckpt_write_rank(dir, step, rank, ts, n);
        for (int i = 0; i < nb; i++) free(bufs[i]);
    }
    CkptMeta meta = {step, 0, 3, 7, "x: 1\n", "{}", "dp3-pp1-tp1-zero1", 0, 0, 0, 0, 0};
    char *path = ckpt_commit(dir, &meta, 3);
    CkptReader *r = ckpt_open(path);
    CHECK(strcmp(ckpt_meta(r)->layout, "dp3-pp1-tp1-zero1") == 0, "layout");
    float buf[32];
    int64_t z[2] = {0, 0};
    ckpt_read(r, "param", A, 2, z, ga, buf);
    CHECK(memcmp(buf, a, 18 * sizeof(float)) == 0, "A param assembled from 3 ranks");
    ckpt_read(r, "exp_avg_sq", A, 2, z, ga, buf);
    CHECK(memcmp(buf, av, 18 * sizeof(float)) == 0, "A exp_avg_sq assembled");
    ckpt_read(r, "param", B, 2, z, gb, buf);
    CHECK(memcmp(buf, b, 20 * sizeof(float)) == 0, "B param assembled from 6 rectangles");
    ckpt_read(r, "exp_avg", B, 2, z, gb, buf);
    CHECK(memcmp(buf, bm, 20 * sizeof(float)) == 0, "B exp_avg assembled");
    ckpt_read(r, "exp_avg_sq", B, 2, z, gb, buf);
    CHECK(memcmp(buf, bv, 20 * sizeof(float)) == 0, "B exp_avg_sq assembled");
    ckpt_read(r, "param", C, 1, z, gc, buf);
    CHECK(memcmp(buf, c, 5 * sizeof(float)) == 0, "C param");
    int64_t sh[4];
    CHECK(ckpt_shape(r, "exp_avg", C, sh) == -1, "C has no exp_avg");
    /* a column slice spanning all ranks: B cols 3..4, all rows (as a TP rank of another layout would read) */
    int64_t co[2] = {0, 3}, cc[2] = {4, 2};
    ckpt_read(r, "param", B, 2, co, cc, buf);
    int ok = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) ok &= memcmp(&buf[i * 2 + j], &b[i * 5 + 3 + j], sizeof(float)) == 0;
    CHECK(ok, "B column slice across ranks");
    int64_t ao[2] = {1, 1}, ac[2] = {4, 1};
    ckpt_read(r, "exp_avg", A, 2, ao, ac, buf);
    ok = 1;
    for (int i = 0; i < 4; i++) ok &= memcmp(&buf[i], &am[(1 + i) * 3 + 1], sizeof(float)) == 0;
    CHECK(ok, "A column slice across ranks");
    ckpt_close(r);
    free(path);
    free(a), free(am), free(av), free(b), free(bm), free(bv), free(c);
    free(dir);
}

/* ---------------------------------------------------------------- errors */

typedef struct {
    const char *dir;
    long step;
    int world;
} CommitArg;
static void do_commit(void *p) {
    CommitArg *a = p;
    CkptMeta meta = {a->step, 0, 0, 0, "", "", "", 0, 0, 0, 0, 0};
    char *path = ckpt_commit(a->dir, &meta, a->world);
    free(path);
}

typedef struct {
    CkptReader *r;
    const char *group, *name;
    int ndim;
    int64_t off[2], cnt[2];
} ReadArg;
static void do_read(void *p) {
    ReadArg *a = p;
    float buf[64];
    ckpt_read(a->r, a->group, a->name, a->ndim, a->off, a->cnt, buf);
}
static void do_open(void *p) { ckpt_close(ckpt_open(p)); }

static void test_errors(void) {
    char *dir = path2(g_root, "errors");
    float data[16];
    for (int i = 0; i < 16; i++) data[i] = (float)i;
    int64_t g4[1] = {4}, z[1] = {0}, o2[1] = {2}, l2[1] = {2}, l3[1] = {3};

    /* missing rank file */
    ckpt_prepare(dir, 1);
    CkptTensor t0 = tensor("miss.weight", 1, g4, z, l2, data, NULL, NULL);
    CkptTensor t2 = tensor("miss.weight", 1, g4, o2, l2, data, NULL, NULL);
    ckpt_write_rank(dir, 1, 0, &t0, 1);
    ckpt_write_rank(dir, 1, 2, &t2, 1);
    CommitArg ca = {dir, 1, 3};
    CHECK(expect_die(do_commit, &ca, "rank-00001.h5"), "missing rank file named");
    CHECK(strstr(t_die_msg, "missing") != NULL, "says missing");

    /* overlapping slices: rank 0 holds [0,3), rank 1 holds [2,4) */
    ckpt_prepare(dir, 2);
    CkptTensor ov0 = tensor("overlap.weight", 1, g4, z, l3, data, NULL, NULL);
    CkptTensor ov1 = tensor("overlap.weight", 1, g4, o2, l2, data, NULL, NULL);
    ckpt_write_rank(dir, 2, 0, &ov0, 1);
    ckpt_write_rank(dir, 2, 1, &ov1, 1);
    ca = (CommitArg){dir, 2, 2};
    CHECK(expect_die(do_commit, &ca, "overlap.weight"), "overlap names the tensor");
    CHECK(strstr(t_die_msg, "overlap ") != NULL || strstr(t_die_msg, "overlap (") != NULL, "says overlap");

    /* a gap: [0,3) of 4 */
    ckpt_prepare(dir, 3);
    CkptTensor gp = tensor("gap.weight", 1, g4, z, l3, data, NULL, NULL);
    CkptTensor ok1 = tensor("fine.weight", 1, g4, z, g4, data, NULL, NULL);
    CkptTensor two[2] = {ok1, gp};
    ckpt_write_rank(dir, 3, 0, two, 2);
    ca = (CommitArg){dir, 3, 1};
    CHECK(expect_die(do_commit, &ca, "gap.weight"), "gap names the tensor");
    CHECK(strstr(t_die_msg, "missing") != NULL, "says a part is missing");

    /* same tensor written with disagreeing global shapes */
    ckpt_prepare(dir, 4);
    int64_t g5[1] = {5};
    CkptTensor s0 = tensor("shape.weight", 1, g4, z, l2, data, NULL, NULL);
    CkptTensor s1 = tensor("shape.weight", 1, g5, o2, l3, data, NULL, NULL);
    ckpt_write_rank(dir, 4, 0, &s0, 1);
    ckpt_write_rank(dir, 4, 1, &s1, 1);
    ca = (CommitArg){dir, 4, 2};
    CHECK(expect_die(do_commit, &ca, "shape.weight"), "global shape mismatch names the tensor");
    /* an exp_avg covering only part of a tensor whose param is complete */
    ckpt_prepare(dir, 5);
    CkptTensor e0 = tensor("opt.weight", 1, g4, z, l2, data, data, NULL);
    CkptTensor e1 = tensor("opt.weight", 1, g4, o2, l2, data, NULL, NULL);
    CkptTensor ee[2] = {e0, e1};
    ckpt_write_rank(dir, 5, 0, ee, 2);
    ca = (CommitArg){dir, 5, 1};
    CHECK(expect_die(do_commit, &ca, "exp_avg/opt.weight"), "partial exp_avg names group and tensor");
    /* a rank file that is not HDF5 */
    ckpt_prepare(dir, 8);
    char *tmp8 = path2(dir, "step-00000008.tmp");
    char *junk = path2(tmp8, "rank-00000.h5");
    touch(junk, "garbage");
    ca = (CommitArg){dir, 8, 1};
    CHECK(expect_die(do_commit, &ca, "step-00000008.tmp/rank-00000.h5"), "unreadable rank file named");
    free(junk);
    free(tmp8);
    /* none of the failed commits became a checkpoint */
    CHECK(ckpt_find_latest(dir) == NULL, "no complete checkpoint after failed commits");

    /* ckpt_open on a directory without index.h5 */
    char *tmp1 = path2(dir, "step-00000001.tmp");
    CHECK(expect_die(do_open, tmp1, "step-00000001.tmp/index.h5"), "open without index names it");
    /* ckpt_open on a non-HDF5 index */
    char *bad = path2(dir, "bad");
    sd_mkdirs(bad);
    char *badidx = path2(bad, "index.h5");
    touch(badidx, "not hdf5\n");
    CHECK(expect_die(do_open, bad, "bad/index.h5"), "open of a non-HDF5 index names it");

    /* reads that must die */
    ckpt_prepare(dir, 6);
    CkptTensor good = tensor("good.weight", 1, g4, z, g4, data, NULL, NULL);
    ckpt_write_rank(dir, 6, 0, &good, 1);
    ca = (CommitArg){dir, 6, 1};
    do_commit(&ca);
    char *step6 = path2(dir, "step-00000006");
    CkptReader *r = ckpt_open(step6);
    ReadArg ra = {r, "param", "absent.weight", 1, {0, 0}, {4, 0}};
    CHECK(expect_die(do_read, &ra, "absent.weight"), "read of an absent tensor");
    ra = (ReadArg){r, "exp_avg", "good.weight", 1, {0, 0}, {4, 0}};
    CHECK(expect_die(do_read, &ra, "exp_avg/good.weight"), "read of an absent group");
    ra = (ReadArg){r, "param", "good.weight", 1, {2, 0}, {3, 0}};
    CHECK(expect_die(do_read, &ra, "good.weight"), "read out of range");
    CHECK(strstr(t_die_msg, "outside") != NULL, "says outside");
    ra = (ReadArg){r, "param", "good.weight", 1, {-1, 0}, {2, 0}};
    CHECK(expect_die(do_read, &ra, "good.weight"), "read with negative offset");
    ra = (ReadArg){r, "param", "good.weight", 2, {0, 0}, {1, 1}};
    CHECK(expect_die(do_read, &ra, "dimensions"), "read with the wrong ndim");
    float buf[4];
    int64_t o[1] = {0}, c4[1] = {4};
    ckpt_read(r, "param", "good.weight", 1, o, c4, buf);
    CHECK(memcmp(buf, data, sizeof buf) == 0, "reader still works after the failures");
    ckpt_close(r);

    /* /meta without tokens_seen and total_flos (an older checkpoint's): both 0; a negative or non-float total_flos
     * is an error naming the file and the attributes */
    char *idx6 = path2(step6, "index.h5");
    hid_t f6 = H5Fopen(idx6, H5F_ACC_RDWR, H5P_DEFAULT), m6 = H5Gopen2(f6, "meta", H5P_DEFAULT);
    CHECK(f6 >= 0 && m6 >= 0 && H5Adelete(m6, "tokens_seen") >= 0 && H5Adelete(m6, "total_flos") >= 0 &&
              H5Adelete(m6, "data_pairs") >= 0 && H5Adelete(m6, "data_fingerprint") >= 0,
          "attributes deleted");
    H5Gclose(m6), H5Fclose(f6);
    r = ckpt_open(step6);
    CHECK(ckpt_meta(r)->tokens_seen == 0 && ckpt_meta(r)->total_flos == 0.0 && ckpt_meta(r)->data_pairs == 0 &&
              ckpt_meta(r)->data_fingerprint == 0,
          "older checkpoint: counters and the data's fingerprint 0 (nothing to compare)");
    ckpt_close(r);
    f6 = H5Fopen(idx6, H5F_ACC_RDWR, H5P_DEFAULT), m6 = H5Gopen2(f6, "meta", H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR), at = H5Acreate2(m6, "total_flos", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    double neg = -1.0;
    H5Awrite(at, H5T_NATIVE_DOUBLE, &neg), H5Aclose(at), H5Sclose(sp), H5Gclose(m6), H5Fclose(f6);
    CHECK(expect_die(do_open, step6, "step-00000006/index.h5:/meta") && strstr(t_die_msg, "total_flos (-1)"),
          "negative total_flos named: %s", t_die_msg);
    f6 = H5Fopen(idx6, H5F_ACC_RDWR, H5P_DEFAULT), m6 = H5Gopen2(f6, "meta", H5P_DEFAULT);
    H5Adelete(m6, "total_flos");
    sp = H5Screate(H5S_SCALAR), at = H5Acreate2(m6, "total_flos", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    long long one = 1;
    H5Awrite(at, H5T_NATIVE_LLONG, &one), H5Aclose(at), H5Sclose(sp), H5Gclose(m6), H5Fclose(f6);
    CHECK(expect_die(do_open, step6, "attribute 'total_flos' must hold one floating-point number"),
          "integer total_flos named: %s", t_die_msg);
    f6 = H5Fopen(idx6, H5F_ACC_RDWR, H5P_DEFAULT), m6 = H5Gopen2(f6, "meta", H5P_DEFAULT);
    H5Adelete(m6, "total_flos"), H5Gclose(m6), H5Fclose(f6); /* readable again for the check below */
    free(idx6);

    /* a rank file deleted after commit is caught at open, not read as fill values */
    char *rk = path2(step6, "rank-00000.h5");
    remove(rk);
    CHECK(expect_die(do_open, step6, "rank-00000.h5"), "missing rank file at open");
    free(rk);

    free(step6);
    free(badidx);
    free(bad);
    free(tmp1);
    free(dir);
}

/* ---------------------------------------------------------------- atomicity */

static void save_one(const char *dir, long step, float *data) {
    int64_t g[1] = {4}, z[1] = {0};
    CkptTensor t = tensor("w", 1, g, z, g, data, data, data);
    CkptMeta meta = {step, 0, 0, 0, "", "", "dp1-pp1-tp1-zero0", 0, 0, 0, 0, 0};
    free(ckpt_save(dir, &meta, &t, 1));
}

typedef struct {
    const char *dir;
    float *data;
} WriteArg;
static void do_write_rank(void *p) {
    WriteArg *a = p;
    int64_t g[1] = {4}, z[1] = {0};
    CkptTensor t = tensor("w", 1, g, z, g, a->data, NULL, NULL);
    ckpt_write_rank(a->dir, 30, 0, &t, 1);
}

static void test_atomic(void) {
    char *dir = path2(g_root, "atomic");
    float data[4] = {1, 2, 3, 4};
    save_one(dir, 1, data);
    char *s1 = path2(dir, "step-00000001"), *s2 = path2(dir, "step-00000002");
    /* step 2 prepared and written but not committed: still step 1 */
    ckpt_prepare(dir, 2);
    int64_t g[1] = {4}, z[1] = {0};
    CkptTensor t = tensor("w", 1, g, z, g, data, NULL, NULL);
    ckpt_write_rank(dir, 2, 0, &t, 1);
    char *l = ckpt_find_latest(dir);
    CHECK(l && strcmp(l, s1) == 0, "uncommitted step is not the latest (%s)", l ? l : "NULL");
    free(l);
    /* even without `latest`, the scan ignores the .tmp, even one that has an index.h5 */
    char *lf = path2(dir, "latest");
    remove(lf);
    char *stale = path2(dir, "step-00000009.tmp");
    sd_mkdirs(stale);
    char *sidx = path2(stale, "index.h5");
    touch(sidx, "x");
    l = ckpt_find_latest(dir);
    CHECK(l && strcmp(l, s1) == 0, "scan ignores .tmp dirs (%s)", l ? l : "NULL");
    free(l);
    /* ckpt_prepare removes a stale .tmp of the same step */
    ckpt_prepare(dir, 9);
    CHECK(!sd_file_exists(sidx), "stale .tmp content removed by prepare");
    CHECK(sd_dir_exists(stale), "fresh .tmp created");
    /* commit step 2: `latest` names it */
    CkptMeta meta = {2, 0, 0, 0, "", "", "", 0, 0, 0, 0, 0};
    char *p = ckpt_commit(dir, &meta, 1);
    CHECK(strcmp(p, s2) == 0, "commit returns step 2");
    free(p);
    size_t len;
    char *txt = sd_read_file(lf, &len);
    CHECK(txt && strcmp(txt, "step-00000002\n") == 0, "latest names step 2");
    free(txt);
    l = ckpt_find_latest(dir);
    CHECK(l && strcmp(l, s2) == 0, "find_latest = step 2");
    free(l);
    /* `latest` naming a vanished step falls back to the scan */
    touch(lf, "step-00000077\n");
    l = ckpt_find_latest(dir);
    CHECK(l && strcmp(l, s2) == 0, "dangling latest falls back to scan");
    free(l);
    /* `latest` is trusted over the scan when valid (older step named explicitly) */
    touch(lf, "step-00000001\n");
    l = ckpt_find_latest(dir);
    CHECK(l && strcmp(l, s1) == 0, "valid latest is used");
    free(l);
    /* re-saving an existing step replaces it */
    float d2[4] = {5, 6, 7, 8};
    save_one(dir, 2, d2);
    CkptReader *r = ckpt_open(s2);
    float buf[4];
    ckpt_read(r, "exp_avg", "w", 1, z, g, buf);
    CHECK(memcmp(buf, d2, sizeof buf) == 0, "re-saved step has the new data");
    ckpt_close(r);

    /* fault injection: the write dies, the previous checkpoint stays the latest */
    ckpt_prepare(dir, 30);
    setenv("SIMPO_CKPT_FAIL_AFTER_BYTES", "0", 1);
    WriteArg wa = {dir, data};
    CHECK(expect_die(do_write_rank, &wa, "injected write failure"), "injected write failure");
    setenv("SIMPO_CKPT_FAIL_AFTER_BYTES", "1000000000", 1);
    do_write_rank(&wa);
    CHECK(1, "a large budget does not fail");
    unsetenv("SIMPO_CKPT_FAIL_AFTER_BYTES");
    l = ckpt_find_latest(dir);
    CHECK(l && strcmp(l, s2) == 0, "latest unchanged after a failed save");
    free(l);

    free(sidx);
    free(stale);
    free(lf);
    free(s1);
    free(s2);
    free(dir);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/simpo_ckpt_XXXXXX");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_single();
    test_multi();
    test_errors();
    test_atomic();
    rm_tree(g_root);
    TEST_END();
}
