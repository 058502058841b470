/* test_tokenizer.c — tokenizer.json loading, encode and decode against HF tokenizers' output.
 * Llama 3 (byte-level BPE): every tests/fixtures/tokenizer-a/encode.jsonl line (computed by HF tokenizers 0.23) and
 * the chat.jsonl prompt/response texts must encode to exactly the recorded ids and decode back to the text.
 * Llama 2 style (SentencePiece BPE: Prepend/Replace normalizer, byte_fallback; the file in third_party is the
 * Mistral-7B vocabulary): hand-checked cases and round trips of the same texts. Qwen2.5 (NFC normalizer, its own
 * split regex: digits one by one, case-insensitive contractions): every tests/fixtures/tokenizer-q25 line (computed
 * by transformers.js's tokenizers, @lenml/tokenizers: scripts/make_qwen_tokenizer_fixture.mjs); Qwen3 likewise
 * (tokenizer-q3: <think> and </think> added tokens, answers with their <think> block). Then special tokens in text,
 * small inline tokenizers (Metaspace, Digits, Split behaviours, unk, lstrip/rstrip), long words (no quadratic
 * merge), concurrent encodes, and the load errors (unsupported model, malformed JSON, bad merges and ids). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include "test_util.h"
#include "tokenizer.h"

static char *tok_dir(const char *name) {
    const char *d = getenv("SIMPO_TOKENIZERS");
    char *base = d ? sd_strdup(d) : sd_strdup("third_party/tokenizers");
    char *p = sd_path_join(base, name);
    free(base);
    return p;
}
/* Loads SIMPO_TOKENIZERS/<name>; NULL (and a failure) when the file is absent. */
static Tokenizer *load_named(const char *name) {
    char *dir = tok_dir(name);
    char *file = sd_path_join(dir, "tokenizer.json");
    Tokenizer *t = NULL;
    if (!sd_file_exists(file)) {
        CHECK(0, "%s is missing: run scripts/setup.sh (it fetches the tokenizers into third_party/tokenizers)", file);
    } else {
        double t0 = sd_now();
        t = tokenizer_load(dir);
        printf("loaded %s in %.3f s (%d ids)\n", file, sd_now() - t0, tokenizer_vocab_size(t));
    }
    free(dir);
    free(file);
    return t;
}

static void print_ids(const char *label, const int *ids, size_t n) {
    fprintf(stderr, "  %s [", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
    fprintf(stderr, "]\n");
}
/* encode(text) == want (when want != NULL) and decode(ids) == text (when round_trip). */
static void check_text(const Tokenizer *t, const char *what, const char *text, const int *want, size_t nwant,
                       bool round_trip) {
    size_t n = 0;
    char err[256] = "";
    int *ids = tokenizer_encode(t, text, strlen(text), &n, err, sizeof err);
    CHECK(ids != NULL, "%s: encode failed: %s", what, err);
    if (!ids) return;
    if (want) {
        bool same = n == nwant;
        for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
        CHECK(same, "%s: encode(%s) differs", what, text);
        if (!same) {
            print_ids("got ", ids, n);
            print_ids("want", want, nwant);
        }
    }
    if (round_trip) {
        char *back = tokenizer_decode(t, ids, n);
        CHECK(strcmp(back, text) == 0, "%s: decode(encode(%s)) = '%s'", what, text, back);
        free(back);
    }
    free(ids);
}
static int *json_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int *ids = sd_alloc((*n + 1) * sizeof(int), "ids");
    size_t i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next) ids[i++] = (int)e->valuedouble;
    return ids;
}
/* Calls fn on every line of a JSON-lines fixture. */
static int each_line(const char *rel, void (*fn)(const cJSON *obj, void *arg), void *arg) {
    char *path = fixture_path(rel);
    size_t len;
    char *buf = sd_read_file(path, &len);
    CHECK(buf != NULL, "cannot read %s", path);
    int lines = 0;
    for (char *line = buf, *nl; buf && line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (!*line) continue;
        cJSON *obj = cJSON_Parse(line);
        CHECK(obj != NULL, "%s: bad JSON line %d", path, lines + 1);
        if (obj) fn(obj, arg);
        cJSON_Delete(obj);
        lines++;
    }
    free(buf);
    free(path);
    return lines;
}

