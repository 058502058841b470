/* model_config.c — HF config.json <-> ModelConfig, and the RoPE tables. See model_config.h. */
#include "model_config.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

/* Reads an optional number; dies naming the key when it is present with another type. */
static double num_or(const cJSON *o, const char *key, double dflt, const char *where, const char *ctx) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) return dflt;
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) > 0 && cJSON_IsNumber(cJSON_GetArrayItem(it, 0)))
        return cJSON_GetArrayItem(it, 0)->valuedouble; /* eos_token_id may be a list */
    if (!cJSON_IsNumber(it)) sd_die(where, "key '%s%s': expected a number", ctx, key);
    return it->valuedouble;
}
static int int_or(const cJSON *o, const char *key, int dflt, const char *where, const char *ctx) {
    double d = num_or(o, key, dflt, where, ctx);
    if (d != floor(d) || d < -2147483647.0 || d > 2147483647.0)
        sd_die(where, "key '%s%s': expected an integer, found %g", ctx, key, d);
    return (int)d;
}
static int int_req(const cJSON *o, const char *key, const char *where) {
    if (!cJSON_GetObjectItemCaseSensitive(o, key)) sd_die(where, "key '%s' is required", key);
    return int_or(o, key, 0, where, "");
}
static const char *str_or(const cJSON *o, const char *key, const char *dflt, const char *where, const char *ctx) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) return dflt;
    if (!cJSON_IsString(it)) sd_die(where, "key '%s%s': expected a string", ctx, key);
    return it->valuestring;
}

/* rope_scaling / rope_parameters: {rope_type|type, factor, low_freq_factor, high_freq_factor, ...} */
static void read_rope(ModelConfig *mc, const cJSON *r, const char *where, const char *ctx) {
    if (!r || cJSON_IsNull(r)) return;
    if (!cJSON_IsObject(r)) sd_die(where, "key '%s': expected an object or null", ctx);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", ctx);
    mc->rope_theta = num_or(r, "rope_theta", mc->rope_theta, where, prefix);
    const char *type = str_or(r, "rope_type", NULL, where, prefix);
    if (!type) type = str_or(r, "type", "default", where, prefix);
    if (!strcmp(type, "default")) mc->rope_type = ROPE_DEFAULT;
    else if (!strcmp(type, "linear")) mc->rope_type = ROPE_LINEAR;
    else if (!strcmp(type, "llama3")) mc->rope_type = ROPE_LLAMA3;
    else sd_die(where, "key '%srope_type': '%s' is not supported (default, linear, llama3)", prefix, type);
    if (mc->rope_type != ROPE_DEFAULT) {
        if (!cJSON_GetObjectItemCaseSensitive(r, "factor")) sd_die(where, "key '%sfactor' is required", prefix);
        mc->rope_factor = num_or(r, "factor", 1.0, where, prefix);
        if (!(mc->rope_factor > 0)) sd_die(where, "key '%sfactor': expected a positive number", prefix);
    }
    if (mc->rope_type == ROPE_LLAMA3) {
        const char *req[3] = {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
        for (int i = 0; i < 3; i++)
            if (!cJSON_GetObjectItemCaseSensitive(r, req[i])) sd_die(where, "key '%s%s' is required", prefix, req[i]);
        mc->rope_low_freq_factor = num_or(r, "low_freq_factor", 1.0, where, prefix);
        mc->rope_high_freq_factor = num_or(r, "high_freq_factor", 4.0, where, prefix);
        mc->rope_original_max_position_embeddings = int_or(r, "original_max_position_embeddings", 8192, where, prefix);
        if (!(mc->rope_high_freq_factor > mc->rope_low_freq_factor))
            sd_die(where, "key '%shigh_freq_factor' must exceed low_freq_factor", prefix);
    }
}

/* An optional positive number that null switches off (0); absent: dflt. */
static double pos_or_null(const cJSON *o, const char *key, double dflt, const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it) return dflt;
    if (cJSON_IsNull(it)) return 0.0;
    if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !isfinite(it->valuedouble))
        sd_die(where, "key '%s': expected a positive number or null", key);
    return it->valuedouble;
}

