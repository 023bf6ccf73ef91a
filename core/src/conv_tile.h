/* The 6 x 16 register tile of the direct AVX2 convolution kernels, shared
 * by the forward kernel (6 output pixels x 16 output channels, conv2d.c)
 * and the weight gradient (6 input channels x 16 output channels,
 * conv2d_backward.c). Not public API.
 *
 * The twelve accumulators are named fields, not an array, so that once
 * the always-inline helpers are inlined the compiler keeps every one in
 * a register (with an array indexed at run time it may not). */
#ifndef STRATA_CONV_TILE_H
#define STRATA_CONV_TILE_H

#include <immintrin.h>

#define ST_TILE_ROWS 6
#define ST_TILE_COLS 16

#define ST_TILE_FN static inline __attribute__((always_inline, target("avx2,fma")))

/* Row r holds columns 0..7 in a<r> and 8..15 in c<r>. */
typedef struct st_tile {
    __m256 a0, a1, a2, a3, a4, a5, c0, c1, c2, c3, c4, c5;
} st_tile;

/* One row: (lo | hi) += s * (w0 | w1), s the float at p. */
ST_TILE_FN void st_tile_row(__m256 *lo, __m256 *hi, __m256 w0, __m256 w1, const float *p)
{
    const __m256 v = _mm256_broadcast_ss(p);
    *lo = _mm256_fmadd_ps(v, w0, *lo);
    *hi = _mm256_fmadd_ps(v, w1, *hi);
}

/* Row r += s_r * (w0 | w1), where s_r is the float at p<r>. */
ST_TILE_FN void st_tile_step(st_tile *t, __m256 w0, __m256 w1, const float *p0, const float *p1, const float *p2,
                             const float *p3, const float *p4, const float *p5)
{
    st_tile_row(&t->a0, &t->c0, w0, w1, p0);
    st_tile_row(&t->a1, &t->c1, w0, w1, p1);
    st_tile_row(&t->a2, &t->c2, w0, w1, p2);
    st_tile_row(&t->a3, &t->c3, w0, w1, p3);
    st_tile_row(&t->a4, &t->c4, w0, w1, p4);
    st_tile_row(&t->a5, &t->c5, w0, w1, p5);
}

/* The rows as an array (for stores that stop after a run-time count). */
ST_TILE_FN void st_tile_rows(const st_tile *t, __m256 out[ST_TILE_ROWS][2])
{
    out[0][0] = t->a0, out[0][1] = t->c0, out[1][0] = t->a1, out[1][1] = t->c1;
    out[2][0] = t->a2, out[2][1] = t->c2, out[3][0] = t->a3, out[3][1] = t->c3;
    out[4][0] = t->a4, out[4][1] = t->c4, out[5][0] = t->a5, out[5][1] = t->c5;
}

#endif
