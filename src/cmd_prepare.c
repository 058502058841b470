/* cmd_prepare.c — `simpo_dist prepare CONFIG.yaml [--out FILE]`: tokenizes data.train (and data.eval) once into
 * the HDF5 datasets (data/pairs_h5.c) that training then reads (point data.train, data.eval at them), and prints
 * what the data holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "config.h"
#include "train_data.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist prepare CONFIG.yaml [--out FILE]\n"
    "  Tokenizes data.train (JSONL: token ids, chat messages or text; data.format, data.tokenizer,\n"
    "  data.chat_template) into an HDF5 dataset: FILE, else data.prepared, else data.train with .h5 for its\n"
    "  extension. Set data.train to that file to train from it. Pairs are stored untruncated; the summary\n"
    "  counts how many data.max_length / data.max_prompt_length would truncate. data.eval (held-out pairs),\n"
    "  where given and not already prepared, likewise into data.eval with .h5 for its extension. A mixture\n"
    "  (data.train as a mapping of files to fractions) is written as the one dataset of the pairs it takes:\n"
    "  name it with FILE or data.prepared; a mixture in data.eval is left to be read at the start.\n";

static char *default_out(const char *train) {
    const char *dot = strrchr(train, '.'), *slash = strrchr(train, '/');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - train) : strlen(train);
    char *out = sd_alloc(stem + 4, "path");
    memcpy(out, train, stem);
    strcpy(out + stem, ".h5");
    return out;
}

/* src (JSONL) tokenized into dest (HDF5) with the config's data settings (ps: its pairs, when already loaded: a
 * mixture's; freed here); a summary on stdout */
static void prepare_one(const Config *c, const char *src, PairSet *ps, const char *dest, int vocab_size) {
    double t0 = sd_now();
    if (!ps) ps = train_data_load_path(c, src, vocab_size);
    pairs_write_h5(ps, dest, c->data_tokenizer, c->data_format);
    if (ps->note) printf("mixture: %s\n", ps->note);
    long tok[3] = {0, 0, 0}, mx[3] = {0, 0, 0};
    for (size_t i = 0; i < ps->n; i++) {
        const Pair *p = &ps->pairs[i];
        long n[3] = {p->n_prompt, p->n_chosen, p->n_rejected};
        for (int k = 0; k < 3; k++) tok[k] += n[k], mx[k] = n[k] > mx[k] ? n[k] : mx[k];
    }
    pairs_truncate(ps, c->max_length, c->max_prompt_length);
    printf("prepared %s: %zu pairs from %s in %.2f s\n", dest, ps->n, src, sd_now() - t0);
    printf("  tokens: prompt %ld (max %ld), chosen %ld (max %ld), rejected %ld (max %ld)\n", tok[0], mx[0], tok[1],
           mx[1], tok[2], mx[2]);
    printf("  %zu pairs would be truncated at max_length %d / max_prompt_length %d\n", ps->n_truncated,
           c->max_length, c->max_prompt_length);
    printf("  reference log-probs: %s\n", ps->all_have_ref ? "yes" : "no");
    pairs_free(ps);
}

int cmd_prepare(int argc, char **argv) {
    const char *cfg_path = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) sd_die("prepare", "--out needs a value");
            out = argv[++i];
        } else if (argv[i][0] == '-') sd_die("prepare", "unknown option '%s' (see simpo_dist prepare --help)", argv[i]);
        else if (cfg_path) sd_die("prepare", "one config file expected, found '%s' and '%s'", cfg_path, argv[i]);
        else cfg_path = argv[i];
    }
    if (!cfg_path) sd_die("prepare", "a config file is required (see simpo_dist prepare --help)");
    Config *c = config_load(cfg_path);
    if (!c->train_mix && pairs_is_h5(c->data_train)) sd_die(c->data_train, "is already a prepared HDF5 dataset");
    if (c->train_mix && !out && !c->data_prepared)
        sd_die(c->source, "data.train is %s (%s): name the dataset to write with data.prepared or --out FILE",
               c->train_mix[0].files ? "a dataset's split" : "a mixture", c->data_train);
    ModelConfig mc = train_model_config(c);
    char *dest = out ? sd_strdup(out) : c->data_prepared ? sd_strdup(c->data_prepared) : default_out(c->data_train);
    prepare_one(c, c->data_train, c->train_mix ? train_data_load(c, mc.vocab_size) : NULL, dest, mc.vocab_size);
    free(dest);
    if (c->eval_mix) {
        printf("data.eval: %s, read at the start (prepare its files one by one to tokenize them once)\n",
               c->data_eval);
    } else if (c->data_eval && pairs_is_h5(c->data_eval)) {
        printf("data.eval %s: already a prepared HDF5 dataset\n", c->data_eval);
    } else if (c->data_eval) {
        char *ev = default_out(c->data_eval);
        if (!strcmp(ev, c->data_eval)) sd_die(c->data_eval, "data.eval: its .h5 name would overwrite it");
        prepare_one(c, c->data_eval, NULL, ev, mc.vocab_size);
        free(ev);
    }
    config_free(c);
    return 0;
}
