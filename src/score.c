/* score.c — see score.h. One pair per micro-batch, so the activation arena is sized by the longest pair; each
 * pair's prompt runs through the layers once for both responses (prefix sharing, pairs.h). */
#include "score.h"

void score_pairs(const char *model_dir, const ModelConfig *mc, const PairSet *ps, SeqLogp *out) {
    size_t max_tokens = 1;
    for (size_t i = 0; i < ps->n; i++) {
        const Pair *p = &ps->pairs[i];
        size_t n = pair_tokens(p, false); /* attention's rows; the layers see fewer */
        if (n > max_tokens) max_tokens = n;
    }
    Model *m = model_create_inference(mc, backend_cpu(), max_tokens);
    model_load_hf(m, model_dir);
    for (size_t i = 0; i < ps->n; i++) {
        MicroBatch *mb = microbatch_pack_opts(ps, &i, 1, true);
        model_forward_logprobs(m, mb, &out[2 * i]);
        microbatch_free(mb);
    }
    model_free(m);
}
