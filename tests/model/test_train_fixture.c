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
#include "fixture_common.h"
#include "model.h"
#include "safetensors.h"
#include "test_util.h"
#include "train.h"

static char tmpdir[64];

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sd_train_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    cJSON *exp = load_json("tiny-a/expected.json");

    /* 1. two steps of the fixture config, a checkpoint after each */
    Config *c = fixture_config(tmpdir, "fixture");
    c->ckpt_every_steps = 1;
    TrainOptions opt = {.quiet = 1};
    CHECK(train_run(c, &opt) == 0, "train_run failed");
    cJSON *met = read_metrics(c->ckpt_dir);
    check_fixture_steps(met, exp);
    for (int k = 0; k < 2 && k < cJSON_GetArraySize(met); k++) {
        const cJSON *g = cJSON_GetArrayItem(met, k);
        CHECK((int)jnum(g, "step") == k + 1, "metrics step numbering");
        CHECK(jnum(g, "lr") == 1e-3, "lr %.g", jnum(g, "lr"));
    }
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics"), *m1 = cJSON_GetArrayItem(met, 0);
    for (int k = 0; k < 6; k++) {
        const char *name = fixture_metric_names[k];
        CHECK(rel_ok(jnum(m1, name), jnum(em, name), 1e-5), "metric %s", name);
    }
    cJSON_Delete(met);
    char *s1 = sd_path_join(c->ckpt_dir, "step-00000001"), *s2 = sd_path_join(c->ckpt_dir, "step-00000002");
    compare_params(s1, "tiny-a/step1.safetensors", "");
    compare_params(s2, "tiny-a/step2.safetensors", "");

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
            outs[i] = (StOut){p->name, p->ndim, {p->shape[0], p->shape[1]}, m->params + p->offset, NULL, NULL};
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
    Config *ca = fixture_config(tmpdir, "full"), *cb = fixture_config(tmpdir, "resumed");
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
    TrainOptions stop = {.stop_at_step = 2, .quiet = 1};
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
    fixture_remove_tmpdir(tmpdir);
    comm_finalize();
    TEST_END();
}
