/* Figures at the pixel level: the layout is found by searching the canvas
 * (red frame, uniquely coloured images, caption ink), then checked against
 * the documented sizes: frame m = H/16 image pixels, images upscaled by
 * nearest neighbour, captions centred under their image. Also the font,
 * PNG round trips through stb_image, and bad input. */
#include "tmpdir.h"
#include "strata/figure.h"
#include "strata/image.h"
#include "testing.h"

enum { H = 16, W = 16, S = 2 };

typedef struct box {
    int x0, y0, x1, y1; /* inclusive; x0 > x1 when empty */
} box;

static const uint8_t *px(const st_tensor *cv, int x, int y)
{
    return (const uint8_t *)cv->data + ((int64_t)y * cv->shape[1] + x) * 3;
}

static bool is(const st_tensor *cv, int x, int y, int r, int g, int b)
{
    const uint8_t *p = px(cv, x, y);
    return p[0] == r && p[1] == g && p[2] == b;
}

/* Bounding box of the pixels of one colour inside a region (clipped to
 * the canvas). */
static box find(const st_tensor *cv, box in, int r, int g, int b)
{
    box o = {1 << 30, 1 << 30, -1, -1};
    if (in.x0 < 0) in.x0 = 0;
    if (in.y0 < 0) in.y0 = 0;
    if (in.x1 >= cv->shape[1]) in.x1 = (int)cv->shape[1] - 1;
    if (in.y1 >= cv->shape[0]) in.y1 = (int)cv->shape[0] - 1;
    for (int y = in.y0; y <= in.y1; y++)
        for (int x = in.x0; x <= in.x1; x++)
            if (is(cv, x, y, r, g, b)) {
                if (x < o.x0) o.x0 = x;
                if (y < o.y0) o.y0 = y;
                if (x > o.x1) o.x1 = x;
                if (y > o.y1) o.y1 = y;
            }
    return o;
}

static box whole(const st_tensor *cv) { return (box){0, 0, (int)cv->shape[1] - 1, (int)cv->shape[0] - 1}; }

/* Training image n: one flat colour (3 + 20 n, 200, 60); the query: a
 * gradient that never hits pure red. */
static st_tensor *train_images(int n)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_new(ST_U8, 4, (int64_t[]){n, H, W, 3}, &t));
    uint8_t *p = t->data;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < H * W; k++) {
            p[(i * H * W + k) * 3] = (uint8_t)(3 + 20 * i);
            p[(i * H * W + k) * 3 + 1] = 200;
            p[(i * H * W + k) * 3 + 2] = 60;
        }
    return t;
}

static st_tensor *query_images(int n)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_new(ST_U8, 4, (int64_t[]){n, H, W, 3}, &t));
    uint8_t *p = t->data;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *q = p + ((i * H + y) * W + x) * 3;
                q[0] = (uint8_t)(8 * y + 1), q[1] = (uint8_t)(8 * x + 1), q[2] = (uint8_t)(100 + i);
            }
    return t;
}

static st_tensor *ids(int64_t rows, int64_t cols, const int64_t *v)
{
    st_tensor *t = NULL;
    int64_t shape[2] = {rows, cols};
    CHECK_OK(st_tensor_from_data(ST_I64, cols ? 2 : 1, shape, v, (size_t)(rows * (cols ? cols : 1)) * 8, &t));
    return t;
}

/* "HH" and "MM": glyphs whose outer columns are inked, so the ink box of
 * a caption is exactly its text box. */
static const char *names[3] = {"HH", "MM", "HMH"};

