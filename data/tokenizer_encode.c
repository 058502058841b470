/* tokenizer_encode.c — tokenizer_encode: added-token split, normalizers, pre-tokenizers, BPE with a word cache.
 * The pipeline is HF tokenizers' encode_single_sequence without the post-processor:
 *   raw text -> split on added tokens with normalized=false (leftmost-longest, lstrip/rstrip/single_word)
 *   -> each remaining piece: normalizers -> split on normalized added tokens -> pre-tokenizers (streamed
 *   depth-first, one piece at a time) -> BPE (ignore_merges, cache, heap merge, byte_fallback, unk) -> ids. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef SIMPO_HAVE_UTF8PROC
#include <utf8proc.h>
#endif
#include "tokenizer_internal.h"

/* ------------------------------------------------------------------ regex iteration */
void tk_rx_init(TkRx *rx) {
    memset(rx, 0, sizeof *rx);
    rx->md = pcre2_match_data_create(1, NULL);
    if (!rx->md) sd_die("tokenizer", "cannot allocate regex match data");
}
void tk_rx_free(TkRx *rx) {
    if (rx->md) pcre2_match_data_free(rx->md);
    if (rx->mctx) pcre2_match_context_free(rx->mctx);
    if (rx->js) pcre2_jit_stack_free(rx->js);
    memset(rx, 0, sizeof *rx);
}
/* One match at or after pos: 1 (offsets in *ms, *me), 0 none, -1 error. */
static int rx_match(TkRx *rx, const pcre2_code *re, const char *s, size_t len, size_t pos, size_t *ms, size_t *me,
                    uint32_t opts) {
    if (re != rx->last_re) {
        size_t jit = 0;
        rx->last_jit = pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jit) == 0 && jit > 0;
        rx->last_re = re;
    }
    /* pcre2_jit_match skips pcre2_match's per-call checks; options are the same (ANCHORED was compiled for) */
    int rc = rx->last_jit && opts == 0 ? pcre2_jit_match(re, (PCRE2_SPTR)s, len, pos, 0, rx->md, rx->mctx)
                                       : pcre2_match(re, (PCRE2_SPTR)s, len, pos, opts, rx->md, rx->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !rx->js) {
        rx->js = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
        if (!rx->mctx) rx->mctx = pcre2_match_context_create(NULL);
        if (rx->js && rx->mctx) {
            pcre2_jit_stack_assign(rx->mctx, NULL, rx->js);
            rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, opts, rx->md, rx->mctx);
        }
    }
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(rc, msg, sizeof msg);
        snprintf(rx->err, sizeof rx->err, "regex match failed: %s", (const char *)msg);
        rx->failed = true;
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rx->md);
    if (ov[0] > ov[1] || ov[1] > len || ov[0] < pos) { /* \K tricks: refuse rather than walk backwards */
        snprintf(rx->err, sizeof rx->err, "regex match failed: match outside the searched range");
        rx->failed = true;
        return -1;
    }
    *ms = ov[0];
    *me = ov[1];
    return 1;
}
static const char *lit_find(const char *s, size_t len, size_t pos, const char *lit, size_t litlen) {
    if (litlen == 0 || pos > len || len - pos < litlen) return NULL;
    const char *p = s + pos, *end = s + len - litlen + 1;
    while (p < end) {
        p = (const char *)memchr(p, (unsigned char)lit[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, lit, litlen) == 0) return p;
        p++;
    }
    return NULL;
}
bool tk_segments(TkRx *rx, const pcre2_code *re, const char *lit, size_t litlen, const char *s, size_t len,
                 TkSegFn fn, void *ud) {
    if (len == 0) {
        fn(ud, 0, 0, false);
        return true;
    }
    size_t prev = 0, pos = 0, last_end = 0;
    bool have_last = false;
    while (pos <= len) {
        size_t ms, me;
        if (re) {
            int r = rx_match(rx, re, s, len, pos, &ms, &me, 0);
            if (r < 0) return false;
            if (r == 0) break;
        } else {
            const char *p = lit_find(s, len, pos, lit, litlen);
            if (!p) break;
            ms = (size_t)(p - s);
            me = ms + litlen;
        }
        if (ms == me && have_last && last_end == me) {
            uint32_t cp;
            pos += pos < len ? tk_utf8_next(s + pos, len - pos, &cp) : 1;
            continue;
        }
        if (prev != ms) fn(ud, prev, ms, false);
        fn(ud, ms, me, true);
        prev = pos = last_end = me;
        have_last = true;
    }
    if (prev != len) fn(ud, prev, len, false);
    return true;
}

