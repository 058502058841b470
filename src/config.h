/* config.h — the run configuration: YAML (libyaml) into one typed, validated struct.
 *
 * defines: Config, LossType, LrSchedule, config_load, config_load_string, config_free, config_to_yaml,
 *          config_print_reference.
 * One table of keys (name, type, default, range, help) in config.c drives parsing, validation, error messages
 * and the generated reference (docs/config.md, `simpo_dist --config-reference`).
 * Errors: sd_die("<file>:<line>:<col>", "key 'optim.lr': expected a positive float, found \"3e-4x\"");
 *         unknown keys, wrong types, out-of-range values and missing required keys are all fatal.
 * Paths: relative paths in the file (model.init, data.train, checkpoint.dir, ...) are resolved against the
 *        directory of the config file, and stored resolved.
 * Ownership: config_load returns a heap Config; config_free frees it and every string inside.
 */
#ifndef SD_CONFIG_H
#define SD_CONFIG_H
#include <stdbool.h>
#include "model_config.h"

typedef enum {
    LOSS_SIMPO = 0, LOSS_SIMPO_HINGE, LOSS_DPO, LOSS_CPO_SIMPO, LOSS_IPO, LOSS_RDPO, LOSS_CPO, LOSS_ORPO, LOSS_RRHF,
    LOSS_SLIC, LOSS_KTO
} LossType; /* order = the choices of loss.type in config.c */
typedef enum { SCHED_CONSTANT = 0, SCHED_LINEAR, SCHED_COSINE, SCHED_WSD } LrSchedule;
typedef enum { DECAY_COSINE = 0, DECAY_LINEAR, DECAY_1_SQRT } LrDecay; /* optim.decay_type's choices */

/* One part of a data mixture (data.train or data.eval given as a mapping {path: fraction}, alignment-handbook's
 * dataset_mixer; or one dataset's split, or a glob's file): its first floor(fraction x pairs) pairs, in order. */
typedef struct {
    char *path;                 /* a file resolved against the config's directory; a dataset's split: "NAME split S" */
    double fraction;            /* in (0, 1] */
    char **files;               /* a dataset's split (hub_cache.h): its n_files data files, read as one; NULL: path */
    int n_files;
} DataPart;

