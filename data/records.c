/* records.c — see records.h. A JSON array is read one element at a time: a small scanner finds where each element
 * ends (brackets counted outside strings, escapes skipped) and cJSON parses that element alone, so a file of any
 * size holds one record in memory, as JSONL does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "records.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arrow_ipc.h"
#include "parquet.h"
#include "util.h"

typedef enum { REC_JSONL, REC_ARRAY, REC_PARQUET, REC_ARROW } Kind;

struct Records {
    Kind kind;
    char *path;
    FILE *f;
    char *buf;              /* a line, or an array element's bytes */
    size_t cap;
    cJSON *obj;             /* the current record (JSONL, array) */
    ParquetFile *pq;
    ArrowFile *ar;          /* the current file of a save_to_disk directory, or one .arrow file */
    char **files;           /* a directory's data files, in order [nfiles] */
    int nfiles, file;       /* and the one being read */
    char **fields;          /* the projection, kept for the directory's next file [nfields] */
    int nfields;
    long rows;              /* Arrow rows given so far, over all files */
    long line;              /* lines read so far */
    long elems;             /* array elements read so far */
    int state;              /* array: 0 before the first element, 1 after an element, 2 after ']' */
    char where[4096];
};

void records_release(void *r) { records_close(r); }

/* Dies naming r->where; r is released by the caller's cleanup, not here. */
SD_NORETURN SD_PRINTF(2, 3) static void rec_die(Records *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_vdie(r->where, fmt, ap);
}

static int rec_getc(Records *r) {
    int c = getc(r->f);
    if (c == '\n') r->line++;
    return c;
}

static void buf_push(Records *r, size_t n, char c) {
    if (n + 2 > r->cap) {
        size_t nc = r->cap ? 2 * r->cap : 4096;
        if (nc > (size_t)RECORDS_MAX_BYTES + 2) nc = (size_t)RECORDS_MAX_BYTES + 2;
        r->buf = sd_realloc(r->buf, nc, "record");
        r->cap = nc;
    }
    r->buf[n] = c;
}

/* A datasets save_to_disk directory: its Arrow files, in state.json's order (else data-*.arrow sorted). */
static void list_dir(Records *r, const char *dir) {
    char *dd = sd_path_join(dir, "dataset_dict.json");
    char *text = sd_read_file(dd, NULL);
    free(dd);
    if (text) { /* a DatasetDict: its splits are directories of their own */
        cJSON *o = cJSON_Parse(text);
        free(text);
        char names[1024] = "";
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "splits");
        size_t len = 0;
        for (const cJSON *e = cJSON_IsArray(sp) ? sp->child : NULL; e; e = e->next)
            if (cJSON_IsString(e) && len < sizeof names) {
                int w = snprintf(names + len, sizeof names - len, "%s%s/%s", len ? ", " : "", dir, e->valuestring);
                if (w > 0) len += (size_t)w;
            }
        cJSON_Delete(o);
        rec_die(r, "a datasets DatasetDict (dataset_dict.json): name one split's directory%s%s", len ? ": " : "",
                names);
    }
    char *st = sd_path_join(dir, "state.json");
    text = sd_read_file(st, NULL);
    if (text) {
        cJSON *o = cJSON_Parse(text);
        free(text);
        const cJSON *df = cJSON_GetObjectItemCaseSensitive(o, "_data_files");
        int n = cJSON_IsArray(df) ? cJSON_GetArraySize(df) : -1;
        if (n <= 0) {
            cJSON_Delete(o);
            free(st);
            rec_die(r, "state.json lists no _data_files (expected [{\"filename\": \"data-00000-of-00001.arrow\"}, ...])");
        }
        r->files = sd_calloc((size_t)n, sizeof *r->files, "data files");
        for (const cJSON *e = df->child; e; e = e->next) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(e, "filename");
            if (!cJSON_IsString(fn) || !*fn->valuestring || strchr(fn->valuestring, '/')) {
                cJSON_Delete(o);
                free(st);
                rec_die(r, "state.json: _data_files[%d] has no plain file name", r->nfiles);
            }
            r->files[r->nfiles++] = sd_path_join(dir, fn->valuestring);
        }
        cJSON_Delete(o);
    } else {
        char *pat = sd_path_join(dir, "data-*.arrow");
        glob_t g;
        int rc = glob(pat, 0, NULL, &g);
        free(pat);
        if (rc == 0) {
            r->files = sd_calloc(g.gl_pathc, sizeof *r->files, "data files");
            for (size_t i = 0; i < g.gl_pathc; i++) r->files[r->nfiles++] = sd_strdup(g.gl_pathv[i]);
        }
        if (rc != GLOB_NOMATCH) globfree(&g);
    }
    free(st);
    if (r->nfiles == 0)
        rec_die(r, "a directory without data-*.arrow files (expected a datasets save_to_disk directory, or a file)");
}

