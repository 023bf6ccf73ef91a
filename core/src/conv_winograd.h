/* Winograd F(2x2, 3x3) and F(4x4, 3x3) for 5x5 stride-2 convolutions (the
 * clustering autoencoder's conv1, conv2, their transposes and gradients)
 * and 3x3 stride-1 ones (the ResNet's), private to conv2d.c and
 * conv2d_backward.c; conventions as in conv.h. The calls take the tile
 * size m (2 or 4); st_winograd_*_tile choose it for a geometry. */
#ifndef STRATA_CONV_WINOGRAD_H
#define STRATA_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include "strata/conv.h"

/* Whether all three calls below handle g (kernel, stride, channel counts, CPU). */
bool st_winograd_fits(const st_conv2d_geom *g);
/* Whether st_winograd_forward handles g: also 3x3 stride 1 with 8 or 16 input channels. */
bool st_winograd_forward_fits(const st_conv2d_geom *g);

/* The faster tile size on an h x w grid: 4, or 2 when 4x4 tiles would
 * overhang it too far to save enough products. */
int st_winograd_tile(int h, int w);
/* The tile sizes for g's forward pass and weight gradient (its output
 * grid), and for its adjoint (its input's blocks). */
int st_winograd_forward_tile(const st_conv2d_geom *g);
int st_winograd_adjoint_tile(const st_conv2d_geom *g);

/* Floats of workspace the calls below need for g, with either tile size
 * (independent of the batch); st_winograd_forward with the forward tile alone. */
size_t st_winograd_workspace_floats(const st_conv2d_geom *g);
size_t st_winograd_forward_workspace_floats(const st_conv2d_geom *g);

/* y = conv(x, w) + b (+ residual, then max(., 0) when relu), as
 * st_conv2d_forward_fused; b and residual may be NULL. */
void st_winograd_forward(const st_conv2d_geom *g, int m, const float *x, const float *w, const float *b,
                         const float *residual, bool relu, float *y, float *workspace);
/* dst = adjoint(src) + b: the transposed convolution of src [N, out_h,
 * out_w, out_c] into dst [N, in_h, in_w, in_c]; b (in_c) may be NULL. */
void st_winograd_adjoint(const st_conv2d_geom *g, int m, const float *src, const float *w, const float *b,
                         float *dst, float *workspace);
/* dw = sum over the batch of the correlation of a [N, in_h, in_w, in_c]
 * with e [N, out_h, out_w, out_c]: the convolution's weight gradient for
 * input a and output gradient e (overwritten, HWIO). */
void st_winograd_weight_grad(const st_conv2d_geom *g, int m, const float *a, const float *e, float *dw,
                             float *workspace);

#endif
