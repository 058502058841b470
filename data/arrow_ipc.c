/* arrow_ipc.c — see arrow_ipc.h. The stream is a sequence of messages: a continuation marker (0xFFFFFFFF), the
 * metadata's length, a flatbuffer `Message` (Schema, DictionaryBatch or RecordBatch; format/Message.fbs and
 * Schema.fbs of the Arrow repository), then the message's body (the record batch's buffers). The flatbuffers are
 * decoded by hand here, only the fields used: every offset is checked against the message before it is followed.
 * A record batch's buffers are assigned to the schema's fields depth first, as the columnar format lays them out
 * (a node per field; validity, offsets, data buffers by type), checked, and each row read from them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "arrow_ipc.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "records.h"
#include "util.h"

#define AR_MAX_META (64 << 20) /* bytes of one message's metadata */
#define AR_MAX_DEPTH 64        /* nested types */
#define AR_MAX_BATCH (1 << 24) /* rows of one record batch (datasets writes 1,000; a table's one batch: its rows) */

/* Type union ids (Schema.fbs) */
enum { T_NULL = 1, T_INT, T_FLOAT, T_BINARY, T_UTF8, T_BOOL, T_DECIMAL, T_DATE, T_TIME, T_TIMESTAMP, T_INTERVAL,
       T_LIST, T_STRUCT, T_UNION, T_FIXED_BINARY, T_FIXED_LIST, T_MAP, T_DURATION, T_LARGE_BINARY, T_LARGE_UTF8,
       T_LARGE_LIST, T_RUN_END, T_BINARY_VIEW, T_UTF8_VIEW, T_LIST_VIEW, T_LARGE_LIST_VIEW };
/* MessageHeader union ids */
enum { M_SCHEMA = 1, M_DICTIONARY = 2, M_RECORD_BATCH = 3 };

typedef struct ACol {
    char *name;
    int type;
    int bits;                /* Int: 8..64; FloatingPoint: 16, 32, 64 */
    bool is_signed;
    int fixed;               /* FixedSizeList's size */
    int union_mode;          /* 0 sparse, 1 dense */
    bool dict;               /* dictionary-encoded */
    struct ACol *kids;
    int nkids;
    /* the current record batch */
    int64_t len, nulls;
    const uint8_t *valid, *offs, *data;
    uint64_t valid_n, offs_n, data_n;
} ACol;

struct ArrowFile {
    char *path;
    FILE *f;
    int64_t size;
    ACol *cols;              /* the schema's top-level fields [ncols] */
    int ncols;
    bool *selected;          /* [ncols] */
    uint8_t *meta, *body;    /* the current message */
    size_t meta_cap, body_cap;
    int64_t body_len;
    int64_t batch_len, batch_row, row;
    long values;             /* JSON values of the current row (RECORDS_MAX_ROW_VALUES) */
    int64_t *blocks;         /* an IPC file: its record batches' offsets, from the footer [nblocks] */
    size_t nblocks, block;
    bool file_mode;
    int message;             /* messages read, for errors */
    cJSON *row_obj;
    char *sbuf;
    size_t scap;
    char where[512];
};

SD_NORETURN SD_PRINTF(2, 3) static void ar_die(ArrowFile *af, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_vdie(af->where, fmt, ap);
}

/* ---- flatbuffers: a table's fields through its vtable, offsets checked against the buffer ---- */
typedef struct {
    const uint8_t *p;
    size_t n;
    bool bad;
} FB;