static void test_similar_layout(void)
{
    st_tensor *ti = train_images(5), *qi = query_images(1);
    st_tensor *tl = ids(5, 0, (int64_t[]){0, 1, 2, 0, 1}), *ql = ids(1, 0, (int64_t[]){2});
    st_tensor *nb = ids(1, 3, (int64_t[]){4, 0, 2});
    st_image_set q = {qi, ql, names, 3}, t = {ti, tl, names, 3};
    st_figure_options o = st_figure_defaults();
    o.scale = S;
    o.text_scale = 1;
    st_tensor *cv = NULL;
    CHECK_OK(st_figure_similar(&q, &t, nb, &o, &cv));
    if (!cv) return;
    /* the frame: (H + 2m) * S square, m = H/16 = 1, so 2*S px of border */
    int m = S * (H / 16);
    box fr = find(cv, whole(cv), 255, 0, 0);
    CHECK(fr.x1 - fr.x0 + 1 == (W + 2 * (H / 16)) * S && fr.y1 - fr.y0 + 1 == (H + 2 * (H / 16)) * S);
    for (int k = 0; k < m; k++) {
        CHECK(is(cv, fr.x0 + k, fr.y0 + 10, 255, 0, 0) && is(cv, fr.x1 - k, fr.y0 + 10, 255, 0, 0));
        CHECK(is(cv, fr.x0 + 10, fr.y0 + k, 255, 0, 0) && is(cv, fr.x0 + 10, fr.y1 - k, 255, 0, 0));
    }
    /* the query image: pixel (x, y) covers an S x S block inside the frame */
    for (int y = 0; y < H; y += 5)
        for (int x = 0; x < W; x += 3)
            for (int d = 0; d < S * S; d++)
                CHECK(is(cv, fr.x0 + m + x * S + d % S, fr.y0 + m + y * S + d / S, 8 * y + 1, 8 * x + 1, 100));
    /* the neighbours 4, 0, 2 in that order, on the query's row, W*S wide */
    int last_x = fr.x1;
    for (int j = 0; j < 3; j++) {
        int n = (int[]){4, 0, 2}[j];
        box b = find(cv, whole(cv), 3 + 20 * n, 200, 60);
        CHECK(b.x1 - b.x0 + 1 == W * S && b.y1 - b.y0 + 1 == H * S);
        CHECK(b.y0 == fr.y0 + m);
        CHECK(b.x0 > last_x);
        last_x = b.x1;
        /* its caption: the class name, centred under it, in the ink colour */
        const char *name = names[(int[]){0, 1, 2, 0, 1}[n]];
        box cap = find(cv, (box){b.x0 - 4, b.y1 + 1, b.x1 + 4, b.y1 + 3 * ST_FONT_LINE}, 25, 25, 25);
        CHECK(cap.x1 - cap.x0 + 1 == st_text_width(name, 1));
        CHECK(cap.y1 - cap.y0 + 1 == 7); /* cap height of H and M, no descender */
        CHECK(abs((cap.x0 + cap.x1) - (b.x0 + b.x1)) <= 1);
    }
    /* the unused training images 1 and 3 are nowhere */
    CHECK(find(cv, whole(cv), 23, 200, 60).x1 < 0 && find(cv, whole(cv), 63, 200, 60).x1 < 0);
    /* the query's caption "HMH" under the frame */
    box qc = find(cv, (box){fr.x0 - 20, fr.y1 + 1, fr.x1 + 20, fr.y1 + 3 * ST_FONT_LINE}, 25, 25, 25);
    CHECK(qc.x1 - qc.x0 + 1 == st_text_width("HMH", 1));
    st_tensor_free(cv);
    cv = NULL;

    /* without labels there is no text at all */
    st_image_set q2 = {qi, NULL, NULL, 0}, t2 = {ti, NULL, NULL, 0};
    CHECK_OK(st_figure_similar(&q2, &t2, nb, &o, &cv));
    if (cv) CHECK(find(cv, whole(cv), 25, 25, 25).x1 < 0);
    st_tensor_free(cv);
    st_tensor_free(ti);
    st_tensor_free(qi);
    st_tensor_free(tl);
    st_tensor_free(ql);
    st_tensor_free(nb);
}

/* Top-left corners of red frames (red pixels with no red left or above). */
static int count_frames(const st_tensor *cv, int *ys, int *xs)
{
    int n = 0;
    for (int y = 0; y < cv->shape[0]; y++)
        for (int x = 0; x < cv->shape[1]; x++)
            if (is(cv, x, y, 255, 0, 0) && (x == 0 || !is(cv, x - 1, y, 255, 0, 0)) &&
                (y == 0 || !is(cv, x, y - 1, 255, 0, 0))) {
                if (n < 16) ys[n] = y, xs[n] = x;
                n++;
            }
    return n;
}

