/* fuzz_safetensors.c — a safetensors file: header length, JSON header, dtypes, shapes, offsets; then every tensor
 * it accepts is read (bounded: the header's sizes were checked against the file size before). */
#include "fuzz_st_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_st_open_and_read(st_open_file, fz_write_file(".safetensors", data, size));
    return 0;
}
