/* test_util.h — the tiny assertion harness every C test uses.
 * CHECK(cond, fmt, ...) records a failure with file:line and the message; TEST_END() prints
 * "N passed, M failed" and returns non-zero when anything failed. fixture_path() joins SIMPO_FIXTURES.
 * expect_die(fn, arg, substring): runs fn(arg), which must call sd_die with a message containing substring. */
#ifndef SD_TEST_UTIL_H
#define SD_TEST_UTIL_H
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

static int t_pass = 0, t_fail = 0;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) t_pass++;                                                \
        else {                                                             \
            t_fail++;                                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)
#define TEST_END()                                                         \
    do {                                                                   \
        printf("%d passed, %d failed\n", t_pass, t_fail);                  \
        return t_fail ? 1 : 0;                                             \
    } while (0)

static inline const char *fixture_dir(void) {
    const char *d = getenv("SIMPO_FIXTURES");
    return d ? d : "tests/fixtures";
}
static inline char *fixture_path(const char *rel) { return sd_path_join(fixture_dir(), rel); }

static jmp_buf t_die_jmp;
static char t_die_msg[4096];
static void t_die_trap(const char *msg) {
    snprintf(t_die_msg, sizeof t_die_msg, "%s", msg);
    longjmp(t_die_jmp, 1);
}
/* Returns 1 when fn(arg) died with a message containing `want`; prints the message either way. */
static inline int expect_die(void (*fn)(void *), void *arg, const char *want) {
    t_die_msg[0] = 0;
    sd_set_die_trap(t_die_trap);
    int died = 0;
    if (setjmp(t_die_jmp) == 0) fn(arg);
    else died = 1;
    sd_set_die_trap(NULL);
    if (!died) {
        fprintf(stderr, "  expected an error containing '%s', got none\n", want);
        return 0;
    }
    int ok = strstr(t_die_msg, want) != NULL;
    fprintf(stderr, "  %s error: %s\n", ok ? "expected" : "WRONG", t_die_msg);
    return ok;
}
#endif
