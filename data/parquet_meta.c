/* parquet_meta.c — the footer and page headers: Thrift's compact protocol (varints, zigzag integers, field
 * headers with id deltas) decoded by hand, only the fields the reader uses; the rest are skipped whatever they
 * hold. Every length and count is checked against the bytes left before it is used, and nesting is bounded, so a
 * damaged footer is an error, never a read out of bounds or an allocation it chose. See parquet_internal.h. */
#include <stdlib.h>
#include <string.h>
#include "parquet_internal.h"

/* compact protocol type ids */
enum { T_STOP = 0, T_TRUE = 1, T_FALSE = 2, T_BYTE = 3, T_I16 = 4, T_I32 = 5, T_I64 = 6, T_DOUBLE = 7,
       T_BINARY = 8, T_LIST = 9, T_SET = 10, T_MAP = 11, T_STRUCT = 12 };
#define T_MAX_DEPTH 32

typedef struct {
    const uint8_t *p, *end;
    bool bad;                     /* malformed */
    bool short_;                  /* ran out of bytes (a page header the caller may read more of) */
    int depth;
} TC;

static void tc_fail_short(TC *t) { t->bad = t->short_ = true; t->p = t->end; }

static uint64_t tc_varint(TC *t) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (t->p >= t->end) { tc_fail_short(t); return 0; }
        uint8_t b = *t->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return v;
    }
    t->bad = true;
    return 0;
}
static int64_t tc_zigzag(TC *t) {
    uint64_t v = tc_varint(t);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
/* A binary's bytes as a view; NULL when malformed. */
static const uint8_t *tc_binary(TC *t, uint32_t *len) {
    uint64_t n = tc_varint(t);
    if (t->bad) return NULL;
    if (n > (uint64_t)(t->end - t->p)) { tc_fail_short(t); return NULL; }
    const uint8_t *s = t->p;
    t->p += n;
    *len = (uint32_t)n;
    return s;
}
static char *tc_string(TC *t) {
    uint32_t n = 0;
    const uint8_t *s = tc_binary(t, &n);
    if (!s) return NULL;
    char *c = sd_alloc(n + 1, "parquet string");
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}
/* The next field header of a struct: its type (T_STOP at the end), the id in *id (deltas from *id). */
static int tc_field(TC *t, int *id) {
    if (t->p >= t->end) { tc_fail_short(t); return T_STOP; }
    uint8_t b = *t->p++;
    if (b == 0) return T_STOP;
    int type = b & 15, delta = b >> 4;
    if (delta) *id += delta;
    else {
        int64_t v = tc_zigzag(t);
        if (v < INT16_MIN || v > INT16_MAX) t->bad = true;
        *id = (int)v;
    }
    return type;
}
/* A list header: element type and count (checked against the bytes left: every element takes one at least). */
static int64_t tc_list(TC *t, int *etype) {
    if (t->p >= t->end) { tc_fail_short(t); return 0; }
    uint8_t b = *t->p++;
    uint64_t n = b >> 4;
    *etype = b & 15;
    if (n == 15) n = tc_varint(t);
    if (t->bad) return 0;
    if (n > (uint64_t)(t->end - t->p)) { tc_fail_short(t); return 0; }
    return (int64_t)n;
}
static void tc_skip(TC *t, int type, bool in_list);
static void tc_skip_struct(TC *t) {
    if (++t->depth > T_MAX_DEPTH) { t->bad = true; return; }
    int id = 0, type;
    while (!t->bad && (type = tc_field(t, &id)) != T_STOP) tc_skip(t, type, false);
    t->depth--;
}
/* Skips one value of a type; a boolean inside a list or map takes a byte, a struct field's none. */
static void tc_skip(TC *t, int type, bool in_list) {
    if (t->bad) return;
    switch (type) {
    case T_TRUE: case T_FALSE:
        if (in_list) { if (t->p >= t->end) tc_fail_short(t); else t->p++; }
        return;
    case T_BYTE:
        if (t->p >= t->end) tc_fail_short(t); else t->p++;
        return;
    case T_I16: case T_I32: case T_I64: tc_varint(t); return;
    case T_DOUBLE:
        if (t->end - t->p < 8) tc_fail_short(t); else t->p += 8;
        return;
    case T_BINARY: { uint32_t n; tc_binary(t, &n); return; }
    case T_LIST: case T_SET: {
        if (++t->depth > T_MAX_DEPTH) { t->bad = true; return; }
        int et;
        int64_t n = tc_list(t, &et);
        for (int64_t i = 0; i < n && !t->bad; i++) tc_skip(t, et, true);
        t->depth--;
        return;
    }
    case T_MAP: {
        if (++t->depth > T_MAX_DEPTH) { t->bad = true; return; }
        uint64_t n = tc_varint(t);
        if (n > (uint64_t)(t->end - t->p)) { tc_fail_short(t); return; }
        if (n) {
            if (t->p >= t->end) { tc_fail_short(t); return; }
            uint8_t kv = *t->p++;
            for (uint64_t i = 0; i < n && !t->bad; i++) {
                tc_skip(t, kv >> 4, true);
                tc_skip(t, kv & 15, true);
            }
        }
        t->depth--;
        return;
    }
    case T_STRUCT: tc_skip_struct(t); return;
    default: t->bad = true;
    }
}
/* Reads an integer field of a struct when the header says an integer type, else marks the input malformed. */
static int64_t tc_int(TC *t, int type) {
    if (type != T_I32 && type != T_I64 && type != T_I16 && type != T_BYTE) { t->bad = true; return 0; }
    if (type == T_BYTE) {
        if (t->p >= t->end) { tc_fail_short(t); return 0; }
        return (int8_t)*t->p++;
    }
    return tc_zigzag(t);
}
static int32_t tc_int32(TC *t, int type) {
    int64_t v = tc_int(t, type);
    if (v < INT32_MIN || v > INT32_MAX) t->bad = true;
    return (int32_t)v;
}

/* LogicalType: a union; its member's field id says the kind (INTEGER's isSigned is field 2 of its struct). */
static void read_logical(TC *t, PqSchemaElem *e) {
    if (++t->depth > T_MAX_DEPTH) { t->bad = true; return; }
    int id = 0, type;
    while (!t->bad && (type = tc_field(t, &id)) != T_STOP) {
        if (type == T_STRUCT && !e->logical) {
            e->logical = id;
            if (id == PQ_LT_INTEGER) {
                int fid = 0, ft;
                while (!t->bad && (ft = tc_field(t, &fid)) != T_STOP) {
                    if (fid == 2 && (ft == T_TRUE || ft == T_FALSE)) e->int_unsigned = ft == T_FALSE;
                    else tc_skip(t, ft, false);
                }
            } else tc_skip_struct(t);
        } else tc_skip(t, type, false);
    }
    t->depth--;
}

static void read_schema_elem(TC *t, PqSchemaElem *e) {
    e->type = -1;
    e->repetition = -1;
    e->converted = -1;
    int id = 0, type;
    while (!t->bad && (type = tc_field(t, &id)) != T_STOP) {
        switch (id) {
        case 1: e->type = tc_int32(t, type); break;
        case 2: e->type_length = tc_int32(t, type); break;
        case 3: e->repetition = tc_int32(t, type); break;
        case 4:
            if (type != T_BINARY) { t->bad = true; break; }
            free(e->name);
            e->name = tc_string(t);
            break;
        case 5: e->num_children = tc_int32(t, type); break;
        case 6: e->converted = tc_int32(t, type); break;
        case 10:
            if (type != T_STRUCT) { t->bad = true; break; }
            read_logical(t, e);
            break;
        default: tc_skip(t, type, false);
        }
    }
}

static void read_column_meta(TC *t, PqColumnMeta *c) {
    int id = 0, type;
    while (!t->bad && (type = tc_field(t, &id)) != T_STOP) {
        switch (id) {
        case 1: c->type = tc_int32(t, type); break;
        case 3: {
            if (type != T_LIST || c->path) { t->bad = true; break; }
            int et;
            int64_t n = tc_list(t, &et);
            if (t->bad || et != T_BINARY) { t->bad = true; break; }
            c->path = sd_calloc((size_t)n + 1, sizeof(char *), "parquet path");
            for (int64_t i = 0; i < n && !t->bad; i++) {
                c->path[i] = tc_string(t);
                c->npath++;
            }
            break;
        }
        case 4: c->codec = tc_int32(t, type); break;
        case 5: c->num_values = tc_int(t, type); break;
        case 7: c->total_compressed = tc_int(t, type); break;
        case 9: c->data_page_offset = tc_int(t, type); break;
        case 11: c->dict_page_offset = tc_int(t, type); break;
        default: tc_skip(t, type, false);
        }
    }
}

static void read_column_chunk(TC *t, PqColumnMeta *c) {
    int id = 0, type;
    bool has_meta = false;
    c->dict_page_offset = -1;
    while (!t->bad && (type = tc_field(t, &id)) != T_STOP) {
        if (id == 1 && type == T_BINARY) {
            uint32_t n;
            if (tc_binary(t, &n) && n) c->external = true;
        } else if (id == 3 && type == T_STRUCT && !has_meta) {
            if (++t->depth > T_MAX_DEPTH) { t->bad = true; return; }
            read_column_meta(t, c);
            t->depth--;
            has_meta = true;
        } else tc_skip(t, type, false);
    }
    if (!has_meta && !c->external) t->bad = true;
}

static void read_row_group(TC *t, PqRowGroup *rg) {
    int id = 0, type;
    while (!t->bad && (type = tc_field(t, &id)) != T_STOP) {
        if (id == 1 && type == T_LIST && !rg->cols) {
            int et;
            int64_t n = tc_list(t, &et);
            if (t->bad || et != T_STRUCT || n > INT32_MAX) { t->bad = true; break; }
            rg->cols = sd_calloc((size_t)n + 1, sizeof *rg->cols, "parquet columns");
            for (int64_t i = 0; i < n && !t->bad; i++) {
                rg->ncols++;
                read_column_chunk(t, &rg->cols[i]);
            }
        } else if (id == 3) rg->num_rows = tc_int(t, type);
        else tc_skip(t, type, false);
    }
}

void pq_parse_footer(ParquetFile *pf, const uint8_t *p, size_t n) {
    TC t = {p, p + n, false, false, 0};
    PqMeta *m = &pf->meta;
    int id = 0, type;
    bool has_rows = false;
    while (!t.bad && (type = tc_field(&t, &id)) != T_STOP) {
        if (id == 2 && type == T_LIST && !m->schema) {
            int et;
            int64_t k = tc_list(&t, &et);
            if (t.bad || et != T_STRUCT || k > INT32_MAX) { t.bad = true; break; }
            m->schema = sd_calloc((size_t)k + 1, sizeof *m->schema, "parquet schema");
            for (int64_t i = 0; i < k && !t.bad; i++) {
                m->nschema++;
                read_schema_elem(&t, &m->schema[i]);
            }
        } else if (id == 3) {
            m->num_rows = tc_int(&t, type);
            has_rows = true;
        } else if (id == 4 && type == T_LIST && !m->rgs) {
            int et;
            int64_t k = tc_list(&t, &et);
            if (t.bad || et != T_STRUCT || k > INT32_MAX) { t.bad = true; break; }
            m->rgs = sd_calloc((size_t)k + 1, sizeof *m->rgs, "parquet row groups");
            for (int64_t i = 0; i < k && !t.bad; i++) {
                m->nrg++;
                read_row_group(&t, &m->rgs[i]);
            }
        } else tc_skip(&t, type, false);
    }
    if (t.bad) pq_die(pf, "the footer (FileMetaData) is malformed%s", t.short_ ? ": it ends early" : "");
    if (!m->schema || m->nschema < 1) pq_die(pf, "the footer has no schema");
    if (!has_rows || m->num_rows < 0) pq_die(pf, "the footer has no valid num_rows");
}

long pq_parse_page_header(const uint8_t *p, size_t n, PqPageHeader *h) {
    TC t = {p, p + n, false, false, 0};
    memset(h, 0, sizeof *h);
    h->type = -1;
    h->is_compressed = true;
    h->encoding = h->def_encoding = h->rep_encoding = PQ_RLE;
    int id = 0, type;
    bool seen_sub = false;
    while (!t.bad && (type = tc_field(&t, &id)) != T_STOP) {
        switch (id) {
        case 1: h->type = tc_int32(&t, type); break;
        case 2: h->uncompressed = tc_int32(&t, type); break;
        case 3: h->compressed = tc_int32(&t, type); break;
        case 5: case 7: case 8: {
            if (type != T_STRUCT || seen_sub) { t.bad = true; break; }
            seen_sub = true;
            t.depth++;
            int fid = 0, ft;
            while (!t.bad && (ft = tc_field(&t, &fid)) != T_STOP) {
                if (id == 7) {
                    if (fid == 1) h->dict_num_values = tc_int32(&t, ft);
                    else if (fid == 2) h->dict_encoding = tc_int32(&t, ft);
                    else tc_skip(&t, ft, false);
                } else if (fid == 1) h->num_values = tc_int32(&t, ft);
                else if (id == 5 && fid == 2) h->encoding = tc_int32(&t, ft);
                else if (id == 5 && fid == 3) h->def_encoding = tc_int32(&t, ft);
                else if (id == 5 && fid == 4) h->rep_encoding = tc_int32(&t, ft);
                else if (id == 8 && fid == 4) h->encoding = tc_int32(&t, ft);
                else if (id == 8 && fid == 5) h->def_len = tc_int32(&t, ft);
                else if (id == 8 && fid == 6) h->rep_len = tc_int32(&t, ft);
                else if (id == 8 && fid == 7 && (ft == T_TRUE || ft == T_FALSE)) h->is_compressed = ft == T_TRUE;
                else tc_skip(&t, ft, false);
            }
            t.depth--;
            break;
        }
        default: tc_skip(&t, type, false);
        }
    }
    if (t.short_) return 0;
    if (t.bad) return -1;
    return (long)(t.p - p);
}

void pq_meta_free(PqMeta *m) {
    for (int i = 0; i < m->nschema; i++) free(m->schema[i].name);
    free(m->schema);
    for (int g = 0; g < m->nrg; g++) {
        for (int c = 0; c < m->rgs[g].ncols; c++) {
            for (int k = 0; k < m->rgs[g].cols[c].npath; k++) free(m->rgs[g].cols[c].path[k]);
            free(m->rgs[g].cols[c].path);
        }
        free(m->rgs[g].cols);
    }
    free(m->rgs);
    memset(m, 0, sizeof *m);
}
