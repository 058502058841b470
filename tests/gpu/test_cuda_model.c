/* test_cuda_model.c — the whole model on the CUDA backend against the CPU backend and the Hugging Face float64
 * fixture tiny-a (tests/fixtures/README.md; the CPU path is tests/model/test_tiny_a.c): per-sequence log-probs,
 * SimPO loss and metrics, every parameter gradient and the grad norm, the loss and grad norm of simpo_hinge, dpo
 * and simpo_sft; the sparse embedding gradient bitwise the dense model; then determinism (a second GPU forward +
 * backward is bitwise identical) and no leaked device
 * memory after model_free; the bf16 mode against the fixture (fixture_bf16.h's bounds) and the CPU's bf16
 * emulation; the Qwen fixtures tiny-q2 and tiny-q3 and the Mistral one tiny-m1 in fp32 and the bf16 mode. Without
 * a CUDA device it prints "SKIPPED: no CUDA device" and exits 77.
 *
 * Tolerances: against the CPU backend, log-probs, losses, metrics and grad norms 1e-5 relative and each gradient
 * tensor 2e-5 of its largest magnitude (both are fp32 runs of the same formulas; per-op differences are ~1e-7
 * relative, see test_cuda_ops.c, and a 2-layer model compounds a few of them). Against the fixture, the fixture
 * README's bounds, as in test_tiny_a.c: 1e-5 relative for log-probs and losses, 1e-4 of the tensor's largest
 * magnitude for gradients. */
#include <cjson/cJSON.h>
#include <math.h>
#include "backend_cuda.h"
#include "config.h"
#include "fixture_bf16.h"
#include "fixture_g2.h"
#include "loss.h"
#include "model.h"
#include "pairs.h"
#include "safetensors.h"
#include "test_util.h"

typedef struct {
    SeqLogp seq[12];
    double loss, gnorm, met[6];
    float *grads; /* host copy [nparams] */
} Run;

/* loss over all 6 pairs in one micro-batch, forward + backward; fills r (grads downloaded to the host) */
static void run_ex(Model *m, const PairSet *ps, LossParams lp, Run *r, bool share) {
    r->loss = fixture_loss_and_grads_ex(m, ps, lp, r->seq, r->met, share);
    r->gnorm = sqrt(model_grad_sumsq(m));
    if (!r->grads) r->grads = sd_alloc(m->nparams * sizeof(float), "host grads");
    m->be->download(r->grads, m->grads, m->nparams * sizeof(float));
}
static void run(Model *m, const PairSet *ps, LossParams lp, Run *r) { run_ex(m, ps, lp, r, false); }
long cuda_attn_rows_calls(void); /* cuda/attention.cu: calls the prefix-sharing rows ops took */
/* prefix sharing (data.prefix_sharing): the GPU's shared run against the CPU's (fp32: 1e-5 relative log-probs, each
 * gradient tensor 2e-5 of its max) or, in the bf16 modes, within the CPU's by 4 bf16 units of log-prob */
static void check_shared(Model *mg, Model *mcpu, const PairSet *ps, LossParams lp, bool bf16, const char *what) {
    Run g = {0}, c = {0};
    run_ex(mg, ps, lp, &g, true);
    run_ex(mcpu, ps, lp, &c, true);
    double worst = 0, gworst = 0;
    for (int s = 0; s < 12; s++) worst = fmax(worst, fabs(g.seq[s].sum - c.seq[s].sum) / fabs(c.seq[s].sum));
    for (int i = 0; i < mg->nspecs; i++) {
        const ParamSpec *p = &mg->specs[i];
        double maxc;
        size_t at;
        double d = fixture_max_diff(g.grads + p->offset, c.grads + p->offset, p->numel, &maxc, &at);
        gworst = fmax(gworst, d / fmax(maxc, 1e-30));
    }
    printf("%s, prefix sharing: log-probs %.3g relative, gradients %.3g of a tensor's max vs the CPU\n", what, worst,
           gworst);
    CHECK(bf16 ? worst <= 4 * U_BF16 : worst <= 1e-5 && gworst <= 2e-5,
          "%s, prefix sharing: log-probs %.3g, gradients %.3g from the CPU's", what, worst, gworst);
    free(g.grads), free(c.grads);
}