/* nfc: the tokenizer normalises to NFC, so a text with combining marks (U+0300-U+036F) decodes composed */
typedef struct { const Tokenizer *t; bool check_ids, nfc; } LineArg;
static bool has_combining_mark(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((p[0] == 0xCC && p[1] >= 0x80 && p[1] <= 0xBF) || (p[0] == 0xCD && p[1] >= 0x80 && p[1] <= 0xAF)) return true;
    return false;
}
static void encode_line(const cJSON *o, void *arg) {
    LineArg *a = arg;
    const cJSON *text = cJSON_GetObjectItem(o, "text");
    size_t n;
    int *ids = json_ids(cJSON_GetObjectItem(o, "ids"), &n);
    bool composes = a->nfc && has_combining_mark(text->valuestring);
    check_text(a->t, "encode.jsonl", text->valuestring, a->check_ids ? ids : NULL, n, !composes);
    free(ids);
}
static void chat_line(const cJSON *o, void *arg) {
    LineArg *a = arg;
    const char *keys[2][2] = {{"prompt_text", "prompt_ids"}, {"response_text", "response_ids"}};
    for (int k = 0; k < 2; k++) {
        const cJSON *text = cJSON_GetObjectItem(o, keys[k][0]);
        size_t n;
        int *ids = json_ids(cJSON_GetObjectItem(o, keys[k][1]), &n);
        /* llama2 does not know Llama 3's special tokens: those texts are plain text there and still round-trip */
        check_text(a->t, keys[k][0], text->valuestring, a->check_ids ? ids : NULL, n, true);
        free(ids);
    }
}

#define IDS(...) ((const int[]){__VA_ARGS__}), sizeof((const int[]){__VA_ARGS__}) / sizeof(int)

static void test_llama3(const Tokenizer *t) {
    LineArg a = {t, true, false};
    int n1 = each_line("tokenizer-a/encode.jsonl", encode_line, &a);
    int n2 = each_line("tokenizer-a/chat.jsonl", chat_line, &a);
    CHECK(n1 >= 30 && n2 >= 3, "fixtures: %d encode lines, %d chat lines", n1, n2);
    CHECK(tokenizer_vocab_size(t) == 128256, "llama3 vocab size %d", tokenizer_vocab_size(t));
    CHECK(tokenizer_token_id(t, "<|eot_id|>") == 128009, "id of <|eot_id|>");
    CHECK(tokenizer_token_id(t, "Hello") == 9906, "id of Hello");
    CHECK(tokenizer_token_id(t, "no such token here") == -1, "absent token");
    CHECK(tokenizer_id_to_token(t, 1917) && strcmp(tokenizer_id_to_token(t, 1917), "\xC4\xA0world") == 0,
          "token 1917 is 'Ġworld'");
    CHECK(tokenizer_id_to_token(t, 128000) && strcmp(tokenizer_id_to_token(t, 128000), "<|begin_of_text|>") == 0,
          "token 128000");
    CHECK(tokenizer_id_to_token(t, 128256) == NULL && tokenizer_id_to_token(t, -1) == NULL, "ids out of range");
    /* special tokens in text: adjacent, inside words, partial ones stay text */
    check_text(t, "specials", "<|eot_id|><|eot_id|>", IDS(128009, 128009), true);
    check_text(t, "specials", "a<|eot_id|>b", IDS(64, 128009, 65), true);
    check_text(t, "specials", "<|start_header_id|>user<|end_header_id|>", IDS(128006, 882, 128007), true);
    check_text(t, "partial special", "<|eot_id", NULL, 0, true);
    check_text(t, "empty", "", NULL, 0, true);
    size_t n;
    int *ids = tokenizer_encode(t, "", 0, &n, NULL, 0);
    CHECK(ids && n == 0, "empty text gives no ids");
    free(ids);
    /* invalid UTF-8: bytes go through the byte alphabet, decode gives U+FFFD as HF's from_utf8_lossy */
    const char bad[] = "ok \xFF\xC3 end";
    char err[128] = "";
    ids = tokenizer_encode(t, bad, sizeof bad - 1, &n, err, sizeof err);
    CHECK(ids && n > 0, "invalid UTF-8 encodes (%s)", err);
    if (ids) {
        char *back = tokenizer_decode(t, ids, n);
        CHECK(strcmp(back, "ok \xEF\xBF\xBD\xEF\xBF\xBD end") == 0, "invalid UTF-8 decodes lossily: '%s'", back);
        free(back);
    }
    free(ids);
    /* a decode of partial byte tokens: "Ġ" + first byte of an emoji */
    int part[] = {62904}; /* the first bytes of the 👍 sequence in encode.jsonl */
    char *s = tokenizer_decode(t, part, 1);
    CHECK(strstr(s, "\xEF\xBF\xBD") != NULL, "partial UTF-8 decodes to U+FFFD: '%s'", s);
    free(s);
}

