/* Gradients of the NHWC convolution and the transposed convolution (the
 * convolution's exact adjoint), see conv.h.
 *
 * With col = im2col(x) [M, K] (M = batch*out_h*out_w, K = k_h*k_w*C_in)
 * and the HWIO kernel as the [K, C_out] matrix W, the convolution is
 * y = col W. So
 *   dW = col^T dy,      dx = adjoint(dy),
 * and the transposed convolution (x [M, C_out] -> y in the input space) is
 *   y = adjoint(x),     dx = im2col(dy) W,   dW = im2col(dy)^T x,
 * where adjoint(v) = col2im(v W^T) is the transposed convolution proper.
 *
 * Speed: GEMMs are run over chunks of a few images whose im2col matrix
 * fits in the L2 cache (on the CAE's shapes that doubles the GEMM rate
 * compared with one batch-wide GEMM). The adjoint is computed without
 * col2im, by splitting the output into its stride phases: output rows
 * y = a*s + p only receive taps kh = r + j*s (r = (p + pad) mod s), so
 * each phase is an ordinary stride-1 convolution of v with a sub-kernel
 * (st_conv2d_forward, with whatever fast path it has), written to the
 * phase grid and scattered into place, instead of a GEMM with inner
 * dimension C_out followed by a scatter-add. When the workspace is too
 * small for that (tiny batches with many channels), the
 * adjoint falls back to the plain GEMM + col2im form. */
#include "strata/conv.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>
#include "conv_chunk.h"
#include "conv_tile.h"
#include "conv_winograd.h"
#include "vec_f32.h"

