/* cmd_convert.c — `simpo_dist convert RECIPE.yaml [--processes N] [--accelerate-config FILE] [--out FILE]`: a
 * SimPO reference recipe (princeton-nlp/SimPO's training_configs YAML files, read by alignment-handbook's
 * H4ArgumentParser into ModelArguments + DataArguments + SimPOConfig(TrainingArguments)) as a simpo_dist config.
 *
 * Every key the recipe may hold is in one table (RECIPE_KEYS): converted by the code below, known to have no
 * effect here (listed in the output's closing comment with why), or guarded (no effect while it keeps a value
 * simpo_dist behaves like, an error naming what simpo_dist lacks otherwise). A key outside the table is an
 * error, so nothing of a recipe is silently dropped. Keys the recipe leaves out take the reference's defaults
 * (SimPOConfig, TrainingArguments, DataArguments), written out explicitly so the output reads as the whole run.
 * The output is built in memory and written at the end (with --out atomically), so an error leaves nothing. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "chat_template.h"
#include "commands.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist convert RECIPE.yaml [--processes N] [--accelerate-config FILE] [--out FILE]\n"
    "  Translates a SimPO reference recipe (the YAML of `accelerate launch scripts/run_simpo.py RECIPE.yaml`:\n"
    "  alignment-handbook's ModelArguments, DataArguments and SimPOConfig / TrainingArguments keys) into a\n"
    "  simpo_dist config with every value explicit (the reference's defaults for keys the recipe leaves out),\n"
    "  each line naming the recipe key it came from; keys with no effect here are listed at the end.\n"
    "  --processes N: the processes the recipe ran on (train.global_batch_pairs = per_device_train_batch_size\n"
    "  x gradient_accumulation_steps x N); else num_processes of --accelerate-config FILE (accelerate's\n"
    "  config, the total over machines); else 4, as the SimPO repository's deepspeed_zero3.yaml.\n"
    "  parallel.zero: the accelerate config's DeepSpeed zero_stage (FSDP: its sharding strategy), else 3, that\n"
    "  file's.\n"
    "  --out FILE: written under a temporary name and renamed when complete (default: stdout).\n"
    "  Keys that would change what is trained and have no simpo_dist equivalent (LoRA, quantisation, fp16,\n"
    "  other optimizers or schedules, ...), unknown keys and bad values stop with RECIPE:LINE and the key.\n";

/* ---- the recipe keys ---- */
typedef enum {
    RK_MAP,   /* converted by the code below */
    RK_NOTE,  /* no effect on a simpo_dist run: listed at the end with `why` */
    RK_GUARD, /* no effect while the value is one of `ok` (as RK_NOTE), else an error: simpo_dist lacks `lack` */
} RKind;

typedef struct {
    const char *key;
    RKind kind;
    const char *ok;   /* RK_GUARD: the values that change nothing, '|'-separated, as norm_value() spells them */
    const char *why;  /* RK_NOTE, RK_GUARD: why the key is not needed */
    const char *lack; /* RK_GUARD: what simpo_dist does not have */
} RecipeKey;

