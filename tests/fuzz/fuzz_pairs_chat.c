/* fuzz_pairs_chat.c — JSONL preference pairs as text: UltraFeedback message lists and prompt/response strings
 * (data/pairs_text.c), rendered with the Llama 3 chat template and tokenized, then truncated and packed. Each
 * input is loaded twice, as data.format chat (auto) and as text.
 * The tokenizer is built once per process: a byte-level BPE over the whole 256-byte alphabet (every text
 * encodes), a few merges, and Llama 3's special tokens as added tokens, so no file outside the harness is read. */
#include "chat_template.h"
#include "fuzz_common.h"
#include "fuzz_pairs_common.h"
#include "tokenizer.h"

static Tokenizer *tok;
static ChatTemplate *chat;

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the others for U+0100 onwards. */
static void byte_char(int b, char out[4]) {
    int cp, n = 0;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp = b;
    else {
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

static void setup(void) {
    static char json[16384];
    size_t n = 0;
    n += (size_t)snprintf(json + n, sizeof json - n,
                          "{\"added_tokens\": [{\"id\": 256, \"content\": \"<|begin_of_text|>\", \"special\": true},"
                          "{\"id\": 257, \"content\": \"<|start_header_id|>\", \"special\": true},"
                          "{\"id\": 258, \"content\": \"<|end_header_id|>\", \"special\": true},"
                          "{\"id\": 259, \"content\": \"<|eot_id|>\", \"special\": true}],"
                          "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
                          "\"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"},"
                          "\"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (int b = 0; b < 256; b++) {
        char c[4];
        byte_char(b, c);
        const char *esc = (c[0] == '"' || c[0] == '\\') && !c[1] ? "\\" : "";
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s%s\": %d", b ? ", " : "", esc, c, b);
    }
    n += (size_t)snprintf(json + n, sizeof json - n, "}, \"merges\": []}}");
    tok = tokenizer_load_json(json, n, "fuzz tokenizer");
    chat = chat_template_from_text("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}", NULL,
                                   NULL, "fuzz template");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) setup();
    const char *p = fz_write_file(".jsonl", data, size);
    static const char *formats[2] = {"auto", "text"};
    for (int k = 0; k < 2; k++) {
        static PairSet *ps;
        ps = NULL;
        /* odd sizes: an empty system message; sizes 2 and 3 mod 4: the SimPO reference's convention */
        PairsFormat f = {formats[k], tok, k == 0 ? chat : NULL, 260, (size & 1) != 0, (size & 2) != 0};
        int rejected = FUZZ_GUARDED({
            ps = pairs_load_jsonl_fmt(p, &f);
            fz_truncate_and_pack(ps);
        });
        if (getenv("SD_FUZZ_VERBOSE")) fprintf(stderr, "format %s: %s\n", formats[k], rejected ? "rejected" : "loaded");
        pairs_free(ps);
    }
    return 0;
}
