/* Convolution geometries for the convolution tests: a compact case
 * table, the clustering autoencoder's conv1 window, buffer sizes, random
 * buffers, and a note naming the geometry after a failed check. Include
 * after testing.h.
 * (The Winograd path, core/src/conv_winograd.c, takes 5x5 stride 2 and
 * 3x3 stride 1 with 32+ input channels, when in_c % 8 == 0 and
 * out_c % 16 == 0, on AVX2 + FMA; its forward pass also takes 3x3
 * stride 1 with 8 or 16 input channels. Each pass tiles its grid with
 * F(4x4, 3x3) or, where 4x4 tiles would overhang it too far, F(2x2, 3x3);
 * tests/c/test_conv_winograd.c runs both sizes on these cases.) */
#ifndef STRATA_TEST_CONV_CASES_H
#define STRATA_TEST_CONV_CASES_H

#include <stdio.h>
#include <stdlib.h>
#include "strata/conv.h"
#include "strata/rng.h"

/* n uniform floats in [-1, 1) (one allocated when n is 0). */
static inline float *random_floats(st_rng *r, size_t n)
{
    float *b = malloc((n ? n : 1) * sizeof *b);
    for (size_t i = 0; i < n; i++) b[i] = (float)(2.0 * st_rng_uniform(r) - 1.0);
    return b;
}

/* Floats in g's input, output and kernel. */
static inline size_t in_size(const st_conv2d_geom *g) { return (size_t)g->batch * g->in_h * g->in_w * g->in_c; }
static inline size_t out_size(const st_conv2d_geom *g) { return (size_t)g->batch * g->out_h * g->out_w * g->out_c; }
static inline size_t w_size(const st_conv2d_geom *g) { return (size_t)g->k_h * g->k_w * g->in_c * g->out_c; }

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

/* Chunk boundaries inside images. Chunks of the forward and adjoint
 * passes hold CHUNK_FLOATS / points / (K + N) tiles of 4x4 or 2x2 output
 * blocks, the weight gradient's 32768 / (K + N), rounded down to
 * multiples of 6 (K + N = 4 in_c + out_c for 5x5 stride 2, in_c + out_c
 * for 3x3; conv_winograd.c):
 * - 5x5, (8, 16), K + N = 48: 54 tiles of 4x4 and 126 of 2x2, gradient
 *   678; 14 x 14 outputs (13 x 13 input blocks) make 16 tiles of 4x4 or
 *   49 of 2x2 per image, 800 or 2450 in all: every pass splits images;
 * - 5x5, (16, 32), 1 x 2 outputs: one 2x2 tile per image; the gradient's
 *   chunks of 336 take 336 + 1;
 * - 3x3, (32, 16), K + N = 48, 14 x 14: as the first;
 * - 3x3, (16, 16), forward only, K + N = 32: 84 tiles of 4x4, 64 per image.
 * The public calls take 2x2 tiles on the 14 x 14 grids (4x4 would need 73%
 * of their products) and 4x4 on 32 x 32; test_conv_winograd.c runs both. */
static const geom_case winograd_crossing[] = {
    {50, 26, 26, 8, 16, 5, 2, 3}, {337, 2, 3, 16, 32, 5, 2, SAME}, {50, 14, 14, 32, 16, 3, 1, 1},
    {9, 32, 32, 16, 16, 3, 1, SAME}};
enum { WINOGRAD_CROSSING = sizeof winograd_crossing / sizeof winograd_crossing[0] };

/* Case i of winograd_cases followed by winograd_crossing. */
static inline const geom_case *winograd_case(size_t i)
{
    return i < WINOGRAD_CASES ? &winograd_cases[i] : &winograd_crossing[i - WINOGRAD_CASES];
}

/* check(g, r) on every geometry of winograd_cases, then winograd_crossing. */
static inline void each_winograd_geometry(void (*check)(const st_conv2d_geom *g, st_rng *r), st_rng *r)
{
    for (size_t i = 0; i < WINOGRAD_CASES + WINOGRAD_CROSSING; i++) {
        st_conv2d_geom g;
        geom_of(winograd_case(i), &g);
        check(&g, r);
    }
}

/* conv1 of core/src/cae.c onto its window (setup_geometry, 32x32 input):
 * outputs 1..18 of SAME on the input padded to 40x40 read the image from
 * padding 3 on; 18 outputs leave 4 rows of padding after, which
 * st_conv2d_geom_explicit cannot express. K + N = 96: chunks of 24
 * tiles of 4x4; per image 25 tiles forward, 16 adjoint (16 x 16 blocks). */
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
