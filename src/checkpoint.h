/* checkpoint.h — HDF5 training checkpoints, written atomically, keyed by global tensor names.
 *
 * defines: CkptTensor, CkptMeta, ckpt_prepare, ckpt_write_rank, ckpt_write_rank_from, ckpt_commit, ckpt_save, ckpt_find_latest, ckpt_open, ckpt_read, ckpt_close, CkptReader.
 * Layout on disk (docs/formats.md):
 *   <dir>/step-NNNNNNNN/rank-RRRRR.h5   this rank's slices: /param/<name>, /exp_avg/<name>, /exp_avg_sq/<name>,
 *                                      each with attributes global_shape (int64[]) and offset (int64[])
 *   <dir>/step-NNNNNNNN/index.h5        written last by rank 0: virtual datasets /param/<name>, ... assembling
 *                                      every full tensor from the rank files, and group /meta with attributes
 *                                      step, data_epoch, data_pos, seed, skipped, tokens_seen, total_flos,
 *                                      config_yaml, model_config_json, layout
 *   <dir>/latest                       text file naming the newest complete step directory
 * The step directory is first written as step-NNNNNNNN.tmp and renamed when complete, then `latest` is replaced
 * atomically; a crash leaves at most a stray .tmp directory, never a half checkpoint as the latest.
 * Ownership: CkptTensor data pointers are the caller's; CkptReader owns what it opened (ckpt_close).
 */
#ifndef SD_CHECKPOINT_H
#define SD_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;          /* global (HF) name */
    int ndim;
    int64_t global_shape[4];
    int64_t offset[4];         /* this slice's offset in the global tensor */
    int64_t local_shape[4];    /* this slice's shape */
    const float *param, *exp_avg, *exp_avg_sq;  /* local slice data (exp_avg* may be NULL: not saved) */
} CkptTensor;

typedef struct {
    long step;                 /* optimizer steps done */
    long data_epoch;           /* epoch of the next unseen pair */
    long data_pos;             /* index into that epoch's order of the next unseen pair */
    long seed;
    const char *config_yaml;   /* resolved config */
    const char *model_config_json;
    const char *layout;        /* e.g. "dp1-pp1-tp1-zero0" */
    long skipped;              /* steps skipped for non-finite values (train.nonfinite: skip); AdamW's t is
                                * step - skipped. Absent in older checkpoints: 0 */
    int64_t tokens_seen;       /* tokens the steps so far trained on (metrics.jsonl num_input_tokens_seen) */
    double total_flos;         /* their model FLOPs (metrics.jsonl total_flos). Both absent in older checkpoints: 0 */
    int64_t data_pairs;        /* training pairs the run read (after truncation) and their fingerprint (pairs.h
                                * pairs_fingerprint), what a resume compares (checkpoint.check_data); 0 / 0 in older
                                * checkpoints: nothing to compare */
    uint64_t data_fingerprint;
} CkptMeta;

/* Saving is three phases so that several ranks can share it; the caller puts a barrier between them:
 *   rank 0:     ckpt_prepare(dir, step)             creates <dir>/step-NNNNNNNN.tmp (removing a stale one)
 *   every rank: ckpt_write_rank(dir, step, rank, tensors, n)   writes rank-RRRRR.h5 into the .tmp directory
 *   rank 0:     ckpt_commit(dir, meta, world)        builds index.h5 from the rank files' datasets and
 *               attributes (every tensor must be covered exactly once, else it dies naming the tensor), renames
 *               the directory into place, replaces `latest`, and returns the final path (caller frees).
 * ckpt_save does all three for a single-rank job. */
void ckpt_prepare(const char *dir, long step);
void ckpt_write_rank(const char *dir, long step, int rank, const CkptTensor *tensors, int n);
/* ckpt_write_rank of tensors whose data lie in other memory (a backend's: param, exp_avg, exp_avg_sq are its
 * addresses): read(ctx, dst, src, n) copies n floats from src into a host buffer before each dataset is written, so
 * one slice at a time is in host memory, not the rank's weights and moments. */
void ckpt_write_rank_from(const char *dir, long step, int rank, const CkptTensor *tensors, int n,
                          void (*read)(void *ctx, float *dst, const float *src, size_t n), void *ctx);
char *ckpt_commit(const char *dir, const CkptMeta *meta, int world);
char *ckpt_save(const char *dir, const CkptMeta *meta, const CkptTensor *tensors, int n);

/* Rank 0, after a commit: keeps the newest `keep` step directories (checkpoint.keep), removes the older ones. */
void ckpt_prune(const char *dir, int keep);

/* FNV-1a 64 over the bytes of n floats: the `checksum` attribute of every rank-file dataset. */
uint64_t ckpt_hash(const float *data, size_t n);
/* Reads every dataset of every rank file of a step directory and compares it with its checksum; also checks that
 * index.h5 and all rank files open. Returns 1 when sound, else 0 with the reason in why (never dies). */
int ckpt_verify(const char *step_dir, char *why, size_t cap);
/* The newest step directory under dir that ckpt_verify accepts; each damaged newer one is reported on stderr as a
 * warning. NULL when there is none. Caller frees. */
char *ckpt_find_latest_valid(const char *dir);

/* Path of the newest complete checkpoint under dir (via `latest`, else the highest step-* with index.h5), or
 * NULL when there is none. Caller frees. Accepts a step directory or an index.h5 path as well. */
char *ckpt_find_latest(const char *dir_or_path);

typedef struct CkptReader CkptReader;
/* Opens <step_dir>/index.h5; dies naming the file when it is missing or malformed. */
CkptReader *ckpt_open(const char *step_dir);
/* Meta strings are owned by the reader. */
const CkptMeta *ckpt_meta(const CkptReader *r);
/* Reads a hyperslab [offset, offset+count) of the full tensor group/name (group: "param", "exp_avg",
 * "exp_avg_sq") into out (fp32). Dies naming the tensor when it is absent or the slice is out of range. */
void ckpt_read(CkptReader *r, const char *group, const char *name, int ndim, const int64_t *offset,
               const int64_t *count, float *out);
/* Global shape of a tensor; returns ndim, or -1 when absent. */
int ckpt_shape(CkptReader *r, const char *group, const char *name, int64_t *shape_out);
void ckpt_close(CkptReader *r);
#endif
