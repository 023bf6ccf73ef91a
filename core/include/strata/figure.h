/* Figures: image grids with captions, drawn on an RGB canvas and saved as
 * PNG (st_image_save_png in image.h writes atomically).
 *
 * A canvas is a u8 tensor [height, width, 3], so it can be saved, shown
 * or inspected like any image. Drawing clips at the canvas edges.
 *
 * Three figures of the method (METHOD.md e; docs/figures.md):
 *  - similar:  per row, a query image in a red frame, then its k nearest
 *              training images; the class name under every image;
 *  - concepts: per row, the k training images nearest one cluster centre,
 *              with a caption "concept 3 · n=3412 · purity 0.91 (cat)";
 *  - weights:  the same queries under several weight vectors, one titled
 *              block per vector, stacked (or side by side).
 * Images are integer-upscaled (nearest neighbour) so 32x32 inputs are
 * visible. The frame is m = max(1, H/16) image pixels wide (2 for 32x32,
 * as the reference draws it), and every cell reserves that margin, so
 * framed and unframed images have the same size.
 *
 * Text uses the built-in 5x9 bitmap font (printable ASCII, plus "·" and
 * "×" in UTF-8), scaled by an integer; other characters draw as '?'. */
#ifndef STRATA_FIGURE_H
#define STRATA_FIGURE_H

#include <stdbool.h>
#include <stdint.h>
#include "strata/metrics.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the font ---- */
#define ST_FONT_WIDTH 5    /* glyph columns */
#define ST_FONT_HEIGHT 9   /* glyph rows, descenders included */
#define ST_FONT_ADVANCE 6  /* columns from one glyph to the next */
#define ST_FONT_LINE 11    /* rows from one line to the next */

/* ST_FONT_HEIGHT rows of the glyph, one byte each, bit 4 = leftmost
 * column. Unknown code points give the glyph of '?'. */
const uint8_t *st_font_glyph(uint32_t codepoint);

/* Width and height in pixels of one line of UTF-8 text at a scale (the
 * width has no trailing spacing; an empty string is 0 wide). */
int st_text_width(const char *text, int scale);
static inline int st_text_height(int scale) { return ST_FONT_HEIGHT * scale; }

/* ---- the canvas ---- */
typedef struct st_rgb {
    uint8_t r, g, b;
} st_rgb;

/* A new u8 [height, width, 3] canvas filled with bg (sizes 1 .. 32768). */
st_status st_canvas_new(int width, int height, st_rgb bg, st_tensor **out);
/* Fills the rectangle [x, x+w) x [y, y+h). */
st_status st_canvas_fill(st_tensor *canvas, int x, int y, int w, int h, st_rgb color);
/* A border of `thickness` pixels inside the rectangle. */
st_status st_canvas_frame(st_tensor *canvas, int x, int y, int w, int h, int thickness, st_rgb color);
/* Pastes image u8 [H, W, C] (C = 1 gray or 3 RGB; any strides) with its
 * top-left corner at (x, y), each pixel as a scale x scale block. */
st_status st_canvas_paste(st_tensor *canvas, int x, int y, const st_tensor *image, int scale);
/* One line of UTF-8 text; (x, y) is the top-left of the glyph box. */
st_status st_canvas_text(st_tensor *canvas, int x, int y, const char *text, int scale, st_rgb color);

/* ---- figures ---- */

/* Images with optional labels for captions. */
typedef struct st_image_set {
    const st_tensor *images;         /* u8 [N, H, W, C], C = 1 or 3 */
    const st_tensor *labels;         /* i32/i64 [N] class ids, or NULL: no captions */
    const char *const *class_names;  /* n_classes names, or NULL: captions show the id */
    int n_classes;                   /* > every label when labels are given */
} st_image_set;

typedef struct st_figure_options {
    int scale;                       /* image upscaling, 1..16; default 3 */
    int text_scale;                  /* caption text scale, 1..8; 0 (default) = 2 if scale >= 2 else 1 */
    int gap;                         /* pixels between cells; default 4 */
    const char *title;               /* over the whole figure, or NULL */
    const char *const *row_titles;   /* similar/weights: one per query row, left of it, or NULL */
    bool side_by_side;               /* weights: blocks side by side instead of one above the other */
} st_figure_options;

st_figure_options st_figure_defaults(void);

/* neighbours: i32/i64 [Q, k], rows of train->images (a negative entry is
 * an empty slot, drawn as a grey box). queries->images has Q images of
 * the same height and width as the training images. */
st_status st_figure_similar(const st_image_set *queries, const st_image_set *train, const st_tensor *neighbours,
                            const st_figure_options *opt, st_tensor **canvas);

/* members: i32/i64 [K, k], the training rows shown for each cluster.
 * stats: K entries (size, purity and dominant class for the caption) or
 * NULL (then the caption is "concept j"). cluster_ids: the id printed for
 * row r (K entries), or NULL for r itself. */
st_status st_figure_concepts(const st_image_set *train, const st_tensor *members, const st_cluster_stats *stats,
                             const int64_t *cluster_ids, const st_figure_options *opt, st_tensor **canvas);

/* One similar-images block per neighbour matrix (all [Q, k_b] with the
 * same Q), each with its title (block_titles may be NULL). */
st_status st_figure_weights(const st_image_set *queries, const st_image_set *train, int n_blocks,
                            const st_tensor *const *neighbours, const char *const *block_titles,
                            const st_figure_options *opt, st_tensor **canvas);

#ifdef __cplusplus
}
#endif
#endif
