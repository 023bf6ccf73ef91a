/* How many images one im2col + SGEMM step of the convolutions takes
 * (private to conv2d.c and conv2d_backward.c). */
#ifndef STRATA_CONV_CHUNK_H
#define STRATA_CONV_CHUNK_H

#include <stddef.h>
#include "strata/conv.h"

/* Target size of one chunk's im2col matrix (floats): about 640 KB, so that
 * it stays in the L2 cache; on the autoencoder's shapes OpenBLAS runs such
 * GEMMs about twice as fast as one batch-wide GEMM. */
#define ST_CONV_CHUNK_FLOATS (160 * 1024)

/* Images per chunk (at least 1, at most the batch). */
static inline int st_conv_chunk_images(const st_conv2d_geom *g)
{
    size_t per = (size_t)g->out_h * g->out_w * g->k_h * g->k_w * g->in_c;
    size_t n = per ? ST_CONV_CHUNK_FLOATS / per : (size_t)g->batch;
    if (n < 1) n = 1;
    return n < (size_t)g->batch ? (int)n : g->batch;
}

#endif
