/* test_run_results.c — trainer_state.json from metrics.jsonl and eval.jsonl: the history merged by step (an
 * evaluation after its step's training entry, one at step 0 first), lr renamed learning_rate, printf's nan / inf
 * as null, an unparsable line left out, the final results last with the step; numbers with 17 digits. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run_results.h"
#include "test_util.h"

static void put(const char *dir, const char *name, const char *text) {
    char *p = sd_path_join(dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    free(p);
}

int main(void) {
    char dir[] = "/tmp/run_resultsXXXXXX";
    if (!mkdtemp(dir)) return 1;
    put(dir, "metrics.jsonl",
        "{\"step\": 1, \"loss\": 0.5, \"lr\": 1e-3, \"grad_norm\": nan}\n"
        "{\"step\": 2, \"loss\": -nan, \"lr\": 0.1234567890123456789, \"grad_norm\": inf}\n"
        "{\"step\": 3, \"loss\": 0.25, \"lr\": 2e-3, \"grad_norm\": -inf, \"x\": -nan(0x8000)}\n"
        "not json\n");
    put(dir, "eval.jsonl", "{\"step\": 0, \"eval_loss\": 0.7}\n{\"step\": 2, \"eval_loss\": 0.6}\n");
    cJSON *fin = cJSON_CreateObject();
    cJSON_AddNumberToObject(fin, "train_loss", 0.375);
    TrainerStateInfo si = {.global_step = 3, .max_steps = 3, .logging_steps = 1, .eval_steps = 2, .save_steps = 0,
                           .train_batch_size = 2, .epoch = 1.5, .num_train_epochs = 2, .total_flos = 1e18,
                           .tokens_seen = 123456789012LL, .final = fin};
    trainer_state_write(dir, &si);
    char *path = sd_path_join(dir, "trainer_state.json"), *text = sd_read_file(path, NULL);
    cJSON *s = cJSON_Parse(text);
    CHECK(s != NULL, "trainer_state.json parses: %s", text);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(s, "log_history");
    const char *order[] = {"0e", "1t", "2t", "2e", "3t", "3f"};
    int k = 0;
    for (const cJSON *e = h ? h->child : NULL; e; e = e->next, k++) {
        char tag[8];
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "step");
        snprintf(tag, sizeof tag, "%d%c", st ? st->valueint : -1,
                 cJSON_GetObjectItemCaseSensitive(e, "eval_loss")   ? 'e'
                 : cJSON_GetObjectItemCaseSensitive(e, "train_loss") ? 'f'
                                                                     : 't');
        CHECK(k < 6 && !strcmp(tag, order[k]), "entry %d: %s, want %s", k, tag, k < 6 ? order[k] : "none");
        if (tag[1] == 't') {
            CHECK(cJSON_GetObjectItemCaseSensitive(e, "learning_rate") && !cJSON_GetObjectItemCaseSensitive(e, "lr"),
                  "step %s: lr as learning_rate", tag);
            CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(e, "grad_norm")), "step %s: nan / inf as null", tag);
        }
    }
    CHECK(k == 6, "6 entries (the unparsable line left out), got %d", k);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(h->child->next->next, "loss")), "-nan as null");
    CHECK(strstr(text, "0.12345678901234568") != NULL, "17 significant digits");
    CHECK(strstr(text, "\"num_input_tokens_seen\":\t123456789012") != NULL, "tokens seen in full");
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(s, "global_step");
    CHECK(gs && gs->valueint == 3, "global_step");
    cJSON_Delete(s);
    cJSON_Delete(fin);
    free(text);
    free(path);
    t_remove_tree(dir);
    TEST_END();
}
