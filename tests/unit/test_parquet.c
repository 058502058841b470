/* test_parquet.c — the Parquet reader (data/parquet.h) against files written by other implementations: every
 * fixture in tests/fixtures/parquet (written by arrow-rs through parquet-wasm and by hyparquet-writer, README there)
 * must give, row by row, the JSON of its expected JSONL (built from the data the writer was given, not read back).
 * Then projections, and damaged files: a clear error naming the file, never a crash, a hang or a leak (the
 * byte-flip sweep runs under ASan in CI).
 * A file in a codec the build lacks is skipped (said), except snappy, the Hub's codec, which the build must read.
 * `test_parquet --dump FILE.parquet` prints a file's rows as JSONL (a debugging aid). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include "parquet.h"
#include "pairs.h"
#include "records_check.h"

static char *read_all(const char *path, size_t *n) {
    char *s = sd_read_file(path, n);
    if (!s) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    return s;
}

/* rc_compare of the whole file, and the footer's row count agrees */
static long compare_file(const char *pq, const char *jsonl, const char *const *fields, int nfields) {
    long rows = rc_compare(pq, jsonl, 1, -1, fields, nfields);
    ParquetFile *pf = parquet_open(pq, NULL, 0);
    bool count = parquet_num_rows(pf) == rows;
    parquet_close(pf);
    if (rows >= 0 && !count) fprintf(stderr, "%s: the footer's row count is not %ld\n", pq, rows);
    return count ? rows : -1;
}

/* Whether this build lacks a codec path uses (a build without libsnappy-dev, say: those files are skipped). */
static int g_pipe = -1;
static void codec_trap(const char *msg) {
    if (write(g_pipe, msg, strlen(msg)) < 0) _exit(3);
    _exit(0);
}
static bool codec_missing(const char *path) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        g_pipe = fds[1];
        sd_set_die_trap(codec_trap);
        parquet_close(parquet_open(path, NULL, 0));
        _exit(0);
    }
    close(fds[1]);
    char msg[2048];
    ssize_t n = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    msg[n > 0 ? n : 0] = 0;
    return strstr(msg, "which this build does not decompress") != NULL;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

typedef struct { const char *path; } OpenArg;
static void open_read(void *arg) {
    ParquetFile *pf = parquet_open(((OpenArg *)arg)->path, NULL, 0);
    while (parquet_next_row(pf, NULL)) {}
    parquet_close(pf);
}
static void load_pairs(void *arg) { pairs_free(pairs_load_jsonl(((OpenArg *)arg)->path, 0)); }

