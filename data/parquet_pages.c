/* parquet_pages.c — one column chunk read page by page: the page header, the page's bytes decompressed with the
 * codec's own library, the repetition and definition levels (RLE / bit-packed hybrid) and the non-null values in
 * the page's encoding. Byte-array values are views into the page (or the dictionary), valid until the next page.
 * See parquet_internal.h and parquet.h for what is supported. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "parquet_internal.h"
#ifdef SIMPO_HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef SIMPO_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef SIMPO_HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef SIMPO_HAVE_LZ4
#include <lz4.h>
#endif
#ifdef SIMPO_HAVE_BROTLI
#include <brotli/decode.h>
#endif

const char *parquet_codecs(void) {
    return "uncompressed"
#ifdef SIMPO_HAVE_SNAPPY
           " snappy"
#endif
#ifdef SIMPO_HAVE_ZLIB
           " gzip"
#endif
#ifdef SIMPO_HAVE_ZSTD
           " zstd"
#endif
#ifdef SIMPO_HAVE_LZ4
           " lz4_raw"
#endif
#ifdef SIMPO_HAVE_BROTLI
           " brotli"
#endif
        ;
}

static const char *codec_name(int c);
static const char *codec_package(int c);

bool pq_codec_supported(int c) {
    switch (c) {
    case PQ_UNCOMPRESSED: return true;
#ifdef SIMPO_HAVE_SNAPPY
    case PQ_SNAPPY: return true;
#endif
#ifdef SIMPO_HAVE_ZLIB
    case PQ_GZIP: return true;
#endif
#ifdef SIMPO_HAVE_ZSTD
    case PQ_ZSTD: return true;
#endif
#ifdef SIMPO_HAVE_LZ4
    case PQ_LZ4_RAW: return true;
#endif
#ifdef SIMPO_HAVE_BROTLI
    case PQ_BROTLI: return true;
#endif
    default: return false;
    }
}

void pq_die_codec(ParquetFile *pf, int codec) {
    const char *pkg = codec_package(codec);
    if (pkg)
        pq_die(pf, "compressed with %s, which this build does not decompress (it has: %s); install %s and rebuild",
               codec_name(codec), parquet_codecs(), pkg);
    pq_die(pf, "compressed with %s (codec %d), which simpo_dist does not read (it reads: %s)", codec_name(codec),
           codec, parquet_codecs());
}

static const char *codec_name(int c) {
    static const char *names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
    return c >= 0 && c < 8 ? names[c] : "an unknown codec";
}
static const char *codec_package(int c) {
    switch (c) {
    case PQ_SNAPPY: return "libsnappy-dev";
    case PQ_GZIP: return "zlib1g-dev";
    case PQ_ZSTD: return "libzstd-dev";
    case PQ_LZ4_RAW: return "liblz4-dev";
    case PQ_BROTLI: return "libbrotli-dev";
    default: return NULL;
    }
}

/* Reads n bytes at file offset off into buf (the caller checked they lie in the file). */
static void read_at(ParquetFile *pf, void *buf, size_t n, int64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(pf->fd, (char *)buf + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) pq_die(pf, "read error at byte %lld: %s", (long long)(off + (int64_t)got),
                           r < 0 ? strerror(errno) : "the file ended (was it truncated while being read?)");
        got += (size_t)r;
    }
}

