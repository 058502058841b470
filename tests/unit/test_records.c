/* test_records.c — data/records.h: the same records from JSONL, from a JSON array (indented as Python's json.dump
 * writes it, and on one line; strings holding brackets, braces, quotes and escapes), and from Parquet; each record's
 * line; and every malformed array an error naming its line. */
#include <cjson/cJSON.h>
#include "records.h"
#include "test_util.h"

static char g_dir[] = "/tmp/sd_records_XXXXXX";

static char *write_tmp(const char *name, const char *text) {
    char *p = sd_path_join(g_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) { fprintf(stderr, "cannot write %s\n", p); exit(1); }
    fclose(f);
    return p;
}

/* every record of path, printed, one a line; and their numbers */
static char *all_records(const char *path, long *nums, int *n) {
    Records *r = records_open(path, NULL, 0);
    size_t cap = 1 << 16, len = 0;
    char *out = sd_alloc(cap, "out");
    out[0] = 0;
    const cJSON *o;
    long num;
    *n = 0;
    while ((o = records_next(r, &num))) {
        char *s = cJSON_PrintUnformatted(o);
        len += strlen(s) + 1;
        if (len + 1 > cap) out = sd_realloc(out, cap = 2 * len, "out");
        strcat(out, s);
        strcat(out, "\n");
        free(s);
        if (nums) nums[*n] = num;
        ++*n;
    }
    records_close(r);
    return out;
}

static const char *g_path;
static void read_all(void *arg) {
    (void)arg;
    int n;
    free(all_records(g_path, NULL, &n));
}
static int bad(const char *name, const char *text, const char *want) {
    char *p = write_tmp(name, text);
    g_path = p;
    int ok = expect_die(read_all, NULL, want);
    free(p);
    return ok;
}

int main(void) {
    if (!mkdtemp(g_dir)) { fprintf(stderr, "mkdtemp\n"); return 1; }
    const char *jsonl =
        "{\"prompt\": \"a [b] {c}\", \"chosen\": [{\"role\": \"user\", \"content\": \"q \\\"x\\\" \\\\ }\"}], \"n\": 1}\n"
        "\n"
        "{\"prompt\": \"] , [\", \"chosen\": [], \"n\": 2.5, \"t\": null}\n";
    /* the same two objects as json.dump(list, indent=4) writes them */
    const char *indented =
        "[\n"
        "    {\n"
        "        \"prompt\": \"a [b] {c}\",\n"
        "        \"chosen\": [\n"
        "            {\n"
        "                \"role\": \"user\",\n"
        "                \"content\": \"q \\\"x\\\" \\\\ }\"\n"
        "            }\n"
        "        ],\n"
        "        \"n\": 1\n"
        "    },\n"
        "    {\"prompt\": \"] , [\", \"chosen\": [], \"n\": 2.5, \"t\": null}\n"
        "]\n";
    const char *one_line = "  [{\"prompt\": \"a [b] {c}\", \"chosen\": [{\"role\": \"user\", \"content\": \"q \\\"x\\\" \\\\ }\"}], "
                           "\"n\": 1},{\"prompt\": \"] , [\", \"chosen\": [], \"n\": 2.5, \"t\": null}]";
    char *pj = write_tmp("a.jsonl", jsonl), *pi = write_tmp("b.json", indented), *po = write_tmp("c.json", one_line);
    long nj[4], ni[4], no[4];
    int cj, ci, co;
    char *rj = all_records(pj, nj, &cj), *ri = all_records(pi, ni, &ci), *ro = all_records(po, no, &co);
    CHECK(cj == 2 && ci == 2 && co == 2, "two records each (%d %d %d)", cj, ci, co);
    CHECK(!strcmp(rj, ri) && !strcmp(rj, ro), "the same records:\n%s%s%s", rj, ri, ro);
    CHECK(nj[0] == 1 && nj[1] == 3, "JSONL: lines 1 and 3 (%ld %ld)", nj[0], nj[1]);
    CHECK(ni[0] == 2 && ni[1] == 12, "indented array: each element's first line, 2 and 12 (%ld %ld)", ni[0], ni[1]);
    CHECK(no[0] == 1 && no[1] == 1, "one-line array: line 1");
    free(rj), free(ri), free(ro), free(pj), free(pi), free(po);
    char *pe = write_tmp("e.json", " [ ]\n");
    int ce;
    free(all_records(pe, NULL, &ce));
    CHECK(ce == 0, "an empty array: no records");
    free(pe);
    /* Parquet: the fixture's rows = its expected JSONL's lines, numbered by row */
    char *pq = fixture_path("parquet/prompts.parquet"), *pqj = fixture_path("parquet/prompts.jsonl");
    long nq[8], nl[8];
    int cq, cl;
    char *rq = all_records(pq, nq, &cq), *rl = all_records(pqj, nl, &cl);
    CHECK(cq == 5 && cl == 5 && !strcmp(rq, rl) && nq[4] == 5, "Parquet rows = their JSONL (%d rows)", cq);
    free(rq), free(rl), free(pq), free(pqj);

    /* malformed arrays: the line of the fault */
    CHECK(bad("t1.json", "[\n{\"a\": 1},\n]\n", "t1.json:3: element 2 of the JSON array is not an object"),
          "trailing comma");
    CHECK(bad("t2.json", "[\n{\"a\": 1}\n", "t2.json:3: the JSON array ends without ']'"), "no closing bracket");
    CHECK(bad("t3.json", "[{\"a\": 1}]\nx\n", "t3.json:2: text after the end of the JSON array"), "text after");
    CHECK(bad("t4.json", "[{\"a\": 1} {\"b\": 2}]", "expected ',' or ']' after element 1"), "missing comma");
    CHECK(bad("t5.json", "[\n  {\"a\": \"open]\n", "the JSON array ends inside element 1"), "unterminated string");
    CHECK(bad("t6.json", "[1, 2]", "t6.json:1: element 1 of the JSON array is not an object"), "numbers");
    CHECK(bad("t7.json", "[{\"a\": 1,}]", "t7.json:1: invalid JSON in element 1"), "bad element");
    CHECK(bad("t8.jsonl", "{\"a\": 1}\n{\"a\": }\n", "t8.jsonl:2: invalid JSON"), "JSONL line");
    CHECK(bad("t9.json", "[{\"a\": 1}, [2]]", "t9.json:1: element 2 of the JSON array is not an object"),
          "an array element");
    g_path = "/nonexistent/r.jsonl";
    CHECK(expect_die(read_all, NULL, "/nonexistent/r.jsonl: cannot open"), "missing file");
    t_remove_tree(g_dir);
    TEST_END();
}
