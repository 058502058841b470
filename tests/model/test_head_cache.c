/* test_head_cache.c — the LM-head logits cache (model.h model_enable_head_cache, train.lmhead_cache): the backward
 * reads the logits its forward left instead of recomputing them (all of them, or the first whole chunks of a partial
 * cache, recomputing the rest), so every result must be bitwise that of the model without the cache in chunks of
 * the same rows (a whole cache that is the logits' only home runs one chunk of all the rows, lmhead.c
 * model_head_one_chunk, whenever it is fp32 or autocast storage's bf16 and not soft-capped; so its reference runs
 * without the cache in one chunk, SIMPO_LMHEAD_CHUNK_ROWS; the 7-row run's head weight gradient, summed chunk by
 * chunk, differs in its last bits, and on the CPU even its fp32 logits, whose GEMM sums depend on the rows):
 *   1. tiny-a, fp32, the bf16 mode (whose backward writes bf16 d(logits) from the cached fp32 logits) and autocast
 *      storage (bf16 logits in a bf16 cache, turned into d(logits) in place), on the CPU and the strict backend
 *      (which checks every chunk's offset into the cache), one LM-head chunk and 7-row chunks
 *      (SIMPO_LMHEAD_CHUNK_ROWS), the cache sized for max_tokens rows and for the micro-batch's log-prob rows
 *      (ModelOpts.max_lp_rows);
 *   2. three micro-batches in flight (three forwards, then three backwards, in reverse or forward order): only the
 *      last forward's slot may use the cache, and only if no other backward came first; the others recompute; the
 *      results are those without the cache;
 *   3. Gemma 2 (tiny-g2, final logit soft-capping: the cache holds the logits before the cap and the backward's cap
 *      gradient reads them; fp32 logits even in autocast storage), fp32 and bf16;
 *   4. memory: exactly the planned bytes (plan.c: the cache of rows x vocab, 4 bytes, or 2 for bf16 logits, lies
 *      over the layers' gradient scratch with the chunk buffers, which a full cache spares the chunk's own logits);
 *   5. partial caches of 7-row chunks: 7 and 14 rows asked (one and two of the micro-batch's chunks), 10 asked
 *      (rounded down to one chunk), 3 asked (no whole chunk: no cache), on both backends in each precision, tiny-g2
 *      included (the strict backend fails a chunk read from the cache where its forward did not write, or a write
 *      past it); and a model sized for fewer log-prob rows than the micro-batch has refuses it;
 *   6. plan_head_cache_fit (train.lmhead_cache: auto's size): all rows with room, the most whole chunks a budget
 *      between holds, none below one chunk, none for fp32 logits.
 */
#include <stdlib.h>
#include <string.h>
#include "fixture_common.h"
#include "model.h"
#include "model_internal.h"
#include "plan.h"
#include "test_util.h"

static const LossParams SIMPO = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};

/* model of mc (weights from dir) on be with nslots slots, with or without the cache of `rows` rows asked (0: all;
 * autocast: model.bf16_storage autocast, in the bf16 mode; lp_rows: ModelOpts.max_lp_rows); *cache_bytes: what the
 * cache allocated */
static Model *make(const ModelConfig *mc, const char *dir, const Backend *be, int nslots, bool cache, size_t rows,
                   bool autocast, size_t lp_rows, size_t *cache_bytes) {
    ModelOpts o = {.autocast16 = autocast, .max_lp_rows = lp_rows};
    Model *m = model_create_opts(mc, be, 256, NULL, nslots, &o);
    model_load_hf(m, dir);
    size_t before = be->bytes_in_use();
    if (cache) model_enable_head_cache(m, rows);
    if (cache_bytes) *cache_bytes = be->bytes_in_use() - before;
    return m;
}

/* the model of dir with and without the cache (rows asked, 0: all), one micro-batch of the fixture's six pairs, in
 * the backend's current precision; held: the rows the cache must hold (0: none) */
