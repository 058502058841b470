/* tokenizer.c — loading tokenizer.json (see tokenizer.h): the BPE model, added tokens, normalizers,
 * pre-tokenizers and decoders, checked as they are read; tokenizer_free and the id/token look-ups.
 * Encoding is in tokenizer_encode.c, decoding in tokenizer_decode.c; the shared structures in
 * tokenizer_internal.h. Errors name the file and the JSON path, e.g.
 *   "simpo_dist: x/tokenizer.json: model.type 'WordPiece' is not supported (BPE only)". */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "tokenizer_internal.h"

typedef struct {
    Tokenizer *t;
    const char *name;
    TkBuf scratch;
    double enc_growth, dec_growth; /* how much the steps could multiply a text's length */
} Ld;
/* Chained steps that lengthen a text (Replace with a longer content, ByteLevel doubling non-ASCII bytes,
 * Metaspace) could grow it exponentially ("a" -> "aa" sixty times): their combined worst-case factor is bounded.
 * Real tokenizers stay in single digits (Llama 3: 2, Llama 2: 3). */
#define TK_MAX_GROWTH 256.0
static void ld_grow(Ld *L, double *g, double f, const char *path) {
    if (f > 1) *g *= f;
    if (*g > TK_MAX_GROWTH)
        sd_die(L->name, "%s: the steps so far could expand a text more than %.0fx: refused", path, TK_MAX_GROWTH);
}
static void ld_growth(Ld *L, double *g, size_t plen, size_t clen, bool regex, const char *path) {
    /* a literal match of plen bytes becomes clen bytes; a regex may match empty between any two characters */
    ld_grow(L, g, regex ? (double)clen + 1 : plen ? (double)clen / (double)plen : 1, path);
}

/* Printable, bounded rendering of a token for messages. */
static const char *qtok(char *buf, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '\'') o += (size_t)snprintf(buf + o, cap - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7F) o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
        else buf[o++] = (char)c;
        if (i + 1 < n && o + 8 >= cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
    }
    buf[o] = 0;
    return buf;
}

#define LD_DIE(L, ...) sd_die((L)->name, __VA_ARGS__)

static const cJSON *jget(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static bool jnull(const cJSON *v) { return !v || cJSON_IsNull(v); }
static bool ld_bool(Ld *L, const cJSON *o, const char *key, const char *path, bool def) {
    const cJSON *v = jget(o, key);
    if (jnull(v)) return def;
    if (!cJSON_IsBool(v)) LD_DIE(L, "%s.%s must be true or false", path, key);
    return cJSON_IsTrue(v);
}
/* A string member (NULL when absent or null, unless required). */
static const char *ld_str(Ld *L, const cJSON *o, const char *key, const char *path, bool required) {
    const cJSON *v = jget(o, key);
    if (jnull(v)) {
        if (required) LD_DIE(L, "%s.%s is missing", path, key);
        return NULL;
    }
    if (!cJSON_IsString(v) || !v->valuestring) LD_DIE(L, "%s.%s must be a string", path, key);
    return v->valuestring;
}
/* A non-negative integer member at most max (def when absent). */
static double ld_uint(Ld *L, const cJSON *o, const char *key, const char *path, double def, double max) {
    const cJSON *v = jget(o, key);
    if (jnull(v)) return def;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > max || floor(v->valuedouble) != v->valuedouble)
        LD_DIE(L, "%s.%s must be an integer from 0 to %.0f", path, key, max);
    return v->valuedouble;
}
static const char *ld_type(Ld *L, const cJSON *o, const char *path) {
    if (!cJSON_IsObject(o)) LD_DIE(L, "%s must be an object or null", path);
    return ld_str(L, o, "type", path, true);
}
/* One character (UTF-8) from a string member: its code point, the bytes in out (8 bytes room), length in *n. */
static uint32_t ld_char(Ld *L, const cJSON *o, const char *key, const char *path, const char *def, char *out,
                        int *n) {
    const char *s = ld_str(L, o, key, path, def == NULL);
    if (!s) s = def;
    size_t len = strlen(s);
    uint32_t cp = TK_BAD_CP;
    size_t cl = len ? tk_utf8_next(s, len, &cp) : 0;
    if (len == 0 || cl != len || cp == TK_BAD_CP) LD_DIE(L, "%s.%s must be exactly one character", path, key);
    if (out) {
        memcpy(out, s, len);
        out[len] = 0;
    }
    if (n) *n = (int)len;
    return cp;
}
static char *ld_dup(const char *s, size_t n) {
    char *p = (char *)sd_alloc(n + 1, "tokenizer string");
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}
/* HF compiles Split/Replace regexes with Oniguruma; PCRE2 reads the same syntax except that Oniguruma also takes
 * \uHHHH (rewritten here as \x{HHHH}) and that its ^ and $ are line anchors (PCRE2_MULTILINE). */
