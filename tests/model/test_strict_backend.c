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
#include "fixture_common.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"
#include "safetensors.h"
#include "test_util.h"
#include "train.h"

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
    r->loss = fixture_loss_and_grads(r->m, ps, lp, r->seq, r->met);
}

static void model_checks(const cJSON *exp) {
    ModelConfig mc = fixture_model_config();
    PairSet *ps = fixture_pairs(&mc);
    Run rs = {.m = fixture_model(&mc, S)}, rc = {.m = fixture_model(&mc, backend_cpu())};
    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    forward_backward(&rs, ps, simpo);
    forward_backward(&rc, ps, simpo);

    check_fixture_logprobs(exp, rs.seq, "strict ");
    int bitwise = 1;
    for (int s = 0; s < 12; s++) bitwise &= rs.seq[s].sum == rc.seq[s].sum;
    CHECK(bitwise, "strict log-probs differ from the CPU backend's");
    check_fixture_step1(exp, rs.loss, rs.met, sqrt(model_grad_sumsq(rs.m)));

    /* every gradient, downloaded: the fixture's tolerance, and the CPU backend's bits */
    float *grads = sd_alloc(rs.m->nparams * sizeof(float), "grads");
    S->download(grads, rs.m->grads, rs.m->nparams * sizeof(float));
    CHECK(memcmp(grads, rc.m->grads, rs.m->nparams * sizeof(float)) == 0, "strict gradients differ from the CPU's");
    check_fixture_grads(rs.m, grads);

    /* prefix sharing: strict and CPU bit for bit, within the fixture's tolerances */
    rs.loss = fixture_loss_and_grads_ex(rs.m, ps, simpo, rs.seq, rs.met, true);
    rc.loss = fixture_loss_and_grads_ex(rc.m, ps, simpo, rc.seq, rc.met, true);
    check_fixture_logprobs(exp, rs.seq, "strict, prefix sharing ");
    bitwise = 1;
    for (int s = 0; s < 12; s++) bitwise &= rs.seq[s].sum == rc.seq[s].sum;
    S->download(grads, rs.m->grads, rs.m->nparams * sizeof(float));
    CHECK(bitwise && memcmp(grads, rc.m->grads, rs.m->nparams * sizeof(float)) == 0,
          "strict prefix sharing differs from the CPU's");
    check_fixture_grads(rs.m, grads);

    /* a second objective reuses the activations: dpo's loss and grad norm */
    forward_backward(&rs, ps, (LossParams){.type = LOSS_DPO, .beta = 0.1});
    check_fixture_other(exp, "dpo", rs.loss, sqrt(model_grad_sumsq(rs.m)));

    free(grads);
    model_free(rs.m);
    model_free(rc.m);
    pairs_free(ps);
}

/* ---- 3. the trainer ---- */
static char tmpdir[64];

static void trainer_checks(const cJSON *exp) {
    setenv("SIMPO_BACKEND", "cpu_strict", 1);
    Config *c = fixture_config(tmpdir, "strict");
    c->ckpt_every_steps = 1;
    TrainOptions opt = {.quiet = 1};
    CHECK(train_run(c, &opt) == 0, "train_run on the strict backend failed");
    CHECK(S->bytes_in_use() == 0, "%zu bytes of strict backend memory left after train_run", S->bytes_in_use());
    cJSON *met = read_metrics(c->ckpt_dir);
    check_fixture_steps(met, exp);
    cJSON_Delete(met);
    char *s1 = sd_path_join(c->ckpt_dir, "step-00000001"), *s2 = sd_path_join(c->ckpt_dir, "step-00000002");
    compare_params(s1, "tiny-a/step1.safetensors", "strict ");
    compare_params(s2, "tiny-a/step2.safetensors", "strict ");

    /* the CPU backend's run of the same config: the same checkpoint, bit for bit */
    ModelConfig mc = fixture_model_config();
    Model *m = model_create(&mc, backend_cpu(), 1, NULL, 1); /* the layout same_checkpoint reads */
    setenv("SIMPO_BACKEND", "cpu", 1);
    Config *cc = fixture_config(tmpdir, "cpu");
    CHECK(train_run(cc, &opt) == 0, "train_run on the CPU backend failed");
    char *c2 = sd_path_join(cc->ckpt_dir, "step-00000002");
    CHECK(same_checkpoint(s2, c2, m), "strict and CPU checkpoints differ");

    /* stop after step 1, resume (state_load uploads into the strict backend), equal to the uninterrupted run */
    setenv("SIMPO_BACKEND", "cpu_strict", 1);
    Config *cr = fixture_config(tmpdir, "resumed");
    TrainOptions stop = {.stop_at_step = 1, .quiet = 1};
    CHECK(train_run(cr, &stop) == 0, "first half");
    CHECK(train_run(cr, &opt) == 0, "resumed half");
    char *r2 = sd_path_join(cr->ckpt_dir, "step-00000002");
    CHECK(same_checkpoint(s2, r2, m), "a resumed strict run differs from the uninterrupted one");
    CHECK(S->bytes_in_use() == 0, "%zu bytes of strict backend memory left", S->bytes_in_use());
    unsetenv("SIMPO_BACKEND");

    model_free(m);
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
    fixture_remove_tmpdir(tmpdir);
    comm_finalize();
    TEST_END();
}
