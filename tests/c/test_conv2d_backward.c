/* Convolution backward and transposed convolution against naive loops
 * written from METHOD.md b.4, the adjoint identity and finite differences. */
#include <stdlib.h>
#include <string.h>
#include "strata/conv.h"
#include "strata/rng.h"
#include "testing.h"
#include "conv_cases.h"

/* Visits every (output position, tap) pair whose input lies inside the
 * image: out[n,oy,ox,co] += in[n, s*oy + kh - pt, s*ox + kw - pl, ci] *
 * w[kh,kw,ci,co]. fn receives flat indices (input, weight, output). */
typedef void (*tap_fn)(void *ctx, size_t xi, size_t wi, size_t yi);
static void naive_taps(const st_conv2d_geom *g, tap_fn fn, void *ctx)
{
    for (int n = 0; n < g->batch; n++)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++)
                for (int kh = 0; kh < g->k_h; kh++)
                    for (int kw = 0; kw < g->k_w; kw++) {
                        int iy = oy * g->stride_h + kh - g->pad_top, ix = ox * g->stride_w + kw - g->pad_left;
                        if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) continue;
                        for (int ci = 0; ci < g->in_c; ci++)
                            for (int co = 0; co < g->out_c; co++)
                                fn(ctx, (((size_t)n * g->in_h + iy) * g->in_w + ix) * g->in_c + ci,
                                   (((size_t)kh * g->k_w + kw) * g->in_c + ci) * g->out_c + co,
                                   (((size_t)n * g->out_h + oy) * g->out_w + ox) * g->out_c + co);
                    }
}

/* Naive gradients of L = <conv(x, w), dy> in double. */
typedef struct {
    const float *x, *w, *dy;
    double *dx, *dw;
} grad_ctx;
static void grad_tap(void *c, size_t xi, size_t wi, size_t yi)
{
    grad_ctx *g = c;
    g->dx[xi] += (double)g->w[wi] * g->dy[yi];
    g->dw[wi] += (double)g->x[xi] * g->dy[yi];
}

/* Naive forward in double. */
typedef struct {
    const float *x, *w;
    double *y;
} fwd_ctx;
static void fwd_tap(void *c, size_t xi, size_t wi, size_t yi)
{
    fwd_ctx *f = c;
    f->y[yi] += (double)f->x[xi] * f->w[wi];
}

/* Allowed error relative to 1 + the largest naive value. Winograd
 * F(4x4, 3x3) rounds more than the direct sums: its weight gradients over
 * 9,800 products (the crossing cases) reach 1.6e-5, four times
 * F(2x2, 3x3)'s; a wrong transform coefficient gives 1e-3 and more. */
#define TOLERANCE 3e-5

static void check_close_buf(const float *got, const double *want, size_t n, double tol, const char *what)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    int bad = 0;
    for (size_t i = 0; i < n && bad < 3; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + scale))) {
            fprintf(stderr, "%s[%zu] = %.7g, naive %.7g\n", what, i, got[i], want[i]);
            bad++;
        }
    CHECK(bad == 0);
}

/* The buffers of one backward check: random inputs x [nx], w and dy [ny];
 * the pass's dx, dw, db (prefilled with noise, so that stale values show)
 * and their naive values in double. */
typedef struct grad_bufs {
    size_t nx, ny, nw, nb;
    float *x, *w, *dy, *dx, *dw, *db, *ws;
    double *ndx, *ndw, *ndb;
} grad_bufs;

static grad_bufs grad_bufs_new(const st_conv2d_geom *g, size_t nx, size_t ny, size_t nb, st_rng *r)
{
    grad_bufs b = {.nx = nx, .ny = ny, .nw = w_size(g), .nb = nb};
    b.x = random_floats(r, nx), b.w = random_floats(r, b.nw), b.dy = random_floats(r, ny);
    b.dx = random_floats(r, nx), b.dw = random_floats(r, b.nw), b.db = random_floats(r, nb);
    b.ws = malloc((st_conv2d_workspace_floats(g) + 1) * sizeof *b.ws);
    b.ndx = calloc(nx, sizeof *b.ndx), b.ndw = calloc(b.nw, sizeof *b.ndw), b.ndb = calloc(nb, sizeof *b.ndb);
    return b;
}

