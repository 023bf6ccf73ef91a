/* Helpers for the tensor math tests: random tensors in several memory
 * layouts, and element access by multi-index for naive reference loops. */
#ifndef STRATA_TEST_OPS_UTIL_H
#define STRATA_TEST_OPS_UTIL_H

#include <stdlib.h>
#include "strata/rng.h"
#include "strata/tensor.h"

/* Memory layouts a test input can have. */
enum { LAYOUT_CONTIGUOUS, LAYOUT_PERMUTED, LAYOUT_SLICED, LAYOUT_COUNT };

/* A tensor of the given shape with values uniform in [lo, hi) laid out
 * as `layout`: contiguous, a permuted view of storage in reversed
 * dimension order, or a stepped slice (every other element along each
 * dimension, starting at 1) of a larger tensor. */
static inline st_tensor *rand_tensor(st_rng *rng, st_dtype dt, int nd, const int64_t *shape, int layout, double lo, double hi)
{
    st_tensor *base = NULL, *v = NULL;
    int64_t bshape[ST_MAX_DIMS];
    if (layout == LAYOUT_PERMUTED && nd > 1) {
        int perm[ST_MAX_DIMS];
        for (int i = 0; i < nd; i++) {
            bshape[i] = shape[nd - 1 - i];
            perm[i] = nd - 1 - i;
        }
        if (st_tensor_new(dt, nd, bshape, &base) || st_tensor_permute(base, perm, &v)) abort();
    } else if (layout == LAYOUT_SLICED && nd > 0) {
        for (int i = 0; i < nd; i++) bshape[i] = 2 * shape[i] + 1;
        if (st_tensor_new(dt, nd, bshape, &base)) abort();
        st_tensor *cur = NULL;
        if (st_tensor_view(base, &cur)) abort();
        for (int i = 0; i < nd; i++) {
            st_tensor *next = NULL;
            if (st_tensor_slice(cur, i, 1, 2 * shape[i] + 1, 2, &next)) abort();
            st_tensor_free(cur);
            cur = next;
        }
        v = cur;
    } else {
        if (st_tensor_new(dt, nd, shape, &base) || st_tensor_view(base, &v)) abort();
    }
    st_tensor_free(base);
    for (int64_t i = 0, n = st_tensor_numel(v); i < n; i++)
        st_tensor_set_flat(v, i, lo + (hi - lo) * st_rng_uniform(rng));
    return v;
}

/* Flat C-order index -> multi-index for a shape. */
static inline void unflatten(int nd, const int64_t *shape, int64_t flat, int64_t *idx)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = shape[d] ? flat % shape[d] : 0;
        flat = shape[d] ? flat / shape[d] : 0;
    }
}

/* Multi-index -> flat C-order index. */
static inline int64_t flatten(int nd, const int64_t *shape, const int64_t *idx)
{
    int64_t f = 0;
    for (int d = 0; d < nd; d++) f = f * shape[d] + idx[d];
    return f;
}

/* Element of t at a multi-index. */
static inline double at(const st_tensor *t, const int64_t *idx) { return st_tensor_get_flat(t, flatten(t->ndim, t->shape, idx)); }

/* Rounds a double result to what dtype dt stores. */
static inline double as_dtype(st_dtype dt, double v) { return dt == ST_F32 ? (double)(float)v : v; }

static inline int64_t rand_between(st_rng *rng, int64_t lo, int64_t hi) { return lo + (int64_t)st_rng_below(rng, (uint64_t)(hi - lo + 1)); }

#endif