static uint64_t le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
/* the position of field `field` of the table at t, 0 when absent (or the input is malformed: b->bad) */
static size_t fb_field(FB *b, size_t t, int field, size_t size) {
    if (b->bad || t == 0 || t + 4 > b->n) { b->bad = true; return 0; }
    int64_t vt = (int64_t)t - (int32_t)(uint32_t)le(b->p + t, 4);
    if (vt < 0 || (uint64_t)vt + 4 > b->n) { b->bad = true; return 0; }
    size_t vsz = (size_t)le(b->p + vt, 2), slot = 4 + 2 * (size_t)field;
    if (vsz < 4 || (uint64_t)vt + vsz > b->n) { b->bad = true; return 0; }
    if (slot + 2 > vsz) return 0;
    size_t off = (size_t)le(b->p + vt + slot, 2);
    if (!off) return 0;
    if (t + off + size > b->n) { b->bad = true; return 0; }
    return t + off;
}
static int64_t fb_int(FB *b, size_t t, int field, int size, int64_t dflt) {
    size_t pos = fb_field(b, t, field, (size_t)size);
    if (!pos) return dflt;
    uint64_t v = le(b->p + pos, size);
    if (size < 8 && (v >> (8 * size - 1)) & 1) v |= ~0ull << (8 * size); /* sign-extend */
    return (int64_t)v;
}
/* what an offset at pos points to (a table, string or vector), 0 when malformed */
static size_t fb_deref(FB *b, size_t pos) {
    if (b->bad || pos + 4 > b->n) { b->bad = true; return 0; }
    uint64_t target = pos + le(b->p + pos, 4);
    if (target == pos || target + 4 > b->n) { b->bad = true; return 0; }
    return (size_t)target;
}
static size_t fb_ref(FB *b, size_t t, int field) {
    size_t pos = fb_field(b, t, field, 4);
    return pos ? fb_deref(b, pos) : 0;
}
/* a vector's first element and its length (elements of esz bytes, within the buffer) */
static size_t fb_vec(FB *b, size_t v, size_t esz, size_t *len) {
    *len = 0;
    if (!v) return 0;
    uint64_t n = le(b->p + v, 4);
    if ((uint64_t)v + 4 + n * esz > b->n) { b->bad = true; return 0; }
    *len = (size_t)n;
    return v + 4;
}

/* ---- the schema ---- */
static const char *type_name(int t) {
    static const char *n[] = {"NONE", "Null", "Int", "FloatingPoint", "Binary", "Utf8", "Bool", "Decimal", "Date",
                              "Time", "Timestamp", "Interval", "List", "Struct", "Union", "FixedSizeBinary",
                              "FixedSizeList", "Map", "Duration", "LargeBinary", "LargeUtf8", "LargeList",
                              "RunEndEncoded", "BinaryView", "Utf8View", "ListView", "LargeListView"};
    return t >= 0 && t <= T_LARGE_LIST_VIEW ? n[t] : "an unknown type";
}

static void col_free(ACol *c) {
    for (int k = 0; k < c->nkids; k++) col_free(&c->kids[k]);
    free(c->kids);
    free(c->name);
}

static void read_field(ArrowFile *af, FB *b, size_t t, ACol *c, int depth) {
    if (depth > AR_MAX_DEPTH) ar_die(af, "the schema nests deeper than %d", AR_MAX_DEPTH);
    size_t s = fb_ref(b, t, 0);
    size_t slen = 0;
    if (s) {
        size_t p = fb_vec(b, s, 1, &slen);
        if (!b->bad) {
            c->name = sd_alloc(slen + 1, "arrow name");
            memcpy(c->name, b->p + p, slen);
            c->name[slen] = 0;
        }
    }
    if (!c->name) c->name = sd_strdup("");
    c->type = (int)fb_int(b, t, 2, 1, 0);
    size_t ty = fb_ref(b, t, 3);
    c->dict = fb_ref(b, t, 4) != 0;
    if (c->type == T_INT) {
        c->bits = (int)fb_int(b, ty, 0, 4, 0);
        c->is_signed = fb_int(b, ty, 1, 1, 0) != 0;
    } else if (c->type == T_FLOAT) {
        int prec = (int)fb_int(b, ty, 0, 2, 0);
        c->bits = prec == 0 ? 16 : prec == 1 ? 32 : prec == 2 ? 64 : 0;
    } else if (c->type == T_FIXED_LIST) c->fixed = (int)fb_int(b, ty, 0, 4, -1);
    else if (c->type == T_UNION) c->union_mode = (int)fb_int(b, ty, 0, 2, 0);
    size_t kv = fb_ref(b, t, 5), nk = 0;
    size_t k0 = fb_vec(b, kv, 4, &nk);
    if (b->bad) ar_die(af, "the schema's flatbuffer is malformed (field '%s')", c->name);
    if (c->type >= T_BINARY_VIEW && c->type <= T_LARGE_LIST_VIEW)
        ar_die(af, "field '%s' is %s, which simpo_dist does not read", c->name, type_name(c->type));
    c->kids = sd_calloc(nk + 1, sizeof *c->kids, "arrow fields");
    for (size_t k = 0; k < nk; k++) {
        c->nkids++;
        read_field(af, b, fb_deref(b, k0 + 4 * k), &c->kids[k], depth + 1);
    }
}

