/* pairs.h — preference pairs: loading pre-tokenized JSONL, truncation, epoch order, micro-batch packing.
 *
 * defines: Pair, PairSet, pairs_load_jsonl, pairs_free, pairs_truncate, pairs_epoch_order, MicroBatch, pair_tokens,
 *          pair_logprob_rows, pairs_largest_microbatch, pairs_largest_logprob_rows,
 *          microbatch_pack, microbatch_pack_opts, microbatch_free.
 * JSONL line: {"prompt_ids": [int...], "chosen_ids": [int...], "rejected_ids": [int...],
 *              optional "ref_chosen_logp": float, "ref_rejected_logp": float}. Unknown fields are ignored.
 * Errors: sd_die("<file>:<line>", "...") naming the field and what was expected (empty chosen/rejected,
 * missing field, non-integer id, id outside [0, vocab) when vocab > 0, invalid JSON).
 * Ownership: PairSet owns every Pair's arrays; MicroBatch owns its arrays (microbatch_free).
 */
#ifndef SD_PAIRS_H
#define SD_PAIRS_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* Limits on one JSONL line and one pair (prompt + the longer response), errors naming the line beyond them: far
 * above any real preference pair (UltraFeedback's longest lines are ~100 KB), far below what would exhaust memory. */
#define PAIRS_MAX_LINE_BYTES (64 << 20)
#define PAIRS_MAX_PAIR_TOKENS (1 << 20)

typedef struct {
    int *prompt, *chosen, *rejected;       /* token ids */
    int n_prompt, n_chosen, n_rejected;
    bool has_ref;
    double ref_chosen_logp, ref_rejected_logp;
    int line;                              /* 1-based line in the source file (a Parquet or Arrow row) */
} Pair;

typedef struct {
    Pair *pairs;
    size_t n;
    bool all_have_ref;                     /* every pair carries ref_chosen_logp and ref_rejected_logp */
    size_t n_truncated;                    /* pairs changed by pairs_truncate */
    char *source;
    char *note;                            /* a mixture's make-up, "a.jsonl 100 of 100, b.jsonl 25 of 100" (owned;
                                            * NULL for one file) */
} PairSet;

/* vocab_size > 0 checks every id against it. Dies on the first malformed line. Token-id lines only. */
PairSet *pairs_load_jsonl(const char *path, int vocab_size);

/* How JSONL lines become pairs (data.format). With a tokenizer, lines may also be
 *   chat: {"prompt": str | [messages], "chosen": [messages] | str, "rejected": [messages] | str}, UltraFeedback style:
 *         when chosen is a message list of 2+ messages, the prompt is chosen[:-1] (rejected[:-1] must equal it) and
 *         `prompt` is optional; the prompt is rendered with the chat template and the generation prompt, each
 *         response is its last message's content, stripped, + the end-of-turn token (chat_template.h);
 *   text: {"prompt": str, "chosen": str, "rejected": str} encoded verbatim (no BOS/EOS added; special-token
 *         strings in the text are matched).
 * "auto" takes a line with prompt_ids as ids, otherwise chat when a chat template is given, else text.
 * Tokenizer and chat template are borrowed. */
struct Tokenizer;
struct ChatTemplate;
typedef struct {
    const char *format;                 /* "auto" | "ids" | "chat" | "text" */
    const struct Tokenizer *tok;        /* NULL: only id lines */
    const struct ChatTemplate *chat;    /* NULL: no chat lines */
    int vocab_size;                     /* > 0: every id (given or produced) is checked against it */
    bool insert_empty_system;           /* data.insert_empty_system: chat prompts without a system message get an
                                           empty one where the template wants it (chat_wants_empty_system) */
    bool simpo_reference;               /* data.chat_convention simpo_reference: chat pairs as the SimPO reference
                                           run script and trainer form them (pairs_text.c reference_pair) */
} PairsFormat;
/* The pairs of path, whatever holds them (data/records.h: JSONL, a JSON array, Parquet, Arrow / a save_to_disk
 * directory): each record read as a JSONL line (Pair.line: its line, or its row). A Parquet or Arrow file without a
 * chosen or chosen_ids column is refused at once, naming its columns. */
PairSet *pairs_load_jsonl_fmt(const char *path, const PairsFormat *fmt);
/* The tokenized dataset in HDF5 (layout in data/pairs_h5.c and docs/formats.md). pairs_write_h5 writes PATH.tmp
 * and renames it; tokenizer and data_format are recorded as attributes (may be NULL). pairs_load_h5 checks every
 * size, offset and id (vocab_size > 0) and dies naming the file and dataset. */
void pairs_write_h5(const PairSet *ps, const char *path, const char *tokenizer, const char *data_format);
PairSet *pairs_load_h5(const char *path, int vocab_size);
/* Whether path starts with the HDF5 signature. */
bool pairs_is_h5(const char *path);
/* A JSON message list [{"role": str, "content": str}, ...] (field names it in errors) into *msgs[*n], views into
 * the cJSON tree (the array is malloc'd, the caller frees it). Returns false with a message in err when it is not a
 * non-empty list of such messages (at most 4096). ChatMessage: data/chat_template.h. */
struct ChatMessage;
struct cJSON;
bool pairs_read_messages(const struct cJSON *a, const char *field, struct ChatMessage **msgs, int *n, char *err,
                         size_t errlen);
/* One chat/text line (cJSON object) into p->prompt/chosen/rejected. Returns false with a message in err when the
 * line is malformed (missing field, wrong type, empty response, rejected by the template). (data/pairs_text.c) */
bool pair_from_text(const struct cJSON *obj, const PairsFormat *fmt, const char *where, Pair *p, char *err,
                    size_t errlen);
void pairs_free(PairSet *ps);
/* A 64-bit fingerprint (FNV-1a) of the pairs in order: each one's token ids (prompt, chosen, rejected, with their
 * counts) and reference log-probs (their bits, where present). What a resumed run compares with its checkpoint's
 * (checkpoint.check_data): the same file, mixture and truncation give the same value. */
uint64_t pairs_fingerprint(const PairSet *ps);
/* Moves the first keep (<= src->n) pairs of src to the end of dst, in order, and frees src with the others
 * (a data mixture, train_data.c); dst->all_have_ref then holds for the pairs dst holds. */
void pairs_append(PairSet *dst, PairSet *src, size_t keep);

/* Truncation as the SimPO reference trainer (TRL CPOTrainer, truncation_mode keep_end): with
 * longer = max(n_chosen, n_rejected): if n_prompt + longer > max_length, keep the last max_prompt_length prompt
 * tokens; if still n_prompt + longer > max_length, cut each response to max_length - max_prompt_length tokens.
 * Counts changed pairs in ps->n_truncated. */
void pairs_truncate(PairSet *ps, int max_length, int max_prompt_length);

/* order[0..n) for epoch `epoch`: identity when !shuffle, else a Fisher-Yates permutation drawn from
 * sd_hash64(seed, epoch, ·) — a pure function of (n, seed, epoch), so resume and any DP layout see one order. */
void pairs_epoch_order(size_t *order, size_t n, bool shuffle, long seed, long epoch);

/* A micro-batch of whole pairs packed back to back without padding. Attention's layout: sequence 2i is pair i's
 * chosen (prompt + chosen), 2i+1 its rejected (prompt + rejected), cu_seqlens over Natt rows. The layers' layout
 * (ids, pos, ...: what every token-wise op, the pipeline and the embedding see) is the same, Ntok = Natt, unless
 * the prompt is shared (prefix sharing, data.prefix_sharing): then each pair is [prompt | chosen | rejected], its
 * prompt once (the two sequences' prompts are the same tokens at the same positions, and under causal attention
 * they have the same hidden states), and attention gathers its layout from the layers' rows (xrow) and hands
 * back each token's copy (xfirst); Ntok = Natt - the prompt tokens.
 *   ids[Ntok]          input token of each position
 *   targets[Ntok]      next token within the sequence; -1 where no log-prob is taken (a shared prompt's last token:
 *                      the chosen one's first token; lp_* below is the whole list)
 *   pos[Ntok]          position inside its sequence (0-based)
 *   seq_of[Ntok]       sequence index of each position (a shared prompt token: the chosen sequence)
 *   cu_seqlens[S+1]    sequence offsets in attention's layout
 *   n_resp[S]          response tokens per sequence (log-prob count)
 *   pair_index[P]      global index (into PairSet) of each pair
 *   M, lp_tok/lp_tgt/lp_seq[M]: the log-prob rows in sequence order: a token (layers' layout) whose next token in
 *                      sequence lp_seq is the response token lp_tgt. With a shared prompt its last token is two rows
 *                      (it predicts both responses' first token); lp_dup[nlp_dup] lists the rows (index < M) whose
 *                      token an earlier row has.
 *   shared prompt only (else NULL, 0): xrow[Natt] the token of each attention row; xfirst[Ntok] the attention row
 *                      that is each token's own (a prompt token's: in the chosen sequence); dup_tok[ndup],
 *                      dup_row[ndup] each prompt token and its second attention row (in the rejected sequence);
 *                      skip[S] the leading rows of each sequence that are copies of the previous sequence's first
 *                      rows (the rejected sequence's prompt: n_prompt; the chosen sequence's: 0), as attention on
 *                      the layers' rows takes them (backend.h attn_fwd_b16_rows).
 */
typedef struct {
    int P, S;                 /* pairs, sequences (= 2P) */
    size_t Ntok;              /* tokens in the layers' layout */
    size_t Natt;              /* rows in attention's layout: the chosen and rejected sequences' tokens */
    bool shared;              /* each pair's prompt once (prefix sharing) */
    int *ids, *targets, *pos, *seq_of;
    int *cu_seqlens;          /* [S+1] */
    int *n_resp;              /* [S] */
    size_t *pair_index;       /* [P] */
    const Pair **pairs;       /* [P] views into the PairSet (not owned) */
    size_t M;                 /* log-prob rows */
    int nlp_dup;
    int *lp_tok, *lp_tgt, *lp_seq, *lp_dup; /* [M] each (lp_dup: [nlp_dup]); one allocation from lp_tok */
    int *xrow, *xfirst;       /* shared prompt: [Natt], [Ntok] */
    int ndup;
    int *dup_tok, *dup_row;   /* shared prompt: [ndup] each; one allocation from dup_tok */
    int *skip;                /* shared prompt: [S] */
} MicroBatch;

/* Tokens a pair puts into the layers' layout: 2 n_prompt + n_chosen + n_rejected, or with its prompt shared
 * n_prompt + n_chosen + n_rejected. */
size_t pair_tokens(const Pair *p, bool share_prompt);
/* Its log-prob rows (MicroBatch M): position t predicts token t+1, so each response gives its length after a
 * non-empty prompt, one less after an empty one. */
size_t pair_logprob_rows(const Pair *p);
/* Tokens of the largest micro-batch of mbp pairs ps can form: the sum of its mbp longest pairs' pair_tokens (what
 * the trainer sizes its activations for, and `plan --from-data`). */
size_t pairs_largest_microbatch(const PairSet *ps, int mbp, bool share_prompt);
/* Log-prob rows of the micro-batch of mbp pairs with the most: the sum of the mbp largest pair_logprob_rows (what the
 * trainer sizes the LM-head logits cache for). */
size_t pairs_largest_logprob_rows(const PairSet *ps, int mbp);
/* Micro-batches by tokens (train.micro_batch_tokens): the pairs ps->pairs[idx[0..n)] in order, cut into contiguous
 * groups by their pair_tokens(share_prompt).
 * pairs_token_groups_min: the fewest groups of at most budget tokens each (a pair longer than budget alone: a group
 * of its own). n = 0: 0.
 * pairs_token_groups: exactly k groups (1 <= k <= n), non-empty, whose largest sum is the least any cut into k
 * contiguous groups has (so at most max(budget, its longest pair) when k >= pairs_token_groups_min(budget)), a greedy cut:
 * start[0..k] (start[0] = 0, start[k] = n), group g holds idx[start[g] .. start[g+1]). Deterministic: the same
 * pairs give the same cut on every rank. */
int pairs_token_groups_min(const PairSet *ps, const size_t *idx, int n, size_t budget, bool share_prompt);
void pairs_token_groups(const PairSet *ps, const size_t *idx, int n, int k, bool share_prompt, int *start);
/* Packs pairs ps->pairs[idx[0..P)] into a new MicroBatch, sharing each pair's prompt when share_prompt. */
MicroBatch *microbatch_pack_opts(const PairSet *ps, const size_t *idx, int P, bool share_prompt);
/* microbatch_pack_opts without sharing. */
MicroBatch *microbatch_pack(const PairSet *ps, const size_t *idx, int P);
void microbatch_free(MicroBatch *mb);
#endif