static pcre2_code *ld_regex(Ld *L, const char *pat, const char *path) {
    TkBuf *b = &L->scratch;
    b->len = 0;
    for (size_t i = 0; pat[i];) {
        if (pat[i] == '\\' && pat[i + 1] == 'u') {
            size_t k = 0;
            while (k < 4 && pat[i + 2 + k] && strchr("0123456789abcdefABCDEF", pat[i + 2 + k])) k++;
            if (k == 4) {
                tkb_add(b, "\\x{", 3);
                tkb_add(b, pat + i + 2, 4);
                tkb_add(b, "}", 1);
                i += 6;
                continue;
            }
        }
        size_t n = pat[i] == '\\' && pat[i + 1] ? 2 : 1; /* an escape pair is copied whole */
        tkb_add(b, pat + i, n);
        i += n;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)b->p, b->len,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        char q[100];
        LD_DIE(L, "%s: regex '%s' does not compile (at offset %zu): %s", path, qtok(q, sizeof q, pat, strlen(pat)),
               (size_t)eo, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT pcre2_match interprets: slower, same result */
    return re;
}
/* "pattern": {"String": s} or {"Regex": r}: stores the literal (*lit, *litlen) or the compiled regex (*re),
 * straight into the tokenizer's fields, so a later error frees them. */
static void ld_pattern(Ld *L, const cJSON *o, const char *path, char **lit, size_t *litlen, pcre2_code **re) {
    const cJSON *p = jget(o, "pattern");
    *lit = NULL;
    *re = NULL;
    *litlen = 0;
    if (!cJSON_IsObject(p)) LD_DIE(L, "%s.pattern must be an object {\"String\": ...} or {\"Regex\": ...}", path);
    const cJSON *s = jget(p, "String"), *r = jget(p, "Regex");
    char sub[300];
    if (cJSON_IsString(s) && s->valuestring) {
        if (!s->valuestring[0]) LD_DIE(L, "%s.pattern.String is empty", path);
        *litlen = strlen(s->valuestring);
        *lit = ld_dup(s->valuestring, *litlen);
    } else if (cJSON_IsString(r) && r->valuestring) {
        snprintf(sub, sizeof sub, "%s.pattern.Regex", path);
        *re = ld_regex(L, r->valuestring, sub);
    } else LD_DIE(L, "%s.pattern must be {\"String\": \"...\"} or {\"Regex\": \"...\"}", path);
}

/* ------------------------------------------------------------------ maps */
static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}
static void strmap_alloc(TkStrMap *m, size_t n) {
    size_t cap = pow2_at_least(n + n / 2 + 1);
    m->slots = (TkSlot *)sd_alloc(sd_mul_size(cap, sizeof(TkSlot), "token map"), "token map");
    for (size_t i = 0; i < cap; i++) m->slots[i].idx = -1;
    m->mask = cap - 1;
}
/* Inserts (string at m->base + off, n bytes) -> idx unless the string is there: returns the index already holding
 * it, or -1 when inserted. */
static int32_t strmap_put(TkStrMap *m, size_t off, size_t n, int32_t idx) {
    const char *s = m->base + off;
    uint64_t h64 = tk_hash(s, n);
    uint32_t h = (uint32_t)(h64 >> 32);
    size_t i = (size_t)h64 & m->mask;
    for (; m->slots[i].idx >= 0; i = (i + 1) & m->mask) {
        const TkSlot *sl = &m->slots[i];
        if (sl->h == h && sl->len == n && memcmp(m->base + sl->off, s, n) == 0) return sl->idx;
    }
    m->slots[i] = (TkSlot){h, (uint32_t)n, idx, (uint32_t)off};
    return -1;
}
static void merge_put(TkMergeMap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t key = tk_merge_key(a, b);
    size_t i = tk_merge_slot(key, m->mask);
    for (; m->slots[i].key != TK_MERGE_EMPTY && m->slots[i].key != key; i = (i + 1) & m->mask) {}
    m->slots[i].key = key; /* a repeated pair takes the later rank, as HF's HashMap collect does */
    m->slots[i].rank = rank;
    m->slots[i].id = id;
}