/* A varied long text: prose, code, doubled spaces, newlines, accents, CJK, emoji (byte fallback in llama2). */
typedef struct { char *s; size_t len; } TkText;
/* Qwen2.5-Instruct's tokenizer against tokenizer-q25, Qwen3's against tokenizer-q3 (an outside encoder's ids) */
static void test_qwen3(const Tokenizer *t) {
    LineArg a = {t, true, true};
    int nl1 = each_line("tokenizer-q3/encode.jsonl", encode_line, &a);
    int nl2 = each_line("tokenizer-q3/chat.jsonl", chat_line, &a);
    CHECK(nl1 >= 40 && nl2 >= 5, "qwen3 fixtures: %d encode lines, %d chat lines", nl1, nl2);
    CHECK(tokenizer_token_id(t, "<think>") == 151667 && tokenizer_token_id(t, "</think>") == 151668,
          "qwen3 <think> ids");
}
static void test_qwen25(const Tokenizer *t) {
    LineArg a = {t, true, true};
    int nl1 = each_line("tokenizer-q25/encode.jsonl", encode_line, &a);
    int nl2 = each_line("tokenizer-q25/chat.jsonl", chat_line, &a);
    CHECK(nl1 >= 39 && nl2 >= 3, "qwen2.5 fixtures: %d encode lines, %d chat lines", nl1, nl2);
    CHECK(tokenizer_vocab_size(t) == 151665, "qwen2.5 vocab size %d", tokenizer_vocab_size(t));
    CHECK(tokenizer_token_id(t, "<|im_end|>") == 151645 && tokenizer_token_id(t, "<|endoftext|>") == 151643,
          "qwen2.5 special ids");
    /* \p{N} one digit a piece: 2024 is four tokens, as "2", "0", "2", "4" */
    check_text(t, "qwen2.5 digits", "2024", IDS(17, 15, 17, 19), true);
    /* NFC: the decomposed and the composed spelling encode alike, and decode composed */
    size_t n1 = 0, n2 = 0;
    const char *composed = " caf\xC3\xA9", *decomposed = " cafe\xCC\x81";
    int *c1 = tokenizer_encode(t, composed, strlen(composed), &n1, NULL, 0);
    int *c2 = tokenizer_encode(t, decomposed, strlen(decomposed), &n2, NULL, 0);
    CHECK(c1 && c2 && n1 == 1 && n2 == 1 && c1[0] == c2[0] && c1[0] == 51950,
          "qwen2.5 NFC: ' caf\\u00e9' and ' cafe\\u0301' both encode to 51950");
    free(c1), free(c2);
}

static TkText long_text(size_t want) {
    static const char *parts[] = {"The quick brown fox", "  jumps over", " the lazy dog.\n", "def f(x):\n    return x ** 2\n",
                                  " caf\xC3\xA9 na\xC3\xAFve", " \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C", " \xF0\x9F\xA6\x80\xF0\x9F\xA4\x96",
                                  "   ", "1234567 ", "I'm sure they'll", "\t<tag attr=\"v\">", "\xE2\x96\x81literal\xE2\x96\x81\xE2\x96\x81marks "};
    TkText t = {sd_alloc(want + 64, "text"), 0};
    for (unsigned i = 0; t.len < want; i = i * 1103515245u + 12345u) {
        const char *p = parts[(i >> 16) % (sizeof parts / sizeof parts[0])];
        size_t n = strlen(p);
        memcpy(t.s + t.len, p, n);
        t.len += n;
    }
    t.s[t.len] = 0;
    return t;
}

