/* cmd_generate.c — `simpo_dist generate`: continue prompts with a Hugging Face model (one rank, CPU, KV cache;
 * src/generate.c), from token ids or, with a tokenizer, from text through the model's chat template.
 * All prompts are read, encoded and checked before the model is loaded, so a bad line fails fast and names
 * file:line; --out is written under a temporary name and renamed when complete. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat_template.h"
#include "cli_args.h"
#include "commands.h"
#include "generate.h"
#include "records.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist generate --model HF_DIR [--tokenizer DIR]\n"
    "                           (--prompt TEXT | --prompt-ids 1,2,3 | --data PROMPTS.jsonl)\n"
    "                           [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S] [--no-chat]\n"
    "                           [--out FILE]\n"
    "  Continues each prompt with the model (one process, CPU, KV cache). Generation stops after N new tokens\n"
    "  (default 256), at an end token (the config's eos_token_id(s), the chat template's end of turn), or when\n"
    "  prompt + output reach max_position_embeddings.\n"
    "  --prompt TEXT        text: rendered by the chat template as one user message with the generation prompt\n"
    "                       (unless --no-chat), then tokenized; needs --tokenizer\n"
    "  --prompt-ids IDS     token ids, comma-separated, fed verbatim\n"
    "  --data FILE          JSONL, one prompt per line: {\"prompt\": TEXT} | {\"messages\": [{\"role\": ..,\n"
    "                       \"content\": ..}, ..]} (chat-templated; a final assistant message is dropped) |\n"
    "                       {\"prompt_ids\": [..]}. Each line is written back, in order, with \"output\" (text,\n"
    "                       with a tokenizer), \"output_ids\" and \"finish_reason\" (stop | length | context) added.\n"
    "                       Or a JSON array of such objects, or a Parquet file: each row's prompt_ids, else\n"
    "                       prompt, else messages\n"
    "  --tokenizer DIR      tokenizer.json, and tokenizer_config.json for the chat template\n"
    "  --max-new-tokens N   default 256\n"
    "  --temperature T      0 (default): greedy, the most probable token; > 0: sample softmax(logits / T)\n"
    "  --top-p P            sample only from the most probable tokens whose mass reaches P (default 1: all)\n"
    "  --seed S             sampling seed (default 0); a prompt's draws depend only on S, its index, the step\n"
    "  --no-chat            text prompts are tokenized as given, without the chat template\n"
    "  --out FILE           write there instead of stdout\n"
    "  --prompt / --prompt-ids print the generated text (with a tokenizer, end token left out) or the generated\n"
    "  ids, comma-separated (end token included).\n";

typedef struct {
    int *v;
    int n, cap;
} IntVec;

static void vec_push(IntVec *a, int x) {
    if (a->n == a->cap) a->v = sd_realloc(a->v, (size_t)(a->cap = a->cap ? 2 * a->cap : 16) * sizeof(int), "ids");
    a->v[a->n++] = x;
}
static void vec_push_unique(IntVec *a, int x) {
    for (int i = 0; i < a->n; i++)
        if (a->v[i] == x) return;
    if (x >= 0) vec_push(a, x);
}

typedef struct {
    int *ids;
    int n;
    int line;     /* 1-based line of --data, 0 for a flag */
    cJSON *obj;   /* the --data line, written back with the output */
} Prompt;

typedef struct {
    const char *tok_dir;
    bool no_chat;
    Tokenizer *tok;       /* loaded with --tokenizer */
    ChatTemplate *ct;     /* loaded when a prompt needs it */
} Text;

/* ---- flag values ---- */

static long long parse_ll(const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        sd_die(flag, "expected an integer in [%lld, %lld], found '%s'", lo, hi, s);
    return v;
}
static double parse_double(const char *flag, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) sd_die(flag, "expected a number, found '%s'", s);
    return v;
}
/* "1, 2,3" -> ids */
static int *parse_id_list(const char *s, int *n_out) {
    IntVec a = {0};
    const char *p = s;
    for (;;) {
        while (*p == ' ') p++;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > 2147483647L)
            sd_die("--prompt-ids", "expected comma-separated token ids, found '%s'", s);
        vec_push(&a, (int)v);
        p = end;
        while (*p == ' ') p++;
        if (!*p) break;
        if (*p++ != ',') sd_die("--prompt-ids", "expected comma-separated token ids, found '%s'", s);
    }
    *n_out = a.n;
    return a.v;
}

/* ---- text: tokenizer and chat template (data/tokenizer.c, data/chat_template.c) ---- */

