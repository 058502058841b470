/* fuzz_ckpt.c — reading a checkpoint's index and metadata: ckpt_find_latest, ckpt_verify, ckpt_find_latest_valid,
 * ckpt_open, ckpt_meta, ckpt_shape and ckpt_read of every tensor, on a checkpoint directory damaged by the input.
 *
 * Structured, not raw bytes: fuzzing the bytes of an HDF5 file mostly fuzzes libhdf5's own parser (whose bugs we
 * cannot fix). Once per process the harness writes a small valid checkpoint directory with the real writer
 * (ckpt_save: step 3, one rank; ckpt_prepare/ckpt_write_rank x2/ckpt_commit: step 7, two ranks, a tensor split
 * over both ranks, two slices of one tensor on one rank, a 3-d tensor, an empty one, a name with '%', a tensor
 * without optimizer state) and caches its files' bytes. Per input it writes a fresh copy to
 * /dev/shm/sd_fuzz_ckpt_<pid>/work (/tmp without /dev/shm), applies the input as a sequence of edit operations
 * through the HDF5 API and the file system, then runs the reading side on it.
 *
 * Input: byte 0 is the mode. 'R': raw, the rest of the input IS step-00000007/index.h5 (a minority of the seeds:
 * this mode is libhdf5's parser). Anything else: the rest is a list of operations, each an opcode byte (modulo the
 * number of operations) followed by its argument bytes (an input that runs out reads zeros; at most 64 ops).
 * The mode byte's low two bits pick the group whose tensors are read (param, exp_avg, exp_avg_sq; 3: all three;
 * reading is most of the time an input takes, and each read opens the rank files anew). Opcodes 0-18, in order:
 *   META_SET    step, attr, value     /meta attribute (format step data_epoch data_pos seed world skipped
 *                                      config_yaml model_config_json layout, or an extra one) replaced by a value
 *                                      of any kind: int64 scalar/array (huge, negative, wrong count), float64,
 *                                      uint8, uint64, big-endian int16, variable/fixed-length string, string
 *                                      array, a null dataspace
 *   META_DEL    step, attr            attribute deleted
 *   DS_ATTR     file, group, idx, attr, value   a dataset's global_shape / offset / checksum / tensor replaced
 *   DS_ATTR_DEL file, group, idx, attr
 *   DS_REPLACE  file, group, idx, dtype, rank, dims, write?, keep attrs?   dataset replaced (f32 LE/BE, f64, i32,
 *                                      u8, i64, string, compound; scalar, rank 1-5, null; dims small or huge, data
 *                                      written or left unallocated)
 *   DS_DELETE   file, group, idx      link removed
 *   ADD_LINK    file, group, kind, name   dangling / looping soft link, hard link, group, external link, a new
 *                                      tensor; names: extra, a second slice name, 1100 characters, '%b', ...
 *   CORRUPT     file, group, idx, offset, xor   one byte of a dataset's data changed (its checksum is not)
 *   REHASH      file, group, idx      the checksum attribute recomputed, so that a damaged dataset passes verify
 *                                      (virtual datasets are skipped: the harness itself must not read one)
 *   VDS_REPLACE step, group, idx, source file, source dataset, shape   an index tensor remapped (another rank
 *                                      file, a missing one, the index itself, a printf-style name, another
 *                                      dataset, another shape)
 *   GROUP_DEL   file, group           /param, /exp_avg, /exp_avg_sq or /meta removed
 *   TRUNCATE    file, amount, mode    cut at a fraction of the size, extended with zeros, or cut to N bytes
 *   FILE_DEL / FILE_TO_DIR / FILE_LINK / FILE_COPY   a file removed, replaced by a directory, by a symbolic link
 *                                      (to another file or to itself), or by a copy of another file
 *   LATEST      len, bytes            `latest` rewritten with arbitrary text
 *   MKSTEP      len, bytes, copy?     an extra directory "step-<bytes>" (empty, or a copy of step 3)
 *   SLICE       per dim offset, count one more read of every tensor, of this hyperslab (besides the whole
 *                                      tensor, one past the end and one of the wrong rank)
 * Files: step-00000007/{index.h5, rank-00000.h5, rank-00001.h5, rank-00002.h5 (absent at first)},
 * step-00000003/{index.h5, rank-00000.h5}, latest.
 * A rejection must be a trapped sd_die. Also checked: a reader that returns normally leaves no HDF5 object open
 * (ckpt_verify and ckpt_find_latest_valid never die, so that is every call of theirs), and ckpt_read never returns
 * normally for a slice that does not fit the tensor; its output buffer is sized from the requested count, so
 * ASan catches a write past it. After a trapped die the harness closes the HDF5 objects the dying reader held (the
 * real program exits there). ckpt_find_latest_valid's warnings go to /dev/null while it runs.
 * SD_FUZZ_VERBOSE=1 prints what the readers made of an input (verify's reasons, each open, shape and read). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <math.h>
#include <hdf5.h>
#include <sys/stat.h>
#include "checkpoint.h"
#include "fuzz_common.h"

#define MAX_OPS 64
#define MAX_READ_ELEMS ((size_t)1 << 20)

static char g_root[64], g_base[96], g_work[96];
typedef struct {
    const char *rel;
    char *data;
    size_t len;
} BaseFile;
static BaseFile g_files[] = {{"latest", 0, 0},
                             {"step-00000003/index.h5", 0, 0},
                             {"step-00000003/rank-00000.h5", 0, 0},
                             {"step-00000007/index.h5", 0, 0},
                             {"step-00000007/rank-00000.h5", 0, 0},
                             {"step-00000007/rank-00001.h5", 0, 0}};
#define NBASE ((int)(sizeof g_files / sizeof g_files[0]))

/* the files an operation can name */
static const char *const k_files[] = {"step-00000007/index.h5",      "step-00000007/rank-00000.h5",
                                      "step-00000007/rank-00001.h5", "step-00000003/index.h5",
                                      "step-00000003/rank-00000.h5", "latest",
                                      "step-00000007/rank-00002.h5"};
