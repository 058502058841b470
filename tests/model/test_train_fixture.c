/* test_train_fixture.c — the trainer end to end on the tiny-a fixture's own YAML config (run.yaml): losses and
 * grad norms of steps 1 and 2 from metrics.jsonl, parameters after steps 1 and 2 from the checkpoints, export to
 * Hugging Face format and back bit-exactly, a BF16 import, and resume determinism (2 steps + resume + 2 steps
 * equals 4 steps, bit for bit). Tolerances from tests/fixtures/README.md: losses 1e-5 relative; parameters 1e-4
 * absolute except a handful of elements (Adam's first-update sign flips on ~zero gradients) within 2.5e-3. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "checkpoint.h"
#include "comm.h"
#include "commands.h"
#include "config.h"
#include "model.h"
#include "safetensors.h"
#include "test_util.h"
#include "train.h"

static char tmpdir[64];

static double jnum(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }

static Config *fixture_config(const char *ckpt_sub) {
    char *p = fixture_path("tiny-a/run.yaml");
    Config *c = config_load(p);
    free(p);
    free(c->ckpt_dir);
    c->ckpt_dir = sd_path_join(tmpdir, ckpt_sub);
    return c;
}

/* parameters of a checkpoint vs a safetensors file of the fixture */
static void compare_params(const char *step_dir, const char *ref_rel) {
    char *rp = fixture_path(ref_rel);
    StDir *ref = st_open_file(rp);
    CkptReader *r = ckpt_open(step_dir);
    double worst = 0;
    size_t beyond = 0, total = 0;
    for (int i = 0; i < ref->ntensors; i++) {
        const StTensor *t = &ref->tensors[i];
        float *want = sd_alloc(t->numel * 4, "ref"), *got = sd_alloc(t->numel * 4, "got");
        st_read_f32(ref, t, want);
        int64_t off[2] = {0, 0}, cnt[2] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0};
        ckpt_read(r, "param", t->name, t->ndim, off, cnt, got);
        for (size_t e = 0; e < t->numel; e++) {
            double d = fabs((double)got[e] - want[e]);
            worst = fmax(worst, d);
            total++;
            if (d > 1e-4) {
                beyond++;
                CHECK(d <= 2.5e-3, "%s: %s[%zu] off by %.3g", ref_rel, t->name, e, d);
            }
        }
        free(want);
        free(got);
    }
    size_t allowed = total / 2000 > 5 ? total / 2000 : 5;
    printf("%s: max abs diff %.3g, %zu of %zu elements beyond 1e-4\n", ref_rel, worst, beyond, total);
    CHECK(beyond <= allowed, "%s: %zu elements beyond 1e-4 (allowed %zu)", ref_rel, beyond, allowed);
    ckpt_close(r);
    st_close(ref);
    free(rp);
}

static cJSON *read_metrics(const char *ckpt_dir) {
    char *p = sd_path_join(ckpt_dir, "metrics.jsonl");
    char *text = sd_read_file(p, NULL);
    cJSON *arr = cJSON_CreateArray();
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        cJSON_AddItemToArray(arr, cJSON_Parse(line));
    free(text);
    free(p);
    return arr;
}

