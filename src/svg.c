/* svg.c — the SVG chart writer (svg.h). */
#include "svg.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

typedef enum { SERIES_LINE, SERIES_SCATTER, SERIES_BARS } SeriesKind;

typedef struct {
    SeriesKind kind;
    char *label;
    double *x, *y;   /* line/scatter: finite points; bars: x = edges[n+1], y = heights[n] */
    size_t n;
} Series;

struct SvgFig {
    int w, h;
    char *title, *xlabel, *ylabel;
    int fixed_x, fixed_y;
    double xlo, xhi, ylo, yhi; /* fixed limits */
    Series *s;
    int ns, cap;
};

/* margins of the plot area */
enum { M_LEFT = 72, M_RIGHT = 20, M_TOP = 40, M_BOTTOM = 52, TICKS_TARGET = 6 };
static const char *PALETTE[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                "#7f7f7f"};
#define NPALETTE ((int)(sizeof PALETTE / sizeof PALETTE[0]))

SvgFig *svg_new(int width, int height, const char *title, const char *xlabel, const char *ylabel) {
    SvgFig *f = sd_calloc(1, sizeof(SvgFig), "svg");
    f->w = width > M_LEFT + M_RIGHT + 40 ? width : M_LEFT + M_RIGHT + 40;
    f->h = height > M_TOP + M_BOTTOM + 40 ? height : M_TOP + M_BOTTOM + 40;
    f->title = title ? sd_strdup(title) : NULL;
    f->xlabel = xlabel ? sd_strdup(xlabel) : NULL;
    f->ylabel = ylabel ? sd_strdup(ylabel) : NULL;
    return f;
}

void svg_free(SvgFig *f) {
    if (!f) return;
    for (int i = 0; i < f->ns; i++) {
        free(f->s[i].label);
        free(f->s[i].x);
        free(f->s[i].y);
    }
    free(f->s);
    free(f->title);
    free(f->xlabel);
    free(f->ylabel);
    free(f);
}

void svg_xlim(SvgFig *f, double lo, double hi) {
    if (!(lo < hi)) return;
    f->fixed_x = 1, f->xlo = lo, f->xhi = hi;
}
void svg_ylim(SvgFig *f, double lo, double hi) {
    if (!(lo < hi)) return;
    f->fixed_y = 1, f->ylo = lo, f->yhi = hi;
}

static Series *add_series(SvgFig *f, SeriesKind kind, const char *label) {
    if (f->ns == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 4;
        f->s = sd_realloc(f->s, (size_t)f->cap * sizeof(Series), "svg series");
    }
    Series *s = &f->s[f->ns++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->label = label ? sd_strdup(label) : NULL;
    return s;
}

static void add_points(SvgFig *f, SeriesKind kind, const char *label, const double *x, const double *y, size_t n) {
    Series *s = add_series(f, kind, label);
    size_t bytes = sd_mul_size(n ? n : 1, sizeof(double), "svg points");
    s->x = sd_alloc(bytes, "svg points");
    s->y = sd_alloc(bytes, "svg points");
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) {
            s->x[s->n] = x[i];
            s->y[s->n++] = y[i];
        }
}

void svg_line(SvgFig *f, const char *label, const double *x, const double *y, size_t n) {
    add_points(f, SERIES_LINE, label, x, y, n);
}
void svg_scatter(SvgFig *f, const char *label, const double *x, const double *y, size_t n) {
    add_points(f, SERIES_SCATTER, label, x, y, n);
}
void svg_bars(SvgFig *f, const char *label, const double *edges, const double *heights, int nbins) {
    Series *s = add_series(f, SERIES_BARS, label);
    size_t nb = nbins > 0 ? (size_t)nbins : 0;
    s->x = sd_alloc((nb + 1) * sizeof(double), "svg bars");
    s->y = sd_alloc((nb + 1) * sizeof(double), "svg bars");
    for (size_t i = 0; i < nb; i++) {
        s->x[i] = edges[i];
        s->y[i] = isfinite(heights[i]) ? heights[i] : 0;
    }
    s->x[nb] = nb ? edges[nb] : 0;
    s->n = nb;
}

/* ---- nice numbers and ticks ---- */

double svg_nice_num(double x, int round) {
    if (!(x > 0) || !isfinite(x)) return 1;
    double e = floor(log10(x)), p = pow(10, e), fr = x / p, nf;
    if (round) nf = fr < 1.5 ? 1 : fr < 3 ? 2 : fr < 7 ? 5 : 10;
    else nf = fr <= 1 ? 1 : fr <= 2 ? 2 : fr <= 5 ? 5 : 10;
    return nf * p;
}