/* the reasons a selected field cannot be read: types and encodings this reader does not turn into JSON */
static void check_readable(ArrowFile *af, const ACol *c, const char *top) {
    if (c->dict) ar_die(af, "field '%s' is dictionary-encoded, which simpo_dist does not read", top);
    switch (c->type) {
    case T_NULL: case T_BOOL: case T_BINARY: case T_UTF8: case T_LARGE_BINARY: case T_LARGE_UTF8: break;
    case T_INT:
        if (c->bits != 8 && c->bits != 16 && c->bits != 32 && c->bits != 64)
            ar_die(af, "field '%s': an Int of %d bits", top, c->bits);
        break;
    case T_FLOAT:
        if (c->bits != 32 && c->bits != 64) ar_die(af, "field '%s': floating point of %d bits is not read", top, c->bits);
        break;
    case T_LIST: case T_LARGE_LIST: case T_MAP:
        if (c->nkids != 1) ar_die(af, "field '%s': a list with %d children", top, c->nkids);
        break;
    case T_FIXED_LIST:
        if (c->nkids != 1 || c->fixed < 0) ar_die(af, "field '%s': a malformed FixedSizeList", top);
        break;
    case T_STRUCT: break;
    default: ar_die(af, "field '%s' is (or holds) %s, which simpo_dist does not read", top, type_name(c->type));
    }
    if (c->type == T_MAP && c->kids[0].type != T_STRUCT) ar_die(af, "field '%s': a Map whose entries are not a struct", top);
    for (int k = 0; k < c->nkids; k++) check_readable(af, &c->kids[k], top);
}

/* ---- messages ---- */
static void read_exact(ArrowFile *af, void *p, size_t n, const char *what) {
    if (n && fread(p, 1, n, af->f) != n)
        ar_die(af, "the file ends inside %s (truncated, or still being written?)", what);
}

/* Reads the next message: its header type (0 at the end of the stream), the flatbuffer in af->meta, the header
 * table's position in *hdr, the body in af->body. */
static int read_message(ArrowFile *af, FB *b, size_t *hdr) {
    uint8_t w[4];
    size_t got = fread(w, 1, 4, af->f);
    if (got == 0) return 0; /* the end without an end-of-stream marker: pyarrow writes one, others may not */
    af->message++;
    snprintf(af->where, sizeof af->where, "%s: message %d", af->path, af->message);
    if (got != 4) ar_die(af, "the file ends inside a message's length");
    int32_t len = (int32_t)le(w, 4);
    if (len == -1) { /* the continuation marker, then the length */
        read_exact(af, w, 4, "a message's length");
        len = (int32_t)le(w, 4);
    }
    if (len == 0) return 0; /* end of stream */
    int64_t left = af->size - (int64_t)ftello(af->f);
    if (len < 0 || len > AR_MAX_META || len > left)
        ar_die(af, "its metadata claims %d bytes (%lld left in the file, at most %d)", len, (long long)left,
               AR_MAX_META);
    if ((size_t)len > af->meta_cap) af->meta = sd_realloc(af->meta, af->meta_cap = (size_t)len, "arrow message");
    read_exact(af, af->meta, (size_t)len, "a message");
    *b = (FB){af->meta, (size_t)len, false};
    size_t root = b->n >= 4 ? (size_t)le(b->p, 4) : 0;
    int type = (int)fb_int(b, root, 1, 1, 0);
    *hdr = fb_ref(b, root, 2);
    int64_t body = fb_int(b, root, 3, 8, 0);
    if (b->bad || !*hdr) ar_die(af, "its Message flatbuffer is malformed");
    left = af->size - (int64_t)ftello(af->f);
    if (body < 0 || body > left)
        ar_die(af, "its body claims %lld bytes, %lld are left in the file", (long long)body, (long long)left);
    if ((uint64_t)body > af->body_cap) af->body = sd_realloc(af->body, af->body_cap = (size_t)body, "arrow body");
    read_exact(af, af->body, (size_t)body, "a message's body");
    af->body_len = body;
    return type;
}