/* ------------------------------------------------------------------ model */
/* Ids must stay below limit: sparse ids are allowed, but not an id table that is mostly holes. */
static void ld_vocab(Ld *L, const cJSON *model, double limit) {
    Tokenizer *t = L->t;
    const cJSON *vocab = jget(model, "vocab");
    if (!cJSON_IsObject(vocab)) LD_DIE(L, "model.vocab must be an object {token: id}");
    size_t n = 0, bytes = 0;
    double maxid = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0) || e->valuedouble > 2147483000.0 ||
            floor(e->valuedouble) != e->valuedouble) {
            char q[100];
            LD_DIE(L, "model.vocab['%s'] must be a non-negative integer id", qtok(q, sizeof q, e->string, strlen(e->string)));
        }
        if (e->valuedouble >= limit) {
            char q[100];
            LD_DIE(L, "model.vocab['%s']: id %.0f is out of range (%zu-token vocabulary)",
                   qtok(q, sizeof q, e->string, strlen(e->string)), e->valuedouble, (size_t)cJSON_GetArraySize(vocab));
        }
        if (e->valuedouble > maxid) maxid = e->valuedouble;
        bytes += strlen(e->string) + 1;
        n++;
    }
    t->n_vocab = n;
    L->t->n_ids = (int32_t)(maxid + 1);
    if (bytes > UINT32_MAX) LD_DIE(L, "model.vocab: %zu bytes of token strings is too much", bytes);
    t->arena = (char *)sd_alloc(bytes, "tokenizer vocabulary");
    strmap_alloc(&t->vocab, n);
    t->vocab.base = t->arena;
    size_t off = 0;
    /* id arrays are sized later (added tokens may extend them); until then vtok is indexed by id too */
    t->vtok = (char **)sd_calloc((size_t)t->n_ids, sizeof(char *), "tokenizer vocabulary");
    t->tok_len = (uint32_t *)sd_calloc((size_t)t->n_ids, sizeof(uint32_t), "tokenizer vocabulary");
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        size_t len = strlen(e->string);
        char q[100], q2[100];
        if (len > UINT32_MAX / 2) LD_DIE(L, "model.vocab: token of %zu bytes is too long", len);
        if (t->vtok[id])
            LD_DIE(L, "model.vocab: id %d is given to both '%s' and '%s'", id,
                   qtok(q, sizeof q, t->vtok[id], t->tok_len[id]), qtok(q2, sizeof q2, e->string, len));
        memcpy(t->arena + off, e->string, len + 1);
        t->vtok[id] = t->arena + off;
        t->tok_len[id] = (uint32_t)len;
        off += len + 1;
        if (strmap_put(&t->vocab, off - len - 1, len, id) >= 0)
            LD_DIE(L, "model.vocab: token '%s' appears twice", qtok(q, sizeof q, e->string, len));
    }
}
static int32_t vocab_id(const Tokenizer *t, const char *s, size_t n) {
    return tk_map_get(&t->vocab, s, n);
}
static void ld_merges(Ld *L, const cJSON *model) {
    Tokenizer *t = L->t;
    const cJSON *merges = jget(model, "merges");
    if (jnull(merges)) merges = NULL;
    else if (!cJSON_IsArray(merges)) LD_DIE(L, "model.merges must be an array");
    size_t n = 0;
    for (const cJSON *e = merges ? merges->child : NULL; e; e = e->next) n++;
    if (n > 0x7FFFFFFF) LD_DIE(L, "model.merges: too many merges (%zu)", n);
    size_t cap = pow2_at_least(n + n / 2 + 1);
    t->merges.slots = (TkMergeSlot *)sd_alloc(sd_mul_size(cap, sizeof(TkMergeSlot), "merges"), "merges");
    for (size_t i = 0; i < cap; i++) t->merges.slots[i].key = TK_MERGE_EMPTY;
    t->merges.mask = cap - 1;
    size_t idx = 0;
    uint32_t rank = 0;
    TkBuf *sc = &L->scratch;
    for (const cJSON *e = merges ? merges->child : NULL; e; e = e->next, idx++) {
        const char *a, *b;
        size_t alen, blen;
        if (cJSON_IsString(e) && e->valuestring) {
            const char *s = e->valuestring;
            if (strncmp(s, "#version", 8) == 0) continue; /* merges.txt header kept by some converters */
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ') || sp == s || !sp[1]) {
                char q[100];
                LD_DIE(L, "model.merges[%zu]: '%s' is not two tokens separated by one space", idx,
                       qtok(q, sizeof q, s, strlen(s)));
            }
            a = s;
            alen = (size_t)(sp - s);
            b = sp + 1;
            blen = strlen(b);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next) && e->child->valuestring && e->child->next->valuestring) {
            a = e->child->valuestring;
            alen = strlen(a);
            b = e->child->next->valuestring;
            blen = strlen(b);
        } else LD_DIE(L, "model.merges[%zu] must be a string \"a b\" or a pair [\"a\", \"b\"]", idx);
        int32_t ia = vocab_id(t, a, alen), ib = vocab_id(t, b, blen);
        sc->len = 0;
        tkb_add(sc, a, alen);
        tkb_add(sc, b, blen);
        int32_t im = vocab_id(t, sc->p, sc->len);
        const char *missing = ia < 0 ? a : ib < 0 ? b : im < 0 ? sc->p : NULL;
        if (missing) {
            char q[100];
            size_t ml = ia < 0 ? alen : ib < 0 ? blen : sc->len;
            LD_DIE(L, "model.merges[%zu]: token '%s' is not in model.vocab", idx, qtok(q, sizeof q, missing, ml));
        }
        merge_put(&t->merges, ia, ib, rank++, im);
    }
    t->n_merges = rank;
}
static double id_limit(const cJSON *root) {
    const cJSON *model = jget(root, "model"), *vocab = model ? jget(model, "vocab") : NULL;
    const cJSON *added = jget(root, "added_tokens");
    double n = (vocab ? cJSON_GetArraySize(vocab) : 0) + (cJSON_IsArray(added) ? cJSON_GetArraySize(added) : 0);
    return 2.0 * n + 1024;
}
static void ld_model(Ld *L, const cJSON *root) {
    Tokenizer *t = L->t;
    const cJSON *model = jget(root, "model");
    if (!cJSON_IsObject(model)) LD_DIE(L, "model is missing (or not an object)");
    const char *type = ld_str(L, model, "type", "model", false);
    if (!type && !jget(model, "merges")) LD_DIE(L, "model.type is missing (BPE only)");
    if (type && strcmp(type, "BPE") != 0) {
        char q[100];
        LD_DIE(L, "model.type '%s' is not supported (BPE only)", qtok(q, sizeof q, type, strlen(type)));
    }
    const cJSON *dr = jget(model, "dropout");
    if (!jnull(dr)) {
        if (!cJSON_IsNumber(dr) || !(dr->valuedouble >= 0 && dr->valuedouble <= 1))
            LD_DIE(L, "model.dropout must be null or a number from 0 to 1");
        if (dr->valuedouble > 0) LD_DIE(L, "model.dropout %g is not supported (only null or 0)", dr->valuedouble);
    }
    const char *pre = ld_str(L, model, "continuing_subword_prefix", "model", false);
    if (pre && pre[0]) LD_DIE(L, "model.continuing_subword_prefix '%s' is not supported (only null or \"\")", pre);
    const char *suf = ld_str(L, model, "end_of_word_suffix", "model", false);
    if (suf && suf[0]) LD_DIE(L, "model.end_of_word_suffix '%s' is not supported (only null or \"\")", suf);
    t->byte_fallback = ld_bool(L, model, "byte_fallback", "model", false);
    t->fuse_unk = ld_bool(L, model, "fuse_unk", "model", false);
    t->ignore_merges = ld_bool(L, model, "ignore_merges", "model", false);
    const char *unk = ld_str(L, model, "unk_token", "model", false);
    if (unk) t->unk_token = sd_strdup(unk);
    ld_vocab(L, model, id_limit(root));
    ld_merges(L, model);
    t->unk_id = unk ? vocab_id(t, unk, strlen(unk)) : -1;
    t->meta_cut = !t->ignore_merges && vocab_id(t, "\xE2\x96\x81", 3) >= 0;
    for (int32_t id = 0; t->meta_cut && id < t->n_ids; id++) {
        const char *v = t->vtok[id];
        if (!v) continue;
        for (const char *p = v; (p = strstr(p, "\xE2\x96\x81")) != NULL; p += 3)
            if (p != v && (p - v < 3 || memcmp(p - 3, "\xE2\x96\x81", 3) != 0)) {
                t->meta_cut = false;
                break;
            }
    }
    for (int b = 0; b < 256; b++) {
        char code[8];
        snprintf(code, sizeof code, "<0x%02X>", b);
        t->byte_tok[b] = vocab_id(t, code, 6);
    }
}