static const RecipeKey RECIPE_KEYS[] = {
    /* ModelArguments (alignment-handbook) */
    {"model_name_or_path", RK_MAP, 0, 0, 0},
    {"model_revision", RK_MAP, 0, 0, 0},
    {"tokenizer_name_or_path", RK_MAP, 0, 0, 0},
    {"torch_dtype", RK_MAP, 0, 0, 0},
    {"use_peft", RK_GUARD, "false|null", "LoRA off: every weight is trained, as here",
     "LoRA / PEFT adapters: simpo_dist trains every weight"},
    {"lora_r", RK_NOTE, 0, "LoRA setting, used only with use_peft: true", 0},
    {"lora_alpha", RK_NOTE, 0, "LoRA setting, used only with use_peft: true", 0},
    {"lora_dropout", RK_NOTE, 0, "LoRA setting, used only with use_peft: true", 0},
    {"lora_target_modules", RK_NOTE, 0, "LoRA setting, used only with use_peft: true", 0},
    {"lora_modules_to_save", RK_NOTE, 0, "LoRA setting, used only with use_peft: true", 0},
    {"load_in_8bit", RK_GUARD, "false|null", "no quantisation, as here", "8-bit quantised weights (bitsandbytes)"},
    {"load_in_4bit", RK_GUARD, "false|null", "no quantisation, as here", "4-bit quantised weights (bitsandbytes)"},
    {"bnb_4bit_quant_type", RK_NOTE, 0, "quantisation setting, used only with load_in_4bit: true", 0},
    {"use_bnb_nested_quant", RK_NOTE, 0, "quantisation setting, used only with load_in_4bit: true", 0},
    {"base_model_revision", RK_NOTE, 0, "revision of a PEFT adapter's base model (run_simpo.py loads no adapters)", 0},
    {"model_code_revision", RK_NOTE, 0, "revision of remote model code; simpo_dist implements the models itself", 0},
    {"trust_remote_code", RK_NOTE, 0, "remote model code; simpo_dist implements Llama, Mistral and Gemma 2 itself", 0},
    {"attn_implementation", RK_NOTE, 0, "attention kernel choice; simpo_dist has its own (flash attention on CUDA)", 0},
    {"use_flash_attention_2", RK_NOTE, 0, "attention kernel choice; simpo_dist has its own (flash attention on CUDA)", 0},
    /* DataArguments (alignment-handbook) */
    {"chat_template", RK_MAP, 0, 0, 0},
    {"dataset_mixer", RK_MAP, 0, 0, 0},
    {"dataset_splits", RK_MAP, 0, 0, 0},
    {"dataset_configs", RK_MAP, 0, 0, 0},
    {"auto_insert_empty_system_msg", RK_MAP, 0, 0, 0},
    {"text_column", RK_NOTE, 0, "the text column of SFT / pretraining data; preference pairs do not use it", 0},
    {"preprocessing_num_workers", RK_NOTE, 0, "worker processes of the data preparation; simpo_dist tokenizes in C", 0},
    {"truncation_side", RK_NOTE, 0, "run_simpo.py sets it to left itself; the trainer truncates as simpo_dist does", 0},
    /* SimPOConfig (the SimPO repository's scripts/simpo_config.py) */
    {"max_length", RK_MAP, 0, 0, 0},
    {"max_prompt_length", RK_MAP, 0, 0, 0},
    {"beta", RK_MAP, 0, 0, 0},
    {"gamma_beta_ratio", RK_MAP, 0, 0, 0},
    {"sft_weight", RK_MAP, 0, 0, 0},
    {"label_smoothing", RK_MAP, 0, 0, 0},
    {"loss_type", RK_MAP, 0, 0, 0},
    {"max_target_length", RK_NOTE, 0, "encoder-decoder models only", 0},
    {"max_completion_length", RK_NOTE, 0, "not read by SimPOTrainer", 0},
    {"disable_dropout", RK_GUARD, "true", "simpo_dist's models have no dropout, as disable_dropout: true makes them",
     "dropout (disable_dropout: false): simpo_dist's models have none"},
    {"label_pad_token_id", RK_NOTE, 0, "marks padded label positions; simpo_dist packs pairs without padding", 0},
    {"padding_value", RK_GUARD, "null", "the tokenizer's pad token pads; simpo_dist packs pairs without padding",
     "a padding token id of its own: simpo_dist packs pairs without padding"},
    {"truncation_mode", RK_GUARD, "keep_end", "over-long prompts keep their end, as simpo_dist truncates",
     "truncation_mode keep_start: simpo_dist keeps the end of an over-long prompt (keep_end)"},
    {"generate_during_eval", RK_NOTE, 0, "samples logged to wandb at evaluation; `simpo_dist generate` writes them", 0},
    {"is_encoder_decoder", RK_GUARD, "null|false", "decoder-only models, as here", "encoder-decoder models"},
    {"model_init_kwargs", RK_NOTE, 0, "run_simpo.py replaces it with the model arguments", 0},
    {"dataset_num_proc", RK_NOTE, 0, "worker processes of the tokenization; simpo_dist tokenizes in C", 0},
    /* TrainingArguments (transformers) */
    {"output_dir", RK_MAP, 0, 0, 0},
    {"learning_rate", RK_MAP, 0, 0, 0},
    {"weight_decay", RK_MAP, 0, 0, 0},
    {"adam_beta1", RK_MAP, 0, 0, 0},
    {"adam_beta2", RK_MAP, 0, 0, 0},
    {"adam_epsilon", RK_MAP, 0, 0, 0},
    {"max_grad_norm", RK_MAP, 0, 0, 0},
    {"lr_scheduler_type", RK_MAP, 0, 0, 0},
    {"lr_scheduler_kwargs", RK_MAP, 0, 0, 0},
    {"warmup_ratio", RK_MAP, 0, 0, 0},
    {"warmup_steps", RK_MAP, 0, 0, 0},
    {"optim", RK_MAP, 0, 0, 0},
    {"num_train_epochs", RK_MAP, 0, 0, 0},
    {"max_steps", RK_MAP, 0, 0, 0},
    {"per_device_train_batch_size", RK_MAP, 0, 0, 0},
    {"per_gpu_train_batch_size", RK_MAP, 0, 0, 0},
    {"gradient_accumulation_steps", RK_MAP, 0, 0, 0},
    {"seed", RK_MAP, 0, 0, 0},
    {"data_seed", RK_MAP, 0, 0, 0},
    {"bf16", RK_MAP, 0, 0, 0},
    {"fp16", RK_GUARD, "false", "no fp16 mixed precision, as here",
     "fp16 mixed precision with loss scaling: simpo_dist trains in fp32 or bf16 (bf16: true)"},
    {"do_eval", RK_MAP, 0, 0, 0},
    {"evaluation_strategy", RK_MAP, 0, 0, 0},
    {"eval_strategy", RK_MAP, 0, 0, 0},
    {"eval_steps", RK_MAP, 0, 0, 0},
    {"eval_on_start", RK_MAP, 0, 0, 0},
    {"save_strategy", RK_MAP, 0, 0, 0},
    {"save_steps", RK_MAP, 0, 0, 0},
    {"save_total_limit", RK_MAP, 0, 0, 0},
    {"logging_steps", RK_MAP, 0, 0, 0},
    {"logging_strategy", RK_MAP, 0, 0, 0},
    {"logging_dir", RK_MAP, 0, 0, 0},
    {"report_to", RK_MAP, 0, 0, 0},
    {"gradient_checkpointing", RK_MAP, 0, 0, 0},
    {"accelerator_config", RK_MAP, 0, 0, 0},
    {"split_batches", RK_GUARD, "false|null", "each process loads its own batches, as here",
     "split_batches: true (one batch split over the processes): give --processes 1 and the whole batch instead"},
    {"gradient_checkpointing_kwargs", RK_NOTE, 0, "how torch recomputes; simpo_dist's train.recompute decides", 0},
    {"per_device_eval_batch_size", RK_NOTE, 0, "evaluation batching; the metrics are means over all held-out pairs", 0},
    {"per_gpu_eval_batch_size", RK_NOTE, 0, "evaluation batching; the metrics are means over all held-out pairs", 0},
    {"eval_accumulation_steps", RK_NOTE, 0, "evaluation batching; the metrics are means over all held-out pairs", 0},
    {"eval_delay", RK_NOTE, 0, "delays the first evaluation; simpo_dist evaluates at every interval", 0},
    {"eval_do_concat_batches", RK_NOTE, 0, "how predictions are gathered; SimPO's evaluation keeps none", 0},
    {"eval_use_gather_object", RK_NOTE, 0, "how predictions are gathered; SimPO's evaluation keeps none", 0},
    {"batch_eval_metrics", RK_NOTE, 0, "compute_metrics batching; SimPO's evaluation logs the loss's metrics", 0},
    {"prediction_loss_only", RK_NOTE, 0, "evaluation outputs; simpo_dist logs the loss's metrics", 0},
    {"include_inputs_for_metrics", RK_NOTE, 0, "evaluation outputs; simpo_dist logs the loss's metrics", 0},
    {"include_for_metrics", RK_NOTE, 0, "evaluation outputs; simpo_dist logs the loss's metrics", 0},
    {"label_names", RK_NOTE, 0, "evaluation outputs; simpo_dist logs the loss's metrics", 0},
    {"metric_for_best_model", RK_NOTE, 0, "used by load_best_model_at_end", 0},
    {"greater_is_better", RK_NOTE, 0, "used by load_best_model_at_end", 0},
    {"load_best_model_at_end", RK_GUARD, "false|null", "the final weights are saved, as here",
     "load_best_model_at_end (keeping the checkpoint with the best eval metric): simpo_dist exports the final "
     "weights"},
    {"run_name", RK_NOTE, 0, "names the wandb run", 0},
    {"push_to_hub", RK_NOTE, 0, "uploads to the Hub; `huggingface-cli upload` the checkpoint.export_hf directory", 0},
    {"hub_model_id", RK_NOTE, 0, "Hub upload", 0},
    {"hub_strategy", RK_NOTE, 0, "Hub upload", 0},
    {"hub_token", RK_NOTE, 0, "Hub upload", 0},
    {"hub_private_repo", RK_NOTE, 0, "Hub upload", 0},
    {"hub_always_push", RK_NOTE, 0, "Hub upload", 0},
    {"hub_revision", RK_NOTE, 0, "Hub upload", 0},
    {"hub_model_revision", RK_NOTE, 0, "Hub upload", 0},
    {"push_to_hub_model_id", RK_NOTE, 0, "Hub upload", 0},
    {"push_to_hub_organization", RK_NOTE, 0, "Hub upload", 0},
    {"push_to_hub_token", RK_NOTE, 0, "Hub upload", 0},
    {"log_level", RK_NOTE, 0, "Python logging verbosity", 0},
    {"log_level_replica", RK_NOTE, 0, "Python logging verbosity", 0},
    {"log_on_each_node", RK_NOTE, 0, "Python logging verbosity", 0},
    {"disable_tqdm", RK_NOTE, 0, "progress bar; simpo_dist prints a line per logged step", 0},
    {"logging_first_step", RK_NOTE, 0, "simpo_dist logs every log.every_steps steps", 0},
    {"logging_nan_inf_filter", RK_NOTE, 0, "simpo_dist logs non-finite values as they are (train.nonfinite)", 0},
    {"skip_memory_metrics", RK_NOTE, 0, "memory metrics; simpo_dist prints its memory plan", 0},
    {"include_tokens_per_second", RK_NOTE, 0, "simpo_dist logs tokens_per_s anyway", 0},
    {"include_num_input_tokens_seen", RK_NOTE, 0, "simpo_dist logs num_input_tokens_seen anyway", 0},
    {"remove_unused_columns", RK_NOTE, 0, "dataset columns (SimPOTrainer keeps them anyway)", 0},
    {"overwrite_output_dir", RK_NOTE, 0,
     "run_simpo.py resumes from output_dir's last checkpoint either way, as simpo_dist does from checkpoint.dir", 0},
    {"resume_from_checkpoint", RK_GUARD, "null", "resumes from the newest checkpoint in output_dir, as here",
     "resuming from a transformers Trainer checkpoint: simpo_dist resumes from its own in checkpoint.dir"},
    {"ignore_data_skip", RK_NOTE, 0, "a resumed simpo_dist run continues the data order exactly", 0},
    {"do_train", RK_NOTE, 0, "simpo_dist CONFIG trains", 0},
    {"do_predict", RK_NOTE, 0, "run_simpo.py predicts nothing", 0},
    {"bf16_full_eval", RK_NOTE, 0, "evaluation precision; simpo_dist evaluates in model.dtype", 0},
    {"fp16_full_eval", RK_NOTE, 0, "evaluation precision; simpo_dist evaluates in model.dtype", 0},
    {"fp16_opt_level", RK_NOTE, 0, "apex fp16 setting", 0},
    {"fp16_backend", RK_NOTE, 0, "fp16 setting", 0},
    {"half_precision_backend", RK_NOTE, 0, "mixed-precision implementation", 0},
    {"tf32", RK_NOTE, 0, "TF32 for torch's fp32 matmuls; simpo_dist's fp32 matmuls are fp32", 0},
    {"deepspeed", RK_NOTE, 0, "DeepSpeed's sharding; simpo_dist's parallel: section (simpo_dist plan ranks layouts)", 0},
    {"fsdp", RK_NOTE, 0, "FSDP sharding; simpo_dist's parallel: section", 0},
    {"fsdp_config", RK_NOTE, 0, "FSDP sharding; simpo_dist's parallel: section", 0},
    {"fsdp_min_num_params", RK_NOTE, 0, "FSDP sharding; simpo_dist's parallel: section", 0},
    {"fsdp_transformer_layer_cls_to_wrap", RK_NOTE, 0, "FSDP sharding; simpo_dist's parallel: section", 0},
    {"dispatch_batches", RK_NOTE, 0, "how batches reach the processes (the same batches)", 0},
    {"ddp_timeout", RK_NOTE, 0, "torch.distributed setting; simpo_dist runs under mpirun", 0},
    {"ddp_backend", RK_NOTE, 0, "torch.distributed setting; simpo_dist runs under mpirun", 0},
    {"ddp_find_unused_parameters", RK_NOTE, 0, "torch.distributed setting; simpo_dist runs under mpirun", 0},
    {"ddp_bucket_cap_mb", RK_NOTE, 0, "torch.distributed setting; simpo_dist runs under mpirun", 0},
    {"ddp_broadcast_buffers", RK_NOTE, 0, "torch.distributed setting; simpo_dist runs under mpirun", 0},
    {"local_rank", RK_NOTE, 0, "set by the launcher", 0},
    {"dataloader_num_workers", RK_NOTE, 0, "data-loading workers; simpo_dist reads the data itself", 0},
    {"dataloader_prefetch_factor", RK_NOTE, 0, "data-loading workers; simpo_dist reads the data itself", 0},
    {"dataloader_pin_memory", RK_NOTE, 0, "data-loading workers; simpo_dist reads the data itself", 0},
    {"dataloader_persistent_workers", RK_NOTE, 0, "data-loading workers; simpo_dist reads the data itself", 0},
    {"dataloader_drop_last", RK_NOTE, 0, "simpo_dist drops an epoch's incomplete last batch", 0},
    {"group_by_length", RK_GUARD, "false|null", "uniform shuffling, as here",
     "group_by_length (length-grouped sampling): simpo_dist shuffles uniformly (train.micro_batch_tokens packs by "
     "tokens)"},
    {"length_column_name", RK_NOTE, 0, "used by group_by_length", 0},
    {"adafactor", RK_GUARD, "false|null", "AdamW, as here", "Adafactor: simpo_dist's optimizer is AdamW"},
    {"optim_args", RK_NOTE, 0, "arguments of optimizers other than AdamW", 0},
    {"optim_target_modules", RK_NOTE, 0, "GaLore / APOLLO optimizers only", 0},
    {"label_smoothing_factor", RK_NOTE, 0, "Trainer's own loss; SimPOTrainer's loss uses label_smoothing", 0},
    {"average_tokens_across_devices", RK_NOTE, 0, "Trainer's own loss; SimPOTrainer's loss is a mean over pairs", 0},
    {"neftune_noise_alpha", RK_GUARD, "null|0|0.0", "no embedding noise, as here", "NEFTune embedding noise"},
    {"auto_find_batch_size", RK_GUARD, "false|null", "a fixed batch size, as here",
     "auto_find_batch_size (halving the batch on out-of-memory): simpo_dist keeps the batch and recomputes "
     "activations to fit (train.recompute: auto)"},
    {"full_determinism", RK_NOTE, 0, "simpo_dist's runs are deterministic", 0},
    {"save_safetensors", RK_NOTE, 0, "checkpoint.export_hf writes safetensors; checkpoints are HDF5", 0},
    {"save_on_each_node", RK_NOTE, 0, "rank 0 writes checkpoints to a shared file system", 0},
    {"save_only_model", RK_NOTE, 0, "simpo_dist's checkpoints keep the optimizer state for an exact resume", 0},
    {"restore_callback_states_from_checkpoint", RK_NOTE, 0, "Trainer callbacks", 0},
    {"use_cpu", RK_NOTE, 0, "simpo_dist's device: key (auto picks CUDA where built and present)", 0},
    {"no_cuda", RK_NOTE, 0, "simpo_dist's device: key (auto picks CUDA where built and present)", 0},
    {"use_mps_device", RK_NOTE, 0, "simpo_dist's device: key (auto picks CUDA where built and present)", 0},
    {"use_ipex", RK_NOTE, 0, "kernel choice", 0},
    {"jit_mode_eval", RK_NOTE, 0, "kernel choice", 0},
    {"torch_compile", RK_NOTE, 0, "kernel choice", 0},
    {"torch_compile_backend", RK_NOTE, 0, "kernel choice", 0},
    {"torch_compile_mode", RK_NOTE, 0, "kernel choice", 0},
    {"torchdynamo", RK_NOTE, 0, "kernel choice", 0},
    {"use_liger_kernel", RK_NOTE, 0, "kernel choice (the same arithmetic)", 0},
    {"liger_kernel_config", RK_NOTE, 0, "kernel choice (the same arithmetic)", 0},
    {"torch_empty_cache_steps", RK_NOTE, 0, "torch's allocator cache", 0},
    {"tpu_num_cores", RK_NOTE, 0, "TPU setting", 0},
    {"tpu_metrics_debug", RK_NOTE, 0, "TPU setting", 0},
    {"debug", RK_NOTE, 0, "debugging aid", 0},
    {"past_index", RK_NOTE, 0, "models with memories (XLNet)", 0},
    {"mp_parameters", RK_NOTE, 0, "SageMaker setting", 0},
    {"ray_scope", RK_NOTE, 0, "Ray Tune setting", 0},
    {"use_legacy_prediction_loop", RK_NOTE, 0, "evaluation loop implementation", 0},
};
#define N_RECIPE_KEYS (int)(sizeof RECIPE_KEYS / sizeof RECIPE_KEYS[0])

/* ---- a growable string ---- */
typedef struct {
    char *s;
    size_t n, cap;
} Buf;

SD_PRINTF(2, 3) static void bput(Buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) sd_die("convert", "cannot format the output");
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->n + (size_t)k + 1) * 2;
        b->s = sd_realloc(b->s, b->cap, "convert output");
    }
}

/* ---- the recipe as read ---- */
typedef struct {
    const char *file;
    char *text;
    yaml_parser_t parser;
    yaml_document_t doc;
    int parser_up, doc_up;
    yaml_node_pair_t *pairs; /* the root mapping's */
    int npairs;
    Buf out;
    char **note_of; /* [npairs]: the closing block's line of each recipe key ("not needed"), else NULL */
    ChatTemplate *ct;
} Conv;

