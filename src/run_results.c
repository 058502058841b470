/* run_results.c — the run's result files for the reference trainer's users and tools. See run_results.h. */
#define _GNU_SOURCE
#include "run_results.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "util.h"

/* every number under o as raw %.17g text (cJSON's own printing settles for 15 digits where they are within an
 * ulp), non-finite ones as null */
static void numbers_17g(cJSON *o) {
    for (cJSON *f = o->child; f; f = f->next) {
        if (cJSON_IsNumber(f)) {
            char num[40];
            snprintf(num, sizeof num, isfinite(f->valuedouble) ? "%.17g" : "null", f->valuedouble);
            f->type = cJSON_Raw;
            f->valuestring = sd_strdup(num);
        } else if (cJSON_IsObject(f) || cJSON_IsArray(f)) numbers_17g(f);
    }
}

char *results_write_json(cJSON *o, const char *dir, const char *name) {
    numbers_17g(o);
    char *text = cJSON_Print(o), *path = sd_path_join(dir, name);
    if (!text) sd_die(path, "cannot format");
    size_t n = strlen(text);
    text = sd_realloc(text, n + 2, "results");
    text[n] = '\n', text[n + 1] = 0;
    sd_write_file_atomic(path, text, n + 1);
    free(path);
    return text;
}

/* a metrics.jsonl or eval.jsonl line as JSON: printf's nan / inf values (a skipped step's loss) as null */
static cJSON *parse_line(const char *line) {
    size_t n = strlen(line);
    char *t = sd_alloc(2 * n + 1, "line"), *o = t;
    for (const char *p = line; *p;) {
        if (p > line && (p[-1] == ' ' || p[-1] == ':')) {
            const char *q = p + (*p == '-');
            if (!strncasecmp(q, "nan", 3) || !strncasecmp(q, "inf", 3)) {
                memcpy(o, "null", 4), o += 4;
                p = q + 3;
                while (*p && *p != ',' && *p != '}') p++; /* "-nan(0x...)", "infinity" */
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = 0;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return cJSON_IsObject(j) ? j : (cJSON_Delete(j), NULL);
}

/* the lines of dir/name as JSON objects, in file order, into an array (empty when the file is missing) */
static cJSON *read_lines(const char *dir, const char *name) {
    cJSON *a = cJSON_CreateArray();
    char *path = sd_path_join(dir, name);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f) return a;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = parse_line(line);
        if (j) cJSON_AddItemToArray(a, j);
    }
    free(line);
    fclose(f);
    return a;
}

static long step_of(const cJSON *o) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
    return cJSON_IsNumber(s) ? (long)s->valuedouble : -1;
}

void trainer_state_write(const char *dir, const TrainerStateInfo *info) {
    cJSON *train = read_lines(dir, "metrics.jsonl"), *eval = read_lines(dir, "eval.jsonl");
    cJSON *hist = cJSON_CreateArray();
    /* merged by step, an evaluation after its step's training entry (one at step 0 before the first step), as
     * the reference trainer logs them */
    cJSON *a = train->child, *b = eval->child;
    while (a || b) {
        bool take_eval = b && (!a || step_of(b) < step_of(a));
        cJSON *e = take_eval ? b : a;
        if (take_eval) b = b->next;
        else a = a->next;
        cJSON *d = cJSON_Duplicate(e, 1);
        cJSON *lr = cJSON_DetachItemFromObjectCaseSensitive(d, "lr");
        if (lr) cJSON_AddItemToObject(d, "learning_rate", lr);
        cJSON_AddItemToArray(hist, d);
    }
    if (info->final) {
        cJSON *fin = cJSON_Duplicate(info->final, 1);
        cJSON_AddNumberToObject(fin, "step", (double)info->global_step);
        cJSON_AddItemToArray(hist, fin);
    }
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNullToObject(st, "best_metric");
    cJSON_AddNullToObject(st, "best_model_checkpoint");
    cJSON_AddNumberToObject(st, "epoch", info->epoch);
    cJSON_AddNumberToObject(st, "eval_steps", (double)info->eval_steps);
    cJSON_AddNumberToObject(st, "global_step", (double)info->global_step);
    cJSON_AddFalseToObject(st, "is_hyper_param_search");
    cJSON_AddTrueToObject(st, "is_local_process_zero");
    cJSON_AddTrueToObject(st, "is_world_process_zero");
    cJSON_AddItemToObject(st, "log_history", hist);
    cJSON_AddNumberToObject(st, "logging_steps", (double)info->logging_steps);
    cJSON_AddNumberToObject(st, "max_steps", (double)info->max_steps);
    cJSON_AddNumberToObject(st, "num_input_tokens_seen", (double)info->tokens_seen);
    cJSON_AddNumberToObject(st, "num_train_epochs", info->num_train_epochs);
    cJSON_AddNumberToObject(st, "save_steps", (double)info->save_steps);
    cJSON_AddNumberToObject(st, "total_flos", info->total_flos);
    cJSON_AddNumberToObject(st, "train_batch_size", (double)info->train_batch_size);
    cJSON_AddNullToObject(st, "trial_name");
    cJSON_AddNullToObject(st, "trial_params");
    free(results_write_json(st, dir, "trainer_state.json"));
    cJSON_Delete(st);
    cJSON_Delete(train);
    cJSON_Delete(eval);
}
