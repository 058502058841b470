/* export_hf.h — a checkpoint's parameters as a Hugging Face model directory: config.json, model.safetensors
 * (sharded with model.safetensors.index.json past shard_bytes), Hugging Face tensor names, and the tokenizer's files.
 * What `simpo_dist export` writes, and what the trainer writes from its final checkpoint under
 * checkpoint.export_hf (src/train.c).
 *
 * defines: ExportOpts, export_hf.
 * Memory: one tensor at a time (read from the checkpoint through its index), so any model exports on one machine.
 * Ownership: strings are the caller's.
 */
#ifndef SD_EXPORT_HF_H
#define SD_EXPORT_HF_H
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    size_t shard_bytes;      /* largest safetensors file, in bytes */
    bool bf16;               /* bfloat16 weights (rounded to nearest even), else float32 */
    const char *tokenizer;   /* directory of the tokenizer files; NULL: the run's data.tokenizer or model.init */
    bool replace;            /* write a fresh directory beside out and rename it over out (whose old contents go),
                              * so that out is the old model or the new one, never a mix; false: write into out in
                              * place, file by file (each file atomically) */
} ExportOpts;

/* Exports the checkpoint step_dir (a step-NNNNNNNN directory or its index.h5) into out. Dies naming the file on a
 * bad checkpoint; a tokenizer directory the run named that is not here is a note, an explicit one an error. */
void export_hf(const char *step_dir, const char *out, const ExportOpts *o);
#endif
