/* train_step.c — see train_step.h. */
#include "train_step.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pipeline.h"
#include "util.h"

int step_slots(int pp, int stage, int n_mb) {
    int s = pp - stage;
    return s < n_mb ? s : n_mb;
}

/* the loss of a micro-batch's pairs on the last stage: d(loss)/d(sum log-prob) per sequence, metrics */
static void micro_loss(const StepWork *w, const MicroBatch *mb, const SeqLogp *seq, double *dsum, double *acc) {
    PairStats *ps = sd_alloc(sizeof *ps * (size_t)mb->P, "pair stats");
    LossOut *los = sd_alloc(sizeof *los * (size_t)mb->P, "pair losses");
    for (int p = 0; p < mb->P; p++) {
        const Pair *pr = mb->pairs[p];
        ps[p] = (PairStats){seq[2 * p].sum, seq[2 * p + 1].sum, seq[2 * p].n, seq[2 * p + 1].n, pr->ref_chosen_logp,
                            pr->ref_rejected_logp};
        if (ps[p].n_w == 0 || ps[p].n_l == 0)
            sd_die(w->data->source, "line %d: a response has no predictable token", pr->line);
    }
    loss_microbatch(w->lp, ps, mb->P, w->batch_pairs, w->chosen_tokens, los);
    for (int p = 0; p < mb->P; p++) {
        const LossOut lo = los[p];
        dsum[2 * p] = lo.d_sum_w;
        dsum[2 * p + 1] = lo.d_sum_l;
        acc[ACC_LOSS] += lo.loss;
        acc[ACC_REWARD_W] += lo.reward_w;
        acc[ACC_REWARD_L] += lo.reward_l;
        acc[ACC_CORRECT] += lo.reward_w > lo.reward_l ? 1.0 : 0.0;
        acc[ACC_LOGP_W] += lo.logp_w;
        acc[ACC_LOGP_L] += lo.logp_l;
        acc[ACC_LOGITS_W] += seq[2 * p].logit_sum;
        acc[ACC_LOGITS_L] += seq[2 * p + 1].logit_sum;
        acc[ACC_RESP_W] += seq[2 * p].n;
        acc[ACC_RESP_L] += seq[2 * p + 1].n;
        acc[ACC_SUM_W] += seq[2 * p].sum;
    }
    free(ps);
    free(los);
    acc[ACC_TOKENS] += (double)mb->Natt;
    double rows = 0; /* the log-prob rows: every sequence's response tokens */
    for (int i = 0; i < 2 * mb->P; i++) rows += seq[i].n;
    acc[ACC_FLOPS] += model_config_flops(&w->m->mc, (double)mb->Ntok, mb->cu_seqlens, mb->S, rows);
}

double step_nll(const double *acc) { return acc[ACC_RESP_W] > 0 ? -acc[ACC_SUM_W] / acc[ACC_RESP_W] : 0.0; }

double step_mean_logit(const double *acc, bool chosen, int vocab_size) {
    double n = acc[chosen ? ACC_RESP_W : ACC_RESP_L] * (double)vocab_size;
    return n > 0 ? acc[chosen ? ACC_LOGITS_W : ACC_LOGITS_L] / n : 0.0;
}

void step_use_cut(StepWork *w, int k, const int *start) {
    w->n_mb = k, w->mb_start = start, w->mbp = 1;
    for (int i = 0; i < k; i++)
        if (start[i + 1] - start[i] > w->mbp) w->mbp = start[i + 1] - start[i];
}

size_t step_mb_first(const StepWork *w, int i) {
    return w->mb_start ? (size_t)w->mb_start[i] : (size_t)i * (size_t)w->mbp;
}