static void test_llama2(const Tokenizer *t) {
    /* Expected ids checked by hand against the vocabulary ('▁Hello' 22557, '▁world' 1526, '▁' 28705, '<0xF0>'
     * 243 = 3 + 0xF0) and against transformers.js on the same file. */
    check_text(t, "llama2", "Hello world", IDS(22557, 1526), true);
    check_text(t, "llama2", "  two", IDS(259, 989), true);
    check_text(t, "llama2 byte_fallback", "\xF0\x9F\xA6\x80 crab", IDS(28705, 243, 162, 169, 131, 1439, 375), true);
    check_text(t, "llama2 byte_fallback", "x\xF0\x9F\xA4\x96y", IDS(1318, 243, 162, 167, 153, 28724), true);
    check_text(t, "llama2", "\xE2\x82\xAC" "5 \xE2\x98\x83", IDS(17416, 28782, 28705, 31666), true);
    check_text(t, "llama2 newline", "a\nb\tc", IDS(264, 13, 28726, 12, 28717), true);
    /* special tokens split first; each piece is normalized on its own (so "hi" gets its own ▁) */
    check_text(t, "llama2 specials", "<s>hi</s>", IDS(1, 12014, 2), false);
    size_t n;
    int *ids = tokenizer_encode(t, "<s>hi</s>", 9, &n, NULL, 0);
    char *back = ids ? tokenizer_decode(t, ids, n) : NULL;
    CHECK(back && strcmp(back, "<s> hi</s>") == 0, "llama2 decode keeps the ▁ after <s> as HF: '%s'", back);
    free(back);
    free(ids);
    /* A long word is cut before each ▁ that follows another character (no vocabulary token spans such a cut):
     * the same file with one unused token "x▁y" added to its vocabulary turns the cut off, and must agree. */
    char *dir = tok_dir("llama2"), *file = sd_path_join(dir, "tokenizer.json");
    size_t jlen;
    char *js = sd_read_file(file, &jlen);
    char *at = js ? strstr(js, "\"vocab\"") : NULL;
    at = at ? strchr(at, '{') : NULL;
    CHECK(at != NULL, "llama2 tokenizer.json has a model.vocab object");
    if (at) {
        const char *extra = "\"x\\u2581y\": 32000, ";
        size_t off = (size_t)(at - js) + 1, elen = strlen(extra);
        char *js2 = sd_alloc(jlen + elen + 1, "json");
        memcpy(js2, js, off);
        memcpy(js2 + off, extra, elen);
        memcpy(js2 + off + elen, js + off, jlen - off + 1);
        Tokenizer *nocut = tokenizer_load_json(js2, jlen + elen, "llama2-nocut");
        TkText txt = long_text(60000);
        size_t n1, n2;
        int *a1 = tokenizer_encode(t, txt.s, txt.len, &n1, NULL, 0), *a2 = tokenizer_encode(nocut, txt.s, txt.len, &n2, NULL, 0);
        CHECK(a1 && a2 && n1 == n2 && memcmp(a1, a2, n1 * sizeof(int)) == 0, "llama2: the ▁ cut changes nothing "
              "(%zu vs %zu ids)", n1, n2);
        free(a1);
        free(a2);
        free(txt.s);
        tokenizer_free(nocut);
        free(js2);
    }
    free(js);
    free(file);
    free(dir);
    LineArg a = {t, false, false};
    each_line("tokenizer-a/encode.jsonl", encode_line, &a);
    each_line("tokenizer-a/chat.jsonl", chat_line, &a);
    CHECK(tokenizer_token_id(t, "<unk>") == 0 && tokenizer_token_id(t, "</s>") == 2, "llama2 specials ids");
}

