/* test_arrow.c — Arrow IPC (data/arrow_ipc.h) through data/records.h, against files written by apache-arrow (JS),
 * an outside implementation (tests/fixtures/arrow/README.md, scripts/make_arrow_fixtures.mjs): streams of several
 * record batches, one batch, none; the IPC file format; LargeUtf8 / LargeList; a datasets save_to_disk directory of
 * two files read as one; a DatasetDict's directory refused naming its splits. Every row must be the JSON of the
 * expected JSONL line (the Parquet fixtures' expected rows: the same data). Then damage: a clear error naming the
 * file, never a crash (the byte flips run under ASan in CI). */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include "records.h"
#include "test_util.h"

/* rows of path (a file or a directory) against lines [first, first + n) of the JSONL want (n < 0: all);
 * returns the rows compared, -1 on a difference */
static long compare(const char *path, const char *want, int first, int n) {
    size_t len;
    char *text = sd_read_file(want, &len);
    if (!text) { fprintf(stderr, "cannot read %s\n", want); exit(1); }
    Records *r = records_open(path, NULL, 0);
    long rows = 0, line = 0, num;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (line < first || (n >= 0 && line >= first + n)) continue;
        cJSON *w = cJSON_Parse(l);
        const cJSON *got = records_next(r, &num);
        bool same = got && cJSON_Compare(got, w, 1) && num == rows + 1;
        const cJSON *a = got ? got->child : NULL, *b = w->child; /* and the members' order */
        for (; same && a && b; a = a->next, b = b->next) same = !strcmp(a->string, b->string);
        same = same && !a && !b;
        if (!same) {
            char *g = got ? cJSON_PrintUnformatted(got) : NULL, *e = cJSON_PrintUnformatted(w);
            fprintf(stderr, "%s row %ld:\n  got  %s\n  want %s\n", path, rows + 1, g ? g : "(none)", e);
            free(g), free(e), cJSON_Delete(w), records_close(r), free(text);
            return -1;
        }
        cJSON_Delete(w);
        rows++;
    }
    bool end = records_next(r, NULL) == NULL;
    records_close(r);
    free(text);
    if (!end) fprintf(stderr, "%s has more rows than wanted\n", path);
    return end ? rows : -1;
}

static jmp_buf jb;
static void trap(const char *msg) {
    (void)msg;
    longjmp(jb, 1);
}
static void close_cb(void *r) { records_close(r); }
/* all rows of path with errors trapped in this process: 1 when rejected */
static int read_guarded(const char *path) {
    static Records *volatile r;
    sd_set_die_trap(trap);
    int rejected = 0;
    if (setjmp(jb) == 0) {
        r = records_open(path, NULL, 0);
        sd_cleanup_push(close_cb, r);
        while (records_next(r, NULL)) {}
        sd_cleanup_pop();
        records_close(r);
    } else rejected = 1;
    sd_set_die_trap(NULL);
    return rejected;
}
static const char *g_path;
static void read_all(void *arg) {
    (void)arg;
    Records *r = records_open(g_path, NULL, 0);
    while (records_next(r, NULL)) {}
    records_close(r);
}
static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
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
    write_bytes(tmp, bytes, n / 2);
    CHECK(expect_die(read_all, NULL, "arrow_damaged.arrow: message"), "a truncated stream names the message");
    CHECK(strstr(t_die_msg, "ends inside") || strstr(t_die_msg, "left in the file"), "and says it is cut");
    /* byte flips all over the stream: rows or a clear error */
    char *mut = sd_alloc(n, "mutant");
    int rejected = 0, read = 0;
    for (size_t pos = 0; pos < n; pos += n / 300 + 1)
        for (int flip = 0; flip < 2; flip++) {
            memcpy(mut, bytes, n);
            mut[pos] ^= flip ? (char)0x01 : (char)0xa5;
            write_bytes(tmp, mut, n);
            if (read_guarded(tmp)) rejected++;
            else read++;
        }
    printf("types.arrow: %d damaged copies rejected, %d read\n", rejected, read);
    CHECK(rejected > 0, "some damage is detected");
    remove(tmp);
    free(mut), free(bytes), free(p), free(dir), free(types), free(uf);
    TEST_END();
}
