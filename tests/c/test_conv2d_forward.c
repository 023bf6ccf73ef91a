/* Forward convolution and its geometry against a naive direct loop and
 * hand-worked output sizes and paddings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "strata/conv.h"
#include "strata/rng.h"
#include "testing.h"
#include "conv_cases.h"

/* y[n,oy,ox,co] = b[co] + sum x[n, oy*s-pt+kh, ox*s-pl+kw, ci] w[kh,kw,ci,co] */
static void naive_conv(const st_conv2d_geom *g, const float *x, const float *w, const float *b, double *y)
{
    for (int n = 0; n < g->batch; n++)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++)
                for (int co = 0; co < g->out_c; co++) {
                    double s = b ? b[co] : 0.0;
                    for (int kh = 0; kh < g->k_h; kh++)
                        for (int kw = 0; kw < g->k_w; kw++) {
                            int iy = oy * g->stride_h - g->pad_top + kh, ix = ox * g->stride_w - g->pad_left + kw;
                            if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) continue;
                            for (int ci = 0; ci < g->in_c; ci++)
                                s += (double)x[((n * g->in_h + iy) * g->in_w + ix) * g->in_c + ci] *
                                     w[((kh * g->k_w + kw) * g->in_c + ci) * g->out_c + co];
                        }
                    y[((n * g->out_h + oy) * g->out_w + ox) * g->out_c + co] = s;
                }
}

/* Random input, kernel and bias, an output full of garbage (it must be
 * overwritten), a workspace and room for the naive reference. */
typedef struct conv_case {
    st_rng rng;
    size_t ny;
    float *x, *w, *b, *y, *ws;
    double *ref;
} conv_case;

static conv_case make_case(const st_conv2d_geom *g, uint64_t seed)
{
    conv_case c;
    st_rng_seed(&c.rng, seed);
    size_t nx = (size_t)g->batch * g->in_h * g->in_w * g->in_c;
    size_t nw = (size_t)g->k_h * g->k_w * g->in_c * g->out_c;
    c.ny = (size_t)g->batch * g->out_h * g->out_w * g->out_c;
    c.x = random_floats(&c.rng, nx);
    c.w = random_floats(&c.rng, nw);
    c.b = random_floats(&c.rng, (size_t)g->out_c);
    c.y = random_floats(&c.rng, c.ny);
    c.ws = random_floats(&c.rng, st_conv2d_workspace_floats(g));
    c.ref = malloc(c.ny * sizeof *c.ref);
    return c;
}

static void free_case(conv_case *c)
{
    free(c->x), free(c->w), free(c->b), free(c->y), free(c->ws), free(c->ref);
}

/* Rounding allowed beyond 1e-4 (1 + |y|): a fraction of the standard
 * deviation of the sums (k_h k_w in_c products of two U(-1, 1) numbers,
 * variance 1/9 each). Fast algorithms round relative to the terms they
 * add, not to the result: F(4x4, 3x3)'s transforms multiply inputs by up
 * to 5 and products by up to 8 per axis, and its error on a 64-channel
 * 3x3 convolution reaches 3e-5 of that deviation. Index errors are O(1). */
static double slack(const st_conv2d_geom *g) { return 4e-5 * sqrt(g->k_h * g->k_w * g->in_c / 9.0); }

/* st_conv2d_forward_fused(g, x, w, b, res, relu) against the naive sum
 * plus res, then max(., 0); and bit for bit against st_conv2d_forward
 * followed by the separate add and ReLU passes. */
static void check_fused(const st_conv2d_geom *g, int with_res, int relu, uint64_t seed)
{
    conv_case c = make_case(g, seed);
    const size_t ny = c.ny;
    float *x = c.x, *w = c.w, *b = c.b, *y = c.y, *ws = c.ws;
    double *ref = c.ref;
    float *res = random_floats(&c.rng, ny), *sep = random_floats(&c.rng, ny);
    st_conv2d_forward_fused(g, x, w, b, with_res ? res : NULL, relu, y, ws);
    st_conv2d_forward(g, x, w, b, sep, ws);
    naive_conv(g, x, w, b, ref);
    int bad = 0, differ = 0;
    for (size_t i = 0; i < ny; i++) {
        float s = with_res ? sep[i] + res[i] : sep[i];
        s = relu && !(s > 0.0f) ? 0.0f : s;
        double r = ref[i] + (with_res ? res[i] : 0.0);
        r = relu && r < 0 ? 0.0 : r;
        differ += memcmp(&s, &y[i], sizeof s) != 0;
        if (!(fabs(y[i] - r) <= 1e-4 + 1e-4 * fabs(r) + slack(g)) && bad++ < 5)
            fprintf(stderr, "  y[%zu] = %g, naive %g (res %d relu %d)\n", i, y[i], r, with_res, relu);
    }
    CHECK(bad == 0);
    CHECK(differ == 0);
    free(res), free(sep);
    free_case(&c);
}

