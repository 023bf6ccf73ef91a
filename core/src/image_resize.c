/* Separable image resizing, area and bilinear (see image.h). Each output
 * coordinate gets a short list of input taps with weights summing to 1;
 * rows are filtered first into a float buffer, then columns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "strata/image.h"

/* Per output coordinate: first input index and `width` weights. */
typedef struct kernel {
    int width;
    int *first;
    float *w;
} kernel;

static void free_kernel(kernel *k)
{
    free(k->first);
    free(k->w);
}

static bool build_kernel(int in, int out, st_resize_filter filter, kernel *k)
{
    double scale = (double)in / out;
    k->width = filter == ST_RESIZE_AREA ? (int)ceil(scale) + 1 : 2;
    k->first = malloc((size_t)out * sizeof *k->first);
    k->w = calloc((size_t)out * k->width, sizeof *k->w);
    if (!k->first || !k->w) return false;
    for (int o = 0; o < out; o++) {
        float *w = k->w + (size_t)o * k->width;
        if (filter == ST_RESIZE_AREA) {
            /* input interval [lo, hi) covered by output pixel o */
            double lo = o * scale, hi = (o + 1) * scale;
            int first = (int)floor(lo);
            k->first[o] = first;
            for (int j = 0; j < k->width && first + j < in; j++) {
                double a = fmax(lo, first + j), b = fmin(hi, first + j + 1.0);
                w[j] = b > a ? (float)((b - a) / scale) : 0.0f;
            }
        } else {
            double x = (o + 0.5) * scale - 0.5;
            if (x < 0) x = 0;
            int first = (int)floor(x);
            if (first > in - 1) first = in - 1;
            double frac = x - first;
            k->first[o] = first;
            w[0] = (float)(1.0 - frac);
            if (first + 1 < in) w[1] = (float)frac;
            else w[0] = 1.0f;
        }
    }
    return true;
}

st_status st_image_resize_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw,
                             st_resize_filter filter)
{
    if (sh == dh && sw == dw) {
        memcpy(dst, src, (size_t)sh * sw * c);
        return ST_OK;
    }
    kernel kx = {0}, ky = {0};
    float *tmp = malloc((size_t)sh * dw * c * sizeof *tmp);
    bool ok = tmp && build_kernel(sw, dw, filter, &kx) && build_kernel(sh, dh, filter, &ky);
    if (ok) {
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < dw; x++)
                for (int ch = 0; ch < c; ch++) {
                    float s = 0;
                    for (int j = 0; j < kx.width; j++) {
                        float wt = kx.w[(size_t)x * kx.width + j];
                        if (wt != 0.0f) s += wt * src[((size_t)y * sw + kx.first[x] + j) * c + ch];
                    }
                    tmp[((size_t)y * dw + x) * c + ch] = s;
                }
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
                for (int ch = 0; ch < c; ch++) {
                    float s = 0;
                    for (int j = 0; j < ky.width; j++) {
                        float wt = ky.w[(size_t)y * ky.width + j];
                        if (wt != 0.0f) s += wt * tmp[((size_t)(ky.first[y] + j) * dw + x) * c + ch];
                    }
                    long v = lrintf(s);
                    dst[((size_t)y * dw + x) * c + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
    }
    free(tmp);
    free_kernel(&kx);
    free_kernel(&ky);
    return ok ? ST_OK : st_fail(ST_ENOMEM, "resize: out of memory");
}

st_status st_image_resize(const st_tensor *src, int h, int w, st_resize_filter filter, st_tensor **out)
{
    ST_TRY(st_tensor_expect(src, "resize: image", ST_U8, 3, (int64_t[]){-1, -1, -1}));
    if (h < 1 || w < 1 || src->shape[0] < 1 || src->shape[1] < 1 || src->shape[2] < 1 || src->shape[0] > INT32_MAX ||
        src->shape[1] > INT32_MAX || src->shape[2] > 4)
        return st_fail(ST_EINVAL, "resize: %lldx%lldx%lld to %dx%d (sizes >= 1, at most 4 channels)",
                       (long long)src->shape[0], (long long)src->shape[1], (long long)src->shape[2], h, w);
    st_tensor *c = NULL, *dst = NULL;
    ST_TRY(st_tensor_contiguous(src, &c));
    st_status s = st_tensor_new(ST_U8, 3, (int64_t[]){h, w, src->shape[2]}, &dst);
    if (s == ST_OK)
        s = st_image_resize_u8(c->data, (int)src->shape[0], (int)src->shape[1], (int)src->shape[2], dst->data, h, w,
                           filter);
    st_tensor_free(c);
    if (s == ST_OK) *out = dst;
    else st_tensor_free(dst);
    return s;
}
