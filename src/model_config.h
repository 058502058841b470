/* model_config.h — Llama-family (Llama, Mistral, Qwen2) and Gemma 2 shapes, read from / written to Hugging Face config.json.
 *
 * defines: ModelConfig, ModelArch, RopeType, SD_MAX_LAYER_TYPES, model_config_from_json, model_config_load,
 *          model_config_to_json, model_config_to_json_as, model_config_validate, model_config_rope_tables,
 *          model_config_layer_sliding, model_config_flops.
 * Ownership: ModelConfig is a plain value (no pointers). Strings returned by model_config_to_json are owned by
 * the caller (free()). Rope tables are allocated by model_config_rope_tables and freed by the caller.
 */
#ifndef SD_MODEL_CONFIG_H
#define SD_MODEL_CONFIG_H
#include <stdbool.h>

typedef enum { ROPE_DEFAULT = 0, ROPE_LINEAR, ROPE_LLAMA3 } RopeType;
/* ARCH_LLAMA: LlamaForCausalLM / MistralForCausalLM. ARCH_GEMMA2: Gemma2ForCausalLM (embedding x sqrt(C), RMSNorm
 * gains stored by HF as offsets from 1, four norms per layer, GeGLU, attention scale query_pre_attn_scalar^-1/2,
 * attention and final logit soft-capping, sliding-window layers). ARCH_QWEN2: Qwen2ForCausalLM (Qwen2, Qwen2.5):
 * Llama's blocks with biases on the q, k and v projections. ARCH_QWEN3: Qwen3ForCausalLM: Llama's blocks with an RMSNorm
 * over each head of q and of k (q_norm, k_norm: a gain of head_dim) before RoPE. */
typedef enum { ARCH_LLAMA = 0, ARCH_GEMMA2, ARCH_QWEN2, ARCH_QWEN3 } ModelArch;
#define SD_MAX_LAYER_TYPES 1024 /* layers whose attention kind (layer_types) a Gemma 2 config can name */

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
    bool qkv_bias;             /* the q, k, v projections have biases (Qwen2) */
    bool qk_norm;              /* q and k are RMS-normalised per head before RoPE (Qwen3) */
    double initializer_range;  /* default 0.02; used for random init */
    int bos_token_id, eos_token_id, pad_token_id; /* -1 when absent */
    /* Gemma 2 only (arch ARCH_GEMMA2; zero for Llama, but Mistral's sliding_window): */
    ModelArch arch;
    double query_pre_attn_scalar;   /* attention scale = this^-1/2 (default 256) */
    double attn_logit_softcapping;  /* > 0: cap of the attention scores; 0: off (null) (default 50) */
    double final_logit_softcapping; /* > 0: cap of the LM-head logits; 0: off (null) (default 30) */
    int sliding_window;             /* > 0: the window of the sliding layers; 0: none (null) (default 4096). Also
                                     * Mistral's (model_type mistral, arch llama): not applied, so a longer sequence
                                     * is an error (model.c) */
    unsigned char layer_sliding[SD_MAX_LAYER_TYPES]; /* layer_types[l] == "sliding_attention" (default: even l) */
} ModelConfig;

/* Parses config.json text. Accepts rope_theta at top level, transformers-5 "rope_parameters"
 * ({rope_theta, rope_type, ...}) and "rope_scaling" (null or {rope_type|type, factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings}). model_type must be "llama", "mistral", "qwen2" (hidden_act
 * must be "silu"), "qwen3" or "gemma2" when present (absent: llama); attention_bias/mlp_bias must be false. qwen2 has biases
 * on q, k, v (qkv_bias), transformers' Qwen2Config defaults for absent keys (max_position_embeddings 32768), and
 * use_sliding_window must be false (its sliding_window and max_window_layers are then ignored, as transformers
 * does). qwen3 has q_norm / k_norm (qk_norm), Qwen3Config's defaults (head_dim 128, max_position_embeddings
 * 32768) and the same rule for use_sliding_window. gemma2 reads
 * hidden_activation (else hidden_act; "gelu_pytorch_tanh"), query_pre_attn_scalar, attn_logit_softcapping,
 * final_logit_softcapping, sliding_window (each may be null: off), layer_types ("sliding_attention" |
 * "full_attention", one per layer), with transformers' Gemma2Config defaults for absent keys (head_dim 256,
 * max_position_embeddings 8192, tie_word_embeddings true, token ids pad 0 / eos 1 / bos 2, and the defaults
 * above). `where` names the source in errors (e.g. "model/config.json"); every error is sd_die(where, "key 'x':
 * expected ..., found ..."). */
ModelConfig model_config_from_json(const char *json_text, const char *where);
/* Reads <dir>/config.json. */
ModelConfig model_config_load(const char *hf_dir);
/* Checks ranges and divisibility (NH % NKV, sizes > 0); dies naming `where` and the key. */
void model_config_validate(const ModelConfig *mc, const char *where);
/* HF config.json (LlamaForCausalLM, model_type llama; Qwen2ForCausalLM, model_type qwen2; or Gemma2ForCausalLM,
 * model_type gemma2, with its keys and layer_types written out; torch_dtype float32, rope_theta at top level plus rope_scaling when not default) that
 * transformers loads. Caller frees. */
char *model_config_to_json(const ModelConfig *mc);
/* the same with "torch_dtype": torch_dtype ("float32", "bfloat16": the dtype of the weights it goes with) */
char *model_config_to_json_as(const ModelConfig *mc, const char *torch_dtype);
/* cos/sin tables [max_pos, HD/2] exactly as transformers computes them in float32 (inv_freq with the rope
 * scaling applied, then cos/sin of pos * inv_freq). *cos_out and *sin_out are sd_alloc'ed; caller frees. */
void model_config_rope_tables(const ModelConfig *mc, int max_pos, float **cos_out, float **sin_out);
/* Model FLOPs of one forward and backward (3 x the forward's; recomputation not counted) of a micro-batch whose
 * layers see layer_tokens tokens (under prefix sharing each prompt once), whose S sequences span cu_seqlens[0..S]
 * (attention: causal, over each sequence in full) and whose LM head forms logits for lp_rows rows (the rows that
 * predict a response token): per layer and token 2 (C (NH + 2 NKV) HD + NH HD C + 3 C FF), per layer and sequence of
 * s tokens 4 s(s+1)/2 NH HD, per log-prob row 2 C V (bench/simpo_bench.sh counts the same). */
double model_config_flops(const ModelConfig *mc, double layer_tokens, const int *cu_seqlens, int S, double lp_rows);
/* true when global layer l attends through the sliding window (Gemma 2 with sliding_window > 0 and
 * layer_types[l] == "sliding_attention"); false for every Llama layer. */
bool model_config_layer_sliding(const ModelConfig *mc, int l);
#endif
