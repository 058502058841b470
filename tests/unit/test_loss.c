/* test_loss.c — every objective's value against an independent float64 formula written out here (the SimPO
 * paper's Table 3 and the TRL implementations, docs/losses.md) on hand-made statistics, and its derivatives
 * against central finite differences (step 1e-5 in double: truncation error ~1e-10, so 1e-7 absolute is a tight,
 * honest bound). */
#include <math.h>
#include "loss.h"
#include "test_util.h"

static double lsig(double z) { return -log(1.0 + exp(-z)); }
static double relu(double x) { return x > 0 ? x : 0; }

static double total(const LossParams *lp, PairStats ps, long B, long ntok) {
    LossOut o;
    loss_pair(lp, &ps, B, ntok, &o);
    return o.loss;
}

/* the objective of one pair, before the 1/B batch mean, without its NLL term */
static double reference(const LossParams *lp, const PairStats *p) {
    double b = lp->beta, eps = lp->label_smoothing, aw = p->sum_w / p->n_w, al = p->sum_l / p->n_l, z;
    switch (lp->type) {
    case LOSS_SIMPO: case LOSS_CPO_SIMPO:
        z = b * aw - b * al - lp->gamma;
        return -(1 - eps) * lsig(z) - eps * lsig(-z);
    case LOSS_SIMPO_HINGE: return relu(1 - (b * aw - b * al - lp->gamma));
    case LOSS_DPO:
        z = b * (p->sum_w - p->ref_w) - b * (p->sum_l - p->ref_l);
        return -(1 - eps) * lsig(z) - eps * lsig(-z);
    case LOSS_RDPO:
        z = b * (p->sum_w - p->ref_w) - b * (p->sum_l - p->ref_l) + (lp->alpha * p->n_w - lp->alpha * p->n_l);
        return -(1 - eps) * lsig(z) - eps * lsig(-z);
    case LOSS_IPO: {
        double h = (aw - p->ref_w / p->n_w) - (al - p->ref_l / p->n_l);
        return pow(h - 1 / (2 * b), 2);
    }
    case LOSS_CPO:
        z = b * p->sum_w - b * p->sum_l;
        return -(1 - eps) * lsig(z) - eps * lsig(-z);
    case LOSS_ORPO: {
        double pw = exp(aw), pl = exp(al);
        return -lp->lambda * lsig(log(pw / (1 - pw)) - log(pl / (1 - pl)));
    }
    case LOSS_RRHF: return relu(-aw + al);
    case LOSS_SLIC: return relu(lp->delta - p->sum_w + p->sum_l);
    case LOSS_KTO: break; /* a micro-batch function: kto_checks */
    }
    return NAN;
}
static double nll_w(const LossParams *lp) {
    double k = lp->sft_weight;
    if (lp->type == LOSS_CPO || lp->type == LOSS_RRHF || lp->type == LOSS_SLIC) k += lp->lambda;
    if (lp->type == LOSS_ORPO) k += 1.0;
    return k;
}

/* KTO, paired (TRL kto_pair), written out over the whole micro-batch: terms 1 - sigma(beta (c_i - KL_r)) and
 * 1 - sigma(beta (KL_c - r_i)), KL from the micro-batch means clamped at 0, averaged over 2B. */
static double kto_reference(double beta, const PairStats *ps, int P, long B) {
    double mc = 0, mr = 0, tot = 0;
    for (int i = 0; i < P; i++) mc += (ps[i].sum_w - ps[i].ref_w) / P, mr += (ps[i].sum_l - ps[i].ref_l) / P;
    double klc = fmax(mc, 0), klr = fmax(mr, 0);
    for (int i = 0; i < P; i++) {
        double c = ps[i].sum_w - ps[i].ref_w, r = ps[i].sum_l - ps[i].ref_l;
        tot += 1 - 1 / (1 + exp(-beta * (c - klr))) + 1 - 1 / (1 + exp(-beta * (klc - r)));
    }
    return tot / (2.0 * B);
}
static double kto_total(const LossParams *lp, const PairStats *ps, int P, long B) {
    LossOut o[8];
    loss_microbatch(lp, ps, P, B, 1, o);
    double t = 0;
    for (int i = 0; i < P; i++) t += o[i].loss;
    return t;
}
static void kto_checks(void) {
    /* three micro-batches: both KL estimates positive, both clamped to zero, one of each */
    PairStats mbs[3][3] = {
        {{-10, -20, 4, 5, -12, -21}, {-5, -9, 2, 3, -6, -10}, {-7, -8, 3, 3, -7.5, -8.2}},
        {{-10, -20, 4, 5, -9, -19}, {-5, -9, 2, 3, -4, -8}, {-7, -8, 3, 3, -6.5, -7.2}},
        {{-10, -20, 4, 5, -12, -19}, {-5, -9, 2, 3, -6, -8}, {-7, -8, 3, 3, -7.5, -7.2}},
    };
    LossParams lp = {.type = LOSS_KTO, .beta = 0.3};
    const long B = 6;
    for (int k = 0; k < 3; k++) {
        PairStats *ps = mbs[k];
        LossOut o[3];
        loss_microbatch(&lp, ps, 3, B, 1, o);
        double want = kto_reference(lp.beta, ps, 3, B), got = o[0].loss + o[1].loss + o[2].loss;
        CHECK(fabs(got - want) <= 1e-12, "kto micro-batch %d: loss %.15g want %.15g", k, got, want);
        for (int i = 0; i < 3; i++)
            for (int side = 0; side < 2; side++) {
                double h = 1e-5, save;
                double *x = side ? &ps[i].sum_l : &ps[i].sum_w;
                save = *x;
                *x = save + h;
                double up = kto_total(&lp, ps, 3, B);
                *x = save - h;
                double dn = kto_total(&lp, ps, 3, B);
                *x = save;
                double fd = (up - dn) / (2 * h), an = side ? o[i].d_sum_l : o[i].d_sum_w;
                CHECK(fabs(fd - an) <= 1e-8, "kto mb %d pair %d %s: analytic %.10g fd %.10g", k, i,
                      side ? "rejected" : "chosen", an, fd);
            }
        CHECK(fabs(o[1].reward_w - 0.3 * (ps[1].sum_w - ps[1].ref_w)) < 1e-12, "kto reward = beta (S - R)");
    }
    CHECK(loss_needs_reference(LOSS_KTO), "kto reads reference log-probs");
    /* other objectives through loss_microbatch equal loss_pair */
    LossParams s = {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0};
    LossOut a[3], b;
    loss_microbatch(&s, mbs[0], 3, B, 1, a);
    loss_pair(&s, &mbs[0][2], B, 1, &b);
    CHECK(a[2].loss == b.loss && a[2].d_sum_l == b.d_sum_l, "loss_microbatch = loss_pair for simpo");
}

