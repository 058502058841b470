/* safetensors.c — see safetensors.h. Opening parses only the header; tensor data is read with pread on demand,
 * so multi-GB shards are never loaded whole. Every size taken from a file is checked (against the file size and
 * for overflow) before it is used.
 *
 * Error paths release what they hold before calling sd_die, so that a test trapping sd_die (expect_die) leaks
 * nothing: each public entry point keeps its resources in a Res and dies through res_die. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* Largest offset or dimension accepted from a header: integers up to 2^53 are exact in a JSON double. */
#define ST_MAX_INT 9007199254740992.0

static size_t dtype_size(StDtype d) { return d == ST_F64 ? 8 : d == ST_F32 ? 4 : 2; }

/* ---------------------------------------------------------------------------------------------------------------
 * Resources held by one call, released on every exit (normal or sd_die). */
typedef struct {
    StDir *dir;      /* partially built result */
    cJSON *json;     /* parsed header or index */
    char *buf;       /* header text, index text, a path */
    char *buf2;
    char **list;     /* nlist owned strings (entries may be NULL) */
    int nlist;
    int *ints;
    int fd;          /* -1 when none */
    DIR *dd;
} Res;

static void res_init(Res *r) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
}
static void res_free(Res *r) {
    st_close(r->dir);
    cJSON_Delete(r->json);
    free(r->buf);
    free(r->buf2);
    for (int i = 0; i < r->nlist; i++) free(r->list[i]);
    free(r->list);
    free(r->ints);
    if (r->fd >= 0) close(r->fd);
    if (r->dd) closedir(r->dd);
    res_init(r);
}
/* Formats the message first (it may quote names owned by the resources), releases everything, then dies. */
static void res_release(void *r) { res_free(r); }
SD_NORETURN SD_PRINTF(3, 4) static void res_die(Res *r, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_die_release(res_release, r, where, fmt, ap);
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_uint(const cJSON *x, uint64_t *out) {
    if (!cJSON_IsNumber(x)) return false;
    double v = x->valuedouble;
    if (!(v >= 0 && v <= ST_MAX_INT) || v != (double)(uint64_t)v) return false;
    *out = (uint64_t)v;
    return true;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Reading. */

/* Parses file fi's header and appends its tensors to r->dir. */
static void parse_file(Res *r, int fi) {
    StDir *d = r->dir;
    const char *path = d->files[fi];
    r->fd = open(path, O_RDONLY);
    if (r->fd < 0) res_die(r, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(r->fd, &st) != 0) res_die(r, path, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) res_die(r, path, "not a regular file");
    uint64_t fsize = (uint64_t)st.st_size;
    unsigned char lenb[8];
    if (fsize < 8 || pread(r->fd, lenb, 8, 0) != 8)
        res_die(r, path, "not a safetensors file (shorter than 8 bytes: truncated?)");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | lenb[i];
    if (hlen > fsize - 8)
        res_die(r, path, "header length %llu exceeds the file size %llu (truncated or not a safetensors file)",
                (unsigned long long)hlen, (unsigned long long)fsize);
    if (hlen > ST_MAX_HEADER)
        res_die(r, path, "header length %llu exceeds the 100 MB limit", (unsigned long long)hlen);
    r->buf = sd_alloc((size_t)hlen + 1, "safetensors header");
    size_t got = 0;
    while (got < hlen) {
        ssize_t n = pread(r->fd, r->buf + got, (size_t)hlen - got, (off_t)(8 + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) res_die(r, path, "cannot read the header: %s", n < 0 ? strerror(errno) : "unexpected end of file");
        got += (size_t)n;
    }
    r->buf[hlen] = 0;
    close(r->fd);
    r->fd = -1;
    uint64_t data_size = fsize - 8 - hlen;
    d->data_start[fi] = (size_t)(8 + hlen);
    if (strlen(r->buf) != (size_t)hlen) res_die(r, path, "the header holds a NUL byte (invalid JSON)");
    r->json = cJSON_ParseWithOpts(r->buf, NULL, 1);
    free(r->buf);
    r->buf = NULL;
    if (!r->json || !cJSON_IsObject(r->json)) res_die(r, path, "the header is not a JSON object (invalid JSON)");
    int n = cJSON_GetArraySize(r->json);
    d->tensors = sd_realloc(d->tensors, sizeof(StTensor) * (size_t)(d->ntensors + n + 1), "tensor list");
    for (cJSON *e = r->json->child; e; e = e->next) {
        const char *name = e->string;
        if (!strcmp(name, "__metadata__")) continue;
        if (!cJSON_IsObject(e)) res_die(r, path, "tensor '%s': expected an object with dtype, shape, data_offsets", name);
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape"),
              *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt)) res_die(r, path, "tensor '%s': missing or non-string \"dtype\"", name);
        if (!cJSON_IsArray(sh)) res_die(r, path, "tensor '%s': missing or non-array \"shape\"", name);
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
            res_die(r, path, "tensor '%s': \"data_offsets\" must be an array [begin, end]", name);
        StTensor t;
        memset(&t, 0, sizeof t);
        if (!strcmp(dt->valuestring, "F32")) t.dtype = ST_F32;
        else if (!strcmp(dt->valuestring, "BF16")) t.dtype = ST_BF16;
        else if (!strcmp(dt->valuestring, "F16")) t.dtype = ST_F16;
        else if (!strcmp(dt->valuestring, "F64")) t.dtype = ST_F64;
        else res_die(r, path, "tensor '%s': dtype %s is not supported (F32, BF16, F16, F64)", name, dt->valuestring);
        t.ndim = cJSON_GetArraySize(sh);
        if (t.ndim > 8) res_die(r, path, "tensor '%s': %d dimensions (at most 8)", name, t.ndim);
        size_t numel = 1;
        for (int i = 0; i < t.ndim; i++) {
            uint64_t v;
            if (!json_uint(cJSON_GetArrayItem(sh, i), &v))
                res_die(r, path, "tensor '%s': shape entries must be non-negative integers", name);
            t.shape[i] = (int64_t)v;
            if (v > SIZE_MAX || !sd_try_mul_size(numel, (size_t)v, &numel))
                res_die(r, path, "tensor '%s': the shape overflows the element count", name);
        }
        t.numel = numel;
        uint64_t b, en;
        if (!json_uint(cJSON_GetArrayItem(of, 0), &b) || !json_uint(cJSON_GetArrayItem(of, 1), &en) || en < b)
            res_die(r, path, "tensor '%s': data_offsets must be integers 0 <= begin <= end", name);
        size_t nbytes;
        if (!sd_try_mul_size(numel, dtype_size(t.dtype), &nbytes))
            res_die(r, path, "tensor '%s': the byte size overflows", name);
        if (en - b != (uint64_t)nbytes)
            res_die(r, path, "tensor '%s': data_offsets [%llu, %llu] span %llu bytes, shape and dtype need %zu (%s, %zu "
                    "elements)", name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
                    nbytes, dt->valuestring, numel);
        if (en > data_size)
            res_die(r, path, "tensor '%s': data_offsets end %llu is past the end of the data (%llu bytes)", name,
                    (unsigned long long)en, (unsigned long long)data_size);
        for (int k = 0; k < d->ntensors; k++)
            if (!strcmp(d->tensors[k].name, name))
                res_die(r, path, "tensor '%s' appears twice (also in %s)", name, d->files[d->tensors[k].file]);
        t.offset = (size_t)b;
        t.nbytes = nbytes;
        t.name = sd_strdup(name);
        t.file = fi;
        d->tensors[d->ntensors++] = t;
    }
    cJSON_Delete(r->json);
    r->json = NULL;
}

static StDir *dir_new(void) { return sd_calloc(1, sizeof(StDir), "safetensors"); }

/* Adds a file to r->dir and parses it. */
static void add_file(Res *r, const char *path) {
    StDir *d = r->dir;
    d->files = sd_realloc(d->files, sizeof(char *) * (size_t)(d->nfiles + 1), "file list");
    d->data_start = sd_realloc(d->data_start, sizeof(size_t) * (size_t)(d->nfiles + 1), "file list");
    d->files[d->nfiles] = sd_strdup(path);
    d->data_start[d->nfiles] = 0;
    d->nfiles++;
    parse_file(r, d->nfiles - 1);
}

StDir *st_open_file(const char *path) {
    Res r;
    res_init(&r);
    r.dir = dir_new();
    add_file(&r, path);
    StDir *d = r.dir;
    r.dir = NULL;
    res_free(&r);
    return d;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* <dir>/model.safetensors.index.json: open every shard named in weight_map once (in order of first mention) and
 * check that each mapped tensor is in the shard the index names. */
static void open_index(Res *r, const char *dir, const char *index) {
    r->buf = sd_read_file(index, NULL);
    if (!r->buf) res_die(r, index, "cannot read: %s", strerror(errno));
    r->json = cJSON_Parse(r->buf);
    free(r->buf);
    r->buf = NULL;
    if (!r->json) res_die(r, index, "invalid JSON");
    cJSON *wm = cJSON_GetObjectItemCaseSensitive(r->json, "weight_map");
    if (!cJSON_IsObject(wm)) res_die(r, index, "expected an object with a \"weight_map\" object");
    int nt = cJSON_GetArraySize(wm);
    if (nt == 0) res_die(r, index, "\"weight_map\" is empty");
    /* list[2i] = tensor name, list[2i+1] = shard path; gathered first so that the index JSON is freed before the
     * shards are parsed (parse_file uses r->json) */
    r->list = sd_calloc((size_t)nt * 2, sizeof(char *), "weight_map");
    r->nlist = 2 * nt;
    r->ints = sd_alloc(sizeof(int) * (size_t)nt, "weight_map");
    int k = 0;
    for (cJSON *e = wm->child; e; e = e->next, k++) {
        if (!cJSON_IsString(e) || !*e->valuestring || strchr(e->valuestring, '/'))
            res_die(r, index, "weight_map['%s']: expected a file name in the same directory", e->string);
        r->list[2 * k] = sd_strdup(e->string);
        r->list[2 * k + 1] = sd_path_join(dir, e->valuestring);
    }
    cJSON_Delete(r->json);
    r->json = NULL;
    for (int i = 0; i < nt; i++) {
        int f = -1;
        for (int j = 0; j < r->dir->nfiles && f < 0; j++)
            if (!strcmp(r->dir->files[j], r->list[2 * i + 1])) f = j;
        if (f < 0) {
            add_file(r, r->list[2 * i + 1]);
            f = r->dir->nfiles - 1;
        }
        r->ints[i] = f;
    }
    for (int i = 0; i < nt; i++) {
        const StTensor *t = st_find(r->dir, r->list[2 * i]);
        if (!t) res_die(r, index, "tensor '%s' is not in its shard %s", r->list[2 * i], r->list[2 * i + 1]);
        if (t->file != r->ints[i])
            res_die(r, index, "tensor '%s' is not in its shard %s (found in %s)", r->list[2 * i], r->list[2 * i + 1],
                    r->dir->files[t->file]);
    }
}

StDir *st_open_dir(const char *dir) {
    Res r;
    res_init(&r);
    r.dir = dir_new();
    r.buf2 = sd_path_join(dir, "model.safetensors.index.json");
    if (sd_file_exists(r.buf2)) {
        open_index(&r, dir, r.buf2);
    } else {
        free(r.buf2);
        r.buf2 = sd_path_join(dir, "model.safetensors");
        if (sd_file_exists(r.buf2)) {
            add_file(&r, r.buf2);
        } else {
            free(r.buf2);
            r.buf2 = NULL;
            r.dd = opendir(dir);
            if (!r.dd) res_die(&r, dir, "cannot open the model directory: %s", strerror(errno));
            char names[1024] = "";
            int nfound = 0;
            for (struct dirent *e; (e = readdir(r.dd));) {
                if (!ends_with(e->d_name, ".safetensors")) continue;
                char *p = sd_path_join(dir, e->d_name);
                if (!sd_file_exists(p)) {
                    free(p);
                    continue;
                }
                if (nfound++ == 0) r.buf2 = p;
                else free(p);
                size_t used = strlen(names);
                if (used + 8 < sizeof names)
                    snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", e->d_name);
            }
            closedir(r.dd);
            r.dd = NULL;
            if (nfound == 0)
                res_die(&r, dir,
                        "no model weights: looked for model.safetensors.index.json, model.safetensors and "
                        "*.safetensors");
            if (nfound > 1)
                res_die(&r, dir, "%d .safetensors files (%s) and no model.safetensors.index.json to say which to use",
                        nfound, names);
            add_file(&r, r.buf2);
        }
    }
    StDir *d = r.dir;
    r.dir = NULL;
    res_free(&r);
    return d;
}

void st_close(StDir *d) {
    if (!d) return;
    for (int i = 0; i < d->ntensors; i++) free(d->tensors[i].name);
    for (int i = 0; i < d->nfiles; i++) free(d->files[i]);
    free(d->tensors);
    free(d->files);
    free(d->data_start);
    free(d);
}

const StTensor *st_find(const StDir *d, const char *name) {
    for (int i = 0; i < d->ntensors; i++)
        if (!strcmp(d->tensors[i].name, name)) return &d->tensors[i];
    return NULL;
}

void st_read_f32(const StDir *d, const StTensor *t, float *out) {
    const char *path = d->files[t->file];
    Res r;
    res_init(&r);
    r.fd = open(path, O_RDONLY);
    if (r.fd < 0) res_die(&r, path, "cannot open: %s", strerror(errno));
    size_t es = dtype_size(t->dtype), chunk = (size_t)1 << 22; /* elements per read */
    if (t->dtype != ST_F32) r.buf = sd_alloc(chunk * es, "safetensors read buffer");
    for (size_t e0 = 0; e0 < t->numel; e0 += chunk) {
        size_t n = t->numel - e0 < chunk ? t->numel - e0 : chunk;
        char *dst = t->dtype == ST_F32 ? (char *)(out + e0) : r.buf;
        size_t want = n * es, got = 0;
        uint64_t at = (uint64_t)d->data_start[t->file] + t->offset + (uint64_t)e0 * es;
        while (got < want) {
            ssize_t k = pread(r.fd, dst + got, want - got, (off_t)(at + got));
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0)
                res_die(&r, path, "tensor '%s': read failed: %s", t->name,
                        k < 0 ? strerror(errno) : "unexpected end of file (truncated?)");
            got += (size_t)k;
        }
        if (t->dtype == ST_F64) {
            const double *s = (const double *)(void *)r.buf;
            for (size_t i = 0; i < n; i++) out[e0 + i] = (float)s[i];
        } else if (t->dtype == ST_BF16) {
            const uint16_t *s = (const uint16_t *)(void *)r.buf;
            for (size_t i = 0; i < n; i++) out[e0 + i] = sd_bf16_to_f32(s[i]);
        } else if (t->dtype == ST_F16) {
            const uint16_t *s = (const uint16_t *)(void *)r.buf;
            for (size_t i = 0; i < n; i++) out[e0 + i] = sd_f16_to_f32(s[i]);
        }
    }
    res_free(&r);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Writing. */

static size_t out_numel(const StOut *t) {
    size_t numel = 1;
    for (int k = 0; k < t->ndim; k++) numel = sd_mul_size(numel, (size_t)t->shape[k], t->name);
    return numel;
}

static cJSON *raw_u64(uint64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(s); /* exact integers, whatever their size */
}

/* Writes tensors [a, b) as one file: path.tmp, then renamed to path. */
static void write_one(const char *path, const StOut *ts, int a, int b, int bf16) {
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0, es = bf16 ? 2 : 4;
    for (int i = a; i < b; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, ts[i].name);
        cJSON_AddStringToObject(e, "dtype", bf16 ? "BF16" : "F32");
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < ts[i].ndim; k++) cJSON_AddItemToArray(sh, raw_u64((uint64_t)ts[i].shape[k]));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, raw_u64(off));
        off += out_numel(&ts[i]) * es;
        cJSON_AddItemToArray(of, raw_u64(off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) sd_die(path, "cannot format the safetensors header");
    /* the reference implementation pads the header with spaces so that the data starts 8-byte aligned */
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8;
    size_t tl = strlen(path) + 5;
    char *tmp = sd_alloc(tl, "path");
    snprintf(tmp, tl, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int err = errno;
        cJSON_free(js);
        char w[1024];
        snprintf(w, sizeof w, "%s", tmp);
        free(tmp);
        sd_die(w, "cannot write: %s", strerror(err));
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(js, 1, hl, f) == hl;
    for (size_t i = hl; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
    cJSON_free(js);
    const size_t CH = (size_t)1 << 20;
    uint16_t *hb = bf16 ? sd_alloc(CH * sizeof(uint16_t), "bf16 buffer") : NULL;
    size_t fill_max = 0; /* the largest tensor this file fills by callback: one buffer for them all */
    for (int i = a; i < b; i++)
        if (!ts[i].data && out_numel(&ts[i]) > fill_max) fill_max = out_numel(&ts[i]);
    float *fb = fill_max ? sd_alloc(sd_mul_size(fill_max, sizeof(float), ts[a].name), "tensor buffer") : NULL;
    for (int i = a; i < b && ok; i++) {
        size_t numel = out_numel(&ts[i]);
        const float *data = ts[i].data;
        if (!data && numel) {
            if (!ts[i].fill) sd_die(ts[i].name, "a tensor to write without data");
            ts[i].fill(ts[i].ctx, i, fb);
            data = fb;
        }
        if (!bf16) ok = numel == 0 || fwrite(data, 4, numel, f) == numel;
        else
            for (size_t e0 = 0; e0 < numel && ok; e0 += CH) {
                size_t n = numel - e0 < CH ? numel - e0 : CH;
                for (size_t e = 0; e < n; e++) hb[e] = sd_f32_to_bf16(data[e0 + e]);
                ok = fwrite(hb, 2, n, f) == n;
            }
    }
    free(hb);
    free(fb);
    int err = ok ? 0 : errno;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0, err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    char w[1024];
    if (!ok) {
        remove(tmp);
        snprintf(w, sizeof w, "%s", tmp);
        free(tmp);
        sd_die(w, "write failed: %s", strerror(err ? err : EIO));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        snprintf(w, sizeof w, "%s", path);
        free(tmp);
        sd_die(w, "cannot rename the temporary file into place: %s", strerror(err));
    }
    free(tmp);
}

/* model-NNNNN-of-MMMMM.safetensors: returns MMMMM, or 0 for any other name. */
static int shard_count_of(const char *name) {
    if (strlen(name) != 32 || strncmp(name, "model-", 6) || strncmp(name + 11, "-of-", 4) ||
        strcmp(name + 20, ".safetensors"))
        return 0;
    int m = 0;
    for (int i = 0; i < 5; i++) {
        if (name[6 + i] < '0' || name[6 + i] > '9' || name[15 + i] < '0' || name[15 + i] > '9') return 0;
        m = m * 10 + (name[15 + i] - '0');
    }
    return m;
}

/* Removes weights a previous write left in out_dir that are not part of this one (as HF save_pretrained does), so
 * that st_open_dir cannot pick up a stale index or shard: keep_shards = the new shard count (0: single file). */
static void remove_stale(const char *out_dir, int keep_shards) {
    if (keep_shards == 0) {
        char *p = sd_path_join(out_dir, "model.safetensors.index.json");
        if (remove(p) != 0 && errno != ENOENT) sd_die(p, "cannot remove the stale index: %s", strerror(errno));
        free(p);
    } else {
        char *p = sd_path_join(out_dir, "model.safetensors");
        if (remove(p) != 0 && errno != ENOENT) sd_die(p, "cannot remove the stale file: %s", strerror(errno));
        free(p);
    }
    DIR *dd = opendir(out_dir);
    if (!dd) return;
    for (struct dirent *e; (e = readdir(dd));) {
        int m = shard_count_of(e->d_name);
        if (m == 0 || m == keep_shards) continue;
        char *p = sd_path_join(out_dir, e->d_name);
        remove(p);
        free(p);
    }
    closedir(dd);
}

void st_write_model(const char *out_dir, const StOut *ts, int n, size_t shard_bytes, int bf16) {
    for (int i = 0; i < n; i++) {
        if (ts[i].ndim < 0 || ts[i].ndim > 8)
            sd_die(ts[i].name, "cannot write a tensor with %d dimensions (0..8)", ts[i].ndim);
        for (int k = 0; k < ts[i].ndim; k++)
            if (ts[i].shape[k] < 0) sd_die(ts[i].name, "cannot write a negative dimension %lld", (long long)ts[i].shape[k]);
        if (!strcmp(ts[i].name, "__metadata__")) sd_die(ts[i].name, "reserved tensor name");
        for (int j = 0; j < i; j++)
            if (!strcmp(ts[i].name, ts[j].name)) sd_die(ts[i].name, "tensor name given twice");
    }
    sd_mkdirs(out_dir);
    size_t es = bf16 ? 2 : 4, total = 0;
    size_t *bytes = sd_alloc(sizeof(size_t) * (size_t)(n ? n : 1), "tensor sizes");
    for (int i = 0; i < n; i++) {
        bytes[i] = sd_mul_size(out_numel(&ts[i]), es, ts[i].name);
        if (total + bytes[i] < total) sd_die("safetensors", "total size overflows");
        total += bytes[i];
    }
    if (total <= shard_bytes) {
        char *p = sd_path_join(out_dir, "model.safetensors");
        write_one(p, ts, 0, n, bf16);
        free(p);
        free(bytes);
        remove_stale(out_dir, 0);
        return;
    }
    /* Shard boundaries, tensors in order: a new shard starts when adding the next tensor would take the current
     * one past shard_bytes; a tensor larger than shard_bytes therefore gets a shard of its own. */
    int *start = sd_alloc(sizeof(int) * (size_t)(n + 1), "shards"), ns = 0;
    size_t cur = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || (cur > 0 && cur + bytes[i] > shard_bytes)) {
            start[ns++] = i;
            cur = 0;
        }
        cur += bytes[i];
    }
    start[ns] = n;
    if (ns > 99999) sd_die(out_dir, "%d shards exceed the 5-digit HF naming; raise the shard size", ns);
    cJSON *idx = cJSON_CreateObject();
    cJSON_AddItemToObject(cJSON_AddObjectToObject(idx, "metadata"), "total_size", raw_u64(total));
    cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
    for (int s = 0; s < ns; s++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, ns);
        char *p = sd_path_join(out_dir, name);
        write_one(p, ts, start[s], start[s + 1], bf16);
        free(p);
        for (int i = start[s]; i < start[s + 1]; i++) cJSON_AddStringToObject(wm, ts[i].name, name);
    }
    char *js = cJSON_Print(idx);
    cJSON_Delete(idx);
    size_t jl = strlen(js);
    char *text = sd_alloc(jl + 2, "index");
    memcpy(text, js, jl);
    text[jl] = '\n';
    text[jl + 1] = 0;
    cJSON_free(js);
    char *ip = sd_path_join(out_dir, "model.safetensors.index.json");
    sd_write_file_atomic(ip, text, jl + 1);
    free(text);
    free(ip);
    free(start);
    free(bytes);
    remove_stale(out_dir, ns);
}
