/* run_results.h — the JSON files the SimPO reference's run script leaves in its output directory, written by rank 0
 * at the end of training: train_results.json / eval_results.json / all_results.json (transformers'
 * trainer.save_metrics; their fields are filled by train.c) and trainer_state.json (trainer.save_state: the run's
 * log history, rebuilt from metrics.jsonl and eval.jsonl, so a resumed run's history is whole).
 * defines: results_write_json, TrainerStateInfo, trainer_state_write. docs/formats.md, "Run results". */
#ifndef SD_RUN_RESULTS_H
#define SD_RUN_RESULTS_H
#include <stdbool.h>

struct cJSON;

/* o into dir/name atomically (sd_write_file_atomic), every number (nested too) printed with 17 significant digits,
 * non-finite ones as null (o's numbers become raw text). Returns the text written (caller frees). */
char *results_write_json(struct cJSON *o, const char *dir, const char *name);

/* What trainer_state.json says besides the log history (HF TrainerState's fields). */
typedef struct {
    long global_step;          /* the last step done */
    long max_steps;            /* the run's total steps */
    long logging_steps, eval_steps, save_steps; /* log.every_steps, train.eval_every_steps, checkpoint.every_steps */
    long train_batch_size;     /* pairs per forward and rank (per_device_train_batch_size) */
    double epoch;              /* global_step over the steps of an epoch */
    double num_train_epochs;   /* the epochs its steps touch, ceil(max_steps / steps per epoch), as transformers counts */
    double total_flos;
    long long tokens_seen;     /* num_input_tokens_seen */
    const struct cJSON *final; /* train_results.json's object: the history's last entry (with "step"); borrowed */
} TrainerStateInfo;

/* dir/trainer_state.json from dir/metrics.jsonl and dir/eval.jsonl: log_history holds each logged step's metrics
 * under the reference trainer's names (learning_rate for lr; the other fields as metrics.jsonl has them), each
 * evaluation's after the step it follows, and the final results; lines that do not parse are left out. */
void trainer_state_write(const char *dir, const TrainerStateInfo *info);
#endif