/* Gemma 2's own keys, with transformers' Gemma2Config defaults */
static void read_gemma2(ModelConfig *mc, const cJSON *o, const char *where) {
    mc->query_pre_attn_scalar = num_or(o, "query_pre_attn_scalar", 256.0, where, "");
    if (!(mc->query_pre_attn_scalar > 0) || !isfinite(mc->query_pre_attn_scalar))
        sd_die(where, "key 'query_pre_attn_scalar': expected a positive number, found %g", mc->query_pre_attn_scalar);
    mc->attn_logit_softcapping = pos_or_null(o, "attn_logit_softcapping", 50.0, where);
    mc->final_logit_softcapping = pos_or_null(o, "final_logit_softcapping", 30.0, where);
    double sw = pos_or_null(o, "sliding_window", 4096.0, where);
    if (sw != floor(sw) || sw > 2147483647.0)
        sd_die(where, "key 'sliding_window': expected a positive integer or null, found %g", sw);
    mc->sliding_window = (int)sw;
    const cJSON *bi = cJSON_GetObjectItemCaseSensitive(o, "use_bidirectional_attention");
    if (bi && !cJSON_IsFalse(bi) && !cJSON_IsNull(bi))
        sd_die(where, "key 'use_bidirectional_attention': only false or null is supported (causal attention)");
    int L = mc->num_hidden_layers;
    if (L > SD_MAX_LAYER_TYPES)
        sd_die(where, "key 'num_hidden_layers': %d layers, at most %d for gemma2", L, SD_MAX_LAYER_TYPES);
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(o, "layer_types");
    if (!lt || cJSON_IsNull(lt)) { /* transformers: sliding on even layers */
        for (int l = 0; l < L; l++) mc->layer_sliding[l] = l % 2 == 0;
        return;
    }
    if (!cJSON_IsArray(lt)) sd_die(where, "key 'layer_types': expected a list of strings, one per layer");
    if (cJSON_GetArraySize(lt) != L)
        sd_die(where, "key 'layer_types': %d entries for %d layers (num_hidden_layers)", cJSON_GetArraySize(lt), L);
    for (int l = 0; l < L; l++) {
        const cJSON *e = cJSON_GetArrayItem(lt, l);
        const char *t = cJSON_IsString(e) ? e->valuestring : NULL;
        if (t && !strcmp(t, "sliding_attention")) mc->layer_sliding[l] = 1;
        else if (t && !strcmp(t, "full_attention")) mc->layer_sliding[l] = 0;
        else sd_die(where, "key 'layer_types[%d]': expected \"sliding_attention\" or \"full_attention\"%s%s%s", l,
                    t ? ", found \"" : "", t ? t : "", t ? "\"" : "");
    }
}

