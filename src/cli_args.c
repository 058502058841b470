/* cli_args.c — see cli_args.h. */
#include "cli_args.h"
#include <stdio.h>
#include <string.h>
#include "util.h"

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
