/* safetensors.c — see safetensors.h. Opening parses only the header; tensor data is read with pread on demand,
 * so multi-GB shards are never loaded whole. Every size from a file is checked before use. */
#define _GNU_SOURCE
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20)

static size_t dtype_size(StDtype d) { return d == ST_F64 ? 8 : d == ST_F32 ? 4 : 2; }

/* Parses one file's header and appends its tensors to d (file index fi). */
static void parse_file(StDir *d, int fi) {
    const char *path = d->files[fi];
    int fd = open(path, O_RDONLY);
    if (fd < 0) sd_die(path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) sd_die(path, "cannot stat: %s", strerror(errno));
    uint64_t fsize = (uint64_t)st.st_size;
    unsigned char lenb[8];
    if (fsize < 8 || pread(fd, lenb, 8, 0) != 8) sd_die(path, "not a safetensors file (shorter than 8 bytes)");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | lenb[i];
    if (hlen > ST_MAX_HEADER || hlen > fsize - 8)
        sd_die(path, "header length %llu exceeds the file size %llu (or the 100 MB limit)", (unsigned long long)hlen,
               (unsigned long long)fsize);
    char *hdr = sd_alloc((size_t)hlen + 1, "safetensors header");
    if (pread(fd, hdr, (size_t)hlen, 8) != (ssize_t)hlen) sd_die(path, "cannot read the header");
    hdr[hlen] = 0;
    close(fd);
    uint64_t data_size = fsize - 8 - hlen;
    d->data_start[fi] = (size_t)(8 + hlen);
    cJSON *j = cJSON_Parse(hdr);
    free(hdr);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        sd_die(path, "the header is not a JSON object");
    }
    int n = cJSON_GetArraySize(j);
    d->tensors = sd_realloc(d->tensors, sizeof(StTensor) * (size_t)(d->ntensors + n), "tensor list");
    for (cJSON *e = j->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        const char *name = e->string;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape"),
              *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
            sd_die(path, "tensor '%s': expected dtype, shape and data_offsets [begin, end]", name);
        StTensor t;
        memset(&t, 0, sizeof t);
        if (!strcmp(dt->valuestring, "F32")) t.dtype = ST_F32;
        else if (!strcmp(dt->valuestring, "BF16")) t.dtype = ST_BF16;
        else if (!strcmp(dt->valuestring, "F16")) t.dtype = ST_F16;
        else if (!strcmp(dt->valuestring, "F64")) t.dtype = ST_F64;
        else sd_die(path, "tensor '%s': dtype %s is not supported (F32, BF16, F16, F64)", name, dt->valuestring);
        t.ndim = cJSON_GetArraySize(sh);
        if (t.ndim > 8) sd_die(path, "tensor '%s': %d dimensions (at most 8)", name, t.ndim);
        size_t numel = 1;
        for (int i = 0; i < t.ndim; i++) {
            cJSON *x = cJSON_GetArrayItem(sh, i);
            if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9.0e15 ||
                x->valuedouble != (double)(int64_t)x->valuedouble)
                sd_die(path, "tensor '%s': shape entries must be non-negative integers", name);
            t.shape[i] = (int64_t)x->valuedouble;
            if (!sd_try_mul_size(numel, (size_t)t.shape[i], &numel))
                sd_die(path, "tensor '%s': shape overflows", name);
        }
        t.numel = numel;
        double b = cJSON_GetArrayItem(of, 0)->valuedouble, en = cJSON_GetArrayItem(of, 1)->valuedouble;
        if (!cJSON_IsNumber(cJSON_GetArrayItem(of, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(of, 1)) || b < 0 ||
            en < b || en > 9.0e15)
            sd_die(path, "tensor '%s': data_offsets must be integers 0 <= begin <= end", name);
        size_t nbytes;
        if (!sd_try_mul_size(numel, dtype_size(t.dtype), &nbytes)) sd_die(path, "tensor '%s': size overflows", name);
        t.offset = (size_t)b;
        t.nbytes = (size_t)(en - b);
        if (t.nbytes != nbytes)
            sd_die(path, "tensor '%s': data_offsets span %zu bytes, shape and dtype need %zu", name, t.nbytes, nbytes);
        if ((uint64_t)en > data_size)
            sd_die(path, "tensor '%s': data_offsets end %.0f is past the end of the data (%llu bytes)", name, en,
                   (unsigned long long)data_size);
        t.name = sd_strdup(name);
        t.file = fi;
        d->tensors[d->ntensors++] = t;
    }
    cJSON_Delete(j);
}