/* db's naive value (sums of dy per channel), the three checks, and free. */
static void grad_bufs_check(grad_bufs *b, const char *dx_name, const char *dw_name, const char *db_name)
{
    for (size_t i = 0; i < b->ny; i++) b->ndb[i % b->nb] += b->dy[i];
    check_close_buf(b->dx, b->ndx, b->nx, TOLERANCE, dx_name);
    check_close_buf(b->dw, b->ndw, b->nw, TOLERANCE, dw_name);
    check_close_buf(b->db, b->ndb, b->nb, TOLERANCE, db_name);
    free(b->x), free(b->w), free(b->dy), free(b->dx), free(b->dw), free(b->db), free(b->ws);
    free(b->ndx), free(b->ndw), free(b->ndb);
}

/* conv backward (dx, dw, db) against the naive loops. */
static void check_conv_backward(const st_conv2d_geom *g, st_rng *r)
{
    grad_bufs b = grad_bufs_new(g, in_size(g), out_size(g), (size_t)g->out_c, r);
    st_conv2d_backward(g, b.x, b.w, b.dy, b.dx, b.dw, b.db, b.ws);
    grad_ctx c = {b.x, b.w, b.dy, b.ndx, b.ndw};
    naive_taps(g, grad_tap, &c);
    grad_bufs_check(&b, "conv dx", "conv dw", "conv db");
}

static void test_conv_backward_matches_naive(void)
{
    st_rng r;
    st_rng_seed(&r, 11);
    st_conv2d_geom g;
    /* TF SAME stride 2 (k 5 and 3), odd sizes, PyTorch style, pointwise. */
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 8, 3, 4, 5, 5, 2));
    CHECK(g.pad_top == 1 && g.pad_left == 1 && g.out_h == 4);
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 3, 6, 10, 2, 5, 3, 3, 2));
    CHECK(g.pad_top == 0 && g.pad_left == 0 && g.out_w == 5);
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 2, 7, 5, 3, 2, 3, 3, 2));
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_explicit(&g, 2, 6, 5, 3, 4, 3, 3, 1, 1));
    check_conv_backward(&g, &r);
    /* One image, few input channels: dx takes the GEMM + col2im fallback. */
    CHECK_OK(st_conv2d_geom_same(&g, 1, 6, 6, 1, 8, 5, 5, 2));
    check_conv_backward(&g, &r);
    /* Padding beyond the kernel's reach: a stride phase would need a
     * negative front padding, so dx takes the col2im form. */
    CHECK_OK(st_conv2d_geom_explicit(&g, 2, 5, 5, 2, 3, 3, 3, 2, 3));
    check_conv_backward(&g, &r);
    /* 16-multiples of channels: the stride phases of dx take the forward
     * convolution's direct kernel where it has one. */
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 8, 16, 32, 5, 5, 2));
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 3, 6, 6, 32, 16, 3, 3, 2));
    check_conv_backward(&g, &r);
    /* Output rows of 16+ pixels and 16-multiples of output channels: the
     * direct weight gradient, its input channels in tiles of 6 with a
     * remainder (16 = 6 + 6 + 4, 7 = 6 + 1), and taps that reach no
     * output row at all (padding 4 with a 3x3 kernel). */
    CHECK_OK(st_conv2d_geom_same(&g, 2, 34, 34, 16, 32, 5, 5, 2));
    CHECK(g.out_w == 17);
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 1, 20, 18, 7, 16, 3, 3, 1));
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_explicit(&g, 1, 3, 30, 2, 16, 3, 3, 1, 4));
    CHECK(g.out_w == 36 && g.out_h == 9);
    check_conv_backward(&g, &r);
    /* The autoencoder's conv3 and conv2 at the 32x32 input: dx by stride
     * phases, each a direct convolution (5x5 and 10x10 phase grids), dw by
     * im2col + SGEMM on 5- and 10-pixel rows; and odd sizes, whose phases
     * differ in size. */
    CHECK_OK(st_conv2d_geom_same(&g, 3, 10, 10, 64, 128, 3, 3, 2));
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 2, 20, 20, 32, 64, 5, 5, 2));
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 3, 9, 7, 16, 32, 5, 5, 2));
    check_conv_backward(&g, &r);
    /* Many images: the chunked GEMMs run over several chunks. */
    CHECK_OK(st_conv2d_geom_same(&g, 40, 12, 12, 8, 8, 5, 5, 2));
    check_conv_backward(&g, &r);
    CHECK_OK(st_conv2d_geom_explicit(&g, 2, 4, 3, 5, 6, 1, 1, 1, 0));
    CHECK(st_conv2d_workspace_floats(&g) == 0);
    check_conv_backward(&g, &r);
    for (int t = 0; t < 4; t++) {
        int k = 1 + (int)st_rng_below(&r, 5), s = 1 + (int)st_rng_below(&r, 3);
        int h = k + (int)st_rng_below(&r, 6), w = k + (int)st_rng_below(&r, 6);
        CHECK_OK(st_conv2d_geom_same(&g, 1 + (int)st_rng_below(&r, 3), h, w, 1 + (int)st_rng_below(&r, 4),
                                     1 + (int)st_rng_below(&r, 4), k, k, s));
        check_conv_backward(&g, &r);
    }
}

