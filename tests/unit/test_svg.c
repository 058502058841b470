/* test_svg.c — src/svg.c: nice numbers and ticks, tick labels, escaping, and that a rendered figure is well-formed
 * XML (a small checker below: balanced tags, one root, quoted attributes, only known entities) holding one
 * polyline per line series with the data points at the mapped pixel positions. */
#include <ctype.h>
#include <math.h>
#include <sys/stat.h>
#include "svg.h"
#include "test_util.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1, fabs(b)); }

static int entity_ok(const char *p) {
    static const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(p, ents[i], strlen(ents[i]))) return 1;
    return 0;
}

/* 1 when s is a well-formed document: prolog, one root element, balanced and properly nested tags. */
static int well_formed(const char *s, char *why, size_t cap) {
    const char *stack[256];
    size_t lens[256];
    int depth = 0, roots = 0;
    for (const char *p = s; *p;) {
        if (*p != '<') {
            if (*p == '&' && !entity_ok(p)) return snprintf(why, cap, "bad entity at %.20s", p), 0;
            if (*p == '>') return snprintf(why, cap, "raw '>' in text at %.20s", p), 0;
            if (depth == 0 && !isspace((unsigned char)*p)) return snprintf(why, cap, "text outside the root"), 0;
            p++;
            continue;
        }
        if (!strncmp(p, "<?", 2)) {
            const char *q = strstr(p, "?>");
            if (!q) return snprintf(why, cap, "unterminated <?"), 0;
            p = q + 2;
            continue;
        }
        if (p[1] == '/') {
            const char *name = p + 2;
            size_t l = strcspn(name, " >\t\n");
            if (depth == 0 || l != lens[depth - 1] || strncmp(name, stack[depth - 1], l))
                return snprintf(why, cap, "mismatched close %.*s", (int)l, name), 0;
            depth--;
            const char *q = strchr(name, '>');
            if (!q) return snprintf(why, cap, "unterminated close tag"), 0;
            p = q + 1;
            continue;
        }
        const char *name = p + 1;
        size_t l = strcspn(name, " />\t\n");
        if (l == 0 || !isalpha((unsigned char)name[0])) return snprintf(why, cap, "bad tag at %.20s", p), 0;
        const char *q = name + l;
        while (*q && *q != '>') {
            if (*q == '"') {
                for (q++; *q && *q != '"'; q++) {
                    if (*q == '<') return snprintf(why, cap, "'<' in an attribute"), 0;
                    if (*q == '&' && !entity_ok(q)) return snprintf(why, cap, "bad entity in attribute"), 0;
                }
                if (!*q) return snprintf(why, cap, "unterminated attribute"), 0;
            } else if (*q == '<') {
                return snprintf(why, cap, "'<' inside a tag"), 0;
            }
            q++;
        }
        if (!*q) return snprintf(why, cap, "unterminated tag %.*s", (int)l, name), 0;
        if (depth == 0) roots++;
        if (q[-1] != '/') {
            if (depth == 256) return snprintf(why, cap, "too deep"), 0;
            stack[depth] = name, lens[depth++] = l;
        }
        p = q + 1;
    }
    if (depth) return snprintf(why, cap, "%d unclosed tags (innermost %.*s)", depth, (int)lens[depth - 1],
                               stack[depth - 1]), 0;
    if (roots != 1) return snprintf(why, cap, "%d root elements", roots), 0;
    return 1;
}

static int count(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub)) n++;
    return n;
}