/* ------------------------------------------------------------------ added tokens */
static void trie_add(TkTrie *tr, const char *s, size_t n, int32_t token) {
    if (n == 0) return;
    if (!tr->any) {
        for (int i = 0; i < 256; i++) tr->root[i] = -1;
        tr->any = true;
        tr->first_byte = (unsigned char)s[0];
    }
    if (tr->first_byte != (unsigned char)s[0]) tr->first_byte = -1;
    int32_t *link = &tr->root[(unsigned char)s[0]];
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            link = &tr->nodes[node].first;
            while (*link >= 0 && tr->nodes[*link].byte != (unsigned char)s[i]) link = &tr->nodes[*link].sibling;
        }
        if (*link < 0) {
            if (tr->n == tr->cap) {
                size_t cap = tr->cap ? tr->cap * 2 : 64;
                /* link may point into nodes: keep its offset across the realloc */
                ptrdiff_t off = (link >= &tr->root[0] && link < &tr->root[256]) ? -1
                                : (ptrdiff_t)((char *)link - (char *)tr->nodes);
                tr->nodes = (TkTrieNode *)sd_realloc(tr->nodes, sd_mul_size(cap, sizeof(TkTrieNode), "trie"), "trie");
                tr->cap = cap;
                if (off >= 0) link = (int32_t *)((char *)tr->nodes + off);
            }
            TkTrieNode *nd = &tr->nodes[tr->n];
            nd->first = nd->sibling = nd->token = -1;
            nd->byte = (unsigned char)s[i];
            *link = (int32_t)tr->n++;
        }
        node = *link;
    }
    if (tr->nodes[node].token < 0) tr->nodes[node].token = token;
}
static void ld_added(Ld *L, const cJSON *root) {
    Tokenizer *t = L->t;
    const cJSON *arr = jget(root, "added_tokens");
    size_t n = 0, bytes = 1;
    if (!jnull(arr)) {
        if (!cJSON_IsArray(arr)) LD_DIE(L, "added_tokens must be an array");
        for (const cJSON *e = arr->child; e; e = e->next, n++) {
            const cJSON *c = cJSON_IsObject(e) ? jget(e, "content") : NULL;
            if (cJSON_IsString(c) && c->valuestring) bytes += strlen(c->valuestring) + 1;
        }
    }
    if (bytes > UINT32_MAX) LD_DIE(L, "added_tokens: too many bytes of token strings");
    t->added_arena = (char *)sd_alloc(bytes, "added tokens");
    size_t aoff = 0;
    double limit = id_limit(root) - 1;
    t->added = (TkAdded *)sd_calloc(n ? n : 1, sizeof(TkAdded), "added tokens");
    strmap_alloc(&t->added_map, n);
    t->added_map.base = t->added_arena;
    int32_t max_id = t->n_ids - 1;
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
        char path[64], q[100];
        snprintf(path, sizeof path, "added_tokens[%zu]", i);
        if (!cJSON_IsObject(e)) LD_DIE(L, "%s must be an object", path);
        const char *content = ld_str(L, e, "content", path, true);
        double idd = ld_uint(L, e, "id", path, -1, limit);
        if (idd < 0) LD_DIE(L, "%s.id is missing", path);
        int32_t id = (int32_t)idd;
        size_t len = strlen(content);
        if (len == 0) continue; /* HF ignores empty added tokens */
        if (len > 65536) LD_DIE(L, "%s.content is too long (%zu bytes)", path, len);
        TkAdded *a = &t->added[t->n_added];
        a->content = t->added_arena + aoff;
        memcpy(a->content, content, len + 1);
        aoff += len + 1;
        a->len = (uint32_t)len;
        a->id = id;
        t->n_added++;
        a->special = ld_bool(L, e, "special", path, false);
        a->single_word = ld_bool(L, e, "single_word", path, false);
        a->lstrip = ld_bool(L, e, "lstrip", path, false);
        a->rstrip = ld_bool(L, e, "rstrip", path, false);
        a->normalized = ld_bool(L, e, "normalized", path, !a->special);
        int32_t prev = strmap_put(&t->added_map, (size_t)(a->content - t->added_arena), len, (int32_t)(t->n_added - 1));
        if (prev >= 0) LD_DIE(L, "%s: token '%s' is already added_tokens entry with id %d", path,
                              qtok(q, sizeof q, content, len), t->added[prev].id);
        int32_t vid = vocab_id(t, content, len);
        if (vid >= 0 && vid != id)
            LD_DIE(L, "%s: token '%s' has id %d but model.vocab gives it id %d", path, qtok(q, sizeof q, content, len),
                   id, vid);
        if (vid < 0 && id < t->n_ids && t->vtok[id]) {
            char q2[100];
            LD_DIE(L, "%s: id %d of '%s' is already the vocabulary token '%s'", path, id,
                   qtok(q, sizeof q, content, len), qtok(q2, sizeof q2, t->vtok[id], t->tok_len[id]));
        }
        if (id > max_id) max_id = id;
    }
    /* the id tables: vocabulary then added tokens (an added token shows its content) */
    int32_t n_ids = max_id + 1;
    if (n_ids > t->n_ids) {
        t->vtok = (char **)sd_realloc(t->vtok, sd_mul_size((size_t)n_ids, sizeof(char *), "ids"), "ids");
        t->tok_len = (uint32_t *)sd_realloc(t->tok_len, sd_mul_size((size_t)n_ids, sizeof(uint32_t), "ids"), "ids");
        for (int32_t k = t->n_ids; k < n_ids; k++) t->vtok[k] = NULL, t->tok_len[k] = 0;
        t->n_ids = n_ids;
    }
    /* the table for decode and id_to_token */
    t->tok = (char **)sd_calloc((size_t)t->n_ids, sizeof(char *), "ids");
    memcpy(t->tok, t->vtok, (size_t)t->n_ids * sizeof(char *));
    int32_t *seen = (int32_t *)calloc((size_t)t->n_ids, sizeof(int32_t)); /* added index + 1 per id */
    if (!seen) LD_DIE(L, "out of memory checking added token ids");
    for (size_t k = 0; k < t->n_added; k++) {
        TkAdded *a = &t->added[k];
        if (seen[a->id]) {
            char q[100], q2[100];
            const TkAdded *o = &t->added[seen[a->id] - 1];
            qtok(q, sizeof q, o->content, o->len);
            qtok(q2, sizeof q2, a->content, a->len);
            free(seen);
            LD_DIE(L, "added_tokens: id %d is given to both '%s' and '%s'", a->id, q, q2);
        }
        seen[a->id] = (int32_t)k + 1;
        t->tok[a->id] = a->content;
        if (!t->vtok[a->id]) t->tok_len[a->id] = a->len;
    }
    free(seen);
}
/* Tries for the added-token scan: normalized=false tokens match the raw text; normalized=true ones match the
 * normalized pieces, in their normalized form (HF's refresh_added_tokens). */
