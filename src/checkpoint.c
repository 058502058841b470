/* checkpoint.c — see checkpoint.h and docs/formats.md ("Checkpoints").
 *
 * Rank files hold plain fp32 datasets (one per slice); index.h5 holds one HDF5 virtual dataset (VDS) per tensor
 * whose mappings point at the rank files by RELATIVE name, so a step directory can be moved or renamed and any
 * reader can select an arbitrary hyperslab of the full tensor (how a rank of another parallel layout loads).
 * Every HDF5 call is checked; a failure dies naming the file and the operation. HDF5's own error-stack printing
 * is switched off: our messages carry the information.
 */
#define _XOPEN_SOURCE 700
#include "checkpoint.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_FORMAT "simpo_dist-ckpt-1"
#define CKPT_MAX_NDIM 4
#define CKPT_NGROUPS 3
static const char *const k_groups[CKPT_NGROUPS] = {"param", "exp_avg", "exp_avg_sq"};

/* ------------------------------------------------------------------------------------------------------------ */
/* small helpers                                                                                                */

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Dies naming the file and the failed HDF5 operation. */
SD_NORETURN static void h5_fail(const char *file, const char *what) {
    sd_die(file, "HDF5 error: %s failed", what);
}
static int64_t h5chk(int64_t v, const char *file, const char *what) {
    if (v < 0) h5_fail(file, what);
    return v;
}
/* Every call site has a `const char *h5file` naming the file it works on. */
#define H5(call, what) h5chk((int64_t)(call), h5file, (what))

static char *sd_printf_alloc(const char *fmt, ...) SD_PRINTF(1, 2);
static char *sd_printf_alloc(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) sd_die("checkpoint", "cannot format a string");
    char *s = sd_alloc((size_t)n + 1, "string");
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static char *step_dir_path(const char *dir, long step, bool tmp) {
    if (step < 0) sd_die("checkpoint", "negative step %ld", step);
    char name[64];
    snprintf(name, sizeof name, "step-%08ld%s", step, tmp ? ".tmp" : "");
    return sd_path_join(dir, name);
}


/* Best-effort durability: fsync a file or directory by path. */
static void fsync_path(const char *path, bool dir) {
    int fd = open(path, dir ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* '%' is special in VDS source names (printf-like "%b"); a literal one is written "%%". Caller frees. */
static char *vds_escape(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++) n += *p == '%' ? 2 : 1;
    char *o = sd_alloc(n + 1, "name"), *q = o;
    for (const char *p = s; *p; p++) {
        *q++ = *p;
        if (*p == '%') *q++ = '%';
    }
    *q = 0;
    return o;
}

static bool valid_name(const char *name) {
    return name && *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/');
}

/* product of dims with overflow check; false when it overflows */
static bool shape_elems(int ndim, const int64_t *dims, size_t *out) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < 0 || !sd_try_mul_size(n, (size_t)dims[d], &n)) return false;
    }
    *out = n;
    return true;
}

