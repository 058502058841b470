/* pairs_text.c — one chat or text JSONL line into token ids (see pairs.h for the line formats and conventions).
 * Errors come back as messages (the loader adds file:line and releases what it holds); what the chat template
 * itself rejects dies inside chat_render_prompt with the line's location. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat_template.h"
#include "pairs.h"
#include "tokenizer.h"
#include "util.h"

/* Limits on what one line may hold (a line is already bounded by the loader's line limit). */
enum { MAX_MESSAGES = 4096 };

typedef struct {
    ChatMessage *m;
    int n;
} Messages;

SD_PRINTF(3, 4) static bool fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static bool read_messages(const cJSON *a, const char *field, Messages *out, char *err, size_t errlen) {
    return pairs_read_messages(a, field, &out->m, &out->n, err, errlen);
}

static bool is_blank(const char *s) {
    for (; *s; s++)
        if (!(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')) return false;
    return true;
}

/* text -> ids, checked against the vocabulary; NULL with err set on failure. */
static int *encode(const PairsFormat *f, const char *text, int *n_out, const char *field, char *err, size_t errlen) {
    size_t n;
    char why[256] = "";
    int *ids = tokenizer_encode(f->tok, text, strlen(text), &n, why, sizeof why);
    if (!ids) {
        fail(err, errlen, "field '%s': cannot be tokenized: %s", field, why);
        return NULL;
    }
    if (n > 0x7fffffff) {
        free(ids);
        fail(err, errlen, "field '%s': %zu tokens", field, n);
        return NULL;
    }
    for (size_t i = 0; f->vocab_size > 0 && i < n; i++)
        if (ids[i] >= f->vocab_size) {
            fail(err, errlen, "field '%s': token id %d is outside the model's vocabulary (vocab_size %d): is "
                              "data.tokenizer the model's tokenizer?", field, ids[i], f->vocab_size);
            free(ids);
            return NULL;
        }
    *n_out = (int)n;
    return ids;
}

/* The response of one side: its last message's content (message list) or the string itself. */
static bool response_content(const cJSON *v, const char *field, Messages *msgs, const char **content, char *err,
                             size_t errlen) {
    if (cJSON_IsString(v)) {
        *content = v->valuestring;
    } else if (cJSON_IsArray(v)) {
        if (!read_messages(v, field, msgs, err, errlen)) return false;
        const ChatMessage *last = &msgs->m[msgs->n - 1];
        if (strcmp(last->role, "assistant"))
            return fail(err, errlen, "field '%s': the last message must be the assistant's (it is '%s')", field,
                        last->role);
        *content = last->content;
    } else {
        return fail(err, errlen, "field '%s' is %s (expected a list of messages or a string)", field,
                    v ? "not a list or string" : "missing");
    }
    if (is_blank(*content)) return fail(err, errlen, "field '%s': the response is empty", field);
    return true;
}

static bool same_messages(const Messages *a, const Messages *b, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(a->m[i].role, b->m[i].role) || strcmp(a->m[i].content, b->m[i].content)) return false;
    return true;
}

/* The id of a special token's string (the tokenizer's BOS or EOS as tokenizer_config.json names it), -1: none */
static int special_id(const PairsFormat *f, const char *s) { return s && *s ? tokenizer_token_id(f->tok, s) : -1; }

/* data.chat_convention simpo_reference: the pair as the SimPO reference forms it. run_simpo.py renders the prompt
 * without the generation prompt and each response as the template over its assistant message alone (BOS string
 * removed; chat_render_reference_response); SimPOTrainer.tokenize_row (TRL's old CPOTrainer) tokenizes the prompt,
 * and prompt + response, the response being what follows the prompt's ids, then puts the tokenizer's BOS id before
 * the prompt where it is not first and its EOS id after a response not ending with it. A prompt whose last token
 * would merge with a response's first (never at a template's special tokens) is an error: the reference gives the
 * two sequences different prompts there, which a pair's shared prompt cannot hold. */
static bool reference_pair(const PairsFormat *f, const ChatMessage *pm, int pn, const char *const resp[2],
                           const char *where, Pair *p, char *err, size_t errlen) {
    static const char *field[2] = {"chosen", "rejected"};
    char *prompt = chat_render_reference_prompt(f->chat, pm, pn, where);
    int np = 0, bos = special_id(f, f->chat->cfg_bos), eos = special_id(f, f->chat->cfg_eos);
    int *pids = encode(f, prompt, &np, "prompt", err, errlen);
    bool ok = pids != NULL;
    int *out[2] = {NULL, NULL}, nout[2] = {0, 0};
    for (int s = 0; ok && s < 2; s++) {
        char *r = chat_render_reference_response(f->chat, resp[s], where);
        size_t lp = strlen(prompt), lr = strlen(r);
        char *full = sd_alloc(lp + lr + 1, "text");
        memcpy(full, prompt, lp);
        memcpy(full + lp, r, lr + 1);
        free(r);
        int nf = 0, *fids = encode(f, full, &nf, field[s], err, errlen);
        free(full);
        if (!fids) {
            ok = false;
            break;
        }
        if (nf < np || memcmp(fids, pids, (size_t)np * sizeof *fids)) {
            free(fids);
            ok = fail(err, errlen, "field '%s': the prompt's last token merges with the response's first when "
                                   "tokenized together (data.chat_convention simpo_reference)", field[s]);
            break;
        }
        int n = nf - np, add = eos >= 0 && (n == 0 || fids[nf - 1] != eos);
        out[s] = sd_alloc(sd_mul_size((size_t)n + 1, sizeof(int), "ids"), "ids");
        memcpy(out[s], fids + np, (size_t)n * sizeof(int));
        if (add) out[s][n] = eos;
        nout[s] = n + add;
        free(fids);
    }
    if (ok) {
        int add = bos >= 0 && (np == 0 || pids[0] != bos);
        p->prompt = sd_alloc(sd_mul_size((size_t)np + 1, sizeof(int), "ids"), "ids");
        if (add) p->prompt[0] = bos;
        memcpy(p->prompt + add, pids, (size_t)np * sizeof(int));
        p->n_prompt = np + add;
        p->chosen = out[0], p->n_chosen = nout[0];
        p->rejected = out[1], p->n_rejected = nout[1];
    } else {
        free(out[0]);
        free(out[1]);
    }
    free(pids);
    free(prompt);
    return ok;
}

static bool chat_line(const cJSON *obj, const PairsFormat *f, const char *where, Pair *p, char *err, size_t errlen) {
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(obj, "prompt"),
                *jc = cJSON_GetObjectItemCaseSensitive(obj, "chosen"),
                *jr = cJSON_GetObjectItemCaseSensitive(obj, "rejected");
    Messages mc = {0}, mr = {0}, mp = {0};
    ChatMessage one;
    const char *cw = NULL, *cl = NULL;
    char *prompt = NULL, *rw = NULL, *rl = NULL;
    bool ok = response_content(jc, "chosen", &mc, &cw, err, errlen) &&
              response_content(jr, "rejected", &mr, &cl, err, errlen);
    const ChatMessage *pm = NULL;
    int pn = 0;
    if (ok && mc.n >= 2) { /* UltraFeedback: the conversation before the last message is the prompt */
        pm = mc.m, pn = mc.n - 1;
        if (mr.n && (mr.n != mc.n || !same_messages(&mc, &mr, pn)))
            ok = fail(err, errlen, "fields 'chosen' and 'rejected' differ before their last message (the prompt)");
    } else if (ok) {
        if (cJSON_IsString(jp)) {
            one.role = "user", one.content = jp->valuestring;
            pm = &one, pn = 1;
        } else if (cJSON_IsArray(jp)) {
            ok = read_messages(jp, "prompt", &mp, err, errlen);
            pm = mp.m, pn = mp.n;
        } else {
            ok = fail(err, errlen, "field 'prompt' is %s (expected a string or a list of messages, or chosen/rejected "
                                   "as whole conversations)", jp ? "not a string or list" : "missing");
        }
    }
    ChatMessage *with_system = NULL;
    if (ok && f->insert_empty_system && chat_wants_empty_system(f->chat) && (pn == 0 || strcmp(pm[0].role, "system"))) {
        with_system = sd_alloc(sd_mul_size((size_t)pn + 1, sizeof *with_system, "messages"), "messages");
        with_system[0].role = "system", with_system[0].content = "";
        for (int i = 0; i < pn; i++) with_system[i + 1] = pm[i];
        pm = with_system, pn++;
    }
    if (ok && f->simpo_reference) {
        const char *resp[2] = {cw, cl};
        ok = reference_pair(f, pm, pn, resp, where, p, err, errlen);
    } else if (ok) {
        prompt = chat_render_prompt(f->chat, pm, pn, true, where);
        rw = chat_render_response(f->chat, cw);
        rl = chat_render_response(f->chat, cl);
        ok = (p->prompt = encode(f, prompt, &p->n_prompt, "prompt", err, errlen)) &&
             (p->chosen = encode(f, rw, &p->n_chosen, "chosen", err, errlen)) &&
             (p->rejected = encode(f, rl, &p->n_rejected, "rejected", err, errlen));
    }
    free(with_system);
    free(prompt);
    free(rw);
    free(rl);
    free(mc.m);
    free(mr.m);
    free(mp.m);
    return ok;
}

static bool text_line(const cJSON *obj, const PairsFormat *f, Pair *p, char *err, size_t errlen) {
    static const char *fields[3] = {"prompt", "chosen", "rejected"};
    const char *s[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, fields[i]);
        if (!cJSON_IsString(v))
            return fail(err, errlen, "field '%s' is %s (data.format text: prompt, chosen and rejected are strings)",
                        fields[i], v ? "not a string" : "missing");
        s[i] = v->valuestring;
        if (i && is_blank(s[i])) return fail(err, errlen, "field '%s': the response is empty", fields[i]);
    }
    return (p->prompt = encode(f, s[0], &p->n_prompt, "prompt", err, errlen)) &&
           (p->chosen = encode(f, s[1], &p->n_chosen, "chosen", err, errlen)) &&
           (p->rejected = encode(f, s[2], &p->n_rejected, "rejected", err, errlen));
}