static void test_nice(void) {
    CHECK(svg_nice_num(0.23, 1) == 0.2, "nice(0.23) = %g", svg_nice_num(0.23, 1));
    CHECK(svg_nice_num(0.73, 1) == 1, "nice(0.73) = %g", svg_nice_num(0.73, 1));
    CHECK(svg_nice_num(150, 1) == 200, "nice(150) = %g", svg_nice_num(150, 1));
    CHECK(svg_nice_num(4, 1) == 5, "nice(4) = %g", svg_nice_num(4, 1));
    CHECK(svg_nice_num(3.4, 0) == 5, "ceil-nice(3.4) = %g", svg_nice_num(3.4, 0));
    CHECK(svg_nice_num(12, 0) == 20, "ceil-nice(12) = %g", svg_nice_num(12, 0));
    CHECK(svg_nice_num(1, 0) == 1, "ceil-nice(1) = %g", svg_nice_num(1, 0));

    double first, step;
    /* [0, 1], 6 ticks: step nice(1/5) = 0.2 -> 0, 0.2, ..., 1 */
    int n = svg_nice_ticks(0, 1, 6, &first, &step);
    CHECK(n == 6 && first == 0 && near(step, 0.2, 1e-12), "[0,1]: %d ticks from %g by %g", n, first, step);
    /* [-11.3, 2.6]: step nice(13.9/5 = 2.78) = 2 -> -12 .. 4, 9 ticks */
    n = svg_nice_ticks(-11.3, 2.6, 6, &first, &step);
    CHECK(n == 9 && first == -12 && step == 2, "[-11.3,2.6]: %d ticks from %g by %g", n, first, step);
    /* [0.001, 0.003]: step nice(0.0004) = 0.0005 -> 0.001 .. 0.003, 5 ticks */
    n = svg_nice_ticks(0.001, 0.003, 6, &first, &step);
    CHECK(n == 5 && near(first, 0.001, 1e-12) && near(step, 0.0005, 1e-12), "lr scale: %d from %g by %g", n, first,
          step);
    /* a single value is widened and covered */
    n = svg_nice_ticks(5, 5, 6, &first, &step);
    CHECK(step > 0 && first <= 5 && first + (n - 1) * step >= 5 && n >= 2, "single value: %d from %g by %g", n, first,
          step);
    n = svg_nice_ticks(0, 0, 6, &first, &step);
    CHECK(first <= -1 + 1e-12 && first + (n - 1) * step >= 1 - 1e-12, "zero: %d from %g by %g", n, first, step);
    /* reversed and non-finite inputs still give a usable axis */
    n = svg_nice_ticks(3, 1, 6, &first, &step);
    CHECK(first <= 1 && first + (n - 1) * step >= 3, "reversed: %d from %g by %g", n, first, step);
    n = svg_nice_ticks(NAN, 1, 6, &first, &step);
    CHECK(n >= 2 && step > 0, "NaN: %d ticks", n);

    char b[64];
    svg_format_tick(0.1 * 3, 0.1, 1, b, sizeof b);
    CHECK(!strcmp(b, "0.3"), "0.1*3 -> '%s'", b);
    svg_format_tick(1e-17, 0.2, 1, b, sizeof b);
    CHECK(!strcmp(b, "0"), "near zero -> '%s'", b);
    svg_format_tick(1500, 500, 3000, b, sizeof b);
    CHECK(!strcmp(b, "1500"), "1500 -> '%s'", b);
    svg_format_tick(-2, 2, 12, b, sizeof b);
    CHECK(!strcmp(b, "-2"), "-2 -> '%s'", b);
    svg_format_tick(0.0015, 0.0005, 0.003, b, sizeof b);
    CHECK(!strcmp(b, "0.0015"), "0.0015 -> '%s'", b);
    svg_format_tick(1.2e-6, 2e-7, 1.2e-6, b, sizeof b);
    CHECK(!strcmp(b, "1.2e-06"), "1.2e-6 -> '%s'", b);
    svg_format_tick(3e6, 1e6, 5e6, b, sizeof b);
    CHECK(!strcmp(b, "3e+06"), "3e6 -> '%s'", b);
}