static StDir *dir_new(void) { return sd_calloc(1, sizeof(StDir), "safetensors"); }
static void add_file(StDir *d, const char *path) {
    d->files = sd_realloc(d->files, sizeof(char *) * (size_t)(d->nfiles + 1), "file list");
    d->data_start = sd_realloc(d->data_start, sizeof(size_t) * (size_t)(d->nfiles + 1), "file list");
    d->files[d->nfiles] = sd_strdup(path);
    d->data_start[d->nfiles] = 0;
    d->nfiles++;
    parse_file(d, d->nfiles - 1);
}

StDir *st_open_file(const char *path) {
    StDir *d = dir_new();
    add_file(d, path);
    return d;
}

StDir *st_open_dir(const char *dir) {
    char *index = sd_path_join(dir, "model.safetensors.index.json");
    StDir *d = dir_new();
    if (sd_file_exists(index)) {
        char *text = sd_read_file(index, NULL);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        free(text);
        cJSON *wm = j ? cJSON_GetObjectItemCaseSensitive(j, "weight_map") : NULL;
        if (!cJSON_IsObject(wm)) sd_die(index, "expected an object with a \"weight_map\"");
        for (cJSON *e = wm->child; e; e = e->next) {
            if (!cJSON_IsString(e) || strchr(e->valuestring, '/'))
                sd_die(index, "weight_map['%s']: expected a file name in the same directory", e->string);
            char *p = sd_path_join(dir, e->valuestring);
            int seen = 0;
            for (int i = 0; i < d->nfiles; i++) seen |= !strcmp(d->files[i], p);
            if (!seen) add_file(d, p);
            free(p);
        }
        for (cJSON *e = wm->child; e; e = e->next)
            if (!st_find(d, e->string)) sd_die(index, "tensor '%s' is not in its shard %s", e->string, e->valuestring);
        cJSON_Delete(j);
    } else {
        char *single = sd_path_join(dir, "model.safetensors");
        if (sd_file_exists(single)) add_file(d, single);
        else {
            DIR *dd = opendir(dir);
            if (!dd) sd_die(dir, "cannot open the model directory: %s", strerror(errno));
            char *found = NULL;
            for (struct dirent *e; (e = readdir(dd));) {
                size_t n = strlen(e->d_name);
                if (n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")) {
                    if (found) sd_die(dir, "several .safetensors files and no model.safetensors.index.json");
                    found = sd_path_join(dir, e->d_name);
                }
            }
            closedir(dd);
            if (!found) sd_die(dir, "no model.safetensors, model.safetensors.index.json or *.safetensors file");
            add_file(d, found);
            free(found);
        }
        free(single);
    }
    free(index);
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
    int fd = open(path, O_RDONLY);
    if (fd < 0) sd_die(path, "cannot open: %s", strerror(errno));
    size_t es = dtype_size(t->dtype), chunk = (size_t)1 << 24; /* elements per read */
    void *buf = t->dtype == ST_F32 ? NULL : sd_alloc(chunk * es, "safetensors read");
    for (size_t e0 = 0; e0 < t->numel; e0 += chunk) {
        size_t n = t->numel - e0 < chunk ? t->numel - e0 : chunk;
        char *dst = t->dtype == ST_F32 ? (char *)(out + e0) : buf;
        size_t want = n * es, got = 0;
        off_t at = (off_t)(d->data_start[t->file] + t->offset + e0 * es);
        while (got < want) {
            ssize_t r = pread(fd, dst + got, want - got, at + (off_t)got);
            if (r <= 0) sd_die(path, "tensor '%s': read failed (file truncated?)", t->name);
            got += (size_t)r;
        }
        for (size_t i = 0; i < n && t->dtype != ST_F32; i++) {
            if (t->dtype == ST_F64) out[e0 + i] = (float)((double *)buf)[i];
            else if (t->dtype == ST_BF16) out[e0 + i] = sd_bf16_to_f32(((uint16_t *)buf)[i]);
            else out[e0 + i] = sd_f16_to_f32(((uint16_t *)buf)[i]);
        }
    }
    free(buf);
    close(fd);
}

