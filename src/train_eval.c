/* train_eval.c — see train_eval.h. */
#include "train_eval.h"
#include <stdio.h>
#include <stdlib.h>
#include "train_data.h"
#include "train_step.h"
#include "util.h"

bool eval_due(const Config *c, long step, long total_steps) {
    if (!c->data_eval) return false;
    if (step == 0) return c->eval_on_start;
    return step == total_steps || (c->eval_every_steps > 0 && step % c->eval_every_steps == 0);
}

EvalMetrics eval_run(ProcessGrid *g, Model *m, const PairSet *data, const LossParams *lp, const Config *c, long step) {
    double t0 = sd_now();
    if (!m->w16_fresh) model_refresh_weights16(m); /* as a step's start: the matmuls read the copy while fresh */
    size_t n = data->n, lo = n * (size_t)g->dp_rank / (size_t)g->dp, hi = n * (size_t)(g->dp_rank + 1) / (size_t)g->dp;
    size_t *idx = sd_alloc((hi > lo ? hi - lo : 1) * sizeof(size_t), "eval pairs");
    long chosen_tokens = 0;
    for (size_t i = 0; i < n; i++) chosen_tokens += data->pairs[i].n_chosen;
    for (size_t i = lo; i < hi; i++) idx[i - lo] = i;
    StepWork w = {.g = g, .m = m, .data = data, .lp = lp, .idx = idx, .mbp = c->micro_batch_pairs,
                  .batch_pairs = (long)n, .chosen_tokens = chosen_tokens, .share_prompt = c->prefix_sharing};
    double acc[ACC_N] = {0};
    int *cut = NULL;
    if (c->micro_batch_tokens > 0) { /* micro-batches by tokens, as the run's steps */
        cut = sd_alloc((hi - lo + 1) * sizeof(int), "micro-batch cut");
        step_use_cut(&w, train_eval_cut(c, data, idx, (int)(hi - lo), cut), cut);
    }
    step_run_forward_only(&w, hi - lo, acc);
    free(cut);
    comm_allreduce_sum_f64(g, GROUP_PP, acc, ACC_N); /* the last stage computed them */
    comm_allreduce_sum_f64(g, GROUP_DP, acc, ACC_N);
    free(idx);
    double N = (double)n;
    return (EvalMetrics){.step = step, .loss = acc[ACC_LOSS], .reward_w = acc[ACC_REWARD_W] / N,
                         .reward_l = acc[ACC_REWARD_L] / N, .margin = (acc[ACC_REWARD_W] - acc[ACC_REWARD_L]) / N,
                         .accuracy = acc[ACC_CORRECT] / N, .logp_w = acc[ACC_LOGP_W] / N,
                         .logp_l = acc[ACC_LOGP_L] / N, .logits_w = step_mean_logit(acc, true, m->V),
                         .logits_l = step_mean_logit(acc, false, m->V), .nll = step_nll(acc), .pairs = (long)n,
                         .tokens = (long)acc[ACC_TOKENS], .seconds = sd_now() - t0};
}

void eval_write(FILE *f, const EvalMetrics *e) {
    fprintf(f,
            "{\"step\": %ld, \"eval_loss\": %.17g, \"eval_rewards/chosen\": %.17g, \"eval_rewards/rejected\": %.17g, "
            "\"eval_rewards/margins\": %.17g, \"eval_rewards/accuracies\": %.17g, \"eval_logps/chosen\": %.17g, "
            "\"eval_logps/rejected\": %.17g, \"eval_logits/chosen\": %.17g, \"eval_logits/rejected\": %.17g, "
            "\"eval_nll_loss\": %.17g, \"eval_pairs\": %ld, \"eval_tokens\": %ld, \"eval_runtime\": %.6g, "
            "\"eval_samples_per_second\": %.6g, \"num_input_tokens_seen\": %lld, \"total_flos\": %.17g}\n",
            e->step, e->loss, e->reward_w, e->reward_l, e->margin, e->accuracy, e->logp_w, e->logp_l, e->logits_w,
            e->logits_l, e->nll, e->pairs, e->tokens, e->seconds, e->seconds > 0 ? (double)e->pairs / e->seconds : 0.0,
            (long long)e->tokens_seen, e->total_flos);
}

void eval_tf(TfWriter *w, const EvalMetrics *e) {
    const char *tags[] = {"eval/loss", "eval/rewards/chosen", "eval/rewards/rejected", "eval/rewards/margins",
                          "eval/rewards/accuracies", "eval/logps/chosen", "eval/logps/rejected", "eval/logits/chosen",
                          "eval/logits/rejected", "eval/nll_loss", "eval/runtime", "eval/samples_per_second"};
    const double per_s = e->seconds > 0 ? (double)e->pairs / e->seconds : 0.0;
    const double v[] = {e->loss,   e->reward_w, e->reward_l, e->margin,  e->accuracy, e->logp_w,
                        e->logp_l, e->logits_w, e->logits_l, e->nll,      e->seconds, per_s};
    _Static_assert(sizeof tags / sizeof *tags == sizeof v / sizeof *v, "one value per tag");
    tf_scalars(w, e->step, sd_wall_time(), tags, v, (int)(sizeof v / sizeof *v));
}

void eval_log(const EvalMetrics *e, const char *path, bool quiet) {
    FILE *f = fopen(path, "a");
    if (!f) sd_die(path, "cannot append evaluation metrics");
    eval_write(f, e);
    if (fclose(f) != 0) sd_die(path, "cannot write evaluation metrics");
    if (!quiet)
        fprintf(stderr, "eval after step %ld | loss %.4f | margin %.4f | acc %.3f | %ld pairs in %.1f s\n", e->step,
                e->loss, e->margin, e->accuracy, e->pairs, e->seconds);
}