/* Decompresses src[0..n) into dst[0..want) exactly. */
static void decompress(ParquetFile *pf, int codec, const uint8_t *src, size_t n, uint8_t *dst, size_t want) {
    bool ok = false;
    switch (codec) {
    case PQ_UNCOMPRESSED:
        if (n == want) { memcpy(dst, src, n); ok = true; }
        break;
#ifdef SIMPO_HAVE_SNAPPY
    case PQ_SNAPPY: {
        size_t len = 0;
        if (snappy_uncompressed_length((const char *)src, n, &len) == SNAPPY_OK && len == want) {
            size_t out = want;
            ok = snappy_uncompress((const char *)src, n, (char *)dst, &out) == SNAPPY_OK && out == want;
        }
        break;
    }
#endif
#ifdef SIMPO_HAVE_ZLIB
    case PQ_GZIP: {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, 15 + 32) != Z_OK) break; /* +32: gzip or zlib header, detected */
        z.next_in = (Bytef *)src;
        z.avail_in = (uInt)n;
        z.next_out = dst;
        z.avail_out = (uInt)want;
        int r = Z_OK;
        while (r == Z_OK) r = inflate(&z, Z_FINISH);
        /* a gzip stream of several members: go on while input is left */
        while (r == Z_STREAM_END && z.avail_in > 0 && z.avail_out > 0) {
            if (inflateReset(&z) != Z_OK) break;
            r = Z_OK;
            while (r == Z_OK) r = inflate(&z, Z_FINISH);
        }
        ok = r == Z_STREAM_END && z.total_out == want;
        inflateEnd(&z);
        break;
    }
#endif
#ifdef SIMPO_HAVE_ZSTD
    case PQ_ZSTD: {
        size_t r = ZSTD_decompress(dst, want, src, n);
        ok = !ZSTD_isError(r) && r == want;
        break;
    }
#endif
#ifdef SIMPO_HAVE_LZ4
    case PQ_LZ4_RAW:
        if (n <= INT32_MAX && want <= INT32_MAX)
            ok = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)want) == (int)want;
        break;
#endif
#ifdef SIMPO_HAVE_BROTLI
    case PQ_BROTLI: {
        size_t out = want;
        ok = BrotliDecoderDecompress(n, src, &out, dst) == BROTLI_DECODER_RESULT_SUCCESS && out == want;
        break;
    }
#endif
    default: pq_die_codec(pf, codec);
    }
    if (!ok) pq_die(pf, "the %s data does not decompress to the %zu bytes its page header gives", codec_name(codec),
                    want);
}

/* ---- RLE / bit-packed hybrid (levels, dictionary indices, RLE booleans) ---- */
typedef struct { const uint8_t *p, *end; } Bytes;

static uint64_t bytes_varint(Bytes *b, bool *ok) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (b->p >= b->end) { *ok = false; return 0; }
        uint8_t x = *b->p++;
        v |= (uint64_t)(x & 0x7f) << s;
        if (!(x & 0x80)) return v;
    }
    *ok = false;
    return 0;
}

/* n values of bit width w (0..32) into out; false when the bytes end first or a value exceeds max. */
static bool hybrid_decode(Bytes b, int w, uint32_t *out, int64_t n, uint32_t max) {
    int64_t got = 0;
    bool ok = true;
    while (got < n) {
        uint64_t h = bytes_varint(&b, &ok);
        if (!ok) return false;
        if (h & 1) { /* bit-packed: (h >> 1) groups of 8 values, w bits each, least significant bit first */
            uint64_t groups = h >> 1;
            if (groups == 0 || (w && groups > (uint64_t)(b.end - b.p) / (uint64_t)w)) return false;
            uint64_t count = groups * 8;
            const uint8_t *base = b.p;
            for (uint64_t k = 0; k < count && got < n; k++) {
                uint64_t bit = k * (uint64_t)w;
                uint64_t v = 0;
                for (int j = 0; j < w; j++) {
                    uint64_t q = bit + (uint64_t)j;
                    v |= (uint64_t)((base[q >> 3] >> (q & 7)) & 1) << j;
                }
                if (v > max) return false;
                out[got++] = (uint32_t)v;
            }
            b.p += groups * (uint64_t)w;
        } else { /* run: (h >> 1) copies of a value of ceil(w / 8) bytes */
            uint64_t run = h >> 1;
            int nb = (w + 7) / 8;
            if (b.end - b.p < nb) return false;
            uint64_t v = 0;
            for (int j = 0; j < nb; j++) v |= (uint64_t)b.p[j] << (8 * j);
            b.p += nb;
            if (v > max) return false;
            if (run == 0) continue;
            for (uint64_t k = 0; k < run && got < n; k++) out[got++] = (uint32_t)v;
        }
    }
    return true;
}

