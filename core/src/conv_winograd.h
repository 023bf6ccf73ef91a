/* Winograd F(2x2, 3x3) for 5x5 stride-2 convolutions (the clustering
 * autoencoder's conv1, conv2, their transposes and gradients) and 3x3
 * stride-1 ones (ResNet stages with 32 or more channels), private to
 * conv2d.c and conv2d_backward.c; conventions as in conv.h. */
#ifndef STRATA_CONV_WINOGRAD_H
#define STRATA_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include "strata/conv.h"

/* Whether the calls below handle g (kernel, stride, channel counts, CPU). */
bool st_winograd_fits(const st_conv2d_geom *g);
/* Floats of workspace the calls below need for g (independent of the batch). */
size_t st_winograd_workspace_floats(const st_conv2d_geom *g);

/* y = conv(x, w) + b (+ residual, then max(., 0) when relu), as
 * st_conv2d_forward_fused; b and residual may be NULL. */
void st_winograd_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                         const float *residual, bool relu, float *y, float *workspace);
/* dst = adjoint(src) + b: the transposed convolution of src [N, out_h,
 * out_w, out_c] into dst [N, in_h, in_w, in_c]; b (in_c) may be NULL. */
void st_winograd_adjoint(const st_conv2d_geom *g, const float *src, const float *w, const float *b, float *dst,
                         float *workspace);
/* dw = sum over the batch of the correlation of a [N, in_h, in_w, in_c]
 * with e [N, out_h, out_w, out_c]: the convolution's weight gradient for
 * input a and output gradient e (overwritten, HWIO). */
void st_winograd_weight_grad(const st_conv2d_geom *g, const float *a, const float *e, float *dw, float *workspace);

#endif
