/* safetensors.h — read and write Hugging Face safetensors files (single or sharded).
 *
 * defines: StTensor, StFile, st_open, st_close, st_find, st_read_f32, StWriter, st_write_model,
 *          st_dir_open (a model directory: model.safetensors or model.safetensors.index.json shards).
 * Format: 8-byte little-endian header length n, n bytes of JSON {"name": {"dtype", "shape", "data_offsets"}, ...,
 * "__metadata__": {...}}, then the data. Every offset and shape is checked against the file size and for overflow
 * before anything is read.
 * Ownership: StFile/StDir own their names and the mapped/read data; st_close/st_dir_close free everything.
 * st_read_f32 writes into a caller-owned buffer.
 */
#ifndef SD_SAFETENSORS_H
#define SD_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32 = 0, ST_BF16, ST_F16, ST_F64 } StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[8];
    size_t numel;           /* elements */
    size_t offset, nbytes;  /* bytes, relative to the start of the data section */
    int file;               /* index into StDir.files (0 for a single file) */
} StTensor;

typedef struct {
    char **files;           /* paths of the shard files */
    int nfiles;
    StTensor *tensors;
    int ntensors;
    size_t *data_start;     /* per file: byte offset of the data section (8 + header length) */
} StDir;

/* Opens one .safetensors file; dies with the path and what is wrong on a malformed header. */
StDir *st_open_file(const char *path);
/* Opens a model directory: <dir>/model.safetensors.index.json (sharded) if present, else <dir>/model.safetensors,
 * else the single *.safetensors file in dir. Dies when none or several unexplained files exist. */
StDir *st_open_dir(const char *dir);
void st_close(StDir *d);
/* NULL when absent. */
const StTensor *st_find(const StDir *d, const char *name);
/* Reads tensor t converted to fp32 into out[t->numel]; dies on I/O errors. */
void st_read_f32(const StDir *d, const StTensor *t, float *out);

/* One tensor to write: fp32 data, shape. With data NULL, fill(ctx, i, out) writes tensor i's numel elements into
 * out (a buffer st_write_model owns) when the file reaches it, so that a model larger than memory is written one
 * tensor at a time. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[8];
    const float *data;      /* numel fp32 elements, caller-owned; or NULL and fill */
    void (*fill)(void *ctx, int i, float *out);
    void *ctx;
} StOut;

/* Writes tensors (as F32, or BF16 when bf16 != 0) into out_dir as model.safetensors, or, when the total exceeds
 * shard_bytes, as model-00001-of-0000K.safetensors + model.safetensors.index.json (HF naming, "metadata":
 * {"total_size"}, "weight_map"). Each file is written to a temporary name and renamed. metadata {"format":"pt"}. */
void st_write_model(const char *out_dir, const StOut *tensors, int n, size_t shard_bytes, int bf16);
#endif
