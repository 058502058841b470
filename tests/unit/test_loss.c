/* test_loss.c — each objective's value against an independent float64 formula on hand-made statistics, and its
 * derivatives against central finite differences (step 1e-5 in double: truncation error ~1e-10, so 1e-7
 * absolute is a tight, honest bound). */
#include <math.h>
#include "loss.h"
#include "test_util.h"

static double lsig(double z) { return -log(1.0 + exp(-z)); }

static double total(const LossParams *lp, PairStats ps, long B, long ntok) {
    LossOut o;
    loss_pair(lp, &ps, B, ntok, &o);
    return o.loss;
}

int main(void) {
    PairStats cases[3] = {
        {-12.5, -30.25, 5, 9, -11.0, -29.0},
        {-40.0, -10.0, 8, 3, -41.5, -9.0},
        {-3.0, -3.0, 2, 2, -2.0, -4.0},
    };
    LossParams lps[6] = {
        {LOSS_SIMPO, 2.0, 1.0, 0.0, 0.0},   {LOSS_SIMPO, 2.5, 1.375, 0.1, 0.0}, {LOSS_SIMPO_HINGE, 2.0, 1.0, 0.0, 0.0},
        {LOSS_DPO, 0.1, 0.0, 0.0, 0.0},     {LOSS_DPO, 0.5, 0.0, 0.2, 0.0},     {LOSS_SIMPO, 2.0, 1.0, 0.0, 0.5},
    };
    const long B = 4, NTOK = 20;
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 6; k++) {
            const PairStats *ps = &cases[c];
            const LossParams *lp = &lps[k];
            LossOut o;
            loss_pair(lp, ps, B, NTOK, &o);
            /* independent value */
            double z, want;
            if (lp->type == LOSS_DPO) z = lp->beta * ((ps->sum_w - ps->ref_w) - (ps->sum_l - ps->ref_l));
            else z = lp->beta * (ps->sum_w / ps->n_w) - lp->beta * (ps->sum_l / ps->n_l) - lp->gamma;
            if (lp->type == LOSS_SIMPO_HINGE) want = fmax(0.0, 1.0 - z);
            else want = -(1 - lp->label_smoothing) * lsig(z) - lp->label_smoothing * lsig(-z);
            want = want / B - lp->sft_weight * ps->sum_w / NTOK;
            CHECK(fabs(o.loss - want) <= 1e-12 * fmax(1.0, fabs(want)), "case %d obj %d: loss %.15g want %.15g", c, k,
                  o.loss, want);
            /* finite differences */
            double h = 1e-5;
            PairStats p1 = *ps, p2 = *ps;
            p1.sum_w += h;
            p2.sum_w -= h;
            double fd_w = (total(lp, p1, B, NTOK) - total(lp, p2, B, NTOK)) / (2 * h);
            p1 = *ps;
            p2 = *ps;
            p1.sum_l += h;
            p2.sum_l -= h;
            double fd_l = (total(lp, p1, B, NTOK) - total(lp, p2, B, NTOK)) / (2 * h);
            CHECK(fabs(fd_w - o.d_sum_w) <= 1e-7, "case %d obj %d: d/dsum_w %.10g fd %.10g", c, k, o.d_sum_w, fd_w);
            CHECK(fabs(fd_l - o.d_sum_l) <= 1e-7, "case %d obj %d: d/dsum_l %.10g fd %.10g", c, k, o.d_sum_l, fd_l);
            /* rewards */
            double rw = lp->type == LOSS_DPO ? lp->beta * (ps->sum_w - ps->ref_w) : lp->beta * ps->sum_w / ps->n_w;
            CHECK(fabs(o.reward_w - rw) <= 1e-12 * fabs(rw) + 1e-15, "case %d obj %d: reward", c, k);
        }
    /* large |z| stays finite */
    PairStats far = {-1.0, -1000.0, 1, 1, 0, 0};
    LossOut o;
    loss_pair(&lps[0], &far, 1, 1, &o);
    CHECK(isfinite(o.loss) && o.loss >= 0 && isfinite(o.d_sum_w), "z = 1998 is finite");
    PairStats neg = {-1000.0, -1.0, 1, 1, 0, 0};
    loss_pair(&lps[0], &neg, 1, 1, &o);
    CHECK(isfinite(o.loss) && fabs(o.loss - 1999.0) < 1e-6, "z = -1999: loss %.10g", o.loss);
    TEST_END();
}
