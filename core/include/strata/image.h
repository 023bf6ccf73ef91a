/* Images: decoding (JPEG, PNG, BMP via stb_image), PNG writing, resizing,
 * and image-folder datasets.
 *
 * Images are uint8 tensors [H, W, C] (C = 1 grayscale, 3 RGB, 4 RGBA). */
#ifndef STRATA_IMAGE_H
#define STRATA_IMAGE_H

#include <stdint.h>
#include "strata/dataset.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum st_resize_filter {
    /* Each output pixel averages the input area it covers, with
     * fractional weights at the edges (a box filter: right for shrinking,
     * no aliasing). */
    ST_RESIZE_AREA,
    /* Linear interpolation between the two nearest input pixels along each
     * axis, pixel centres at +0.5 (PyTorch align_corners=False). */
    ST_RESIZE_BILINEAR
} st_resize_filter;

/* Resizes src [sh, sw, c] into dst [dh, dw, c] (all sizes >= 1), rounding
 * to the nearest value. Fails only when its small scratch cannot be had. */
st_status st_image_resize_u8(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw,
                             st_resize_filter filter);
/* The same on tensors: src u8 [H, W, C] -> a new u8 [h, w, C]. */
st_status st_image_resize(const st_tensor *src, int h, int w, st_resize_filter filter, st_tensor **out);

/* Decodes an image file converted to `channels` (1 or 3; 0 keeps the
 * file's own) into a new u8 [H, W, C]. */
st_status st_image_load(const char *path, int channels, st_tensor **out);
/* Writes u8 [H, W, C] (C 1, 3 or 4) as PNG, atomically (temp + rename). */
st_status st_image_save_png(const char *path, const st_tensor *image);

typedef struct st_imagefolder_options {
    int height, width;       /* every image is resized to this */
    int channels;            /* 1 (grayscale) or 3 (RGB) */
    st_resize_filter filter;
    const char *mask_dir;    /* NULL, or a folder with <class>/<name>.png masks */
} st_imagefolder_options;

/* Loads <dir>/<class>/<image> for every class subfolder (sorted by name;
 * the folder names become the class names, ids in that order) and every
 * .jpg/.jpeg/.png/.bmp file in it (sorted by name), resized. With a mask
 * folder, the mask of <class>/<name>.<ext> is <mask_dir>/<class>/<name>.png
 * (grayscale, resized the same way) and must exist. Hidden entries are
 * skipped; a folder without images is an error. */
st_status st_imagefolder_open(const char *dir, const st_imagefolder_options *opt, st_dataset **out);

#ifdef __cplusplus
}
#endif
#endif