static void ld_tries(Ld *L) {
    Tokenizer *t = L->t;
    TkRx rx;
    TkBuf nb[2] = {{0}, {0}};
    bool rx_ready = false;
    for (size_t k = 0; k < t->n_added; k++) {
        const TkAdded *a = &t->added[k];
        if (a->single_word && !t->word_re) t->word_re = ld_regex(L, "\\w", "added_tokens (single_word)");
        if (!a->normalized) {
            trie_add(&t->trie_raw, a->content, a->len, (int32_t)k);
            continue;
        }
        if (!rx_ready) {
            tk_rx_init(&rx);
            rx_ready = true;
        }
        size_t nlen = a->len;
        const char *ns = t->n_norm ? tk_normalize(t, &rx, nb, a->content, a->len, &nlen) : a->content;
        if (ns) trie_add(&t->trie_norm, ns, nlen, (int32_t)k);
    }
    if (rx_ready) tk_rx_free(&rx);
    free(nb[0].p);
    free(nb[1].p);
}

/* A step of type "Sequence" (a normalizer, pre-tokenizer or decoder): load(L, element, path, depth + 1) for each
 * element of the array o[key], which must hold objects; false for any other type. Dies past 16 levels of nesting,
 * whatever the type. */
typedef void (*LdStep)(Ld *L, const cJSON *o, const char *path, int depth);
static bool ld_sequence(Ld *L, const cJSON *o, const char *type, const char *key, const char *path, int depth,
                        LdStep load) {
    char sub[256];
    if (depth > 16) LD_DIE(L, "%s: Sequence nested too deeply", path);
    if (strcmp(type, "Sequence") != 0) return false;
    const cJSON *arr = jget(o, key);
    if (!cJSON_IsArray(arr)) LD_DIE(L, "%s.%s must be an array", path, key);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        snprintf(sub, sizeof sub, "%s.%s[%d]", path, key, i);
        if (jnull(e)) LD_DIE(L, "%s must be an object", sub);
        load(L, e, sub, depth + 1);
    }
    return true;
}

