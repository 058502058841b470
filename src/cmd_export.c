/* cmd_export.c — `simpo_dist export --checkpoint DIR_OR_FILE --out HF_DIR`: the parameters of a checkpoint (the
 * newest complete one under a checkpoint dir, or the given step dir / index.h5) as a Hugging Face model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "commands.h"
#include "config.h"
#include "model.h"
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

/* Copies the tokenizer and generation files of src_dir that exist into out_dir (atomically each); returns how
 * many. */
static int copy_tokenizer_files(const char *src_dir, const char *out_dir) {
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                  "generation_config.json"};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        char *src = sd_path_join(src_dir, files[i]), *dst = sd_path_join(out_dir, files[i]);
        size_t len;
        char *data = sd_file_exists(src) ? sd_read_file(src, &len) : NULL;
        if (data) {
            sd_write_file_atomic(dst, data, len);
            n++;
        }
        free(data);
        free(src);
        free(dst);
    }
    return n;
}

/* model_export_hf_from's source: a whole tensor of the checkpoint's parameters */
static void read_param(void *ctx, const ParamSpec *p, float *out) {
    ckpt_read(ctx, "param", p->name, p->ndim, p->off, p->shape_loc, out);
}

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
        else if (!strcmp(argv[i], "--tokenizer")) tok = argv[++i];
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
    CkptReader *r = ckpt_open(step_dir);
    const CkptMeta *meta = ckpt_meta(r);
    char *where = sd_path_join(step_dir, "index.h5:/meta/model_config_json");
    ModelConfig mc = model_config_from_json(meta->model_config_json, where);
    /* tensor by tensor from the checkpoint into the files: one tensor in memory at a time (a 405B model's fp32
     * weights would not fit a node's memory) */
    int nspecs;
    ParamSpec *specs = model_param_table(&mc, &nspecs);
    model_export_hf_from(&mc, specs, nspecs, read_param, r, out, (size_t)(shard_gb * 1e9), bf16);
    free(specs);
    /* the tokenizer: --tokenizer, else the run's data.tokenizer or model.init (paths as the run resolved them) */
    Config *c = NULL;
    if (!tok && meta->config_yaml && *meta->config_yaml) {
        c = config_load_string(meta->config_yaml, "checkpoint config", ".");
        tok = c->data_tokenizer ? c->data_tokenizer : c->model_init;
    }
    if (tok && !sd_dir_exists(tok)) {
        if (c) fprintf(stderr, "simpo_dist: note: the run's tokenizer directory %s is not here; no tokenizer files "
                               "exported (give --tokenizer DIR)\n", tok);
        else sd_die("export", "--tokenizer %s: not a directory", tok);
        tok = NULL;
    }
    int ntok = tok ? copy_tokenizer_files(tok, out) : 0;
    fprintf(stderr, "simpo_dist: exported %s (step %ld) to %s%s%s\n", step_dir, meta->step, out,
            ntok ? ", tokenizer files from " : "", ntok ? tok : "");
    config_free(c);
    free(where);
    ckpt_close(r);
    free(step_dir);
    return 0;
}
