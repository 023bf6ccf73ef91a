/* The grid figures (figure.h): validation, layout and drawing of panels of
 * captioned image cells; similar images, concepts, weights comparison. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/figure.h"

static const st_rgb WHITE = {255, 255, 255}, INK = {25, 25, 25}, RED = {255, 0, 0}, BLANK = {225, 225, 225},
                    MUTED = {90, 90, 90};

st_figure_options st_figure_defaults(void) { return (st_figure_options){.scale = 3, .gap = 4}; }

/* ------------------------------------------------------------ checking */

static st_status check_set(const st_image_set *s, const char *what)
{
    if (!s || !s->images) return st_fail(ST_EINVAL, "figure: %s images missing", what);
    const st_tensor *im = s->images;
    char buf[64];
    if (im->dtype != ST_U8)
        return st_fail(ST_EDTYPE, "figure: %s images must be u8 (the datasets' display images), got %s", what,
                       st_dtype_name(im->dtype));
    if (im->ndim != 4 || (im->shape[3] != 1 && im->shape[3] != 3) || im->shape[1] < 1 || im->shape[2] < 1)
        return st_fail(ST_ESHAPE, "figure: %s images must be [N, H, W, C] with C = 1 or 3, got %s", what,
                       st_shape_str(im->ndim, im->shape, buf, sizeof buf));
    if (im->shape[1] > 4096 || im->shape[2] > 4096)
        return st_fail(ST_ESHAPE, "figure: %s images %s are too large for a grid", what,
                       st_shape_str(im->ndim, im->shape, buf, sizeof buf));
    if (s->labels) {
        const st_tensor *l = s->labels;
        if ((l->dtype != ST_I32 && l->dtype != ST_I64) || l->ndim != 1 || l->shape[0] != im->shape[0])
            return st_fail(ST_ESHAPE, "figure: %s labels must be i32/i64 [%lld] (one per image), got %s %s", what,
                           (long long)im->shape[0], st_dtype_name(l->dtype),
                           st_shape_str(l->ndim, l->shape, buf, sizeof buf));
        if (s->class_names && s->n_classes < 1)
            return st_fail(ST_EINVAL, "figure: %s class names given with %d classes", what, s->n_classes);
    }
    return ST_OK;
}

/* An i32/i64 [rows, k] matrix of image rows below `limit` (negative =
 * empty slot). */
static st_status check_index(const st_tensor *t, const char *what, int64_t limit)
{
    char buf[64];
    if (!t) return st_fail(ST_EINVAL, "figure: %s missing", what);
    if ((t->dtype != ST_I32 && t->dtype != ST_I64) || t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1)
        return st_fail(ST_ESHAPE, "figure: %s must be i32/i64 [rows, k] with rows, k >= 1, got %s %s", what,
                       st_dtype_name(t->dtype), st_shape_str(t->ndim, t->shape, buf, sizeof buf));
    if (t->shape[0] > 4096 || t->shape[1] > 1024)
        return st_fail(ST_EINVAL, "figure: %s %s is too large for a grid (at most 4096 rows of 1024)", what,
                       st_shape_str(t->ndim, t->shape, buf, sizeof buf));
    for (int64_t i = 0; i < t->shape[0]; i++)
        for (int64_t j = 0; j < t->shape[1]; j++) {
            double v = st_tensor_get_flat(t, i * t->shape[1] + j);
            if (v >= (double)limit)
                return st_fail(ST_EINVAL, "figure: %s entry [%lld, %lld] is %.0f, outside [0, %lld)", what,
                               (long long)i, (long long)j, v, (long long)limit);
        }
    return ST_OK;
}

static st_status check_options(const st_figure_options *o)
{
    if (o->scale < 1 || o->scale > 16) return st_fail(ST_EINVAL, "figure: scale %d is not in 1..16", o->scale);
    if (o->text_scale < 0 || o->text_scale > 8)
        return st_fail(ST_EINVAL, "figure: text_scale %d is not in 0..8", o->text_scale);
    if (o->gap < 0 || o->gap > 256) return st_fail(ST_EINVAL, "figure: gap %d is not in 0..256", o->gap);
    return ST_OK;
}

/* -------------------------------------------------------------- panels */

typedef struct cell {
    const st_image_set *set;
    int64_t index; /* < 0: empty slot */
    bool framed;
} cell;

typedef struct panel {
    const char *title;
    int rows, cols;
    cell *cells;             /* rows * cols, row-major */
    char **above;            /* rows captions over the rows, or NULL */
    const char *const *left; /* rows titles left of the rows, or NULL */
    bool query_column;       /* set column 0 apart */
} panel;

