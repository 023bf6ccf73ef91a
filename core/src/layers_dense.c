/* Dense (fully connected) layer and ReLU over a batch (see layers.h). */
#include "strata/layers.h"

#include <cblas.h>
#include <string.h>

void st_dense_forward(int batch, int in, int out, const float *x, const float *w, const float *b, float *y)
{
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < batch; n++) memcpy(y + (size_t)n * out, b, (size_t)out * sizeof *b);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, out, in, 1.0f, x, in, w, out, beta, y, out);
}

void st_dense_backward(int batch, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                       float *dw, float *db)
{
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, batch, 1.0f, x, in, dy, out, 0.0f, dw, out);
    if (db) {
        memset(db, 0, (size_t)out * sizeof *db);
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < out; o++) db[o] += dy[(size_t)n * out + o];
    }
}

void st_relu_forward(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void st_relu_backward(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
