/* test_pairs.c — JSONL pairs: parsing, the fixture, truncation as the SimPO reference trainer does it, the epoch
 * order, micro-batch packing with and without prefix sharing (exact arrays written by hand), and malformed lines
 * named by file:line and field. */
#include <stdlib.h>
#include <unistd.h>
#include "pairs.h"
#include <stdint.h>
#include "test_util.h"

static char dir[64];
static char *write_file(const char *name, const char *text) {
    char *p = sd_path_join(dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}
static char *g_path;
static int g_vocab;
static void load_it(void *a) {
    (void)a;
    pairs_free(pairs_load_jsonl(g_path, g_vocab));
}
static int bad(const char *text, int vocab, const char *want) {
    g_path = write_file("bad.jsonl", text);
    g_vocab = vocab;
    int ok = expect_die(load_it, NULL, want);
    free(g_path);
    return ok;
}
static int eq(const int *a, const int *b, int n) { return !memcmp(a, b, sizeof(int) * (size_t)n); }

/* the least largest group sum over every cut of t[0..n) into k contiguous non-empty groups, by trying them all */
static size_t best_cut(const size_t *t, int n, int k) {
    if (k == 1) {
        size_t s = 0;
        for (int i = 0; i < n; i++) s += t[i];
        return s;
    }
    size_t best = SIZE_MAX, first = 0;
    for (int j = 1; j <= n - k + 1; j++) { /* the first group t[0..j) */
        first += t[j - 1];
        size_t rest = best_cut(t + j, n - j, k - 1), worst = first > rest ? first : rest;
        if (worst < best) best = worst;
    }
    return best;
}

/* whether t[0..n) cuts into k contiguous non-empty groups each within budget or of a single pair, by trying them all */
static bool cut_fits(const size_t *t, int n, int k, size_t budget) {
    if (k == 1) {
        size_t s = 0;
        for (int i = 0; i < n; i++) s += t[i];
        return s <= budget || n == 1;
    }
    size_t first = 0;
    for (int j = 1; j <= n - k + 1; j++) {
        first += t[j - 1];
        if ((first <= budget || j == 1) && cut_fits(t + j, n - j, k - 1, budget)) return true;
    }
    return false;
}

/* train.micro_batch_tokens' cuts on random lengths: pairs_token_groups gives exactly k non-empty contiguous groups
 * whose largest sum is the brute-force optimum; pairs_token_groups_min the fewest groups each within a budget or of
 * one pair, and the optimal cut at that k keeps every group within the budget or the longest pair */
static void test_token_groups(void) {
    enum { NP = 9 };
    Pair pr[NP];
    int ids[64] = {0};
    PairSet ps = {.pairs = pr, .n = NP};
    size_t idx[NP], t[NP];
    uint64_t r = 12345;
    int checked = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + trial % NP;
        for (int i = 0; i < n; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            int len = 1 + (int)((r >> 33) % 20);
            pr[i] = (Pair){.prompt = ids, .chosen = ids, .rejected = ids, .n_prompt = len, .n_chosen = 1 + len % 3,
                           .n_rejected = 2};
            idx[i] = (size_t)i;
            t[i] = pair_tokens(&pr[i], true);
        }
        for (int k = 1; k <= n; k++) {
            int start[NP + 1];
            pairs_token_groups(&ps, idx, n, k, true, start);
            size_t worst = 0;
            bool ok = start[0] == 0 && start[k] == n;
            for (int g = 0; g < k; g++) {
                ok = ok && start[g + 1] > start[g];
                size_t sum = 0;
                for (int i = start[g]; i < start[g + 1] && i < n; i++) sum += t[i];
                if (sum > worst) worst = sum;
            }
            CHECK(ok && worst == best_cut(t, n, k), "trial %d: %d groups of %d pairs: largest %zu, best %zu", trial,
                  k, n, worst, best_cut(t, n, k));
            checked++;
        }
        size_t budget = 10 + (size_t)(trial % 40);
        int kmin = pairs_token_groups_min(&ps, idx, n, budget, true);
        size_t longest = 0;
        for (int i = 0; i < n; i++) longest = t[i] > longest ? t[i] : longest;
        CHECK(kmin >= 1 && kmin <= n && cut_fits(t, n, kmin, budget) && (kmin == 1 || !cut_fits(t, n, kmin - 1, budget)),
              "trial %d: %d groups within %zu tokens is not the fewest", trial, kmin, budget);
        int start[NP + 1];
        pairs_token_groups(&ps, idx, n, kmin, true, start);
        for (int g = 0; g < kmin; g++) {
            size_t sum = 0;
            for (int i = start[g]; i < start[g + 1]; i++) sum += t[i];
            CHECK(sum <= budget || sum <= longest, "trial %d: group %d of %zu tokens over %zu and the longest %zu",
                  trial, g, sum, budget, longest);
        }
    }
    CHECK(pairs_token_groups_min(&ps, idx, 0, 100, true) == 0, "no pairs: no groups");
    printf("token groups: %d cuts checked against brute force\n", checked);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/sd_pairs_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char *p = write_file("a.jsonl", "{\"prompt_ids\": [1, 5, 6], \"chosen_ids\": [7, 8, 2], \"rejected_ids\": [9, 2]}\n"
                                    "\n"
                                    "{\"prompt_ids\": [1], \"chosen_ids\": [3], \"rejected_ids\": [4, 4], \"x\": 1}\n");
    PairSet *ps = pairs_load_jsonl(p, 10);
    CHECK(ps->n == 2 && !ps->all_have_ref, "two pairs, blank line skipped");
    CHECK(ps->pairs[0].n_prompt == 3 && ps->pairs[0].n_chosen == 3 && ps->pairs[0].n_rejected == 2, "lengths");
    CHECK(ps->pairs[1].line == 3, "line numbers count blank lines: %d", ps->pairs[1].line);
    {
        int pr[] = {1, 5, 6}, ch[] = {7, 8, 2}, rj[] = {9, 2};
        CHECK(eq(ps->pairs[0].prompt, pr, 3) && eq(ps->pairs[0].chosen, ch, 3) && eq(ps->pairs[0].rejected, rj, 2),
              "ids parsed");
        CHECK(!ps->pairs[0].has_ref && !ps->pairs[1].has_ref, "no reference log-probs");
        CHECK(!strcmp(ps->source, p), "source path kept");
    }

    /* packing: pair 0 -> seqs [1 5 6 7 8 2] and [1 5 6 9 2]; pair 1 -> [1 3] and [1 4 4] */
    size_t idx[2] = {0, 1};
    MicroBatch *mb = microbatch_pack(ps, idx, 2);
    int ids[] = {1, 5, 6, 7, 8, 2, 1, 5, 6, 9, 2, 1, 3, 1, 4, 4};
    int tg[] = {-1, -1, 7, 8, 2, -1, -1, -1, 9, 2, -1, 3, -1, 4, 4, -1};
    int pos[] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 0, 1, 0, 1, 2};
    int cu[] = {0, 6, 11, 13, 16}, nresp[] = {3, 2, 1, 2};
    CHECK(mb->Ntok == 16 && mb->S == 4 && mb->P == 2, "sizes");
    CHECK(eq(mb->ids, ids, 16), "ids");
    CHECK(eq(mb->targets, tg, 16), "targets");
    CHECK(eq(mb->pos, pos, 16), "positions");
    CHECK(eq(mb->cu_seqlens, cu, 5), "cu_seqlens");
    CHECK(eq(mb->n_resp, nresp, 4), "response counts");
    CHECK(mb->seq_of[12] == 2 && mb->seq_of[13] == 3 && mb->pair_index[1] == 1, "sequence and pair index");
    {
        int lt[] = {2, 3, 4, 8, 9, 11, 13, 14}, lg[] = {7, 8, 2, 9, 2, 3, 4, 4}, ls[] = {0, 0, 0, 1, 1, 2, 3, 3};
        CHECK(mb->M == 8 && mb->nlp_dup == 0 && eq(mb->lp_tok, lt, 8) && eq(mb->lp_tgt, lg, 8) && eq(mb->lp_seq, ls, 8),
              "log-prob rows");
        CHECK(!mb->shared && mb->Natt == 16 && !mb->xrow && !mb->xfirst && mb->ndup == 0, "no sharing maps");
    }
    microbatch_free(mb);

    /* prefix sharing: pair 0 -> [1 5 6 | 7 8 2 | 9 2], pair 1 -> [1 | 3 | 4 4]; attention's layout as above */
    mb = microbatch_pack_opts(ps, idx, 2, true);
    {
        int sids[] = {1, 5, 6, 7, 8, 2, 9, 2, 1, 3, 4, 4}, stg[] = {-1, -1, 7, 8, 2, -1, 2, -1, 3, -1, 4, -1};
        int spos[] = {0, 1, 2, 3, 4, 5, 3, 4, 0, 1, 1, 2}, sseq[] = {0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3};
        int xrow[] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 6, 7, 8, 9, 8, 10, 11}, xfirst[] = {0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 14, 15};
        int dtok[] = {0, 1, 2, 8}, drow[] = {6, 7, 8, 13};
        int lt[] = {2, 3, 4, 2, 6, 8, 8, 10}, lg[] = {7, 8, 2, 9, 2, 3, 4, 4}, ls[] = {0, 0, 0, 1, 1, 2, 3, 3}, ld[] = {3, 6};
        CHECK(mb->shared && mb->Ntok == 12 && mb->Natt == 16 && mb->S == 4, "shared sizes");
        CHECK(eq(mb->ids, sids, 12) && eq(mb->targets, stg, 12) && eq(mb->pos, spos, 12) && eq(mb->seq_of, sseq, 12),
              "shared ids, targets, positions, sequences");
        CHECK(eq(mb->cu_seqlens, cu, 5) && eq(mb->n_resp, nresp, 4), "shared: attention's sequences unchanged");
        CHECK(eq(mb->xrow, xrow, 16) && eq(mb->xfirst, xfirst, 12), "attention rows and each token's own row");
        CHECK(mb->ndup == 4 && eq(mb->dup_tok, dtok, 4) && eq(mb->dup_row, drow, 4), "second copies of the prompts");
        CHECK(mb->M == 8 && eq(mb->lp_tok, lt, 8) && eq(mb->lp_tgt, lg, 8) && eq(mb->lp_seq, ls, 8),
              "shared log-prob rows");
        CHECK(mb->nlp_dup == 2 && eq(mb->lp_dup, ld, 2), "a prompt's last token predicts both first tokens");
        /* every attention row's token has the id of the unshared layout's row */
        int same = 1;
        for (int r = 0; r < 16; r++) same &= sids[mb->xrow[r]] == ids[r];
        CHECK(same, "attention rows map to the same ids");
        CHECK(pair_tokens(&ps->pairs[0], true) == 8 && pair_tokens(&ps->pairs[0], false) == 11, "pair_tokens");
    }
    microbatch_free(mb);
    pairs_free(ps);
    free(p);

    /* truncation: max_length 6, max_prompt_length 3 */
    p = write_file("t.jsonl", "{\"prompt_ids\": [1,2,3,4,5], \"chosen_ids\": [6,7], \"rejected_ids\": [8]}\n"
                              "{\"prompt_ids\": [1,2,3,4,5], \"chosen_ids\": [6,7,8,9,10], \"rejected_ids\": [8]}\n"
                              "{\"prompt_ids\": [1,2], \"chosen_ids\": [6,7], \"rejected_ids\": [8]}\n");
    ps = pairs_load_jsonl(p, 0);
    pairs_truncate(ps, 6, 3);
    int p0[] = {3, 4, 5}, c1[] = {6, 7, 8};
    CHECK(ps->pairs[0].n_prompt == 3 && eq(ps->pairs[0].prompt, p0, 3) && ps->pairs[0].n_chosen == 2,
          "prompt keeps its end; responses untouched");
    CHECK(ps->pairs[1].n_prompt == 3 && ps->pairs[1].n_chosen == 3 && eq(ps->pairs[1].chosen, c1, 3) &&
              ps->pairs[1].n_rejected == 1, "then responses cut to max_length - max_prompt_length");
    CHECK(ps->pairs[2].n_prompt == 2 && ps->pairs[2].n_chosen == 2, "short pair untouched");
    CHECK(ps->n_truncated == 2, "two pairs counted: %zu", ps->n_truncated);
    pairs_free(ps);
    free(p);

    /* fixture */
    p = fixture_path("tiny-a/pairs.jsonl");
    ps = pairs_load_jsonl(p, 384);
    CHECK(ps->n == 6 && ps->all_have_ref, "fixture: 6 pairs with reference log-probs");
    CHECK(ps->pairs[0].n_prompt == 10 && ps->pairs[0].n_chosen == 12 && ps->pairs[0].n_rejected == 11, "pair 0");
    CHECK(fabs(ps->pairs[0].ref_chosen_logp + 75.1750961497226) < 1e-12, "ref_chosen_logp");
    pairs_free(ps);
    free(p);

    /* reference log-probs, an empty prompt, CRLF line ends, a long line */
    {
        char *lp = write_file("r.jsonl", "{\"prompt_ids\": [], \"chosen_ids\": [4, 5, 6], \"rejected_ids\": [7, 8], "
                                         "\"ref_chosen_logp\": -1.5, \"ref_rejected_logp\": -2e1}\r\n"
                                         "  \t \r\n"
                                         "{\"rejected_ids\": [3], \"chosen_ids\": [2], \"prompt_ids\": [1], "
                                         "\"ref_rejected_logp\": 0, \"ref_chosen_logp\": -0.25, \"meta\": {\"a\": [1]}}");
        PairSet *q = pairs_load_jsonl(lp, 9);
        CHECK(q->n == 2 && q->all_have_ref && q->pairs[0].has_ref, "both pairs carry references");
        CHECK(q->pairs[0].n_prompt == 0 && q->pairs[0].ref_chosen_logp == -1.5 && q->pairs[0].ref_rejected_logp == -20.0,
              "empty prompt, reference values");
        CHECK(q->pairs[1].line == 3 && q->pairs[1].ref_chosen_logp == -0.25 && q->pairs[1].ref_rejected_logp == 0.0,
              "second pair (no trailing newline)");
        /* empty prompt: the first response token has no predecessor and is not predicted */
        size_t i0 = 0;
        MicroBatch *m = microbatch_pack(q, &i0, 1);
        int ids0[] = {4, 5, 6, 7, 8}, tg0[] = {5, 6, -1, 8, -1}, pos0[] = {0, 1, 2, 0, 1}, cu0[] = {0, 3, 5},
            nr0[] = {2, 1}, so0[] = {0, 0, 0, 1, 1};
        CHECK(m->Ntok == 5 && eq(m->ids, ids0, 5) && eq(m->targets, tg0, 5) && eq(m->pos, pos0, 5) &&
                  eq(m->cu_seqlens, cu0, 3) && eq(m->n_resp, nr0, 2) && eq(m->seq_of, so0, 5),
              "empty prompt packing: n_resp counts predictable tokens only");
        CHECK(m->pairs[0] == &q->pairs[0] && m->pair_index[0] == 0, "pair views");
        microbatch_free(m);
        /* prefix sharing of an empty prompt: nothing to share, the same layout */
        m = microbatch_pack_opts(q, &i0, 1, true);
        int lt0[] = {0, 1, 3}, lg0[] = {5, 6, 8};
        CHECK(m->Ntok == 5 && m->Natt == 5 && eq(m->ids, ids0, 5) && eq(m->targets, tg0, 5) && eq(m->pos, pos0, 5) &&
                  m->ndup == 0 && m->nlp_dup == 0 && m->M == 3 && eq(m->lp_tok, lt0, 3) && eq(m->lp_tgt, lg0, 3),
              "empty prompt under prefix sharing: nothing shared");
        int same = 1;
        for (int r = 0; r < 5; r++) same &= m->xrow[r] == r && m->xfirst[r] == r;
        CHECK(same, "empty prompt under prefix sharing: attention's rows are the tokens");
        microbatch_free(m);
        /* packing in a given order: pair 1 then pair 0 */
        size_t i10[2] = {1, 0};
        m = microbatch_pack(q, i10, 2);
        int ids1[] = {1, 2, 1, 3, 4, 5, 6, 7, 8}, tg1[] = {2, -1, 3, -1, 5, 6, -1, 8, -1}, cu1[] = {0, 2, 4, 7, 9},
            nr1[] = {1, 1, 2, 1};
        CHECK(m->Ntok == 9 && eq(m->ids, ids1, 9) && eq(m->targets, tg1, 9) && eq(m->cu_seqlens, cu1, 5) &&
                  eq(m->n_resp, nr1, 4) && m->pair_index[0] == 1 && m->pair_index[1] == 0,
              "packing follows idx");
        microbatch_free(m);
        pairs_free(q);
        free(lp);

        /* a long line (getline, not a fixed buffer) */
        size_t cap = 64 + 20 * 8000;
        char *text = sd_alloc(cap, "test");
        int off = snprintf(text, cap, "{\"prompt_ids\": [1], \"rejected_ids\": [2], \"chosen_ids\": [");
        for (int i = 0; i < 20000; i++) off += snprintf(text + off, cap - (size_t)off, "%s%d", i ? "," : "", i % 7);
        snprintf(text + off, cap - (size_t)off, "]}\n");
        lp = write_file("long.jsonl", text);
        q = pairs_load_jsonl(lp, 7);
        CHECK(q->n == 1 && q->pairs[0].n_chosen == 20000 && q->pairs[0].chosen[19999] == 19999 % 7, "long line");
        pairs_free(q);
        free(lp);
        free(text);
    }

    /* truncation, more cases (max_length 8, max_prompt_length 3: responses keep 5) */
    {
        char *tp = write_file("t2.jsonl",
                              /* prompt short, responses long: prompt untouched, responses cut to 5 */
                              "{\"prompt_ids\": [1,2], \"chosen_ids\": [10,11,12,13,14,15,16,17], \"rejected_ids\": [20,21,22]}\n"
                              /* prompt long, rejected long: prompt keeps its end; then only rejected is cut */
                              "{\"prompt_ids\": [1,2,3,4,5,6], \"chosen_ids\": [10,11], \"rejected_ids\": [20,21,22,23,24,25,26]}\n"
                              /* exactly max_length: untouched */
                              "{\"prompt_ids\": [1,2,3,4,5], \"chosen_ids\": [10,11,12], \"rejected_ids\": [20]}\n"
                              /* prompt long, responses fit after the prompt cut: only the prompt changes */
                              "{\"prompt_ids\": [1,2,3,4,5,6,7], \"chosen_ids\": [10,11,12,13], \"rejected_ids\": [20]}\n");
        PairSet *q = pairs_load_jsonl(tp, 0);
        pairs_truncate(q, 8, 3);
        Pair *a = &q->pairs[0], *b = &q->pairs[1], *c = &q->pairs[2], *e = &q->pairs[3];
        int a_p[] = {1, 2}, a_c[] = {10, 11, 12, 13, 14}, a_r[] = {20, 21, 22};
        int b_p[] = {4, 5, 6}, b_c[] = {10, 11}, b_r[] = {20, 21, 22, 23, 24};
        int c_p[] = {1, 2, 3, 4, 5}, c_c[] = {10, 11, 12}, c_r[] = {20};
        int e_p[] = {5, 6, 7}, e_c[] = {10, 11, 12, 13}, e_r[] = {20};
        CHECK(a->n_prompt == 2 && eq(a->prompt, a_p, 2) && a->n_chosen == 5 && eq(a->chosen, a_c, 5) &&
                  a->n_rejected == 3 && eq(a->rejected, a_r, 3), "short prompt kept, responses cut to 5");
        CHECK(b->n_prompt == 3 && eq(b->prompt, b_p, 3) && b->n_chosen == 2 && eq(b->chosen, b_c, 2) &&
                  b->n_rejected == 5 && eq(b->rejected, b_r, 5), "prompt end kept, long response cut");
        CHECK(c->n_prompt == 5 && eq(c->prompt, c_p, 5) && c->n_chosen == 3 && eq(c->chosen, c_c, 3) &&
                  c->n_rejected == 1 && eq(c->rejected, c_r, 1), "exactly max_length untouched");
        CHECK(e->n_prompt == 3 && eq(e->prompt, e_p, 3) && e->n_chosen == 4 && eq(e->chosen, e_c, 4) &&
                  e->n_rejected == 1 && eq(e->rejected, e_r, 1), "prompt cut alone suffices");
        CHECK(q->n_truncated == 3, "three pairs changed: %zu", q->n_truncated);
        pairs_free(q);
        free(tp);
    }

    /* epoch order */
    size_t o1[50], o2[50], o3[50], seen[50] = {0};
    pairs_epoch_order(o1, 50, true, 3, 0);
    pairs_epoch_order(o2, 50, true, 3, 0);
    pairs_epoch_order(o3, 50, true, 3, 1);
    int perm = 1;
    for (int i = 0; i < 50; i++) perm &= o1[i] < 50 && !seen[o1[i]]++;
    CHECK(perm, "a permutation");
    CHECK(!memcmp(o1, o2, sizeof o1), "deterministic");
    CHECK(memcmp(o1, o3, sizeof o1), "another epoch, another order");
    pairs_epoch_order(o3, 50, true, 4, 0);
    CHECK(memcmp(o1, o3, sizeof o1), "another seed, another order");
    pairs_epoch_order(o3, 50, false, 3, 5);
    int ident = 1;
    for (int i = 0; i < 50; i++) ident &= o3[i] == (size_t)i;
    CHECK(ident, "no shuffle: file order");
    /* the documented procedure (part of the checkpoint format) */
    {
        size_t want[50];
        for (size_t i = 0; i < 50; i++) want[i] = i;
        for (size_t i = 49; i >= 1; i--) {
            size_t j = (size_t)(sd_hash64(3, 0, i) % (i + 1)), tmp = want[i];
            want[i] = want[j];
            want[j] = tmp;
        }
        CHECK(!memcmp(o1, want, sizeof want), "Fisher-Yates from the back with sd_hash64(seed, epoch, i) %% (i+1)");
        size_t one = 7;
        pairs_epoch_order(&one, 1, true, 3, 0);
        CHECK(one == 0, "n = 1");
        pairs_epoch_order(NULL, 0, true, 3, 0);
    }

    /* malformed lines */
    const char *ok = "{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n";
    char buf[512];
