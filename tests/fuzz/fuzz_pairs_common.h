/* fuzz_pairs_common.h — shared by the pair harnesses: what training does with a loaded PairSet, bounded:
 * truncation (max_length 64, max_prompt_length 32) and packing its first pairs (at most 4) into a micro-batch. */
#ifndef SD_FUZZ_PAIRS_COMMON_H
#define SD_FUZZ_PAIRS_COMMON_H
#include "pairs.h"

static void fz_truncate_and_pack(PairSet *ps) {
    pairs_truncate(ps, 64, 32);
    size_t idx[4];
    int n = ps->n < 4 ? (int)ps->n : 4;
    for (int i = 0; i < n; i++) idx[i] = (size_t)i;
    microbatch_free(microbatch_pack(ps, idx, n));
}
#endif
