/* parquet_internal.h — what the Parquet reader's three files share (data/parquet.h is the public face):
 *   parquet_meta.c   Thrift's compact protocol and the footer's structures (FileMetaData, PageHeader);
 *   parquet_pages.c  a column chunk's pages: reading, decompressing, decoding levels and values;
 *   parquet_rows.c   the schema as JSON shapes, rows assembled from the columns' levels (Dremel), the public API.
 * Format: https://github.com/apache/parquet-format (parquet.thrift, Encodings.md). Field ids below are
 * parquet.thrift's. Ownership: everything is reachable from the ParquetFile (freed by parquet_close). Offsets and
 * sizes are bytes; "values" count level entries (nulls included) unless said otherwise.
 */
#ifndef SD_PARQUET_INTERNAL_H
#define SD_PARQUET_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "parquet.h"
#include "util.h"

enum { PQ_BOOLEAN = 0, PQ_INT32, PQ_INT64, PQ_INT96, PQ_FLOAT, PQ_DOUBLE, PQ_BYTE_ARRAY, PQ_FIXED };
enum { PQ_REQUIRED = 0, PQ_OPTIONAL, PQ_REPEATED };
enum { PQ_PLAIN = 0, PQ_PLAIN_DICTIONARY = 2, PQ_RLE = 3, PQ_BIT_PACKED = 4, PQ_DELTA_BINARY_PACKED = 5,
       PQ_DELTA_LENGTH_BYTE_ARRAY = 6, PQ_DELTA_BYTE_ARRAY = 7, PQ_RLE_DICTIONARY = 8, PQ_BYTE_STREAM_SPLIT = 9 };
enum { PQ_UNCOMPRESSED = 0, PQ_SNAPPY, PQ_GZIP, PQ_LZO, PQ_BROTLI, PQ_LZ4, PQ_ZSTD, PQ_LZ4_RAW };
enum { PQ_DATA_PAGE = 0, PQ_INDEX_PAGE, PQ_DICTIONARY_PAGE, PQ_DATA_PAGE_V2 };
/* ConvertedType values the reader looks at */
enum { PQ_CT_UTF8 = 0, PQ_CT_MAP = 1, PQ_CT_MAP_KEY_VALUE = 2, PQ_CT_LIST = 3, PQ_CT_DECIMAL = 5,
       PQ_CT_UINT_8 = 11, PQ_CT_UINT_16 = 12, PQ_CT_UINT_32 = 13, PQ_CT_UINT_64 = 14 };
/* LogicalType union members (their field ids) the reader looks at */
enum { PQ_LT_STRING = 1, PQ_LT_MAP = 2, PQ_LT_LIST = 3, PQ_LT_DECIMAL = 5, PQ_LT_INTEGER = 10, PQ_LT_FLOAT16 = 15 };

typedef struct {
    char *name;
    int type;              /* physical type; -1 for a group */
    int type_length;
    int repetition;        /* PQ_REQUIRED.. ; -1 when absent (the root) */
    int num_children;      /* 0 for a leaf */
    int converted;         /* -1 none */
    int logical;           /* the LogicalType member's field id, 0 none */
    bool int_unsigned;     /* LogicalType INTEGER with isSigned false */
} PqSchemaElem;

typedef struct {
    int type, codec;
    int64_t num_values;           /* level entries in the chunk */
    int64_t data_page_offset;
    int64_t dict_page_offset;     /* -1 when absent */
    int64_t total_compressed;     /* bytes of the chunk's pages, headers included */
    char **path;                  /* path_in_schema [npath] */
    int npath;
    bool external;                /* file_path set: the chunk lives in another file */
} PqColumnMeta;

typedef struct {
    int64_t num_rows;
    PqColumnMeta *cols;           /* [ncols] */
    int ncols;
} PqRowGroup;

typedef struct {
    PqSchemaElem *schema;         /* [nschema], depth first, [0] the root */
    int nschema;
    int64_t num_rows;
    PqRowGroup *rgs;              /* [nrg] */
    int nrg;
} PqMeta;

typedef struct {
    int type;                     /* PQ_DATA_PAGE.. */
    int32_t uncompressed, compressed;
    /* data page (v1 and v2) */
    int32_t num_values, encoding, def_encoding, rep_encoding;
    int32_t def_len, rep_len;     /* v2: the levels' bytes */
    bool is_compressed;           /* v2: whether the values section is compressed (default true) */
    /* dictionary page */
    int32_t dict_num_values, dict_encoding;
} PqPageHeader;

