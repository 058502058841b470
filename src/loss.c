/* loss.c — see loss.h and docs/losses.md. */
#include "loss.h"
#include <math.h>

LossParams loss_params_from_config(const Config *c) {
    LossParams lp = {c->loss_type, c->beta, c->beta * c->gamma_beta_ratio, c->label_smoothing, c->sft_weight};
    return lp;
}
int loss_needs_reference(LossType t) { return t == LOSS_DPO; }
const char *loss_type_name(LossType t) {
    switch (t) {
    case LOSS_SIMPO: return "simpo";
    case LOSS_SIMPO_HINGE: return "simpo_hinge";
    case LOSS_DPO: return "dpo";
    }
    return "?";
}

/* log(sigmoid(z)) without overflow */
static double log_sigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }
static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

void loss_pair(const LossParams *lp, const PairStats *ps, long batch_pairs, long batch_chosen_tokens, LossOut *o) {
    double z, dz_dw, dz_dl; /* the logit of the preference and its derivatives w.r.t. the two sums */
    if (lp->type == LOSS_DPO) {
        /* DPO (Rafailov et al. 2023): z = beta * ((sum_w - ref_w) - (sum_l - ref_l)) */
        o->logp_w = ps->sum_w;
        o->logp_l = ps->sum_l;
        o->reward_w = lp->beta * (ps->sum_w - ps->ref_w);
        o->reward_l = lp->beta * (ps->sum_l - ps->ref_l);
        z = o->reward_w - o->reward_l;
        dz_dw = lp->beta;
        dz_dl = -lp->beta;
    } else {
        /* SimPO (Meng et al. 2024): length-normalised reward beta * avg logp, margin gamma */
        o->logp_w = ps->sum_w / ps->n_w;
        o->logp_l = ps->sum_l / ps->n_l;
        o->reward_w = lp->beta * o->logp_w;
        o->reward_l = lp->beta * o->logp_l;
        z = o->reward_w - o->reward_l - lp->gamma;
        dz_dw = lp->beta / ps->n_w;
        dz_dl = -lp->beta / ps->n_l;
    }
    double loss, dl_dz;
    if (lp->type == LOSS_SIMPO_HINGE) {
        loss = 1.0 - z > 0 ? 1.0 - z : 0.0;
        dl_dz = 1.0 - z > 0 ? -1.0 : 0.0;
    } else {
        /* -(1-eps) log sigma(z) - eps log sigma(-z): label smoothing (cDPO / the SimPO reference) */
        double eps = lp->label_smoothing;
        loss = -(1.0 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z);
        dl_dz = -(1.0 - eps) * sigmoid(-z) + eps * sigmoid(z);
    }
    double inv_b = 1.0 / (double)batch_pairs;
    o->pref_loss = loss;
    o->loss = loss * inv_b;
    o->d_sum_w = dl_dz * dz_dw * inv_b;
    o->d_sum_l = dl_dz * dz_dl * inv_b;
    if (lp->sft_weight != 0.0 && batch_chosen_tokens > 0) {
        /* NLL of the chosen response tokens, averaged over every chosen token of the global batch */
        double k = lp->sft_weight / (double)batch_chosen_tokens;
        o->loss += -k * ps->sum_w;
        o->d_sum_w += -k;
    }
}
