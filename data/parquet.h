/* parquet.h — Apache Parquet files read row by row as JSON objects, so that a preference dataset downloaded from the
 * Hugging Face Hub (its `*.parquet` files) trains as its JSONL export would (data/pairs.c).
 *
 * defines: ParquetFile, parquet_is_parquet, parquet_open, parquet_num_rows, parquet_has_field, parquet_next_row,
 *          parquet_close.
 * What is read (docs/formats.md "Preference data (Parquet)"): the footer's schema and row groups; data pages v1 and
 * v2 and dictionary pages; encodings PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY, RLE (booleans), DELTA_BINARY_PACKED,
 * DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT; codecs UNCOMPRESSED, and SNAPPY, GZIP, ZSTD,
 * LZ4_RAW, BROTLI where the build found their libraries (parquet_codecs). A row becomes a JSON object of the selected
 * top-level fields in schema order: strings (UTF8 or plain binary) as strings, integers and floating point as
 * numbers (int64 beyond 2^53 loses precision, as in any JSON), booleans, LIST-annotated groups and repeated fields
 * as arrays (the 3-level and the legacy 2-level layouts), other groups as objects (a MAP as an object holding its
 * repeated key_value group: {"key_value": [{"key": .., "value": ..}, ..]}), nulls as null. INT96, FIXED_LEN_BYTE_ARRAY and DECIMAL columns are refused by name
 * when selected (no preference dataset holds them); unselected columns are never read.
 * Errors: sd_die naming the file (and the row group, column and page) and what was expected. Sizes the file
 * claims are checked against the file before anything is allocated for them; one page may hold at most
 * PARQUET_MAX_PAGE_BYTES and PARQUET_MAX_PAGE_VALUES.
 * Memory: one page per selected column at a time (and its dictionary), plus the current row.
 * Ownership: parquet_open returns a ParquetFile the caller closes with parquet_close; everything it allocates is
 * reachable from it, so a caller that may die while it is open registers parquet_close with sd_cleanup_push.
 */
#ifndef SD_PARQUET_H
#define SD_PARQUET_H
#include <stdbool.h>
#include <stdint.h>

#define PARQUET_MAX_PAGE_BYTES (256 << 20)   /* decompressed bytes of one page (writers' defaults: ~1 MiB) */
#define PARQUET_MAX_PAGE_VALUES (1 << 24)    /* level entries of one page, entries of a dictionary */

typedef struct ParquetFile ParquetFile;
struct cJSON;

/* Whether the file starts with Parquet's magic "PAR1". */
bool parquet_is_parquet(const char *path);
/* Opens path and reads its footer. fields[0..nfields): the top-level fields to read (nfields 0: all); a name the
 * file lacks is no error (parquet_has_field). Dies naming the file on a damaged footer or a selected field of a
 * kind listed above as refused. */
ParquetFile *parquet_open(const char *path, const char *const *fields, int nfields);
int64_t parquet_num_rows(const ParquetFile *pf);
/* Whether the file's schema has this top-level field and it was selected. */
bool parquet_has_field(const ParquetFile *pf, const char *name);
/* The file's top-level field names, selected or not, in schema order, joined by ", " into buf (cut to n bytes). */
void parquet_field_names(const ParquetFile *pf, char *buf, size_t n);
/* The next row as a JSON object (owned by pf: valid until the next call or parquet_close), NULL after the last.
 * *row_out (may be NULL) gets its 1-based number. */
const struct cJSON *parquet_next_row(ParquetFile *pf, int64_t *row_out);
/* Frees pf and everything it holds; NULL is ignored. */
void parquet_close(ParquetFile *pf);
/* The codecs this build decompresses, e.g. "snappy gzip zstd lz4_raw brotli" (static storage). */
const char *parquet_codecs(void);
#endif
