/* cmd_plot.c — `simpo_dist plot METRICS.jsonl... --out DIR`: training curves of a metrics.jsonl (the trainer's log,
 * src/train.c log_step) as SVG line charts, one file per group of fields, step on the x axis; with the held-out
 * evaluation's eval.jsonl beside it (src/train_eval.c eval_log) its curves too; several runs on the same charts. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "commands.h"
#include "svg.h"
#include "util.h"

static const char *USAGE =
    "usage: simpo_dist plot METRICS.jsonl [METRICS.jsonl...] [--labels A,B,...] [--x step|tokens|flos] --out DIR\n"
    "  Line charts of a training run's metrics.jsonl against step, one SVG per group, into DIR:\n"
    "  loss.svg, rewards.svg (rewards/chosen, rewards/rejected, rewards/margins), accuracy.svg\n"
    "  (rewards/accuracies), logps.svg (logps/chosen, logps/rejected), logits.svg (logits/chosen,\n"
    "  logits/rejected), nll.svg (nll_loss), lr.svg, grad_norm.svg.\n"
    "  Where the run evaluated held-out pairs (data.eval: eval.jsonl in METRICS.jsonl's directory), also\n"
    "  eval_loss in loss.svg, eval_rewards/accuracies in accuracy.svg, eval_nll_loss in nll.svg and eval_rewards.svg\n"
    "  (eval_rewards/chosen, eval_rewards/rejected, eval_rewards/margins).\n"
    "  Several runs (a scaling study's, a sweep's) share the charts: each series is named RUN: field, RUN the\n"
    "  run's directory name (out/8b/metrics.jsonl: 8b) or, in order, the --labels given.\n"
    "  --x tokens or --x flos: against the tokens trained on so far (num_input_tokens_seen) or their model\n"
    "  FLOPs (total_flos) instead of step, to compare runs of other batch sizes or model sizes by data or compute.\n"
    "  Non-finite values (nan, inf) and absent fields are skipped; a malformed line stops with FILE:LINE.\n";

#define MAX_KEYS 3
typedef struct {
    const char *file, *title, *ylabel;
    const char *keys[MAX_KEYS]; /* those named eval_... are drawn only where the run has an eval.jsonl */
    double ylo, yhi; /* fixed y range when ylo < yhi */
} Group;

static const Group GROUPS[] = {
    {"loss.svg", "Training loss", "loss", {"loss", "eval_loss"}, 0, 0},
    {"rewards.svg", "Rewards", "reward", {"rewards/chosen", "rewards/rejected", "rewards/margins"}, 0, 0},
    {"accuracy.svg", "Reward accuracy", "accuracy", {"rewards/accuracies", "eval_rewards/accuracies"}, 0, 1.05},
    {"eval_rewards.svg", "Rewards on the held-out pairs", "reward",
     {"eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins"}, 0, 0},
    {"logps.svg", "Log-probabilities of the responses", "log-prob", {"logps/chosen", "logps/rejected"}, 0, 0},
    {"logits.svg", "Mean logits of the responses", "logit", {"logits/chosen", "logits/rejected"}, 0, 0},
    {"nll.svg", "NLL of the chosen responses (per token)", "nll", {"nll_loss", "eval_nll_loss"}, 0, 0},
    {"lr.svg", "Learning rate", "lr", {"lr"}, 0, 0},
    {"grad_norm.svg", "Gradient norm (before clipping)", "grad norm", {"grad_norm"}, 0, 0},
};
#define NGROUPS ((int)(sizeof GROUPS / sizeof GROUPS[0]))

/* Case-insensitive: does s start with word w, not followed by a letter or digit? */
static size_t match_word(const char *s, const char *w) {
    size_t n = strlen(w);
    if (strncasecmp(s, w, n) != 0 || isalnum((unsigned char)s[n])) return 0;
    return n;
}

/* The trainer prints a non-finite double with %g ("nan", "-nan", "inf"), which is not JSON: outside strings,
 * such tokens become null (caller frees). */
