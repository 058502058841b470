/* read_tfevents.c — test tool: reads TensorBoard event files with a protocol buffer wire-format parser of its own
 * (not tfevents.c's encoder) and prints what they hold, one line each:
 *   version STRING          an Event's file_version
 *   STEP TAG VALUE          each Summary.Value's simple_value (%.9g of the float)
 * Every record's two masked CRC-32C checksums are verified (tf_crc32c itself is checked against RFC 3720's vectors in
 * tests/unit/test_tfevents.c). usage: read_tfevents FILE_OR_DIR (a directory: its events.out.tfevents.* files in
 * name order). Exit 1 on a malformed file, naming it and the byte offset. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tfevents.h"
#include "util.h"

static const char *g_file;
static int fail(size_t at, const char *what) {
    fprintf(stderr, "read_tfevents: %s: byte %zu: %s\n", g_file, at, what);
    exit(1);
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
/* a varint at p[*i] (< end); advances *i */
static uint64_t varint(const unsigned char *p, size_t *i, size_t end) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (*i >= end) fail(*i, "truncated varint");
        unsigned char b = p[(*i)++];
        v |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) return v;
    }
    return fail(*i, "varint too long"), 0;
}
/* one field: its number, wire type, and (for wire types 0, 1, 5) its value or (2) its bytes [*off, *off + *len) */
typedef struct {
    int field, wire;
    uint64_t v;
    size_t off, len;
} Field;
static Field next_field(const unsigned char *p, size_t *i, size_t end) {
    Field f = {0};
    uint64_t key = varint(p, i, end);
    f.field = (int)(key >> 3), f.wire = (int)(key & 7);
    switch (f.wire) {
    case 0: f.v = varint(p, i, end); break;
    case 1:
        if (*i + 8 > end) fail(*i, "truncated fixed64");
        f.v = le(p + *i, 8), *i += 8;
        break;
    case 5:
        if (*i + 4 > end) fail(*i, "truncated fixed32");
        f.v = le(p + *i, 4), *i += 4;
        break;
    case 2:
        f.len = (size_t)varint(p, i, end), f.off = *i;
        if (f.off + f.len > end) fail(*i, "length past the message");
        *i += f.len;
        break;
    default: fail(*i, "unknown wire type");
    }
    return f;
}

static void event(const unsigned char *p, size_t n) {
    long step = 0;
    size_t i = 0, sum_off = 0, sum_len = 0;
    int has_sum = 0;
    while (i < n) {
        Field f = next_field(p, &i, n);
        if (f.field == 2 && f.wire == 0) step = (long)(int64_t)f.v;
        else if (f.field == 3 && f.wire == 2) printf("version %.*s\n", (int)f.len, (const char *)p + f.off);
        else if (f.field == 5 && f.wire == 2) sum_off = f.off, sum_len = f.len, has_sum = 1;
    }
    if (!has_sum) return;
    size_t j = sum_off, end = sum_off + sum_len;
    while (j < end) { /* Summary: repeated Value value = 1 */
        Field v = next_field(p, &j, end);
        if (v.field != 1 || v.wire != 2) continue;
        size_t k = v.off, vend = v.off + v.len;
        const char *tag = NULL;
        size_t tlen = 0;
        int has_val = 0;
        float val = 0;
        while (k < vend) {
            Field g = next_field(p, &k, vend);
            if (g.field == 1 && g.wire == 2) tag = (const char *)p + g.off, tlen = g.len;
            else if (g.field == 2 && g.wire == 5) {
                uint32_t b = (uint32_t)g.v;
                memcpy(&val, &b, 4);
                has_val = 1;
            }
        }
        if (!tag || !has_val) fail(v.off, "a Summary.Value without tag or simple_value");
        printf("%ld %.*s %.9g\n", step, (int)tlen, tag, (double)val);
    }
}

static void read_file(const char *path) {
    g_file = path;
    size_t n;
    unsigned char *p = (unsigned char *)sd_read_file(path, &n);
    if (!p) fail(0, "cannot read");
    for (size_t at = 0; at < n;) {
        if (at + 12 > n) fail(at, "truncated record header");
        uint64_t len = le(p + at, 8);
        if ((uint32_t)le(p + at + 8, 4) != tf_masked_crc(p + at, 8)) fail(at, "length checksum");
        if (at + 12 + len + 4 > n) fail(at, "truncated record");
        if ((uint32_t)le(p + at + 12 + len, 4) != tf_masked_crc(p + at + 12, (size_t)len)) fail(at, "data checksum");
        event(p + at + 12, (size_t)len);
        at += 12 + len + 4;
    }
    free(p);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: read_tfevents FILE_OR_DIR\n");
        return 2;
    }
    if (!sd_dir_exists(argv[1])) {
        read_file(argv[1]);
        return 0;
    }
    DIR *d = opendir(argv[1]);
    char **names = NULL;
    size_t k = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) {
            names = sd_realloc(names, (k + 1) * sizeof *names, "names");
            names[k++] = sd_path_join(argv[1], e->d_name);
        }
    if (d) closedir(d);
    if (!k) {
        fprintf(stderr, "read_tfevents: %s: no events.out.tfevents.* file\n", argv[1]);
        return 1;
    }
    qsort(names, k, sizeof *names, by_name);
    for (size_t i = 0; i < k; i++) read_file(names[i]), free(names[i]);
    free(names);
    return 0;
}
