/* test_optim.c — learning-rate schedules against the Hugging Face scheduler formulas written out by hand. */
#include <math.h>
#include "optim.h"
#include "test_util.h"

int main(void) {
    Optim o = {0};
    o.lr = 1e-3;
    o.total_steps = 10;
    o.warmup_steps = 2;
    /* warmup: lr * s / W, starting at 0 like transformers' get_*_schedule_with_warmup */
    o.schedule = SCHED_CONSTANT;
    double want_c[5] = {0, 0.5e-3, 1e-3, 1e-3, 1e-3};
    for (int s = 0; s < 5; s++) CHECK(fabs(optim_lr_at(&o, s) - want_c[s]) < 1e-15, "constant s=%d", s);
    o.schedule = SCHED_LINEAR; /* (T - s) / (T - W) */
    CHECK(fabs(optim_lr_at(&o, 2) - 1e-3) < 1e-15, "linear at W");
    CHECK(fabs(optim_lr_at(&o, 6) - 1e-3 * 4.0 / 8.0) < 1e-15, "linear s=6");
    CHECK(optim_lr_at(&o, 10) == 0.0, "linear at T");
    o.schedule = SCHED_COSINE; /* 0.5 (1 + cos(pi (s - W) / (T - W))) */
    CHECK(fabs(optim_lr_at(&o, 6) - 1e-3 * 0.5 * (1 + cos(M_PI * 0.5))) < 1e-15, "cosine midpoint");
    CHECK(fabs(optim_lr_at(&o, 4) - 1e-3 * 0.5 * (1 + cos(M_PI * 0.25))) < 1e-15, "cosine s=4");
    o.min_lr_ratio = 0.1;
    CHECK(fabs(optim_lr_at(&o, 10) - 1e-4) < 1e-15, "cosine floor at min_lr_ratio");
    o.warmup_steps = 0;
    o.min_lr_ratio = 0;
    CHECK(optim_lr_at(&o, 0) == 1e-3, "no warmup: full lr at step 0");
    /* wsd (transformers' _get_wsd_scheduler_lambda, linear warmup): T 100, W 10, D 20 (stable 70), floor 0.1 */
    o = (Optim){.lr = 2.0, .total_steps = 100, .warmup_steps = 10, .decay_steps = 20, .min_lr_ratio = 0.1,
                .schedule = SCHED_WSD, .decay_type = DECAY_COSINE};
    const long ss[] = {0, 5, 10, 50, 79, 80, 90, 99, 100};
    /* by hand: warmup 0.1 + 0.9 s/10; stable 1; decay p = (s - 80)/20: 0.1 + 0.9 f(p); after the end the floor */
    const double cosv[] = {0.1, 0.55, 1, 1, 1, 1, 0.55, 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.95)), 0.1};
    const double linv[] = {0.1, 0.55, 1, 1, 1, 1, 0.55, 0.1 + 0.9 * 0.05, 0.1};
    const double sqrv[] = {0.1, 0.55, 1, 1, 1, 1, 0.1 + 0.9 * (1 - sqrt(0.5)), 0.1 + 0.9 * (1 - sqrt(0.95)), 0.1};
    for (int i = 0; i < 9; i++) {
        o.decay_type = DECAY_COSINE;
        CHECK(fabs(optim_lr_at(&o, ss[i]) - 2.0 * cosv[i]) < 1e-14, "wsd cosine s=%ld: %.17g", ss[i],
              optim_lr_at(&o, ss[i]));
        o.decay_type = DECAY_LINEAR;
        CHECK(fabs(optim_lr_at(&o, ss[i]) - 2.0 * linv[i]) < 1e-14, "wsd linear s=%ld: %.17g", ss[i],
              optim_lr_at(&o, ss[i]));
        o.decay_type = DECAY_1_SQRT;
        CHECK(fabs(optim_lr_at(&o, ss[i]) - 2.0 * sqrv[i]) < 1e-14, "wsd 1-sqrt s=%ld: %.17g", ss[i],
              optim_lr_at(&o, ss[i]));
    }
    o.min_lr_ratio = 0, o.warmup_steps = 0, o.decay_type = DECAY_COSINE;
    CHECK(optim_lr_at(&o, 0) == 2.0 && optim_lr_at(&o, 100) == 0.0, "wsd without warmup or floor: lr, then 0");
    TEST_END();
}