/* ------------------------------------------------------------------ normalizers */
static void ld_norm(Ld *L, const cJSON *o, const char *path, int depth) {
    Tokenizer *t = L->t;
    if (jnull(o)) return;
    const char *type = ld_type(L, o, path);
    char q[100];
    if (ld_sequence(L, o, type, "normalizers", path, depth, ld_norm)) return;
    if (t->n_norm == TK_MAX_STEPS) LD_DIE(L, "%s: more than %d normalizers", path, TK_MAX_STEPS);
    TkNorm *n = &t->norm[t->n_norm];
    memset(n, 0, sizeof *n);
    if (strcmp(type, "Prepend") == 0) {
        const char *p = ld_str(L, o, "prepend", path, true);
        n->kind = TK_NM_PREPEND;
        n->alen = strlen(p);
        n->a = ld_dup(p, n->alen);
        t->n_norm++;
    } else if (strcmp(type, "Replace") == 0) {
        const char *c = ld_str(L, o, "content", path, true);
        n->kind = TK_NM_REPLACE;
        n->blen = strlen(c);
        n->b = ld_dup(c, n->blen);
        t->n_norm++;
        ld_pattern(L, o, path, &n->a, &n->alen, &n->re);
        ld_growth(L, &L->enc_growth, n->alen, n->blen, n->re != NULL, path);
    } else if (!strcmp(type, "NFC") || !strcmp(type, "NFD") || !strcmp(type, "NFKC") || !strcmp(type, "NFKD")) {
#ifdef SIMPO_HAVE_UTF8PROC
        n->kind = !strcmp(type, "NFC") ? TK_NM_NFC : !strcmp(type, "NFD") ? TK_NM_NFD
                : !strcmp(type, "NFKC") ? TK_NM_NFKC : TK_NM_NFKD;
        t->n_norm++;
#else
        LD_DIE(L, "%s.type '%s' needs utf8proc, which this build lacks (install libutf8proc-dev and rebuild)", path,
               type);
#endif
    } else LD_DIE(L, "%s.type '%s' is not supported (normalizers: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)",
                  path, qtok(q, sizeof q, type, strlen(type)));
}

