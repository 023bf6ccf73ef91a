/* Trainable-network layers as batch kernels over raw float buffers.
 *
 * Every kernel works on a whole batch at once, in NHWC (activations
 * [N, H, W, C]) or row-major [N, features] layout, with caller-owned
 * buffers: nothing here allocates, so a training step built from these
 * calls runs without touching the heap. Shapes are the caller's contract
 * (as in conv.h); the objects built on top (cae.h) validate them.
 *
 * Flatten and Reshape need no kernel: in NHWC row-major order a [N, H, W,
 * C] buffer already is the [N, H*W*C] matrix (index (h*W + w)*C + c).
 *
 * Backward conventions: parameter gradients (dw, db, dmu) are overwritten,
 * not accumulated; input gradients (dx) are overwritten. Any gradient
 * pointer documented as optional may be NULL when it is not wanted. */
#ifndef STRATA_LAYERS_H
#define STRATA_LAYERS_H

#include <stddef.h>
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dense: y[n,o] = b[o] + sum_i x[n,i] w[i,o]; w is [in, out] (Keras). */
void st_dense_forward(int batch, int in, int out, const float *x, const float *w, const float *b, float *y);
/* dx [batch,in], dw [in,out], db [out]; each optional. */
void st_dense_backward(int batch, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                       float *dw, float *db);

/* ---- ReLU. The backward reads the forward OUTPUT y (y > 0 passes the
 * gradient), so the input need not be kept. x == y and dy == dx are
 * allowed (in place). */
void st_relu_forward(size_t n, const float *x, float *y);
void st_relu_backward(size_t n, const float *y, const float *dy, float *dx);

/* ---- zero padding and cropping of the spatial dimensions.
 * st_pad2d writes x [N,H,W,C] into the centre of y [N,H+top+bottom,
 * W+left+right, C] with zeros around it; st_crop2d cuts the same window
 * back out. Each is the exact adjoint of the other, so the backward of a
 * pad is a crop of its output gradient and vice versa. */
typedef struct st_padding2d {
    int top, bottom, left, right;
} st_padding2d;
void st_pad2d(int batch, int h, int w, int c, st_padding2d p, const float *x, float *y);
void st_crop2d(int batch, int h, int w, int c, st_padding2d p, const float *y, float *x);

/* ---- hypersphere normalisation (the reference's L2Normalize):
 * z = r * u / sqrt(max(sum u^2, 1e-12)) per row of u [batch, d].
 * The backward recomputes the norm from u:
 * du = (r/n) (g - (g.u^) u^), or (r/n) g where the norm is clamped. */
void st_l2norm_forward(int batch, int d, float radius, const float *u, float *z);
void st_l2norm_backward(int batch, int d, float radius, const float *u, const float *dz, float *du);

/* ---- Student-t soft assignment with trainable centroids mu [k, d]:
 * a_ij = 1 + |z_i - mu_j|^2 / alpha, log k_ij = -((alpha+1)/2) log a_ij,
 * q_ij = softmax_j(log k_ij). Computed in log space (accumulated in
 * double), so it never underflows, whatever the distances. */
void st_student_t_forward(int batch, int k, int d, float alpha, const float *z, const float *mu, float *q);
/* From dq = dL/dq [batch,k] and the forward's q: dz [batch,d] and dmu
 * [k,d], each optional. */
void st_student_t_backward(int batch, int k, int d, float alpha, const float *z, const float *mu, const float *q,
                           const float *dq, float *dz, float *dmu);

/* DEC target distribution over a whole set of soft assignments q [n,k]:
 * p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), f_j = sum_i q_ij.
 * A column with f_j = 0 (every q_ij underflowed to 0) contributes 0.
 * Sums run in double. Fails with ST_EINVAL for n or k < 1, ST_ENUMERIC
 * when q holds a negative or non-finite value or a row of q is all zero,
 * and ST_ENOMEM when the k column sums cannot be allocated. */
st_status st_target_distribution(int n, int k, const float *q, float *p);

#ifdef __cplusplus
}
#endif
#endif