static void check_same(const char *dir, const PairSet *ps, const Backend *be, bool autocast, size_t lp_rows,
                       size_t rows, size_t held, const char *what) {
    ModelConfig mc = model_config_load(dir);
    size_t bytes;
    Model *b = make(&mc, dir, be, 1, true, rows, autocast, lp_rows, &bytes);
    /* the reference in the cached model's chunks: one of all the rows where the whole cache made it so */
    const char *env = getenv("SIMPO_LMHEAD_CHUNK_ROWS");
    char *saved = env ? strdup(env) : NULL, one[32];
    bool whole = model_head_one_chunk(b);
    if (whole) snprintf(one, sizeof one, "%zu", model_head_chunk(b)), setenv("SIMPO_LMHEAD_CHUNK_ROWS", one, 1);
    Model *a = make(&mc, dir, be, 1, false, 0, autocast, lp_rows, NULL);
    if (saved) setenv("SIMPO_LMHEAD_CHUNK_ROWS", saved, 1), free(saved);
    else unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");
    CHECK(b->acts[0].chunk == a->acts[0].chunk, "%s: chunks of %d rows with the cache, %d without", what,
          b->acts[0].chunk, a->acts[0].chunk);
    CHECK(whole == (held == b->max_lp && mc.final_logit_softcapping == 0 && !(be->matmul_bf16_on() && !autocast)),
          "%s: one chunk of all the rows %s", what, whole ? "on" : "off");
    FixtureResult ra = fixture_run(a, ps, SIMPO), rb = fixture_run(b, ps, SIMPO);
    fixture_check_same(&rb, &ra, a->nparams, what);
    CHECK(b->head_cache_rows == held, "%s: the cache holds %zu rows (want %zu)", what, b->head_cache_rows, held);
    CHECK(b->head_cache_slot == -1, "%s: no cached logits left after the backward", what);
    bool bf16 = be->matmul_bf16_on(), head16 = b->head16;
    CHECK(head16 == (bf16 && autocast && mc.final_logit_softcapping == 0), "%s: bf16 logits %s", what,
          head16 ? "on" : "off");
    PlanLayout pl = {mc, 1, 1, 1, 0, 0, 0, 0, 256, 1, 0, bf16, false, true, bf16 && autocast, false, 0, lp_rows, 0,
                     rows, false, false, false, false};
    MemPlan with = plan_memory(&pl);
    pl.lmhead_cache = false;
    MemPlan without = plan_memory(&pl);
    /* the cache lies over the layers' gradient scratch with the head's chunk buffers (lmhead.c): the model grows by
     * what the head's region then holds beyond that scratch, as planned, and never by more than the cache */
    size_t cache = held * (size_t)mc.vocab_size * (head16 ? 2 : 4);
    CHECK(bytes == with.total - without.total && with.head_cache == cache && bytes <= cache,
          "%s: the cache of %zu bytes adds %zu, planned %zu", what, cache, bytes, with.total - without.total);
    free(ra.grads), free(rb.grads);
    model_free(a), model_free(b);
}

/* the plan of layout l with a logits cache of `rows` rows (0: all) */
static size_t plan_with_rows(PlanLayout l, size_t rows) {
    l.lmhead_cache = true;
    l.lmhead_cache_rows = rows;
    return plan_memory(&l).total;
}

/* a model with the whole logits cache, sized for `lp` log-prob rows, given the fixture's micro-batch (expect_die) */
typedef struct {
    const ModelConfig *mc;
    const char *dir;
    const PairSet *ps;
    size_t lp;
} OverLp;
static void over_lp(void *arg) {
    const OverLp *o = arg;
    Model *m = make(o->mc, o->dir, backend_cpu(), 1, true, 0, false, o->lp, NULL);
    FixtureResult r = fixture_run(m, o->ps, SIMPO);
    free(r.grads);
    model_free(m);
}

