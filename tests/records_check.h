/* records_check.h — what the data-format tests (test_parquet, test_arrow) share: a file's records (data/records.h)
 * against an expected JSONL, row by row; reading a file with sd_die trapped in this process; byte flips all over a
 * file, each copy read that way (rows or a clear error, never a crash: the tests run under ASan in CI). */
#ifndef SD_RECORDS_CHECK_H
#define SD_RECORDS_CHECK_H
#include <cjson/cJSON.h>
#include <setjmp.h>
#include "records.h"
#include "test_util.h"

static void rc_write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
}

/* The records of path (fields[0..nfields) selected; 0: all) against lines [first, first + n) of the JSONL want
 * (n < 0: to its end; with a selection, only those members of each line), each record numbered 1, 2, ...:
 * the rows compared, -1 on a difference (printed). The members must come in the same order. */
static long rc_compare(const char *path, const char *want, int first, int n, const char *const *fields,
                       int nfields) {
    size_t len;
    char *text = sd_read_file(want, &len);
    if (!text) { fprintf(stderr, "cannot read %s\n", want); exit(1); }
    Records *r = records_open(path, fields, nfields);
    long rows = 0, line = 0, num = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (line < first || (n >= 0 && line >= first + n)) continue;
        cJSON *w = cJSON_Parse(l);
        if (!w) { fprintf(stderr, "bad expected line %ld in %s\n", line, want); exit(1); }
        if (nfields) { /* only the selected members */
            cJSON *sel = cJSON_CreateObject();
            for (cJSON *m = w->child; m; m = m->next)
                for (int k = 0; k < nfields; k++)
                    if (!strcmp(m->string, fields[k])) cJSON_AddItemToObject(sel, m->string, cJSON_Duplicate(m, 1));
            cJSON_Delete(w);
            w = sel;
        }
        const cJSON *got = records_next(r, &num);
        bool same = got && cJSON_Compare(got, w, 1) && num == rows + 1;
        const cJSON *a = got ? got->child : NULL, *b = w->child; /* cJSON_Compare does not look at the order */
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
    if (!end) fprintf(stderr, "%s has more rows than %s gives\n", path, want);
    return end ? rows : -1;
}

static jmp_buf rc_jb;
static void rc_trap(const char *msg) {
    (void)msg;
    longjmp(rc_jb, 1);
}
static void rc_close(void *r) { records_close(r); }
/* Every record of path read in this process with sd_die trapped: 1 when it was rejected, 0 when it read (the
 * cleanups release what the readers held, so a rejected file leaks nothing). */
static int rc_read_guarded(const char *path) {
    static Records *volatile r;
    r = NULL;
    sd_set_die_trap(rc_trap);
    int rejected = 0;
    if (setjmp(rc_jb) == 0) {
        r = records_open(path, NULL, 0);
        sd_cleanup_push(rc_close, r);
        while (records_next(r, NULL)) {}
        sd_cleanup_pop();
        records_close(r);
    } else rejected = 1;
    sd_set_die_trap(NULL);
    return rejected;
}

/* Copies of path with one byte flipped (two ways, at about `points` places from byte `from` to 8 before the end)
 * written to tmp and read guarded: the number rejected (printed with the number read). */
static int rc_flip_sweep(const char *path, const char *tmp, size_t from, int points) {
    size_t m;
    char *orig = sd_read_file(path, &m);
    if (!orig) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
    char *mut = sd_alloc(m, "mutant");
    int rejected = 0, read = 0;
    for (size_t pos = from; pos + 8 < m; pos += m / (size_t)points + 1)
        for (int flip = 0; flip < 2; flip++) {
            memcpy(mut, orig, m);
            mut[pos] ^= flip ? (char)0x01 : (char)0xa5;
            rc_write_bytes(tmp, mut, m);
            if (rc_read_guarded(tmp)) rejected++;
            else read++;
        }
    printf("%s: %d damaged copies rejected, %d read\n", path, rejected, read);
    remove(tmp);
    free(mut);
    free(orig);
    return rejected;
}
#endif