/* Long words: llama2 has no pre-tokenizer (a whole text is one word), and a long run of letters is one llama3
 * pre-token. The heap merge keeps both near-linear; how long they take is printed, not asserted (timing targets
 * live in bench/; a quadratic merge would run into the test's ctest timeout). One text through one tokenizer:
 * ids must come back, a one-word text must merge (fewer than len/2 ids), and decode must give the text back. */
static void long_case(const Tokenizer *t, const char *name, const char *what, const char *s, size_t len,
                      bool one_word) {
    if (!t) return;
    double t0 = sd_now();
    size_t n = 0;
    int *ids = tokenizer_encode(t, s, len, &n, NULL, 0);
    printf("long %s (%s): %zu ids in %.2f s\n", what, name, n, sd_now() - t0);
    CHECK(ids && n > 0 && (!one_word || n < len / 2), "long %s (%s): %zu ids", what, name, n);
    char *back = ids ? tokenizer_decode(t, ids, n) : NULL;
    CHECK(back && strcmp(back, s) == 0, "long %s round trip (%s)", what, name);
    free(back);
    free(ids);
}

static void test_long(const Tokenizer *l3, const Tokenizer *l2) {
    size_t len = 200000;
    char *s = sd_alloc(len + 1, "long");
    const char *base = "the quick brown fox jumps over the lazy dog; ";
    for (size_t i = 0; i < len; i++) s[i] = base[i % strlen(base)];
    s[len] = 0;
    long_case(l3, "llama3", "text", s, len, false);
    long_case(l2, "llama2", "text", s, len, false);
    memset(s, 'a', len); /* one 200k-letter word */
    long_case(l3, "llama3", "word", s, len, true);
    long_case(l2, "llama2", "word", s, len, true);
    free(s);
}

/* Concurrent encodes of one tokenizer give the single-threaded result (the word cache is shared). */
typedef struct { const Tokenizer *t; const char *text; int *ids; size_t n; } ThreadArg;
static void *enc_thread(void *p) {
    ThreadArg *a = p;
    for (int r = 0; r < 5; r++) {
        free(a->ids);
        a->ids = tokenizer_encode(a->t, a->text, strlen(a->text), &a->n, NULL, 0);
    }
    return NULL;
}
static void test_threads(const Tokenizer *t) {
    static char text[40000];
    size_t o = 0;
    for (int i = 0; o + 64 < sizeof text; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "word%d zq%dxv caf\xC3\xA9%d ", i * 7919 % 1000, i % 97, i % 13);
    size_t n0;
    int *ref = tokenizer_encode(t, text, strlen(text), &n0, NULL, 0);
    pthread_t th[4];
    ThreadArg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (ThreadArg){t, text, NULL, 0};
        pthread_create(&th[i], NULL, enc_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ids && args[i].n == n0 && memcmp(args[i].ids, ref, n0 * sizeof(int)) == 0,
              "thread %d encodes as the main thread", i);
        free(args[i].ids);
    }
    free(ref);
}