static int bit_width(uint32_t max) {
    int w = 0;
    while (w < 32 && (max >> w)) w++;
    return w;
}

/* Levels of a page into lv[0..n) (max level max > 0). */
static void decode_levels(ParquetFile *pf, Bytes b, int max, uint16_t *lv, int64_t n, const char *what,
                          uint32_t *tmp) {
    if (!hybrid_decode(b, bit_width((uint32_t)max), tmp, n, (uint32_t)max))
        pq_die(pf, "its %s levels are malformed (short, or beyond the column's maximum %d)", what, max);
    for (int64_t i = 0; i < n; i++) lv[i] = (uint16_t)tmp[i];
}

/* ---- values ---- */
static int64_t le_int(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int j = 0; j < bytes; j++) v |= (uint64_t)p[j] << (8 * j);
    if (bytes == 4) return (int32_t)(uint32_t)v;
    return (int64_t)v;
}
static double le_float(const uint8_t *p, int bytes) {
    if (bytes == 4) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    double d;
    memcpy(&d, p, 8);
    return d;
}
static int fixed_bytes(int type) {
    switch (type) {
    case PQ_INT32: case PQ_FLOAT: return 4;
    case PQ_INT64: case PQ_DOUBLE: return 8;
    case PQ_INT96: return 12;
    default: return 0;
    }
}

/* PLAIN: n values of the column's type from b into v; returns the bytes used, -1 when they run short. */
static int64_t decode_plain(const PqCursor *c, Bytes b, PqValue *v, int64_t n) {
    const uint8_t *start = b.p;
    if (c->type == PQ_BOOLEAN) {
        if ((uint64_t)(b.end - b.p) < ((uint64_t)n + 7) / 8) return -1;
        for (int64_t i = 0; i < n; i++) v[i].i = (b.p[i >> 3] >> (i & 7)) & 1;
        return (n + 7) / 8;
    }
    if (c->type == PQ_BYTE_ARRAY) {
        for (int64_t i = 0; i < n; i++) {
            if (b.end - b.p < 4) return -1;
            uint32_t len = (uint32_t)le_int(b.p, 4);
            b.p += 4;
            if ((uint64_t)len > (uint64_t)(b.end - b.p)) return -1;
            v[i].s.p = b.p;
            v[i].s.n = len;
            b.p += len;
        }
        return b.p - start;
    }
    int k = fixed_bytes(c->type);
    if (k == 0 || (uint64_t)(b.end - b.p) / (uint64_t)k < (uint64_t)n) return -1;
    for (int64_t i = 0; i < n; i++, b.p += k) {
        if (c->type == PQ_FLOAT || c->type == PQ_DOUBLE) v[i].d = le_float(b.p, k);
        else v[i].i = le_int(b.p, k);
    }
    return b.p - start;
}

/* DELTA_BINARY_PACKED: up to max values into out (NULL: only count); *count gets the stream's value count, *used
 * its bytes. Arithmetic wraps as the encoding defines (two's complement, 64 bits; INT32 columns keep the low 32). */