int main(void) {
    char *ta = fixture_path("tiny-a/model"), *g2 = fixture_path("tiny-g2/model");
    char *g2p = fixture_path("tiny-g2/pairs.jsonl");
    ModelConfig mca = model_config_load(ta), mcg = model_config_load(g2);
    PairSet *psa = fixture_pairs(&mca), *psg = pairs_load_jsonl(g2p, mcg.vocab_size);
    CHECK(mcg.final_logit_softcapping > 0, "tiny-g2 caps its final logits (the soft-cap path is tested)");
    const Backend *bes[2] = {backend_cpu(), backend_cpu_strict()};
    static const char *const names[3] = {"fp32", "bf16", "bf16 autocast"};
    const char *rows[2] = {NULL, "7"};
    size_t lp = pairs_largest_logprob_rows(psa, 6), lpg = pairs_largest_logprob_rows(psg, 6);
    CHECK(model_arena_tokens(lp) < 256, "tiny-a's %zu log-prob rows take fewer rows than max_tokens", lp);
    CHECK(lp > 14 && lpg > 14, "the fixtures' micro-batches have more than two 7-row chunks (%zu, %zu rows)", lp, lpg);
    for (int r = 0; r < 2; r++) {
        if (rows[r]) setenv("SIMPO_LMHEAD_CHUNK_ROWS", rows[r], 1);
        else unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");
        for (int b = 0; b < 2; b++)
            for (int mode = 0; mode < 3; mode++) { /* fp32, bf16 (exact storage), bf16 autocast */
                const Backend *be = bes[b];
                be->set_matmul_bf16(mode > 0);
                bool ac = mode == 2;
                char what[160];
                for (int sized = 0; sized < 2; sized++) {
                    snprintf(what, sizeof what, "tiny-a, %s, %s, %s, cache of %s rows", be->name, names[mode],
                             rows[r] ? "7-row chunks" : "one chunk", sized ? "log-prob" : "max_tokens");
                    check_same(ta, psa, be, ac, sized ? lp : 0, 0, model_arena_tokens(sized ? lp : 256), what);
                    snprintf(what, sizeof what, "tiny-g2 (soft-capped logits), %s, %s, %s, cache of %s rows",
                             be->name, names[mode], rows[r] ? "7-row chunks" : "one chunk",
                             sized ? "log-prob" : "max_tokens");
                    check_same(g2, psg, be, ac, sized ? lpg : 0, 0, model_arena_tokens(sized ? lpg : 256), what);
                }
                /* 5: partial caches of 7-row chunks */
                static const size_t ask[4] = {7, 14, 10, 3}, held[4] = {7, 14, 7, 0};
                for (int k = 0; rows[r] && k < 4; k++) {
                    snprintf(what, sizeof what, "tiny-a, %s, %s, partial cache, %zu rows asked", be->name,
                             names[mode], ask[k]);
                    check_same(ta, psa, be, ac, lp, ask[k], held[k], what);
                    snprintf(what, sizeof what, "tiny-g2, %s, %s, partial cache, %zu rows asked", be->name,
                             names[mode], ask[k]);
                    check_same(g2, psg, be, ac, lpg, ask[k], held[k], what);
                }
                be->set_matmul_bf16(false);
            }
        /* 5: a model sized for 16 log-prob rows fewer than the micro-batch has (ModelOpts.max_lp_rows, with the
         * cache of all those rows): the forward refuses the micro-batch, naming the bound */
        OverLp ov = {&mca, ta, psa, lp - 16};
        CHECK(expect_die(over_lp, &ov, "more than the"), "%s: a micro-batch over max_lp_rows is refused",
              rows[r] ? "7-row chunks" : "one chunk");
    }

    /* 6: plan_head_cache_fit on tiny-a's log-prob rows in 7-row chunks, autocast bf16: all rows with room; under a
     * budget short of that, the most whole chunks whose plan fits it (the cache lies over the layers' gradient
     * scratch, so a plan grows with the rows only once the head's region outgrows that scratch); none when not one
     * chunk fits */
    PlanLayout fl = {mca, 1, 1, 1, 0, 0, 0, 0, 256, 1, 0, true, false, false, true, false, 0, lp, 0, 0, false, false, false, false};
    size_t without = plan_memory(&fl).total, all = model_arena_tokens(lp);
    size_t plan_all = plan_with_rows(fl, 0);
    CHECK(plan_all == without, "tiny-a: the whole cache (%zu bytes) fits under the layers' scratch: no more memory "
          "(%zu planned with it, %zu without)", all * 2 * (size_t)mca.vocab_size, plan_all, without);
    fl.mc.vocab_size = 32000; /* a vocabulary whose logits outgrow that scratch: the cache costs memory by the chunk */
    without = plan_memory(&fl).total, plan_all = plan_with_rows(fl, 0);
    size_t plan14 = plan_with_rows(fl, 14), plan7 = plan_with_rows(fl, 7), per_row = 2 * (size_t)fl.mc.vocab_size;
    printf("vocabulary 32000 plans: no cache %zu, 7 rows %zu, 14 rows %zu, all %zu rows %zu bytes\n", without, plan7,
           plan14, all, plan_all);
    CHECK(plan_all < without + all * per_row && plan14 == plan7 + 7 * per_row,
          "the whole cache adds less than its %zu bytes (%zu), a chunk more its %zu (%zu)", all * per_row,
          plan_all - without, 7 * per_row, plan14 - plan7);
    size_t got = plan_head_cache_fit(fl, 1e12);
    CHECK(got == all, "fit with room: all %zu rows (got %zu)", all, got);
    CHECK(plan14 < plan_all, "two chunks plan less than the whole cache (%zu, %zu)", plan14, plan_all);
    got = plan_head_cache_fit(fl, (double)plan14);
    CHECK(got >= 14 && got < all && got % 7 == 0 && plan_with_rows(fl, got) <= plan14 &&
              (got + 7 >= all || plan_with_rows(fl, got + 7) > plan14),
          "fit with the plan of two chunks: the most whole chunks within it (got %zu)", got);
    got = plan_head_cache_fit(fl, (double)plan7 - 1);
    CHECK(got == 0, "fit below one chunk's plan: none (got %zu)", got);
    fl.autocast16 = false;
    got = plan_head_cache_fit(fl, 1e12);
    CHECK(got == 0, "fit with fp32 logits: none (got %zu)", got);
    unsetenv("SIMPO_LMHEAD_CHUNK_ROWS");

    /* three micro-batches in flight: slot 2's forward ran last, so only its backward finds its logits cached */
    Model *a = make(&mca, ta, backend_cpu(), 3, false, 0, false, 0, NULL),
          *b = make(&mca, ta, backend_cpu(), 3, true, 0, false, 0, NULL);
    FixtureResult ra = fixture_run_three_in_flight(a, psa), rb = fixture_run_three_in_flight(b, psa);
    fixture_check_same(&rb, &ra, a->nparams, "three in flight, with the cache vs without");
    free(ra.grads), free(rb.grads);
    /* the backwards in the forwards' order: slot 0's recomputes its logits into the cache's rows, over slot 2's
     * (the cache lies in the shared scratch), so slot 2's backward must not take them for its own */
    ra = fixture_run_three_in_flight_ex(a, psa, FX_FWD_ORDER), rb = fixture_run_three_in_flight_ex(b, psa, FX_FWD_ORDER);
    fixture_check_same(&rb, &ra, a->nparams, "three in flight, backwards in forward order, with the cache vs without");
    free(ra.grads), free(rb.grads);
    model_free(a), model_free(b);

    pairs_free(psa), pairs_free(psg);
    free(ta), free(g2), free(g2p);
    TEST_END();
}