/* Conv2DTranspose straight from METHOD b.4: out[o] = b + sum over (i, t)
 * with s*i + t - pb = o of in[i] * w[t], Keras kernel [kh, kw, C_out of
 * the transpose, C_in of the transpose]. */
static void naive_transpose(const st_conv2d_geom *g, const float *x, const float *w, const float *b, double *y)
{
    const int co_t = g->in_c, ci_t = g->out_c; /* channels of the transpose */
    for (size_t i = 0; i < in_size(g); i++) y[i] = b ? b[i % (size_t)co_t] : 0.0;
    for (int n = 0; n < g->batch; n++)
        for (int i = 0; i < g->out_h; i++)
            for (int j = 0; j < g->out_w; j++)
                for (int th = 0; th < g->k_h; th++)
                    for (int tw = 0; tw < g->k_w; tw++) {
                        int oh = g->stride_h * i + th - g->pad_top, ow = g->stride_w * j + tw - g->pad_left;
                        if (oh < 0 || oh >= g->in_h || ow < 0 || ow >= g->in_w) continue;
                        for (int o = 0; o < co_t; o++)
                            for (int c = 0; c < ci_t; c++)
                                y[(((size_t)n * g->in_h + oh) * g->in_w + ow) * co_t + o] +=
                                    (double)x[(((size_t)n * g->out_h + i) * g->out_w + j) * ci_t + c] *
                                    w[(((size_t)th * g->k_w + tw) * co_t + o) * ci_t + c];
                    }
}

/* Conv2DTranspose forward against the METHOD formula; the bias is added
 * after the sum, bit for bit as a separate pass (the same bits with and
 * without the phase form). */
static void check_transpose_forward(const st_conv2d_geom *g, st_rng *r)
{
    float *x = random_floats(r, out_size(g)), *w = random_floats(r, w_size(g)), *b = random_floats(r, (size_t)g->in_c);
    float *y = random_floats(r, in_size(g)), *ws = malloc((st_conv2d_workspace_floats(g) + 1) * sizeof *ws);
    double *ny = calloc(in_size(g), sizeof *ny);
    st_conv2d_transpose_forward(g, x, w, b, y, ws);
    naive_transpose(g, x, w, b, ny);
    check_close_buf(y, ny, in_size(g), TOLERANCE, "convT y");
    float *y0 = malloc(in_size(g) * sizeof *y0);
    st_conv2d_transpose_forward(g, x, w, NULL, y0, ws);
    int differ = 0;
    for (size_t i = 0; i < in_size(g); i++) {
        const float want = y0[i] + b[i % (size_t)g->in_c];
        differ += memcmp(&want, &y[i], sizeof want) != 0;
    }
    CHECK(differ == 0);
    free(x), free(w), free(b), free(y), free(y0), free(ws), free(ny);
}