static bool decode_delta(Bytes b, int64_t *out, int64_t max, int64_t *count, int64_t *used) {
    const uint8_t *start = b.p;
    bool ok = true;
    uint64_t block = bytes_varint(&b, &ok), nmb = bytes_varint(&b, &ok), total = bytes_varint(&b, &ok);
    uint64_t zz = bytes_varint(&b, &ok);
    if (!ok || block == 0 || block > (1u << 20) || block % 128 || nmb == 0 || block % nmb || (block / nmb) % 32 || total > (uint64_t)max)
        return false;
    uint64_t per_mb = block / nmb;
    uint64_t v = (zz >> 1) ^ -(zz & 1);
    int64_t got = 0;
    if (total) out[got++] = (int64_t)v;
    while ((uint64_t)got < total) {
        uint64_t mz = bytes_varint(&b, &ok);
        if (!ok || (uint64_t)(b.end - b.p) < nmb) return false;
        uint64_t min_delta = (mz >> 1) ^ -(mz & 1);
        const uint8_t *widths = b.p;
        b.p += nmb;
        for (uint64_t m = 0; m < nmb && (uint64_t)got < total; m++) {
            int w = widths[m];
            if (w > 64) return false;
            uint64_t bytes = per_mb * (uint64_t)w / 8;
            if ((uint64_t)(b.end - b.p) < bytes) return false;
            for (uint64_t k = 0; k < per_mb && (uint64_t)got < total; k++) {
                uint64_t d = 0, bit = k * (uint64_t)w;
                for (int j = 0; j < w; j++) {
                    uint64_t q = bit + (uint64_t)j;
                    d |= (uint64_t)((b.p[q >> 3] >> (q & 7)) & 1) << j;
                }
                v += min_delta + d;
                out[got++] = (int64_t)v;
            }
            b.p += bytes;
        }
    }
    *count = (int64_t)total;
    *used = b.p - start;
    return true;
}

