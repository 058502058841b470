/* tfevents.c — see tfevents.h. The protocol buffer encoding is written by hand: three message types, a handful of
 * fields (tensorflow/core/util/event.proto: Event {double wall_time = 1; int64 step = 2; string file_version = 3;
 * Summary summary = 5}; summary.proto: Summary {repeated Value value = 1}, Value {string tag = 1; float
 * simple_value = 2}), no dependency for that. */
#define _POSIX_C_SOURCE 200809L
#include "tfevents.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "util.h"

struct TfWriter {
    FILE *f;
    char *path;
};

uint32_t tf_crc32c(const void *data, size_t n) {
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) { /* the reflected Castagnoli polynomial, bit by bit: 256 entries once */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tf_masked_crc(const void *data, size_t n) {
    uint32_t c = tf_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

/* a growing byte buffer for one message */
typedef struct {
    unsigned char *b;
    size_t n, cap;
} Buf;
static void put(Buf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 64;
        o->b = sd_realloc(o->b, o->cap, "event");
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_varint(Buf *o, uint64_t v) {
    unsigned char t[10];
    int k = 0;
    do {
        t[k] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v);
    put(o, t, (size_t)k);
}
static void put_le(Buf *o, uint64_t v, int bytes) {
    unsigned char t[8];
    for (int i = 0; i < bytes; i++) t[i] = (unsigned char)(v >> (8 * i));
    put(o, t, (size_t)bytes);
}
static void put_key(Buf *o, int field, int wire) { put_varint(o, (uint64_t)field << 3 | (uint64_t)wire); }
static void put_bytes(Buf *o, int field, const void *p, size_t n) {
    put_key(o, field, 2);
    put_varint(o, n);
    put(o, p, n);
}

/* the record of one serialized event, flushed */
static void write_record(TfWriter *w, const Buf *ev) {
    Buf r = {0};
    put_le(&r, ev->n, 8);
    put_le(&r, tf_masked_crc(r.b, 8), 4);
    put(&r, ev->b, ev->n);
    put_le(&r, tf_masked_crc(ev->b, ev->n), 4);
    if (fwrite(r.b, 1, r.n, w->f) != r.n || fflush(w->f) != 0) sd_die(w->path, "cannot write: %s", strerror(errno));
    free(r.b);
}
/* Event's wall_time and step */
static void put_head(Buf *ev, double wall_time, long step) {
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    put_key(ev, 1, 1);
    put_le(ev, bits, 8);
    put_key(ev, 2, 0);
    put_varint(ev, (uint64_t)(int64_t)step); /* int64: two's complement, as protobuf encodes a negative one */
}

TfWriter *tf_open(const char *dir) {
    sd_mkdirs(dir);
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    double now = (double)time(NULL);
    char name[512];
    snprintf(name, sizeof name, "events.out.tfevents.%ld.%s.%ld.simpo_dist", (long)now, host, (long)getpid());
    TfWriter *w = sd_calloc(1, sizeof *w, "event writer");
    w->path = sd_path_join(dir, name);
    w->f = fopen(w->path, "wb");
    if (!w->f) sd_die(w->path, "cannot create: %s", strerror(errno));
    Buf ev = {0};
    put_head(&ev, now, 0);
    put_bytes(&ev, 3, "brain.Event:2", 13);
    write_record(w, &ev);
    free(ev.b);
    return w;
}

void tf_scalars(TfWriter *w, long step, double wall_time, const char *const *tags, const double *values, int n) {
    Buf sum = {0}, val = {0}, ev = {0};
    for (int i = 0; i < n; i++) {
        val.n = 0;
        put_bytes(&val, 1, tags[i], strlen(tags[i]));
        float f = (float)values[i];
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_key(&val, 2, 5);
        put_le(&val, bits, 4);
        put_bytes(&sum, 1, val.b, val.n);
    }
    put_head(&ev, wall_time, step);
    put_bytes(&ev, 5, sum.b, sum.n);
    write_record(w, &ev);
    free(sum.b), free(val.b), free(ev.b);
}

const char *tf_path(const TfWriter *w) { return w->path; }

void tf_close(TfWriter *w) {
    if (!w) return;
    if (fclose(w->f) != 0) sd_die(w->path, "cannot close: %s", strerror(errno));
    free(w->path);
    free(w);
}
