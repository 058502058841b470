/* arrow_ipc.h — Apache Arrow IPC streams (and IPC files) read row by row as JSON objects: the `.arrow` files that
 * Hugging Face datasets' `save_to_disk` and its cache write (data-0000K-of-0000N.arrow, a pyarrow
 * RecordBatchStreamWriter's stream), so that a dataset the SimPO reference pipeline (alignment-handbook's
 * `load_from_disk` fallback) reads from disk trains as its JSONL export would (data/records.c).
 *
 * defines: ArrowFile, arrow_is_arrow, arrow_open, arrow_has_field, arrow_field_names, arrow_next_row, arrow_close.
 * What is read (docs/formats.md "Preference data (Arrow)"): the stream's Schema and RecordBatch messages (an IPC
 * file is read as the stream it holds); types Null, Bool, Int (8-64 bits, signed or not), FloatingPoint (32, 64),
 * Utf8, Binary, LargeUtf8, LargeBinary, List, LargeList, FixedSizeList, Struct, Map (as a list of {key, value}
 * objects). A row becomes a JSON object of the selected top-level fields in schema order, nulls as null, lists as
 * arrays, structs as objects (as parquet.h). Refused by name where a selected field has them: other types,
 * dictionary-encoded fields; anywhere: compressed record batches, big-endian data, the view types.
 * Checked before use: every message's length and body against the file, every flatbuffer offset against its
 * message, each buffer inside the body and long enough for its array, offsets non-decreasing and inside what they
 * index, nesting at most 64 deep. Memory: one record batch at a time.
 * Errors: sd_die naming the file (and the message, column and row) and what was expected.
 * Ownership: arrow_open returns an ArrowFile the caller closes with arrow_close; everything it allocates is
 * reachable from it (a caller that may die while it is open registers arrow_close with sd_cleanup_push).
 */
#ifndef SD_ARROW_IPC_H
#define SD_ARROW_IPC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ArrowFile ArrowFile;
struct cJSON;

/* Whether the file starts as an Arrow IPC file ("ARROW1") or stream (a continuation marker 0xFFFFFFFF). */
bool arrow_is_arrow(const char *path);
/* Opens path and reads its schema. fields[0..nfields): the top-level fields to read (0: all). */
ArrowFile *arrow_open(const char *path, const char *const *fields, int nfields);
/* Whether the schema has this top-level field and it was selected. */
bool arrow_has_field(const ArrowFile *af, const char *name);
/* The schema's top-level field names (all), joined by ", " into buf (cut to n bytes). */
void arrow_field_names(const ArrowFile *af, char *buf, size_t n);
/* The next row as a JSON object (owned by af: valid until the next call or arrow_close), NULL after the last.
 * *row_out (may be NULL): its 1-based number. */
const struct cJSON *arrow_next_row(ArrowFile *af, int64_t *row_out);
/* Frees af; NULL is ignored. */
void arrow_close(ArrowFile *af);
#endif
