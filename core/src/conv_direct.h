/* The direct forward convolution of conv2d.c with its output placed by a
 * stride (not public API): conv2d_backward.c writes the stride phases of
 * a transposed convolution straight into place with it. */
#ifndef STRATA_CONV_DIRECT_H
#define STRATA_CONV_DIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include "strata/conv.h"

/* Output pixel (n, oy, ox) is the C_out floats at y + n*image + oy*row +
 * ox*col. */
typedef struct st_conv2d_out_layout {
    size_t image, row, col;
} st_conv2d_out_layout;

/* Whether the direct kernel runs g (a multiple of 16 output channels, and
 * a CPU with AVX2 and FMA). */
bool st_conv2d_direct_applies(const st_conv2d_geom *g);

/* y (placed by lay) = conv(x, w) + add, where add (C_out floats, or NULL)
 * is added after the sum, as a separate pass would. Only for geometries
 * where st_conv2d_direct_applies; workspace as for st_conv2d_forward. */
void st_conv2d_direct_placed(const st_conv2d_geom *g, const float *x, const float *w, const float *add, float *y,
                             st_conv2d_out_layout lay, float *workspace);

#endif