static int *encode(Text *tx, const char *text, int *n, const char *where) {
    char err[256] = "";
    size_t len = 0;
    int *ids = tokenizer_encode(tx->tok, text, strlen(text), &len, err, sizeof err);
    if (!ids) sd_die(where, "the tokenizer cannot encode the prompt: %s", err);
    if (len > 2147483647u) sd_die(where, "prompt of %zu tokens", len);
    *n = (int)len;
    return ids;
}
static int *chat_encode(Text *tx, const ChatMessage *msgs, int nm, int *n, const char *where) {
    if (!tx->ct) tx->ct = chat_template_load(tx->tok_dir, NULL);
    char *text = chat_render_prompt(tx->ct, msgs, nm, true, where);
    int *ids = encode(tx, text, n, where);
    free(text);
    return ids;
}
static int *text_prompt(Text *tx, const char *text, int *n, const char *where, const char *what) {
    if (!tx->tok) sd_die(where, "%s is text: it needs --tokenizer DIR (or give token ids)", what);
    if (tx->no_chat) return encode(tx, text, n, where);
    ChatMessage msg = {"user", text};
    return chat_encode(tx, &msg, 1, n, where);
}
static int *messages_prompt(Text *tx, const cJSON *arr, int *n, const char *where) {
    if (!tx->tok) sd_die(where, "field 'messages' needs --tokenizer DIR (its chat template)");
    if (tx->no_chat) sd_die(where, "field 'messages' needs the chat template: drop --no-chat");
    int nm = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (nm == 0) sd_die(where, "field 'messages': expected a non-empty array of {\"role\", \"content\"}");
    ChatMessage *msgs = sd_calloc((size_t)nm, sizeof *msgs, "messages");
    for (int i = 0; i < nm; i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, i), *r = cJSON_GetObjectItemCaseSensitive(o, "role"),
                    *c = cJSON_GetObjectItemCaseSensitive(o, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c))
            sd_die(where, "field 'messages[%d]': expected {\"role\": string, \"content\": string}", i);
        msgs[i].role = r->valuestring;
        msgs[i].content = c->valuestring;
    }
    if (!strcmp(msgs[nm - 1].role, "assistant")) nm--; /* a conversation: answer its last user turn afresh */
    if (nm == 0) sd_die(where, "field 'messages': nothing before the assistant message to answer");
    int *ids = chat_encode(tx, msgs, nm, n, where);
    free(msgs);
    return ids;
}
/* generated text without a final end token */
static char *decode_output(Text *tx, const GenResult *r) {
    int n = r->n - (r->stop == GEN_STOP_EOS);
    return n > 0 ? tokenizer_decode(tx->tok, r->ids, (size_t)n) : sd_strdup("");
}

/* ---- --data ---- */

static int *json_ids(const cJSON *arr, int *n, const char *where) {
    if (!cJSON_IsArray(arr)) sd_die(where, "field 'prompt_ids': expected an array of token ids");
    IntVec a = {0};
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1.0;
        if (!(d >= 0 && d <= 2147483647.0) || d != floor(d))
            sd_die(where, "field 'prompt_ids[%d]': expected a token id (an integer >= 0)", i);
        vec_push(&a, (int)d);
    }
    *n = a.n;
    return a.v;
}

/* One prompt from a --data object o (owned by the prompt from here on). A JSONL line names exactly one of its
 * fields; a Parquet row (table) has every column of its file, so the first present of prompt_ids, prompt,
 * messages is taken (a preference dataset's `prompt` is the user's text; its `messages` end with the answer). */
static void add_prompt(Prompt **ps, int *n, int *cap, cJSON *o, int line, const char *where, bool table, Text *tx,
                       int V, int max_pos) {
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "prompt"),
                *fm = cJSON_GetObjectItemCaseSensitive(o, "messages"),
                *fi = cJSON_GetObjectItemCaseSensitive(o, "prompt_ids");
    if (table) {
        if (fi && !cJSON_IsNull(fi)) fp = fm = NULL;
        else if (fp && !cJSON_IsNull(fp)) fi = fm = NULL;
        else fi = fp = NULL;
    }
    int nf = (fp != NULL) + (fm != NULL) + (fi != NULL);
    if (nf != 1) {
        cJSON_Delete(o);
        sd_die(where, table ? "expected a 'prompt', 'messages' or 'prompt_ids' column that is not null"
                            : "expected exactly one of 'prompt' (text), 'messages' or 'prompt_ids', found %d", nf);
    }
    if (*n == *cap) *ps = sd_realloc(*ps, (size_t)(*cap *= 2) * sizeof **ps, "prompts");
    Prompt *q = &(*ps)[(*n)++];
    q->line = line;
    q->obj = o;
    if (fi) q->ids = json_ids(fi, &q->n, where);
    else if (fm) q->ids = messages_prompt(tx, fm, &q->n, where);
    else {
        if (!cJSON_IsString(fp)) sd_die(where, "field 'prompt': expected a string");
        q->ids = text_prompt(tx, fp->valuestring, &q->n, where, "field 'prompt'");
    }
    gen_check_prompt(q->ids, q->n, V, max_pos, where);
}

