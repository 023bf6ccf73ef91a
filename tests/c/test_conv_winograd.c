/* The Winograd passes with both tile sizes, F(2x2, 3x3) and F(4x4, 3x3),
 * against each other on every geometry of the Winograd path, and the
 * choice between them. The convolution tests (test_conv2d_forward.c,
 * test_conv2d_backward.c) check the size each geometry picks against
 * naive loops; agreeing with it checks the other. White-box: this test
 * reads the private header. */
#include <stdlib.h>
#include "strata/rng.h"
#include "testing.h"
#include "conv_cases.h"
#include "../../core/src/conv_winograd.h"

/* Largest |a - b| allowed, relative to 1 + max |b|, as in
 * test_conv2d_backward.c. F(4x4, 3x3) rounds more than F(2x2, 3x3); the
 * largest gap measured on these cases is 1.2e-5, a weight gradient
 * summing 9,800 products (a wrong transform coefficient, 2.01 for 2,
 * gives 2e-3 to 7e-3). */
#define TOLERANCE 3e-5

static double worst_gap = 0;

/* a (tile 2) against b (tile 4). */
static void check_agree(const float *a, const float *b, size_t n, const char *pass)
{
    double scale = 0, gap = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) gap = fmax(gap, fabs((double)a[i] - b[i]) / (1.0 + scale));
    if (!(gap <= TOLERANCE)) fprintf(stderr, "%s: tiles 2 and 4 differ by %.3g of the scale\n", pass, gap);
    CHECK(gap <= TOLERANCE);
    if (gap > worst_gap) worst_gap = gap;
}

/* Runs every pass g takes with both tile sizes and compares them. The
 * forward pass carries the whole epilogue (bias, residual, ReLU). */
static void check_both_tiles(const st_conv2d_geom *g, st_rng *r)
{
    const int failures = testing_failures_in_test;
    CHECK(st_winograd_forward_fits(g));
    const size_t nx = in_size(g), ny = out_size(g), nw = w_size(g);
    float *x = random_floats(r, nx), *w = random_floats(r, nw), *y = random_floats(r, ny);
    float *b_out = random_floats(r, (size_t)g->out_c), *b_in = random_floats(r, (size_t)g->in_c);
    float *out[2] = {malloc(ny * sizeof(float)), malloc(ny * sizeof(float))};
    float *back[2] = {malloc(nx * sizeof(float)), malloc(nx * sizeof(float))};
    float *dw[2] = {malloc(nw * sizeof(float)), malloc(nw * sizeof(float))};
    float *ws = malloc(st_winograd_workspace_floats(g) * sizeof *ws);
    const bool all_passes = st_winograd_fits(g);
    for (int i = 0; i < 2; i++) {
        const int m = 2 + 2 * i;
        st_winograd_forward(g, m, x, w, b_out, y, true, out[i], ws);
        if (!all_passes) continue;
        st_winograd_adjoint(g, m, y, w, b_in, back[i], ws);
        st_winograd_weight_grad(g, m, x, y, dw[i], ws);
    }
    check_agree(out[0], out[1], ny, "forward");
    if (all_passes) {
        check_agree(back[0], back[1], nx, "adjoint");
        check_agree(dw[0], dw[1], nw, "weight gradient");
    }
    name_geometry_on_failure(g, failures);
    free(x), free(w), free(y), free(b_out), free(b_in), free(ws);
    for (int i = 0; i < 2; i++) free(out[i]), free(back[i]), free(dw[i]);
}

/* Every geometry of the Winograd path, with chunk boundaries inside
 * images at both tile sizes (conv_cases.h), and the autoencoder's conv1. */
static void test_both_tile_sizes_agree(void)
{
    st_rng r;
    st_rng_seed(&r, 21);
    each_winograd_geometry(check_both_tiles, &r);
    const st_conv2d_geom window = cae_window(3);
    check_both_tiles(&window, &r);
    fprintf(stderr, "  largest gap between the tile sizes: %.3g of the scale\n", worst_gap);
}

/* 4x4 tiles when they need at most 70% of the products of 2x2 ones,
 * overhang counted: 36 per 16 outputs against 16 per 4. */
static void test_tile_choice(void)
{
    CHECK(st_winograd_tile(32, 32) == 4); /* 56% */
    CHECK(st_winograd_tile(18, 18) == 4); /* 25 tiles of 16 for 324 outputs: 2.78 products each, against 4 */
    CHECK(st_winograd_tile(3, 3) == 4);   /* 4 against 7.1 */
    CHECK(st_winograd_tile(10, 10) == 2); /* 3.24 against 4 */
    CHECK(st_winograd_tile(6, 6) == 2);   /* 4 against 4 */
    CHECK(st_winograd_tile(2, 2) == 2);
    CHECK(st_winograd_tile(1, 1) == 2);
    CHECK(st_winograd_tile(2, 40) == 2); /* one row of 4x4 tiles is half overhang */
    st_conv2d_geom g = cae_window(1);
    CHECK(st_winograd_forward_tile(&g) == 4);
    /* its adjoint tiles the 16 x 16 blocks of the 32 x 32 input */
    CHECK(st_winograd_adjoint_tile(&g) == 4);
}

/* 3x3 stride 1 with 8 or 16 input channels: the forward pass only. */
static void test_forward_only_geometries(void)
{
    st_conv2d_geom g;
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 8, 16, 16, 3, 3, 1));
    CHECK(st_winograd_forward_fits(&g) && !st_winograd_fits(&g));
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 8, 32, 16, 3, 3, 1));
    CHECK(st_winograd_forward_fits(&g) && st_winograd_fits(&g));
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 8, 12, 16, 3, 3, 1));
    CHECK(!st_winograd_forward_fits(&g));
    CHECK_OK(st_conv2d_geom_same(&g, 2, 8, 8, 16, 16, 3, 3, 2));
    CHECK(!st_winograd_forward_fits(&g));
}

int main(void)
{
    RUN(test_both_tile_sizes_agree);
    RUN(test_tile_choice);
    RUN(test_forward_only_geometries);
    return TEST_SUMMARY();
}
