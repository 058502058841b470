/* fuzz_parquet.c — a Parquet file (data/parquet.h): footer, schema, row groups, page headers, codecs, levels and
 * every encoding; each row it accepts is built (all columns selected). The corpus holds small files of the test
 * fixtures (tests/fixtures/parquet: several codecs, page versions and encodings). */
#include <cjson/cJSON.h>
#include "fuzz_common.h"
#include "parquet.h"

static void close_cb(void *pf) { parquet_close(pf); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write_file(".parquet", data, size);
    FUZZ_GUARDED({
        ParquetFile *pf = parquet_open(path, NULL, 0);
        sd_cleanup_push(close_cb, pf);
        while (parquet_next_row(pf, NULL)) {}
        sd_cleanup_pop();
        parquet_close(pf);
    });
    return 0;
}
