/* test_safetensors.c — writing and reading safetensors (F32, BF16, hand-built F16/F64; single file and HF-style
 * shards with their index), the header layout (8-byte padding, __metadata__), the fixture model and gradients,
 * model-directory discovery, and malformed headers that must be rejected naming the problem. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "safetensors.h"
#include "test_util.h"

static char dir[64];

/* Writes <dir>/<name>: 8-byte length (claimed, or the header's length when 0), header, dlen bytes of data. */
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
static void open_dir_it(void *a) {
    (void)a;
    st_close(st_open_dir(g_path));
}
static int bad(const char *name, const char *header, size_t dlen, uint64_t claimed, const char *want) {
    static float zeros[64];
    write_raw(name, header, zeros, dlen, claimed);
    g_path = sd_path_join(dir, name);
    int ok = expect_die(open_it, NULL, want);
    free(g_path);
    return ok;
}
static int bad_dir(const char *sub, const char *want) {
    g_path = sd_path_join(dir, sub);
    int ok = expect_die(open_dir_it, NULL, want);
    free(g_path);
    return ok;
}
/* Every tensor of outs[0..n) reads back from d bit-exactly. */
static int all_exact(const StDir *d, const StOut *outs, int n) {
    int ok = 1;
    for (int i = 0; i < n; i++) {
        const StTensor *t = st_find(d, outs[i].name);
        size_t numel = 1;
        for (int k = 0; k < outs[i].ndim; k++) numel *= (size_t)outs[i].shape[k];
        if (!t || t->numel != numel || t->ndim != outs[i].ndim) {
            fprintf(stderr, "  tensor %s: missing or wrong shape\n", outs[i].name);
            ok = 0;
            continue;
        }
        for (int k = 0; k < t->ndim; k++) ok &= t->shape[k] == outs[i].shape[k];
        float *got = sd_alloc(sizeof(float) * (numel ? numel : 1), "test");
        st_read_f32(d, t, got);
        if (numel && memcmp(got, outs[i].data, sizeof(float) * numel)) {
            fprintf(stderr, "  tensor %s: values differ\n", outs[i].name);
            ok = 0;
        }
        free(got);
    }
    return ok;
}
static int count_files(const char *d, const char *suffix) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '%s$' > %s/count.txt", d, suffix, dir);
    if (system(cmd) < 0) return -1;
    char *p = sd_path_join(dir, "count.txt");
    char *s = sd_read_file(p, NULL);
    int n = s ? atoi(s) : -1;
    free(s);
    free(p);
    return n;
}

