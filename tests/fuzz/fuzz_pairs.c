/* fuzz_pairs.c — JSONL preference pairs (token ids, reference log-probs), truncation and micro-batch packing of
 * whatever loads. */
#include "fuzz_common.h"
#include "fuzz_pairs_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fz_write_file(".jsonl", data, size);
    static PairSet *ps;
    ps = NULL;
    FUZZ_GUARDED({
        ps = pairs_load_jsonl(p, 1000);
        fz_truncate_and_pack(ps);
    });
    pairs_free(ps);
    return 0;
}
