/* Convolution geometries for the tests of both convolution files: a
 * compact case table, the clustering autoencoder's conv1 window, and a
 * note naming the geometry after a failed check. Include after testing.h.
 * (The Winograd path, core/src/conv_winograd.c, takes 5x5 stride 2 and
 * 3x3 stride 1 with 32+ input channels, when in_c % 8 == 0 and
 * out_c % 16 == 0, on AVX2 + FMA; the forward pass of every 3x3 stride-1
 * case with those channel counts goes to F(4x4, 3x3) instead,
 * core/src/conv_winograd4.c.) */
#ifndef STRATA_TEST_CONV_CASES_H
#define STRATA_TEST_CONV_CASES_H

#include <stdio.h>
#include "strata/conv.h"

enum { SAME = -1 }; /* pad: TensorFlow SAME instead of explicit padding */
typedef struct geom_case {
    int batch, h, w, in_c, out_c, k, stride, pad;
} geom_case;

static inline void geom_of(const geom_case *c, st_conv2d_geom *g)
{
    if (c->pad == SAME)
        CHECK_OK(st_conv2d_geom_same(g, c->batch, c->h, c->w, c->in_c, c->out_c, c->k, c->k, c->stride));
    else
        CHECK_OK(st_conv2d_geom_explicit(g, c->batch, c->h, c->w, c->in_c, c->out_c, c->k, c->k, c->stride, c->pad));
}

/* Geometries of the Winograd path and its edges, for both test files:
 * 5x5 stride 2 with paddings 0..4, odd, even and non-square sizes, inputs
 * smaller than the kernel, the autoencoder's conv1 and conv2, and 3x3
 * stride 1. Chunk boundaries: the autoencoder shapes (100 and 2 x 25
 * tiles) cross the forward and adjoint chunks of 60 and 30 tiles, and
 * 5 x 9 = 45 tiles cross 42 (see the chunk sizes in the tests). */
static const geom_case winograd_cases[] = {
    {2, 9, 7, 8, 16, 5, 2, 0}, {1, 8, 10, 16, 32, 5, 2, 0}, {2, 7, 6, 8, 16, 5, 2, 1},
    {1, 11, 9, 24, 48, 5, 2, 1}, {2, 6, 9, 16, 16, 5, 2, 2}, {1, 10, 7, 24, 32, 5, 2, 2},
    {2, 5, 8, 8, 48, 5, 2, 3}, {1, 9, 12, 16, 32, 5, 2, 3}, {2, 7, 5, 8, 32, 5, 2, 4},
    {1, 6, 6, 24, 16, 5, 2, 4},
    /* inputs smaller than the kernel (the output's reach is mostly padding) */
    {3, 1, 1, 8, 16, 5, 2, 2}, {2, 1, 1, 16, 32, 5, 2, 4}, {2, 2, 3, 8, 16, 5, 2, 2},
    {2, 2, 3, 16, 48, 5, 2, 3}, {2, 3, 5, 8, 16, 5, 2, 1}, {1, 3, 5, 24, 32, 5, 2, 4},
    {2, 1, 1, 8, 16, 5, 2, SAME}, {2, 2, 3, 16, 32, 5, 2, SAME}, {2, 3, 5, 8, 16, 5, 2, SAME},
    {2, 9, 6, 24, 48, 5, 2, SAME}, {1, 8, 8, 8, 16, 5, 2, SAME}, {2, 7, 10, 16, 32, 5, 2, SAME},
    {1, 40, 40, 16, 32, 5, 2, SAME}, {2, 20, 20, 32, 64, 5, 2, SAME}, {5, 9, 10, 24, 48, 5, 2, SAME},
    /* 3x3 stride 1, paddings 0..2, 32 or more input channels; 8, 16 and 24
     * are declined (too short products below 32, and the adjoint's
     * 16-column products need in_c % 16 == 0) */
    {2, 7, 9, 32, 32, 3, 1, 0}, {1, 3, 4, 32, 16, 3, 1, 0}, {2, 6, 5, 48, 32, 3, 1, 1},
    {2, 1, 1, 32, 16, 3, 1, 1}, {2, 2, 3, 32, 16, 3, 1, 2}, {1, 9, 8, 32, 48, 3, 1, 2},
    {2, 5, 6, 32, 16, 3, 1, SAME}, {2, 7, 9, 8, 16, 3, 1, 0}, {2, 1, 1, 16, 16, 3, 1, 1},
    {1, 9, 8, 24, 48, 3, 1, 2},
};
enum { WINOGRAD_CASES = sizeof winograd_cases / sizeof winograd_cases[0] };

/* conv1 of core/src/cae.c onto its window (setup_geometry, 32x32 input):
 * outputs 1..18 of SAME on the input padded to 40x40 read the image from
 * padding 3 on; 18 outputs leave 4 rows of padding after, which
 * st_conv2d_geom_explicit cannot express. */
static inline st_conv2d_geom cae_window(int batch)
{
    return (st_conv2d_geom){batch, 32, 32, 16, 18, 18, 32, 5, 5, 2, 2, 3, 3};
}

/* Names g on stderr when checks failed since the count `failures`. */
static inline void name_geometry_on_failure(const st_conv2d_geom *g, int failures)
{
    if (testing_failures_in_test != failures)
        fprintf(stderr, "  geometry: batch %d, %dx%dx%d -> %dx%dx%d, k %d, stride %d, pad %d,%d\n", g->batch,
                g->in_h, g->in_w, g->in_c, g->out_h, g->out_w, g->out_c, g->k_h, g->stride_h, g->pad_top,
                g->pad_left);
}

#endif
