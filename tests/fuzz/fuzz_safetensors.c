/* fuzz_safetensors.c — a safetensors file: header length, JSON header, dtypes, shapes, offsets; then every tensor
 * it accepts is read (bounded: the header's sizes were checked against the file size before). */
#include "fuzz_common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fz_write_file(".safetensors", data, size);
    static StDir *d;
    d = NULL;
    FUZZ_GUARDED({
        d = st_open_file(p);
        for (int i = 0; i < d->ntensors; i++) {
            if (d->tensors[i].numel > ((size_t)1 << 20)) continue;
            float *out = malloc(d->tensors[i].numel * sizeof(float) + 4);
            st_read_f32(d, &d->tensors[i], out);
            free(out);
        }
    });
    st_close(d);
    return 0;
}