static void test_transpose_forward_matches_method_formula(void)
{
    st_rng r;
    st_rng_seed(&r, 12);
    st_conv2d_geom g;
    /* Conv2DTranspose(stride 2, SAME) from 4x4 to 8x8 (k 5) and 3x5 to 6x10 (k 3). */
    /* {in_h, in_w, k, in_c, out_c}; {4, 4, 3, 1, 8} has too little
     * workspace for the phase form (the GEMM + col2im fallback runs) and
     * {6, 6, 1, 2, 3} has stride phases without any tap. */
    /* The last four have 16 to 64 output channels: their phases are direct
     * convolutions, here from 128 channels (the autoencoder's deconv3) and
     * onto 3x5 phase grids (15 pixels, not a multiple of the 6-pixel tile). */
    const int cases[][5] = {{8, 8, 5, 3, 2},   {6, 10, 3, 2, 4},   {16, 16, 5, 1, 3}, {2, 2, 3, 2, 2},
                            {4, 4, 3, 1, 8},   {6, 6, 1, 2, 3},    {8, 8, 5, 16, 32}, {6, 6, 3, 64, 16},
                            {10, 10, 3, 64, 128}, {6, 10, 5, 32, 16}};
    for (int t = 0; t < 10; t++) {
        CHECK_OK(st_conv2d_geom_same(&g, 2, cases[t][0], cases[t][1], cases[t][3], cases[t][4], cases[t][2],
                                     cases[t][2], 2));
        CHECK(g.out_h * 2 == g.in_h && g.pad_top == (cases[t][2] - 2) / 2);
        check_transpose_forward(&g, &r);
    }
}

/* <conv(x), y> == <x, convT(y)> with the same kernel and no bias. */
static void test_transpose_is_adjoint(void)
{
    st_rng r;
    st_rng_seed(&r, 13);
    for (int t = 0; t < 6; t++) {
        st_conv2d_geom g;
        int k = 1 + (int)st_rng_below(&r, 5), s = 1 + (int)st_rng_below(&r, 2);
        CHECK_OK(st_conv2d_geom_same(&g, 1 + (int)st_rng_below(&r, 3), k + (int)st_rng_below(&r, 7),
                                     k + (int)st_rng_below(&r, 7), 1 + (int)st_rng_below(&r, 5),
                                     1 + (int)st_rng_below(&r, 5), k, k, s));
        float *x = random_floats(&r, in_size(&g)), *w = random_floats(&r, w_size(&g)), *y = random_floats(&r, out_size(&g));
        float *cx = malloc(out_size(&g) * sizeof *cx), *ty = malloc(in_size(&g) * sizeof *ty);
        float *ws = malloc((st_conv2d_workspace_floats(&g) + 1) * sizeof *ws);
        st_conv2d_forward(&g, x, w, NULL, cx, ws);
        st_conv2d_transpose_forward(&g, y, w, NULL, ty, ws);
        double lhs = 0, rhs = 0, mag = 0;
        for (size_t i = 0; i < out_size(&g); i++) lhs += (double)cx[i] * y[i], mag += fabs((double)cx[i] * y[i]);
        for (size_t i = 0; i < in_size(&g); i++) rhs += (double)x[i] * ty[i];
        CHECK_CLOSE(lhs, rhs, 0, 1e-5 * (1 + mag));
        free(x), free(w), free(y), free(cx), free(ty), free(ws);
    }
}