/* ------------------------------------------------------------------ pre-tokenizers */
#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
static int ld_scheme(Ld *L, const cJSON *o, const char *path) {
    const char *ps = ld_str(L, o, "prepend_scheme", path, false);
    if (ps) {
        if (!strcmp(ps, "always")) return TK_PS_ALWAYS;
        if (!strcmp(ps, "first")) return TK_PS_FIRST;
        if (!strcmp(ps, "never")) return TK_PS_NEVER;
        LD_DIE(L, "%s.prepend_scheme must be \"always\", \"first\" or \"never\"", path);
    }
    return ld_bool(L, o, "add_prefix_space", path, true) ? TK_PS_ALWAYS : TK_PS_NEVER;
}
static void ld_pre(Ld *L, const cJSON *o, const char *path, int depth) {
    Tokenizer *t = L->t;
    if (jnull(o)) return;
    const char *type = ld_type(L, o, path);
    char q[100];
    if (ld_sequence(L, o, type, "pretokenizers", path, depth, ld_pre)) return;
    if (t->n_pre == TK_MAX_STEPS) LD_DIE(L, "%s: more than %d pre-tokenizers", path, TK_MAX_STEPS);
    TkPreTok *p = &t->pre[t->n_pre];
    memset(p, 0, sizeof *p);
    if (strcmp(type, "Split") == 0) {
        p->kind = TK_PT_SPLIT;
        t->n_pre++;
        ld_pattern(L, o, path, &p->lit, &p->litlen, &p->re);
        const char *b = ld_str(L, o, "behavior", path, true);
        if (!strcmp(b, "Isolated")) p->behavior = TK_B_ISOLATED;
        else if (!strcmp(b, "Removed")) p->behavior = TK_B_REMOVED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = TK_B_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = TK_B_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = TK_B_CONTIGUOUS;
        else LD_DIE(L, "%s.behavior '%s' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, "
                    "Contiguous", path, qtok(q, sizeof q, b, strlen(b)));
        p->invert = ld_bool(L, o, "invert", path, false);
    } else if (strcmp(type, "ByteLevel") == 0) {
        p->kind = TK_PT_BYTELEVEL;
        t->n_pre++;
        p->add_prefix_space = ld_bool(L, o, "add_prefix_space", path, true);
        ld_grow(L, &L->enc_growth, p->add_prefix_space ? 4 : 2, path); /* a space per piece, 2 bytes per byte */
        if (ld_bool(L, o, "use_regex", path, true)) p->re = ld_regex(L, GPT2_REGEX, path);
    } else if (strcmp(type, "Metaspace") == 0) {
        p->kind = TK_PT_METASPACE;
        t->n_pre++;
        ld_char(L, o, "replacement", path, "\xE2\x96\x81", p->repl, &p->repl_len);
        p->prepend_scheme = ld_scheme(L, o, path);
        p->split = ld_bool(L, o, "split", path, true);
        ld_grow(L, &L->enc_growth, p->repl_len, path);
    } else if (strcmp(type, "Digits") == 0) {
        p->kind = TK_PT_SPLIT;
        t->n_pre++;
        bool indiv = ld_bool(L, o, "individual_digits", path, false);
        p->re = ld_regex(L, indiv ? "\\p{N}" : "\\p{N}+", path);
        p->behavior = TK_B_ISOLATED;
    } else LD_DIE(L, "%s.type '%s' is not supported (pre-tokenizers: Sequence, Split, ByteLevel, Metaspace, Digits)",
                  path, qtok(q, sizeof q, type, strlen(type)));
}

/* ------------------------------------------------------------------ decoders */
static void ld_dec(Ld *L, const cJSON *o, const char *path, int depth) {
    Tokenizer *t = L->t;
    if (jnull(o)) return;
    const char *type = ld_type(L, o, path);
    char q[100];
    t->has_decoder = true;
    if (ld_sequence(L, o, type, "decoders", path, depth, ld_dec)) return;
    if (t->n_dec == TK_MAX_STEPS) LD_DIE(L, "%s: more than %d decoders", path, TK_MAX_STEPS);
    TkDecoder *d = &t->dec[t->n_dec];
    memset(d, 0, sizeof *d);
    if (!strcmp(type, "ByteLevel")) {
        d->kind = TK_DC_BYTELEVEL;
        t->n_dec++;
    } else if (!strcmp(type, "Metaspace")) {
        d->kind = TK_DC_METASPACE;
        t->n_dec++;
        d->cp = ld_char(L, o, "replacement", path, "\xE2\x96\x81", NULL, NULL);
        d->prepend_scheme = ld_scheme(L, o, path);
    } else if (!strcmp(type, "Replace")) {
        const char *c = ld_str(L, o, "content", path, true);
        d->kind = TK_DC_REPLACE;
        d->blen = strlen(c);
        d->b = ld_dup(c, d->blen);
        t->n_dec++;
        ld_pattern(L, o, path, &d->a, &d->alen, &d->re);
        ld_growth(L, &L->dec_growth, d->alen, d->blen, d->re != NULL, path);
    } else if (!strcmp(type, "ByteFallback")) {
        d->kind = TK_DC_BYTEFALLBACK;
        t->n_dec++;
    } else if (!strcmp(type, "Fuse")) {
        d->kind = TK_DC_FUSE;
        t->n_dec++;
    } else if (!strcmp(type, "Strip")) {
        d->kind = TK_DC_STRIP;
        d->cp = ld_char(L, o, "content", path, NULL, NULL, NULL);
        d->start = (size_t)ld_uint(L, o, "start", path, 0, 1e9);
        d->stop = (size_t)ld_uint(L, o, "stop", path, 0, 1e9);
        t->n_dec++;
    } else LD_DIE(L, "%s.type '%s' is not supported (decoders: Sequence, ByteLevel, Metaspace, Replace, "
                  "ByteFallback, Fuse, Strip)", path, qtok(q, sizeof q, type, strlen(type)));
}

