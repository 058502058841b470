/* fuzz_main.c — replay driver without libFuzzer: runs LLVMFuzzerTestOneInput on every file named on the command
 * line (or in the directories named), so ctest replays the corpora in every CI run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    size_t len;
    char *buf = sd_read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int files = 0, errs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { errs++; continue; }
        if (!S_ISDIR(st.st_mode)) { errs += run_file(argv[i]); files++; continue; }
        DIR *d = opendir(argv[i]);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char *p = sd_path_join(argv[i], e->d_name);
            errs += run_file(p);
            files++;
            free(p);
        }
        if (d) closedir(d);
    }
    printf("replayed %d inputs\n%d passed, %d failed\n", files, files - errs, errs);
    return errs || files == 0;
}