Records *records_open(const char *path, const char *const *fields, int nfields) {
    Records *r = sd_calloc(1, sizeof *r, "records");
    r->path = sd_strdup(path);
    snprintf(r->where, sizeof r->where, "%s", path);
    sd_cleanup_push(records_release, r);
    r->fields = sd_calloc((size_t)nfields + 1, sizeof *r->fields, "fields");
    for (int i = 0; i < nfields; i++) r->fields[r->nfields++] = sd_strdup(fields[i]);
    if (sd_dir_exists(path)) {
        list_dir(r, path);
        r->kind = REC_ARROW;
        r->ar = arrow_open(r->files[0], fields, nfields);
    } else if (arrow_is_arrow(path)) {
        r->kind = REC_ARROW;
        r->ar = arrow_open(path, fields, nfields);
    } else if (parquet_is_parquet(path)) {
        r->kind = REC_PARQUET;
        r->pq = parquet_open(path, fields, nfields);
    } else {
        r->f = fopen(path, "r");
        if (!r->f) rec_die(r, "cannot open: %s", strerror(errno));
        int c;
        do c = getc(r->f);
        while (c == ' ' || c == '\t' || c == '\r' || c == '\n');
        r->kind = c == '[' ? REC_ARRAY : REC_JSONL;
        rewind(r->f);
        if (r->kind == REC_ARRAY) /* past the '[' */
            while ((c = rec_getc(r)) != '[') {}
    }
    sd_cleanup_pop();
    return r;
}

/* JSONL: the next non-blank line, parsed. */
static const cJSON *next_line(Records *r, long *num) {
    for (;;) {
        size_t n = 0;
        int c = EOF;
        bool over = false;
        while ((c = getc(r->f)) != EOF) {
            if (c == '\n') break;
            if (n >= (size_t)RECORDS_MAX_BYTES) { over = true; continue; }
            buf_push(r, n++, (char)c);
        }
        if (n == 0 && c == EOF && !over) {
            if (ferror(r->f)) rec_die(r, "read error: %s", strerror(errno ? errno : EIO));
            snprintf(r->where, sizeof r->where, "%s", r->path);
            return NULL;
        }
        r->line++;
        snprintf(r->where, sizeof r->where, "%s:%ld", r->path, r->line);
        if (over) rec_die(r, "line longer than %d bytes (the limit of one record)", RECORDS_MAX_BYTES);
        buf_push(r, n, 0);
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++)
            blank = r->buf[i] == ' ' || r->buf[i] == '\t' || r->buf[i] == '\r';
        if (blank) continue;
        if (strlen(r->buf) != n) rec_die(r, "invalid JSON (the line holds a NUL byte)");
        /* require_null_terminated: nothing but whitespace may follow the object */
        r->obj = cJSON_ParseWithOpts(r->buf, NULL, 1);
        if (!r->obj || !cJSON_IsObject(r->obj)) rec_die(r, "invalid JSON (expected one JSON object per line)");
        *num = r->line;
        return r->obj;
    }
}

static int skip_space(Records *r) {
    int c;
    do c = rec_getc(r);
    while (c == ' ' || c == '\t' || c == '\r' || c == '\n');
    return c;
}

