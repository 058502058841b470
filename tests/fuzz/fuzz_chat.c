/* fuzz_chat.c — chat templates: recognising a template text by family (chat_template_from_text), loading one from
 * a tokenizer_config.json (chat_template_load / chat_template_load_optional), and rendering a conversation with
 * it (chat_render_prompt with and without the generation prompt, chat_render_response of every message).
 *
 * Input layout (one flags byte, then NUL-separated sections; a missing section is empty):
 *   flags | template \0 bos \0 eos \0 role_1 \0 content_1 \0 role_2 \0 content_2 \0 ...   (at most 32 messages)
 *   flags bit 0   pass bos (else NULL: the family's default)        bit 1  pass eos (else NULL)
 *         bits 2-4 family override for the load calls: NULL, "auto", llama3, llama2, mistral, chatml, gemma,
 *                  "vicuna" (not a family: rejected)
 *         bit 5   the template section IS the tokenizer_config.json text (cJSON parse, field types); otherwise the
 *                 harness writes a well-formed one from the sections:
 *         bit 6   ... with chat_template as [{"name": "default", "template": ...}] and bos/eos as AddedToken
 *                 objects {"content": ...}
 *         bit 7   ... without a chat_template key (the optional loader gives NULL, the required one dies)
 * The file goes to a per-process directory /tmp/sd_fuzz_chat_<pid>/tokenizer_config.json (the loaders take a
 * directory; fz_write_file names a file, not a directory), removed at exit. A trapped sd_die is a normal
 * rejection. Checked beyond "no crash": the prompt without the generation prompt is a prefix of the one with it,
 * and a response ends with the family's end-of-turn token. Seeds: the Llama 3 (third_party/tokenizers) and
 * Qwen2.5 (npm) templates, those of tests/unit/test_chat_template.c (Mistral, Gemma) and Llama 2's, with small
 * conversations. */
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include "chat_template.h"
#include "fuzz_common.h"

#define MAX_MSGS 32

static const char *const k_overrides[8] = {NULL, "auto", "llama3", "llama2", "mistral", "chatml", "gemma", "vicuna"};

/* /tmp/sd_fuzz_chat_<pid>: the directory the loaders read tokenizer_config.json from (created once, removed at
 * exit). */
static char g_dir[64];
static void remove_dir(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", g_dir);
    remove(path);
    rmdir(g_dir);
}
static const char *chat_dir(void) {
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/sd_fuzz_chat_%d", (int)getpid());
        if (mkdir(g_dir, 0700) != 0 && !sd_dir_exists(g_dir)) abort();
        atexit(remove_dir);
    }
    return g_dir;
}

static void write_config(const char *text, size_t len) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", chat_dir());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len && fwrite(text, 1, len, f) != len) abort();
    fclose(f);
}

/* A tokenizer_config.json from the sections (cJSON escapes whatever bytes they hold). */
static void write_built_config(unsigned flags, const char *tmpl, const char *bos, const char *eos) {
    cJSON *o = cJSON_CreateObject();
    bool objects = flags & 0x40;
    if (!(flags & 0x80)) {
        if (objects) {
            cJSON *arr = cJSON_AddArrayToObject(o, "chat_template");
            cJSON *tool = cJSON_CreateObject();
            cJSON_AddStringToObject(tool, "name", "tool_use");
            cJSON_AddStringToObject(tool, "template", "{{ tools }}");
            cJSON_AddItemToArray(arr, tool);
            cJSON *def = cJSON_CreateObject();
            cJSON_AddStringToObject(def, "name", "default");
            cJSON_AddStringToObject(def, "template", tmpl);
            cJSON_AddItemToArray(arr, def);
        } else cJSON_AddStringToObject(o, "chat_template", tmpl);
    }
    const char *keys[2] = {"bos_token", "eos_token"}, *vals[2] = {bos, eos};
    for (int i = 0; i < 2; i++) {
        if (!vals[i]) cJSON_AddNullToObject(o, keys[i]);
        else if (objects) {
            cJSON *t = cJSON_AddObjectToObject(o, keys[i]);
            cJSON_AddStringToObject(t, "content", vals[i]);
            cJSON_AddBoolToObject(t, "special", true);
        } else cJSON_AddStringToObject(o, keys[i], vals[i]);
    }
    char *s = cJSON_PrintUnformatted(o);
    if (!s) abort();
    write_config(s, strlen(s));
    free(s);
    cJSON_Delete(o);
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }
static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Renders messages[0..k) with and without the generation prompt; a rejection (gemma/mistral system role, roles not
 * alternating) is a trapped die. Each FUZZ_GUARDED sits in a function of its own, its state in statics. */
