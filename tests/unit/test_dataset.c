/* test_dataset.c — the HDF5 pairs dataset: written from JSONL and read back it gives the same pairs (ids,
 * lengths, lines, reference log-probs) and so the same micro-batches; damaged files are errors naming the file and
 * the dataset, never a read past a buffer. */
#include <hdf5.h>
#include "pairs.h"
#include "test_util.h"

static char tmpdir[] = "/tmp/sd_dataset_XXXXXX";

static bool same_ids(const int *a, const int *b, int n) { return n == 0 || !memcmp(a, b, sizeof(int) * (size_t)n); }

static void round_trip(void) {
    char *src = fixture_path("tiny-a/pairs.jsonl");
    PairSet *a = pairs_load_jsonl(src, 0);
    char *h5 = sd_path_join(tmpdir, "pairs.h5");
    pairs_write_h5(a, h5, "tok-dir", "ids");
    CHECK(pairs_is_h5(h5), "written file has the HDF5 signature");
    CHECK(!pairs_is_h5(src), "JSONL is not HDF5");
    char *tmp = sd_path_join(tmpdir, "pairs.h5.tmp");
    CHECK(!sd_file_exists(tmp), "no temporary left");
    PairSet *b = pairs_load_h5(h5, 1000);
    CHECK(b->n == a->n, "pair count %zu vs %zu", b->n, a->n);
    CHECK(b->all_have_ref == a->all_have_ref && a->all_have_ref, "reference log-probs kept");
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        const Pair *p = &a->pairs[i], *q = &b->pairs[i];
        CHECK(p->n_prompt == q->n_prompt && p->n_chosen == q->n_chosen && p->n_rejected == q->n_rejected,
              "pair %zu lengths", i);
        CHECK(same_ids(p->prompt, q->prompt, p->n_prompt) && same_ids(p->chosen, q->chosen, p->n_chosen) &&
                  same_ids(p->rejected, q->rejected, p->n_rejected),
              "pair %zu ids", i);
        CHECK(p->line == q->line, "pair %zu source line %d vs %d", i, p->line, q->line);
        CHECK(p->ref_chosen_logp == q->ref_chosen_logp && p->ref_rejected_logp == q->ref_rejected_logp,
              "pair %zu reference log-probs bit-equal", i);
    }
    /* the same micro-batch from both */
    size_t idx[3] = {4, 0, 2};
    MicroBatch *ma = microbatch_pack(a, idx, 3), *mb = microbatch_pack(b, idx, 3);
    CHECK(ma->Ntok == mb->Ntok && !memcmp(ma->ids, mb->ids, sizeof(int) * ma->Ntok) &&
              !memcmp(ma->targets, mb->targets, sizeof(int) * ma->Ntok),
          "same packed micro-batch");
    microbatch_free(ma);
    microbatch_free(mb);
    pairs_free(a);
    pairs_free(b);
    free(tmp);
    free(h5);
    free(src);
}

/* Rewrites one dataset of a copy of the good file with other contents (same or another length). */
static char *damaged(const char *name, const void *data, hid_t mtype, hsize_t n, const char *tag) {
    char *good = sd_path_join(tmpdir, "pairs.h5");
    char file[64];
    snprintf(file, sizeof file, "bad_%s.h5", tag);
    char *bad = sd_path_join(tmpdir, file);
    size_t len;
    char *bytes = sd_read_file(good, &len);
    FILE *f = fopen(bad, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    free(bytes);
    hid_t h = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, name, H5P_DEFAULT);
    if (data) {
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t ds = H5Dcreate2(h, name, mtype == H5T_NATIVE_INT64 ? H5T_STD_I64LE : H5T_STD_I32LE, sp, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Fclose(h);
    free(good);
    return bad;
}

static void load_bad(void *path) { pairs_load_h5((const char *)path, 1000); }
static void load_small_vocab(void *path) { pairs_load_h5((const char *)path, 10); }

static void corrupt(void) {
    char *good = sd_path_join(tmpdir, "pairs.h5");
    int64_t off[7] = {0, 5, 9, 12, 20, 24, 1000000}; /* the last pair runs far past the ids */
    char *b1 = damaged("prompt_offsets", off, H5T_NATIVE_INT64, 7, "offsets");
    CHECK(expect_die(load_bad, b1, "dataset 'prompt_offsets': pair"), "offsets that disagree with lengths");
    char *b2 = damaged("chosen_ids", NULL, 0, 0, "missing");
    CHECK(expect_die(load_bad, b2, "dataset 'chosen_ids' is missing"), "missing dataset");
    int32_t few[3] = {1, 2, 3};
    char *b3 = damaged("rejected_ids", few, H5T_NATIVE_INT32, 3, "short");
    CHECK(expect_die(load_bad, b3, "dataset 'rejected_ids' holds 3 tokens but the offsets end at"), "short ids");
    CHECK(expect_die(load_small_vocab, good, "outside the vocabulary (vocab_size 10)"), "ids checked against vocab");
    /* a truncated file */
    size_t len;
    char *bytes = sd_read_file(good, &len);
    char *b4 = sd_path_join(tmpdir, "truncated.h5");
    FILE *f = fopen(b4, "wb");
    fwrite(bytes, 1, len / 2, f);
    fclose(f);
    free(bytes);
    CHECK(expect_die(load_bad, b4, "truncated.h5"), "truncated file named");
    free(b1), free(b2), free(b3), free(b4), free(good);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 1;
    round_trip();
    corrupt();
    if (!t_fail) t_remove_tree(tmpdir);
    TEST_END();
}
