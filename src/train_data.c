/* train_data.c — the training pairs a config names: an HDF5 dataset from `prepare`, or JSONL of token ids, chat
 * messages or text (tokenized here with data.tokenizer and its chat template). See train_data.h. */
#include "train_data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat_template.h"
#include "tokenizer.h"
#include "util.h"

PairSet *train_data_load_path(const Config *c, const char *path, int vocab_size) {
    if (pairs_is_h5(path)) return pairs_load_h5(path, vocab_size);
    bool text = strcmp(c->data_format, "ids") != 0;
    if (!c->data_tokenizer && (!strcmp(c->data_format, "chat") || !strcmp(c->data_format, "text")))
        sd_die(c->source, "data.format %s needs data.tokenizer (a Hugging Face tokenizer directory)", c->data_format);
    Tokenizer *tok = text && c->data_tokenizer ? tokenizer_load(c->data_tokenizer) : NULL;
    ChatTemplate *ct = NULL;
    if (tok && strcmp(c->data_format, "text"))
        ct = !strcmp(c->data_format, "chat") ? chat_template_load(c->data_tokenizer, c->chat_template)
                                              : chat_template_load_optional(c->data_tokenizer, c->chat_template);
    if (tok && vocab_size > 0 && tokenizer_vocab_size(tok) > vocab_size)
        fprintf(stderr, "simpo_dist: warning: %s has %d tokens, the model's vocab_size is %d (ids beyond it are "
                        "errors)\n", c->data_tokenizer, tokenizer_vocab_size(tok), vocab_size);
    PairsFormat f = {c->data_format, tok, ct, vocab_size};
    PairSet *ps = pairs_load_jsonl_fmt(path, &f);
    chat_template_free(ct);
    tokenizer_free(tok);
    return ps;
}

PairSet *train_data_load(const Config *c, int vocab_size) { return train_data_load_path(c, c->data_train, vocab_size); }

ModelConfig train_model_config(const Config *c) {
    if (c->model_init) return model_config_load(c->model_init);
    return c->model_config;
}