/* ------------------------------------------------------------------ word cache */
#define SHARD_SLOTS 2048
#define SHARD_ENTS 1024
#define SHARD_KEYS (32 * 1024)
#define SHARD_IDS (8 * 1024)
typedef struct { uint64_t h; uint32_t koff, klen, ioff, nids; } CacheEnt;
struct TkCacheShard {
    pthread_mutex_t mu;
    uint32_t *slots; /* entry index + 1; 0 empty */
    CacheEnt *ents;
    char *keys;
    int32_t *ids;
    uint32_t n_ents, keys_used, ids_used;
};
void tk_cache_init(Tokenizer *t) {
    t->cache = (TkCacheShard *)sd_calloc(TK_CACHE_SHARDS, sizeof(TkCacheShard), "tokenizer cache");
    for (int i = 0; i < TK_CACHE_SHARDS; i++) pthread_mutex_init(&t->cache[i].mu, NULL);
}
void tk_cache_free(Tokenizer *t) {
    if (!t->cache) return;
    for (int i = 0; i < TK_CACHE_SHARDS; i++) {
        TkCacheShard *c = &t->cache[i];
        free(c->slots);
        free(c->ents);
        free(c->keys);
        free(c->ids);
        pthread_mutex_destroy(&c->mu);
    }
    free(t->cache);
    t->cache = NULL;
}
/* Copies the cached ids of word s into out (room for TK_CACHE_MAX_WORD ids); their count, or -1 when absent. */
static int cache_get(const Tokenizer *t, uint64_t h, const char *s, size_t n, int32_t *out) {
    TkCacheShard *c = &t->cache[h >> 58];
    int r = -1;
    pthread_mutex_lock(&c->mu);
    if (c->slots) {
        for (size_t i = h & (SHARD_SLOTS - 1); c->slots[i]; i = (i + 1) & (SHARD_SLOTS - 1)) {
            const CacheEnt *e = &c->ents[c->slots[i] - 1];
            if (e->h == h && e->klen == n && memcmp(c->keys + e->koff, s, n) == 0) {
                memcpy(out, c->ids + e->ioff, e->nids * sizeof(int32_t));
                r = (int)e->nids;
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}
static void cache_put(const Tokenizer *t, uint64_t h, const char *s, size_t n, const int32_t *ids, size_t nids) {
    if (n >= TK_CACHE_MAX_WORD || nids > TK_CACHE_MAX_WORD) return;
    TkCacheShard *c = &t->cache[h >> 58];
    pthread_mutex_lock(&c->mu);
    if (!c->slots) { /* lazily: a failed allocation only means no caching here */
        c->slots = (uint32_t *)calloc(SHARD_SLOTS, sizeof(uint32_t));
        c->ents = (CacheEnt *)malloc(SHARD_ENTS * sizeof(CacheEnt));
        c->keys = (char *)malloc(SHARD_KEYS);
        c->ids = (int32_t *)malloc(SHARD_IDS * sizeof(int32_t));
        if (!c->slots || !c->ents || !c->keys || !c->ids) {
            free(c->slots), free(c->ents), free(c->keys), free(c->ids);
            c->slots = NULL, c->ents = NULL, c->keys = NULL, c->ids = NULL;
            pthread_mutex_unlock(&c->mu);
            return;
        }
    }
    if (c->n_ents == SHARD_ENTS || c->keys_used + n > SHARD_KEYS || c->ids_used + nids > SHARD_IDS) {
        memset(c->slots, 0, SHARD_SLOTS * sizeof(uint32_t)); /* full: start over */
        c->n_ents = c->keys_used = c->ids_used = 0;
    }
    size_t i = h & (SHARD_SLOTS - 1);
    for (; c->slots[i]; i = (i + 1) & (SHARD_SLOTS - 1)) {
        const CacheEnt *e = &c->ents[c->slots[i] - 1];
        if (e->h == h && e->klen == n && memcmp(c->keys + e->koff, s, n) == 0) { /* another thread was first */
            pthread_mutex_unlock(&c->mu);
            return;
        }
    }
    CacheEnt *e = &c->ents[c->n_ents];
    e->h = h;
    e->koff = c->keys_used;
    e->klen = (uint32_t)n;
    e->ioff = c->ids_used;
    e->nids = (uint32_t)nids;
    memcpy(c->keys + c->keys_used, s, n);
    memcpy(c->ids + c->ids_used, ids, nids * sizeof(int32_t));
    c->keys_used += (uint32_t)n;
    c->ids_used += (uint32_t)nids;
    c->slots[i] = ++c->n_ents;
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------ encode context */
typedef struct { int32_t id, prev, next; } Sym;
typedef struct { uint32_t rank, pos; int32_t id; } HeapEnt;
typedef struct {
    const Tokenizer *t;
    int32_t *out;
    size_t n, cap;
    TkRx rx;
    TkBuf nb[2];
    TkBuf pb[TK_MAX_STEPS][2];
    Sym *sym;
    size_t sym_cap;
    HeapEnt *heap;
    size_t heap_n, heap_cap;
    bool failed;
    char err[256];
} Enc;

static void enc_fail(Enc *c, const char *msg) {
    if (!c->failed) snprintf(c->err, sizeof c->err, "%s", msg);
    c->failed = true;
}
static inline void out_reserve(Enc *c, size_t extra) {
    if (c->n + extra <= c->cap) return;
    size_t cap = c->cap ? c->cap : 64;
    while (cap < c->n + extra) cap *= 2;
    c->out = (int32_t *)sd_realloc(c->out, sd_mul_size(cap, sizeof(int32_t), "token ids"), "token ids");
    c->cap = cap;
}
static inline void out_push(Enc *c, int32_t id) {
    out_reserve(c, 1);
    c->out[c->n++] = id;
}

/* ------------------------------------------------------------------ BPE */
static inline bool heap_less(const HeapEnt *a, const HeapEnt *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}
static void heap_push(Enc *c, uint32_t rank, uint32_t pos, int32_t id) {
    if (c->heap_n == c->heap_cap) {
        c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64;
        c->heap = (HeapEnt *)sd_realloc(c->heap, sd_mul_size(c->heap_cap, sizeof(HeapEnt), "bpe heap"), "bpe heap");
    }
    HeapEnt e = {rank, pos, id};
    size_t i = c->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = e;
}
static HeapEnt heap_pop(Enc *c) {
    HeapEnt top = c->heap[0], last = c->heap[--c->heap_n];
    size_t i = 0, n = c->heap_n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = (l + 1 < n && heap_less(&c->heap[l + 1], &c->heap[l])) ? l + 1 : l;
        if (!heap_less(&c->heap[m], &last)) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n) c->heap[i] = last;
    return top;
}
static inline void sym_add(Enc *c, size_t *ns, int32_t id) {
    if (*ns == c->sym_cap) {
        c->sym_cap = c->sym_cap ? c->sym_cap * 2 : 64;
        c->sym = (Sym *)sd_realloc(c->sym, sd_mul_size(c->sym_cap, sizeof(Sym), "bpe symbols"), "bpe symbols");
    }
    Sym *s = &c->sym[*ns];
    s->id = id;
    s->prev = (int32_t)*ns - 1;
    s->next = (int32_t)*ns + 1;
    (*ns)++;
}
/* HF's Word::merge_all: a heap of (rank, position), lowest first; a popped entry is stale when the pair now at
 * its position no longer merges into the same id. */
static void bpe_merge_all(Enc *c, size_t ns) {
    const TkMergeMap *mm = &c->t->merges;
    Sym *sy = c->sym;
    if (ns == 0) return;
    sy[ns - 1].next = -1;
    c->heap_n = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        const TkMergeSlot *m = tk_merge_get(mm, sy[i].id, sy[i + 1].id);
        if (m) heap_push(c, m->rank, (uint32_t)i, m->id);
    }
    while (c->heap_n) {
        HeapEnt top = heap_pop(c);
        Sym *cur = &sy[top.pos];
        if (cur->id < 0 || cur->next < 0) continue;
        int32_t nx = cur->next;
        const TkMergeSlot *m = tk_merge_get(mm, cur->id, sy[nx].id);
        if (!m || m->id != top.id) continue;
        cur->id = top.id;
        cur->next = sy[nx].next;
        sy[nx].id = -1;
        if (cur->next >= 0) sy[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            const TkMergeSlot *pm = tk_merge_get(mm, sy[cur->prev].id, cur->id);
            if (pm) heap_push(c, pm->rank, (uint32_t)cur->prev, pm->id);
        }
        if (cur->next >= 0) {
            const TkMergeSlot *nm = tk_merge_get(mm, cur->id, sy[cur->next].id);
            if (nm) heap_push(c, nm->rank, top.pos, nm->id);
        }
    }
}
static void bpe_word(Enc *c, const char *s, size_t len) {
    const Tokenizer *t = c->t;
    if (len == 0 || c->failed) return;
    uint64_t h = tk_hash(s, len);
    if (t->ignore_merges) {
        int32_t id = tk_map_get_h(&t->vocab, h, s, len);
        if (id >= 0) {
            out_push(c, id);
            return;
        }
    }
    bool cacheable = len < TK_CACHE_MAX_WORD;
    if (cacheable) {
        int32_t tmp[TK_CACHE_MAX_WORD];
        int k = cache_get(t, h, s, len, tmp);
        if (k >= 0) {
            out_reserve(c, (size_t)k);
            memcpy(c->out + c->n, tmp, (size_t)k * sizeof(int32_t));
            c->n += (size_t)k;
            return;
        }
    }
    /* the initial symbols: one per character (HF's merge_word) */
    size_t ns = 0;
    bool unk_pending = false;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t cl = tk_utf8_next(s + i, len - i, &cp);
        int32_t id = cp < TK_CHAR_TABLE ? t->char_id[cp] : tk_map_get(&t->vocab, s + i, cl);
        if (id >= 0) {
            if (unk_pending) sym_add(c, &ns, t->unk_id);
            unk_pending = false;
            sym_add(c, &ns, id);
            i += cl;
            continue;
        }
        if (t->byte_fallback) {
            size_t k = 0;
            while (k < cl && t->byte_tok[(unsigned char)s[i + k]] >= 0) k++;
            if (k == cl) {
                for (k = 0; k < cl; k++) sym_add(c, &ns, t->byte_tok[(unsigned char)s[i + k]]);
                i += cl;
                continue;
            }
        }
        if (t->unk_token) {
            if (t->unk_id < 0) {
                char m[200];
                snprintf(m, sizeof m, "the unk token '%.80s' is not in the vocabulary", t->unk_token);
                enc_fail(c, m);
                return;
            }
            if (unk_pending && !t->fuse_unk) sym_add(c, &ns, t->unk_id);
            unk_pending = true;
        } else {
            char m[200];
            if (cp == TK_BAD_CP)
                snprintf(m, sizeof m, "byte 0x%02X is not in the vocabulary and the tokenizer has neither an unk "
                         "token nor byte_fallback", (unsigned)(unsigned char)s[i]);
            else
                snprintf(m, sizeof m, "character U+%04X is not in the vocabulary and the tokenizer has neither an "
                         "unk token nor byte_fallback", (unsigned)cp);
            enc_fail(c, m);
            return;
        }
        i += cl;
    }
    if (unk_pending) sym_add(c, &ns, t->unk_id);
    bpe_merge_all(c, ns);
    size_t start = c->n;
    out_reserve(c, ns);
    for (int32_t i = ns ? 0 : -1; i >= 0; i = c->sym[i].next) c->out[c->n++] = c->sym[i].id;
    if (cacheable) cache_put(t, h, s, len, c->out + start, c->n - start);
}

/* ------------------------------------------------------------------ pre-tokenizers */
static void pretok(Enc *c, int step, const char *s, size_t len, bool at_origin);

typedef struct {
    Enc *c;
    int step;
    const char *s;
    bool at_origin, invert;
    int behavior;
    bool has_pending, pending_match, prev_match;
    size_t pa, pb;
    /* ByteLevel with use_regex: the pieces are mapped instead of recursed into directly */
    bool bytelevel;
} SplitSt;

static void bl_map(Enc *c, int step, const char *s, size_t len, bool at_origin);
static void split_emit(SplitSt *st, size_t a, size_t b) {
    if (b <= a || st->c->failed) return;
    if (st->bytelevel) bl_map(st->c, st->step, st->s + a, b - a, st->at_origin && a == 0);
    else pretok(st->c, st->step + 1, st->s + a, b - a, st->at_origin && a == 0);
}
static void split_flush(SplitSt *st) {
    if (st->has_pending) split_emit(st, st->pa, st->pb);
    st->has_pending = false;
}
static void split_set(SplitSt *st, size_t a, size_t b, bool m) {
    st->has_pending = true;
    st->pa = a;
    st->pb = b;
    st->pending_match = m;
}
/* SplitDelimiterBehavior applied to the stream of (segment, is_match), holding at most one piece back. */
static void split_seg(void *ud, size_t a, size_t b, bool m) {
    SplitSt *st = (SplitSt *)ud;
    if (st->invert) m = !m;
    switch (st->behavior) {
    case TK_B_ISOLATED: split_emit(st, a, b); break;
    case TK_B_REMOVED:
        if (!m) split_emit(st, a, b);
        break;
    case TK_B_CONTIGUOUS:
        if (st->has_pending && m == st->prev_match) st->pb = b;
        else {
            split_flush(st);
            split_set(st, a, b, m);
        }
        st->prev_match = m;
        break;
    case TK_B_MERGED_PREV:
        if (st->has_pending && m && !st->prev_match) st->pb = b;
        else {
            split_flush(st);
            split_set(st, a, b, m);
        }
        st->prev_match = m;
        break;
    case TK_B_MERGED_NEXT:
        if (st->has_pending && st->pending_match && !m) {
            st->pb = b;
            split_flush(st);
        } else {
            split_flush(st);
            split_set(st, a, b, m);
        }
        break;
    }
}
static void run_split(Enc *c, int step, const pcre2_code *re, const char *lit, size_t litlen, const char *s,
                      size_t len, bool at_origin, int behavior, bool invert, bool bytelevel) {
    SplitSt st = {.c = c, .step = step, .s = s, .at_origin = at_origin, .invert = invert, .behavior = behavior,
                  .bytelevel = bytelevel};
    if (!tk_segments(&c->rx, re, lit, litlen, s, len, split_seg, &st)) {
        enc_fail(c, c->rx.err);
        return;
    }
    split_flush(&st);
}
static void bl_map(Enc *c, int step, const char *s, size_t len, bool at_origin) {
    const Tokenizer *t = c->t;
    TkBuf *b = &c->pb[step][0];
    b->len = 0;
    tkb_reserve(b, 2 * len);
    char *o = b->p;
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)s[i];
        o[0] = t->bl_utf8[x][0];
        o[1] = t->bl_utf8[x][1];
        o += t->bl_len[x];
    }
    b->len = (size_t)(o - b->p);
    pretok(c, step + 1, b->p, b->len, at_origin);
}
/* Metaspace split: each replacement character is a match, merged with what follows it. */
static void meta_split(Enc *c, int step, const TkPreTok *p, const char *s, size_t len, bool at_origin) {
    SplitSt st = {.c = c, .step = step, .s = s, .at_origin = at_origin, .behavior = TK_B_MERGED_NEXT};
    size_t last = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t cl = tk_utf8_next(s + i, len - i, &cp);
        if (cl == (size_t)p->repl_len && memcmp(s + i, p->repl, cl) == 0) {
            if (last < i) split_seg(&st, last, i, false);
            split_seg(&st, i, i + cl, true);
            last = i + cl;
        }
        i += cl;
    }
    if (last < len) split_seg(&st, last, len, false);
    split_flush(&st);
}
static void pretok(Enc *c, int step, const char *s, size_t len, bool at_origin) {
    const Tokenizer *t = c->t;
    if (c->failed || len == 0) return;
    if (step == t->n_pre) {
        if (t->meta_cut && len > 64) { /* a long SentencePiece-style word: BPE each ▁-led part on its own */
            size_t a = 0;
            for (const char *p = s + 1; (p = (const char *)memchr(p, 0xE2, len - (size_t)(p - s))) != NULL; p++) {
                size_t k = (size_t)(p - s);
                if (k + 3 > len || memcmp(p, "\xE2\x96\x81", 3) != 0) continue;
                if (k >= 3 && memcmp(p - 3, "\xE2\x96\x81", 3) == 0) continue;
                bpe_word(c, s + a, k - a);
                a = k;
            }
            bpe_word(c, s + a, len - a);
            return;
        }
        bpe_word(c, s, len);
        return;
    }
    const TkPreTok *p = &t->pre[step];
    switch (p->kind) {
    case TK_PT_SPLIT:
        run_split(c, step, p->re, p->lit, p->litlen, s, len, at_origin, p->behavior, p->invert, false);
        break;
    case TK_PT_BYTELEVEL: {
        if (p->add_prefix_space && s[0] != ' ') {
            TkBuf *b = &c->pb[step][1];
            b->len = 0;
            tkb_add(b, " ", 1);
            tkb_add(b, s, len);
            s = b->p;
            len = b->len;
        }
        if (p->re) run_split(c, step, p->re, NULL, 0, s, len, at_origin, TK_B_ISOLATED, false, true);
        else bl_map(c, step, s, len, at_origin);
        break;
    }
    case TK_PT_METASPACE: {
        TkBuf *b = &c->pb[step][0];
        b->len = 0;
        tkb_reserve(b, len * (size_t)p->repl_len + (size_t)p->repl_len);
        bool starts = (size_t)p->repl_len <= len && memcmp(s, p->repl, (size_t)p->repl_len) == 0;
        if (s[0] == ' ' && p->repl_len > 0) starts = true; /* the space becomes the replacement */
        if (!starts && (p->prepend_scheme == TK_PS_ALWAYS || (p->prepend_scheme == TK_PS_FIRST && at_origin)))
            tkb_add(b, p->repl, (size_t)p->repl_len);
        for (size_t i = 0; i < len; i++) {
            if (s[i] == ' ') tkb_add(b, p->repl, (size_t)p->repl_len);
            else b->p[b->len++] = s[i];
        }
        b->p[b->len] = 0;
        if (p->split) meta_split(c, step, p, b->p, b->len, at_origin);
        else pretok(c, step + 1, b->p, b->len, at_origin);
        break;
    }
    }
}

