/* tokenizer_internal.h — private to data/tokenizer*.c: the Tokenizer struct, its hash maps and the small UTF-8,
 * buffer and regex helpers the loader (tokenizer.c), the encoder (tokenizer_encode.c) and the decoder
 * (tokenizer_decode.c) share.
 * defines: struct Tokenizer, TkStrMap, TkMergeMap, TkTrie, TkBuf, TkRx and their helpers.
 * Ownership: everything hangs off the Tokenizer and is released by tokenizer_free, which accepts a half-built one
 * (fields zero until set), so a loader that dies midway leaks nothing. */
#ifndef SD_TOKENIZER_INTERNAL_H
#define SD_TOKENIZER_INTERNAL_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "tokenizer.h"
#include "util.h"

#define TK_MAX_STEPS 64          /* normalizers, pre-tokenizers, decoders: each (flattened) list at most this long */
#define TK_CACHE_SHARDS 64       /* word cache: shards, each with its own lock */
#define TK_CACHE_MAX_WORD 256    /* words of this many bytes or more are not cached (as HF) */
#define TK_BAD_CP 0xFFFFFFFFu    /* "code point" of a byte that does not start a valid UTF-8 sequence */

/* ---- small helpers ---- */
static inline uint64_t tk_hash(const void *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)s[i] << (8 * i);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 32;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

/* Length of the UTF-8 character at s (n > 0 bytes available) and its code point; an invalid or truncated sequence
 * counts as one byte with *cp = TK_BAD_CP (overlongs, surrogates and values past U+10FFFF are invalid). */
static inline size_t tk_utf8_next(const char *sp, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)sp;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c <= 0xDF) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80) { *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); return 2; }
    } else if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) {
            *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
            return 3;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
            *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
            return 4;
        }
    }
    *cp = TK_BAD_CP;
    return 1;
}
static inline size_t tk_utf8_put(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
/* Unicode White_Space (what Rust's char::is_whitespace and regex \s accept). */
static inline bool tk_is_ws(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Growable byte buffer (dies on allocation failure). */
typedef struct { char *p; size_t len, cap; } TkBuf;
static inline void tkb_reserve(TkBuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) sd_die("tokenizer", "buffer of %zu bytes overflows", need);
        cap *= 2;
    }
    b->p = (char *)sd_realloc(b->p, cap, "tokenizer buffer");
    b->cap = cap;
}
static inline void tkb_add(TkBuf *b, const void *s, size_t n) {
    tkb_reserve(b, n);
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* ---- hash maps ---- */
/* String -> index map. A slot holds the hash, the length and the string's offset in one storage block (base),
 * so a probe touches the slot and the string only. */
typedef struct { uint32_t h, len; int32_t idx; uint32_t off; } TkSlot;
typedef struct { TkSlot *slots; size_t mask; const char *base; } TkStrMap;
static inline bool tk_eq(const char *a, const char *b, size_t n) {
    if (n >= 8 && n <= 16) {
        uint64_t x0, y0, x1, y1;
        memcpy(&x0, a, 8), memcpy(&y0, b, 8), memcpy(&x1, a + n - 8, 8), memcpy(&y1, b + n - 8, 8);
        return x0 == y0 && x1 == y1;
    }
    if (n >= 4 && n < 8) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, a, 4), memcpy(&y0, b, 4), memcpy(&x1, a + n - 4, 4), memcpy(&y1, b + n - 4, 4);
        return x0 == y0 && x1 == y1;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i]) return false;
        return true;
    }
    return memcmp(a, b, n) == 0;
}
static inline int32_t tk_map_get_h(const TkStrMap *m, uint64_t h64, const char *s, size_t n) {
    if (!m->slots) return -1;
    uint32_t h = (uint32_t)(h64 >> 32);
    for (size_t i = (size_t)h64 & m->mask;; i = (i + 1) & m->mask) {
        const TkSlot *sl = &m->slots[i];
        if (sl->idx < 0) return -1;
        if (sl->h == h && sl->len == n && tk_eq(m->base + sl->off, s, n)) return sl->idx;
    }
}
static inline int32_t tk_map_get(const TkStrMap *m, const char *s, size_t n) {
    return tk_map_get_h(m, tk_hash(s, n), s, n);
}

/* (left id, right id) -> (rank, merged id). */
typedef struct { uint64_t key; uint32_t rank; int32_t id; } TkMergeSlot;
typedef struct { TkMergeSlot *slots; size_t mask; } TkMergeMap;
#define TK_MERGE_EMPTY UINT64_MAX
static inline uint64_t tk_merge_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static inline size_t tk_merge_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}
static inline const TkMergeSlot *tk_merge_get(const TkMergeMap *m, int32_t a, int32_t b) {
    if (!m->slots) return NULL;
    uint64_t key = tk_merge_key(a, b);
    for (size_t i = tk_merge_slot(key, m->mask);; i = (i + 1) & m->mask) {
        const TkMergeSlot *sl = &m->slots[i];
        if (sl->key == key) return sl;
        if (sl->key == TK_MERGE_EMPTY) return NULL;
    }
}

/* Byte trie of added-token strings, for the leftmost-longest scan. */
typedef struct { int32_t first, sibling, token; uint8_t byte; } TkTrieNode;
typedef struct {
    TkTrieNode *nodes;
    size_t n, cap;
    int32_t root[256];
    bool any;
    int first_byte; /* the one byte every token starts with, or -1 */
} TkTrie;