static void write_attr_i64s(hid_t obj, const char *h5file, const char *name, const int64_t *v, int n) {
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5(H5Screate_simple(1, &dim, NULL), "create attribute space");
    hid_t a = H5(H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT), name);
    H5(H5Awrite(a, H5T_NATIVE_INT64, v), name);
    H5(H5Aclose(a), name);
    H5(H5Sclose(sp), "close attribute space");
}
/* a scalar attribute of file type ftype from the memory value *v of type mtype */
static void write_attr_scalar(hid_t obj, const char *h5file, const char *name, hid_t ftype, hid_t mtype,
                              const void *v) {
    hid_t sp = H5(H5Screate(H5S_SCALAR), "create attribute space");
    hid_t a = H5(H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT), name);
    H5(H5Awrite(a, mtype, v), name);
    H5(H5Aclose(a), name);
    H5(H5Sclose(sp), "close attribute space");
}
static void write_attr_i64(hid_t obj, const char *h5file, const char *name, int64_t v) {
    write_attr_scalar(obj, h5file, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}
static void write_attr_f64(hid_t obj, const char *h5file, const char *name, double v) {
    write_attr_scalar(obj, h5file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}
/* Variable-length UTF-8 string attribute (no 64 KiB attribute-size limit: the text lives in the global heap). */
static void write_attr_str(hid_t obj, const char *h5file, const char *name, const char *s) {
    const char *v = s ? s : "";
    hid_t t = H5(H5Tcopy(H5T_C_S1), "copy string type");
    H5(H5Tset_size(t, H5T_VARIABLE), "set string size");
    H5(H5Tset_cset(t, H5T_CSET_UTF8), "set string charset");
    hid_t sp = H5(H5Screate(H5S_SCALAR), "create attribute space");
    hid_t a = H5(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT), name);
    H5(H5Awrite(a, t, &v), name);
    H5(H5Aclose(a), name);
    H5(H5Sclose(sp), "close attribute space");
    H5(H5Tclose(t), "close string type");
}

/* Reads an int64 array attribute of exactly n elements; `where` names the object for messages. */
static void read_attr_i64s(hid_t obj, const char *where, const char *name, int64_t *v, int n) {
    const char *h5file = where;
    if (H5(H5Aexists(obj, name), name) <= 0) sd_die(where, "attribute '%s' is missing", name);
    hid_t a = H5(H5Aopen(obj, name, H5P_DEFAULT), name);
    hid_t t = H5(H5Aget_type(a), name);
    hid_t sp = H5(H5Aget_space(a), name);
    H5T_class_t cls = H5Tget_class(t);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (cls != H5T_INTEGER || np != n) {
        H5Tclose(t);
        H5Sclose(sp);
        H5Aclose(a);
        sd_die(where, "attribute '%s' must hold %d integers", name, n);
    }
    H5(H5Aread(a, H5T_NATIVE_INT64, v), name);
    H5(H5Tclose(t), name);
    H5(H5Sclose(sp), name);
    H5(H5Aclose(a), name);
}

/* Reads a scalar floating-point attribute, or def where the object has none (an older checkpoint's). */
static double read_attr_f64_or(hid_t obj, const char *where, const char *name, double def) {
    const char *h5file = where;
    if (H5(H5Aexists(obj, name), name) <= 0) return def;
    hid_t a = H5(H5Aopen(obj, name, H5P_DEFAULT), name);
    hid_t t = H5(H5Aget_type(a), name);
    hid_t sp = H5(H5Aget_space(a), name);
    H5T_class_t cls = H5Tget_class(t);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Tclose(t);
    H5Sclose(sp);
    if (cls != H5T_FLOAT || np != 1) {
        H5Aclose(a);
        sd_die(where, "attribute '%s' must hold one floating-point number", name);
    }
    double v;
    H5(H5Aread(a, H5T_NATIVE_DOUBLE, &v), name);
    H5(H5Aclose(a), name);
    return v;
}

/* Reads a scalar string attribute (variable-length or fixed-length); caller frees. */
static char *read_attr_str(hid_t obj, const char *where, const char *name) {
    const char *h5file = where;
    if (H5(H5Aexists(obj, name), name) <= 0) sd_die(where, "attribute '%s' is missing", name);
    hid_t a = H5(H5Aopen(obj, name, H5P_DEFAULT), name);
    hid_t t = H5(H5Aget_type(a), name);
    hid_t sp = H5(H5Aget_space(a), name);
    bool ok = H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1;
    H5(H5Sclose(sp), name);
    if (!ok) {
        H5Tclose(t);
        H5Aclose(a);
        sd_die(where, "attribute '%s' must be a single string", name);
    }
    char *out;
    hid_t mt = H5(H5Tcopy(H5T_C_S1), "copy string type");
    if (H5(H5Tis_variable_str(t), name) > 0) {
        H5(H5Tset_size(mt, H5T_VARIABLE), "set string size");
        H5(H5Tset_cset(mt, H5Tget_cset(t)), "set string charset");
        char *v = NULL;
        H5(H5Aread(a, mt, &v), name);
        out = sd_strdup(v ? v : "");
        if (v) H5free_memory(v);
    } else {
        size_t sz = H5Tget_size(t);
        if (sz == 0 || sz > ((size_t)1 << 30)) {
            H5Tclose(mt);
            H5Tclose(t);
            H5Aclose(a);
            sd_die(where, "attribute '%s' has an implausible string size %zu", name, sz);
        }
        H5(H5Tset_size(mt, sz), "set string size");
        out = sd_alloc(sz + 1, "string attribute");
        if (H5Aread(a, mt, out) < 0) {
            free(out);
            H5Tclose(mt);
            H5Tclose(t);
            H5Aclose(a);
            h5_fail(where, name);
        }
        out[sz] = 0;
    }
    H5(H5Tclose(mt), "close string type");
    H5(H5Tclose(t), name);
    H5(H5Aclose(a), name);
    return out;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* saving                                                                                                       */

void ckpt_prepare(const char *dir, long step) {
    char *tmp = step_dir_path(dir, step, true);
    sd_remove_tree(tmp);
    sd_mkdirs(tmp);
    free(tmp);
}

/* SIMPO_CKPT_FAIL_AFTER_BYTES: fault injection for tests (docs/formats.md). */
static size_t g_written = 0;
static bool fail_budget(size_t *limit) {
    const char *e = getenv("SIMPO_CKPT_FAIL_AFTER_BYTES");
    if (!e || !*e) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(e, &end, 10);
    if (*end || errno || e[0] == '-')
        sd_die("SIMPO_CKPT_FAIL_AFTER_BYTES", "expected a byte count, found '%s'", e);
    *limit = (size_t)v;
    return true;
}

static void check_tensor(const CkptTensor *t, int i) {
    char where[64];
    snprintf(where, sizeof where, "checkpoint tensor #%d", i);
    if (!valid_name(t->name)) sd_die(where, "invalid tensor name '%s' (empty, '.', '..' or containing '/')",
                                     t->name ? t->name : "(null)");
    if (t->ndim < 1 || t->ndim > CKPT_MAX_NDIM)
        sd_die(t->name, "checkpoint: ndim %d out of range 1..%d", t->ndim, CKPT_MAX_NDIM);
    size_t n;
    if (!shape_elems(t->ndim, t->global_shape, &n) || !shape_elems(t->ndim, t->local_shape, &n))
        sd_die(t->name, "checkpoint: negative or overflowing shape");
    for (int d = 0; d < t->ndim; d++) {
        if (t->offset[d] < 0 || t->offset[d] > t->global_shape[d] ||
            t->local_shape[d] > t->global_shape[d] - t->offset[d])
            sd_die(t->name, "checkpoint: slice offset %lld + shape %lld exceeds dim %d of size %lld",
                   (long long)t->offset[d], (long long)t->local_shape[d], d, (long long)t->global_shape[d]);
    }
}

void ckpt_write_rank(const char *dir, long step, int rank, const CkptTensor *tensors, int n) {
    ckpt_write_rank_from(dir, step, rank, tensors, n, NULL, NULL);
}

void ckpt_write_rank_from(const char *dir, long step, int rank, const CkptTensor *tensors, int n,
                          void (*read)(void *ctx, float *dst, const float *src, size_t n), void *ctx) {
    h5_quiet();
    if (rank < 0) sd_die("checkpoint", "negative rank %d", rank);
    if (n < 0 || (n > 0 && !tensors)) sd_die("checkpoint", "invalid tensor list (n=%d)", n);
    for (int i = 0; i < n; i++) check_tensor(&tensors[i], i);
    char *tmp = step_dir_path(dir, step, true);
    if (!sd_dir_exists(tmp)) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s", tmp);
        free(tmp);
        sd_die(buf, "checkpoint directory does not exist (ckpt_prepare must run first)");
    }
    char fname[64];
    snprintf(fname, sizeof fname, "rank-%05d.h5", rank);
    char *path = sd_path_join(tmp, fname);
    free(tmp);
    const char *h5file = path;
    size_t limit = 0;
    bool inject = fail_budget(&limit);

    float *buf = NULL; /* with read: the host copy of one slice (the largest) */
    if (read) {
        size_t most = 0;
        for (int i = 0; i < n; i++) {
            size_t elems = 0;
            shape_elems(tensors[i].ndim, tensors[i].local_shape, &elems);
            if (elems > most) most = elems;
        }
        buf = sd_alloc(sd_mul_size(most ? most : 1, sizeof(float), "checkpoint slice"), "checkpoint slice");
    }
    hid_t f = H5(H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create file");
    hid_t g[CKPT_NGROUPS];
    for (int gi = 0; gi < CKPT_NGROUPS; gi++)
        g[gi] = H5(H5Gcreate2(f, k_groups[gi], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), k_groups[gi]);
    for (int i = 0; i < n; i++) {
        const CkptTensor *t = &tensors[i];
        int k = 0;  /* earlier slices of the same tensor on this rank */
        for (int j = 0; j < i; j++) k += strcmp(tensors[j].name, t->name) == 0;
        char *dname = k ? sd_printf_alloc("%s@%d", t->name, k) : sd_strdup(t->name);
        size_t elems = 0;
        shape_elems(t->ndim, t->local_shape, &elems);
        size_t bytes = elems * sizeof(float);  /* elems*4 cannot overflow: it was allocated by the caller */
        const float *src0[CKPT_NGROUPS] = {t->param, t->exp_avg, t->exp_avg_sq}, *src[CKPT_NGROUPS];
        hsize_t dims[CKPT_MAX_NDIM];
        for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->local_shape[d];
        for (int gi = 0; gi < CKPT_NGROUPS; gi++) {
            if (!src0[gi]) continue;
            src[gi] = src0[gi];
            if (read && elems) read(ctx, buf, src0[gi], elems), src[gi] = buf;
            if (inject && elems && (bytes > limit || g_written > limit - bytes)) {
                for (int q = 0; q < CKPT_NGROUPS; q++) H5Gclose(g[q]);
                H5Fclose(f);
                free(dname);
                free(buf);
                char buf[4096];
                snprintf(buf, sizeof buf, "%s", path);
                free(path);
                sd_die(buf, "injected write failure after %zu bytes (SIMPO_CKPT_FAIL_AFTER_BYTES)", g_written);
            }
            hid_t sp = H5(H5Screate_simple(t->ndim, dims, NULL), "create dataspace");
            hid_t ds = H5(H5Dcreate2(g[gi], dname, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                          t->name);
            if (elems) H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, src[gi]), t->name);
            g_written += bytes;
            write_attr_i64s(ds, h5file, "global_shape", t->global_shape, t->ndim);
            write_attr_i64s(ds, h5file, "offset", t->offset, t->ndim);
            write_attr_str(ds, h5file, "tensor", t->name);
            write_attr_i64(ds, h5file, "checksum", (int64_t)ckpt_hash(src[gi], elems));
            H5(H5Dclose(ds), t->name);
            H5(H5Sclose(sp), "close dataspace");
        }
        free(dname);
    }
    free(buf);
    for (int gi = 0; gi < CKPT_NGROUPS; gi++) H5(H5Gclose(g[gi]), k_groups[gi]);
    H5(H5Fflush(f, H5F_SCOPE_GLOBAL), "flush");
    H5(H5Fclose(f), "close file");
    fsync_path(path, false);
    free(path);
}

/* One slice found in a rank file. */
typedef struct {
    int group;                      /* index into k_groups */
    char *tensor;                   /* global name */
    char *src_file;                 /* "rank-RRRRR.h5" (relative) */
    char *src_dset;                 /* "/param/<name>[@k]" */
    int ndim;
    int64_t gshape[CKPT_MAX_NDIM], off[CKPT_MAX_NDIM], lshape[CKPT_MAX_NDIM];
} Slice;

typedef struct {
    Slice *s;
    size_t n, cap;
    char *tmpdir;
} Collect;

static void collect_free(Collect *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->s[i].tensor);
        free(c->s[i].src_file);
        free(c->s[i].src_dset);
    }
    free(c->s);
    free(c->tmpdir);
    memset(c, 0, sizeof *c);
}

