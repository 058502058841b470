/* test_parquet.c — the Parquet reader (data/parquet.h) against files written by other implementations: every
 * fixture in tests/fixtures/parquet (written by arrow-rs through parquet-wasm and by hyparquet-writer, README there)
 * must give, row by row, the JSON of its expected JSONL (built from the data the writer was given, not read back).
 * Then projections, and damaged files: a clear error naming the file, never a crash, a hang or a leak (the
 * byte-flip sweep runs under ASan in CI).
 * A file in a codec the build lacks is skipped (said), except snappy, the Hub's codec, which the build must read.
 * `test_parquet --dump FILE.parquet` prints a file's rows as JSONL (a debugging aid). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <setjmp.h>
#include "parquet.h"
#include "pairs.h"
#include "test_util.h"

static char *read_all(const char *path, size_t *n) {
    char *s = sd_read_file(path, n);
    if (!s) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    return s;
}

static void close_cb(void *pf) { parquet_close(pf); }

/* Compares a file's rows with a JSONL file's objects; returns the rows compared (-1 on a mismatch). */
static long compare_file(const char *pq, const char *jsonl, const char *const *fields, int nfields) {
    size_t n;
    char *text = read_all(jsonl, &n);
    ParquetFile *pf = parquet_open(pq, fields, nfields);
    long rows = 0;
    char *save = NULL;
    const cJSON *row;
    int64_t r = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *want = cJSON_Parse(line);
        if (!want) { fprintf(stderr, "bad expected line in %s\n", jsonl); exit(1); }
        if (nfields) { /* only the selected members, in the file's order */
            cJSON *sel = cJSON_CreateObject();
            for (cJSON *m = want->child; m; m = m->next)
                for (int k = 0; k < nfields; k++)
                    if (!strcmp(m->string, fields[k])) cJSON_AddItemToObject(sel, m->string, cJSON_Duplicate(m, 1));
            cJSON_Delete(want);
            want = sel;
        }
        row = parquet_next_row(pf, &r);
        bool same = row && cJSON_Compare(row, want, 1) && r == rows + 1;
        /* the same members in the same order (cJSON_Compare does not look at the order) */
        const cJSON *a = row ? row->child : NULL, *b = want->child;
        for (; same && a && b; a = a->next, b = b->next) same = !strcmp(a->string, b->string);
        same = same && !a && !b;
        if (!same) {
            char *got = row ? cJSON_PrintUnformatted(row) : NULL;
            char *exp = cJSON_PrintUnformatted(want);
            fprintf(stderr, "%s row %ld:\n  got  %s\n  want %s\n", pq, rows + 1, got ? got : "(no row)", exp);
            free(got);
            free(exp);
            cJSON_Delete(want);
            parquet_close(pf);
            free(text);
            return -1;
        }
        cJSON_Delete(want);
        rows++;
    }
    bool end = parquet_next_row(pf, NULL) == NULL && parquet_num_rows(pf) == rows;
    parquet_close(pf);
    free(text);
    if (!end) fprintf(stderr, "%s has more rows than %s\n", pq, jsonl);
    return end ? rows : -1;
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

/* ---- damaged files ---- */
static jmp_buf jb;
static void trap(const char *msg) {
    (void)msg;
    longjmp(jb, 1);
}
/* Reads every row of path in this process with errors trapped: 1 when it was rejected, 0 when it read. */
static int read_guarded(const char *path) {
    static ParquetFile *volatile pf;
    pf = NULL;
    sd_set_die_trap(trap);
    int rejected = 0;
    if (setjmp(jb) == 0) {
        pf = parquet_open(path, NULL, 0);
        sd_cleanup_push(close_cb, pf);
        while (parquet_next_row(pf, NULL)) {}
        sd_cleanup_pop();
        parquet_close(pf);
    } else rejected = 1; /* the cleanups closed pf */
    sd_set_die_trap(NULL);
    return rejected;
}

static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
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
        if (b) write_bytes(pd, b, m);
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
    write_bytes(tmp, bytes, n / 2);
    CHECK(expect_die(open_read, &a, "does not end with PAR1"), "a truncated file");
    write_bytes(tmp, "PAR1", 4);
    CHECK(expect_die(open_read, &a, "too short"), "a 4-byte file");
    char *b2 = sd_alloc(n, "copy");
    memcpy(b2, bytes, n);
    b2[n - 8] = (char)0xff, b2[n - 7] = (char)0xff; /* footer length beyond the file */
    write_bytes(tmp, b2, n);
    CHECK(expect_die(open_read, &a, "footer claims"), "a footer longer than the file");
    memcpy(b2, bytes, n);
    memcpy(b2, "PAR2", 4);
    write_bytes(tmp, b2, n);
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
    for (int s = 0; s < 3; s++) {
        char *path = sd_path_join(dir, sweep[s]);
        size_t m;
        char *orig = sd_read_file(path, &m);
        CHECK(orig != NULL, "read %s", sweep[s]);
        if (!orig) { free(path); continue; }
        char *mut = sd_alloc(m, "mutant");
        int rejected = 0, read = 0;
        size_t step = m / 400 + 1;
        for (size_t pos = 4; pos + 8 < m; pos += step) {
            for (int flip = 0; flip < 2; flip++) {
                memcpy(mut, orig, m);
                mut[pos] ^= flip ? (char)0x01 : (char)0xa5;
                write_bytes(tmp, mut, m);
                if (read_guarded(tmp)) rejected++;
                else read++;
            }
        }
        printf("%s: %d damaged copies rejected, %d read\n", sweep[s], rejected, read);
        CHECK(rejected > 0, "%s: some damage is detected", sweep[s]);
        free(mut);
        free(orig);
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