static void conv_free(void *arg) {
    Conv *c = arg;
    if (c->doc_up) yaml_document_delete(&c->doc);
    if (c->parser_up) yaml_parser_delete(&c->parser);
    c->doc_up = c->parser_up = 0;
    for (int i = 0; c->note_of && i < c->npairs; i++) free(c->note_of[i]);
    free(c->note_of);
    c->note_of = NULL;
    chat_template_free(c->ct);
    c->ct = NULL;
    free(c->text);
    free(c->out.s);
    c->text = c->out.s = NULL;
}

static yaml_node_t *node(Conv *c, int id) { return yaml_document_get_node(&c->doc, id); }
static const char *key_of(Conv *c, int i) { return (const char *)node(c, c->pairs[i].key)->data.scalar.value; }

/* "FILE:LINE" of a node: errors read RECIPE:LINE: key 'NAME': ... */
static const char *at(const Conv *c, const yaml_node_t *n) {
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s:%zu", c->file, n->start_mark.line + 1);
    return b;
}

static int find_pair(Conv *c, const char *key) {
    for (int i = 0; i < c->npairs; i++)
        if (!strcmp(key_of(c, i), key)) return i;
    return -1;
}
/* the value node of `key`, NULL when the recipe does not have it */
static yaml_node_t *get(Conv *c, const char *key) {
    int i = find_pair(c, key);
    return i < 0 ? NULL : node(c, c->pairs[i].value);
}
/* where a key's errors point: its own line */
static const char *at_key(Conv *c, const char *key) {
    int i = find_pair(c, key);
    return i < 0 ? c->file : at(c, node(c, c->pairs[i].key));
}

static bool is_plain(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}
static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }
/* PyYAML's null (what H4ArgumentParser's yaml.safe_load reads as None) */
static bool is_null(const yaml_node_t *n) {
    if (!is_plain(n)) return false;
    const char *s = sval(n);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}
/* word as PyYAML's resolver spells it: all lower, Capitalised or ALL UPPER */
static bool yaml_word(const char *s, const char *w) {
    size_t n = strlen(w);
    if (strlen(s) != n || strcasecmp(s, w)) return false;
    bool lower = true, upper = true;
    for (size_t i = 1; i < n; i++) lower &= s[i] == w[i], upper &= s[i] == toupper((unsigned char)w[i]);
    return lower || (upper && s[0] == toupper((unsigned char)w[0]));
}
/* PyYAML's (YAML 1.1) booleans: 1 true, 0 false, -1 neither */
static int yaml_bool(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE) return -1;
    static const char *t[] = {"true", "yes", "on"}, *f[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (yaml_word(sval(n), t[i])) return 1;
        if (yaml_word(sval(n), f[i])) return 0;
    }
    return -1;
}

/* A value as a comment shows it, in flow style, on one line, shortened (a chat template is long) */
static void flow(Conv *c, const yaml_node_t *n, Buf *b, int depth) {
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = sval(n);
        size_t len = strlen(s), shown = len > 60 ? 57 : len;
        while (shown < len && shown > 0 && ((unsigned char)s[shown] & 0xC0) == 0x80) shown--; /* whole UTF-8 chars */
        bool quote = n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (quote) bput(b, "\"");
        for (size_t i = 0; i < shown; i++) {
            if (s[i] == '\n') bput(b, "\\n");
            else if ((unsigned char)s[i] < 0x20) bput(b, " ");
            else bput(b, "%c", s[i]);
        }
        if (shown < len) bput(b, "...");
        if (quote) bput(b, "\"");
    } else if (depth > 2) {
        bput(b, n->type == YAML_MAPPING_NODE ? "{...}" : "[...]");
    } else if (n->type == YAML_SEQUENCE_NODE) {
        bput(b, "[");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            if (it > n->data.sequence.items.start) bput(b, ", ");
            flow(c, node(c, *it), b, depth + 1);
        }
        bput(b, "]");
    } else if (n->type == YAML_MAPPING_NODE) {
        bput(b, "{");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            if (p > n->data.mapping.pairs.start) bput(b, ", ");
            flow(c, node(c, p->key), b, depth + 1);
            bput(b, ": ");
            flow(c, node(c, p->value), b, depth + 1);
        }
        bput(b, "}");
    }
}
/* flow() into a string the caller frees */
static char *flow_str(Conv *c, const yaml_node_t *n) {
    Buf b = {0};
    flow(c, n, &b, 0);
    if (!b.s) return sd_strdup("");
    return b.s;
}

/* A guarded key's value as the RECIPE_KEYS ok lists spell it: null, true, false, or the scalar's text */
static const char *norm_value(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE) return n->type == YAML_MAPPING_NODE ? "(a mapping)" : "(a list)";
    if (is_null(n)) return "null";
    int b = yaml_bool(n);
    return b == 1 ? "true" : b == 0 ? "false" : sval(n);
}
static bool in_list(const char *v, const char *list) {
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, "|");
        if (strlen(v) == n && !strncmp(p, v, n)) return true;
        p += n + (p[n] == '|');
    }
    return false;
}

static const RecipeKey *recipe_key(const char *key) {
    for (int i = 0; i < N_RECIPE_KEYS; i++)
        if (!strcmp(RECIPE_KEYS[i].key, key)) return &RECIPE_KEYS[i];
    return NULL;
}

/* ---- typed values ---- */
static const char *kind_name(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "null";
}

/* a decimal number as YAML and simpo_dist's config both read it (no hex, no .inf): [-+]digits[.digits][e[-+]digits] */
static bool decimal_syntax(const char *s, bool integer) {
    const char *p = s + (*s == '-' || *s == '+');
    size_t d = strspn(p, "0123456789");
    p += d;
    if (integer) return d > 0 && !*p;
    if (*p == '.') {
        size_t f = strspn(p + 1, "0123456789");
        if (!d && !f) return false;
        p += 1 + f;
    } else if (!d) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '-' || *p == '+';
        size_t e = strspn(p, "0123456789");
        if (!e) return false;
        p += e;
    }
    return !*p;
}

typedef struct {
    double v;
    char text[64]; /* as the output writes it: the recipe's own text, or the default's */
    bool given;    /* the recipe set it (not null) */
} Num;

typedef struct {
    bool integer, nullable; /* nullable: null takes the default (an Optional field whose default is None) */
    double lo, hi;          /* NAN: unbounded */
    bool lo_excl, hi_excl;
} NumSpec;
#define ANY NAN

/* the number n (NULL: absent) of the key named `key` at `where`, else `dflt`; dies naming the key on a non-number
 * or a value out of [lo, hi] */
static Num num_node(const yaml_node_t *n, const char *key, const char *where, const char *dflt, NumSpec sp) {
    Num r = {0};
    const char *text = dflt;
    if (n && !(sp.nullable && is_null(n))) {
        if (n->type != YAML_SCALAR_NODE || is_null(n))
            sd_die(where, "key '%s': expected %s, found %s", key, sp.integer ? "an integer" : "a number", kind_name(n));
        text = sval(n);
        if (!decimal_syntax(text, sp.integer))
            sd_die(where, "key '%s': expected %s, found \"%s\"", key, sp.integer ? "an integer" : "a number", text);
        r.given = true;
    }
    errno = 0;
    r.v = strtod(text, NULL);
    if (errno || !isfinite(r.v) || (sp.integer && fabs(r.v) > 2147483647.0))
        sd_die(where, "key '%s': %s is out of range", key, text);
    bool lo_bad = !isnan(sp.lo) && (sp.lo_excl ? r.v <= sp.lo : r.v < sp.lo);
    bool hi_bad = !isnan(sp.hi) && (sp.hi_excl ? r.v >= sp.hi : r.v > sp.hi);
    if (lo_bad || hi_bad) {
        char lo[48] = "", hi[48] = "";
        if (!isnan(sp.lo)) snprintf(lo, sizeof lo, " %s %g", sp.lo_excl ? ">" : ">=", sp.lo);
        if (!isnan(sp.hi)) snprintf(hi, sizeof hi, "%s %s %g", lo[0] ? " and" : "", sp.hi_excl ? "<" : "<=", sp.hi);
        sd_die(where, "key '%s': expected a value%s%s (simpo_dist's range), found %s", key, lo, hi, text);
    }
    snprintf(r.text, sizeof r.text, "%s", text);
    return r;
}
static Num num(Conv *c, const char *key, const char *dflt, NumSpec sp) {
    return num_node(get(c, key), key, at_key(c, key), dflt, sp);
}
static Num flt(Conv *c, const char *key, const char *dflt, double lo, bool lo_excl, double hi, bool hi_excl) {
    return num(c, key, dflt, (NumSpec){false, false, lo, hi, lo_excl, hi_excl});
}
static long integer(Conv *c, const char *key, long dflt, long lo, bool nullable, bool *given) {
    char d[32];
    snprintf(d, sizeof d, "%ld", dflt);
    Num r = num(c, key, d, (NumSpec){true, nullable, (double)lo, ANY, false, false});
    if (given) *given = r.given;
    return (long)r.v;
}

/* a step interval (logging_steps, eval_steps, save_steps): transformers also takes a float below 1 as a ratio of
 * the total steps, which simpo_dist cannot turn into steps before it has read the data */
static long steps(Conv *c, const char *key, long dflt, bool *given) {
    char d[32];
    snprintf(d, sizeof d, "%ld", dflt);
    Num r = num(c, key, d, (NumSpec){false, true, 0, ANY, false, false});
    if (given) *given = r.given;
    if (r.v > 0 && r.v < 1)
        sd_die(at_key(c, key), "key '%s': %s is a ratio of the total steps (transformers' float below 1); simpo_dist "
               "needs a number of steps: give one", key, r.text);
    if (r.v != floor(r.v) || r.v > 2147483647.0)
        sd_die(at_key(c, key), "key '%s': expected a whole number of steps, found %s", key, r.text);
    return (long)r.v;
}

static bool flag(Conv *c, const char *key, bool dflt) {
    yaml_node_t *n = get(c, key);
    if (!n || is_null(n)) return dflt; /* None: falsy in transformers' checks, as the defaults here are */
    int b = yaml_bool(n);
    if (b < 0)
        sd_die(at_key(c, key), "key '%s': expected true or false, found %s%s%s", key,
               n->type == YAML_SCALAR_NODE ? "\"" : "", n->type == YAML_SCALAR_NODE ? sval(n) : kind_name(n),
               n->type == YAML_SCALAR_NODE ? "\"" : "");
    return b == 1;
}

/* a string value; NULL when absent or null */
static const char *str(Conv *c, const char *key) {
    yaml_node_t *n = get(c, key);
    if (!n || is_null(n)) return NULL;
    if (n->type != YAML_SCALAR_NODE) sd_die(at_key(c, key), "key '%s': expected a string, found %s", key, kind_name(n));
    return sval(n);
}

