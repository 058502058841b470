/* cmd_tokenize.c — `simpo_dist tokenize --tokenizer DIR [--chat] [--chat-template FAMILY]`: JSONL on stdin to
 * JSONL on stdout, in the fixtures' format: each line's `text` gets `ids`; with --chat, its `messages` get
 * `prompt_ids` and `response_ids` (prompt = the chat template over all messages but the last, with the generation
 * prompt; response = the last message's content, stripped, + the end-of-turn token). Other fields are kept. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat_template.h"
#include "commands.h"
#include "pairs.h"
#include "tokenizer.h"
#include "cli_args.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist tokenize --tokenizer DIR [--chat] [--chat-template FAMILY] < in.jsonl > out.jsonl\n"
    "  Each line {\"text\": ...} gets \"ids\" (no special tokens added; special-token strings are matched).\n"
    "  --chat: each line {\"messages\": [{\"role\", \"content\"}, ...]} gets \"prompt_ids\" and \"response_ids\"\n"
    "          (and \"prompt_text\", \"response_text\"), the conventions of preference data.\n"
    "  --chat-template FAMILY  llama3 | llama2 | mistral | chatml | gemma (default: recognised from\n"
    "          DIR/tokenizer_config.json)\n";

static cJSON *id_array(const int *ids, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

static void add_ids(cJSON *o, const Tokenizer *tok, const char *key, const char *text, const char *where) {
    size_t n;
    char err[256] = "";
    int *ids = tokenizer_encode(tok, text, strlen(text), &n, err, sizeof err);
    if (!ids) sd_die(where, "cannot tokenize: %s", err);
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddItemToObject(o, key, id_array(ids, n));
    free(ids);
}

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *family = NULL;
    int chat = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--chat")) chat = 1;
        else if (!strcmp(argv[i], "--tokenizer") || !strcmp(argv[i], "--chat-template")) {
            if (i + 1 >= argc) sd_die("tokenize", "%s needs a value", argv[i]);
            if (!strcmp(argv[i], "--tokenizer")) dir = cli_model_dir("--tokenizer", argv[++i]);
            else family = argv[++i], chat = 1;
        } else sd_die("tokenize", "unknown argument '%s' (see simpo_dist tokenize --help)", argv[i]);
    }
    if (!dir) sd_die("tokenize", "--tokenizer DIR is required (see simpo_dist tokenize --help)");
    Tokenizer *tok = tokenizer_load(dir);
    ChatTemplate *ct = chat ? chat_template_load(dir, family) : NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    char where[64];
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        snprintf(where, sizeof where, "<stdin>:%ld", lineno);
        if (len <= 1 && (len == 0 || line[0] == '\n')) continue;
        cJSON *o = cJSON_ParseWithOpts(line, NULL, 0);
        if (!cJSON_IsObject(o)) sd_die(where, "invalid JSON (expected an object per line)");
        if (!chat) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
            if (!cJSON_IsString(t)) sd_die(where, "field 'text' is missing or not a string");
            add_ids(o, tok, "ids", t->valuestring, where);
        } else {
            ChatMessage *m;
            int n;
            char err[256];
            if (!pairs_read_messages(cJSON_GetObjectItemCaseSensitive(o, "messages"), "messages", &m, &n, err,
                                     sizeof err))
                sd_die(where, "%s", err);
            char *p = chat_render_prompt(ct, m, n - 1, true, where), *r = chat_render_response(ct, m[n - 1].content);
            add_ids(o, tok, "prompt_ids", p, where);
            add_ids(o, tok, "response_ids", r, where);
            cJSON_DeleteItemFromObjectCaseSensitive(o, "prompt_text");
            cJSON_DeleteItemFromObjectCaseSensitive(o, "response_text");
            cJSON_AddStringToObject(o, "prompt_text", p);
            cJSON_AddStringToObject(o, "response_text", r);
            free(p);
            free(r);
            free(m);
        }
        char *js = cJSON_PrintUnformatted(o);
        puts(js);
        cJSON_free(js);
        cJSON_Delete(o);
    }
    free(line);
    chat_template_free(ct);
    tokenizer_free(tok);
    return 0;
}
