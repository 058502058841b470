/* util.h — fatal errors, checked allocation and size arithmetic, small file helpers.
 *
 * defines: sd_die, sd_alloc/sd_calloc/sd_realloc/sd_strdup, sd_mul_size, sd_read_file, sd_path_* helpers.
 * Ownership: every sd_alloc'ed block is owned by the caller and released with free().
 * Errors: sd_die prints one line "simpo_dist: <where>: <what>" (with "[rank R] " when the job has several ranks)
 * and stops the whole job (MPI_Abort when MPI is up, exit(1) otherwise). It never returns.
 */
#ifndef SD_UTIL_H
#define SD_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define SD_NORETURN __attribute__((noreturn))
#define SD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SD_NORETURN
#define SD_PRINTF(a, b)
#endif

/* Stops the job. `where` names the user's input (file:line, config key, tensor) or our own module. */
SD_NORETURN void sd_die(const char *where, const char *fmt, ...) SD_PRINTF(2, 3);
/* sd_die with a va_list (for a module's own die function that adds its context). */
SD_NORETURN void sd_vdie(const char *where, const char *fmt, va_list ap);
/* sd_die for a parser that holds resources the message may quote: formats the message first, then calls
 * release(arg), then dies with where (copied before release). */
SD_NORETURN void sd_die_release(void (*release)(void *), void *arg, const char *where, const char *fmt, va_list ap);
/* Installed by mpi/comm.c once MPI is initialised: called by sd_die instead of exit(1). */
void sd_set_abort_hook(void (*hook)(int code), int rank, int world);
/* Cleanups that sd_die runs (innermost first) before it prints and stops, or before a test or fuzz trap takes
 * over: a parser registers the half-built state it owns while it reads, so a rejected input leaks nothing even
 * when the die is trapped. Push after allocating, pop (without running) when the state is handed to the caller. */
void sd_cleanup_push(void (*fn)(void *), void *arg);
void sd_cleanup_pop(void);

/* Start-up phase (the default): an error is assumed to be seen by every rank alike, so ranks other than 0 wait a
 * few seconds before printing it (rank 0's abort usually ends them first: one line per job, not per rank).
 * The trainer turns it off once set-up is done. */
void sd_set_startup_phase(bool on);
/* Test hook: when set, sd_die calls it (it must longjmp away) instead of stopping; the message is kept. */
void sd_set_die_trap(void (*trap)(const char *msg));

/* Never returns NULL; dies naming `what` and the byte count. sd_calloc zeroes. */
void *sd_alloc(size_t bytes, const char *what);
void *sd_calloc(size_t n, size_t size, const char *what);
void *sd_realloc(void *p, size_t bytes, const char *what);
char *sd_strdup(const char *s);
/* a*b, or dies naming `what` when it overflows size_t. */
size_t sd_mul_size(size_t a, size_t b, const char *what);
/* true and *out = a*b when it fits. */
bool sd_try_mul_size(size_t a, size_t b, size_t *out);

/* Reads a whole file into a NUL-terminated buffer (caller frees). NULL and errno set when it cannot be opened. */
char *sd_read_file(const char *path, size_t *len_out);
/* Joins dir and rel unless rel is absolute; caller frees. */
char *sd_path_join(const char *dir, const char *rel);
/* Directory part of a path ("." when none); caller frees. */
char *sd_path_dir(const char *path);
bool sd_file_exists(const char *path);
bool sd_dir_exists(const char *path);
/* mkdir -p; dies on failure. */
void sd_mkdirs(const char *path);
/* rm -rf path (nothing to do when it does not exist); dies on failure. */
void sd_remove_tree(const char *path);
/* Writes bytes to path atomically (path.tmp then rename); dies on failure. */
void sd_write_file_atomic(const char *path, const void *data, size_t len);

/* Wall-clock seconds (monotonic). */
double sd_now(void);
/* Seconds since the Unix epoch (the realtime clock: timestamps, not intervals). */
double sd_wall_time(void);

/* FNV-1a 64 over n bytes at p, continuing from h (start from SD_FNV_OFFSET): checkpoint checksums, the init RNG's
 * stream of a tensor name, the training data's fingerprint. */
#define SD_FNV_OFFSET 1469598103934665603ULL
uint64_t sd_fnv1a(uint64_t h, const void *p, size_t n);

/* Counter-based RNG: a deterministic function of (seed, stream, index), so a tensor initialised in slices on
 * different ranks equals the one initialised whole. */
uint64_t sd_hash64(uint64_t seed, uint64_t stream, uint64_t index);
/* Standard normal sample for element `index` of stream `stream` (Box-Muller over two hashed uniforms). */
double sd_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* bf16 / fp16 <-> fp32 (round to nearest even). */
float sd_bf16_to_f32(uint16_t h);
uint16_t sd_f32_to_bf16(float f);
float sd_f16_to_f32(uint16_t h);
#endif