/* a scalar for the output: plain where YAML and the config read it back as the same string, else double-quoted */
static void put_scalar(Buf *b, const char *s) {
    bool plain = *s && (isalnum((unsigned char)*s) || strchr("_./", *s));
    for (const char *p = s; plain && *p; p++)
        plain = isalnum((unsigned char)*p) || strchr("_./@+~-", *p);
    static const char *words[] = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"};
    for (size_t i = 0; plain && i < sizeof words / sizeof words[0]; i++) plain = strcasecmp(s, words[i]) != 0;
    if (plain) {
        char *end;
        (void)strtod(s, &end);
        plain = *end != 0; /* a number-looking name is quoted: it is a name */
    }
    if (plain) {
        bput(b, "%s", s);
        return;
    }
    bput(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') bput(b, "\\%c", *p);
        else if (*p == '\n') bput(b, "\\n");
        else if (*p == '\t') bput(b, "\\t");
        else if ((unsigned char)*p < 0x20) bput(b, "\\x%02x", (unsigned char)*p);
        else bput(b, "%c", *p);
    }
    bput(b, "\"");
}

/* the shortest %.Ng that reads back as v (computed values: a ratio min_lr / lr) */
static void put_double(Buf *b, double v) {
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    bput(b, "%s%s", t, strpbrk(t, ".eEn") ? "" : ".0");
}

/* a comment's text on one line: a recipe value with a line break or a control character would otherwise end the
 * comment and put the rest into the YAML (in place; returns s) */
static char *one_line(char *s) {
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    return s;
}

/* "  key: VALUE" padded to COMMENT_COL, then "# comment"; VALUE is what the caller put in v */
#define COMMENT_COL 44
SD_PRINTF(4, 5) static void line(Conv *c, const char *key, const Buf *v, const char *fmt, ...) {
    size_t start = c->out.n;
    bput(&c->out, "  %s: %s", key, v->s ? v->s : "");
    size_t w = c->out.n - start;
    bput(&c->out, "%*s# ", w < COMMENT_COL ? (int)(COMMENT_COL - w) : 1, "");
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bput(&c->out, "%s\n", one_line(msg));
}
/* line() with a plain text value */
SD_PRINTF(4, 5) static void line_s(Conv *c, const char *key, const char *value, const char *fmt, ...) {
    Buf v = {0};
    bput(&v, "%s", value);
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    line(c, key, &v, "%s", msg);
    free(v.s);
}
/* line() with a path or name, quoted where needed */
SD_PRINTF(4, 5) static void line_q(Conv *c, const char *key, const char *value, const char *fmt, ...) {
    Buf v = {0};
    put_scalar(&v, value);
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    line(c, key, &v, "%s", msg);
    free(v.s);
}
/* "where a value came from": the recipe key, or that it is the reference's default */
static const char *src(Conv *c, const char *key, const char *dflt_owner) {
    static char buf[4][200];
    static int k;
    char *b = buf[k++ & 3];
    yaml_node_t *n = get(c, key);
    if (n && !is_null(n)) snprintf(b, sizeof buf[0], "%s", key);
    else snprintf(b, sizeof buf[0], "%s (%s%s default)", key, dflt_owner,
                  dflt_owner[strlen(dflt_owner) - 1] == 's' ? "'" : "'s");
    return b;
}

/* a line of the closing "not needed" block: the recipe's key and value, and why simpo_dist does without it */
static void note(Conv *c, const char *key, const char *why) {
    int i = find_pair(c, key);
    if (i < 0) return; /* only the recipe's own keys are listed */
    char *v = flow_str(c, node(c, c->pairs[i].value));
    Buf b = {0};
    bput(&b, "#   %s: %s -- %s\n", key, v, why);
    free(v);
    free(c->note_of[i]);
    c->note_of[i] = b.s;
}

/* ---- the sections ---- */
/* what more than one section needs */
typedef struct {
    int processes;            /* data-parallel processes the recipe ran on */
    int zero;                 /* parallel.zero of the accelerate config's sharding (DeepSpeed's zero_stage, FSDP's
                               * sharding strategy) */
    char zero_from[400];      /* where zero came from, for its comment */
    const char *output_dir;   /* checkpoint.dir, and where export_hf and tensorboard_dir go */
    long logging_steps;       /* log.every_steps, and eval_steps' default */
    const char *train_split;  /* dataset_splits' training split */
    const char *test_split;   /* dataset_splits' test split; NULL: none */
    yaml_node_t *mixer;       /* dataset_mixer, checked */
} Run;

static void conv_model(Conv *c) {
    const char *name = str(c, "model_name_or_path");
    if (!name || !*name)
        sd_die(get(c, "model_name_or_path") ? at_key(c, "model_name_or_path") : c->file,
               "key 'model_name_or_path': the recipe names no model (run_simpo.py trains model_name_or_path)");
    const char *rev = str(c, "model_revision");
    bput(&c->out, "model:\n");
    if (rev && strcmp(rev, "main")) {
        if (name[0] == '/' || name[0] == '.' || name[0] == '~') {
            line_q(c, "init", name, "model_name_or_path (model_revision %s: a local directory has no revisions)", rev);
        } else {
            size_t n = strlen(name) + strlen(rev) + 2;
            char *id = sd_alloc(n, "model name");
            snprintf(id, n, "%s@%s", name, rev);
            line_q(c, "init", id, "model_name_or_path @ model_revision");
            free(id);
        }
    } else {
        line_q(c, "init", name, "model_name_or_path%s", rev ? " (model_revision main)" : "");
    }

    bool bf16 = flag(c, "bf16", false);
    const char *td = str(c, "torch_dtype");
    if (td && !in_list(td, "auto|bfloat16|float16|float32"))
        sd_die(at_key(c, "torch_dtype"), "key 'torch_dtype': expected auto, bfloat16, float16 or float32, found \"%s\"",
               td);
    if (td && !strcmp(td, "float16"))
        sd_die(at_key(c, "torch_dtype"), "key 'torch_dtype': float16 weights: simpo_dist keeps fp32 master weights "
               "and trains in fp32 or bf16 mixed precision (bf16: true)");
    if (td && !strcmp(td, "bfloat16") && !bf16)
        sd_die(at_key(c, "torch_dtype"), "key 'torch_dtype': bfloat16 without bf16: true trains the bf16 weights "
               "themselves (pure bf16); simpo_dist keeps fp32 master weights: set bf16: true for its mixed precision");
    if (bf16) line_s(c, "dtype", "bf16", "bf16: true (bf16 matmuls over fp32 master weights, as torch's autocast)");
    else line_s(c, "dtype", "fp32", "%s", get(c, "bf16") ? "bf16: false" : "bf16 (TrainingArguments' default: false)");
    if (get(c, "torch_dtype"))
        note(c, "torch_dtype", td && !strcmp(td, "auto") && !bf16
                                   ? "the dtype weights load in; simpo_dist trains fp32 weights (a bf16 checkpoint "
                                     "would train in pure bf16 in the reference: bf16: true is the closer run)"
                                   : "the dtype weights load in; simpo_dist keeps fp32 master weights (model.dtype)");
}

/* alignment-handbook's get_datasets: a split whose name contains "train" goes to the training set, else one
 * containing "test" to the evaluation set, else it is an error */
static void conv_splits(Conv *c, Run *r) {
    yaml_node_t *n = get(c, "dataset_splits");
    r->train_split = "train";
    r->test_split = "test";
    if (!n || is_null(n)) return;
    if (n->type != YAML_SEQUENCE_NODE)
        sd_die(at_key(c, "dataset_splits"), "key 'dataset_splits': expected a list of split names, found %s",
               n->type == YAML_SCALAR_NODE ? "one name (write [train, test])" : kind_name(n));
    r->train_split = r->test_split = NULL;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *s = node(c, *it);
        if (s->type != YAML_SCALAR_NODE || is_null(s) || !*sval(s))
            sd_die(at(c, s), "key 'dataset_splits': expected split names, found %s", kind_name(s));
        const char *name = sval(s);
        if (strstr(name, "train")) {
            if (r->train_split)
                sd_die(at(c, s), "key 'dataset_splits': more than one training split ('%s' and '%s'); simpo_dist "
                       "trains on one split of each dataset (data.train_split)", r->train_split, name);
            r->train_split = name;
        } else if (strstr(name, "test")) {
            if (r->test_split)
                sd_die(at(c, s), "key 'dataset_splits': more than one test split ('%s' and '%s'); simpo_dist "
                       "evaluates one split of each dataset (data.eval_split)", r->test_split, name);
            r->test_split = name;
        } else {
            sd_die(at(c, s), "key 'dataset_splits': split '%s' contains neither \"train\" nor \"test\" "
                   "(alignment-handbook's get_datasets rejects it)", name);
        }
    }
    if (!r->train_split)
        sd_die(at_key(c, "dataset_splits"), "key 'dataset_splits': no training split (a name containing \"train\")");
}