ModelConfig model_config_from_json(const char *json_text, const char *where) {
    cJSON *o = cJSON_Parse(json_text);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        sd_die(where, "invalid JSON (expected a config.json object)");
    }
    sd_cleanup_push((void (*)(void *))cJSON_Delete, o);
    ModelConfig mc;
    memset(&mc, 0, sizeof mc);
    const char *mt = str_or(o, "model_type", NULL, where, "");
    if (mt && !strcmp(mt, "gemma2")) mc.arch = ARCH_GEMMA2;
    else if (mt && !strcmp(mt, "qwen2")) mc.arch = ARCH_QWEN2;
    else if (mt && !strcmp(mt, "qwen3")) mc.arch = ARCH_QWEN3;
    else if (mt && !strncmp(mt, "gemma", 5) && strcmp(mt, "gemma2"))
        sd_die(where, "key 'model_type': '%s' is not supported: of the Gemma family only Gemma 2 (gemma2) is, and it "
               "is not a Llama-family model (llama, mistral, qwen2, qwen3)", mt);
    else if (mt && strcmp(mt, "llama") && strcmp(mt, "mistral"))
        sd_die(where, "key 'model_type': '%s' is not a Llama-family model (llama, mistral, qwen2, qwen3) nor Gemma 2 "
               "(gemma2)", mt);
    bool gemma2 = mc.arch == ARCH_GEMMA2;
    if (gemma2) { /* transformers' Gemma2MLP reads hidden_activation; hidden_act is the generic name */
        const char *key = cJSON_GetObjectItemCaseSensitive(o, "hidden_activation") ? "hidden_activation" : "hidden_act";
        const char *act = str_or(o, key, "gelu_pytorch_tanh", where, "");
        if (strcmp(act, "gelu_pytorch_tanh"))
            sd_die(where, "key '%s': expected \"gelu_pytorch_tanh\" for gemma2, found \"%s\"", key, act);
    } else {
        const char *act = str_or(o, "hidden_act", "silu", where, "");
        if (strcmp(act, "silu")) sd_die(where, "key 'hidden_act': expected \"silu\", found \"%s\"", act);
    }
    const char *flags[2] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, flags[i]);
        if (b && !cJSON_IsFalse(b) && !cJSON_IsNull(b)) sd_die(where, "key '%s': only false is supported", flags[i]);
    }
    mc.vocab_size = int_req(o, "vocab_size", where);
    mc.hidden_size = int_req(o, "hidden_size", where);
    mc.intermediate_size = int_req(o, "intermediate_size", where);
    mc.num_hidden_layers = int_req(o, "num_hidden_layers", where);
    mc.num_attention_heads = int_req(o, "num_attention_heads", where);
    mc.num_key_value_heads = int_or(o, "num_key_value_heads", mc.num_attention_heads, where, "");
    bool qwen3 = mc.arch == ARCH_QWEN3;
    int hd = gemma2 ? 256 : qwen3 ? 128 : mc.num_attention_heads > 0 ? mc.hidden_size / mc.num_attention_heads : 0;
    mc.head_dim = int_or(o, "head_dim", hd, where, "");
    bool qwen2 = mc.arch == ARCH_QWEN2;
    mc.qkv_bias = qwen2; /* Qwen2Attention: q, k, v with bias, o without */
    mc.qk_norm = qwen3;  /* Qwen3Attention: q_norm, k_norm over each head (its attention_bias, false above, would put
                          * biases on q, k, v and o) */
    if (qwen2 || qwen3) { /* transformers applies a sliding window only where use_sliding_window is true */
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(o, "use_sliding_window");
        if (sw && !cJSON_IsBool(sw)) sd_die(where, "key 'use_sliding_window': expected true or false");
        if (sw && cJSON_IsTrue(sw))
            sd_die(where, "key 'use_sliding_window': only false is supported (Qwen's sliding-window layers are not)");
    }
    mc.max_position_embeddings =
        int_or(o, "max_position_embeddings", gemma2 ? 8192 : qwen2 || qwen3 ? 32768 : 2048, where, "");
    mc.rms_norm_eps = num_or(o, "rms_norm_eps", 1e-6, where, "");
    mc.rope_theta = num_or(o, "rope_theta", 10000.0, where, "");
    mc.rope_type = ROPE_DEFAULT;
    mc.rope_factor = 1.0;
    read_rope(&mc, cJSON_GetObjectItemCaseSensitive(o, "rope_parameters"), where, "rope_parameters");
    read_rope(&mc, cJSON_GetObjectItemCaseSensitive(o, "rope_scaling"), where, "rope_scaling");
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(o, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie)) sd_die(where, "key 'tie_word_embeddings': expected true or false");
    mc.tie_word_embeddings = tie ? cJSON_IsTrue(tie) : gemma2; /* Gemma2Config ties by default */
    mc.initializer_range = num_or(o, "initializer_range", 0.02, where, "");
    mc.bos_token_id = int_or(o, "bos_token_id", gemma2 ? 2 : -1, where, "");
    mc.eos_token_id = int_or(o, "eos_token_id", gemma2 ? 1 : -1, where, "");
    mc.pad_token_id = int_or(o, "pad_token_id", gemma2 ? 0 : -1, where, "");
    if (gemma2) read_gemma2(&mc, o, where);
    else if (mt && !strcmp(mt, "mistral")) { /* MistralConfig's window (4096 by default; v0.2 on: null) */
        double sw = pos_or_null(o, "sliding_window", 4096.0, where);
        if (sw != floor(sw) || sw > 2147483647.0)
            sd_die(where, "key 'sliding_window': expected a positive integer or null, found %g", sw);
        mc.sliding_window = (int)sw;
    }
    sd_cleanup_pop();
    cJSON_Delete(o);
    model_config_validate(&mc, where);
    return mc;
}

