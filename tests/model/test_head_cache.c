/* test_head_cache.c — the LM-head logits cache (model.h model_enable_head_cache, train.lmhead_cache): the backward
 * reads the logits its forward left instead of recomputing them, so every result must be bitwise that of the model
 * without the cache:
 *   1. tiny-a, fp32, the bf16 mode (whose backward writes bf16 d(logits) from the cached fp32 logits) and autocast
 *      storage (bf16 logits in a bf16 cache, turned into d(logits) in place), on the CPU and the strict backend
 *      (which checks every chunk's offset into the cache), one LM-head chunk and 7-row chunks
 *      (SIMPO_LMHEAD_CHUNK_ROWS), the cache sized for max_tokens rows and for the micro-batch's log-prob rows
 *      (ModelOpts.max_lp_rows);
 *   2. three micro-batches in flight (three forwards, then three backwards): only the last forward's slot may use
 *      the cache, the others recompute; the results are those without the cache;
 *   3. Gemma 2 (tiny-g2, final logit soft-capping: the cache holds the logits before the cap and the backward's cap
 *      gradient reads them; fp32 logits even in autocast storage), fp32 and bf16;
 *   4. memory: exactly the planned bytes (plan.c head_cache: rows x vocab, 4 bytes, or 2 for bf16 logits);
 *   5. a micro-batch with more log-prob rows than the cache holds is an error, not a write past it.
 */
#include <stdlib.h>
#include <string.h>
#include "fixture_common.h"
#include "model.h"
#include "plan.h"
#include "test_util.h"

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};

/* model of mc (weights from dir) on be with nslots slots, with or without the cache (autocast: model.bf16_storage
 * autocast, in the bf16 mode; lp_rows: ModelOpts.max_lp_rows); *cache_bytes: what the cache allocated */
static Model *make(const ModelConfig *mc, const char *dir, const Backend *be, int nslots, bool cache, bool autocast,
                   size_t lp_rows, size_t *cache_bytes) {
    ModelOpts o = {0, autocast, false, 0, lp_rows, 0};
    Model *m = model_create_opts(mc, be, 256, NULL, nslots, &o);
    model_load_hf(m, dir);
    size_t before = be->bytes_in_use();
    if (cache) model_enable_head_cache(m);
    if (cache_bytes) *cache_bytes = be->bytes_in_use() - before;
    return m;
}

/* the model of dir with and without the cache, one micro-batch of the fixture's six pairs, in the backend's current
 * precision */
static void check_same(const char *dir, const PairSet *ps, const Backend *be, bool autocast, size_t lp_rows,
                       const char *what) {
    ModelConfig mc = model_config_load(dir);
    size_t bytes;
    Model *a = make(&mc, dir, be, 1, false, autocast, lp_rows, NULL), *b = make(&mc, dir, be, 1, true, autocast,
                                                                                 lp_rows, &bytes);
    FixtureResult ra = fixture_run(a, ps, SIMPO), rb = fixture_run(b, ps, SIMPO);
    fixture_check_same(&rb, &ra, a->nparams, what);
    CHECK(b->head_cache_slot == -1, "%s: the backward used the cached logits", what);
    bool bf16 = be->matmul_bf16_on(), head16 = b->head16;
    CHECK(head16 == (bf16 && autocast && mc.final_logit_softcapping == 0), "%s: bf16 logits %s", what,
          head16 ? "on" : "off");
    PlanLayout pl = {mc, 1, 1, 1, 0, 0, 0, 0, 256, 1, 0, bf16, false, true, bf16 && autocast, false, 0, lp_rows, 0};
    size_t planned = plan_memory(&pl).head_cache, rows = model_arena_tokens(lp_rows ? lp_rows : 256);
    CHECK(bytes == planned && bytes == rows * (size_t)mc.vocab_size * (head16 ? 2 : 4),
          "%s: the cache takes %zu bytes, planned %zu", what, bytes, planned);
    free(ra.grads), free(rb.grads);
    model_free(a), model_free(b);
}

/* 5: the cache sized for fewer rows than the micro-batch has */
typedef struct {
    const char *dir;
    const PairSet *ps;
    size_t rows;
} Small;
static void run_small(void *arg) {
    const Small *s = arg;
    ModelConfig mc = model_config_load(s->dir);
    Model *m = make(&mc, s->dir, backend_cpu(), 1, true, false, s->rows, NULL);
    fixture_run(m, s->ps, SIMPO);
}

int main(void) {
    char *ta = fixture_path("tiny-a/model"), *g2 = fixture_path("tiny-g2/model");
    char *g2p = fixture_path("tiny-g2/pairs.jsonl");
    ModelConfig mca = model_config_load(ta), mcg = model_config_load(g2);
    PairSet *psa = fixture_pairs(&mca), *psg = pairs_load_jsonl(g2p, mcg.vocab_size);
    CHECK(mcg.final_logit_softcapping > 0, "tiny-g2 caps its final logits (the soft-cap path is tested)");
    const Backend *bes[2] = {backend_cpu(), backend_cpu_strict()};
    const char *rows[2] = {NULL, "7"};
    size_t lp = pairs_largest_logprob_rows(psa, 6), lpg = pairs_largest_logprob_rows(psg, 6);
    CHECK(model_arena_tokens(lp) < 256, "tiny-a's %zu log-prob rows take fewer rows than max_tokens", lp);
    for (int r = 0; r < 2; r++) {
        if (rows[r]) setenv("SIMPO_LMHEAD_CHUNK_ROWS", rows[r], 1);
        else unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");
        for (int b = 0; b < 2; b++)
            for (int mode = 0; mode < 3; mode++) { /* fp32, bf16 (exact storage), bf16 autocast */
                const Backend *be = bes[b];
                be->set_matmul_bf16(mode > 0);
                bool ac = mode == 2;
                static const char *const names[3] = {"fp32", "bf16", "bf16 autocast"};
                for (int sized = 0; sized < 2; sized++) {
                    char what[160];
                    snprintf(what, sizeof what, "tiny-a, %s, %s, %s, cache of %s rows", be->name, names[mode],
                             rows[r] ? "7-row chunks" : "one chunk", sized ? "log-prob" : "max_tokens");
                    check_same(ta, psa, be, ac, sized ? lp : 0, what);
                    snprintf(what, sizeof what, "tiny-g2 (soft-capped logits), %s, %s, %s, cache of %s rows",
                             be->name, names[mode], rows[r] ? "7-row chunks" : "one chunk",
                             sized ? "log-prob" : "max_tokens");
                    check_same(g2, psg, be, ac, sized ? lpg : 0, what);
                }
                be->set_matmul_bf16(false);
            }
    }
    unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");
    Small sm = {ta, psa, lp - 16};
    CHECK(expect_die(run_small, &sm, "more than the"), "a micro-batch larger than the logits cache is an error");

    /* three micro-batches in flight: slot 2's forward ran last, so only its backward finds its logits cached */
    Model *a = make(&mca, ta, backend_cpu(), 3, false, false, 0, NULL),
          *b = make(&mca, ta, backend_cpu(), 3, true, false, 0, NULL);
    FixtureResult ra = fixture_run_three_in_flight(a, psa), rb = fixture_run_three_in_flight(b, psa);
    fixture_check_same(&rb, &ra, a->nparams, "three in flight, with the cache vs without");
    free(ra.grads), free(rb.grads);
    model_free(a), model_free(b);

    pairs_free(psa), pairs_free(psg);
    free(ta), free(g2), free(g2p);
    TEST_END();
}