void step_run_microbatches(const StepWork *w, double *acc) {
    Model *m = w->m;
    ProcessGrid *g = w->g;
    int n_mb = w->n_mb, mbp = w->mbp, stage = g->pp_rank, pp = g->pp;
    MicroBatch **mbs = sd_alloc(sizeof *mbs * (size_t)n_mb, "micro-batches");
    /* micro-batch i: its pairs' first index into w->idx (by pairs, or train.micro_batch_tokens' cut) */
    size_t *first = sd_alloc(sizeof *first * ((size_t)n_mb + 1), "micro-batch starts");
    for (int i = 0; i <= n_mb; i++) first[i] = step_mb_first(w, i);
    for (int i = 0; i < n_mb; i++)
        mbs[i] = microbatch_pack_opts(w->data, w->idx + first[i], (int)(first[i + 1] - first[i]), w->share_prompt);
    model_sparse_embed_begin(m, mbs, n_mb); /* the embedding rows the step's gradient holds (no-op when dense) */
    double *dsum = sd_calloc(2 * first[n_mb], sizeof(double), "log-prob grads"); /* 2 per pair: chosen, rejected */
    SeqLogp *seq = sd_alloc(sizeof(SeqLogp) * 2 * (size_t)mbp, "log-probs");
    int cap = schedule_max_actions(n_mb);
    PpAction *plan = sd_alloc(sizeof *plan * (size_t)cap, "schedule");
    int na = schedule_1f1b(plan, cap, n_mb, pp, stage);
    if (m->nslots < step_slots(pp, stage, n_mb))
        sd_die("pipeline", "%d activation slots for %d micro-batches in flight", m->nslots, step_slots(pp, stage, n_mb));
    CommReq *fwd_req = sd_calloc((size_t)m->nslots * 2, sizeof(CommReq), "send requests"), *bwd_req = fwd_req + m->nslots;
    const char *trace = getenv("SIMPO_TRACE");
    int tracing = trace && strstr(trace, "pp");
    int last_bwd = -1; /* the step's last backward: where the gradients become final (model_arm_grad_done) */
    for (int k = 0; k < na; k++)
        if (plan[k].op == PP_BWD) last_bwd = k;
    for (int k = 0; k < na; k++) {
        int i = plan[k].mb, slot = i % m->nslots;
        MicroBatch *mb = mbs[i];
        size_t nc = model_stage_rows(m, mb->Ntok) * (size_t)m->C; /* sequence parallelism: a block */
        if (tracing) fprintf(stderr, "[pp stage %d] %s mb %d\n", stage, pp_op_name(plan[k].op), i);
        switch (plan[k].op) {
        case PP_RECV_FWD: comm_recv_f32(g, GROUP_PP, model_stage_input(m, slot), nc, stage - 1, 2 * i); break;
        case PP_FWD:
            /* the slot's output buffer may still be on its way to the next stage, and on a stage before the last it
             * also held the gradient the slot's previous backward sent back (model_stage_grad) */
            comm_wait(&fwd_req[slot]);
            comm_wait(&bwd_req[slot]);
            model_forward(m, mb, slot, seq);
            if (m->last_stage) micro_loss(w, mb, seq, dsum + 2 * first[i], acc);
            break;
        case PP_SEND_FWD:
            comm_isend_f32(g, GROUP_PP, model_stage_output(m, slot), nc, stage + 1, 2 * i, &fwd_req[slot]);
            break;
        case PP_RECV_BWD:
            /* the gradient lands in the slot's output buffer (model_stage_grad): the output's send completes first
             * (the next stage has it: it sends this gradient only after receiving it) */
            comm_wait(&bwd_req[slot]);
            comm_wait(&fwd_req[slot]);
            comm_recv_f32(g, GROUP_PP, model_stage_grad(m, slot), nc, stage + 1, 2 * i + 1);
            break;
        case PP_BWD:
            comm_wait(&bwd_req[slot]);
            model_arm_grad_done(m, k == last_bwd); /* the optimizer's update inside it, where one is set */
            model_backward_slot(m, mb, slot, dsum + 2 * first[i]);
            model_arm_grad_done(m, false);
            break;
        case PP_SEND_BWD:
            comm_isend_f32(g, GROUP_PP, model_stage_grad(m, slot), nc, stage - 1, 2 * i + 1, &bwd_req[slot]);
            break;
        }
    }
    for (int s = 0; s < 2 * m->nslots; s++) comm_wait(&fwd_req[s]);
    free(fwd_req);
    free(plan);
    free(seq);
    free(dsum);
    for (int i = 0; i < n_mb; i++) microbatch_free(mbs[i]);
    free(mbs);
    free(first);
}