int main(void) {
    kto_checks();
    PairStats cases[4] = {
        {-12.5, -30.25, 5, 9, -11.0, -29.0},
        {-40.0, -10.0, 8, 3, -41.5, -9.0},
        {-3.0, -3.5, 2, 2, -2.0, -4.0}, /* no case sits on a hinge's kink */
        {-0.5, -6.0, 4, 3, -1.0, -5.0},
    };
    LossParams lps[] = {
        {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0},
        {.type = LOSS_SIMPO, .beta = 2.5, .gamma = 1.375, .label_smoothing = 0.1},
        {.type = LOSS_SIMPO_HINGE, .beta = 2.0, .gamma = 1.0},
        {.type = LOSS_DPO, .beta = 0.1},
        {.type = LOSS_DPO, .beta = 0.5, .label_smoothing = 0.2},
        {.type = LOSS_SIMPO, .beta = 2.0, .gamma = 1.0, .sft_weight = 0.5},
        {.type = LOSS_CPO_SIMPO, .beta = 10.0, .gamma = 3.0, .sft_weight = 0.05},
        {.type = LOSS_IPO, .beta = 0.5},
        {.type = LOSS_RDPO, .beta = 0.1, .alpha = 0.05},
        {.type = LOSS_RDPO, .beta = 0.3, .alpha = -0.2, .label_smoothing = 0.1},
        {.type = LOSS_CPO, .beta = 0.1, .lambda = 1.0},
        {.type = LOSS_ORPO, .lambda = 0.1},
        {.type = LOSS_ORPO, .lambda = 0.5, .sft_weight = 0.2},
        {.type = LOSS_RRHF, .lambda = 1.0},
        {.type = LOSS_SLIC, .delta = 1.0, .lambda = 0.1},
        {.type = LOSS_SLIC, .delta = 40.0, .lambda = 0.0},
    };
    const int NL = (int)(sizeof lps / sizeof lps[0]);
    const long B = 4, NTOK = 20;
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < NL; k++) {
            const PairStats *ps = &cases[c];
            const LossParams *lp = &lps[k];
            LossOut o;
            loss_pair(lp, ps, B, NTOK, &o);
            double want = reference(lp, ps) / B - nll_w(lp) * ps->sum_w / NTOK;
            CHECK(fabs(o.loss - want) <= 1e-12 * fmax(1.0, fabs(want)), "case %d %s: loss %.15g want %.15g", c,
                  loss_type_name(lp->type), o.loss, want);
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
            CHECK(fabs(fd_w - o.d_sum_w) <= 1e-7, "case %d %s: d/dsum_w %.10g fd %.10g", c, loss_type_name(lp->type),
                  o.d_sum_w, fd_w);
            CHECK(fabs(fd_l - o.d_sum_l) <= 1e-7, "case %d %s: d/dsum_l %.10g fd %.10g", c, loss_type_name(lp->type),
                  o.d_sum_l, fd_l);
        }
    /* rewards of the reference trainers */
    LossOut o;
    loss_pair(&lps[0], &cases[0], 1, 1, &o);
    CHECK(fabs(o.reward_w - 2.0 * -12.5 / 5) < 1e-12 && fabs(o.logp_l - -30.25 / 9) < 1e-12, "simpo rewards");
    loss_pair(&lps[3], &cases[0], 1, 1, &o);
    CHECK(fabs(o.reward_l - 0.1 * (-30.25 + 29.0)) < 1e-12 && o.logp_w == -12.5, "dpo rewards");
    CHECK(loss_needs_reference(LOSS_DPO) && loss_needs_reference(LOSS_IPO) && loss_needs_reference(LOSS_RDPO) &&
              !loss_needs_reference(LOSS_SIMPO) && !loss_needs_reference(LOSS_ORPO),
          "which objectives read reference log-probs");
    /* large |z| stays finite */
    PairStats far = {-1.0, -1000.0, 1, 1, 0, 0};
    loss_pair(&lps[0], &far, 1, 1, &o);
    CHECK(isfinite(o.loss) && o.loss >= 0 && isfinite(o.d_sum_w), "z = 1997 is finite");
    PairStats neg = {-1000.0, -1.0, 1, 1, 0, 0};
    loss_pair(&lps[0], &neg, 1, 1, &o);
    CHECK(isfinite(o.loss) && fabs(o.loss - 1999.0) < 1e-6, "z = -1999: loss %.10g", o.loss);
    TEST_END();
}
