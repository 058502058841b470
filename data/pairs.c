/* pairs.c — see pairs.h.
 * Loading reads the JSONL file line by line, at most PAIRS_MAX_LINE_BYTES a line, and a pair may hold at most
 * PAIRS_MAX_PAIR_TOKENS tokens (both limits in pairs.h): a damaged or hostile file cannot make us allocate what it
 * likes. Error paths release what they hold
 * before sd_die so that a trapped error leaks nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pairs.h"
#include <cjson/cJSON.h>
#include "records.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

/* What pairs_load_jsonl holds while it reads: on sd_die's cleanup stack for the whole load, so any error (ours,
 * the record reader's, the tokenizer's or the chat template's) releases it. */
typedef struct {
    Records *rec;
    PairSet *ps;
} Load;

static void load_release(void *arg) {
    Load *L = arg;
    records_close(L->rec);
    pairs_free(L->ps);
}
SD_NORETURN SD_PRINTF(2, 3) static void load_die(Load *L, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sd_vdie(records_where(L->rec), fmt, ap);
}

/* An array of token ids (field `field` of the line's object); the caller frees. */
static int *read_ids(Load *L, const cJSON *obj, const char *field, int *n_out, int vocab, bool allow_empty) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, field);
    const char *what = allow_empty ? "an array of token ids" : "a non-empty array of token ids";
    if (!a) {
        char names[512];
        records_field_names(L->rec, obj, names, sizeof names);
        load_die(L, "field '%s' is missing (expected %s; the record has: %s)", field, what, names);
    }
    if (!cJSON_IsArray(a)) load_die(L, "field '%s': expected %s", field, what);
    int n = cJSON_GetArraySize(a);
    if (n == 0 && !allow_empty) load_die(L, "field '%s': expected %s", field, what);
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
            load_die(L, "field '%s': element %d is not an integer token id", field, i);
        if (x->valuedouble < 0) load_die(L, "field '%s': element %d is a negative token id", field, i);
        if (x->valuedouble > 2147483647.0)
            load_die(L, "field '%s': element %d (%.0f) is too large for a token id", field, i, x->valuedouble);
        if (vocab > 0 && x->valuedouble >= vocab)
            load_die(L, "field '%s': token id %d is outside the vocabulary (vocab_size %d)", field,
                     (int)x->valuedouble, vocab);
    }
    int *ids = sd_alloc(sizeof(int) * (size_t)(n ? n : 1), field);
    i = 0;
    for (const cJSON *x = a->child; x; x = x->next) ids[i++] = (int)x->valuedouble;
    *n_out = n;
    return ids;
}

/* One pair from a JSONL line's (or a Parquet row's) object into p (counted in L->ps already). */
static void pair_from_object(Load *L, const cJSON *obj, const PairsFormat *fmt, Pair *p) {
    const int vocab_size = fmt->vocab_size;
    if (!strcmp(fmt->format, "ids") || cJSON_GetObjectItemCaseSensitive(obj, "prompt_ids")) {
        p->prompt = read_ids(L, obj, "prompt_ids", &p->n_prompt, vocab_size, true);
        p->chosen = read_ids(L, obj, "chosen_ids", &p->n_chosen, vocab_size, false);
        p->rejected = read_ids(L, obj, "rejected_ids", &p->n_rejected, vocab_size, false);
    } else {
        char err[512];
        bool ok = pair_from_text(obj, fmt, records_where(L->rec), p, err, sizeof err);
        if (!ok && strstr(err, "missing")) { /* say what the record has instead */
            char names[512];
            records_field_names(L->rec, obj, names, sizeof names);
            load_die(L, "%s (the record has: %s)", err, names);
        }
        if (!ok) load_die(L, "%s", err);
    }
    if ((long)p->n_prompt + p->n_chosen > PAIRS_MAX_PAIR_TOKENS ||
        (long)p->n_prompt + p->n_rejected > PAIRS_MAX_PAIR_TOKENS)
        load_die(L, "a sequence of %d tokens (prompt %d + response %d) exceeds the limit of %d tokens", 
                 p->n_prompt + (p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected), p->n_prompt,
                 p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected, PAIRS_MAX_PAIR_TOKENS);
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(obj, "ref_chosen_logp"),
                *rr = cJSON_GetObjectItemCaseSensitive(obj, "ref_rejected_logp");
    if ((rc != NULL) != (rr != NULL))
        load_die(L, "field '%s' is missing (ref_chosen_logp and ref_rejected_logp come together)",
                 rc ? "ref_rejected_logp" : "ref_chosen_logp");
    if (rc) {
        if (!cJSON_IsNumber(rc)) load_die(L, "field 'ref_chosen_logp': expected a number");
        if (!cJSON_IsNumber(rr)) load_die(L, "field 'ref_rejected_logp': expected a number");
        p->has_ref = true;
        p->ref_chosen_logp = rc->valuedouble;
        p->ref_rejected_logp = rr->valuedouble;
    } else L->ps->all_have_ref = false;
}