static int is_pointwise(const st_conv2d_geom *g)
{
    return g->k_h == 1 && g->k_w == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

static size_t in_image(const st_conv2d_geom *g) { return (size_t)g->in_h * g->in_w * g->in_c; }
static size_t out_image(const st_conv2d_geom *g) { return (size_t)g->out_h * g->out_w * g->out_c; }

/* col[r, (kh, kw, c)] = x[n, oy*s - pad_top + kh, ox*s - pad_left + kw, c]
 * for the rows r = (n, oy, ox) of `images` images; zero in the padding. */
static void im2col(const st_conv2d_geom *g, int images, const float *x, float *col)
{
    const size_t cin = (size_t)g->in_c, run = cin * sizeof(float);
    for (int n = 0; n < images; n++) {
        const float *img = x + (size_t)n * in_image(g);
        for (int oy = 0; oy < g->out_h; oy++) {
            const int y0 = oy * g->stride_h - g->pad_top;
            for (int ox = 0; ox < g->out_w; ox++) {
                const int x0 = ox * g->stride_w - g->pad_left;
                const int inside = x0 >= 0 && x0 + g->k_w <= g->in_w;
                for (int kh = 0; kh < g->k_h; kh++) {
                    const int iy = y0 + kh;
                    if (inside && iy >= 0 && iy < g->in_h) { /* one run for the whole kernel row */
                        memcpy(col, img + ((size_t)iy * g->in_w + x0) * cin, run * (size_t)g->k_w);
                        col += cin * (size_t)g->k_w;
                        continue;
                    }
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
    memset(x, 0, (size_t)g->batch * in_image(g) * sizeof *x);
    for (int n = 0; n < g->batch; n++) {
        float *img = x + (size_t)n * in_image(g);
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

/* ---- the adjoint by stride phases ---- */

/* One dimension of a phase: output index y = a*s + p (a < count) takes
 * the taps k = r + j*s (j < taps) from source index a + q - j. */
typedef struct {
    int count, taps, r, q;
} phase_dim;

static phase_dim phase_of(int p, int s, int pad, int k, int n_out)
{
    phase_dim d;
    d.count = p < n_out ? (n_out - p + s - 1) / s : 0;
    d.r = (p + pad) % s;
    d.q = (p + pad) / s;
    d.taps = d.r < k ? (k - d.r + s - 1) / s : 0;
    return d;
}

/* Phase (py, px) as a stride-1 convolution of the source (g's output
 * space) onto the phase grid, with the sub-kernel's taps in reverse
 * order: output a reads source rows a - pad .. a - pad + taps - 1 =
 * a + q - (taps - 1) .. a + q. False when the phase is empty or has no
 * taps; *ok becomes false when its front padding would be negative. */
static bool phase_geom(const st_conv2d_geom *g, int py, int px, int batch, st_conv2d_geom *pg, bool *ok)
{
    const phase_dim dh = phase_of(py, g->stride_h, g->pad_top, g->k_h, g->in_h);
    const phase_dim dw = phase_of(px, g->stride_w, g->pad_left, g->k_w, g->in_w);
    if (!dh.count || !dw.count || !dh.taps || !dw.taps) return false;
    *pg = (st_conv2d_geom){batch,    g->out_h, g->out_w, g->out_c, dh.count,           dw.count,           g->in_c,
                           dh.taps,  dw.taps,  1,        1,        dh.taps - 1 - dh.q, dw.taps - 1 - dw.q};
    if (pg->pad_top < 0 || pg->pad_left < 0) *ok = false;
    return true;
}

/* Whether every phase's convolution fits the workspace for `images`
 * images: sub-kernel + phase output + the convolution's own workspace. */
static bool phases_fit(const st_conv2d_geom *g, int images, size_t have)
{
    bool ok = true;
    for (int py = 0; py < g->stride_h; py++)
        for (int px = 0; px < g->stride_w; px++) {
            st_conv2d_geom pg;
            if (!phase_geom(g, py, px, images, &pg, &ok)) continue;
            size_t need = (size_t)pg.k_h * pg.k_w * pg.in_c * pg.out_c +
                          (size_t)images * pg.out_h * pg.out_w * pg.out_c + st_conv2d_workspace_floats(&pg);
            if (need > have) ok = false;
        }
    return ok;
}

/* dst [N, in_h, in_w, in_c] = adjoint(src [N, out_h, out_w, out_c]) + b,
 * phase by phase, each a forward convolution over chunks of images. */
static void adjoint_phases(const st_conv2d_geom *g, const float *src, const float *w, const float *b, float *dst,
                           float *ws, int chunk)
{
    const int sh = g->stride_h, sw = g->stride_w;
    const size_t cs = (size_t)g->out_c, cd = (size_t)g->in_c;
    for (int py = 0; py < sh; py++)
        for (int px = 0; px < sw; px++) {
            const phase_dim dh = phase_of(py, sh, g->pad_top, g->k_h, g->in_h);
            const phase_dim dw = phase_of(px, sw, g->pad_left, g->k_w, g->in_w);
            bool ok = true;
            st_conv2d_geom pg;
            const bool has_taps = phase_geom(g, py, px, chunk, &pg, &ok);
            float *wp = ws, *out = NULL, *cws = NULL;
            if (has_taps) {
                /* HWIO sub-kernel: wp[v, u, c_out, c_in] = w[r + (taps-1-v) s, ..., c_in, c_out]. */
                for (int v = 0; v < dh.taps; v++)
                    for (int u = 0; u < dw.taps; u++) {
                        const int kh = dh.r + (dh.taps - 1 - v) * sh, kw = dw.r + (dw.taps - 1 - u) * sw;
                        const float *wt = w + ((size_t)kh * g->k_w + kw) * cd * cs;
                        float *dstw = wp + ((size_t)v * dw.taps + u) * cs * cd;
                        for (size_t i = 0; i < cd; i++)
                            for (size_t o = 0; o < cs; o++) dstw[o * cd + i] = wt[i * cs + o];
                    }
                out = wp + (size_t)dh.taps * dw.taps * cs * cd;
                cws = out + (size_t)chunk * dh.count * dw.count * cd;
            }
            for (int n0 = 0; n0 < g->batch; n0 += chunk) {
                const int images = g->batch - n0 < chunk ? g->batch - n0 : chunk;
                if (has_taps) {
                    pg.batch = images;
                    st_conv2d_forward(&pg, src + (size_t)n0 * out_image(g), wp, NULL, out, cws);
                }
                /* Scatter the phase grid into place, adding the bias. */
                const float *o = out;
                for (int n = n0; n < n0 + images; n++)
                    for (int a = 0; a < dh.count; a++)
                        for (int bb = 0; bb < dw.count; bb++) {
                            float *d = dst + (size_t)n * in_image(g) +
                                       ((size_t)(a * sh + py) * g->in_w + (size_t)(bb * sw + px)) * cd;
                            if (!o)
                                for (size_t i = 0; i < cd; i++) d[i] = b ? b[i] : 0.0f;
                            else if (b)
                                st_vec_add_f32(cd, o, b, d);
                            else
                                memcpy(d, o, cd * sizeof *d);
                            if (o) o += cd;
                        }
            }
        }
}

/* dst = adjoint(src) (+ b), by phases when the workspace allows. */
static void adjoint(const st_conv2d_geom *g, const float *src, const float *w, const float *b, float *dst, float *ws)
{
    if (st_winograd_fits(g)) {
        st_winograd_adjoint(g, st_winograd_adjoint_tile(g), src, w, b, dst, ws);
        return;
    }
    const int m = g->batch * g->out_h * g->out_w, k = g->k_h * g->k_w * g->in_c, n = g->out_c;
    if (is_pointwise(g)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0f, src, n, w, n, 0.0f, dst, k);
    } else {
        const size_t have = st_conv2d_workspace_floats(g);
        int chunk = st_conv_chunk_images(g);
        while (chunk > 1 && !phases_fit(g, chunk, have)) chunk /= 2;
        if (phases_fit(g, chunk, have)) {
            adjoint_phases(g, src, w, b, dst, ws, chunk);
            return;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0f, src, n, w, n, 0.0f, ws, k);
        col2im(g, ws, dst);
    }
    if (b) {
        const size_t pixels = (size_t)g->batch * g->in_h * g->in_w, c = (size_t)g->in_c;
        for (size_t p = 0; p < pixels; p++)
            for (size_t j = 0; j < c; j++) dst[p * c + j] += b[j];
    }
}

/* ---- weight gradients and the transposed backward, chunked ---- */

/* db[c] = sum over rows of d [rows, c], row by row (the same order, and
 * bits, with or without AVX). */
static void channel_sums(size_t rows, int c, const float *d, float *db)
{
    memset(db, 0, (size_t)c * sizeof *db);
    for (size_t r = 0; r < rows; r++) st_vec_add_f32((size_t)c, db, d + r * (size_t)c, db);
}

/* ---- the direct weight gradient ----
 *
 * dw[kh, kw, ci, co] = sum over (n, oy, ox) of a[n, iy, ix, ci] e[n, oy,
 * ox, co] with iy = oy*s - pad_top + kh. A register tile holds 6 input
 * channels x 16 output channels of one tap, and walks the output pixels
 * whose input lies inside the image (a contiguous range of oy and of ox
 * per tap): per pixel two vector loads of e, six broadcasts of a, twelve
 * FMAs, no im2col and no packing. The pixels are walked a block of
 * images at a time, every tile of every tap over the same block, so the
 * block stays in the cache; the tiles add into dw. */

#define WG_CI ST_TILE_ROWS
#define WG_CO ST_TILE_COLS
/* Bytes of activations (a and e) per block of images. */
#define WG_BLOCK_BYTES (32 * 1024)

/* Measured on the CAE's layers (batch 32, one core): 54 GFLOP/s against
 * 41 for im2col + SGEMM on 18-pixel output rows (conv1 at 32x32), but
 * 45 against 53 on 10-pixel rows and 40 against 67 on 5-pixel rows,
 * where the per-row and per-tile overheads dominate: short rows keep
 * the GEMM. */
#define WG_MIN_ROW 16

static bool use_direct_wgrad(const st_conv2d_geom *g)
{
    return g->out_c % WG_CO == 0 && g->out_w >= WG_MIN_ROW && !is_pointwise(g) && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}

/* First and one-past-last output index whose input o*s - pad + k lies in
 * [0, n_in), clipped to [0, n_out). */
static void tap_range(int k, int s, int pad, int n_in, int n_out, int *lo, int *hi)
{
    int l = pad - k > 0 ? (pad - k + s - 1) / s : 0;
    int h = n_in - 1 + pad - k >= 0 ? (n_in - 1 + pad - k) / s + 1 : 0;
    *lo = l;
    *hi = h < n_out ? h : n_out;
}

/* One tile over `images` images: the 6 x 16 block of dw at (tap, ci0,
 * co0) (rows past in_c are computed from a repeated channel and not
 * stored). a and e point at the block's first image. */
__attribute__((target("avx2,fma"))) static void wgrad_tile(const st_conv2d_geom *g, int images, const float *a,
                                                           const float *e, int kh, int kw, int ci0, int co0,
                                                           float *dw)
{
    const int cin = g->in_c, cout = g->out_c, nci = cin - ci0 < WG_CI ? cin - ci0 : WG_CI;
    int oy0, oy1, ox0, ox1;
    tap_range(kh, g->stride_h, g->pad_top, g->in_h, g->out_h, &oy0, &oy1);
    tap_range(kw, g->stride_w, g->pad_left, g->in_w, g->out_w, &ox0, &ox1);
    float *d = dw + ((size_t)(kh * g->k_w + kw) * cin + ci0) * cout + co0;
    /* Tile row r is input channel ci0 + o<r>; rows past nci repeat the last channel. */
    const int o1 = nci > 1 ? 1 : nci - 1, o2 = nci > 2 ? 2 : nci - 1, o3 = nci > 3 ? 3 : nci - 1,
              o4 = nci > 4 ? 4 : nci - 1, o5 = nci > 5 ? 5 : nci - 1;
    const float *d1 = d + (size_t)o1 * cout, *d2 = d + (size_t)o2 * cout, *d3 = d + (size_t)o3 * cout,
                *d4 = d + (size_t)o4 * cout, *d5 = d + (size_t)o5 * cout;
    st_tile t = {_mm256_loadu_ps(d),      _mm256_loadu_ps(d1),     _mm256_loadu_ps(d2),     _mm256_loadu_ps(d3),
                 _mm256_loadu_ps(d4),     _mm256_loadu_ps(d5),     _mm256_loadu_ps(d + 8),  _mm256_loadu_ps(d1 + 8),
                 _mm256_loadu_ps(d2 + 8), _mm256_loadu_ps(d3 + 8), _mm256_loadu_ps(d4 + 8), _mm256_loadu_ps(d5 + 8)};
    const size_t xs = (size_t)g->stride_w * cin, in_img = in_image(g), out_img = out_image(g);
    for (int n = 0; n < images; n++)
        for (int oy = oy0; oy < oy1; oy++) {
            const int iy = oy * g->stride_h - g->pad_top + kh, ix = ox0 * g->stride_w - g->pad_left + kw;
            const float *x = a + n * in_img + ((size_t)iy * g->in_w + ix) * cin + ci0;
            const float *y = e + n * out_img + ((size_t)oy * g->out_w + ox0) * cout + co0;
            for (int ox = ox0; ox < ox1; ox++, x += xs, y += cout)
                st_tile_step(&t, _mm256_loadu_ps(y), _mm256_loadu_ps(y + 8), x, x + o1, x + o2, x + o3, x + o4,
                             x + o5);
        }
    /* Rows past nci repeat the last channel: only the first nci are stored. */
    __m256 out[WG_CI][2];
    st_tile_rows(&t, out);
    for (int r = 0; r < nci; r++) {
        _mm256_storeu_ps(d + (size_t)r * cout, out[r][0]);
        _mm256_storeu_ps(d + (size_t)r * cout + 8, out[r][1]);
    }
}

static void weight_grad_direct(const st_conv2d_geom *g, const float *a, const float *e, float *dw)
{
    memset(dw, 0, (size_t)g->k_h * g->k_w * g->in_c * g->out_c * sizeof *dw);
    const size_t per = (in_image(g) + out_image(g)) * sizeof(float);
    const int block = per >= WG_BLOCK_BYTES ? 1 : (int)(WG_BLOCK_BYTES / per);
    for (int n0 = 0; n0 < g->batch; n0 += block) {
        const int images = g->batch - n0 < block ? g->batch - n0 : block;
        const float *an = a + (size_t)n0 * in_image(g), *en = e + (size_t)n0 * out_image(g);
        for (int kh = 0; kh < g->k_h; kh++)
            for (int kw = 0; kw < g->k_w; kw++)
                for (int ci0 = 0; ci0 < g->in_c; ci0 += WG_CI)
                    for (int co0 = 0; co0 < g->out_c; co0 += WG_CO)
                        wgrad_tile(g, images, an, en, kh, kw, ci0, co0, dw);
    }
}

/* dw = im2col(a)^T e [K, C_out] over chunks of images; a lives in the
 * input space of g, e in its output space. */
static void weight_grad(const st_conv2d_geom *g, const float *a, const float *e, float *dw, float *ws)
{
    if (st_winograd_fits(g)) {
        st_winograd_weight_grad(g, st_winograd_forward_tile(g), a, e, dw, ws);
        return;
    }
    if (use_direct_wgrad(g)) {
        weight_grad_direct(g, a, e, dw);
        return;
    }
    const int k = g->k_h * g->k_w * g->in_c, n = g->out_c, rows_img = g->out_h * g->out_w;
    const int pointwise = is_pointwise(g), chunk = pointwise ? g->batch : st_conv_chunk_images(g);
    for (int n0 = 0; n0 < g->batch; n0 += chunk) {
        const int images = g->batch - n0 < chunk ? g->batch - n0 : chunk, rows = images * rows_img;
        const float *col = a + (size_t)n0 * in_image(g);
        if (!pointwise) {
            im2col(g, images, col, ws);
            col = ws;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, rows, 1.0f, col, k, e + (size_t)n0 * out_image(g),
                    n, n0 ? 1.0f : 0.0f, dw, n);
    }
}

void st_conv2d_backward(const st_conv2d_geom *g, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db, float *workspace)
{
    if (db) channel_sums((size_t)g->batch * g->out_h * g->out_w, g->out_c, dy, db);
    if (dw) weight_grad(g, x, dy, dw, workspace);
    if (dx) adjoint(g, dy, w, NULL, dx, workspace);
}

void st_conv2d_transpose_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b, float *y,
                                 float *workspace)
{
    adjoint(g, x, w, b, y, workspace);
}

void st_conv2d_transpose_backward(const st_conv2d_geom *g, const float *x, const float *w, const float *dy,
                                  float *dx, float *dw, float *db, float *workspace)
{
    if (db) channel_sums((size_t)g->batch * g->in_h * g->in_w, g->in_c, dy, db);
    if (dw) weight_grad(g, dy, x, dw, workspace);
    if (dx) st_conv2d_forward(g, dy, w, NULL, dx, workspace);
}
