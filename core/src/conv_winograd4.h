/* Winograd F(4x4, 3x3) for the forward pass of 3x3 stride-1 convolutions
 * (the ResNet's), private to conv2d.c; conventions as in conv.h. Their
 * gradients, and the 5x5 stride-2 convolutions, use F(2x2, 3x3)
 * (conv_winograd.h), whose rounding is closer to the direct kernels'. */
#ifndef STRATA_CONV_WINOGRAD4_H
#define STRATA_CONV_WINOGRAD4_H

#include <stdbool.h>
#include <stddef.h>
#include "strata/conv.h"

/* Whether st_winograd4_forward handles g (3x3, stride 1, C_in % 8 == 0,
 * C_out % 16 == 0, AVX2 and FMA). */
bool st_winograd4_fits(const st_conv2d_geom *g);
/* Floats of workspace st_winograd4_forward needs for g. */
size_t st_winograd4_workspace_floats(const st_conv2d_geom *g);

/* y = conv(x, w) + b (+ residual, then max(., 0) when relu), as
 * st_conv2d_forward_fused; b and residual may be NULL. */
void st_winograd4_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                          const float *residual, bool relu, float *y, float *workspace);

#endif
