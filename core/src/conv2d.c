/* Forward 2-d convolution in NHWC and the geometry helpers (see conv.h).
 *
 * The convolution is one GEMM: y[M, C_out] = col[M, K] * w[K, C_out] with
 * M = batch*out_h*out_w and K = k_h*k_w*C_in. The HWIO kernel already is
 * the [K, C_out] matrix, and a 1x1 stride-1 unpadded convolution needs no
 * im2col at all because the NHWC input already is col. The backward and
 * transposed passes live in conv2d_backward.c.
 *
 * With few output channels (CIFAR ResNets: 16 to 64) a BLAS spends as
 * long packing the big col matrix as multiplying it, and im2col itself
 * copies every input k_h*k_w times. There, on CPUs with AVX2 and FMA, a
 * direct kernel reads the NHWC input in place instead (or a zero-padded
 * copy of one image when the kernel overhangs it): 6 output pixels by 16
 * channels of accumulators stay in registers while it walks the kernel
 * window, one contiguous run of k_w*C_in floats per kernel row (an
 * implicit GEMM without packing). A residual add and ReLU can be fused
 * into its store. */
#include "strata/conv.h"

#include <cblas.h>
#include <immintrin.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "conv_chunk.h"
#include "conv_tile.h"
#include "conv_winograd.h"

static st_status check_geom(const st_conv2d_geom *g)
{
    if (g->batch <= 0 || g->in_h <= 0 || g->in_w <= 0 || g->in_c <= 0 || g->out_c <= 0)
        return st_fail(ST_EINVAL, "conv2d: batch %d, input %dx%dx%d and %d output channels must all be positive",
                       g->batch, g->in_h, g->in_w, g->in_c, g->out_c);
    if (g->k_h <= 0 || g->k_w <= 0 || g->stride_h <= 0 || g->stride_w <= 0)
        return st_fail(ST_EINVAL, "conv2d: kernel %dx%d and stride %dx%d must be positive", g->k_h, g->k_w,
                       g->stride_h, g->stride_w);
    if (g->pad_top < 0 || g->pad_left < 0)
        return st_fail(ST_EINVAL, "conv2d: padding (%d, %d) must be non-negative", g->pad_top, g->pad_left);
    if (g->out_h <= 0 || g->out_w <= 0)
        return st_fail(ST_EINVAL, "conv2d: a %dx%d kernel does not fit a %dx%d input", g->k_h, g->k_w, g->in_h,
                       g->in_w);
    /* GEMM dimensions are ints in CBLAS: every matrix side must fit. */
    int64_t m = (int64_t)g->batch * g->out_h * g->out_w;
    int64_t k = (int64_t)g->k_h * g->k_w * g->in_c;
    int64_t in = (int64_t)g->batch * g->in_h * g->in_w;
    if (m > INT_MAX || k > INT_MAX || in > INT_MAX || (int64_t)g->out_c * k > INT_MAX)
        return st_fail(ST_EINVAL, "conv2d: batch %d of %dx%dx%d is too large for one GEMM", g->batch, g->in_h,
                       g->in_w, g->in_c);
    return ST_OK;
}

st_status st_conv2d_geom_explicit(st_conv2d_geom *g, int batch, int in_h, int in_w, int in_c, int out_c, int k_h,
                                  int k_w, int stride, int pad)
{
    if (stride <= 0 || pad < 0)
        return st_fail(ST_EINVAL, "conv2d: stride %d must be positive and padding %d non-negative", stride, pad);
    st_conv2d_geom t = {batch, in_h, in_w, in_c, 0, 0, out_c, k_h, k_w, stride, stride, pad, pad};
    t.out_h = in_h + 2 * pad >= k_h ? (in_h + 2 * pad - k_h) / stride + 1 : 0;
    t.out_w = in_w + 2 * pad >= k_w ? (in_w + 2 * pad - k_w) / stride + 1 : 0;
    ST_TRY(check_geom(&t));
    *g = t;
    return ST_OK;
}

static int same_pad_before(int in, int out, int k, int stride)
{
    int total = (out - 1) * stride + k - in;
    return total > 0 ? total / 2 : 0;
}

