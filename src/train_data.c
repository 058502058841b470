/* train_data.c — the training pairs a config names: an HDF5 dataset from `prepare`, or JSONL of token ids, chat
 * messages or text (tokenized here with data.tokenizer and its chat template). See train_data.h. */
#include "train_data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat_template.h"
#include "loss.h"
#include "tokenizer.h"
#include "util.h"

PairSet *pairs_load_any(const char *path, int vocab_size, const char *format, const char *tokenizer_dir,
                        const char *chat_family) {
    if (pairs_is_h5(path)) return pairs_load_h5(path, vocab_size);
    if (!format) format = "auto";
    if (!chat_family) chat_family = "auto";
    bool text = strcmp(format, "ids") != 0;
    if (!tokenizer_dir && (!strcmp(format, "chat") || !strcmp(format, "text")))
        sd_die(path, "data.format %s needs data.tokenizer (a Hugging Face tokenizer directory)", format);
    Tokenizer *tok = text && tokenizer_dir ? tokenizer_load(tokenizer_dir) : NULL;
    ChatTemplate *ct = NULL;
    if (tok && strcmp(format, "text"))
        ct = !strcmp(format, "chat") ? chat_template_load(tokenizer_dir, chat_family)
                                     : chat_template_load_optional(tokenizer_dir, chat_family);
    if (tok && vocab_size > 0 && tokenizer_vocab_size(tok) > vocab_size)
        fprintf(stderr, "simpo_dist: warning: %s has %d tokens, the model's vocab_size is %d (ids beyond it are "
                        "errors)\n", tokenizer_dir, tokenizer_vocab_size(tok), vocab_size);
    PairsFormat f = {format, tok, ct, vocab_size};
    PairSet *ps = pairs_load_jsonl_fmt(path, &f);
    chat_template_free(ct);
    tokenizer_free(tok);
    return ps;
}

PairSet *train_data_load_path(const Config *c, const char *path, int vocab_size) {
    return pairs_load_any(path, vocab_size, c->data_format, c->data_tokenizer, c->chat_template);
}

/* the pairs of data.train or data.eval (key): the file path, or the mixture's parts (config.h DataPart) joined: the
 * first floor(fraction x pairs) pairs of each, as alignment-handbook's mix_datasets selects them */
static PairSet *load_data(const Config *c, const char *key, const char *path, const DataPart *mix, int n_mix,
                          int vocab_size) {
    if (!mix) return train_data_load_path(c, path, vocab_size);
    PairSet *all = sd_calloc(1, sizeof *all, "pairs");
    all->source = sd_strdup(path);
    all->all_have_ref = true;
    size_t cap = 1;
    for (int i = 0; i < n_mix; i++) cap += strlen(mix[i].path) + 64;
    all->note = sd_alloc(cap, "mixture note");
    all->note[0] = 0;
    for (int i = 0; i < n_mix; i++) {
        PairSet *ps = train_data_load_path(c, mix[i].path, vocab_size);
        size_t n = ps->n, keep = (size_t)(mix[i].fraction * (double)n); /* Python's int(fraction * len) */
        if (keep == 0)
            sd_die(mix[i].path, "%s: the fraction %g of its %zu pairs keeps none", key, mix[i].fraction, n);
        pairs_append(all, ps, keep);
        size_t at = strlen(all->note);
        snprintf(all->note + at, cap - at, "%s%s %zu of %zu", i ? ", " : "", mix[i].path, keep, n);
    }
    return all;
}

PairSet *train_data_load(const Config *c, int vocab_size) {
    return load_data(c, "data.train", c->data_train, c->train_mix, c->n_train_mix, vocab_size);
}

/* the pairs of the config's key `key` (data.train or data.eval: path, or the mixture mix) as training and evaluation
 * read them: reference log-probs where the loss needs them, truncated */
static PairSet *load_for_loss(const Config *c, const char *path, const DataPart *mix, int n_mix, const char *key,
                              int vocab_size) {
    PairSet *ps = load_data(c, key, path, mix, n_mix, vocab_size);
    if (ps->n == 0) sd_die(path, "%s has no pairs", key);
    if (loss_needs_reference(c->loss_type) && !ps->all_have_ref)
        sd_die(path, "loss.type %s needs ref_chosen_logp and ref_rejected_logp on every line of %s",
               loss_type_name(c->loss_type), key);
    pairs_truncate(ps, c->max_length, c->max_prompt_length);
    return ps;
}

PairSet *train_data_load_truncated(const Config *c, int vocab_size) {
    return load_for_loss(c, c->data_train, c->train_mix, c->n_train_mix, "data.train", vocab_size);
}

PairSet *train_eval_data_load(const Config *c, int vocab_size) {
    return c->data_eval ? load_for_loss(c, c->data_eval, c->eval_mix, c->n_eval_mix, "data.eval", vocab_size) : NULL;
}

void train_data_sizes(const Config *c, const PairSet *train, const PairSet *eval, size_t *layer_tokens,
                      size_t *att_tokens, size_t *lp_rows) {
    int mbp = c->micro_batch_pairs;
    *layer_tokens = pairs_largest_microbatch(train, mbp, c->prefix_sharing);
    *att_tokens = pairs_largest_microbatch(train, mbp, false);
    *lp_rows = pairs_largest_logprob_rows(train, mbp);
    if (!eval) return;
    size_t l = pairs_largest_microbatch(eval, mbp, c->prefix_sharing), a = pairs_largest_microbatch(eval, mbp, false),
           r = pairs_largest_logprob_rows(eval, mbp);
    if (l > *layer_tokens) *layer_tokens = l;
    if (a > *att_tokens) *att_tokens = a;
    if (r > *lp_rows) *lp_rows = r;
}

ModelConfig train_model_config(const Config *c) {
    if (c->model_init) return model_config_load(c->model_init);
    return c->model_config;
}
