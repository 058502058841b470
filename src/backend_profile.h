/* backend_profile.h — an op profiler for any backend (SIMPO_PROFILE=1): where a training step's time goes.
 *
 * defines: backend_profiled, backend_profile_reset, backend_profile_pause, backend_profile_report.
 * backend_profiled(inner) returns a Backend that forwards every op to inner and times the compute and transfer ops
 * (matmuls, norms, attention, the LM head's softmax, AdamW, copies, uploads, downloads ...): it waits for inner's
 * queued work (inner->sync) before and after each op and reads a monotonic clock, so each op's time is its own
 * device time plus one launch, and the sum over ops against the steps' wall time shows what the host adds
 * (collectives, data, launches, synchronisation). Timing every op serialises a GPU backend, so a profiled step is
 * a little slower than an unprofiled one (about one launch latency per op); the numbers are what it is for, not
 * its speed. Results are bitwise those of inner (nothing but the timing is added).
 * Matmuls are also counted per shape (M, N, K, transposes, bf16-storage operands) with their rate; the memory-bound
 * ops with their effective bandwidth (the bytes they must move at least, each input read and each output written
 * once, over their time: how far each runs from the card's bandwidth).
 * One profiler per process (static storage): one wrapped backend at a time; backend_profiled returns the same
 * table for the same inner and dies for a different one. Never freed.
 */
#ifndef SD_BACKEND_PROFILE_H
#define SD_BACKEND_PROFILE_H
#include <stdio.h>
#include "backend.h"

const Backend *backend_profiled(const Backend *inner);
/* Forgets what was timed so far (the trainer calls it after the first step: warm-up, plans, allocations). */
void backend_profile_reset(void);
/* Between backend_profile_pause(true) and (false) nothing is kept: what was timed in between is dropped (the
 * trainer's held-out evaluation, which is no step's work). Not nested. */
void backend_profile_pause(bool paused);
/* Writes the table to f, each line prefixed with `prefix`: per op calls, milliseconds per step, share of the op
 * time, GB/s (memory-bound ops); the matmul shapes with the most time and their TFLOP/s; the op time against
 * wall_s, the steps' wall-clock seconds since the last reset (steps of them). */
void backend_profile_report(FILE *f, const char *prefix, double wall_s, long steps);
#endif