/* Frees everything the commit holds, then dies (the message is formatted first). */
SD_NORETURN static void commit_die(Collect *c, const char *where, const char *fmt, ...) SD_PRINTF(3, 4);
static void collect_release(void *c) { collect_free(c); }
SD_NORETURN static void commit_die(Collect *c, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_die_release(collect_release, c, where, fmt, ap);
}

/* Reads every slice of one rank file into c. */
static void collect_rank(Collect *c, int rank) {
    char fname[64];
    snprintf(fname, sizeof fname, "rank-%05d.h5", rank);
    char *path = sd_path_join(c->tmpdir, fname);
    if (!sd_file_exists(path)) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s", path);
        free(path);
        commit_die(c, buf, "rank file is missing (rank %d did not write its part of the checkpoint)", rank);
    }
    const char *h5file = path;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s", path);
        free(path);
        commit_die(c, buf, "not a readable HDF5 file");
    }
    for (int gi = 0; gi < CKPT_NGROUPS; gi++) {
        if (H5(H5Lexists(f, k_groups[gi], H5P_DEFAULT), k_groups[gi]) <= 0) continue;
        hid_t g = H5(H5Gopen2(f, k_groups[gi], H5P_DEFAULT), k_groups[gi]);
        H5G_info_t info;
        H5(H5Gget_info(g, &info), "group info");
        for (hsize_t li = 0; li < info.nlinks; li++) {
            ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, li, NULL, 0, H5P_DEFAULT);
            H5(len, "link name");
            char *dname = sd_alloc((size_t)len + 1, "dataset name");
            H5(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, li, dname, (size_t)len + 1, H5P_DEFAULT),
               "link name");
            char *where = sd_printf_alloc("%s:/%s/%s", path, k_groups[gi], dname);
            hid_t ds = H5Dopen2(g, dname, H5P_DEFAULT);
            if (ds < 0) sd_die(where, "not a dataset");
            hid_t t = H5(H5Dget_type(ds), where);
            bool isf32 = H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4;
            H5(H5Tclose(t), where);
            if (!isf32) sd_die(where, "dataset is not fp32");
            hid_t sp = H5(H5Dget_space(ds), where);
            int nd = H5Sget_simple_extent_ndims(sp);
            if (nd < 1 || nd > CKPT_MAX_NDIM) sd_die(where, "dataset rank %d out of range 1..%d", nd, CKPT_MAX_NDIM);
            hsize_t dims[CKPT_MAX_NDIM];
            H5(H5Sget_simple_extent_dims(sp, dims, NULL), where);
            H5(H5Sclose(sp), where);
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 64;
                c->s = sd_realloc(c->s, sd_mul_size(c->cap, sizeof *c->s, "slices"), "slices");
            }
            Slice *s = &c->s[c->n];
            memset(s, 0, sizeof *s);
            s->group = gi;
            s->ndim = nd;
            for (int d = 0; d < nd; d++) {
                if (dims[d] > (hsize_t)INT64_MAX) sd_die(where, "dimension too large");
                s->lshape[d] = (int64_t)dims[d];
            }
            read_attr_i64s(ds, where, "global_shape", s->gshape, nd);
            read_attr_i64s(ds, where, "offset", s->off, nd);
            htri_t has_t = H5(H5Aexists(ds, "tensor"), where);
            s->tensor = has_t > 0 ? read_attr_str(ds, where, "tensor") : sd_strdup(dname);
            size_t ne = 0;
            if (!valid_name(s->tensor)) sd_die(where, "invalid tensor name '%s'", s->tensor);
            if (!shape_elems(nd, s->gshape, &ne) || !shape_elems(nd, s->lshape, &ne))
                sd_die(where, "negative or overflowing global_shape");
            for (int d = 0; d < nd; d++)
                if (s->off[d] < 0 || s->off[d] > s->gshape[d] || s->lshape[d] > s->gshape[d] - s->off[d])
                    sd_die(where, "slice (offset %lld, shape %lld) exceeds dim %d of global size %lld",
                           (long long)s->off[d], (long long)s->lshape[d], d, (long long)s->gshape[d]);
            s->src_file = sd_strdup(fname);
            s->src_dset = sd_printf_alloc("/%s/%s", k_groups[gi], dname);
            c->n++;
            H5(H5Dclose(ds), where);
            free(where);
            free(dname);
        }
        H5(H5Gclose(g), k_groups[gi]);
    }
    H5(H5Fclose(f), "close file");
    free(path);
}