/* Pixel geometry shared by every panel of a figure. */
typedef struct geometry {
    int s, ts, gap;
    int img_w, img_h, m; /* cell image box and frame width, in pixels */
    int col_w, cap_h, above_h, title_h, sep;
} geometry;

static void caption(const cell *c, char *buf, size_t cap)
{
    buf[0] = 0;
    if (c->index < 0 || !c->set->labels) return;
    int64_t y = (int64_t)st_tensor_get_flat(c->set->labels, c->index);
    if (c->set->class_names && y >= 0 && y < c->set->n_classes)
        snprintf(buf, cap, "%s", c->set->class_names[y]);
    else
        snprintf(buf, cap, "%lld", (long long)y);
}

static int line_h(int ts) { return ST_FONT_LINE * ts; }

static geometry measure(const panel *p, int n_panels, int H, int W, const st_figure_options *o)
{
    geometry g = {.s = o->scale, .gap = o->gap};
    g.ts = o->text_scale ? o->text_scale : o->scale >= 2 ? 2 : 1;
    int m = H / 16 > 1 ? H / 16 : 1;
    g.m = m * g.s;
    g.img_w = (W + 2 * m) * g.s;
    g.img_h = (H + 2 * m) * g.s;
    g.col_w = g.img_w;
    bool captions = false, above = false, titles = false;
    for (int k = 0; k < n_panels; k++) {
        for (int i = 0; i < p[k].rows * p[k].cols; i++) {
            char buf[256];
            caption(&p[k].cells[i], buf, sizeof buf);
            if (p[k].cells[i].set->labels) captions = true;
            /* a caption wider than the image widens its column, keeping
             * one glyph of space to the next caption */
            int w = st_text_width(buf, g.ts) + ST_FONT_ADVANCE * g.ts - g.gap;
            if (w > g.col_w) g.col_w = w;
        }
        above |= p[k].above != NULL;
        titles |= p[k].title != NULL;
    }
    g.cap_h = captions ? g.ts + line_h(g.ts) : 0;
    g.above_h = above ? line_h(g.ts) + 4 * g.ts : 0; /* 3 * ts of it above the text */
    g.title_h = titles ? line_h(g.ts + 1) + g.gap : 0;
    g.sep = 3 * g.gap + g.s * 2;
    return g;
}

static int left_width(const panel *p, const geometry *g)
{
    int w = 0;
    for (int r = 0; p->left && r < p->rows; r++) {
        int t = st_text_width(p->left[r], g->ts);
        if (t > w) w = t;
    }
    return w ? w + 2 * g->gap : 0;
}

static int row_pitch(const geometry *g) { return g->above_h + g->img_h + g->cap_h + g->gap; }

/* The panel's extent, including texts wider than its images. */
static void panel_size(const panel *p, const geometry *g, int *w, int *h)
{
    int lw = left_width(p, g);
    *w = lw + p->cols * g->col_w + (p->cols - 1) * g->gap + (p->query_column ? g->sep : 0);
    for (int r = 0; p->above && r < p->rows; r++) {
        int t = lw + st_text_width(p->above[r], g->ts);
        if (t > *w) *w = t;
    }
    if (p->title && st_text_width(p->title, g->ts + 1) > *w) *w = st_text_width(p->title, g->ts + 1);
    *h = g->title_h + p->rows * row_pitch(g) - g->gap;
}

static st_status draw_cell(st_tensor *cv, const cell *c, int x, int y, const geometry *g)
{
    int bx = x + (g->col_w - g->img_w) / 2; /* image box, centred in the column */
    const st_tensor *im = c->set->images;
    if (c->index < 0) {
        ST_TRY(st_canvas_fill(cv, bx + g->m, y + g->m, g->img_w - 2 * g->m, g->img_h - 2 * g->m, BLANK));
        return ST_OK;
    }
    st_tensor *view = NULL;
    ST_TRY(st_tensor_select(im, 0, c->index, &view));
    st_status s = st_canvas_paste(cv, bx + g->m, y + g->m, view, g->s);
    st_tensor_free(view);
    ST_TRY(s);
    if (c->framed) ST_TRY(st_canvas_frame(cv, bx, y, g->img_w, g->img_h, g->m, RED));
    char buf[256];
    caption(c, buf, sizeof buf);
    int tw = st_text_width(buf, g->ts);
    return st_canvas_text(cv, x + (g->col_w - tw) / 2, y + g->img_h + g->ts, buf, g->ts, INK);
}