bool arrow_is_arrow(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    uint8_t m[6];
    size_t n = fread(m, 1, 6, f);
    fclose(f);
    return n == 6 && (!memcmp(m, "ARROW1", 6) || !memcmp(m, "\xff\xff\xff\xff", 4));
}

static void release(void *af) { arrow_close(af); }

ArrowFile *arrow_open(const char *path, const char *const *fields, int nfields) {
    ArrowFile *af = sd_calloc(1, sizeof *af, "arrow file");
    af->path = sd_strdup(path);
    snprintf(af->where, sizeof af->where, "%s", path);
    sd_cleanup_push(release, af);
    af->f = fopen(path, "rb");
    if (!af->f) ar_die(af, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(af->f), &st) != 0) ar_die(af, "cannot stat: %s", strerror(errno));
    af->size = st.st_size;
    uint8_t m[8];
    af->file_mode = fread(m, 1, 8, af->f) == 8 && !memcmp(m, "ARROW1", 6);
    rewind(af->f);
    FB b;
    size_t hdr;
    if (af->file_mode) { /* the footer's schema and record batch blocks (a writer need not repeat the schema as the
                          * stream's first message: apache-arrow's does not) */
        int64_t fl = -1;
        uint8_t t[10];
        if (af->size >= 8 + 10 && fseeko(af->f, af->size - 10, SEEK_SET) == 0 && fread(t, 1, 10, af->f) == 10 &&
            !memcmp(t + 4, "ARROW1", 6))
            fl = (int32_t)le(t, 4);
        if (fl < 4 || fl > AR_MAX_META || fl > af->size - 8 - 10) /* 4: the flatbuffer's root offset */
            ar_die(af, "an Arrow IPC file without a valid footer (truncated, or still being written?)");
        af->meta = sd_realloc(af->meta, af->meta_cap = (size_t)fl, "arrow footer");
        if (fseeko(af->f, af->size - 10 - fl, SEEK_SET) != 0) ar_die(af, "cannot seek to the footer");
        read_exact(af, af->meta, (size_t)fl, "the footer");
        b = (FB){af->meta, (size_t)fl, false};
        size_t root = (size_t)le(b.p, 4);
        hdr = fb_ref(&b, root, 1);
        size_t nbl = 0, bl0 = fb_vec(&b, fb_ref(&b, root, 3), 24, &nbl);
        if (b.bad || !hdr) ar_die(af, "its footer's flatbuffer is malformed");
        af->blocks = sd_calloc(nbl + 1, sizeof *af->blocks, "arrow blocks");
        for (size_t i = 0; i < nbl; i++) af->blocks[i] = (int64_t)le(b.p + bl0 + 24 * i, 8);
        af->nblocks = nbl;
    } else {
        int type = read_message(af, &b, &hdr);
        if (type != M_SCHEMA) ar_die(af, "the stream does not start with a Schema message (found type %d)", type);
    }
    if (fb_int(&b, hdr, 0, 2, 0) != 0) ar_die(af, "big-endian data, which simpo_dist does not read");
    size_t nf = 0, f0 = fb_vec(&b, fb_ref(&b, hdr, 1), 4, &nf);
    if (b.bad) ar_die(af, "its Schema flatbuffer is malformed");
    af->cols = sd_calloc(nf + 1, sizeof *af->cols, "arrow fields");
    af->selected = sd_calloc(nf + 1, sizeof *af->selected, "arrow fields");
    for (size_t k = 0; k < nf; k++) {
        af->ncols++;
        read_field(af, &b, fb_deref(&b, f0 + 4 * k), &af->cols[k], 0);
        bool sel = nfields == 0;
        for (int j = 0; j < nfields && !sel; j++) sel = !strcmp(fields[j], af->cols[k].name);
        for (size_t j = 0; j < k && sel; j++)
            if (af->selected[j] && !strcmp(af->cols[j].name, af->cols[k].name))
                ar_die(af, "the schema has two fields named '%s'", af->cols[k].name);
        af->selected[k] = sel;
        if (sel) check_readable(af, &af->cols[k], af->cols[k].name);
    }
    sd_cleanup_pop();
    return af;
}