/* ------------------------------------------------------------------ tables */
static void ld_tables(Tokenizer *t) {
    /* GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards in byte order */
    int extra = 0;
    for (int i = 0; i < 512; i++) t->bl_inv[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        uint32_t cp = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
        t->bl_len[b] = (uint8_t)tk_utf8_put(t->bl_utf8[b], cp);
        t->bl_inv[cp] = (int16_t)b;
    }
    t->char_id = (int32_t *)sd_alloc(TK_CHAR_TABLE * sizeof(int32_t), "tokenizer char table");
    for (uint32_t cp = 0; cp < TK_CHAR_TABLE; cp++) {
        char u[4];
        size_t n = tk_utf8_put(u, cp);
        t->char_id[cp] = vocab_id(t, u, n);
    }
}

static void tk_free_cb(void *p) { tokenizer_free((Tokenizer *)p); }
static void json_free_cb(void *p) { cJSON_Delete((cJSON *)p); }
static void buf_free_cb(void *p) { free(((TkBuf *)p)->p); }

Tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name) {
    if (!name) name = "tokenizer.json";
    Tokenizer *t = (Tokenizer *)sd_calloc(1, sizeof(Tokenizer), "tokenizer");
    t->unk_id = -1;
    sd_cleanup_push(tk_free_cb, t);
    t->name = sd_strdup(name);
    Ld L = {t, t->name, {0}, 1.0, 1.0};
    sd_cleanup_push(buf_free_cb, &L.scratch);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len + 1, &end, 1); /* json[len] is its NUL */
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        size_t line = 1;
        for (size_t i = 0; i < at; i++) line += json[i] == '\n';
        LD_DIE(&L, "malformed JSON near byte %zu (line %zu)", at, line);
    }
    sd_cleanup_push(json_free_cb, root);
    if (!cJSON_IsObject(root)) LD_DIE(&L, "the top level must be a JSON object");
    t->norm = (TkNorm *)sd_calloc(TK_MAX_STEPS, sizeof(TkNorm), "normalizers");
    t->pre = (TkPreTok *)sd_calloc(TK_MAX_STEPS, sizeof(TkPreTok), "pre-tokenizers");
    t->dec = (TkDecoder *)sd_calloc(TK_MAX_STEPS, sizeof(TkDecoder), "decoders");
    ld_model(&L, root);
    ld_added(&L, root);
    ld_norm(&L, jget(root, "normalizer"), "normalizer", 0);
    ld_pre(&L, jget(root, "pre_tokenizer"), "pre_tokenizer", 0);
    ld_dec(&L, jget(root, "decoder"), "decoder", 0);
    ld_tables(t);
    ld_tries(&L);
    tk_cache_init(t);
    sd_cleanup_pop();
    cJSON_Delete(root);
    sd_cleanup_pop();
    free(L.scratch.p);
    sd_cleanup_pop();
    return t;
}

Tokenizer *tokenizer_load(const char *dir_or_file) {
    char *path = sd_dir_exists(dir_or_file) ? sd_path_join(dir_or_file, "tokenizer.json") : sd_strdup(dir_or_file);
    sd_cleanup_push(free, path);
    size_t len = 0;
    char *buf = sd_read_file(path, &len);
    if (!buf) sd_die(path, "cannot read the tokenizer: %s", strerror(errno));
    sd_cleanup_push(free, buf);
    Tokenizer *t = tokenizer_load_json(buf, len, path);
    sd_cleanup_pop();
    free(buf);
    sd_cleanup_pop();
    free(path);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->name);
    free(t->tok);
    free(t->vtok);
    free(t->tok_len);
    free(t->arena);
    free(t->vocab.slots);
    free(t->merges.slots);
    free(t->char_id);
    free(t->unk_token);
    free(t->added);
    free(t->added_arena);
    free(t->added_map.slots);
    free(t->trie_raw.nodes);
    free(t->trie_norm.nodes);
    if (t->word_re) pcre2_code_free(t->word_re);
    for (int i = 0; t->norm && i < TK_MAX_STEPS; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
        if (t->norm[i].re) pcre2_code_free(t->norm[i].re);
    }
    free(t->norm);
    for (int i = 0; t->pre && i < TK_MAX_STEPS; i++) {
        free(t->pre[i].lit);
        if (t->pre[i].re) pcre2_code_free(t->pre[i].re);
    }
    free(t->pre);
    for (int i = 0; t->dec && i < TK_MAX_STEPS; i++) {
        free(t->dec[i].a);
        free(t->dec[i].b);
        if (t->dec[i].re) pcre2_code_free(t->dec[i].re);
    }
    free(t->dec);
    tk_cache_free(t);
    free(t);
}

int tokenizer_token_id(const Tokenizer *t, const char *token) {
    size_t n = strlen(token);
    int32_t k = tk_map_get(&t->added_map, token, n);
    if (k >= 0) return t->added[k].id;
    return vocab_id(t, token, n);
}
const char *tokenizer_id_to_token(const Tokenizer *t, int id) {
    if (id < 0 || id >= t->n_ids) return NULL;
    return t->tok[id];
}
int tokenizer_vocab_size(const Tokenizer *t) { return t->n_ids; }