/* The prompts of --data: JSONL lines, a JSON array's elements, or a Parquet file's rows (its prompt_ids, prompt,
 * prompt_id and messages columns), each written back with its output. */
static Prompt *load_data(const char *path, Text *tx, int V, int max_pos, int *count) {
    static const char *const cols[] = {"prompt_id", "prompt", "messages", "prompt_ids"};
    int cap = 16, n = 0;
    Prompt *ps = sd_alloc((size_t)cap * sizeof *ps, "prompts");
    Records *rec = records_open(path, cols, 4);
    const cJSON *o;
    long num;
    while ((o = records_next(rec, &num)))
        add_prompt(&ps, &n, &cap, cJSON_Duplicate(o, 1), (int)num, records_where(rec), records_is_table(rec), tx, V,
                   max_pos);
    records_close(rec);
    if (n == 0) sd_die(path, "holds no prompts");
    *count = n;
    return ps;
}

/* eos_token_id of a config.json / generation_config.json: a number or a list */
static void add_eos_from(IntVec *stops, const char *dir, const char *file) {
    char *path = sd_path_join(dir, file);
    char *text = sd_read_file(path, NULL);
    free(path);
    if (!text) return;
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    if (cJSON_IsNumber(e)) vec_push_unique(stops, e->valueint);
    else if (cJSON_IsArray(e))
        for (const cJSON *x = e->child; x; x = x->next)
            if (cJSON_IsNumber(x)) vec_push_unique(stops, x->valueint);
    cJSON_Delete(o);
}