/* A JSON array: the next element, found by counting brackets outside strings, then parsed alone. */
static const cJSON *next_element(Records *r, long *num) {
    if (r->state == 2) return NULL;
    int c = skip_space(r);
    snprintf(r->where, sizeof r->where, "%s:%ld", r->path, r->line + 1);
    if (c == ']') { /* after an element, or an empty array */
        r->state = 2;
        if ((c = skip_space(r)) != EOF) {
            snprintf(r->where, sizeof r->where, "%s:%ld", r->path, r->line + 1);
            rec_die(r, "text after the end of the JSON array");
        }
        snprintf(r->where, sizeof r->where, "%s", r->path);
        return NULL;
    }
    if (r->state == 1) {
        if (c != ',') rec_die(r, c == EOF ? "the JSON array ends without ']'" : "expected ',' or ']' after element %ld",
                              r->elems);
        c = skip_space(r);
        snprintf(r->where, sizeof r->where, "%s:%ld", r->path, r->line + 1);
    }
    if (c == EOF) rec_die(r, "the JSON array ends without ']'");
    if (c != '{') rec_die(r, "element %ld of the JSON array is not an object", r->elems + 1);
    long first = r->line + 1;
    size_t n = 0;
    int depth = 0;
    bool str = false, esc = false;
    for (;;) {
        if (n >= (size_t)RECORDS_MAX_BYTES)
            rec_die(r, "element %ld of the JSON array is longer than %d bytes (the limit of one record)", r->elems + 1,
                    RECORDS_MAX_BYTES);
        buf_push(r, n++, (char)c);
        if (str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') str = false;
        } else if (c == '"') str = true;
        else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        if (depth == 0) break;
        if ((c = rec_getc(r)) == EOF) rec_die(r, "the JSON array ends inside element %ld", r->elems + 1);
        if (c == 0) rec_die(r, "invalid JSON (a NUL byte in element %ld)", r->elems + 1);
    }
    buf_push(r, n, 0);
    r->elems++;
    r->state = 1;
    r->obj = cJSON_ParseWithLength(r->buf, n);
    if (!r->obj || !cJSON_IsObject(r->obj)) rec_die(r, "invalid JSON in element %ld of the array", r->elems);
    *num = first;
    return r->obj;
}

const cJSON *records_next(Records *r, long *num) {
    cJSON_Delete(r->obj);
    r->obj = NULL;
    long k = 0;
    const cJSON *o;
    if (r->kind == REC_ARROW) {
        int64_t row = 0;
        while (!(o = arrow_next_row(r->ar, &row)) && r->file + 1 < r->nfiles) { /* the directory's next file */
            arrow_close(r->ar);
            r->ar = NULL;
            r->ar = arrow_open(r->files[++r->file], (const char *const *)r->fields, r->nfields);
        }
        k = o ? ++r->rows : 0;
        const char *file = r->nfiles ? r->files[r->file] : r->path;
        if (o) snprintf(r->where, sizeof r->where, "%s: row %lld", file, (long long)row);
        else snprintf(r->where, sizeof r->where, "%s", r->path);
    } else if (r->kind == REC_PARQUET) {
        int64_t row = 0;
        o = parquet_next_row(r->pq, &row);
        k = (long)row;
        if (o) snprintf(r->where, sizeof r->where, "%s: row %ld", r->path, k);
        else snprintf(r->where, sizeof r->where, "%s", r->path);
    } else o = r->kind == REC_JSONL ? next_line(r, &k) : next_element(r, &k);
    if (num) *num = k;
    return o;
}

const char *records_where(const Records *r) { return r->where; }
bool records_is_table(const Records *r) { return r->kind == REC_PARQUET || r->kind == REC_ARROW; }
bool records_has_field(const Records *r, const char *name) {
    if (r->kind == REC_ARROW) return arrow_has_field(r->ar, name);
    return r->kind != REC_PARQUET || parquet_has_field(r->pq, name);
}

void records_field_names(const Records *r, const cJSON *obj, char *buf, size_t n) {
    if (!n) return;
    if (r->kind == REC_PARQUET) {
        parquet_field_names(r->pq, buf, n);
        return;
    }
    if (r->kind == REC_ARROW) {
        arrow_field_names(r->ar, buf, n);
        return;
    }
    size_t len = 0;
    buf[0] = 0;
    for (const cJSON *m = obj ? obj->child : NULL; m; m = m->next) {
        int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", m->string ? m->string : "?");
        if (w < 0 || (size_t)w >= n - len) return;
        len += (size_t)w;
    }
}

void records_close(Records *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    parquet_close(r->pq);
    arrow_close(r->ar);
    for (int i = 0; i < r->nfiles; i++) free(r->files[i]);
    free(r->files);
    for (int i = 0; i < r->nfields; i++) free(r->fields[i]);
    free(r->fields);
    cJSON_Delete(r->obj);
    free(r->buf);
    free(r->path);
    free(r);
}