/* ---- small inline tokenizers ---- */
static Tokenizer *load_str(const char *json) { return tokenizer_load_json(json, strlen(json), "inline.json"); }
#define V_ABC "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"1\":5,\"2\":6,\"12\":7,\" \":8,\"\\u2581\":9,\"\\u2581a\":10"
static void test_small(void) {
    /* Metaspace pre-tokenizer + decoder, prepend_scheme first, split */
    Tokenizer *t = load_str("{\"model\":{\"type\":\"BPE\",\"vocab\":{" V_ABC ",\"<unk>\":11},\"merges\":[\"a b\",\"ab c\","
                            "\"\\u2581 a\"],\"unk_token\":\"<unk>\",\"fuse_unk\":true},"
                            "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":"
                            "\"first\",\"split\":true},\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\","
                            "\"prepend_scheme\":\"first\"},\"added_tokens\":[{\"id\":12,\"content\":\"<X>\",\"special\":"
                            "true,\"normalized\":false}]}");
    check_text(t, "metaspace", "abc a", IDS(9, 4, 10), true);
    check_text(t, "metaspace unk", "abxyc", IDS(9, 3, 11, 2), false); /* x and y fuse into one <unk> */
    check_text(t, "metaspace after special", "<X>abc", IDS(12, 4), false); /* 'first': no ▁ after the special */
    tokenizer_free(t);
    /* Digits + Split behaviours, no unk: an unknown character makes encode fail with the reason */
    t = load_str("{\"model\":{\"type\":\"BPE\",\"vocab\":{" V_ABC "},\"merges\":[[\"a\",\"b\"],[\"1\",\"2\"]]},"
                 "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                 "{\"String\":\" \"},\"behavior\":\"Removed\"},{\"type\":\"Digits\",\"individual_digits\":true}]},"
                 "\"added_tokens\":[{\"id\":20,\"content\":\"[M]\",\"lstrip\":true,\"rstrip\":true,\"special\":true,"
                 "\"normalized\":false}]}");
    check_text(t, "digits", "ab12 c", IDS(3, 5, 6, 2), false);
    check_text(t, "lstrip/rstrip", "ab  [M]  c", IDS(3, 20, 2), false);
    size_t n;
    char err[256] = "";
    int *ids = tokenizer_encode(t, "abz", 3, &n, err, sizeof err);
    CHECK(ids == NULL && strstr(err, "U+007A") != NULL, "no unk: encode fails naming the character: %s", err);
    free(ids);
    char *s = tokenizer_decode(t, (const int[]){3, 2, 20}, 3); /* no decoder: joined with spaces */
    CHECK(strcmp(s, "ab c [M]") == 0, "no decoder joins with spaces: '%s'", s);
    free(s);
    tokenizer_free(t);
    /* MergedWithNext / MergedWithPrevious / Contiguous on a literal '1' */
    const char *beh[3] = {"MergedWithNext", "MergedWithPrevious", "Contiguous"};
    const int want[3][4] = {{0, 5, 1, 5}, {0, 5, 1, 5}, {0, 5, 5, 1}};
    const size_t wn[3] = {4, 4, 4};
    for (int k = 0; k < 3; k++) {
        char js[1024];
        snprintf(js, sizeof js,
                 "{\"model\":{\"type\":\"BPE\",\"vocab\":{" V_ABC "},\"merges\":[\"a b\"]},\"pre_tokenizer\":"
                 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"1\"},\"behavior\":\"%s\",\"invert\":false}}", beh[k]);
        t = load_str(js);
        /* "a1b1" pieces: Next: [a][1b][1]... ids are per character anyway, so check the merge boundaries with ab */
        const char *txt = k == 2 ? "a11b" : "a1b1";
        check_text(t, beh[k], txt, want[k], wn[k], false);
        tokenizer_free(t);
    }
    /* pieces decide merges: "ab" merges only when a and b share a piece; \u0062 (Oniguruma syntax) is 'b' */
    t = load_str("{\"model\":{\"type\":\"BPE\",\"vocab\":{" V_ABC "},\"merges\":[\"a b\"]},\"pre_tokenizer\":"
                 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\u0062\"},\"behavior\":\"MergedWithPrevious\"}}");
    check_text(t, "merged with previous", "abab", IDS(3, 3), false);
    tokenizer_free(t);
    t = load_str("{\"model\":{\"type\":\"BPE\",\"vocab\":{" V_ABC "},\"merges\":[\"a b\"]},\"pre_tokenizer\":"
                 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"b\"},\"behavior\":\"MergedWithNext\"}}");
    check_text(t, "merged with next", "abab", IDS(0, 1, 0, 1), false); /* [a][ba][b] */
    tokenizer_free(t);
    /* HF's own example, splitting "the-final--countdown" on '-': MergedWithPrevious gives [the-][final-][-][countdown],
     * MergedWithNext [the][-final][-][-countdown]; here with "a-b--a" and tokens that show where pieces end */
    const char *mb[2] = {"MergedWithPrevious", "MergedWithNext"};
    const int mwant[2][5] = {{3, 1, 2, 2, 0}, {0, 4, 2, 5, -1}};
    for (int k = 0; k < 2; k++) {
        char js[600];
        snprintf(js, sizeof js, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"-\":2,\"a-\":3,\"-b\":4,\"-a\":5},"
                 "\"merges\":[\"a -\",\"- b\",\"- a\"]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":"
                 "{\"String\":\"-\"},\"behavior\":\"%s\"}}", mb[k]);
        t = load_str(js);
        check_text(t, mb[k], "a-b--a", mwant[k], k ? 4 : 5, false);
        tokenizer_free(t);
    }
}

/* ---- load errors ---- */
static void load_arg(void *arg) {
    Tokenizer *t = load_str((const char *)arg);
    tokenizer_free(t);
}
static void decode_bad(void *arg) {
    const Tokenizer *t = arg;
    char *s = tokenizer_decode(t, (const int[]){1, 999999}, 2);
    free(s);
}
static void load_missing(void *arg) { tokenizer_free(tokenizer_load((const char *)arg)); }
static void test_errors(const Tokenizer *l3) {
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}",
                     "inline.json: model.type 'WordPiece' is not supported (BPE only)"), "WordPiece refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "'Unigram' is not supported"),
          "Unigram refused");
    CHECK(expect_die(load_arg, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}", "malformed JSON"),
          "malformed JSON refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}} trailing", "malformed JSON"),
          "trailing garbage refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                     "model.merges[0]: token 'ab' is not in model.vocab"), "merge result unknown");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"ab\":1},\"merges\":[\"a zz\"]}}",
                     "token 'zz' is not in model.vocab"), "merge token unknown");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
                     "id 0 is given to both"), "duplicate vocab id");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":-1},\"merges\":[]}}",
                     "must be a non-negative integer id"), "negative id");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":99999999},\"merges\":[]}}",
                     "out of range"), "huge id");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]},"
                     "\"added_tokens\":[{\"id\":1,\"content\":\"<s>\",\"special\":true}]}",
                     "id 1 of '<s>' is already the vocabulary token 'b'"), "added id collides with vocab");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]},"
                     "\"added_tokens\":[{\"id\":5,\"content\":\"a\",\"special\":true}]}",
                     "token 'a' has id 5 but model.vocab gives it id 0"), "added token with the wrong id");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                     "\"added_tokens\":[{\"id\":3,\"content\":\"<x>\"},{\"id\":3,\"content\":\"<y>\"}]}",
                     "id 3 is given to both '<x>' and '<y>'"), "duplicate added id");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                     "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"}]}}",
                     "pre_tokenizer.pretokenizers[0].type 'Whitespace' is not supported"), "Whitespace refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                     "\"normalizer\":{\"type\":\"Lowercase\"}}", "normalizer.type 'Lowercase' is not supported"),
          "Lowercase refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                     "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}",
                     "pre_tokenizer.pattern.Regex: regex '(' does not compile"), "bad regex refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"dropout\":0.1}}",
                     "model.dropout 0.1 is not supported"), "dropout refused");
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":"
                     "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},"
                     "\"content\":\"aaaaaaaaaaaaaaaa\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},"
                     "\"content\":\"aaaaaaaaaaaaaaaaa\"}]}}", "could expand a text more than 256x"),
          "exponentially growing normalizers refused");
    CHECK(expect_die(load_missing, "/nonexistent/dir/tokenizer.json", "cannot read the tokenizer"), "missing file");
    if (l3) CHECK(expect_die(decode_bad, (void *)l3, "decode: id 999999"), "decode of an unknown id dies");
#ifndef SIMPO_HAVE_UTF8PROC
    CHECK(expect_die(load_arg, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                     "\"normalizer\":{\"type\":\"NFC\"}}", "'NFC' needs utf8proc"), "NFC without utf8proc");
#endif
}

int main(void) {
    Tokenizer *l3 = load_named("llama3");
    Tokenizer *l2 = load_named("llama2");
    Tokenizer *q25 = load_named("qwen2_5"), *q3 = load_named("qwen3");
    if (l3) test_llama3(l3);
    if (l2) test_llama2(l2);
    if (q25) test_qwen25(q25);
    if (q3) test_qwen3(q3);
    tokenizer_free(q25);
    tokenizer_free(q3);
    test_long(l3, l2);
    if (l3) test_threads(l3);
    test_small();
    test_errors(l3);
    tokenizer_free(l3);
    tokenizer_free(l2);
    TEST_END();
}
