/* test_strict_backend.c — the model, the loss path, the optimizer and checkpointing on the strict CPU backend
 * (backend_cpu_strict: device memory emulated with PROT_NONE addresses, every op's pointer arguments checked),
 * which proves on CPU that nothing hands host memory to an op or touches backend memory on the host.
 *   1. the strict backend itself: a host load of its memory faults; an op given host memory, an argument that
 *      runs past its block, an upload whose host side is backend memory, a free inside a block all die naming
 *      the op and the argument; bytes_in_use follows alloc / free.
 *   2. tiny-a at the initial weights (as test_tiny_a): per-pair log-probs, SimPO loss and metrics, grad norm and
 *      every gradient against the HF float64 fixture with the fixture README's tolerances, and bit for bit equal
 *      to the CPU backend (same kernels).
 *   3. the trainer (train_run with SIMPO_BACKEND=cpu_strict) on the fixture's run.yaml: losses and grad norms of
 *      steps 1 and 2, parameters after steps 1 and 2 (as test_train_fixture), the checkpoint equal to the CPU
 *      backend's bit for bit, a resumed run equal to the uninterrupted one, and no backend memory left. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include "checkpoint.h"
#include "comm.h"
#include "config.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"
#include "safetensors.h"
#include "test_util.h"
#include "train.h"

static double jnum(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }
static int rel_ok(double got, double want, double rtol) { return fabs(got - want) <= rtol * fabs(want); }
static cJSON *load_json(const char *rel) {
    char *p = fixture_path(rel);
    char *text = sd_read_file(p, NULL);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", p);
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    free(p);
    return j;
}

/* ---- 1. the backend itself ---- */
static const Backend *S;
static float host_buf[64];

static void host_touch(void *arg) { /* must fault: not an sd_die */
    volatile float *p = arg;
    p[3] = 1.0f;
}
static void op_with_host_x(void *dev) { S->add(dev, host_buf, 16); }
static void op_past_end(void *dev) { S->matmul(dev, dev, dev, 16, 16, 16, false, false, 1.0f, 0.0f); }
static void upload_from_backend(void *dev) { S->upload(dev, (char *)dev + 64, 16); }
static void download_to_backend(void *dev) { S->download((char *)dev + 64, dev, 16); }
static void free_inside(void *dev) { S->free((char *)dev + 4); }
static void ids_on_host(void *dev) {
    int ids[4] = {0, 1, 2, 3};
    S->embed_fwd(dev, ids, dev, 4, 4, 0, 4);
}