static void widen(double *lo, double *hi) {
    if (*lo < *hi) return;
    double d = *lo == 0 ? 1 : 0.1 * fabs(*lo);
    *lo -= d;
    *hi += d;
}

int svg_nice_ticks(double lo, double hi, int target, double *first, double *step) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (lo > hi) { double t = lo; lo = hi; hi = t; }
    widen(&lo, &hi);
    if (target < 2) target = 2;
    double st = svg_nice_num((hi - lo) / (target - 1), 1);
    double k0 = floor(lo / st), k1 = ceil(hi / st);
    *first = k0 * st;
    *step = st;
    return (int)(k1 - k0) + 1;
}

void svg_format_tick(double v, double step, double maxabs, char *buf, size_t cap) {
    if (fabs(v) < 1e-9 * step) {
        snprintf(buf, cap, "0");
        return;
    }
    double le = floor(log10(step));
    if (maxabs >= 1e6 || step < 1e-4) {
        int d = (int)(floor(log10(maxabs > 0 ? maxabs : step)) - le);
        d = d < 0 ? 0 : d > 6 ? 6 : d;
        snprintf(buf, cap, "%.*e", d, v);
        return;
    }
    int dec = le < 0 ? (int)-le : 0;
    /* nice steps have one significant digit, so the step's decade gives the decimals */
    snprintf(buf, cap, "%.*f", dec, v);
}

char *svg_escape(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++) n += 6;
    char *o = sd_alloc(n + 1, "svg text"), *q = o;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *e = NULL;
        switch (*p) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&apos;"; break;
        default: break;
        }
        if (e) {
            size_t l = strlen(e);
            memcpy(q, e, l);
            q += l;
        } else if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
            *q++ = '?';
        } else {
            *q++ = (char)*p;
        }
    }
    *q = 0;
    return o;
}

/* ---- layout ---- */

typedef struct {
    double lo, hi;      /* axis range */
    double first, step; /* ticks */
    int nticks;
} Axis;

static void axis_from(Axis *a, double lo, double hi, int fixed, double flo, double fhi) {
    if (fixed) {
        lo = flo, hi = fhi;
    } else if (!(lo <= hi)) {
        lo = 0, hi = 1;
    }
    widen(&lo, &hi);
    a->nticks = svg_nice_ticks(lo, hi, TICKS_TARGET, &a->first, &a->step);
    if (fixed) {
        a->lo = lo, a->hi = hi;
    } else {
        a->lo = a->first;
        a->hi = a->first + (a->nticks - 1) * a->step;
    }
}

static void layout(const SvgFig *f, Axis *ax, Axis *ay) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < f->ns; i++) {
        const Series *s = &f->s[i];
        if (s->kind == SERIES_BARS) {
            if (s->n == 0) continue;
            for (size_t j = 0; j <= s->n; j++)
                if (isfinite(s->x[j])) xlo = fmin(xlo, s->x[j]), xhi = fmax(xhi, s->x[j]);
            ylo = fmin(ylo, 0);
            for (size_t j = 0; j < s->n; j++) ylo = fmin(ylo, s->y[j]), yhi = fmax(yhi, s->y[j]);
            yhi = fmax(yhi, 0);
        } else {
            double a = INFINITY, b = -INFINITY, c = INFINITY, d = -INFINITY;
            for (size_t j = 0; j < s->n; j++) {
                a = fmin(a, s->x[j]), b = fmax(b, s->x[j]);
                c = fmin(c, s->y[j]), d = fmax(d, s->y[j]);
            }
            if (s->kind == SERIES_SCATTER && s->n) { /* room for the markers at the extremes */
                double px = 0.03 * (b - a), py = 0.03 * (d - c);
                a -= px, b += px, c -= py, d += py;
            }
            xlo = fmin(xlo, a), xhi = fmax(xhi, b), ylo = fmin(ylo, c), yhi = fmax(yhi, d);
        }
    }
    axis_from(ax, xlo, xhi, f->fixed_x, f->xlo, f->xhi);
    axis_from(ay, ylo, yhi, f->fixed_y, f->ylo, f->yhi);
}

static double map_x(const SvgFig *f, const Axis *ax, double x) {
    return M_LEFT + (x - ax->lo) / (ax->hi - ax->lo) * (f->w - M_LEFT - M_RIGHT);
}
static double map_y(const SvgFig *f, const Axis *ay, double y) {
    return f->h - M_BOTTOM - (y - ay->lo) / (ay->hi - ay->lo) * (f->h - M_TOP - M_BOTTOM);
}

double svg_px(const SvgFig *f, double x) {
    Axis ax, ay;
    layout(f, &ax, &ay);
    return map_x(f, &ax, x);
}
double svg_py(const SvgFig *f, double y) {
    Axis ax, ay;
    layout(f, &ax, &ay);
    return map_y(f, &ay, y);
}