/* dataset_mixer: a mapping of dataset names to fractions in (0, 1] */
static void conv_mixer(Conv *c, Run *r) {
    yaml_node_t *n = get(c, "dataset_mixer");
    if (!n || is_null(n))
        sd_die(n ? at_key(c, "dataset_mixer") : c->file, "key 'dataset_mixer': the recipe has none (alignment-handbook "
               "reads the datasets to train on from it)");
    if (n->type != YAML_MAPPING_NODE || n->data.mapping.pairs.start == n->data.mapping.pairs.top)
        sd_die(at_key(c, "dataset_mixer"), "key 'dataset_mixer': expected a mapping of dataset names to fractions "
               "(e.g. {princeton-nlp/llama3-ultrafeedback-armorm: 1.0}), found %s",
               n->type == YAML_MAPPING_NODE ? "an empty mapping" : n->type == YAML_SCALAR_NODE ? "a single value"
                                                                                               : kind_name(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        if (k->type != YAML_SCALAR_NODE || is_null(k) || !*sval(k))
            sd_die(at(c, k), "key 'dataset_mixer': expected a dataset name, found %s", kind_name(k));
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
            if (!strcmp(sval(node(c, q->key)), sval(k)))
                sd_die(at(c, k), "key 'dataset_mixer': dataset '%s' is named twice", sval(k));
        char what[300];
        snprintf(what, sizeof what, "dataset_mixer' entry '%s", sval(k)); /* key 'dataset_mixer' entry 'NAME': ... */
        num_node(v, what, at(c, v), "0", (NumSpec){false, false, 0, 1, true, false});
    }
    r->mixer = n;

    yaml_node_t *cfg = get(c, "dataset_configs");
    if (cfg && !is_null(cfg)) {
        if (cfg->type != YAML_SEQUENCE_NODE)
            sd_die(at_key(c, "dataset_configs"), "key 'dataset_configs': expected a list (one configuration per "
                   "dataset of dataset_mixer), found %s", cfg->type == YAML_SCALAR_NODE ? "one value" : kind_name(cfg));
        for (yaml_node_item_t *it = cfg->data.sequence.items.start; it < cfg->data.sequence.items.top; it++) {
            yaml_node_t *s = node(c, *it);
            if (!is_null(s) && !(s->type == YAML_SCALAR_NODE && !strcmp(sval(s), "default")))
                sd_die(at(c, s), "key 'dataset_configs': configuration '%s': simpo_dist reads a dataset's default "
                       "configuration only", s->type == YAML_SCALAR_NODE ? sval(s) : kind_name(s));
        }
        note(c, "dataset_configs", "the datasets' default configurations, which simpo_dist reads");
    }
}

/* data.train / data.eval: the name alone for one dataset taken whole, else a mapping of the names to their
 * fractions (eval: each at 1.0, the whole test split, as get_datasets takes it) */
static void put_datasets(Conv *c, const yaml_node_t *mixer, Buf *v, bool eval) {
    yaml_node_pair_t *p0 = mixer->data.mapping.pairs.start, *top = mixer->data.mapping.pairs.top;
    if (top - p0 == 1 && (eval || strtod(sval(node(c, p0->value)), NULL) == 1.0)) {
        put_scalar(v, sval(node(c, p0->key)));
        return;
    }
    bput(v, "{");
    for (yaml_node_pair_t *p = p0; p < top; p++) {
        if (p > p0) bput(v, ", ");
        put_scalar(v, sval(node(c, p->key)));
        bput(v, ": %s", eval ? "1.0" : sval(node(c, p->value)));
    }
    bput(v, "}");
}

typedef struct {
    bool on;          /* data.eval written */
    long every;       /* train.eval_every_steps */
    char why[300];    /* the comment of eval_every_steps */
    char data_why[300];
} Eval;

/* transformers evaluates during training by eval_strategy (steps: every eval_steps, by default logging_steps;
 * epoch: after each epoch), and run_simpo.py once more after training when do_eval (which eval_strategy steps or
 * epoch turns on) */
static Eval conv_eval(Conv *c, const Run *r) {
    Eval e = {0};
    const char *skey = get(c, "eval_strategy") ? "eval_strategy" : "evaluation_strategy";
    if (get(c, "eval_strategy") && get(c, "evaluation_strategy"))
        sd_die(at_key(c, "evaluation_strategy"), "key 'evaluation_strategy': give one of eval_strategy and "
               "evaluation_strategy (its older name)");
    const char *strategy = str(c, skey);
    if (!strategy) strategy = "no";
    if (!in_list(strategy, "no|steps|epoch"))
        sd_die(at_key(c, skey), "key '%s': expected no, steps or epoch, found \"%s\"", skey, strategy);
    bool do_eval = flag(c, "do_eval", false);
    bool given = false;
    long every = steps(c, "eval_steps", r->logging_steps, &given);
    bool want = do_eval || strcmp(strategy, "no");
    bool on_start = flag(c, "eval_on_start", false);
    if (!want) {
        note(c, "do_eval", "evaluation is off (do_eval false, eval_strategy no)");
        note(c, skey, "evaluation is off (do_eval false, eval_strategy no)");
        if (given) note(c, "eval_steps", "evaluation is off (do_eval false, eval_strategy no)");
        if (on_start) note(c, "eval_on_start", "evaluation is off (do_eval false, eval_strategy no)");
        return e;
    }
    if (!r->test_split) {
        note(c, "do_eval", "dataset_splits has no test split to evaluate");
        note(c, skey, "dataset_splits has no test split to evaluate");
        note(c, "eval_steps", "dataset_splits has no test split to evaluate");
        return e;
    }
    e.on = true;
    if (!do_eval) note(c, "do_eval", "eval_strategy evaluates, and transformers then sets do_eval");
    snprintf(e.data_why, sizeof e.data_why, "dataset_splits' %s split of each dataset, whole (%s%s%s)", r->test_split,
             do_eval ? "do_eval" : "", do_eval && strcmp(strategy, "no") ? ", " : "",
             strcmp(strategy, "no") ? skey : "");
    if (!strcmp(strategy, "steps")) {
        if (every < 1) sd_die(at_key(c, "eval_steps"), "key 'eval_steps': expected at least 1, found %ld", every);
        e.every = every;
        if (given) snprintf(e.why, sizeof e.why, "eval_steps (%s steps); and after the last step", skey);
        else snprintf(e.why, sizeof e.why, "eval_steps unset: logging_steps, as transformers (%s steps); and after "
                      "the last step", skey);
    } else if (!strcmp(strategy, "epoch")) {
        snprintf(e.why, sizeof e.why, "%s epoch: simpo_dist evaluates after the last step (every N steps: set the "
                 "steps of an epoch)", skey);
        if (given) note(c, "eval_steps", "eval_strategy is epoch");
    } else {
        snprintf(e.why, sizeof e.why, "do_eval with %s no: run_simpo.py evaluates once, after training", skey);
        if (given) note(c, "eval_steps", "eval_strategy is no");
    }
    return e;
}

static void conv_data(Conv *c, Run *r, const Eval *ev) {
    bput(&c->out, "data:\n");
    Buf v = {0};
    put_datasets(c, r->mixer, &v, false);
    bool single = r->mixer->data.mapping.pairs.top - r->mixer->data.mapping.pairs.start == 1;
    line(c, "train", &v, "dataset_mixer%s", single && v.s[0] != '{' ? "" : ": the first fraction of each, joined");
    free(v.s);
    bool splits = get(c, "dataset_splits") && !is_null(get(c, "dataset_splits"));
    line_q(c, "train_split", r->train_split, "dataset_splits%s: the one containing \"train\"",
           splits ? "" : " (DataArguments' default [train, test])");
    if (ev->on) {
        Buf e = {0};
        put_datasets(c, r->mixer, &e, true);
        line(c, "eval", &e, "%s", ev->data_why);
        free(e.s);
    }
    if (r->test_split)
        line_q(c, "eval_split", r->test_split, "dataset_splits%s: the one containing \"test\"%s",
               splits ? "" : " (DataArguments' default [train, test])", ev->on ? "" : " (no evaluation)");
    else line_s(c, "eval_split", "test", "dataset_splits has no test split: no evaluation (simpo_dist's default)");

    const char *tok = str(c, "tokenizer_name_or_path");
    if (tok) line_q(c, "tokenizer", tok, "tokenizer_name_or_path");

    /* run_simpo.py: a model name containing "mistral" renders with its own Mistral template, whatever
     * chat_template says; else chat_template (DataArguments), else the tokenizer's */
    const char *model = str(c, "model_name_or_path");
    bool mistral = false;
    for (const char *p = model; *p && !mistral; p++) mistral = !strncasecmp(p, "mistral", 7);
    const char *tmpl = str(c, "chat_template");
    bool insert = flag(c, "auto_insert_empty_system_msg", true);
    if (mistral) {
        line_s(c, "chat_template", "mistral", "model_name_or_path contains \"mistral\": run_simpo.py's Mistral template");
        if (tmpl) note(c, "chat_template", "run_simpo.py replaces it with its Mistral template (the model name "
                                           "contains \"mistral\")");
    } else if (tmpl) {
        char where[700];
        snprintf(where, sizeof where, "%s: key 'chat_template'", at_key(c, "chat_template"));
        c->ct = chat_template_from_text(tmpl, NULL, NULL, where);
        ChatFamily f = c->ct->family;
        line_s(c, "chat_template", chat_family_name(f), "chat_template (%s): the Jinja template is %s's",
               at_key(c, "chat_template"), chat_family_name(f));
    } else {
        bput(&c->out, "  # chat_template: the recipe has none: the tokenizer's (data.chat_template auto)\n");
    }
    /* run_simpo.py's texts and SimPOTrainer.tokenize_row's ids (data.chat_convention simpo_reference), except where
     * the reference itself fails: Llama 2's template rejects the lone assistant message it renders a response as */
    bool llama2 = !mistral && c->ct && c->ct->family == CHAT_LLAMA2;
    line_s(c, "chat_convention", llama2 ? "trl" : "simpo_reference", "%s",
           llama2 ? "chat_template is Llama 2's, which rejects run_simpo.py's lone responses: TRL's convention"
                  : "run_simpo.py + SimPOTrainer: the prompt without the generation prompt, each response the "
                    "template over its message (with Llama 3 the assistant header), BOS and EOS ids added");
    /* alignment-handbook's maybe_insert_system_message, as data.insert_empty_system renders it (an empty system turn
     * where the template mentions one; chat_template.h chat_wants_empty_system) */
    line_s(c, "insert_empty_system", insert ? "true" : "false", "%s",
           get(c, "auto_insert_empty_system_msg") ? "auto_insert_empty_system_msg"
                                                  : "auto_insert_empty_system_msg (DataArguments' default)");

    Num ml = num(c, "max_length", "512", (NumSpec){true, true, 2, 1048576, false, false});
    Num mp = num(c, "max_prompt_length", "128", (NumSpec){true, true, 1, 1048576, false, false});
    if (mp.v >= ml.v)
        sd_die(mp.given ? at_key(c, "max_prompt_length") : at_key(c, "max_length"),
               "key 'max_prompt_length': %s is not below max_length %s (simpo_dist keeps at least one response token "
               "of an over-long pair)", mp.text, ml.text);
    line_s(c, "max_length", ml.text, "%s", ml.given ? "max_length" : "max_length unset: SimPOTrainer warns and uses 512");
    line_s(c, "max_prompt_length", mp.text, "%s",
           mp.given ? "max_prompt_length" : "max_prompt_length unset: SimPOTrainer warns and uses 128");
}

static void conv_loss(Conv *c) {
    bput(&c->out, "loss:\n");
    const char *lt = str(c, "loss_type");
    if (lt && !in_list(lt, "sigmoid|hinge"))
        sd_die(at_key(c, "loss_type"), "key 'loss_type': '%s' is not one of SimPOConfig's loss types (sigmoid, hinge)",
               lt);
    bool hinge = lt && !strcmp(lt, "hinge");
    line_s(c, "type", hinge ? "simpo_hinge" : "simpo", "%s%s", src(c, "loss_type", "SimPOConfig"),
           hinge ? ": hinge" : ": sigmoid");
    Num beta = flt(c, "beta", "2.0", 0, true, ANY, false);
    line_s(c, "beta", beta.text, "%s", src(c, "beta", "SimPOConfig"));
    Num g = flt(c, "gamma_beta_ratio", "0.25", 0, false, ANY, false);
    line_s(c, "gamma_beta_ratio", g.text, "%s", src(c, "gamma_beta_ratio", "SimPOConfig"));
    Num sft = flt(c, "sft_weight", "0.0", 0, false, ANY, false);
    line_s(c, "sft_weight", sft.text, "%s", src(c, "sft_weight", "SimPOConfig"));
    Num ls = flt(c, "label_smoothing", "0.0", 0, false, 0.5, true);
    line_s(c, "label_smoothing", ls.text, "%s%s", src(c, "label_smoothing", "SimPOConfig"),
           hinge && ls.v > 0 ? " (the hinge loss ignores it, in both)" : "");
}

/* the lr_scheduler_kwargs entry `name`, NULL when absent; every entry must be one of `known` ('|'-separated) */
static yaml_node_t *kwarg(Conv *c, const char *name) {
    yaml_node_t *kw = get(c, "lr_scheduler_kwargs");
    if (!kw || kw->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = kw->data.mapping.pairs.start; p < kw->data.mapping.pairs.top; p++)
        if (!strcmp(sval(node(c, p->key)), name)) return node(c, p->value);
    return NULL;
}
static void kwargs_known(Conv *c, const char *schedule, const char *known) {
    yaml_node_t *kw = get(c, "lr_scheduler_kwargs");
    if (!kw || is_null(kw)) return;
    if (kw->type != YAML_MAPPING_NODE)
        sd_die(at_key(c, "lr_scheduler_kwargs"), "key 'lr_scheduler_kwargs': expected a mapping, found %s",
               kw->type == YAML_SCALAR_NODE ? "a single value" : kind_name(kw));
    for (yaml_node_pair_t *p = kw->data.mapping.pairs.start; p < kw->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        if (k->type != YAML_SCALAR_NODE || !in_list(sval(k), known))
            sd_die(at(c, k), "key 'lr_scheduler_kwargs': '%s' is not an argument of the %s schedule that convert "
                   "knows%s%s", k->type == YAML_SCALAR_NODE ? sval(k) : "?", schedule, *known ? " (" : "",
                   *known ? known : "");
    }
}
/* a kwarg's number, checked as num() checks a key */
static Num kw_num(Conv *c, const char *name, const char *dflt, NumSpec sp) {
    yaml_node_t *n = kwarg(c, name);
    char key[80];
    snprintf(key, sizeof key, "lr_scheduler_kwargs.%s", name);
    return num_node(n, key, n ? at(c, n) : c->file, dflt, sp);
}
/* num_cycles 0.5 is the half cosine simpo_dist's cosine is; other counts are not */
static void kw_half_cosine(Conv *c) {
    yaml_node_t *n = kwarg(c, "num_cycles");
    Num nc = kw_num(c, "num_cycles", "0.5", (NumSpec){false, false, ANY, ANY, false, false});
    if (nc.v != 0.5)
        sd_die(at(c, n), "key 'lr_scheduler_kwargs.num_cycles': %s cosine cycles; simpo_dist's cosine is one half "
               "cycle (0.5)", nc.text);
}

static void conv_optim(Conv *c) {
    bput(&c->out, "optim:\n");
    Num lr = flt(c, "learning_rate", "5.0e-5", 0, true, ANY, false);
    line_s(c, "lr", lr.text, "%s", src(c, "learning_rate", "TrainingArguments"));
    Num b1 = flt(c, "adam_beta1", "0.9", 0, false, 1, true);
    Num b2 = flt(c, "adam_beta2", "0.999", 0, false, 1, true);
    char betas[160];
    snprintf(betas, sizeof betas, "[%s, %s]", b1.text, b2.text);
    if (!b1.given && !b2.given) line_s(c, "betas", betas, "adam_beta1, adam_beta2 (TrainingArguments' defaults)");
    else line_s(c, "betas", betas, "%s, %s", src(c, "adam_beta1", "TrainingArguments"),
                src(c, "adam_beta2", "TrainingArguments"));
    Num eps = flt(c, "adam_epsilon", "1.0e-8", 0, true, ANY, false);
    line_s(c, "eps", eps.text, "%s", src(c, "adam_epsilon", "TrainingArguments"));
    Num wd = flt(c, "weight_decay", "0.0", 0, false, ANY, false);
    line_s(c, "weight_decay", wd.text, "%s%s", src(c, "weight_decay", "TrainingArguments"),
           wd.v > 0 ? " (not on the norms' gains, as transformers)" : "");
    yaml_node_t *mg = get(c, "max_grad_norm");
    if (mg && is_null(mg)) line_s(c, "max_grad_norm", "0.0", "max_grad_norm: null (no clipping)");
    else {
        Num g = flt(c, "max_grad_norm", "1.0", 0, false, ANY, false);
        line_s(c, "max_grad_norm", g.text, "%s%s", src(c, "max_grad_norm", "TrainingArguments"),
               g.v == 0 ? " (no clipping)" : "");
    }

    /* transformers' schedules after a linear warmup from 0, each the same function of the step as simpo_dist's */
    const char *st = str(c, "lr_scheduler_type");
    const char *sched_src = src(c, "lr_scheduler_type", "TrainingArguments");
    if (!st) st = "linear";
    bool no_warmup = false;
    char min_ratio[64] = "0.0", min_why[200];
    snprintf(min_why, sizeof min_why, "lr_scheduler_type %s: decays to 0", st);
    if (!strcmp(st, "linear") || !strcmp(st, "cosine")) {
        kwargs_known(c, st, !strcmp(st, "cosine") ? "num_cycles" : "");
        if (!strcmp(st, "cosine")) kw_half_cosine(c);
        line_s(c, "schedule", st, "%s", sched_src);
    } else if (!strcmp(st, "constant") || !strcmp(st, "constant_with_warmup")) {
        kwargs_known(c, st, "");
        no_warmup = !strcmp(st, "constant");
        line_s(c, "schedule", "constant", "%s%s", sched_src, no_warmup ? "" : " (simpo_dist's constant warms up too)");
        snprintf(min_why, sizeof min_why, "lr_scheduler_type %s: no decay", st);
    } else if (!strcmp(st, "cosine_with_min_lr")) {
        kwargs_known(c, st, "min_lr_rate|min_lr|num_cycles");
        kw_half_cosine(c);
        yaml_node_t *rate = kwarg(c, "min_lr_rate"), *abs_min = kwarg(c, "min_lr");
        if (!rate == !abs_min)
            sd_die(at_key(c, "lr_scheduler_kwargs"), "key 'lr_scheduler_kwargs': cosine_with_min_lr needs one of "
                   "min_lr_rate and min_lr (as transformers)");
        line_s(c, "schedule", "cosine", "%s: cosine down to min_lr_ratio", sched_src);
        if (rate) {
            Num m = kw_num(c, "min_lr_rate", "0", (NumSpec){false, false, 0, 1, false, false});
            snprintf(min_ratio, sizeof min_ratio, "%s", m.text);
            snprintf(min_why, sizeof min_why, "lr_scheduler_kwargs.min_lr_rate");
        } else {
            Num m = kw_num(c, "min_lr", "0", (NumSpec){false, false, 0, lr.v, false, false});
            Buf t = {0};
            put_double(&t, m.v / lr.v);
            snprintf(min_ratio, sizeof min_ratio, "%s", t.s);
            free(t.s);
            snprintf(min_why, sizeof min_why, "lr_scheduler_kwargs.min_lr %s / learning_rate %s", m.text, lr.text);
        }
    } else if (!strcmp(st, "warmup_stable_decay")) {
        /* transformers' get_wsd_schedule: warmup, the peak until the last num_decay_steps, then the decay down to
         * min_lr_ratio; simpo_dist's wsd is that with the stable phase whatever the run's length leaves */
        kwargs_known(c, st, "num_decay_steps|num_stable_steps|warmup_type|decay_type|min_lr_ratio|num_cycles");
        yaml_node_t *nd = kwarg(c, "num_decay_steps");
        if (!nd)
            sd_die(at_key(c, "lr_scheduler_kwargs"), "key 'lr_scheduler_kwargs': warmup_stable_decay needs "
                   "num_decay_steps (transformers' get_wsd_schedule requires it)");
        if (kwarg(c, "num_stable_steps") && !is_null(kwarg(c, "num_stable_steps")))
            sd_die(at(c, kwarg(c, "num_stable_steps")), "key 'lr_scheduler_kwargs.num_stable_steps': simpo_dist's "
                   "wsd keeps the peak for the steps warmup and decay leave (give num_decay_steps only)");
        yaml_node_t *wt = kwarg(c, "warmup_type");
        if (wt && !(wt->type == YAML_SCALAR_NODE && !strcmp(sval(wt), "linear")))
            sd_die(at(c, wt), "key 'lr_scheduler_kwargs.warmup_type': simpo_dist's warmup is linear");
        yaml_node_t *dt = kwarg(c, "decay_type");
        const char *decay = "cosine";
        if (dt) {
            if (dt->type != YAML_SCALAR_NODE || !in_list(sval(dt), "cosine|linear|1-sqrt"))
                sd_die(at(c, dt), "key 'lr_scheduler_kwargs.decay_type': expected cosine, linear or 1-sqrt");
            decay = sval(dt);
        }
        if (!strcmp(decay, "cosine")) kw_half_cosine(c);
        else if (kwarg(c, "num_cycles")) kw_half_cosine(c);
        Num d = kw_num(c, "num_decay_steps", "0", (NumSpec){true, false, 1, ANY, false, false});
        Num m = kw_num(c, "min_lr_ratio", "0.0", (NumSpec){false, false, 0, 1, false, false});
        line_s(c, "schedule", "wsd", "%s: warmup-stable-decay", sched_src);
        line_s(c, "decay_steps", d.text, "lr_scheduler_kwargs.num_decay_steps");
        line_s(c, "decay_type", decay, "lr_scheduler_kwargs.decay_type%s", dt ? "" : " (get_wsd_schedule's default)");
        snprintf(min_ratio, sizeof min_ratio, "%s", m.text);
        snprintf(min_why, sizeof min_why, "lr_scheduler_kwargs.min_lr_ratio%s", m.given ? "" : " (default 0)");
    } else {
        sd_die(at_key(c, "lr_scheduler_type"), "key 'lr_scheduler_type': '%s' has no simpo_dist schedule (convert "
               "knows linear, cosine, constant, constant_with_warmup, cosine_with_min_lr, warmup_stable_decay)", st);
    }
    if (strcmp(st, "cosine_with_min_lr") && strcmp(st, "warmup_stable_decay") && get(c, "lr_scheduler_kwargs") &&
        !is_null(get(c, "lr_scheduler_kwargs")))
        note(c, "lr_scheduler_kwargs", "the schedule's defaults (as written above)");

    /* warmup: warmup_steps > 0 wins over warmup_ratio, as transformers' get_warmup_steps (and simpo_dist's);
     * newer transformers also take a warmup_steps below 1 as a ratio */
    Num ws = num(c, "warmup_steps", "0", (NumSpec){false, false, 0, ANY, false, false});
    Num wr = flt(c, "warmup_ratio", "0.0", 0, false, 1, true);
    char steps_text[64], ratio_text[64];
    snprintf(steps_text, sizeof steps_text, "%s", ws.text);
    snprintf(ratio_text, sizeof ratio_text, "%s", wr.text);
    const char *ratio_why = src(c, "warmup_ratio", "TrainingArguments");
    if (ws.v > 0 && ws.v < 1) {
        snprintf(ratio_text, sizeof ratio_text, "%s", ws.text);
        snprintf(steps_text, sizeof steps_text, "0");
        ratio_why = "warmup_steps below 1: a ratio, as newer transformers";
    } else if (ws.v != floor(ws.v) || ws.v > 2147483647.0) {
        sd_die(at_key(c, "warmup_steps"), "key 'warmup_steps': expected a whole number of steps (or a ratio below 1), "
               "found %s", ws.text);
    }
    if (no_warmup) {
        line_s(c, "warmup_steps", "0", "lr_scheduler_type constant has no warmup (constant_with_warmup has)");
        line_s(c, "warmup_ratio", "0.0", "lr_scheduler_type constant has no warmup (constant_with_warmup has)");
        note(c, "warmup_steps", "lr_scheduler_type constant ignores warmup (constant_with_warmup uses it)");
        note(c, "warmup_ratio", "lr_scheduler_type constant ignores warmup (constant_with_warmup uses it)");
    } else {
        line_s(c, "warmup_steps", steps_text, "%s", src(c, "warmup_steps", "TrainingArguments"));
        line_s(c, "warmup_ratio", ratio_text, "%s%s", ratio_why,
               ws.v >= 1 && wr.v > 0 ? " (unused: warmup_steps > 0 wins, as transformers)" : "");
    }
    line_s(c, "min_lr_ratio", min_ratio, "%s", min_why);

    const char *opt = str(c, "optim");
    if (opt && !in_list(opt, "adamw_torch|adamw_torch_fused|adamw_hf|adamw_apex_fused"))
        sd_die(at_key(c, "optim"), "key 'optim': '%s': simpo_dist's optimizer is AdamW (adamw_torch, "
               "adamw_torch_fused, adamw_hf, adamw_apex_fused)", opt);
    bput(&c->out, "  # optim: %s%s: AdamW, simpo_dist's optimizer (no key to set)\n", opt ? opt : "adamw_torch",
         opt ? "" : " (TrainingArguments' default)");
}

static void conv_train(Conv *c, const Run *r, const Eval *ev) {
    bput(&c->out, "train:\n");
    /* transformers' train_batch_size: the deprecated per_gpu_train_batch_size, where set, else the per-device one */
    bool per_gpu = get(c, "per_gpu_train_batch_size") && !is_null(get(c, "per_gpu_train_batch_size"));
    const char *micro_key = per_gpu ? "per_gpu_train_batch_size" : "per_device_train_batch_size";
    long micro = integer(c, micro_key, 8, 1, false, NULL);
    if (per_gpu && get(c, "per_device_train_batch_size"))
        note(c, "per_device_train_batch_size", "per_gpu_train_batch_size wins, as transformers");
    long accum = integer(c, "gradient_accumulation_steps", 1, 1, false, NULL);
    long global = micro * accum * r->processes; /* each at most 2^31: no overflow in 64 bits */
    if (global > INT_MAX)
        sd_die(at_key(c, micro_key), "key '%s': %ld x %ld x %d processes = %ld pairs per step is more than "
               "simpo_dist's train.global_batch_pairs holds", micro_key, micro, accum, r->processes, global);
    char t[48];
    snprintf(t, sizeof t, "%ld", global);
    line_s(c, "global_batch_pairs", t, "%s %ld x gradient_accumulation_steps %ld x %d process%s", micro_key, micro,
           accum, r->processes, r->processes == 1 ? "" : "es");
    snprintf(t, sizeof t, "%ld", micro);
    line_s(c, "micro_batch_pairs", t, "%s%s", src(c, micro_key, "TrainingArguments"), " (pairs per forward)");
    Num ep = flt(c, "num_train_epochs", "3.0", 0, true, ANY, false);
    line_s(c, "epochs", ep.text, "%s", src(c, "num_train_epochs", "TrainingArguments"));
    long ms = integer(c, "max_steps", -1, LONG_MIN / 2, false, NULL);
    snprintf(t, sizeof t, "%ld", ms > 0 ? ms : 0);
    line_s(c, "max_steps", t, "%s%s", src(c, "max_steps", "TrainingArguments"),
           ms > 0 ? " (wins over epochs, as transformers)" : ": none, epochs decide");
    bool ds_given = false;
    long ds = integer(c, "data_seed", 0, 0, true, &ds_given);
    long seed = integer(c, "seed", 42, 0, false, NULL);
    snprintf(t, sizeof t, "%ld", ds_given ? ds : seed);
    if (ds_given) {
        line_s(c, "seed", t, "data_seed (the data order's seed, as transformers' sampler)");
        note(c, "seed", "data_seed seeds the data order; the weights are the model's own");
    } else {
        line_s(c, "seed", t, "%s", src(c, "seed", "TrainingArguments"));
    }
    if (ev->on) {
        snprintf(t, sizeof t, "%ld", ev->every);
        line_s(c, "eval_every_steps", t, "%s", ev->why);
        bool on_start = flag(c, "eval_on_start", false);
        line_s(c, "eval_on_start", on_start ? "true" : "false", "%s", src(c, "eval_on_start", "TrainingArguments"));
    }
    yaml_node_t *gc = get(c, "gradient_checkpointing");
    if (gc) {
        bool on = flag(c, "gradient_checkpointing", false);
        bput(&c->out, "  # gradient_checkpointing: %s: simpo_dist's train.recompute (auto by default) recomputes "
             "only what the memory needs\n", on ? "true" : "false");
    }
    yaml_node_t *ac = get(c, "accelerator_config");
    if (ac && !is_null(ac)) {
        if (ac->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = ac->data.mapping.pairs.start; p < ac->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
                if (k->type == YAML_SCALAR_NODE && !strcmp(sval(k), "split_batches") && yaml_bool(v) == 1)
                    sd_die(at(c, k), "key 'accelerator_config.split_batches': true splits one batch over the "
                           "processes: give --processes 1 and the whole batch as per_device_train_batch_size");
            }
            note(c, "accelerator_config", "how accelerate hands out batches (each process its own, as here)");
        } else {
            note(c, "accelerator_config", "a JSON file convert does not read (split_batches: true there splits one "
                                          "batch over the processes)");
        }
    }
}

