/* model_config.h — Llama-family shapes, read from / written to Hugging Face config.json.
 *
 * defines: ModelConfig, RopeType, model_config_from_json, model_config_load, model_config_to_json,
 *          model_config_validate, model_config_rope_tables.
 * Ownership: ModelConfig is a plain value (no pointers). Strings returned by model_config_to_json are owned by
 * the caller (free()). Rope tables are allocated by model_config_rope_tables and freed by the caller.
 */
#ifndef SD_MODEL_CONFIG_H
#define SD_MODEL_CONFIG_H
#include <stdbool.h>

typedef enum { ROPE_DEFAULT = 0, ROPE_LINEAR, ROPE_LLAMA3 } RopeType;

typedef struct {
    int vocab_size;            /* V */
    int hidden_size;           /* C */
    int intermediate_size;     /* FF */
    int num_hidden_layers;     /* L */
    int num_attention_heads;   /* NH */
    int num_key_value_heads;   /* NKV (defaults to NH) */
    int head_dim;              /* HD (defaults to C / NH) */
    int max_position_embeddings;
    double rms_norm_eps;       /* default 1e-6 */
    double rope_theta;         /* default 10000 */
    RopeType rope_type;        /* from rope_scaling.rope_type / rope_parameters.rope_type */
    double rope_factor;        /* linear, llama3 */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int rope_original_max_position_embeddings;           /* llama3 */
    bool tie_word_embeddings;  /* default false */
    double initializer_range;  /* default 0.02; used for random init */
    int bos_token_id, eos_token_id, pad_token_id; /* -1 when absent */
} ModelConfig;

/* Parses config.json text. Accepts rope_theta at top level, transformers-5 "rope_parameters"
 * ({rope_theta, rope_type, ...}) and "rope_scaling" (null or {rope_type|type, factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings}). model_type must be "llama" or "mistral" when present;
 * hidden_act must be "silu"; attention_bias/mlp_bias must be false. `where` names the source in errors
 * (e.g. "model/config.json"); every error is sd_die(where, "key 'x': expected ..., found ..."). */
ModelConfig model_config_from_json(const char *json_text, const char *where);
/* Reads <dir>/config.json. */
ModelConfig model_config_load(const char *hf_dir);
/* Checks ranges and divisibility (NH % NKV, sizes > 0); dies naming `where` and the key. */
void model_config_validate(const ModelConfig *mc, const char *where);
/* HF config.json (LlamaForCausalLM, model_type llama, torch_dtype float32, rope_theta at top level plus
 * rope_scaling when not default) that transformers loads. Caller frees. */
char *model_config_to_json(const ModelConfig *mc);
/* cos/sin tables [max_pos, HD/2] exactly as transformers computes them in float32 (inv_freq with the rope
 * scaling applied, then cos/sin of pos * inv_freq). *cos_out and *sin_out are sd_alloc'ed; caller frees. */
void model_config_rope_tables(const ModelConfig *mc, int max_pos, float **cos_out, float **sin_out);
#endif