#define NFILES 7
static const char *const k_groups[3] = {"param", "exp_avg", "exp_avg_sq"};
static const char *const k_meta_attrs[] = {"format", "step",        "data_epoch",        "data_pos", "seed",  "world",
                                           "skipped", "config_yaml", "model_config_json", "layout",   "extra"};
static const char *const k_ds_attrs[] = {"global_shape", "offset", "checksum", "tensor", "extra"};
static const char *const k_tensors[] = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                                        "layers.0.w", "odd%name", "empty"};

/* ---- the input as a stream of bytes (zeros once it runs out) ---- */
typedef struct {
    const uint8_t *p;
    size_t n, i;
} Rd;
static unsigned u8(Rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static unsigned u16(Rd *r) {
    unsigned a = u8(r);
    return a | u8(r) << 8;
}
static int64_t raw64(Rd *r) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)u8(r) << (8 * i);
    return (int64_t)v;
}
static int64_t interesting(Rd *r) {
    static const int64_t k[] = {0, 1, 2, 3, 4, 7, -1, -2, INT64_MAX, INT64_MIN, (int64_t)1 << 31, (int64_t)1 << 32,
                                (int64_t)1 << 62, 10000000, 10000001, 1000000, 1000001, 0x7fffffff};
    unsigned i = u8(r) % 19;
    return i < 18 ? k[i] : raw64(r);
}
/* n bytes of the input (fewer when it runs out) */
static size_t take(Rd *r, size_t n, const uint8_t **out) {
    size_t left = r->n - r->i;
    if (n > left) n = left;
    *out = r->p + r->i;
    r->i += n;
    return n;
}

/* ---- files ---- */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}
static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len && fwrite(data, 1, len, f) != len) abort();
    fclose(f);
}
static char *work_path(const char *rel) { return sd_path_join(g_work, rel); }

/* ---- HDF5 objects left open ---- */
static ssize_t h5_open_count(void) { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }
/* Closes whatever a trapped reader left open (objects first, then files). */
static void h5_sweep(void) {
    ssize_t n = h5_open_count();
    if (n <= 0) return;
    hid_t *ids = malloc((size_t)n * sizeof *ids);
    n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, (size_t)n, ids);
    for (int pass = 0; pass < 2; pass++)
        for (ssize_t i = 0; i < n; i++) {
            H5I_type_t t = H5Iget_type(ids[i]);
            if (pass == 0 && t == H5I_ATTR) H5Aclose(ids[i]);
            else if (pass == 0 && (t == H5I_DATASET || t == H5I_GROUP || t == H5I_DATATYPE)) H5Oclose(ids[i]);
            else if (pass == 1 && t == H5I_FILE) {
                while (H5Iis_valid(ids[i]) > 0 && H5Fclose(ids[i]) >= 0) {
                }
            }
        }
    free(ids);
}
/* A reader that returned normally must not leave HDF5 objects (and their file descriptors) open. */
static void expect_none_open(void) {
    if (h5_open_count() != 0) {
        fprintf(stderr, "fuzz_ckpt: a reader returned with %zd HDF5 objects open\n", h5_open_count());
        abort();
    }
}

/* ---- building the base checkpoint (once) ---- */
/* The pristine checkpoint must verify and read whole (unguarded: a die here ends the process). */
static void self_test(void) {
    char why[512];
    const char *steps[2] = {"step-00000003", "step-00000007"};
    for (int s = 0; s < 2; s++) {
        char *d = sd_path_join(g_base, steps[s]);
        if (!ckpt_verify(d, why, sizeof why)) {
            fprintf(stderr, "fuzz_ckpt: the base checkpoint does not verify: %s\n", why);
            abort();
        }
        CkptReader *r = ckpt_open(d);
        for (int g = 0; g < 3; g++)
            for (size_t i = 0; i < sizeof k_tensors / sizeof k_tensors[0]; i++) {
                int64_t shape[4], zero[4] = {0};
                int nd = ckpt_shape(r, k_groups[g], k_tensors[i], shape);
                if (nd < 1) continue;
                float out[64];
                ckpt_read(r, k_groups[g], k_tensors[i], nd, zero, shape, out);
            }
        ckpt_close(r);
        free(d);
    }
}

/* libFuzzer leaves by _Exit after a crash or a merge, skipping the atexit removal: the directories of processes
 * that are gone are removed here (they live in memory under /dev/shm). */
static void remove_stale(const char *parent) {
    DIR *d = opendir(parent);
    for (struct dirent *e; d && (e = readdir(d));) {
        int pid;
        char tail;
        if (sscanf(e->d_name, "sd_fuzz_ckpt_%d%c", &pid, &tail) != 1 || pid <= 0) continue;
        if (kill(pid, 0) == 0 || errno != ESRCH) continue;
        char *p = sd_path_join(parent, e->d_name);
        rm_tree(p);
        free(p);
    }
    if (d) closedir(d);
}