/* bitwise equality of every dataset of two checkpoints */
static int same_checkpoint(const char *a, const char *b, const Model *m) {
    CkptReader *ra = ckpt_open(a), *rb = ckpt_open(b);
    const char *groups[3] = {"param", "exp_avg", "exp_avg_sq"};
    int same = 1;
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < m->nspecs; i++) {
            const ParamSpec *p = &m->specs[i];
            float *x = sd_alloc(p->numel * 4, "a"), *y = sd_alloc(p->numel * 4, "b");
            ckpt_read(ra, groups[g], p->name, p->ndim, p->off, p->shape_loc, x);
            ckpt_read(rb, groups[g], p->name, p->ndim, p->off, p->shape_loc, y);
            if (memcmp(x, y, p->numel * 4)) {
                fprintf(stderr, "  %s/%s differs\n", groups[g], p->name);
                same = 0;
            }
            free(x);
            free(y);
        }
    ckpt_close(ra);
    ckpt_close(rb);
    return same;
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sd_train_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    cJSON *exp;
    {
        char *p = fixture_path("tiny-a/expected.json");
        char *text = sd_read_file(p, NULL);
        exp = cJSON_Parse(text);
        free(text);
        free(p);
    }

    /* 1. two steps of the fixture config, a checkpoint after each */
    Config *c = fixture_config("fixture");
    c->ckpt_every_steps = 1;
    TrainOptions opt = {0, 1};
    CHECK(train_run(c, &opt) == 0, "train_run failed");
    cJSON *met = read_metrics(c->ckpt_dir);
    CHECK(cJSON_GetArraySize(met) == 2, "metrics.jsonl has %d lines", cJSON_GetArraySize(met));
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(exp, "steps");
    for (int k = 0; k < 2 && k < cJSON_GetArraySize(met); k++) {
        const cJSON *g = cJSON_GetArrayItem(met, k), *e = cJSON_GetArrayItem(steps, k);
        for (int q = 0; q < 2; q++) {
            const char *key = q ? "grad_norm" : "loss";
            double got = jnum(g, key), want = jnum(e, key);
            CHECK(fabs(got - want) <= 1e-5 * fabs(want), "step %d %s %.10g vs %.10g", k + 1, key, got, want);
        }
        CHECK((int)jnum(g, "step") == k + 1, "metrics step numbering");
        CHECK(jnum(g, "lr") == 1e-3, "lr %.g", jnum(g, "lr"));
    }
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics"), *m1 = cJSON_GetArrayItem(met, 0);
    const char *names[6] = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                            "logps/chosen", "logps/rejected"};
    for (int k = 0; k < 6; k++)
        CHECK(fabs(jnum(m1, names[k]) - jnum(em, names[k])) <= 1e-5 * fabs(jnum(em, names[k])), "metric %s",
              names[k]);
    cJSON_Delete(met);
    char *s1 = sd_path_join(c->ckpt_dir, "step-00000001"), *s2 = sd_path_join(c->ckpt_dir, "step-00000002");
    compare_params(s1, "tiny-a/step1.safetensors");
    compare_params(s2, "tiny-a/step2.safetensors");

    /* 2. export the latest checkpoint, import it, export again: bit-exact */
    char *hf = sd_path_join(tmpdir, "hf"), *hf2 = sd_path_join(tmpdir, "hf2");
    char *eargv[] = {"export", "--checkpoint", c->ckpt_dir, "--out", hf, NULL};
    CHECK(cmd_export(5, eargv) == 0, "export failed");
    ModelConfig mc = model_config_load(hf);
    Model *m = model_create(&mc, backend_cpu(), 1, NULL, 1);
    model_load_hf(m, hf);
    CkptReader *r = ckpt_open(s2);
    float *want = sd_alloc(m->nparams * 4, "want");
    for (int i = 0; i < m->nspecs; i++) {
        const ParamSpec *p = &m->specs[i];
        ckpt_read(r, "param", p->name, p->ndim, p->off, p->shape_loc, want + p->offset);
    }
    ckpt_close(r);
    CHECK(memcmp(want, m->params, m->nparams * 4) == 0, "exported parameters differ from the checkpoint");
    model_export_hf(m, hf2, (size_t)20000); /* tiny shards: exercises the sharded layout */
    char *idx = sd_path_join(hf2, "model.safetensors.index.json");
    CHECK(sd_file_exists(idx), "sharded export wrote no index");
    Model *m2 = model_create(&mc, backend_cpu(), 1, NULL, 1);
    model_load_hf(m2, hf2);
    CHECK(memcmp(m2->params, m->params, m->nparams * 4) == 0, "sharded export/import is not bit-exact");

    /* 3. BF16 safetensors import */
    {
        char *bdir = sd_path_join(tmpdir, "bf16");
        StOut *outs = sd_calloc((size_t)m->nspecs, sizeof *outs, "outs");
        for (int i = 0; i < m->nspecs; i++) {
            const ParamSpec *p = &m->specs[i];
            outs[i] = (StOut){p->name, p->ndim, {p->shape[0], p->shape[1]}, m->params + p->offset};
        }
        st_write_model(bdir, outs, m->nspecs, (size_t)1 << 40, 1);
        char *cj = model_config_to_json(&mc), *cp = sd_path_join(bdir, "config.json");
        sd_write_file_atomic(cp, cj, strlen(cj));
        model_load_hf(m2, bdir);
        size_t bad = 0;
        for (size_t e = 0; e < m->nparams; e++)
            if (m2->params[e] != sd_bf16_to_f32(sd_f32_to_bf16(m->params[e]))) bad++;
        CHECK(bad == 0, "bf16 import: %zu elements differ from bf16-rounded originals", bad);
        free(outs);
        free(cj);
        free(cp);
        free(bdir);
    }

    /* 4. resume: shuffled data over several epochs, cosine schedule with warmup, 4 steps */
    Config *ca = fixture_config("full"), *cb = fixture_config("resumed");
    Config *cs[2] = {ca, cb};
    for (int k = 0; k < 2; k++) {
        cs[k]->shuffle = true;
        cs[k]->global_batch_pairs = 4;
        cs[k]->micro_batch_pairs = 2;
        cs[k]->max_steps = 4;
        cs[k]->schedule = SCHED_COSINE;
        cs[k]->warmup_steps = 1;
        cs[k]->ckpt_every_steps = 0;
    }
    CHECK(train_run(ca, &opt) == 0, "full run");
    TrainOptions stop = {2, 1};
    CHECK(train_run(cb, &stop) == 0, "first half");
    char *half = sd_path_join(cb->ckpt_dir, "step-00000002/index.h5");
    CHECK(sd_file_exists(half), "no checkpoint after the stop");
    CHECK(train_run(cb, &opt) == 0, "resumed half");
    char *fa = sd_path_join(ca->ckpt_dir, "step-00000004"), *fb = sd_path_join(cb->ckpt_dir, "step-00000004");
    CHECK(same_checkpoint(fa, fb, m), "resumed run differs from the uninterrupted one");
    cJSON *ma = read_metrics(ca->ckpt_dir), *mb = read_metrics(cb->ckpt_dir);
    CHECK(cJSON_GetArraySize(ma) == 4 && cJSON_GetArraySize(mb) == 4, "metrics lines %d / %d",
          cJSON_GetArraySize(ma), cJSON_GetArraySize(mb));
    for (int k = 0; k < 4 && k < cJSON_GetArraySize(mb); k++)
        CHECK(jnum(cJSON_GetArrayItem(ma, k), "loss") == jnum(cJSON_GetArrayItem(mb, k), "loss"),
              "step %d loss differs after resume", k + 1);
    CHECK(jnum(cJSON_GetArrayItem(ma, 0), "lr") == 0.0, "warmup step 1 lr should be 0 (HF schedule)");
    cJSON_Delete(ma);
    cJSON_Delete(mb);

    free(fa); free(fb); free(half); free(idx); free(want); free(hf); free(hf2); free(s1); free(s2);
    model_free(m);
    model_free(m2);
    config_free(c);
    config_free(ca);
    config_free(cb);
    cJSON_Delete(exp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (t_fail == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    comm_finalize();
    TEST_END();
}