/* One value of a column: integers (INT32, INT64, BOOLEAN) in i, FLOAT and DOUBLE in d, byte arrays as a view into
 * a page buffer or the dictionary. */
typedef struct {
    union {
        int64_t i;
        double d;
        struct { const uint8_t *p; uint32_t n; } s;
    };
} PqValue;

/* A selected leaf column's reading state in the current row group (parquet_pages.c). */
typedef struct {
    int leaf;                     /* index of the leaf among the schema's leaves (= its column in a row group) */
    int type, type_length, max_def, max_rep;
    const char *name;             /* dotted path, for errors */
    bool owns_name;               /* name is allocated (freed with the file) */
    bool is_unsigned;             /* UINT_* / INTEGER(isSigned false): read as unsigned */
    const PqColumnMeta *cm;
    int64_t pos, end;             /* file offsets: the chunk's next page, the chunk's end */
    int64_t values_left;          /* level entries the chunk has yet to give */
    PqValue *dict;                /* [ndict], views into dict_buf */
    int64_t ndict;
    uint8_t *dict_buf;
    uint8_t *page_buf, *extra_buf; /* the current page decompressed; DELTA_BYTE_ARRAY's assembled strings */
    int64_t n, i;                 /* level entries of the current page, the next one */
    uint16_t *rep, *def;          /* [n] (NULL when the max level is 0) */
    PqValue *val;                 /* [nval] non-null values */
    int64_t nval, vi;
    int page_no;                  /* pages read in this chunk, for errors */
} PqCursor;

typedef struct PqJNode PqJNode;

struct ParquetFile {
    char *path;
    int fd;
    int64_t size;                 /* file bytes */
    int64_t footer_start;         /* first byte of the footer: column chunks end before it */
    PqMeta meta;
    uint8_t *footer;              /* raw footer bytes */
    /* selection and shapes (parquet_rows.c) */
    PqJNode *root;
    PqJNode **nodes;              /* every JNode allocated, [nnodes] */
    int nnodes, cap_nodes;
    int nleaves;
    PqCursor *cur;                /* [ncur] the selected leaves */
    int ncur;
    PqJNode ***paths;             /* each selected leaf's JNode path from the top-level field, [ncur][path_len] */
    int *path_len;
    /* reading position */
    int rg;                       /* current row group, -1 before the first */
    int64_t rg_row, row;          /* rows given in the current group, in the file */
    struct cJSON *row_obj;
    long values;                  /* level entries placed in the current row (RECORDS_MAX_ROW_VALUES) */
    uint8_t *hdr_buf;             /* page header read buffer */
    size_t hdr_cap;
    char *str_buf;                /* a string value made NUL-terminated */
    size_t str_cap;
    char where[512];              /* "<file>: row group G, column C, page P" for errors */
};

/* parquet_meta.c */
/* Parses the footer bytes into pf->meta; dies naming the file. */
void pq_parse_footer(ParquetFile *pf, const uint8_t *p, size_t n);
/* Parses one page header from [p, p + n); returns its length in bytes, 0 when the bytes end before it does (the
 * caller reads more), -1 when it is malformed. */
long pq_parse_page_header(const uint8_t *p, size_t n, PqPageHeader *h);
void pq_meta_free(PqMeta *m);

/* parquet_pages.c */
/* Points c at its chunk in row group rg (no reading yet). */
void pq_cursor_start(ParquetFile *pf, PqCursor *c, const PqRowGroup *rg);
/* Makes the next level entry available: false at the chunk's end. */
bool pq_cursor_more(ParquetFile *pf, PqCursor *c);
/* Whether this build decompresses codec c; pq_die_codec dies naming it (and the package that would). */
bool pq_codec_supported(int c);
SD_NORETURN void pq_die_codec(ParquetFile *pf, int codec);
/* Frees the cursor's pages and dictionary. */
void pq_cursor_release(PqCursor *c);

/* Dies with pf->where (kept current by the reader) and the message. */
SD_NORETURN SD_PRINTF(2, 3) void pq_die(ParquetFile *pf, const char *fmt, ...);
#endif
