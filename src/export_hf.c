/* export_hf.c — see export_hf.h. */
#include "export_hf.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "config.h"
#include "model.h"
#include "util.h"

/* Copies the tokenizer and generation files of src_dir that exist into out_dir (atomically each); returns how
 * many. */
static int copy_tokenizer_files(const char *src_dir, const char *out_dir) {
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                  "generation_config.json", "chat_template.jinja", "chat_template.json"};
    int n = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
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

/* the model and the tokenizer files into dir */
static void write_model(CkptReader *r, const char *step_dir, const char *dir, const ExportOpts *o) {
    const CkptMeta *meta = ckpt_meta(r);
    char *where = sd_path_join(step_dir, "index.h5:/meta/model_config_json");
    ModelConfig mc = model_config_from_json(meta->model_config_json, where);
    /* tensor by tensor from the checkpoint into the files: one tensor in memory at a time (a 405B model's fp32
     * weights would not fit a node's memory) */
    int nspecs;
    ParamSpec *specs = model_param_table(&mc, &nspecs);
    model_export_hf_from(&mc, specs, nspecs, read_param, r, dir, o->shard_bytes, o->bf16);
    free(specs);
    /* the tokenizer: o->tokenizer, else the run's data.tokenizer or model.init (paths as the run resolved them) */
    const char *tok = o->tokenizer;
    Config *c = NULL;
    if (!tok && meta->config_yaml && *meta->config_yaml) {
        c = config_load_string(meta->config_yaml, "checkpoint config", ".");
        tok = c->data_tokenizer ? c->data_tokenizer : c->model_init;
        if (tok && !sd_dir_exists(tok)) {
            fprintf(stderr, "simpo_dist: note: the run's tokenizer directory %s is not here; no tokenizer files "
                            "exported (give --tokenizer DIR)\n", tok);
            tok = NULL;
        }
    }
    if (tok && !sd_dir_exists(tok)) sd_die("export", "tokenizer %s: not a directory", tok);
    int ntok = tok ? copy_tokenizer_files(tok, dir) : 0;
    fprintf(stderr, "simpo_dist: exported %s (step %ld, %s) to %s%s%s\n", step_dir, meta->step,
            o->bf16 ? "bf16" : "fp32", dir, ntok ? ", tokenizer files from " : "", ntok ? tok : "");
    config_free(c);
    free(where);
}

static void rename_or_die(const char *from, const char *to) {
    if (rename(from, to) != 0) sd_die(to, "cannot rename %s to it: %s", from, strerror(errno));
}

void export_hf(const char *step_dir, const char *out, const ExportOpts *o) {
    CkptReader *r = ckpt_open(step_dir);
    if (!o->replace) write_model(r, step_dir, out, o);
    else {
        /* a fresh directory beside out (a stale one from a crash removed), then swapped in: out.old is the old
         * model until the new one is in place */
        size_t n = strlen(out) + 5;
        char *tmp = sd_alloc(n, "export path"), *old = sd_alloc(n, "export path");
        snprintf(tmp, n, "%s.tmp", out);
        snprintf(old, n, "%s.old", out);
        sd_remove_tree(tmp);
        write_model(r, step_dir, tmp, o);
        sd_remove_tree(old);
        bool had = sd_file_exists(out) || sd_dir_exists(out);
        if (had) rename_or_die(out, old);
        rename_or_die(tmp, out);
        if (had) sd_remove_tree(old);
        free(tmp);
        free(old);
    }
    ckpt_close(r);
}
