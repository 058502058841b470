/* cli_args.c — see cli_args.h. */
#include "cli_args.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hub_cache.h"
#include "util.h"

/* the resolved directories, reachable until exit */
static char **kept;
static int n_kept;

const char *cli_model_dir(const char *opt, const char *value) {
    if (!value) return NULL;
    char *p = hub_resolve(NULL, value, HUB_MODEL, opt);
    if (!strcmp(p, value)) {
        free(p);
        return value;
    }
    kept = sd_realloc(kept, sd_mul_size((size_t)n_kept + 1, sizeof *kept, "paths"), "paths");
    return kept[n_kept++] = p;
}

bool cli_simpo_reference(const char *cmd, const char *convention) {
    if (convention && strcmp(convention, "trl") && strcmp(convention, "simpo_reference"))
        sd_die(cmd, "--chat-convention: expected trl or simpo_reference, found '%s'", convention);
    return convention && !strcmp(convention, "simpo_reference");
}

const char *cli_model_tokenizer(const char *model_dir) {
    if (!model_dir) return NULL;
    char *tj = sd_path_join(model_dir, "tokenizer.json");
    bool has = sd_file_exists(tj);
    free(tj);
    return has ? model_dir : NULL;
}

bool cli_parse(const char *cmd, const char *usage, int argc, char **argv, const CliOpt *opts, int nopts) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return true;
        }
        const CliOpt *o = NULL;
        for (int k = 0; k < nopts && !o; k++)
            if (!strcmp(argv[i], opts[k].name)) o = &opts[k];
        if (!o) sd_die(cmd, "unknown argument '%s' (see simpo_dist %s --help)", argv[i], cmd);
        if (!o->value) {
            *o->flag = true;
            continue;
        }
        if (i + 1 >= argc) sd_die(cmd, "%s needs a value", argv[i]);
        *o->value = argv[++i];
    }
    return false;
}