/* ---- regex iteration (onig find_iter semantics) ---- */
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *js;
    const pcre2_code *last_re; /* the pattern last_jit describes */
    bool last_jit;
    bool failed;
    char err[160];
} TkRx;
void tk_rx_init(TkRx *rx);
void tk_rx_free(TkRx *rx);
/* Calls fn(ud, start, end, is_match) for consecutive segments covering s[0..len) (an empty s gives one empty
 * non-match): the matches of re (or of the literal lit when re is NULL) and the gaps between them. Empty matches
 * right after a previous match are skipped as onig does. Returns false (rx->failed, rx->err) on a match error. */
typedef void (*TkSegFn)(void *ud, size_t a, size_t b, bool is_match);
bool tk_segments(TkRx *rx, const pcre2_code *re, const char *lit, size_t litlen, const char *s, size_t len,
                 TkSegFn fn, void *ud);

/* ---- components ---- */
typedef struct {
    char *content;
    uint32_t len;
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} TkAdded;

enum { TK_NM_PREPEND, TK_NM_REPLACE, TK_NM_NFC, TK_NM_NFD, TK_NM_NFKC, TK_NM_NFKD };
typedef struct {
    int kind;
    char *a;               /* Prepend: the prefix; Replace: the literal pattern (NULL when re) */
    size_t alen;
    char *b;               /* Replace: the content */
    size_t blen;
    pcre2_code *re;        /* Replace with a Regex pattern */
} TkNorm;

enum { TK_PT_SPLIT, TK_PT_BYTELEVEL, TK_PT_METASPACE };
enum { TK_B_REMOVED, TK_B_ISOLATED, TK_B_MERGED_PREV, TK_B_MERGED_NEXT, TK_B_CONTIGUOUS };
enum { TK_PS_ALWAYS, TK_PS_FIRST, TK_PS_NEVER };
typedef struct {
    int kind;
    pcre2_code *re;        /* Split (Regex, Digits), ByteLevel with use_regex */
    char *lit;             /* Split with a String pattern */
    size_t litlen;
    int behavior;
    bool invert;
    bool add_prefix_space; /* ByteLevel */
    char repl[8];          /* Metaspace replacement (one character) */
    int repl_len;
    int prepend_scheme;
    bool split;
} TkPreTok;

enum { TK_DC_BYTELEVEL, TK_DC_METASPACE, TK_DC_REPLACE, TK_DC_BYTEFALLBACK, TK_DC_FUSE, TK_DC_STRIP };
typedef struct {
    int kind;
    char *a;               /* Replace: literal pattern (NULL when re) */
    size_t alen;
    char *b;               /* Replace: content */
    size_t blen;
    pcre2_code *re;
    uint32_t cp;           /* Metaspace: replacement; Strip: the character stripped */
    int prepend_scheme;
    size_t start, stop;    /* Strip */
} TkDecoder;

typedef struct TkCacheShard TkCacheShard;

struct Tokenizer {
    char *name;
    /* ids: one past the largest id; tok[id] (NUL-terminated, tok_len[id] bytes) or NULL for an unused id.
     * tok[] shows the added token's content where an id is an added token. */
    int32_t n_ids;
    char **tok;
    uint32_t *tok_len;
    char *arena;           /* storage of the model vocabulary strings */
    /* the BPE model: vocabulary (model.vocab only), merges, options */
    char **vtok;           /* id -> model vocabulary string (NULL when the id is not in model.vocab) */
    TkStrMap vocab;
    size_t n_vocab;
    TkMergeMap merges;
    size_t n_merges;
    int32_t *char_id;      /* code point < TK_CHAR_TABLE -> vocabulary id of that one character, or -1 */
    char *unk_token;
    int32_t unk_id;        /* -1 when no unk token or when it is not in the vocabulary */
    bool byte_fallback, fuse_unk, ignore_merges;
    /* no vocabulary token has U+2581 after another character (and U+2581 is a token): a word can be cut before
     * every U+2581 that follows another character without changing its BPE result (no merge spans the cut) */
    bool meta_cut;
    int32_t byte_tok[256]; /* id of "<0xXX>", or -1 */
    /* added tokens */
    TkAdded *added;
    size_t n_added;
    char *added_arena;     /* storage of the added tokens' contents */
    TkStrMap added_map;
    TkTrie trie_raw, trie_norm;
    pcre2_code *word_re;   /* \w, for single_word tokens */
    /* pipeline */
    TkNorm *norm;
    int n_norm;
    TkPreTok *pre;
    int n_pre;
    TkDecoder *dec;
    int n_dec;
    bool has_decoder;
    /* byte-level alphabet */
    char bl_utf8[256][2];
    uint8_t bl_len[256];
    int16_t bl_inv[512];   /* code point -> byte, -1 */
    TkCacheShard *cache;
};
#define TK_CHAR_TABLE 0x800

/* tokenizer_encode.c */
void tk_cache_init(Tokenizer *t);
void tk_cache_free(Tokenizer *t);
/* Runs the normalizers over s; returns s itself or one of the two buffers (NUL-terminated), length in *olen.
 * NULL with rx->failed when a regex failed. */
const char *tk_normalize(const Tokenizer *t, TkRx *rx, TkBuf nb[2], const char *s, size_t len, size_t *olen);
#endif