static st_status draw_panel(st_tensor *cv, const panel *p, int x, int y, const geometry *g)
{
    if (p->title) ST_TRY(st_canvas_text(cv, x, y, p->title, g->ts + 1, INK));
    y += g->title_h;
    int lw = left_width(p, g);
    for (int r = 0; r < p->rows; r++, y += row_pitch(g)) {
        if (p->above) ST_TRY(st_canvas_text(cv, x + lw, y + 3 * g->ts, p->above[r], g->ts, INK));
        int iy = y + g->above_h;
        if (lw)
            ST_TRY(st_canvas_text(cv, x + g->gap, iy + (g->img_h - st_text_height(g->ts)) / 2, p->left[r], g->ts,
                                  MUTED));
        int cx = x + lw;
        for (int c = 0; c < p->cols; c++) {
            ST_TRY(draw_cell(cv, &p->cells[r * p->cols + c], cx, iy, g));
            cx += g->col_w + g->gap + (p->query_column && c == 0 ? g->sep : 0);
        }
    }
    return ST_OK;
}

/* Lays out the panels side by side (or stacked) under an optional title
 * and draws them on a fresh white canvas. */
static st_status render(const panel *p, int n, int H, int W, const st_figure_options *o, st_tensor **out)
{
    geometry g = measure(p, n, H, W, o);
    int margin = 2 * g.gap + g.ts * 2, between = 4 * g.gap + 4 * g.ts;
    int title_h = o->title ? line_h(g.ts + 1) + 3 * g.gap + 2 * g.ts : 0;
    int64_t tw = 0, th = 0;
    for (int k = 0; k < n; k++) {
        int w, h;
        panel_size(&p[k], &g, &w, &h);
        if (!o->side_by_side) {
            tw = w > tw ? w : tw;
            th += h + (k ? between : 0);
        } else {
            th = h > th ? h : th;
            tw += w + (k ? between : 0);
        }
    }
    int64_t title_w = o->title ? st_text_width(o->title, g.ts + 1) : 0;
    if (title_w > tw) tw = title_w;
    tw += 2 * margin;
    th += 2 * margin + title_h;
    if (tw > 32768 || th > 32768)
        return st_fail(ST_EINVAL, "figure: %lld x %lld pixels is too large (reduce scale, rows or columns)",
                       (long long)tw, (long long)th);
    st_tensor *cv = NULL;
    ST_TRY(st_canvas_new((int)tw, (int)th, WHITE, &cv));
    st_status s = ST_OK;
    if (o->title) s = st_canvas_text(cv, margin, margin, o->title, g.ts + 1, INK);
    int x = margin, y = margin + title_h;
    for (int k = 0; s == ST_OK && k < n; k++) {
        int w, h;
        panel_size(&p[k], &g, &w, &h);
        s = draw_panel(cv, &p[k], x, y, &g);
        if (!o->side_by_side)
            y += h + between;
        else
            x += w + between;
    }
    if (s != ST_OK) {
        st_tensor_free(cv);
        return s;
    }
    if (*out) {
        s = st_tensor_expect(*out, "figure: output canvas", ST_U8, 3, cv->shape);
        if (s == ST_OK) s = st_tensor_copy_into(*out, cv);
        st_tensor_free(cv);
        return s;
    }
    *out = cv;
    return ST_OK;
}

/* -------------------------------------------------------------- figures */

static st_status check_pair(const st_image_set *q, const st_image_set *t)
{
    ST_TRY(check_set(q, "query"));
    ST_TRY(check_set(t, "training"));
    if (q->images->shape[1] != t->images->shape[1] || q->images->shape[2] != t->images->shape[2])
        return st_fail(ST_ESHAPE, "figure: query images are %lldx%lld, training images %lldx%lld (must match)",
                       (long long)q->images->shape[1], (long long)q->images->shape[2],
                       (long long)t->images->shape[1], (long long)t->images->shape[2]);
    return ST_OK;
}

/* A similar-images panel: query q in a frame, then its neighbours. */
static st_status similar_panel(const st_image_set *queries, const st_image_set *train, const st_tensor *nb,
                               panel *p)
{
    int64_t Q = nb->shape[0], k = nb->shape[1];
    p->rows = (int)Q;
    p->cols = (int)k + 1;
    p->query_column = true;
    p->cells = calloc((size_t)(Q * (k + 1)), sizeof *p->cells);
    if (!p->cells) return st_fail(ST_ENOMEM, "figure: out of memory");
    for (int64_t q = 0; q < Q; q++) {
        p->cells[q * (k + 1)] = (cell){queries, q, true};
        for (int64_t j = 0; j < k; j++) {
            int64_t i = (int64_t)st_tensor_get_flat(nb, q * k + j);
            p->cells[q * (k + 1) + 1 + j] = (cell){train, i < 0 ? -1 : i, false};
        }
    }
    return ST_OK;
}