static int slice_cmp(const void *a, const void *b) {
    const Slice *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    int c = strcmp(x->tensor, y->tensor);
    if (c) return c;
    for (int d = 0; d < x->ndim && d < y->ndim; d++)
        if (x->off[d] != y->off[d]) return x->off[d] < y->off[d] ? -1 : 1;
    c = strcmp(x->src_file, y->src_file);
    return c ? c : strcmp(x->src_dset, y->src_dset);
}

static bool slice_empty(const Slice *s) {
    for (int d = 0; d < s->ndim; d++)
        if (s->lshape[d] == 0) return true;
    return false;
}
static bool slices_overlap(const Slice *a, const Slice *b) {
    if (slice_empty(a) || slice_empty(b)) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->off[d] + a->lshape[d] <= b->off[d] || b->off[d] + b->lshape[d] <= a->off[d]) return false;
    return true;
}

/* Checks slices [i0, i1) (one group/tensor) for consistency and an exact tiling. */
static void check_tiling(Collect *c, size_t i0, size_t i1) {
    const Slice *s0 = &c->s[i0];
    char where[1024];
    snprintf(where, sizeof where, "%s/%s", k_groups[s0->group], s0->tensor);
    size_t total = 0, sum = 0;
    shape_elems(s0->ndim, s0->gshape, &total);
    for (size_t i = i0; i < i1; i++) {
        const Slice *s = &c->s[i];
        bool same = s->ndim == s0->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = s->gshape[d] == s0->gshape[d];
        if (!same)
            commit_die(c, where, "slices disagree on the global shape (%s:%s vs %s:%s)", s0->src_file, s0->src_dset,
                       s->src_file, s->src_dset);
        size_t ne = 0;
        shape_elems(s->ndim, s->lshape, &ne);
        if (sum > SIZE_MAX - ne) commit_die(c, where, "slice sizes overflow");
        sum += ne;
        for (size_t j = i0; j < i; j++)
            if (slices_overlap(&c->s[j], s))
                commit_die(c, where, "slices overlap (%s:%s and %s:%s)", c->s[j].src_file, c->s[j].src_dset,
                           s->src_file, s->src_dset);
    }
    if (sum != total)
        commit_die(c, where, "slices cover %zu of %zu elements (a part of the tensor is missing)", sum, total);
}

