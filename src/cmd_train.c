/* cmd_train.c — `simpo_dist [run] CONFIG.yaml [--stop-at-step N | --eval-only] [--quiet]`: training, or the held-out
 * evaluation of its weights alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "config.h"
#include "train.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist [run] CONFIG.yaml [--stop-at-step N | --eval-only] [--quiet]\n"
    "  Trains as CONFIG.yaml says (docs/config.md); resumes from the newest complete checkpoint in\n"
    "  checkpoint.dir when there is one. One progress line per logged step on stderr, one JSON object per step\n"
    "  in <checkpoint.dir>/metrics.jsonl.\n"
    "  --stop-at-step N   stop after step N with a checkpoint, as a pre-empted job would (rerun to resume)\n"
    "  --eval-only        train nothing: evaluate data.eval with the newest checkpoint's weights (or the starting\n"
    "                     ones, model.init or the random init) under the config's layout and print its metrics as\n"
    "                     one JSON line on stdout (eval.jsonl's fields); writes nothing\n"
    "  --quiet            no progress lines\n";

int cmd_train(int argc, char **argv) {
    const char *cfg_path = NULL;
    TrainOptions opt = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--quiet")) opt.quiet = 1;
        else if (!strcmp(argv[i], "--eval-only")) opt.eval_only = 1;
        else if (!strcmp(argv[i], "--stop-at-step")) {
            if (i + 1 >= argc) sd_die("run", "--stop-at-step needs a value");
            char *end;
            opt.stop_at_step = strtol(argv[++i], &end, 10);
            if (*end || opt.stop_at_step <= 0) sd_die("run", "--stop-at-step: expected a positive integer, found '%s'", argv[i]);
        } else if (argv[i][0] == '-') sd_die("run", "unknown option '%s' (see simpo_dist run --help)", argv[i]);
        else if (cfg_path) sd_die("run", "one config file expected, found '%s' and '%s'", cfg_path, argv[i]);
        else cfg_path = argv[i];
    }
    if (!cfg_path) sd_die("run", "a config file is required (see simpo_dist --help)");
    if (opt.eval_only && opt.stop_at_step) sd_die("run", "--eval-only trains no step: --stop-at-step has no meaning with it");
    Config *c = config_load(cfg_path);
    int rc = train_run(c, &opt);
    config_free(c);
    return rc;
}
