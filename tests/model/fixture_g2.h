/* fixture_g2.h — the tiny-g2 fixture (a 2-layer Gemma 2 in Hugging Face transformers, float64; generator
 * scripts/make_gemma2_fixture.py, layout of tests/fixtures/tiny-a) for test_gemma2: fixture_common.h's helpers where
 * they take no fixture name (check_fixture_logprobs, check_fixture_step1, check_fixture_other, fixture_loss_and_grads,
 * check_fixture_steps, read_metrics), and here the variants of those that name tiny-a, for any fixture directory.
 * Gemma 2's RMSNorm gains: checkpoints hold the model's gain g = 1 + w, HF files (the fixture's step*.safetensors)
 * the offset w, so g2_compare_params subtracts 1 from the gains of the checkpoint before comparing; gradients need
 * no conversion (d/dg = d/dw). Tolerances are tiny-a's (fixture_common.h). Also config_variant_dies, the
 * config.json error checks of test_gemma2 and test_qwen. Used for tiny-g2, tiny-q2 and tiny-q3. */
#ifndef SD_FIXTURE_G2_H
#define SD_FIXTURE_G2_H
#include "fixture_common.h"

/* does the fixture `name` (a directory below SIMPO_FIXTURES) hold an expected.json? */
static inline int g2_fixture_present(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/expected.json", name);
    char *p = fixture_path(rel);
    int ok = sd_file_exists(p);
    free(p);
    return ok;
}

static inline ModelConfig g2_fixture_model_config(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/model", name);
    char *mdir = fixture_path(rel);
    ModelConfig mc = model_config_load(mdir);
    free(mdir);
    return mc;
}

/* the fixture's initial weights on backend be (256 tokens, one rank, one activation slot, recompute as asked) */
static inline Model *g2_fixture_model(const char *name, const ModelConfig *mc, const Backend *be, bool recompute) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/model", name);
    char *mdir = fixture_path(rel);
    Model *m = model_create_ex(mc, be, 256, NULL, 1, RC_LAYERS(recompute));
    model_load_hf(m, mdir);
    free(mdir);
    return m;
}

static inline PairSet *g2_fixture_pairs(const char *name, const ModelConfig *mc) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/pairs.jsonl", name);
    char *p = fixture_path(rel);
    PairSet *ps = pairs_load_jsonl(p, mc->vocab_size);
    free(p);
    return ps;
}

/* check_fixture_grads against the safetensors file grads_rel (below SIMPO_FIXTURES) */
static inline void g2_check_grads(const Model *m, const float *grads, const char *grads_rel) {
    char *gp = fixture_path(grads_rel);
    StDir *gd = st_open_file(gp);
    free(gp);
    int seen = 0;
    double worst = 0;
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        const StTensor *t = st_find(gd, p->name);
        CHECK(t != NULL, "gradient %s missing from %s", p->name, grads_rel);
        if (!t) continue;
        CHECK(t->numel == p->numel, "gradient %s: %zu elements in the fixture, %zu in the model", p->name, t->numel,
              p->numel);
        if (t->numel != p->numel) continue;
        float *ref = sd_alloc(t->numel * sizeof(float), "ref");
        st_read_f32(gd, t, ref);
        double maxref;
        size_t at;
        double maxdiff = fixture_max_diff(grads + p->offset, ref, p->numel, &maxref, &at);
        worst = fmax(worst, maxdiff / fmax(maxref, 1e-300));
        CHECK(maxdiff <= 1e-4 * maxref, "grad %s vs fixture: element %zu got %.8g want %.8g (max |ref| %.3g)",
              p->name, at, grads[p->offset + at], ref[at], maxref);
        free(ref);
        seen++;
    }
    printf("gradients vs %s: worst %.3g of the tensor's largest\n", grads_rel, worst);
    CHECK(seen == gd->ntensors, "%s has %d gradient tensors, the model %d", grads_rel, gd->ntensors, seen);
    st_close(gd);
}

/* is the HF tensor `name` a Gemma 2 RMSNorm gain (stored as an offset from 1)? */
static inline int g2_is_gain_name(const char *name) {
    size_t n = strlen(name), k = strlen("layernorm.weight");
    return !strcmp(name, "model.norm.weight") || (n >= k && !strcmp(name + n - k, "layernorm.weight"));
}

/* what a checkpoint's tensor carries beyond the HF reference's: 1 for the gains (stored as g = 1 + w) */
static inline double g2_gain_offset(const char *name) { return g2_is_gain_name(name) ? 1.0 : 0.0; }

/* compare_params for Gemma 2: a checkpoint's parameters (gains g) against an HF safetensors file of the fixture
 * (gains w = g - 1), ref_rel below SIMPO_FIXTURES, with the same rule (1e-4 absolute, a handful within 2.5e-3) */
static inline void g2_compare_params(const char *step_dir, const char *ref_rel, const char *tag) {
    compare_params_offset(step_dir, ref_rel, tag, g2_gain_offset);
}

/* the fixture's run.yaml (name/run.yaml), its checkpoint.dir moved to dir/ckpt_sub */
static inline Config *g2_fixture_config(const char *name, const char *dir, const char *ckpt_sub) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/run.yaml", name);
    char *p = fixture_path(rel);
    Config *c = config_load(p);
    free(p);
    free(c->ckpt_dir);
    c->ckpt_dir = sd_path_join(dir, ckpt_sub);
    return c;
}

/* config.json text `base` with `from` replaced by `to` must make model_config_from_json die with a message holding
 * `want` (0 also when `from` is not in base, so a stale edit fails its CHECK) */
static char *g_variant_json;
static inline void config_variant_parse(void *arg) {
    (void)arg;
    model_config_from_json(g_variant_json, "bad.json");
}
static inline int config_variant_dies(const char *base, const char *from, const char *to, const char *want) {
    const char *at = strstr(base, from);
    if (!at) return 0;
    size_t n = strlen(base) + strlen(to) + 1;
    g_variant_json = sd_alloc(n, "json");
    snprintf(g_variant_json, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    int ok = expect_die(config_variant_parse, NULL, want);
    free(g_variant_json);
    return ok;
}
#endif