/* Transposed backward: dx, dw, db of L = <convT(x), dy> against the naive
 * conv loops (dx = conv(dy), dw[t,ci,co] = sum dy[in-pos] x[out-pos]). */
static void check_transpose_backward(const st_conv2d_geom *g, st_rng *r)
{
    grad_bufs b = grad_bufs_new(g, out_size(g), in_size(g), (size_t)g->in_c, r);
    st_conv2d_transpose_backward(g, b.x, b.w, b.dy, b.dx, b.dw, b.db, b.ws);
    fwd_ctx f = {b.dy, b.w, b.ndx};
    naive_taps(g, fwd_tap, &f);
    /* dw: the conv's weight gradient with input dy and output gradient x. */
    double *scratch = calloc(in_size(g), sizeof *scratch);
    grad_ctx c = {b.dy, b.w, b.x, scratch, b.ndw};
    naive_taps(g, grad_tap, &c);
    free(scratch);
    grad_bufs_check(&b, "convT dx", "convT dw", "convT db");
}

static void test_transpose_backward_matches_naive(void)
{
    st_rng r;
    st_rng_seed(&r, 14);
    st_conv2d_geom g;
    /* {in_h, in_w, k, in_c, out_c, stride, batch}; the last one spans
     * several chunks of images. */
    const int cases[][7] = {{8, 8, 5, 3, 2, 2, 2}, {6, 10, 3, 2, 4, 2, 2},   {5, 7, 3, 3, 2, 1, 2},
                            {4, 4, 1, 3, 2, 1, 2}, {12, 12, 5, 8, 8, 2, 40}, {8, 8, 5, 16, 32, 2, 2},
                            {36, 36, 5, 16, 32, 2, 2}, {12, 12, 5, 16, 32, 2, 40}};
    for (int t = 0; t < 8; t++) {
        CHECK_OK(st_conv2d_geom_same(&g, cases[t][6], cases[t][0], cases[t][1], cases[t][3], cases[t][4],
                                     cases[t][2], cases[t][2], cases[t][5]));
        check_transpose_backward(&g, &r);
    }
}

/* Central finite differences of L = <f(x, w, b), dy> in float with a
 * careful step, for a few entries of x, w and b, for both directions. */
static double loss_of(const st_conv2d_geom *g, int transpose, const float *x, const float *w, const float *b,
                      const float *dy, float *out, float *ws)
{
    size_t n = transpose ? in_size(g) : out_size(g);
    if (transpose)
        st_conv2d_transpose_forward(g, x, w, b, out, ws);
    else
        st_conv2d_forward(g, x, w, b, out, ws);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * dy[i];
    return s;
}

static void fd_check(const st_conv2d_geom *g, int transpose, st_rng *r)
{
    size_t nx = transpose ? out_size(g) : in_size(g), ny = transpose ? in_size(g) : out_size(g);
    size_t nb = (size_t)(transpose ? g->in_c : g->out_c);
    float *x = random_floats(r, nx), *w = random_floats(r, w_size(g)), *b = random_floats(r, nb), *dy = random_floats(r, ny);
    float *dx = malloc(nx * sizeof *dx), *dw = malloc(w_size(g) * sizeof *dw), *db = malloc(nb * sizeof *db);
    float *out = malloc(ny * sizeof *out), *ws = malloc((st_conv2d_workspace_floats(g) + 1) * sizeof *ws);
    if (transpose)
        st_conv2d_transpose_backward(g, x, w, dy, dx, dw, db, ws);
    else
        st_conv2d_backward(g, x, w, dy, dx, dw, db, ws);
    float *arrays[3] = {x, w, b}, *grads[3] = {dx, dw, db};
    size_t sizes[3] = {nx, w_size(g), nb};
    const float h = 1e-2f; /* the loss is linear in each entry: the difference is exact up to rounding */
    for (int a = 0; a < 3; a++)
        for (int t = 0; t < 5; t++) {
            size_t i = (size_t)st_rng_below(r, sizes[a]);
            float keep = arrays[a][i];
            arrays[a][i] = keep + h;
            double lp = loss_of(g, transpose, x, w, b, dy, out, ws);
            arrays[a][i] = keep - h;
            double lm = loss_of(g, transpose, x, w, b, dy, out, ws);
            arrays[a][i] = keep;
            CHECK_CLOSE(grads[a][i], (lp - lm) / (2.0 * h), 2e-3, 2e-3);
        }
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db), free(out), free(ws);
}

