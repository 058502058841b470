/* test_model_config.c — HF config.json parsing (transformers-5 rope_parameters, top-level rope_theta, Llama-3.1
 * rope_scaling), the HF export round trip, RoPE tables against float64 math, and the errors. */
#include <math.h>
#include "model_config.h"
#include "test_util.h"

static const char *g_json;
static void parse_it(void *a) {
    (void)a;
    model_config_from_json(g_json, "cfg.json");
}
static int bad(const char *json, const char *want) {
    g_json = json;
    return expect_die(parse_it, NULL, want);
}

int main(void) {
    char *d = fixture_path("tiny-a/model");
    ModelConfig mc = model_config_load(d);
    free(d);
    CHECK(mc.vocab_size == 384 && mc.hidden_size == 64 && mc.intermediate_size == 160, "sizes");
    CHECK(mc.num_hidden_layers == 2 && mc.num_attention_heads == 4 && mc.num_key_value_heads == 2 && mc.head_dim == 16,
          "heads");
    CHECK(mc.rope_theta == 10000.0 && mc.rope_type == ROPE_DEFAULT && mc.rms_norm_eps == 1e-5, "rope_parameters");
    CHECK(!mc.tie_word_embeddings && mc.bos_token_id == 1 && mc.eos_token_id == 2 && mc.pad_token_id == 0, "ids");

    const char *l31 = "{\"vocab_size\": 1000, \"hidden_size\": 256, \"intermediate_size\": 512, \"num_hidden_layers\": 2,"
                      "\"num_attention_heads\": 8, \"num_key_value_heads\": 2, \"rope_theta\": 500000.0,"
                      "\"max_position_embeddings\": 131072, \"eos_token_id\": [128001, 128008],"
                      "\"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                      "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, \"tie_word_embeddings\": true}";
    ModelConfig m31 = model_config_from_json(l31, "l31");
    CHECK(m31.rope_type == ROPE_LLAMA3 && m31.rope_factor == 8.0 && m31.rope_original_max_position_embeddings == 8192,
          "llama3 rope_scaling");
    CHECK(m31.rope_theta == 500000.0 && m31.head_dim == 32 && m31.eos_token_id == 128001 && m31.tie_word_embeddings,
          "top-level rope_theta, derived head_dim, eos list");

    /* export round trip */
    char *js = model_config_to_json(&m31);
    ModelConfig back = model_config_from_json(js, "export");
    CHECK(!memcmp(&back, &m31, sizeof back), "to_json / from_json round trip");
    free(js);

    /* rope tables vs float64 math (transformers computes in float32: 1e-6 relative is a few float ulps) */
    float *c, *s;
    model_config_rope_tables(&m31, 4096, &c, &s);
    int half = 16;
    double worst = 0;
    for (int i = 0; i < half; i++) {
        double inv = 1.0 / pow(500000.0, 2.0 * i / 32.0), wl = 2 * M_PI / inv, f = inv;
        double lo_wl = 8192.0 / 1.0, hi_wl = 8192.0 / 4.0;
        if (wl > lo_wl) f = inv / 8.0;
        else if (wl >= hi_wl) {
            double sm = (8192.0 / wl - 1.0) / (4.0 - 1.0);
            f = (1 - sm) * inv / 8.0 + sm * inv;
        }
        for (int p = 0; p < 4096; p += 97) {
            /* transformers forms inv_freq and the angle p * inv_freq in float32, so the table may differ from the
             * exact angle by a few float ulps of the angle (p * f * 2^-22), plus the rounding of cos and sin */
            double ang = p * f, tol = 1e-6 + p * f * 2.4e-7;
            double e = fmax(fabs(c[p * half + i] - cos(ang)), fabs(s[p * half + i] - sin(ang))) / tol;
            worst = fmax(worst, e);
        }
    }
    CHECK(worst <= 1.0, "llama3 rope table off by %.3g of its tolerance", worst);
    CHECK(c[0] == 1.0f && s[0] == 0.0f, "position 0");
    free(c);
    free(s);
    ModelConfig lin = mc;
    lin.rope_type = ROPE_LINEAR;
    lin.rope_factor = 2.0;
    float *c2, *s2;
    model_config_rope_tables(&mc, 64, &c, &s);
    model_config_rope_tables(&lin, 64, &c2, &s2);
    CHECK(fabsf(c2[10 * 8 + 3] - c[5 * 8 + 3]) < 1e-6f, "linear scaling: position 10 at factor 2 = position 5");
    free(c); free(s); free(c2); free(s2);

    /* errors */
    CHECK(bad("{\"hidden_size\": 4}", "key 'vocab_size' is required"), "missing");
    CHECK(bad("{\"vocab_size\": \"x\", \"hidden_size\": 4}", "key 'vocab_size': expected a number"), "type");
    CHECK(bad("{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1,"
              "\"num_attention_heads\": 4, \"num_key_value_heads\": 3}", "num_key_value_heads"), "GQA divisibility");
    CHECK(bad("{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1,"
              "\"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
              "'yarn' is not supported"), "yarn");
    CHECK(bad("{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1,"
              "\"num_attention_heads\": 4, \"model_type\": \"gpt2\"}", "not a Llama-family"), "model_type");
    CHECK(bad("{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1,"
              "\"num_attention_heads\": 4, \"attention_bias\": true}", "attention_bias"), "bias");
    CHECK(bad("[1]", "invalid JSON"), "not an object");
    TEST_END();
}