/* The values of a data page: n non-null values in encoding enc from b into c->val. */
static void decode_values(ParquetFile *pf, PqCursor *c, int enc, Bytes b, int64_t n) {
    PqValue *v = c->val;
    switch (enc) {
    case PQ_PLAIN:
        if (decode_plain(c, b, v, n) < 0) pq_die(pf, "its PLAIN values end before its %lld values do", (long long)n);
        return;
    case PQ_PLAIN_DICTIONARY: case PQ_RLE_DICTIONARY: {
        if (!c->dict) pq_die(pf, "dictionary-encoded values without a dictionary page");
        if (n == 0) return;
        if (b.p >= b.end) pq_die(pf, "its dictionary indices are missing");
        int w = *b.p++;
        if (w > 32) pq_die(pf, "its dictionary indices have a bit width of %d (at most 32)", w);
        uint32_t *idx = sd_alloc(sd_mul_size((size_t)n, sizeof *idx, "parquet indices"), "parquet indices");
        uint32_t maxi = c->ndict > 0 ? (uint32_t)(c->ndict - 1) : 0;
        bool ok = c->ndict > 0 && hybrid_decode(b, w, idx, n, maxi);
        if (ok)
            for (int64_t i = 0; i < n; i++) v[i] = c->dict[idx[i]];
        free(idx);
        if (!ok) pq_die(pf, "its dictionary indices are malformed or beyond the dictionary's %lld entries",
                        (long long)c->ndict);
        return;
    }
    case PQ_RLE: {
        if (c->type != PQ_BOOLEAN) pq_die(pf, "RLE-encoded values in a column that is not boolean");
        if (b.end - b.p < 4) pq_die(pf, "its RLE values are missing their length");
        uint32_t len = (uint32_t)le_int(b.p, 4);
        b.p += 4;
        if (len > (uint64_t)(b.end - b.p)) pq_die(pf, "its RLE values' length exceeds the page");
        uint32_t *tmp = sd_alloc(sd_mul_size((size_t)n + 1, sizeof *tmp, "parquet booleans"), "parquet booleans");
        bool ok = hybrid_decode((Bytes){b.p, b.p + len}, 1, tmp, n, 1);
        for (int64_t i = 0; ok && i < n; i++) v[i].i = tmp[i];
        free(tmp);
        if (!ok) pq_die(pf, "its RLE boolean values are malformed");
        return;
    }
    case PQ_DELTA_BINARY_PACKED: {
        if (c->type != PQ_INT32 && c->type != PQ_INT64) pq_die(pf, "DELTA_BINARY_PACKED values in a column that is "
                                                                   "not INT32 or INT64");
        int64_t *tmp = sd_alloc(sd_mul_size((size_t)n + 1, sizeof *tmp, "parquet deltas"), "parquet deltas");
        int64_t cnt = 0, used = 0;
        bool ok = decode_delta(b, tmp, n, &cnt, &used) && cnt == n;
        for (int64_t i = 0; ok && i < n; i++) v[i].i = c->type == PQ_INT32 ? (int32_t)(uint32_t)tmp[i] : tmp[i];
        free(tmp);
        if (!ok) pq_die(pf, "its DELTA_BINARY_PACKED values are malformed or not %lld values", (long long)n);
        return;
    }
    case PQ_DELTA_LENGTH_BYTE_ARRAY: case PQ_DELTA_BYTE_ARRAY: {
        if (c->type != PQ_BYTE_ARRAY) pq_die(pf, "%s values in a column that is not BYTE_ARRAY",
                                             enc == PQ_DELTA_BYTE_ARRAY ? "DELTA_BYTE_ARRAY" : "DELTA_LENGTH_BYTE_ARRAY");
        int64_t *pre = NULL, *len = sd_alloc(sd_mul_size((size_t)n + 1, sizeof *len, "parquet lengths"), "lengths");
        int64_t cnt = 0, used = 0;
        bool ok = true;
        if (enc == PQ_DELTA_BYTE_ARRAY) {
            pre = sd_alloc(sd_mul_size((size_t)n + 1, sizeof *pre, "parquet prefixes"), "parquet prefixes");
            ok = decode_delta(b, pre, n, &cnt, &used) && cnt == n;
            if (ok) b.p += used;
        }
        ok = ok && decode_delta(b, len, n, &cnt, &used) && cnt == n;
        if (ok) b.p += used;
        uint64_t total = 0, total_pre = 0;
        for (int64_t i = 0; ok && i < n; i++) {
            ok = len[i] >= 0 && len[i] <= UINT32_MAX && (!pre || (pre[i] >= 0 && pre[i] <= UINT32_MAX));
            total += (uint64_t)len[i] * ok;
            total_pre += pre && ok ? (uint64_t)pre[i] : 0;
        }
        ok = ok && total <= (uint64_t)(b.end - b.p) && total_pre <= PARQUET_MAX_PAGE_BYTES;
        if (ok && !pre) {
            for (int64_t i = 0; i < n; i++) {
                v[i].s.p = b.p;
                v[i].s.n = (uint32_t)len[i];
                b.p += len[i];
            }
        } else if (ok) { /* value i: the first pre[i] bytes of value i-1, then its suffix */
            free(c->extra_buf);
            c->extra_buf = sd_alloc(total + total_pre + 1, "parquet strings");
            uint8_t *o = c->extra_buf;
            for (int64_t i = 0; ok && i < n; i++) {
                uint32_t prev = i ? v[i - 1].s.n : 0;
                if ((uint64_t)pre[i] > prev) { ok = false; break; }
                if (pre[i]) memcpy(o, v[i - 1].s.p, (size_t)pre[i]);
                memcpy(o + pre[i], b.p, (size_t)len[i]);
                b.p += len[i];
                v[i].s.p = o;
                v[i].s.n = (uint32_t)(pre[i] + len[i]);
                o += v[i].s.n;
            }
        }
        free(pre);
        free(len);
        if (!ok) pq_die(pf, "its %s values are malformed", enc == PQ_DELTA_BYTE_ARRAY ? "DELTA_BYTE_ARRAY"
                                                                                       : "DELTA_LENGTH_BYTE_ARRAY");
        return;
    }
    case PQ_BYTE_STREAM_SPLIT: {
        int k = fixed_bytes(c->type);
        if (c->type == PQ_FIXED) k = c->type_length;
        if (k != 4 && k != 8) pq_die(pf, "BYTE_STREAM_SPLIT values in a column of %d-byte values", k);
        if ((uint64_t)(b.end - b.p) / (uint64_t)k < (uint64_t)n) pq_die(pf, "its BYTE_STREAM_SPLIT values are short");
        for (int64_t i = 0; i < n; i++) { /* byte j of value i lies in stream j */
            uint8_t tmp[8];
            for (int j = 0; j < k; j++) tmp[j] = b.p[(int64_t)j * n + i];
            if (c->type == PQ_FLOAT || c->type == PQ_DOUBLE) v[i].d = le_float(tmp, k);
            else v[i].i = le_int(tmp, k);
        }
        return;
    }
    default:
        pq_die(pf, "its values use encoding %d, which simpo_dist does not read", enc);
    }
}

