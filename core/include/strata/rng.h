/* Explicit random number generators (xoshiro256**, seeded by SplitMix64).
 *
 * There is no global random state in libstrata: every routine that needs
 * randomness takes an st_rng. Streams are reproducible across platforms for
 * the integer and uniform draws; normal draws use the polar Box-Muller
 * method with libm's log/sqrt. */
#ifndef STRATA_RNG_H
#define STRATA_RNG_H

#include <stdint.h>
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_rng {
    uint64_t s[4];
    double spare_normal; /* second value of the last Box-Muller pair */
    int has_spare;
} st_rng;

/* Seeds the generator; the same seed always gives the same stream. */
void st_rng_seed(st_rng *rng, uint64_t seed);
uint64_t st_rng_next_u64(st_rng *rng);
/* Uniform in [0, 1) with 53 (double) or 24 (float) random bits. */
double st_rng_uniform(st_rng *rng);
float st_rng_uniform_f32(st_rng *rng);
/* Unbiased integer in [0, n) (n > 0), by rejection. */
uint64_t st_rng_below(st_rng *rng, uint64_t n);
/* Standard normal. */
double st_rng_normal(st_rng *rng);
/* idx[0..n) becomes a uniformly random permutation of 0..n-1. */
void st_rng_permutation(st_rng *rng, int64_t *idx, int64_t n);
/* k distinct values from 0..n-1 in random order (k <= n). */
st_status st_rng_sample(st_rng *rng, int64_t n, int64_t k, int64_t *out);
/* Fills a tensor (f32 or f64) with U[lo, hi) or N(mean, std). */
st_status st_rng_fill_uniform(st_rng *rng, st_tensor *t, double lo, double hi);
st_status st_rng_fill_normal(st_rng *rng, st_tensor *t, double mean, double std);

#ifdef __cplusplus
}
#endif
#endif