bool arrow_has_field(const ArrowFile *af, const char *name) {
    for (int k = 0; k < af->ncols; k++)
        if (af->selected[k] && !strcmp(af->cols[k].name, name)) return true;
    return false;
}

void arrow_field_names(const ArrowFile *af, char *buf, size_t n) {
    if (!n) return;
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < af->ncols; k++) {
        int w = snprintf(buf + len, n - len, "%s%s", k ? ", " : "", af->cols[k].name);
        if (w < 0 || (size_t)w >= n - len) return;
        len += (size_t)w;
    }
}

/* ---- a record batch's buffers onto the fields ---- */
typedef struct {
    const uint8_t *nodes, *bufs;   /* FieldNode and Buffer structs, 16 bytes each */
    size_t nn, nb, ni, bi;
} Assign;

static const uint8_t *take_buffer(ArrowFile *af, Assign *a, uint64_t *len, const char *name) {
    if (a->bi >= a->nb) ar_die(af, "its record batch has fewer buffers than the schema needs (field '%s')", name);
    const uint8_t *s = a->bufs + 16 * a->bi++;
    int64_t off = (int64_t)le(s, 8), n = (int64_t)le(s + 8, 8);
    if (off < 0 || n < 0 || off > af->body_len || n > af->body_len - off)
        ar_die(af, "field '%s': a buffer (offset %lld, %lld bytes) outside the body's %lld bytes", name,
               (long long)off, (long long)n, (long long)af->body_len);
    *len = (uint64_t)n;
    return af->body + off;
}

/* assigns the nodes and buffers of one field (depth first); checks the selected ones' buffers */
static void assign(ArrowFile *af, Assign *a, ACol *c, bool check) {
    if (a->ni >= a->nn) ar_die(af, "its record batch has fewer field nodes than the schema has fields");
    const uint8_t *node = a->nodes + 16 * a->ni++;
    c->len = (int64_t)le(node, 8), c->nulls = (int64_t)le(node + 8, 8);
    if (c->len < 0 || c->nulls < 0 || c->nulls > c->len)
        ar_die(af, "field '%s': a node of %lld values, %lld null", c->name, (long long)c->len, (long long)c->nulls);
    c->valid = c->offs = c->data = NULL;
    c->valid_n = c->offs_n = c->data_n = 0;
    int kids = c->nkids;
    if (c->dict) { /* the indices only: an Int array */
        c->valid = take_buffer(af, a, &c->valid_n, c->name);
        c->data = take_buffer(af, a, &c->data_n, c->name);
        return;
    }
    switch (c->type) {
    case T_NULL: break;
    case T_STRUCT: case T_FIXED_LIST: c->valid = take_buffer(af, a, &c->valid_n, c->name); break;
    case T_LIST: case T_LARGE_LIST: case T_MAP:
        c->valid = take_buffer(af, a, &c->valid_n, c->name);
        c->offs = take_buffer(af, a, &c->offs_n, c->name);
        break;
    case T_BINARY: case T_UTF8: case T_LARGE_BINARY: case T_LARGE_UTF8:
        c->valid = take_buffer(af, a, &c->valid_n, c->name);
        c->offs = take_buffer(af, a, &c->offs_n, c->name);
        c->data = take_buffer(af, a, &c->data_n, c->name);
        break;
    case T_UNION:
        c->data = take_buffer(af, a, &c->data_n, c->name);
        if (c->union_mode == 1) c->offs = take_buffer(af, a, &c->offs_n, c->name);
        break;
    case T_RUN_END: break;
    default: /* fixed-width values: validity and data */
        c->valid = take_buffer(af, a, &c->valid_n, c->name);
        c->data = take_buffer(af, a, &c->data_n, c->name);
    }
    for (int k = 0; k < kids; k++) assign(af, a, &c->kids[k], check); /* depth bounded by the schema's */
    if (!check) return;
    /* the selected field's buffers hold what its len values need */
    uint64_t n = (uint64_t)c->len;
    if (c->nulls && c->valid_n < (n + 7) / 8) ar_die(af, "field '%s': its validity bitmap is short", c->name);
    bool large = c->type == T_LARGE_BINARY || c->type == T_LARGE_UTF8 || c->type == T_LARGE_LIST;
    int ow = large ? 8 : 4;
    if (c->offs && n) {
        if (c->offs_n < (n + 1) * (uint64_t)ow) ar_die(af, "field '%s': its offsets are short", c->name);
        int64_t prev = (int64_t)le(c->offs, ow);
        if (ow == 4) prev = (int32_t)prev;
        if (prev < 0) ar_die(af, "field '%s': a negative offset", c->name);
        for (uint64_t i = 1; i <= n; i++) {
            int64_t o = (int64_t)le(c->offs + i * (uint64_t)ow, ow);
            if (ow == 4) o = (int32_t)o;
            if (o < prev) ar_die(af, "field '%s': its offsets decrease at value %llu", c->name, (unsigned long long)i);
            prev = o;
        }
        uint64_t limit = c->data ? c->data_n : (uint64_t)c->kids[0].len;
        if ((uint64_t)prev > limit)
            ar_die(af, "field '%s': its offsets reach %lld, beyond the %llu it indexes", c->name, (long long)prev,
                   (unsigned long long)limit);
    }
    if (c->type == T_INT || c->type == T_FLOAT) {
        if (c->data_n / (uint64_t)(c->bits / 8) < n) ar_die(af, "field '%s': its values are short", c->name);
    } else if (c->type == T_BOOL && c->data_n < (n + 7) / 8) ar_die(af, "field '%s': its values are short", c->name);
    if (c->type == T_FIXED_LIST && (uint64_t)c->kids[0].len / (c->fixed ? (uint64_t)c->fixed : 1) < (c->fixed ? n : 0))
        ar_die(af, "field '%s': its values are short", c->name);
    if (c->type == T_STRUCT)
        for (int k = 0; k < kids; k++)
            if (c->kids[k].len < c->len) ar_die(af, "field '%s': its field '%s' is short", c->name, c->kids[k].name);
}

