/* test_pairs.c — JSONL pairs: parsing, the fixture, truncation as the SimPO reference trainer does it, the epoch
 * order, micro-batch packing (exact arrays written by hand), and malformed lines named by file:line and field. */
#include <stdlib.h>
#include <unistd.h>
#include "pairs.h"
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

    /* malformed lines */
    const char *ok = "{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n";
    char buf[512];
#define BAD(line2, vocab, want)                              \
    snprintf(buf, sizeof buf, "%s%s\n", ok, line2);          \
    CHECK(bad(buf, vocab, want), "%s", want)
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2]", 0, "bad.jsonl:2: invalid JSON");
    BAD("{\"prompt_ids\": [1], \"rejected_ids\": [3]}", 0, "bad.jsonl:2: field 'chosen_ids' is missing");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [], \"rejected_ids\": [3]}", 0, "field 'chosen_ids': expected a non-empty");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2.5], \"rejected_ids\": [3]}", 0, "field 'chosen_ids': element 0");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [-3]}", 0, "field 'rejected_ids': element 0");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [30]}", 10, "token id 30 is outside the vocabulary");
    BAD("{\"prompt_ids\": 1, \"chosen_ids\": [2], \"rejected_ids\": [3]}", 0, "field 'prompt_ids': expected an array");
    BAD("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3], \"ref_chosen_logp\": -1}", 0,
        "ref_rejected_logp");
    BAD("[1, 2]", 0, "bad.jsonl:2: invalid JSON");
    CHECK(bad("\n\n", 0, "holds no preference pairs"), "empty file");
    g_path = sd_path_join(dir, "absent.jsonl");
    CHECK(expect_die(load_it, NULL, "absent.jsonl: cannot open"), "missing file");
    free(g_path);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    TEST_END();
}