static char *nonfinite_to_null(const char *s) {
    char *o = sd_alloc(2 * strlen(s) + 1, "metrics line"), *q = o;
    int in_str = 0;
    while (*s) {
        if (in_str) {
            if (*s == '\\' && s[1]) *q++ = *s++;
            else if (*s == '"') in_str = 0;
            *q++ = *s++;
            continue;
        }
        if (*s == '"') {
            in_str = 1;
            *q++ = *s++;
            continue;
        }
        const char *t = s + (*s == '-' || *s == '+');
        size_t k = match_word(t, "nan");
        if (!k) k = match_word(t, "infinity");
        if (!k) k = match_word(t, "inf");
        if (k) {
            memcpy(q, "null", 4);
            q += 4;
            s = t + k;
            continue;
        }
        *q++ = *s++;
    }
    *q = 0;
    return o;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

typedef struct {
    size_t n, cap;
    double *step;                    /* the x axis: step, or the field --x names (NaN: the line lacks it) */
    double *val[NGROUPS][MAX_KEYS];
} Curves;

static void curves_push(Curves *c) {
    if (c->n < c->cap) return;
    c->cap = c->cap ? 2 * c->cap : 64;
    c->step = sd_realloc(c->step, c->cap * sizeof(double), "metrics");
    for (int g = 0; g < NGROUPS; g++)
        for (int k = 0; k < MAX_KEYS && GROUPS[g].keys[k]; k++)
            c->val[g][k] = sd_realloc(c->val[g][k], c->cap * sizeof(double), "metrics");
}

static bool is_eval_key(const char *k) { return !strncmp(k, "eval_", 5); }

/* Reads every line of path into c (appended after what it holds), x from the field xkey (a line without it: NaN,
 * its points left out); dies naming path:line on a malformed one. */
static void read_metrics(const char *path, Curves *c, const char *xkey) {
    size_t len;
    char *text = sd_read_file(path, &len);
    if (!text) sd_die(path, "cannot read: %s", strerror(errno));
    char where[4096];
    int lineno = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (nl) *nl = 0;
        char *line = p;
        p += l + (nl != NULL);
        if (blank(line, l)) continue;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        char *clean = nonfinite_to_null(line);
        cJSON *o = cJSON_Parse(clean);
        free(clean);
        if (!o) sd_die(where, "invalid JSON");
        if (!cJSON_IsObject(o)) sd_die(where, "not a JSON object (a metrics line of simpo_dist training)");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (!cJSON_IsNumber(st)) sd_die(where, "\"step\" missing or not a number");
        const cJSON *xv = cJSON_GetObjectItemCaseSensitive(o, xkey);
        if (xv && !cJSON_IsNumber(xv) && !cJSON_IsNull(xv)) sd_die(where, "\"%s\" is not a number", xkey);
        curves_push(c);
        c->step[c->n] = cJSON_IsNumber(xv) ? xv->valuedouble : NAN;
        for (int g = 0; g < NGROUPS; g++)
            for (int k = 0; k < MAX_KEYS && GROUPS[g].keys[k]; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, GROUPS[g].keys[k]);
                if (v && !cJSON_IsNumber(v) && !cJSON_IsNull(v))
                    sd_die(where, "\"%s\" is not a number", GROUPS[g].keys[k]);
                c->val[g][k][c->n] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            }
        c->n++;
        cJSON_Delete(o);
    }
    free(text);
}

/* One run's curves: its metrics file, and the held-out evaluation's log beside it (its rows after the training
 * rows: each series keeps step order); with_eval: whether it has the eval_ fields */
typedef struct {
    Curves c;
    bool with_eval;
    char *label;
} Run;

static void read_run(const char *metrics, Run *r, const char *xkey) {
    read_metrics(metrics, &r->c, xkey);
    if (r->c.n == 0) sd_die(metrics, "no metrics lines");
    size_t with_x = 0;
    for (size_t i = 0; i < r->c.n; i++) with_x += isfinite(r->c.step[i]);
    if (!with_x) sd_die(metrics, "no line has \"%s\" (the x axis of --x; runs of older versions do not log it)", xkey);
    char *dir = sd_strdup(metrics), *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    char *eval = sd_path_join(*dir ? dir : ".", "eval.jsonl");
    const char *base = strrchr(metrics, '/');
    bool self = !strcmp(base ? base + 1 : metrics, "eval.jsonl"); /* the evaluation's own log given: read once */
    bool beside = !self && sd_file_exists(eval);
    r->with_eval = self || beside;
    if (beside) read_metrics(eval, &r->c, xkey);
    /* its default name: the directory holding it (out/8b/metrics.jsonl: 8b), else the file's name */
    if (slash) {
        *slash = 0;
        const char *up = strrchr(dir, '/');
        r->label = sd_strdup(up ? up + 1 : dir);
    } else r->label = sd_strdup(metrics);
    free(eval);
    free(dir);
}