ModelConfig model_config_load(const char *hf_dir) {
    char *path = sd_path_join(hf_dir, "config.json");
    char *text = sd_read_file(path, NULL);
    if (!text) sd_die(path, "cannot read the model's config.json (is model.init a Hugging Face model directory?)");
    sd_cleanup_push(free, text);
    sd_cleanup_push(free, path);
    ModelConfig mc = model_config_from_json(text, path);
    sd_cleanup_pop();
    sd_cleanup_pop();
    free(text);
    free(path);
    return mc;
}

void model_config_validate(const ModelConfig *mc, const char *where) {
    struct { const char *k; int v; } pos[] = {
        {"vocab_size", mc->vocab_size}, {"hidden_size", mc->hidden_size},
        {"intermediate_size", mc->intermediate_size}, {"num_attention_heads", mc->num_attention_heads},
        {"num_key_value_heads", mc->num_key_value_heads}, {"head_dim", mc->head_dim},
        {"max_position_embeddings", mc->max_position_embeddings},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0) sd_die(where, "key '%s': expected a positive integer, found %d", pos[i].k, pos[i].v);
    if (mc->num_hidden_layers < 0) sd_die(where, "key 'num_hidden_layers': expected >= 0");
    if (mc->num_attention_heads % mc->num_key_value_heads)
        sd_die(where, "key 'num_key_value_heads': %d does not divide num_attention_heads %d", mc->num_key_value_heads,
               mc->num_attention_heads);
    if (mc->head_dim % 2) sd_die(where, "key 'head_dim': expected an even number, found %d", mc->head_dim);
    if (!(mc->rms_norm_eps > 0)) sd_die(where, "key 'rms_norm_eps': expected a positive number");
    if (!(mc->rope_theta > 0)) sd_die(where, "key 'rope_theta': expected a positive number");
    if (mc->arch == ARCH_GEMMA2) {
        if (mc->num_hidden_layers > SD_MAX_LAYER_TYPES)
            sd_die(where, "key 'num_hidden_layers': %d layers, at most %d for gemma2", mc->num_hidden_layers,
                   SD_MAX_LAYER_TYPES);
        if (!(mc->query_pre_attn_scalar > 0)) sd_die(where, "key 'query_pre_attn_scalar': expected a positive number");
        if (!(mc->attn_logit_softcapping >= 0))
            sd_die(where, "key 'attn_logit_softcapping': expected a positive number or null");
        if (!(mc->final_logit_softcapping >= 0))
            sd_die(where, "key 'final_logit_softcapping': expected a positive number or null");
        if (mc->sliding_window < 0) sd_die(where, "key 'sliding_window': expected a positive integer or null");
    } else if (mc->arch != ARCH_LLAMA && mc->arch != ARCH_QWEN2 && mc->arch != ARCH_QWEN3)
        sd_die(where, "unknown model architecture %d", (int)mc->arch);
}

bool model_config_layer_sliding(const ModelConfig *mc, int l) {
    return mc->arch == ARCH_GEMMA2 && mc->sliding_window > 0 && l >= 0 && l < SD_MAX_LAYER_TYPES &&
           mc->layer_sliding[l];
}

char *model_config_to_json(const ModelConfig *mc) { return model_config_to_json_as(mc, "float32"); }