st_status st_conv2d_geom_same(st_conv2d_geom *g, int batch, int in_h, int in_w, int in_c, int out_c, int k_h,
                              int k_w, int stride)
{
    if (stride <= 0) return st_fail(ST_EINVAL, "conv2d: stride %d must be positive", stride);
    st_conv2d_geom t = {batch, in_h, in_w, in_c, 0, 0, out_c, k_h, k_w, stride, stride, 0, 0};
    t.out_h = in_h > 0 ? (in_h + stride - 1) / stride : 0;
    t.out_w = in_w > 0 ? (in_w + stride - 1) / stride : 0;
    t.pad_top = same_pad_before(in_h, t.out_h, k_h, stride);
    t.pad_left = same_pad_before(in_w, t.out_w, k_w, stride);
    ST_TRY(check_geom(&t));
    *g = t;
    return ST_OK;
}

/* The input already is the im2col matrix. */
static int is_pointwise(const st_conv2d_geom *g)
{
    return g->k_h == 1 && g->k_w == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

/* The direct kernel reads each image through a frame in which output
 * pixel (oy, ox) and kernel tap (kh, kw) read row oy*s_h + kh and column
 * ox*s_w + kw: rows and columns are shifted by the padding, so a frame
 * has frame_h x frame_w pixels. The input itself is the frame when the
 * kernel never leaves it, otherwise a zero-padded copy of one image. */
static int frame_h(const st_conv2d_geom *g) { return (g->out_h - 1) * g->stride_h + g->k_h; }
static int frame_w(const st_conv2d_geom *g) { return (g->out_w - 1) * g->stride_w + g->k_w; }

/* The workspace of the passes other than a Winograd forward. */
static size_t other_passes_floats(const st_conv2d_geom *g)
{
    if (st_winograd_fits(g)) return st_winograd_workspace_floats(g); /* every other pass of g takes that path */
    if (is_pointwise(g)) return 0;
    size_t cols = (size_t)g->batch * g->out_h * g->out_w * g->k_h * g->k_w * g->in_c;
    /* The direct kernel needs one padded image; callers may also size
     * other work by this amount, so it never drops below the columns. */
    size_t frame = (size_t)frame_h(g) * frame_w(g) * g->in_c;
    return frame > cols ? frame : cols;
}

size_t st_conv2d_forward_workspace_floats(const st_conv2d_geom *g)
{
    return st_winograd_forward_fits(g) ? st_winograd_forward_workspace_floats(g) : other_passes_floats(g);
}

size_t st_conv2d_workspace_floats(const st_conv2d_geom *g)
{
    const size_t forward = st_conv2d_forward_workspace_floats(g), other = other_passes_floats(g);
    return forward > other ? forward : other;
}

/* col[m, (kh, kw, c)] = x[n, oy*s - pad + kh, ox*s - pad + kw, c], zero
 * outside the image. Each (kh, kw) tap is one run of C_in floats. */
static void im2col(const st_conv2d_geom *g, const float *x, float *col)
{
    const size_t cin = (size_t)g->in_c, run = cin * sizeof(float);
    for (int n = 0; n < g->batch; n++) {
        const float *img = x + (size_t)n * g->in_h * g->in_w * cin;
        for (int oy = 0; oy < g->out_h; oy++) {
            int y0 = oy * g->stride_h - g->pad_top;
            for (int ox = 0; ox < g->out_w; ox++) {
                int x0 = ox * g->stride_w - g->pad_left;
                for (int kh = 0; kh < g->k_h; kh++) {
                    int iy = y0 + kh;
                    if (iy < 0 || iy >= g->in_h) {
                        memset(col, 0, run * (size_t)g->k_w);
                        col += cin * (size_t)g->k_w;
                        continue;
                    }
                    const float *row = img + (size_t)iy * g->in_w * cin;
                    for (int kw = 0; kw < g->k_w; kw++, col += cin) {
                        int ix = x0 + kw;
                        if (ix < 0 || ix >= g->in_w)
                            memset(col, 0, run);
                        else
                            memcpy(col, row + (size_t)ix * cin, run);
                    }
                }
            }
        }
    }
}

#define DIRECT_PIXELS ST_TILE_ROWS
#define DIRECT_CHANNELS ST_TILE_COLS

/* Up to 64 output channels: at 128 (the autoencoder's conv3, 5x5 to 2x2
 * outputs) im2col + SGEMM measured as fast or up to 10% faster, also with the
 * channel tiles looped outermost to keep a kernel slice in the cache. */
static bool use_direct(const st_conv2d_geom *g)
{
    return g->out_c % DIRECT_CHANNELS == 0 && g->out_c <= 64 && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}

static bool needs_frame_copy(const st_conv2d_geom *g)
{
    return g->pad_top > 0 || g->pad_left > 0 || frame_h(g) > g->in_h || frame_w(g) > g->in_w;
}

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void copy_frame(const st_conv2d_geom *g, const float *img, float *frame)
{
    const size_t cin = (size_t)g->in_c, fw = (size_t)frame_w(g);
    /* frame columns [0, left) and [left + inside, fw) are padding */
    const int left = clamp(g->pad_left, 0, (int)fw), inside = clamp(g->in_w, 0, (int)fw - left);
    for (int fy = 0; fy < frame_h(g); fy++, frame += fw * cin) {
        int iy = fy - g->pad_top;
        if (iy < 0 || iy >= g->in_h) {
            memset(frame, 0, fw * cin * sizeof *frame);
            continue;
        }
        memset(frame, 0, (size_t)left * cin * sizeof *frame);
        memcpy(frame + (size_t)left * cin, img + (size_t)iy * g->in_w * cin, (size_t)inside * cin * sizeof *frame);
        memset(frame + (size_t)(left + inside) * cin, 0, (fw - (size_t)(left + inside)) * cin * sizeof *frame);
    }
}

/* What one direct tile needs besides its pixels. */
typedef struct direct_args {
    const float *w, *b;
    size_t row;      /* floats between frame rows */
    int run;         /* k_w * C_in: the floats one kernel row reads, contiguous in NHWC */
    int k_h, cout;
    bool relu;
} direct_args;

/* Six output pixels (px: where each one's window starts in the frame) by
 * output channels co0..co0+15: y[r] = b + sum over the window, plus
 * res[r] when res is given, then max(., 0) when relu; rows r >= n_px are
 * computed (on repeated pixels) but not stored. One kernel row of a
 * window is one contiguous run of k_w*C_in floats, so the inner loop has
 * no per-tap setup. */
__attribute__((target("avx2,fma"))) static void direct_tile(const direct_args *a, const float *const *px, int co0,
                                                            float *y, const float *res, int n_px)
{
    const int cout = a->cout, run = a->run;
    const __m256 b0 = a->b ? _mm256_loadu_ps(a->b + co0) : _mm256_setzero_ps();
    const __m256 b1 = a->b ? _mm256_loadu_ps(a->b + co0 + 8) : _mm256_setzero_ps();
    st_tile t = {b0, b0, b0, b0, b0, b0, b1, b1, b1, b1, b1, b1};
    for (int kh = 0; kh < a->k_h; kh++) {
        const size_t off = (size_t)kh * a->row;
        const float *p0 = px[0] + off, *p1 = px[1] + off, *p2 = px[2] + off, *p3 = px[3] + off, *p4 = px[4] + off,
                    *p5 = px[5] + off;
        const float *wk = a->w + (size_t)kh * run * cout + co0;
        for (int j = 0; j < run; j++, wk += cout)
            st_tile_step(&t, _mm256_loadu_ps(wk), _mm256_loadu_ps(wk + 8), p0 + j, p1 + j, p2 + j, p3 + j, p4 + j,
                         p5 + j);
    }
    __m256 out[DIRECT_PIXELS][2];
    st_tile_rows(&t, out);
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < n_px; r++) {
        const size_t at = (size_t)r * cout + co0;
        __m256 lo = out[r][0], hi = out[r][1];
        if (res) {
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(res + at));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(res + at + 8));
        }
        if (a->relu) {
            /* max returns its second operand for NaN, as y > 0 ? y : 0 does */
            lo = _mm256_max_ps(lo, zero);
            hi = _mm256_max_ps(hi, zero);
        }
        _mm256_storeu_ps(y + at, lo);
        _mm256_storeu_ps(y + at + 8, hi);
    }
}

