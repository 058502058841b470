/* test_head_cache.c — the LM-head logits cache (model.h model_enable_head_cache, train.lmhead_cache): the backward
 * reads the logits its forward left instead of recomputing them, so every result must be bitwise that of the model
 * without the cache:
 *   1. tiny-a, fp32 and the bf16 mode (whose backward writes bf16 d(logits) from the cached fp32 logits), on the CPU
 *      and the strict backend (which checks every chunk's offset into the cache), one LM-head chunk and 7-row
 *      chunks (SIMPO_LMHEAD_CHUNK_ROWS);
 *   2. three micro-batches in flight (three forwards, then three backwards): only the last forward's slot may use
 *      the cache, the others recompute; the results are those without the cache;
 *   3. Gemma 2 (tiny-g2, final logit soft-capping: the cache holds the logits before the cap and the backward's cap
 *      gradient reads them), fp32 and bf16;
 *   4. memory: exactly the planned bytes (plan.c head_cache: max_tokens x vocab fp32).
 */
#include <stdlib.h>
#include <string.h>
#include "fixture_common.h"
#include "model.h"
#include "plan.h"
#include "test_util.h"

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};

/* model of mc (weights from dir) on be with nslots slots, with or without the cache; *cache_bytes: what the cache
 * allocated */
static Model *make(const ModelConfig *mc, const char *dir, const Backend *be, int nslots, bool cache,
                   size_t *cache_bytes) {
    Model *m = model_create(mc, be, 256, NULL, nslots);
    model_load_hf(m, dir);
    size_t before = be->bytes_in_use();
    if (cache) model_enable_head_cache(m);
    if (cache_bytes) *cache_bytes = be->bytes_in_use() - before;
    return m;
}

/* the model of dir with and without the cache, one micro-batch, in the backend's current precision */
static void check_same(const char *dir, const PairSet *ps, const Backend *be, const char *what) {
    ModelConfig mc = model_config_load(dir);
    size_t bytes;
    Model *a = make(&mc, dir, be, 1, false, NULL), *b = make(&mc, dir, be, 1, true, &bytes);
    FixtureResult ra = fixture_run(a, ps, SIMPO), rb = fixture_run(b, ps, SIMPO);
    fixture_check_same(&rb, &ra, a->nparams, what);
    CHECK(b->head_cache_slot == -1, "%s: the backward used the cached logits", what);
    PlanLayout pl = {mc, 1, 1, 1, 0, 0, 0, 0, 256, 1, 0, false, false, true, false, false, 0};
    size_t planned = plan_memory(&pl).head_cache;
    CHECK(bytes == planned && bytes == 256 * (size_t)mc.vocab_size * 4, "%s: the cache takes %zu bytes, planned %zu",
          what, bytes, planned);
    free(ra.grads), free(rb.grads);
    model_free(a), model_free(b);
}

int main(void) {
    char *ta = fixture_path("tiny-a/model"), *g2 = fixture_path("tiny-g2/model");
    char *g2p = fixture_path("tiny-g2/pairs.jsonl");
    ModelConfig mca = model_config_load(ta), mcg = model_config_load(g2);
    PairSet *psa = fixture_pairs(&mca), *psg = pairs_load_jsonl(g2p, mcg.vocab_size);
    CHECK(mcg.final_logit_softcapping > 0, "tiny-g2 caps its final logits (the soft-cap path is tested)");
    const Backend *bes[2] = {backend_cpu(), backend_cpu_strict()};
    const char *rows[2] = {NULL, "7"};
    for (int r = 0; r < 2; r++) {
        if (rows[r]) setenv("SIMPO_LMHEAD_CHUNK_ROWS", rows[r], 1);
        else unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");
        for (int b = 0; b < 2; b++)
            for (int bf = 0; bf < 2; bf++) {
                const Backend *be = bes[b];
                be->set_matmul_bf16(bf);
                char what[128];
                snprintf(what, sizeof what, "tiny-a, %s, %s, %s", be->name, bf ? "bf16" : "fp32",
                         rows[r] ? "7-row chunks" : "one chunk");
                check_same(ta, psa, be, what);
                snprintf(what, sizeof what, "tiny-g2 (soft-capped logits), %s, %s, %s", be->name,
                         bf ? "bf16" : "fp32", rows[r] ? "7-row chunks" : "one chunk");
                check_same(g2, psg, be, what);
                be->set_matmul_bf16(false);
            }
    }
    unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");

    /* three micro-batches in flight: slot 2's forward ran last, so only its backward finds its logits cached */
    Model *a = make(&mca, ta, backend_cpu(), 3, false, NULL), *b = make(&mca, ta, backend_cpu(), 3, true, NULL);
    FixtureResult ra = fixture_run_three_in_flight(a, psa), rb = fixture_run_three_in_flight(b, psa);
    fixture_check_same(&rb, &ra, a->nparams, "three in flight, with the cache vs without");
    free(ra.grads), free(rb.grads);
    model_free(a), model_free(b);

    pairs_free(psa), pairs_free(psg);
    free(ta), free(g2), free(g2p);
    TEST_END();
}
