/* pairs_h5.c — the tokenized preference dataset in HDF5 (what `simpo_dist prepare` writes and training reads).
 *
 * Layout (docs/formats.md), N pairs:
 *   /prompt_ids, /chosen_ids, /rejected_ids         int32 [total tokens of that kind], pairs back to back
 *   /prompt_offsets, /chosen_offsets, /rejected_offsets  int64 [N + 1], pair i is ids[off[i] : off[i+1]]
 *   /lengths          int32 [N, 3]  prompt, chosen, rejected tokens (redundant with the offsets; checked)
 *   /source_line      int32 [N]     line of the pair in the source JSONL (error messages)
 *   /ref_chosen_logp, /ref_rejected_logp  float64 [N], only when every pair has them
 *   attributes on /: format = "simpo_dist-pairs", version = 1, n_pairs, source, tokenizer, data_format
 * Written to PATH.tmp and renamed. Reading checks every offset, length and id before use, so a corrupt file is
 * an error naming the file and the dataset, never an out-of-bounds read or a size taken on trust. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pairs.h"
#include "util.h"

static const char *KIND[3] = {"prompt", "chosen", "rejected"};

typedef struct {
    hid_t f;
    const char *path;
    PairSet *ps;      /* reading: the set being filled (released on error) */
    void *buf[4];
} H5Job;

static void job_release(void *arg) {
    H5Job *j = arg;
    for (int i = 0; i < 4; i++) free(j->buf[i]);
    if (j->f >= 0) H5Fclose(j->f);
    pairs_free(j->ps);
}
SD_NORETURN SD_PRINTF(2, 3) static void job_die(H5Job *j, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_die_release(job_release, j, j->path, fmt, ap);
}
static hid_t chk(H5Job *j, hid_t v, const char *what) {
    if (v < 0) job_die(j, "HDF5: %s failed", what);
    return v;
}

