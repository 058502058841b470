/* tfevents.h — TensorBoard event files (the scalars of metrics.jsonl and eval.jsonl, for TensorBoard and tools that
 * read its logs, e.g. `wandb sync --sync-tensorboard`).
 *
 * defines: TfWriter, tf_open, tf_scalars, tf_close, tf_crc32c, tf_masked_crc.
 * Format: TFRecord records (uint64 length, uint32 masked CRC-32C of the length, the bytes, uint32 masked CRC-32C of
 * the bytes; little-endian) each holding a serialized tensorflow.Event protocol buffer: the first one file_version
 * "brain.Event:2", then one per logged step with wall_time, step and a Summary of (tag, simple_value) pairs.
 * The file is DIR/events.out.tfevents.<unix seconds>.<host>.<pid>.simpo_dist, one per process that opens it (a
 * resumed run starts another; TensorBoard reads every file of the directory). Each event is flushed as written.
 * Ownership: tf_open's writer is the caller's (tf_close); tags and values are borrowed.
 */
#ifndef SD_TFEVENTS_H
#define SD_TFEVENTS_H
#include <stddef.h>
#include <stdint.h>

typedef struct TfWriter TfWriter;

/* Creates dir (mkdir -p) and a new event file in it with the file_version record. Dies naming the path on failure. */
TfWriter *tf_open(const char *dir);
/* One event: n scalars tags[i] = values[i] (stored as float, as TensorBoard's simple_value) at step, wall_time in
 * seconds since the epoch. Non-finite values are written as they are (TensorBoard shows them as NaN / inf). */
void tf_scalars(TfWriter *w, long step, double wall_time, const char *const *tags, const double *values, int n);
void tf_close(TfWriter *w);
/* The path of the writer's file (valid until tf_close). */
const char *tf_path(const TfWriter *w);

/* CRC-32C (Castagnoli, reflected 0x82F63B78) of n bytes, and TFRecord's masking of it. */
uint32_t tf_crc32c(const void *data, size_t n);
uint32_t tf_masked_crc(const void *data, size_t n);
#endif