static void write_index(Collect *c, const char *path, const CkptMeta *meta, int world) {
    const char *h5file = path;
    hid_t fapl = H5(H5Pcreate(H5P_FILE_ACCESS), "file access list");
    H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST), "set format version");
    hid_t f = H5(H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "create file");
    H5(H5Pclose(fapl), "close property list");
    hid_t g[CKPT_NGROUPS];
    for (int gi = 0; gi < CKPT_NGROUPS; gi++) g[gi] = -1;
    const float nan = NAN;
    size_t i0 = 0;
    while (i0 < c->n) {
        size_t i1 = i0 + 1;
        while (i1 < c->n && c->s[i1].group == c->s[i0].group && strcmp(c->s[i1].tensor, c->s[i0].tensor) == 0) i1++;
        const Slice *s0 = &c->s[i0];
        int gi = s0->group;
        if (g[gi] < 0) g[gi] = H5(H5Gcreate2(f, k_groups[gi], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), k_groups[gi]);
        hsize_t gdims[CKPT_MAX_NDIM];
        for (int d = 0; d < s0->ndim; d++) gdims[d] = (hsize_t)s0->gshape[d];
        hid_t vsp = H5(H5Screate_simple(s0->ndim, gdims, NULL), "create dataspace");
        hid_t dcpl = H5(H5Pcreate(H5P_DATASET_CREATE), "dataset creation list");
        size_t total = 0;
        shape_elems(s0->ndim, s0->gshape, &total);
        if (total > 0) {
            /* unreadable regions (should a rank file go missing later) read as NaN rather than silent zeros */
            H5(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan), "set fill value");
            for (size_t i = i0; i < i1; i++) {
                const Slice *s = &c->s[i];
                if (slice_empty(s)) continue;
                hsize_t start[CKPT_MAX_NDIM], count[CKPT_MAX_NDIM], ldims[CKPT_MAX_NDIM];
                for (int d = 0; d < s->ndim; d++) {
                    start[d] = (hsize_t)s->off[d];
                    count[d] = ldims[d] = (hsize_t)s->lshape[d];
                }
                H5(H5Sselect_hyperslab(vsp, H5S_SELECT_SET, start, NULL, count, NULL), "select hyperslab");
                hid_t ssp = H5(H5Screate_simple(s->ndim, ldims, NULL), "create dataspace");
                char *ef = vds_escape(s->src_file), *ed = vds_escape(s->src_dset);
                H5(H5Pset_virtual(dcpl, vsp, ef, ed, ssp), s->tensor);
                free(ef);
                free(ed);
                H5(H5Sclose(ssp), "close dataspace");
            }
            H5(H5Sselect_all(vsp), "select all");
        }
        hid_t ds = H5(H5Dcreate2(g[gi], s0->tensor, H5T_IEEE_F32LE, vsp, H5P_DEFAULT, dcpl, H5P_DEFAULT), s0->tensor);
        H5(H5Dclose(ds), s0->tensor);
        H5(H5Pclose(dcpl), "close property list");
        H5(H5Sclose(vsp), "close dataspace");
        i0 = i1;
    }
    for (int gi = 0; gi < CKPT_NGROUPS; gi++)
        if (g[gi] >= 0) H5(H5Gclose(g[gi]), k_groups[gi]);
    hid_t m = H5(H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "meta");
    write_attr_str(m, h5file, "format", CKPT_FORMAT);
    write_attr_i64(m, h5file, "step", meta->step);
    write_attr_i64(m, h5file, "data_epoch", meta->data_epoch);
    write_attr_i64(m, h5file, "data_pos", meta->data_pos);
    write_attr_i64(m, h5file, "seed", meta->seed);
    write_attr_i64(m, h5file, "world", world);
    write_attr_i64(m, h5file, "skipped", meta->skipped);
    write_attr_i64(m, h5file, "tokens_seen", meta->tokens_seen);
    write_attr_f64(m, h5file, "total_flos", meta->total_flos);
    write_attr_i64(m, h5file, "data_pairs", meta->data_pairs);
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)meta->data_fingerprint);
    write_attr_str(m, h5file, "data_fingerprint", fp);
    write_attr_str(m, h5file, "config_yaml", meta->config_yaml);
    write_attr_str(m, h5file, "model_config_json", meta->model_config_json);
    write_attr_str(m, h5file, "layout", meta->layout);
    H5(H5Gclose(m), "meta");
    H5(H5Fflush(f, H5F_SCOPE_GLOBAL), "flush");
    H5(H5Fclose(f), "close file");
    fsync_path(path, false);
}

char *ckpt_commit(const char *dir, const CkptMeta *meta, int world) {
    h5_quiet();
    if (world < 1) sd_die("checkpoint", "world size %d < 1", world);
    if (!meta) sd_die("checkpoint", "no meta given to commit");
    Collect c = {0};
    c.tmpdir = step_dir_path(dir, meta->step, true);
    if (!sd_dir_exists(c.tmpdir)) commit_die(&c, c.tmpdir, "checkpoint directory does not exist (nothing to commit)");
    for (int r = 0; r < world; r++) collect_rank(&c, r);
    if (c.n > 1) qsort(c.s, c.n, sizeof *c.s, slice_cmp);
    for (size_t i0 = 0; i0 < c.n;) {
        size_t i1 = i0 + 1;
        while (i1 < c.n && c.s[i1].group == c.s[i0].group && strcmp(c.s[i1].tensor, c.s[i0].tensor) == 0) i1++;
        check_tiling(&c, i0, i1);
        i0 = i1;
    }
    char *index = sd_path_join(c.tmpdir, "index.h5");
    write_index(&c, index, meta, world);
    free(index);
    fsync_path(c.tmpdir, true);

    char *final = step_dir_path(dir, meta->step, false);
    sd_remove_tree(final);
    if (rename(c.tmpdir, final) != 0) sd_die(final, "cannot rename %s into place: %s", c.tmpdir, strerror(errno));
    fsync_path(dir, true);
    collect_free(&c);

    char line[64];
    int len = snprintf(line, sizeof line, "step-%08ld\n", meta->step);
    char *latest = sd_path_join(dir, "latest");
    sd_write_file_atomic(latest, line, (size_t)len);
    free(latest);
    fsync_path(dir, true);
    return final;
}