PairSet *pairs_load_jsonl(const char *path, int vocab_size) {
    PairsFormat f = {"ids", NULL, NULL, vocab_size, false, false};
    return pairs_load_jsonl_fmt(path, &f);
}

/* A new, zeroed pair at the end of ps (counted now, so that pairs_free releases a half-read pair on an error). */
static Pair *new_pair(PairSet *ps, size_t *cap, int line) {
    if (ps->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        ps->pairs = sd_realloc(ps->pairs, sd_mul_size(*cap, sizeof(Pair), "pairs"), "pairs");
    }
    Pair *p = &ps->pairs[ps->n++];
    memset(p, 0, sizeof *p);
    p->line = line;
    return p;
}

PairSet *pairs_load_jsonl_fmt(const char *path, const PairsFormat *fmt) {
    /* the fields a pair may use: a Parquet file's other columns are not read */
    static const char *const fields[] = {"prompt_ids", "chosen_ids", "rejected_ids", "prompt", "chosen",
                                         "rejected", "ref_chosen_logp", "ref_rejected_logp"};
    Load L = {0};
    sd_cleanup_push(load_release, &L);
    L.rec = records_open(path, fields, (int)(sizeof fields / sizeof *fields));
    if (!records_has_field(L.rec, "chosen") && !records_has_field(L.rec, "chosen_ids")) {
        char names[512];
        records_field_names(L.rec, NULL, names, sizeof names);
        load_die(&L, "has neither a 'chosen' nor a 'chosen_ids' column (a preference dataset has prompt, chosen, "
                     "rejected, or prompt_ids, chosen_ids, rejected_ids; this one has: %s)", names);
    }
    L.ps = sd_calloc(1, sizeof(PairSet), "pairs");
    L.ps->source = sd_strdup(path);
    L.ps->all_have_ref = true;
    size_t cap = 0;
    const cJSON *obj;
    long num;
    while ((obj = records_next(L.rec, &num))) {
        if (num > INT32_MAX) load_die(&L, "beyond record %d", INT32_MAX);
        pair_from_object(&L, obj, fmt, new_pair(L.ps, &cap, (int)num));
    }
    if (L.ps->n == 0) load_die(&L, "holds no preference pairs (empty file)");
    records_close(L.rec);
    sd_cleanup_pop();
    return L.ps;
}

void pairs_free(PairSet *ps) {
    if (!ps) return;
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->pairs[i].prompt);
        free(ps->pairs[i].chosen);
        free(ps->pairs[i].rejected);
    }
    free(ps->pairs);
    free(ps->source);
    free(ps->note);
    free(ps);
}

void pairs_append(PairSet *dst, PairSet *src, size_t keep) {
    if (keep > src->n) sd_die(src->source, "%zu pairs asked of %zu", keep, src->n);
    Pair *all = realloc(dst->pairs, (dst->n + keep + 1) * sizeof *all);
    if (!all) sd_die("memory", "cannot grow a pair set to %zu pairs", dst->n + keep);
    dst->pairs = all;
    for (size_t i = 0; i < keep; i++) {
        if (!src->pairs[i].has_ref) dst->all_have_ref = false;
        dst->pairs[dst->n++] = src->pairs[i];
    }
    memmove(src->pairs, src->pairs + keep, (src->n - keep) * sizeof *src->pairs); /* the rest, freed with src */
    src->n -= keep;
    pairs_free(src);
}

/* TRL CPOTrainer.tokenize_row (which the SimPO trainer uses) with truncation_mode "keep_end":
 *     longer = max(len(chosen), len(rejected))
 *     if len(prompt) + longer > max_length:  prompt = prompt[-max_prompt_length:]
 *     if len(prompt) + longer > max_length:  chosen = chosen[:max_length - max_prompt_length]
 *                                            rejected = rejected[:max_length - max_prompt_length]
 * `longer` is taken before the responses are cut (as there). Requires 0 < max_prompt_length < max_length (the
 * config checks it; Python's prompt[-0:] would keep the whole prompt, which is not what anyone means). */