void pq_cursor_release(PqCursor *c) {
    free(c->dict);
    free(c->dict_buf);
    free(c->page_buf);
    free(c->extra_buf);
    free(c->rep);
    free(c->def);
    free(c->val);
    c->dict = NULL;
    c->dict_buf = c->page_buf = c->extra_buf = NULL;
    c->rep = c->def = NULL;
    c->val = NULL;
    c->ndict = c->n = c->i = c->nval = c->vi = 0;
}

static void set_where(ParquetFile *pf, const PqCursor *c) {
    snprintf(pf->where, sizeof pf->where, "%s: row group %d, column '%s', page %d", pf->path, pf->rg, c->name,
             c->page_no);
}

void pq_cursor_start(ParquetFile *pf, PqCursor *c, const PqRowGroup *rg) {
    pq_cursor_release(c);
    const PqColumnMeta *cm = &rg->cols[c->leaf];
    c->cm = cm;
    c->page_no = 0;
    set_where(pf, c);
    if (cm->external) pq_die(pf, "the column chunk lives in another file (file_path), which simpo_dist does not read");
    if (cm->type != c->type) pq_die(pf, "the chunk's type %d differs from the schema's %d", cm->type, c->type);
    int64_t start = cm->data_page_offset;
    if (cm->dict_page_offset >= 4 && cm->dict_page_offset < start) start = cm->dict_page_offset;
    if (start < 4 || cm->total_compressed < 0 || start > pf->footer_start ||
        cm->total_compressed > pf->footer_start - start)
        pq_die(pf, "the chunk's bytes (offset %lld, %lld bytes) lie outside the file's data", (long long)start,
               (long long)cm->total_compressed);
    if (cm->num_values < 0) pq_die(pf, "the chunk claims %lld values", (long long)cm->num_values);
    c->pos = start;
    c->end = start + cm->total_compressed;
    c->values_left = cm->num_values;
}

/* Reads the next page header at c->pos (more bytes as needed); advances c->pos past it. */
static void read_header(ParquetFile *pf, PqCursor *c, PqPageHeader *h) {
    size_t avail = (size_t)(c->end - c->pos), want = avail < 256 ? avail : 256;
    for (;;) {
        if (want > pf->hdr_cap) {
            pf->hdr_buf = sd_realloc(pf->hdr_buf, want, "parquet page header");
            pf->hdr_cap = want;
        }
        read_at(pf, pf->hdr_buf, want, c->pos);
        long len = pq_parse_page_header(pf->hdr_buf, want, h);
        if (len > 0) {
            c->pos += len;
            return;
        }
        if (len < 0) pq_die(pf, "its page header is malformed");
        if (want == avail || want >= (16u << 20)) pq_die(pf, "its page header runs past the column chunk");
        want = want * 4 < avail ? want * 4 : avail;
    }
}

/* Reads the page body of h (compressed bytes at c->pos) and returns it decompressed into a new buffer of
 * h->uncompressed bytes; v2 pages keep their levels uncompressed ahead of the values (lv bytes). */
