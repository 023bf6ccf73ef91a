/* Dense (fully connected) layer and ReLU over a batch (see layers.h). */
#include "strata/layers.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>
#include "vec_f32.h"

/* The bias sums (vec_f32.h) and ReLU passes run 8 floats at a time where
 * AVX is available (the build's baseline has none, and its cost model does
 * not vectorise loops of unknown length). Same bits either way: the sums
 * add in the same order, and max(x, 0) and the mask both map NaN and -0
 * to +0, as the scalar comparisons do. */
static bool have_avx2(void) { return __builtin_cpu_supports("avx2"); }

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
        for (int n = 0; n < batch; n++) st_vec_add_f32((size_t)out, db, dy + (size_t)n * out, db);
    }
}

__attribute__((target("avx2"))) static size_t relu_forward_avx2(size_t n, const float *x, float *y)
{
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(_mm256_loadu_ps(x + i), zero));
    return i;
}

__attribute__((target("avx2"))) static size_t relu_backward_avx2(size_t n, const float *y, const float *dy,
                                                                  float *dx)
{
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 on = _mm256_cmp_ps(_mm256_loadu_ps(y + i), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(dx + i, _mm256_and_ps(on, _mm256_loadu_ps(dy + i)));
    }
    return i;
}

void st_relu_forward(size_t n, const float *x, float *y)
{
    size_t i = have_avx2() ? relu_forward_avx2(n, x, y) : 0;
    for (; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void st_relu_backward(size_t n, const float *y, const float *dy, float *dx)
{
    size_t i = have_avx2() ? relu_backward_avx2(n, y, dy, dx) : 0;
    for (; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