/* runs fn(arg) in a child that must die by a signal or a non-zero exit without reaching its end */
static int dies_by_fault(void (*fn)(void *), void *arg) {
    fprintf(stderr, "  (a child now touches backend memory on purpose: the fault report that follows is expected)\n");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    fprintf(stderr, "  host access: child %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void backend_checks(void) {
    size_t before = S->bytes_in_use();
    float *dev = S->alloc(64 * sizeof(float), "test block");
    CHECK(S->bytes_in_use() == before + 64 * sizeof(float), "bytes_in_use after alloc");
    CHECK(!S->host_addressable && backend_cpu()->host_addressable, "host_addressable flags");
    float v[64], w[64];
    for (int i = 0; i < 64; i++) v[i] = (float)i;
    S->upload(dev, v, sizeof v);
    S->scale(dev, 2.0f, 64);
    S->download(w, dev, sizeof w);
    int same = 1;
    for (int i = 0; i < 64; i++) same &= w[i] == 2.0f * (float)i;
    CHECK(same, "upload / scale / download round trip");
    CHECK(dies_by_fault(host_touch, dev), "a host store into backend memory did not fault");
    CHECK(expect_die(op_with_host_x, dev, "add: argument 'x'"), "host pointer handed to add");
    CHECK(expect_die(op_past_end, dev, "needs 1024 bytes at offset 0 of block 'test block'"), "matmul past the block's end");
    CHECK(expect_die(upload_from_backend, dev, "upload: argument 'host_src'"), "upload from backend memory");
    CHECK(expect_die(download_to_backend, dev, "download: argument 'host_dst'"), "download into backend memory");
    CHECK(expect_die(free_inside, dev, "not the start of a block"), "free inside a block");
    CHECK(expect_die(ids_on_host, dev, "embed_fwd: argument 'ids'"), "host ids handed to embed_fwd");
    S->free(dev);
    CHECK(S->bytes_in_use() == before, "bytes_in_use after free");
}

/* ---- 2. the model at the initial weights ---- */
typedef struct {
    Model *m;
    SeqLogp seq[12];
    double loss, met[6];
} Run;

static void forward_backward(Run *r, const PairSet *ps, LossParams lp) {
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    MicroBatch *mb = microbatch_pack(ps, idx, 6);
    model_zero_grads(r->m);
    model_forward_logprobs(r->m, mb, r->seq);
    long chosen = 0;
    for (int i = 0; i < 6; i++) chosen += r->seq[2 * i].n;
    double dsum[12];
    r->loss = 0;
    for (int k = 0; k < 6; k++) r->met[k] = 0;
    for (int i = 0; i < 6; i++) {
        const Pair *p = mb->pairs[i];
        PairStats st = {r->seq[2 * i].sum, r->seq[2 * i + 1].sum, r->seq[2 * i].n, r->seq[2 * i + 1].n,
                        p->ref_chosen_logp, p->ref_rejected_logp};
        LossOut o;
        loss_pair(&lp, &st, 6, chosen, &o);
        r->loss += o.loss;
        dsum[2 * i] = o.d_sum_w;
        dsum[2 * i + 1] = o.d_sum_l;
        r->met[0] += o.reward_w / 6;
        r->met[1] += o.reward_l / 6;
        r->met[2] += (o.reward_w - o.reward_l) / 6;
        r->met[3] += (o.reward_w > o.reward_l) / 6.0;
        r->met[4] += o.logp_w / 6;
        r->met[5] += o.logp_l / 6;
    }
    model_backward(r->m, mb, dsum);
    microbatch_free(mb);
}

static void model_checks(const cJSON *exp) {
    char *mdir = fixture_path("tiny-a/model"), *pairs = fixture_path("tiny-a/pairs.jsonl");
    ModelConfig mc = model_config_load(mdir);
    PairSet *ps = pairs_load_jsonl(pairs, mc.vocab_size);
    Run rs = {0}, rc = {0};
    rs.m = model_create(&mc, S, 256, NULL, 1);
    rc.m = model_create(&mc, backend_cpu(), 256, NULL, 1);
    model_load_hf(rs.m, mdir);
    model_load_hf(rc.m, mdir);
    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    forward_backward(&rs, ps, simpo);
    forward_backward(&rc, ps, simpo);

    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(exp, "pairs");
    double worst = 0;
    int bitwise = 1;
    for (int i = 0; i < 6; i++) {
        const cJSON *e = cJSON_GetArrayItem(pj, i);
        double w = jnum(e, "chosen_logp"), l = jnum(e, "rejected_logp");
        worst = fmax(worst, fmax(fabs(rs.seq[2 * i].sum - w) / fabs(w), fabs(rs.seq[2 * i + 1].sum - l) / fabs(l)));
        CHECK(rs.seq[2 * i].n == (int)jnum(e, "chosen_tokens"), "pair %d chosen tokens %d", i, rs.seq[2 * i].n);
        CHECK(rs.seq[2 * i + 1].n == (int)jnum(e, "rejected_tokens"), "pair %d rejected tokens", i);
        bitwise &= rs.seq[2 * i].sum == rc.seq[2 * i].sum && rs.seq[2 * i + 1].sum == rc.seq[2 * i + 1].sum;
    }
    printf("strict log-probs: worst relative error %.3g\n", worst);
    CHECK(worst <= 1e-5, "log-probs off by %.3g relative", worst);
    CHECK(bitwise, "strict log-probs differ from the CPU backend's");

    const cJSON *st1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(exp, "steps"), 0);
    CHECK(rel_ok(rs.loss, jnum(st1, "loss"), 1e-5), "simpo loss %.10g vs %.10g", rs.loss, jnum(st1, "loss"));
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(exp, "metrics");
    const char *names[6] = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                            "logps/chosen", "logps/rejected"};
    for (int k = 0; k < 6; k++)
        CHECK(rel_ok(rs.met[k], jnum(em, names[k]), 1e-5), "%s %.10g vs %.10g", names[k], rs.met[k],
              jnum(em, names[k]));
    double gn = sqrt(model_grad_sumsq(rs.m));
    CHECK(rel_ok(gn, jnum(st1, "grad_norm"), 1e-5), "grad norm %.10g vs %.10g", gn, jnum(st1, "grad_norm"));

    /* every gradient, downloaded: the fixture's tolerance, and the CPU backend's bits */
    float *grads = sd_alloc(rs.m->nparams * sizeof(float), "grads");
    S->download(grads, rs.m->grads, rs.m->nparams * sizeof(float));
    CHECK(memcmp(grads, rc.m->grads, rs.m->nparams * sizeof(float)) == 0, "strict gradients differ from the CPU's");
    char *gp = fixture_path("tiny-a/grads.safetensors");
    StDir *gd = st_open_file(gp);
    int seen = 0;
    for (int i = 0; i < rs.m->nspecs; i++) {
        const ParamSpec *p = &rs.m->specs[i];
        const StTensor *t = st_find(gd, p->name);
        CHECK(t != NULL, "gradient %s missing from fixture", p->name);
        if (!t) continue;
        float *ref = sd_alloc(t->numel * sizeof(float), "ref");
        st_read_f32(gd, t, ref);
        double maxref = 0, maxdiff = 0;
        for (size_t e = 0; e < p->numel; e++) {
            maxref = fmax(maxref, fabs(ref[e]));
            maxdiff = fmax(maxdiff, fabs(grads[p->offset + e] - ref[e]));
        }
        CHECK(maxdiff <= 1e-4 * maxref, "grad %s off by %.3g (max |ref| %.3g)", p->name, maxdiff, maxref);
        free(ref);
        seen++;
    }
    CHECK(seen == gd->ntensors, "fixture has %d gradient tensors, model %d", gd->ntensors, seen);
    st_close(gd);

    /* a second objective reuses the activations: dpo's loss and grad norm */
    const cJSON *dpo = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(exp, "other_losses"), "dpo");
    forward_backward(&rs, ps, (LossParams){.type = LOSS_DPO, .beta = 0.1});
    CHECK(rel_ok(rs.loss, jnum(dpo, "loss"), 1e-5), "dpo loss %.10g", rs.loss);
    CHECK(rel_ok(sqrt(model_grad_sumsq(rs.m)), jnum(dpo, "grad_norm"), 1e-5), "dpo grad norm");

    free(grads);
    free(gp);
    model_free(rs.m);
    model_free(rc.m);
    pairs_free(ps);
    free(mdir);
    free(pairs);
}

