/* records.c — see records.h. A JSON array is read one element at a time: a small scanner finds where each element
 * ends (brackets counted outside strings, escapes skipped) and cJSON parses that element alone, so a file of any
 * size holds one record in memory, as JSONL does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "records.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "parquet.h"
#include "util.h"

typedef enum { REC_JSONL, REC_ARRAY, REC_PARQUET } Kind;

struct Records {
    Kind kind;
    char *path;
    FILE *f;
    char *buf;              /* a line, or an array element's bytes */
    size_t cap;
    cJSON *obj;             /* the current record (JSONL, array) */
    ParquetFile *pq;
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

Records *records_open(const char *path, const char *const *fields, int nfields) {
    Records *r = sd_calloc(1, sizeof *r, "records");
    r->path = sd_strdup(path);
    snprintf(r->where, sizeof r->where, "%s", path);
    sd_cleanup_push(records_release, r);
    if (parquet_is_parquet(path)) {
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
    if (r->kind == REC_PARQUET) {
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
bool records_is_table(const Records *r) { return r->kind == REC_PARQUET; }
bool records_has_field(const Records *r, const char *name) {
    return r->kind != REC_PARQUET || parquet_has_field(r->pq, name);
}

void records_field_names(const Records *r, const cJSON *obj, char *buf, size_t n) {
    if (!n) return;
    if (r->kind == REC_PARQUET) {
        parquet_field_names(r->pq, buf, n);
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
    cJSON_Delete(r->obj);
    free(r->buf);
    free(r->path);
    free(r);
}