st_status st_figure_weights(const st_image_set *queries, const st_image_set *train, int n_blocks,
                            const st_tensor *const *neighbours, const char *const *block_titles,
                            const st_figure_options *opt, st_tensor **canvas)
{
    st_figure_options o = opt ? *opt : st_figure_defaults();
    ST_TRY(check_options(&o));
    ST_TRY(check_pair(queries, train));
    if (n_blocks < 1 || n_blocks > 64) return st_fail(ST_EINVAL, "figure: %d blocks (1..64)", n_blocks);
    int64_t N = train->images->shape[0];
    for (int b = 0; b < n_blocks; b++) {
        char what[48];
        snprintf(what, sizeof what, n_blocks > 1 ? "neighbours of block %d" : "neighbours", b);
        ST_TRY(check_index(neighbours ? neighbours[b] : NULL, what, N));
        if (neighbours[b]->shape[0] != queries->images->shape[0])
            return st_fail(ST_ESHAPE, "figure: %s has %lld rows for %lld query images (one row per query)", what,
                           (long long)neighbours[b]->shape[0], (long long)queries->images->shape[0]);
    }
    panel *p = calloc((size_t)n_blocks, sizeof *p);
    if (!p) return st_fail(ST_ENOMEM, "figure: out of memory");
    st_status s = ST_OK;
    for (int b = 0; s == ST_OK && b < n_blocks; b++) {
        s = similar_panel(queries, train, neighbours[b], &p[b]);
        p[b].title = block_titles ? block_titles[b] : NULL;
        /* row titles once per figure row: on every block when stacked */
        p[b].left = (!o.side_by_side || b == 0) ? o.row_titles : NULL;
    }
    if (s == ST_OK)
        s = render(p, n_blocks, (int)train->images->shape[1], (int)train->images->shape[2], &o, canvas);
    for (int b = 0; b < n_blocks; b++) free(p[b].cells);
    free(p);
    return s;
}

st_status st_figure_similar(const st_image_set *queries, const st_image_set *train, const st_tensor *neighbours,
                            const st_figure_options *opt, st_tensor **canvas)
{
    st_figure_options o = opt ? *opt : st_figure_defaults();
    o.side_by_side = false;
    return st_figure_weights(queries, train, 1, &neighbours, NULL, &o, canvas);
}

static void concept_caption(const st_image_set *t, const st_cluster_stats *st, int64_t id, char *buf, size_t cap)
{
    if (!st) {
        snprintf(buf, cap, "concept %lld", (long long)id);
    } else if (!st->size) {
        snprintf(buf, cap, "concept %lld \u00b7 n=0 \u00b7 empty", (long long)id);
    } else {
        char cls[64];
        int d = st->dominant[0];
        if (t->class_names && d < t->n_classes)
            snprintf(cls, sizeof cls, "%s", t->class_names[d]);
        else
            snprintf(cls, sizeof cls, "%d", d);
        snprintf(buf, cap, "concept %lld \u00b7 n=%lld \u00b7 purity %.2f (%s)", (long long)id, (long long)st->size,
                 st->purity, cls);
    }
}

st_status st_figure_concepts(const st_image_set *train, const st_tensor *members, const st_cluster_stats *stats,
                             const int64_t *cluster_ids, const st_figure_options *opt, st_tensor **canvas)
{
    st_figure_options o = opt ? *opt : st_figure_defaults();
    ST_TRY(check_options(&o));
    ST_TRY(check_set(train, "training"));
    ST_TRY(check_index(members, "concept members", train->images->shape[0]));
    int64_t K = members->shape[0], k = members->shape[1];
    panel p = {.rows = (int)K, .cols = (int)k};
    p.cells = calloc((size_t)(K * k), sizeof *p.cells);
    p.above = calloc((size_t)K, sizeof *p.above);
    st_status s = p.cells && p.above ? ST_OK : st_fail(ST_ENOMEM, "figure: out of memory");
    for (int64_t r = 0; s == ST_OK && r < K; r++) {
        for (int64_t j = 0; j < k; j++) {
            int64_t i = (int64_t)st_tensor_get_flat(members, r * k + j);
            p.cells[r * k + j] = (cell){train, i < 0 ? -1 : i, false};
        }
        char buf[256];
        concept_caption(train, stats ? &stats[r] : NULL, cluster_ids ? cluster_ids[r] : r, buf, sizeof buf);
        if (!(p.above[r] = strdup(buf))) s = st_fail(ST_ENOMEM, "figure: out of memory");
    }
    o.side_by_side = false;
    if (s == ST_OK) s = render(&p, 1, (int)train->images->shape[1], (int)train->images->shape[2], &o, canvas);
    for (int64_t r = 0; p.above && r < K; r++) free(p.above[r]);
    free(p.above);
    free(p.cells);
    return s;
}