static void conv_checkpoint(Conv *c, Run *r) {
    bput(&c->out, "checkpoint:\n");
    line_q(c, "dir", r->output_dir, "output_dir (checkpoints, metrics.jsonl; a run resumes from here)");
    const char *ss = str(c, "save_strategy");
    if (!ss) ss = "steps";
    if (!in_list(ss, "no|steps|epoch"))
        sd_die(at_key(c, "save_strategy"), "key 'save_strategy': '%s'%s", ss,
               !strcmp(ss, "best") ? ": keeping the checkpoint with the best eval metric; simpo_dist keeps the newest"
                                   : " is not one of no, steps, epoch");
    bool given = false;
    long every = steps(c, "save_steps", 500, &given);
    char t[48];
    if (!strcmp(ss, "steps")) {
        if (every < 1) sd_die(at_key(c, "save_steps"), "key 'save_steps': expected at least 1, found %ld", every);
        snprintf(t, sizeof t, "%ld", every);
        line_s(c, "every_steps", t, "%s (save_strategy steps)", src(c, "save_steps", "TrainingArguments"));
    } else {
        line_s(c, "every_steps", "0", "save_strategy %s: %s", ss,
               !strcmp(ss, "no") ? "at the end only" : "at the end (every N steps: set the steps of an epoch)");
        if (given) note(c, "save_steps", "save_strategy is not steps");
    }
    yaml_node_t *lim = get(c, "save_total_limit");
    long keep = integer(c, "save_total_limit", 0, LONG_MIN / 2, true, NULL);
    snprintf(t, sizeof t, "%ld", keep > 0 ? keep : 0);
    line_s(c, "keep", t, "%s", lim && !is_null(lim) ? (keep > 0 ? "save_total_limit" : "save_total_limit: keep all")
                                                    : "save_total_limit unset: keep all");
    line_s(c, "final", "true", "run_simpo.py saves the final model");
    size_t n = strlen(r->output_dir) + 4;
    char *hf = sd_alloc(n, "path");
    snprintf(hf, n, "%s%shf", r->output_dir, r->output_dir[strlen(r->output_dir) - 1] == '/' ? "" : "/");
    line_q(c, "export_hf", hf, "output_dir/hf: the reference saves the final model in output_dir itself");
    free(hf);
}

