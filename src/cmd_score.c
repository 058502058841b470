/* cmd_score.c — `simpo_dist score --model HF_DIR --data pairs.jsonl [--device D] [--dtype T] [--out FILE]`:
 * per-pair response log-probs of a Hugging Face model, on the CPU or a GPU, one JSON line per pair in input order
 * (the fixtures' field names). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli_args.h"
#include "commands.h"
#include "model.h"
#include "score.h"
#include "pairs.h"
#include "records.h"
#include "train_data.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist score --model HF_DIR --data PAIRS.jsonl [--tokenizer DIR] [--format F] [--chat-template T]\n"
    "                        [--insert-empty-system] [--chat-convention trl|simpo_reference]\n"
    "                        [--device auto|cpu|cuda] [--dtype fp32|bf16] [--out FILE | --write-ref FILE]\n"
    "  Writes one JSON line per pair, in input order: chosen_logp, rejected_logp (sums over response tokens),\n"
    "  chosen_avg_logp, rejected_avg_logp (sum / tokens), chosen_tokens, rejected_tokens. No truncation.\n"
    "  --device          where it runs, as the config key device: auto (default) takes a GPU when the build has\n"
    "                    the CUDA backend and one is visible, else the CPU\n"
    "  --dtype           fp32 (default) or bf16 (model.dtype: tensor-core matmuls over bf16 weights; emulated,\n"
    "                    slowly, on the CPU)\n"
    "  --tokenizer DIR   for chat or text lines (docs/formats.md); --format auto|ids|chat|text and\n"
    "  --chat-template   auto|llama3|llama2|mistral|chatml|gemma as data.format / data.chat_template\n"
    "  --insert-empty-system  as data.insert_empty_system (the prompts as a run with it renders them)\n"
    "  --chat-convention C    trl (default) | simpo_reference, as data.chat_convention\n"
    "  --out FILE        write there instead of stdout\n"
    "  --write-ref FILE  instead: copy every pair of PAIRS.jsonl to FILE with ref_chosen_logp and\n"
    "                    ref_rejected_logp (this model's summed log-probs) added, for dpo, ipo and rdpo\n"
    "                    (JSONL out, whatever PAIRS is: a JSON array's elements, a Parquet file's rows with\n"
    "                    every column)\n";

int cmd_score(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out_path = NULL, *ref_path = NULL, *tok = NULL, *fmt = NULL,
               *family = NULL, *device = "auto", *dtype = "fp32", *convention = NULL;
    bool empty_system = false;
    const CliOpt opts[] = {{"--model", &model_dir, NULL},  {"--data", &data, NULL},
                           {"--out", &out_path, NULL},     {"--write-ref", &ref_path, NULL},
                           {"--tokenizer", &tok, NULL},    {"--format", &fmt, NULL},
                           {"--chat-template", &family, NULL}, {"--device", &device, NULL},
                           {"--insert-empty-system", NULL, &empty_system}, {"--chat-convention", &convention, NULL},
                           {"--dtype", &dtype, NULL}};
    if (cli_parse("score", USAGE, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]))) return 0;
    model_dir = cli_model_dir("--model", model_dir);
    tok = cli_model_dir("--tokenizer", tok);
    if (!model_dir || !data) sd_die("score", "--model and --data are required (see simpo_dist score --help)");
    if (!tok) tok = cli_model_tokenizer(model_dir);
    bool simpo_reference = cli_simpo_reference("score", convention);
    if (out_path && ref_path) sd_die("score", "--out and --write-ref exclude each other");
    ScoreOpts so = score_opts("score", device, dtype);
    ModelConfig mc = model_config_load(model_dir);
    PairSet *ps = pairs_load_any(data, mc.vocab_size, fmt, tok, family, empty_system,
                                 simpo_reference);
    if (ref_path && pairs_is_h5(data)) sd_die(data, "--write-ref copies JSONL lines; give the JSONL, not the HDF5 dataset");
    SeqLogp *all = sd_alloc(sd_mul_size(2 * ps->n, sizeof(SeqLogp), "scores"), "scores");
    score_pairs(model_dir, &mc, ps, all, &so);
    /* the records to copy, each whole (a Parquet file's every column): one a pair, in order */
    Records *rec = ref_path ? records_open(data, NULL, 0) : NULL;
    char *tmp = NULL;
    if (ref_path) { /* written to a temporary name, renamed when complete */
        tmp = sd_alloc(strlen(ref_path) + 5, "path");
        sprintf(tmp, "%s.tmp", ref_path);
    }
    const char *dest = ref_path ? tmp : out_path;
    FILE *out = dest ? fopen(dest, "w") : stdout;
    if (!out) sd_die(dest, "cannot open for writing");
    for (size_t i = 0; i < ps->n; i++) {
        const SeqLogp *s = &all[2 * i];
        if (ref_path) {
            const Pair *p = &ps->pairs[i];
            long num = 0;
            const cJSON *src = records_next(rec, &num);
            if (!src || num != p->line) sd_die(data, "changed while it was read (record of line or row %d)", p->line);
            cJSON *o = cJSON_Duplicate(src, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(o, "ref_chosen_logp");
            cJSON_DeleteItemFromObjectCaseSensitive(o, "ref_rejected_logp");
            cJSON_AddNumberToObject(o, "ref_chosen_logp", s[0].sum);
            cJSON_AddNumberToObject(o, "ref_rejected_logp", s[1].sum);
            char *js = cJSON_PrintUnformatted(o);
            fprintf(out, "%s\n", js);
            cJSON_free(js);
            cJSON_Delete(o);
            continue;
        }
        fprintf(out,
                "{\"chosen_logp\": %.17g, \"rejected_logp\": %.17g, \"chosen_avg_logp\": %.17g, "
                "\"rejected_avg_logp\": %.17g, \"chosen_tokens\": %d, \"rejected_tokens\": %d}\n",
                s[0].sum, s[1].sum, s[0].n ? s[0].sum / s[0].n : 0.0, s[1].n ? s[1].sum / s[1].n : 0.0, s[0].n,
                s[1].n);
    }
    if (out != stdout && fclose(out) != 0) sd_die(dest, "write failed");
    if (ref_path && rename(tmp, ref_path) != 0) sd_die(ref_path, "cannot rename %s into place", tmp);
    records_close(rec);
    free(tmp);
    free(all);
    pairs_free(ps);
    return 0;
}
