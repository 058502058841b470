/* chat_template.c — recognises a tokenizer_config.json chat template by family and renders it (see chat_template.h).
 * Rendering is written per family rather than by a Jinja interpreter: the families' templates are short, and
 * code that states each one's output is easier to check against HF than a general interpreter. Recognition is
 * strict (markers that only the supported variant has), so a variant we do not render is refused by name. */
#define _POSIX_C_SOURCE 200809L /* localtime_r */
#include "chat_template.h"
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util.h"

static const char *FAMILY_NAMES[] = {"llama3", "llama2", "mistral", "chatml", "gemma"};

const char *chat_family_name(ChatFamily f) { return FAMILY_NAMES[f]; }

/* ---- a growable string ---- */
typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = sd_realloc(b->s, b->cap, "chat template output");
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void buf_str(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* Length of the Python-whitespace code point at s (str.strip()'s set), 0 when s is not one. */
static size_t py_space_len(const unsigned char *s, size_t avail) {
    if (avail >= 1 && ((s[0] >= 9 && s[0] <= 13) || (s[0] >= 28 && s[0] <= 32))) return 1;
    if (avail >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (avail >= 3 && s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;               /* U+1680 */
    if (avail >= 3 && s[0] == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF)) /* U+2000-200A, 2028/9, 202F */
        return 3;
    if (avail >= 3 && s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;               /* U+205F */
    if (avail >= 3 && s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;               /* U+3000 */
    return 0;
}

/* Jinja's |trim and Python's str.strip(): the span of s without leading and trailing whitespace. */
static void strip_span(const char *s, const char **start, size_t *len) {
    const unsigned char *a = (const unsigned char *)s, *e = a + strlen(s);
    size_t k;
    while (a < e && (k = py_space_len(a, (size_t)(e - a)))) a += k;
    for (;;) { /* trailing: find the last code point start and test it */
        const unsigned char *p = e;
        if (p == a) break;
        do p--; while (p > a && (*p & 0xC0) == 0x80);
        if (py_space_len(p, (size_t)(e - p)) == (size_t)(e - p)) e = p;
        else break;
    }
    *start = (const char *)a;
    *len = (size_t)(e - a);
}
static void buf_stripped(Buf *b, const char *s) {
    const char *st;
    size_t n;
    strip_span(s, &st, &n);
    buf_add(b, st, n);
}

/* ---- recognition ---- */

static bool family_from_name(const char *name, ChatFamily *f) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, FAMILY_NAMES[i])) {
            *f = (ChatFamily)i;
            return true;
        }
    return false;
}

/* chatml: the system message a template writes when the conversation has none (Qwen's "You are Qwen, ..."), read
 * from the template's "<|im_start|>system\n<text><|im_end|>" where the text has no expression in it: inside a Jinja
 * string literal ('\n' written as an escape, as Qwen's templates have it; its escapes \n \t \\ \' \" undone), or
 * in the template's raw text (a real newline after "system", the text as written). NULL when there is none. */
static char *chatml_default_system(const char *tmpl) {
    static const char *marks[2] = {"<|im_start|>system\\n", "<|im_start|>system\n"};
    for (int raw = 0; raw < 2; raw++)
        for (const char *p = strstr(tmpl, marks[raw]); p; p = strstr(p + 1, marks[raw])) {
            const char *txt = p + strlen(marks[raw]), *end = strstr(txt, "<|im_end|>");
            if (!end || end == txt) continue;
            bool literal = true; /* one string literal (escaped) or raw text without an expression or a tag */
            for (const char *q = txt; q < end; q++)
                if (*q == '{' || *q == '}' || (!raw && (*q == '\'' || *q == '"') && (q == txt || q[-1] != '\\')))
                    literal = false;
            if (!literal) continue;
            size_t n = (size_t)(end - txt), k = 0;
            char *s = sd_alloc(n + 1, "chat template");
            for (const char *q = txt; q < end; q++) {
                if (!raw && *q == '\\' && q + 1 < end) {
                    char c = *++q;
                    s[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c; /* \\ \' \" stand for themselves */
                } else s[k++] = *q;
            }
            s[k] = 0;
            return s;
        }
    return NULL;
}

/* Qwen3's ChatML: the template writes an answer after the last user turn with its <think> block (empty without one)
 * and drops the reasoning of earlier answers: its expression for the first, as Qwen3's tokenizer_config.json spells
 * it ('\n' as the two characters of the Jinja escape) */
static bool chatml_thinks(const char *tmpl) { return strstr(tmpl, "<think>\\n' + reasoning_content") != NULL; }

static char *llama31_date(const char *tmpl, const char *name) {
    if (!strstr(tmpl, "Cutting Knowledge Date: December 2023\\n"))
        sd_die(name, "chat_template: a Llama 3.1+ template whose knowledge date is not \"December 2023\": not one "
                     "simpo_dist renders (set data.chat_template: llama3 for Llama 3's template)");
    if (strstr(tmpl, "strftime_now(")) {
        char buf[32];
        time_t now = time(NULL);
        struct tm tm;
        static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        localtime_r(&now, &tm);
        snprintf(buf, sizeof buf, "%02d %s %d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900); /* %d %b %Y, C locale */
        return sd_strdup(buf);
    }
    static const char mark[] = "set date_string = \"";
    const char *d = strstr(tmpl, mark), *v = d ? d + sizeof mark - 1 : NULL, *e = v ? strchr(v, '"') : NULL;
    if (!e || e - v > 40)
        sd_die(name, "chat_template: a Llama 3.1+ template without a date_string default: not one simpo_dist renders");
    char *s = sd_alloc((size_t)(e - v) + 1, "date");
    memcpy(s, v, (size_t)(e - v));
    s[e - v] = 0;
    return s;
}

static void detect(const char *tmpl, const char *name, ChatTemplate *ct) {
    if (strstr(tmpl, "<|start_header_id|>")) {
        ct->family = CHAT_LLAMA3;
        if (strstr(tmpl, "Cutting Knowledge Date")) ct->date_string = llama31_date(tmpl, name);
    } else if (strstr(tmpl, "<|im_start|>")) {
        ct->family = CHAT_CHATML;
        ct->default_system = chatml_default_system(tmpl);
        ct->think = chatml_thinks(tmpl);
    } else if (strstr(tmpl, "<start_of_turn>")) {
        ct->family = CHAT_GEMMA;
    } else if (strstr(tmpl, "<<SYS>>") && strstr(tmpl, "[INST]")) {
        ct->family = CHAT_LLAMA2;
    } else if (strstr(tmpl, "'[INST] ' + message['content'] + ' [/INST]'")) {
        ct->family = CHAT_MISTRAL;
    } else {
        char head[61];
        snprintf(head, sizeof head, "%s", tmpl);
        for (char *p = head; *p; p++)
            if (*p == '\n') *p = ' ';
        sd_die(name, "chat_template is none of the families simpo_dist renders (llama3, llama2, mistral, chatml, "
                     "gemma): it begins \"%s\"; set data.chat_template to one of them if it is equivalent", head);
    }
}

static const char *default_bos(ChatFamily f) {
    return f == CHAT_LLAMA3 ? "<|begin_of_text|>" : f == CHAT_GEMMA ? "<bos>" : f == CHAT_CHATML ? "" : "<s>";
}
static const char *default_eos(ChatFamily f) {
    return f == CHAT_LLAMA3 ? "<|eot_id|>" : f == CHAT_GEMMA ? "<eos>" : f == CHAT_CHATML ? "<|im_end|>" : "</s>";
}

static void ct_free_void(void *p) { chat_template_free(p); }

static ChatTemplate *ct_new(const char *name) {
    ChatTemplate *ct = sd_calloc(1, sizeof *ct, "chat template");
    ct->source = sd_strdup(name);
    return ct;
}
static void ct_finish(ChatTemplate *ct, const char *bos, const char *eos) {
    ct->bos = sd_strdup(bos ? bos : default_bos(ct->family));
    ct->eos = sd_strdup(eos ? eos : default_eos(ct->family));
}

/* alignment-handbook's test of a template for a system turn; without a template, the families whose do */
static void set_mentions_system(ChatTemplate *ct, const char *tmpl) {
    ct->mentions_system = tmpl ? strstr(tmpl, "system") || strstr(tmpl, "<|im_start|>")
                               : ct->family == CHAT_CHATML || ct->family == CHAT_LLAMA2;
}

bool chat_wants_empty_system(const ChatTemplate *ct) {
    return ct->mentions_system &&
           (ct->family == CHAT_LLAMA3 || ct->family == CHAT_LLAMA2 || ct->family == CHAT_CHATML);
}

ChatTemplate *chat_template_from_text(const char *tmpl, const char *bos, const char *eos, const char *name) {
    ChatTemplate *ct = ct_new(name);
    sd_cleanup_push(ct_free_void, ct);
    detect(tmpl, name, ct);
    set_mentions_system(ct, tmpl);
    ct_finish(ct, bos, eos);
    sd_cleanup_pop();
    return ct;
}

/* A special-token field of tokenizer_config.json: a string, an AddedToken object {"content": ...}, or null. */
static const char *token_field(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static void cjson_free_void(void *p) { cJSON_Delete(p); }

static ChatTemplate *load(const char *dir, const char *family_override, bool required) {
    char *path = sd_path_join(dir, "tokenizer_config.json");
    sd_cleanup_push(free, path);
    size_t len;
    char *text = sd_read_file(path, &len);
    if (!text) sd_die(path, "cannot read (the tokenizer directory must hold tokenizer_config.json)");
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        sd_die(path, "not a JSON object");
    }
    sd_cleanup_push(cjson_free_void, cfg);
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    const char *tmpl = cJSON_IsString(tv) ? tv->valuestring : NULL;
    if (cJSON_IsArray(tv)) { /* [{"name": "default", "template": ...}, ...] */
        const cJSON *e;
        cJSON_ArrayForEach(e, tv) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *t = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default") && cJSON_IsString(t)) tmpl = t->valuestring;
        }
    }
    /* transformers saves the template beside the config as chat_template.jinja, which takes precedence over
     * tokenizer_config.json's when it loads; processors' chat_template.json ({"chat_template": ...}) likewise.
     * src: the file the template came from (messages name it) */
    char *jinja = sd_path_join(dir, "chat_template.jinja"), *jsonp = sd_path_join(dir, "chat_template.json"), *jtext = NULL;
    const char *src = path;
    cJSON *jcfg = NULL;
    sd_cleanup_push(free, jinja);
    sd_cleanup_push(free, jsonp);
    if (sd_file_exists(jinja)) {
        size_t jlen;
        jtext = sd_read_file(jinja, &jlen);
        if (!jtext || memchr(jtext, 0, jlen)) sd_die(jinja, "cannot read the chat template (or it holds a NUL byte)");
        tmpl = jtext, src = jinja;
    } else if (sd_file_exists(jsonp)) {
        size_t jlen;
        char *t = sd_read_file(jsonp, &jlen);
        jcfg = t ? cJSON_ParseWithLength(t, jlen) : NULL;
        free(t);
        const cJSON *jv = cJSON_GetObjectItemCaseSensitive(jcfg, "chat_template");
        if (!cJSON_IsString(jv)) {
            cJSON_Delete(jcfg);
            sd_die(jsonp, "expected a JSON object with a string \"chat_template\"");
        }
        tmpl = jv->valuestring, src = jsonp;
    }
    sd_cleanup_push(free, jtext);
    sd_cleanup_push(cjson_free_void, jcfg);
    ChatTemplate *ct = NULL;
    if (tmpl || required || (family_override && strcmp(family_override, "auto"))) {
        ct = ct_new(src);
        sd_cleanup_push(ct_free_void, ct);
        if (family_override && strcmp(family_override, "auto")) {
            if (!family_from_name(family_override, &ct->family))
                sd_die("data.chat_template", "'%s' is not a chat template family (auto, llama3, llama2, mistral, "
                                             "chatml, gemma)", family_override);
            if (ct->family == CHAT_CHATML && tmpl) {
                ct->default_system = chatml_default_system(tmpl);
                ct->think = chatml_thinks(tmpl);
            }
        } else if (!tmpl) {
            sd_die(path, "has no chat_template; name the family with data.chat_template (llama3, llama2, mistral, "
                         "chatml, gemma) or use data.format: text (no chat_template.jinja beside it either)");
        } else {
            detect(tmpl, src, ct);
        }
        set_mentions_system(ct, tmpl);
        const char *bos = token_field(cfg, "bos_token"), *eos = token_field(cfg, "eos_token");
        if (bos) ct->cfg_bos = sd_strdup(bos);
        if (eos) ct->cfg_eos = sd_strdup(eos);
        /* Llama 3.1+ configs name <|eot_id|> as eos; the template's BOS is still <|begin_of_text|> */
        ct_finish(ct, bos, ct->family == CHAT_LLAMA3 ? NULL : eos);
        sd_cleanup_pop(); /* ct: the caller's */
    }
    sd_cleanup_pop();
    cJSON_Delete(jcfg);
    sd_cleanup_pop();
    free(jtext);
    sd_cleanup_pop();
    free(jsonp);
    sd_cleanup_pop();
    free(jinja);
    sd_cleanup_pop();
    cJSON_Delete(cfg);
    sd_cleanup_pop();
    free(path);
    return ct;
}

ChatTemplate *chat_template_load(const char *dir, const char *family_override) {
    return load(dir, family_override, true);
}
ChatTemplate *chat_template_load_optional(const char *dir, const char *family_override) {
    return load(dir, family_override, false);
}

void chat_template_free(ChatTemplate *ct) {
    if (!ct) return;
    free(ct->bos);
    free(ct->eos);
    free(ct->default_system);
    free(ct->date_string);
    free(ct->cfg_bos);
    free(ct->cfg_eos);
    free(ct->source);
    free(ct);
}

const char *chat_end_of_turn(const ChatTemplate *ct) {
    switch (ct->family) {
    case CHAT_LLAMA3: return "<|eot_id|>";
    case CHAT_CHATML: return "<|im_end|>";
    case CHAT_GEMMA: return "<end_of_turn>";
    default: return ct->eos;
    }
}

/* ---- rendering ---- */

static void fail(Buf *b, const char *where, const ChatTemplate *ct, const char *fmt, ...) SD_PRINTF(4, 5);
static void fail(Buf *b, const char *where, const ChatTemplate *ct, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(b->s);
    sd_die(where ? where : ct->source, "%s chat template: %s", chat_family_name(ct->family), msg);
}

/* The [INST] and gemma templates require user, assistant, user, ... (after an optional leading system). */
static void check_alternation(Buf *b, const ChatMessage *m, int n, const char *where, const ChatTemplate *ct) {
    for (int i = 0; i < n; i++) {
        bool user = !strcmp(m[i].role, "user");
        if (user != (i % 2 == 0) || (!user && strcmp(m[i].role, "assistant")))
            fail(b, where, ct, "conversation roles must alternate user/assistant/user/assistant/... (message %d is "
                               "'%s')", i + 1, m[i].role);
    }
}

/* Qwen3's split of an answer (ct->think): with "</think>" in it, the content is what follows the last one, its leading
 * newlines dropped, and the reasoning what precedes the first "</think>", its trailing newlines dropped, after its
 * last "<think>", its leading newlines dropped (the template's expressions); else the content is the answer and the
 * reasoning empty. *content points into s; the reasoning is [*r, *r + *rn). */
static void think_split(const char *s, const char **content, const char **r, size_t *rn) {
    const char *close = strstr(s, "</think>");
    *r = s, *rn = 0, *content = s;
    if (!close) return;
    for (const char *p = close; (p = strstr(p, "</think>")) != NULL; p += 8) *content = p + 8;
    while (**content == '\n') (*content)++;
    const char *end = close;
    while (end > s && end[-1] == '\n') end--;
    const char *start = s;
    for (const char *p = s; (p = strstr(p, "<think>")) != NULL && p < end; p += 7) start = p + 7;
    while (start < end && *start == '\n') start++;
    *r = start, *rn = start < end ? (size_t)(end - start) : 0;
}

char *chat_render_prompt(const ChatTemplate *ct, const ChatMessage *msgs, int n, bool add_generation_prompt,
                         const char *where) {
    Buf b = {0};
    buf_str(&b, "");
    switch (ct->family) {
    case CHAT_LLAMA3:
        if (ct->date_string) { /* Llama 3.1+: the system turn first, with the dates, then the system message */
            buf_str(&b, ct->bos);
            buf_str(&b, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ");
            buf_str(&b, ct->date_string);
            buf_str(&b, "\n\n");
            if (n > 0 && !strcmp(msgs[0].role, "system")) buf_stripped(&b, msgs[0].content), msgs++, n--;
            buf_str(&b, "<|eot_id|>");
        }
        for (int i = 0; i < n; i++) { /* the turns, BOS before the first (3.1+: before the dates' turn) */
            if (i == 0 && !ct->date_string) buf_str(&b, ct->bos);
            buf_str(&b, "<|start_header_id|>");
            buf_str(&b, msgs[i].role);
            buf_str(&b, "<|end_header_id|>\n\n");
            buf_stripped(&b, msgs[i].content);
            buf_str(&b, "<|eot_id|>");
        }
        if (add_generation_prompt) buf_str(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_CHATML: {
        if (n > 0 && !strcmp(msgs[0].role, "system")) {
            buf_str(&b, "<|im_start|>system\n");
            buf_str(&b, msgs[0].content);
            buf_str(&b, "<|im_end|>\n");
        } else if (ct->default_system) {
            buf_str(&b, "<|im_start|>system\n");
            buf_str(&b, ct->default_system);
            buf_str(&b, "<|im_end|>\n");
        }
        for (int i = 0; i < n; i++) {
            if (i == 0 && !strcmp(msgs[0].role, "system")) continue;
            buf_str(&b, "<|im_start|>");
            buf_str(&b, msgs[i].role);
            buf_str(&b, "\n");
            const char *content = msgs[i].content, *r;
            size_t rn;
            /* Qwen3: an answer before the last user turn without its reasoning */
            if (ct->think && !strcmp(msgs[i].role, "assistant")) think_split(msgs[i].content, &content, &r, &rn);
            buf_str(&b, content);
            buf_str(&b, "<|im_end|>\n");
        }
        if (add_generation_prompt) buf_str(&b, "<|im_start|>assistant\n");
        break;
    }
    case CHAT_GEMMA:
        if (n > 0 && !strcmp(msgs[0].role, "system")) fail(&b, where, ct, "system role not supported");
        check_alternation(&b, msgs, n, where, ct);
        buf_str(&b, ct->bos);
        for (int i = 0; i < n; i++) {
            buf_str(&b, "<start_of_turn>");
            buf_str(&b, !strcmp(msgs[i].role, "assistant") ? "model" : msgs[i].role);
            buf_str(&b, "\n");
            buf_stripped(&b, msgs[i].content);
            buf_str(&b, "<end_of_turn>\n");
        }
        if (add_generation_prompt) buf_str(&b, "<start_of_turn>model\n");
        break;
    case CHAT_LLAMA2: {
        const char *sys = NULL;
        if (n > 0 && !strcmp(msgs[0].role, "system")) sys = msgs[0].content, msgs++, n--;
        check_alternation(&b, msgs, n, where, ct);
        for (int i = 0; i < n; i++) {
            Buf c = {0};
            if (i == 0 && sys) {
                buf_str(&c, "<<SYS>>\n");
                buf_str(&c, sys);
                buf_str(&c, "\n<</SYS>>\n\n");
            }
            buf_str(&c, msgs[i].content);
            if (!strcmp(msgs[i].role, "user")) {
                buf_str(&b, ct->bos);
                buf_str(&b, "[INST] ");
                buf_stripped(&b, c.s);
                buf_str(&b, " [/INST]");
            } else {
                buf_str(&b, " ");
                buf_stripped(&b, c.s);
                buf_str(&b, " ");
                buf_str(&b, ct->eos);
            }
            free(c.s);
        }
        break; /* the template has no generation prompt: the prompt ends with " [/INST]" */
    }
    case CHAT_MISTRAL:
        if (n > 0 && !strcmp(msgs[0].role, "system")) fail(&b, where, ct, "only user and assistant roles are supported");
        check_alternation(&b, msgs, n, where, ct);
        buf_str(&b, ct->bos);
        for (int i = 0; i < n; i++) {
            if (!strcmp(msgs[i].role, "user")) {
                buf_str(&b, "[INST] ");
                buf_str(&b, msgs[i].content);
                buf_str(&b, " [/INST]");
            } else {
                buf_str(&b, msgs[i].content);
                buf_str(&b, ct->eos);
            }
        }
        break;
    }
    return b.s;
}

/* run_simpo.py's Mistral template: the turns of msgs (a leading system message folded into the first turn) */
static void simpo_mistral_turns(Buf *b, const ChatTemplate *ct, const ChatMessage *msgs, int n) {
    const char *sys = NULL;
    if (n > 0 && !strcmp(msgs[0].role, "system")) sys = msgs[0].content, msgs++, n--;
    for (int i = 0; i < n; i++) {
        Buf c = {0};
        buf_str(&c, "");
        if (i == 0 && sys) { /* system_message = messages[0]['content'].strip() + '\n\n' */
            buf_stripped(&c, sys);
            buf_str(&c, "\n\n");
        }
        buf_str(&c, msgs[i].content);
        if (!strcmp(msgs[i].role, "user")) {
            buf_str(b, "[INST] ");
            buf_stripped(b, c.s);
            buf_str(b, " [/INST]");
        } else if (!strcmp(msgs[i].role, "assistant")) {
            buf_str(b, " ");
            buf_stripped(b, c.s);
            buf_str(b, " ");
            buf_str(b, ct->eos);
        }
        free(c.s);
    }
}

char *chat_render_reference_prompt(const ChatTemplate *ct, const ChatMessage *msgs, int n, const char *where) {
    if (ct->family != CHAT_MISTRAL) return chat_render_prompt(ct, msgs, n, false, where);
    Buf b = {0};
    buf_str(&b, ct->bos); /* the template has none; the trainer puts the BOS id first: the same ids */
    simpo_mistral_turns(&b, ct, msgs, n);
    return b.s;
}

char *chat_render_reference_response(const ChatTemplate *ct, const char *content, const char *where) {
    if (ct->family == CHAT_LLAMA2)
        sd_die(where, "data.chat_convention simpo_reference: the llama2 template rejects a lone assistant message, "
                      "which the SimPO reference run script renders each response as");
    ChatMessage m = {"assistant", content};
    if (ct->family == CHAT_MISTRAL || ct->family == CHAT_GEMMA) {
        Buf b = {0};
        buf_str(&b, "");
        if (ct->family == CHAT_MISTRAL) simpo_mistral_turns(&b, ct, &m, 1);
        else { /* SimPO's Gemma 2 template: role assistant as model, content trimmed, no alternation rule */
            buf_str(&b, "<start_of_turn>model\n");
            buf_stripped(&b, content);
            buf_str(&b, "<end_of_turn>\n");
        }
        return b.s;
    }
    char *s = chat_render_prompt(ct, &m, 1, false, where);
    const char *bos = ct->cfg_bos ? ct->cfg_bos : ct->bos; /* the tokenizer's bos_token string */
    size_t nb = strlen(bos);
    if (nb && !strncmp(s, bos, nb)) memmove(s, s + nb, strlen(s + nb) + 1);
    return s;
}

char *chat_render_response(const ChatTemplate *ct, const char *content) {
    Buf b = {0};
    if (ct->think) { /* Qwen3: what its template writes for the last answer, as it writes it (no strip) */
        const char *after, *r;
        size_t rn;
        think_split(content, &after, &r, &rn);
        while (rn > 0 && r[rn - 1] == '\n') rn--; /* reasoning.strip('\n') */
        while (rn > 0 && *r == '\n') r++, rn--;
        buf_str(&b, "<think>\n");
        buf_add(&b, r, rn);
        buf_str(&b, "\n</think>\n\n");
        while (*after == '\n') after++; /* content.lstrip('\n'), with or without a </think> */
        buf_str(&b, after);
        buf_str(&b, chat_end_of_turn(ct));
        return b.s;
    }
    buf_stripped(&b, content);
    buf_str(&b, chat_end_of_turn(ct));
    return b.s;
}