/* parallel.zero: the accelerate config's sharding. Every process stays data-parallel, as under accelerate. */
static void conv_parallel(Conv *c, Run *r) {
    bput(&c->out, "parallel:\n");
    char t[8];
    snprintf(t, sizeof t, "%d", r->zero);
    line_s(c, "zero", t, "%s%s", r->zero_from, r->zero == 3 ? ": moments, gradients and weights sharded" : "");
}

static void conv_log(Conv *c, Run *r) {
    bput(&c->out, "log:\n");
    const char *ls = str(c, "logging_strategy");
    if (ls && !in_list(ls, "no|steps|epoch"))
        sd_die(at_key(c, "logging_strategy"), "key 'logging_strategy': expected no, steps or epoch, found \"%s\"", ls);
    char t[48];
    snprintf(t, sizeof t, "%ld", r->logging_steps);
    line_s(c, "every_steps", t, "%s%s%s", src(c, "logging_steps", "TrainingArguments"),
           ls ? "; logging_strategy " : "", ls ? ls : "");

    /* report_to: a name or a list; tensorboard (and wandb, which `wandb sync --sync-tensorboard` fills from the
     * event files) become log.tensorboard_dir; others have no simpo_dist writer */
    yaml_node_t *rt = get(c, "report_to");
    bool tb = false, wandb = false;
    Buf others = {0};
    if (rt && !is_null(rt)) {
        yaml_node_t *one[1] = {rt};
        yaml_node_t **items = one;
        int n = 1;
        yaml_node_t *list[64];
        if (rt->type == YAML_SEQUENCE_NODE) {
            n = 0;
            for (yaml_node_item_t *it = rt->data.sequence.items.start; it < rt->data.sequence.items.top && n < 64; it++)
                list[n++] = node(c, *it);
            items = list;
        }
        for (int i = 0; i < n; i++) {
            if (items[i]->type != YAML_SCALAR_NODE)
                sd_die(at(c, items[i]), "key 'report_to': expected integration names, found %s", kind_name(items[i]));
            const char *s = sval(items[i]);
            if (!strcmp(s, "all")) tb = wandb = true;
            else if (!strcmp(s, "tensorboard")) tb = true;
            else if (!strcmp(s, "wandb")) wandb = true;
            else if (strcmp(s, "none")) bput(&others, "%s%s", others.n ? ", " : "", s);
        }
    }
    const char *ld = str(c, "logging_dir");
    if (tb || wandb) {
        char *dir;
        if (ld) dir = sd_strdup(ld);
        else {
            size_t n = strlen(r->output_dir) + 6;
            dir = sd_alloc(n, "path");
            snprintf(dir, n, "%s%sruns", r->output_dir, r->output_dir[strlen(r->output_dir) - 1] == '/' ? "" : "/");
        }
        line_q(c, "tensorboard_dir", dir, "report_to %s%s", tb && wandb ? "all" : tb ? "tensorboard" : "wandb",
               ld ? ", logging_dir" : " (output_dir/runs, as transformers' logging_dir)");
        if (wandb) {
            bput(&c->out, "  # report_to wandb: `wandb sync --sync-tensorboard ");
            put_scalar(&c->out, dir);
            bput(&c->out, "` uploads these TensorBoard files to W&B\n");
        }
        free(dir);
    } else if (ld) {
        note(c, "logging_dir", "report_to has no tensorboard");
    }
    if (others.n)
        bput(&c->out, "  # report_to %s: no simpo_dist writer (it writes metrics.jsonl and TensorBoard files)\n",
             one_line(others.s));
    else if (rt && !tb && !wandb)
        note(c, "report_to", "no integrations (simpo_dist writes metrics.jsonl whatever this says)");
    free(others.s);
}

/* the scalar value of key k in mapping node m of c's document, or NULL */
static yaml_node_t *map_get(Conv *c, yaml_node_t *m, const char *k) {
    if (!m || m->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *key = node(c, p->key);
        if (key->type == YAML_SCALAR_NODE && !strcmp(sval(key), k)) return node(c, p->value);
    }
    return NULL;
}

/* The ZeRO stage of an accelerate config's sharding: DeepSpeed's deepspeed_config.zero_stage (0-3), FSDP's
 * fsdp_config.fsdp_sharding_strategy (FULL_SHARD / 1 shards parameters, gradients and optimizer state: 3;
 * SHARD_GRAD_OP / 2: 2; NO_SHARD / 3: 0; HYBRID_SHARD / 4 shards within a node: 3), else 0 (DDP); *what names it. */