char *model_config_to_json_as(const ModelConfig *mc, const char *torch_dtype) {
    cJSON *o = cJSON_CreateObject();
    bool gemma2 = mc->arch == ARCH_GEMMA2, qwen2 = mc->arch == ARCH_QWEN2, qwen3 = mc->arch == ARCH_QWEN3;
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    bool mistral = mc->arch == ARCH_LLAMA && mc->sliding_window > 0; /* Mistral v0.1: its window kept */
    cJSON_AddItemToArray(arch, cJSON_CreateString(gemma2    ? "Gemma2ForCausalLM"
                                                  : qwen2   ? "Qwen2ForCausalLM"
                                                  : qwen3   ? "Qwen3ForCausalLM"
                                                  : mistral ? "MistralForCausalLM"
                                                            : "LlamaForCausalLM"));
    cJSON_AddStringToObject(o, "model_type",
                            gemma2 ? "gemma2" : qwen2 ? "qwen2" : qwen3 ? "qwen3" : mistral ? "mistral" : "llama");
    if (mistral) cJSON_AddNumberToObject(o, "sliding_window", mc->sliding_window);
    if (gemma2) {
        cJSON_AddStringToObject(o, "hidden_activation", "gelu_pytorch_tanh");
        cJSON_AddStringToObject(o, "hidden_act", "gelu_pytorch_tanh");
        cJSON_AddFalseToObject(o, "attention_bias");
    } else if (qwen2 || qwen3) { /* Qwen2's biases, Qwen3's q/k norms are the architecture, not keys; no window */
        cJSON_AddStringToObject(o, "hidden_act", "silu");
        if (qwen3) cJSON_AddFalseToObject(o, "attention_bias");
        cJSON_AddFalseToObject(o, "use_sliding_window");
        cJSON_AddNullToObject(o, "sliding_window");
        cJSON_AddNumberToObject(o, "max_window_layers", mc->num_hidden_layers);
    } else {
        cJSON_AddStringToObject(o, "hidden_act", "silu");
        cJSON_AddFalseToObject(o, "attention_bias");
        cJSON_AddFalseToObject(o, "mlp_bias");
    }
    cJSON_AddNumberToObject(o, "attention_dropout", 0.0);
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtype);
    cJSON_AddNumberToObject(o, "vocab_size", mc->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", mc->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", mc->intermediate_size);
    cJSON_AddNumberToObject(o, "num_hidden_layers", mc->num_hidden_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", mc->num_attention_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", mc->num_key_value_heads);
    cJSON_AddNumberToObject(o, "head_dim", mc->head_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", mc->max_position_embeddings);
    cJSON_AddNumberToObject(o, "rms_norm_eps", mc->rms_norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", mc->rope_theta);
    if (mc->rope_type == ROPE_DEFAULT) cJSON_AddNullToObject(o, "rope_scaling");
    else {
        cJSON *r = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", mc->rope_type == ROPE_LINEAR ? "linear" : "llama3");
        cJSON_AddNumberToObject(r, "factor", mc->rope_factor);
        if (mc->rope_type == ROPE_LLAMA3) {
            cJSON_AddNumberToObject(r, "low_freq_factor", mc->rope_low_freq_factor);
            cJSON_AddNumberToObject(r, "high_freq_factor", mc->rope_high_freq_factor);
            cJSON_AddNumberToObject(r, "original_max_position_embeddings", mc->rope_original_max_position_embeddings);
        }
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", mc->tie_word_embeddings);
    cJSON_AddNumberToObject(o, "initializer_range", mc->initializer_range);
    if (mc->bos_token_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", mc->bos_token_id);
    if (mc->eos_token_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", mc->eos_token_id);
    if (mc->pad_token_id >= 0) cJSON_AddNumberToObject(o, "pad_token_id", mc->pad_token_id);
    if (gemma2) { /* written out in full, so no reader's defaults matter; 0 (off) is null */
        cJSON_AddNumberToObject(o, "query_pre_attn_scalar", mc->query_pre_attn_scalar);
        if (mc->attn_logit_softcapping > 0)
            cJSON_AddNumberToObject(o, "attn_logit_softcapping", mc->attn_logit_softcapping);
        else cJSON_AddNullToObject(o, "attn_logit_softcapping");
        if (mc->final_logit_softcapping > 0)
            cJSON_AddNumberToObject(o, "final_logit_softcapping", mc->final_logit_softcapping);
        else cJSON_AddNullToObject(o, "final_logit_softcapping");
        if (mc->sliding_window > 0) cJSON_AddNumberToObject(o, "sliding_window", mc->sliding_window);
        else cJSON_AddNullToObject(o, "sliding_window");
        cJSON *lt = cJSON_AddArrayToObject(o, "layer_types");
        for (int l = 0; l < mc->num_hidden_layers && l < SD_MAX_LAYER_TYPES; l++)
            cJSON_AddItemToArray(lt, cJSON_CreateString(mc->layer_sliding[l] ? "sliding_attention" : "full_attention"));
    }
    cJSON_AddBoolToObject(o, "use_cache", 1);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) sd_die("config.json", "cannot serialise the model config");
    char *out = sd_strdup(s);
    cJSON_free(s);
    return out;
}

void model_config_rope_tables(const ModelConfig *mc, int max_pos, float **cos_out, float **sin_out) {
    int half = mc->head_dim / 2;
    float *inv = sd_alloc((size_t)half * sizeof(float), "rope");
    /* transformers: inv_freq = 1 / base ** (arange(0, dim, 2).float() / dim), all in float32 */
    for (int i = 0; i < half; i++)
        inv[i] = 1.0f / powf((float)mc->rope_theta, (float)(2 * i) / (float)mc->head_dim);
    if (mc->rope_type == ROPE_LINEAR) {
        for (int i = 0; i < half; i++) inv[i] = inv[i] / (float)mc->rope_factor;
    } else if (mc->rope_type == ROPE_LLAMA3) { /* transformers _compute_llama3_parameters */
        float factor = (float)mc->rope_factor, lo = (float)mc->rope_low_freq_factor,
              hi = (float)mc->rope_high_freq_factor, old = (float)mc->rope_original_max_position_embeddings;
        float lo_wl = old / lo, hi_wl = old / hi;
        for (int i = 0; i < half; i++) {
            float wl = 2.0f * (float)M_PI / inv[i];
            float f = wl > lo_wl ? inv[i] / factor : inv[i];
            float smooth = (old / wl - lo) / (hi - lo);
            float smoothed = (1.0f - smooth) * f / factor + smooth * f;
            if (!(wl < hi_wl) && !(wl > lo_wl)) f = smoothed;
            inv[i] = f;
        }
    }
    size_t n = sd_mul_size((size_t)max_pos, (size_t)half, "rope table");
    float *c = sd_alloc(n * sizeof(float), "rope cos"), *s = sd_alloc(n * sizeof(float), "rope sin");
    for (int p = 0; p < max_pos; p++)
        for (int i = 0; i < half; i++) {
            float f = (float)p * inv[i]; /* float32 product, as torch's matmul of float tensors */
            /* cos/sin of the float32 angle, rounded once to float (torch's float32 cos is correctly rounded
             * to within an ulp; computing in double then rounding gives the nearest float) */
            c[(size_t)p * half + i] = (float)cos((double)f);
            s[(size_t)p * half + i] = (float)sin((double)f);
        }
    free(inv);
    *cos_out = c;
    *sin_out = s;
}

double model_config_flops(const ModelConfig *mc, double layer_tokens, const int *cu_seqlens, int S, double lp_rows) {
    double C = mc->hidden_size, HD = mc->head_dim, NH = mc->num_attention_heads, NKV = mc->num_key_value_heads;
    double FF = mc->intermediate_size, V = mc->vocab_size, L = mc->num_hidden_layers;
    double lin = 2.0 * (C * (NH + 2 * NKV) * HD + NH * HD * C + 3 * C * FF) * L * layer_tokens;
    double pairs = 0; /* sum over sequences of s (s + 1) / 2: the causal score entries */
    for (int i = 0; i < S; i++) {
        double s = cu_seqlens[i + 1] - cu_seqlens[i];
        pairs += s * (s + 1) / 2;
    }
    double attn = 4.0 * pairs * NH * HD * L, head = 2.0 * C * V * lp_rows;
    return 3.0 * (lin + attn + head);
}