char *ckpt_save(const char *dir, const CkptMeta *meta, const CkptTensor *tensors, int n) {
    ckpt_prepare(dir, meta->step);
    ckpt_write_rank(dir, meta->step, 0, tensors, n);
    return ckpt_commit(dir, meta, 1);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* finding                                                                                                      */

static bool has_index(const char *step_dir) {
    char *p = sd_path_join(step_dir, "index.h5");
    bool ok = sd_file_exists(p);
    free(p);
    return ok;
}

/* "step-<digits>" exactly; the step number in *step */
static bool parse_step_name(const char *name, long *step) {
    if (strncmp(name, "step-", 5) != 0) return false;
    const char *p = name + 5;
    if (!*p) return false;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v > (LONG_MAX - 9) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    *step = v;
    return true;
}

char *ckpt_find_latest(const char *path) {
    struct stat st;
    if (!path || !*path) return NULL;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return NULL;
        sd_die(path, "cannot access: %s", strerror(errno));
    }
    if (S_ISREG(st.st_mode)) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, "index.h5") != 0) return NULL;
        return sd_path_dir(path);
    }
    if (!S_ISDIR(st.st_mode)) return NULL;
    if (has_index(path)) return sd_strdup(path);

    char *lp = sd_path_join(path, "latest");
    if (sd_file_exists(lp)) {
        size_t len;
        char *txt = sd_read_file(lp, &len);
        if (!txt) {
            char buf[4096];
            snprintf(buf, sizeof buf, "%s", lp);
            free(lp);
            sd_die(buf, "cannot read: %s", strerror(errno));
        }
        while (len > 0 && (txt[len - 1] == '\n' || txt[len - 1] == '\r' || txt[len - 1] == ' ')) txt[--len] = 0;
        long step;
        if (strlen(txt) == len && parse_step_name(txt, &step)) {
            char *cand = sd_path_join(path, txt);
            if (sd_dir_exists(cand) && has_index(cand)) {
                free(txt);
                free(lp);
                return cand;
            }
            free(cand);
        }
        free(txt);  /* a stale or damaged `latest` falls back to the scan */
    }
    free(lp);

    DIR *d = opendir(path);
    if (!d) sd_die(path, "cannot list directory: %s", strerror(errno));
    long best = -1;
    char *best_path = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long step;
        if (!parse_step_name(e->d_name, &step) || step <= best) continue;
        char *cand = sd_path_join(path, e->d_name);
        if (sd_dir_exists(cand) && has_index(cand)) {
            free(best_path);
            best_path = cand;
            best = step;
        } else free(cand);
    }
    closedir(d);
    return best_path;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* reading                                                                                                      */

struct CkptReader {
    hid_t file;
    char *index_path;
    CkptMeta meta;
    char *config_yaml, *model_config_json, *layout;
    int64_t world;             /* /meta/world, or 0 when the index has none (older checkpoints) */
};

static int64_t read_meta_i64(hid_t m, const char *where, const char *name) {
    int64_t v;
    read_attr_i64s(m, where, name, &v, 1);
    return v;
}

/* What ckpt_open holds while it reads /meta, released when it dies (registered with sd_cleanup_push: a trapped die,
 * in the tests and fuzz_ckpt, must not leak the reader, its strings or its HDF5 handles). */
typedef struct {
    hid_t f, m;
    char *index, *where, *fmt, *dir;
    CkptReader *r; /* once it exists it owns f and index */
} OpenState;
static void open_release(void *p) {
    OpenState *o = p;
    if (o->m >= 0) H5Gclose(o->m);
    if (o->r) ckpt_close(o->r);
    else {
        if (o->f >= 0) H5Fclose(o->f);
        free(o->index);
    }
    free(o->where);
    free(o->fmt);
    free(o->dir);
}

