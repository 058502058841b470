/* tokenizer_bench.c — single-threaded encode throughput of a tokenizer.json on a large text.
 * Usage: tokenizer_bench TOKENIZER_DIR_OR_FILE TEXT_FILE [TARGET_MB=20] [REPEATS=3]
 * The text is TEXT_FILE repeated, each copy preceded by "\n[copy N]\n", until it reaches TARGET_MB megabytes
 * (bench/hf_tokenizer_bench.py builds the same text). It is encoded as documents, REPEATS times: cut after every
 * "\n\n" (what Python's re.split(r"(?<=\n\n)") gives), one encode call per document, as a dataset's responses are
 * encoded one by one; "whole" as the 5th argument encodes the text in one call instead (HF tokenizers slows down
 * sharply on multi-megabyte single inputs, so that mode mostly measures that).
 * Prints one JSON line: {"mb_per_s": best wall-clock, "mb_per_s_mean": ..., "mb_per_s_cpu": best by this thread's
 * CPU time (steadier on a shared machine), "tokens": ..., "bytes": ..., "load_s": ...} (MB = 1e6 bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tokenizer.h"
#include "util.h"

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR_OR_FILE TEXT_FILE [TARGET_MB=20] [REPEATS=3]\n", argv[0]);
        return 2;
    }
    double target_mb = argc > 3 ? atof(argv[3]) : 20.0;
    int repeats = argc > 4 ? atoi(argv[4]) : 3;
    int whole = argc > 5 && !strcmp(argv[5], "whole");
    if (target_mb <= 0 || repeats < 1) {
        fprintf(stderr, "bad TARGET_MB or REPEATS\n");
        return 2;
    }
    size_t blen;
    char *base = sd_read_file(argv[2], &blen);
    if (!base) sd_die(argv[2], "cannot read the text");
    if (blen == 0) sd_die(argv[2], "the text is empty");
    size_t target = (size_t)(target_mb * 1e6), len = 0, cap = target + blen + 64;
    char *text = sd_alloc(cap, "bench text");
    for (int copy = 0; len < target; copy++) {
        char hdr[32];
        int h = snprintf(hdr, sizeof hdr, "\n[copy %d]\n", copy);
        if (len + (size_t)h + blen + 1 > cap) {
            cap = 2 * (len + (size_t)h + blen + 1);
            text = sd_realloc(text, cap, "bench text");
        }
        memcpy(text + len, hdr, (size_t)h);
        len += (size_t)h;
        memcpy(text + len, base, blen);
        len += blen;
    }
    text[len] = 0;
    free(base);

    double t0 = sd_now();
    Tokenizer *t = tokenizer_load(argv[1]);
    double load_s = sd_now() - t0;
    double best = 1e30, sum = 0, best_cpu = 1e30;
    size_t ntok = 0;
    for (int r = 0; r < repeats; r++) {
        char err[256] = "";
        double s0 = sd_now(), c0 = thread_cpu_s();
        ntok = 0;
        for (size_t start = 0; start < len;) {
            size_t end = len;
            if (!whole)
                for (size_t p = start + 1 > 2 ? start + 1 : 2; p <= len; p++)
                    if (text[p - 2] == '\n' && text[p - 1] == '\n') {
                        end = p;
                        break;
                    }
            size_t n = 0;
            int *ids = tokenizer_encode(t, text + start, end - start, &n, err, sizeof err);
            if (!ids) sd_die("tokenizer_bench", "encode failed: %s", err);
            free(ids);
            ntok += n;
            start = end;
        }
        double dt = sd_now() - s0, dc = thread_cpu_s() - c0;
        if (dc < best_cpu) best_cpu = dc;
        if (dt < best) best = dt;
        sum += dt;
    }
    printf("{\"impl\": \"simpo_c\", \"mode\": \"%s\", \"mb_per_s\": %.3f, \"mb_per_s_mean\": %.3f, \"mb_per_s_cpu\": %.3f, \"tokens\": %zu, "
           "\"bytes\": %zu, \"repeats\": %d, \"load_s\": %.3f}\n",
           whole ? "whole" : "docs", (double)len / 1e6 / best, (double)len / 1e6 / (sum / repeats), (double)len / 1e6 / best_cpu, ntok, len,
           repeats, load_s);
    tokenizer_free(t);
    free(text);
    return 0;
}
