/* fuzz_arrow.c — an Arrow IPC stream or file (data/arrow_ipc.h): message framing, the Message, Schema and
 * RecordBatch flatbuffers, buffers assigned to the fields, every row built (all fields selected). The corpus holds
 * the test fixtures' streams (tests/fixtures/arrow). */
#include <cjson/cJSON.h>
#include "arrow_ipc.h"
#include "fuzz_common.h"

static void close_cb(void *af) { arrow_close(af); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write_file(".arrow", data, size);
    FUZZ_GUARDED({
        ArrowFile *af = arrow_open(path, NULL, 0);
        sd_cleanup_push(close_cb, af);
        while (arrow_next_row(af, NULL)) {}
        sd_cleanup_pop();
        arrow_close(af);
    });
    return 0;
}
