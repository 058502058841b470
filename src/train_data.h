/* train_data.h — loading the training pairs a config names (data.* keys).
 *
 * defines: train_data_load, train_data_load_path, train_data_load_truncated, train_eval_data_load, train_data_sizes,
 *          pairs_load_any, train_model_config.
 * data.train may be an HDF5 dataset written by `simpo_dist prepare` (recognised by its signature) or JSONL whose
 * lines are token ids, chat messages or text (data.format, data.tokenizer, data.chat_template; data/pairs.h).
 * Untruncated (but train_data_load_truncated, train_eval_data_load): the caller applies pairs_truncate. Ownership: the caller frees the PairSet with pairs_free.
 * vocab_size > 0 checks every id against the model's vocabulary.
 */
#ifndef SD_TRAIN_DATA_H
#define SD_TRAIN_DATA_H
#include "config.h"
#include "pairs.h"

PairSet *train_data_load(const Config *c, int vocab_size);
/* The same for another file with the config's data settings (prepare, analyze). */
PairSet *train_data_load_path(const Config *c, const char *path, int vocab_size);
/* data.train's pairs as the trainer reads them: checked (reference log-probs where loss.type needs them; at least
 * one pair) and truncated (data.max_length, data.max_prompt_length; PairSet.n_truncated counts them). */
PairSet *train_data_load_truncated(const Config *c, int vocab_size);
/* data.eval's held-out pairs, checked and truncated alike; NULL without data.eval. */
PairSet *train_eval_data_load(const Config *c, int vocab_size);
/* The largest micro-batch of train.micro_batch_pairs pairs that train or eval (NULL: none) can form, what the
 * activations are sized for: its tokens in the layers' layout (data.prefix_sharing), in attention's sequences, and
 * its log-prob rows (pairs.h pairs_largest_microbatch, pairs_largest_logprob_rows). */
void train_data_sizes(const Config *c, const PairSet *train, const PairSet *eval, size_t *layer_tokens,
                      size_t *att_tokens, size_t *lp_rows);
/* The steps of a run on n training pairs: train.max_steps, else train.epochs of whole global batches (the incomplete
 * tail of an epoch dropped); *per_epoch (NULL: not wanted) the steps of an epoch. Dies naming data.train when n
 * holds no whole global batch. */
long train_total_steps(const Config *c, size_t n, long *per_epoch);
/* The next global batch from data position (*epoch, *pos), which it advances (an incomplete tail skipped: the next
 * epoch starts), in order[n] (the epoch order, remade when *order_epoch is not *epoch): its train.global_batch_pairs
 * pair indices start at the returned pointer, valid until the next call. What the trainer's steps take. */
const size_t *train_batch_next(const Config *c, size_t n, long *epoch, long *pos, size_t *order, long *order_epoch);
/* train.micro_batch_tokens: the micro-batches every one of dp ranks runs in the step of global batch idx (each rank
 * its block of global_batch_pairs / dp pairs): as many as the rank that needs the most (every rank computes the same
 * count from the whole batch, so the pipeline's and ZeRO-2's per-micro-batch collectives match). */
int train_token_count(const Config *c, const PairSet *ps, const size_t *idx, int dp);
/* ... and rank r's cut of its pairs into them (pairs.h pairs_token_groups): start[0..k]; returns k. */
int train_token_cut(const Config *c, const PairSet *ps, const size_t *idx, int dp, int r, int *start);
/* train.micro_batch_tokens for the held-out evaluation: n pairs idx[0..n) of one DP rank (train_eval.h's split) cut
 * into the fewest micro-batches of at most the budget, balanced (no count to agree on: the evaluation runs no
 * collective per micro-batch across DP): start[0..k]; returns k (0 for no pairs). */
int train_eval_cut(const Config *c, const PairSet *ps, const size_t *idx, int n, int *start);
/* The largest of those micro-batches over every rank of dp (what the activations hold for the evaluation): its
 * tokens in the layers' layout, in attention's sequences and its log-prob rows, each only raised. */
void train_eval_token_sizes(const Config *c, const PairSet *ps, int dp, size_t *tok, size_t *att, size_t *lp);
typedef struct {
    size_t tok, att, lp;
    int kmax;
    double kmean, att_step, tok_step, lp_step;
} TokenSizes;
/* train.micro_batch_tokens over `steps` steps of a run on dp ranks from data position (epoch, pos) (0, 0: the run's
 * start; a resumed run's checkpoint position: the batches it will take, whatever batch size or seed the run that
 * wrote it had; its batches are a function of the seed and the epoch, known in advance): the largest micro-batch's
 * tokens in the layers' layout (tok), in attention's sequences (att), its log-prob rows (lp), the most
 * micro-batches a rank runs in a step (kmax) and their mean (kmean), the tokens of attention's sequences, in the
 * layers' layout and the log-prob rows of all the steps' pairs per rank and step (att_step, tok_step, lp_step:
 * means; the planner's time). */
TokenSizes train_token_sizes(const Config *c, const PairSet *ps, long epoch, long pos, long steps, int dp);
/* Without a config: format "auto"|"ids"|"chat"|"text" (NULL: auto), tokenizer_dir (NULL: ids only), chat_family
 * (NULL or "auto": recognised from tokenizer_config.json), insert_empty_system as data.insert_empty_system,
 * simpo_reference as data.chat_convention simpo_reference. Used by
 * score, analyze and the trainer. */
PairSet *pairs_load_any(const char *path, int vocab_size, const char *format, const char *tokenizer_dir,
                        const char *chat_family, bool insert_empty_system, bool simpo_reference);
/* The model's HF config: model.init's config.json, or the model.config mapping. */
ModelConfig train_model_config(const Config *c);
#endif
