/* test_arrow.c — Arrow IPC (data/arrow_ipc.h) through data/records.h, against files written by apache-arrow (JS),
 * an outside implementation (tests/fixtures/arrow/README.md, scripts/make_arrow_fixtures.mjs): streams of several
 * record batches, one batch, none; the IPC file format; LargeUtf8 / LargeList; a datasets save_to_disk directory of
 * two files read as one; a DatasetDict's directory refused naming its splits. Every row must be the JSON of the
 * expected JSONL line (the Parquet fixtures' expected rows: the same data). Then damage: a clear error naming the
 * file, never a crash (the byte flips run under ASan in CI). */
#include "records_check.h"

static long compare(const char *path, const char *want, int first, int n) {
    return rc_compare(path, want, first, n, NULL, 0);
}

static const char *g_path;
static void read_all(void *arg) {
    (void)arg;
    Records *r = records_open(g_path, NULL, 0);
    while (records_next(r, NULL)) {}
    records_close(r);
}
int main(void) {
    char *dir = fixture_path("arrow"), *types = fixture_path("parquet/types.jsonl"), *uf = fixture_path("parquet/uf.jsonl");
    const char *whole[] = {"types.arrow", "types-large.arrow", "types-file.arrow", "types-one-batch.arrow"};
    for (int i = 0; i < 4; i++) {
        char *p = sd_path_join(dir, whole[i]);
        long rows = compare(p, types, 1, -1);
        CHECK(rows == 40, "%s: 40 rows as types.jsonl (%ld)", whole[i], rows);
        free(p);
    }
    char *p = sd_path_join(dir, "empty.arrow");
    CHECK(compare(p, types, 1, 0) == 0, "a stream without batches: no rows");
    free(p);
    p = sd_path_join(dir, "uf-disk");
    CHECK(compare(p, uf, 1, -1) == 16, "a save_to_disk directory: its two files' 16 rows, in order");
    free(p);
    p = sd_path_join(dir, "uf-dict/train_prefs");
    CHECK(compare(p, uf, 1, 12) == 12, "a DatasetDict's split directory");
    free(p);
    p = sd_path_join(dir, "uf-dict/test_prefs");
    CHECK(compare(p, uf, 13, 4) == 4, "its other split");
    free(p);
    /* the projection and the field names */
    p = sd_path_join(dir, "types.arrow");
    const char *sel[] = {"msgs", "i64"};
    Records *r = records_open(p, sel, 2);
    const cJSON *row = records_next(r, NULL);
    char names[256];
    records_field_names(r, row, names, sizeof names);
    CHECK(row && cJSON_GetArraySize(row) == 2 && !strcmp(row->child->string, "i64") && records_has_field(r, "msgs") &&
              !records_has_field(r, "s") && records_is_table(r),
          "projection: i64 and msgs, in the file's order");
    CHECK(!strcmp(names, "s, i32, i64, f64, f32, b, li, ls, st, msgs, ll, req"), "field names: %s", names);
    records_close(r);

    /* errors */
    g_path = sd_path_join(dir, "uf-dict");
    CHECK(expect_die(read_all, NULL, "a datasets DatasetDict (dataset_dict.json): name one split's directory"),
          "a DatasetDict's directory");
    CHECK(strstr(t_die_msg, "uf-dict/train_prefs") && strstr(t_die_msg, "uf-dict/test_prefs"), "its splits named");
    free((char *)g_path);
    size_t n;
    char *bytes = sd_read_file(p, &n);
    const char *tmp = "arrow_damaged.arrow";
    g_path = tmp;
    rc_write_bytes(tmp, bytes, n / 2);
    CHECK(expect_die(read_all, NULL, "arrow_damaged.arrow: message"), "a truncated stream names the message");
    CHECK(strstr(t_die_msg, "ends inside") || strstr(t_die_msg, "left in the file"), "and says it is cut");
    /* byte flips all over the stream: rows or a clear error */
    CHECK(rc_flip_sweep(p, tmp, 0, 300) > 0, "some damage is detected");
    remove(tmp);
    free(bytes), free(p), free(dir), free(types), free(uf);
    TEST_END();
}