void step_run_forward_only(const StepWork *w, size_t n_pairs, double *acc) {
    Model *m = w->m;
    ProcessGrid *g = w->g;
    int stage = g->pp_rank, mbp = w->mbp;
    SeqLogp *seq = sd_alloc(sizeof(SeqLogp) * 2 * (size_t)mbp, "log-probs");
    double *dsum = sd_alloc(sizeof(double) * 2 * (size_t)mbp, "log-prob grads"); /* micro_loss's; not used */
    /* micro-batch i: w->mb_start's cut (n_mb of them), else mbp pairs each (the last one the rest) */
    int n_mb = w->mb_start ? w->n_mb : (int)((n_pairs + (size_t)mbp - 1) / (size_t)mbp), most = n_mb;
    /* ZeRO-3: each forward all-gathers the layers' weights over DP, and the evaluation's ranks may have different
     * numbers of micro-batches (their blocks of the pairs, or cuts by tokens): after its own, a rank with fewer makes
     * the gathers of the forwards it lacks, so that every rank makes the same collectives in the same order */
    if (m->zero3) {
        double d = n_mb;
        comm_allreduce_max_f64(g, GROUP_DP, &d, 1);
        most = (int)d;
    }
    for (int i = 0; i < n_mb; i++) {
        size_t first = step_mb_first(w, i), end = w->mb_start ? step_mb_first(w, i + 1) : first + (size_t)mbp;
        int P = (int)((end < n_pairs ? end : n_pairs) - first); /* by pairs: the last one the rest */
        MicroBatch *mb = microbatch_pack_opts(w->data, w->idx + first, P, w->share_prompt);
        size_t nc = model_stage_rows(m, mb->Ntok) * (size_t)m->C; /* sequence parallelism: a block */
        const int tag = 0; /* one tag for all: messages between two ranks arrive in the order they were sent */
        if (!m->first_stage) comm_recv_f32(g, GROUP_PP, model_stage_input(m, 0), nc, stage - 1, tag);
        model_forward_only(m, mb, 0, seq);
        if (m->last_stage) micro_loss(w, mb, seq, dsum, acc);
        else { /* complete the send before the next forward overwrites the output */
            CommReq req = {0};
            comm_isend_f32(g, GROUP_PP, model_stage_output(m, 0), nc, stage + 1, tag, &req);
            comm_wait(&req);
        }
        microbatch_free(mb);
    }
    for (int i = n_mb; i < most; i++) model_forward_gathers(m); /* ZeRO-3 (above) */
    free(dsum);
    free(seq);
}

void step_sync_tied_grads(ProcessGrid *g, Model *m) {
    if (g->pp == 1 || !m->mc.tie_word_embeddings || !(m->first_stage || m->last_stage)) return;
    float *mine = m->first_stage ? m->dembed : m->dlm_head;
    const ParamSpec *p = m->first_stage ? &m->specs[0] : NULL;
    for (int i = 0; !p && i < m->nspecs; i++)
        if (m->specs[i].mirror) p = &m->specs[i];
    float *other = m->be->alloc(p->numel * sizeof(float), "tied gradient"); /* backend memory, like mine */
    comm_sendrecv_f32(g, GROUP_PP, mine, other, p->numel, m->first_stage ? g->pp - 1 : 0);
    m->be->add(mine, other, p->numel);
    m->be->free(other);
}