/* a StOut fill callback: tensor i of the StOut array ctx, counting the calls and whether they came in order */
static int g_fills, g_fill_order = 1;
static void fill_from(void *ctx, int i, float *out) {
    const StOut *src = ctx;
    g_fill_order &= i == g_fills;
    g_fills++;
    size_t n = 1;
    for (int k = 0; k < src[i].ndim; k++) n *= (size_t)src[i].shape[k];
    memcpy(out, src[i].data, n * sizeof(float));
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sd_st_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    float a[6] = {1.5f, -2.25f, 3.0f, 1e-20f, -0.0f, 65504.0f}, b[3] = {0.1f, 0.2f, 0.3f};
    StOut outs[2] = {{"w.a", 2, {2, 3}, a, NULL, NULL}, {"w.b", 1, {3}, b, NULL, NULL}};

    /* single file, bit-exact */
    char *d1 = sd_path_join(dir, "one");
    st_write_model(d1, outs, 2, 1000000, 0);
    StDir *d = st_open_dir(d1);
    CHECK(d->ntensors == 2 && d->nfiles == 1, "one file with two tensors");
    const StTensor *t = st_find(d, "w.a");
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == ST_F32 && t->nbytes == 24,
          "w.a header");
    float got[64];
    st_read_f32(d, t, got);
    CHECK(!memcmp(got, a, sizeof a), "w.a bit-exact");
    t = st_find(d, "w.b");
    CHECK(t && t->ndim == 1 && t->shape[0] == 3, "w.b (1-D) header");
    st_read_f32(d, t, got);
    CHECK(!memcmp(got, b, sizeof b), "w.b bit-exact");
    CHECK(st_find(d, "nope") == NULL, "absent tensor");
    st_close(d);

    /* the header as the reference writes it: padded with spaces to a multiple of 8, __metadata__ format pt */
    {
        char *p = sd_path_join(d1, "model.safetensors");
        size_t len;
        char *raw = sd_read_file(p, &len);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)raw[i];
        CHECK(hl % 8 == 0 && 8 + hl + 36 == len, "header length %llu is a multiple of 8; file %zu bytes",
              (unsigned long long)hl, len);
        CHECK(raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}', "padding is spaces");
        char *h = sd_alloc(hl + 1, "test");
        memcpy(h, raw + 8, hl);
        h[hl] = 0;
        cJSON *j = cJSON_Parse(h);
        cJSON *m = cJSON_GetObjectItem(j, "__metadata__");
        CHECK(m && cJSON_IsString(cJSON_GetObjectItem(m, "format")) &&
                  !strcmp(cJSON_GetObjectItem(m, "format")->valuestring, "pt"), "__metadata__ {format: pt}");
        cJSON *wa = cJSON_GetObjectItem(j, "w.a"), *wb = cJSON_GetObjectItem(j, "w.b");
        cJSON *oa = cJSON_GetObjectItem(wa, "data_offsets"), *ob = cJSON_GetObjectItem(wb, "data_offsets");
        CHECK(oa && ob && cJSON_GetArrayItem(oa, 0)->valueint == 0 && cJSON_GetArrayItem(oa, 1)->valueint == 24 &&
                  cJSON_GetArrayItem(ob, 0)->valueint == 24 && cJSON_GetArrayItem(ob, 1)->valueint == 36,
              "data_offsets in order");
        CHECK(!strcmp(cJSON_GetObjectItem(wa, "dtype")->valuestring, "F32"), "dtype F32");
        cJSON_Delete(j);
        free(h);
        free(raw);
        free(p);
        char *tmp = sd_path_join(d1, "model.safetensors.tmp");
        CHECK(!sd_file_exists(tmp), "no temporary file left");
        free(tmp);
    }

    /* tensors filled by a callback when the file reaches them (data NULL): the same file byte for byte, each
     * tensor asked for once, in order */
    {
        StOut cb[2] = {outs[0], outs[1]};
        for (int i = 0; i < 2; i++) cb[i].data = NULL, cb[i].fill = fill_from, cb[i].ctx = outs;
        char *d4 = sd_path_join(dir, "filled");
        g_fills = 0;
        st_write_model(d4, cb, 2, 1000000, 0);
        char *p1 = sd_path_join(d1, "model.safetensors"), *p4 = sd_path_join(d4, "model.safetensors");
        size_t l1, l4;
        char *r1 = sd_read_file(p1, &l1), *r4 = sd_read_file(p4, &l4);
        CHECK(l1 == l4 && !memcmp(r1, r4, l1), "a filled tensor's file is the data's byte for byte");
        CHECK(g_fills == 2 && g_fill_order == 1, "each tensor filled once, in order (%d fills)", g_fills);
        free(r1), free(r4), free(p1), free(p4), free(d4);
    }

    /* shards: 8 tensors of 64..1200 bytes with shard_bytes 1000 */
    float big[300];
    for (int i = 0; i < 300; i++) big[i] = (float)i * 0.37f - 11.0f;
    StOut many[8] = {{"m.0", 1, {16}, big, NULL, NULL},          {"m.1", 2, {10, 10}, big + 1, NULL, NULL},
                     {"m.2", 2, {20, 10}, big + 2, NULL, NULL},  {"m.3", 1, {300}, big, NULL, NULL},
                     {"m.4", 2, {4, 4}, big + 3, NULL, NULL},    {"m.5", 1, {1}, big + 4, NULL, NULL},
                     {"m.6", 3, {2, 3, 5}, big, NULL, NULL},     {"m.7", 1, {100}, big + 5, NULL, NULL}};
    /* bytes: 64 400 800 1200 64 4 120 400 -> shards [m.0 m.1] [m.2] [m.3] [m.4 m.5 m.6 m.7] */
    char *d2 = sd_path_join(dir, "sharded");
    st_write_model(d2, many, 8, 1000, 0);
    char *idx = sd_path_join(d2, "model.safetensors.index.json");
    char *s1 = sd_path_join(d2, "model-00001-of-00004.safetensors");
    char *s4 = sd_path_join(d2, "model-00004-of-00004.safetensors");
    char *single2 = sd_path_join(d2, "model.safetensors");
    CHECK(sd_file_exists(idx) && sd_file_exists(s1) && sd_file_exists(s4) && !sd_file_exists(single2),
          "index and HF shard names");
    CHECK(count_files(d2, ".safetensors") == 4, "four shards");
    {
        char *text = sd_read_file(idx, NULL);
        cJSON *j = cJSON_Parse(text);
        cJSON *ts = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "total_size");
        cJSON *wm = cJSON_GetObjectItem(j, "weight_map");
        CHECK(ts && ts->valuedouble == 3052.0, "total_size 3052: %g", ts ? ts->valuedouble : -1.0);
        const char *want[8] = {"model-00001-of-00004.safetensors", "model-00001-of-00004.safetensors",
                               "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors",
                               "model-00004-of-00004.safetensors", "model-00004-of-00004.safetensors",
                               "model-00004-of-00004.safetensors", "model-00004-of-00004.safetensors"};
        int okmap = cJSON_GetArraySize(wm) == 8;
        for (int i = 0; i < 8 && okmap; i++) {
            cJSON *e = cJSON_GetObjectItem(wm, many[i].name);
            okmap = e && cJSON_IsString(e) && !strcmp(e->valuestring, want[i]);
        }
        CHECK(okmap, "weight_map: tensors in order, a new shard when the next would overflow, big ones alone");
        cJSON_Delete(j);
        free(text);
    }
    d = st_open_dir(d2);
    CHECK(d->nfiles == 4 && d->ntensors == 8, "four shards opened once each: %d files", d->nfiles);
    CHECK(all_exact(d, many, 8), "sharded tensors bit-exact");
    st_close(d);

    /* rewriting the same directory as a single file removes the stale index and shards (and back again) */
    st_write_model(d2, many, 8, 1 << 20, 0);
    CHECK(!sd_file_exists(idx) && !sd_file_exists(s1) && sd_file_exists(single2), "stale shards removed");
    d = st_open_dir(d2);
    CHECK(d->nfiles == 1 && all_exact(d, many, 8), "single file after shards");
    st_close(d);
    st_write_model(d2, many, 8, 1000, 0);
    CHECK(sd_file_exists(idx) && !sd_file_exists(single2), "stale single file removed");
    st_write_model(d2, many, 3, 1000, 0); /* 2 shards now: the 4-shard files go */
    CHECK(!sd_file_exists(s4) && count_files(d2, ".safetensors") == 2, "stale shards of another count removed");
    d = st_open_dir(d2);
    CHECK(d->ntensors == 3 && all_exact(d, many, 3), "two-shard rewrite");
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
    st_read_f32(d, st_find(d, "w.b"), got);
    same = 1;
    for (int i = 0; i < 3; i++) same &= got[i] == sd_bf16_to_f32(sd_f32_to_bf16(b[i]));
    CHECK(same && got[0] != b[0], "bf16 rounding applied to w.b");
    st_close(d);

    /* scalar and empty tensors */
    {
        float s = 42.5f;
        StOut odd[2] = {{"scalar", 0, {0}, &s, NULL, NULL}, {"empty", 2, {0, 7}, NULL, NULL, NULL}};
        char *d5 = sd_path_join(dir, "odd");
        st_write_model(d5, odd, 2, 1000, 0);
        d = st_open_dir(d5);
        t = st_find(d, "scalar");
        CHECK(t && t->ndim == 0 && t->numel == 1, "0-d tensor");
        got[0] = 0;
        st_read_f32(d, t, got);
        CHECK(got[0] == 42.5f, "scalar value");
        t = st_find(d, "empty");
        CHECK(t && t->ndim == 2 && t->numel == 0 && t->nbytes == 0, "empty tensor");
        st_read_f32(d, t, got);
        st_close(d);
        free(d5);
    }

    /* F16 by hand: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 0x0001 */
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    write_raw("f16.safetensors", "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", h, 8, 0);
    char *fp = sd_path_join(dir, "f16.safetensors");
    d = st_open_file(fp);
    st_read_f32(d, st_find(d, "x"), got);
    CHECK(got[0] == 1.0f && got[1] == -2.0f && got[2] == 65504.0f && got[3] == 5.9604644775390625e-8f,
          "f16 -> f32: %g %g %g %g", got[0], got[1], got[2], got[3]);
    st_close(d);
    /* F64 by hand, after another tensor (offsets relative to the data section) */
    {
        unsigned char data[4 + 16];
        float one = 7.0f;
        double dd[2] = {0.25, -3.5};
        memcpy(data, &one, 4);
        memcpy(data + 4, dd, 16);
        write_raw("f64.safetensors",
                  "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"y\":{\"dtype\":\"F64\",\"shape\":[2,1],\"data_offsets\":[4,20]}}",
                  data, sizeof data, 0);
        char *p = sd_path_join(dir, "f64.safetensors");
        d = st_open_file(p);
        CHECK(d->ntensors == 2, "__metadata__ skipped");
        st_read_f32(d, st_find(d, "y"), got);
        CHECK(got[0] == 0.25f && got[1] == -3.5f, "f64 -> f32");
        st_read_f32(d, st_find(d, "a"), got);
        CHECK(got[0] == 7.0f, "f32 next to f64");
        st_close(d);
        free(p);
    }

    /* fixture */
    char *fm = fixture_path("tiny-a/model");
    d = st_open_dir(fm);
    t = st_find(d, "model.embed_tokens.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 384 && t->shape[1] == 64 && t->dtype == ST_F32, "fixture embedding");
    t = st_find(d, "model.layers.0.self_attn.q_proj.weight");
    CHECK(t && t->shape[0] == 64 && t->shape[1] == 64 && t->dtype == ST_F32, "fixture q_proj");
    t = st_find(d, "model.layers.0.self_attn.k_proj.weight");
    CHECK(t && t->shape[0] == 32 && t->shape[1] == 64, "fixture k_proj");
    {
        float *w = sd_alloc(sizeof(float) * t->numel, "test");
        st_read_f32(d, t, w);
        int finite = 1;
        for (size_t i = 0; i < t->numel; i++) finite &= isfinite(w[i]) && fabsf(w[i]) < 100.0f;
        CHECK(finite, "fixture k_proj values readable");
        free(w);
    }
    st_close(d);
    char *fg = fixture_path("tiny-a/grads.safetensors");
    d = st_open_file(fg);
    CHECK(d->ntensors > 0 && st_find(d, "model.embed_tokens.weight"), "fixture gradients open: %d tensors",
          d->ntensors);
    st_close(d);

    /* malformed files */
    {
        char *p = sd_path_join(dir, "tiny.safetensors");
        FILE *f = fopen(p, "wb");
        fwrite("abc", 1, 3, f);
        fclose(f);
        g_path = p;
        CHECK(expect_die(open_it, NULL, "shorter than 8 bytes"), "3-byte file");
        free(p);
    }
    CHECK(bad("hlen.safetensors", "{}", 0, 1000, "header length 1000 exceeds the file size"), "header length too large");
    CHECK(bad("huge.safetensors", "{}", 0, (uint64_t)1 << 62, "exceeds the file size"), "absurd header length");
    /* truncated: the header promises 16 bytes of data, the file holds 8 */
    CHECK(bad("trunc.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0,
              "tensor 'x': data_offsets end 16 is past the end of the data (8 bytes)"), "truncated data");
    CHECK(bad("past.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 8, 0,
              "past the end of the data"), "offsets past the end");
    CHECK(bad("json.safetensors", "{\"x\": [", 0, 0, "not a JSON object"), "bad JSON");
    CHECK(bad("arr.safetensors", "[1, 2]", 0, 0, "not a JSON object"), "header not an object");
    CHECK(bad("dtype.safetensors", "{\"x\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 0,
              "tensor 'x': dtype I8 is not supported"), "unknown dtype");
    CHECK(bad("size.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, 0,
              "tensor 'x': data_offsets [0, 4] span 4 bytes, shape and dtype need 8"), "size mismatch");
    CHECK(bad("neg.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, 0,
              "tensor 'x': shape entries must be non-negative integers"), "negative shape");
    CHECK(bad("frac.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4.5]}}", 8, 0,
              "tensor 'x': data_offsets must be integers"), "fractional offsets");
    CHECK(bad("rev.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 8, 0,
              "begin <= end"), "end before begin");
    CHECK(bad("ovf.safetensors",
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, 0,
              "tensor 'x': the shape overflows"), "shape overflow");
    CHECK(bad("ovf2.safetensors",
              "{\"x\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,0]}}", 0, 0,
              "tensor 'x': the byte size overflows"), "byte size overflow");
    CHECK(bad("ndim.safetensors",
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0,
              "tensor 'x': 9 dimensions"), "too many dimensions");
    CHECK(bad("nodt.safetensors", "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, "tensor 'x': missing"),
          "missing dtype");
    CHECK(bad("dup.safetensors",
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0,
              "tensor 'x' appears twice"), "duplicate tensor");

    /* model directories */
    sd_mkdirs(dir);
    {
        char *e = sd_path_join(dir, "empty");
        sd_mkdirs(e);
        CHECK(bad_dir("empty", "looked for model.safetensors.index.json, model.safetensors and *.safetensors"),
              "no weights");
        CHECK(bad_dir("absent", "cannot open the model directory"), "no directory");
        /* one odd name alone is taken; two without an index are an error */
        char *w1 = sd_path_join(e, "weights.safetensors");
        char *src = sd_path_join(d1, "model.safetensors");
        size_t len;
        char *raw = sd_read_file(src, &len);
        sd_write_file_atomic(w1, raw, len);
        d = st_open_dir(e);
        CHECK(d->nfiles == 1 && all_exact(d, outs, 2), "the single *.safetensors file");
        st_close(d);
        char *w2 = sd_path_join(e, "other.safetensors");
        sd_write_file_atomic(w2, raw, len);
        CHECK(bad_dir("empty", "2 .safetensors files"), "several files without an index");
        /* an index naming a tensor its shard lacks */
        char *ix = sd_path_join(e, "model.safetensors.index.json");
        const char *idx_text = "{\"metadata\":{},\"weight_map\":{\"w.a\":\"weights.safetensors\","
                               "\"w.zzz\":\"weights.safetensors\"}}";
        sd_write_file_atomic(ix, idx_text, strlen(idx_text));
        CHECK(bad_dir("empty", "tensor 'w.zzz' is not in its shard"), "index names a missing tensor");
        idx_text = "{\"metadata\":{},\"weight_map\":{\"w.a\":\"gone.safetensors\"}}";
        sd_write_file_atomic(ix, idx_text, strlen(idx_text));
        CHECK(bad_dir("empty", "gone.safetensors: cannot open"), "index names a missing shard");
        idx_text = "{\"metadata\":{}}";
        sd_write_file_atomic(ix, idx_text, strlen(idx_text));
        CHECK(bad_dir("empty", "weight_map"), "index without weight_map");
        idx_text = "{\"weight_map\":{\"w.a\":\"weights.safetensors\",\"w.b\":\"other.safetensors\"}}";
        sd_write_file_atomic(ix, idx_text, strlen(idx_text));
        CHECK(bad_dir("empty", "tensor 'w.a' appears twice"), "same tensor in two shards");
        free(ix);
        free(w1);
        free(w2);
        free(src);
        free(raw);
        free(e);
    }

    t_remove_tree(dir);
    free(d1);
    free(d2);
    free(d3);
    free(idx);
    free(s1);
    free(s4);
    free(single2);
    free(fp);
    free(fm);
    free(fg);
    TEST_END();
}
