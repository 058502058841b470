/* test_util.h — the tiny assertion harness every C test uses.
 * CHECK(cond, fmt, ...) records a failure with file:line and the message; TEST_END() prints
 * "N passed, M failed" and returns non-zero when anything failed. fixture_path() joins SIMPO_FIXTURES;
 * t_remove_tree() removes a temporary directory.
 * expect_die(fn, arg, substring): runs fn(arg) in a child process; it must call sd_die with a message containing
 * substring. */
#ifndef SD_TEST_UTIL_H
#define SD_TEST_UTIL_H
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* Removes a test's temporary directory and all it holds (says so where it cannot). */
static inline void t_remove_tree(const char *dir) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Runs fn(arg) in a forked child, where sd_die's trap sends the message back through a pipe and ends the child
 * with _exit (so the unwound half-built state of the failing call is not a leak of this process). Returns 1 when
 * the child died with a message containing `want`; prints the message either way. */
static int t_die_fd = -1;
static char t_die_msg[4096]; /* the last message expect_die saw */
static void t_die_trap(const char *msg) {
    size_t n = strlen(msg);
    if (write(t_die_fd, msg, n) != (ssize_t)n) _exit(3);
    _exit(0);
}
static inline int expect_die(void (*fn)(void *), void *arg, const char *want) {
    int fds[2];
    if (pipe(fds) != 0) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        t_die_fd = fds[1];
        sd_set_die_trap(t_die_trap);
        fn(arg);
        _exit(2); /* returned: no error */
    }
    close(fds[1]);
    char msg[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof msg - 1 && (r = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)r;
    msg[len] = 0;
    memcpy(t_die_msg, msg, len + 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "  expected an error containing '%s', got none (child status %d)\n", want, status);
        return 0;
    }
    int ok = strstr(msg, want) != NULL;
    fprintf(stderr, "  %s error: %s\n", ok ? "expected" : "WRONG", msg);
    return ok;
}
#endif
