/* xoshiro256** generator and the draws built on it (see rng.h). */
#include "strata/rng.h"

#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void st_rng_seed(st_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
    rng->has_spare = 0;
    rng->spare_normal = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t st_rng_next_u64(st_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double st_rng_uniform(st_rng *rng) { return (double)(st_rng_next_u64(rng) >> 11) * 0x1.0p-53; }

float st_rng_uniform_f32(st_rng *rng) { return (float)(st_rng_next_u64(rng) >> 40) * 0x1.0p-24f; }

uint64_t st_rng_below(st_rng *rng, uint64_t n)
{
    if (n <= 1) return 0;
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = st_rng_next_u64(rng);
    while (x >= limit);
    return x % n;
}

double st_rng_normal(st_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare_normal;
    }
    double u, v, s;
    do {
        u = 2.0 * st_rng_uniform(rng) - 1.0;
        v = 2.0 * st_rng_uniform(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    rng->spare_normal = v * f;
    rng->has_spare = 1;
    return u * f;
}

void st_rng_permutation(st_rng *rng, int64_t *idx, int64_t n)
{
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)st_rng_below(rng, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

st_status st_rng_sample(st_rng *rng, int64_t n, int64_t k, int64_t *out)
{
    if (n < 0 || k < 0 || k > n)
        return st_fail(ST_EINVAL, "sample: cannot draw %lld distinct values from %lld", (long long)k, (long long)n);
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx) return st_fail(ST_ENOMEM, "sample: out of memory for %lld indices", (long long)n);
    /* Partial Fisher-Yates: the first k slots of a shuffle. */
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)st_rng_below(rng, (uint64_t)(n - i));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        out[i] = idx[i];
    }
    free(idx);
    return ST_OK;
}

static st_status check_float(const st_tensor *t, const char *op)
{
    if (t->dtype != ST_F32 && t->dtype != ST_F64)
        return st_fail(ST_EDTYPE, "%s: f32 or f64 tensor expected, got %s", op, st_dtype_name(t->dtype));
    return ST_OK;
}

st_status st_rng_fill_uniform(st_rng *rng, st_tensor *t, double lo, double hi)
{
    ST_TRY(check_float(t, "rand"));
    int64_t n = st_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) st_tensor_set_flat(t, i, lo + (hi - lo) * st_rng_uniform(rng));
    return ST_OK;
}

st_status st_rng_fill_normal(st_rng *rng, st_tensor *t, double mean, double std)
{
    ST_TRY(check_float(t, "randn"));
    int64_t n = st_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) st_tensor_set_flat(t, i, mean + std * st_rng_normal(rng));
    return ST_OK;
}