CkptReader *ckpt_open(const char *step_dir) {
    h5_quiet();
    OpenState o = {.f = -1, .m = -1};
    o.index = sd_file_exists(step_dir) ? sd_strdup(step_dir) : sd_path_join(step_dir, "index.h5");
    sd_cleanup_push(open_release, &o);
    if (!sd_file_exists(o.index)) sd_die(o.index, "no such checkpoint index (not a complete checkpoint directory)");
    o.f = H5Fis_hdf5(o.index) > 0 ? H5Fopen(o.index, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (o.f < 0) sd_die(o.index, "not a readable HDF5 file");
    const char *h5file = o.index;
    o.where = sd_printf_alloc("%s:/meta", o.index);
    const char *where = o.where;
    if (H5(H5Lexists(o.f, "meta", H5P_DEFAULT), "meta") <= 0) sd_die(where, "group is missing");
    o.m = H5(H5Gopen2(o.f, "meta", H5P_DEFAULT), "open /meta");
    hid_t m = o.m;
    o.fmt = read_attr_str(m, where, "format");
    if (strcmp(o.fmt, CKPT_FORMAT) != 0)
        sd_die(where, "unsupported checkpoint format '%s' (expected %s)", o.fmt, CKPT_FORMAT);
    CkptReader *r = o.r = sd_calloc(1, sizeof *r, "checkpoint reader");
    r->file = o.f;
    r->index_path = o.index;
    r->meta.step = (long)read_meta_i64(m, where, "step");
    r->meta.data_epoch = (long)read_meta_i64(m, where, "data_epoch");
    r->meta.data_pos = (long)read_meta_i64(m, where, "data_pos");
    r->meta.seed = (long)read_meta_i64(m, where, "seed");
    r->meta.skipped = H5Aexists(m, "skipped") > 0 ? (long)read_meta_i64(m, where, "skipped") : 0;
    r->meta.tokens_seen = H5Aexists(m, "tokens_seen") > 0 ? read_meta_i64(m, where, "tokens_seen") : 0;
    r->meta.total_flos = read_attr_f64_or(m, where, "total_flos", 0.0);
    if (r->meta.tokens_seen < 0 || !(r->meta.total_flos >= 0) || isinf(r->meta.total_flos))
        sd_die(where, "tokens_seen (%lld) and total_flos (%g) must be finite and >= 0",
               (long long)r->meta.tokens_seen, r->meta.total_flos);
    r->meta.data_pairs = H5Aexists(m, "data_pairs") > 0 ? read_meta_i64(m, where, "data_pairs") : 0;
    if (r->meta.data_pairs < 0) sd_die(where, "data_pairs (%lld) must be >= 0", (long long)r->meta.data_pairs);
    if (H5Aexists(m, "data_fingerprint") > 0) {
        char *fp = read_attr_str(m, where, "data_fingerprint"), *end = NULL;
        unsigned long long v = strtoull(fp, &end, 16);
        bool ok = strlen(fp) == 16 && end && !*end;
        free(fp);
        if (!ok) sd_die(where, "data_fingerprint: expected 16 hexadecimal digits");
        r->meta.data_fingerprint = (uint64_t)v;
    }
    r->config_yaml = read_attr_str(m, where, "config_yaml");
    r->model_config_json = read_attr_str(m, where, "model_config_json");
    r->layout = read_attr_str(m, where, "layout");
    r->meta.config_yaml = r->config_yaml;
    r->meta.model_config_json = r->model_config_json;
    r->meta.layout = r->layout;
    /* The rank files must all be there: a VDS silently reads its fill value where a source cannot be opened. */
    if (H5(H5Aexists(m, "world"), "world") > 0) {
        int64_t world = read_meta_i64(m, where, "world");
        if (world < 1 || world > 10000000) sd_die(where, "implausible world size %lld", (long long)world);
        o.dir = sd_path_dir(o.index);
        for (int64_t rk = 0; rk < world; rk++) {
            char fname[64];
            snprintf(fname, sizeof fname, "rank-%05lld.h5", (long long)rk);
            char *rp = sd_path_join(o.dir, fname);
            if (!sd_file_exists(rp)) {
                char buf[4096];
                snprintf(buf, sizeof buf, "%s", rp);
                free(rp);
                sd_die(buf, "rank file of this checkpoint is missing");
            }
            free(rp);
        }
        r->world = world;
    }
    sd_cleanup_pop();
    H5(H5Gclose(m), "close /meta");
    free(o.where);
    free(o.fmt);
    free(o.dir);
    return r;
}

const CkptMeta *ckpt_meta(const CkptReader *r) { return &r->meta; }

/* Opens group/name, or returns -1 when absent. */
static hid_t open_tensor(CkptReader *r, const char *group, const char *name) {
    const char *h5file = r->index_path;
    if (!valid_name(group) || !valid_name(name)) return -1;
    if (H5(H5Lexists(r->file, group, H5P_DEFAULT), group) <= 0) return -1;
    hid_t g = H5(H5Gopen2(r->file, group, H5P_DEFAULT), group);
    hid_t ds = -1;
    if (H5(H5Lexists(g, name, H5P_DEFAULT), name) > 0) ds = H5(H5Dopen2(g, name, H5P_DEFAULT), name);
    H5(H5Gclose(g), group);
    return ds;
}

/* ndim and dims of an open dataset, checked */
static int tensor_dims(const char *where, hid_t ds, int64_t *shape) {
    const char *h5file = where;
    hid_t sp = H5(H5Dget_space(ds), "dataspace");
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[CKPT_MAX_NDIM];
    if (nd < 1 || nd > CKPT_MAX_NDIM) sd_die(where, "tensor rank %d out of range 1..%d", nd, CKPT_MAX_NDIM);
    H5(H5Sget_simple_extent_dims(sp, dims, NULL), "dataspace dims");
    H5(H5Sclose(sp), "dataspace");
    size_t n = 1;
    for (int d = 0; d < nd; d++) {
        if (dims[d] > (hsize_t)INT64_MAX || !sd_try_mul_size(n, (size_t)dims[d], &n))
            sd_die(where, "tensor shape overflows");
        shape[d] = (int64_t)dims[d];
    }
    return nd;
}

int ckpt_shape(CkptReader *r, const char *group, const char *name, int64_t *shape_out) {
    hid_t ds = open_tensor(r, group, name);
    if (ds < 0) return -1;
    char where[1024];
    snprintf(where, sizeof where, "%s:/%s/%s", r->index_path, group, name);
    int nd = tensor_dims(where, ds, shape_out);
    const char *h5file = where;
    H5(H5Dclose(ds), "close dataset");
    return nd;
}

/* HDF5 ids a read holds (the tensor, the sources of a virtual one, dataspaces), closed together; registered as a
 * cleanup, so a read that dies releases them too. */
typedef struct {
    hid_t *ids;
    size_t n, cap;
} Held;
static void held_add(Held *h, hid_t id) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 8;
        h->ids = sd_realloc(h->ids, sd_mul_size(h->cap, sizeof *h->ids, "HDF5 ids"), "HDF5 ids");
    }
    h->ids[h->n++] = id;
}
static void held_release(void *p) {
    Held *h = p;
    for (size_t i = h->n; i-- > 0;) {
        H5I_type_t t = H5Iget_type(h->ids[i]);
        if (t == H5I_FILE) H5Fclose(h->ids[i]);
        else if (t == H5I_DATASPACE) H5Sclose(h->ids[i]);
        else if (t == H5I_GENPROP_LST) H5Pclose(h->ids[i]);
        else if (t == H5I_DATASET) H5Dclose(h->ids[i]);
    }
    free(h->ids);
    memset(h, 0, sizeof *h);
}

/* "rank-<digits>.h5", the only source file name our writer uses; the rank in *rank. */
static bool rank_file_name(const char *s, int64_t *rank) {
    if (strncmp(s, "rank-", 5) != 0) return false;
    const char *p = s + 5;
    int64_t v = 0;
    int nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (nd >= 9) return false;
        v = v * 10 + (*p - '0');
    }
    if (nd == 0 || strcmp(p, ".h5") != 0) return false;
    *rank = v;
    return true;
}