static char *g_with, *g_without;
static bool g_rendered;
static void guarded_render(const ChatTemplate *ct, const ChatMessage *m, int k) {
    g_with = g_without = NULL;
    g_rendered = false;
    FUZZ_GUARDED({
        g_without = chat_render_prompt(ct, m, k, false, "fuzz.jsonl:1");
        g_with = chat_render_prompt(ct, m, k, true, "fuzz.jsonl:1");
        g_rendered = true;
    });
}
static void render_prompts(const ChatTemplate *ct, const ChatMessage *m, int k) {
    guarded_render(ct, m, k);
    if (g_rendered && (!g_with || !g_without || !starts_with(g_with, g_without))) abort();
    free(g_with);
    free(g_without);
}

/* Renders the conversation (all of it and all but the last message) and every response; aborts on a broken
 * invariant. */
static void render_all(const ChatTemplate *ct, const ChatMessage *m, int n) {
    render_prompts(ct, m, n);
    if (n > 0) render_prompts(ct, m, n - 1);
    const char *eot = chat_end_of_turn(ct);
    if (!eot) abort();
    for (int i = 0; i < n; i++) {
        char *r = chat_render_response(ct, m[i].content);
        if (!r || !ends_with(r, eot)) abort();
        free(r);
    }
}

/* chat_template_from_text / chat_template_load(_optional); NULL when rejected (or, optional, no template). */
static ChatTemplate *g_ct;
static ChatTemplate *try_from_text(const char *tmpl, const char *bos, const char *eos) {
    g_ct = NULL;
    FUZZ_GUARDED(g_ct = chat_template_from_text(tmpl, bos, eos, "fuzz/tokenizer_config.json"));
    return g_ct;
}
static ChatTemplate *try_load(bool required, const char *override) {
    g_ct = NULL;
    FUZZ_GUARDED(g_ct = required ? chat_template_load(chat_dir(), override)
                                 : chat_template_load_optional(chat_dir(), override));
    return g_ct;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned flags = data[0];
    /* sections: a NUL-terminated copy of the rest, split at its NULs */
    char *buf = malloc(size + 1);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    const char *sec[3 + 2 * MAX_MSGS];
    size_t len0 = strlen(buf); /* the template section's length (for the verbatim config) */
    int nsec = 0;
    for (char *p = buf, *end = buf + size - 1; nsec < 3 + 2 * MAX_MSGS; nsec++) {
        sec[nsec] = p;
        if (p >= end) break;
        p += strlen(p) + 1;
    }
    for (int i = nsec; i < 3 + 2 * MAX_MSGS; i++) sec[i] = "";
    int nmsg = nsec > 3 ? (nsec - 3 + 1) / 2 : 0;
    if (nmsg > MAX_MSGS) nmsg = MAX_MSGS;
    ChatMessage msgs[MAX_MSGS];
    for (int i = 0; i < nmsg; i++) {
        msgs[i].role = sec[3 + 2 * i];
        msgs[i].content = sec[4 + 2 * i];
    }
    const char *tmpl = sec[0];
    const char *bos = (flags & 1) ? sec[1] : NULL, *eos = (flags & 2) ? sec[2] : NULL;
    const char *override = k_overrides[(flags >> 2) & 7];

    ChatTemplate *ct = try_from_text(tmpl, bos, eos);
    if (ct) {
        if ((int)ct->family < CHAT_LLAMA3 || ct->family > CHAT_GEMMA || !ct->bos || !ct->eos) abort();
        render_all(ct, msgs, nmsg);
        chat_template_free(ct);
    }

    if (flags & 0x20) write_config(tmpl, len0);
    else write_built_config(flags, tmpl, bos, eos);
    for (int required = 0; required < 2; required++) {
        ct = try_load(required, override);
        if (ct) {
            if (!required) render_all(ct, msgs, nmsg); /* the same template: rendered once */
            chat_template_free(ct);
        }
    }
    free(buf);
    return 0;
}
