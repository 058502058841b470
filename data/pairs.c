/* pairs.c — see pairs.h. */
#define _GNU_SOURCE
#include "pairs.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

/* An array of token ids; dies naming file:line and the field. */
static int *read_ids(const cJSON *o, const char *field, int *n_out, int vocab, int allow_empty, const char *where) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!a) sd_die(where, "field '%s' is missing (expected an array of token ids)", field);
    if (!cJSON_IsArray(a)) sd_die(where, "field '%s': expected an array of token ids", field);
    int n = cJSON_GetArraySize(a);
    if (n == 0 && !allow_empty) sd_die(where, "field '%s': expected a non-empty array of token ids", field);
    int *ids = sd_alloc(sizeof(int) * (size_t)(n ? n : 1), field);
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 ||
            x->valuedouble > 2147483647.0)
            sd_die(where, "field '%s': element %d is not a non-negative integer token id", field, i);
        ids[i] = (int)x->valuedouble;
        if (vocab > 0 && ids[i] >= vocab)
            sd_die(where, "field '%s': token id %d is outside the vocabulary (vocab_size %d)", field, ids[i], vocab);
    }
    *n_out = n;
    return ids;
}

PairSet *pairs_load_jsonl(const char *path, int vocab_size) {
    FILE *f = fopen(path, "r");
    if (!f) sd_die(path, "cannot open: %s", strerror(errno));
    PairSet *ps = sd_calloc(1, sizeof *ps, "pairs");
    ps->source = sd_strdup(path);
    size_t cap = 0;
    char *line = NULL, where[4096];
    size_t lcap = 0;
    ssize_t len;
    int lineno = 0;
    ps->all_have_ref = true;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        int blank = 1;
        for (ssize_t i = 0; i < len && blank; i++) blank = (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r');
        if (blank) continue;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        cJSON *o = cJSON_Parse(line);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            sd_die(where, "invalid JSON (expected one object per line with prompt_ids, chosen_ids, rejected_ids)");
        }
        if (ps->n == cap) {
            cap = cap ? 2 * cap : 256;
            ps->pairs = sd_realloc(ps->pairs, cap * sizeof(Pair), "pairs");
        }
        Pair *p = &ps->pairs[ps->n];
        memset(p, 0, sizeof *p);
        p->line = lineno;
        p->prompt = read_ids(o, "prompt_ids", &p->n_prompt, vocab_size, 1, where);
        p->chosen = read_ids(o, "chosen_ids", &p->n_chosen, vocab_size, 0, where);
        p->rejected = read_ids(o, "rejected_ids", &p->n_rejected, vocab_size, 0, where);
        const cJSON *rw = cJSON_GetObjectItemCaseSensitive(o, "ref_chosen_logp"),
                    *rl = cJSON_GetObjectItemCaseSensitive(o, "ref_rejected_logp");
        if ((rw != NULL) != (rl != NULL))
            sd_die(where, "field '%s' is missing (ref_chosen_logp and ref_rejected_logp come together)",
                   rw ? "ref_rejected_logp" : "ref_chosen_logp");
        if (rw) {
            if (!cJSON_IsNumber(rw) || !cJSON_IsNumber(rl))
                sd_die(where, "fields 'ref_chosen_logp', 'ref_rejected_logp': expected numbers");
            p->has_ref = true;
            p->ref_chosen_logp = rw->valuedouble;
            p->ref_rejected_logp = rl->valuedouble;
        } else ps->all_have_ref = false;
        ps->n++;
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (ps->n == 0) sd_die(path, "holds no preference pairs");
    return ps;
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
    free(ps);
}

void pairs_truncate(PairSet *ps, int max_length, int max_prompt_length) {
    for (size_t i = 0; i < ps->n; i++) {
        Pair *p = &ps->pairs[i];
        int longer = p->n_chosen > p->n_rejected ? p->n_chosen : p->n_rejected, changed = 0;
        if (p->n_prompt + longer > max_length && p->n_prompt > max_prompt_length) {
            /* keep_end: the prompt keeps its last max_prompt_length tokens */
            memmove(p->prompt, p->prompt + (p->n_prompt - max_prompt_length), sizeof(int) * (size_t)max_prompt_length);
            p->n_prompt = max_prompt_length;
            changed = 1;
        }
        if (p->n_prompt + longer > max_length) {
            int keep = max_length - max_prompt_length;
            if (p->n_chosen > keep) p->n_chosen = keep, changed = 1;
            if (p->n_rejected > keep) p->n_rejected = keep, changed = 1;
        }
        ps->n_truncated += (size_t)changed;
    }
}

/* Fisher-Yates from the back: for i = n-1 .. 1, j = sd_hash64(seed, epoch, i) % (i + 1), swap(order[i], order[j]).
 * Part of the checkpoint format: resume relies on the same order for the same (n, seed, epoch). */
void pairs_epoch_order(size_t *order, size_t n, bool shuffle, long seed, long epoch) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)(sd_hash64((uint64_t)seed, (uint64_t)epoch, i) % (uint64_t)(i + 1));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

MicroBatch *microbatch_pack(const PairSet *ps, const size_t *idx, int P) {
    MicroBatch *mb = sd_calloc(1, sizeof *mb, "micro-batch");
    mb->P = P;
    mb->S = 2 * P;
    size_t N = 0;
    for (int i = 0; i < P; i++) {
        const Pair *p = &ps->pairs[idx[i]];
        N += (size_t)2 * p->n_prompt + p->n_chosen + p->n_rejected;
    }
    mb->Ntok = N;
    mb->ids = sd_alloc(sizeof(int) * (N ? N : 1), "ids");
    mb->targets = sd_alloc(sizeof(int) * (N ? N : 1), "targets");
    mb->pos = sd_alloc(sizeof(int) * (N ? N : 1), "positions");
    mb->seq_of = sd_alloc(sizeof(int) * (N ? N : 1), "sequence index");
    mb->cu_seqlens = sd_alloc(sizeof(int) * (size_t)(mb->S + 1), "cu_seqlens");
    mb->n_resp = sd_alloc(sizeof(int) * (size_t)mb->S, "response lengths");
    mb->pair_index = sd_alloc(sizeof(size_t) * (size_t)P, "pair index");
    mb->pairs = sd_alloc(sizeof(Pair *) * (size_t)P, "pair views");
    size_t t = 0;
    for (int i = 0; i < P; i++) {
        const Pair *p = &ps->pairs[idx[i]];
        mb->pair_index[i] = idx[i];
        mb->pairs[i] = p;
        for (int r = 0; r < 2; r++) {
            int s = 2 * i + r, nr = r ? p->n_rejected : p->n_chosen;
            const int *resp = r ? p->rejected : p->chosen;
            int len = p->n_prompt + nr;
            mb->cu_seqlens[s] = (int)t;
            mb->n_resp[s] = 0;
            for (int k = 0; k < len; k++) {
                mb->ids[t + k] = k < p->n_prompt ? p->prompt[k] : resp[k - p->n_prompt];
                mb->pos[t + k] = k;
                mb->seq_of[t + k] = s;
            }
            /* position k predicts token k+1; it counts when token k+1 is a response token. With an empty prompt
             * the first response token has no predecessor and is not counted. */
            for (int k = 0; k < len; k++) {
                int is_resp = k + 1 < len && k + 1 >= p->n_prompt;
                mb->targets[t + k] = is_resp ? mb->ids[t + k + 1] : -1;
                mb->n_resp[s] += is_resp;
            }
            t += (size_t)len;
        }
    }
    mb->cu_seqlens[mb->S] = (int)t;
    return mb;
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
    free(mb);
}