static void test_escape(void) {
    char *e = svg_escape("a<b & \"c\" 'd' > e");
    CHECK(!strcmp(e, "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt; e"), "escaped: %s", e);
    free(e);
    e = svg_escape("ctl\x01x\ty");
    CHECK(!strcmp(e, "ctl?x\ty"), "control char: %s", e);
    free(e);
    e = svg_escape("");
    CHECK(!strcmp(e, ""), "empty");
    free(e);
    e = svg_escape("rewards/chosen \xce\xb2");
    CHECK(!strcmp(e, "rewards/chosen \xce\xb2"), "UTF-8 kept: %s", e);
    free(e);
    char why[200] = "";
    CHECK(!well_formed("<svg><g></svg>", why, sizeof why), "checker rejects unbalanced tags");
    CHECK(!well_formed("<svg>a & b</svg>", why, sizeof why), "checker rejects a raw &");
    CHECK(!well_formed("<svg/><svg/>", why, sizeof why), "checker rejects two roots");
    CHECK(well_formed("<?xml version=\"1.0\"?>\n<svg a=\"&lt;\"><g/><text>x &amp; y</text></svg>\n", why, sizeof why),
          "checker accepts a small document: %s", why);
}

static void test_figure(void) {
    SvgFig *f = svg_new(640, 400, "Loss & <margins> \"quoted\"", "step", "loss 'per pair'");
    double x[] = {0, 1, 2, 3}, y1[] = {0, 10, 20, 30}, y2[] = {5, NAN, 15, INFINITY};
    svg_line(f, "loss <a&b>", x, y1, 4);
    svg_line(f, "with gaps", x, y2, 4);
    double sx[] = {1, 2, 3}, sy[] = {3, 2, 1};
    svg_scatter(f, "scatter", sx, sy, 3);
    double edges[] = {0, 1, 2, 3}, h[] = {2, 0, 5};
    svg_bars(f, "bars", edges, h, 3);
    svg_line(f, NULL, x, y1, 0); /* empty, unlabelled: no polyline, no legend entry */
    size_t len;
    char *doc = svg_render(f, &len);
    CHECK(len == strlen(doc), "length %zu vs %zu", len, strlen(doc));
    char why[200] = "";
    CHECK(well_formed(doc, why, sizeof why), "well-formed: %s", why);
    CHECK(!strncmp(doc, "<?xml", 5) && strstr(doc, "<svg xmlns=\"http://www.w3.org/2000/svg\""), "svg root");
    CHECK(count(doc, "<polyline") == 2, "one polyline per non-empty line series: %d", count(doc, "<polyline"));
    CHECK(count(doc, "class=\"series") == 5, "five series groups: %d", count(doc, "class=\"series"));
    CHECK(strstr(doc, "Loss &amp; &lt;margins&gt; &quot;quoted&quot;") != NULL, "title escaped");
    CHECK(strstr(doc, "loss &apos;per pair&apos;") != NULL, "y label escaped");
    CHECK(strstr(doc, "data-label=\"loss &lt;a&amp;b&gt;\"") != NULL, "label escaped in the attribute");
    CHECK(count(doc, ">loss &lt;a&amp;b&gt;</text>") == 1, "legend entry");
    CHECK(count(doc, ">with gaps</text>") == 1 && count(doc, ">bars</text>") == 1, "legend entries");

    /* the points: every (x, y) of the first series at its mapped pixel position, in one polyline */
    const char *pl = strstr(doc, "<polyline");
    const char *pts = pl ? strstr(pl, "points=\"") : NULL;
    CHECK(pts != NULL, "polyline has points");
    if (pts) {
        char want[256] = "points=\"";
        for (int i = 0; i < 4; i++) {
            char one[64];
            snprintf(one, sizeof one, "%s%.2f,%.2f", i ? " " : "", svg_px(f, x[i]), svg_py(f, y1[i]));
            strcat(want, one);
        }
        strcat(want, "\"");
        CHECK(!strncmp(pts, want, strlen(want)), "first series points\n  want %s\n  got  %.200s", want, pts);
    }
    /* the second: NaN and inf skipped, leaving the two finite points (0, 5) and (2, 15) */
    const char *pl2 = pl ? strstr(pl + 1, "<polyline") : NULL;
    if (pl2) {
        const char *q = strstr(pl2, "points=\"") + 8, *end = strchr(q, '"');
        int spaces = 0;
        for (const char *c = q; c < end; c++) spaces += *c == ' ';
        CHECK(spaces == 1, "gapped series has 2 points (%d separators)", spaces);
        char one[64];
        snprintf(one, sizeof one, "%.2f,%.2f %.2f,%.2f\"", svg_px(f, 0), svg_py(f, 5), svg_px(f, 2), svg_py(f, 15));
        CHECK(!strncmp(q, one, strlen(one)), "gapped points: want %s got %.60s", one, q);
    }
    /* scatter: one circle per point at its position */
    char c1[96];
    snprintf(c1, sizeof c1, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\"/>", svg_px(f, 2), svg_py(f, 2));
    CHECK(strstr(doc, c1) != NULL, "scatter point %s", c1);
    /* bars: the 5-high bar spans [2, 3] from y = 0 up to 5 */
    char r3[160];
    snprintf(r3, sizeof r3, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>", svg_px(f, 2), svg_py(f, 5),
             svg_px(f, 3) - svg_px(f, 2), svg_py(f, 0) - svg_py(f, 5));
    CHECK(strstr(doc, r3) != NULL, "bar %s", r3);
    /* the axes hold the data: pixel positions inside the plot area, y up */
    CHECK(svg_px(f, 0) >= 0 && svg_px(f, 3) <= 640 && svg_py(f, 30) < svg_py(f, 0) && svg_py(f, 0) <= 400,
          "mapping inside the figure");

    /* written atomically: the file equals the rendering, no PATH.tmp left */
    char dir[] = "/tmp/sd_svg_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char *path = sd_path_join(dir, "fig.svg"), *tmp = sd_path_join(dir, "fig.svg.tmp");
    svg_write(f, path);
    size_t flen;
    char *back = sd_read_file(path, &flen);
    CHECK(back && flen == len && !memcmp(back, doc, len), "file equals render");
    CHECK(!sd_file_exists(tmp), "no temporary left");
    remove(path);
    rmdir(dir);
    free(back);
    free(path);
    free(tmp);
    free(doc);
    svg_free(f);
}

