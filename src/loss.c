/* loss.c — the preference objectives of the SimPO paper's comparison (its Table 3), as pure functions of one pair's
 * statistics. See loss.h; formulas, rewards and citations in docs/losses.md. */
#include "loss.h"
#include <math.h>
#include "util.h"

LossParams loss_params_from_config(const Config *c) {
    LossParams lp = {c->loss_type,      c->beta,       c->beta * c->gamma_beta_ratio, c->label_smoothing, c->sft_weight,
                     c->loss_alpha,     c->loss_delta, c->loss_lambda};
    return lp;
}
int loss_needs_reference(LossType t) { return t == LOSS_DPO || t == LOSS_IPO || t == LOSS_RDPO || t == LOSS_KTO; }
const char *loss_type_name(LossType t) {
    static const char *names[] = {"simpo", "simpo_hinge", "dpo", "cpo_simpo", "ipo", "rdpo", "cpo", "orpo", "rrhf",
                                  "slic", "kto"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* log(sigmoid(z)) and sigmoid(z) without overflow */
static double log_sigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }
static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

/* -(1-eps) log sigma(z) - eps log sigma(-z) and its derivative (label smoothing: cDPO / the SimPO reference) */
static double smoothed_logistic(double z, double eps, double *dl_dz) {
    *dl_dz = -(1.0 - eps) * sigmoid(-z) + eps * sigmoid(z);
    return -(1.0 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z);
}

/* NLL weight of the objective's own regulariser (added to loss.sft_weight) */
static double nll_weight(const LossParams *lp) {
    switch (lp->type) {
    case LOSS_CPO: case LOSS_RRHF: case LOSS_SLIC: return lp->lambda;
    case LOSS_ORPO: return 1.0;
    default: return 0.0;
    }
}

void loss_pair(const LossParams *lp, const PairStats *ps, long batch_pairs, long batch_chosen_tokens, LossOut *o) {
    const double b = lp->beta, nw = ps->n_w, nl = ps->n_l;
    const double aw = ps->sum_w / nw, al = ps->sum_l / nl; /* per-token averages */
    double loss = 0, dw = 0, dl = 0, dz;                   /* d(loss)/d(sum_w), d(sum_l) */
    switch (lp->type) {
    case LOSS_SIMPO:
    case LOSS_CPO_SIMPO:
    case LOSS_SIMPO_HINGE: { /* SimPO: length-normalised reward beta * avg logp, target margin gamma */
        o->logp_w = aw, o->logp_l = al;
        o->reward_w = b * aw, o->reward_l = b * al;
        double z = o->reward_w - o->reward_l - lp->gamma;
        if (lp->type == LOSS_SIMPO_HINGE) {
            loss = 1.0 - z > 0 ? 1.0 - z : 0.0;
            dz = 1.0 - z > 0 ? -1.0 : 0.0;
        } else loss = smoothed_logistic(z, lp->label_smoothing, &dz);
        dw = dz * b / nw, dl = -dz * b / nl;
        break;
    }
    case LOSS_DPO:
    case LOSS_RDPO: { /* DPO; R-DPO adds alpha (|y_w| - |y_l|) inside the sigmoid */
        o->logp_w = ps->sum_w, o->logp_l = ps->sum_l;
        o->reward_w = b * (ps->sum_w - ps->ref_w), o->reward_l = b * (ps->sum_l - ps->ref_l);
        double z = o->reward_w - o->reward_l + (lp->type == LOSS_RDPO ? lp->alpha * (nw - nl) : 0.0);
        loss = smoothed_logistic(z, lp->label_smoothing, &dz);
        dw = dz * b, dl = -dz * b;
        break;
    }
    case LOSS_IPO: { /* IPO on per-token averages (as TRL computes it): (h - 1/(2 beta))^2 */
        double rw = aw - ps->ref_w / nw, rl = al - ps->ref_l / nl, h = rw - rl, t = h - 1.0 / (2.0 * b);
        o->logp_w = aw, o->logp_l = al;
        o->reward_w = b * rw, o->reward_l = b * rl;
        loss = t * t;
        dw = 2.0 * t / nw, dl = -2.0 * t / nl;
        break;
    }
    case LOSS_CPO: { /* CPO: -log sigma(beta (S_w - S_l)) + lambda NLL */
        o->logp_w = ps->sum_w, o->logp_l = ps->sum_l;
        o->reward_w = b * ps->sum_w, o->reward_l = b * ps->sum_l;
        loss = smoothed_logistic(o->reward_w - o->reward_l, lp->label_smoothing, &dz);
        dw = dz * b, dl = -dz * b;
        break;
    }
    case LOSS_ORPO: { /* ORPO: NLL - lambda log sigma(log odds(y_w) - log odds(y_l)), odds from the average logp */
        double lo = (aw - log1p(-exp(aw))) - (al - log1p(-exp(al)));
        o->logp_w = aw, o->logp_l = al;
        o->reward_w = lp->lambda * aw, o->reward_l = lp->lambda * al;
        loss = -lp->lambda * log_sigmoid(lo);
        dz = -lp->lambda * sigmoid(-lo);
        dw = dz / (1.0 - exp(aw)) / nw, dl = -dz / (1.0 - exp(al)) / nl;
        break;
    }
    case LOSS_RRHF: { /* RRHF: max(0, avg_l - avg_w) + lambda NLL */
        o->logp_w = aw, o->logp_l = al;
        o->reward_w = aw, o->reward_l = al;
        loss = al - aw > 0 ? al - aw : 0.0;
        dw = al - aw > 0 ? -1.0 / nw : 0.0, dl = al - aw > 0 ? 1.0 / nl : 0.0;
        break;
    }
    case LOSS_KTO: /* coupled through the micro-batch's KL estimates: loss_microbatch */
        sd_die("loss", "kto is a function of the whole micro-batch (loss_microbatch)");
    case LOSS_SLIC: { /* SLiC-HF: max(0, delta - S_w + S_l) + lambda NLL */
        o->logp_w = ps->sum_w, o->logp_l = ps->sum_l;
        o->reward_w = ps->sum_w, o->reward_l = ps->sum_l;
        double m = lp->delta - ps->sum_w + ps->sum_l;
        loss = m > 0 ? m : 0.0;
        dw = m > 0 ? -1.0 : 0.0, dl = m > 0 ? 1.0 : 0.0;
        break;
    }
    }
    double inv_b = 1.0 / (double)batch_pairs;
    o->pref_loss = loss;
    o->loss = loss * inv_b;
    o->d_sum_w = dw * inv_b;
    o->d_sum_l = dl * inv_b;
    double k = lp->sft_weight + nll_weight(lp);
    if (k != 0.0 && batch_chosen_tokens > 0) {
        /* NLL of the chosen response tokens, averaged over every chosen token of the global batch */
        k /= (double)batch_chosen_tokens;
        o->loss += -k * ps->sum_w;
        o->d_sum_w += -k;
    }
}

/* KTO, paired form (TRL's DPOTrainer loss_type "kto_pair", the form the SimPO paper ran): with log-ratios
 * c_i = S_w,i - R_w,i and r_i = S_l,i - R_l,i and the micro-batch's KL estimates KL_c = max(0, mean_j c_j),
 * KL_r = max(0, mean_j r_j) (TRL takes them over the per-device batch, gradients flowing through them),
 *   loss = 1/(2B) sum_i [(1 - sigma(beta (c_i - KL_r))) + (1 - sigma(beta (KL_c - r_i)))].
 * A micro-batch holds the same pairs in every parallel layout (train.micro_batch_pairs), so the value is
 * layout-free. */
static void kto_microbatch(const LossParams *lp, const PairStats *ps, int P, long batch_pairs, LossOut *out) {
    const double b = lp->beta;
    double mc = 0, mr = 0;
    for (int i = 0; i < P; i++) mc += ps[i].sum_w - ps[i].ref_w, mr += ps[i].sum_l - ps[i].ref_l;
    mc /= P, mr /= P;
    const double klc = mc > 0 ? mc : 0, klr = mr > 0 ? mr : 0, k = 1.0 / (2.0 * (double)batch_pairs);
    double g1 = 0, g2 = 0; /* sums over i of sigma'(z1_i), sigma'(z2_i) */
    for (int i = 0; i < P; i++) {
        double c = ps[i].sum_w - ps[i].ref_w, r = ps[i].sum_l - ps[i].ref_l;
        double s1 = sigmoid(b * (c - klr)), s2 = sigmoid(b * (klc - r));
        g1 += s1 * (1 - s1), g2 += s2 * (1 - s2);
        LossOut *o = &out[i];
        o->pref_loss = (1 - s1) + (1 - s2);
        o->loss = o->pref_loss * k;
        o->d_sum_w = -k * b * s1 * (1 - s1); /* the KL terms are added below */
        o->d_sum_l = k * b * s2 * (1 - s2);
        o->reward_w = b * c, o->reward_l = b * r;
        o->logp_w = ps[i].sum_w, o->logp_l = ps[i].sum_l;
    }
    for (int i = 0; i < P; i++) {
        if (mc > 0) out[i].d_sum_w += -k * b * g2 / P; /* d/dKL_c of every term 2, dKL_c/dc_i = 1/P */
        if (mr > 0) out[i].d_sum_l += k * b * g1 / P;  /* d/dKL_r of every term 1 */
    }
}

void loss_microbatch(const LossParams *lp, const PairStats *ps, int P, long batch_pairs, long batch_chosen_tokens,
                     LossOut *out) {
    if (lp->type != LOSS_KTO) {
        for (int i = 0; i < P; i++) loss_pair(lp, &ps[i], batch_pairs, batch_chosen_tokens, &out[i]);
        return;
    }
    kto_microbatch(lp, ps, P, batch_pairs, out);
    if (lp->sft_weight != 0.0 && batch_chosen_tokens > 0)
        for (int i = 0; i < P; i++) {
            double k = lp->sft_weight / (double)batch_chosen_tokens;
            out[i].loss += -k * ps[i].sum_w;
            out[i].d_sum_w += -k;
        }
}