/* b against a, two runs that give the GEMMs the same values (a cached copy instead of a recomputation): bitwise the
 * same unless cuBLAS picks another kernel for another address, so within fp32 summation order (loss 1e-6
 * relative, every gradient 1e-5 of the largest, gmax); prints which */
static void check_same_values(const Run *b, const Run *a, size_t n, double gmax, const char *what) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)b->grads[i] - a->grads[i]));
    bool bitwise = memcmp(b->grads, a->grads, n * sizeof(float)) == 0 && b->loss == a->loss;
    printf("%s: %s (gradients %.3g of the max)\n", what, bitwise ? "bitwise the same" : "not bitwise", worst / gmax);
    CHECK(rel_ok(b->loss, a->loss, 1e-6) && worst <= 1e-5 * gmax,
          "%s: the results change: loss %.10g vs %.10g, gradients %.3g of the max", what, b->loss, a->loss,
          worst / gmax);
}

int main(void) {
    if (!cuda_device_available()) {
        printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    cuda_set_device_from_local_rank();
    const Backend *gpu = backend_cuda();
    printf("device: %s\n", cuda_device_name());
    size_t base = gpu->bytes_in_use();

    cJSON *exp = load_json("tiny-a/expected.json");
    ModelConfig mc = fixture_model_config();
    PairSet *ps = fixture_pairs(&mc);
    Model *mc_cpu = fixture_model(&mc, backend_cpu()), *mg = fixture_model(&mc, gpu);

    LossParams simpo = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    Run rc = {0}, rg = {0}, rg2 = {0};
    run(mc_cpu, ps, simpo, &rc);
    run(mg, ps, simpo, &rg);

    /* per-sequence log-probs: GPU vs CPU and vs the fixture */
    double worst_cpu = 0;
    for (int s = 0; s < 12; s++) {
        CHECK(rg.seq[s].n == rc.seq[s].n, "sequence %d: %d response tokens on the GPU, %d on the CPU", s,
              rg.seq[s].n, rc.seq[s].n);
        worst_cpu = fmax(worst_cpu, fabs(rg.seq[s].sum - rc.seq[s].sum) / fabs(rc.seq[s].sum));
    }
    printf("log-probs: worst relative difference %.3g vs CPU\n", worst_cpu);
    CHECK(worst_cpu <= 1e-5, "log-probs differ from the CPU backend by %.3g relative", worst_cpu);
    /* the metrics' logit sums (logits/chosen): per logit of the sequence's rows, the mean difference; fp32 logits
     * that agree to ~1e-6 (the log-probs' bound) agree on average at least as well */
    double worst_ls = 0;
    for (int s = 0; s < 12; s++)
        worst_ls = fmax(worst_ls, fabs(rg.seq[s].logit_sum - rc.seq[s].logit_sum) / ((double)rc.seq[s].n * mg->V));
    printf("logit sums: worst mean difference per logit %.3g vs CPU\n", worst_ls);
    CHECK(worst_ls <= 1e-6, "logit sums differ from the CPU backend by %.3g per logit", worst_ls);
    check_fixture_logprobs(exp, rg.seq, "GPU ");

    /* loss, metrics, grad norm */
    CHECK(rel_ok(rg.loss, rc.loss, 1e-5), "simpo loss %.10g vs CPU %.10g", rg.loss, rc.loss);
    for (int k = 0; k < 6; k++)
        CHECK(rel_ok(rg.met[k], rc.met[k], 1e-5), "%s %.10g vs CPU %.10g", fixture_metric_names[k], rg.met[k],
              rc.met[k]);
    CHECK(rel_ok(rg.gnorm, rc.gnorm, 1e-5), "grad norm %.10g vs CPU %.10g", rg.gnorm, rc.gnorm);
    check_fixture_step1(exp, rg.loss, rg.met, rg.gnorm);

    /* every gradient tensor, vs CPU and vs the fixture */
    double worst_rel = 0;
    for (int i = 0; i < mg->nspecs; i++) {
        const ParamSpec *p = &mg->specs[i];
        const float *g = rg.grads + p->offset, *c = rc.grads + p->offset;
        double maxc;
        size_t atc;
        double dc = fixture_max_diff(g, c, p->numel, &maxc, &atc);
        worst_rel = fmax(worst_rel, dc / fmax(maxc, 1e-30));
        CHECK(dc <= 2e-5 * maxc, "grad %s vs CPU: element %zu gpu %.8g cpu %.8g (max |cpu| %.3g)", p->name, atc,
              g[atc], c[atc], maxc);
    }
    printf("gradients: worst per-tensor difference vs CPU %.3g of the tensor's max\n", worst_rel);
    check_fixture_grads(mg, rg.grads);

    /* determinism: the same forward + backward again, bitwise */
    run(mg, ps, simpo, &rg2);
    int same = 1;
    for (int s = 0; s < 12; s++) same &= rg2.seq[s].sum == rg.seq[s].sum;
    CHECK(same, "log-probs of a second GPU run are bitwise identical");
    CHECK(memcmp(rg2.grads, rg.grads, mg->nparams * sizeof(float)) == 0,
          "gradients of a second GPU run are bitwise identical");

    check_shared(mg, mc_cpu, ps, simpo, false, "fp32");
    /* the sparse embedding gradient (model_enable_sparse_embed) on the GPU: the embedding backward on the renamed
     * ids and the views after grads_from give the dense model's log-probs, loss and gradients bit for bit, with and
     * without prefix sharing */
    for (int share = 0; share < 2; share++) {
        Model *sp = fixture_model(&mc, gpu);
        fixture_sparse_embed(sp, ps, share);
        FixtureResult rd = share ? fixture_run_shared(mg, ps, simpo) : fixture_run(mg, ps, simpo),
                      rs = share ? fixture_run_shared(sp, ps, simpo) : fixture_run(sp, ps, simpo);
        fixture_check_same(&rs, &rd, mg->nparams, share ? "GPU, prefix sharing: sparse embedding gradient vs dense"
                                                        : "GPU: sparse embedding gradient vs dense");
        free(rd.grads), free(rs.grads);
        model_free(sp);
    }
    /* other objectives: loss and grad norm vs CPU and fixture */
    for (int k = 0; k < 3; k++) {
        const FixtureObjective *o = &fixture_objectives[k];
        run(mc_cpu, ps, o->lp, &rc);
        run(mg, ps, o->lp, &rg);
        CHECK(rel_ok(rg.loss, rc.loss, 1e-5), "%s loss %.10g vs CPU %.10g", o->name, rg.loss, rc.loss);
        CHECK(rel_ok(rg.gnorm, rc.gnorm, 1e-5), "%s grad norm %.10g vs CPU %.10g", o->name, rg.gnorm, rc.gnorm);
        check_fixture_other(exp, o->name, rg.loss, rg.gnorm);
    }

    /* bf16 mode (model.dtype: bf16): tensor-core matmuls and attention against the fixture within the bf16 bounds of
     * fixture_bf16.h (the CPU emulation meets the same ones, test_bf16), near the CPU's bf16 emulation, and still
     * deterministic */
    run(mg, ps, simpo, &rg);
    SeqLogp f32_seq[12];
    memcpy(f32_seq, rg.seq, sizeof f32_seq);
    gpu->set_matmul_bf16(true);
    backend_cpu()->set_matmul_bf16(true);
    run(mg, ps, simpo, &rg);
    run(mc_cpu, ps, simpo, &rc);
    check_fixture_bf16(exp, mg, rg.seq, rg.loss, rg.met, rg.gnorm, rg.grads, f32_seq, "GPU ");
    double worst_b = 0;
    for (int s = 0; s < 12; s++) worst_b = fmax(worst_b, fabs(rg.seq[s].sum - rc.seq[s].sum) / fabs(rc.seq[s].sum));
    printf("bf16 log-probs: worst relative difference %.3g vs the CPU's bf16 emulation\n", worst_b);
    CHECK(worst_b <= 4 * U_BF16, "bf16 log-probs differ from the CPU emulation by %.3g relative", worst_b);
    run(mg, ps, simpo, &rg2);
    CHECK(memcmp(rg2.grads, rg.grads, mg->nparams * sizeof(float)) == 0 && rg2.loss == rg.loss,
          "a second bf16 GPU run is bitwise identical");
    /* bf16 activation storage (model.h act16): a GPU model made in the bf16 mode keeps ln1, ln2 and h as bf16; the
     * same bf16 values reach the same GEMMs, so it matches the fp32-storage run above to fp32 summation order
     * (bitwise under the CPU emulation) and holds the fixture's bf16 bounds */
    {
        Model *m16 = fixture_model(&mc, gpu);
        CHECK(m16->act16, "a GPU model made in the bf16 mode stores bf16 activations");
        Run r16 = {0};
        run(m16, ps, simpo, &r16);
        check_fixture_bf16(exp, m16, r16.seq, r16.loss, r16.met, r16.gnorm, r16.grads, f32_seq, "GPU bf16 storage ");
        double worst_s = 0, worst_g = 0, gmax = 0;
        for (int s = 0; s < 12; s++)
            worst_s = fmax(worst_s, fabs(r16.seq[s].sum - rg.seq[s].sum) / fabs(rg.seq[s].sum));
        for (size_t i = 0; i < m16->nparams; i++) {
            worst_g = fmax(worst_g, fabs((double)r16.grads[i] - rg.grads[i]));
            gmax = fmax(gmax, fabs(rg.grads[i]));
        }
        printf("bf16 storage vs fp32 storage (both bf16 mode): log-probs %.3g relative, gradients %.3g of the max\n",
               worst_s, worst_g / gmax);
        CHECK(worst_s <= 1e-5 && worst_g <= 1e-5 * gmax, "bf16 storage differs from fp32 storage: %.3g / %.3g",
              worst_s, worst_g / gmax);
        /* bf16 compute weights (model.h model_enable_weights16): the matmuls read the same bf16 weights from the
         * copy, so the results are those above */
        model_enable_weights16(m16);
        model_refresh_weights16(m16);
        Run rw = {0};
        run(m16, ps, simpo, &rw);
        check_same_values(&rw, &r16, m16->nparams, gmax, "bf16 compute weights vs rounding in every matmul");
        /* the LM-head logits cache (model.h model_enable_head_cache): the backward reads the forward's logits
         * instead of a recomputation that gives the same values */
        model_enable_head_cache(m16, 0);
        Run rh = {0};
        run(m16, ps, simpo, &rh);
        CHECK(m16->head_cache_slot == -1, "the backward read the cached logits");
        check_same_values(&rh, &rw, m16->nparams, gmax, "LM-head logits cache vs recomputing the logits");
        free(rw.grads), free(rh.grads);
        free(r16.grads);
        model_free(m16);
    }
    /* autocast storage (model.bf16_storage: autocast): the gate / up projections written as bf16 by the GEMM
     * (matmul16_out16) and read as bf16 by the activation: the fixture's bf16 bounds, near the CPU's autocast run
     * (the same operands; sums in another order, so a rounded g or u may differ by one bf16 step) */
    {
        Model *ma = fixture_model_autocast(&mc, gpu), *mac = fixture_model_autocast(&mc, backend_cpu());
        CHECK(ma->proj16 && mac->proj16, "autocast storage on the GPU and the CPU");
        Run ra = {0}, rac = {0};
        run(ma, ps, simpo, &ra);
        run(mac, ps, simpo, &rac);
        check_fixture_bf16(exp, ma, ra.seq, ra.loss, ra.met, ra.gnorm, ra.grads, f32_seq, "GPU autocast ");
        double worst_a = 0;
        for (int s = 0; s < 12; s++)
            worst_a = fmax(worst_a, fabs(ra.seq[s].sum - rac.seq[s].sum) / fabs(rac.seq[s].sum));
        printf("autocast log-probs: worst relative difference %.3g vs the CPU's autocast run\n", worst_a);
        CHECK(worst_a <= 4 * U_BF16, "autocast log-probs differ from the CPU's by %.3g relative", worst_a);
        check_shared(ma, mac, ps, simpo, true, "autocast"); /* q, k, v rows gathered as bf16, dk / dv summed in bf16 */
        /* the LM head in autocast storage (model.h head16): bf16 logits, kept in a bf16 logits cache and turned into
         * d(logits) in place by the backward: the results of recomputing them */
        CHECK(ma->head16, "autocast storage keeps the LM head's logits in bf16");
        double amax = 0;
        for (size_t i = 0; i < ma->nparams; i++) amax = fmax(amax, fabs(ra.grads[i]));
        Run ra2 = {0}, rah = {0};
        run(ma, ps, simpo, &ra2); /* the same model again, after check_shared: the reference of the cached run */
        model_enable_head_cache(ma, 0);
        run(ma, ps, simpo, &rah);
        CHECK(ma->head_cache_slot == -1, "the autocast backward read the cached bf16 logits");
        check_same_values(&rah, &ra2, ma->nparams, amax, "autocast: bf16 LM-head logits cache vs recomputing them");
        /* a partial cache (train.lmhead_cache: auto where not all fit): 16-row chunks, the first two kept, the rest
         * recomputed; the chunks' offsets into the cache and the recomputed ones' into the chunk buffer */
        setenv("SIMPO_LMHEAD_CHUNK_ROWS", "16", 1);
        Model *mp = fixture_model_autocast(&mc, gpu);
        Run rp0 = {0}, rp = {0};
        run(mp, ps, simpo, &rp0);
        model_enable_head_cache(mp, 32);
        CHECK(mp->head_cache_rows == 32, "a partial cache of two 16-row chunks (%zu rows)", mp->head_cache_rows);
        run(mp, ps, simpo, &rp);
        unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");
        CHECK(mp->head_cache_slot == -1, "the autocast backward read the partial cache");
        check_same_values(&rp, &rp0, mp->nparams, amax, "autocast: a partial LM-head logits cache vs recomputing");
        free(rp0.grads), free(rp.grads);
        model_free(mp);
        free(ra2.grads), free(rah.grads);
        free(ra.grads), free(rac.grads);
        model_free(ma), model_free(mac);
    }
    /* prefix sharing at head dim 64 (tiny-a's 16 never reaches the tensor cores): attention in the layers' rows
     * (backend.h attn_fwd_b16_rows / attn_bwd_b16_rows in autocast storage, attn_fwd_rows / attn_bwd_rows in exact
     * storage; version 4: nothing gathered) inside the model, on random weights: near the CPU's run (its rows ops),
     * and against the same GPU model with them off (SIMPO_CUDA_ATTN_ROWS=0: attention's layout gathered): log-probs
     * bitwise (the forward's out and lse are), the gradients within the bf16 bounds (the prompt's dk, dv summed
     * once instead of rounded and summed) */
    for (int ac = 1; ac >= 0; ac--) { /* autocast storage (attn_*_b16_rows), then exact storage (attn_*_rows) */
        const char *st = ac ? "autocast" : "exact";
        ModelConfig m64 = mc;
        m64.num_attention_heads = 2, m64.num_key_value_heads = 1, m64.head_dim = 64;
        ModelOpts o = {.autocast16 = ac};
        Model *ga = model_create_opts(&m64, gpu, 256, NULL, 1, &o);
        Model *ca = model_create_opts(&m64, backend_cpu(), 256, NULL, 1, &o);
        model_init_random(ga, 11), model_init_random(ca, 11);
        const long c0 = cuda_attn_rows_calls();
        CHECK(ga->proj16 == ac && ca->proj16 == ac, "head dim 64: %s storage on the GPU and the CPU", st);
        char nm[64];
        snprintf(nm, sizeof nm, "%s, head dim 64", st);
        check_shared(ga, ca, ps, simpo, true, nm);
        CHECK(cuda_attn_rows_calls() - c0 == 2L * m64.num_hidden_layers,
              "head dim 64, %s: %ld calls of the rows ops, expected a forward and a backward per layer", st,
              cuda_attn_rows_calls() - c0);
        Run rr = {0}, rx = {0};
        run_ex(ga, ps, simpo, &rr, true);
        setenv("SIMPO_CUDA_ATTN_ROWS", "0", 1);
        const long c1 = cuda_attn_rows_calls();
        run_ex(ga, ps, simpo, &rx, true);
        unsetenv("SIMPO_CUDA_ATTN_ROWS");
        CHECK(cuda_attn_rows_calls() == c1, "SIMPO_CUDA_ATTN_ROWS=0 still took the rows ops");
        int same = 1;
        for (int s = 0; s < 12; s++) same &= rr.seq[s].sum == rx.seq[s].sum;
        CHECK(same, "head dim 64, %s, prefix sharing: log-probs in the layers' rows not bitwise the gathered run's",
              st);
        double gw = 0;
        for (int i = 0; i < ga->nspecs; i++) {
            const ParamSpec *p = &ga->specs[i];
            double maxc;
            size_t at;
            gw = fmax(gw, fixture_max_diff(rr.grads + p->offset, rx.grads + p->offset, p->numel, &maxc, &at) /
                              fmax(maxc, 1e-30));
        }
        printf("head dim 64, %s, prefix sharing: layers' rows vs gathered: log-probs bitwise, gradients %.3g of a "
               "tensor's max\n", st, gw);
        /* (autocast: the prompt's dk, dv rounded to bf16 once rather than twice must show; exact storage: fp32
         * sums in another order, which the weight gradients' bf16 operands may round away) */
        CHECK((gw > 0 || !ac) && gw <= 16 * U_BF16,
              "head dim 64, %s: gradients %.3g of a tensor's max from the gathered run's", st, gw);
        free(rr.grads), free(rx.grads);
        model_free(ga), model_free(ca);
    }
    /* Qwen2 (tiny-q2: biases on q, k, v; backend.h bias_add / bias_grad and their bf16 forms) and Qwen3 (tiny-q3: an
     * RMSNorm over each head of q and k, rows of head_dim): fp32 against the fixtures' float64 numbers (their README's
     * bounds), then autocast storage within the bf16 bounds: Qwen2's biases added to bf16 q, k, v, their gradients
     * summed from the packed bf16 rows; Qwen3's norms on bf16 rows (rmsnorm_fwd_b16 / rmsnorm_bwd_b16); and Mistral
     * v0.1 (tiny-m1: a sliding window of 8 on every layer, past which its sequences run: attention with options) */
    const char *qfx[3] = {"tiny-q2", "tiny-q3", "tiny-m1"};
    for (int f = 0; f < 3; f++) {
        const char *fx = qfx[f];
        char rel[4][64];
        snprintf(rel[0], sizeof rel[0], "%s/model", fx);
        snprintf(rel[1], sizeof rel[1], "%s/pairs.jsonl", fx);
        snprintf(rel[2], sizeof rel[2], "%s/expected.json", fx);
        snprintf(rel[3], sizeof rel[3], "%s/grads.safetensors", fx);
        char *qdir = fixture_path(rel[0]), *qpp = fixture_path(rel[1]);
        cJSON *qexp = load_json(rel[2]);
        ModelConfig qc = model_config_load(qdir);
        PairSet *qps = pairs_load_jsonl(qpp, qc.vocab_size);
        gpu->set_matmul_bf16(false);
        Model *q32 = model_create(&qc, gpu, 256, NULL, 1);
        model_load_hf(q32, qdir);
        Run rq = {0};
        run(q32, qps, simpo, &rq);
        char tag[64];
        snprintf(tag, sizeof tag, "GPU %s ", fx);
        check_fixture_logprobs(qexp, rq.seq, tag);
        check_fixture_step1(qexp, rq.loss, rq.met, rq.gnorm);
        g2_check_grads(q32, rq.grads, rel[3]);
        gpu->set_matmul_bf16(true);
        ModelOpts qo = {.autocast16 = true};
        Model *qa = model_create_opts(&qc, gpu, 256, NULL, 1, &qo);
        model_load_hf(qa, qdir);
        CHECK(qa->proj16 && qa->bwd_pack, "%s on the GPU: autocast storage, the projections' backward packed", fx);
        Run rqa = {0};
        run(qa, qps, simpo, &rqa);
        snprintf(tag, sizeof tag, "GPU %s bf16 ", fx);
        check_fixture_bf16_at(qexp, qa, rqa.seq, rqa.loss, rqa.met, rqa.gnorm, rqa.grads, rq.seq, tag, rel[3]);
        free(rq.grads), free(rqa.grads);
        model_free(q32), model_free(qa);
        pairs_free(qps);
        cJSON_Delete(qexp);
        free(qdir), free(qpp);
    }
    gpu->set_matmul_bf16(false);
    backend_cpu()->set_matmul_bf16(false);

    model_free(mg);
    model_free(mc_cpu);
    CHECK(gpu->bytes_in_use() == base, "device memory after model_free: %zu bytes held (expected %zu)",
          gpu->bytes_in_use(), base);
    free(rc.grads), free(rg.grads), free(rg2.grads);
    pairs_free(ps);
    cJSON_Delete(exp);
    TEST_END();
}