static void dump(const char *path) {
    ParquetFile *pf = parquet_open(path, NULL, 0);
    const cJSON *row;
    while ((row = parquet_next_row(pf, NULL))) {
        char *s = cJSON_PrintUnformatted(row);
        printf("%s\n", s);
        free(s);
    }
    parquet_close(pf);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--dump")) {
        dump(argv[2]);
        return 0;
    }
    char *dir = fixture_path("parquet");
    DIR *d = opendir(dir);
    CHECK(d != NULL, "no fixture directory %s", dir);
    if (!d) TEST_END();
    int files = 0;
    bool codecs[8] = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".parquet")) continue;
        char *pq = sd_path_join(dir, e->d_name);
        /* expected rows: <stem>.jsonl, else the variant's (types-dictfallback: dictfallback.jsonl), else the
         * family's (types-*.parquet: types.jsonl) */
        char stem[256], exp[300];
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(e->d_name) - 8), e->d_name);
        snprintf(exp, sizeof exp, "%s.jsonl", stem);
        char *jl = sd_path_join(dir, exp);
        const char *dash0 = strchr(stem, '-');
        if (!sd_file_exists(jl) && dash0) {
            free(jl);
            snprintf(exp, sizeof exp, "%s.jsonl", dash0 + 1);
            jl = sd_path_join(dir, exp);
        }
        if (!sd_file_exists(jl)) {
            free(jl);
            char fam[256];
            snprintf(fam, sizeof fam, "%s", stem);
            char *dash = strchr(fam, '-');
            if (dash) *dash = 0;
            snprintf(exp, sizeof exp, "%s.jsonl", fam);
            jl = sd_path_join(dir, exp);
        }
        if (!sd_file_exists(jl)) {
            CHECK(0, "%s: no expected rows (%s)", e->d_name, exp);
        } else if (codec_missing(pq)) {
            printf("skipped %s: this build lacks its codec (it has: %s)\n", e->d_name, parquet_codecs());
        } else {
            long rows = compare_file(pq, jl, NULL, 0);
            CHECK(rows > 0, "%s: rows differ from %s", e->d_name, exp);
            if (rows > 0) printf("ok %s: %ld rows as %s\n", e->d_name, rows, exp);
            files++;
        }
        if (strstr(e->d_name, "snappy")) codecs[1] = true;
        if (strstr(e->d_name, "zstd")) codecs[6] = true;
        free(jl);
        free(pq);
    }
    closedir(d);
    CHECK(files >= 10, "only %d fixture files compared", files);
    CHECK(codecs[1] && codecs[6], "fixtures cover snappy and zstd");
    CHECK(strstr(parquet_codecs(), "snappy") != NULL, "this build reads snappy, the Hub's codec (it has: %s)",
          parquet_codecs());

    /* projection: two fields, in the file's order whatever the order asked */
    char *types = sd_path_join(dir, "types-v1-snappy.parquet"), *types_jl = sd_path_join(dir, "types.jsonl");
    const char *sel[] = {"msgs", "i64", "no_such_field"};
    CHECK(compare_file(types, types_jl, sel, 3) > 0, "projection msgs, i64");
    ParquetFile *pf = parquet_open(types, sel, 3);
    CHECK(parquet_has_field(pf, "msgs") && parquet_has_field(pf, "i64") && !parquet_has_field(pf, "s") &&
              !parquet_has_field(pf, "no_such_field"), "parquet_has_field follows the selection");
    parquet_close(pf);

    /* PLAIN_DICTIONARY (2), the label pyarrow gives dictionary-encoded data pages in v1 files, which no writer
     * available here produces: arrow-rs's uncompressed v1 file with its data page headers relabelled. In the
     * Thrift compact encoding a DataPageHeader's fields 2-4 (encoding RLE_DICTIONARY, definition and repetition
     * levels RLE) are 15 10 15 06 15 06; 15 04 says PLAIN_DICTIONARY. The rows must not change. */
    {
        char *src = sd_path_join(dir, "types-v1-none.parquet");
        size_t m;
        char *b = sd_read_file(src, &m);
        int patched = 0;
        for (size_t i = 0; b && i + 6 <= m; i++)
            if (!memcmp(b + i, "\x15\x10\x15\x06\x15\x06", 6)) b[i + 1] = 0x04, patched++;
        const char *pd = "parquet_plain_dictionary.parquet";
        if (b) rc_write_bytes(pd, b, m);
        CHECK(patched >= 20, "relabelled %d data pages", patched);
        CHECK(compare_file(pd, types_jl, NULL, 0) == 40, "PLAIN_DICTIONARY data pages read as RLE_DICTIONARY ones");
        remove(pd);
        free(b);
        free(src);
    }

    /* errors that name the file and the fault */
    OpenArg a = {"/nonexistent/x.parquet"};
    CHECK(expect_die(open_read, &a, "/nonexistent/x.parquet: cannot open"), "missing file");
    size_t n;
    char *bytes = read_all(types, &n);
    const char *tmp = "parquet_damaged.parquet";
    a.path = tmp;
    rc_write_bytes(tmp, bytes, n / 2);
    CHECK(expect_die(open_read, &a, "does not end with PAR1"), "a truncated file");
    rc_write_bytes(tmp, "PAR1", 4);
    CHECK(expect_die(open_read, &a, "too short"), "a 4-byte file");
    char *b2 = sd_alloc(n, "copy");
    memcpy(b2, bytes, n);
    b2[n - 8] = (char)0xff, b2[n - 7] = (char)0xff; /* footer length beyond the file */
    rc_write_bytes(tmp, b2, n);
    CHECK(expect_die(open_read, &a, "footer claims"), "a footer longer than the file");
    memcpy(b2, bytes, n);
    memcpy(b2, "PAR2", 4);
    rc_write_bytes(tmp, b2, n);
    CHECK(expect_die(open_read, &a, "does not start with PAR1"), "bad magic");
    /* a pair file without the pair columns: the loader names what it needs */
    char *p = sd_path_join(dir, "prompts.parquet");
    a.path = p;
    CHECK(expect_die(load_pairs, &a, "has neither a 'chosen' nor a 'chosen_ids' column (a preference dataset has "
                                     "prompt, chosen, rejected, or prompt_ids, chosen_ids, rejected_ids; this one "
                                     "has: prompt, messages)"), "no pair columns: the file's columns named");
    free(p);

    /* byte flips all over an uncompressed and a compressed file: each read ends in rows or a clear error */
    const char *sweep[] = {"types-v1-none.parquet", "types-v2-snappy.parquet", "types-delta.parquet"};
    for (int k = 0; k < 3; k++) {
        char *path = sd_path_join(dir, sweep[k]);
        CHECK(rc_flip_sweep(path, tmp, 4, 400) > 0, "%s: some damage is detected", sweep[k]);
        free(path);
    }
    remove(tmp);
    free(b2);
    free(bytes);
    free(types);
    free(types_jl);
    free(dir);
    TEST_END();
}
