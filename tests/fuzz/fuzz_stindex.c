/* fuzz_stindex.c — a sharded model directory's model.safetensors.index.json: the JSON, its weight_map (tensor ->
 * shard file names, which must stay inside the directory), shards named twice or never, tensors the map and the
 * shards disagree on; then every tensor the directory offers is read (bounded sizes).
 * Once per process the harness writes a valid sharded directory (two shards, three tensors, through
 * st_write_model with a tiny shard size); each input replaces its index.json. */
#include <sys/stat.h>
#include "fuzz_common.h"
#include "safetensors.h"

static char dir[96];

static void make_model_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/sd_fuzz_stindex_%d", (int)getpid());
    mkdir(dir, 0700);
    static float a[12], b[6], c[4];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    for (int i = 0; i < 6; i++) b[i] = -(float)i;
    for (int i = 0; i < 4; i++) c[i] = 0.5f * (float)i;
    StOut t[3] = {{"model.embed_tokens.weight", 2, {4, 3}, a},
                  {"model.norm.weight", 1, {6}, b},
                  {"lm_head.weight", 2, {2, 2}, c}};
    st_write_model(dir, t, 3, 40, 0); /* 40 bytes a shard: several shards and an index */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) make_model_dir();
    char path[160];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    static StDir *d;
    d = NULL;
    FUZZ_GUARDED({
        d = st_open_dir(dir);
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