/* Image by image; within an image the output pixels are tiled in raster
 * order, so a tile may span output rows and small images waste no work. */
static void direct_conv(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                        const float *residual, bool relu, float *y, float *workspace)
{
    const bool copy = needs_frame_copy(g);
    const size_t cin = (size_t)g->in_c, in_image = (size_t)g->in_h * g->in_w * cin;
    const size_t row = (copy ? (size_t)frame_w(g) : (size_t)g->in_w) * cin;
    const int pixels = g->out_h * g->out_w;
    const size_t out_image = (size_t)pixels * g->out_c;
    const direct_args a = {w, b, row, g->k_w * g->in_c, g->k_h, g->out_c, relu};
    for (int n = 0; n < g->batch; n++) {
        const float *frame = x + (size_t)n * in_image;
        if (copy) {
            copy_frame(g, frame, workspace);
            frame = workspace;
        }
        float *yn = y + (size_t)n * out_image;
        const float *rn = residual ? residual + (size_t)n * out_image : NULL;
        for (int m0 = 0; m0 < pixels; m0 += DIRECT_PIXELS) {
            const int n_px = pixels - m0 < DIRECT_PIXELS ? pixels - m0 : DIRECT_PIXELS;
            const float *px[DIRECT_PIXELS];
            for (int r = 0; r < DIRECT_PIXELS; r++) {
                const int m = m0 + (r < n_px ? r : n_px - 1), oy = m / g->out_w, ox = m % g->out_w;
                px[r] = frame + (size_t)oy * g->stride_h * row + (size_t)ox * g->stride_w * cin;
            }
            const size_t at = (size_t)m0 * g->out_c;
            for (int co0 = 0; co0 < g->out_c; co0 += DIRECT_CHANNELS)
                direct_tile(&a, px, co0, yn + at, rn ? rn + at : NULL, n_px);
        }
    }
}

