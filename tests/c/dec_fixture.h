/* Small clustering problems for the trainer's tests: blob-shaped
 * activations and a configuration that trains on them in milliseconds. */
#ifndef STRATA_TESTS_DEC_FIXTURE_H
#define STRATA_TESTS_DEC_FIXTURE_H

#include <string.h>
#include "strata/dec.h"

#define H 8
#define W 8
#define C 2
#define ROW (H * W * C)
#define NCLASS 3

/* Three well separated blobs: each class has its own random pattern,
 * rows add small noise. Class of row i is i % 3. */
static inline st_tensor *blobs(int64_t n, uint64_t seed)
{
    st_rng rng;
    st_rng_seed(&rng, seed);
    float centre[NCLASS][ROW];
    for (int c = 0; c < NCLASS; c++)
        for (int j = 0; j < ROW; j++) centre[c][j] = (float)(2.0 * st_rng_uniform(&rng));
    const int64_t shape[4] = {n, H, W, C};
    st_tensor *x = NULL;
    if (st_tensor_new(ST_F32, 4, shape, &x) != ST_OK) return NULL;
    float *v = st_f32(x);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < ROW; j++) v[i * ROW + j] = centre[i % NCLASS][j] + (float)(0.1 * st_rng_normal(&rng));
    return x;
}

static inline st_dec_config small_config(void)
{
    st_dec_config c = st_dec_config_default();
    c.name = "blobs";
    c.clusters = 3;
    c.filters[0] = 8;
    c.filters[1] = 8;
    c.filters[2] = 8;
    c.filters[3] = 4;
    c.batch = 16;
    c.epochs = 2;
    c.kmeans_n_init = 3;
    c.maxiter = 25;
    c.update_interval = 10;
    c.tol = 0; /* never stop early unless a test asks */
    c.seed = 7;
    return c;
}

static inline bool same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

#endif
