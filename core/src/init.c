/* Weight initialisers (see init.h). */
#include "strata/init.h"

#include <math.h>

st_status st_init_glorot_uniform(st_rng *rng, float *w, size_t n, int fan_in, int fan_out)
{
    if (fan_in <= 0 || fan_out <= 0)
        return st_fail(ST_EINVAL, "glorot uniform: fans %d and %d must be positive", fan_in, fan_out);
    const double limit = sqrt(6.0 / ((double)fan_in + fan_out));
    for (size_t i = 0; i < n; i++) w[i] = (float)(limit * (2.0 * st_rng_uniform(rng) - 1.0));
    return ST_OK;
}