static void test_weights_blocks(void)
{
    st_tensor *ti = train_images(6), *qi = query_images(2);
    st_tensor *a = ids(2, 2, (int64_t[]){0, 1, 2, 3}), *b = ids(2, 2, (int64_t[]){4, 5, -1, 0});
    st_image_set q = {qi, NULL, NULL, 0}, t = {ti, NULL, NULL, 0};
    st_figure_options o = st_figure_defaults();
    o.scale = S;
    st_tensor *cv = NULL;
    const char *titles[2] = {"equal", "high level"};
    CHECK_OK(st_figure_weights(&q, &t, 2, (const st_tensor *[]){a, b}, titles, &o, &cv));
    int ys[16], xs[16];
    if (cv) {
        /* stacked: 4 frames in one column, block 2 below block 1 */
        CHECK(count_frames(cv, ys, xs) == 4);
        CHECK(xs[0] == xs[1] && xs[1] == xs[2] && xs[2] == xs[3]);
        CHECK(ys[0] < ys[1] && ys[1] < ys[2] && ys[2] < ys[3]);
        /* the empty slot is a grey W*S x H*S box; titles make ink */
        box e = find(cv, whole(cv), 225, 225, 225);
        CHECK(e.x1 - e.x0 + 1 == W * S && e.y1 - e.y0 + 1 == H * S);
        CHECK(find(cv, (box){0, 0, (int)cv->shape[1] - 1, ys[0] - 1}, 25, 25, 25).x1 >= 0);
        CHECK(find(cv, (box){0, ys[1] + 1, (int)cv->shape[1] - 1, ys[2] - 1}, 25, 25, 25).x1 >= 0);
    }
    st_tensor_free(cv);
    cv = NULL;
    o.side_by_side = true;
    CHECK_OK(st_figure_weights(&q, &t, 2, (const st_tensor *[]){a, b}, titles, &o, &cv));
    if (cv) {
        CHECK(count_frames(cv, ys, xs) == 4);
        /* raster order: row 1 of both blocks, then row 2 */
        CHECK(ys[0] == ys[1] && ys[2] == ys[3] && ys[0] < ys[2] && xs[0] < xs[1] && xs[0] == xs[2]);
    }
    st_tensor_free(cv);
    st_tensor_free(ti);
    st_tensor_free(qi);
    st_tensor_free(a);
    st_tensor_free(b);
}

static void test_concepts(void)
{
    st_tensor *ti = train_images(6), *tl = ids(6, 0, (int64_t[]){0, 0, 1, 1, 2, 2});
    st_tensor *mem = ids(2, 3, (int64_t[]){0, 1, 2, 3, 4, -1});
    st_image_set t = {ti, tl, names, 3};
    st_cluster_stats stats[2] = {{.size = 40, .purity = .75, .n_dominant = 1, .dominant = {1}},
                                 {.size = 0}};
    st_figure_options o = st_figure_defaults();
    o.scale = S;
    st_tensor *cv = NULL;
    CHECK_OK(st_figure_concepts(&t, mem, stats, (int64_t[]){7, 9}, &o, &cv));
    if (!cv) return;
    CHECK(find(cv, whole(cv), 255, 0, 0).x1 < 0); /* no frames */
    box r0 = find(cv, whole(cv), 3, 200, 60), r1 = find(cv, whole(cv), 63, 200, 60);
    CHECK(r1.y0 > r0.y1);                        /* one row per cluster */
    CHECK(find(cv, whole(cv), 43, 200, 60).x0 > r0.x1); /* image 2 right of image 0 */
    /* the row caption above each row, the empty slot in grey */
    CHECK(find(cv, (box){0, 0, (int)cv->shape[1] - 1, r0.y0 - 1}, 25, 25, 25).x1 >= 0);
    box e = find(cv, whole(cv), 225, 225, 225);
    CHECK(e.y0 == r1.y0 && e.x1 - e.x0 + 1 == W * S);
    /* the caption text: compare with the same text drawn alone */
    st_tensor *ref = NULL;
    const char *want = "concept 7 \u00b7 n=40 \u00b7 purity 0.75 (MM)";
    CHECK_OK(st_canvas_new(1000, 40, (st_rgb){255, 255, 255}, &ref));
    CHECK_OK(st_canvas_text(ref, 0, 0, want, 2, (st_rgb){25, 25, 25}));
    box rb = find(ref, whole(ref), 25, 25, 25);
    box cb = find(cv, (box){0, 0, (int)cv->shape[1] - 1, r0.y0 - 1}, 25, 25, 25);
    CHECK(rb.x1 - rb.x0 == cb.x1 - cb.x0 && rb.y1 - rb.y0 == cb.y1 - cb.y0);
    bool same = true;
    for (int y = 0; y <= rb.y1 - rb.y0; y++)
        for (int x = 0; x <= rb.x1 - rb.x0; x++)
            same &= px(ref, rb.x0 + x, rb.y0 + y)[0] == px(cv, cb.x0 + x, cb.y0 + y)[0];
    CHECK(same);
    st_tensor_free(ref);
    st_tensor_free(cv);
    st_tensor_free(ti);
    st_tensor_free(tl);
    st_tensor_free(mem);
}

