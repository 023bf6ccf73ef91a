/* Gradients of the NHWC convolution and the transposed convolution (the
 * convolution's exact adjoint), see conv.h.
 *
 * With col = im2col(x) [M, K] (M = batch*out_h*out_w, K = k_h*k_w*C_in)
 * and the HWIO kernel as the [K, C_out] matrix W, the convolution is
 * y = col W. So
 *   dW = col^T dy,  dx = col2im(dy W^T),
 * and the transposed convolution (x [M, C_out] -> y in the input space) is
 *   y = col2im(x W^T),  dx = im2col(dy) W,  dW = im2col(dy)^T x.
 * col2im is the adjoint of im2col: it adds every column entry back onto
 * the input position it was read from. Both need the M*K workspace that
 * st_conv2d_workspace_floats() gives (none for a 1x1 stride-1 unpadded
 * geometry, where col is the activation itself). */
#include "strata/conv.h"

#include <cblas.h>
#include <string.h>

static int is_pointwise(const st_conv2d_geom *g)
{
    return g->k_h == 1 && g->k_w == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

/* col[r, (kh, kw, c)] = x[n, oy*s - pad_top + kh, ox*s - pad_left + kw, c]
 * for row r = (n, oy, ox); zero where the tap falls into the padding. */
static void im2col(const st_conv2d_geom *g, const float *x, float *col)
{
    const size_t cin = (size_t)g->in_c, run = cin * sizeof(float);
    for (int n = 0; n < g->batch; n++) {
        const float *img = x + (size_t)n * g->in_h * g->in_w * cin;
        for (int oy = 0; oy < g->out_h; oy++) {
            const int y0 = oy * g->stride_h - g->pad_top;
            for (int ox = 0; ox < g->out_w; ox++) {
                const int x0 = ox * g->stride_w - g->pad_left;
                for (int kh = 0; kh < g->k_h; kh++) {
                    const int iy = y0 + kh;
                    for (int kw = 0; kw < g->k_w; kw++, col += cin) {
                        const int ix = x0 + kw;
                        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                            memset(col, 0, run);
                        else
                            memcpy(col, img + ((size_t)iy * g->in_w + ix) * cin, run);
                    }
                }
            }
        }
    }
}

/* The adjoint of im2col: x (overwritten) = sum of every col entry onto
 * the input position it would have been read from. */
static void col2im(const st_conv2d_geom *g, const float *col, float *x)
{
    const size_t cin = (size_t)g->in_c;
    memset(x, 0, (size_t)g->batch * g->in_h * g->in_w * cin * sizeof *x);
    for (int n = 0; n < g->batch; n++) {
        float *img = x + (size_t)n * g->in_h * g->in_w * cin;
        for (int oy = 0; oy < g->out_h; oy++) {
            const int y0 = oy * g->stride_h - g->pad_top;
            for (int ox = 0; ox < g->out_w; ox++) {
                const int x0 = ox * g->stride_w - g->pad_left;
                for (int kh = 0; kh < g->k_h; kh++) {
                    const int iy = y0 + kh;
                    for (int kw = 0; kw < g->k_w; kw++, col += cin) {
                        const int ix = x0 + kw;
                        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) continue;
                        float *dst = img + ((size_t)iy * g->in_w + ix) * cin;
                        for (size_t c = 0; c < cin; c++) dst[c] += col[c];
                    }
                }
            }
        }
    }
}

/* db[c] = sum over rows of d [rows, c]. */
static void channel_sums(int rows, int c, const float *d, float *db)
{
    memset(db, 0, (size_t)c * sizeof *db);
    for (int r = 0; r < rows; r++) {
        const float *row = d + (size_t)r * c;
        for (int j = 0; j < c; j++) db[j] += row[j];
    }
}

void st_conv2d_backward(const st_conv2d_geom *g, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db, float *workspace)
{
    const int m = g->batch * g->out_h * g->out_w, k = g->k_h * g->k_w * g->in_c, n = g->out_c;
    const int pointwise = is_pointwise(g);
    if (db) channel_sums(m, n, dy, db);
    if (dw) {
        const float *col = x;
        if (!pointwise) {
            im2col(g, x, workspace);
            col = workspace;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, 1.0f, col, k, dy, n, 0.0f, dw, n);
    }
    if (dx) {
        float *dcol = pointwise ? dx : workspace;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0f, dy, n, w, n, 0.0f, dcol, k);
        if (!pointwise) col2im(g, dcol, dx);
    }
}

void st_conv2d_transpose_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b, float *y,
                                 float *workspace)
{
    const int m = g->batch * g->out_h * g->out_w, k = g->k_h * g->k_w * g->in_c, n = g->out_c;
    const int pointwise = is_pointwise(g);
    float *col = pointwise ? y : workspace;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0f, x, n, w, n, 0.0f, col, k);
    if (!pointwise) col2im(g, col, y);
    if (b) {
        const size_t pixels = (size_t)g->batch * g->in_h * g->in_w, c = (size_t)g->in_c;
        for (size_t p = 0; p < pixels; p++)
            for (size_t j = 0; j < c; j++) y[p * c + j] += b[j];
    }
}

void st_conv2d_transpose_backward(const st_conv2d_geom *g, const float *x, const float *w, const float *dy,
                                  float *dx, float *dw, float *db, float *workspace)
{
    const int m = g->batch * g->out_h * g->out_w, k = g->k_h * g->k_w * g->in_c, n = g->out_c;
    if (db) channel_sums(g->batch * g->in_h * g->in_w, g->in_c, dy, db);
    if (!dw && !dx) return;
    const float *col = dy;
    if (!is_pointwise(g)) {
        im2col(g, dy, workspace);
        col = workspace;
    }
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, 1.0f, col, k, x, n, 0.0f, dw, n);
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, col, k, w, n, 0.0f, dx, n);
}