static void test_fixed_axes(void) {
    SvgFig *f = svg_new(400, 300, NULL, NULL, NULL);
    double x[] = {1, 2, 3}, y[] = {0.5, 0.75, 1.0};
    svg_ylim(f, 0, 1.05);
    svg_line(f, "acc", x, y, 3);
    CHECK(near(svg_py(f, 0), 300 - 52, 1e-12), "fixed y: 0 at the bottom of the plot area (%g)", svg_py(f, 0));
    char *doc = svg_render(f, NULL);
    char why[200] = "";
    CHECK(well_formed(doc, why, sizeof why), "fixed axes well-formed: %s", why);
    CHECK(strstr(doc, ">1.0</text>") && strstr(doc, ">0.2</text>") && !strstr(doc, ">1.2</text>"),
          "ticks inside the fixed range only");
    CHECK(!strstr(doc, "class=\"title\"") && !strstr(doc, "class=\"xlabel\""), "no title or labels when NULL");
    free(doc);
    svg_free(f);
    /* no series at all still renders a valid empty chart */
    f = svg_new(10, 10, "empty", "x", "y");
    doc = svg_render(f, NULL);
    CHECK(well_formed(doc, why, sizeof why), "empty chart well-formed: %s", why);
    CHECK(!strstr(doc, "class=\"legend\""), "no legend without labelled series");
    free(doc);
    svg_free(f);
}

int main(void) {
    test_nice();
    test_escape();
    test_figure();
    test_fixed_axes();
    TEST_END();
}
