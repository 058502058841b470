/* fuzz_common.h — shared by the fuzz harnesses. A parser that rejects its input calls sd_die; the harness traps
 * it (longjmp back), so a clear error is a normal outcome and only crashes, hangs, sanitizer reports and oversized
 * allocations count as findings. Inputs that need a file are written to one per-process temporary file.
 * Built two ways (tests/fuzz/CMakeLists.txt): with clang -fsanitize=fuzzer for fuzzing, and as a plain replay
 * program (fuzz_main.c) that ctest runs over every corpus file in every CI run. */
#ifndef SD_FUZZ_COMMON_H
#define SD_FUZZ_COMMON_H
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"

static jmp_buf fz_jmp;
static void fz_trap(const char *msg) {
    (void)msg;
    longjmp(fz_jmp, 1);
}
/* Runs body with sd_die trapped; evaluates to 1 when the input was rejected. */
#define FUZZ_GUARDED(...)                      \
    ({                                         \
        int rejected_ = 0;                     \
        sd_set_die_trap(fz_trap);              \
        if (setjmp(fz_jmp) == 0) { __VA_ARGS__; } \
        else rejected_ = 1;                    \
        sd_set_die_trap(NULL);                 \
        rejected_;                             \
    })

/* Writes data to a per-process file and returns its path (static storage). */
__attribute__((unused)) static const char *fz_write_file(const char *suffix, const uint8_t *data, size_t size) {
    static char path[128];
    snprintf(path, sizeof path, "/tmp/sd_fuzz_%d%s", (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
#endif
