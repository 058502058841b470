/* test_pipeline.c — the 1F1B and all-forward-all-backward schedules, simulated for every stage together under
 * the executor's model (a send never blocks; a receive waits for its matching send): no deadlock, sends and
 * receives pair up, each stage runs one forward and one backward per micro-batch in order with the forward first,
 * 1F1B keeps at most min(pp - stage, n_mb) micro-batches in flight (AFAB: all), and with free communication the
 * 1F1B makespan is the classic 2 (n_mb + pp - 1) compute rounds. */
#include "pipeline.h"
#include "test_util.h"

#define MAXPP 8
#define MAXMB 12

typedef int (*Sched)(PpAction *, int, int, int, int);

static int pending_sends_newer_than(int sent[2][MAXPP][MAXMB], int pp, int n_mb, int round) {
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < pp; r++)
            for (int i = 0; i < n_mb; i++)
                if (sent[d][r][i] > round) return 1;
    return 0;
}

/* returns the number of problems; *rounds gets the lockstep makespan in compute rounds */
static int simulate(Sched f, int n_mb, int pp, int one_f_one_b, int *rounds) {
    PpAction acts[MAXPP][6 * MAXMB];
    int n[MAXPP], pc[MAXPP] = {0}, errs = 0;
    /* sent[dir][stage][mb]: 1 + the round in which `stage` sent (dir 0: forward to stage+1, 1: backward to
     * stage-1), 0 before; a receive can use a send of an earlier round only (communication takes the rest of the
     * round, so data does not cross several stages in one round) */
    static int sent[2][MAXPP][MAXMB];
    memset(sent, 0, sizeof sent);
    int fwd_done[MAXPP][MAXMB] = {{0}}, bwd_done[MAXPP][MAXMB] = {{0}}, next_f[MAXPP] = {0}, next_b[MAXPP] = {0};
    int inflight[MAXPP] = {0}, peak[MAXPP] = {0};
    for (int r = 0; r < pp; r++) n[r] = f(acts[r], 6 * MAXMB, n_mb, pp, r);
    *rounds = 0;
    for (;;) {
        int progressed = 0, all_done = 1;
        int computed[MAXPP] = {0};
        for (int r = 0; r < pp; r++) {
            /* run communication freely, at most one compute action per round */
            while (pc[r] < n[r]) {
                PpAction a = acts[r][pc[r]];
                int i = a.mb;
                if (a.op == PP_RECV_FWD) {
                    if (r == 0 || !sent[0][r - 1][i] || sent[0][r - 1][i] > *rounds) break;
                } else if (a.op == PP_RECV_BWD) {
                    if (r == pp - 1 || !sent[1][r + 1][i] || sent[1][r + 1][i] > *rounds) break;
                } else if (a.op == PP_SEND_FWD) {
                    errs += r == pp - 1 || !fwd_done[r][i] || sent[0][r][i];
                    sent[0][r][i] = *rounds + 1;
                } else if (a.op == PP_SEND_BWD) {
                    errs += r == 0 || !bwd_done[r][i] || sent[1][r][i];
                    sent[1][r][i] = *rounds + 1;
                } else {
                    if (computed[r]) break;
                    computed[r] = 1;
                    if (a.op == PP_FWD) {
                        errs += i != next_f[r]++ || fwd_done[r][i]++;
                        errs += r > 0 && !sent[0][r - 1][i];
                        if (++inflight[r] > peak[r]) peak[r] = inflight[r];
                    } else {
                        errs += i != next_b[r]++ || !fwd_done[r][i] || bwd_done[r][i]++;
                        errs += r < pp - 1 && !sent[1][r + 1][i];
                        inflight[r]--;
                    }
                }
                pc[r]++;
                progressed = 1;
            }
            all_done &= pc[r] == n[r];
        }
        if (all_done) break;
        if (!progressed && !pending_sends_newer_than(sent, pp, n_mb, *rounds)) return errs + 1000; /* deadlock */
        ++*rounds;
    }
    ++*rounds; /* rounds executed, the last included */
    for (int r = 0; r < pp; r++) {
        errs += next_f[r] != n_mb || next_b[r] != n_mb;
        int cap = pp - r < n_mb ? pp - r : n_mb;
        errs += one_f_one_b ? peak[r] > cap : peak[r] != n_mb;
    }
    return errs;
}

int main(void) {
    int bad = 0, deadlocks = 0, makespan_bad = 0;
    for (int pp = 1; pp <= MAXPP; pp++)
        for (int n_mb = 1; n_mb <= MAXMB; n_mb++) {
            int rounds, e1 = simulate(schedule_1f1b, n_mb, pp, 1, &rounds);
            if (n_mb >= pp && rounds != 2 * (n_mb + pp - 1)) makespan_bad++;
            int r2, e2 = simulate(schedule_afab, n_mb, pp, 0, &r2);
            deadlocks += e1 >= 1000 || e2 >= 1000;
            bad += (e1 % 1000) + (e2 % 1000);
            if (e1 || e2) fprintf(stderr, "pp %d n_mb %d: 1f1b %d, afab %d problems\n", pp, n_mb, e1, e2);
        }
    CHECK(deadlocks == 0, "%d deadlocks", deadlocks);
    CHECK(bad == 0, "%d ordering / pairing / memory problems", bad);
    CHECK(makespan_bad == 0, "%d cases off the 2 (n_mb + pp - 1) makespan", makespan_bad);
    int r;
    simulate(schedule_1f1b, 8, 4, 1, &r);
    printf("1F1B pp 4, 8 micro-batches: %d rounds, bubble %.0f%%\n", r, 100.0 * (r - 2 * 8) / r);
    PpAction a[64];
    int n = schedule_1f1b(a, 64, 4, 2, 0);
    const char *want = "fwd0 send_fwd0 fwd1 send_fwd1 recv_bwd0 bwd0 fwd2 send_fwd2 recv_bwd1 bwd1 fwd3 send_fwd3 "
                       "recv_bwd2 bwd2 recv_bwd3 bwd3 ";
    char got[512] = "";
    for (int i = 0; i < n; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d ", pp_op_name(a[i].op), a[i].mb);
    CHECK(!strcmp(got, want), "stage 0 of 2, 4 micro-batches:\n  got  %s\n  want %s", got, want);
    TEST_END();
}