static int zero_from_accelerate(Conv *a, const char *path, char *what, size_t cap) {
    yaml_node_t *dt = get(a, "distributed_type");
    const char *t = dt && dt->type == YAML_SCALAR_NODE ? sval(dt) : "";
    if (!strcmp(t, "DEEPSPEED")) {
        yaml_node_t *z = map_get(a, get(a, "deepspeed_config"), "zero_stage");
        if (!z) {
            snprintf(what, cap, "distributed_type DEEPSPEED of %s without deepspeed_config.zero_stage", path);
            return 0;
        }
        const char *v = z->type == YAML_SCALAR_NODE ? sval(z) : "";
        if (strlen(v) != 1 || v[0] < '0' || v[0] > '3')
            sd_die(at(a, z), "key 'deepspeed_config.zero_stage': expected 0, 1, 2 or 3, found \"%s\"", v);
        snprintf(what, cap, "deepspeed_config.zero_stage %s of %s", v, path);
        return v[0] - '0';
    }
    if (!strcmp(t, "FSDP")) {
        yaml_node_t *st = map_get(a, get(a, "fsdp_config"), "fsdp_sharding_strategy");
        const char *v = st && st->type == YAML_SCALAR_NODE ? sval(st) : "FULL_SHARD"; /* accelerate's default */
        int z = !strcmp(v, "FULL_SHARD") || !strcmp(v, "1") || !strcmp(v, "HYBRID_SHARD") || !strcmp(v, "4") ? 3
                : !strcmp(v, "SHARD_GRAD_OP") || !strcmp(v, "2")                                             ? 2
                : !strcmp(v, "NO_SHARD") || !strcmp(v, "3")                                                  ? 0
                                                                                                             : -1;
        if (z < 0)
            sd_die(at(a, st), "key 'fsdp_config.fsdp_sharding_strategy': expected FULL_SHARD, SHARD_GRAD_OP, "
                   "NO_SHARD or HYBRID_SHARD, found \"%s\"", v);
        snprintf(what, cap, "fsdp_sharding_strategy %s of %s", v, path);
        return z;
    }
    snprintf(what, cap, "distributed_type %s of %s: no sharding", *t ? t : "unset", path);
    return 0;
}

/* accelerate's config: num_processes, the processes over all machines; its sharding as a ZeRO stage into *zero */
static int processes_from_accelerate(const char *path, int *zero, char *what, size_t cap) {
    Conv a = {.file = path};
    sd_cleanup_push(conv_free, &a);
    size_t len;
    a.text = sd_read_file(path, &len);
    if (!a.text) sd_die(path, "cannot read the accelerate config: %s", strerror(errno));
    yaml_parser_initialize(&a.parser);
    a.parser_up = 1;
    yaml_parser_set_input_string(&a.parser, (const unsigned char *)a.text, len);
    if (!yaml_parser_load(&a.parser, &a.doc))
        sd_die(path, "invalid YAML at line %zu: %s", a.parser.problem_mark.line + 1,
               a.parser.problem ? a.parser.problem : "syntax error");
    a.doc_up = 1;
    yaml_node_t *root = yaml_document_get_root_node(&a.doc);
    if (!root || root->type != YAML_MAPPING_NODE) sd_die(path, "expected accelerate's config, a mapping");
    a.pairs = root->data.mapping.pairs.start;
    a.npairs = (int)(root->data.mapping.pairs.top - a.pairs);
    for (int i = 0; i < a.npairs; i++)
        if (node(&a, a.pairs[i].key)->type != YAML_SCALAR_NODE) sd_die(path, "expected accelerate's config, keys");
    if (!get(&a, "num_processes"))
        sd_die(path, "key 'num_processes': not in this accelerate config (give --processes N)");
    long n = integer(&a, "num_processes", 1, 1, false, NULL);
    *zero = zero_from_accelerate(&a, path, what, cap);
    sd_cleanup_pop();
    conv_free(&a);
    return (int)n;
}

/* ---- the command ---- */
int cmd_convert(int argc, char **argv) {
    const char *recipe = NULL, *procs = NULL, *acc = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--processes") || !strcmp(argv[i], "--accelerate-config") ||
                   !strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) sd_die("convert", "%s needs a value", argv[i]);
            const char **dst = argv[i][2] == 'p' ? &procs : argv[i][2] == 'a' ? &acc : &out;
            *dst = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            sd_die("convert", "unknown argument '%s' (see simpo_dist convert --help)", argv[i]);
        } else if (recipe) {
            sd_die("convert", "one recipe expected, found '%s' and '%s'", recipe, argv[i]);
        } else recipe = argv[i];
    }
    if (!recipe) {
        fputs(USAGE, stderr);
        return 2;
    }

    Run r = {0};
    char from[700];
    if (procs) {
        char *end;
        errno = 0;
        long n = strtol(procs, &end, 10);
        if (!*procs || *end || errno || n < 1 || n > 1000000)
            sd_die("convert", "--processes: expected a whole number >= 1, found '%s'", procs);
        r.processes = (int)n;
        snprintf(from, sizeof from, "--processes");
    }
    r.zero = 3; /* the reference's launch: accelerate_configs/deepspeed_zero3.yaml */
    snprintf(r.zero_from, sizeof r.zero_from, "zero_stage 3 of the SimPO repository's deepspeed_zero3.yaml "
             "(--accelerate-config FILE: another)");
    if (acc) {
        int n = processes_from_accelerate(acc, &r.zero, r.zero_from, sizeof r.zero_from);
        if (!procs) {
            r.processes = n;
            snprintf(from, sizeof from, "num_processes of %s", acc);
        }
    } else if (!procs) {
        r.processes = 4;
        snprintf(from, sizeof from, "the SimPO repository's accelerate_configs/deepspeed_zero3.yaml; --processes N to "
                 "change");
        fprintf(stderr, "simpo_dist convert: 4 processes, as the SimPO repository's "
                        "accelerate_configs/deepspeed_zero3.yaml (train.global_batch_pairs counts them; give "
                        "--processes N or --accelerate-config FILE for another count)\n");
    }

    static Conv c; /* static: sd_die's cleanup runs after this frame would be gone in a trapped test */
    memset(&c, 0, sizeof c);
    c.file = recipe;
    sd_cleanup_push(conv_free, &c);
    size_t len;
    c.text = sd_read_file(recipe, &len);
    if (!c.text) sd_die(recipe, "cannot read the recipe: %s", strerror(errno));
    yaml_parser_initialize(&c.parser);
    c.parser_up = 1;
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)c.text, len);
    if (!yaml_parser_load(&c.parser, &c.doc)) {
        char w[600];
        snprintf(w, sizeof w, "%s:%zu", recipe, c.parser.problem_mark.line + 1);
        sd_die(w, "invalid YAML: %s%s%s", c.parser.problem ? c.parser.problem : "syntax error",
               c.parser.context ? " " : "", c.parser.context ? c.parser.context : "");
    }
    c.doc_up = 1;
    yaml_node_t *root = yaml_document_get_root_node(&c.doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        sd_die(root ? at(&c, root) : recipe, "expected a recipe: a mapping of ModelArguments, DataArguments and "
               "SimPOConfig keys");
    c.pairs = root->data.mapping.pairs.start;
    c.npairs = (int)(root->data.mapping.pairs.top - c.pairs);
    c.note_of = sd_calloc((size_t)c.npairs + 1, sizeof *c.note_of, "convert notes");

    /* every key known, once, and each guarded one at a value that changes nothing: before any output */
    for (int i = 0; i < c.npairs; i++) {
        yaml_node_t *k = node(&c, c.pairs[i].key), *v = node(&c, c.pairs[i].value);
        if (k->type != YAML_SCALAR_NODE) sd_die(at(&c, k), "expected a key name, found %s", kind_name(k));
        for (int j = 0; j < i; j++)
            if (!strcmp(key_of(&c, j), sval(k)))
                sd_die(at(&c, k), "key '%s': given twice (also on line %zu)", sval(k),
                       node(&c, c.pairs[j].key)->start_mark.line + 1);
        const RecipeKey *rk = recipe_key(sval(k));
        if (!rk)
            sd_die(at(&c, k), "key '%s' is not a key of the SimPO/alignment-handbook recipe that convert knows",
                   sval(k));
        if (rk->kind == RK_GUARD && !in_list(norm_value(v), rk->ok))
            sd_die(at(&c, k), "key '%s': %s is not supported: simpo_dist has no %s", sval(k), norm_value(v), rk->lack);
    }
    /* use_peft off leaves the LoRA keys without effect; quantisation off the bitsandbytes ones (listed as such) */

    const char *od = str(&c, "output_dir");
    if (!od || !*od)
        sd_die(get(&c, "output_dir") ? at_key(&c, "output_dir") : recipe, "key 'output_dir': the recipe has none "
               "(TrainingArguments requires it: where the run's checkpoints and model go)");
    r.output_dir = od;
    bool lgiven = false;
    r.logging_steps = steps(&c, "logging_steps", 500, &lgiven);
    if (r.logging_steps < 1)
        sd_die(at_key(&c, "logging_steps"), "key 'logging_steps': expected at least 1, found %ld", r.logging_steps);
    conv_splits(&c, &r);
    conv_mixer(&c, &r);
    Eval ev = conv_eval(&c, &r);

    char *name = one_line(sd_strdup(recipe));
    bput(&c.out, "# simpo_dist config converted from %s by simpo_dist convert, for %d process%s\n", name,
         r.processes, r.processes == 1 ? "" : "es");
    free(name);
    bput(&c.out, "# (%s).\n", one_line(from));
    bput(&c.out,
         "# Every value is explicit: the recipe's, else the reference's default (SimPOConfig, transformers'\n"
         "# TrainingArguments, alignment-handbook's DataArguments); each comment names the recipe key it came from.\n"
         "# Paths and names are the recipe's, verbatim: ORG/NAME is read from the local Hugging Face cache, and a\n"
         "# relative path resolves against this file's directory (run_simpo.py resolves it against its working\n"
         "# directory: keep this file where you ran accelerate launch, or make the paths absolute).\n"
         "# parallel: every process data-parallel, as under accelerate, with its ZeRO stage; `simpo_dist plan\n"
         "# THIS_FILE --gpus %d` ranks the tensor / pipeline / ZeRO layouts that fit (faster ones, often), then set\n"
         "# parallel: {tp: .., pp: .., zero: ..}.\n",
         r.processes);
    conv_model(&c);
    conv_data(&c, &r, &ev);
    conv_loss(&c);
    conv_optim(&c);
    conv_train(&c, &r, &ev);
    conv_checkpoint(&c, &r);
    conv_log(&c, &r);
    conv_parallel(&c, &r);

    /* the keys with no effect here, in the recipe's order */
    for (int i = 0; i < c.npairs; i++) {
        const RecipeKey *rk = recipe_key(key_of(&c, i));
        if (rk->kind != RK_MAP) note(&c, rk->key, rk->why);
    }
    bool any = false;
    for (int i = 0; i < c.npairs; i++) any |= c.note_of[i] != NULL;
    if (any) {
        bput(&c.out, "\n# Not needed by simpo_dist (the recipe's keys with no effect on this run):\n");
        for (int i = 0; i < c.npairs; i++)
            if (c.note_of[i]) bput(&c.out, "%s", c.note_of[i]);
    }

    if (out) sd_write_file_atomic(out, c.out.s, c.out.n);
    else if (fwrite(c.out.s, 1, c.out.n, stdout) != c.out.n || fflush(stdout) != 0)
        sd_die("convert", "cannot write to stdout: %s", strerror(errno));
    if (out) fprintf(stderr, "simpo_dist convert: wrote %s\n", out);
    sd_cleanup_pop();
    conv_free(&c);
    return 0;
}
