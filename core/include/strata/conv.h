/* 2-d convolution and its transpose, NHWC. Each call picks its algorithm
 * by geometry: Winograd for 5x5 stride-2 kernels, the forward pass of 3x3
 * stride-1 ones and their other passes with 32+ input channels (F(4x4,
 * 3x3) on grids where its 4x4 tiles pay, else F(2x2, 3x3)), a direct AVX2
 * kernel, or im2col + SGEMM; all give the convolution's value to float
 * rounding.
 *
 * Layouts: activations [N, H, W, C]; kernels [KH, KW, C_in, C_out]
 * (HWIO, the Keras layout; PyTorch OIHW weights are permuted at load).
 * A convolution's geometry fixes its padding explicitly (top, left;
 * bottom and right follow from the output size), which covers PyTorch's
 * symmetric padding and TensorFlow's asymmetric SAME alike.
 *
 * The transposed convolution with geometry g maps [N, out_h, out_w,
 * out_c] back to [N, in_h, in_w, in_c]: it is the exact adjoint of the
 * convolution with geometry g (the Keras Conv2DTranspose kernel
 * [KH, KW, C_out_of_transpose, C_in_of_transpose] is then exactly the
 * HWIO kernel of g). */
#ifndef STRATA_CONV_H
#define STRATA_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_conv2d_geom {
    int batch;
    int in_h, in_w, in_c;
    int out_h, out_w, out_c;
    int k_h, k_w;
    int stride_h, stride_w;
    int pad_top, pad_left;
} st_conv2d_geom;

/* Explicit symmetric padding `pad` (PyTorch style). */
st_status st_conv2d_geom_explicit(st_conv2d_geom *g, int batch, int in_h, int in_w, int in_c, int out_c, int k_h,
                                  int k_w, int stride, int pad);
/* TensorFlow "SAME": out = ceil(in / stride), total padding
 * max((out-1)*stride + k - in, 0), the smaller half before. */
st_status st_conv2d_geom_same(st_conv2d_geom *g, int batch, int in_h, int in_w, int in_c, int out_c, int k_h,
                              int k_w, int stride);

/* Floats of scratch space the calls below need for this geometry. */
size_t st_conv2d_workspace_floats(const st_conv2d_geom *g);
/* Those the forward calls alone need (st_conv2d_forward, _fused): less
 * when the forward pass has an algorithm of its own (a net that only
 * runs forward sizes its workspace by this). */
size_t st_conv2d_forward_workspace_floats(const st_conv2d_geom *g);

/* y = conv(x, w) + b; b may be NULL. */
void st_conv2d_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b, float *y,
                       float *workspace);
/* The same with the epilogue of a residual block fused into the store:
 * y = conv(x, w) + b + residual, then max(y, 0) if relu. residual has
 * y's shape and may be NULL; the results equal those of the separate
 * passes bit for bit. */
void st_conv2d_forward_fused(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                             const float *residual, bool relu, float *y, float *workspace);
/* Gradients of the convolution. dx, dw, db may each be NULL (not wanted).
 * dw and db are overwritten (not accumulated). */
void st_conv2d_backward(const st_conv2d_geom *g, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db, float *workspace);
/* Transposed convolution (adjoint of g): x is [N,out_h,out_w,out_c],
 * y is [N,in_h,in_w,in_c], b has in_c entries (may be NULL). */
void st_conv2d_transpose_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b, float *y,
                                 float *workspace);
void st_conv2d_transpose_backward(const st_conv2d_geom *g, const float *x, const float *w, const float *dy,
                                  float *dx, float *dw, float *db, float *workspace);

#ifdef __cplusplus
}
#endif
#endif
