/* fuzz_pairs.c — JSONL preference pairs (token ids, reference log-probs), truncation and micro-batch packing of
 * whatever loads. */
#include "fuzz_common.h"
#include "pairs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fz_write_file(".jsonl", data, size);
    static PairSet *ps;
    ps = NULL;
    FUZZ_GUARDED({
        ps = pairs_load_jsonl(p, 1000);
        pairs_truncate(ps, 64, 32);
        size_t idx[4];
        int n = ps->n < 4 ? (int)ps->n : 4;
        for (int i = 0; i < n; i++) idx[i] = (size_t)i;
        MicroBatch *mb = microbatch_pack(ps, idx, n);
        microbatch_free(mb);
    });
    pairs_free(ps);
    return 0;
}
