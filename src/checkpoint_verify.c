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
#include "checkpoint.h"
#include "util.h"

uint64_t ckpt_hash(const float *data, size_t n) {
    const unsigned char *b = (const unsigned char *)data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

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

static int check_dataset(hid_t group, const char *name, Verify *v) {
    hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
    if (ds < 0) {
        fail(v, "%s: dataset %s cannot be opened", v->file, name);
        return 1;
    }
    hid_t sp = H5Dget_space(ds);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int64_t want = 0;
    hid_t a = H5Aexists(ds, "checksum") > 0 ? H5Aopen(ds, "checksum", H5P_DEFAULT) : -1;
    int have = a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &want) >= 0;
    if (a >= 0) H5Aclose(a);
    float *buf = n > 0 ? malloc((size_t)n * sizeof(float)) : NULL;
    if (n < 0 || (n > 0 && !buf)) fail(v, "%s: dataset %s has no readable size", v->file, name);
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
        hid_t a = m >= 0 ? H5Aopen(m, "world", H5P_DEFAULT) : -1;
        if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &world) < 0 || world < 1 || world > 1000000)
            fail(&v, "%s: no valid /meta/world", index);
        if (a >= 0) H5Aclose(a);
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
                else check_dataset(g, dname, &v);
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