static void test_font_and_text(void)
{
    /* every printable glyph but space has ink, and all 95 differ */
    for (int c = 33; c < 127; c++) {
        const uint8_t *g = st_font_glyph((uint32_t)c);
        int ink = 0;
        for (int r = 0; r < ST_FONT_HEIGHT; r++) ink += g[r] != 0;
        CHECK(ink > 0);
        for (int d = 32; d < c; d++) CHECK(memcmp(g, st_font_glyph((uint32_t)d), ST_FONT_HEIGHT) != 0);
    }
    CHECK(st_font_glyph(0x4E2D) == st_font_glyph('?'));
    CHECK(st_font_glyph(0xB7) != st_font_glyph('?'));
    CHECK(st_text_width("", 3) == 0 && st_text_width("a", 1) == 5 && st_text_width("ab", 2) == 22);
    CHECK(st_text_width("\u00b7", 1) == 5); /* one code point, two bytes */
    /* "|" (rows 0-7 of column 2) at scale 3, partly clipped on the left */
    st_tensor *cv = NULL;
    CHECK_OK(st_canvas_new(20, 40, (st_rgb){0, 0, 0}, &cv));
    CHECK_OK(st_canvas_text(cv, -3, 2, "|", 3, (st_rgb){9, 9, 9}));
    box b = find(cv, whole(cv), 9, 9, 9);
    CHECK(b.x0 == 3 && b.x1 == 5 && b.y0 == 2 && b.y1 == 2 + 8 * 3 - 1);
    /* malformed UTF-8 draws '?' per bad byte instead of failing */
    CHECK(st_text_width("a\xff\xc3", 1) == st_text_width("a??", 1));
    CHECK_OK(st_canvas_text(cv, 0, 0, "\xe2\x82", 1, (st_rgb){9, 9, 9}));
    /* paste clipped at every edge */
    st_tensor *img = query_images(1), *one = NULL;
    CHECK_OK(st_tensor_select(img, 0, 0, &one));
    CHECK_OK(st_canvas_paste(cv, -10, 30, one, 2));
    CHECK(is(cv, 0, 39, 8 * 4 + 1, 8 * 5 + 1, 100)); /* source pixel (x 5, y 4) */
    st_tensor_free(one);
    st_tensor_free(img);
    st_tensor_free(cv);
}

static void test_png_round_trip(void)
{
    tmpdir dir;
    if (tmpdir_make(&dir)) {
        CHECK(!"no temporary directory");
        return;
    }
    const char *path = tmpdir_file(&dir, "similar.png");
    st_tensor *ti = train_images(3), *qi = query_images(1), *nb = ids(1, 3, (int64_t[]){0, 1, 2});
    st_tensor *tl = ids(3, 0, (int64_t[]){0, 1, 2});
    st_image_set q = {qi, NULL, NULL, 0}, t = {ti, tl, names, 3};
    st_tensor *cv = NULL, *back = NULL;
    CHECK_OK(st_figure_similar(&q, &t, nb, NULL, &cv));
    if (cv) CHECK_OK(st_image_save_png(path, cv));
    CHECK_OK(st_image_load(path, 3, &back));
    if (cv && back) {
        CHECK(back->shape[0] == cv->shape[0] && back->shape[1] == cv->shape[1] && back->shape[2] == 3);
        CHECK(memcmp(back->data, cv->data, st_tensor_nbytes(cv)) == 0);
        /* default scale 3: the 16x16 images are 48 px wide */
        box b = find(back, whole(back), 23, 200, 60);
        CHECK(b.x1 - b.x0 + 1 == 48);
    }
    /* the atomic write left nothing but the file */
    CHECK(tmpdir_count(&dir) == 1);
    tmpdir_remove(&dir);
    st_tensor_free(cv);
    st_tensor_free(back);
    st_tensor_free(ti);
    st_tensor_free(qi);
    st_tensor_free(nb);
    st_tensor_free(tl);
}