/* ------------------------------------------------------------------ normalizers */
typedef struct { TkBuf *out; const char *s; const char *content; size_t clen; } ReplSt;
static void repl_seg(void *ud, size_t a, size_t b, bool m) {
    ReplSt *r = (ReplSt *)ud;
    if (m) tkb_add(r->out, r->content, r->clen);
    else tkb_add(r->out, r->s + a, b - a);
}
const char *tk_normalize(const Tokenizer *t, TkRx *rx, TkBuf nb[2], const char *s, size_t len, size_t *olen) {
    int w = 0; /* next buffer to write */
    for (int k = 0; k < t->n_norm; k++) {
        const TkNorm *n = &t->norm[k];
        TkBuf *o = &nb[w];
        o->len = 0;
        switch (n->kind) {
        case TK_NM_PREPEND:
            if (len == 0) continue;
            tkb_reserve(o, n->alen + len);
            tkb_add(o, n->a, n->alen);
            tkb_add(o, s, len);
            break;
        case TK_NM_REPLACE: {
            if (len == 0) continue;
            if (!n->re && !lit_find(s, len, 0, n->a, n->alen)) continue; /* nothing to replace */
            ReplSt r = {o, s, n->b, n->blen};
            tkb_reserve(o, len);
            if (!tk_segments(rx, n->re, n->a, n->alen, s, len, repl_seg, &r)) return NULL;
            if (!o->p) tkb_reserve(o, 0);
            break;
        }
        default: {
#ifdef SIMPO_HAVE_UTF8PROC
            size_t i = 0;
            while (i < len && (unsigned char)s[i] < 0x80) i++;
            if (i == len) continue; /* ASCII is already in every normal form */
            int opts = UTF8PROC_STABLE;
            if (n->kind == TK_NM_NFC || n->kind == TK_NM_NFKC) opts |= UTF8PROC_COMPOSE;
            else opts |= UTF8PROC_DECOMPOSE;
            if (n->kind == TK_NM_NFKC || n->kind == TK_NM_NFKD) opts |= UTF8PROC_COMPAT;
            /* Only the stretches around non-ASCII characters go through utf8proc: ASCII characters are starters
             * that never reorder and never compose with a following ASCII character, so a cut between two ASCII
             * characters changes nothing. Each stretch starts one ASCII character early (it may compose with a
             * following mark) and ends before an ASCII character that is followed by ASCII or the end. */
            size_t done = 0;
            while (done < len) {
                size_t k = done;
                while (k < len && (unsigned char)s[k] < 0x80) k++;
                if (k == len) {
                    tkb_add(o, s + done, len - done);
                    break;
                }
                size_t st = k > done ? k - 1 : k, j = k;
                tkb_add(o, s + done, st - done);
                while (j < len && !((unsigned char)s[j] < 0x80 && (j + 1 == len || (unsigned char)s[j + 1] < 0x80)))
                    j++;
                utf8proc_uint8_t *res = NULL;
                utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s + st, (utf8proc_ssize_t)(j - st),
                                                  &res, (utf8proc_option_t)opts);
                if (r < 0) tkb_add(o, s + st, j - st); /* invalid UTF-8: HF never sees it; kept as it is */
                else tkb_add(o, res, (size_t)r);
                free(res);
                done = j;
            }
            break;
#else
            continue; /* refused at load time */
#endif
        }
        }
        s = o->p;
        len = o->len;
        w ^= 1;
    }
    *olen = len;
    return s;
}

