/* generate.h — autoregressive decoding with a KV cache over a loaded Model: prefill, then one token per step.
 *
 * defines: Generator, GenParams, GenResult, GenStop, gen_create, gen_free, gen_reset, gen_len, gen_feed,
 *          gen_sample, gen_uniform, gen_check_prompt, gen_generate, gen_result_free, gen_stop_name.
 * Scope: one rank (tp = 1, pp = 1) on the CPU backend (backend memory is host memory); the weights are the
 * Model's flat fp32 parameters, read in place. The decoder computes exactly the blocks of model.c (RMSNorm, HF
 * rotate_half RoPE from the model's tables, grouped-query attention, SwiGLU, final norm, LM head; for Gemma 2 the
 * embedding scale, scaled / soft-capped / sliding-window attention, sandwich norms, GeGLU and the final logit
 * soft-cap) but keeps the
 * post-RoPE keys and the values of every fed position in a cache [L, cap, NKV*HD], so each new token costs one
 * row per layer. Only the last fed position reaches the LM head.
 * Sampling: temperature 0 is greedy (argmax, lowest id on ties); otherwise softmax(logits / T), restricted to the
 * top-p nucleus (the smallest set, by probability and then id, whose mass reaches p), drawn with the uniform
 * gen_uniform(seed, stream, step): a pure function of those three numbers, so a run is reproducible and the
 * prompts of a file do not influence each other.
 * Ownership: Generator owns its cache and scratch (gen_free); the Model is borrowed and must outlive it.
 * GenResult owns ids and logp (gen_result_free). Logits returned by gen_feed are a view into the Generator.
 */
#ifndef SD_GENERATE_H
#define SD_GENERATE_H
#include <stdint.h>
#include "model.h"

typedef struct Generator Generator;

/* Why generation ended: the token budget, a stop token (included in the output), or the model's context
 * (prompt + output = max_position_embeddings). */
typedef enum { GEN_STOP_LENGTH = 0, GEN_STOP_EOS, GEN_STOP_CONTEXT } GenStop;

typedef struct {
    int max_new_tokens;      /* >= 0 */
    double temperature;      /* 0: greedy; > 0: sampling */
    double top_p;            /* (0, 1]; 1 keeps the whole vocabulary */
    uint64_t seed, stream;   /* the draw of step t is gen_uniform(seed, stream, t) */
    const int *stop_ids;     /* [n_stop] tokens that end generation (EOS, end of turn); borrowed */
    int n_stop;
} GenParams;

typedef struct {
    int *ids;                /* [n] generated tokens; a stop token that ended generation is the last one */
    double *logp;            /* [n] log-softmax of the model's logits (temperature 1, no filtering) at each token */
    int n;
    GenStop stop;
} GenResult;

/* A decoder whose cache holds up to `cap` positions (1 <= cap <= max_position_embeddings). Dies naming the
 * reason when the model is split (tp or pp > 1) or not on the CPU backend. */
Generator *gen_create(Model *m, int cap);
void gen_free(Generator *g);
/* Empties the cache: the next gen_feed starts at position 0. */
void gen_reset(Generator *g);
/* Positions in the cache. */
int gen_len(const Generator *g);
/* Runs ids[0..n) at the next n positions (prefill in chunks, or one decode step when n = 1), appending their
 * keys and values to the cache, and returns the logits [V] of the last of them (host memory, valid until the
 * next call). Dies when the cache would overflow or an id is outside the vocabulary. */
const float *gen_feed(Generator *g, const int *ids, int n);

/* Picks a token from logits[0..V): the argmax (lowest id on ties) when temperature == 0, else the token of the
 * temperature-scaled, top-p-filtered distribution whose cumulative mass (in descending probability, then
 * ascending id, when top_p < 1; in id order otherwise) first exceeds u * (kept mass), u in [0, 1). */
int gen_sample(const float *logits, int V, double temperature, double top_p, double u);
/* Uniform in [0, 1) from sd_hash64(seed, stream, step) (53 bits). */
double gen_uniform(uint64_t seed, uint64_t stream, uint64_t step);

/* Checks a prompt before any work: non-empty, ids in [0, V), and shorter than the context max_pos (the model
 * must be able to place at least one new token). Dies with `where` (file:line, a flag) and both numbers. */
void gen_check_prompt(const int *ids, int n, int V, int max_pos, const char *where);
/* Resets the cache, prefills prompt[0..n_prompt) and generates up to p->max_new_tokens tokens, stopping at a
 * stop token, at the budget, or when prompt + output reach max_position_embeddings. The cache must hold
 * min(max_position_embeddings, n_prompt + max_new_tokens) positions. Errors (gen_check_prompt) name `where`. */
GenResult gen_generate(Generator *g, const int *prompt, int n_prompt, const GenParams *p, const char *where);
void gen_result_free(GenResult *r);
/* "length", "stop" (a stop token) or "context" — the finish_reason written by `simpo_dist generate`. */
const char *gen_stop_name(GenStop s);
#endif