static void test_errors(void)
{
    st_tensor *ti = train_images(5), *qi = query_images(2), *cv = NULL;
    st_tensor *nb = ids(2, 2, (int64_t[]){0, 1, 7, 2}), *ok = ids(2, 2, (int64_t[]){0, 1, 3, 2});
    st_tensor *one_row = ids(1, 2, (int64_t[]){0, 1});
    st_image_set q = {qi, NULL, NULL, 0}, t = {ti, NULL, NULL, 0};
    CHECK_FAILS(st_figure_similar(&q, &t, nb, NULL, &cv), ST_EINVAL, "entry [1, 0] is 7, outside [0, 5)");
    CHECK_FAILS(st_figure_similar(&q, &t, one_row, NULL, &cv), ST_ESHAPE, "1 rows for 2 query images");
    st_tensor *f = NULL, *rgba = NULL, *three = NULL, *small = NULL;
    CHECK_OK(st_tensor_zeros(ST_F32, 4, (int64_t[]){5, H, W, 3}, &f));
    CHECK_OK(st_tensor_zeros(ST_U8, 4, (int64_t[]){5, H, W, 4}, &rgba));
    CHECK_OK(st_tensor_zeros(ST_U8, 3, (int64_t[]){5, H, W}, &three));
    CHECK_OK(st_tensor_zeros(ST_U8, 4, (int64_t[]){5, 8, 8, 3}, &small));
    st_image_set bad = {f, NULL, NULL, 0};
    CHECK_FAILS(st_figure_similar(&q, &bad, ok, NULL, &cv), ST_EDTYPE, "training images must be u8");
    bad.images = rgba;
    CHECK_FAILS(st_figure_similar(&q, &bad, ok, NULL, &cv), ST_ESHAPE, "C = 1 or 3, got [5,16,16,4]");
    bad.images = three;
    CHECK_FAILS(st_figure_concepts(&bad, ok, NULL, NULL, NULL, &cv), ST_ESHAPE, "[N, H, W, C]");
    bad.images = small;
    CHECK_FAILS(st_figure_similar(&q, &bad, ok, NULL, &cv), ST_ESHAPE, "query images are 16x16, training images 8x8");
    st_tensor *labels = ids(4, 0, (int64_t[]){0, 0, 0, 0});
    st_image_set lab = {ti, labels, NULL, 0};
    CHECK_FAILS(st_figure_similar(&q, &lab, ok, NULL, &cv), ST_ESHAPE, "labels must be i32/i64 [5]");
    st_figure_options o = st_figure_defaults();
    o.scale = 0;
    CHECK_FAILS(st_figure_similar(&q, &t, ok, &o, &cv), ST_EINVAL, "scale 0");
    CHECK_FAILS(st_figure_weights(&q, &t, 0, NULL, NULL, NULL, &cv), ST_EINVAL, "0 blocks");
    CHECK(cv == NULL); /* failures leave the output alone */
    st_tensor *c2 = NULL;
    CHECK_FAILS(st_canvas_new(0, 10, (st_rgb){0, 0, 0}, &c2), ST_EINVAL, "0 x 10");
    CHECK_OK(st_canvas_new(10, 10, (st_rgb){0, 0, 0}, &c2));
    CHECK_FAILS(st_canvas_paste(c2, 0, 0, rgba, 1), ST_ESHAPE, "canvas paste: image");
    CHECK_FAILS(st_canvas_frame(c2, 0, 0, 5, 5, 0, (st_rgb){0, 0, 0}), ST_EINVAL, "thickness 0");
    CHECK_FAILS(st_canvas_fill(f, 0, 0, 1, 1, (st_rgb){0, 0, 0}), ST_EDTYPE, "canvas");
    st_tensor_free(c2);
    st_tensor_free(ti);
    st_tensor_free(qi);
    st_tensor_free(nb);
    st_tensor_free(ok);
    st_tensor_free(one_row);
    st_tensor_free(f);
    st_tensor_free(rgba);
    st_tensor_free(three);
    st_tensor_free(small);
    st_tensor_free(labels);
}

int main(void)
{
    RUN(test_similar_layout);
    RUN(test_weights_blocks);
    RUN(test_concepts);
    RUN(test_font_and_text);
    RUN(test_png_round_trip);
    RUN(test_errors);
    return TEST_SUMMARY();
}