#define BAD(line2, vocab, want)                              \
    snprintf(buf, sizeof buf, "%s%s\n", ok, line2);          \
    CHECK(bad(buf, vocab, want), "%s", want)
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2]", 0, "bad.jsonl:2: invalid JSON");
    BAD("{\"prompt_ids\": [1], \"rejected_ids\": [3]}", 0, "bad.jsonl:2: field 'chosen_ids' is missing");
    BAD("{\"prompt_ids\": [1], \"rejected_ids\": [3]}", 0, "the record has: prompt_ids, rejected_ids)");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [], \"rejected_ids\": [3]}", 0, "field 'chosen_ids': expected a non-empty");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2.5], \"rejected_ids\": [3]}", 0, "field 'chosen_ids': element 0");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [-3]}", 0, "field 'rejected_ids': element 0");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [30]}", 10, "token id 30 is outside the vocabulary");
    BAD("{\"prompt_ids\": 1, \"chosen_ids\": [2], \"rejected_ids\": [3]}", 0, "field 'prompt_ids': expected an array");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3], \"ref_chosen_logp\": -1}", 0,
        "ref_rejected_logp");
    BAD("[1, 2]", 0, "bad.jsonl:2: invalid JSON");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]} trailing", 0, "bad.jsonl:2: invalid JSON");
    BAD("{\"chosen_ids\": [2], \"rejected_ids\": [3]}", 0, "bad.jsonl:2: field 'prompt_ids' is missing");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2]}", 0, "bad.jsonl:2: field 'rejected_ids' is missing");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": []}", 0,
        "bad.jsonl:2: field 'rejected_ids': expected a non-empty array of token ids");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": \"2\", \"rejected_ids\": [3]}", 0,
        "bad.jsonl:2: field 'chosen_ids': expected a non-empty array of token ids");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2, \"x\"], \"rejected_ids\": [3]}", 0,
        "bad.jsonl:2: field 'chosen_ids': element 1 is not an integer token id");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [-3]}", 0,
        "bad.jsonl:2: field 'rejected_ids': element 0 is a negative token id");
    BAD("{\"prompt_ids\": [1e12], \"chosen_ids\": [2], \"rejected_ids\": [3]}", 0,
        "bad.jsonl:2: field 'prompt_ids': element 0");
    BAD("{\"prompt_ids\": [10], \"chosen_ids\": [2], \"rejected_ids\": [3]}", 10,
        "bad.jsonl:2: field 'prompt_ids': token id 10 is outside the vocabulary (vocab_size 10)");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3], \"ref_rejected_logp\": -1}", 0,
        "bad.jsonl:2: field 'ref_chosen_logp' is missing");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3], \"ref_chosen_logp\": \"a\", "
        "\"ref_rejected_logp\": -1}", 0, "bad.jsonl:2: field 'ref_chosen_logp': expected a number");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3], \"ref_chosen_logp\": -1, "
        "\"ref_rejected_logp\": null}", 0, "bad.jsonl:2: field 'ref_rejected_logp': expected a number");
    CHECK(bad("\n{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n{oops}\n", 0, "bad.jsonl:3: invalid JSON"),
          "line numbers count blank lines in errors");
    CHECK(bad("\n\n", 0, "bad.jsonl: holds no preference pairs"), "blank file");
    CHECK(bad("", 0, "bad.jsonl: holds no preference pairs"), "empty file");
    /* limits: a line longer than PAIRS_MAX_LINE_BYTES, a pair longer than PAIRS_MAX_PAIR_TOKENS (errors name the line) */
    {
        size_t n = (size_t)PAIRS_MAX_LINE_BYTES + 200; /* line 2 alone is longer than the limit */
        char *big = malloc(n + 64);
        strcpy(big, "{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n{\"x\": \"");
        size_t k = strlen(big);
        memset(big + k, 'a', n - k);
        strcpy(big + n, "\"}\n");
        CHECK(bad(big, 0, "bad.jsonl:2: line longer than 67108864 bytes"), "line length limit");
        int T = PAIRS_MAX_PAIR_TOKENS;
        char *q = big;
        q += sprintf(q, "{\"prompt_ids\": [1], \"chosen_ids\": [");
        for (int i = 0; i < T; i++) q += sprintf(q, i ? ",2" : "2");
        sprintf(q, "], \"rejected_ids\": [3]}\n");
        CHECK(bad(big, 0, "bad.jsonl:1: a sequence of 1048577 tokens (prompt 1 + response 1048576) exceeds the limit"),
              "tokens per pair limit");
        free(big);
    }
    g_path = sd_path_join(dir, "absent.jsonl");
    CHECK(expect_die(load_it, NULL, "absent.jsonl: cannot open: No such file or directory"), "missing file");
    free(g_path);
    t_remove_tree(dir);
    test_token_groups();
    TEST_END();
}
