/* cmd_analyze.c — `simpo_dist analyze --model HF_DIR --data PAIRS [--ref REF_DIR] [--out DIR]`: the SimPO
 * paper's measurements on held-out pairs (Meng et al. 2024, sections 2 and 4): reward accuracy of SimPO's
 * length-normalised reward and of DPO's implicit reward, how often each reward ranking agrees with the average
 * log-likelihood ranking, the Spearman correlation of log-likelihood with response length, and margins by
 * length-difference bucket. A table on stdout; with --out, DIR/analysis.json and two SVG plots.
 * Log-probs are computed as `simpo_dist score` does: CPU backend, one pair per forward, no truncation. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli_args.h"
#include "commands.h"
#include "model.h"
#include "score.h"
#include "pairs.h"
#include "stats.h"
#include "svg.h"
#include "train_data.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist analyze --model HF_DIR --data PAIRS [--ref REF_DIR] [--beta B] [--dpo-beta B]\n"
    "                          [--buckets K] [--tokenizer DIR] [--format F] [--chat-template T] [--insert-empty-system]\n"
    "                          [--chat-convention trl|simpo_reference]\n"
    "                          [--device auto|cpu|cuda] [--dtype fp32|bf16] [--out DIR]\n"
    "  Scores every pair (as simpo_dist score, --device and --dtype as there) and prints:\n"
    "  - reward accuracy (r_chosen > r_rejected) of SimPO's reward r = beta * avg_logp (--beta, default 2.0)\n"
    "    and, with reference log-probs, of DPO's r = dpo_beta * (sum_logp - ref_logp) (--dpo-beta, default 0.1);\n"
    "    reference log-probs come from --ref REF_DIR (scored here) or else the data's ref_chosen_logp and\n"
    "    ref_rejected_logp when every pair carries them\n"
    "  - for each reward, how often its ranking of a pair agrees with the average log-likelihood ranking\n"
    "  - Spearman correlation (average ranks for ties) of avg and summed log-likelihood with response length\n"
    "    over all responses\n"
    "  - margins and accuracies in K quantile buckets (default 4) of the chosen-minus-rejected length\n"
    "  PAIRS: JSONL of token ids, or chat/text lines with --tokenizer DIR (--format auto|ids|chat|text,\n"
    "  --chat-template, --insert-empty-system, --chat-convention as simpo_dist score), or a dataset written by\n"
    "  simpo_dist prepare\n"
    "  --out DIR  also writes DIR/analysis.json, DIR/reward_margin_hist.svg, DIR/logp_vs_length.svg\n";

/* Response log-probs of every pair of ps under the model in model_dir (config mc), as cmd_score computes them:
 * out[2i] chosen, out[2i+1] rejected. */
static double avg_of(SeqLogp s) { return s.n ? s.sum / s.n : 0.0; }

/* One implicit reward over all pairs. */
typedef struct {
    const char *name;
    double beta;
    double *w, *l;        /* per pair: chosen, rejected reward */
    double accuracy, margin_mean, chosen_mean, rejected_mean, agrees;
} Reward;

static void reward_summarise(Reward *r, const double *avg_w, const double *avg_l, size_t n) {
    size_t acc = 0, agree = 0;
    double m = 0, cw = 0, cl = 0;
    for (size_t i = 0; i < n; i++) {
        int better = r->w[i] > r->l[i];
        acc += better;
        agree += better == (avg_w[i] > avg_l[i]);
        m += r->w[i] - r->l[i];
        cw += r->w[i];
        cl += r->l[i];
    }
    double d = n ? (double)n : NAN;
    r->accuracy = acc / d;
    r->agrees = agree / d;
    r->margin_mean = m / d;
    r->chosen_mean = cw / d;
    r->rejected_mean = cl / d;
}

static double parse_positive(const char *flag, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v <= 0)
        sd_die("analyze", "%s: expected a positive number, got '%s'", flag, s);
    return v;
}