void pairs_truncate(PairSet *ps, int max_length, int max_prompt_length) {
    if (max_prompt_length <= 0 || max_prompt_length >= max_length)
        sd_die("pairs", "truncation needs 0 < max_prompt_length (%d) < max_length (%d)", max_prompt_length,
               max_length);
    int keep = max_length - max_prompt_length;
    for (size_t i = 0; i < ps->n; i++) {
        Pair *p = &ps->pairs[i];
        int longer = p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected;
        bool changed = false;
        if ((long)p->n_prompt + longer > max_length && p->n_prompt > max_prompt_length) {
            memmove(p->prompt, p->prompt + (p->n_prompt - max_prompt_length), sizeof(int) * (size_t)max_prompt_length);
            p->n_prompt = max_prompt_length;
            changed = true;
        }
        if ((long)p->n_prompt + longer > max_length) {
            if (p->n_chosen > keep) p->n_chosen = keep, changed = true;
            if (p->n_rejected > keep) p->n_rejected = keep, changed = true;
        }
        ps->n_truncated += changed;
    }
}

/* The epoch order (part of the checkpoint format: a resumed run recomputes it, so it must never change):
 *     order[i] = i for all i
 *     if shuffle: for i = n-1 down to 1:
 *         j = sd_hash64((uint64_t)seed, (uint64_t)epoch, (uint64_t)i) % (i + 1)
 *         swap(order[i], order[j])
 * i.e. Fisher-Yates from the back with the draw for position i taken from the counter-based hash at index i. */
