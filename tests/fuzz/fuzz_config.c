/* fuzz_config.c — the YAML run configuration (libyaml, the key table, model.config JSON conversion). */
#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    static Config *c;
    c = NULL;
    FUZZ_GUARDED({
        c = config_load_string(text, "fuzz.yaml", "/base");
        char *y = config_to_yaml(c);
        free(y);
    });
    config_free(c);
    free(text);
    return 0;
}
