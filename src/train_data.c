/* train_data.c — the training pairs a config names: an HDF5 dataset from `prepare`, or JSONL of token ids, chat
 * messages or text (tokenized here with data.tokenizer and its chat template). See train_data.h. */
#include "train_data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat_template.h"
#include "loss.h"
#include "tokenizer.h"
#include "util.h"

PairSet *pairs_load_any(const char *path, int vocab_size, const char *format, const char *tokenizer_dir,
                        const char *chat_family, bool insert_empty_system, bool simpo_reference) {
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
    PairsFormat f = {format, tok, ct, vocab_size, insert_empty_system, simpo_reference};
    PairSet *ps = pairs_load_jsonl_fmt(path, &f);
    chat_template_free(ct);
    tokenizer_free(tok);
    return ps;
}

PairSet *train_data_load_path(const Config *c, const char *path, int vocab_size) {
    return pairs_load_any(path, vocab_size, c->data_format, c->data_tokenizer, c->chat_template,
                          c->insert_empty_system, !strcmp(c->chat_convention, "simpo_reference"));
}

/* one part of a mixture: its file, or a dataset split's files read as one set of pairs, in order */
static PairSet *load_part(const Config *c, const DataPart *part, int vocab_size) {
    if (!part->files) return train_data_load_path(c, part->path, vocab_size);
    PairSet *all = train_data_load_path(c, part->files[0], vocab_size);
    for (int f = 1; f < part->n_files; f++) {
        PairSet *ps = train_data_load_path(c, part->files[f], vocab_size);
        pairs_append(all, ps, ps->n);
    }
    return all;
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
        PairSet *ps = load_part(c, &mix[i], vocab_size);
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

long train_total_steps(const Config *c, size_t n, long *per_epoch) {
    long spe = (long)(n / (size_t)c->global_batch_pairs);
    if (spe == 0)
        sd_die(c->data_train, "has %zu pairs, fewer than one global batch (train.global_batch_pairs %d)", n,
               c->global_batch_pairs);
    if (per_epoch) *per_epoch = spe;
    return c->max_steps > 0 ? c->max_steps : (long)ceil(c->epochs * (double)spe);
}

const size_t *train_batch_next(const Config *c, size_t n, long *epoch, long *pos, size_t *order, long *order_epoch) {
    long B = c->global_batch_pairs;
    if (*pos + B > (long)n) ++*epoch, *pos = 0;
    if (*order_epoch != *epoch) pairs_epoch_order(order, n, c->shuffle, c->seed, *epoch), *order_epoch = *epoch;
    *pos += B;
    return order + (*pos - B);
}

int train_token_count(const Config *c, const PairSet *ps, const size_t *idx, int dp) {
    long B_loc = c->global_batch_pairs / dp;
    int k = 1;
    for (int d = 0; d < dp; d++) {
        int need = pairs_token_groups_min(ps, idx + (size_t)d * (size_t)B_loc, (int)B_loc,
                                          (size_t)c->micro_batch_tokens, c->prefix_sharing);
        k = need > k ? need : k;
    }
    return k;
}

int train_token_cut(const Config *c, const PairSet *ps, const size_t *idx, int dp, int r, int *start) {
    long B_loc = c->global_batch_pairs / dp;
    int k = train_token_count(c, ps, idx, dp);
    pairs_token_groups(ps, idx + (size_t)r * (size_t)B_loc, (int)B_loc, k, c->prefix_sharing, start);
    return k;
}

/* the k micro-batches of cut start[] over the pairs my[]: raises the largest one's tokens in the layers' layout, in
 * attention's sequences and log-prob rows (*tok, *att, *lp), and adds all of theirs to sum[3] (NULL: not wanted) */
static void cut_sizes(const Config *c, const PairSet *ps, const size_t *my, const int *start, int k, size_t *tok,
                      size_t *att, size_t *lp, double *sum) {
    for (int g = 0; g < k; g++) {
        size_t a = 0, b = 0, r = 0;
        for (int i = start[g]; i < start[g + 1]; i++) {
            const Pair *p = &ps->pairs[my[i]];
            a += pair_tokens(p, c->prefix_sharing), b += pair_tokens(p, false), r += pair_logprob_rows(p);
        }
        *tok = a > *tok ? a : *tok, *att = b > *att ? b : *att, *lp = r > *lp ? r : *lp;
        if (sum) sum[0] += (double)a, sum[1] += (double)b, sum[2] += (double)r;
    }
}

TokenSizes train_token_sizes(const Config *c, const PairSet *ps, long epoch, long pos, long steps, int dp) {
    TokenSizes z = {0};
    long B_loc = c->global_batch_pairs / dp, order_epoch = -1;
    size_t n = ps->n, *order = sd_alloc((n ? n : 1) * sizeof(size_t), "epoch order");
    int *start = sd_alloc(((size_t)B_loc + 1) * sizeof(int), "micro-batch cut");
    double ksum = 0, sum[3] = {0, 0, 0}; /* the layers' tokens, attention's, log-prob rows */
    for (long s = 0; s < steps; s++) { /* the batches the trainer's steps take, from (epoch, pos) on */
        const size_t *batch = train_batch_next(c, n, &epoch, &pos, order, &order_epoch);
        int k = train_token_count(c, ps, batch, dp); /* once a step: O(batch) */
        z.kmax = k > z.kmax ? k : z.kmax;
        ksum += k;
        for (int d = 0; d < dp; d++) {
            const size_t *my = batch + (size_t)d * (size_t)B_loc;
            pairs_token_groups(ps, my, (int)B_loc, k, c->prefix_sharing, start);
            cut_sizes(c, ps, my, start, k, &z.tok, &z.att, &z.lp, sum);
        }
    }
    if (steps > 0) {
        z.kmean = ksum / (double)steps;
        double per = (double)steps * dp;
        z.tok_step = sum[0] / per, z.att_step = sum[1] / per, z.lp_step = sum[2] / per;
    }
    free(start);
    free(order);
    return z;
}

int train_eval_cut(const Config *c, const PairSet *ps, const size_t *idx, int n, int *start) {
    if (n <= 0) return 0;
    int k = pairs_token_groups_min(ps, idx, n, (size_t)c->micro_batch_tokens, c->prefix_sharing);
    pairs_token_groups(ps, idx, n, k, c->prefix_sharing, start);
    return k;
}

void train_eval_token_sizes(const Config *c, const PairSet *ps, int dp, size_t *tok, size_t *att, size_t *lp) {
    size_t n = ps->n, *idx = sd_alloc((n ? n : 1) * sizeof(size_t), "eval pairs");
    int *start = sd_alloc((n + 1) * sizeof(int), "micro-batch cut");
    for (size_t i = 0; i < n; i++) idx[i] = i;
    for (int d = 0; d < dp; d++) { /* train_eval.c's split: rank d takes [n d / dp, n (d + 1) / dp) */
        size_t lo = n * (size_t)d / (size_t)dp, hi = n * (size_t)(d + 1) / (size_t)dp;
        int k = train_eval_cut(c, ps, idx + lo, (int)(hi - lo), start);
        cut_sizes(c, ps, idx + lo, start, k, tok, att, lp, NULL);
    }
    free(start);
    free(idx);
}