/* ---- 3. the trainer ---- */
static char tmpdir[64];

static Config *fixture_config(const char *ckpt_sub) {
    char *p = fixture_path("tiny-a/run.yaml");
    Config *c = config_load(p);
    free(p);
    free(c->ckpt_dir);
    c->ckpt_dir = sd_path_join(tmpdir, ckpt_sub);
    return c;
}

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
    printf("strict %s: max abs diff %.3g, %zu of %zu elements beyond 1e-4\n", ref_rel, worst, beyond, total);
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

/* bitwise equality of every dataset of two checkpoints of the tiny-a model */
static int same_checkpoint(const char *a, const char *b) {
    char *mdir = fixture_path("tiny-a/model");
    ModelConfig mc = model_config_load(mdir);
    Model *m = model_create(&mc, backend_cpu(), 1, NULL, 1);
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
    model_free(m);
    free(mdir);
    return same;
}

static void trainer_checks(const cJSON *exp) {
    setenv("SIMPO_BACKEND", "cpu_strict", 1);
    Config *c = fixture_config("strict");
    c->ckpt_every_steps = 1;
    TrainOptions opt = {0, 1};
    CHECK(train_run(c, &opt) == 0, "train_run on the strict backend failed");
    CHECK(S->bytes_in_use() == 0, "%zu bytes of strict backend memory left after train_run", S->bytes_in_use());
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
    }
    cJSON_Delete(met);
    char *s1 = sd_path_join(c->ckpt_dir, "step-00000001"), *s2 = sd_path_join(c->ckpt_dir, "step-00000002");
    compare_params(s1, "tiny-a/step1.safetensors");
    compare_params(s2, "tiny-a/step2.safetensors");

    /* the CPU backend's run of the same config: the same checkpoint, bit for bit */
    setenv("SIMPO_BACKEND", "cpu", 1);
    Config *cc = fixture_config("cpu");
    CHECK(train_run(cc, &opt) == 0, "train_run on the CPU backend failed");
    char *c2 = sd_path_join(cc->ckpt_dir, "step-00000002");
    CHECK(same_checkpoint(s2, c2), "strict and CPU checkpoints differ");

    /* stop after step 1, resume (state_load uploads into the strict backend), equal to the uninterrupted run */
    setenv("SIMPO_BACKEND", "cpu_strict", 1);
    Config *cr = fixture_config("resumed");
    TrainOptions stop = {1, 1};
    CHECK(train_run(cr, &stop) == 0, "first half");
    CHECK(train_run(cr, &opt) == 0, "resumed half");
    char *r2 = sd_path_join(cr->ckpt_dir, "step-00000002");
    CHECK(same_checkpoint(s2, r2), "a resumed strict run differs from the uninterrupted one");
    CHECK(S->bytes_in_use() == 0, "%zu bytes of strict backend memory left", S->bytes_in_use());
    unsetenv("SIMPO_BACKEND");

    free(s1);
    free(s2);
    free(c2);
    free(r2);
    config_free(c);
    config_free(cc);
    config_free(cr);
}

int main(int argc, char **argv) {
    S = backend_cpu_strict();
    backend_checks(); /* forks: before MPI starts */
    cJSON *exp = load_json("tiny-a/expected.json");
    model_checks(exp);
    comm_init(&argc, &argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sd_strict_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    trainer_checks(exp);
    cJSON_Delete(exp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (t_fail == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    comm_finalize();
    TEST_END();
}
