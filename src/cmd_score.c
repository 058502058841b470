/* cmd_score.c — `simpo_dist score --model HF_DIR --data pairs.jsonl [--out FILE]`: per-pair response log-probs
 * of a Hugging Face model, one JSON line per pair in input order (the fixtures' field names). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "model.h"
#include "pairs.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist score --model HF_DIR --data PAIRS.jsonl [--out FILE]\n"
    "  Writes one JSON line per pair, in input order: chosen_logp, rejected_logp (sums over response tokens),\n"
    "  chosen_avg_logp, rejected_avg_logp (sum / tokens), chosen_tokens, rejected_tokens. No truncation.\n"
    "  --out FILE   write there instead of stdout\n";

int cmd_score(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        const char **dst = !strcmp(argv[i], "--model") ? &model_dir
                           : !strcmp(argv[i], "--data") ? &data
                           : !strcmp(argv[i], "--out")  ? &out_path
                                                        : NULL;
        if (!dst) sd_die("score", "unknown argument '%s' (see simpo_dist score --help)", argv[i]);
        if (i + 1 >= argc) sd_die("score", "%s needs a value", argv[i]);
        *dst = argv[++i];
    }
    if (!model_dir || !data) sd_die("score", "--model and --data are required (see simpo_dist score --help)");
    ModelConfig mc = model_config_load(model_dir);
    PairSet *ps = pairs_load_jsonl(data, mc.vocab_size);
    size_t max_tokens = 1;
    for (size_t i = 0; i < ps->n; i++) {
        const Pair *p = &ps->pairs[i];
        size_t n = (size_t)2 * p->n_prompt + p->n_chosen + p->n_rejected;
        if (n > max_tokens) max_tokens = n;
    }
    Model *m = model_create(&mc, backend_cpu(), max_tokens, NULL, 1);
    model_load_hf(m, model_dir);
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) sd_die(out_path, "cannot open for writing");
    for (size_t i = 0; i < ps->n; i++) {
        MicroBatch *mb = microbatch_pack(ps, &i, 1);
        SeqLogp s[2];
        model_forward_logprobs(m, mb, s);
        fprintf(out,
                "{\"chosen_logp\": %.17g, \"rejected_logp\": %.17g, \"chosen_avg_logp\": %.17g, "
                "\"rejected_avg_logp\": %.17g, \"chosen_tokens\": %d, \"rejected_tokens\": %d}\n",
                s[0].sum, s[1].sum, s[0].n ? s[0].sum / s[0].n : 0.0, s[1].n ? s[1].sum / s[1].n : 0.0, s[0].n,
                s[1].n);
        microbatch_free(mb);
    }
    if (out != stdout && fclose(out) != 0) sd_die(out_path, "write failed");
    model_free(m);
    pairs_free(ps);
    return 0;
}