static void build_base(void) {
    /* in memory where there is a tmpfs: every input rewrites the directory */
    const char *parent = sd_dir_exists("/dev/shm") ? "/dev/shm" : "/tmp";
    remove_stale(parent);
    snprintf(g_root, sizeof g_root, "%s/sd_fuzz_ckpt_%d", parent, (int)getpid());
    snprintf(g_base, sizeof g_base, "%s/base", g_root);
    snprintf(g_work, sizeof g_work, "%s/work", g_root);
    rm_tree(g_root);
    sd_mkdirs(g_base);
    float v[64];
    for (int i = 0; i < 64; i++) v[i] = (float)i * 0.25f - 3.0f;
    CkptMeta meta = {.step = 3, .data_epoch = 0, .data_pos = 12, .seed = 42,
                     .config_yaml = "model:\n  hidden_size: 4\ntrain:\n  lr: 1.0e-5\n",
                     .model_config_json = "{\"hidden_size\": 4, \"num_hidden_layers\": 1}",
                     .layout = "dp1-pp1-tp1-zero0", .skipped = 0};
    CkptTensor t3 = {"model.norm.weight", 1, {3}, {0}, {3}, v, v + 3, v + 6};
    char *p = ckpt_save(g_base, &meta, &t3, 1);
    free(p);
    /* step 7, two ranks */
    CkptTensor r0[] = {
        {"model.embed_tokens.weight", 2, {4, 3}, {0, 0}, {2, 3}, v, v + 8, v + 16},
        {"model.norm.weight", 1, {3}, {0}, {3}, v + 1, NULL, NULL},
        {"layers.0.w", 2, {2, 4}, {0, 0}, {2, 2}, v + 2, v + 3, v + 4},
        {"layers.0.w", 2, {2, 4}, {0, 2}, {2, 2}, v + 5, v + 6, v + 7},
        {"odd%name", 1, {1}, {0}, {1}, v + 9, v + 10, v + 11},
        {"empty", 2, {0, 2}, {0, 0}, {0, 2}, v, v, v},
    };
    CkptTensor r1[] = {
        {"model.embed_tokens.weight", 2, {4, 3}, {2, 0}, {2, 3}, v + 20, v + 28, v + 36},
        {"lm_head.weight", 3, {2, 2, 2}, {0, 0, 0}, {2, 2, 2}, v + 40, v + 48, v + 56},
    };
    meta.step = 7;
    meta.data_epoch = 1;
    meta.data_pos = 3;
    meta.skipped = 1;
    meta.layout = "dp2-pp1-tp1-zero1";
    ckpt_prepare(g_base, 7);
    ckpt_write_rank(g_base, 7, 0, r0, (int)(sizeof r0 / sizeof r0[0]));
    ckpt_write_rank(g_base, 7, 1, r1, (int)(sizeof r1 / sizeof r1[0]));
    p = ckpt_commit(g_base, &meta, 2);
    free(p);
    self_test();
    for (int i = 0; i < NBASE; i++) {
        char *fp = sd_path_join(g_base, g_files[i].rel);
        g_files[i].data = sd_read_file(fp, &g_files[i].len);
        if (!g_files[i].data) abort();
        free(fp);
    }
}
static void remove_root(void) { rm_tree(g_root); }

static void fresh_copy(void) {
    rm_tree(g_work);
    char *d7 = work_path("step-00000007"), *d3 = work_path("step-00000003");
    sd_mkdirs(d7);
    sd_mkdirs(d3);
    free(d7);
    free(d3);
    for (int i = 0; i < NBASE; i++) {
        char *fp = work_path(g_files[i].rel);
        write_bytes(fp, g_files[i].data, g_files[i].len);
        free(fp);
    }
}

/* ---- HDF5 edits (best effort: a failing edit just does nothing) ---- */
static hid_t open_rw(unsigned fsel) {
    char *p = work_path(k_files[fsel % NFILES]);
    hid_t f = H5Fis_hdf5(p) > 0 ? H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT) : -1;
    free(p);
    return f;
}
static hid_t open_index_rw(unsigned step_sel) { return open_rw(step_sel & 1 ? 3 : 0); }

/* The idx-th link (by name) of group g of file f, opened as a dataset: ds (-1 when none), its group grp (-1 when that
 * did not open; none when f < 0) and the link's name (malloc'd; NULL when none). nth_close closes what is open. */