typedef struct {
    char *source;               /* path of the YAML file ("<string>" for config_load_string) */
    char *text;                 /* the YAML text as read (kept for checkpoints) */

    /* model: */
    char *model_init;           /* model.init: HF directory, or NULL when model.config is given */
    bool has_model_config;      /* model.config: {...HF config.json fields...} given */
    ModelConfig model_config;   /* parsed from model.config (same keys and defaults as config.json) */
    long model_seed;            /* model.seed (default 0): random init seed */
    char *model_dtype;          /* model.dtype: "fp32" (default) | "bf16" */
    char *bf16_storage;         /* model.bf16_storage: "autocast" (default) | "exact" */
    char *device;               /* device: "cpu" | "cuda" | "auto" (default auto) */

    /* data: */
    char *data_train;           /* data.train (required): JSONL path; for a mixture the files joined by " + " */
    DataPart *train_mix;        /* data.train as a mapping {path: fraction}, a glob's files or a dataset's split
                                   (n_train_mix parts), else NULL */
    char *train_split;          /* data.train_split (default train): the split of a dataset named in data.train */
    char *eval_split;           /* data.eval_split (default test): the split of a dataset named in data.eval */
    int n_train_mix;
    int max_length;             /* data.max_length (default 2048) */
    int max_prompt_length;      /* data.max_prompt_length (default 1800) */
    bool shuffle;               /* data.shuffle (default true) */
    bool prefix_sharing;        /* data.prefix_sharing (default true): each pair's prompt through the layers once */
    char *data_format;          /* data.format: auto | ids | chat | text (default auto) */
    char *data_tokenizer;       /* data.tokenizer: HF tokenizer directory (tokenizer.json, tokenizer_config.json) */
    char *chat_template;        /* data.chat_template: auto | llama3 | llama2 | mistral | chatml | gemma */
    bool insert_empty_system;   /* data.insert_empty_system (default false): chat_template.h chat_wants_empty_system */
    char *chat_convention;      /* data.chat_convention: "trl" (default) | "simpo_reference" (pairs.h) */
    char *data_prepared;        /* data.prepared: where `prepare` writes the HDF5 dataset (NULL: data.train + .h5) */
    char *data_eval;            /* data.eval: held-out pairs evaluated during training (NULL: none; train_eval.h) */
    DataPart *eval_mix;         /* data.eval as a mapping, like train_mix */
    int n_eval_mix;

    /* loss: */
    LossType loss_type;         /* loss.type (default simpo); docs/losses.md */
    double beta;                /* loss.beta (default 2.0) */
    double gamma_beta_ratio;    /* loss.gamma_beta_ratio (default 0.5) */
    double sft_weight;          /* loss.sft_weight (default 0) */
    double label_smoothing;     /* loss.label_smoothing (default 0, in [0, 0.5)) */
    double loss_alpha;          /* loss.alpha (default 0): R-DPO length term */
    double loss_delta;          /* loss.delta (default 1): SLiC-HF margin */
    double loss_lambda;         /* loss.lambda (default 1): NLL weight of CPO, RRHF, SLiC; odds-ratio weight of ORPO */

    /* optim: */
    double lr;                  /* optim.lr (default 1e-6), > 0 */
    double beta1, beta2;        /* optim.betas: [b1, b2] (default [0.9, 0.999]), each in [0, 1) */
    double eps;                 /* optim.eps (default 1e-8) */
    double weight_decay;        /* optim.weight_decay (default 0) */
    double max_grad_norm;       /* optim.max_grad_norm (default 1.0; 0 disables clipping) */
    LrSchedule schedule;        /* optim.schedule: constant | linear | cosine (default cosine) | wsd */
    int decay_steps;            /* optim.decay_steps (wsd; default 0: optim.decay_ratio of the steps) */
    double decay_ratio;         /* optim.decay_ratio (wsd; default 0.1) */
    int decay_type;             /* optim.decay_type (wsd): LrDecay (default cosine) */
    int warmup_steps;           /* optim.warmup_steps (default 0) */
    double warmup_ratio;        /* optim.warmup_ratio (default 0; used when warmup_steps is 0) */
    double min_lr_ratio;        /* optim.min_lr_ratio (default 0): floor of linear/cosine as a fraction of lr */

    /* train: */
    int global_batch_pairs;     /* train.global_batch_pairs (default 128) */
    int micro_batch_pairs;      /* train.micro_batch_pairs (default 2); must divide global_batch_pairs */
    int micro_batch_tokens;     /* train.micro_batch_tokens (default 0: micro-batches of micro_batch_pairs pairs) */
    long max_steps;             /* train.max_steps (default 0: use epochs) */
    double epochs;              /* train.epochs (default 1) */
    long seed;                  /* train.seed (default 0): data shuffling */
    int nonfinite_skip;         /* train.nonfinite: stop (0, default) | skip (1) */
    int recompute;              /* train.recompute: RECOMPUTE_OFF (default) | _ON | _AUTO: save layer inputs only, rerun
                                 * layers backward (auto: as many as the device's memory needs, train.c) */
    int recompute_layers;       /* train.recompute_layers (default 0: all): a stage's first layers that recompute */
    bool recompute_activation;  /* train.recompute_activation (default false): the MLP's hidden state recomputed */
    bool recompute_norm;        /* train.recompute_norm (default false): the projections' normed inputs recomputed */
    int bf16_weight_cache;      /* train.bf16_weight_cache: WEIGHT_CACHE_OFF | _ON | _AUTO (default: kept unless a
                                 * known memory budget is short, train.c): bf16 compute weights, once per step */
    int lmhead_cache;           /* train.lmhead_cache: LMHEAD_CACHE_OFF | _ON | _AUTO (default: where it fits a known
                                 * memory budget, train.c): logits kept from forward to backward */
    long eval_every_steps;      /* train.eval_every_steps (default 0: after the last step only; needs data.eval) */
    bool eval_on_start;         /* train.eval_on_start (default false): also before the first step (step 0) */
    int sparse_embed_grad;      /* train.sparse_embedding_grad: SPARSE_EMBED_OFF | _ON | _AUTO (default: where the
                                 * embedding is untied and dp is 1, train.c) */

    /* checkpoint: */
    char *ckpt_dir;             /* checkpoint.dir (default "out") */
    long ckpt_every_steps;      /* checkpoint.every_steps (default 0: only at the end) */
    int ckpt_keep;              /* checkpoint.keep (default 0: keep all) */
    bool ckpt_check_data;       /* checkpoint.check_data (default true): a resume refuses other training data */
    bool ckpt_final;            /* checkpoint.final (default true: checkpoint after the last step) */
    char *export_hf;            /* checkpoint.export_hf: Hugging Face model directory written from the final
                                 * checkpoint (NULL: none) */
    int export_dtype;           /* checkpoint.export_dtype: EXPORT_DTYPE_AUTO (default: model.dtype) | _FP32 | _BF16 */

    /* log: */
    long log_every_steps;       /* log.every_steps (default 1) */
    double peak_tflops;         /* log.peak_tflops (default 0: no MFU logged) */
    char *tensorboard_dir;      /* log.tensorboard_dir: TensorBoard event files of the metrics (NULL: none) */

    /* parallel: */
    int tp, pp, zero;           /* parallel.tp, parallel.pp (default 1), parallel.zero (0|1|2|3, default 0) */
    bool sequence_parallel;     /* parallel.sequence_parallel (default false; no effect at tp 1) */
    bool zero3_prefetch;        /* parallel.zero3_prefetch (default true): under zero 3 the next layer's gather ahead */
    int overlap_grad_reduce;    /* parallel.overlap_grad_reduce: OVERLAP_GRAD_OFF | _ON | _AUTO (default: on where it
                                 * applies: dp > 1, zero 0 or 1) */
    char *comm_backend;         /* parallel.backend: mpi | nccl | auto (default auto) */
} Config;

