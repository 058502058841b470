/* test_safetensors.c — writing and reading safetensors (F32, BF16, hand-built F16; single file and HF-style
 * shards), the fixture model, and malformed headers that must be rejected naming the problem. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "safetensors.h"
#include "test_util.h"

static char dir[64];

static void write_raw(const char *name, const char *header, const void *data, size_t dlen, uint64_t claimed) {
    char *p = sd_path_join(dir, name);
    FILE *f = fopen(p, "wb");
    uint64_t n = claimed ? claimed : strlen(header);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
    free(p);
}
static char *g_path;
static void open_it(void *a) {
    (void)a;
    st_close(st_open_file(g_path));
}
static int bad(const char *name, const char *header, size_t dlen, uint64_t claimed, const char *want) {
    static float zeros[64];
    write_raw(name, header, zeros, dlen, claimed);
    g_path = sd_path_join(dir, name);
    int ok = expect_die(open_it, NULL, want);
    free(g_path);
    return ok;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sd_st_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    float a[6] = {1.5f, -2.25f, 3.0f, 1e-20f, -0.0f, 65504.0f}, b[3] = {0.1f, 0.2f, 0.3f};
    StOut outs[2] = {{"w.a", 2, {2, 3}, a}, {"w.b", 1, {3}, b}};

    /* single file, bit-exact */
    char *d1 = sd_path_join(dir, "one");
    st_write_model(d1, outs, 2, 1000000, 0);
    StDir *d = st_open_dir(d1);
    CHECK(d->ntensors == 2 && d->nfiles == 1, "one file with two tensors");
    const StTensor *t = st_find(d, "w.a");
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == ST_F32, "w.a header");
    float got[6];
    st_read_f32(d, t, got);
    CHECK(!memcmp(got, a, sizeof a), "w.a bit-exact");
    CHECK(st_find(d, "nope") == NULL, "absent tensor");
    st_close(d);

    /* shards */
    char *d2 = sd_path_join(dir, "sharded");
    st_write_model(d2, outs, 2, 20, 0);
    char *idx = sd_path_join(d2, "model.safetensors.index.json"), *s1 = sd_path_join(d2, "model-00001-of-00002.safetensors");
    CHECK(sd_file_exists(idx) && sd_file_exists(s1), "index and shard names");
    d = st_open_dir(d2);
    CHECK(d->nfiles == 2 && d->ntensors == 2, "two shards: %d files", d->nfiles);
    st_read_f32(d, st_find(d, "w.b"), got);
    CHECK(!memcmp(got, b, sizeof b), "w.b from the second shard");
    st_close(d);

    /* BF16 */
    char *d3 = sd_path_join(dir, "bf16");
    st_write_model(d3, outs, 2, 1000000, 1);
    d = st_open_dir(d3);
    t = st_find(d, "w.a");
    CHECK(t->dtype == ST_BF16 && t->nbytes == 12, "bf16 dtype and size");
    st_read_f32(d, t, got);
    int same = 1;
    for (int i = 0; i < 6; i++) same &= got[i] == sd_bf16_to_f32(sd_f32_to_bf16(a[i]));
    CHECK(same, "bf16 values are the rounded originals");
    st_close(d);

    /* F16 by hand: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 0x0001 */
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    write_raw("f16.safetensors", "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", h, 8, 0);
    char *fp = sd_path_join(dir, "f16.safetensors");
    d = st_open_file(fp);
    st_read_f32(d, st_find(d, "x"), got);
    CHECK(got[0] == 1.0f && got[1] == -2.0f && got[2] == 65504.0f && got[3] == 5.9604644775390625e-8f,
          "f16 -> f32: %g %g %g %g", got[0], got[1], got[2], got[3]);
    st_close(d);

    /* fixture */
    char *fm = fixture_path("tiny-a/model");
    d = st_open_dir(fm);
    t = st_find(d, "model.embed_tokens.weight");
    CHECK(t && t->shape[0] == 384 && t->shape[1] == 64 && t->dtype == ST_F32, "fixture embedding");
    t = st_find(d, "model.layers.0.self_attn.k_proj.weight");
    CHECK(t && t->shape[0] == 32 && t->shape[1] == 64, "fixture k_proj");
    st_close(d);

    /* malformed */
    {
        char *p = sd_path_join(dir, "tiny.safetensors");
        FILE *f = fopen(p, "wb");
        fwrite("abc", 1, 3, f);
        fclose(f);
        g_path = p;
        CHECK(expect_die(open_it, NULL, "shorter than 8 bytes"), "3-byte file");
        free(p);
    }
    CHECK(bad("hlen.safetensors", "{}", 0, 1000, "header length 1000 exceeds"), "header length too large");
    CHECK(bad("json.safetensors", "{\"x\": [", 0, 0, "JSON"), "bad JSON");
    CHECK(bad("dtype.safetensors", "{\"x\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 0,
              "tensor 'x': dtype I8 is not supported"), "unknown dtype");
    CHECK(bad("size.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, 0,
              "span 4 bytes"), "size mismatch");
    CHECK(bad("past.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0,
              "past the end of the data"), "offsets past the end");
    CHECK(bad("neg.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, 0,
              "non-negative integers"), "negative shape");
    CHECK(bad("ovf.safetensors",
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, 0,
              "overflows"), "shape overflow");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    free(d1); free(d2); free(d3); free(idx); free(s1); free(fp); free(fm);
    TEST_END();
}