typedef struct {
    hid_t grp, ds;
    char *name;
} Nth;
static Nth open_nth(hid_t f, unsigned g, unsigned idx) {
    Nth n = {-1, -1, NULL};
    if (f < 0) return n;
    n.grp = H5Gopen2(f, k_groups[g % 3], H5P_DEFAULT);
    if (n.grp < 0) return n;
    H5G_info_t info;
    if (H5Gget_info(n.grp, &info) < 0 || info.nlinks == 0) return n;
    hsize_t li = idx % info.nlinks;
    ssize_t len = H5Lget_name_by_idx(n.grp, ".", H5_INDEX_NAME, H5_ITER_INC, li, NULL, 0, H5P_DEFAULT);
    if (len < 0) return n;
    n.name = calloc((size_t)len + 1, 1);
    H5Lget_name_by_idx(n.grp, ".", H5_INDEX_NAME, H5_ITER_INC, li, n.name, (size_t)len + 1, H5P_DEFAULT);
    H5O_info_t oi;
    if (H5Oget_info_by_name(n.grp, n.name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return n;
    n.ds = H5Dopen2(n.grp, n.name, H5P_DEFAULT);
    return n;
}
static void nth_close(Nth *n) {
    if (n->ds >= 0) H5Dclose(n->ds);
    if (n->grp >= 0) H5Gclose(n->grp);
    free(n->name);
    *n = (Nth){-1, -1, NULL};
}

/* Creates attribute name (file type ft, space sp) and writes v (memory type mt) when v is not NULL. */
static hid_t put_attr(hid_t obj, const char *name, hid_t ft, hid_t sp, hid_t mt, const void *v) {
    hid_t a = H5Acreate2(obj, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && v) H5Awrite(a, mt, v);
    return a;
}

/* Replaces attribute `name` of obj by a value of the kind the input picks. */
static void set_attr(hid_t obj, const char *name, Rd *r) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    unsigned kind = u8(r) % 12;
    hid_t sp = -1, t = -1, a = -1;
    switch (kind) {
    case 0: { /* int64 scalar */
        int64_t v = interesting(r);
        sp = H5Screate(H5S_SCALAR);
        a = put_attr(obj, name, H5T_STD_I64LE, sp, H5T_NATIVE_INT64, &v);
        break;
    }
    case 1: { /* int64 array of 0..7 */
        hsize_t n = u8(r) % 8;
        int64_t v[8] = {0};
        for (hsize_t i = 0; i < n; i++) v[i] = interesting(r);
        sp = H5Screate_simple(1, &n, NULL);
        a = put_attr(obj, name, H5T_STD_I64LE, sp, H5T_NATIVE_INT64, n ? v : NULL);
        break;
    }
    case 2: { /* float64 scalar */
        static const double k[] = {0.5, -1.0, 1e300, -1e300, 3.0, 1e19};
        unsigned i = u8(r) % 8;
        double v = i < 6 ? k[i] : i == 6 ? NAN : INFINITY;
        sp = H5Screate(H5S_SCALAR);
        a = put_attr(obj, name, H5T_IEEE_F64LE, sp, H5T_NATIVE_DOUBLE, &v);
        break;
    }
    case 3:   /* variable-length string */
    case 4: { /* fixed-length string, NUL or space padded */
        const uint8_t *b;
        size_t n = take(r, u8(r), &b);
        char s[256];
        memcpy(s, b, n);
        s[n] = 0;
        t = H5Tcopy(H5T_C_S1);
        if (kind == 3) {
            H5Tset_size(t, H5T_VARIABLE);
            H5Tset_cset(t, H5T_CSET_UTF8);
        } else {
            H5Tset_size(t, n ? n : 1);
            H5Tset_strpad(t, n & 1 ? H5T_STR_SPACEPAD : H5T_STR_NULLPAD);
        }
        sp = H5Screate(H5S_SCALAR);
        const char *v = s;
        a = put_attr(obj, name, t, sp, t, kind == 3 ? (const void *)&v : (const void *)s);
        break;
    }
    case 5: { /* uint8 scalar */
        uint8_t v = (uint8_t)u8(r);
        sp = H5Screate(H5S_SCALAR);
        a = put_attr(obj, name, H5T_STD_U8LE, sp, H5T_NATIVE_UINT8, &v);
        break;
    }
    case 6: { /* uint64 scalar (beyond int64) */
        uint64_t v = (uint64_t)interesting(r);
        if (u8(r) & 1) v |= (uint64_t)1 << 63;
        sp = H5Screate(H5S_SCALAR);
        a = put_attr(obj, name, H5T_STD_U64LE, sp, H5T_NATIVE_UINT64, &v);
        break;
    }
    case 7: /* null dataspace */
        sp = H5Screate(H5S_NULL);
        a = put_attr(obj, name, H5T_STD_I64LE, sp, H5T_NATIVE_INT64, NULL);
        break;
    case 8: { /* array of two variable-length strings */
        hsize_t n = 2;
        const char *v[2] = {"a", "model.norm.weight"};
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        sp = H5Screate_simple(1, &n, NULL);
        a = put_attr(obj, name, t, sp, t, v);
        break;
    }
    case 9: { /* int32 2x2 */
        hsize_t d[2] = {2, 2};
        int32_t v[4] = {(int32_t)interesting(r), 2, 3, 4};
        sp = H5Screate_simple(2, d, NULL);
        a = put_attr(obj, name, H5T_STD_I32LE, sp, H5T_NATIVE_INT32, v);
        break;
    }
    case 10: { /* big-endian int16 scalar */
        int16_t v = (int16_t)interesting(r);
        sp = H5Screate(H5S_SCALAR);
        a = put_attr(obj, name, H5T_STD_I16BE, sp, H5T_NATIVE_INT16, &v);
        break;
    }
    default: { /* empty variable-length string */
        const char *v = "";
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        sp = H5Screate(H5S_SCALAR);
        a = put_attr(obj, name, t, sp, t, &v);
        break;
    }
    }
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
}

/* Copies every attribute (up to 64 elements each) from src to dst, values and types as they are. */
static herr_t copy_attr_cb(hid_t src, const char *name, const H5A_info_t *info, void *dstp) {
    (void)info;
    hid_t dst = *(hid_t *)dstp;
    hid_t a = H5Aopen(src, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t sz = H5Tget_size(t);
    if (n >= 0 && n <= 64 && sz > 0 && sz <= 4096) {
        void *buf = calloc((size_t)(n ? n : 1), sz);
        hid_t b = H5Acreate2(dst, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (b >= 0 && (n == 0 || H5Aread(a, t, buf) >= 0)) {
            if (n) H5Awrite(b, t, buf);
            if (n && H5Tdetect_class(t, H5T_VLEN) + H5Tis_variable_str(t) > 0) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
        }
        if (b >= 0) H5Aclose(b);
        free(buf);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static void ds_replace(hid_t f, Rd *r) {
    unsigned g = u8(r), idx = u8(r), dtype = u8(r) % 8, rank = u8(r) % 7;
    hsize_t dims[5] = {1, 1, 1, 1, 1};
    size_t elems = 1;
    bool huge = false;
    for (unsigned d = 0; d < rank && d < 5; d++) {
        unsigned v = u8(r);
        static const hsize_t big[] = {1 << 20, (hsize_t)1 << 31, (hsize_t)1 << 40, (hsize_t)1 << 62, 1000003};
        dims[d] = v < 200 ? v % 6 : big[v % 5];
        if (v >= 200) huge = true;
        else elems *= dims[d];
    }
    unsigned flags = u8(r); /* bit 0: write data; bit 1: keep the old attributes */
    Nth n = open_nth(f, g, idx);
    if (n.ds < 0) {
        nth_close(&n);
        return;
    }
    hid_t t = -1;
    switch (dtype) {
    case 0: t = H5Tcopy(H5T_IEEE_F32LE); break;
    case 1: t = H5Tcopy(H5T_IEEE_F32BE); break;
    case 2: t = H5Tcopy(H5T_IEEE_F64LE); break;
    case 3: t = H5Tcopy(H5T_STD_I32LE); break;
    case 4: t = H5Tcopy(H5T_STD_U8LE); break;
    case 5: t = H5Tcopy(H5T_STD_I64LE); break;
    case 6:
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        break;
    default:
        t = H5Tcreate(H5T_COMPOUND, 8);
        H5Tinsert(t, "a", 0, H5T_IEEE_F32LE);
        H5Tinsert(t, "b", 4, H5T_IEEE_F32LE);
        break;
    }
    hid_t sp = rank == 0   ? H5Screate(H5S_SCALAR)
               : rank == 6 ? H5Screate(H5S_NULL)
                           : H5Screate_simple((int)rank, dims, NULL);
    hid_t nd = H5Dcreate2(n.grp, "__new", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (nd >= 0) {
        if ((flags & 1) && !huge && rank != 6 && elems <= 4096 && dtype != 6 && dtype != 7) {
            float *v = malloc((elems ? elems : 1) * sizeof *v);
            for (size_t i = 0; i < elems; i++) v[i] = (float)i - 1.5f;
            H5Dwrite(nd, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            free(v);
        }
        if (flags & 2) {
            hsize_t ai = 0;
            H5Aiterate2(n.ds, H5_INDEX_NAME, H5_ITER_INC, &ai, copy_attr_cb, &nd);
        }
        H5Dclose(nd);
        H5Dclose(n.ds);
        n.ds = -1;
        if (H5Ldelete(n.grp, n.name, H5P_DEFAULT) >= 0)
            H5Lmove(n.grp, "__new", n.grp, n.name, H5P_DEFAULT, H5P_DEFAULT);
    }
    H5Sclose(sp);
    H5Tclose(t);
    nth_close(&n);
}

static void add_link(hid_t f, Rd *r) {
    unsigned g = u8(r), kind = u8(r) % 7, nsel = u8(r) % 6;
    char longname[1101];
    memset(longname, 'x', 1100);
    longname[1100] = 0;
    const char *names[6] = {"extra", "model.norm.weight@1", longname, "%b", "odd name", "model.norm.weight"};
    const char *name = names[nsel];
    hid_t grp = H5Gopen2(f, k_groups[g % 3], H5P_DEFAULT);
    if (grp < 0) grp = H5Gcreate2(f, k_groups[g % 3], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0) return;
    char self[1200];
    snprintf(self, sizeof self, "/%s/%s", k_groups[g % 3], name);
    switch (kind) {
    case 0: H5Lcreate_soft("/nonexistent", grp, name, H5P_DEFAULT, H5P_DEFAULT); break;
    case 1: H5Lcreate_soft("/meta", grp, name, H5P_DEFAULT, H5P_DEFAULT); break;
    case 2: H5Lcreate_soft(self, grp, name, H5P_DEFAULT, H5P_DEFAULT); break; /* a loop */
    case 3: H5Lcreate_hard(f, "/param/model.norm.weight", grp, name, H5P_DEFAULT, H5P_DEFAULT); break;
    case 4: {
        hid_t sub = H5Gcreate2(grp, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (sub >= 0) H5Gclose(sub);
        break;
    }
    case 5: H5Lcreate_external("rank-00001.h5", "/param/lm_head.weight", grp, name, H5P_DEFAULT, H5P_DEFAULT); break;
    default: { /* a new, consistent tensor of 2 floats */
        hsize_t n = 2;
        float v[2] = {1.0f, 2.0f};
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t ds = H5Dcreate2(grp, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds >= 0) {
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            int64_t gs = 2, off = 0, sum = (int64_t)ckpt_hash(v, 2);
            hsize_t one = 1;
            hid_t asp = H5Screate_simple(1, &one, NULL), ssp = H5Screate(H5S_SCALAR);
            hid_t a = H5Acreate2(ds, "global_shape", H5T_STD_I64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) H5Awrite(a, H5T_NATIVE_INT64, &gs), H5Aclose(a);
            a = H5Acreate2(ds, "offset", H5T_STD_I64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) H5Awrite(a, H5T_NATIVE_INT64, &off), H5Aclose(a);
            a = H5Acreate2(ds, "checksum", H5T_STD_I64LE, ssp, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) H5Awrite(a, H5T_NATIVE_INT64, &sum), H5Aclose(a);
            H5Sclose(asp);
            H5Sclose(ssp);
            H5Dclose(ds);
        }
        H5Sclose(sp);
        break;
    }
    }
    H5Gclose(grp);
}

/* Flips one byte of a contiguous dataset's data in the file (its checksum attribute stays as it was). */
static void corrupt_data(unsigned fsel, Rd *r) {
    unsigned g = u8(r), idx = u8(r), off = u16(r), x = u8(r) | 1;
    hid_t f = open_rw(fsel);
    if (f < 0) return;
    Nth n = open_nth(f, g, idx);
    haddr_t addr = n.ds >= 0 ? H5Dget_offset(n.ds) : HADDR_UNDEF;
    hsize_t size = n.ds >= 0 ? H5Dget_storage_size(n.ds) : 0;
    nth_close(&n);
    H5Fclose(f);
    if (addr == HADDR_UNDEF || size == 0) return;
    char *p = work_path(k_files[fsel % NFILES]);
    int fd = open(p, O_RDWR);
    free(p);
    if (fd < 0) return;
    unsigned char b;
    off_t at = (off_t)(addr + off % size);
    if (pread(fd, &b, 1, at) == 1) {
        b ^= (unsigned char)x;
        if (pwrite(fd, &b, 1, at) != 1) abort();
    }
    close(fd);
}

/* The dataset's checksum attribute set to the hash of what it now reads as (fp32). */
static void rehash(hid_t f, Rd *r) {
    unsigned g = u8(r), idx = u8(r);
    Nth nth = open_nth(f, g, idx);
    hid_t dcpl = nth.ds >= 0 ? H5Dget_create_plist(nth.ds) : -1;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_VIRTUAL) { /* the harness must not read what may map to itself */
        H5Dclose(nth.ds);
        nth.ds = -1;
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (nth.ds >= 0) {
        hid_t sp = H5Dget_space(nth.ds);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        if (n >= 0 && n <= 65536) {
            float *v = calloc((size_t)(n ? n : 1), sizeof *v);
            if (n == 0 || H5Dread(nth.ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
                int64_t sum = (int64_t)ckpt_hash(v, (size_t)n);
                if (H5Aexists(nth.ds, "checksum") > 0) H5Adelete(nth.ds, "checksum");
                hid_t ssp = H5Screate(H5S_SCALAR);
                hid_t a = H5Acreate2(nth.ds, "checksum", H5T_STD_I64LE, ssp, H5P_DEFAULT, H5P_DEFAULT);
                if (a >= 0) H5Awrite(a, H5T_NATIVE_INT64, &sum), H5Aclose(a);
                H5Sclose(ssp);
            }
            free(v);
        }
        H5Sclose(sp);
    }
    nth_close(&nth);
}

/* An index tensor remapped: one mapping of its whole extent to a source the input picks. */
static void vds_replace(hid_t f, Rd *r) {
    unsigned g = u8(r), idx = u8(r), fsrc = u8(r) % 7, dsrc = u8(r) % 6, shape = u8(r) % 4;
    static const char *const srcf[7] = {"rank-00000.h5", "rank-00001.h5", "rank-00009.h5", "index.h5", ".",
                                        "rank-%b.h5", "rank-00000.h5%%"};
    Nth n = open_nth(f, g, idx);
    if (n.ds < 0) {
        nth_close(&n);
        return;
    }
    hid_t osp = H5Dget_space(n.ds);
    int nd = H5Sget_simple_extent_ndims(osp);
    hsize_t dims[8] = {0};
    if (nd >= 1 && nd <= 4) H5Sget_simple_extent_dims(osp, dims, NULL);
    H5Sclose(osp);
    H5Dclose(n.ds);
    n.ds = -1;
    if (nd < 1 || nd > 4) {
        nth_close(&n);
        return;
    }
    if (shape == 1) dims[0] += 1;               /* bigger than the source */
    if (shape == 2) dims[nd - 1] = dims[nd - 1] ? dims[nd - 1] - 1 : 0;  /* smaller */
    if (shape == 3) dims[nd++] = 1;             /* one more dimension */
    char dset[1200];
    const char *grp_name = k_groups[g % 3];
    switch (dsrc) {
    case 0: snprintf(dset, sizeof dset, "/%s/%s", grp_name, n.name); break;
    case 1: snprintf(dset, sizeof dset, "/param/%s", n.name); break;
    case 2: snprintf(dset, sizeof dset, "/%s/%s@1", grp_name, n.name); break;
    case 3: snprintf(dset, sizeof dset, "/meta"); break;
    case 4: snprintf(dset, sizeof dset, "/nope"); break;
    default: snprintf(dset, sizeof dset, "/param/lm_head.weight"); break;
    }
    hid_t vsp = H5Screate_simple(nd, dims, NULL), ssp = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const float nan = NAN;
    H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan);
    H5Pset_virtual(dcpl, vsp, srcf[fsrc], dset, ssp);
    hid_t nds = H5Dcreate2(n.grp, "__new", H5T_IEEE_F32LE, vsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (nds >= 0) {
        H5Dclose(nds);
        if (H5Ldelete(n.grp, n.name, H5P_DEFAULT) >= 0)
            H5Lmove(n.grp, "__new", n.grp, n.name, H5P_DEFAULT, H5P_DEFAULT);
    }
    H5Pclose(dcpl);
    H5Sclose(vsp);
    H5Sclose(ssp);
    nth_close(&n);
}

/* ---- the slice of the partial reads ---- */
static bool g_slice_set;
static int64_t g_off[4], g_cnt[4];

static void apply_ops(Rd *r) {
    for (int op = 0; op < MAX_OPS && r->i < r->n; op++) {
        unsigned code = u8(r) % 19;
        hid_t f = -1;
        switch (code) {
        case 0: /* META_SET */
        case 1: { /* META_DEL */
            f = open_index_rw(u8(r));
            const char *a = k_meta_attrs[u8(r) % 11];
            hid_t m = f >= 0 ? H5Gopen2(f, "meta", H5P_DEFAULT) : -1;
            if (m >= 0) {
                if (code == 0) set_attr(m, a, r);
                else if (H5Aexists(m, a) > 0) H5Adelete(m, a);
                H5Gclose(m);
            }
            break;
        }
        case 2: /* DS_ATTR */
        case 3: { /* DS_ATTR_DEL */
            f = open_rw(u8(r));
            unsigned g = u8(r), idx = u8(r);
            const char *a = k_ds_attrs[u8(r) % 5];
            Nth n = open_nth(f, g, idx);
            if (n.ds >= 0) {
                if (code == 2) set_attr(n.ds, a, r);
                else if (H5Aexists(n.ds, a) > 0) H5Adelete(n.ds, a);
            }
            nth_close(&n);
            break;
        }
        case 4: /* DS_REPLACE */
            f = open_rw(u8(r));
            if (f >= 0) ds_replace(f, r);
            break;
        case 5: { /* DS_DELETE */
            f = open_rw(u8(r));
            unsigned g = u8(r), idx = u8(r);
            Nth n = open_nth(f, g, idx);
            if (n.ds >= 0) H5Dclose(n.ds), n.ds = -1;
            if (n.name) H5Ldelete(n.grp, n.name, H5P_DEFAULT);
            nth_close(&n);
            break;
        }
        case 6: /* ADD_LINK */
            f = open_rw(u8(r));
            if (f >= 0) add_link(f, r);
            break;
        case 7: /* CORRUPT */
            corrupt_data(u8(r), r);
            break;
        case 8: /* REHASH */
            f = open_rw(u8(r));
            if (f >= 0) rehash(f, r);
            break;
        case 9: /* VDS_REPLACE */
            f = open_index_rw(u8(r));
            if (f >= 0) vds_replace(f, r);
            break;
        case 10: { /* GROUP_DEL */
            f = open_rw(u8(r));
            unsigned g = u8(r) % 4;
            if (f >= 0) H5Ldelete(f, g == 3 ? "meta" : k_groups[g], H5P_DEFAULT);
            break;
        }
        case 11: { /* TRUNCATE */
            char *p = work_path(k_files[u8(r) % NFILES]);
            unsigned amount = u16(r), mode = u8(r) % 3;
            struct stat st;
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                off_t n = mode == 0 ? (off_t)(((uint64_t)st.st_size * amount) >> 16)
                          : mode == 1 ? st.st_size + amount : (off_t)amount;
                if (truncate(p, n) != 0) { /* nothing to cut */
                }
            }
            free(p);
            break;
        }
        case 12: { /* FILE_DEL */
            char *p = work_path(k_files[u8(r) % NFILES]);
            remove(p);
            free(p);
            break;
        }
        case 13: { /* FILE_TO_DIR */
            char *p = work_path(k_files[u8(r) % NFILES]);
            remove(p);
            mkdir(p, 0700);
            free(p);
            break;
        }
        case 14: /* FILE_LINK */
        case 15: { /* FILE_COPY */
            unsigned dsel = u8(r) % NFILES, ssel = u8(r) % NFILES;
            char *dst = work_path(k_files[dsel]), *src = work_path(k_files[ssel]);
            if (code == 14) {
                /* relative to the link's directory: same directory, or the other step's */
                const char *s = k_files[ssel];
                char target[128];
                if (strncmp(s, k_files[dsel], 14) == 0 && strchr(s, '/'))
                    snprintf(target, sizeof target, "%s", strchr(s, '/') + 1);
                else if (strchr(k_files[dsel], '/')) snprintf(target, sizeof target, "../%s", s);
                else snprintf(target, sizeof target, "%s", s);
                rm_tree(dst);
                if (symlink(target, dst) != 0) { /* the name is still taken (a non-empty directory): no edit */
                }
            } else if (dsel != ssel) {
                size_t len;
                char *data = sd_file_exists(src) ? sd_read_file(src, &len) : NULL;
                if (data) {
                    rm_tree(dst);
                    write_bytes(dst, data, len);
                    free(data);
                }
            }
            free(dst);
            free(src);
            break;
        }
        case 16: { /* LATEST */
            const uint8_t *b;
            size_t n = take(r, u8(r) % 64, &b);
            char *p = work_path("latest");
            rm_tree(p);
            write_bytes(p, b, n);
            free(p);
            break;
        }
        case 17: { /* MKSTEP */
            const uint8_t *b;
            size_t n = take(r, u8(r) % 24, &b);
            bool copy = u8(r) & 1;
            char name[40] = "step-";
            for (size_t i = 0; i < n; i++) name[5 + i] = b[i] == '/' || b[i] == 0 ? '_' : (char)b[i];
            name[5 + n] = 0;
            if (!strcmp(name, "step-.") || !strcmp(name, "step-..")) break;
            char *d = work_path(name);
            if (mkdir(d, 0700) == 0 && copy) {
                for (int i = 1; i <= 2; i++) {
                    char *fp = sd_path_join(d, strchr(g_files[i].rel, '/') + 1);
                    write_bytes(fp, g_files[i].data, g_files[i].len);
                    free(fp);
                }
            }
            free(d);
            break;
        }
        default: /* SLICE */
            g_slice_set = true;
            for (int d = 0; d < 4; d++) {
                g_off[d] = interesting(r);
                g_cnt[d] = interesting(r);
            }
            break;
        }
        if (f >= 0) H5Fclose(f);
        h5_sweep(); /* nothing of the edits stays open */
    }
}

/* ---- the reading side ---- */
static char *g_why;
static int g_reader_rejections; /* dies trapped in ckpt_shape / ckpt_read since ckpt_open */
static unsigned g_read_groups;  /* bit g: read the tensors of k_groups[g] (from the mode byte) */
static bool g_verbose;          /* SD_FUZZ_VERBOSE set: says what the readers made of the input (stderr) */

/* Tensor names of each group of the index (up to 24 in all per group, with the ones the base checkpoint has). */
typedef struct {
    char *names[24];
    int n;
} Names;
static herr_t name_cb(hid_t g, const char *name, const H5L_info_t *info, void *np) {
    (void)g, (void)info;
    Names *ns = np;
    for (int i = 0; i < ns->n; i++)
        if (!strcmp(ns->names[i], name)) return 0;
    ns->names[ns->n++] = strdup(name);
    return ns->n >= 24 ? 1 : 0;
}
static void list_names(const char *index, Names ns[3]) {
    for (int g = 0; g < 3; g++) {
        ns[g].n = 0;
        for (size_t i = 0; i < sizeof k_tensors / sizeof k_tensors[0]; i++)
            ns[g].names[ns[g].n++] = strdup(k_tensors[i]);
    }
    hid_t f = H5Fis_hdf5(index) > 0 ? H5Fopen(index, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) return;
    for (int g = 0; g < 3; g++) {
        hid_t grp = H5Lexists(f, k_groups[g], H5P_DEFAULT) > 0 ? H5Gopen2(f, k_groups[g], H5P_DEFAULT) : -1;
        if (grp >= 0) {
            hsize_t idx = 0;
            H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, name_cb, &ns[g]);
            H5Gclose(grp);
        }
    }
    H5Fclose(f);
}

/* A partial read of [off, off+cnt): the buffer holds exactly the count's elements. A slice that does not fit the
 * tensor must be rejected (ckpt_read returns only for one that fits). */
static void read_slice(CkptReader *r, const char *group, const char *name, int nd, const int64_t *off,
                       const int64_t *cnt) {
    static size_t want;
    static bool valid;
    want = 1;
    valid = true;
    for (int d = 0; d < nd; d++) {
        if (cnt[d] < 0 || !sd_try_mul_size(want, (size_t)cnt[d], &want)) valid = false;
    }
    if (valid && want > MAX_READ_ELEMS) return;
    static float *out;
    out = malloc((valid && want ? want : 1) * sizeof(float));
    ssize_t open0 = h5_open_count();
    int rejected = FUZZ_GUARDED(ckpt_read(r, group, name, nd, off, cnt, out));
    free(out);
    g_reader_rejections += rejected;
    if (g_verbose) fprintf(stderr, "fuzz_ckpt:     read %s/%.40s (%d dims, %s): %s\n", group, name, nd,
                           valid ? "valid count" : "invalid count", rejected ? "rejected" : "ok");
    if (!rejected && !valid) {
        fprintf(stderr, "fuzz_ckpt: ckpt_read accepted a negative or overflowing count\n");
        abort();
    }
    if (!rejected && h5_open_count() != open0) {
        fprintf(stderr, "fuzz_ckpt: ckpt_read returned with an HDF5 object left open\n");
        abort();
    }
}

static void read_tensor(CkptReader *r, const char *group, const char *name) {
    static int64_t shape[4];
    static int nd;
    nd = -1;
    ssize_t open0 = h5_open_count();
    if (FUZZ_GUARDED(nd = ckpt_shape(r, group, name, shape))) {
        g_reader_rejections++;
        if (g_verbose) fprintf(stderr, "fuzz_ckpt:   shape %s/%.40s: rejected\n", group, name);
        return;
    }
    if (g_verbose && nd > 0)
        fprintf(stderr, "fuzz_ckpt:   shape %s/%.40s: %d dims [%lld ...]\n", group, name, nd, (long long)shape[0]);
    if (h5_open_count() != open0) {
        fprintf(stderr, "fuzz_ckpt: ckpt_shape returned with an HDF5 object left open\n");
        abort();
    }
    if (nd < 1) return;
    if (nd > 4) abort();
    size_t elems = 1;
    for (int d = 0; d < nd; d++) {
        if (shape[d] < 0 || !sd_try_mul_size(elems, (size_t)shape[d], &elems)) abort(); /* checked by ckpt_shape */
    }
    int64_t zero[4] = {0}, off[4], cnt[4];
    for (int d = 0; d < nd; d++) {
        off[d] = shape[d] / 2;
        cnt[d] = shape[d] - off[d];
    }
    if (elems <= MAX_READ_ELEMS) read_slice(r, group, name, nd, zero, shape); /* all of it */
    else read_slice(r, group, name, nd, off, cnt); /* the second half of every dimension */
    if (g_slice_set) read_slice(r, group, name, nd, g_off, g_cnt);
    for (int d = nd; d < 4; d++) cnt[d] = 1;
    cnt[0] = shape[0] < INT64_MAX ? shape[0] + 1 : shape[0]; /* one past the end: must be rejected */
    if (shape[0] < INT64_MAX) read_slice(r, group, name, nd, zero, cnt);
    if (nd < 4) read_slice(r, group, name, nd + 1, zero, cnt); /* wrong rank: must be rejected */
}

__attribute__((noinline)) static CkptReader *open_checked(const char *dir) {
    CkptReader *r = ckpt_open(dir);
    const CkptMeta *m = ckpt_meta(r);
    if (!m || !m->config_yaml || !m->model_config_json || !m->layout) abort();
    if (strlen(m->config_yaml) + strlen(m->model_config_json) + strlen(m->layout) == SIZE_MAX) abort();
    return r;
}

/* The reader, or NULL when ckpt_open rejected the checkpoint (a die leaves it NULL). */
static CkptReader *g_reader;
static void try_open(const char *dir) {
    g_reader = NULL;
    FUZZ_GUARDED(g_reader = open_checked(dir));
}

static void read_checkpoint(const char *dir, bool tensors) {
    try_open(dir);
    CkptReader *r = g_reader;
    if (g_verbose) fprintf(stderr, "fuzz_ckpt: ckpt_open %s: %s\n", dir, r ? "ok" : "rejected");
    if (!r) {
        h5_sweep(); /* what the rejecting ckpt_open held */
        return;
    }
    g_reader_rejections = 0;
    if (!tensors) {
        ckpt_close(r);
        expect_none_open();
        return;
    }
    char *index = sd_file_exists(dir) ? strdup(dir) : sd_path_join(dir, "index.h5");
    Names ns[3];
    list_names(index, ns);
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < ns[g].n; i++) {
            if (g_read_groups & (1u << g)) read_tensor(r, k_groups[g], ns[g].names[i]);
            free(ns[g].names[i]);
        }
    free(index);
    static const char *const bad[][2] = {{"param", ""}, {"param", "."}, {"param", ".."}, {"param", "a/b"},
                                         {"nope", "model.norm.weight"}, {"meta", "step"}, {"", "x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) read_tensor(r, bad[i][0], bad[i][1]);
    ckpt_close(r);
    /* the reader's handles are gone, unless a die inside ckpt_read / ckpt_shape left its dataset open (then the
     * file stays open too): the harness closes those */
    if (g_reader_rejections == 0) expect_none_open();
    h5_sweep();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool init;
    if (!init) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        build_base();
        atexit(remove_root);
        g_why = malloc(1024);
        g_verbose = getenv("SD_FUZZ_VERBOSE") != NULL;
        init = true;
    }
    expect_none_open();
    fresh_copy();
    g_slice_set = false;
    g_read_groups = size > 0 && (data[0] & 3) != 3 ? 1u << (data[0] & 3) : 7u;
    if (size > 0 && data[0] == 'R') {
        char *p = work_path("step-00000007/index.h5");
        write_bytes(p, data + 1, size - 1);
        free(p);
    } else if (size > 0) {
        Rd rd = {data + 1, size - 1, 0};
        apply_ops(&rd);
    }
    expect_none_open();

    char *s7 = work_path("step-00000007");
    char *i7 = work_path("step-00000007/index.h5"), *lt = work_path("latest");
    static char *found[4];
    const char *where[4] = {g_work, s7, i7, lt};
    for (int i = 0; i < 4; i++) {
        found[i] = NULL;
        if (FUZZ_GUARDED(found[i] = ckpt_find_latest(where[i]))) found[i] = NULL;
    }
    FUZZ_GUARDED(free(ckpt_find_latest("")));
    expect_none_open();

    int ok7 = ckpt_verify(s7, g_why, 40); /* a short buffer: the reason is cut, not overflowed */
    if (g_verbose) fprintf(stderr, "fuzz_ckpt: verify step 7: %s\n", ok7 ? "sound" : g_why);
    expect_none_open();
    /* its warnings name every damaged step: silenced */
    fflush(stderr);
    int saved = dup(2), devnull = open(g_verbose ? "/dev/stderr" : "/dev/null", O_WRONLY);
    dup2(devnull, 2);
    close(devnull);
    char *valid = ckpt_find_latest_valid(g_work);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    expect_none_open();

    /* read what the finders chose, and step 7 whatever they chose */
    const char *dirs[4] = {found[0], valid, s7, i7};
    for (int i = 0; i < 4; i++) {
        if (!dirs[i]) continue;
        bool seen = false;
        for (int j = 0; j < i; j++) seen |= dirs[j] && !strcmp(dirs[j], dirs[i]);
        if (!seen) read_checkpoint(dirs[i], i < 3); /* index.h5 named directly: opened only */
    }
    expect_none_open();
    for (int i = 0; i < 4; i++) free(found[i]);
    free(valid);
    free(s7);
    free(i7);
    free(lt);
    return 0;
}