bool pairs_read_messages(const cJSON *a, const char *field, ChatMessage **msgs, int *n_out, char *err,
                         size_t errlen) {
    int n = cJSON_GetArraySize(a);
    *msgs = NULL;
    *n_out = 0;
    if (!cJSON_IsArray(a) || n <= 0) return fail(err, errlen, "field '%s': expected a non-empty list of messages", field);
    if (n > MAX_MESSAGES) return fail(err, errlen, "field '%s': %d messages (at most %d)", field, n, MAX_MESSAGES);
    ChatMessage *m = sd_calloc((size_t)n, sizeof(ChatMessage), "messages");
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "role"), *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsObject(e) || !cJSON_IsString(r) || !cJSON_IsString(c)) {
            free(m);
            return fail(err, errlen, "field '%s': message %d needs string 'role' and 'content'", field, i + 1);
        }
        m[i].role = r->valuestring;
        m[i].content = c->valuestring;
    }
    *msgs = m;
    *n_out = n;
    return true;
}

bool pair_from_text(const cJSON *obj, const PairsFormat *f, const char *where, Pair *p, char *err, size_t errlen) {
    bool chat = !strcmp(f->format, "chat") || (!strcmp(f->format, "auto") && f->chat);
    if (!f->tok)
        return fail(err, errlen, "a text line (no prompt_ids) needs a tokenizer: set data.tokenizer (or pre-tokenize "
                                 "with prompt_ids, chosen_ids, rejected_ids)");
    if (chat && !f->chat)
        return fail(err, errlen, "data.format chat needs a chat template (data.chat_template, or one in the "
                                 "tokenizer's tokenizer_config.json)");
    bool ok = chat ? chat_line(obj, f, where, p, err, errlen) : text_line(obj, f, p, err, errlen);
    if (ok && (p->n_chosen == 0 || p->n_rejected == 0)) ok = fail(err, errlen, "a response encodes to no tokens");
    return ok;
}
