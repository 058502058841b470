/* pipeline.h — pipeline-parallel schedules as pure functions: the list of actions one stage executes for one
 * optimizer step (Megatron's get_schedule_table idea: schedule as data, executor as a dumb loop in
 * src/train_step.c).
 *
 * defines: PpOp, PpAction, schedule_1f1b, schedule_afab, schedule_max_actions, pp_op_name.
 * Execution model the schedules are tested under (tests/unit/test_pipeline.c): a send never blocks (the executor
 * posts it non-blocking and completes it before reusing the buffer); a receive blocks until the matching send was
 * posted. SEND_FWD of stage r for micro-batch i pairs with RECV_FWD of stage r+1 for i; SEND_BWD of r+1 with
 * RECV_BWD of r. The first stage has no RECV_FWD/SEND_BWD, the last no SEND_FWD/RECV_BWD (omitted, not no-ops).
 */
#ifndef SD_PIPELINE_H
#define SD_PIPELINE_H

typedef enum { PP_RECV_FWD, PP_FWD, PP_SEND_FWD, PP_RECV_BWD, PP_BWD, PP_SEND_BWD } PpOp;
typedef struct {
    PpOp op;
    int mb;
} PpAction;

/* 1F1B (PipeDream-flush): warmup min(pp - rank - 1, n_mb) forwards, then one forward one backward, then the
 * remaining backwards; at most min(pp - rank, n_mb) micro-batches in flight. Returns the count. */
int schedule_1f1b(PpAction *out, int cap, int n_mb, int pp, int rank);
/* All forwards, then all backwards (GPipe order): the reference schedule. */
int schedule_afab(PpAction *out, int cap, int n_mb, int pp, int rank);
/* Upper bound of actions per stage: 6 * n_mb. */
int schedule_max_actions(int n_mb);
const char *pp_op_name(PpOp op);
#endif
