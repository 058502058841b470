/* checkpoint_verify.c — checksums of checkpoint datasets, whole-checkpoint verification, and the fall-back to the
 * newest sound checkpoint when the latest one is damaged (a truncated or missing rank file, a missing index).
 * Unlike the rest of checkpoint.c it never dies: a damaged checkpoint is an answer, not an error. */
#define _GNU_SOURCE
#include <dirent.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "checkpoint.h"
#include "util.h"

uint64_t ckpt_hash(const float *data, size_t n) { return sd_fnv1a(SD_FNV_OFFSET, data, n * sizeof(float)); }

typedef struct {
    char *why;
    size_t cap;
    int ok;
    const char *file;
} Verify;

static void fail(Verify *v, const char *fmt, ...) {
    if (!v->ok) return;
    v->ok = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, v->cap, fmt, ap);
    va_end(ap);
}

/* Reads a scalar integer attribute into *out; 0 when it is absent or not one integer. (H5Aread writes every
 * element the attribute holds: an array attribute read into one int64 overflowed the stack, found by fuzz_ckpt.) */
static int read_i64_attr(hid_t obj, const char *name, int64_t *out) {
    hid_t a = H5Aexists(obj, name) > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1;
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1 &&
             H5Aread(a, H5T_NATIVE_INT64, out) >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* fp32 (what ckpt_write_rank writes), not virtual, and all of its n values stored inside the file: the buffer
 * below is then bounded by the file's real size, not by a shape the file claims (a dataset of 2^40 unwritten
 * elements made the verifier allocate 4 TiB; a virtual one mapping back to itself made libhdf5 recurse until the
 * stack overflowed: both found by fuzz_ckpt). Returns the reason it is not, or NULL. */
static const char *storage_problem(hid_t ds, hssize_t n, hsize_t file_size) {
    hid_t t = H5Dget_type(ds);
    int f32 = t >= 0 && H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == sizeof(float);
    if (t >= 0) H5Tclose(t);
    if (!f32) return "is not fp32";
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (layout == H5D_VIRTUAL) return "is a virtual dataset (a rank file holds plain data)";
    if (layout == H5D_LAYOUT_ERROR) return "has no readable layout";
    hsize_t stored = H5Dget_storage_size(ds);
    if ((hsize_t)n > stored / sizeof(float)) return "holds fewer values than its shape (never written or cut short)";
    if (stored > file_size) return "extends past the end of the file (truncated?)";
    return NULL;
}

static int check_dataset(hid_t group, const char *name, hsize_t file_size, Verify *v) {
    hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
    if (ds < 0) {
        fail(v, "%s: dataset %s cannot be opened", v->file, name);
        return 1;
    }
    hid_t sp = H5Dget_space(ds);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int64_t want = 0;
    int have = read_i64_attr(ds, "checksum", &want);
    const char *bad = n >= 0 ? storage_problem(ds, n, file_size) : NULL;
    float *buf = n > 0 && !bad ? malloc((size_t)n * sizeof(float)) : NULL;
    if (n < 0 || (n > 0 && !bad && !buf)) fail(v, "%s: dataset %s has no readable size", v->file, name);
    else if (bad) fail(v, "%s: dataset %s %s", v->file, name, bad);
    else if (!have) fail(v, "%s: dataset %s has no checksum", v->file, name);
    else if (n > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        fail(v, "%s: dataset %s cannot be read (file truncated?)", v->file, name);
    else if (ckpt_hash(buf, (size_t)n) != (uint64_t)want) fail(v, "%s: dataset %s does not match its checksum", v->file, name);
    free(buf);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return v->ok ? 0 : 1;
}

int ckpt_verify(const char *step_dir, char *why, size_t cap) {
    Verify v = {why, cap, 1, NULL};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char *index = sd_path_join(step_dir, "index.h5");
    hid_t f = H5Fopen(index, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t world = -1;
    if (f < 0) fail(&v, "%s: missing or not HDF5", index);
    else {
        hid_t m = H5Gopen2(f, "/meta", H5P_DEFAULT);
        if (m < 0 || !read_i64_attr(m, "world", &world) || world < 1 || world > 1000000) {
            fail(&v, "%s: no valid /meta/world", index);
            world = -1;
        }
        if (m >= 0) H5Gclose(m);
        H5Fclose(f);
    }
    free(index);
    const char *groups[3] = {"param", "exp_avg", "exp_avg_sq"};
    for (int64_t r = 0; v.ok && r < world; r++) {
        char name[32];
        snprintf(name, sizeof name, "rank-%05lld.h5", (long long)r);
        char *path = sd_path_join(step_dir, name);
        v.file = path;
        hid_t rf = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        struct stat st; /* the real size (HDF5's own answer may be the size the file claims) */
        hsize_t file_size = rf >= 0 && stat(path, &st) == 0 ? (hsize_t)st.st_size : 0;
        if (rf < 0) fail(&v, "%s: missing or not HDF5 (truncated?)", path);
        for (int gi = 0; rf >= 0 && v.ok && gi < 3; gi++) {
            hid_t g = H5Gopen2(rf, groups[gi], H5P_DEFAULT);
            if (g < 0) {
                fail(&v, "%s: group /%s missing", path, groups[gi]);
                break;
            }
            H5G_info_t gi_info;
            if (H5Gget_info(g, &gi_info) < 0) fail(&v, "%s: group /%s cannot be read", path, groups[gi]);
            for (hsize_t li = 0; v.ok && li < gi_info.nlinks; li++) {
                char dname[1024];
                if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, li, dname, sizeof dname, H5P_DEFAULT) < 0)
                    fail(&v, "%s: group /%s cannot be listed", path, groups[gi]);
                else check_dataset(g, dname, file_size, &v);
            }
            H5Gclose(g);
        }
        if (rf >= 0) H5Fclose(rf);
        free(path);
    }
    return v.ok;
}

static int cmp_desc(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

char *ckpt_find_latest_valid(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    long *steps = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long s;
        char tail;
        if (sscanf(e->d_name, "step-%ld%c", &s, &tail) != 1) continue;
        if (n == cap) steps = sd_realloc(steps, (cap = cap ? 2 * cap : 16) * sizeof(long), "steps");
        steps[n++] = s;
    }
    closedir(d);
    if (n) qsort(steps, n, sizeof(long), cmp_desc);
    char *found = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        char name[40], why[1024];
        snprintf(name, sizeof name, "step-%08ld", steps[i]);
        char *p = sd_path_join(dir, name);
        if (ckpt_verify(p, why, sizeof why)) found = p;
        else {
            fprintf(stderr, "simpo_dist: warning: checkpoint %s is damaged (%s); trying an older one\n", p, why);
            free(p);
        }
    }
    free(steps);
    return found;
}