int cmd_plot(int argc, char **argv) {
    const char *out = NULL, *labels = NULL, *x = "step";
    const char **files = sd_calloc((size_t)argc, sizeof *files, "plot arguments");
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            free(files);
            return 0;
        }
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--labels") || !strcmp(argv[i], "--x")) {
            if (i + 1 >= argc) sd_die("plot", "%s needs a value", argv[i]);
            *(argv[i][2] == 'o' ? &out : argv[i][2] == 'l' ? &labels : &x) = argv[i + 1];
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            sd_die("plot", "unknown argument '%s' (see simpo_dist plot --help)", argv[i]);
        } else files[nf++] = argv[i];
    }
    if (!nf || !out) sd_die("plot", "METRICS.jsonl and --out DIR are required (see simpo_dist plot --help)");
    /* the x axis: its field and its label */
    static const char *const XS[][3] = {{"step", "step", "step"},
                                        {"tokens", "num_input_tokens_seen", "tokens trained on"},
                                        {"flos", "total_flos", "model FLOPs"}};
    int xi = -1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(x, XS[k][0])) xi = k;
    if (xi < 0) sd_die("plot", "--x '%s': expected step, tokens or flos", x);
    Run *runs = sd_calloc((size_t)nf, sizeof *runs, "runs");
    bool any_eval = false;
    for (int i = 0; i < nf; i++) {
        read_run(files[i], &runs[i], XS[xi][1]);
        any_eval = any_eval || runs[i].with_eval;
    }
    if (labels) { /* --labels A,B,...: one non-empty name per run, in order */
        int n = 1;
        for (const char *q = labels; *q; q++) n += *q == ',';
        if (n != nf) sd_die("plot", "--labels '%s': %d names for %d METRICS files", labels, n, nf);
        const char *p = labels;
        for (int i = 0; i < nf; i++) {
            size_t len = strcspn(p, ",");
            if (!len) sd_die("plot", "--labels '%s': name %d is empty", labels, i + 1);
            free(runs[i].label);
            runs[i].label = sd_alloc(len + 1, "label");
            memcpy(runs[i].label, p, len);
            runs[i].label[len] = 0;
            p += len + 1;
        }
    }
    sd_mkdirs(out);
    for (int g = 0; g < NGROUPS; g++) {
        const Group *gr = &GROUPS[g];
        if (!any_eval && is_eval_key(gr->keys[0])) continue;
        SvgFig *f = svg_new(720, 420, gr->title, XS[xi][2], gr->ylabel);
        if (gr->ylo < gr->yhi) svg_ylim(f, gr->ylo, gr->yhi);
        for (int r = 0; r < nf; r++)
            for (int k = 0; k < MAX_KEYS && gr->keys[k]; k++) {
                if (!runs[r].with_eval && is_eval_key(gr->keys[k])) continue;
                char name[512]; /* one run: the field; several: RUN: field */
                snprintf(name, sizeof name, "%s%s%s", nf > 1 ? runs[r].label : "", nf > 1 ? ": " : "", gr->keys[k]);
                svg_line(f, name, runs[r].c.step, runs[r].c.val[g][k], runs[r].c.n);
            }
        char *path = sd_path_join(out, gr->file);
        svg_write(f, path);
        printf("%s\n", path);
        free(path);
        svg_free(f);
    }
    for (int r = 0; r < nf; r++) {
        free(runs[r].c.step);
        for (int g = 0; g < NGROUPS; g++)
            for (int k = 0; k < MAX_KEYS; k++) free(runs[r].c.val[g][k]);
        free(runs[r].label);
    }
    free(runs);
    free(files);
    return 0;
}