static uint8_t *read_body(ParquetFile *pf, PqCursor *c, const PqPageHeader *h, int64_t lv, bool compressed) {
    if (h->compressed < 0 || h->uncompressed < 0 || h->compressed > c->end - c->pos)
        pq_die(pf, "its page claims %d compressed bytes, more than the chunk has left", h->compressed);
    if (h->uncompressed > PARQUET_MAX_PAGE_BYTES)
        pq_die(pf, "its page claims %d bytes, above the limit of %d", h->uncompressed, PARQUET_MAX_PAGE_BYTES);
    if (lv > h->compressed || lv > h->uncompressed) pq_die(pf, "its levels claim more bytes than the page has");
    /* the compressed bytes stay reachable from the cursor (extra_buf) until decompressed, so an error frees them */
    free(c->extra_buf);
    uint8_t *raw = c->extra_buf = sd_alloc((size_t)h->compressed + 1, "parquet page");
    read_at(pf, raw, (size_t)h->compressed, c->pos);
    c->pos += h->compressed;
    uint8_t *out = sd_alloc((size_t)h->uncompressed + 1, "parquet page");
    free(c->page_buf);
    c->page_buf = out;
    memcpy(out, raw, (size_t)lv);
    size_t n = (size_t)(h->compressed - lv), want = (size_t)(h->uncompressed - lv);
    if (!compressed && n != want) pq_die(pf, "its uncompressed values have %zu bytes, its header says %zu", n, want);
    decompress(pf, compressed ? c->cm->codec : PQ_UNCOMPRESSED, raw + lv, n, out + lv, want);
    free(c->extra_buf);
    c->extra_buf = NULL;
    return out;
}

static void read_dictionary(ParquetFile *pf, PqCursor *c, const PqPageHeader *h) {
    if (c->dict) pq_die(pf, "a second dictionary page in one column chunk");
    if (h->dict_encoding != PQ_PLAIN && h->dict_encoding != PQ_PLAIN_DICTIONARY)
        pq_die(pf, "its dictionary page uses encoding %d (expected PLAIN)", h->dict_encoding);
    if (h->dict_num_values < 0) pq_die(pf, "its dictionary claims %d values", h->dict_num_values);
    uint8_t *body = read_body(pf, c, h, 0, true);
    c->page_buf = NULL;
    c->dict_buf = body;
    /* each value takes a byte at least (a boolean dictionary is no real writer's) */
    if ((int64_t)h->dict_num_values > (int64_t)h->uncompressed * 8 + 8 || h->dict_num_values > PARQUET_MAX_PAGE_VALUES)
        pq_die(pf, "its dictionary claims %d values in %d bytes (at most %d)", h->dict_num_values, h->uncompressed,
               PARQUET_MAX_PAGE_VALUES);
    c->dict = sd_alloc(sd_mul_size((size_t)h->dict_num_values + 1, sizeof(PqValue), "parquet dictionary"),
                       "parquet dictionary");
    c->ndict = h->dict_num_values;
    if (decode_plain(c, (Bytes){body, body + h->uncompressed}, c->dict, c->ndict) < 0)
        pq_die(pf, "its dictionary page ends before its %d values do", h->dict_num_values);
}