/* the next record batch: false at the end of the stream */
static bool next_batch(ArrowFile *af) {
    for (;;) {
        FB b;
        size_t hdr;
        if (af->file_mode) { /* the footer's next block */
            if (af->block >= af->nblocks) return false;
            int64_t off = af->blocks[af->block++];
            if (off < 8 || off >= af->size || fseeko(af->f, off, SEEK_SET) != 0)
                ar_die(af, "its footer places record batch %zu at byte %lld, outside the file", af->block,
                       (long long)off);
        }
        int type = read_message(af, &b, &hdr);
        if (af->file_mode && type != M_RECORD_BATCH)
            ar_die(af, "its footer's record batch %zu is a message of type %d", af->block, type);
        if (type == 0) return false;
        if (type == M_SCHEMA) ar_die(af, "a second Schema message");
        if (type != M_RECORD_BATCH) continue; /* dictionaries: only for fields not selected (refused at open) */
        int64_t len = fb_int(&b, hdr, 0, 8, 0);
        size_t nn = 0, nb = 0;
        size_t n0 = fb_vec(&b, fb_ref(&b, hdr, 1), 16, &nn), b0 = fb_vec(&b, fb_ref(&b, hdr, 2), 16, &nb);
        if (fb_ref(&b, hdr, 3)) ar_die(af, "a compressed record batch (LZ4 or ZSTD buffers), which simpo_dist does not "
                                           "read (datasets writes them uncompressed)");
        if (b.bad || len < 0) ar_die(af, "its RecordBatch flatbuffer is malformed");
        if (len > AR_MAX_BATCH) ar_die(af, "a record batch of %lld rows (at most %d)", (long long)len, AR_MAX_BATCH);
        Assign a = {b.p + n0, b.p + b0, nn, nb, 0, 0};
        for (int k = 0; k < af->ncols; k++) {
            assign(af, &a, &af->cols[k], af->selected[k]);
            if (af->selected[k] && af->cols[k].len < len)
                ar_die(af, "field '%s' has %lld values in a batch of %lld rows", af->cols[k].name,
                       (long long)af->cols[k].len, (long long)len);
        }
        af->batch_len = len;
        af->batch_row = 0;
        if (len) return true;
    }
}

/* ---- values ---- */
static bool is_null(const ACol *c, int64_t i) {
    return c->nulls && !((c->valid[i >> 3] >> (i & 7)) & 1);
}
static int64_t offset_at(const ACol *c, int64_t i) {
    bool large = c->type == T_LARGE_BINARY || c->type == T_LARGE_UTF8 || c->type == T_LARGE_LIST;
    return large ? (int64_t)le(c->offs + 8 * i, 8) : (int64_t)(int32_t)le(c->offs + 4 * i, 4);
}

