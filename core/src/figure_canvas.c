/* The RGB canvas of the figures: rectangles, frames, upscaled images and
 * bitmap text, all clipped at the edges (figure.h). */
#include <string.h>
#include "strata/figure.h"

#define CANVAS_MAX 32768

static st_status check_canvas(const st_tensor *c)
{
    if (!c) return st_fail(ST_EINVAL, "canvas: missing");
    ST_TRY(st_tensor_expect(c, "canvas", ST_U8, 3, (int64_t[]){-1, -1, 3}));
    if (!st_tensor_is_contiguous(c)) return st_fail(ST_EINVAL, "canvas: must be contiguous");
    return ST_OK;
}

st_status st_canvas_new(int width, int height, st_rgb bg, st_tensor **out)
{
    if (width < 1 || height < 1 || width > CANVAS_MAX || height > CANVAS_MAX)
        return st_fail(ST_EINVAL, "canvas: %d x %d pixels (each side must be 1..%d)", width, height, CANVAS_MAX);
    st_tensor *t = NULL;
    ST_TRY(st_tensor_new(ST_U8, 3, (int64_t[]){height, width, 3}, &t));
    uint8_t *p = t->data;
    for (int64_t i = 0; i < (int64_t)width * height; i++) {
        p[3 * i] = bg.r;
        p[3 * i + 1] = bg.g;
        p[3 * i + 2] = bg.b;
    }
    *out = t;
    return ST_OK;
}

/* Clips [x, x+w) x [y, y+h) to the canvas; false when nothing is left. */
static bool clip(const st_tensor *c, int *x, int *y, int *w, int *h)
{
    int64_t x0 = *x, y0 = *y, x1 = (int64_t)*x + *w, y1 = (int64_t)*y + *h;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->shape[1]) x1 = c->shape[1];
    if (y1 > c->shape[0]) y1 = c->shape[0];
    if (x0 >= x1 || y0 >= y1) return false;
    *x = (int)x0, *y = (int)y0, *w = (int)(x1 - x0), *h = (int)(y1 - y0);
    return true;
}

static void fill(st_tensor *c, int x, int y, int w, int h, st_rgb color)
{
    if (!clip(c, &x, &y, &w, &h)) return;
    uint8_t *base = c->data;
    for (int r = y; r < y + h; r++) {
        uint8_t *p = base + ((int64_t)r * c->shape[1] + x) * 3;
        for (int i = 0; i < w; i++, p += 3) p[0] = color.r, p[1] = color.g, p[2] = color.b;
    }
}

st_status st_canvas_fill(st_tensor *canvas, int x, int y, int w, int h, st_rgb color)
{
    ST_TRY(check_canvas(canvas));
    fill(canvas, x, y, w, h, color);
    return ST_OK;
}

st_status st_canvas_frame(st_tensor *canvas, int x, int y, int w, int h, int thickness, st_rgb color)
{
    ST_TRY(check_canvas(canvas));
    if (thickness < 1) return st_fail(ST_EINVAL, "canvas frame: thickness %d < 1", thickness);
    int t = thickness;
    fill(canvas, x, y, w, t < h ? t : h, color);                 /* top */
    fill(canvas, x, y + h - t, w, t < h ? t : h, color);         /* bottom */
    fill(canvas, x, y, t < w ? t : w, h, color);                 /* left */
    fill(canvas, x + w - t, y, t < w ? t : w, h, color);         /* right */
    return ST_OK;
}

st_status st_canvas_paste(st_tensor *canvas, int x, int y, const st_tensor *image, int scale)
{
    ST_TRY(check_canvas(canvas));
    if (!image) return st_fail(ST_EINVAL, "canvas paste: image missing");
    ST_TRY(st_tensor_expect(image, "canvas paste: image", ST_U8, 3, (int64_t[]){-1, -1, -1}));
    int64_t H = image->shape[0], W = image->shape[1], C = image->shape[2];
    if (C != 1 && C != 3) {
        char buf[64];
        return st_fail(ST_ESHAPE, "canvas paste: image %s has %lld channels (1 or 3 expected)",
                       st_shape_str(3, image->shape, buf, sizeof buf), (long long)C);
    }
    if (scale < 1 || scale > 64) return st_fail(ST_EINVAL, "canvas paste: scale %d is not in 1..64", scale);
    const uint8_t *src = image->data;
    uint8_t *dst = canvas->data;
    int64_t cw = canvas->shape[1], ch = canvas->shape[0];
    for (int64_t r = 0; r < H * scale; r++) {
        int64_t cy = y + r;
        if (cy < 0 || cy >= ch) continue;
        const uint8_t *row = src + (r / scale) * image->stride[0];
        for (int64_t col = 0; col < W * scale; col++) {
            int64_t cx = x + col;
            if (cx < 0 || cx >= cw) continue;
            const uint8_t *px = row + (col / scale) * image->stride[1];
            uint8_t *d = dst + (cy * cw + cx) * 3;
            for (int k = 0; k < 3; k++) d[k] = px[C == 3 ? k * image->stride[2] : 0];
        }
    }
    return ST_OK;
}

/* Next code point of UTF-8 text (advancing *s); malformed bytes give '?'
 * and are skipped one at a time. */
static uint32_t next_code_point(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    if (p[0] < 0x80) {
        *s += 1;
        return p[0];
    }
    int n = p[0] >= 0xF0 ? 3 : p[0] >= 0xE0 ? 2 : p[0] >= 0xC2 ? 1 : 0;
    if (p[0] >= 0xF5) n = 0;
    uint32_t cp = p[0] & (0x3F >> n);
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) n = 0; /* also stops at the terminator */
        if (!n) break;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (!n) {
        *s += 1;
        return '?';
    }
    *s += n + 1;
    return cp;
}

int st_text_width(const char *text, int scale)
{
    int n = 0;
    while (text && *text) {
        next_code_point(&text);
        n++;
    }
    return n ? (n * ST_FONT_ADVANCE - (ST_FONT_ADVANCE - ST_FONT_WIDTH)) * scale : 0;
}

st_status st_canvas_text(st_tensor *canvas, int x, int y, const char *text, int scale, st_rgb color)
{
    ST_TRY(check_canvas(canvas));
    if (scale < 1 || scale > 64) return st_fail(ST_EINVAL, "canvas text: scale %d is not in 1..64", scale);
    if (!text) return ST_OK;
    while (*text) {
        const uint8_t *g = st_font_glyph(next_code_point(&text));
        for (int r = 0; r < ST_FONT_HEIGHT; r++)
            for (int c = 0; c < ST_FONT_WIDTH; c++)
                if (g[r] >> (ST_FONT_WIDTH - 1 - c) & 1) fill(canvas, x + c * scale, y + r * scale, scale, scale, color);
        x += ST_FONT_ADVANCE * scale;
    }
    return ST_OK;
}