/* ---- rendering ---- */

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

SD_PRINTF(2, 3) static void bput(Buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) sd_die("svg", "formatting failed");
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = 2 * b->cap + (size_t)k + 1;
        b->p = sd_realloc(b->p, b->cap, "svg document");
    }
}

/* text element with escaped content */
static void btext(Buf *b, const char *attrs, const char *s) {
    char *e = svg_escape(s);
    bput(b, "<text %s>%s</text>\n", attrs, e);
    free(e);
}

static void render_axes(Buf *b, const SvgFig *f, const Axis *ax, const Axis *ay) {
    double x0 = M_LEFT, x1 = f->w - M_RIGHT, y0 = f->h - M_BOTTOM, y1 = M_TOP;
    char lab[64], attrs[160];
    bput(b, "<g class=\"axes\" stroke=\"#000\" stroke-width=\"1\">\n");
    double mx = fmax(fabs(ax->lo), fabs(ax->hi)), my = fmax(fabs(ay->lo), fabs(ay->hi));
    for (int i = 0; i < ax->nticks; i++) {
        double v = ax->first + i * ax->step;
        if (v < ax->lo - 1e-9 * ax->step || v > ax->hi + 1e-9 * ax->step) continue;
        double px = map_x(f, ax, v);
        bput(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n", px, y0, px, y1);
        bput(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px, y0, px, y0 + 5);
        svg_format_tick(v, ax->step, mx, lab, sizeof lab);
        snprintf(attrs, sizeof attrs, "class=\"tick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" stroke=\"none\"",
                 px, y0 + 18);
        btext(b, attrs, lab);
    }
    for (int i = 0; i < ay->nticks; i++) {
        double v = ay->first + i * ay->step;
        if (v < ay->lo - 1e-9 * ay->step || v > ay->hi + 1e-9 * ay->step) continue;
        double py = map_y(f, ay, v);
        bput(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n", x0, py, x1, py);
        bput(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x0 - 5, py, x0, py);
        svg_format_tick(v, ay->step, my, lab, sizeof lab);
        snprintf(attrs, sizeof attrs, "class=\"tick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" stroke=\"none\"",
                 x0 - 8, py + 4);
        btext(b, attrs, lab);
    }
    bput(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\"/>\n", x0, y1, x1 - x0, y0 - y1);
    bput(b, "</g>\n");
    if (f->xlabel) {
        snprintf(attrs, sizeof attrs, "class=\"xlabel\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\"",
                 0.5 * (x0 + x1), (double)f->h - 12);
        btext(b, attrs, f->xlabel);
    }
    if (f->ylabel) {
        double cy = 0.5 * (y0 + y1);
        snprintf(attrs, sizeof attrs,
                 "class=\"ylabel\" x=\"16\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.2f)\"",
                 cy, cy);
        btext(b, attrs, f->ylabel);
    }
    if (f->title) {
        snprintf(attrs, sizeof attrs,
                 "class=\"title\" x=\"%.2f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\"",
                 0.5 * f->w);
        btext(b, attrs, f->title);
    }
}

static void render_series(Buf *b, const SvgFig *f, const Axis *ax, const Axis *ay, int i) {
    const Series *s = &f->s[i];
    const char *col = PALETTE[i % NPALETTE];
    char *lab = svg_escape(s->label ? s->label : "");
    switch (s->kind) {
    case SERIES_LINE:
        bput(b, "<g class=\"series line\" data-label=\"%s\" clip-path=\"url(#plotarea)\">\n", lab);
        if (s->n) {
            bput(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"",
                 col);
            for (size_t j = 0; j < s->n; j++)
                bput(b, "%s%.2f,%.2f", j ? " " : "", map_x(f, ax, s->x[j]), map_y(f, ay, s->y[j]));
            bput(b, "\"/>\n");
            if (s->n <= 40) /* markers when the points are few enough to read */
                for (size_t j = 0; j < s->n; j++)
                    bput(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n", map_x(f, ax, s->x[j]),
                         map_y(f, ay, s->y[j]), col);
        }
        break;
    case SERIES_SCATTER:
        bput(b, "<g class=\"series scatter\" data-label=\"%s\" clip-path=\"url(#plotarea)\" fill=\"%s\" "
                "fill-opacity=\"0.7\">\n", lab, col);
        for (size_t j = 0; j < s->n; j++)
            bput(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\"/>\n", map_x(f, ax, s->x[j]), map_y(f, ay, s->y[j]));
        break;
    case SERIES_BARS:
        bput(b, "<g class=\"series bars\" data-label=\"%s\" clip-path=\"url(#plotarea)\" fill=\"%s\" "
                "fill-opacity=\"0.8\" stroke=\"#fff\" stroke-width=\"0.5\">\n", lab, col);
        for (size_t j = 0; j < s->n; j++) {
            double xa = map_x(f, ax, s->x[j]), xb = map_x(f, ax, s->x[j + 1]);
            double ya = map_y(f, ay, fmax(0, s->y[j])), yb = map_y(f, ay, fmin(0, s->y[j]));
            bput(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", fmin(xa, xb), ya,
                 fabs(xb - xa), yb - ya);
        }
        break;
    }
    bput(b, "</g>\n");
    free(lab);
}

/* Data points of the figure (line and scatter points, bar tops) that fall in a pixel box. */
static size_t points_in(const SvgFig *f, const Axis *ax, const Axis *ay, double x0, double y0, double x1, double y1) {
    size_t k = 0;
    for (int i = 0; i < f->ns; i++) {
        const Series *s = &f->s[i];
        for (size_t j = 0; j < s->n; j++) {
            double px = s->kind == SERIES_BARS ? 0.5 * (map_x(f, ax, s->x[j]) + map_x(f, ax, s->x[j + 1]))
                                               : map_x(f, ax, s->x[j]);
            double py = map_y(f, ay, s->y[j]);
            /* a bar covers everything from its top down to the axis */
            if (px >= x0 && px <= x1 && py <= y1 && (s->kind == SERIES_BARS || py >= y0)) k++;
        }
    }
    return k;
}

static void render_legend(Buf *b, const SvgFig *f, const Axis *ax, const Axis *ay) {
    int n = 0;
    size_t maxlen = 0;
    for (int i = 0; i < f->ns; i++)
        if (f->s[i].label && f->s[i].label[0]) {
            n++;
            size_t l = strlen(f->s[i].label);
            if (l > maxlen) maxlen = l;
        }
    if (n == 0) return;
    double wbox = 34 + 7.0 * (double)maxlen, hbox = 8 + 18.0 * n;
    /* the corner of the plot area that hides the fewest points: top right, top left, bottom right, bottom left */
    double xs[2] = {f->w - M_RIGHT - wbox - 8, M_LEFT + 8}, ys[2] = {M_TOP + 8, f->h - M_BOTTOM - hbox - 8};
    double x = xs[0], y = ys[0];
    size_t best = (size_t)-1;
    for (int c = 0; c < 4; c++) {
        size_t k = points_in(f, ax, ay, xs[c & 1], ys[c >> 1], xs[c & 1] + wbox, ys[c >> 1] + hbox);
        if (k < best) best = k, x = xs[c & 1], y = ys[c >> 1];
    }
    bput(b, "<g class=\"legend\">\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#fff\" "
            "fill-opacity=\"0.85\" stroke=\"#999\"/>\n", x, y, wbox, hbox);
    int k = 0;
    char attrs[128];
    for (int i = 0; i < f->ns; i++) {
        const Series *s = &f->s[i];
        if (!s->label || !s->label[0]) continue;
        const char *col = PALETTE[i % NPALETTE];
        double cy = y + 13 + 18.0 * k++;
        if (s->kind == SERIES_LINE)
            bput(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                 x + 6, cy, x + 24, cy, col);
        else if (s->kind == SERIES_SCATTER)
            bput(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"%s\"/>\n", x + 15, cy, col);
        else
            bput(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"10\" fill=\"%s\"/>\n", x + 8, cy - 5, col);
        snprintf(attrs, sizeof attrs, "x=\"%.2f\" y=\"%.2f\"", x + 30, cy + 4);
        btext(b, attrs, s->label);
    }
    bput(b, "</g>\n");
}

char *svg_render(const SvgFig *f, size_t *len) {
    Buf b = {sd_alloc(4096, "svg document"), 0, 4096};
    Axis ax, ay;
    layout(f, &ax, &ay);
    bput(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    bput(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", f->w, f->h, f->w, f->h);
    bput(&b, "<defs><clipPath id=\"plotarea\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/></clipPath></defs>\n",
         M_LEFT, M_TOP, f->w - M_LEFT - M_RIGHT, f->h - M_TOP - M_BOTTOM);
    bput(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
    render_axes(&b, f, &ax, &ay);
    for (int i = 0; i < f->ns; i++) render_series(&b, f, &ax, &ay, i);
    render_legend(&b, f, &ax, &ay);
    bput(&b, "</svg>\n");
    if (len) *len = b.n;
    return b.p;
}

void svg_write(const SvgFig *f, const char *path) {
    size_t n;
    char *doc = svg_render(f, &n);
    sd_write_file_atomic(path, doc, n);
    free(doc);
}