static void add_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

typedef struct {
    double lo, hi;        /* length-difference range (tokens) */
    size_t count;
    double margin[2], acc[2]; /* [0] simpo, [1] dpo (NaN without a reference) */
    double len_w, len_l;
} Bucket;

/* Buckets of the chosen-minus-rejected length difference; returns how many (<= k). */
static int length_buckets(const double *dlen, const double *len_w, const double *len_l, const Reward *rw,
                          int nrw, size_t n, int k, Bucket *out) {
    double *edges = sd_alloc((size_t)(k + 1) * sizeof(double), "buckets");
    int ne = stats_quantile_edges(dlen, n, k, edges);
    int nb = ne > 1 ? ne - 1 : ne;
    for (int b = 0; b < nb; b++) {
        Bucket *B = &out[b];
        memset(B, 0, sizeof *B);
        B->lo = edges[b];
        B->hi = edges[ne > 1 ? b + 1 : b];
        double sm[2] = {0, 0}, sa[2] = {0, 0};
        for (size_t i = 0; i < n; i++) {
            if (stats_bucket_of(edges, ne, dlen[i]) != b) continue;
            B->count++;
            B->len_w += len_w[i];
            B->len_l += len_l[i];
            for (int r = 0; r < nrw; r++) {
                sm[r] += rw[r].w[i] - rw[r].l[i];
                sa[r] += rw[r].w[i] > rw[r].l[i];
            }
        }
        double d = B->count ? (double)B->count : NAN;
        B->len_w /= d;
        B->len_l /= d;
        for (int r = 0; r < 2; r++) {
            B->margin[r] = r < nrw ? sm[r] / d : NAN;
            B->acc[r] = r < nrw ? sa[r] / d : NAN;
        }
    }
    free(edges);
    return nb;
}

static void write_plots(const char *out_dir, const Reward *simpo, const double *avg, const double *len, size_t n,
                        double rho) {
    /* histogram of SimPO margins: about sqrt(n) bins (5 to 30) on nice edges */
    double *margin = sd_alloc(sd_mul_size(n ? n : 1, sizeof(double), "plot"), "plot");
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        margin[i] = simpo->w[i] - simpo->l[i];
        if (isfinite(margin[i])) lo = fmin(lo, margin[i]), hi = fmax(hi, margin[i]);
    }
    if (!(lo <= hi)) lo = 0, hi = 1;
    int want = (int)ceil(sqrt((double)n));
    want = want < 5 ? 5 : want > 30 ? 30 : want;
    double step = svg_nice_num(hi > lo ? (hi - lo) / want : 1, 1), first = floor(lo / step) * step;
    int nbins = (int)(ceil(hi / step) - floor(lo / step));
    if (nbins < 1) nbins = 1;
    lo = fmin(lo, first), hi = fmax(hi, first + nbins * step); /* rounding never drops an extreme value */
    size_t *counts = sd_alloc((size_t)nbins * sizeof(size_t), "plot");
    double *edges = sd_alloc((size_t)(2 * nbins + 1) * sizeof(double), "plot"), *heights = edges + nbins + 1;
    stats_histogram(margin, n, lo, hi, nbins, counts);
    for (int b = 0; b <= nbins; b++) edges[b] = first + b * step;
    for (int b = 0; b < nbins; b++) heights[b] = (double)counts[b];
    char title[160];
    snprintf(title, sizeof title, "SimPO reward margin on %zu held-out pairs (beta = %g)", n, simpo->beta);
    SvgFig *f = svg_new(720, 420, title, "beta * (avg logp chosen - avg logp rejected)", "pairs");
    svg_bars(f, "reward margin", edges, heights, nbins);
    char *path = sd_path_join(out_dir, "reward_margin_hist.svg");
    svg_write(f, path);
    free(path);
    svg_free(f);
    free(margin);
    free(counts);
    free(edges);

    /* average log-likelihood vs length, chosen and rejected: avg/len hold [chosen..., rejected...] */
    snprintf(title, sizeof title, "Average log-likelihood vs response length (Spearman %.3f)", rho);
    f = svg_new(720, 460, title, "response length (tokens)", "average log-likelihood per token");
    svg_scatter(f, "chosen", len, avg, n);
    svg_scatter(f, "rejected", len + n, avg + n, n);
    path = sd_path_join(out_dir, "logp_vs_length.svg");
    svg_write(f, path);
    free(path);
    svg_free(f);
}