/* A virtual tensor may only map this checkpoint's rank files (rank-NNNNN.h5 beside index.h5, a rank below
 * /meta/world), and what it maps there must exist and hold plain data. libhdf5 follows a virtual dataset that
 * maps, directly or through another file, back to itself until the stack overflows, and silently reads the fill
 * value where a source is missing; a damaged or crafted checkpoint (tests/fuzz/fuzz_ckpt.c: an index copied over a
 * rank file, a tensor remapped to index.h5) must be an error naming the tensor instead. The source files and
 * datasets are added to *h and stay open through the read, which then reuses them. */
static void check_sources(CkptReader *r, hid_t ds, const char *where, Held *h) {
    const char *h5file = where;
    hid_t dcpl = H5(H5Dget_create_plist(ds), "dataset creation list");
    held_add(h, dcpl);
    if (H5Pget_layout(dcpl) != H5D_VIRTUAL) return;
    size_t count = 0;
    H5(H5Pget_virtual_count(dcpl, &count), "virtual mappings");
    char *dir = sd_path_dir(r->index_path);
    sd_cleanup_push(free, dir);
    for (size_t i = 0; i < count; i++) {
        char fname[64], dname[4096];
        ssize_t fl = H5(H5Pget_virtual_filename(dcpl, i, fname, sizeof fname), "virtual mapping");
        ssize_t dl = H5(H5Pget_virtual_dsetname(dcpl, i, dname, sizeof dname), "virtual mapping");
        int64_t rank;
        if ((size_t)fl >= sizeof fname || !rank_file_name(fname, &rank) || (r->world > 0 && rank >= r->world))
            sd_die(where, "virtual tensor maps '%s', which is not a rank file of this checkpoint", fname);
        /* the name as stored: '%' is written "%%" (vds_escape); anything else with '%' is not ours */
        char *q = dname;
        for (const char *p = dname; *p; p++) {
            if (*p == '%' && p[1] != '%') sd_die(where, "virtual tensor maps an unexpected dataset name '%s'", dname);
            *q++ = *p;
            if (*p == '%') p++;
        }
        *q = 0;
        if ((size_t)dl >= sizeof dname) sd_die(where, "virtual tensor maps a dataset name of %zd bytes", dl);
        char *path = sd_path_join(dir, fname);
        hid_t sf = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
        free(path);
        if (sf < 0) sd_die(where, "source %s is missing or not HDF5", fname);
        held_add(h, sf);
        hid_t sd = H5Lexists(sf, dname, H5P_DEFAULT) > 0 ? H5Dopen2(sf, dname, H5P_DEFAULT) : -1;
        if (sd < 0) sd_die(where, "source %s:%s is missing", fname, dname);
        held_add(h, sd);
        hid_t sp = H5(H5Dget_create_plist(sd), "dataset creation list");
        held_add(h, sp);
        if (H5Pget_layout(sp) == H5D_VIRTUAL)
            sd_die(where, "source %s:%s is itself a virtual dataset (a rank file holds plain data)", fname, dname);
    }
    sd_cleanup_pop();
    free(dir);
}

void ckpt_read(CkptReader *r, const char *group, const char *name, int ndim, const int64_t *offset,
               const int64_t *count, float *out) {
    char where[1024];
    snprintf(where, sizeof where, "%s:/%s/%s", r->index_path, group ? group : "(null)", name ? name : "(null)");
    hid_t ds = open_tensor(r, group, name);
    if (ds < 0) sd_die(where, "tensor is not in the checkpoint");
    Held held = {0};
    sd_cleanup_push(held_release, &held);
    held_add(&held, ds);
    const char *h5file = where;
    int64_t shape[CKPT_MAX_NDIM];
    int nd = tensor_dims(where, ds, shape);
    if (nd != ndim) sd_die(where, "tensor has %d dimensions, %d requested", nd, ndim);
    hsize_t start[CKPT_MAX_NDIM], cnt[CKPT_MAX_NDIM];
    size_t n = 1;
    for (int d = 0; d < nd; d++) {
        if (offset[d] < 0 || count[d] < 0 || offset[d] > shape[d] || count[d] > shape[d] - offset[d])
            /* offset and count, not offset + count: the sum may overflow */
            sd_die(where, "slice (offset %lld, count %lld) of dim %d is outside the tensor's size %lld",
                   (long long)offset[d], (long long)count[d], d, (long long)shape[d]);
        start[d] = (hsize_t)offset[d];
        cnt[d] = (hsize_t)count[d];
        n *= (size_t)count[d];  /* bounded by the checked product of shape */
    }
    if (n > 0) {
        check_sources(r, ds, where, &held);
        hid_t fsp = H5(H5Dget_space(ds), "dataspace");
        held_add(&held, fsp);
        H5(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, cnt, NULL), "select hyperslab");
        hid_t msp = H5(H5Screate_simple(nd, cnt, NULL), "memory dataspace");
        held_add(&held, msp);
        H5(H5Dread(ds, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, out), "read");
    }
    sd_cleanup_pop();
    held_release(&held);
}

void ckpt_close(CkptReader *r) {
    if (!r) return;
    H5Fclose(r->file);
    free(r->index_path);
    free(r->config_yaml);
    free(r->model_config_json);
    free(r->layout);
    free(r);
}

/* Keeps the newest `keep` complete step directories under dir (never the one `latest` names), removing older ones. */
void ckpt_prune(const char *dir, int keep) {
    if (keep <= 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    long *steps = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        /* only names this writer makes, step- and 8 digits: skips .tmp, and a stray "step-12" or "step--5" that
         * would otherwise stand for (and remove) another directory */
        const char *nm = e->d_name;
        if (strlen(nm) != 13 || strncmp(nm, "step-", 5) || strspn(nm + 5, "0123456789") != 8) continue;
        long s = strtol(nm + 5, NULL, 10);
        if (n == cap) steps = sd_realloc(steps, (cap = cap ? 2 * cap : 16) * sizeof(long), "steps");
        steps[n++] = s;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        size_t newer = 0;
        for (size_t j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer < (size_t)keep) continue;
        char *p = step_dir_path(dir, steps[i], false);
        sd_remove_tree(p);
        free(p);
    }
    free(steps);
}