void pairs_epoch_order(size_t *order, size_t n, bool shuffle, long seed, long epoch) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(sd_hash64((uint64_t)seed, (uint64_t)epoch, (uint64_t)i) % (uint64_t)(i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Sequence s = 2i + r (r = 0 chosen, 1 rejected) of pair i occupies [cu_seqlens[s], cu_seqlens[s+1]) and holds
 * prompt ++ response. Position k predicts token k+1: targets[k] = ids[k+1] when k+1 is a response position
 * (k+1 >= n_prompt) and k+1 is inside the sequence, else -1 (prompt positions, and the last position).
 * n_resp[s] counts the positions with a target, i.e. the response tokens that are predicted. With a non-empty
 * prompt that is the response length; with an EMPTY prompt the first response token has no preceding position,
 * cannot be predicted, and is not counted (n_resp = response length - 1). */
size_t pair_tokens(const Pair *p, bool share_prompt) {
    return (size_t)(share_prompt ? 1 : 2) * (size_t)p->n_prompt + (size_t)p->n_chosen + (size_t)p->n_rejected;
}

size_t pair_logprob_rows(const Pair *p) {
    return (size_t)(p->n_chosen + p->n_rejected) - (p->n_prompt == 0 ? 2 : 0);
}

static int cmp_size_desc(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* the sum of the mbp largest of a per-pair count: pair_tokens without prompt sharing (count 0), with it (1), or
 * pair_logprob_rows (2) */
static size_t largest_sum(const PairSet *ps, int mbp, int count) {
    size_t *t = sd_alloc((ps->n ? ps->n : 1) * sizeof(size_t), "pair lengths"), sum = 0;
    for (size_t i = 0; i < ps->n; i++)
        t[i] = count == 2 ? pair_logprob_rows(&ps->pairs[i]) : pair_tokens(&ps->pairs[i], count == 1);
    qsort(t, ps->n, sizeof(size_t), cmp_size_desc);
    for (size_t i = 0; i < ps->n && i < (size_t)mbp; i++) sum += t[i];
    free(t);
    return sum;
}
size_t pairs_largest_microbatch(const PairSet *ps, int mbp, bool share_prompt) {
    return largest_sum(ps, mbp, share_prompt ? 1 : 0);
}
size_t pairs_largest_logprob_rows(const PairSet *ps, int mbp) { return largest_sum(ps, mbp, 2); }

/* groups of the greedy cut at a limit: each group takes pairs while its sum stays <= limit (a pair above the limit
 * alone) */
static int greedy_groups(const PairSet *ps, const size_t *idx, int n, size_t limit, bool share) {
    int groups = 0;
    size_t sum = 0;
    for (int i = 0; i < n; i++) {
        size_t t = pair_tokens(&ps->pairs[idx[i]], share);
        if (i == 0 || sum + t > limit) groups++, sum = 0;
        sum += t;
    }
    return groups;
}
int pairs_token_groups_min(const PairSet *ps, const size_t *idx, int n, size_t budget, bool share_prompt) {
    return greedy_groups(ps, idx, n, budget, share_prompt);
}

void pairs_token_groups(const PairSet *ps, const size_t *idx, int n, int k, bool share_prompt, int *start) {
    if (k < 1 || k > n) sd_die("pairs", "%d token groups of %d pairs", k, n);
    /* the least limit whose greedy cut needs at most k groups (binary search between the longest pair and the
     * whole): greedy is optimal for a limit, so that limit is the least largest sum of any k-cut */
    size_t lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        size_t t = pair_tokens(&ps->pairs[idx[i]], share_prompt);
        lo = t > lo ? t : lo;
        hi += t;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (greedy_groups(ps, idx, n, mid, share_prompt) <= k) hi = mid;
        else lo = mid + 1;
    }
    /* the greedy cut at that limit, with a cut forced where the pairs left would be fewer than the groups still to
     * open (every group non-empty; a forced cut only shortens a group, so the limit holds) */
    int g = 0;
    size_t sum = 0;
    start[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t t = pair_tokens(&ps->pairs[idx[i]], share_prompt);
        bool cut = i > 0 && (sum + t > lo || n - i < k - g);
        if (cut) start[++g] = i, sum = 0;
        sum += t;
    }
    start[k] = n;
    if (g != k - 1) sd_die("pairs", "token groups: cut into %d groups, not %d", g + 1, k);
}

/* the next log-prob row: token tok (layers' layout) predicts tgt in sequence s; a repeat when seen[tok] is set */
static void add_lp_row(MicroBatch *mb, int s, int tok, int tgt, char *seen) {
    size_t r = mb->M++;
    mb->lp_tok[r] = tok;
    mb->lp_tgt[r] = tgt;
    mb->lp_seq[r] = s;
    if (seen[tok]) mb->lp_dup[mb->nlp_dup++] = (int)r;
    seen[tok] = 1;
}

MicroBatch *microbatch_pack_opts(const PairSet *ps, const size_t *idx, int P, bool share_prompt) {
    if (P < 0) sd_die("pairs", "micro-batch of %d pairs", P);
    MicroBatch *mb = sd_calloc(1, sizeof *mb, "micro-batch");
    mb->P = P;
    mb->S = 2 * P;
    mb->shared = share_prompt;
    size_t N = 0, NA = 0;
    for (int i = 0; i < P; i++) {
        if (idx[i] >= ps->n) sd_die("pairs", "pair index %zu out of range (%zu pairs)", idx[i], ps->n);
        N += pair_tokens(&ps->pairs[idx[i]], share_prompt);
        NA += pair_tokens(&ps->pairs[idx[i]], false);
    }
    if (NA > 2147483647u) sd_die("pairs", "micro-batch of %zu tokens exceeds the int range", NA);
    mb->Ntok = N;
    mb->Natt = NA;
    size_t n1 = N ? N : 1, na1 = NA ? NA : 1;
    mb->ids = sd_alloc(sizeof(int) * n1, "ids");
    mb->targets = sd_alloc(sizeof(int) * n1, "targets");
    mb->pos = sd_alloc(sizeof(int) * n1, "positions");
    mb->seq_of = sd_alloc(sizeof(int) * n1, "sequence index");
    mb->cu_seqlens = sd_alloc(sizeof(int) * (size_t)(mb->S + 1), "cu_seqlens");
    mb->n_resp = sd_alloc(sizeof(int) * (size_t)(mb->S ? mb->S : 1), "response lengths");
    mb->pair_index = sd_alloc(sizeof(size_t) * (size_t)(P ? P : 1), "pair index");
    mb->pairs = sd_alloc(sizeof(Pair *) * (size_t)(P ? P : 1), "pair views");
    mb->lp_tok = sd_alloc(sizeof(int) * 4 * na1, "log-prob rows");
    mb->lp_tgt = mb->lp_tok + na1, mb->lp_seq = mb->lp_tgt + na1, mb->lp_dup = mb->lp_seq + na1;
    if (share_prompt) {
        mb->xrow = sd_alloc(sizeof(int) * na1, "attention rows");
        mb->xfirst = sd_alloc(sizeof(int) * n1, "attention rows");
        mb->dup_tok = sd_alloc(sizeof(int) * 2 * na1, "shared prompt rows");
        mb->dup_row = mb->dup_tok + na1;
        mb->skip = sd_alloc(sizeof(int) * (size_t)(mb->S ? mb->S : 1), "shared prompt rows");
    }
    char *seen = sd_calloc(n1, 1, "log-prob rows");
    int *ids_att = sd_alloc(sizeof(int) * na1, "ids"); /* one sequence's ids */
    size_t t = 0, a = 0; /* token, attention row */
    for (int i = 0; i < P; i++) {
        const Pair *p = &ps->pairs[idx[i]];
        mb->pair_index[i] = idx[i];
        mb->pairs[i] = p;
        int np = p->n_prompt;
        size_t t_prompt = t; /* the shared prompt's first token */
        for (int r = 0; r < 2; r++) {
            int s = 2 * i + r, nr = r ? p->n_rejected : p->n_chosen;
            const int *resp = r ? p->rejected : p->chosen;
            int len = np + nr;
            mb->cu_seqlens[s] = (int)a;
            mb->n_resp[s] = 0;
            /* tokens this sequence adds to the layers' layout: its prompt (unless the chosen one's is shared),
             * then its response */
            int k0 = share_prompt && r ? np : 0;
            if (share_prompt) mb->skip[s] = k0;
            for (int k = 0; k < len; k++) {
                ids_att[k] = k < np ? p->prompt[k] : resp[k - np];
                if (share_prompt) {
                    size_t tok = k < np ? t_prompt + (size_t)k : t + (size_t)(k - k0);
                    mb->xrow[a + (size_t)k] = (int)tok;
                    if (k >= k0) mb->xfirst[tok] = (int)(a + (size_t)k);
                    else {
                        mb->dup_tok[mb->ndup] = (int)tok;
                        mb->dup_row[mb->ndup++] = (int)(a + (size_t)k);
                    }
                }
                if (k < k0) continue;
                size_t tt = t + (size_t)(k - k0);
                mb->ids[tt] = ids_att[k];
                mb->pos[tt] = k;
                mb->seq_of[tt] = s;
            }
            for (int k = 0; k < len; k++) {
                bool is_resp = k + 1 < len && k + 1 >= np;
                mb->n_resp[s] += is_resp;
                if (k >= k0) mb->targets[t + (size_t)(k - k0)] = is_resp ? ids_att[k + 1] : -1;
                if (is_resp) add_lp_row(mb, s, share_prompt ? mb->xrow[a + (size_t)k] : (int)(a + (size_t)k),
                                        ids_att[k + 1], seen);
            }
            t += (size_t)(len - k0);
            a += (size_t)len;
        }
    }
    mb->cu_seqlens[mb->S] = (int)a;
    free(seen);
    free(ids_att);
    return mb;
}

MicroBatch *microbatch_pack(const PairSet *ps, const size_t *idx, int P) {
    return microbatch_pack_opts(ps, idx, P, false);
}

void microbatch_free(MicroBatch *mb) {
    if (!mb) return;
    free(mb->ids);
    free(mb->targets);
    free(mb->pos);
    free(mb->seq_of);
    free(mb->cu_seqlens);
    free(mb->n_resp);
    free(mb->pair_index);
    free(mb->pairs);
    free(mb->lp_tok);
    free(mb->xrow);
    free(mb->xfirst);
    free(mb->dup_tok);
    free(mb->skip);
    free(mb);
}

uint64_t pairs_fingerprint(const PairSet *ps) {
    uint64_t h = SD_FNV_OFFSET;
    for (size_t i = 0; i < ps->n; i++) {
        const Pair *p = &ps->pairs[i];
        const int *ids[3] = {p->prompt, p->chosen, p->rejected};
        int n[3] = {p->n_prompt, p->n_chosen, p->n_rejected};
        for (int k = 0; k < 3; k++) {
            h = sd_fnv1a(h, &n[k], sizeof n[k]);
            h = sd_fnv1a(h, ids[k], (size_t)n[k] * sizeof(int));
        }
        unsigned char ref = p->has_ref;
        h = sd_fnv1a(h, &ref, 1);
        if (p->has_ref) {
            h = sd_fnv1a(h, &p->ref_chosen_logp, sizeof(double));
            h = sd_fnv1a(h, &p->ref_rejected_logp, sizeof(double));
        }
    }
    return h;
}