int cmd_analyze(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *ref_dir = NULL, *out_dir = NULL, *beta_s = NULL,
               *dpo_beta_s = NULL, *buckets_s = NULL, *tok = NULL, *fmt = NULL, *family = NULL, *device = "auto",
               *dtype = "fp32", *convention = NULL;
    bool empty_system = false;
    const CliOpt opts[] = {{"--model", &model_dir, NULL},     {"--data", &data, NULL},
                           {"--ref", &ref_dir, NULL},         {"--out", &out_dir, NULL},
                           {"--beta", &beta_s, NULL},         {"--dpo-beta", &dpo_beta_s, NULL},
                           {"--buckets", &buckets_s, NULL},   {"--tokenizer", &tok, NULL},
                           {"--format", &fmt, NULL},          {"--chat-template", &family, NULL},
                           {"--insert-empty-system", NULL, &empty_system}, {"--chat-convention", &convention, NULL},
                           {"--device", &device, NULL},       {"--dtype", &dtype, NULL}};
    if (cli_parse("analyze", USAGE, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]))) return 0;
    model_dir = cli_model_dir("--model", model_dir);
    ref_dir = cli_model_dir("--ref", ref_dir);
    tok = cli_model_dir("--tokenizer", tok);
    if (!model_dir || !data) sd_die("analyze", "--model and --data are required (see simpo_dist analyze --help)");
    if (!tok) tok = cli_model_tokenizer(model_dir);
    bool simpo_reference = cli_simpo_reference("analyze", convention);
    double beta = beta_s ? parse_positive("--beta", beta_s) : 2.0;
    double dpo_beta = dpo_beta_s ? parse_positive("--dpo-beta", dpo_beta_s) : 0.1;
    double kb = buckets_s ? parse_positive("--buckets", buckets_s) : 4;
    if (kb != floor(kb) || kb > 100)
        sd_die("analyze", "--buckets: expected an integer in [1, 100], got '%s'", buckets_s);
    int nbuckets = (int)kb;
    ScoreOpts so = score_opts("analyze", device, dtype);

    ModelConfig mc = model_config_load(model_dir);
    PairSet *ps = pairs_load_any(data, mc.vocab_size, fmt, tok, family, empty_system,
                                 simpo_reference);
    size_t n = ps->n;
    if (n == 0) sd_die(data, "no pairs");
    ModelConfig rc;
    if (ref_dir) {
        rc = model_config_load(ref_dir);
        if (rc.vocab_size != mc.vocab_size)
            sd_die(ref_dir, "vocab_size %d differs from the policy's %d (%s)", rc.vocab_size, mc.vocab_size,
                   model_dir);
    }
    const char *ref_source = ref_dir ? "model" : ps->all_have_ref ? "data" : NULL;

    SeqLogp *pol = sd_alloc(sd_mul_size(2 * n, sizeof(SeqLogp), "analyze"), "analyze");
    score_pairs(model_dir, &mc, ps, pol, &so);
    /* per response: [0, n) chosen, [n, 2n) rejected */
    double *avg = sd_alloc(sd_mul_size(13 * n, sizeof(double), "analyze"), "analyze");
    double *sum = avg + 2 * n, *len = sum + 2 * n, *ref = len + 2 * n, *dlen = ref + 2 * n, *rw = dlen + n;
    for (size_t i = 0; i < n; i++) {
        const Pair *p = &ps->pairs[i];
        avg[i] = avg_of(pol[2 * i]), avg[n + i] = avg_of(pol[2 * i + 1]);
        sum[i] = pol[2 * i].sum, sum[n + i] = pol[2 * i + 1].sum;
        len[i] = p->n_chosen, len[n + i] = p->n_rejected;
        dlen[i] = (double)p->n_chosen - p->n_rejected;
        ref[i] = p->ref_chosen_logp, ref[n + i] = p->ref_rejected_logp;
    }
    if (ref_dir) {
        score_pairs(ref_dir, &rc, ps, pol, &so);
        for (size_t i = 0; i < n; i++) ref[i] = pol[2 * i].sum, ref[n + i] = pol[2 * i + 1].sum;
    }
    /* rewards: rw holds [simpo chosen, simpo rejected, dpo chosen, dpo rejected] x n */
    Reward rewards[2] = {{"simpo", beta, rw, rw + n, 0, 0, 0, 0, 0},
                         {"dpo", dpo_beta, rw + 2 * n, rw + 3 * n, 0, 0, 0, 0, 0}};
    int nrw = ref_source ? 2 : 1;
    for (size_t i = 0; i < n; i++) {
        rewards[0].w[i] = beta * avg[i], rewards[0].l[i] = beta * avg[n + i];
        rewards[1].w[i] = dpo_beta * (sum[i] - ref[i]), rewards[1].l[i] = dpo_beta * (sum[n + i] - ref[n + i]);
    }
    for (int r = 0; r < nrw; r++) reward_summarise(&rewards[r], avg, avg + n, n);
    double rho_avg = stats_spearman(avg, len, 2 * n), rho_sum = stats_spearman(sum, len, 2 * n);
    Bucket *buckets = sd_alloc((size_t)nbuckets * sizeof(Bucket), "analyze");
    int nb = length_buckets(dlen, len, len + n, rewards, nrw, n, nbuckets, buckets);

    /* table */
    size_t with_ref = 0;
    for (size_t i = 0; i < n; i++) with_ref += ps->pairs[i].has_ref;
    printf("analyze: %zu pairs of %s, model %s, reference log-probs: ", n, data, model_dir);
    if (ref_source) printf("%s\n", ref_dir ? ref_dir : "from the data");
    else printf("none (%zu of %zu pairs carry ref_chosen_logp/ref_rejected_logp; DPO reward skipped)\n", with_ref, n);
    printf("%-6s %8s %9s %12s %12s %13s %11s\n", "reward", "beta", "accuracy", "margin_mean", "chosen_mean",
           "rejected_mean", "agrees_avg");
    for (int r = 0; r < nrw; r++)
        printf("%-6s %8g %9.4f %12.5g %12.5g %13.5g %11.4f\n", rewards[r].name, rewards[r].beta, rewards[r].accuracy,
               rewards[r].margin_mean, rewards[r].chosen_mean, rewards[r].rejected_mean, rewards[r].agrees);
    printf("spearman(avg_logp, length) %8.4f   spearman(sum_logp, length) %8.4f   (%zu responses)\n", rho_avg,
           rho_sum, 2 * n);
    printf("length buckets (chosen - rejected tokens):\n%-17s %6s %12s %10s %12s %10s %10s %10s\n", "  range", "count",
           "simpo_margin", "simpo_acc", "dpo_margin", "dpo_acc", "len_chosen", "len_rej");
    for (int b = 0; b < nb; b++) {
        char range[48];
        snprintf(range, sizeof range, "  [%g, %g%c", buckets[b].lo, buckets[b].hi, b == nb - 1 ? ']' : ')');
        char dpo[32] = "           -          -"; /* no reference: no DPO columns */
        if (nrw > 1) snprintf(dpo, sizeof dpo, "%12.5g %10.4f", buckets[b].margin[1], buckets[b].acc[1]);
        printf("%-17s %6zu %12.5g %10.4f %s %10.2f %10.2f\n", range, buckets[b].count, buckets[b].margin[0],
               buckets[b].acc[0], dpo, buckets[b].len_w, buckets[b].len_l);
    }

    if (out_dir) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", model_dir);
        cJSON_AddStringToObject(o, "data", data);
        if (ref_source) cJSON_AddStringToObject(o, "reference", ref_dir ? ref_dir : "data");
        else cJSON_AddNullToObject(o, "reference");
        cJSON_AddNumberToObject(o, "pairs", (double)n);
        cJSON *ro = cJSON_AddObjectToObject(o, "rewards");
        for (int r = 0; r < nrw; r++) {
            cJSON *x = cJSON_AddObjectToObject(ro, rewards[r].name);
            add_num(x, "beta", rewards[r].beta);
            add_num(x, "accuracy", rewards[r].accuracy);
            add_num(x, "margin_mean", rewards[r].margin_mean);
            add_num(x, "chosen_mean", rewards[r].chosen_mean);
            add_num(x, "rejected_mean", rewards[r].rejected_mean);
            add_num(x, "agrees_with_avg_logp", rewards[r].agrees);
        }
        cJSON *so = cJSON_AddObjectToObject(o, "spearman");
        add_num(so, "avg_logp_vs_length", rho_avg);
        add_num(so, "sum_logp_vs_length", rho_sum);
        cJSON_AddNumberToObject(so, "responses", (double)(2 * n));
        cJSON *bo = cJSON_AddArrayToObject(o, "length_buckets");
        for (int b = 0; b < nb; b++) {
            cJSON *x = cJSON_CreateObject();
            add_num(x, "len_diff_lo", buckets[b].lo);
            add_num(x, "len_diff_hi", buckets[b].hi);
            cJSON_AddNumberToObject(x, "count", (double)buckets[b].count);
            for (int r = 0; r < nrw; r++) {
                char key[48];
                snprintf(key, sizeof key, "%s_margin_mean", rewards[r].name);
                add_num(x, key, buckets[b].margin[r]);
                snprintf(key, sizeof key, "%s_accuracy", rewards[r].name);
                add_num(x, key, buckets[b].acc[r]);
            }
            add_num(x, "chosen_len_mean", buckets[b].len_w);
            add_num(x, "rejected_len_mean", buckets[b].len_l);
            cJSON_AddItemToArray(bo, x);
        }
        cJSON *po = cJSON_AddArrayToObject(o, "per_pair");
        for (size_t i = 0; i < n; i++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "line", ps->pairs[i].line);
            add_num(x, "chosen_logp", sum[i]);
            add_num(x, "rejected_logp", sum[n + i]);
            add_num(x, "chosen_avg_logp", avg[i]);
            add_num(x, "rejected_avg_logp", avg[n + i]);
            cJSON_AddNumberToObject(x, "chosen_tokens", len[i]);
            cJSON_AddNumberToObject(x, "rejected_tokens", len[n + i]);
            if (ref_source) {
                add_num(x, "ref_chosen_logp", ref[i]);
                add_num(x, "ref_rejected_logp", ref[n + i]);
            }
            cJSON_AddItemToArray(po, x);
        }
        char *js = cJSON_Print(o);
        cJSON_Delete(o);
        sd_mkdirs(out_dir);
        char *path = sd_path_join(out_dir, "analysis.json");
        sd_write_file_atomic(path, js, strlen(js));
        free(path);
        cJSON_free(js);
        write_plots(out_dir, &rewards[0], avg, len, n, rho_avg);
        printf("wrote %s/analysis.json, reward_margin_hist.svg, logp_vs_length.svg\n", out_dir);
    }
    free(buckets);
    free(avg);
    free(pol);
    pairs_free(ps);
    return 0;
}
