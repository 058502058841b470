/* loss.c — the preference objectives of the SimPO paper's comparison (its Table 3), as pure functions of one pair's
 * statistics. See loss.h; formulas, rewards and citations in docs/losses.md. */
#include "loss.h"
#include <math.h>

LossParams loss_params_from_config(const Config *c) {
    LossParams lp = {c->loss_type,      c->beta,       c->beta * c->gamma_beta_ratio, c->label_smoothing, c->sft_weight,
                     c->loss_alpha,     c->loss_delta, c->loss_lambda};
    return lp;
}
int loss_needs_reference(LossType t) { return t == LOSS_DPO || t == LOSS_IPO || t == LOSS_RDPO; }
const char *loss_type_name(LossType t) {
    static const char *names[] = {"simpo", "simpo_hinge", "dpo", "cpo_simpo", "ipo", "rdpo", "cpo", "orpo", "rrhf",
                                  "slic"};
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