static void write_ids(FILE *out, const int *ids, int n) {
    for (int i = 0; i < n; i++) fprintf(out, "%s%d", i ? "," : "", ids[i]);
    fputc('\n', out);
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *tok_dir = NULL, *prompt = NULL, *prompt_ids = NULL, *data = NULL,
               *out_path = NULL, *max_new_s = "256", *temp_s = "0", *top_p_s = "1", *seed_s = "0";
    bool no_chat = false;
    const CliOpt opts[] = {{"--model", &model_dir, NULL},       {"--tokenizer", &tok_dir, NULL},
                           {"--prompt", &prompt, NULL},         {"--prompt-ids", &prompt_ids, NULL},
                           {"--data", &data, NULL},             {"--out", &out_path, NULL},
                           {"--max-new-tokens", &max_new_s, NULL}, {"--temperature", &temp_s, NULL},
                           {"--top-p", &top_p_s, NULL},         {"--seed", &seed_s, NULL},
                           {"--no-chat", NULL, &no_chat}};
    if (cli_parse("generate", USAGE, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]))) return 0;
    model_dir = cli_model_dir("--model", model_dir);
    tok_dir = cli_model_dir("--tokenizer", tok_dir);
    if (!model_dir) sd_die("generate", "--model is required (see simpo_dist generate --help)");
    if (!tok_dir) tok_dir = cli_model_tokenizer(model_dir);
    if ((prompt != NULL) + (prompt_ids != NULL) + (data != NULL) != 1)
        sd_die("generate", "give exactly one of --prompt, --prompt-ids and --data (see simpo_dist generate --help)");
    GenParams gp = {0};
    gp.max_new_tokens = (int)parse_ll("--max-new-tokens", max_new_s, 0, 1 << 30);
    gp.temperature = parse_double("--temperature", temp_s);
    if (!(gp.temperature >= 0.0 && gp.temperature < 1e30))
        sd_die("--temperature", "expected a number >= 0 (0: greedy), found '%s'", temp_s);
    gp.top_p = parse_double("--top-p", top_p_s);
    if (!(gp.top_p > 0.0 && gp.top_p <= 1.0)) sd_die("--top-p", "expected 0 < P <= 1, found '%s'", top_p_s);
    gp.seed = (uint64_t)parse_ll("--seed", seed_s, -9223372036854775807LL, 9223372036854775807LL);

    ModelConfig mc = model_config_load(model_dir);
    const int V = mc.vocab_size, max_pos = mc.max_position_embeddings;
    Text tx = {.tok_dir = tok_dir, .no_chat = no_chat};
    if (tok_dir) tx.tok = tokenizer_load(tok_dir);

    /* every prompt, encoded and checked before the model is loaded */
    int np = 1;
    Prompt *ps;
    if (data) ps = load_data(data, &tx, V, max_pos, &np);
    else {
        ps = sd_calloc(1, sizeof *ps, "prompt");
        const char *where = prompt ? "--prompt" : "--prompt-ids";
        ps->ids = prompt ? text_prompt(&tx, prompt, &ps->n, where, "the prompt") : parse_id_list(prompt_ids, &ps->n);
        gen_check_prompt(ps->ids, ps->n, V, max_pos, where);
    }
    IntVec stops = {0};
    vec_push_unique(&stops, mc.eos_token_id);
    add_eos_from(&stops, model_dir, "config.json");
    add_eos_from(&stops, model_dir, "generation_config.json");
    if (tx.ct) { /* prompts went through the chat template: its end of turn and eos end the answer */
        vec_push_unique(&stops, tokenizer_token_id(tx.tok, chat_end_of_turn(tx.ct)));
        if (tx.ct->eos) vec_push_unique(&stops, tokenizer_token_id(tx.tok, tx.ct->eos));
    }
    gp.stop_ids = stops.v;
    gp.n_stop = stops.n;

    int cap = 1; /* the KV cache: the longest prompt + its budget, within the context */
    for (int i = 0; i < np; i++) {
        long need = (long)ps[i].n + gp.max_new_tokens;
        if (need > max_pos) need = max_pos;
        if (need > cap) cap = (int)need;
    }
    Model *m = model_create_inference(&mc, backend_cpu(), 1);
    model_load_hf(m, model_dir);
    Generator *g = gen_create(m, cap);

    char *tmp = NULL;
    if (out_path) { /* written to a temporary name, renamed when complete */
        tmp = sd_alloc(strlen(out_path) + 5, "path");
        sprintf(tmp, "%s.tmp", out_path);
    }
    FILE *out = tmp ? fopen(tmp, "w") : stdout;
    if (!out) sd_die(tmp, "cannot open for writing: %s", strerror(errno));
    double t0 = sd_now();
    long total = 0;
    char where[512];
    for (int i = 0; i < np; i++) {
        Prompt *q = &ps[i];
        if (q->line) snprintf(where, sizeof where, "%s:%d", data, q->line);
        else snprintf(where, sizeof where, "%s", prompt ? "--prompt" : "--prompt-ids");
        gp.stream = (uint64_t)i;
        GenResult r = gen_generate(g, q->ids, q->n, &gp, where);
        total += r.n;
        char *text = tx.tok ? decode_output(&tx, &r) : NULL;
        if (q->obj) {
            cJSON *o = q->obj;
            cJSON_DeleteItemFromObjectCaseSensitive(o, "output");
            cJSON_DeleteItemFromObjectCaseSensitive(o, "output_ids");
            cJSON_DeleteItemFromObjectCaseSensitive(o, "finish_reason");
            if (text) cJSON_AddStringToObject(o, "output", text);
            cJSON_AddItemToObject(o, "output_ids", cJSON_CreateIntArray(r.ids, r.n));
            cJSON_AddStringToObject(o, "finish_reason", gen_stop_name(r.stop));
            char *js = cJSON_PrintUnformatted(o);
            if (!js) sd_die(where, "cannot serialise the output line");
            fprintf(out, "%s\n", js);
            cJSON_free(js);
        } else if (text) fprintf(out, "%s\n", text);
        else write_ids(out, r.ids, r.n);
        fflush(out);
        free(text);
        gen_result_free(&r);
    }
    if (out != stdout && fclose(out) != 0) sd_die(tmp, "write failed");
    if (tmp && rename(tmp, out_path) != 0) sd_die(out_path, "cannot rename %s into place", tmp);
    double dt = sd_now() - t0;
    fprintf(stderr, "generate: %d prompt%s, %ld new tokens in %.2f s (%.1f tokens/s)\n", np, np == 1 ? "" : "s",
            total, dt, dt > 0 ? total / dt : 0.0);

    for (int i = 0; i < np; i++) {
        free(ps[i].ids);
        cJSON_Delete(ps[i].obj);
    }
    free(ps);
    free(stops.v);
    free(tmp);
    gen_free(g);
    model_free(m);
    if (tx.ct) chat_template_free(tx.ct);
    if (tx.tok) tokenizer_free(tx.tok);
    return 0;
}
