/* tokenizer_decode.c — tokenizer_decode: ids -> token strings -> the decoder chain (HF's decode_chain, each step
 * mapping a list of strings to a list of strings) -> their concatenation (joined with " " when the tokenizer has
 * no decoder, as HF does). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer_internal.h"

/* A list of strings stored back to back: string i is buf[off[i] .. off[i+1]). */
typedef struct {
    TkBuf b;
    size_t *off;
    size_t n, cap;
} TokList;

static void tl_reset(TokList *l) {
    l->b.len = 0;
    l->n = 0;
    if (!l->cap) {
        l->cap = 16;
        l->off = (size_t *)sd_alloc(l->cap * sizeof(size_t), "decode list");
    }
    l->off[0] = 0;
    tkb_reserve(&l->b, 0);
}
/* Ends the string being built (the bytes added since the last end). */
static void tl_end(TokList *l) {
    if (l->n + 2 > l->cap) {
        l->cap *= 2;
        l->off = (size_t *)sd_realloc(l->off, sd_mul_size(l->cap, sizeof(size_t), "decode list"), "decode list");
    }
    l->off[++l->n] = l->b.len;
}
static void tl_push(TokList *l, const char *s, size_t n) {
    tkb_add(&l->b, s, n);
    tl_end(l);
}
static inline const char *tl_str(const TokList *l, size_t i, size_t *n) {
    *n = l->off[i + 1] - l->off[i];
    return l->b.p + l->off[i];
}
static void tl_free(TokList *l) {
    free(l->b.p);
    free(l->off);
}

/* String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD. */
static void add_lossy(TkBuf *o, const char *s, size_t n) {
    static const char rep[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t cl = tk_utf8_next(s + i, n - i, &cp);
        if (cp != TK_BAD_CP) {
            tkb_add(o, s + i, cl);
            i += cl;
            continue;
        }
        /* the invalid part: a lead byte plus the continuation bytes that could still have completed it */
        const unsigned char *u = (const unsigned char *)s + i;
        size_t bad = 1, want = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (u[0] >= 0xC2 && u[0] <= 0xDF) want = 1;
        else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
            want = 2;
            if (u[0] == 0xE0) lo = 0xA0;
            if (u[0] == 0xED) hi = 0x9F;
        } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
            want = 3;
            if (u[0] == 0xF0) lo = 0x90;
            if (u[0] == 0xF4) hi = 0x8F;
        }
        if (want && i + 1 < n && u[1] >= lo && u[1] <= hi) {
            bad = 2;
            while (bad <= want && i + bad < n && (u[bad] & 0xC0) == 0x80) bad++;
        }
        tkb_add(o, rep, 3);
        i += bad;
    }
}
static bool utf8_valid(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += tk_utf8_next(s + i, n - i, &cp);
        if (cp == TK_BAD_CP) return false;
    }
    return true;
}
static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
/* "<0xXX>" as ByteFallback reads it (u8::from_str_radix accepts a leading '+'). */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    if (s[3] == '+') return hexval(s[4]);
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

typedef struct { TkBuf *out; const char *s; const char *content; size_t clen; } DReplSt;
static void drepl_seg(void *ud, size_t a, size_t b, bool m) {
    DReplSt *r = (DReplSt *)ud;
    if (m) tkb_add(r->out, r->content, r->clen);
    else tkb_add(r->out, r->s + a, b - a);
}