/* Reads the next data page into the cursor's levels and values. */
static void read_data_page(ParquetFile *pf, PqCursor *c, const PqPageHeader *h) {
    bool v2 = h->type == PQ_DATA_PAGE_V2;
    int64_t n = h->num_values;
    if (n <= 0 || n > PARQUET_MAX_PAGE_VALUES || n > c->values_left)
        pq_die(pf, "its data page claims %lld values (the chunk has %lld left; at most %d a page)", (long long)n,
               (long long)c->values_left, PARQUET_MAX_PAGE_VALUES);
    int64_t lv = 0;
    if (v2) {
        if (h->rep_len < 0 || h->def_len < 0) pq_die(pf, "its v2 page has negative level lengths");
        lv = (int64_t)h->rep_len + h->def_len;
    }
    uint8_t *body = read_body(pf, c, h, lv, !v2 || h->is_compressed);
    Bytes b = {body, body + h->uncompressed};
    free(c->rep);
    free(c->def);
    free(c->val);
    c->rep = c->def = NULL;
    c->val = NULL;
    c->n = c->i = c->nval = c->vi = 0;
    uint32_t *tmp = NULL;
    if (c->max_rep || c->max_def) {
        tmp = sd_alloc(sd_mul_size((size_t)n, sizeof *tmp, "parquet levels"), "parquet levels");
        free(c->extra_buf);
        c->extra_buf = (uint8_t *)tmp; /* freed with the cursor if a level is malformed */
    }
    /* levels: v1 each section prefixed by its length (RLE) when its maximum is above 0; v2 at the given lengths */
    for (int pass = 0; pass < 2; pass++) {
        int max = pass == 0 ? c->max_rep : c->max_def;
        int32_t v2len = pass == 0 ? h->rep_len : h->def_len;
        if (max == 0) {
            if (v2 && v2len) b.p += v2len; /* nothing to read; a writer may still store a section */
            continue;
        }
        Bytes sec;
        if (v2) {
            sec = (Bytes){b.p, b.p + v2len};
        } else {
            int enc = pass == 0 ? h->rep_encoding : h->def_encoding;
            if (enc != PQ_RLE)
                pq_die(pf, "its %s levels use encoding %d (only RLE is read; BIT_PACKED is deprecated)",
                       pass == 0 ? "repetition" : "definition", enc);
            if (b.end - b.p < 4) pq_die(pf, "its %s levels are missing", pass == 0 ? "repetition" : "definition");
            uint32_t len = (uint32_t)le_int(b.p, 4);
            b.p += 4;
            if (len > (uint64_t)(b.end - b.p))
                pq_die(pf, "its %s levels claim more bytes than the page has", pass == 0 ? "repetition" : "definition");
            sec = (Bytes){b.p, b.p + len};
        }
        uint16_t *lvls = sd_alloc(sd_mul_size((size_t)n, sizeof *lvls, "parquet levels"), "parquet levels");
        if (pass == 0) c->rep = lvls;
        else c->def = lvls;
        decode_levels(pf, sec, max, lvls, n, pass == 0 ? "repetition" : "definition", tmp);
        b.p = sec.end;
    }
    free(c->extra_buf);
    c->extra_buf = NULL;
    int64_t nv = n;
    if (c->def) {
        nv = 0;
        for (int64_t i = 0; i < n; i++) nv += c->def[i] == c->max_def;
    }
    if (c->rep && c->rep[0] != 0 && c->values_left == c->cm->num_values)
        pq_die(pf, "its first value continues a row (repetition level %d)", c->rep[0]);
    c->val = sd_alloc(sd_mul_size((size_t)nv + 1, sizeof(PqValue), "parquet values"), "parquet values");
    c->n = n;
    c->nval = nv;
    decode_values(pf, c, h->encoding, b, nv);
    c->values_left -= n;
}

bool pq_cursor_more(ParquetFile *pf, PqCursor *c) {
    while (c->i >= c->n) {
        if (c->values_left == 0) return false;
        if (c->pos >= c->end)
            pq_die(pf, "the chunk ends with %lld of its values unread", (long long)c->values_left);
        c->page_no++;
        set_where(pf, c);
        PqPageHeader h;
        read_header(pf, c, &h);
        if (h.type == PQ_DICTIONARY_PAGE) read_dictionary(pf, c, &h);
        else if (h.type == PQ_DATA_PAGE || h.type == PQ_DATA_PAGE_V2) read_data_page(pf, c, &h);
        else if (h.type == PQ_INDEX_PAGE) {
            if (h.compressed < 0 || h.compressed > c->end - c->pos) pq_die(pf, "its index page runs past the chunk");
            c->pos += h.compressed;
        } else pq_die(pf, "a page of unknown type %d", h.type);
    }
    return true;
}