static void check_against_naive(const st_conv2d_geom *g, int with_bias, uint64_t seed)
{
    conv_case c = make_case(g, seed);
    const size_t ny = c.ny;
    float *x = c.x, *w = c.w, *b = c.b, *y = c.y, *ws = c.ws;
    double *ref = c.ref;
    st_conv2d_forward(g, x, w, with_bias ? b : NULL, y, ws);
    naive_conv(g, x, w, with_bias ? b : NULL, ref);
    int bad = 0;
    for (size_t i = 0; i < ny && bad < 5; i++)
        if (!(fabs(y[i] - ref[i]) <= 1e-4 + 1e-4 * fabs(ref[i]) + slack(g))) {
            fprintf(stderr, "  y[%zu] = %g, naive %g (k %dx%d s %d pad %d,%d)\n", i, y[i], ref[i], g->k_h, g->k_w,
                    g->stride_h, g->pad_top, g->pad_left);
            bad++;
        }
    CHECK(bad == 0);
    free_case(&c);
}

static void test_explicit_geometries_match_naive_loop(void)
{
    struct { int batch, h, w, cin, cout, k, stride, pad; } cases[] = {
        {2, 7, 5, 3, 4, 3, 1, 1},  {3, 8, 8, 5, 6, 3, 2, 1}, {1, 9, 6, 2, 3, 5, 2, 2}, {2, 6, 6, 4, 5, 1, 1, 0},
        {2, 7, 7, 4, 3, 1, 2, 0},  {1, 4, 4, 3, 2, 4, 1, 0}, {2, 3, 3, 1, 1, 3, 1, 2}, {4, 5, 5, 16, 8, 3, 1, 1},
        /* 16..64 output channels: the direct kernel where the CPU has AVX2 (row
         * lengths not multiples of its 6-pixel tile, strides, padding) */
        {2, 7, 9, 3, 16, 3, 1, 1}, {2, 9, 8, 16, 32, 3, 2, 1}, {1, 5, 13, 32, 64, 3, 1, 1}, {2, 6, 6, 8, 16, 1, 2, 0},
        {1, 4, 4, 5, 48, 3, 1, 2}, {1, 3, 3, 2, 80, 3, 1, 1},
        /* the direct kernel's shapes: CIFAR ResNet layers (pixels per image
         * not a multiple of its 6-pixel tile, tiles spanning rows), the
         * autoencoder's 5x5 stride-2 layers, 1x1 stride-2 projections, odd
         * sizes, no padding (input read in place), and strides longer than
         * the kernel with padding (frame columns past the image) */
        {3, 8, 8, 64, 64, 3, 1, 1}, {2, 9, 9, 32, 64, 3, 2, 1}, {2, 11, 7, 3, 16, 3, 1, 1},
        {2, 13, 13, 16, 32, 5, 2, 2}, {1, 9, 11, 64, 32, 5, 2, 2}, {2, 7, 7, 16, 64, 1, 2, 0},
        {2, 7, 9, 16, 16, 3, 1, 0}, {1, 10, 8, 3, 32, 5, 1, 0}, {2, 5, 5, 3, 16, 1, 3, 1},
        {1, 1, 1, 2, 16, 1, 10, 2}, {1, 2, 3, 4, 16, 2, 4, 3},
        /* several images whose pixel counts are not multiples of the 6-pixel
         * tile (25, 9, 35, 9 and 4 per image): padded frames, the input read in
         * place (no padding), a stride longer than the kernel (the workspace
         * is one frame) and an input smaller than the kernel */
        {7, 10, 10, 64, 32, 3, 2, 1}, {5, 6, 6, 32, 64, 3, 2, 1}, {3, 9, 11, 16, 16, 3, 1, 0},
        {3, 5, 5, 3, 16, 1, 3, 1}, {4, 2, 2, 8, 48, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_conv2d_geom g;
        CHECK_OK(st_conv2d_geom_explicit(&g, cases[i].batch, cases[i].h, cases[i].w, cases[i].cin, cases[i].cout,
                                         cases[i].k, cases[i].k, cases[i].stride, cases[i].pad));
        check_against_naive(&g, 1, 10 + i);
        check_against_naive(&g, 0, 20 + i);
    }
}

static void test_same_geometries_match_naive_loop(void)
{
    int sizes[][4] = {{5, 3, 2, 1}, {6, 3, 2, 1}, {7, 7, 2, 3}, {8, 2, 1, 1}, {9, 4, 3, 2}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        st_conv2d_geom g;
        CHECK_OK(st_conv2d_geom_same(&g, 2, sizes[i][0], sizes[i][0] + 1, 3, 4, sizes[i][1], sizes[i][1],
                                     sizes[i][2]));
        check_against_naive(&g, 1, 30 + i);
        CHECK_OK(st_conv2d_geom_same(&g, 2, sizes[i][0], sizes[i][0] + 1, 5, 32, sizes[i][1], sizes[i][1],
                                     sizes[i][2]));
        check_against_naive(&g, 1, 40 + i);
    }
}

static void test_fused_epilogue_matches_separate_passes(void)
{
    struct { int batch, h, w, cin, cout, k, stride, pad; } cases[] = {
        {3, 8, 8, 64, 64, 3, 1, 1}, {2, 11, 9, 16, 32, 3, 2, 1}, {2, 7, 7, 3, 16, 3, 1, 1},
        {1, 9, 9, 32, 64, 5, 2, 2}, {2, 6, 5, 4, 5, 3, 1, 1}, /* the GEMM path (5 output channels) */
        {2, 6, 6, 8, 24, 1, 1, 0}, /* pointwise, GEMM without im2col */
        {3, 5, 5, 16, 32, 3, 1, 1}, {5, 5, 7, 16, 16, 3, 1, 0}, /* several images, padded and in place */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_conv2d_geom g;
        CHECK_OK(st_conv2d_geom_explicit(&g, cases[i].batch, cases[i].h, cases[i].w, cases[i].cin, cases[i].cout,
                                         cases[i].k, cases[i].k, cases[i].stride, cases[i].pad));
        for (int m = 0; m < 4; m++) check_fused(&g, m & 1, m >> 1, 50 + 4 * i + (size_t)m);
    }
    st_conv2d_geom g;
    CHECK_OK(st_conv2d_geom_same(&g, 2, 9, 10, 16, 32, 5, 5, 2));
    check_fused(&g, 1, 1, 99);
}

/* The forward pass without bias against the naive loop, and the fused
 * epilogue in its four modes; a failure names the geometry. */
static void check_forward_passes(const st_conv2d_geom *g, uint64_t seed)
{
    const int failures = testing_failures_in_test;
    check_against_naive(g, 0, seed);
    for (int m = 0; m < 4; m++) check_fused(g, m & 1, m >> 1, seed + 1 + (uint64_t)m);
    name_geometry_on_failure(g, failures);
}

/* The Winograd path's geometries and chunk crossings (conv_cases.h), and
 * the autoencoder's conv1 (25 tiles: 24 + 1). */
static void test_winograd_geometries_match_naive_loop(void)
{
    for (size_t i = 0; i < WINOGRAD_CASES + WINOGRAD_CROSSING; i++) {
        st_conv2d_geom g;
        geom_of(winograd_case(i), &g);
        check_forward_passes(&g, 100 + 8 * i);
    }
    const st_conv2d_geom window = cae_window(1);
    check_forward_passes(&window, 99);
}

/* The ResNet-56 stages' 3x3 convolutions (16, 32 and 64 channels), and
 * output sizes that are not multiples of 4. */
static void test_resnet_geometries_match_naive_loop(void)
{
    const geom_case cases[] = {{2, 32, 32, 16, 16, 3, 1, SAME}, {3, 16, 16, 32, 32, 3, 1, SAME},
                               {3, 8, 8, 64, 64, 3, 1, SAME},   {2, 10, 7, 16, 32, 3, 1, 1},
                               {1, 6, 5, 8, 16, 3, 1, 0},       {2, 3, 2, 8, 16, 3, 1, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_conv2d_geom g;
        geom_of(&cases[i], &g);
        check_forward_passes(&g, 500 + 8 * i);
    }
}

static void test_same_padding_is_asymmetric_as_in_tensorflow(void)
{
    st_conv2d_geom g;
    /* in 5, k 3, s 2: out 3, total pad (3-1)*2+3-5 = 2 -> 1 before, 1 after */
    CHECK_OK(st_conv2d_geom_same(&g, 1, 5, 5, 1, 1, 3, 3, 2));
    CHECK(g.out_h == 3 && g.pad_top == 1 && g.pad_left == 1);
    /* in 6, k 3, s 2: out 3, total pad 1 -> 0 before, 1 after */
    CHECK_OK(st_conv2d_geom_same(&g, 1, 6, 6, 1, 1, 3, 3, 2));
    CHECK(g.out_h == 3 && g.pad_top == 0);
    /* in 224, k 7, s 2 (ResNet stem): out 112, total pad 5 -> 2 before, 3 after */
    CHECK_OK(st_conv2d_geom_same(&g, 1, 224, 224, 3, 64, 7, 7, 2));
    CHECK(g.out_h == 112 && g.pad_top == 2);
    /* in 8, k 2, s 1: out 8, total 1 -> 0 before */
    CHECK_OK(st_conv2d_geom_same(&g, 1, 8, 8, 1, 1, 2, 2, 1));
    CHECK(g.out_h == 8 && g.pad_top == 0);
    /* explicit: (32 + 2 - 3)/2 + 1 = 16 */
    CHECK_OK(st_conv2d_geom_explicit(&g, 1, 32, 32, 16, 32, 3, 3, 2, 1));
    CHECK(g.out_h == 16 && g.out_w == 16 && g.pad_top == 1);
}

static void test_pointwise_needs_no_workspace(void)
{
    st_conv2d_geom g;
    CHECK_OK(st_conv2d_geom_explicit(&g, 2, 4, 4, 8, 16, 1, 1, 1, 0));
    CHECK(st_conv2d_workspace_floats(&g) == 0);
    /* 3 input channels: im2col (8 would take the Winograd path, whose
     * workspace holds transformed tiles instead) */
    CHECK_OK(st_conv2d_geom_explicit(&g, 2, 4, 4, 3, 16, 3, 3, 1, 1));
    CHECK(st_conv2d_workspace_floats(&g) == 2u * 4 * 4 * 9 * 3);
}

static void test_bad_geometry_is_rejected(void)
{
    st_conv2d_geom g;
    CHECK_FAILS(st_conv2d_geom_explicit(&g, 1, 2, 2, 1, 1, 5, 5, 1, 0), ST_EINVAL, "does not fit");
    CHECK_FAILS(st_conv2d_geom_explicit(&g, 1, 8, 8, 1, 1, 3, 3, 0, 1), ST_EINVAL, "stride");
    CHECK_FAILS(st_conv2d_geom_explicit(&g, 0, 8, 8, 1, 1, 3, 3, 1, 1), ST_EINVAL, "positive");
    CHECK_FAILS(st_conv2d_geom_explicit(&g, 1, 8, 8, 1, 1, 3, 3, 1, -1), ST_EINVAL, "padding");
    CHECK_FAILS(st_conv2d_geom_same(&g, 1, 8, 8, 0, 1, 3, 3, 1), ST_EINVAL, "positive");
    CHECK_FAILS(st_conv2d_geom_explicit(&g, 100000, 1000, 1000, 64, 64, 3, 3, 1, 1), ST_EINVAL, "too large");
}

int main(void)
{
    RUN(test_explicit_geometries_match_naive_loop);
    RUN(test_same_geometries_match_naive_loop);
    RUN(test_fused_epilogue_matches_separate_passes);
    RUN(test_winograd_geometries_match_naive_loop);
    RUN(test_resnet_geometries_match_naive_loop);
    RUN(test_same_padding_is_asymmetric_as_in_tensorflow);
    RUN(test_pointwise_needs_no_workspace);
    RUN(test_bad_geometry_is_rejected);
    return TEST_SUMMARY();
}