static void test_finite_differences(void)
{
    st_rng r;
    st_rng_seed(&r, 15);
    st_conv2d_geom g;
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 6, 3, 4, 5, 5, 2));
    fd_check(&g, 0, &r);
    fd_check(&g, 1, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 2, 4, 4, 4, 3, 3, 3, 2));
    fd_check(&g, 0, &r);
    fd_check(&g, 1, &r);
    CHECK_OK(st_conv2d_geom_same(&g, 1, 32, 32, 5, 16, 5, 5, 2)); /* the direct weight gradient */
    fd_check(&g, 0, &r);
    fd_check(&g, 1, &r);
}

/* The convolution's gradients and the transpose's forward and backward
 * passes against the naive loops; a failure names the geometry. */
static void check_all_passes(const st_conv2d_geom *g, st_rng *r)
{
    const int failures = testing_failures_in_test;
    check_conv_backward(g, r);
    check_transpose_forward(g, r);
    check_transpose_backward(g, r);
    name_geometry_on_failure(g, failures);
}

/* The Winograd path's geometries and chunk crossings (conv_cases.h), and
 * the autoencoder's conv1 on two images (50 tiles forward and 32 adjoint,
 * in chunks of 24). */
static void test_winograd_geometries_match_naive(void)
{
    st_rng r;
    st_rng_seed(&r, 17);
    each_winograd_geometry(check_all_passes, &r);
    const st_conv2d_geom window = cae_window(2);
    check_all_passes(&window, &r);
    st_conv2d_geom g;
    CHECK_OK(st_conv2d_geom_explicit(&g, 2, 9, 8, 8, 16, 5, 5, 2, 3));
    fd_check(&g, 0, &r);
    fd_check(&g, 1, &r);
}

/* Optional outputs: NULL gradients are skipped and the others unchanged. */
static void test_optional_gradients(void)
{
    st_rng r;
    st_rng_seed(&r, 16);
    st_conv2d_geom g;
    CHECK_OK(st_conv2d_geom_same(&g, 2, 6, 6, 2, 3, 3, 3, 2));
    float *x = random_floats(&r, in_size(&g)), *w = random_floats(&r, w_size(&g)), *dy = random_floats(&r, out_size(&g));
    float *dw1 = malloc(w_size(&g) * sizeof *dw1), *dw2 = malloc(w_size(&g) * sizeof *dw2);
    float *dx = malloc(in_size(&g) * sizeof *dx), *ws = malloc(st_conv2d_workspace_floats(&g) * sizeof *ws);
    st_conv2d_backward(&g, x, w, dy, dx, dw1, NULL, ws);
    st_conv2d_backward(&g, x, w, dy, NULL, dw2, NULL, ws);
    CHECK(memcmp(dw1, dw2, w_size(&g) * sizeof *dw1) == 0);
    st_conv2d_transpose_backward(&g, dy, w, x, NULL, NULL, NULL, ws);
    free(x), free(w), free(dy), free(dw1), free(dw2), free(dx), free(ws);
}

int main(void)
{
    RUN(test_conv_backward_matches_naive);
    RUN(test_transpose_forward_matches_method_formula);
    RUN(test_transpose_is_adjoint);
    RUN(test_transpose_backward_matches_naive);
    RUN(test_finite_differences);
    RUN(test_winograd_geometries_match_naive);
    RUN(test_optional_gradients);
    return TEST_SUMMARY();
}
