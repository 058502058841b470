/* svg.h — a small SVG chart writer (no plotting dependency): one figure with a title, x/y axes with "nice" ticks,
 * grid, axis labels, a legend, and any number of line, scatter and histogram-bar series.
 *
 * defines: SvgFig, svg_new, svg_free, svg_xlim, svg_ylim, svg_line, svg_scatter, svg_bars, svg_px, svg_py,
 *          svg_render, svg_write, svg_nice_num, svg_nice_ticks, svg_format_tick, svg_escape.
 * Data: series copy their points; non-finite points are skipped (a line joins its finite neighbours). The axes
 * span the data rounded out to nice ticks unless svg_xlim/svg_ylim fix them; points outside are clipped.
 * Output: an SVG 1.1 document; every series is one <g class="series" data-label="..."> whose line is a single
 * <polyline>, scatter points <circle>s and bars <rect>s. Text is escaped (svg_escape).
 * Ownership: SvgFig owns its copies (svg_free); svg_render and svg_escape return malloc'ed strings.
 * Errors: svg_write dies (sd_die) naming the path when it cannot write; it writes PATH.tmp and renames.
 */
#ifndef SD_SVG_H
#define SD_SVG_H
#include <stddef.h>

typedef struct SvgFig SvgFig;

/* width x height pixels; title, xlabel, ylabel may be NULL. */
SvgFig *svg_new(int width, int height, const char *title, const char *xlabel, const char *ylabel);
void svg_free(SvgFig *f);
/* Fixes an axis range (lo < hi); ticks are the nice values inside it. */
void svg_xlim(SvgFig *f, double lo, double hi);
void svg_ylim(SvgFig *f, double lo, double hi);
/* Series; label may be NULL (no legend entry). Colours follow the order series are added. */
void svg_line(SvgFig *f, const char *label, const double *x, const double *y, size_t n);
void svg_scatter(SvgFig *f, const char *label, const double *x, const double *y, size_t n);
/* Histogram bars: bar i spans [edges[i], edges[i+1]] with height heights[i] (edges[nbins+1]). */
void svg_bars(SvgFig *f, const char *label, const double *edges, const double *heights, int nbins);
/* Pixel coordinates of a data value with the axes as they are now (call after adding every series). */
double svg_px(const SvgFig *f, double x);
double svg_py(const SvgFig *f, double y);
/* The document; *len (when not NULL) gets its length. Coordinates are printed with 2 decimals ("%.2f"). */
char *svg_render(const SvgFig *f, size_t *len);
/* svg_render written to path atomically. */
void svg_write(const SvgFig *f, const char *path);

/* Heckbert's nice number: a value of the form {1,2,5,10} x 10^k near x > 0, rounded to the nearest (round != 0)
 * or the next one up (round == 0). */
double svg_nice_num(double x, int round);
/* Nice ticks covering [lo, hi] with about `target` (>= 2) of them: *step = svg_nice_num((hi - lo) / (target - 1),
 * 1), *first = floor(lo / step) * step; returns the count (ticks first + i*step, i < count, the last >= hi).
 * lo == hi is widened first (by 10% of |lo|, or 1 around 0). */
int svg_nice_ticks(double lo, double hi, int target, double *first, double *step);
/* A tick label for v on a scale of `step` with `maxabs` the largest magnitude on the axis: fixed-point with as
 * many decimals as the step needs, exponent form for very large or very small scales; "0" for zero. */
void svg_format_tick(double v, double step, double maxabs, char *buf, size_t cap);
/* XML text/attribute escaping: & < > " ' become entities, other control characters '?'. Caller frees. */
char *svg_escape(const char *s);
#endif
