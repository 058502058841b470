/* records.h — the records of a data file as JSON objects, whatever its format, so that one parser serves every
 * format a dataset comes in (pairs, prompts, score --write-ref):
 *   JSONL         one object a line (blank lines skipped);
 *   a JSON array  of objects, as json.dump of a list writes it, indented or not (the SimPO repository's on-policy
 *                 data generation writes its pairs so); recognised by '[' as the first character;
 *   Parquet       rows of the selected columns (data/parquet.h), recognised by its magic;
 *   Arrow         an IPC stream or file (data/arrow_ipc.h: Hugging Face datasets' `.arrow` files), recognised by
 *                 its first bytes; or a datasets `save_to_disk` directory: its files in state.json's order (else
 *                 data-*.arrow, sorted), one after the other (a DatasetDict's directory is refused, naming its
 *                 splits' directories).
 * defines: Records, records_open, records_next, records_where, records_is_table, records_has_field, records_close.
 * Limits: one line or array element at most RECORDS_MAX_BYTES (an error naming the line beyond it).
 * Errors: sd_die naming "<file>:<line>" (JSONL, arrays: the element's first line) or "<file>: row <n>" (Parquet,
 * Arrow: the row in that file).
 * Ownership: records_open returns a Records the caller closes with records_close; a caller that may die while it is
 * open registers records_close's cleanup (everything it holds is reachable from it). */
#ifndef SD_RECORDS_H
#define SD_RECORDS_H
#include <stdbool.h>
#include <stddef.h>

#define RECORDS_MAX_BYTES (64 << 20)
/* JSON values one Parquet or Arrow row may build (nulls and empty lists count): a row of token ids holds some
 * thousands; the bound keeps a file whose levels or offsets claim billions of nulls from taking all memory. */
#define RECORDS_MAX_ROW_VALUES (1 << 24)

typedef struct Records Records;
struct cJSON;

/* Opens path. fields[0..nfields): a Parquet file's columns to read (nfields 0: all); other formats give every
 * field. Dies naming the file when it cannot be opened. */
Records *records_open(const char *path, const char *const *fields, int nfields);
/* The next record as a JSON object (owned by r: valid until the next call or records_close), NULL after the last.
 * *num: its line (JSONL; an array element's first line) or its row (Parquet; Arrow: counted over a directory's
 * files), 1-based. Dies naming the line on
 * malformed JSON, an array element that is not an object, or a line over the limit. */
const struct cJSON *records_next(Records *r, long *num);
/* "<file>:<line>" or "<file>: row <n>" of the current record ("<file>" before the first and after the last). */
const char *records_where(const Records *r);
/* Parquet, Arrow: every record has every selected column (null where the row has none). */
bool records_is_table(const Records *r);
/* Parquet, Arrow: whether the file has this (selected) column; other formats: true (a record says). */
bool records_has_field(const Records *r, const char *name);
/* The fields records may have, joined by ", " into buf (cut to n bytes): a Parquet or Arrow file's top-level
 * columns (all, selected or not), else obj's members (the current record's). For errors that name a missing
 * field. */
void records_field_names(const Records *r, const struct cJSON *obj, char *buf, size_t n);
/* Frees r; NULL is ignored. */
void records_close(Records *r);
/* records_close for sd_cleanup_push. */
void records_release(void *r);
#endif
