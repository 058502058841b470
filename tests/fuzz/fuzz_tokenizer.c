/* fuzz_tokenizer.c — tokenizer.json loading (model, merges, added tokens, normalizers, pre-tokenizers, decoders)
 * and, for accepted inputs, encode of fixed strings and of bytes of the input itself, then decode of the ids.
 * A rejected input is a trapped sd_die; the loader frees what it built through its cleanups. */
#include "fuzz_common.h"
#include "tokenizer.h"

static void round_trip(const Tokenizer *t, const char *s, size_t len) {
    size_t n = 0;
    char err[256];
    int *ids = tokenizer_encode(t, s, len, &n, err, sizeof err);
    if (!ids) return; /* no unk token and no byte fallback for some character: a clear refusal */
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(t) || !tokenizer_id_to_token(t, ids[i])) abort();
    char *back = tokenizer_decode(t, ids, n);
    free(back);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *fixed[] = {
        "Hello world",
        "  leading spaces, tabs\tand\nnewlines\r\n",
        "<s>special</s><|eot_id|><unk>[M]",
        "na\xC3\xAFve caf\xC3\xA9 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD 12345 \xE4\xBD\xA0\xE5\xA5\xBD",
        "\xE2\x96\x81metaspace\xE2\x96\x81text",
        "\xFF\xFE invalid \xC3 utf8 \xED\xA0\x80",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabababababab",
        "",
    };
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    static Tokenizer *tok; /* static: survives the longjmp of a rejected input (then it stays NULL) */
    tok = NULL;
    FUZZ_GUARDED({ tok = tokenizer_load_json(text, size, "tokenizer.json"); });
    if (tok) {
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) round_trip(tok, fixed[i], strlen(fixed[i]));
        size_t k = size < 256 ? size : 256; /* some raw bytes of the input: its strings, braces, whatever */
        round_trip(tok, text + (size - k) / 2, k);
        (void)tokenizer_token_id(tok, "a");
        (void)tokenizer_id_to_token(tok, 0);
        tokenizer_free(tok);
    }
    free(text);
    return 0;
}