/* writes tensors [a, b) as one file */
static void write_one(const char *path, const StOut *ts, int a, int b, int bf16) {
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0, es = bf16 ? 2 : 4;
    for (int i = a; i < b; i++) {
        size_t numel = 1;
        cJSON *e = cJSON_AddObjectToObject(h, ts[i].name), *sh = cJSON_AddArrayToObject(e, "shape");
        cJSON_AddStringToObject(e, "dtype", bf16 ? "BF16" : "F32");
        for (int k = 0; k < ts[i].ndim; k++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ts[i].shape[k]));
            numel = sd_mul_size(numel, (size_t)ts[i].shape[k], ts[i].name);
        }
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        off += numel * es;
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8;
    size_t tl = strlen(path) + 5;
    char *tmp = sd_alloc(tl, "path");
    snprintf(tmp, tl, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) sd_die(tmp, "cannot write: %s", strerror(errno));
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(js, 1, hl, f) == hl;
    for (size_t i = hl; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
    cJSON_free(js);
    uint16_t *hb = bf16 ? sd_alloc(((size_t)1 << 20) * 2, "bf16") : NULL;
    for (int i = a; i < b && ok; i++) {
        size_t numel = 1;
        for (int k = 0; k < ts[i].ndim; k++) numel *= (size_t)ts[i].shape[k];
        if (!bf16) ok = fwrite(ts[i].data, 4, numel, f) == numel;
        else
            for (size_t e0 = 0; e0 < numel && ok; e0 += (size_t)1 << 20) {
                size_t n = numel - e0 < ((size_t)1 << 20) ? numel - e0 : ((size_t)1 << 20);
                for (size_t e = 0; e < n; e++) hb[e] = sd_f32_to_bf16(ts[i].data[e0 + e]);
                ok = fwrite(hb, 2, n, f) == n;
            }
    }
    free(hb);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(tmp);
        sd_die(tmp, "write failed: %s", strerror(errno));
    }
    if (rename(tmp, path) != 0) sd_die(path, "cannot rename %s into place: %s", tmp, strerror(errno));
    free(tmp);
}

void st_write_model(const char *out_dir, const StOut *ts, int n, size_t shard_bytes, int bf16) {
    sd_mkdirs(out_dir);
    size_t es = bf16 ? 2 : 4, total = 0;
    size_t *bytes = sd_alloc(sizeof(size_t) * (size_t)(n ? n : 1), "sizes");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int k = 0; k < ts[i].ndim; k++) numel = sd_mul_size(numel, (size_t)ts[i].shape[k], ts[i].name);
        bytes[i] = numel * es;
        total += bytes[i];
    }
    if (total <= shard_bytes) {
        char *p = sd_path_join(out_dir, "model.safetensors");
        write_one(p, ts, 0, n, bf16);
        free(p);
        free(bytes);
        return;
    }
    /* shard boundaries: a new shard when the next tensor would overflow the current one */
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
    cJSON *idx = cJSON_CreateObject();
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(idx, "metadata"), "total_size", (double)total);
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
    char *ip = sd_path_join(out_dir, "model.safetensors.index.json");
    sd_write_file_atomic(ip, js, strlen(js));
    cJSON_free(js);
    free(ip);
    free(start);
    free(bytes);
}
