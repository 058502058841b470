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
    TEST_END();
}