/* One GEMM over all images of g: y = im2col(x) w + b (+ residual, ReLU). */
static void gemm_conv(const st_conv2d_geom *g, const float *x, const float *w, const float *b, const float *residual,
                      bool relu, float *y, float *workspace)
{
    const int m = g->batch * g->out_h * g->out_w, k = g->k_h * g->k_w * g->in_c, n = g->out_c;
    const float *a = x;
    if (!is_pointwise(g)) {
        im2col(g, x, workspace);
        a = workspace;
    }
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < m; i++) memcpy(y + (size_t)i * n, b, (size_t)n * sizeof *b);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, w, n, beta, y, n);
    if (!residual && !relu) return;
    const size_t total = (size_t)m * n;
    for (size_t i = 0; i < total; i++) {
        float v = residual ? y[i] + residual[i] : y[i];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

void st_conv2d_forward_fused(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                             const float *residual, bool relu, float *y, float *workspace)
{
    if (st_winograd_forward_fits(g)) {
        st_winograd_forward(g, st_winograd_forward_tile(g), x, w, b, residual, relu, y, workspace);
        return;
    }
    if (use_direct(g)) {
        direct_conv(g, x, w, b, residual, relu, y, workspace);
        return;
    }
    /* im2col + SGEMM over cache-sized chunks of images */
    const int chunk = is_pointwise(g) ? g->batch : st_conv_chunk_images(g);
    const size_t in_image = (size_t)g->in_h * g->in_w * g->in_c, out_image = (size_t)g->out_h * g->out_w * g->out_c;
    for (int n0 = 0; n0 < g->batch; n0 += chunk) {
        st_conv2d_geom c = *g;
        c.batch = g->batch - n0 < chunk ? g->batch - n0 : chunk;
        gemm_conv(&c, x + n0 * in_image, w, b, residual ? residual + n0 * out_image : NULL, relu, y + n0 * out_image,
                  workspace);
    }
}

void st_conv2d_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b, float *y,
                       float *workspace)
{
    st_conv2d_forward_fused(g, x, w, b, NULL, false, y, workspace);
}