static cJSON *value(ArrowFile *af, const ACol *c, int64_t i) {
    if (++af->values > RECORDS_MAX_ROW_VALUES)
        ar_die(af, "row %lld holds more than %d values (the limit of one record)", (long long)af->row,
               RECORDS_MAX_ROW_VALUES);
    if (c->type == T_NULL || is_null(c, i)) return cJSON_CreateNull();
    switch (c->type) {
    case T_BOOL: return cJSON_CreateBool((c->data[i >> 3] >> (i & 7)) & 1);
    case T_INT: {
        int w = c->bits / 8;
        uint64_t v = le(c->data + (size_t)i * (size_t)w, w);
        if (c->is_signed) {
            if (w < 8 && (v >> (8 * w - 1)) & 1) v |= ~0ull << (8 * w);
            return cJSON_CreateNumber((double)(int64_t)v);
        }
        return cJSON_CreateNumber((double)v);
    }
    case T_FLOAT: {
        if (c->bits == 32) {
            float f;
            memcpy(&f, c->data + 4 * i, 4);
            return cJSON_CreateNumber(f);
        }
        double d;
        memcpy(&d, c->data + 8 * i, 8);
        return cJSON_CreateNumber(d);
    }
    case T_BINARY: case T_UTF8: case T_LARGE_BINARY: case T_LARGE_UTF8: {
        int64_t s = offset_at(c, i), e = offset_at(c, i + 1);
        size_t n = (size_t)(e - s);
        if (memchr(c->data + s, 0, n)) ar_die(af, "field '%s': a string holds a NUL byte (row %lld)", c->name,
                                              (long long)af->row);
        if (n + 1 > af->scap) af->sbuf = sd_realloc(af->sbuf, af->scap = n + 1, "arrow string");
        memcpy(af->sbuf, c->data + s, n);
        af->sbuf[n] = 0;
        return cJSON_CreateString(af->sbuf);
    }
    case T_LIST: case T_LARGE_LIST: case T_MAP: case T_FIXED_LIST: {
        int64_t s, e;
        if (c->type == T_FIXED_LIST) s = i * c->fixed, e = s + c->fixed;
        else s = offset_at(c, i), e = offset_at(c, i + 1);
        cJSON *arr = cJSON_CreateArray();
        for (int64_t j = s; j < e && arr; j++) cJSON_AddItemToArray(arr, value(af, &c->kids[0], j));
        return arr;
    }
    case T_STRUCT: {
        cJSON *o = cJSON_CreateObject();
        for (int k = 0; k < c->nkids && o; k++) cJSON_AddItemToObject(o, c->kids[k].name, value(af, &c->kids[k], i));
        return o;
    }
    default: ar_die(af, "field '%s': %s values are not read", c->name, type_name(c->type));
    }
}

const cJSON *arrow_next_row(ArrowFile *af, int64_t *row_out) {
    cJSON_Delete(af->row_obj);
    af->row_obj = NULL;
    if (af->batch_row >= af->batch_len && !next_batch(af)) {
        snprintf(af->where, sizeof af->where, "%s", af->path);
        return NULL;
    }
    af->row++;
    af->values = 0;
    int64_t i = af->batch_row++;
    af->row_obj = cJSON_CreateObject();
    for (int k = 0; k < af->ncols && af->row_obj; k++)
        if (af->selected[k]) cJSON_AddItemToObject(af->row_obj, af->cols[k].name, value(af, &af->cols[k], i));
    if (!af->row_obj) sd_die("memory", "out of memory building a row of %s", af->path);
    if (row_out) *row_out = af->row;
    return af->row_obj;
}

void arrow_close(ArrowFile *af) {
    if (!af) return;
    if (af->f) fclose(af->f);
    for (int k = 0; k < af->ncols; k++) col_free(&af->cols[k]);
    free(af->cols);
    free(af->selected);
    free(af->blocks);
    free(af->meta);
    free(af->body);
    cJSON_Delete(af->row_obj);
    free(af->sbuf);
    free(af->path);
    free(af);
}
