/* tokenizer.h — Hugging Face tokenizer.json (BPE models) in C: encode and decode.
 *
 * defines: Tokenizer, tokenizer_load, tokenizer_load_json, tokenizer_free, tokenizer_encode, tokenizer_decode,
 *          tokenizer_token_id, tokenizer_id_to_token, tokenizer_vocab_size.
 * Supported (what Llama 3, Llama 2, Mistral, Qwen, Gemma and GPT-style tokenizers declare):
 *   model: BPE (byte_fallback, ignore_merges, unk_token/fuse_unk; merges as "a b" strings or [a, b] pairs);
 *   normalizer: null, Sequence, Prepend, Replace (String pattern), NFC (needs utf8proc);
 *   pre_tokenizer: null, Sequence, Split (Regex through PCRE2, behavior Isolated), ByteLevel (add_prefix_space,
 *                  use_regex: the GPT-2 split), Metaspace (replacement, prepend_scheme, split), Digits;
 *   decoder: ByteLevel, Metaspace, Sequence, Replace, ByteFallback, Fuse, Strip.
 *   added_tokens (special or not) are matched in the raw text before normalization, leftmost-longest, as HF does
 *   (lstrip/rstrip honoured); they never go through the model.
 * Anything else (WordPiece, Unigram, an unknown normalizer or pre-tokenizer) is refused with an error naming the
 * file and the JSON path of what is unsupported. Post-processors are not applied: encode never adds BOS/EOS (chat
 * templates write them as text).
 * Ownership: tokenizer_load returns a Tokenizer the caller frees with tokenizer_free. tokenizer_encode returns a
 * malloc'd int array (caller frees) and its length in *n; tokenizer_decode returns a malloc'd NUL-terminated
 * UTF-8 string (caller frees). Strings passed in are borrowed.
 * Lengths are bytes for text, counts for ids. Thread-safety: encode/decode may run concurrently on one Tokenizer.
 */
#ifndef SD_TOKENIZER_H
#define SD_TOKENIZER_H
#include <stdbool.h>
#include <stddef.h>

typedef struct Tokenizer Tokenizer;

/* Loads DIR/tokenizer.json (DIR may also name the file itself). Dies (sd_die) naming the file on any error. */
Tokenizer *tokenizer_load(const char *dir_or_file);
/* Parses tokenizer.json text already in memory (NUL-terminated, len bytes); `name` is used in error messages.
 * Dies (sd_die) on malformed or unsupported input; what it allocated so far is released through
 * sd_cleanup_push/pop, so the fuzz harness's trapped sd_die leaks nothing. */
Tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name);
void tokenizer_free(Tokenizer *t);

/* Encodes len bytes of UTF-8 text (no special tokens added; added-token strings in the text are matched).
 * Invalid UTF-8 is handled as HF does for byte-level models (bytes map through the byte alphabet); returns NULL
 * only when the text cannot be encoded at all (no unk token and no byte fallback for a character), with the
 * reason in err when err != NULL. */
int *tokenizer_encode(const Tokenizer *t, const char *text, size_t len, size_t *n, char *err, size_t errlen);
/* Decodes ids as HF's decode(skip_special_tokens=False). Dies on an id outside the vocabulary. */
char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n);

/* Id of a token string (vocabulary or added token), -1 when absent. */
int tokenizer_token_id(const Tokenizer *t, const char *token);
/* The token string of an id (its vocabulary form, e.g. "Ġthe"), NULL when out of range. Borrowed. */
const char *tokenizer_id_to_token(const Tokenizer *t, int id);
/* One past the largest id (vocabulary and added tokens). */
int tokenizer_vocab_size(const Tokenizer *t);
#endif
