/* Weight initialisers (Keras defaults), drawn from an explicit RNG. */
#ifndef STRATA_INIT_H
#define STRATA_INIT_H

#include <stddef.h>
#include "strata/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Glorot (Xavier) uniform: U[-l, l) with l = sqrt(6 / (fan_in + fan_out)).
 * Keras fans: a dense kernel [in, out] has fan_in = in, fan_out = out; a
 * convolution kernel [kh, kw, a, b] has fan_in = kh*kw*a, fan_out =
 * kh*kw*b (also for Conv2DTranspose, whose kernel is [kh, kw, out, in]:
 * the sum, and so the limit, is the same). Fails with ST_EINVAL unless
 * both fans are positive. */
st_status st_init_glorot_uniform(st_rng *rng, float *w, size_t n, int fan_in, int fan_out);

#ifdef __cplusplus
}
#endif
#endif
