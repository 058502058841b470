/* fuzz_stindex.c — a sharded model directory's model.safetensors.index.json: the JSON, its weight_map (tensor ->
 * shard file names, which must stay inside the directory), shards named twice or never, tensors the map and the
 * shards disagree on; then every tensor the directory offers is read (bounded sizes).
 * Once per process the harness writes a valid sharded directory (two shards, three tensors, through
 * st_write_model with a tiny shard size); each input replaces its index.json. */
#include <sys/stat.h>
#include "fuzz_st_common.h"

static char dir[96];

static void make_model_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/sd_fuzz_stindex_%d", (int)getpid());
    mkdir(dir, 0700);
    static float a[12], b[6], c[4];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    for (int i = 0; i < 6; i++) b[i] = -(float)i;
    for (int i = 0; i < 4; i++) c[i] = 0.5f * (float)i;
    StOut t[3] = {{"model.embed_tokens.weight", 2, {4, 3}, a, NULL, NULL},
                  {"model.norm.weight", 1, {6}, b, NULL, NULL},
                  {"lm_head.weight", 2, {2, 2}, c, NULL, NULL}};
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
    fz_st_open_and_read(st_open_dir, dir);
    return 0;
}