/* Reads and validates path; dies with file:line:col on any error. */
Config *config_load(const char *path);
/* Same from a string; `name` is used in errors, `base_dir` resolves relative paths. */
Config *config_load_string(const char *yaml, const char *name, const char *base_dir);
void config_free(Config *c);
enum { RECOMPUTE_OFF = 0, RECOMPUTE_ON = 1, RECOMPUTE_AUTO = 2 }; /* Config.recompute: train.recompute's choices */
enum { LMHEAD_CACHE_OFF = 0, LMHEAD_CACHE_ON = 1, LMHEAD_CACHE_AUTO = 2 }; /* Config.lmhead_cache's choices */
enum { SPARSE_EMBED_OFF = 0, SPARSE_EMBED_ON = 1, SPARSE_EMBED_AUTO = 2 }; /* Config.sparse_embed_grad's choices */
enum { WEIGHT_CACHE_OFF = 0, WEIGHT_CACHE_ON = 1, WEIGHT_CACHE_AUTO = 2 }; /* Config.bf16_weight_cache's choices */
enum { OVERLAP_GRAD_OFF = 0, OVERLAP_GRAD_ON = 1, OVERLAP_GRAD_AUTO = 2 }; /* Config.overlap_grad_reduce's */
enum { EXPORT_DTYPE_AUTO = 0, EXPORT_DTYPE_FP32 = 1, EXPORT_DTYPE_BF16 = 2 }; /* Config.export_dtype's choices */
/* The layers per pipeline stage that recompute (model.h model_create_ex): 0 without train.recompute,
 * train.recompute_layers when set, else INT_MAX (all); -1 under train.recompute: auto (the trainer decides). */
int config_recompute_layers(const Config *c);
/* Whether train.sparse_embedding_grad applies: not false, untied embeddings, and dp 1 or, under data parallelism,
 * ZeRO 0 or 1 with the first stage's embedding inside one DP shard (in_one_shard: plan.h plan_embed_in_one_shard;
 * ZeRO's optimizer then updates it whole on one rank, and ZeRO-2's gradient buckets are dense): the trainer's choice,
 * which simpo_dist plan restates per layout. */
bool config_sparse_embed(const Config *c, bool tied, int dp, bool in_one_shard);
/* The resolved configuration as YAML (every key, defaults filled in). Caller frees. */
char *config_to_yaml(const Config *c);
/* Markdown reference of every key (name, type, default, range, help), printed to stdout. */
void config_print_reference(void);
#endif