/* One decoder step: in -> out. Returns false on a regex failure. */
static bool dec_step(const Tokenizer *t, const TkDecoder *d, const TokList *in, TokList *out, TkRx *rx) {
    static const char rep[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    tl_reset(out);
    switch (d->kind) {
    case TK_DC_BYTELEVEL: {
        TkBuf raw = {0};
        for (size_t i = 0; i < in->n; i++) {
            size_t n;
            const char *s = tl_str(in, i, &n);
            size_t start = raw.len;
            bool ok = true;
            tkb_reserve(&raw, n);
            for (size_t j = 0; j < n;) {
                uint32_t cp;
                size_t cl = tk_utf8_next(s + j, n - j, &cp);
                if (cp >= 512 || t->bl_inv[cp] < 0) {
                    ok = false;
                    break;
                }
                raw.p[raw.len++] = (char)t->bl_inv[cp];
                j += cl;
            }
            if (!ok) { /* a character outside the byte alphabet: the token's bytes as they are */
                raw.len = start;
                tkb_add(&raw, s, n);
            }
        }
        add_lossy(&out->b, raw.p ? raw.p : "", raw.len);
        tl_end(out);
        free(raw.p);
        break;
    }
    case TK_DC_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            size_t n;
            const char *s = tl_str(in, i, &n);
            for (size_t j = 0; j < n;) {
                uint32_t cp;
                size_t cl = tk_utf8_next(s + j, n - j, &cp);
                if (cp == d->cp) {
                    if (!(i == 0 && d->prepend_scheme != TK_PS_NEVER)) tkb_add(&out->b, " ", 1);
                } else tkb_add(&out->b, s + j, cl);
                j += cl;
            }
            tl_end(out);
        }
        break;
    case TK_DC_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            size_t n;
            const char *s = tl_str(in, i, &n);
            DReplSt r = {&out->b, s, d->b, d->blen};
            if (!tk_segments(rx, d->re, d->a, d->alen, s, n, drepl_seg, &r)) return false;
            tl_end(out);
        }
        break;
    case TK_DC_BYTEFALLBACK: {
        size_t pend_start = 0, npend = 0; /* pending bytes sit at the end of out->b, not yet ended */
        for (size_t i = 0; i <= in->n; i++) {
            size_t n = 0;
            const char *s = i < in->n ? tl_str(in, i, &n) : NULL;
            int byte = s ? byte_token(s, n) : -1;
            if (byte >= 0) {
                if (!npend) pend_start = out->b.len;
                char ch = (char)byte;
                tkb_add(&out->b, &ch, 1);
                npend++;
                continue;
            }
            if (npend) {
                if (utf8_valid(out->b.p + pend_start, npend)) tl_end(out);
                else {
                    out->b.len = pend_start;
                    for (size_t k = 0; k < npend; k++) tl_push(out, rep, 3);
                }
                npend = 0;
            }
            if (s) tl_push(out, s, n);
        }
        break;
    }
    case TK_DC_FUSE:
        tkb_add(&out->b, in->b.p + in->off[0], in->off[in->n] - in->off[0]);
        tl_end(out);
        break;
    case TK_DC_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            size_t n;
            const char *s = tl_str(in, i, &n);
            size_t a = 0, b = n, k;
            for (k = 0; k < d->start && a < n; k++) {
                uint32_t cp;
                size_t cl = tk_utf8_next(s + a, n - a, &cp);
                if (cp != d->cp) break;
                a += cl;
            }
            for (k = 0; k < d->stop && b > a; k++) {
                size_t j = b;
                while (j > a && b - j < 4) {
                    j--;
                    if (((unsigned char)s[j] & 0xC0) != 0x80) break;
                }
                uint32_t cp;
                size_t cl = tk_utf8_next(s + j, b - j, &cp);
                if (j + cl != b || cp != d->cp) break;
                b = j;
            }
            tl_push(out, s + a, b - a);
        }
        break;
    }
    return true;
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_ids || !t->tok[ids[i]])
            sd_die(t->name, "decode: id %d (position %zu) is not in the vocabulary (%d ids)", ids[i], i, t->n_ids);
    TokList l[2] = {{{0}, 0, 0, 0}, {{0}, 0, 0, 0}};
    tl_reset(&l[0]);
    for (size_t i = 0; i < n; i++) tl_push(&l[0], t->tok[ids[i]], t->tok_len[ids[i]]);
    int cur = 0;
    TkRx rx;
    tk_rx_init(&rx);
    for (int k = 0; k < t->n_dec; k++) {
        if (!dec_step(t, &t->dec[k], &l[cur], &l[cur ^ 1], &rx)) {
            /* only a pathological Replace regex gets here: keep what we had */
            break;
        }
        cur ^= 1;
    }
    tk_rx_free(&rx);
    TkBuf res = {0};
    if (t->has_decoder) {
        tkb_add(&res, l[cur].b.p + l[cur].off[0], l[cur].off[l[cur].n] - l[cur].off[0]);
    } else {
        for (size_t i = 0; i < l[cur].n; i++) {
            size_t k;
            const char *s = tl_str(&l[cur], i, &k);
            if (i) tkb_add(&res, " ", 1);
            tkb_add(&res, s, k);
        }
        tkb_reserve(&res, 0);
    }
    tl_free(&l[0]);
    tl_free(&l[1]);
    return res.p;
}
