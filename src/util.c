/* util.c — see util.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "util.h"
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void (*g_abort_hook)(int) = NULL;  /* process-wide: the one way out of a multi-rank job */
static int g_rank = 0, g_world = 1;
static void (*g_die_trap)(const char *) = NULL;
static bool g_startup = true; /* errors now are the same on every rank: let rank 0 speak for all */

void sd_set_startup_phase(bool on) { g_startup = on; }

#define SD_MAX_CLEANUPS 32
static struct { void (*fn)(void *); void *arg; } g_cleanups[SD_MAX_CLEANUPS];
static int g_ncleanups = 0;
void sd_cleanup_push(void (*fn)(void *), void *arg) {
    if (g_ncleanups == SD_MAX_CLEANUPS) {
        fprintf(stderr, "simpo_dist: internal: cleanup stack full\n");
        abort();
    }
    g_cleanups[g_ncleanups].fn = fn;
    g_cleanups[g_ncleanups++].arg = arg;
}
void sd_cleanup_pop(void) {
    if (g_ncleanups > 0) g_ncleanups--;
}
static void run_cleanups(void) {
    while (g_ncleanups > 0) {
        g_ncleanups--;
        g_cleanups[g_ncleanups].fn(g_cleanups[g_ncleanups].arg);
    }
}

void sd_set_abort_hook(void (*hook)(int), int rank, int world) {
    g_abort_hook = hook;
    g_rank = rank;
    g_world = world;
}
void sd_set_die_trap(void (*trap)(const char *)) { g_die_trap = trap; }

void sd_die(const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_vdie(where, fmt, ap);
}

void sd_vdie(const char *where, const char *fmt, va_list ap) {
    char msg[4096];
    int off = 0;
    if (g_world > 1) off = snprintf(msg, sizeof msg, "[rank %d] ", g_rank);
    off += snprintf(msg + off, sizeof msg - (size_t)off, "simpo_dist: %s: ", where ? where : "error");
    if (off < (int)sizeof msg) vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
    run_cleanups();
    if (g_die_trap) g_die_trap(msg);
    /* During start-up every rank checks the same config, data and layout and would print the same line: the
     * other ranks give rank 0 a moment to print it once and abort the job. An error only this rank sees is still
     * printed, after the pause. */
    if (g_world > 1 && g_rank != 0 && g_startup) sleep(3);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    if (g_abort_hook) g_abort_hook(1);
    exit(1);
}

void sd_die_release(void (*release)(void *), void *arg, const char *where, const char *fmt, va_list ap) {
    char w[4096], msg[3072];
    snprintf(w, sizeof w, "%s", where ? where : "error");
    vsnprintf(msg, sizeof msg, fmt, ap);
    release(arg);
    sd_die(w, "%s", msg);
}

void *sd_alloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) sd_die("memory", "cannot allocate %zu bytes for %s", bytes, what);
    return p;
}
void *sd_calloc(size_t n, size_t size, const char *what) {
    size_t bytes = sd_mul_size(n, size, what);
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) sd_die("memory", "cannot allocate %zu bytes for %s", bytes, what);
    return p;
}
void *sd_realloc(void *q, size_t bytes, const char *what) {
    void *p = realloc(q, bytes ? bytes : 1);
    if (!p) sd_die("memory", "cannot allocate %zu bytes for %s", bytes, what);
    return p;
}
char *sd_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = sd_alloc(n, "string");
    memcpy(p, s, n);
    return p;
}
bool sd_try_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}
size_t sd_mul_size(size_t a, size_t b, const char *what) {
    size_t r;
    if (!sd_try_mul_size(a, b, &r)) sd_die("memory", "size of %s overflows (%zu x %zu)", what, a, b);
    return r;
}

char *sd_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = sd_alloc(cap, path);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > SIZE_MAX / 2) sd_die(path, "file too large");
            cap *= 2;
            buf = sd_realloc(buf, cap, path);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

char *sd_path_join(const char *dir, const char *rel) {
    if (!dir || !*dir || rel[0] == '/') return sd_strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = sd_alloc(n, "path");
    snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
    return p;
}
char *sd_path_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return sd_strdup(".");
    if (slash == path) return sd_strdup("/");
    size_t n = (size_t)(slash - path);
    char *p = sd_alloc(n + 1, "path");
    memcpy(p, path, n);
    p[n] = 0;
    return p;
}
bool sd_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
bool sd_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
void sd_mkdirs(const char *path) {
    char *p = sd_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) sd_die(p, "cannot create directory: %s", strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) sd_die(p, "cannot create directory: %s", strerror(errno));
    free(p);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 ? -1 : 0;
}
void sd_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return;
        sd_die(path, "cannot stat: %s", strerror(errno));
    }
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) sd_die(path, "cannot remove: %s", strerror(errno));
}
void sd_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path) + 8;
    char *tmp = sd_alloc(n, "path");
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) sd_die(tmp, "cannot write: %s", strerror(errno));
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        remove(tmp);
        sd_die(tmp, "write failed: %s", strerror(errno));
    }
    fclose(f);
    if (rename(tmp, path) != 0) sd_die(path, "cannot rename %s into place: %s", tmp, strerror(errno));
    free(tmp);
}

double sd_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
double sd_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64 finaliser over a mix of the three coordinates */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
uint64_t sd_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

uint64_t sd_hash64(uint64_t seed, uint64_t stream, uint64_t index) {
    return mix64(mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (stream * 0xd1b54a32d192ed03ULL)) + index);
}
double sd_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    uint64_t a = sd_hash64(seed, stream, 2 * index), b = sd_hash64(seed, stream, 2 * index + 1);
    double u1 = ((double)(a >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (double)(b >> 11) * (1.0 / 9007199254740992.0);        /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

float sd_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t sd_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float sd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
