/* fuzz_st_common.h — shared by the safetensors harnesses: open what the input describes and read every tensor it
 * accepts (at most 2^20 elements each, so a read stays bounded while the header's own checks are exercised). */
#ifndef SD_FUZZ_ST_COMMON_H
#define SD_FUZZ_ST_COMMON_H
#include "fuzz_common.h"
#include "safetensors.h"

static void fz_st_open_and_read(StDir *(*open_fn)(const char *), const char *path) {
    static StDir *d;
    d = NULL;
    FUZZ_GUARDED({
        d = open_fn(path);
        for (int i = 0; i < d->ntensors; i++) {
            if (d->tensors[i].numel > ((size_t)1 << 20)) continue;
            float *out = malloc(d->tensors[i].numel * sizeof(float) + 4);
            st_read_f32(d, &d->tensors[i], out);
            free(out);
        }
    });
    st_close(d);
}
#endif
