/* cmd_export.c — `simpo_dist export --checkpoint DIR_OR_FILE --out HF_DIR`: the parameters of a checkpoint (the
 * newest complete one under a checkpoint dir, or the given step dir / index.h5) as a Hugging Face model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "commands.h"
#include "export_hf.h"
#include "cli_args.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist export --checkpoint DIR_OR_FILE --out HF_DIR [--shard-gb GB] [--dtype fp32|bf16]\n"
    "                         [--tokenizer DIR]\n"
    "  DIR_OR_FILE: a checkpoint.dir (its newest complete checkpoint), a step-NNNNNNNN dir, or its index.h5.\n"
    "  Writes HF_DIR/config.json and model.safetensors (sharded with model.safetensors.index.json above\n"
    "  --shard-gb, default 5), float32 (--dtype fp32, the default: the fp32 master weights as they are) or\n"
    "  bfloat16 (--dtype bf16: rounded to nearest even, half the size; config.json says torch_dtype bfloat16),\n"
    "  Hugging Face tensor names, and the tokenizer files (tokenizer.json, tokenizer_config.json,\n"
    "  special_tokens_map.json, generation_config.json) found in --tokenizer DIR, else in the run's\n"
    "  data.tokenizer or model.init directory, so HF_DIR loads as a whole model. One tensor in memory at a time.\n";

int cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *tok = NULL;
    double shard_gb = 5.0;
    bool bf16 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (i + 1 >= argc) sd_die("export", "unknown argument or missing value: '%s' (see --help)", argv[i]);
        if (!strcmp(argv[i], "--checkpoint")) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--out")) out = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer")) tok = cli_model_dir("--tokenizer", argv[++i]);
        else if (!strcmp(argv[i], "--dtype")) {
            const char *d = argv[++i];
            if (strcmp(d, "fp32") && strcmp(d, "bf16"))
                sd_die("export", "--dtype: expected fp32 or bf16, found '%s'", d);
            bf16 = !strcmp(d, "bf16");
        }
        else if (!strcmp(argv[i], "--shard-gb")) {
            char *end;
            shard_gb = strtod(argv[++i], &end);
            if (*end || shard_gb <= 0) sd_die("export", "--shard-gb: expected a positive number, found '%s'", argv[i]);
        } else sd_die("export", "unknown argument '%s' (see simpo_dist export --help)", argv[i]);
    }
    if (!ckpt || !out) sd_die("export", "--checkpoint and --out are required (see simpo_dist export --help)");
    char *step_dir = ckpt_find_latest_valid(ckpt); /* a checkpoint.dir: the newest sound one */
    if (!step_dir) step_dir = ckpt_find_latest(ckpt); /* a step directory or index.h5 named directly */
    if (!step_dir) sd_die(ckpt, "no complete checkpoint found (a checkpoint is complete when its index.h5 exists)");
    if (tok && !sd_dir_exists(tok)) sd_die("export", "--tokenizer %s: not a directory", tok);
    export_hf(step_dir, out, &(ExportOpts){.shard_bytes = (size_t)(shard_gb * 1e9), .bf16 = bf16, .tokenizer = tok});
    free(step_dir);
    return 0;
}