static void write_1d(H5Job *j, const char *name, hid_t ftype, hid_t mtype, const void *data, hsize_t n) {
    hsize_t dims[1] = {n};
    hid_t sp = chk(j, H5Screate_simple(1, dims, NULL), name);
    hid_t ds = chk(j, H5Dcreate2(j->f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name);
    if (n) chk(j, H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name);
    H5Dclose(ds);
    H5Sclose(sp);
}
static void write_attr(H5Job *j, const char *name, const char *s, const int64_t *v) {
    hid_t sp = chk(j, H5Screate(H5S_SCALAR), name), ty, a;
    if (s) {
        ty = chk(j, H5Tcopy(H5T_C_S1), name);
        H5Tset_size(ty, strlen(s) + 1);
        a = chk(j, H5Acreate2(j->f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT), name);
        chk(j, H5Awrite(a, ty, s), name);
        H5Tclose(ty);
    } else {
        a = chk(j, H5Acreate2(j->f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT), name);
        chk(j, H5Awrite(a, H5T_NATIVE_INT64, v), name);
    }
    H5Aclose(a);
    H5Sclose(sp);
}

void pairs_write_h5(const PairSet *ps, const char *path, const char *tokenizer, const char *data_format) {
    char *tmp = sd_alloc(strlen(path) + 5, "path");
    sprintf(tmp, "%s.tmp", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Job j = {.f = -1, .path = tmp};
    sd_cleanup_push(free, tmp);
    j.f = chk(&j, H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create file");
    size_t n = ps->n;
    for (int k = 0; k < 3; k++) {
        int64_t *off = j.buf[0] = sd_alloc((n + 1) * sizeof(int64_t), "offsets");
        off[0] = 0;
        for (size_t i = 0; i < n; i++) {
            const Pair *p = &ps->pairs[i];
            off[i + 1] = off[i] + (k == 0 ? p->n_prompt : k == 1 ? p->n_chosen : p->n_rejected);
        }
        int32_t *ids = j.buf[1] = sd_alloc(((size_t)off[n] + 1) * sizeof(int32_t), "ids");
        for (size_t i = 0; i < n; i++) {
            const Pair *p = &ps->pairs[i];
            const int *src = k == 0 ? p->prompt : k == 1 ? p->chosen : p->rejected;
            memcpy(ids + off[i], src, (size_t)(off[i + 1] - off[i]) * sizeof(int32_t));
        }
        char name[32];
        snprintf(name, sizeof name, "%s_ids", KIND[k]);
        write_1d(&j, name, H5T_STD_I32LE, H5T_NATIVE_INT32, ids, (hsize_t)off[n]);
        snprintf(name, sizeof name, "%s_offsets", KIND[k]);
        write_1d(&j, name, H5T_STD_I64LE, H5T_NATIVE_INT64, off, n + 1);
        free(j.buf[0]);
        free(j.buf[1]);
        j.buf[0] = j.buf[1] = NULL;
    }
    int32_t *len = j.buf[0] = sd_alloc((3 * n + 1) * sizeof(int32_t), "lengths");
    int32_t *line = j.buf[1] = sd_alloc((n + 1) * sizeof(int32_t), "lines");
    double *rc = j.buf[2] = sd_alloc((n + 1) * sizeof(double), "ref"), *rr = j.buf[3] = sd_alloc((n + 1) * sizeof(double), "ref");
    for (size_t i = 0; i < n; i++) {
        const Pair *p = &ps->pairs[i];
        len[3 * i] = p->n_prompt, len[3 * i + 1] = p->n_chosen, len[3 * i + 2] = p->n_rejected;
        line[i] = p->line;
        rc[i] = p->ref_chosen_logp, rr[i] = p->ref_rejected_logp;
    }
    hsize_t dims[2] = {n, 3};
    hid_t sp = chk(&j, H5Screate_simple(2, dims, NULL), "lengths");
    hid_t ds = chk(&j, H5Dcreate2(j.f, "lengths", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "lengths");
    if (n) chk(&j, H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, len), "lengths");
    H5Dclose(ds);
    H5Sclose(sp);
    write_1d(&j, "source_line", H5T_STD_I32LE, H5T_NATIVE_INT32, line, n);
    if (ps->all_have_ref) {
        write_1d(&j, "ref_chosen_logp", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rc, n);
        write_1d(&j, "ref_rejected_logp", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rr, n);
    }
    int64_t version = 1, np = (int64_t)n;
    write_attr(&j, "format", "simpo_dist-pairs", NULL);
    write_attr(&j, "version", NULL, &version);
    write_attr(&j, "n_pairs", NULL, &np);
    write_attr(&j, "source", ps->source ? ps->source : "", NULL);
    write_attr(&j, "tokenizer", tokenizer ? tokenizer : "", NULL);
    write_attr(&j, "data_format", data_format ? data_format : "", NULL);
    if (H5Fclose(j.f) < 0) {
        j.f = -1;
        job_die(&j, "HDF5: closing (writing) the file failed");
    }
    j.f = -1;
    for (int i = 0; i < 4; i++) free(j.buf[i]), j.buf[i] = NULL;
    if (rename(tmp, path) != 0) sd_die(path, "cannot rename %s into place", tmp);
    sd_cleanup_pop();
    free(tmp);
}

/* The length of a 1-d dataset (or dimension 0 of a 2-d one with dim 1 == want_cols). */
static hsize_t dims_of(H5Job *j, hid_t ds, const char *name, int ndim, hsize_t cols) {
    hid_t sp = chk(j, H5Dget_space(ds), name);
    hsize_t d[2] = {0, 0};
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd != ndim) {
        H5Sclose(sp);
        job_die(j, "dataset '%s' has %d dimensions (expected %d)", name, nd, ndim);
    }
    H5Sget_simple_extent_dims(sp, d, NULL);
    H5Sclose(sp);
    if (ndim == 2 && d[1] != cols) job_die(j, "dataset '%s' has %llu columns (expected %llu)", name,
                                           (unsigned long long)d[1], (unsigned long long)cols);
    return d[0];
}

/* Reads a whole dataset of `count` elements (checked against its extent) into a new buffer j->buf[slot]. */
static void *read_all(H5Job *j, const char *name, hid_t mtype, size_t esize, hsize_t count, int ndim, hsize_t cols,
                      int slot) {
    if (H5Lexists(j->f, name, H5P_DEFAULT) <= 0) job_die(j, "dataset '%s' is missing", name);
    hid_t ds = chk(j, H5Dopen2(j->f, name, H5P_DEFAULT), name);
    hsize_t n = dims_of(j, ds, name, ndim, cols);
    if (n != count) {
        H5Dclose(ds);
        job_die(j, "dataset '%s' holds %llu rows (expected %llu)", name, (unsigned long long)n,
                (unsigned long long)count);
    }
    size_t total = sd_mul_size((size_t)count * (ndim == 2 ? (size_t)cols : 1), esize, name);
    hsize_t fsize = 0; /* the writer stores datasets uncompressed: none can be larger than the file */
    if (H5Fget_filesize(j->f, &fsize) < 0 || total > fsize) {
        H5Dclose(ds);
        job_die(j, "dataset '%s' claims %zu bytes, more than the file holds (%llu)", name, total,
                (unsigned long long)fsize);
    }
    void *buf = j->buf[slot] = sd_alloc(total ? total : 1, name);
    if (total && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        H5Dclose(ds);
        job_die(j, "dataset '%s' cannot be read (damaged file?)", name);
    }
    H5Dclose(ds);
    return buf;
}

static int64_t read_attr_i64(H5Job *j, const char *name) {
    if (H5Aexists(j->f, name) <= 0) job_die(j, "attribute '%s' is missing (not a simpo_dist pairs dataset?)", name);
    hid_t a = chk(j, H5Aopen(j->f, name, H5P_DEFAULT), name);
    int64_t v = 0;
    herr_t r = H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    if (r < 0) job_die(j, "attribute '%s' is not an integer", name);
    return v;
}

bool pairs_is_h5(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char sig[8] = {0};
    size_t r = fread(sig, 1, 8, f);
    fclose(f);
    return r == 8 && !memcmp(sig, "\x89HDF\r\n\x1a\n", 8);
}

PairSet *pairs_load_h5(const char *path, int vocab_size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Job j = {.f = -1, .path = path};
    if (!pairs_is_h5(path)) job_die(&j, "not an HDF5 file");
    j.f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (j.f < 0) job_die(&j, "cannot open as HDF5 (truncated or damaged?)");
    int64_t version = read_attr_i64(&j, "version"), n64 = read_attr_i64(&j, "n_pairs");
    if (version != 1) job_die(&j, "dataset version %lld (this build reads version 1)", (long long)version);
    hsize_t fsize = 0;
    H5Fget_filesize(j.f, &fsize);
    if (n64 <= 0 || (uint64_t)n64 > fsize / 8) job_die(&j, "attribute n_pairs = %lld is not a pair count", (long long)n64);
    size_t n = (size_t)n64;
    PairSet *ps = j.ps = sd_calloc(1, sizeof *ps, "pairs");
    ps->source = sd_strdup(path);
    int32_t *len = read_all(&j, "lengths", H5T_NATIVE_INT32, sizeof(int32_t), n, 2, 3, 0);
    int32_t *line = read_all(&j, "source_line", H5T_NATIVE_INT32, sizeof(int32_t), n, 1, 0, 1);
    /* every length first, so the pairs' arrays are allocated from checked sizes */
    ps->pairs = sd_calloc(n, sizeof(Pair), "pairs");
    ps->n = n;
    for (size_t i = 0; i < n; i++) {
        Pair *p = &ps->pairs[i];
        p->line = line[i];
        p->n_prompt = len[3 * i], p->n_chosen = len[3 * i + 1], p->n_rejected = len[3 * i + 2];
        if (p->n_prompt < 0 || p->n_chosen <= 0 || p->n_rejected <= 0)
            job_die(&j, "pair %zu: lengths %d/%d/%d (responses must be non-empty)", i, p->n_prompt, p->n_chosen,
                    p->n_rejected);
    }
    free(j.buf[1]), j.buf[1] = NULL;
    for (int k = 0; k < 3; k++) {
        char oname[32], iname[32];
        snprintf(oname, sizeof oname, "%s_offsets", KIND[k]);
        snprintf(iname, sizeof iname, "%s_ids", KIND[k]);
        int64_t *off = read_all(&j, oname, H5T_NATIVE_INT64, sizeof(int64_t), n + 1, 1, 0, 1);
        if (off[0] != 0) job_die(&j, "dataset '%s' does not start at 0", oname);
        for (size_t i = 0; i < n; i++)
            if (off[i + 1] - off[i] != len[3 * i + k])
                job_die(&j, "dataset '%s': pair %zu spans %lld tokens but lengths says %d", oname, i,
                        (long long)(off[i + 1] - off[i]), len[3 * i + k]);
        if (H5Lexists(j.f, iname, H5P_DEFAULT) <= 0) job_die(&j, "dataset '%s' is missing", iname);
        hid_t ds = chk(&j, H5Dopen2(j.f, iname, H5P_DEFAULT), iname);
        hsize_t total = dims_of(&j, ds, iname, 1, 0);
        H5Dclose(ds);
        if ((int64_t)total != off[n])
            job_die(&j, "dataset '%s' holds %llu tokens but the offsets end at %lld", iname,
                    (unsigned long long)total, (long long)off[n]);
        int32_t *ids = read_all(&j, iname, H5T_NATIVE_INT32, sizeof(int32_t), total, 1, 0, 2);
        for (hsize_t t = 0; t < total; t++)
            if (ids[t] < 0 || (vocab_size > 0 && ids[t] >= vocab_size))
                job_die(&j, "dataset '%s': token id %d at %llu is outside the vocabulary (vocab_size %d)", iname,
                        ids[t], (unsigned long long)t, vocab_size);
        for (size_t i = 0; i < n; i++) {
            Pair *p = &ps->pairs[i];
            int m = len[3 * i + k];
            int *dst = sd_alloc(sizeof(int) * (size_t)(m ? m : 1), iname);
            memcpy(dst, ids + off[i], sizeof(int) * (size_t)m);
            if (k == 0) p->prompt = dst;
            else if (k == 1) p->chosen = dst;
            else p->rejected = dst;
        }
        free(j.buf[1]), free(j.buf[2]), j.buf[1] = j.buf[2] = NULL;
    }
    ps->all_have_ref = H5Lexists(j.f, "ref_chosen_logp", H5P_DEFAULT) > 0;
    if (ps->all_have_ref) {
        double *rc = read_all(&j, "ref_chosen_logp", H5T_NATIVE_DOUBLE, sizeof(double), n, 1, 0, 1);
        double *rr = read_all(&j, "ref_rejected_logp", H5T_NATIVE_DOUBLE, sizeof(double), n, 1, 0, 2);
        for (size_t i = 0; i < n; i++) {
            ps->pairs[i].has_ref = true;
            ps->pairs[i].ref_chosen_logp = rc[i];
            ps->pairs[i].ref_rejected_logp = rr[i];
        }
    }
    for (int i = 0; i < 4; i++) free(j.buf[i]);
    H5Fclose(j.f);
    return ps;
}
