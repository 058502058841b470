/* fuzz_hfconfig.c — Hugging Face config.json (rope_parameters / rope_scaling, sizes, types), its export, and the
 * RoPE tables of accepted configs (bounded sizes). */
#include "fuzz_common.h"
#include "model_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    FUZZ_GUARDED({
        ModelConfig mc = model_config_from_json(text, "config.json");
        char *js = model_config_to_json(&mc);
        free(js);
        if (mc.head_dim <= 4096) {
            float *c, *s;
            model_config_rope_tables(&mc, 8, &c, &s);
            free(c);
            free(s);
        }
    });
    free(text);
    return 0;
}