/* ------------------------------------------------------------------ added tokens */
/* Longest added token starting at s[i]: its index (and length in *mlen), or -1. */
static inline int32_t trie_longest(const TkTrie *tr, const char *s, size_t len, size_t i, size_t *mlen) {
    int32_t node = tr->root[(unsigned char)s[i]], best = -1;
    size_t j = i + 1;
    while (node >= 0) {
        const TkTrieNode *nd = &tr->nodes[node];
        if (nd->token >= 0) {
            best = nd->token;
            *mlen = j - i;
        }
        if (j >= len) break;
        unsigned char ch = (unsigned char)s[j];
        int32_t ch_node = nd->first;
        while (ch_node >= 0 && tr->nodes[ch_node].byte != ch) ch_node = tr->nodes[ch_node].sibling;
        node = ch_node;
        j++;
    }
    return best;
}
static bool is_word_at(Enc *c, const char *s, size_t len, size_t pos) {
    size_t ms, me;
    return rx_match(&c->rx, c->t->word_re, s, len, pos, &ms, &me, PCRE2_ANCHORED) == 1;
}
static bool ends_with_word(Enc *c, const char *s, size_t end) {
    size_t i = end;
    while (i > 0 && end - i < 4) { /* back to the start of the last character */
        i--;
        if (((unsigned char)s[i] & 0xC0) != 0x80) break;
    }
    return is_word_at(c, s, end, i);
}
static size_t trailing_ws_start(const char *s, size_t end) {
    size_t e = end;
    while (e > 0) {
        size_t i = e;
        while (i > 0 && e - i < 4) {
            i--;
            if (((unsigned char)s[i] & 0xC0) != 0x80) break;
        }
        uint32_t cp;
        size_t cl = tk_utf8_next(s + i, e - i, &cp);
        if (i + cl != e || !tk_is_ws(cp)) break;
        e = i;
    }
    return e;
}
static size_t leading_ws_len(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t cl = tk_utf8_next(s + i, len - i, &cp);
        if (!tk_is_ws(cp)) break;
        i += cl;
    }
    return i;
}
typedef void (*PieceFn)(Enc *c, const char *s, size_t len, bool at_origin);
/* AddedVocabulary::find_matches: leftmost-longest, non-overlapping; pieces between go to fn. */
static void added_split(Enc *c, const TkTrie *tr, const char *s, size_t len, bool at_origin, PieceFn fn) {
    const Tokenizer *t = c->t;
    size_t start_offset = 0, pos = 0;
    while (pos < len && !c->failed) {
        size_t i = pos, mlen = 0;
        int32_t tok = -1;
        for (; i < len; i++) {
            if (tr->first_byte >= 0) {
                const char *p = (const char *)memchr(s + i, tr->first_byte, len - i);
                if (!p) {
                    i = len;
                    break;
                }
                i = (size_t)(p - s);
            } else if (tr->root[(unsigned char)s[i]] < 0) continue;
            tok = trie_longest(tr, s, len, i, &mlen);
            if (tok >= 0) break;
        }
        if (tok < 0) break;
        const TkAdded *a = &t->added[tok];
        size_t ms = i, me = i + mlen;
        pos = me;
        if (a->single_word) {
            bool start_space = ms == 0 || !ends_with_word(c, s, ms);
            bool stop_space = me == len || !is_word_at(c, s, len, me);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns = trailing_ws_start(s, ms);
            ms = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) me += leading_ws_len(s + me, len - me);
        if (ms < start_offset) ms = start_offset;
        if (start_offset < ms) fn(c, s + start_offset, ms - start_offset, at_origin && start_offset == 0);
        if (c->failed) return;
        out_push(c, a->id);
        if (me > start_offset) start_offset = me;
    }
    if (start_offset < len && !c->failed) fn(c, s + start_offset, len - start_offset, at_origin && start_offset == 0);
}
static void norm_piece(Enc *c, const char *s, size_t len, bool at_origin) {
    pretok(c, 0, s, len, at_origin);
}
static void raw_piece(Enc *c, const char *s, size_t len, bool at_origin) {
    const Tokenizer *t = c->t;
    size_t nlen = len;
    const char *ns = t->n_norm ? tk_normalize(t, &c->rx, c->nb, s, len, &nlen) : s;
    if (!ns) {
        enc_fail(c, c->rx.err);
        return;
    }
    if (t->trie_norm.any) added_split(c, &t->trie_norm, ns, nlen, at_origin, norm_piece);
    else norm_piece(c, ns, nlen, at_origin);
}

int *tokenizer_encode(const Tokenizer *t, const char *text, size_t len, size_t *n, char *err, size_t errlen) {
    Enc *c = (Enc *)sd_calloc(1, sizeof(Enc), "tokenizer encode state");
    c->t = t;
    tk_rx_init(&c->rx);
    out_reserve(c, len / 3 + 16);
    if (len) {
        if (t->trie_raw.any) added_split(c, &t->trie_raw, text, len, true, raw_piece);
        else raw_piece(c, text, len, true);
    }
    for (int i = 0; i < 2; i++) free(c->nb[i].p);
    for (int i = 0; i < TK_MAX_STEPS; i++) free(c->pb[i][0].p), free(c->pb[i][1].p);
    free(c->sym);
    free(c->heap);
    tk_rx_free(&c->rx);
    int32_t *out = c->out;
    size_t cnt = c->n;
    bool failed = c->failed;
    if (failed && err && errlen) snprintf(err, errlen, "%s", c->err);
    free(c);
    if (failed) {
        free(out);
        if (n) *n = 0;
        return NULL;
    }
    if (n) *n = cnt;
    _Static_assert(sizeof(int32_t) == sizeof(int), "int is 32 bits");
    return (int *)out;
}
